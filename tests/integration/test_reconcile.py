"""Validation and reconciliation on hand-made staged rows: quarantine, duplicates, matching, survivorship under
一数一源 with lineage, discrepancies, SCD2 history, row accounting and idempotent re-runs."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb
from stdnum.cn import ric

from pipelines.population.validate import validate_run
from pipelines.reconcile.merge import reconcile_run
from pipelines.runs import open_run
from pipelines.warehouse import connect
from support import cells_disagreeing, rows, snapshot

pytestmark = pytest.mark.integration
SH = ZoneInfo("Asia/Shanghai")
DAY1 = datetime(2026, 1, 1, tzinfo=SH)


def rid(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")  # stdnum wants a placeholder check digit


A_ID = rid("31010119800101123")   # 张三, male (odd 17th digit 3)
B_ID = rid("32010219900215002")   # 李四, female (even 2), migrant from Nanjing
BAD_ID = A_ID[:-1] + ("0" if A_ID[-1] != "0" else "1")


def stage(url, run_id, source_id, department, rows, day=DAY1):
    """Insert rows into staging as a source adapter would, and record the extract."""
    with connect(url) as conn:
        for seq, row in enumerate(rows, start=1):
            payload = dict(row)
            cols = ["run_id", "source_id", "seq", "department", "source_key", "source_updated_at", "row_hash",
                    "payload", "origin", *[k for k in row if k not in ("source_key", "updated")]]
            vals = [run_id, source_id, seq, department, row.get("source_key"),
                    day + timedelta(hours=row.get("updated", 9)),
                    hashlib.md5(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest(),
                    Jsonb(payload), f"test:{source_id}:{seq}",
                    *[v for k, v in row.items() if k not in ("source_key", "updated")]]
            conn.execute(
                f"INSERT INTO staging.population_record ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(vals))})",
                vals,
            )
        conn.execute(
            "INSERT INTO audit.extract (run_id, source_id, received) VALUES (%s, %s, %s)"
            " ON CONFLICT (run_id, source_id) DO UPDATE SET received = EXCLUDED.received",
            (run_id, source_id, len(rows)),
        )


def day_run(url, day):
    return open_run("population", day, day + timedelta(days=1), url=url)


def one(url, query, *params):
    return rows(url, query, *params)


PSB_A = dict(source_key="P-A", id_number=A_ID, name="张三", sex="男", birth_date="1980-01-01", ethnicity="汉族",
             hukou_division="310101", hukou_address="黄浦区南京东路1号", residence_division="310104",
             residence_address="徐汇区漕溪北路2号", population_status="正常", id_type="RIC")


@pytest.fixture()
def day1(clean_warehouse):
    url = clean_warehouse
    run1 = stage_day1(url)
    accounting = reconcile_run(run1, url)
    return url, run1, accounting


def stage_day1(url) -> int:
    """Day 1's rows staged and validated (not reconciled): the run's id."""
    run1 = day_run(url, DAY1)
    stage(url, run1, "psb_hukou", "psb", [
        {**PSB_A, "updated": 8},
        {**PSB_A, "updated": 9},                                   # same key again: superseded in the run
    ])
    stage(url, run1, "hrss_employment", "hrss", [
        dict(source_key="H-A", id_type="RIC", id_number=A_ID.lower(), name="张 三", sex="1", birth_date="19800101",
             residence_division="310105", employer="上海某某科技有限公司"),      # disagrees on residence
        dict(source_key="H-B", id_type="RIC", id_number=B_ID, name="李四", sex="2", birth_date="1990-02-15",
             residence_division="310112", employer="上海某某贸易有限公司"),       # only hrss knows B
        dict(source_key="H-BAD", id_type="RIC", id_number=BAD_ID, name="王五", sex="1", birth_date="1980-01-01"),
    ])
    stage(url, run1, "education_student", "education", [
        dict(source_key="E-A", id_type="RIC", id_number=None, name="张三", sex="男", birth_date="1980-01-01",
             residence_division="310104", school="上海开放大学"),                 # no ID: evidence matches A
        dict(source_key="E-X", id_type="RIC", id_number="", name="赵六", sex="女", birth_date="2010-05-05",
             residence_division="310110", school="杨浦小学"),                     # no ID, nobody: review
    ])
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    return run1


def statements_named_current(url):
    """Each record key's crosswalk row names its latest statement (by source update time, then run, then seq):
    compared with the latest computed from the statements themselves."""
    latest = one(url, "SELECT DISTINCT ON (source_id, source_key) source_id, source_key, source_record_id,"
                      " source_updated_at, run_id, seq, row_hash, person_id FROM population.source_record"
                      " ORDER BY source_id, source_key, source_updated_at DESC, run_id DESC, seq DESC")
    named = one(url, "SELECT source_id, source_key, current_record_id, current_updated_at, current_run_id,"
                     " current_seq, current_row_hash, person_id FROM population.person_xref ORDER BY 1, 2")
    assert named == latest
    return named


def statement_versions(url):
    """Every statement with its physical row version: an UPDATE, HOT or not, changes ctid and xmin."""
    return one(url, "SELECT source_record_id, ctid::text, xmin::text FROM population.source_record ORDER BY 1")


def person_of(url, id_number):
    return one(url, "SELECT person_id FROM population.person WHERE id_number = %s", id_number)[0][0]


def test_row_accounting_adds_up_per_source(day1):
    url, run1, accounting = day1
    assert accounting == {
        "education_student": {"received": 2, "merged": 1, "quarantined": 1, "duplicates": 0},
        "hrss_employment": {"received": 3, "merged": 2, "quarantined": 1, "duplicates": 0},
        "psb_hukou": {"received": 2, "merged": 1, "quarantined": 0, "duplicates": 1},
    }


def test_bad_check_digit_quarantined_with_reason_and_payload(day1):
    url, run1, _ = day1
    rows = one(url, "SELECT reasons, payload->>'id_number' FROM quarantine.population_record"
                    " WHERE source_id = 'hrss_employment'")
    assert rows == [(["ID_BAD_CHECK_DIGIT"], BAD_ID)]


def test_golden_values_follow_the_authority_with_lineage(day1):
    url, run1, _ = day1
    a = person_of(url, A_ID)
    lineage = {r[0]: r[1:] for r in one(
        url, "SELECT attribute, value, department, source_id, source_key FROM population.attribute_lineage"
             " WHERE person_id = %s", a)}
    assert lineage["name"] == ("张三", "psb", "psb_hukou", "P-A")
    assert lineage["residence_division"] == ("310104", "psb", "psb_hukou", "P-A")   # psb wins over hrss
    assert lineage["employer"] == ("上海某某科技有限公司", "hrss", "hrss_employment", "H-A")
    assert lineage["school"] == ("上海开放大学", "education", "education_student", "E-A")
    # B is known only to hrss: its name falls back to hrss
    b = person_of(url, B_ID)
    assert one(url, "SELECT department FROM population.attribute_lineage WHERE person_id = %s AND attribute = 'name'",
               b) == [("hrss",)]


def test_statements_of_one_department_stamped_alike_are_ordered_by_the_inputs(clean_warehouse):
    """Two psb sources say different things about one person at the same update time (a batch time, a drop date):
    the later run wins, then the first source by id, then the later record of its delivery — not the statement
    written last (the highest statement id, which follows the order a run's candidates happen to be written in)."""
    url = clean_warehouse
    run1 = day_run(url, DAY1)
    stage(url, run1, "psb_hukou", "psb", [{**PSB_A, "residence_address": "徐汇区漕溪北路2号"}])
    stage(url, run1, "psb_residence_permit", "psb",
          [{**PSB_A, "source_key": "R-A", "residence_address": "静安区南京西路3号"}])
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    reconcile_run(run1, url)
    ids = dict(one(url, "SELECT source_id, source_record_id FROM population.source_record"))
    assert ids["psb_hukou"] < ids["psb_residence_permit"]  # (the tie the statement ids would have broken the other way)
    assert one(url, "SELECT value, source_id, source_key FROM population.attribute_lineage"
                    " WHERE person_id = %s AND attribute = 'residence_address'", person_of(url, A_ID)) == [
        ("徐汇区漕溪北路2号", "psb_hukou", "P-A")]


def test_discrepancy_addressed_to_the_authority_naming_the_disagreeing_department(day1):
    url, run1, _ = day1
    a = person_of(url, A_ID)
    rows = one(url, "SELECT person_id, attribute, authority_department, authority_value, department,"
                    " department_value, status FROM population.discrepancy")
    assert rows == [(a, "residence_division", "psb", "310104", "hrss", "310105", "open")]


def test_evidence_match_and_review_queue(day1):
    url, run1, _ = day1
    a = person_of(url, A_ID)
    assert one(url, "SELECT person_id, match_method FROM population.person_xref WHERE source_key = 'E-A'") == [
        (a, "evidence")]
    assert one(url, "SELECT source_key, reason, status FROM population.review_queue") == [
        ("E-X", "REVIEW_NO_MATCH", "open")]
    # what a reviewer sees: the department, nobody proposed, the evidence as normalised
    assert one(url, "SELECT department, candidate_person_ids, evidence FROM population.review_queue") == [
        ("education", [], {"name": "赵六", "birth_date": "2010-05-05", "sex": "2", "division": "310110"})]
    assert one(url, "SELECT count(*) FROM population.person") == [(2,)]


def test_second_day_history_resolution_redelivery_and_idempotent_rerun(day1):
    url, run1, _ = day1
    day2 = DAY1 + timedelta(days=1)
    run2 = day_run(url, day2)

    def load_day2():
        with connect(url) as conn:
            conn.execute("DELETE FROM staging.population_record WHERE run_id = %s", (run2,))
        stage(url, run2, "psb_hukou", "psb", [{**PSB_A, "residence_division": "310105",
                                               "residence_address": "长宁区长宁路3号", "updated": 10}], day=day2)
        stage(url, run2, "hrss_employment", "hrss", [
            dict(source_key="H-B", id_type="RIC", id_number=B_ID, name="李四", sex="2", birth_date="1990-02-15",
                 residence_division="310112", employer="上海某某贸易有限公司"),   # unchanged re-delivery
        ], day=day2)
        validate_run(run2, (day2 + timedelta(days=1)).date(), url)
        return reconcile_run(run2, url)

    day1_statements = statement_versions(url)
    accounting = load_day2()
    # statements are append-only: day 2's newer statement of P-A made it current without touching day 1's
    assert statement_versions(url)[:len(day1_statements)] == day1_statements
    current = {key: run for _, key, _, _, run, *_ in statements_named_current(url)}
    assert current["P-A"] == run2 and current["H-B"] == run1  # (H-B re-delivered unchanged: no new statement)
    assert accounting["hrss_employment"] == {"received": 1, "merged": 0, "quarantined": 0, "duplicates": 1}
    assert accounting["psb_hukou"] == {"received": 1, "merged": 1, "quarantined": 0, "duplicates": 0}
    a = person_of(url, A_ID)
    # the move resolves hrss's discrepancy (it now agrees with psb) and opens one for education's old district
    assert one(url, "SELECT department, department_value, status, first_run_id, last_run_id"
                    " FROM population.discrepancy ORDER BY department") == [
        ("education", "310104", "open", run2, run2), ("hrss", "310105", "resolved", run1, run2)]
    # SCD2: two versions; the state as of day 1 noon is the old district
    hist = one(url, "SELECT version, residence_division, valid_to IS NULL FROM population.person_history"
                    " WHERE person_id = %s ORDER BY version", a)
    assert hist == [(1, "310104", False), (2, "310105", True)]
    as_of = one(url, "SELECT residence_division FROM population.person_as_of(%s) WHERE person_id = %s",
                DAY1 + timedelta(hours=12), a)
    assert as_of == [("310104",)]

    assert cells_disagreeing(url) == []  # (the increment's updates kept the counted cells)
    before = snapshot(url)
    load_day2()  # re-run of the same interval
    assert snapshot(url) == before


def test_id_corrected_at_source_retires_the_orphaned_person(day1):
    """公安 corrects the ID number on its record P-A: the record moves to the person holding the right number, and
    the person that only existed through the wrong number is retired (history closed), not left dangling."""
    url, run1, _ = day1
    day2 = DAY1 + timedelta(days=1)
    run2 = day_run(url, day2)
    wrong = rid("31011519850101102")
    # day 2: psb's record P-W carried a wrong number; day 3 it is corrected to B's number (hrss knows B)
    stage(url, run2, "psb_hukou", "psb", [dict(PSB_A, source_key="P-W", id_number=wrong, name="李四", sex="2",
                                               birth_date="1985-01-01", updated=10)], day=day2)
    validate_run(run2, (day2 + timedelta(days=1)).date(), url)
    reconcile_run(run2, url)
    orphan = person_of(url, wrong)
    day3 = day2 + timedelta(days=1)
    run3 = day_run(url, day3)

    def load_day3():
        with connect(url) as conn:
            conn.execute("DELETE FROM staging.population_record WHERE run_id = %s", (run3,))
        stage(url, run3, "psb_hukou", "psb", [dict(PSB_A, source_key="P-W", id_number=B_ID, name="李四", sex="2",
                                                   birth_date="1990-02-15", updated=11)], day=day3)
        validate_run(run3, (day3 + timedelta(days=1)).date(), url)
        return reconcile_run(run3, url)

    load_day3()
    b = person_of(url, B_ID)
    assert one(url, "SELECT person_id FROM population.person_xref WHERE source_key = 'P-W'") == [(b,)]
    assert one(url, "SELECT count(*) FROM population.person WHERE person_id = %s", orphan) == [(0,)]
    assert one(url, "SELECT successor_person_id, reason, run_id FROM population.person_retired") == [
        (b, "ID_CORRECTED_AT_SOURCE", run3)]
    assert one(url, "SELECT count(*) FROM population.person_history WHERE person_id = %s AND valid_to IS NULL",
               orphan) == [(0,)]
    # B's name now comes from psb, the authority, instead of the hrss fallback
    assert one(url, "SELECT department FROM population.attribute_lineage WHERE person_id = %s AND attribute = 'name'",
               b) == [("psb",)]
    statements_named_current(url)
    assert cells_disagreeing(url) == []  # (the retired person's deletion counted out)
    before = snapshot(url)
    load_day3()
    assert snapshot(url) == before


SCHEMA_OBJECTS = """
    SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'population'
    UNION ALL
    SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'population'::regnamespace
    UNION ALL
    SELECT 'trigger', tgname, pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'population'::regnamespace AND NOT t.tgisinternal
    ORDER BY 1, 2"""


def test_bulk_load_restores_every_index_and_foreign_key(clean_warehouse):
    """A first load takes the bulk path (indexes, foreign keys and the resident_cell triggers dropped, restored after
    the step that fills the table): the schema afterwards is exactly the schema before, and the restored foreign
    keys hold."""
    url = clean_warehouse
    before = one(url, SCHEMA_OBJECTS)
    run1 = day_run(url, DAY1)
    stage(url, run1, "psb_hukou", "psb", [{**PSB_A, "updated": 9}])
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    steps = []
    reconcile_run(run1, url, on_step=lambda name, seconds, statements: steps.extend(s for s, _, _ in statements))
    bulk = [s for s in steps if s.endswith("(bulk load)")]
    assert any(s.startswith("drop foreign keys of population.person_xref") for s in bulk)
    assert any(s.startswith("drop index population.source_record_key") for s in bulk)
    assert any(s.startswith("drop key population.person_xref_pkey") for s in bulk)
    # (a first load in slices: the statements' primary key too, partitioned.SLICE_DROP, built after them)
    assert "drop key population.source_record_pkey (bulk load)" in bulk
    assert sum(s.startswith("drop ") for s in bulk) == sum(s.startswith("restore ") for s in bulk) >= 10
    assert one(url, SCHEMA_OBJECTS) == before
    assert one(url, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'population.person_xref'::regclass"
                    " AND contype = 'f' AND convalidated") == [(2,)]


def test_bulk_load_prewarms_the_indexes_it_rebuilt(clean_warehouse, monkeypatch):
    """CREATE INDEX writes around the buffer pool: after rebuilding indexes, a bulk load reads them into shared_buffers
    with pg_prewarm (migration 0017), every one it rebuilt; not when they would take more than PREWARM_SHARE."""
    from pipelines.reconcile import merge
    from pipelines.warehouse import connect

    url = clean_warehouse
    run1 = day_run(url, DAY1)
    stage(url, run1, "psb_hukou", "psb", [{**PSB_A, "updated": 9}])
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    steps: list[tuple[str, int]] = []
    reconcile_run(run1, url, on_step=lambda name, seconds, statements: steps.extend((s, n) for s, n, _ in statements))
    rebuilt = [s.removeprefix("restore index ").removeprefix("restore key ").removesuffix(" (bulk load)")
               for s, _ in steps if s.startswith(("restore index ", "restore key "))]
    assert len(rebuilt) >= 9 and "population.person_xref_pkey" in rebuilt
    # (and the indexes the next day probes that the load did not rebuild: the cells' key, rebuilt with the cells;
    #  the statements' key, which the one-transaction bulk path keeps and a load in slices rebuilds)
    warmed = sorted(set(rebuilt + merge.PREWARM_ALSO))
    assert [sorted(s.removeprefix("pg_prewarm ").split(", ")) for s, n in steps
            if s.startswith("pg_prewarm ") and n == len(warmed)] == [warmed]  # (in any order)
    with connect(url) as conn:
        assert merge.prewarm(conn, rebuilt) == rebuilt
        monkeypatch.setattr(merge, "PREWARM_SHARE", 0.0)
        assert merge.prewarm(conn, rebuilt) == []


def test_resident_cells_follow_every_write_of_the_persons(day1):
    """population.resident_cell (migration 0018) is the persons counted per cell: counted afresh by the first
    load's bulk path, then kept by triggers through any INSERT, UPDATE, DELETE or TRUNCATE of population.person."""
    url, run1, _ = day1
    assert one(url, "SELECT sum(persons) FROM population.resident_cell") == [(2,)]
    assert cells_disagreeing(url) == []
    with connect(url) as conn:
        conn.execute("INSERT INTO population.person (id_type, id_number, name, sex, birth_date, residence_division,"
                     " row_hash, valid_from, created_run_id, updated_run_id)"
                     " SELECT 'RIC', 'X' || i, '测试', '1', DATE '2000-01-01', '310104', '', now(), %s, %s"
                     " FROM generate_series(1, 3) i", (run1, run1))
    assert cells_disagreeing(url) == []
    assert one(url, "SELECT persons FROM population.resident_cell WHERE birth_date = DATE '2000-01-01'") == [(3,)]
    with connect(url) as conn:  # a move, a death, and an update that changes no counted attribute
        conn.execute("UPDATE population.person SET residence_division = '310105' WHERE id_number = 'X1'")
        conn.execute("UPDATE population.person SET death_date = DATE '2026-01-01', population_status = 'deceased'"
                     " WHERE id_number = 'X2'")
        conn.execute("UPDATE population.person SET employer = '某公司' WHERE id_number = 'X3'")
    assert cells_disagreeing(url) == []
    assert one(url, "SELECT residence_division, death_date IS NULL, persons FROM population.resident_cell"
                    " WHERE birth_date = DATE '2000-01-01' ORDER BY 1, 2") == [
        ("310104", False, 1), ("310104", True, 1), ("310105", True, 1)]
    with connect(url) as conn:
        conn.execute("DELETE FROM population.person WHERE id_number LIKE 'X%'")
    assert cells_disagreeing(url) == []
    assert one(url, "SELECT count(*) FROM population.resident_cell WHERE persons = 0") == [(0,)]  # (emptied: gone)
    with connect(url) as conn:
        conn.execute("TRUNCATE population.person CASCADE")
    assert one(url, "SELECT count(*) FROM population.resident_cell") == [(0,)]


def test_a_new_number_whose_record_is_already_superseded_gives_an_empty_person_that_is_retired(day1):
    """An older interval run after a newer one: its record of key P-Z names a number never seen (C), but the key's
    latest statement (day 3's) names B. C's new person has no current statement: it is written empty and retired
    at once, and the counted cells (migration 0018) never count it."""
    url, run1, _ = day1
    c_id = rid("31010519700303201")

    def load(days: int, **row) -> int:
        day = DAY1 + timedelta(days=days)
        run = day_run(url, day)
        stage(url, run, "psb_hukou", "psb", [dict(PSB_A, source_key="P-Z", **row)], day=day)
        validate_run(run, (day + timedelta(days=1)).date(), url)
        reconcile_run(run, url)
        return run

    load(2, id_number=B_ID, name="李四", sex="2", birth_date="1990-02-15", updated=11)
    run2 = load(1, id_number=c_id, name="王五", sex="1", birth_date="1970-03-03", updated=10)
    assert one(url, "SELECT person_id FROM population.person_xref WHERE source_key = 'P-Z'") == [(person_of(url, B_ID),)]
    assert one(url, "SELECT count(*) FROM population.person WHERE id_number = %s", c_id) == [(0,)]
    assert one(url, "SELECT id_number, reason, run_id FROM population.person_retired") == [
        (c_id, "ID_CORRECTED_AT_SOURCE", run2)]
    assert one(url, "SELECT count(*) FROM population.person_history WHERE id_number = %s", c_id) == [(0,)]
    assert cells_disagreeing(url) == []


def test_department_reports_a_change_file_per_run_and_weekly_snapshots(day1, tmp_path):
    import csv

    from pipelines.report import CHANGE_HEADER, DISCREPANCY_HEADER, QUARANTINE_HEADER, write_department_reports

    url, run1, _ = day1
    a = person_of(url, A_ID)

    def read(path):
        raw = path.read_bytes()
        assert raw.startswith("\ufeff".encode("utf-8"))  # UTF-8 with BOM, for Excel in a Chinese locale
        return list(csv.reader(raw.decode("utf-8-sig").splitlines()))

    # run 1 (a Thursday): the change files, and the departments' first snapshots
    written = write_department_reports(run1, url, tmp_path)
    psb, hrss = tmp_path / "psb" / "discrepancies.csv", tmp_path / "hrss" / "discrepancies.csv"
    psb1, hrss1 = (tmp_path / d / f"discrepancies_run{run1}.csv" for d in ("psb", "hrss"))
    assert {psb, hrss, psb1, hrss1} <= set(written)
    body = [str(a), "residence_division", "310104", "310105", "hrss_employment", "H-A", "P-A", str(run1), str(run1)]
    authority = ["authority", "市公安局", "市人力资源和社会保障局", *body]
    disagreeing = ["disagreeing", "市公安局", "市人力资源和社会保障局", *body]
    assert read(psb) == [DISCREPANCY_HEADER, authority] and read(hrss) == [DISCREPANCY_HEADER, disagreeing]
    assert read(psb1) == [CHANGE_HEADER, ["new", *authority]]
    assert read(hrss1) == [CHANGE_HEADER, ["new", *disagreeing]]
    quarantine = read(tmp_path / "hrss" / f"quarantine_run{run1}.csv")
    assert quarantine[0] == QUARANTINE_HEADER
    assert [r[:3] for r in quarantine[1:]] == [["hrss_employment", "H-BAD", "ID_BAD_CHECK_DIGIT"]]
    assert json.loads(quarantine[1][4])["name"] == "王五"  # the row as received

    # run 2 (Friday): hrss now agrees with psb; its change file says resolved, the snapshot waits for its day
    day2 = DAY1 + timedelta(days=1)
    run2 = day_run(url, day2)
    stage(url, run2, "hrss_employment", "hrss", [
        dict(source_key="H-A", id_type="RIC", id_number=A_ID, name="张三", sex="1", birth_date="19800101",
             residence_division="310104", employer="上海某某科技有限公司")], day=day2)
    validate_run(run2, (day2 + timedelta(days=1)).date(), url)
    reconcile_run(run2, url)
    written = write_department_reports(run2, url, tmp_path)
    resolved = [*body[:-1], str(run2)]
    assert read(tmp_path / "psb" / f"discrepancies_run{run2}.csv") == [
        CHANGE_HEADER, ["resolved", "authority", "市公安局", "市人力资源和社会保障局", *resolved]]
    assert psb not in written and read(psb) == [DISCREPANCY_HEADER, authority]  # (the last snapshot's)

    # the weekly snapshot (or one asked for): departments none concerns any more get the header alone
    write_department_reports(run2, url, tmp_path, snapshot=True)
    assert read(psb) == [DISCREPANCY_HEADER] and read(hrss) == [DISCREPANCY_HEADER]
    assert not list(tmp_path.rglob("*.part"))  # (each file written beside its place, then renamed)


def test_the_weekly_snapshot_day_is_the_runs_data_day_in_shanghai(clean_warehouse):
    from pipelines.report import is_snapshot_day

    url = clean_warehouse
    monday, sunday = day_run(url, datetime(2026, 1, 5, tzinfo=SH)), day_run(url, datetime(2026, 1, 4, tzinfo=SH))
    with connect(url) as conn:
        assert is_snapshot_day(monday, conn) and not is_snapshot_day(sunday, conn)


@pytest.mark.parametrize("partitions", [1, 2])
def test_new_persons_are_numbered_as_one_block_in_id_number_order(clean_warehouse, partitions):
    """30_match_by_id: a run's new persons get consecutive ids from the sequence, in their ID numbers' bytewise
    order, and the sequence is moved past them; a run with no new person draws no id; the next run's new persons
    follow the block."""
    def holder(key: str, id_number: str) -> dict:  # (birth date and sex as the number says)
        born = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        return {**PSB_A, "source_key": key, "id_number": id_number, "birth_date": born,
                "sex": "男" if int(id_number[16]) % 2 else "女"}

    url = clean_warehouse
    c_id, d_id = rid("11010519491231002"), rid("44030419850607891")
    run1 = day_run(url, DAY1)
    stage(url, run1, "psb_hukou", "psb", [  # (staged out of their numbers' order)
        holder("P-D", d_id), holder("P-B", B_ID), holder("P-A", A_ID), holder("P-C", c_id)])
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    reconcile_run(run1, url, partitions=partitions)
    numbered = one(url, "SELECT id_number, person_id FROM population.person ORDER BY person_id")
    assert numbered == [(c_id, 1), (A_ID, 2), (B_ID, 3), (d_id, 4)]
    assert one(url, "SELECT last_value, is_called FROM population.person_id_seq") == [(4, True)]

    day2 = DAY1 + timedelta(days=1)
    run2 = day_run(url, day2)  # the same people again, changed: nobody new
    stage(url, run2, "psb_hukou", "psb", [{**PSB_A, "name": "张叁"}], day=day2)
    validate_run(run2, (day2 + timedelta(days=1)).date(), url)
    reconcile_run(run2, url)
    next_id = "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM population.person_id_seq"
    assert one(url, next_id) == [(5,)]  # (no id used up)

    day3 = DAY1 + timedelta(days=2)
    run3 = day_run(url, day3)
    e_id = rid("31011519700303456")
    stage(url, run3, "psb_hukou", "psb", [holder("P-E", e_id)], day=day3)
    validate_run(run3, (day3 + timedelta(days=1)).date(), url)
    reconcile_run(run3, url)
    assert one(url, "SELECT person_id FROM population.person WHERE id_number = %s", e_id) == [(5,)]
    assert one(url, "SELECT last_value FROM population.person_id_seq") == [(5,)]


@pytest.mark.parametrize("partitions", [1, 2])
def test_step_settings_hold_for_their_step_only(clean_warehouse, monkeypatch, partitions):
    """STEP_SETTINGS: the discrepancy query, the golden query and the candidates run with JIT off (their compile time
    exceeded what it saved); every other step keeps the session's setting, on before it and on again after it — in each backend of a
    partitioned load."""
    from pipelines.reconcile import merge, partitioned

    url = clean_warehouse
    assert merge.STEP_SETTINGS["survivorship.discrepancy_query"] == {"jit": "off"}
    assert merge.STEP_SETTINGS["survivorship.golden_query"] == {"jit": "off"}
    assert merge.STEP_SETTINGS["population/10_candidates.sql"]["jit"] == "off"
    jit_off = ("survivorship.discrepancy_query", "survivorship.golden_query", "population/10_candidates.sql")
    seen: dict[int, list[tuple[str, str]]] = {}  # backend -> (jit, idle timeout) at each step, in order
    accounting: list[tuple[str, str]] = []  # (jit, idle timeout) at the row accounting, on whichever backend
    original = merge.run_script

    def spy(conn, script, params=None, on_statement=None):
        text = script.as_string(conn) if hasattr(script, "as_string") else script
        values = (conn.execute("SHOW jit").fetchone()[0],
                  conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0])
        if "INSERT INTO audit.row_accounting" in text:
            accounting.append(values)
        else:
            seen.setdefault(conn.info.backend_pid, []).append(values)
        return original(conn, script, params, on_statement=on_statement)

    monkeypatch.setattr(merge, "run_script", spy)
    # a session that starts with it on, on a server that ends idle transactions after a second
    monkeypatch.setenv("PGOPTIONS", "-c jit=on -c idle_in_transaction_session_timeout=1000")
    run1 = day_run(url, DAY1)
    stage(url, run1, "psb_hukou", "psb", [{**PSB_A, "updated": 9}])
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    reconcile_run(run1, url, partitions=partitions)
    sliced = ["population/50_statements.sql", "survivorship.golden_query", "survivorship.scd2_merge",
              "survivorship.discrepancy_query"]
    # (a sliced load's match skips 35_candidate_person: partitioned.MATCH_STEPS)
    match = partitioned.MATCH_STEPS if partitions > 1 else [step for step in merge.STEPS if step not in sliced]
    expected = [[*match, *sliced]] + [sliced] * (partitions - 1)  # (the main backend, then the other slices')
    # (a sliced load's backends wait for each other idle in their transactions: never cut off for it; one
    # transaction, the server's timeout)
    wait = "1s" if partitions == 1 else "0"
    assert sorted(seen.values(), key=len, reverse=True) == [
        [("off" if s in jit_off else "on", wait) for s in backend] for backend in expected]
    # the accounting: JIT as the session has it; on the partitioned path it waits, in its transaction, for the
    # last restores (on whichever backend was free first): never cut off for it either
    assert accounting == [("on", wait)]


