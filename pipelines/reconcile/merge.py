"""Reconcile a run's accepted records into the golden population tables, in one transaction.

Steps (each a set-based statement, see sql/population/ and pipelines/reconcile/survivorship.py):
candidates → duplicates → match by ID (new persons) → match by evidence or review queue → statements, current
versions and crosswalk → survivorship by the authority registry with lineage → SCD2 merge → discrepancies (比对)
→ row accounting. Re-running a run is idempotent: statements are keyed by (run, source, seq), the current version
of a record is the latest whatever the order of runs, and a person gets a new version only when a value changes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from psycopg import sql
from sqlalchemy import URL

from pipelines.reconcile import survivorship
from pipelines.registry import load_authority
from pipelines.settings import settings
from pipelines.warehouse import connect, run_script, sql_file

log = logging.getLogger(__name__)

STEPS = [
    "population/10_candidates.sql",
    "population/20_duplicates.sql",
    "population/30_match_by_id.sql",
    "population/35_candidate_person.sql",
    "population/40_match_by_evidence.sql",
    "population/50_statements.sql",
]


# Session settings of the reconciliation's transaction. temp_buffers: the temporary tables (candidate, golden, …)
# live in the backend's own buffers, 8 MB by default, too few for a full load's candidates (≈ 600 MB at 1M
# residents), which then go to and from the OS at every statement; memory is taken only as the tables grow. It
# must be set before the session first touches a temporary table, hence here, first thing in the transaction.
SESSION_SETTINGS = {"temp_buffers": "1GB", "work_mem": "256MB"}

# Settings of one step only: set before it, put back after it. JIT off for the discrepancy query: its plan holds
# an expression per compared attribute several times over (the OR that filters, the LATERAL list, the comparisons),
# which the JIT compiled for 5.8 s of a 1M full load's 8-10 s step (EXPLAIN ANALYZE) — compile time that follows
# the number of expressions, not of rows, and that the run never earned back. Only there: for the whole
# reconciliation JIT on or off made no difference (four alternating trials, docs/scaling.md).
#
# The candidates: as many parallel workers as the machine has cores but one. Their `CREATE TABLE … AS` is written
# by the leader alone, which also scans when it can: with a worker per core the leader shared its core with one and
# fell behind (the 1M candidates on two cores, two trials each: 7.5, 7.8 s with two workers, 6.6, 6.6 s with one;
# the leader not scanning, 7.2 and 7.5 s). (The cores of the machine this runs on: the database server's when it
# is the same machine, as in the benchmark; never more than the session's own max_parallel_workers_per_gather.)
# JIT off for the candidates too: their statement's cost is past the inlining and optimisation thresholds, and its
# time is in the normalisation functions (regular expressions, translate) that JIT code calls all the same — the
# leader and its worker each compiled for about 0.6 s (1.25 CPU s, auto_explain of the 1M full load) and ran no
# faster for it (the 1M candidates' query on one core, min of four alternating: 6.97 s with JIT, 6.56 s without;
# with its worker 3.98 and 3.97 s; 2026-12-05).
# JIT off for the golden query too: its cost is past the inlining and optimisation thresholds, and in a slice of a
# load into an empty warehouse the leader and both parallel workers each compiled its 32 functions — 1.8–2.2 CPU s
# a query by EXPLAIN ANALYZE (the leader 1.3–1.7 s of it), for a window and an aggregate whose time is in sorting,
# array building and the values' hash, which compiled code calls all the same. On one slice's 474k persons of a 1M
# load (copies of one warehouse, alternating, 2026-12-05): median 8.25 CPU s with JIT, 7.66 s without, the same
# wall time; in the daily run its cost stays under the thresholds (no JIT either way).
# The duplicates and the match by ID: their repeated keys and new persons grouped (and numbered) by one sort, split
# between parallel workers (a sort per worker, merged in the leader). The planner prices the merge of two million
# rows above the hash aggregate of one process, so it is told to sort and that the workers' rows cost it little to
# gather: the 1M first load's new persons 3.1 s → 1.9 s, its repeated keys 1.9 → 1.7 s and, with the memory of a 4M
# load's keys (work_mem a quarter), 2.3 → 1.7 s (one or two workers alike; lab, 2026-12-05). On the
# one-transaction path the candidates are a temporary table, read by one process whatever these say.
# A setting's value is a text, or a function of the setting's current value.
def _one_core_for_the_leader(current: str) -> str:
    return str(min(int(current), max(1, (os.cpu_count() or 2) - 1)))


STEP_SETTINGS = {"survivorship.discrepancy_query": {"jit": "off"}, "survivorship.golden_query": {"jit": "off"},
                 "population/10_candidates.sql": {"max_parallel_workers_per_gather": _one_core_for_the_leader,
                                                  "jit": "off"},
                 **dict.fromkeys(("population/20_duplicates.sql", "population/30_match_by_id.sql"),
                                 {"max_parallel_workers_per_gather": _one_core_for_the_leader,
                                  "enable_hashagg": "off", "parallel_setup_cost": "0", "parallel_tuple_cost": "0.001"})}


# Bulk load: when a run's candidates are at least BULK_SHARE of the statements already held (a first full load, a
# reload), the secondary indexes and the foreign keys of the tables the next steps fill are dropped before the step
# and restored after it: building an index over two million rows is several times cheaper than inserting two
# million entries one by one, and checking a foreign key once over the whole table (ADD CONSTRAINT validates with
# one join) is far cheaper than a trigger call per inserted row (two per row of the crosswalk: 3 of its 6.8 s at
# 250k residents). Only indexes no statement of those steps needs are dropped (the keys that ON CONFLICT names, or
# that a step's join must probe, stay), and everything is restored from its own definition (pg_get_indexdef,
# pg_get_constraintdef) in the same transaction, so the schema after the run is exactly the schema before it, and
# a row that breaks a foreign key fails the run as it would have row by row. The cost: until the commit, readers
# of these tables wait (DROP takes an exclusive lock) — acceptable for a full load; a daily increment never takes
# this path.
#
# Unique keys too (a primary key or UNIQUE constraint, kind KEY; a unique index, kind INDEX), where no statement of
# the step needs them: inserting 1.9M crosswalk rows through its two-text-column primary key cost 13 s of a 1M
# full load, the insert without it and the key built after it less than half of that (measured on synthetic rows of
# the same shape: 19.5 s against 3.2 + 5.6 s). Built again, a key checks every row once, so a duplicate still fails
# the run. (The statements' key (run_id, source_id, seq) is probed by 50_statements' first join: without it, that
# join of a bulk load reads the statements once, hashed.)
BULK_SHARE = 0.2
INDEX, FOREIGN_KEYS, KEY = "index", "foreign keys of", "key"
BULK_DROP = {  # step -> (kind, name) dropped before it
    "population/30_match_by_id.sql": [(INDEX, "population.person_evidence"), (FOREIGN_KEYS, "population.person")],
    "population/50_statements.sql": [
        (INDEX, "population.source_record_person"), (INDEX, "population.source_record_key"),
        (INDEX, "population.person_xref_person"),
        (INDEX, "population.person_xref_last_run"),
        (FOREIGN_KEYS, "population.source_record"), (FOREIGN_KEYS, "population.person_xref"),
        (KEY, "population.person_xref_pkey"), (KEY, "population.source_record_run_seq_key"),
    ],
    "survivorship.scd2_merge": [(INDEX, "population.person_identity"), (INDEX, "population.person_history_run")],
}
BULK_RESTORE = {  # step -> (kind, name) restored after it
    "population/50_statements.sql": BULK_DROP["population/50_statements.sql"],
    "survivorship.scd2_merge": [(INDEX, "population.person_evidence"), (FOREIGN_KEYS, "population.person"),
                                (INDEX, "population.person_identity"), (INDEX, "population.person_history_run")],
}

# ... and analysed after it: a bulk load multiplies the table's size within the transaction, far beyond what its
# statistics (or autovacuum, which only runs after the commit) know, and the next steps' joins are planned on them
# (a first load's tables have never been analysed: the golden CTAS was planned as a nested loop over a million
# persons and ran for many minutes).
BULK_ANALYZE = {
    "population/50_statements.sql": ["population.source_record", "population.person_xref"],
    "survivorship.scd2_merge": ["population.person", "population.person_history"],
}


# ... and loaded into the buffer pool after the load (pg_prewarm, migration 0017), when they fit in a share of it.
# CREATE INDEX writes the index around shared_buffers, so after a bulk load the rebuilt indexes are only in the OS
# file cache; on the project's machines the kernel pages out file cache left untouched for about a minute (DAMON
# reclaim), so the next day's increment read every index leaf it touched back from disk, one random read at a time
# (measured on a 4M-resident warehouse: the statements' insert of a day, 18k rows, 16.7k buffers read, 4.0 s; 0.4 s
# with them in memory). Reading them once, sequentially, at the end of the load costs about a second per million
# residents. Skipped when the indexes would take more than PREWARM_SHARE of shared_buffers (they would only evict
# each other) or when pg_prewarm is not installed.
PREWARM_SHARE = 0.5

# ... together with indexes the bulk path keeps but the next day's run probes at random: the statements' primary
# key, by which survivorship fetches each touched person's current statements (the crosswalk names them by id; a
# load in slices rebuilds it, partitioned.SLICE_DROP, and prewarms it with the others).
# Maintained row by row during the load, its pages were still pushed out of shared_buffers by the load's later
# work: the 4M increment's survivorship read 6,072 of its pages from outside the buffers and took 2.7 s against
# 0.9 s at 1M for the same buffer visits (auto_explain of both increments, 2026-12-03). And the cells' key, which
# the full load builds again with the cells (resident_cell_rebuild, outside the list of rebuilt indexes) and which
# every day's upsert of the changed persons' cells probes at random: the 4M increment read 6,954 of its pages from
# outside the buffers, the most of any relation (its reconciliation's 11k, 0.5 s of waiting; the 1M one's 4k).
PREWARM_ALSO = ["population.source_record_pkey", "population.resident_cell_key"]


# ... and the triggers that keep population.resident_cell (the persons counted per cell, migration 0018) current
# are dropped for the merge's statements (and created again from their own definitions after it) and the cells
# counted afresh, with one GROUP BY over the persons: a full load's INSERT of a million persons would otherwise
# collect them all in a transition table first. Dropped, not disabled: PostgreSQL fills the transition table of a
# disabled trigger all the same (330 MB written to temporary files by a 1M full load's person insert).
CELL_TRIGGERS = ("resident_cell_insert", "resident_cell_update", "resident_cell_delete")
CELL_STEP = "survivorship.scd2_merge"


# Held (session-level) by every reconciliation: one at a time, and a partitioned first load's clean-up
# (partitioned.recover) never runs beside the load it cleans up after.
RECONCILE_LOCK = 7364002


class AccountingError(RuntimeError):
    """A source's rows do not add up: received != merged + quarantined + duplicates."""


