"""A load into an empty warehouse (the first full load, the overnight rebuild) reconciled by several backends at once.

PostgreSQL runs each ``INSERT … SELECT`` of the reconciliation in one process, so the one-transaction path keeps
about 1.3 of the database server's cores busy. Here the work after the match — statements and crosswalk
(50_statements), survivorship, the SCD2 merge, the discrepancies — is split by person into ``k`` slices, each
reconciled by its own backend at the same time. docs/scaling.md ("Partitioned reconciliation") has the plan this
implements and its measurements.

Only for an empty warehouse (no statement, crosswalk row, person, version or retired person yet): no record key
has a statement, so none changes person, nobody is orphaned, every candidate is its key's current statement, and
a person's statements, crosswalk rows, versions and discrepancies are all written by the backend of its slice.

1. **Drops, committed first.** The bulk path's indexes, keys, foreign keys and resident_cell triggers
   (merge.BULK_DROP, merge.CELL_TRIGGERS), and the statements' primary key (:data:`SLICE_DROP`), are dropped in a
   transaction of their own, which also writes ``population.bulk_load`` with the statements that restore them.
   (Dropped inside the main backend's slice's transaction, their exclusive locks would make the other slices'
   inserts wait for its end.)
2. **The match, in a transaction of its own** (candidates, duplicates, match by ID and by evidence: as always,
   city-wide), its tables unlogged tables of ``population_work`` (:data:`WORK_SCHEMA`) instead of temporary ones,
   so that their scans may run in parallel workers and, committed, every backend can read them. Its writes (the
   run's duplicates, review rows and their quarantine rows) are committed with it: :func:`recover` deletes them.
   Without 35_candidate_person, the rewrite of every candidate with its person: here every candidate with a usable
   ID is its ID's new person's, joined to it as each slice's candidates are read (:data:`CANDIDATE_PERSON`,
   :func:`slice_rows`).
3. **The slices.** Person ids are drawn in ID-number order (30_match_by_id.sql); slice i is a range of them, so
   two backends rarely insert into the same index pages. Each backend reads its slice of the tables the later
   steps read (``candidate``, ``new_person``; ``run_key`` whole) through temporary views under their names
   (:func:`slice_views`). (When they were temporary tables, each other backend was handed its slice by a binary
   copy through the client before it could start: 5 s of both cores at 1M.)
4. **The slices at once**, one thread per backend, each in its own transaction: 50_statements, the golden query
   (every person of its crosswalk: in an empty warehouse, its own slice's), the SCD2 merge, the discrepancies —
   with ``into_empty`` (merge.step_params, given to every step of this path): what looks for held keys, earlier
   statements, the touched persons and orphans is not run, and the discrepancies read the slice's persons
   themselves (about 2 s of a core per slice at 1M); the match's steps do not look for the persons an empty
   warehouse does not hold either. Survivorship and the discrepancies read the statements without the crosswalk
   (``own_statements``): every statement a slice's transaction sees is its own, the current one of its key, and
   names its person — what the crosswalk's rows, written from the same insert, say too (the join of a million
   statements with their crosswalk rows was about a third of both steps: 1M reconciliation 108–112 → 92–94 CPU
   s, alternating on copies of one warehouse, every table identical by the fingerprint tool).
   Only the main backend analyses the statements and the crosswalk (two ANALYZEs of one table wait for each
   other's transaction: with the slices' commits held back, a deadlock no server would see). Without it the main
   slice's golden query and both slices' discrepancies were planned worse, losing about the ANALYZE's 1.3 s of a
   core at 1M (alternating lab runs, 2026-12-05): its page and row counts, written in place, reach the other
   backend's planner too.
5. **Commit.** The other slices commit once every slice has succeeded, then the main one; the match's tables are
   dropped. The bulk_load row stays: the load is not finished.
6. **The restores from every slice's backend** (:func:`restore_objects`; two by default), each taking the first
   task of a common queue it may start (:func:`run_queue`), largest table first — every index and key and the
   cells counted afresh; a table's foreign keys, triggers and statistics once its own indexes and keys are built;
   the prewarm once all are; never a task beside one whose lock on the same table conflicts with its own. Two
   backends can build indexes at once only over committed rows (one backend's uncommitted rows would make the
   other's build wait for its end), hence the commit before. A duplicate key or a broken foreign key fails here,
   as on the one-transaction path.
7. **The row accounting**, on the first backend free once every restore has started, in one transaction with the
   deletion of the ``bulk_load`` row, which waits for the last restores: the load is finished when that commits.

If anything fails, every open transaction rolls back and :func:`recover` empties the golden tables (empty before
the load, written by nobody else: every reconciliation holds merge.RECONCILE_LOCK), deletes the match's writes of
the run (committed with the match), drops the match's tables, and restores the dropped objects that are not back
yet; a crash of the process leaves the ``bulk_load`` row, and the next reconciliation does the same first.
Readers of the golden tables may see the slices' rows before the load is finished (and the match's duplicates and
review rows before the slices); the run is not successful (nor gated, nor published) until it is.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy import URL

from pipelines.reconcile import merge, survivorship
from pipelines.warehouse import connect, sql_file

log = logging.getLogger(__name__)

# written by the slices' backends: emptied by recover() (population.resident_cell follows population.person)
SLICE_TABLES = ["population.source_record", "population.person_xref", "population.person", "population.person_history",
                "population.discrepancy", "population.person_retired", "population.resident_cell"]
# candidates, duplicates, match by ID, match by evidence: in a transaction of their own; not 35_candidate_person (below)
MATCH_STEPS = ["population/10_candidates.sql", "population/20_duplicates.sql", "population/30_match_by_id.sql",
               "population/40_match_by_evidence.sql"]
# The candidates keep no person here (35_candidate_person, the one-transaction path's rewrite of every wide
# candidate with its person, is not run): in an empty warehouse a candidate with a usable ID is its ID's new
# person's, joined as each slice's candidates are read (slice_rows); only the few matched on evidence get
# theirs written, into these columns, added empty (no rewrite) after 30_match_by_id.
CANDIDATE_PERSON = "ALTER TABLE candidate ADD COLUMN person_id bigint, ADD COLUMN match_method text"
SLICED = ("candidate", "new_person")  # the match's tables a slice reads, by person ...
WHOLE = ("run_key",)  # ... and whole (the crosswalk's rows of the run's keys: none in an empty warehouse)
# The match's tables are unlogged tables of this schema (migration 0027), not temporary ones: committed, every
# slice's backend reads them through views (a temporary table is private to its session: each other backend was
# handed its slice by a copy through the client, 5 s of both cores at 1M), and the match's scans of them may run in
# parallel workers. Each step's ``CREATE TEMP TABLE t ON COMMIT DROP`` becomes ``CREATE UNLOGGED TABLE
# population_work.t`` (:func:`shared_tables`); its other statements name the tables unqualified and find them
# through the match transaction's search_path. Dropped when the load ends, or by recover().
WORK_SCHEMA = "population_work"
_TEMP_TABLE = re.compile(r"\bCREATE TEMP TABLE (\w+) ON COMMIT DROP\b")
# what the match writes outside the golden tables (20_duplicates, 40_match_by_evidence), committed with the match:
# deleted by recover() (the quarantine rows of the review queue first, found through it)
MATCH_WRITES = [
    "DELETE FROM quarantine.population_record q USING population.review_queue r"
    " WHERE r.run_id = %(run_id)s AND q.run_id = r.run_id AND q.source_id = r.source_id AND q.seq = r.seq",
    "DELETE FROM population.review_queue WHERE run_id = %(run_id)s",
    "DELETE FROM staging.population_duplicate WHERE run_id = %(run_id)s",
]
# What restoring an object that is back already raises (an index or key: its relation exists; a foreign key or
# trigger: the object exists; a primary key: a second one): recover() skips it. The golden tables are empty by
# then, so no other failure is expected of a restore.
ALREADY_RESTORED = (psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject,
                    psycopg.errors.InvalidTableDefinition)
# A backend whose slice is done waits, idle in its transaction, for the others: a server's
# idle_in_transaction_session_timeout must not end it meanwhile (it would fail the load, to be undone and redone).
WAIT_SETTINGS = {"idle_in_transaction_session_timeout": "0"}


# ... and, on this path only, the statements' primary key: source_record_id is drawn from one sequence by both slices
# at once, so both backends inserted into the same rightmost leaf of its index and waited for each other's lock on
# it (LWLock:BufferContent in pg_stat_activity, sampled every 50 ms). No step of a slice probes it (survivorship
# and the discrepancies read a slice's own statements by hash); built once after the commit, like merge.BULK_DROP's
# keys, it still checks every row. The one-transaction path keeps it: its golden query probes it through the
# crosswalk. 1M full load in the lab, alternating on copies of one staged run: reconciliation 28.2 → 27.3 s, 51.5 →
# 50.2 CPU s (the statements' step 5.1–5.8 → 3.5–4.8 s a slice). Not the persons' and versions' keys: without them
# the SCD2 merge's statements for changed persons, with none to change, hashed the persons (0.5 s a slice in a
# fresh warehouse's benchmark).
SLICE_DROP = [(merge.KEY, "population.source_record_pkey")]


def warehouse_empty(conn) -> bool:
    """Whether no statement, crosswalk row, person, version or retired person exists yet."""
    (empty,) = conn.execute(
        "SELECT NOT EXISTS (SELECT 1 FROM population.source_record) AND NOT EXISTS (SELECT 1 FROM population.person_xref)"
        " AND NOT EXISTS (SELECT 1 FROM population.person) AND NOT EXISTS (SELECT 1 FROM population.person_history)"
        " AND NOT EXISTS (SELECT 1 FROM population.person_retired)").fetchone()
    return empty


def recover(conn) -> int | None:
    """Finish off an unfinished partitioned load (a ``population.bulk_load`` row): empty the golden tables, delete
    the match's writes of its run (its duplicates, review rows and their quarantine rows, committed with the
    match) and its tables, restore the objects it dropped that are not back yet. Returns the run it cleaned up
    after, if any. ``conn`` is in autocommit mode and holds merge.RECONCILE_LOCK."""
    with conn.transaction():
        row = conn.execute("SELECT run_id, restore FROM population.bulk_load ORDER BY run_id LIMIT 1").fetchone()
        if row is None:
            return None
        run_id, restore = row
        conn.execute(sql.SQL("TRUNCATE {}").format(
            sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in SLICE_TABLES)))
        for statement in MATCH_WRITES:
            conn.execute(statement, {"run_id": run_id})
        drop_work_tables(conn)
        restored = 0
        for statement in restore:
            try:
                with conn.transaction():  # (a savepoint)
                    conn.execute(statement)
            except ALREADY_RESTORED:  # the load failed or stopped during its restores, or after them
                continue
            restored += 1
        conn.execute("DELETE FROM population.bulk_load WHERE run_id = %s", (run_id,))
    log.warning("run %s: an unfinished partitioned load was undone (golden tables emptied, %d of %d objects "
                "restored, the others were back already)", run_id, restored, len(restore))
    return run_id


def reconcile_first_load(conn, url: URL | None, run_id: int, authorities, k: int,
                         on_step: Callable[[str, float, list[tuple[str, int, float]]], None] | None) -> None:
    """Reconcile the run into the empty warehouse with ``k`` backends (see the module's docstring). ``conn``: the
    main connection, in autocommit mode, holding merge.RECONCILE_LOCK."""
    params = merge.step_params(run_id, into_empty=True)  # (the caller checked: warehouse_empty())

    def report(name: str, started: float, statements: list) -> None:
        if on_step is not None:
            on_step(name, time.perf_counter() - started, statements)

    def timed(statements: list, text: str, action: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        rows = action()
        statements.append((text, rows if isinstance(rows, int) else 0, time.perf_counter() - t0))

    # 1. the drops, committed with the row that says how to undo them
    started, statements = time.perf_counter(), []
    with conn.transaction():
        dropped: list[tuple[str, str, list[str]]] = []  # (kind, name, statements restoring it)
        for kind, obj in [*(pair for pairs in merge.BULK_DROP.values() for pair in pairs), *SLICE_DROP]:
            t0 = time.perf_counter()
            dropped.append((kind, obj, merge.DROPPERS[kind](conn, obj)))
            statements.append((f"drop {kind} {obj} (bulk load)", 0, time.perf_counter() - t0))
        t0 = time.perf_counter()
        dropped.append(("resident_cell", "triggers", merge.drop_cell_triggers(conn)))
        statements.append(("drop resident_cell triggers (bulk load)", 0, time.perf_counter() - t0))
        # (restored indexes and keys first, then the foreign keys that need them, then the triggers)
        dropped.sort(key=lambda d: (d[0] == merge.FOREIGN_KEYS) + 2 * (d[0] == "resident_cell"))
        rebuilt = [obj for kind, obj, _ in dropped if kind in (merge.INDEX, merge.KEY)]
        conn.execute("INSERT INTO population.bulk_load (run_id, restore) VALUES (%s, %s)",
                     (run_id, [text for _, _, texts in dropped for text in texts]))
    report("bulk load: drops committed", started, statements)

    workers: list[psycopg.Connection] = []
    threads: list[threading.Thread] = []
    try:
        workers = [connect(url) for _ in range(k - 1)]
        with conn.transaction():
            merge.set_session(conn, WAIT_SETTINGS)
            # 2. the match, city-wide, into the work schema's tables (committed: every backend reads them)
            drop_work_tables(conn)  # (none, unless a load died after its match and nothing undid it yet)
            conn.execute("SELECT set_config('search_path', %s || ', ' || current_setting('search_path'), true)",
                         (WORK_SCHEMA,))
            for name in MATCH_STEPS:
                timed_step(conn, name, shared_tables(sql_file(name)), params, on_step,
                           after=(lambda st: timed(st, CANDIDATE_PERSON, lambda: conn.execute(CANDIDATE_PERSON)))
                           if name == "population/30_match_by_id.sql" else None)
            bounds = slice_bounds(conn, k)
            ids = id_ranges(conn, bounds)

        with conn.transaction():
            # 3. the slices: each backend's views of its slice of the match's tables, each other backend starting
            # on its own at once ...
            started, statements = time.perf_counter(), []
            merge.set_session(conn, WAIT_SETTINGS)
            failures: list[BaseException] = []
            for i, worker in enumerate(workers, start=1):
                merge.set_session(worker, WAIT_SETTINGS)
                timed(statements, f"views of slice {i + 1}/{k}", lambda c=worker, i=i: slice_views(c, bounds, i, ids))
                threads.append(threading.Thread(target=reconcile_slice, name=f"slice-{i + 1}",
                                                args=(worker, authorities, params, i, k, False, on_step, failures)))
                threads[-1].start()
            timed(statements, f"views of slice 1/{k}", lambda: slice_views(conn, bounds, 0, ids))
            report("partitions: slices", started, statements)

            # 4. ... and the main backend on slice 1, in this thread
            reconcile_slice(conn, authorities, params, 0, k, True, on_step, failures)
            for thread in threads:
                thread.join()
            if failures:
                raise failures[0]
            report("partitions: all slices", started, [])

            # 5. commit the other slices, then this one with the match's writes ...
            started, statements = time.perf_counter(), []
            for i, worker in enumerate(workers, start=1):
                timed(statements, f"commit slice {i + 1}/{k}", worker.commit)
            t0 = time.perf_counter()
        statements.append((f"commit slice 1/{k}", 0, time.perf_counter() - t0))
        t0 = time.perf_counter()
        drop_work_tables(conn)
        statements.append((f"drop the {WORK_SCHEMA} tables", 0, time.perf_counter() - t0))
        # ... then the restores from every slice's backend, the cells and statistics, the prewarm ...
        for worker in workers:
            worker.autocommit = True

        accounted: list[tuple[str, float, list]] = []  # (reported after the restores: the step that ends the load)

        def finish(c: psycopg.Connection, restored: Callable[[], None]) -> None:
            # ... and the accounting, beside the last restores, in one transaction with the end of the load, which
            # waits for them (and rolls back if one fails)
            with c.transaction():
                for name, value in WAIT_SETTINGS.items():
                    c.execute("SELECT set_config(%s, %s, true)", (name, value))
                merge.account(c, run_id, lambda name, script: timed_step(
                    c, name, script, params, lambda *step: accounted.append(step)))
                restored()
                c.execute("DELETE FROM population.bulk_load WHERE run_id = %s", (run_id,))

        restore_objects([conn, *workers], dropped, statements,
                        prewarm=rebuilt + [i for i in merge.PREWARM_ALSO if i not in rebuilt], finale=finish)
        report("bulk load: restore", started, statements)
        for step in accounted if on_step is not None else ():
            on_step(*step)
    except BaseException:
        for worker, thread in zip(workers, threads, strict=False):  # (a slice still running is stopped first)
            if thread.is_alive():
                worker.cancel()
            thread.join()
        for worker in workers:
            try:
                worker.rollback()
            except psycopg.Error:
                log.warning("slice backend could not roll back (it will when its connection closes)")
        try:
            recover(conn)
        except psycopg.Error:
            log.exception("run %s: the partitioned load failed and could not be undone now; the next "
                          "reconciliation undoes it first (population.bulk_load)", run_id)
        raise
    finally:
        for worker in workers:
            worker.close()


def execute_all(conn, statements: list[str]) -> None:
    for statement in statements:
        conn.execute(statement)


# PostgreSQL's lock modes that the restores' statements take on a table, and which of them conflict (the server's
# conflict table, for these five): CREATE INDEX takes SHARE, ADD PRIMARY KEY / UNIQUE ACCESS EXCLUSIVE, ADD FOREIGN
# KEY and CREATE TRIGGER SHARE ROW EXCLUSIVE (a foreign key on the referenced table too), ANALYZE SHARE UPDATE
# EXCLUSIVE, a read ACCESS SHARE.
ACCESS_SHARE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE = (
    "AccessShare", "ShareUpdateExclusive", "Share", "ShareRowExclusive", "AccessExclusive")
LOCK_CONFLICTS = {
    ACCESS_SHARE: {ACCESS_EXCLUSIVE},
    SHARE_UPDATE_EXCLUSIVE: {SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE},
    SHARE: {SHARE_UPDATE_EXCLUSIVE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE},
    SHARE_ROW_EXCLUSIVE: {SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE},
    ACCESS_EXCLUSIVE: {ACCESS_SHARE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, ACCESS_EXCLUSIVE},
}
_REFERENCES = re.compile(r"\bREFERENCES\s+((?:\"[^\"]+\"|\w+)\.(?:\"[^\"]+\"|\w+))\s*\(")


@dataclass
class Task:
    """One task of the restores' queue (:func:`run_queue`): ``action(connection)``, the locks its statements take
    (table -> mode), and its ``phase``: the phase-1 tasks of a table (its indexes and keys, the cells for the
    persons) come before its phase-2 tasks (its foreign keys, triggers, statistics); ``table`` None in phase 2:
    after every phase-1 task."""

    label: str
    action: Callable[[psycopg.Connection], object]
    locks: dict[str, str]
    phase: int
    table: str | None
    size: int = 0


def restore_objects(connections: list[psycopg.Connection], dropped: list[tuple[str, str, list[str]]],
                    statements: list, prewarm: list[str] | tuple[str, ...] = (),
                    finale: Callable[[psycopg.Connection, Callable[[], None]], None] | None = None) -> None:
    """Restore the dropped objects of a committed load, count the cells afresh, analyse the filled tables and
    prewarm the rebuilt indexes (``prewarm``), the work shared by ``connections`` (in autocommit mode); then
    ``finale`` (the row accounting and the end of the load), on whichever connection is free first once every
    other task has started. Timed into ``statements``.

    Each connection takes the first task of the queue it may start (:func:`run_queue`): first the indexes and keys,
    the largest tables' first, and the cells; a table's foreign keys, triggers and statistics as soon as its own
    indexes and keys are built (not after every table's: with one phase waiting for the other, a connection idled
    for the longest build of the first — 1.3 s of 11.8 in a lab run at 1M), never beside a task whose lock on the
    same table conflicts with its own (it would only wait for it). A restore that fails (a duplicate key, a broken
    foreign key) stops the other connections' tasks and is raised; :func:`recover` then undoes the load."""
    tables = {(kind, obj): _table_of(kind, obj, texts) for kind, obj, texts in dropped}
    sizes = dict(connections[0].execute(
        "SELECT t, pg_relation_size(t::regclass) FROM unnest(%s::text[]) AS t", (sorted(set(tables.values())),),
    ).fetchall())
    first, then = [], []
    for kind, obj, texts in dropped:
        table = tables[kind, obj]
        label, action = f"restore {kind} {obj} (bulk load)", (lambda c, texts=texts: execute_all(c, texts))
        if kind in (merge.INDEX, merge.KEY):
            first.append(Task(label, action, {table: ACCESS_EXCLUSIVE if kind == merge.KEY else SHARE}, 1, table,
                              sizes[table]))
        else:  # foreign keys (on the referenced tables too), triggers
            locks = {table: SHARE_ROW_EXCLUSIVE}
            for text in texts:
                locks.update(dict.fromkeys(_REFERENCES.findall(text), SHARE_ROW_EXCLUSIVE))
            then.append(Task(label, action, locks, 2, table, sizes[table]))
    for table in (*merge.BULK_ANALYZE["population/50_statements.sql"], *merge.BULK_ANALYZE["survivorship.scd2_merge"]):
        then.append(Task(f"analyze {table} (bulk load)", lambda c, t=table: merge.analyze(c, t),
                         {table: SHARE_UPDATE_EXCLUSIVE}, 2, table))
    # (the cells need no index: counted beside the builds, the longest task first; part of the persons' first
    # phase, so that their triggers come back after them)
    cells = Task("count population.resident_cell afresh (bulk load)",
                 lambda c: c.execute("SELECT population.resident_cell_rebuild()").fetchone()[0],
                 {"population.person": ACCESS_SHARE, "population.resident_cell": ACCESS_EXCLUSIVE}, 1,
                 "population.person")
    tasks = [cells, *sorted(first, key=lambda t: -t.size), *sorted(then, key=lambda t: -t.size)]
    if prewarm:  # (reads every index it loads: after all are built)
        tasks.append(Task(f"pg_prewarm {', '.join(prewarm)}", lambda c: len(merge.prewarm(c, list(prewarm))),
                          dict.fromkeys(sizes, ACCESS_SHARE), 2, None))
    run_queue(connections, tasks, statements, finale)


class _Abandoned(Exception):
    """Raised in the finale when another task failed: its transaction rolls back; that failure is raised."""


def run_queue(connections: list[psycopg.Connection], tasks: list[Task], statements: list,
              finale: Callable[[psycopg.Connection, Callable[[], None]], None] | None = None) -> None:
    """Run ``tasks`` on whichever of ``connections`` is free (a thread for each but the first, which runs in this
    one): a free connection takes the first task, in the list's order, that may start — its table's phase-1 tasks
    done if it is of phase 2 (every phase-1 task, for one without a table), and no running task holding a lock on
    one of its tables that conflicts with its own — or waits for a running task to end. Then ``finale(connection,
    wait)``, on the first connection free once every other task has started and every phase-1 task is done (it
    may hold its reads until the end: no task left takes an ACCESS EXCLUSIVE lock); ``wait()`` returns when every
    other task is done, and raises if one failed. The first failure of a task cancels the other connections'
    statements and is raised once every thread has stopped; a failure of the finale waits for the other tasks to
    end first (every object restored that can be)."""
    pending = list(tasks)
    running: list[Task] = []
    failures: list[BaseException] = []
    state = {"finale": finale is None}  # taken?
    cond = threading.Condition()

    def may_start(task: Task) -> bool:
        if task.phase == 2 and any(t.phase == 1 and (task.table is None or t.table == task.table)
                                   for t in (*pending, *running)):
            return False
        return not any(LOCK_CONFLICTS[mode] & {r.locks.get(table)} for r in running
                       for table, mode in task.locks.items())

    def wait_for_others() -> None:
        with cond:
            while not failures and (pending or running):
                cond.wait()
            if failures:
                raise _Abandoned()

    def work(conn: psycopg.Connection) -> None:
        while True:
            with cond:
                while True:
                    if failures:
                        return
                    task = next((t for t in pending if may_start(t)), None)
                    if task is not None:
                        pending.remove(task)
                        running.append(task)
                        break
                    if not pending and not state["finale"] and not any(t.phase == 1 for t in running):
                        state["finale"] = True
                        break
                    if not pending and state["finale"]:
                        return
                    cond.wait()
            if task is None:  # the finale (_Abandoned: another task failed, and that failure is the one raised)
                try:
                    with contextlib.suppress(_Abandoned):
                        finale(conn, wait_for_others)
                except BaseException as exc:
                    with contextlib.suppress(_Abandoned):
                        wait_for_others()
                    with cond:
                        failures.append(exc)
                        cond.notify_all()
                return
            t0 = time.perf_counter()
            try:
                rows = task.action(conn)
            except BaseException as exc:
                with cond:
                    failures.append(exc)
                    running.remove(task)
                    cond.notify_all()
                for other in connections:
                    if other is not conn:
                        other.cancel()
                return
            statements.append((task.label, rows if isinstance(rows, int) else 0, time.perf_counter() - t0))
            with cond:
                running.remove(task)
                cond.notify_all()

    threads = [threading.Thread(target=work, args=(c,), name=f"restore-{i + 2}")
               for i, c in enumerate(connections[1:])]
    for thread in threads:
        thread.start()
    try:
        work(connections[0])
    finally:
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]


