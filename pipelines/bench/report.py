"""The benchmark's report: the machine, the figures per stage, the ratios to COPY, the targets; as a console table
and as BENCHMARKS.md (the hand-written part of an existing file, between the KEEP markers, is carried over)."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import URL

from pipelines.bench.measure import MB, Stage
from pipelines.bench.runner import BaseResult, RunResult
from pipelines.warehouse import connect

KEEP_BEGIN = "<!-- BEGIN hand-written: kept as is when `python -m pipelines bench` rewrites this file -->"
KEEP_END = "<!-- END hand-written -->"

PG_SETTINGS = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size", "min_wal_size",
               "wal_writer_delay", "synchronous_commit", "fsync", "max_parallel_workers_per_gather", "jit")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


PROBE_ROWS = 2_000_000  # the PostgreSQL probe's rows (about half a second on this machine at a fast hour)


def speed_probe(server: URL) -> dict[str, float]:
    """The machine's speed now, by fixed work timed on one core (lower is faster): ``python``, seconds of a fixed
    pure-Python loop (hashing and dict work, as the extract does per row); ``postgresql``, seconds of a fixed
    query on one backend without parallel workers. On a shared machine whose speed moves with the hour, a run's
    figures are compared with another's through these, taken at the start and at the end of each run."""
    t = time.perf_counter()
    seen: dict[str, int] = {}
    for i in range(300_000):
        key = hashlib.md5(f"probe-{i}".encode()).hexdigest()[:8]
        seen[key] = seen.get(key, 0) + 1
    python = time.perf_counter() - t
    with connect(server.set(database="postgres")) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        conn.execute("SET jit = off")
        t = time.perf_counter()
        conn.execute("SELECT sum(hashtext(i::text)::bigint) FROM generate_series(1, %s) AS i", (PROBE_ROWS,))
        postgresql = time.perf_counter() - t
    return {"python": round(python, 3), "postgresql": round(postgresql, 3)}


# What each of the DAG's sequential tasks imports before its first statement (the benchmark runs them in its own
# process, where each import happens once): the reconciliation's modules, and the quality gate's (Great Expectations)
TASK_IMPORTS = {
    "validate / reconcile / finish": "import pipelines.population.flow, pipelines.population.validate, "
                                     "pipelines.reconcile.merge",
    "quality gate": "import pipelines.population.flow, pipelines.quality.gate",
}


def task_import_seconds() -> dict[str, float]:
    """Seconds a fresh Python process takes to import what each sequential task of the population DAG runs (the
    interpreter's own start-up included), the fastest of two: the start-up cost that the benchmark, running
    those tasks in its own process, does not count and that a task process under Airflow pays each run."""
    out: dict[str, float] = {}
    for task, code in TASK_IMPORTS.items():
        best = None
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - t
            best = seconds if best is None else min(best, seconds)
        out[task] = round(best, 2)
    return out


def machine(server: URL) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total,
        "cpu_model": cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    with connect(server.set(database="postgres")) as conn:
        info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        info["postgresql_settings"] = {
            name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0] for name in PG_SETTINGS
        }
        local = conn.execute("SELECT inet_server_addr() IS NULL OR host(inet_server_addr()) IN "
                             "('127.0.0.1', '::1')").fetchone()[0]
        info["postgresql_local"] = bool(local)
    info["speed_at_start"] = speed_probe(server)
    info["task_imports"] = task_import_seconds()
    return info


# --- formatting -------------------------------------------------------------------------------------------------


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:,.0f}"


