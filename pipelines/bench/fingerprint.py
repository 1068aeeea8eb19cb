"""A digest of every table the population pipeline writes, independent of generated ids: the check that an
optimisation changed nothing but the time.

    python -m pipelines.bench.fingerprint --database A [--database B]

Surrogate keys are assigned in the order rows happen to be inserted, which a different plan may change; so every
reference is replaced by the natural key of what it points to: a statement (population.source_record_id, lineage
pointers src_*, duplicate_of) by its ``run/source/seq``, a person (person_id, candidate and successor ids) by its
``id_type:id_number``. Timestamps the database stamps itself (received_at, quarantined_at, audit.run times) are left
out. Each table's rows are rendered as text and hashed (md5), the hashes sorted and hashed again; two databases that went through the same
inputs must print the same digests. For a test-sized or benchmark-sized database (sorting is in the server).
"""

from __future__ import annotations

import argparse

from pipelines.population.attributes import GOLDEN_ATTRIBUTES, RAW_FIELD_NAMES

STATEMENT = ("(SELECT s.run_id || '/' || s.source_id || '/' || s.seq FROM population.source_record s "
             "WHERE s.source_record_id = {})")
PERSON = ("coalesce((SELECT p.id_type || ':' || p.id_number FROM population.person p WHERE p.person_id = {0}), "
          "(SELECT 'retired ' || r.id_type || ':' || r.id_number FROM population.person_retired r "
          "WHERE r.person_id = {0}))")


def _src() -> str:
    return ", ".join(STATEMENT.format(f"o.src_{a}") + f" AS src_{a}" for a in GOLDEN_ATTRIBUTES)


def queries() -> dict[str, str]:
    golden = ", ".join(GOLDEN_ATTRIBUTES)
    raw = ", ".join(RAW_FIELD_NAMES)
    return {
        "staging.population_record": f"SELECT run_id, source_id, seq, department, source_key, source_updated_at, "
                                     f"row_hash, origin, {raw}, payload::text, parse_error "
                                     "FROM staging.population_record",
        "staging.population_record checks": "SELECT run_id, source_id, seq, checked_id_type, checked_id_number, "
                                            "checked_sex, checked_birth_date, checked_death_date, "
                                            "checked_event_date, reasons, warnings FROM staging.population_record",
        "staging.population_duplicate": (
            "SELECT run_id, source_id, seq, kind, CASE WHEN duplicate_of LIKE 'source_record %' THEN 'source_record '"
            " || " + STATEMENT.format("substr(o.duplicate_of, 15)::bigint") + " ELSE duplicate_of END "
            "FROM staging.population_duplicate o"),
        "quarantine.population_record": "SELECT run_id, source_id, seq, department, source_key, reasons, "
                                        "payload::text, origin FROM quarantine.population_record",
        "quarantine.source_file": "SELECT * FROM quarantine.source_file",
        "population.source_record": (
            f"SELECT run_id, source_id, seq, department, source_key, source_updated_at, {PERSON.format('o.person_id')}, "
            f"match_method, row_hash, warnings, id_type, id_number, {golden} "
            "FROM population.source_record o"),
        "population.person": (
            f"SELECT id_type, id_number, {golden}, is_registered, {_src()}, row_hash, valid_from, created_run_id, "
            "updated_run_id FROM population.person o"),
        "population.person_history": (
            f"SELECT {PERSON.format('o.person_id')}, version, id_type, id_number, {golden}, {_src()}, row_hash, "
            "valid_from, valid_to, created_run_id, updated_run_id FROM population.person_history o"),
        "population.person_xref": (
            f"SELECT source_id, source_key, department, {PERSON.format('o.person_id')}, match_method, first_run_id, "
            "last_run_id, " + STATEMENT.format("o.current_record_id") + ", current_updated_at, current_run_id, "
            "current_seq, current_row_hash FROM population.person_xref o"),
        "population.person_retired": (
            f"SELECT id_type, id_number, {PERSON.format('o.successor_person_id')}, reason, run_id, retired_at "
            "FROM population.person_retired o"),
        "population.review_queue": (
            "SELECT run_id, source_id, seq, department, source_key, reason, "
            f"(SELECT array_agg(k ORDER BY k) FROM (SELECT {PERSON.format('c.id')} AS k"
            " FROM unnest(o.candidate_person_ids) AS c(id)) ks), "
            "evidence::text, status FROM population.review_queue o"),
        "population.discrepancy": (
            f"SELECT {PERSON.format('o.person_id')}, attribute, department, source_id, source_key, department_value, "
            "authority_department, authority_value, authority_source_key, status, first_run_id, last_run_id "
            "FROM population.discrepancy o"),
        "audit.row_accounting": "SELECT run_id, source_id, received, merged, quarantined, duplicates "
                                "FROM audit.row_accounting",
        "audit.extract": "SELECT run_id, source_id, low_watermark, high_watermark, received, detail::text "
                         "FROM audit.extract",
        "audit.watermark": "SELECT source_id, high_watermark, run_id FROM audit.watermark",
        "audit.file_manifest": "SELECT source_id, path, sha256, size_bytes, drop_date, run_id, rows_read, error "
                               "FROM audit.file_manifest",
    }


def fingerprint(url) -> dict[str, tuple[int, str]]:
    from pipelines.warehouse import connect

    out = {}
    with connect(url) as conn:
        conn.execute("SET work_mem = '512MB'")
        for table, query in queries().items():
            n, digest = conn.execute(
                # the md5 of each row's text, sorted and hashed again: order-independent, and 33 bytes a row rather
                # than the row's text (a benchmark's staging table is over the 1 GB a string can hold)
                f"SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h COLLATE \"C\"), '')) "
                f"FROM (SELECT md5(t::text) AS h FROM ({query}) t) r").fetchone()
            out[table] = (n, digest)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.bench.fingerprint", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", action="append", required=True, help="database on the warehouse's server")
    args = ap.parse_args(argv)

    from pipelines.settings import settings

    prints = [fingerprint(settings.warehouse_url.set(database=db)) for db in args.database]
    same = True
    for table in prints[0]:
        cells = [p[table] for p in prints]
        agree = all(c == cells[0] for c in cells)
        same &= agree
        print(f"{'  ' if agree else '≠ '}{table:32} " + "  ".join(f"{n:>9,} {d}" for n, d in cells))
    if len(prints) > 1:
        print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