def _table_of(kind: str, obj: str, texts: list[str]) -> str:
    """The table a dropped object belongs to: named by the object (foreign keys), else by its restoring statement
    (``CREATE … INDEX name ON table``, ``ALTER TABLE table ADD CONSTRAINT``, ``CREATE TRIGGER … ON table``)."""
    if kind == merge.FOREIGN_KEYS:
        return obj
    if kind == merge.KEY:
        return texts[0].split()[2]
    return re.search(r" ON (?:ONLY )?(\S+) ", texts[0]).group(1)


def timed_step(conn, name: str, script, params: dict, on_step, label: str | None = None,
               after: Callable[[list], None] | None = None) -> None:
    """merge.run_step, its statements timed and reported to ``on_step`` as ``label`` (``after(statements)`` first,
    when given: more work of the step, recorded with it)."""
    started, statements = time.perf_counter(), []
    merge.run_step(conn, name, script, params, lambda s, n, t: statements.append((s, n, t)))
    if after is not None:
        after(statements)
    if on_step is not None:
        on_step(label or name, time.perf_counter() - started, statements)


# The main backend's slice, as a share of another's: it also analyses the statements. At 0.95, two lab runs at 1M
# (2026-12-05) took it 27.4 and 27.0 s against 26.0 and 25.7 s for the other. (When only it read its slice through
# views and the others were handed theirs as tables, a slice of the same size took it 10–17 % longer: three 1M
# runs, 2026-12-04, 31.2 s against 28.2 s, 57.2 against 49.0, 43.1 against 38.3; the weight was 0.89.)
MAIN_SLICE_WEIGHT = 0.9


