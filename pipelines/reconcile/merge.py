"""Reconcile a run's accepted records into the golden population tables, in one transaction.

Steps (each a set-based statement, see sql/population/ and pipelines/reconcile/survivorship.py):
candidates → duplicates → match by ID (new persons) → match by evidence or review queue → statements, current
versions and crosswalk → survivorship by the authority registry with lineage → SCD2 merge → discrepancies (比对)
→ row accounting. Re-running a run is idempotent: statements are keyed by (run, source, seq), the current version
of a record is the latest whatever the order of runs, and a person gets a new version only when a value changes.
"""

from __future__ import annotations

import logging

from sqlalchemy import URL

from pipelines.reconcile import survivorship
from pipelines.registry import load_authority
from pipelines.warehouse import connect, run_script, sql_file

log = logging.getLogger(__name__)

STEPS = [
    "population/10_candidates.sql",
    "population/20_duplicates.sql",
    "population/30_match_by_id.sql",
    "population/40_match_by_evidence.sql",
    "population/50_statements.sql",
]


class AccountingError(RuntimeError):
    """A source's rows do not add up: received != merged + quarantined + duplicates."""


def reconcile_run(run_id: int, url: URL | None = None) -> dict[str, dict[str, int]]:
    """Merge the run's accepted rows; return the row accounting per source."""
    authorities = load_authority()
    params = {"run_id": run_id}
    with connect(url) as conn, conn.transaction():
        conn.execute("SET LOCAL work_mem = '256MB'")
        for step in STEPS:
            run_script(conn, sql_file(step), params)
        run_script(conn, survivorship.golden_query(authorities), params)
        run_script(conn, survivorship.golden_hash(), params)
        run_script(conn, survivorship.scd2_merge(), params)
        run_script(conn, survivorship.discrepancy_query(authorities), params)
        try:
            run_script(conn, sql_file("population/90_accounting.sql"), params)
        except Exception as exc:  # the CHECK constraint names the violated rule
            raise AccountingError(f"run {run_id}: rows do not add up: {exc}") from exc
        rows = conn.execute(
            "SELECT source_id, received, merged, quarantined, duplicates FROM audit.row_accounting"
            " WHERE run_id = %s ORDER BY source_id",
            (run_id,),
        ).fetchall()
    return {r[0]: {"received": r[1], "merged": r[2], "quarantined": r[3], "duplicates": r[4]} for r in rows}