def reconcile_run(run_id: int, url: URL | None = None,
                  on_step: Callable[[str, float, list[tuple[str, int, float]]], None] | None = None,
                  partitions: int | None = None) -> dict[str, dict[str, int]]:
    """Merge the run's accepted rows; return the row accounting per source.

    ``on_step(step, seconds, statements)``, when given, is called after each step with its statements'
    (text, rowcount, seconds): the benchmark's timing hook; it changes nothing else.

    ``partitions`` (default: RECONCILE_PARTITIONS): how many backends reconcile a load into an empty warehouse at
    once (pipelines/reconcile/partitioned.py); any other run, or 1, is one transaction."""
    from pipelines.reconcile import partitioned

    authorities = load_authority()
    partitions = settings.reconcile_partitions if partitions is None else partitions
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (RECONCILE_LOCK,))  # (released with the session)
        partitioned.recover(conn)
        if partitions > 1 and partitioned.warehouse_empty(conn):
            partitioned.reconcile_first_load(conn, url, run_id, authorities, partitions, on_step)
        else:
            _reconcile_in_one_transaction(conn, run_id, authorities, on_step)
        rows = conn.execute(
            "SELECT source_id, received, merged, quarantined, duplicates FROM audit.row_accounting"
            " WHERE run_id = %s ORDER BY source_id",
            (run_id,),
        ).fetchall()
    return {r[0]: {"received": r[1], "merged": r[2], "quarantined": r[3], "duplicates": r[4]} for r in rows}