def slice_bounds(conn, k: int) -> list[int]:
    """k + 1 person ids: slice i holds bounds[i] <= person_id < bounds[i + 1] (the run's new persons split in k
    ranges, the main backend's first one :data:`MAIN_SLICE_WEIGHT` of the others'; every candidate's person is one
    of them in an empty warehouse, and the outer bounds are open)."""
    (low, high) = conn.execute("SELECT min(person_id), max(person_id) FROM new_person").fetchone()
    return [-2**63, *inner_bounds(low or 0, high or 0, k), 2**63 - 1]


def inner_bounds(low: int, high: int, k: int, main_weight: float = MAIN_SLICE_WEIGHT) -> list[int]:
    """The k - 1 ids between k ranges of [low, high]: the first weighs ``main_weight``, every other 1."""
    total = main_weight + k - 1
    return [low + int((high - low + 1) * (main_weight + i - 1) / total) for i in range(1, k)]


def in_slice(bounds: list[int], i: int) -> sql.Composable:
    upper = sql.SQL("person_id < {}").format(sql.Literal(bounds[i + 1])) if i + 1 < len(bounds) - 1 else sql.SQL("true")
    return sql.SQL("person_id >= {} AND {}").format(sql.Literal(bounds[i]), upper)


def shared_tables(script: str) -> str:
    """A match step's script with its temporary tables made unlogged tables of :data:`WORK_SCHEMA` (not
    vacuumed or analysed by autovacuum meanwhile: the step analyses them)."""
    return _TEMP_TABLE.sub(
        lambda m: f"CREATE UNLOGGED TABLE {WORK_SCHEMA}.{m.group(1)} WITH (autovacuum_enabled = false)", script)


