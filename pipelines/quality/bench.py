"""Benchmark of the quality gate on a synthetic golden table, in a scratch database created and dropped here.

    python -m pipelines.quality.bench --rows 1000000 [--repeat 3] [--keep]

Creates database ``scratch_quality_bench`` on the warehouse server, applies the migrations, fills
``population.person`` with ``rows`` valid residents (genuine 公民身份号码 with check digits, one ``person_xref`` row
each) by one ``INSERT … SELECT generate_series``, runs the gate ``repeat`` times and prints the times, then drops the
database (unless ``--keep``). Reports go to a temporary directory. docs/quality.md records the measured times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from psycopg import sql

from pipelines.reconcile.survivorship import VERSION_COLUMNS

# Shanghai's 16 current districts; persons are spread over them, birth dates over 1935-2017, three-digit sequence.
_PERSONS = """
INSERT INTO population.person (person_id, id_type, id_number, name, sex, birth_date, hukou_division,
    residence_division, population_status, death_date, marital_status, row_hash, valid_from, created_run_id,
    updated_run_id)
SELECT i + 1, 'RIC', idn, '居民' || i, CASE WHEN substr(seq, 3, 1) IN ('1', '3', '5', '7', '9') THEN '1' ELSE '2' END,
       bd, div, CASE WHEN i %% 50 = 0 THEN NULL ELSE div END,
       CASE WHEN i %% 100 = 7 THEN 'deceased' ELSE 'active' END,
       CASE WHEN i %% 100 = 7 THEN DATE '2025-06-01' END,
       (ARRAY['10', '20', '30', '40'])[1 + i %% 4], md5(idn), now(), %(run_id)s, %(run_id)s
FROM (
    SELECT i, div, bd, seq, body || substr('10X98765432', 1 + (
          substr(body, 1, 1)::int * 7 + substr(body, 2, 1)::int * 9 + substr(body, 3, 1)::int * 10
        + substr(body, 4, 1)::int * 5 + substr(body, 5, 1)::int * 8 + substr(body, 6, 1)::int * 4
        + substr(body, 7, 1)::int * 2 + substr(body, 8, 1)::int * 1 + substr(body, 9, 1)::int * 6
        + substr(body, 10, 1)::int * 3 + substr(body, 11, 1)::int * 7 + substr(body, 12, 1)::int * 9
        + substr(body, 13, 1)::int * 10 + substr(body, 14, 1)::int * 5 + substr(body, 15, 1)::int * 8
        + substr(body, 16, 1)::int * 4 + substr(body, 17, 1)::int * 2) %% 11, 1) AS idn
    FROM (
        SELECT i, div, bd, seq, div || to_char(bd, 'YYYYMMDD') || seq AS body
        FROM (
            SELECT i,
                   (ARRAY['310101', '310104', '310105', '310106', '310107', '310109', '310110', '310112', '310113',
                          '310114', '310115', '310116', '310117', '310118', '310120', '310151'])[1 + i %% 16] AS div,
                   DATE '1935-01-01' + ((i / 16) %% 30000) AS bd,
                   lpad(((i / 480000) %% 1000)::text, 3, '0') AS seq
            FROM generate_series(0, %(rows)s - 1) AS i
        ) g
    ) b
) c
"""
_XREF = """
WITH s AS (  -- one psb statement per person, named by its crosswalk row as the key's current one
    INSERT INTO population.source_record (run_id, source_id, seq, department, source_key, source_updated_at,
                                          person_id, match_method, row_hash)
    SELECT %(run_id)s, 'psb_hukou', person_id, 'psb', 'RY' || person_id, now(), person_id, 'id_number', row_hash
    FROM population.person
    RETURNING *)
INSERT INTO population.person_xref
    (source_id, source_key, department, person_id, match_method, first_run_id, last_run_id, current_record_id,
     current_updated_at, current_run_id, current_seq, current_row_hash)
SELECT source_id, source_key, department, person_id, match_method, run_id, run_id, source_record_id,
       source_updated_at, run_id, seq, row_hash FROM s
"""

# every person's first version, as the reconciliation writes it (the gate finds a run's persons through their
# versions: expectations/population.person.json, meta.run_keys)
_HISTORY = sql.SQL("INSERT INTO population.person_history ({cols}, valid_to, version) "
                   "SELECT {cols}, NULL, 1 FROM population.person").format(
    cols=sql.SQL(", ").join(map(sql.Identifier, VERSION_COLUMNS)))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default="scratch_quality_bench")
    parser.add_argument("--no-docs", action="store_true", help="skip the Data Docs build")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    from pipelines.settings import Settings, settings
    from pipelines.warehouse import connect, migrate

    url = settings.warehouse_url.set(database=args.database)
    admin = settings.warehouse_url.set(database="postgres")
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.database)))
    timings: dict = {"rows": args.rows, "server": Settings.libpq(url.set(password=None)), "runs": []}
    try:
        migrate(url)
        t0 = time.monotonic()
        with connect(url) as conn:
            run_id = conn.execute(
                "INSERT INTO audit.run (pipeline, interval_start, interval_end)"
                " VALUES ('population', now() - interval '1 day', now()) RETURNING run_id"
            ).fetchone()[0]
            conn.execute(_PERSONS, {"rows": args.rows, "run_id": run_id})
            conn.execute(_XREF, {"run_id": run_id})
            conn.execute(_HISTORY)
            conn.execute("SELECT setval('population.person_id_seq', (SELECT max(person_id) FROM population.person))")
        with connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE population.person")
            conn.execute("VACUUM ANALYZE population.person_xref")
            conn.execute("VACUUM ANALYZE population.person_history")
        timings["generate_seconds"] = round(time.monotonic() - t0, 1)
        print(f"generated {args.rows} persons in {timings['generate_seconds']} s", flush=True)

        from pipelines.quality.gate import run_gate

        with tempfile.TemporaryDirectory(prefix="quality-bench-") as reports:
            for attempt in range(1, args.repeat + 1):
                result = run_gate(run_id, url=url, build_docs=not args.no_docs, reports_dir=Path(reports))
                run = {
                    "attempt": attempt,
                    "seconds": result.seconds,
                    "passed": result.passed,
                    "suites": {s.suite: s.seconds for s in result.suites},
                    "failed": [f.expectation for f in result.blocking_failures + result.warnings],
                }
                timings["runs"].append(run)
                print(json.dumps(run, ensure_ascii=False), flush=True)
    finally:
        if not args.keep:
            with connect(admin, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (args.database,)
                )
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.database)))
    return timings


if __name__ == "__main__":
    main()