def set_session(conn, extra: dict[str, str] | None = None) -> None:
    """SESSION_SETTINGS (and ``extra``) for the transaction just begun (or beginning) on ``conn``."""
    for name, value in {**SESSION_SETTINGS, **(extra or {})}.items():
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))


def analyze(conn, table: str) -> None:
    """ANALYZE a table named schema.name."""
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(*table.split("."))))


def step_params(run_id: int, into_empty: bool = False) -> dict:
    """The named parameters of the steps' SQL: the run, and ``into_empty`` — true only for a load into an empty
    warehouse reconciled in slices (pipelines/reconcile/partitioned.py), where nobody is held yet, no key and no
    earlier statement, and nobody can be orphaned, so the match, 50_statements and the SCD2 merge skip what looks
    for them."""
    return {"run_id": run_id, "into_empty": into_empty}


def run_step(conn, name: str, script, params: dict, record) -> None:
    """One step's statements, under its STEP_SETTINGS (put back after it); ``record`` as run_script's on_statement."""
    restore = {}
    for setting, value in STEP_SETTINGS.get(name, {}).items():
        (restore[setting],) = conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()
        conn.execute("SELECT set_config(%s, %s, true)",
                     (setting, value(restore[setting]) if callable(value) else value))
    run_script(conn, script, params, on_statement=record)
    for setting, value in restore.items():
        conn.execute("SELECT set_config(%s, %s, true)", (setting, value))