def _size(n: int) -> str:
    """Bytes in GiB (one decimal), or in MiB below a GiB."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _cpu(python: float | None, pg: float | None) -> str:
    """CPU seconds as 'Python + PostgreSQL' (– where not measured)."""
    if python is None and pg is None:
        return ""
    return f"{_s(python)} + {_s(pg)}"


def _cores(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def cpu_budget(run: RunResult, copy: Stage | None, cores: int) -> str | None:
    """One paragraph: the run's CPU seconds, what that bounds its wall time to on this machine's cores, and the
    COPY reference's CPU beside it (None when PostgreSQL's CPU could not be read)."""
    top = [s for s in run.top if s.cpu is not None]
    if not top or len(top) != len(run.top) or cores < 1:
        return None
    total = sum(s.cpu for s in top)
    python = sum(s.python_cpu for s in top)
    floor = total / cores
    text = (f"CPU: the run used {total:,.1f} CPU seconds (Python {python:,.1f}, PostgreSQL {total - python:,.1f}) "
            f"in {run.seconds:,.1f} s, {total / run.seconds:.2f} of the {cores} cores on average; spread perfectly over "
            f"{cores} cores it could take no less than {floor:,.1f} s")
    if copy is not None and copy.cpu is not None and copy.seconds > 0:
        text += (f" ({floor / copy.seconds:.2f}× the COPY reference's seconds). The COPY reference used "
                 f"{copy.cpu:,.1f} CPU seconds (Python {copy.python_cpu:,.1f}, PostgreSQL {copy.pg_cpu:,.1f}) in {copy.seconds:,.1f} s: "
                 f"the run did {total / copy.cpu:.1f}× its work")
    stages = ", ".join(f"{s.name} {s.cpu:,.1f}" for s in sorted(top, key=lambda s: -s.cpu))
    return text + f". CPU seconds by stage: {stages}."


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


@dataclass
class Target:
    name: str
    limit: str
    measured: str
    passed: bool | None  # None: not measurable in this run

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")


def targets(main: BaseResult, second: BaseResult | None) -> list[Target]:
    out: list[Target] = []
    full, inc, copy = main.full, main.increment, main.copy
    if full and copy:
        ratio = full.seconds / copy.typed.seconds
        out.append(Target("full load ≤ 8× COPY", "8.00×", f"{ratio:.2f}× ({full.seconds:,.1f} s / "
                                                         f"{copy.typed.seconds:,.1f} s)", ratio <= 8))
    # The increment is compared twice: the population_daily DAG (extract to finish) like for like, and with the
    # publication the publish_population DAG does afterwards (whose cost follows the published datasets' size).
    if full and inc:
        share = inc.daily_seconds / full.daily_seconds
        out.append(Target("1% increment ≤ 10% of the full load (population_daily: extract → finish)", "10.0%",
                          f"{share:.1%} ({inc.daily_seconds:,.1f} s / {full.daily_seconds:,.1f} s)", share <= 0.10))
        share = inc.seconds / full.seconds
        out.append(Target("1% increment ≤ 10% of the full load, publication included", "10.0%",
                          f"{share:.1%} ({inc.seconds:,.1f} s / {full.seconds:,.1f} s)", share <= 0.10))
    if inc and second and second.increment:
        small, big = (main, second) if second.persons > main.persons else (second, main)
        r = big.increment.daily_seconds / small.increment.daily_seconds
        out.append(Target(f"increment at {big.persons:,} ≤ 1.5× the increment at {small.persons:,} (same change size; "
                          "population_daily)", "1.50×",
                          f"{r:.2f}× ({big.increment.daily_seconds:,.1f} s / {small.increment.daily_seconds:,.1f} s)",
                          r <= 1.5))
        r = big.increment.seconds / small.increment.seconds
        out.append(Target(f"increment at {big.persons:,} ≤ 1.5× the increment at {small.persons:,}, publication "
                          "included", "1.50×",
                          f"{r:.2f}× ({big.increment.seconds:,.1f} s / {small.increment.seconds:,.1f} s)", r <= 1.5))
    if full:
        peak = max(s.python_peak or 0 for r in (full, inc) if r for s in r.top)
        out.append(Target(f"Python peak ≤ 2 GB at {main.persons:,}", "2,048 MB", f"{peak / MB:,.0f} MB",
                          peak <= 2048 * MB))
        gate = full.stage("quality gate")
        out.append(Target(f"quality gate on the {full.golden_rows:,}-row golden table ≤ 30 s", "30.0 s",
                          f"{gate.seconds:,.1f} s", gate.seconds <= 30))
    return out


def run_rows(run: RunResult, copy_seconds: float | None) -> list[list[str]]:
    """Rows of the stage table: top-level stages, then sub-steps indented."""
    rows = []
    for st in run.top:
        note = ""
        if st.detail.get("status"):
            note = st.detail["status"]
        if st.name == "publish" and "published" in st.detail:
            note = (f"{len(st.detail['published'])} of {st.detail['releases']} releases published"
                    + (f", awaiting approval: {', '.join(st.detail['awaiting_approval'])}"
                       if st.detail["awaiting_approval"] else ""))
        if st.name == "quality gate":
            note = "passed" if st.detail.get("passed") else f"FAILED: {', '.join(st.detail.get('blocking_failures', []))}"
        rows.append([st.name, f"{st.rows:,}" if st.rows is not None else "–", _s(st.seconds),
                     _rate(st.rows_per_second), _ratio(st.seconds / copy_seconds if copy_seconds else None),
                     _cpu(st.python_cpu, st.pg_cpu), _cores(st.cores_busy),
                     _mb(st.python_peak), _mb(st.pg_private_total), _mb(st.pg_private_max), note])
        for sub in (s for s in run.stages if s.parent == st.name):
            rows.append([f"  {sub.name}", f"{sub.rows:,}" if sub.rows is not None else "", _s(sub.seconds),
                         _rate(sub.rows_per_second) if sub.rows is not None else "", "",
                         _cpu(sub.python_cpu, sub.pg_cpu), _cores(sub.cores_busy),
                         _mb(sub.python_peak) if sub.python_peak else "",
                         _mb(sub.pg_private_total) if sub.pg_private_total else "",
                         _mb(sub.pg_private_max) if sub.pg_private_max else "", ""])
    rate = run.received / run.seconds if run.seconds else None
    measured = all(s.cpu is not None for s in run.top)
    python_cpu = sum(s.python_cpu for s in run.top) if measured else None
    pg_cpu = sum(s.pg_cpu for s in run.top) if measured else None
    rows.append(["total", f"{run.received:,}", _s(run.seconds), _rate(rate),
                 _ratio(run.seconds / copy_seconds if copy_seconds else None), _cpu(python_cpu, pg_cpu),
                 _cores((python_cpu + pg_cpu) / run.seconds if measured and run.seconds else None),
                 _mb(max(s.python_peak or 0 for s in run.top)),
                 _mb(max((s.pg_private_total or 0 for s in run.top), default=None)),
                 _mb(max((s.pg_private_max or 0 for s in run.top), default=None)),
                 "accounting consistent" if run.accounting_consistent else "ACCOUNTING INCONSISTENT"])
    return rows


HEADER = ["stage", "rows", "seconds", "rows/s", "× COPY", "CPU s (Python + PG)", "cores busy", "Python peak MB", "PG private MB (sum)",
          "PG private MB (max backend)", "note"]


def console_table(rows: list[list[str]], header: list[str] = HEADER) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w if i in (0, len(header) - 1) else "{:>%d}" % w for i, w in enumerate(widths))
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(out)


def md_table(rows: list[list[str]], header: list[str] = HEADER) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i in (0, len(header) - 1) else "---:"
                                                        for i in range(len(header))) + "|"]
    for r in rows:
        cells = [c.replace("  ", "&nbsp;&nbsp;", 1) if i == 0 and c.startswith("  ") else c for i, c in enumerate(r)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def console_report(results: list[BaseResult]) -> str:
    parts = []
    for base in results:
        copy_s = base.copy.typed.seconds if base.copy else None
        for run in (base.full, base.increment):
            if run is None:
                continue
            parts.append(f"\n{run.label} (run {run.run_id}): {run.received:,} rows received, "
                         f"{run.golden_rows:,} golden persons, status {run.status}")
            parts.append(console_table(run_rows(run, copy_s)))
        if base.copy:
            parts.append(f"COPY reference: {base.copy.rows:,} rows, {base.copy.file_bytes / MB:,.0f} MB: typed "
                         f"{base.copy.typed.seconds:,.1f} s"
                         + (f" (median of {', '.join(f'{x:,.1f}' for x in base.copy.typed_seconds)})"
                            if len(base.copy.typed_seconds) > 1 else "")
                         + f", all-text {base.copy.text.seconds:,.1f} s")
    main = next(b for b in results if b.role == "main")
    second = next((b for b in results if b.role == "second"), None)
    parts.append("\ntargets:")
    for t in targets(main, second):
        parts.append(f"  {t.verdict:4}  {t.name}: {t.measured} (limit {t.limit})")
    return "\n".join(parts)


def kept_section(path: Path) -> str | None:
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if KEEP_BEGIN in text and KEEP_END in text:
        return text[text.index(KEEP_BEGIN):text.index(KEEP_END) + len(KEEP_END)]
    return None


DEFAULT_KEPT = f"""{KEEP_BEGIN}
## What each optimisation bought

