"""Reconcile a run's accepted records into the golden population tables, in one transaction.

Steps (each a set-based statement, see sql/population/ and pipelines/reconcile/survivorship.py):
candidates → duplicates → match by ID (new persons) → match by evidence or review queue → statements, current
versions and crosswalk → survivorship by the authority registry with lineage → SCD2 merge → discrepancies (比对)
→ row accounting. Re-running a run is idempotent: statements are keyed by (run, source, seq), the current version
of a record is the latest whatever the order of runs, and a person gets a new version only when a value changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

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


# Session settings of the reconciliation's transaction. temp_buffers: the temporary tables (candidate, golden, …)
# live in the backend's own buffers, 8 MB by default, too few for a full load's candidates (≈ 600 MB at 1M
# residents), which then go to and from the OS at every statement; memory is taken only as the tables grow. It
# must be set before the session first touches a temporary table, hence here, first thing in the transaction.
SESSION_SETTINGS = {"temp_buffers": "1GB", "work_mem": "256MB"}


class AccountingError(RuntimeError):
    """A source's rows do not add up: received != merged + quarantined + duplicates."""


def reconcile_run(run_id: int, url: URL | None = None,
                  on_step: Callable[[str, float, list[tuple[str, int, float]]], None] | None = None,
                  ) -> dict[str, dict[str, int]]:
    """Merge the run's accepted rows; return the row accounting per source.

    ``on_step(step, seconds, statements)``, when given, is called after each step with its statements'
    (text, rowcount, seconds): the benchmark's timing hook; it changes nothing else."""
    authorities = load_authority()
    params = {"run_id": run_id}
    with connect(url) as conn, conn.transaction():
        for name, value in SESSION_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))

        def step(name: str, script) -> None:
            statements: list[tuple[str, int, float]] = []
            started = time.perf_counter()
            run_script(conn, script, params,
                       on_statement=(lambda s, n, t: statements.append((s, n, t))) if on_step else None)
            if on_step is not None:
                on_step(name, time.perf_counter() - started, statements)

        for name in STEPS:
            step(name, sql_file(name))
        step("survivorship.golden_query", survivorship.golden_query(authorities))
        step("survivorship.scd2_merge", survivorship.scd2_merge())
        step("survivorship.discrepancy_query", survivorship.discrepancy_query(authorities))
        try:
            step("population/90_accounting.sql", sql_file("population/90_accounting.sql"))
        except Exception as exc:  # the CHECK constraint names the violated rule
            raise AccountingError(f"run {run_id}: rows do not add up: {exc}") from exc
        rows = conn.execute(
            "SELECT source_id, received, merged, quarantined, duplicates FROM audit.row_accounting"
            " WHERE run_id = %s ORDER BY source_id",
            (run_id,),
        ).fetchall()
    return {r[0]: {"received": r[1], "merged": r[2], "quarantined": r[3], "duplicates": r[4]} for r in rows}
