"""python -m pipelines …: migrate, simulate, run, demo, report.

``demo`` is what ``make demo`` runs: simulate the departments, then run the real DAG with ``airflow dags test``
for the full first load and each simulated day, and print the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from pipelines.settings import settings

log = logging.getLogger("pipelines")


def airflow_env() -> dict[str, str]:
    """The environment of the project's Airflow (same as scripts/airflow_env.sh, for subprocesses)."""
    root = settings.project_root
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(settings.local_dir / "airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(root / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(root / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    return env


def _airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def cmd_migrate(args) -> int:
    from pipelines.warehouse import migrate

    applied = migrate()
    print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    return 0


def cmd_simulate(args) -> int:
    from pipelines import simulate

    manifest = simulate.generate(
        persons=args.persons, days=args.days, seed=args.seed, start=args.start,
        landing_dir=settings.landing_dir, api_dir=settings.sim_api_dir, frontdb_url=settings.frontdb_url,
    )
    print(f"simulated {args.persons} persons over {args.days + 1} days into {settings.landing_dir}, "
          f"{settings.sim_api_dir} and the 前置库 {settings.frontdb_url.database}")
    return 0 if manifest is not None else 1


def run_interval(day: date) -> dict:
    """One interval through every step, without the scheduler (same functions the DAG's tasks call)."""
    from pipelines.population import flow
    from pipelines.runs import day_interval

    start, end = day_interval(day)
    run_id = flow.start(start, end, "cli", None)
    for source_id in flow.source_ids():
        flow.extract(source_id, run_id, start, end)
    flow.validate(run_id, end)
    flow.reconcile(run_id)
    flow.quality_gate(run_id)
    return flow.finish(run_id)


def cmd_run(args) -> int:
    summary = run_interval(args.date)
    print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    return 0


def reset_warehouse() -> None:
    """Drop the warehouse schemas (and the released files that describe them): the demo starts from nothing."""
    import shutil

    from pipelines.warehouse import connect

    shutil.rmtree(settings.publish_dir, ignore_errors=True)
    with connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS staging, quarantine, population, population_work, audit, quality, publish,"
                     " publish_work, api CASCADE")
        conn.execute("DROP TABLE IF EXISTS public.schema_migration")


def airflow_dags_test(dag_id: str, day: date, env: dict[str, str]) -> int:
    """``airflow dags test`` for the interval of ``day``: a manual run's data interval is the last complete one
    before its logical date, so the logical date given is the end of the day (next midnight, Asia/Shanghai)."""
    from pipelines.runs import day_interval

    logical = day_interval(day)[1].isoformat()
    log_path = settings.local_dir / "demo-logs" / f"{dag_id}-{day.isoformat()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as fh:
        proc = subprocess.run([_airflow_bin(), "dags", "test", dag_id, logical], env=env, stdout=fh,
                              stderr=subprocess.STDOUT)
    return proc.returncode