(Nothing recorded yet: each optimisation adds a line here — what changed, the stage, seconds before → after at
the same N, and the commit.)
{KEEP_END}"""


def _speed_line(info: dict[str, Any]) -> list[str]:
    start, end = info.get("speed_at_start"), info.get("speed_at_end")
    if not start:
        return []
    text = f"Python {start['python']:.2f} s, PostgreSQL {start['postgresql']:.2f} s at the start"
    if end:
        text += f"; {end['python']:.2f} s and {end['postgresql']:.2f} s at the end"
    return [f"- Speed probe (fixed work on one core, lower is faster; `report.speed_probe`): {text} — the machine's "
            "speed moves with the hour, so compare two runs' figures through these"]


def markdown(results: list[BaseResult], info: dict[str, Any], when: str, command: str, kept: str | None) -> str:
    main = next(b for b in results if b.role == "main")
    second = next((b for b in results if b.role == "second"), None)
    s = info["postgresql_settings"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {when}. Every figure below is from that one run; the hand-written section at "
        "the end (what each optimisation bought) is kept when the file is rewritten. How to read and reproduce "
        "it: [docs/scaling.md](docs/scaling.md).",
        "",
        "## Machine",
        "",
        f"- {info['cores']} cores ({info['physical_cores']} physical), {info['ram_bytes'] / 1024 ** 3:.1f} GiB RAM, "
        f"CPU {info['cpu_model']}, {info['os']}, Python {info['python']}; load average at start "
        f"{', '.join(map(str, info['load_average']))} (other work shares this machine)",
        f"- PostgreSQL {info['postgresql']} on the same machine: shared_buffers {s['shared_buffers']}, work_mem "
        f"{s['work_mem']} (reconciliation: 256MB), maintenance_work_mem {s['maintenance_work_mem']}, max_wal_size "
        f"{s['max_wal_size']}, min_wal_size {s.get('min_wal_size', '?')}, "
        f"wal_writer_delay {s.get('wal_writer_delay', '?')}, "
        f"synchronous_commit {s['synchronous_commit']}, fsync {s['fsync']}, "
        f"max_parallel_workers_per_gather {s['max_parallel_workers_per_gather']}, jit {s['jit']}",
        *_speed_line(info),
        "",
        "## What was run",
        "",
        f"- N = {main.persons:,} simulated residents (seed {info.get('seed')}), all 7 sources "
        "of config/population_sources.yaml: 前置库 tables (psb_hukou, hrss_employment), CSV/XLSX/XML file drops "
        "and the paged HTTP API (served from a thread of the benchmark process), with the simulator's default "
        "defect rates (so quarantine, duplicates, evidence matching and the review queue all run).",
        "- Day 0 is the full first extract; day 1 the daily increment, its ChangeRates scaled so that its rows are "
        "about 1% of day 0's. Each day runs the stages the DAG's tasks run (`pipelines.population.flow`), "
        "one after the other, without the scheduler; a CHECKPOINT precedes each timed phase.",
        "- Stages: **extract** = `stage_source` for every source, the identifier and record rules of each staged "
        "chunk included (rows received); **validate** = `validate_run`: rules for any staged row left unchecked, "
        "quarantine of the rejected rows (rows checked); **reconcile** = `reconcile_run`, every SQL step of sql/population/ and "
        "pipelines/reconcile/survivorship.py timed (rows received; a full load, into an empty warehouse, is "
        "reconciled in slices by person after the match — pipelines/reconcile/partitioned.py — so the steps named "
        "`slice 2/2: …` ran at the same time as the main backend's, and `partitions: all slices` is their wall time, from the first slice's copy on); "
        "**quality gate** = `run_gate`, Data Docs and "
        "scorecard included, over the whole golden tables on the full load and over the rows the run wrote on the "
        "increment (scope 'auto', docs/quality.md; rows = persons validated); **publish** = what the "
        "publish_population DAG runs after it (prepare a release of every dataset due — daily ones every day, the "
        "monthly record-level sample once a month — one mapped task per dataset, as many at a time as extract "
        "tasks; publish the automatic ones). rows/s = rows / "
        "seconds; × COPY = seconds / the COPY reference's seconds.",
        "- Memory: Python peak = the benchmark process's RSS (sampled every 0.1 s, backed by ru_maxrss); the "
        "simulator runs in a child process and is not counted. PG private = RSS minus shared pages of the "
        "postmaster's children (backends, autovacuum, checkpointer…): the sum over all of them, and the largest "
        "single one; shared_buffers are not in it.",
        "- CPU s = CPU seconds (user + system) used during the stage: Python = the benchmark process and the worker "
        "processes it ran (the extract and publish tasks), PG = every PostgreSQL process (backends, parallel "
        "workers, checkpointer, autovacuum); cores busy = CPU seconds / seconds. On a machine of n cores a stage "
        "takes at least its CPU seconds / n: the floor that only less work, not more parallelism, lowers.",
    ]
    if main.copy:
        c = main.copy
        lines += [
            f"- **COPY reference**: the {c.rows:,} rows staged by the full load (`staging.population_record`, the "
            f"{len(info.get('copy_columns', [])) or 33} columns a source adapter writes: run_id, source_id, seq, "
            "department, source_key, source_updated_at, row_hash, origin, the 22 canonical fields as text, payload, "
            f"parse_error, plain), exported once to a {c.file_bytes / MB:,.0f} MB file in COPY text format, then "
            "`COPY … FROM STDIN` streamed from that file by the client in 1 MiB blocks into an empty plain (logged) "
            "heap table without key, index, default or constraint, in one committed transaction. **typed**: the "
            "table has staging's column types (jsonb payload, timestamptz, bigint) — the reference the ratios use, "
            f"timed {len(c.typed_seconds) or 1} times (emptied and a CHECKPOINT before each), the median taken; "
            "**all-text**: every column text, once. Measured after the increment: its file and two tables (three "
            "times the staged rows' size) would otherwise push the warehouse out of the page cache between the "
            "two runs, which no nightly run meets (docs/scaling.md has the increment on a cold cache).",
        ]
    if second:
        how = "4×" if second.persons > main.persons else "¼ of"
        lines.append(
            f"- Second base size: {second.persons:,} residents ({how} N), full load then an increment of the "
            f"same absolute size as at N (ChangeRates × {second.change_scale:.3g} instead of × "
            f"{main.change_scale:.3g}), to show that the increment's cost follows the change, not the base.")
    workers = (main.full.stage("extract").detail or {}).get("workers", 1) if main.full else 1
    lines.append(
        f"- Extract: {workers} extract task(s) at a time" + (
            ", each in its own process, as the DAG's mapped extract tasks run under a parallel executor; the "
            "per-source rows are each task's own time and peak (the extract's Python peak is the sum of the "
            "processes alive together)" if workers > 1 else ", in the benchmark's process") + ".")
    imports = info.get("task_imports")
    if imports:
        lines.append(
            "- Not counted: the start-up of the DAG's sequential tasks, which the benchmark runs in its own process "
            "(validate, reconcile, quality gate, finish; the extract and publish tasks' processes are counted). "
            "Under Airflow each is a process that first imports what it runs — measured at the start of this run: "
            + ", ".join(f"{task} {seconds:,.1f} s" for task, seconds in imports.items())
            + " (Great Expectations is most of the gate's) — and the scheduler starts each after the one before.")
    if main.maintenance_seconds is not None:
        lines.append(f"- Between the full load and the increment: `VACUUM (ANALYZE)` of the warehouse "
                     f"({main.maintenance_seconds:,.1f} s at N, not counted in either), standing in for the "
                     "autovacuum that runs between two nightly runs.")

    wal = main.wal or {}
    if "segments" in wal:
        made = (f"{wal['made']} made before the full load in {wal['seconds']:,.1f} s, not counted"
                if wal["made"] else "none had to be made")
        lines.append(
            f"- WAL: the server held {wal['segments']} segments ({wal['bytes'] / 2**30:,.1f} GiB) ahead of the one "
            f"being written before the full load ({made}): the segments a server keeps for reuse after its checkpoints "
            "(min_wal_size) and a server that ran the night before holds, where a new cluster would write each new "
            "segment whole with zeros and sync it before its first record (`runner.reserve_wal`, docs/scaling.md).")
    buffers = main.buffers or {}
    if "pages" in buffers:
        filled = (f"{_size(buffers['filled_bytes'])} of them written and freed here in {buffers['seconds']:,.1f} s, "
                  "not counted" if buffers["filled"] else "by an earlier load since the server started")
        lines.append(
            f"- Shared buffers: the full load found {_size(buffers['bytes'])} of the server's "
            f"{_size(buffers['shared_buffers_bytes'])} used already ({filled}), as "
            "the buffers of a server that ran the night before have been, where a server just started gives each "
            "buffer's memory on its first touch, zeroed by the kernel (`runner.fill_buffers`, docs/scaling.md).")
    if "full_load_bytes" in wal:
        lines.append(f"- WAL written: full load {wal['full_load_bytes'] / 2**20:,.0f} MiB, increment "
                     f"{wal['increment_bytes'] / 2**20:,.0f} MiB (at N).")

    lines += ["", "## Targets", "", "| target | limit | measured | verdict |", "|---|---:|---:|---|"]
    for t in targets(main, second):
        lines.append(f"| {t.name} | {t.limit} | {t.measured} | **{t.verdict}** |")
    if main.persons != 1_000_000:
        lines += ["", f"(The targets are set for N = 1,000,000; this run had N = {main.persons:,}.)"]

    for base in sorted(results, key=lambda b: b.role != "main"):
        copy_s = base.copy.typed.seconds if base.copy else None
        lines += ["", f"## {base.persons:,} residents" + (" (N)" if base.role == "main" else ""), ""]
        rows0, rows1 = base.sim_rows.get(0, 0), base.sim_rows.get(1, 0)
        share = base.increment_share
        lines.append(f"Simulated departments: day 0 {rows0:,} rows, day 1 {rows1:,} rows "
                     f"({share:.2%} of day 0; events {_events(base.sim_events.get(1, {}))}), written in "
                     f"{base.simulate_seconds:,.1f} s (not part of the pipeline)." if share is not None else "")
        if base.copy:
            c = base.copy
            runs = (f"median of {', '.join(f'{x:,.1f}' for x in c.typed_seconds)} s; "
                    if len(c.typed_seconds) > 1 else "")
            lines += ["", f"COPY reference: {c.rows:,} rows ({c.file_bytes / MB:,.0f} MB): typed "
                          f"**{c.typed.seconds:,.1f} s** ({runs}{c.rows / c.typed.seconds:,.0f} rows/s"
                          + (f", CPU {_cpu(c.typed.python_cpu, c.typed.pg_cpu)} s" if c.typed.cpu is not None else "")
                          + f"), all-text {c.text.seconds:,.1f} s ({c.rows / c.text.seconds:,.0f} rows/s)."]
        for run in (base.full, base.increment):
            if run is None:
                continue
            lines += ["", f"### {run.label.split(' ', 1)[1]} — run {run.run_id}, {run.received:,} rows received, "
                          f"{run.golden_rows:,} golden persons, {run.history_rows:,} history rows, database "
                          f"{run.database_bytes / 1024 ** 3:,.2f} GiB after it", ""]
            lines.append(md_table(run_rows(run, copy_s)))
            budget = cpu_budget(run, base.copy.typed if base.copy else None, info.get("cores") or 0)
            if budget:
                lines += ["", budget]
            acc = {k: sum(a[k] for a in run.accounting.values()) for k in ("received", "merged", "quarantined",
                                                                           "duplicates")}
            lines += ["", f"Row accounting: received {acc['received']:,} = merged {acc['merged']:,} + quarantined "
                          f"{acc['quarantined']:,} + duplicates {acc['duplicates']:,} "
                          f"({'consistent' if run.accounting_consistent else 'INCONSISTENT'} with the extract "
                          f"counts and the staged rows)."]
            slow = _slowest_statements(run)
            if slow:
                lines += ["", "Slowest SQL statements of the reconciliation:", ""]
                lines += [f"- {t:,.1f} s, {n:,} rows — `{q}`" for q, n, t in slow]
            reads = _reads(run)
            if reads:
                lines += ["", reads]
    lines += ["", kept or DEFAULT_KEPT, ""]
    return "\n".join(lines)


def _events(events: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in events.items() if v) or "none"


def _reads(run: RunResult) -> str | None:
    """The reconciliation's reads from outside shared_buffers, in a sentence (None when not measured)."""
    io = next((st.detail.get("io") for st in run.stages if st.name == "reconcile" and st.parent is None), None)
    if not io:
        return None
    total = io["buffers_read"] + io["buffers_hit"]
    waited = ("" if io["read_seconds"] is None
              else f", waiting {io['read_seconds']:,.1f} s on them (track_io_timing)")
    top = "; ".join(f"{t['relation']} {t['part']} {t['read']:,}" for t in io["top"])
    busiest = "; ".join(f"{t['relation']} {t['part']} {t['read'] + t['hit']:,}" for t in io.get("busiest", [])[:4])
    return (f"Buffers of the warehouse's tables and indexes the reconciliation needed: {total:,}"
            + (f" (most: {busiest})" if busiest else "")
            + f", of which {io['buffers_read']:,} ({io['buffers_read'] * 8 / 1024:,.0f} MB) were not in "
            f"shared_buffers and were read from the OS cache or the disk{waited}"
            + (f" — most: {top}." if top else "."))


def _slowest_statements(run: RunResult, n: int = 5) -> list[tuple[str, int, float]]:
    found = []
    for st in run.stages:
        if st.parent == "reconcile":
            for s in st.detail.get("statements", []):
                found.append((s["sql"][:110] + ("…" if len(s["sql"]) > 110 else ""), s["rows"], s["seconds"]))
    return sorted(found, key=lambda x: -x[2])[:n]
