# Shanghai resident-population ETL: the two commands are `make setup` and `make demo` (or `make test`).
# Every target works from a clean clone: .venv from PyPI, the project's own PostgreSQL + PostGIS cluster under
# .local/ on the first free port from 54329 (or LOCAL_PG_PORT), installed from apt when missing;, an Airflow home under .local/airflow.
# Set WAREHOUSE_URL to use an existing PostgreSQL/PostGIS server instead of the local cluster.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY := .venv/bin/python
LOCAL_DIR ?= $(CURDIR)/.local
# Airflow's environment (AIRFLOW_HOME, DAGs folder, metadata DB migrated once) for the commands that need it.
AIRFLOW_ENV := source scripts/airflow_env.sh &&

.PHONY: help setup demo test test-quick airflow api bench pg-stop clean

help: ## list the targets
	@echo "usage: make <target>"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

setup: ## .venv + requirements, start PostgreSQL/PostGIS (.local/pg), migrate the warehouse
	@bash scripts/bootstrap.sh
	@bash scripts/pg.sh start
	@$(PY) -m pipelines migrate

demo: setup ## simulate the departments and run the pipelines over the simulated days, then report
	@$(AIRFLOW_ENV) $(PY) -m pipelines demo

test: setup ## the whole test suite (unit, integration on the real database, DAG integrity, e2e)
	@$(AIRFLOW_ENV) $(PY) -m pytest -q tests

test-quick: setup ## the tests without the slow end-to-end DAG runs (-m "not e2e")
	@$(AIRFLOW_ENV) $(PY) -m pytest -q -m "not e2e" tests

airflow: setup ## local Airflow UI + scheduler + dag-processor + triggerer at http://localhost:8080 (admin/admin)
	@bash scripts/airflow.sh

bench: setup ## throughput benchmark of the pipelines
	@$(PY) -m pipelines bench

# The read API over the published open data (pipelines/api); API_HOST/API_PORT as in pipelines/settings.py.
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
api: setup ## the read API (FastAPI) at http://127.0.0.1:8000/api/v1 (API_HOST, API_PORT), OpenAPI docs at /docs
	@echo "read API:     http://$(API_HOST):$(API_PORT)/api/v1/catalog"
	@echo "OpenAPI docs: http://$(API_HOST):$(API_PORT)/docs"
	@$(PY) -m uvicorn pipelines.api.app:app --host $(API_HOST) --port $(API_PORT)

pg-stop: ## stop the local PostgreSQL cluster
	@if [ -d "$(LOCAL_DIR)/pg/data" ]; then bash scripts/pg.sh stop; fi

clean: pg-stop ## stop the cluster and remove .local (database, Airflow home, landing files); keeps .venv
	rm -rf "$(LOCAL_DIR)"
