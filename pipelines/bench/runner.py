"""The benchmark's phases: fresh databases, simulated departments, the pipeline's stages day by day, the COPY
reference. Every stage calls the same functions as the DAG's tasks (``pipelines.population.flow``), with the
benchmark's own databases, landing folder, API and reports passed explicitly, so nothing touches the demo's.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
from psycopg import sql
from sqlalchemy import URL

from pipelines.bench.measure import Sampler, Stage, io_between, io_mark, measured, postmaster_process
from pipelines.warehouse import connect


# Share of day 1's source rows in day 0's at the simulator's default ChangeRates (measured: 311 / 40,244 rows at
# 20,000 persons, 15.6k / 2.0M at 1,000,000): the increment's rates are the defaults scaled by share / this.
DEFAULT_DAY1_ROW_SHARE = 0.0077

# Per run: extract (one step per source) + validate + reconcile + quality gate + finish + publish.
STAGES_PER_RUN_FIXED = 5


def publish_available() -> bool:
    """pipelines.publish (issue 3) with the steps the publish_population DAG calls."""
    try:
        return importlib.util.find_spec("pipelines.publish.dag_steps") is not None
    except ImportError:
        return False


@dataclass
class Paths:
    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def api(self) -> Path:
        return self.root / "api"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def copy_file(self) -> Path:
        return self.root / "copy_reference.tsv"


@dataclass
class RunResult:
    label: str
    day: int
    run_id: int
    stages: list[Stage]
    received: int
    accounting: dict[str, dict[str, int]]
    extract_received: dict[str, int]
    staged: int
    gate_passed: bool | None
    golden_rows: int
    history_rows: int
    database_bytes: int
    status: str

    @property
    def top(self) -> list[Stage]:
        return [s for s in self.stages if s.parent is None]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name and s.parent is None), None)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.top)

    @property
    def daily_seconds(self) -> float:
        """The population_daily DAG's stages (extract to finish): everything but publication, which the
        publish_population DAG does afterwards, per dataset."""
        return sum(s.seconds for s in self.top if s.name != "publish")

    @property
    def accounting_consistent(self) -> bool:
        sums = {k: sum(a[k] for a in self.accounting.values()) for k in ("received", "merged", "quarantined",
                                                                          "duplicates")}
        return (
            sums["received"] == self.received == self.staged == sum(self.extract_received.values())
            and sums["received"] == sums["merged"] + sums["quarantined"] + sums["duplicates"]
            and set(self.accounting) == set(self.extract_received)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "day": self.day, "run_id": self.run_id, "seconds": round(self.seconds, 3),
            "received": self.received, "staged": self.staged, "accounting": self.accounting,
            "extract_received": self.extract_received, "accounting_consistent": self.accounting_consistent,
            "gate_passed": self.gate_passed, "golden_rows": self.golden_rows, "history_rows": self.history_rows,
            "database_bytes": self.database_bytes, "status": self.status,
            "stages": [s.as_dict() for s in self.stages],
        }


# The typed COPY (the reference of the ratios) is timed this many times, the median taken: on a shared machine one
# COPY took anywhere from 13.6 to 29.4 s within a day, and one reading made a run's ratio a matter of luck.
COPY_REPEATS = 3


@dataclass
class CopyResult:
    rows: int
    file_bytes: int
    export_seconds: float
    typed: Stage  # the median of the typed repeats
    text: Stage
    typed_seconds: list[float] = field(default_factory=list)  # every typed repeat, in the order they ran

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "file_bytes": self.file_bytes, "export_seconds": round(self.export_seconds, 3),
                "typed": self.typed.as_dict(), "text": self.text.as_dict(),
                "typed_seconds": [round(x, 3) for x in self.typed_seconds]}


@dataclass
class BaseResult:
    persons: int
    role: str                      # "main" (N) or "second" (the other base size)
    change_scale: float            # ChangeRates multiplier of day 1
    simulate_seconds: float
    sim_rows: dict[int, int]       # rows the departments wrote, per day
    sim_events: dict[int, dict[str, int]]
    sim_unreadable: dict[int, int] = field(default_factory=dict)  # rows inside files that cannot be parsed at all
    full: RunResult | None = None
    increment: RunResult | None = None
    copy: CopyResult | None = None
    maintenance_seconds: float | None = None
    databases: dict[str, str] = field(default_factory=dict)
    wal: dict[str, Any] | None = None  # reserve_wal's figures, and the WAL bytes each run wrote
    buffers: dict[str, Any] | None = None  # fill_buffers' figures

    @property
    def increment_share(self) -> float | None:
        if not self.sim_rows.get(0):
            return None
        return self.sim_rows.get(1, 0) / self.sim_rows[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "persons": self.persons, "role": self.role, "change_scale": self.change_scale,
            "simulate_seconds": round(self.simulate_seconds, 3), "sim_rows": self.sim_rows,
            "sim_events": self.sim_events, "sim_unreadable": self.sim_unreadable,
            "increment_share": self.increment_share,
            "full": self.full.as_dict() if self.full else None,
            "increment": self.increment.as_dict() if self.increment else None,
            "copy": self.copy.as_dict() if self.copy else None,
            "maintenance_seconds": self.maintenance_seconds, "databases": self.databases, "wal": self.wal,
            "buffers": self.buffers,
        }


# --- databases and simulated departments -----------------------------------------------------------------------


def recreate_database(admin: URL, name: str) -> None:
    with connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin: URL, name: str) -> None:
    with connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def scaled_changes(scale: float):
    from dataclasses import fields

    from pipelines.simulate import ChangeRates

    base = ChangeRates()
    return ChangeRates(**{f.name: getattr(base, f.name) * scale for f in fields(ChangeRates)})


def _generate(kwargs: dict) -> dict:
    """In a child process (spawn), so the simulator's memory never counts against the pipeline's peak."""
    from pipelines import simulate

    manifest = simulate.generate(**kwargs)
    return {
        "rows": {d: sum(s["rows"] for s in e["sources"].values()) for d, e in manifest.days.items()},
        "unreadable": {d: sum(s["rows_unreadable"] for s in e["sources"].values()) for d, e in manifest.days.items()},
        "events": {d: dict(e["events"]) for d, e in manifest.days.items()},
    }


def simulate_departments(persons: int, seed: int, start: date, paths: Paths, frontdb: URL, scale: float) -> dict:
    kwargs = dict(persons=persons, days=1, seed=seed, start=start, landing_dir=paths.landing, api_dir=paths.api,
                  frontdb_url=frontdb, changes=scaled_changes(scale))
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_generate, kwargs).result()


# --- one run of the pipeline (one data interval), stage by stage ----------------------------------------------------


@dataclass
class Context:
    url: URL
    frontdb: URL
    api_url: str
    paths: Paths
    sampler: Sampler
    tick: Callable[[str], None]
    note: Callable[[str], None] = print
    extract_workers: int = 1
    explain_increment: bool = False

    def done(self, label: str, stage: Stage) -> None:
        rows = f", {stage.rows:,} {stage.rows_label}" if stage.rows is not None else ""
        self.note(f"{label}: {stage.name} {stage.seconds:,.1f} s{rows}")


def timed_task(fn: Callable, *args, **kwargs) -> dict:
    """``fn(*args, **kwargs)`` in a worker process, as one mapped task of a DAG runs (an extract per source, a
    prepare per dataset): its result, seconds, CPU seconds (user + system), peak RSS and process id."""
    import os

    from pipelines.bench.measure import process_cpu_seconds, ru_maxrss_bytes

    t0, c0 = time.perf_counter(), process_cpu_seconds(children=False)
    result = fn(*args, **kwargs)
    return {"result": result, "seconds": time.perf_counter() - t0, "cpu": process_cpu_seconds(children=False) - c0,
            "maxrss": ru_maxrss_bytes(), "pid": os.getpid()}


# auto_explain for one stage's connections (--explain-increment): the settings reach the reconciliation's session
# through PGOPTIONS (libpq), set in this process for the stage only; the plans go to the server's log, which for the
# project's own cluster is .local/pg/postgresql.log, and the part of it the stage wrote is copied to
# <work-dir>/increment-plans-<N>.log.
AUTO_EXPLAIN = ("-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=100"
                " -c auto_explain.log_analyze=on -c auto_explain.log_buffers=on -c auto_explain.log_timing=off"
                " -c auto_explain.log_nested_statements=on")


@contextmanager
def explained(ctx: Context, on: bool) -> Iterator[dict]:
    """While on: the sessions this process opens log their plans (AUTO_EXPLAIN); yields a dict whose "file" is set
    on exit to the file the plans were copied to (None when the server's log is not readable here)."""
    import os

    from pipelines.settings import settings

    out: dict = {}
    if not on:
        yield out
        return
    log = settings.local_dir / "pg" / "postgresql.log"
    start = log.stat().st_size if log.exists() else None
    previous = os.environ.get("PGOPTIONS")
    os.environ["PGOPTIONS"] = f"{previous or ''} {AUTO_EXPLAIN}".strip()
    try:
        yield out
    finally:
        if previous is None:
            os.environ.pop("PGOPTIONS", None)
        else:
            os.environ["PGOPTIONS"] = previous
        if start is not None:
            target = ctx.paths.root.parent / f"increment-plans-{ctx.paths.root.name}.log"  # (kept with the JSON)
            with open(log, "rb") as src, open(target, "wb") as dst:
                src.seek(start)
                shutil.copyfileobj(src, dst)
            out["file"] = str(target)


def run_day(ctx: Context, day: date, index: int, label: str) -> RunResult:
    """The stages of ``flow`` for the interval of ``day``, each measured: extract (per source), validate,
    reconcile (per SQL step), quality gate, publish."""
    from pipelines.population import flow
    from pipelines.population.validate import validate_run
    from pipelines.quality.gate import run_gate, scope_filter
    from pipelines.quality.suites import load_suites
    from pipelines.reconcile.merge import reconcile_run
    from pipelines.registry import extract_order, load_sources
    from pipelines.runs import close_run, day_interval, open_run
    from pipelines.sources import stage_source

    start, end = day_interval(day)
    run_id = open_run("population", start, end, "bench", None, url=ctx.url)
    stages: list[Stage] = []
    sampler = ctx.sampler

    sources = load_sources()
    with measured(sampler, "extract", stages) as extract:
        received = 0
        if ctx.extract_workers <= 1:  # one after the other, in this process
            for src in sources:
                with measured(sampler, src.id, stages, parent="extract") as sub:
                    r = stage_source(src.id, run_id, start, end, ctx.url, landing_dir=ctx.paths.landing,
                                     api_url=ctx.api_url, frontdb_url=ctx.frontdb)
                    sub.rows, sub.rows_label = r["received"], "received"
                    sub.detail = {"kind": src.kind, "files": r["files"], "quarantined_files": r["quarantined_files"]}
                received += r["received"]
                ctx.tick(f"{label}: extract {src.id}")
        else:  # as the DAG's mapped extract tasks run: one process per task, ctx.extract_workers at a time
            with ProcessPoolExecutor(max_workers=ctx.extract_workers,
                                     mp_context=multiprocessing.get_context("spawn")) as pool:
                # (started heaviest first, as the DAG's mapped tasks are queued: flow.source_ids)
                futures = {pool.submit(timed_task, stage_source, src.id, run_id, start, end, ctx.url,
                                       landing_dir=ctx.paths.landing, api_url=ctx.api_url,
                                       frontdb_url=ctx.frontdb): src.id for src in extract_order(sources)}
                done: dict[str, dict] = {}
                for future in as_completed(futures):
                    done[futures[future]] = future.result()
                    ctx.tick(f"{label}: extract {futures[future]}")
            for src in sources:
                d = done[src.id]
                r = d["result"]
                stages.append(Stage(src.id, d["seconds"], r["received"], "received", python_peak=d["maxrss"],
                                    python_cpu=d["cpu"],
                                    parent="extract", detail={"kind": src.kind, "files": r["files"],
                                                              "quarantined_files": r["quarantined_files"],
                                                              "process": d["pid"]}))
                received += r["received"]
        extract.rows, extract.rows_label = received, "received"
        extract.detail = {"workers": ctx.extract_workers}
    ctx.done(label, extract)

    parts: list[tuple[str, float]] = []
    with measured(sampler, "validate", stages) as validate:
        v = validate_run(run_id, end.date(), ctx.url, on_step=lambda n, s: parts.append((n, s)))
        validate.rows, validate.rows_label, validate.detail = v["checked"], "checked", dict(v)
    stages.extend(Stage(n, s, parent="validate") for n, s in parts)
    ctx.done(label, validate)
    ctx.tick(f"{label}: validate")

    steps: list[tuple[str, float, list]] = []
    with connect(ctx.url) as conn:
        io_before = io_mark(conn)
    explain = ctx.explain_increment and index > 0
    with measured(sampler, "reconcile", stages) as reconcile, explained(ctx, explain) as plans:
        accounting = reconcile_run(run_id, ctx.url, on_step=lambda n, s, st: steps.append((n, s, st)))
        reconcile.rows, reconcile.rows_label = received, "received"
        reconcile.detail = {"merged": sum(a["merged"] for a in accounting.values())}
    time.sleep(0.5)  # (the reconciliation's backend reports its counters when it goes idle or exits)
    with connect(ctx.url) as conn:
        reconcile.detail["io"] = io_between(io_before, io_mark(conn))
    if explain:
        reconcile.detail["plans"] = plans.get("file")
        ctx.note(f"{label}: plans of the reconciliation in {plans.get('file') or '(no server log found)'}")
    ctx.done(label, reconcile)
    for name, seconds, statements in steps:
        stages.append(Stage(name, seconds, parent="reconcile", detail={
            "statements": [{"sql": " ".join(text.split())[:160], "rows": n, "seconds": round(t, 3)}
                           for text, n, t in statements]}))
    ctx.tick(f"{label}: reconcile")

    with measured(sampler, "quality gate", stages) as gate:
        result = run_gate(run_id, url=ctx.url, reports_dir=ctx.paths.reports)
    with connect(ctx.url) as conn:
        golden = conn.execute("SELECT count(*) FROM population.person").fetchone()[0]
        scopes = {s.suite: s.scope for s in result.suites}
        validated = golden if scopes.get("population.person") != "run" else conn.execute(
            sql.SQL("SELECT count(*) FROM population.person WHERE {}").format(
                scope_filter(load_suites(["population.person"])[0], run_id))).fetchone()[0]
    gate.rows, gate.rows_label = validated, "persons validated"
    gate.detail = {"passed": result.passed, "blocking_failures": [f.expectation for f in result.blocking_failures],
                   "warnings": [f.expectation for f in result.warnings],
                   "gate_seconds": result.seconds, "scopes": scopes}
    stages.extend(Stage(f"{s.suite} (scope {s.scope})", s.seconds, parent="quality gate") for s in result.suites)
    ctx.done(label, gate)
    ctx.tick(f"{label}: quality gate")

    status = "success" if result.passed else "blocked"
    if result.passed:  # the DAG's publish_golden task: close the run, summary and department reports
        with measured(sampler, "finish", stages) as finish:
            summary = flow.finish(run_id)
            finish.rows, finish.rows_label = received, "received"
            finish.detail = {"department_reports": len(summary["department_reports"])}
        ctx.done(label, finish)
    else:
        close_run(run_id, status, url=ctx.url)
        stages.append(Stage("finish", 0.0, detail={"status": "not run: the gate blocked the run"}))
    ctx.tick(f"{label}: finish")

    if not publish_available():
        stages.append(Stage("publish", 0.0, detail={"status": "not yet available (pipelines.publish, issue 3)"}))
    elif not result.passed:
        stages.append(Stage("publish", 0.0, detail={"status": "not run: the gate blocked the run"}))
    else:
        publish_steps: list[Stage] = []
        with measured(sampler, "publish", stages) as publish:
            publish.detail = run_publish(run_id, publish_steps, ctx.extract_workers)
            publish.rows, publish.rows_label = golden, "golden persons"
        stages.extend(publish_steps)
        ctx.done(label, publish)
    ctx.tick(f"{label}: publish")

    with connect(ctx.url) as conn:
        acc_rows = conn.execute(
            "SELECT source_id, received, merged, quarantined, duplicates FROM audit.row_accounting WHERE run_id = %s",
            (run_id,)).fetchall()
        extracted = dict(conn.execute(
            "SELECT source_id, received FROM audit.extract WHERE run_id = %s", (run_id,)).fetchall())
        staged = conn.execute("SELECT count(*) FROM staging.population_record WHERE run_id = %s",
                              (run_id,)).fetchone()[0]
        history = conn.execute("SELECT count(*) FROM population.person_history").fetchone()[0]
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    acc = {r[0]: {"received": r[1], "merged": r[2], "quarantined": r[3], "duplicates": r[4]} for r in acc_rows}
    return RunResult(label, index, run_id, stages, received, acc, extracted, staged, result.passed, golden, history,
                     size, status)


def run_publish(run_id: int, stages: list[Stage], workers: int = 1) -> dict:
    """Publication (pipelines.publish): what the publish_population DAG's tasks call when the population Asset is
    updated — prepare a release of every dataset (build, privacy review, files: one mapped task per dataset,
    ``workers`` at a time in their own processes as under a parallel executor), then publish the ones approved
    automatically. Releases that wait for a person (有条件开放, or a review warning) are counted, not approved."""
    from pipelines.publish import dag_steps
    from pipelines.publish import flow as publish_flow

    codes = dag_steps.dataset_codes([run_id])  # the datasets due (a monthly one not again the next day)
    done: dict[str, dict] = {}
    if workers <= 1:
        for code in codes:
            t0 = time.perf_counter()
            done[code] = {"result": publish_flow.prepare_release(code, [run_id]),
                          "seconds": time.perf_counter() - t0, "cpu": None, "maxrss": None, "pid": None}
    else:
        # the longest first (the record-level sample), so that the others fill the second worker meanwhile
        order = sorted(codes, key=lambda c: not c.endswith("_sample"))
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(timed_task, publish_flow.prepare_release, code, [run_id]): code
                       for code in order}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
    prepared = []
    for code in codes:
        d = done[code]
        release = d["result"]
        stages.append(Stage(f"prepare {code}", d["seconds"], release.get("row_count"), "rows", parent="publish",
                            python_peak=d["maxrss"], python_cpu=d["cpu"],
                            detail={"status": release["status"], "process": d["pid"]}))
        prepared.append(release)
    t0 = time.perf_counter()
    published = dag_steps.publish_auto_approved(prepared)
    stages.append(Stage("publish approved releases", time.perf_counter() - t0, len(published), "releases",
                        parent="publish"))
    return {"releases": len(prepared), "published": published,
            "awaiting_approval": [p["dataset_code"] for p in dag_steps.pending(prepared)],
            "statuses": {p["dataset_code"]: p["status"] for p in prepared}}