def test_each_change_opens_the_next_version(day1):
    """Three days, two changes of one person: versions 1, 2, 3, each closed when the next opens (the next number is
    read back from the close of the open version); a day that changes nothing adds none."""
    url, _, _ = day1
    a = person_of(url, A_ID)
    day = DAY1
    for n, (division, address) in enumerate([("310105", "长宁区长宁路3号"), ("310105", "长宁区长宁路3号"),
                                             ("310106", "静安区南京西路5号")], start=2):
        day = day + timedelta(days=1)
        run = day_run(url, day)
        stage(url, run, "psb_hukou", "psb", [{**PSB_A, "residence_division": division,
                                              "residence_address": address, "updated": 10 + n}], day=day)
        validate_run(run, (day + timedelta(days=1)).date(), url)
        golden = []
        reconcile_run(run, url, on_step=lambda step, _s, statements: golden.extend(
            text for text, _n, _t in statements if step == "survivorship.golden_query"))
        assert len(golden) == 1 and "touched" in golden[0]  # (an increment reads its touched persons only)
    hist = one(url, "SELECT version, residence_division, valid_to IS NULL, valid_to = lead(valid_from) OVER"
                    " (ORDER BY version) FROM population.person_history WHERE person_id = %s ORDER BY version", a)
    assert hist == [(1, "310104", False, True), (2, "310105", False, True), (3, "310106", True, None)]


