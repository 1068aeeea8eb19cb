"""The data-quality gate on the real warehouse: GX suites computed in PostgreSQL, results by GB/T 36344 dimension."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from psycopg import sql
from stdnum.cn import ric as stdnum_ric

from pipelines.quality.gate import QualityGateFailed, enforce, run_gate
from pipelines.quality.suites import DIMENSIONS, SuiteFileError, load_suite, load_suites
from pipelines.reconcile.survivorship import VERSION_COLUMNS
from pipelines.runs import open_run
from pipelines.warehouse import connect

pytestmark = pytest.mark.integration

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DAY = datetime(2026, 1, 5, tzinfo=timezone.utc)


def ric(division: str, birth: date, seq: int) -> str:
    """A genuine 公民身份号码 (python-stdnum is the oracle); odd seq = male."""
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    number = body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]
    assert stdnum_ric.is_valid(number), number
    return number


def person(seq: int, **overrides) -> dict:
    birth = date(1980 + seq, 3, 1 + seq)
    row = {
        "id_type": "RIC",
        "id_number": ric("310104", birth, 100 + seq),
        "name": f"测试{seq}",
        "sex": "1" if (100 + seq) % 2 else "2",
        "birth_date": birth,
        "hukou_division": "310104",
        "residence_division": "310115",
        "population_status": "active",
        "death_date": None,
        "marital_status": "20",
    }
    row.update(overrides)
    return row


def open_population_run(url, day: datetime = DAY) -> int:
    return open_run("population", day, day.replace(day=day.day + 1), url=url)


# a crosswalk row and the statement it names as its key's current one (as the reconciliation writes them)
XREF_WITH_STATEMENT = """
    WITH s AS (
        INSERT INTO population.source_record (run_id, source_id, seq, department, source_key, source_updated_at,
                                              person_id, match_method, row_hash)
        SELECT %(run)s, %(source)s, coalesce(max(seq), 0) + 1, %(dept)s, %(key)s, now(), %(person)s, %(method)s,
               md5(%(key)s)
        FROM population.source_record WHERE run_id = %(run)s AND source_id = %(source)s
        RETURNING *)
    INSERT INTO population.person_xref (source_id, source_key, department, person_id, match_method, first_run_id,
                                        last_run_id, current_record_id, current_updated_at, current_run_id,
                                        current_seq, current_row_hash)
    SELECT source_id, source_key, department, person_id, match_method, run_id, run_id, source_record_id,
           source_updated_at, run_id, seq, row_hash FROM s"""


def insert_xref(conn, source_id: str, key: str, department: str, person_id: int, method: str, run_id: int) -> None:
    conn.execute(XREF_WITH_STATEMENT, {"run": run_id, "source": source_id, "dept": department, "key": key,
                                       "person": person_id, "method": method})


# the person's version as survivorship writes it (the gate finds a run's persons through their versions)
HISTORY = sql.SQL("INSERT INTO population.person_history ({cols}, valid_to, version) "
                  "SELECT {cols}, NULL, 1 FROM population.person WHERE person_id = %s").format(
    cols=sql.SQL(", ").join(map(sql.Identifier, VERSION_COLUMNS)))


def insert_persons(url, run_id: int, rows: list[dict], xref: bool = True) -> list[int]:
    ids = []
    with connect(url) as conn:
        for i, row in enumerate(rows):
            person_id = conn.execute(
                """
                INSERT INTO population.person (id_type, id_number, name, sex, birth_date, hukou_division,
                    residence_division, population_status, death_date, marital_status, row_hash, valid_from,
                    created_run_id, updated_run_id)
                VALUES (%(id_type)s, %(id_number)s, %(name)s, %(sex)s, %(birth_date)s, %(hukou_division)s,
                    %(residence_division)s, %(population_status)s, %(death_date)s, %(marital_status)s,
                    md5(random()::text), now(), %(run_id)s, %(run_id)s)
                RETURNING person_id
                """,
                {**row, "run_id": run_id},
            ).fetchone()[0]
            ids.append(person_id)
            conn.execute(HISTORY, (person_id,))
            if xref:
                insert_xref(conn, "psb_hukou", f"RY{person_id:08d}", "psb", person_id, "id_number", run_id)
    return ids


def results(url, run_id: int) -> dict[str, tuple]:
    with connect(url) as conn:
        rows = conn.execute(
            """
            SELECT r.expectation_id, r.dimension, r.severity, r.success, r.unexpected_count, r.observed, v.suite
            FROM quality.expectation_result r JOIN quality.validation_run v USING (validation_id)
            WHERE v.run_id = %s
            """,
            (run_id,),
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


GOOD = [person(1), person(2), person(3), person(4)]


def wrong_check_digit(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


def test_good_population_passes_and_records_every_expectation_with_its_dimension(clean_warehouse, tmp_path):
    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, GOOD)

    result = run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)

    assert result.passed, [f.expectation for f in result.blocking_failures]
    assert result.blocking_failures == [] and result.warnings == []
    assert enforce(result) is result
    suites = load_suites()
    rules = {rule: s for s in suites for rule in s.rules}
    recorded = results(clean_warehouse, run_id)
    assert set(recorded) == set(rules)
    assert all(success for (_, _, success, *_rest) in recorded.values())
    assert {dimension for (dimension, *_rest) in recorded.values()} == set(DIMENSIONS)
    assert recorded["person.id_number.ric_check_digit"][:3] == ("规范性", "blocking", True)
    assert recorded["person.residence_division.mostly_present"][:2] == ("完整性", "warning")
    assert recorded["person.table.not_empty"][:3] == ("可访问性", "blocking", True)
    # one validation_run per suite, with the counts
    with connect(clean_warehouse) as conn:
        runs = conn.execute(
            "SELECT suite, table_name, success, blocking_failed, warning_failed, evaluated, data_docs_path"
            " FROM quality.validation_run WHERE run_id = %s ORDER BY suite",
            (run_id,),
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in runs] == [
        ("population.person", "population.person", True, 0, 0),
        ("population.person_xref", "population.person_xref", True, 0, 0),
    ]
    assert [r[5] for r in runs] == [len(s.rules) for s in sorted(suites, key=lambda s: s.name)]
    assert all(Path(r[6]).is_file() for r in runs)
    # scorecard: passed/total per dimension, and the files a department reads
    assert sum(v["total"] for v in result.scorecard.values()) == len(rules)
    assert all(v["passed"] == v["total"] > 0 for v in result.scorecard.values())
    card = json.loads(result.scorecard_json.read_text(encoding="utf-8"))
    assert card["passed"] is True and card["dimensions"]["准确性"]["en"] == "accuracy"
    assert result.scorecard_json == tmp_path / "quality" / str(run_id) / "scorecard.json"
    html = result.scorecard_html.read_text(encoding="utf-8")
    assert "数据质量评分卡" in html and "scorecard" in html and "通过 PASSED" in html
    assert result.data_docs_index == tmp_path / "data_docs" / "index.html"
    assert result.data_docs_index.is_file()
    assert "population.person" in result.data_docs_index.read_text(encoding="utf-8")


def test_death_reported_but_not_yet_deregistered_is_a_warning_not_a_block(clean_warehouse, tmp_path):
    # 卫健委 has reported the death, 公安 has not yet deregistered (they do within 1-2 days): warn, do not block
    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, [*GOOD[:2], person(5, death_date=date(2025, 12, 1))])
    result = run_gate(run_id, suites=["population.person"], url=clean_warehouse, build_docs=False,
                      reports_dir=tmp_path)
    assert result.passed
    assert "person.population_status.death_reported_not_deregistered" in {w.expectation for w in result.warnings}


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ({"id_number": wrong_check_digit(person(5)["id_number"])}, "person.id_number.ric_check_digit"),
        ({"id_number": person(5)["id_number"][:17]}, "person.id_number.ric_format"),  # 17 characters
        ({"population_status": "deceased"}, "person.population_status.deceased_has_death_date"),
        ({"birth_date": date(1985, 3, 7)}, "person.birth_date.agrees_with_id"),  # the ID says 1985-03-06
        ({"sex": "2"}, "person.sex.agrees_with_id"),                              # the ID says male
        ({"sex": "M"}, "person.sex.code"),
        ({"hukou_division": "990104"}, "person.hukou_division.code"),
        ({"marital_status": "married"}, "person.marital_status.code"),
        ({"name": None}, "person.name.present"),
        ({"birth_date": date(1889, 12, 31), "id_number": None}, "person.birth_date.plausible"),
    ],
)
def test_a_bad_golden_person_fails_the_right_blocking_expectation(clean_warehouse, tmp_path, bad, rule):
    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, [*GOOD[:2], person(5, **bad)])

    result = run_gate(run_id, suites=["population.person"], url=clean_warehouse, build_docs=False,
                      reports_dir=tmp_path)

    assert not result.passed
    failed = {f.expectation: f for f in result.blocking_failures}
    assert rule in failed, sorted(failed)
    failure = failed[rule]
    assert failure.severity == "blocking" and failure.dimension in DIMENSIONS and failure.suite == "population.person"
    assert (failure.observed.get("unexpected_count") or failure.observed.get("observed_value")) == 1
    recorded = results(clean_warehouse, run_id)
    assert recorded[rule][2] is False
    with pytest.raises(QualityGateFailed, match=rule.replace(".", r"\.")) as raised:
        enforce(result, url=clean_warehouse)
    assert raised.value.result is result
    with connect(clean_warehouse) as conn:
        status = conn.execute("SELECT status FROM audit.run WHERE run_id = %s", (run_id,)).fetchone()[0]
        assert status == "blocked"
        assert conn.execute(
            "SELECT success, blocking_failed >= 1 FROM quality.validation_run WHERE run_id = %s", (run_id,)
        ).fetchone() == (False, True)


def test_duplicate_person_and_person_without_xref_fail_consistency(clean_warehouse, tmp_path):
    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, GOOD)
    # the same number again under another document type (the unique index is on (id_type, id_number))
    insert_persons(clean_warehouse, run_id, [person(1, id_type="PRP", name="重复")])
    insert_persons(clean_warehouse, run_id, [person(6)], xref=False)

    result = run_gate(run_id, url=clean_warehouse, build_docs=False, reports_dir=tmp_path)

    failed = {f.expectation: f for f in result.blocking_failures}
    assert set(failed) == {"person.id_number.unique", "person.person_id.has_xref"}
    assert failed["person.id_number.unique"].dimension == "一致性"
    assert failed["person.id_number.unique"].observed["observed_value"] == 1
    assert result.scorecard["一致性"]["passed"] == result.scorecard["一致性"]["total"] - 2
    with pytest.raises(QualityGateFailed) as raised:
        enforce(result, mark_run=False)
    message = str(raised.value)
    assert "person.id_number.unique" in message and "person.person_id.has_xref" in message
    assert f"run {run_id}" in message


def test_xref_pointing_at_no_person_fails_the_xref_suite(clean_warehouse, tmp_path):
    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, GOOD)
    with connect(clean_warehouse) as conn:
        insert_xref(conn, "health_vital_events", "E1", "health", 999999, "evidence", run_id)
        insert_xref(conn, "hrss_employment", "J1", "hrss", 1, "guess", run_id)

    result = run_gate(run_id, suites=["population.person_xref"], url=clean_warehouse, build_docs=False,
                      reports_dir=tmp_path)

    assert {f.expectation for f in result.blocking_failures} == {
        "xref.person_id.references_person", "xref.match_method.code",
    }
    assert [s.suite for s in result.suites] == ["population.person_xref"]


def test_warnings_are_reported_but_do_not_block(clean_warehouse, tmp_path):
    run_id = open_population_run(clean_warehouse)
    rows = [*GOOD, person(7, residence_division=None), person(8, residence_division="310103")]  # 卢湾, retired
    insert_persons(clean_warehouse, run_id, rows)

    result = run_gate(run_id, url=clean_warehouse, build_docs=False, reports_dir=tmp_path)

    assert result.passed and result.blocking_failures == []
    assert {f.expectation for f in result.warnings} == {
        "person.residence_division.mostly_present", "person.residence_division.shanghai_district",
    }
    assert all(f.severity == "warning" for f in result.warnings)
    assert enforce(result, url=clean_warehouse) is result
    recorded = results(clean_warehouse, run_id)
    assert recorded["person.residence_division.mostly_present"][1:4] == ("warning", False, 1)
    assert result.scorecard["完整性"]["passed"] == result.scorecard["完整性"]["total"] - 1
    assert "警告 Warnings" in result.scorecard_html.read_text(encoding="utf-8")
    with connect(clean_warehouse) as conn:
        assert conn.execute(
            "SELECT success, warning_failed FROM quality.validation_run WHERE run_id = %s AND suite = %s",
            (run_id, "population.person"),
        ).fetchone() == (True, 2)


def test_timeliness_is_relative_to_the_run(clean_warehouse, tmp_path):
    first = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, first, GOOD)
    later = open_population_run(clean_warehouse, DAY.replace(day=DAY.day + 1))  # a run that changed nothing

    result = run_gate(later, url=clean_warehouse, build_docs=False, reports_dir=tmp_path)

    assert result.passed
    stale = {f.expectation: f for f in result.warnings}
    assert set(stale) == {"person.table.updated_by_run", "xref.table.updated_by_run"}
    assert stale["person.table.updated_by_run"].dimension == "时效性"
    assert stale["person.table.updated_by_run"].observed["observed_value"] == first
    assert result.parameters["run_id"] == str(later)


def test_rerunning_the_gate_for_a_run_replaces_its_results(clean_warehouse, tmp_path):
    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, [*GOOD, person(5, population_status="deceased")])
    first = run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)
    assert not first.passed
    with connect(clean_warehouse) as conn:
        conn.execute("UPDATE population.person SET death_date = DATE '2025-12-01' WHERE name = '测试5'")

    second = run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)

    assert second.passed
    with connect(clean_warehouse) as conn:
        runs = conn.execute(
            "SELECT validation_id, success FROM quality.validation_run WHERE run_id = %s", (run_id,)
        ).fetchall()
        n_results = conn.execute(
            "SELECT count(*) FROM quality.expectation_result r JOIN quality.validation_run v USING (validation_id)"
            " WHERE v.run_id = %s",
            (run_id,),
        ).fetchone()[0]
    assert len(runs) == 2 and all(success for _, success in runs)
    assert {v for v, _ in runs}.isdisjoint({s.validation_id for s in first.suites})
    assert n_results == sum(len(s.rules) for s in load_suites())
    assert results(clean_warehouse, run_id)["person.population_status.deceased_has_death_date"][2] is True
    # Data Docs keep one validation page per suite for the run, the latest
    pages = list((tmp_path / "data_docs" / "validations").rglob("*.html"))
    assert len([p for p in pages if f"run-{run_id}" in p.parts]) == 2
    assert all(Path(s.data_docs_page).is_file() for s in second.suites)
    assert not any(Path(s.data_docs_page).exists() for s in first.suites)


def test_default_reports_go_to_settings_reports_dir(clean_warehouse):
    from pipelines.settings import settings

    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, GOOD)

    result = run_gate(run_id, suites=["population.person_xref"])

    assert result.passed
    assert result.data_docs_index == settings.reports_dir / "data_docs" / "index.html"
    assert result.data_docs_index.is_file()
    assert (settings.reports_dir / "quality" / str(run_id) / "scorecard.html").is_file()


def test_gate_needs_an_opened_run(clean_warehouse, tmp_path):
    with pytest.raises(ValueError, match="no run 4242"):
        run_gate(4242, url=clean_warehouse, build_docs=False, reports_dir=tmp_path)


# --- suite files --------------------------------------------------------------------------------------------


def test_suite_files_carry_dimension_severity_and_description():
    suites = {s.name: s for s in load_suites()}
    assert {"population.person", "population.person_xref"} <= set(suites)
    person_rules = suites["population.person"].rules.values()
    assert {r.dimension for r in person_rules} == set(DIMENSIONS)
    assert all(r.severity in ("blocking", "warning") and r.description for r in person_rules)
    for s in suites.values():
        for expectation in s.suite.expectations:
            expected = "critical" if expectation.meta["severity"] == "blocking" else "warning"
            assert expectation.severity.value == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "broken", "expectations": [', "not valid JSON: line 1"),
        ('{"name": "broken", "meta": {"table": "population.person"}, "expectations": ['
         '{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "name"},'
         ' "meta": {"rule": "r1", "dimension": "completeness", "severity": "blocking", "description": "姓名"}}]}',
         "meta.dimension must be one of"),
        ('{"name": "broken", "meta": {"table": "population.person"}, "expectations": ['
         '{"type": "expect_column_values_to_be_nice", "kwargs": {"column": "name"},'
         ' "meta": {"rule": "r1", "dimension": "完整性", "severity": "blocking", "description": "姓名"}}]}',
         "not a valid expectation"),
        ('{"name": "other", "meta": {"table": "population.person"}, "expectations": []}',
         "must equal the file name"),
    ],
)
def test_a_suite_file_that_does_not_load_fails_loudly_with_its_name(tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteFileError, match=message) as raised:
        load_suite(path)
    assert str(raised.value).startswith(str(path))


def test_increment_validates_the_rows_it_wrote_and_a_table_check_validates_all(clean_warehouse, tmp_path):
    """Scope 'auto': a run that wrote under 20 % of the persons validates its own rows only (their cost follows
    the change), so a defect written by an earlier run is not charged to it; a defect it wrote blocks it; the
    whole-table facts still hold for the table; scope 'table' (an operator's periodic check) sees every row."""
    url = clean_warehouse
    run1 = open_population_run(url)
    insert_persons(url, run1, [person(i) for i in range(1, 16)] + [person(16, sex="9")])  # an old defect
    with connect(url) as conn:
        conn.execute("ANALYZE population.person; ANALYZE population.person_xref")
    run2 = open_population_run(url, DAY.replace(day=6))
    insert_persons(url, run2, [person(20)])

    clean = run_gate(run2, url=url, reports_dir=tmp_path, build_docs=False)
    assert [s.scope for s in clean.suites] == ["run", "run"]
    assert clean.passed, [f.expectation for f in clean.blocking_failures]
    assert results(url, run2)["person.sex.agrees_with_id"][2] is True
    with connect(url) as conn:
        assert conn.execute("SELECT DISTINCT scope FROM quality.validation_run WHERE run_id = %s",
                            (run2,)).fetchall() == [("run",)]

    full = run_gate(run2, url=url, reports_dir=tmp_path, build_docs=False, scope="table")
    assert [s.scope for s in full.suites] == ["table", "table"]
    defect = {f.expectation for f in full.blocking_failures}
    assert not full.passed and defect == {"person.sex.agrees_with_id"}

    run3 = open_population_run(url, DAY.replace(day=7))
    insert_persons(url, run3, [person(21, sex="9")])
    bad = run_gate(run3, url=url, reports_dir=tmp_path, build_docs=False)
    assert [s.scope for s in bad.suites] == ["run", "run"]
    assert {f.expectation for f in bad.blocking_failures} == defect
    # (scope 'run' validates copies of the run's rows, which the gate drops when done)
    with connect(url) as conn:
        assert conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'quality'::regnamespace"
                            " AND relname LIKE 'gate%'").fetchall() == []


