"""EXPLAIN (ANALYZE, BUFFERS) of every statement of the reconciliation of one run, in a transaction rolled back.

    python -m pipelines.bench.explain --database bench_warehouse_1000000 --run-id 1 [--out plans.txt] [--min 0.5]

Runs the statements ``pipelines.reconcile.merge.reconcile_run`` runs (sql/population/*.sql and the ones
pipelines/reconcile/survivorship.py generates), in order, each data-changing or query statement under
``EXPLAIN (ANALYZE, BUFFERS)`` — which executes it, so every statement sees what the earlier ones did — and the
others (ALTER TABLE, CREATE INDEX, ANALYZE) as they are; then rolls everything back, so the database is left as it
was. Prints each statement's time and writes the plans of those that took at least ``--min`` seconds. Use it on a
database the benchmark kept (``--keep``) after its validate stage, i.e. on a run that has not been reconciled yet,
or on a reconciled one (a re-run of its reconciliation, as after validating it again: the run's duplicates are
deleted first with its review queue and the rows it quarantined for review, as validation deletes them, and every
step recognises what the run already wrote).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

_EXPLAINABLE = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE\s+TEMP\s+TABLE\s+\w+\s+ON\s+COMMIT\s+DROP\s+AS)",
                          re.IGNORECASE)


def statements(authorities) -> list[tuple[str, str]]:
    from pipelines.reconcile import merge, survivorship
    from pipelines.warehouse import sql_file

    out = [(name, sql_file(name)) for name in merge.STEPS]
    out += [("survivorship.golden_query", survivorship.golden_query(authorities)),
            ("survivorship.scd2_merge", survivorship.scd2_merge()),
            ("survivorship.discrepancy_query", survivorship.discrepancy_query(authorities)),
            ("population/90_accounting.sql", sql_file("population/90_accounting.sql"))]
    return out


def split(conn, script) -> list[str]:
    from psycopg import sql as _sql

    text = script.as_string(conn) if isinstance(script, _sql.Composable) else script
    out = []
    for statement in re.split(r";[ \t]*(?:\n|$)", text):
        body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            out.append(body)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench.explain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", required=True, help="a database on the warehouse's server")
    ap.add_argument("--run-id", type=int, required=True)
    ap.add_argument("--out", type=Path, default=None, help="write the plans here (default: stdout)")
    ap.add_argument("--min", type=float, default=0.5, help="plans of statements at least this slow (seconds)")
    ap.add_argument("--commit", action="store_true", help="commit instead of rolling back")
    ap.add_argument("--time-only", action="store_true", help="run the statements without EXPLAIN (timings only)")
    args = ap.parse_args(argv)

    from pipelines.registry import load_authority
    from pipelines.settings import settings
    from pipelines.warehouse import connect

    url = settings.warehouse_url.set(database=args.database)
    from pipelines.reconcile.merge import step_params

    params = step_params(args.run_id)
    plans: list[str] = []
    total = 0.0
    with connect(url) as conn:
        from pipelines.reconcile.merge import SESSION_SETTINGS

        for name, value in SESSION_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        # (what validation clears before a run is reconciled again — its duplicates, its review queue and the rows
        # quarantined for review — found afresh below; the statements, crosswalk and persons the run already wrote
        # are what its steps recognise on a re-run)
        for statement in (
            "DELETE FROM quarantine.population_record q USING population.review_queue r"
            " WHERE r.run_id = %(run)s AND q.run_id = r.run_id AND q.source_id = r.source_id AND q.seq = r.seq",
            "DELETE FROM population.review_queue WHERE run_id = %(run)s",
            "DELETE FROM staging.population_duplicate WHERE run_id = %(run)s",
        ):
            conn.execute(statement, {"run": args.run_id})
        for step, script in statements(load_authority()):
            step_total = 0.0
            for body in split(conn, script):
                explain = bool(_EXPLAINABLE.match(body)) and not args.time_only
                t0 = time.perf_counter()
                cur = conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " if explain else "") + body,
                                   params if "%(" in body else None)
                seconds = time.perf_counter() - t0
                step_total += seconds
                first = " ".join(body.split())[:100]
                print(f"{seconds:8.2f} s  {step:36} {first}", flush=True)
                if explain and seconds >= args.min:
                    plan = "\n".join(r[0] for r in cur.fetchall())
                    plans.append(f"-- {step}: {seconds:.2f} s\n{body}\n\n{plan}\n")
                    if args.out:  # as it goes, so an interrupted run keeps what it measured
                        args.out.write_text("\n\n".join(plans), encoding="utf-8")
            total += step_total
            print(f"{step_total:8.2f} s  {step} (step)", flush=True)
        print(f"{total:8.2f} s  total", flush=True)
        if args.commit:
            conn.commit()
        else:
            conn.rollback()
    text = "\n\n".join(plans)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