def test_a_changed_person_and_its_closed_version_are_updated_in_place(day1):
    """The SCD2 update of a changed person and the close of its current version are HOT updates (migration 0032):
    no column of an index changes (the gate finds a run's persons through their history, not by an index on
    person.updated_run_id) and the page keeps room for the new row version, so neither writes an index entry —
    the new versions are heap-only tuples, on the page of the old."""
    url, _, _ = day1
    a = person_of(url, A_ID)
    day2 = DAY1 + timedelta(days=1)
    run = day_run(url, day2)
    moved = {**PSB_A, "residence_division": "310105", "residence_address": "长宁区长宁路3号", "updated": 10}
    stage(url, run, "psb_hukou", "psb", [moved], day=day2)
    validate_run(run, (day2 + timedelta(days=1)).date(), url)
    reconcile_run(run, url)
    heap_only = 0x8000  # HEAP_ONLY_TUPLE in t_infomask2 (access/htup_details.h)
    with connect(url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        for table, where in [("population.person", "person_id = %s AND updated_run_id = %s"),
                             ("population.person_history", "person_id = %s AND version = 1 AND updated_run_id < %s")]:
            block, item = conn.execute(f"SELECT (ctid::text::point)[0]::int, (ctid::text::point)[1]::int FROM {table}"
                                       f" WHERE {where}", (a, run)).fetchone()
            flags = conn.execute("SELECT t_infomask2 FROM heap_page_items(get_raw_page(%s, %s)) WHERE lp = %s",
                                 (table, block, item)).fetchone()[0]
            assert flags & heap_only, f"{table}: the new version of person {a} is not a heap-only tuple"


def test_first_load_golden_reads_every_person_and_agrees_with_the_touched_form(clean_warehouse):
    """A first load (the crosswalk empty before the run) builds golden from every crosswalk row, without the join to
    the touched persons that keeps the plan out of the parallel workers: the same golden rows as with it."""
    from pipelines.reconcile import merge, survivorship
    from pipelines.registry import load_authority
    from pipelines.warehouse import run_script, sql_file

    url = clean_warehouse
    run1 = stage_day1(url)
    authorities = load_authority()
    with connect(url) as conn:
        with conn.transaction(force_rollback=True):
            for name in merge.STEPS:
                run_script(conn, sql_file(name), merge.step_params(run1))
            built = []
            for every_person in (False, True):
                conn.execute(survivorship.golden_query(authorities, every_person=every_person))
                built.append(conn.execute("SELECT g::text FROM golden g ORDER BY person_id").fetchall())
                conn.execute("DROP TABLE golden")
            assert built[0] == built[1] and len(built[0]) == 2  # (张三 and 李四)
    golden = []
    reconcile_run(run1, url, on_step=lambda step, _s, statements: golden.extend(
        text for text, _n, _t in statements if step == "survivorship.golden_query"))
    assert len(golden) == 1 and "touched" not in golden[0]
    assert one(url, "SELECT count(*) FROM population.person") == [(2,)]


def test_stored_hashes_are_those_migration_0022_recomputes(day1):
    """Every values hash the pipeline stores (statements, crosswalk, persons, versions) is what
    population.rehash_values() — the migration that replaced md5 — makes of the same values: a warehouse migrated
    from the md5 hashes compares like with like on its next run (an unchanged re-delivery stays a duplicate, an
    unchanged person gets no new version)."""
    url, run1, _ = day1
    hashes = ("SELECT 'sr', source_record_id::text, row_hash FROM population.source_record"
              " UNION ALL SELECT 'x', source_id || '/' || source_key, current_row_hash FROM population.person_xref"
              " UNION ALL SELECT 'p', person_id::text, row_hash FROM population.person"
              " UNION ALL SELECT 'h', person_id || '/' || version, row_hash FROM population.person_history"
              " ORDER BY 1, 2")
    before = one(url, hashes)
    assert {kind for kind, _, _ in before} == {"sr", "x", "p", "h"}
    assert all(h and len(h) <= 16 and int(h, 16) >= 0 for _, _, h in before)  # 64-bit hex, not md5's 32 digits
    with connect(url) as conn:
        conn.execute("SELECT population.rehash_values()")
    assert one(url, hashes) == before
    # pinned: the same values give the same hash on every server the warehouse may move to (hash_record_extended
    # is what hash partitioning relies on, stable across PostgreSQL versions; a failure here means stored hashes
    # would not match after a move, and population.rehash_values() must be run there)
    assert one(url, "SELECT population.values_hash('RIC', '310101198001011234', '张三', '1', '1980-01-01', '汉族',"
                    " NULL, '310101', NULL, '310104', NULL, NULL, 'active', NULL, NULL, NULL, NULL, NULL, NULL,"
                    " NULL)") == [("e6a5ab3ae18d953",)]


def stage_city(url, persons: int = 60) -> int:
    """A first day of ``persons`` residents known to psb and hrss (every fifth living elsewhere by hrss's record,
    every seventh sent twice by psb), a few without ID matched on evidence or queued: staged and validated."""
    run1 = day_run(url, DAY1)
    psb, hrss, education = [], [], []
    for j in range(persons):
        body = f"310101{1950 + j % 50}{1 + j % 12:02d}{1 + j % 28:02d}{j % 1000:03d}"
        number, name, sex = rid(body), f"居民{j}", "男" if int(body[16]) % 2 else "女"
        birth = f"{body[6:10]}-{body[10:12]}-{body[12:14]}"
        row = dict(source_key=f"P-{j}", id_type="RIC", id_number=number, name=name, sex=sex, birth_date=birth,
                   hukou_division="310101", residence_division=f"3101{4 + j % 10:02d}", population_status="正常")
        psb += [row, {**row, "updated": 10}] if j % 7 == 0 else [row]
        hrss.append(dict(source_key=f"H-{j}", id_type="RIC", id_number=number, name=name, sex=sex, birth_date=birth,
                         residence_division="310115" if j % 5 == 0 else row["residence_division"],
                         employer=f"上海某某{j}有限公司"))
        if j % 9 == 0:
            education.append(dict(source_key=f"E-{j}", id_type="RIC", id_number=None, name=name, sex=sex,
                                  birth_date=birth, residence_division=row["residence_division"], school="某中学"))
    education.append(dict(source_key="E-X", id_type="RIC", id_number=None, name="无名", sex="女",
                          birth_date="2010-05-05", residence_division="310110", school="杨浦小学"))
    stage(url, run1, "psb_hukou", "psb", psb)
    stage(url, run1, "hrss_employment", "hrss", hrss)
    stage(url, run1, "education_student", "education", education)
    validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
    return run1


STATEMENT_IDS = {"source_record_id", "current_record_id"}  # (and every src_<attribute>)


def portable_snapshot(url) -> dict[str, list]:
    """snapshot(), with every statement id replaced by the statement's (run, source, seq): the partitioned load
    draws the ids in another order."""
    from support import SNAPSHOT_QUERIES

    with connect(url) as conn:
        key = {i: (r, s, q) for i, r, s, q in conn.execute(
            "SELECT source_record_id, run_id, source_id, seq FROM population.source_record").fetchall()}
        out = {}
        for name, query in SNAPSHOT_QUERIES.items():
            cur = conn.execute(query)
            cols = [d.name for d in cur.description]
            out[name] = sorted(
                (tuple(key.get(v) if c in STATEMENT_IDS or c.startswith("src_") else v for c, v in zip(cols, r))
                 for r in cur.fetchall()), key=repr)
    return out


def test_a_partitioned_first_load_writes_what_one_transaction_writes(clean_warehouse):
    """RECONCILE_PARTITIONS: a load into an empty warehouse reconciled by 1, 2 or 3 backends (more slices than
    some have persons for) leaves the same persons, versions, statements, crosswalk, discrepancies, review rows,
    cells and accounting, statement ids aside — and the same schema."""
    from conftest import truncate_warehouse

    url = clean_warehouse
    schema = one(url, SCHEMA_OBJECTS)
    results = []
    for partitions in (1, 2, 3):
        truncate_warehouse(url)
        run1 = stage_city(url)
        steps = []
        accounting = reconcile_run(run1, url, partitions=partitions, on_step=lambda n, s, st: steps.append(n))
        assert sum(s.startswith("slice ") for s in steps) == 4 * (partitions - 1)
        results.append((accounting, portable_snapshot(url)))
        assert one(url, SCHEMA_OBJECTS) == schema
        assert one(url, "SELECT count(*) FROM population.bulk_load") == [(0,)]
    assert results[0] == results[1] == results[2]
    accounting, state = results[0]
    assert len(state["person"]) == 60 and len(state["discrepancy"]) == 12 and len(state["review"]) == 1
    assert accounting["psb_hukou"]["duplicates"] == 9


@pytest.mark.parametrize("crash", [False, True])
@pytest.mark.parametrize("failing", ["slice", "restore", "accounting"])
def test_a_failed_partitioned_load_leaves_an_empty_warehouse_and_a_rerun_completes(clean_warehouse, monkeypatch,
                                                                                    failing, crash):
    """A partitioned load that fails after the match's writes and tables were committed — in its slices (here: their
    SCD2 merge), or after every slice was committed too, during its restores (here: the crosswalk's key, some
    objects back already, others not) or after them (the row accounting) — is undone: golden tables empty, the
    run's duplicates and review rows gone, the match's tables dropped, every dropped index, key, foreign key and
    trigger back. At once, or, when the process died before it could (``crash``), by the next reconciliation, which
    then loads the run completely, each duplicate and review row once."""
    from pipelines.reconcile import merge, partitioned, survivorship
    from pipelines.report import format_summary, warehouse_summary

    url = clean_warehouse
    schema = one(url, SCHEMA_OBJECTS)
    run1 = stage_city(url)
    match_writes = ("SELECT (SELECT count(*) FROM staging.population_duplicate WHERE run_id = r),"
                    " (SELECT count(*) FROM population.review_queue WHERE run_id = r),"
                    " (SELECT count(*) FROM quarantine.population_record WHERE run_id = r) FROM (SELECT %s AS r) x")
    quarantined_by_validation = one(url, match_writes, run1)[0][2]

    if failing == "slice":
        monkeypatch.setattr(survivorship, "scd2_merge", lambda: "SELECT 1 / 0")
    elif failing == "accounting":
        def fail(conn, run_id, step):
            raise merge.AccountingError("injected")

        monkeypatch.setattr(merge, "account", fail)
    else:
        execute_all = partitioned.execute_all

        def fail(conn, statements):
            if any("person_xref_pkey" in s for s in statements):
                raise psycopg.errors.UniqueViolation("injected")
            execute_all(conn, statements)

        monkeypatch.setattr(partitioned, "execute_all", fail)
    if crash:
        monkeypatch.setattr(partitioned, "recover", lambda conn: None)
    with pytest.raises((merge.AccountingError, psycopg.errors.UniqueViolation, psycopg.errors.DivisionByZero)):
        reconcile_run(run1, url, partitions=2)
    work_tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'population_work'"
    if crash:  # the match's writes (and every slice's rows, unless a slice failed) were committed; the row says how
        # to undo them
        assert one(url, "SELECT run_id FROM population.bulk_load") == [(run1,)]
        assert one(url, "SELECT count(*) > 0 FROM population.person") == [(failing != "slice",)]
        assert one(url, match_writes, run1)[0][1] > 0
        assert (one(url, work_tables)[0][0] > 0) == (failing == "slice")  # (dropped once every slice committed)
        assert (one(url, SCHEMA_OBJECTS) == schema) == (failing == "accounting")  # (every object back before it)
        assert f"! run {run1}: a partitioned load started" in format_summary(warehouse_summary(url))
    else:
        assert one(url, "SELECT count(*) FROM population.bulk_load") == [(0,)]
        assert one(url, "SELECT (SELECT count(*) FROM population.person) + (SELECT count(*) FROM"
                        " population.source_record) + (SELECT count(*) FROM population.person_xref)") == [(0,)]
        assert one(url, match_writes, run1) == [(0, 0, quarantined_by_validation)]
        assert one(url, SCHEMA_OBJECTS) == schema
        assert one(url, work_tables) == [(0,)]
    monkeypatch.undo()
    accounting = reconcile_run(run1, url, partitions=2)
    assert one(url, SCHEMA_OBJECTS) == schema
    assert one(url, "SELECT count(*) FROM population.person") == [(60,)]
    assert sum(a["merged"] for a in accounting.values()) == one(
        url, "SELECT count(*) FROM population.source_record")[0][0]
    assert accounting["psb_hukou"]["duplicates"] == 9
    assert one(url, match_writes, run1) == [(sum(a["duplicates"] for a in accounting.values()), 1,
                                                      quarantined_by_validation + 1)]
    assert cells_disagreeing(url) == []
    assert "partitioned load" not in format_summary(warehouse_summary(url))
    assert one(url, work_tables) == [(0,)]  # (the match's tables: dropped after the load too)


@pytest.mark.parametrize("in_id_order", [True, False])
def test_each_candidate_is_read_by_exactly_the_slice_of_its_person(warehouse_db, in_id_order):
    """partitioned.slice_rows: the candidates of a load in slices keep no person (35_candidate_person is not run);
    each slice reads those of its new persons, joined on the ID, and those matched on evidence, which carry theirs.
    The ID range that narrows each slice's join is measured from the persons (id_ranges): with ids drawn in ID
    order the ranges are disjoint, and were they not, they would overlap — never lose a candidate."""
    from pipelines.reconcile import partitioned

    numbers = [f"{n:018d}" for n in range(100, 160)]
    order = numbers if in_id_order else numbers[::7] + [n for n in numbers if n not in numbers[::7]]
    with connect(warehouse_db) as conn, conn.transaction(force_rollback=True):
        conn.execute("CREATE TEMP TABLE new_person AS SELECT 1000 + i AS person_id, 'RIC'::text AS id_type,"
                     " n AS id_number FROM unnest(%s::text[]) WITH ORDINALITY AS u(n, i)", (order,))
        conn.execute("CREATE TEMP TABLE candidate AS SELECT 'src'::text AS source_id, i AS seq, 'RIC'::text AS"
                     " id_type, n AS id_number FROM unnest(%s::text[] || %s::text[]) WITH ORDINALITY AS u(n, i)",
                     (numbers, numbers[::3]))  # (some IDs with two records)
        conn.execute("INSERT INTO candidate SELECT 'src', 900 + i, NULL, NULL FROM generate_series(1, 3) i")
        conn.execute(partitioned.CANDIDATE_PERSON)
        conn.execute("UPDATE candidate SET person_id = 1000 + 20 * (seq - 900), match_method = 'evidence'"
                     " WHERE id_number IS NULL")  # (matched on evidence: a person of each slice)
        expected = sorted(conn.execute(
            "SELECT c.seq, coalesce(n.person_id, c.person_id), coalesce(c.match_method, 'new') FROM candidate c"
            " LEFT JOIN new_person n USING (id_type, id_number)").fetchall())
        bounds = [-2**63, *partitioned.inner_bounds(1001, 1060, 3), 2**63 - 1]
        ids = partitioned.id_ranges(conn, bounds)
        read = []
        for i in range(3):
            got = conn.execute(sql.SQL("SELECT seq, person_id, match_method FROM ({}) s").format(
                partitioned.slice_rows(conn, "candidate", bounds, i, ids, schema="pg_temp"))).fetchall()
            assert all(bounds[i] <= person < bounds[i + 1] for _, person, _ in got)
            read += got
        assert sorted(read) == expected and len(read) == len(numbers) + len(numbers[::3]) + 3
        overlapping = any(a[1] >= b[0] for a, b in zip(ids, ids[1:]))
        assert overlapping == (not in_id_order)


def test_superseded_rows_are_found_from_the_extracts_flags_or_without_them(clean_warehouse):
    """20_duplicates groups only the rows the extract flagged key_repeated (migration 0030), and every row of a
    source with any row staged without the flag (NULL), flagged or not: the same superseded rows and accounting
    with flags, without, and with both in one source; a key flagged whose other row is quarantined supersedes
    nothing."""
    from conftest import truncate_warehouse

    url = clean_warehouse
    bad = dict(PSB_A, source_key="P-C", id_number=BAD_ID)
    results = []
    for flags in ((False, True, True, False, False, True), (None,) * 6, (False, None, False, False, None, None)):
        truncate_warehouse(url)
        run1 = day_run(url, DAY1)
        staged_rows = [{**PSB_A, "updated": 8}, {**PSB_A, "updated": 10}, {**PSB_A, "updated": 9},
                       dict(PSB_A, source_key="P-B", id_number=B_ID, name="李四", sex="女", birth_date="1990-02-15"),
                       bad, dict(PSB_A, source_key="P-C", id_number=A_ID, updated=11)]
        stage(url, run1, "psb_hukou", "psb", [{**r, "key_repeated": f} for r, f in zip(staged_rows, flags)])
        validate_run(run1, (DAY1 + timedelta(days=1)).date(), url)
        accounting = reconcile_run(run1, url, partitions=1)
        duplicates = one(url, "SELECT seq, kind, duplicate_of FROM staging.population_duplicate WHERE run_id = %s"
                              " ORDER BY seq", run1)
        results.append((accounting, duplicates))
    assert results[0] == results[1] == results[2]
    accounting, duplicates = results[0]
    assert duplicates == [(1, "superseded_in_run", "seq 2"), (3, "superseded_in_run", "seq 2")]
    assert accounting["psb_hukou"] == {"received": 6, "merged": 3, "quarantined": 1, "duplicates": 2}