# --- the physical reference ----------------------------------------------------------------------------------------


def copy_reference(ctx: Context, run_id: int, columns: list[str]) -> CopyResult:
    """COPY the run's staged rows (the columns a source adapter writes) out to a file, then time a plain COPY of
    that file into an empty table: once with staging's column types (jsonb payload, timestamptz, bigint), once with
    every column text. Plain (logged) heap tables, no key, index, default or constraint; the COPY is one
    transaction, committed; the client streams the file in 1 MiB blocks."""
    path = ctx.paths.copy_file
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    t0 = time.perf_counter()
    with connect(ctx.url) as conn, path.open("wb") as fh:
        with conn.cursor() as cur, cur.copy(sql.SQL(
                "COPY (SELECT {} FROM staging.population_record WHERE run_id = {} ORDER BY source_id, seq) TO STDOUT"
        ).format(cols, sql.Literal(run_id))) as cp:
            for block in cp:
                fh.write(block)
    export_seconds = time.perf_counter() - t0
    with connect(ctx.url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM staging.population_record WHERE run_id = %s", (run_id,)).fetchone()[0]
        conn.execute("DROP SCHEMA IF EXISTS bench_reference CASCADE")
        conn.execute("CREATE SCHEMA bench_reference")
        conn.execute(sql.SQL("CREATE TABLE bench_reference.typed AS SELECT {} FROM staging.population_record "
                             "WITH NO DATA").format(cols))
        conn.execute(sql.SQL("CREATE TABLE bench_reference.text ({})").format(
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in columns)))
    results: dict[str, list[Stage]] = {"typed": [], "text": []}
    for table in ["typed"] * COPY_REPEATS + ["text"]:
        with connect(ctx.url, autocommit=True) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("bench_reference", table)))  # empty again
            conn.execute("CHECKPOINT")
        holder: list[Stage] = []
        with measured(ctx.sampler, f"COPY ({table})", holder) as st, connect(ctx.url) as conn:
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier("bench_reference", table), cols)) as cp, path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    cp.write(block)
            st.rows, st.rows_label = rows, "rows"
        results[table].append(holder[0])
        ctx.done("COPY reference", holder[0])
    size = path.stat().st_size
    with connect(ctx.url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA bench_reference CASCADE")
    path.unlink()
    ctx.tick("COPY reference")
    typed = sorted(results["typed"], key=lambda st: st.seconds)
    return CopyResult(rows, size, export_seconds, typed[len(typed) // 2], results["text"][0],
                      [st.seconds for st in results["typed"]])


def maintenance(url: URL) -> float:
    """What autovacuum would have done between two nightly runs: VACUUM ANALYZE (timed, reported apart)."""
    t0 = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - t0


def checkpoint(url: URL) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def wal_lsn(url: URL) -> int:
    """The server's WAL insert position, in bytes."""
    with connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])


