"""The population pipeline's steps, as plain functions the DAG's tasks call (and the CLI and benchmark too).

Tasks hand each other only run ids, windows and counts; rows stay in the warehouse.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pipelines.registry import extract_order, load_sources
from pipelines.runs import close_run, open_run
from pipelines.warehouse import migrate

log = logging.getLogger(__name__)

PIPELINE = "population"


def start(interval_start: datetime, interval_end: datetime, dag_id: str | None = None,
          airflow_run_id: str | None = None) -> int:
    """Apply pending migrations (cheap when none) and open (or re-open) the run of this interval."""
    migrate()
    return open_run(PIPELINE, interval_start, interval_end, dag_id, airflow_run_id)


def source_ids() -> list[str]:
    """The registry's sources, heaviest first (registry.extract_order): the extract task is mapped over this list, and
    its mapped tasks are queued in this order."""
    return [s.id for s in extract_order(load_sources())]


def extract(source_id: str, run_id: int, interval_start: datetime, interval_end: datetime) -> dict:
    from pipelines.sources import stage_source

    result = stage_source(source_id, run_id, interval_start, interval_end)
    log.info("staged %s for run %s: %s", source_id, run_id, result)
    return {"source_id": source_id, **{k: v for k, v in result.items() if isinstance(v, (int, str))}}


def validate(run_id: int, interval_end: datetime) -> dict:
    from pipelines.population.validate import validate_run

    return validate_run(run_id, interval_end.date())


def reconcile(run_id: int) -> dict:
    from pipelines.reconcile.merge import reconcile_run

    return reconcile_run(run_id)


def quality_gate(run_id: int) -> dict:
    """Validate the golden tables; a blocking failure marks the run blocked and raises (the DAG run fails)."""
    from pipelines.quality.gate import QualityGateFailed, enforce, run_gate

    result = run_gate(run_id)
    try:
        enforce(result)
    except QualityGateFailed:
        close_run(run_id, "blocked")
        raise
    return {"passed": result.passed, "warnings": len(result.warnings)}


def finish(run_id: int) -> dict:
    from pipelines.report import run_summary

    close_run(run_id, "success")
    return run_summary(run_id)
