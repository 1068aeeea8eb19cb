"""Airflow Assets for the golden tables, so downstream DAGs are scheduled on them (URI: postgres://host/db/schema/table)."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

POPULATION_PERSON = Asset(
    name="population.person",
    uri="postgres://warehouse/warehouse/population/person",
    group="population",
    extra={"description": "实有人口库 golden person table (SCD2 history in population.person_history)"},
)

# Every open dataset released from the population database is emitted through this alias at run time
# (``outlet_events[POPULATION_OPEN_DATA].add(Asset(...))``): the dataset definitions are files read at run time,
# never at DAG parse time. A downstream DAG schedules on ``open_data_asset("<code>")``.
POPULATION_OPEN_DATA = AssetAlias(name="population.open_data")


def open_data_asset(code: str) -> Asset:
    """The Asset of one published dataset (its refreshed table ``publish.<code>``)."""
    return Asset(name=f"publish.{code}", uri=f"postgres://warehouse/warehouse/publish/{code}", group="open_data")
