"""``python -m pipelines bench``: the population pipeline at scale, stage by stage, against a plain COPY.

    python -m pipelines bench [--persons 1000000] [--second-base 4] [--output BENCHMARKS.md] [--keep]

For the base size N (and a second one, 4N by default, or N/4 with ``--second-base 0.25``): creates the databases
``<prefix>_warehouse_<persons>`` and ``<prefix>_frontdb_<persons>`` on the warehouse's server (dropped and
re-created; the demo's and the tests' databases are never touched), simulates every department and source into them
and into ``<work-dir>/<persons>/`` (landing files, API files, reports), serves the simulated HTTP API from a thread,
then runs the full load (day 0) and one daily increment (day 1, about 1% of day 0's rows; at the second base the
same absolute change) through the same functions the DAG's tasks call, timing every stage and sub-step, sampling
memory, and timing a plain COPY of the same rows (the physical reference). Prints a table and writes BENCHMARKS.md
(``--output``) and the raw figures as JSON (``--json``). The databases and files are dropped at the end unless
``--keep`` (keep them to profile with EXPLAIN or re-run stages by hand).

Exit status 0 when every run completed with consistent row accounting (whether the speed targets are met is
reported, not enforced: timings depend on the machine).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from pipelines.settings import settings

__all__ = ["add_arguments", "main"]


def add_arguments(parser) -> None:
    parser.add_argument("--persons", type=int, default=1_000_000, help="N, simulated residents (default 1,000,000)")
    parser.add_argument("--second-base", type=float, default=4.0, metavar="FACTOR",
                        help="second base size as a multiple of N for the increment comparison (4 = 4N, "
                             "0.25 = N/4; 0 = none). Default 4")
    parser.add_argument("--change-share", type=float, default=0.01,
                        help="day 1's rows as a share of day 0's at N (default 0.01 = 1%%)")
    parser.add_argument("--seed", type=int, default=settings.sim_seed)
    parser.add_argument("--prefix", default="bench", help="database name prefix (default bench)")
    parser.add_argument("--work-dir", type=Path, default=settings.local_dir / "bench",
                        help="landing/API/report files of the benchmark (default .local/bench)")
    parser.add_argument("--output", type=Path, default=settings.project_root / "BENCHMARKS.md",
                        help="where to write the report (default BENCHMARKS.md in the checkout)")
    parser.add_argument("--json", type=Path, default=None, help="raw figures (default <work-dir>/bench-<N>.json)")
    parser.add_argument("--no-copy-at-second", action="store_true",
                        help="skip the COPY reference at the second base size")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="no VACUUM ANALYZE between the full load and the increment")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's databases and files")
    parser.add_argument("--extract-workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="extract tasks run at once, each in its own process, as the DAG's mapped extract "
                             "tasks do under a parallel executor (default: 2, or 1 on a 1-core machine; 1 = one "
                             "after the other in the benchmark's process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--sample-interval", type=float, default=0.1, help="memory sampling interval, seconds")
    parser.add_argument("--explain-increment", action="store_true",
                        help="log the plans of the increment's reconciliation statements (auto_explain: rows and "
                             "buffers per plan node, no timing) to <work-dir>/increment-plans-<N>.log; a diagnosis "
                             "run: the instrumentation costs a little, so its figures are not for BENCHMARKS.md")


def _progress_total(n_sources: int, bases: int, copies: int) -> int:
    from pipelines.bench.runner import STAGES_PER_RUN_FIXED

    return bases * (1 + 2 * (n_sources + STAGES_PER_RUN_FIXED)) + copies


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_worker(persons: int, role: str, scale: float, with_copy: bool, args, server, work_dir: Path,
                tick, echo):
    """One base size in a worker process (pipelines.bench.worker) whose settings name the benchmark's own
    databases and folders; returns its BaseResult."""
    root = work_dir / str(persons)
    out = work_dir / f"result-{persons}.pickle"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update({
        "WAREHOUSE_URL": server.set(database=f"{args.prefix}_warehouse_{persons}").render_as_string(
            hide_password=False),
        "FRONTDB_URL": server.set(database=f"{args.prefix}_frontdb_{persons}").render_as_string(
            hide_password=False),
        "LANDING_DIR": str(root / "landing"),
        "SIM_API_DIR": str(root / "api"),
        "SIM_API_URL": f"http://127.0.0.1:{_free_port()}",
        "REPORTS_DIR": str(root / "reports"),
        "PUBLISH_DIR": str(root / "publish"),
        "API_KEYS_FILE": str(root / "api_keys.yaml"),
        "GX_ANALYTICS_ENABLED": "false",
    })
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.project_root), env.get("PYTHONPATH", "")) if p)
    spec = {"persons": persons, "role": role, "seed": args.seed, "start": settings.sim_start.isoformat(),
            "scale": scale, "root": str(root), "sample_interval": args.sample_interval, "with_copy": with_copy,
            "vacuum_between": not args.no_vacuum, "out": str(out), "extract_workers": args.extract_workers,
            "explain_increment": args.explain_increment}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.bench.worker", json.dumps(spec)], env=env,
                            stdout=subprocess.PIPE, text=True, cwd=settings.project_root)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("TICK "):
            tick(line[5:].strip())
        elif line.startswith("NOTE "):
            echo(line[5:].rstrip())
        elif line.strip():
            echo(line.rstrip())
    if proc.wait() != 0:
        raise RuntimeError(f"benchmark worker for {persons:,} residents failed (exit {proc.returncode})")
    with out.open("rb") as fh:
        result = pickle.load(fh)
    out.unlink()
    return result


def main(args) -> int:
    from tqdm import tqdm

    from pipelines.bench import report
    from pipelines.bench.runner import DEFAULT_DAY1_ROW_SHARE, drop_database
    from pipelines.registry import load_sources
    from pipelines.sources.records import COPY_COLUMNS

    n = args.persons
    if n < 100:
        print("--persons must be at least 100", file=sys.stderr)
        return 2
    server = settings.warehouse_url
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    scale = args.change_share / DEFAULT_DAY1_ROW_SHARE
    plan = [(n, "main", scale, True)]
    if args.second_base and args.second_base > 0 and int(n * args.second_base) != n:
        other = int(round(n * args.second_base))
        plan.append((other, "second", scale * n / other, not args.no_copy_at_second))

    info = report.machine(server)
    info["seed"] = args.seed
    info["copy_columns"] = COPY_COLUMNS
    when = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    argv = ["python -m pipelines bench", f"--persons {n}"]
    if args.second_base != 4.0:
        argv.append(f"--second-base {args.second_base:g}")
    if args.change_share != 0.01:
        argv.append(f"--change-share {args.change_share:g}")
    if args.extract_workers != min(2, os.cpu_count() or 1):
        argv.append(f"--extract-workers {args.extract_workers}")
    if args.explain_increment:
        argv.append("--explain-increment")
    command = " ".join(argv)

    bar = tqdm(total=_progress_total(len(load_sources()), len(plan), sum(1 for p in plan if p[3])),
               disable=args.no_progress, unit="step", dynamic_ncols=True, file=sys.stderr)

    def tick(what: str) -> None:
        bar.set_postfix_str(what, refresh=False)
        bar.update(1)

    results = []
    try:
        for persons, role, rates, with_copy in plan:
            bar.set_description(f"{persons:,} residents")
            results.append(_run_worker(
                persons, role, rates, with_copy, args, server, work_dir, tick, bar.write))
            if not args.keep:
                admin = server.set(database="postgres")
                for name in results[-1].databases.values():
                    drop_database(admin, name)
                shutil.rmtree(work_dir / str(persons), ignore_errors=True)
    finally:
        bar.close()

    info["speed_at_end"] = report.speed_probe(server)
    print(report.console_report(results))
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    text = report.markdown(results, info, when, command, report.kept_section(out))
    out.write_text(text, encoding="utf-8")
    json_path = args.json or work_dir / f"bench-{n}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"when": when, "command": command, "machine": info,
                                     "results": [r.as_dict() for r in results]},
                                    ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    print(f"\nwrote {out} and {json_path}")
    ok = all(r.full and r.increment and r.full.accounting_consistent and r.increment.accounting_consistent
             for r in results)
    return 0 if ok else 1