def drop_work_tables(conn) -> None:
    """Drop every table of :data:`WORK_SCHEMA`."""
    tables = [name for (name,) in conn.execute(
        "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables WHERE schemaname = %s", (WORK_SCHEMA,))]
    if tables:
        conn.execute(f"DROP TABLE {', '.join(tables)} CASCADE")


def table_columns(conn, schema: str, table: str) -> list[str]:
    """The columns of ``schema.table``, in order."""
    return [name for (name,) in conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped ORDER BY a.attnum",
        (sql.Identifier(schema, table).as_string(conn),)).fetchall()]


def id_ranges(conn, bounds: list[int]) -> list[tuple[str, str] | None]:
    """Per slice, the least and the greatest ID number (bytewise) of its new persons; None for a slice without
    any. A slice's candidates are joined to its persons by ID: this range lets the join probe only the candidates
    that can be theirs (about 2 µs a candidate, every candidate once per slice read otherwise). Measured, not
    assumed from the order the ids were drawn in: were that order not the ID numbers', ranges would overlap —
    more probes, no candidate lost."""
    # (width_bucket: how many of the inner bounds are <= person_id — its slice's number)
    slice_of = sql.SQL("width_bucket(person_id, {}::bigint[])").format(sql.Literal(bounds[1:-1]))
    found = {i: (low, high) for i, low, high in conn.execute(sql.SQL(
        'SELECT {} AS i, min(id_number COLLATE "C"), max(id_number COLLATE "C") FROM new_person GROUP BY 1'
    ).format(slice_of)).fetchall()}
    return [found.get(i) for i in range(len(bounds) - 1)]