# WAL a full load writes per resident (4,310 MB at 1,000,000 residents, 2026-12-06, AMD machine): what reserve_wal
# makes ahead of the full load
WAL_PER_PERSON = 4_400

# The WAL segments a server keeps for reuse (min_wal_size): the WAL files ahead of the one being written.
_WAL_AHEAD = """
    SELECT pg_size_bytes(current_setting('min_wal_size')), pg_size_bytes(current_setting('wal_segment_size')),
           count(*) FILTER (WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_lsn()))
    FROM pg_ls_waldir()"""


def reserve_wal(url: URL, need: int) -> dict[str, Any] | None:
    """Make the WAL segments a load writing ``need`` bytes of WAL will use, up to those the server keeps for reuse
    (``min_wal_size``), if it does not hold them yet, as a server that has run a nightly load holds them (timed,
    reported apart, not counted in any run).

    A new WAL segment is written whole with zeros and synced before the first record goes into it (PostgreSQL's
    ``wal_init_zero``), by the backend or WAL writer that needs it, holding the WAL write lock; a recycled one is
    renamed. On a new cluster every segment of the first full load is new: 1.55 GB of WAL written by one INSERT took
    10.4 s into new segments and 5.1-5.2 s into recycled ones (docs/scaling.md), so the first benchmark after
    ``make setup`` measured the cluster's age as much as the pipeline. The segments are made here by WAL switches
    after a record each (through the segments held first, which a switch reuses), and the CHECKPOINT after them
    recycles them all ahead of the current one (up to min_wal_size, scripts/pg.sh). None where the role may not list
    or switch the WAL (a server of its own, not a superuser)."""
    with connect(url, autocommit=True) as conn:
        try:
            keep, segment, ahead = conn.execute(_WAL_AHEAD).fetchone()
            missing = max(-(-min(need, keep) // segment) - ahead, 0)
            t0 = time.perf_counter()
            for _ in range(ahead + missing if missing else 0):  # (through the held ones first: a switch uses them)
                conn.execute("SELECT pg_logical_emit_message(false, 'pipelines.bench', '')")
                conn.execute("SELECT pg_switch_wal()")
            if missing:
                conn.execute("CHECKPOINT")
            seconds = time.perf_counter() - t0
            _, _, held = conn.execute(_WAL_AHEAD).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return None
    return {"made": missing, "seconds": seconds, "segments": held, "bytes": held * segment, "min_bytes": keep}


# Shared buffers a full load takes per resident (a 1M full load: the server's shared memory in use, /proc/meminfo
# Shmem, grew by 4.8 GB; 2026-12-06, AMD machine): what fill_buffers fills ahead of the full load
BUFFERS_PER_PERSON = 4_800
BUFFERS_MARKER = ".buffers-filled.json"  # in the work directory: how far fill_buffers filled, per server start
# fill_buffers fills at most this share of shared_buffers (the rest: catalogs and whatever the server holds)
FILL_SHARE = 0.9


def fill_buffers(url: URL, need: int, marker: Path) -> dict[str, Any] | None:
    """Have the server's buffer pool used, up to ``need`` bytes (at most :data:`FILL_SHARE` of shared_buffers), once
    after each start of the server, as the buffers of a server that has run a nightly load have been (timed,
    reported apart, not counted in any run; ``marker`` records, per server start, how far it was filled).

    The shared buffers are shared memory the kernel gives a page at a time, zeroed, on its first touch, which on
    these virtual machines costs about 3 µs of kernel time per 4 kB page (4 GB: 3.8 s), twice that where the
    host has taken the memory back (docs/scaling.md); a server touches each once in its life. The first benchmark
    after a server starts (the newcomer's, after ``make setup``) touched some 4.8 GB of them in its timed full load:
    its extract's PostgreSQL CPU was 23.5 s against 17.2-18.8 s in the runs after it and 17.7 s after this fill
    (2026-12-06, AMD machine); the COPY reference, measured last, never paid it. The buffers are used by writing
    an unlogged table of one row a page and dropping it: a dropped table's buffers go back to the head of the free
    list, where the load takes them first. None where the role may not create a table."""
    with connect(url, autocommit=True) as conn:
        block, buffers, server = conn.execute(
            "SELECT current_setting('block_size')::int, (SELECT setting::bigint FROM pg_settings"
            " WHERE name = 'shared_buffers'), concat_ws(' ', inet_server_addr(), inet_server_port(),"
            " pg_postmaster_start_time())").fetchone()
        pages = min(-(-need // block), int(buffers * FILL_SHARE))
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            done = {}
        filled = done.get("pages", 0) if isinstance(done, dict) and done.get("server") == server else 0
        figures = {"filled": 0, "filled_bytes": 0, "seconds": 0.0, "pages": filled, "bytes": filled * block,
                   "shared_buffers_bytes": buffers * block}
        if pages <= filled:
            return figures
        t0 = time.perf_counter()
        try:
            conn.execute("CREATE UNLOGGED TABLE bench_buffer_fill (v text) WITH (autovacuum_enabled = false)")
        except psycopg.errors.InsufficientPrivilege:
            return None
        try:  # (a row of almost a page, kept in it uncompressed: one page each)
            conn.execute("ALTER TABLE bench_buffer_fill ALTER COLUMN v SET STORAGE PLAIN")
            conn.execute("INSERT INTO bench_buffer_fill SELECT repeat('x', %s) FROM generate_series(1, %s)",
                         (block - 200, pages))
        finally:
            conn.execute("DROP TABLE bench_buffer_fill")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"server": server, "pages": pages}))
    return {**figures, "filled": pages - filled, "filled_bytes": (pages - filled) * block,
            "seconds": time.perf_counter() - t0, "pages": pages, "bytes": pages * block}


# --- one base size: simulate, full load, increment, COPY ------------------------------------------------------------


def bench_base(persons: int, role: str, *, seed: int, start: date, scale: float, root: Path,
               sampler_interval: float, tick: Callable[[str], None], with_copy: bool,
               vacuum_between: bool, note: Callable[[str], None] = print, extract_workers: int = 1,
               explain_increment: bool = False) -> BaseResult:
    """Run in the benchmark's worker process, whose environment names the benchmark's own databases, landing
    folder, API and reports (see pipelines.bench.worker): everything, including code that reads ``settings``,
    works on those."""
    from pipelines.settings import settings
    from pipelines.simulate.api import start_in_thread
    from pipelines.sources.records import COPY_COLUMNS
    from pipelines.warehouse import migrate

    url, frontdb = settings.warehouse_url, settings.frontdb_url
    paths = Paths(root)
    if settings.landing_dir != paths.landing or settings.sim_api_dir != paths.api:
        raise RuntimeError("bench_base runs in the worker process, with LANDING_DIR and SIM_API_DIR under its root")
    admin = url.set(database="postgres")
    shutil.rmtree(paths.root, ignore_errors=True)
    paths.root.mkdir(parents=True)
    recreate_database(admin, url.database)
    recreate_database(admin, frontdb.database)
    migrate(url)

    t0 = time.perf_counter()
    sim = simulate_departments(persons, seed, start, paths, frontdb, scale)
    result = BaseResult(persons, role, scale, time.perf_counter() - t0, sim["rows"], sim["events"],
                        sim["unreadable"], databases={"warehouse": url.database, "frontdb": frontdb.database})
    tick(f"{persons:,}: simulate")
    note(f"{persons:,}: simulated {sim['rows'].get(0, 0):,} + {sim['rows'].get(1, 0):,} rows in "
         f"{result.simulate_seconds:,.1f} s")

    with connect(url) as conn:
        postmaster = postmaster_process(conn)
    sampler = Sampler(postmaster, sampler_interval).start()
    stop_api = start_in_thread(settings.sim_api_url, paths.api)
    try:
        ctx = Context(url, frontdb, stop_api.url, paths, sampler, tick, note, extract_workers, explain_increment)
        result.wal = reserve_wal(url, WAL_PER_PERSON * persons)
        if result.wal is not None and result.wal["made"]:
            note(f"{persons:,}: made {result.wal['made']} WAL segments ahead (min_wal_size) in "
                 f"{result.wal['seconds']:,.1f} s")
        result.buffers = fill_buffers(url, BUFFERS_PER_PERSON * persons, paths.root.parent / BUFFERS_MARKER)
        if result.buffers is not None and result.buffers["filled"]:
            note(f"{persons:,}: used {result.buffers['filled_bytes'] / 2**20:,.0f} MiB of shared buffers ahead in "
                 f"{result.buffers['seconds']:,.1f} s")
        checkpoint(url)
        lsn = wal_lsn(url)
        result.full = run_day(ctx, start, 0, f"{persons:,} full load")
        wal_written = {"full_load_bytes": wal_lsn(url) - lsn}
        if vacuum_between:
            result.maintenance_seconds = maintenance(url)
            note(f"{persons:,}: VACUUM (ANALYZE) {result.maintenance_seconds:,.1f} s")
        checkpoint(url)
        lsn = wal_lsn(url)
        result.increment = run_day(ctx, start + timedelta(days=1), 1, f"{persons:,} increment")
        wal_written["increment_bytes"] = wal_lsn(url) - lsn
        result.wal = {**(result.wal or {}), **wal_written}
        # The reference comes last: its file and two tables (three times the staged rows' size, 15 GB at 4M) would
        # otherwise push the warehouse out of the page cache between the two runs, which no nightly run meets.
        if with_copy:
            result.copy = copy_reference(ctx, result.full.run_id, COPY_COLUMNS)
    finally:
        stop_api()
        sampler.stop()
    return result