def account(conn, run_id: int, step) -> None:
    """The row accounting (90_accounting.sql) through ``step(name, script)``; AccountingError if it does not add up."""
    try:
        step("population/90_accounting.sql", sql_file("population/90_accounting.sql"))
    except Exception as exc:  # the CHECK constraint names the violated rule
        raise AccountingError(f"run {run_id}: rows do not add up: {exc}") from exc


def _reconcile_in_one_transaction(conn, run_id: int, authorities, on_step) -> None:
    params = step_params(run_id)
    with conn.transaction():
        set_session(conn)

        bulk = False
        dropped: dict[tuple[str, str], list[str]] = {}  # (kind, name) -> statements restoring it, while dropped
        rebuilt: list[str] = []  # indexes rebuilt by the bulk path, in the order they were

        def step(name: str, script) -> None:
            statements: list[tuple[str, int, float]] = []
            record = (lambda s, n, t: statements.append((s, n, t))) if on_step else None
            started = time.perf_counter()
            for kind, obj in BULK_DROP.get(name, []) if bulk else []:
                t0 = time.perf_counter()
                dropped[(kind, obj)] = DROPPERS[kind](conn, obj)
                if record:
                    record(f"drop {kind} {obj} (bulk load)", 0, time.perf_counter() - t0)
            if bulk and name == CELL_STEP:
                t0 = time.perf_counter()
                triggers = drop_cell_triggers(conn)
                if record:
                    record("drop resident_cell triggers (bulk load)", 0, time.perf_counter() - t0)
            run_step(conn, name, script, params, record)
            if bulk and name == CELL_STEP:
                t0 = time.perf_counter()
                for statement in triggers:
                    conn.execute(statement)
                if record:
                    record("restore resident_cell triggers (bulk load)", 0, time.perf_counter() - t0)
                t0 = time.perf_counter()
                (cells,) = conn.execute("SELECT population.resident_cell_rebuild()").fetchone()
                if record:
                    record("count population.resident_cell afresh (bulk load)", cells, time.perf_counter() - t0)
            for kind, obj in BULK_RESTORE.get(name, []) if bulk else []:
                t0 = time.perf_counter()
                for statement in dropped.pop((kind, obj)):
                    conn.execute(statement)
                if kind in (INDEX, KEY):  # (a key's index has the constraint's name)
                    rebuilt.append(obj)
                if record:
                    record(f"restore {kind} {obj} (bulk load)", 0, time.perf_counter() - t0)
            for table in BULK_ANALYZE.get(name, []) if bulk else []:
                t0 = time.perf_counter()
                analyze(conn, table)
                if record:
                    record(f"analyze {table} (bulk load)", 0, time.perf_counter() - t0)
            if on_step is not None:
                on_step(name, time.perf_counter() - started, statements)

        first_load = False
        for name in STEPS:
            step(name, sql_file(name))
            if name == "population/20_duplicates.sql":
                bulk = is_bulk_load(conn)
                # (the steps before the statements' do not write the crosswalk: empty now, it will name only the
                # persons of this run's records, every one of them touched)
                (first_load,) = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM population.person_xref)").fetchone()
        step("survivorship.golden_query", survivorship.golden_query(authorities, every_person=first_load))
        step("survivorship.scd2_merge", survivorship.scd2_merge())
        step("survivorship.discrepancy_query", survivorship.discrepancy_query(authorities))
        if dropped:  # every dropped index is rebuilt by the step after which it is needed again
            raise RuntimeError(f"left dropped: {sorted(dropped)}")
        if rebuilt:
            t0 = time.perf_counter()
            loaded = prewarm(conn, rebuilt + [i for i in PREWARM_ALSO if i not in rebuilt])
            if on_step is not None:
                on_step("prewarm rebuilt indexes (bulk load)", time.perf_counter() - t0,
                        [(f"pg_prewarm {', '.join(loaded) or '(skipped)'}", len(loaded), time.perf_counter() - t0)])
        account(conn, run_id, step)