def test_scope_tables_a_killed_gate_left_are_dropped_by_the_next_gate(clean_warehouse, tmp_path):
    """A gate killed mid-run leaves its copies of the run's rows (its ``finally`` never ran) — or, made by an earlier
    version, views of them, which would block a migration altering their table's columns. The next gate drops those
    of runs no longer running (or gone) and keeps a running run's, which may be a concurrent gate's."""
    from pipelines.runs import close_run

    url = clean_warehouse
    done, running, gate_run = (open_population_run(url, DAY.replace(day=d)) for d in (8, 9, 10))
    close_run(done, "success", url=url)
    insert_persons(url, gate_run, [person(30)])
    left = {f"gate_population_person_r{done}": "VIEW", f"gate_population_person_xref_r{done}_p12": "TABLE",
            f"gate_population_person_r{running}": "VIEW", f"gate_population_person_r{running}_p34": "TABLE",
            "gate_population_person_r999999_p56": "TABLE"}
    with connect(url) as conn:
        for name, kind in left.items():
            table = "person_xref" if "xref" in name else "person"
            conn.execute(f"CREATE {kind} quality.{name} AS SELECT * FROM population.{table}")
    result = run_gate(gate_run, url=url, reports_dir=tmp_path, build_docs=False, scope="run")
    assert [s.scope for s in result.suites] == ["run", "run"]
    with connect(url) as conn:
        kept = {v for (v,) in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'quality'::regnamespace AND relname LIKE 'gate%'")}
        assert kept == {f"gate_population_person_r{running}", f"gate_population_person_r{running}_p34"}
        conn.execute(f"DROP VIEW quality.gate_population_person_r{running}")
        conn.execute(f"DROP TABLE quality.gate_population_person_r{running}_p34")


def test_suite_pages_are_rendered_again_only_when_a_suite_or_a_page_changed(clean_warehouse, tmp_path):
    """Data Docs: each gate renders its validation pages and the index; a suite's page only when the suites it was
    rendered from changed (the digest in data_docs/.suite-pages), or when the page is missing."""
    import os
    import time

    run_id = open_population_run(clean_warehouse)
    insert_persons(clean_warehouse, run_id, GOOD)
    docs = tmp_path / "data_docs"
    page = docs / "expectations" / "population" / "person.html"
    run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)
    marker = (docs / ".suite-pages").read_text()
    assert page.is_file() and len(marker) == 64

    def stamp(path):  # (set back, so that a rewrite within the same clock tick shows)
        os.utime(path, ns=(1, 1))
        return path.stat().st_mtime_ns

    old = stamp(page)
    second = run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)
    assert second.passed and page.stat().st_mtime_ns == old  # the same suites: not rendered again
    assert all(Path(s.data_docs_page).is_file() for s in second.suites)

    (docs / ".suite-pages").write_text("0" * 64)  # rendered from other suites
    run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)
    assert page.stat().st_mtime_ns != old and (docs / ".suite-pages").read_text() == marker

    page.unlink()  # a page gone
    time.sleep(0.01)
    run_gate(run_id, url=clean_warehouse, reports_dir=tmp_path)
    assert page.is_file()
