"""Upgrading a warehouse that holds data: a migration carries what an earlier version wrote into the new shape."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone

import psycopg
import pytest

from pipelines.population.validate import CHECK_COLUMNS, validate_run
from pipelines.warehouse import MIGRATIONS_DIR, connect, migrate
from support import rows, scratch_database

JAN1, JAN2 = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)


@pytest.fixture()
def upgrade_db(warehouse_db):
    """An empty database of its own on the test server, dropped afterwards."""
    with scratch_database(warehouse_db, f"{warehouse_db.database}_upgrade") as url:
        yield url


def _migrate_before(url, tmp_path, version: str) -> None:
    """The warehouse as the versions before migration ``version`` left it."""
    before = tmp_path / f"before_{version}"
    before.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name < version:
            shutil.copy(path, before)
    migrate(url, before)


def test_0024_moves_the_checks_into_the_staged_rows(upgrade_db, tmp_path):
    """A run staged by a version that wrote its checks into staging.population_checked: after migration 0024 the
    checks are in the staged rows, the table is gone (new runs get no partition of it), and validation re-checks
    only the row that had no checks."""
    url = upgrade_db
    _migrate_before(url, tmp_path, "0024")
    with connect(url) as conn:
        run = conn.execute("INSERT INTO audit.run (pipeline, interval_start, interval_end) VALUES ('population', %s, %s)"
                           " RETURNING run_id", (JAN1, JAN2)).fetchone()[0]
        conn.execute(
            "INSERT INTO staging.population_record (run_id, source_id, seq, department, source_key, row_hash, payload,"
            " id_type, id_number, name, sex, birth_date) VALUES"
            " (%(r)s, 'psb_hukou', 1, 'psb', 'K1', 'h1', '{}', '身份证', '11010519491231002X', '张三', '2', '1949-12-31'),"
            " (%(r)s, 'psb_hukou', 2, 'psb', NULL, 'h2', '{}', NULL, NULL, NULL, NULL, NULL)", {"r": run})
        conn.execute(
            "INSERT INTO staging.population_checked (run_id, source_id, seq, id_type, id_number, birth_date, sex,"
            " reasons, warnings) VALUES (%s, 'psb_hukou', 1, 'RIC', '11010519491231002X', '1949-12-31', '2', '{}',"
            " '{W_ID_NORMALISED}')", (run,))

    assert migrate(url)[0] == "0024_checks_in_staged_row.sql"

    checks = ("SELECT seq, " + ", ".join(CHECK_COLUMNS) + " FROM staging.population_record WHERE run_id = %s"
              " ORDER BY seq")
    assert rows(url, checks, run) == [
        (1, "RIC", "11010519491231002X", "2", date(1949, 12, 31), None, None, [], ["W_ID_NORMALISED"]),
        (2, None, None, None, None, None, None, None, None),
    ]
    assert rows(url, "SELECT to_regclass('staging.population_checked')") == [(None,)]
    with connect(url) as conn:
        run2 = conn.execute("INSERT INTO audit.run (pipeline, interval_start, interval_end) VALUES ('population', %s,"
                            " %s) RETURNING run_id", (JAN2, datetime(2026, 1, 3, tzinfo=timezone.utc))).fetchone()[0]
    assert rows(url, "SELECT relname FROM pg_class WHERE relname LIKE %s ORDER BY 1", f"%\\_r{run2}") == [
        (f"population_duplicate_r{run2}",), (f"population_record_r{run2}",)]

    result = validate_run(run, JAN2.date(), url)
    assert (result["checked"], result["checked_here"], result["quarantined"]) == (2, 1, 1)
    assert rows(url, checks, run)[0][1:] == ("RIC", "11010519491231002X", "2", date(1949, 12, 31), None, None, [],
                                             ["W_ID_NORMALISED"])  # untouched
    assert rows(url, "SELECT seq, reasons FROM quarantine.population_record WHERE run_id = %s", run) == [
        (2, ["NAME_MISSING", "KEY_MISSING"])]


def test_0025_leads_the_record_keys_with_the_key(upgrade_db, tmp_path):
    """The crosswalk's key and the statements' two record-key indexes are rebuilt key first over the rows they hold,
    unique as before; the row accounting counts the statements through the new key."""
    url = upgrade_db
    _migrate_before(url, tmp_path, "0025")
    with connect(url) as conn:
        run = conn.execute("INSERT INTO audit.run (pipeline, interval_start, interval_end) VALUES ('population', %s, %s)"
                           " RETURNING run_id", (JAN1, JAN2)).fetchone()[0]
        person = conn.execute("INSERT INTO population.person (id_type, id_number, row_hash, valid_from, created_run_id,"
                              " updated_run_id) VALUES ('RIC', '11010519491231002X', 'h', %s, %s, %s)"
                              " RETURNING person_id", (JAN1, run, run)).fetchone()[0]
        record = conn.execute(
            "INSERT INTO population.source_record (run_id, source_id, seq, department, source_key, source_updated_at,"
            " person_id, match_method, row_hash) VALUES (%s, 'psb_hukou', 1, 'psb', 'K1', %s, %s, 'new', 'h')"
            " RETURNING source_record_id", (run, JAN1, person)).fetchone()[0]
        conn.execute(
            "INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method,"
            " first_run_id, last_run_id, current_record_id, current_updated_at, current_run_id, current_seq,"
            " current_row_hash) VALUES ('psb_hukou', 'K1', 'psb', %s, 'new', %s, %s, %s, %s, %s, 1, 'h')",
            (person, run, run, record, JAN1, run))

    assert migrate(url)[0] == "0025_record_key_indexes_key_first.sql"

    definitions = dict(rows(url, "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
                                 " WHERE indrelid IN ('population.person_xref'::regclass,"
                                 " 'population.source_record'::regclass)"))
    assert definitions["population.person_xref_pkey"].endswith("(source_key, source_id)")
    assert definitions["population.source_record_key"].endswith("(source_key, source_id, run_id)")
    assert definitions["population.source_record_run_seq_key"].endswith("(run_id, seq, source_id)")
    assert "population.source_record_run_id_source_id_seq_key" not in definitions
    assert rows(url, "SELECT source_id, source_key, person_id FROM population.person_xref") == [
        ("psb_hukou", "K1", person)]
    with connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO population.source_record (run_id, source_id, seq, department, source_key,"
                     " source_updated_at, person_id, match_method, row_hash)"
                     " VALUES (%s, 'psb_hukou', 1, 'psb', 'K2', %s, %s, 'new', 'h')", (run, JAN1, person))
    with connect(url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method,"
                     " first_run_id, last_run_id, current_record_id, current_updated_at, current_run_id, current_seq,"
                     " current_row_hash) VALUES ('psb_hukou', 'K1', 'psb', %s, 'new', %s, %s, %s, %s, %s, 1, 'h')",
                     (person, run, run, record, JAN1, run))


def test_0026_drops_the_unread_history_index(upgrade_db, tmp_path):
    """person_history_as_of goes, and an unfinished partitioned load no longer lists it among what it restores (the
    other statements kept, in their order)."""
    url = upgrade_db
    _migrate_before(url, tmp_path, "0026")
    restore = ["CREATE INDEX person_evidence ON population.person USING btree (name, birth_date, sex)",
               "CREATE INDEX person_history_as_of ON population.person_history USING btree (person_id, valid_from,"
               " valid_to)",
               "CREATE INDEX person_updated_run ON population.person USING btree (updated_run_id)"]
    with connect(url) as conn:
        run = conn.execute("INSERT INTO audit.run (pipeline, interval_start, interval_end) VALUES ('population', %s, %s)"
                           " RETURNING run_id", (JAN1, JAN2)).fetchone()[0]
        conn.execute("INSERT INTO population.bulk_load (run_id, restore) VALUES (%s, %s)", (run, restore))
    assert rows(url, "SELECT to_regclass('population.person_history_as_of') IS NOT NULL") == [(True,)]

    _migrate_before(url, tmp_path, "0027")  # (0026 alone: 0032 drops person_updated_run from the list in turn)

    assert rows(url, "SELECT to_regclass('population.person_history_as_of')") == [(None,)]
    assert rows(url, "SELECT restore FROM population.bulk_load") == [([restore[0], restore[2]],)]


def test_0032_finds_a_runs_persons_through_their_history_and_updates_them_in_place(upgrade_db, tmp_path):
    """person_updated_run goes (an unfinished partitioned load no longer restores it, the rest kept in order), the
    history's versions are indexed by their run, and both tables keep room on their pages for updates in place."""
    url = upgrade_db
    _migrate_before(url, tmp_path, "0032")
    restore = ["CREATE INDEX person_evidence ON population.person USING btree (name, birth_date, sex)",
               "CREATE INDEX person_updated_run ON population.person USING btree (updated_run_id)",
               "ALTER TABLE population.person ADD CONSTRAINT person_created_run_id_fkey FOREIGN KEY (created_run_id)"
               " REFERENCES audit.run(run_id)"]
    with connect(url) as conn:
        run = conn.execute("INSERT INTO audit.run (pipeline, interval_start, interval_end) VALUES ('population', %s, %s)"
                           " RETURNING run_id", (JAN1, JAN2)).fetchone()[0]
        conn.execute("INSERT INTO population.bulk_load (run_id, restore) VALUES (%s, %s)", (run, restore))

    assert migrate(url)[0] == "0032_person_updates_in_place.sql"

    assert rows(url, "SELECT to_regclass('population.person_updated_run')") == [(None,)]
    assert rows(url, "SELECT pg_get_indexdef('population.person_history_run'::regclass)") == [
        ("CREATE INDEX person_history_run ON population.person_history USING btree (updated_run_id)",)]
    assert rows(url, "SELECT restore FROM population.bulk_load") == [([restore[0], restore[2]],)]
    assert rows(url, "SELECT relname, reloptions FROM pg_class WHERE oid IN ('population.person'::regclass,"
                     " 'population.person_history'::regclass) ORDER BY 1") == [
        ("person", ["fillfactor=90"]), ("person_history", ["fillfactor=90"])]