def slice_rows(conn, table: str, bounds: list[int], i: int, ids: list[tuple[str, str] | None],
               schema: str = WORK_SCHEMA) -> sql.Composable:
    """The query of slice i's rows of the match's table ``schema.table``: a slice of ``new_person``'s; of the
    candidates, those of its new persons — each with its person, joined on the ID (in an empty warehouse every
    candidate with a usable ID is its ID's new person's; ``ids``: :func:`id_ranges`) — and those matched on
    evidence (their person written by 40_match_by_evidence); ``run_key`` whole."""
    if table == "candidate":  # (one scan for both kinds: the ID's range, or no ID)
        own = [name for name in table_columns(conn, schema, table) if name not in ("person_id", "match_method")]
        return sql.SQL(
            "SELECT * FROM (SELECT {columns}, coalesce(n.person_id, c.person_id) AS person_id,"
            " CASE WHEN n.person_id IS NOT NULL THEN 'new' ELSE c.match_method END AS match_method"
            " FROM {candidate} c"
            " LEFT JOIN (SELECT person_id, id_type, id_number FROM {new_person} WHERE {where}) n"
            " ON n.id_type = c.id_type AND n.id_number = c.id_number"
            ' WHERE c.id_number COLLATE "C" BETWEEN {low} AND {high} OR c.id_number IS NULL) c WHERE {where}').format(
            columns=sql.SQL(", ").join(sql.Identifier("c", name) for name in own),
            candidate=sql.Identifier(schema, "candidate"), new_person=sql.Identifier(schema, "new_person"),
            where=in_slice(bounds, i), low=sql.Literal(ids[i][0] if ids[i] else None),
            high=sql.Literal(ids[i][1] if ids[i] else None))
    where = in_slice(bounds, i) if table in SLICED else sql.SQL("true")
    return sql.SQL("SELECT * FROM {} WHERE {}").format(sql.Identifier(schema, table), where)


