"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy import URL

from pipelines.settings import Settings
from pipelines.warehouse import connect

SNAPSHOT_QUERIES = {
    "person": "SELECT * FROM population.person ORDER BY person_id",
    "history": "SELECT * FROM population.person_history ORDER BY person_id, version",
    "source_record": "SELECT * FROM population.source_record ORDER BY source_record_id",
    "xref": "SELECT * FROM population.person_xref ORDER BY source_id, source_key",
    "discrepancy": "SELECT * FROM population.discrepancy ORDER BY person_id, attribute, source_id",
    "review": "SELECT run_id, source_id, seq, reason, candidate_person_ids, evidence, status"
              " FROM population.review_queue ORDER BY 1, 2, 3",
    "quarantine": "SELECT run_id, source_id, seq, reasons, payload FROM quarantine.population_record ORDER BY 1, 2, 3",
    "duplicates": "SELECT * FROM staging.population_duplicate ORDER BY 1, 2, 3",
    "accounting": "SELECT * FROM audit.row_accounting ORDER BY 1, 2",
    "watermark": "SELECT source_id, high_watermark FROM audit.watermark ORDER BY 1",
    "cells": "SELECT * FROM population.resident_cell ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
}

CELL_KEY = "residence_division, sex, birth_date, death_date, population_status, is_registered, nationality, id_type"


def cells_disagreeing(url) -> list[tuple]:
    """Rows of population.resident_cell that differ from the persons counted afresh, either way (none: they agree)."""
    held = f"SELECT {CELL_KEY}, persons FROM population.resident_cell"
    counted = f"SELECT {CELL_KEY}, count(*) FROM population.person GROUP BY {CELL_KEY}"
    return rows(url, f"({held} EXCEPT ALL {counted}) UNION ALL ({counted} EXCEPT ALL {held})")


@contextmanager
def scratch_database(server: URL, name: str) -> Iterator[URL]:
    """An empty database ``name`` on ``server``'s server (made afresh), dropped afterwards."""
    url = server.set(database=name)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(Settings.libpq(server.set(database="postgres")), autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url
    finally:
        with psycopg.connect(Settings.libpq(server.set(database="postgres")), autocommit=True) as conn:
            conn.execute(drop)


def rows(url, query, *params):
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


def snapshot(url) -> dict[str, list]:
    """Everything a re-run must leave exactly as it was (surrogate ids included; times of receipt excluded)."""
    return {name: rows(url, q) for name, q in SNAPSHOT_QUERIES.items()}