def is_bulk_load(conn) -> bool:
    """Whether the run's candidates are at least BULK_SHARE of the statements held (see BULK_SHARE)."""
    (candidates,) = conn.execute("SELECT count(*) FROM candidate").fetchone()
    (held,) = conn.execute(  # the planner's count, or the statistics' live rows if the table was never analysed
        "SELECT greatest(c.reltuples, s.n_live_tup, 0) FROM pg_class c"
        " JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'population.source_record'::regclass"
    ).fetchone()
    return candidates > 0 and candidates >= BULK_SHARE * held


def drop_cell_triggers(conn) -> list[str]:
    """Drop the triggers maintaining population.resident_cell (see CELL_TRIGGERS), returning the statements that
    create them again as they were."""
    restore = []
    for trigger in CELL_TRIGGERS:
        (definition,) = conn.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'population.person'::regclass"
            " AND tgname = %s", (trigger,)).fetchone()
        conn.execute(sql.SQL("DROP TRIGGER {} ON population.person").format(sql.Identifier(trigger)))
        restore.append(definition)
    return restore


def drop_index(conn, index: str) -> list[str]:
    """Drop an index, returning the statement that creates it again exactly as it was."""
    (definition,) = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (index,)).fetchone()
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(*index.split("."))))
    return [definition]


def drop_foreign_keys(conn, table: str) -> list[str]:
    """Drop the foreign keys of a table, returning the statements that add them again as they were (adding one
    checks every row of the table against the referenced one, in one query)."""
    ident = sql.Identifier(*table.split("."))
    restore = []
    for name, definition in conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
        " AND contype = 'f' ORDER BY conname", (table,),
    ).fetchall():
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(ident, sql.Identifier(name)))
        restore.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            ident, sql.Identifier(name), sql.SQL(definition)).as_string(conn))
    return restore


def drop_key(conn, key: str) -> list[str]:
    """Drop a primary key or unique constraint (schema.name), returning the statement that adds it again as it was."""
    schema, name = key.split(".")
    (table, definition) = conn.execute(
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = %s::regnamespace AND conname = %s AND contype IN ('p', 'u')", (schema, name),
    ).fetchone()
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name)))
    return [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        sql.SQL(table), sql.Identifier(name), sql.SQL(definition)).as_string(conn)]


DROPPERS = {INDEX: drop_index, FOREIGN_KEYS: drop_foreign_keys, KEY: drop_key}


def prewarm(conn, indexes: list[str]) -> list[str]:
    """Load the indexes into shared_buffers with pg_prewarm (see PREWARM_SHARE); return the ones loaded."""
    installed = conn.execute(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_prewarm'").fetchone()
    if not installed:
        log.info("pg_prewarm is not installed: the rebuilt indexes are left to be read on first use")
        return []
    (size, buffers) = conn.execute(
        "SELECT sum(pg_relation_size(i::regclass))::bigint, (SELECT setting::bigint * 8192 FROM pg_settings"
        " WHERE name = 'shared_buffers') FROM unnest(%s::text[]) AS i", (indexes,),
    ).fetchone()
    if size > PREWARM_SHARE * buffers:
        log.info("rebuilt indexes (%d MB) exceed %.0f %% of shared_buffers: not prewarmed",
                 size // 2**20, PREWARM_SHARE * 100)
        return []
    for index in indexes:
        conn.execute(sql.SQL("SELECT {}.pg_prewarm(%s::regclass)").format(sql.Identifier(installed[0])), (index,))
    return indexes
