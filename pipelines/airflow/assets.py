"""Airflow Assets for the golden tables, so downstream DAGs are scheduled on them (URI: postgres://host/db/schema/table)."""

from __future__ import annotations

from airflow.sdk import Asset

POPULATION_PERSON = Asset(
    name="population.person",
    uri="postgres://warehouse/warehouse/population/person",
    group="population",
    extra={"description": "实有人口库 golden person table (SCD2 history in population.person_history)"},
)