def slice_views(conn, bounds: list[int], i: int, ids: list[tuple[str, str] | None]) -> None:
    """Slice i of the match's tables for the later steps, which read each once or a few times: a temporary view
    (:func:`slice_rows`) under each table's name, in ``conn``'s transaction (rewriting the rows into tables of the
    slice cost more than filtering them on every read). Dropped at the slice's end (:func:`reconcile_slice`)."""
    for table in SLICED + WHOLE:
        conn.execute(sql.SQL("CREATE TEMP VIEW {} AS {}").format(
            sql.Identifier(table), slice_rows(conn, table, bounds, i, ids)))


def reconcile_slice(conn, authorities, params: dict, i: int, k: int, main: bool, on_step,
                    failures: list[BaseException]) -> None:
    """Statements, survivorship, SCD2 merge and discrepancies of one slice, in ``conn``'s open transaction."""

    def analyze_statements(statements: list) -> None:  # (the main backend only: see the module's docstring, 4.)
        for table in merge.BULK_ANALYZE["population/50_statements.sql"]:
            t0 = time.perf_counter()
            merge.analyze(conn, table)
            statements.append((f"analyze {table} (bulk load)", 0, time.perf_counter() - t0))

    try:
        for name, script in (("population/50_statements.sql", sql_file("population/50_statements.sql")),
                             ("survivorship.golden_query", survivorship.golden_query(authorities, every_person=True,
                                                                                   own_statements=True)),
                             ("survivorship.scd2_merge", survivorship.scd2_merge()),
                             ("survivorship.discrepancy_query",
                              survivorship.discrepancy_query(authorities, every_person=True, own_statements=True))):
            timed_step(conn, name, script, params, on_step,
                       label=None if main else f"slice {i + 1}/{k}: {name}",
                       after=analyze_statements if main and name == "population/50_statements.sql" else None)
        conn.execute(sql.SQL("DROP VIEW {}").format(sql.SQL(", ").join(map(sql.Identifier, SLICED + WHOLE))))
    except BaseException as exc:  # (re-raised by the main thread)
        failures.append(exc)