def publish_with_demo_reviewer(env: dict[str, str]) -> tuple[int, list[dict]]:
    """Run publish_population with ``airflow dags test``; answer its Human-in-the-loop requests as the demo's
    reviewer (in production a person does it in the Airflow UI, Required actions)."""
    import threading

    os.environ.update({k: env[k] for k in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER")})
    from pipelines.airflow.hitl import answer_all

    done = threading.Event()
    answered: list[dict] = []

    def decide(request: dict) -> str:
        print(f"[demo] waiting for approval: {request['subject']} -> approved by the demo reviewer "
              "(in production: Airflow UI, Required actions)")
        return "Approve"

    reviewer = threading.Thread(
        target=lambda: answered.extend(answer_all("publish_population", decide, user="demo-reviewer",
                                                  timeout_s=1800, until=done.is_set)), daemon=True)
    reviewer.start()
    log_path = settings.local_dir / "demo-logs" / "publish_population.log"
    try:
        with log_path.open("w") as fh:
            rc = subprocess.run([_airflow_bin(), "dags", "test", "publish_population"], env=env, stdout=fh,
                                stderr=subprocess.STDOUT).returncode
    finally:
        done.set()
        reviewer.join(timeout=10)
    return rc, answered


def format_releases() -> str:
    from pipelines.publish import flow

    lines = ["Published open data (publish_population):"]
    for r in flow.list_releases():
        if r.get("current"):
            lines.append(f"  {r['dataset_code']:<44} {r['release_id']}  {r.get('row_count')} rows")
    lines += [f"  files:   {settings.publish_dir}/<dataset>/current/ (CSV, XLSX, XML, JSON, manifest, review)",
              f"  catalog: {settings.publish_dir}/catalog.json and catalog.jsonld (DCAT), CHANGELOG.md",
              f"  API:     make api  ->  http://{settings.api_host}:{settings.api_port}/api/v1/catalog"
              f"  (OpenAPI docs at /docs)"]
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from pipelines.report import format_summary, warehouse_summary
    from pipelines.simulate.api import start_in_thread
    from pipelines.warehouse import migrate

    t0 = time.time()
    if settings.uses_local_cluster or args.reset:
        reset_warehouse()
    migrate()
    print(f"[demo] simulating {args.persons} residents across 5 departments, {args.days} days of increments …")
    cmd_simulate(argparse.Namespace(persons=args.persons, days=args.days, seed=args.seed, start=settings.sim_start))
    env = airflow_env()
    subprocess.run([_airflow_bin(), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    stop_api = start_in_thread(settings.sim_api_url, settings.sim_api_dir)
    failures = []
    try:
        for i in range(args.days + 1):
            day = settings.sim_start + timedelta(days=i)
            kind = "full first load" if i == 0 else f"increment {i}"
            t = time.time()
            rc = airflow_dags_test("population_daily", day, env)
            status = "ok" if rc == 0 else f"FAILED (rc={rc}, log in .local/demo-logs/)"
            print(f"[demo] airflow dags test population_daily {day} ({kind}): {status} in {time.time() - t:.0f}s")
            if rc != 0:
                failures.append(day)
    finally:
        stop_api()
    t = time.time()
    rc, answered = publish_with_demo_reviewer(env)
    print(f"[demo] airflow dags test publish_population: {'ok' if rc == 0 else f'FAILED (rc={rc})'} in "
          f"{time.time() - t:.0f}s ({len(answered)} release(s) approved by a person, the rest automatically)")
    if rc != 0:
        failures.append("publish")
    print(format_summary(warehouse_summary()))
    print(format_releases())
    print(f"[demo] finished in {time.time() - t0:.0f}s. See the DAG in the UI with `make airflow`.")
    return 1 if failures else 0


def cmd_report(args) -> int:
    from pipelines.report import format_summary, warehouse_summary, write_snapshots
    from pipelines.warehouse import connect

    if args.discrepancies:  # every department's snapshot now, rather than on the weekly day
        with connect() as conn:
            for path in write_snapshots(conn, settings.reports_dir / "departments"):
                print(f"wrote {path}")
        return 0
    print(format_summary(warehouse_summary()))
    return 0


def cmd_bench(args) -> int:
    from pipelines import bench

    return bench.main(args)


def _register_optional(sub, bench_parser) -> None:
    """Sub-commands owned by other packages: they add their own arguments (pipelines.bench, pipelines.publish).
    Imported directly: both ship with the project, so an ImportError here is a real breakage to report."""
    from pipelines import bench
    from pipelines.publish import cli as publish_cli

    bench.add_arguments(bench_parser)
    publish_cli.register(sub)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)
    s = sub.add_parser("simulate", help="write the simulated departments' sources")
    s.add_argument("--persons", type=int, default=settings.sim_persons)
    s.add_argument("--days", type=int, default=settings.sim_days)
    s.add_argument("--seed", type=int, default=settings.sim_seed)
    s.add_argument("--start", type=date.fromisoformat, default=settings.sim_start)
    s.set_defaults(func=cmd_simulate)
    r = sub.add_parser("run", help="run one day's interval through every step without Airflow")
    r.add_argument("--date", type=date.fromisoformat, required=True)
    r.set_defaults(func=cmd_run)
    d = sub.add_parser("demo", help="simulate, run the DAG over the first load and the increments, summarise")
    d.add_argument("--persons", type=int, default=settings.sim_persons)
    d.add_argument("--days", type=int, default=settings.sim_days)
    d.add_argument("--seed", type=int, default=settings.sim_seed)
    d.add_argument("--reset", action="store_true", help="drop the warehouse schemas first (always on the local cluster)")
    d.set_defaults(func=cmd_demo)
    rep = sub.add_parser("report", help="print the warehouse summary")
    rep.add_argument("--discrepancies", action="store_true",
                     help="write every department's snapshot of its open discrepancies (discrepancies.csv) now")
    rep.set_defaults(func=cmd_report)
    b = sub.add_parser("bench", help="benchmark every stage against a plain COPY (writes BENCHMARKS.md)")
    b.set_defaults(func=cmd_bench)
    _register_optional(sub, b)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)
