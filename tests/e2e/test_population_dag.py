"""End to end: the real population DAG run with dag.test() over a full first load and simulated days.

The simulated departments write one day at a time, as real 前置库 rows and file drops appear over time, and the DAG
runs after each day. Checked: every run succeeds and its row accounting matches what the departments sent; the
planted defects are quarantined with their reason codes, exactly; re-running a day leaves every table identical;
discrepancies and lineage are right; a deliberately broken day is blocked by the quality gate.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from support import rows, snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SH = ZoneInfo("Asia/Shanghai")
PERSONS = 600
DAYS = 3


@pytest.fixture(scope="module")
def world(warehouse_db, frontdb, airflow_db):
    """Simulated departments + the API server + the DAG; yields a function that writes and runs one day."""
    from airflow.dag_processing.dagbag import DagBag

    from conftest import truncate_warehouse
    from pipelines import simulate
    from pipelines.settings import settings
    from pipelines.simulate.api import start_in_thread

    truncate_warehouse(warehouse_db)
    dag = DagBag(dag_folder=str(settings.project_root / "dags")).dags["population_daily"]
    stop = start_in_thread(settings.sim_api_url, settings.sim_api_dir)
    # defect rates raised so that a small world still plants every kind at least once
    rates = simulate.DefectRates(malformed_row=0.02, foreign_id_bad_format=0.06, id_type_unknown=0.06,
                                 key_missing=0.01, name_missing=0.01, bad_date=0.01, twin_share=0.01)
    common = dict(persons=PERSONS, seed=7, start=settings.sim_start, landing_dir=settings.landing_dir,
                  api_dir=settings.sim_api_dir, frontdb_url=frontdb, rates=rates)
    manifest = simulate.generate(days=DAYS, only_days=[0], **common)

    state = {"manifest": manifest}

    def run_day(d: int, write: bool = True):
        if write and d > 0:
            state["manifest"] = simulate.write_day(d, **common)
        start = datetime.combine(settings.sim_start + timedelta(days=d), datetime.min.time(), tzinfo=SH)
        dagrun = dag.test(logical_date=start + timedelta(days=1))
        return dagrun

    state["run_day"] = run_day
    state["runs"] = [run_day(d) for d in range(DAYS + 1)]
    yield state
    stop()


def test_every_day_runs_green(world, warehouse_db):
    assert [str(r.state) for r in world["runs"]] == ["success"] * (DAYS + 1)
    statuses = rows(warehouse_db, "SELECT interval_start, status FROM audit.run ORDER BY interval_start")
    assert [s for _, s in statuses] == ["success"] * (DAYS + 1)


def test_row_accounting_matches_what_the_departments_sent(world, warehouse_db):
    manifest = world["manifest"]
    got = {(d, sid): (rec, mer, qua, dup) for d, sid, rec, mer, qua, dup in rows(
        warehouse_db,
        "SELECT (r.interval_start AT TIME ZONE 'Asia/Shanghai')::date - %s, a.source_id, a.received, a.merged,"
        " a.quarantined, a.duplicates FROM audit.row_accounting a JOIN audit.run r USING (run_id)",
        date.fromisoformat(manifest.days[0]["date"]))}
    for d, entry in manifest.days.items():
        for sid, src in entry["sources"].items():
            received, merged, quarantined, duplicates = got[(d, sid)]
            assert received == src["rows"] - src["rows_unreadable"], (d, sid)
            assert received == merged + quarantined + duplicates
    assert sum(v[1] for v in got.values()) > PERSONS  # the full load merged the population


@pytest.mark.parametrize("code", [
    "ID_BAD_CHECK_DIGIT", "ID_BAD_BIRTH_DATE", "ID_UNKNOWN_DIVISION", "SEX_MISMATCH", "BIRTH_DATE_MISMATCH",
    "BAD_DATE", "NAME_MISSING", "KEY_MISSING", "BAD_DIVISION", "FOREIGN_ID_BAD_FORMAT", "ID_TYPE_UNKNOWN",
    "MALFORMED_ROW", "REVIEW_AMBIGUOUS_MATCH",
])
def test_planted_defects_are_quarantined_with_their_reason(world, warehouse_db, code):
    planted = world["manifest"].count(code)
    assert planted > 0, f"the simulation planted no {code}: raise its rate in this test"
    quarantined = rows(warehouse_db, "SELECT count(*) FROM quarantine.population_record WHERE %s = ANY(reasons)",
                       code)[0][0]
    assert quarantined == planted


def test_nothing_is_quarantined_for_a_reason_that_was_not_planted(world, warehouse_db):
    reasons = {r for (r,) in rows(warehouse_db, "SELECT DISTINCT unnest(reasons) FROM quarantine.population_record")}
    planted = {k for d in world["manifest"].days.values() for s in d["sources"].values() for k in s["defects"]}
    assert reasons - planted == set()


def test_warnings_keep_the_record(world, warehouse_db):
    manifest = world["manifest"]
    for code in ("W_ID_UPGRADED_15", "W_DIVISION_POSTDATES_BIRTH"):
        kept = rows(warehouse_db, "SELECT count(*) FROM population.source_record WHERE %s = ANY(warnings)", code)[0][0]
        dup = rows(warehouse_db, "SELECT count(*) FROM staging.population_duplicate d JOIN staging.population_record s"
                   " USING (run_id, source_id, seq) WHERE %s = ANY(s.warnings)", code)[0][0]
        assert kept + dup == manifest.count(code) > 0, code


def test_files_that_cannot_be_read_are_recorded(world, warehouse_db):
    files = rows(warehouse_db, "SELECT reason, count(*) FROM quarantine.source_file GROUP BY reason ORDER BY 1")
    assert dict(files) == {"EMPTY_FILE": world["manifest"].count("EMPTY_FILE"),
                           "MALFORMED_FILE": world["manifest"].count("MALFORMED_FILE")}


def test_late_file_is_taken_by_the_next_run(world, warehouse_db):
    late = [(d, o) for d, e in world["manifest"].days.items() for s in e["sources"].values()
            for o in s["outputs"] if o.get("late")]
    assert late, "the simulation planted a late file"
    for d, output in late:
        taken = rows(warehouse_db, "SELECT r.interval_start AT TIME ZONE 'Asia/Shanghai', m.drop_date"
                     " FROM audit.file_manifest m JOIN audit.run r USING (run_id) WHERE m.path LIKE %s",
                     "%" + output["path"])
        assert len(taken) == 1
        run_day, drop_date = taken[0]
        assert drop_date.isoformat() == output["folder_date"]          # dropped into the old folder
        assert run_day.date() > drop_date                                # taken by a later run, not lost


def test_discrepancies_go_to_the_authority_naming_the_department(world, warehouse_db):
    manifest = world["manifest"]
    by = dict(((a, d, attr), n) for a, d, attr, n in rows(
        warehouse_db, "SELECT authority_department, department, attribute, count(*) FROM population.discrepancy"
                      " WHERE status = 'open' GROUP BY 1, 2, 3"))
    assert by.get(("psb", "hrss", "name"), 0) >= manifest.count("CONFLICT_NAME") > 0
    assert by.get(("psb", "hrss", "residence_division"), 0) >= 1


def test_lineage_of_chosen_values(world, warehouse_db):
    # a person known to both psb and hrss: name from psb (authority), employer from hrss
    person = rows(warehouse_db, """
        SELECT p.person_id FROM population.person p
        WHERE EXISTS (SELECT 1 FROM population.person_xref x WHERE x.person_id = p.person_id AND x.department = 'psb')
          AND EXISTS (SELECT 1 FROM population.person_xref x WHERE x.person_id = p.person_id AND x.department = 'hrss')
        ORDER BY p.person_id LIMIT 1""")[0][0]
    lineage = {a: (v, d, s) for a, v, d, s in rows(
        warehouse_db, "SELECT attribute, value, department, source_id FROM population.attribute_lineage"
                      " WHERE person_id = %s", person)}
    assert lineage["name"][1:] == ("psb", "psb_hukou")
    assert lineage["employer"][1:] == ("hrss", "hrss_employment")
    # the lineage's record really says that value
    src = rows(warehouse_db, "SELECT s.name FROM population.person p JOIN population.source_record s"
                             " ON s.source_record_id = p.src_name WHERE p.person_id = %s", person)
    assert src == [(lineage["name"][0],)]


def test_survivorship_picks_what_the_authority_order_says(world, warehouse_db):
    """The golden query finds each attribute's winner without sorting per attribute (pipelines/reconcile/
    survivorship.py); here every person's lineage pointers are checked against the plain formulation: among the
    person's current statements from the attribute's ordered departments with a value, the first by department
    order, then latest source update, then highest statement id."""
    from pipelines.registry import load_authority

    checked = 0
    for auth in load_authority():
        expected = rows(warehouse_db, f"""
            SELECT sr.person_id, (array_agg(sr.source_record_id ORDER BY array_position(%s::text[], sr.department),
                                            sr.source_updated_at DESC, sr.source_record_id DESC))[1]
            FROM population.source_record sr
            JOIN population.person_xref x ON x.current_record_id = sr.source_record_id
            WHERE sr.{auth.attribute} IS NOT NULL AND sr.department = ANY(%s::text[])
            GROUP BY sr.person_id ORDER BY 1""", list(auth.order), list(auth.order))
        actual = rows(warehouse_db, f"SELECT person_id, src_{auth.attribute} FROM population.person"
                                    f" WHERE src_{auth.attribute} IS NOT NULL ORDER BY 1")
        assert actual == expected, auth.attribute
        checked += len(actual)
    assert checked > PERSONS


def test_rerunning_a_day_leaves_the_tables_identical(world, warehouse_db):
    before = snapshot(warehouse_db)
    dagrun = world["run_day"](DAYS, write=False)
    assert str(dagrun.state) == "success"
    assert snapshot(warehouse_db) == before


def test_publication_with_human_approval_driven_through_the_dag(world, warehouse_db):
    """publish_population: clean unconditional releases go out automatically; a 有条件开放 release (or one whose
    review warned) waits in Airflow's Human-in-the-loop until a person answers — nothing of it is served before."""
    import threading

    from airflow.dag_processing.dagbag import DagBag

    from pipelines.airflow.hitl import answer_all
    from pipelines.settings import settings

    dag = DagBag(dag_folder=str(settings.project_root / "dags")).dags["publish_population"]
    seen_while_waiting: dict[str, tuple] = {}
    done = threading.Event()
    answered: list = []

    errors: list[BaseException] = []

    def decide(request: dict) -> str:
        try:
            return review(request)
        except BaseException as exc:  # noqa: BLE001 - reported below; answer so that the DAG run ends
            errors.append(exc)
            return "Reject"

    def review(request: dict) -> str:
        release_id = request["subject"].split("release ")[1].split(" ")[0]
        code = request["subject"].rsplit("(", 1)[1].rstrip(")")
        status = rows(warehouse_db, "SELECT status FROM publish.release WHERE release_id = %s", release_id)[0][0]
        served = rows(warehouse_db, "SELECT current_release_id FROM publish.catalog_entry WHERE dataset_code = %s",
                      code)
        seen_while_waiting[code] = (release_id, status, served)
        assert "保密审查" in request["body"] or "review" in request["body"].lower()
        return "Reject" if code == "resident_microdata_sample" else "Approve"

    # dag.test() runs tasks in this (main) thread; the person answers from another, as the UI would
    reviewer = threading.Thread(target=lambda: answered.extend(answer_all(
        "publish_population", decide, user="审核员 reviewer", timeout_s=300, until=done.is_set)), daemon=True)
    reviewer.start()
    try:
        dagrun = dag.test()
    finally:
        done.set()
        reviewer.join(timeout=30)
    assert not errors, errors
    assert str(dagrun.state) == "success"
    assert answered, "at least the 有条件开放 datasets waited for a person"

    releases = {code: (rid, status, approved_by) for rid, code, status, approved_by in rows(
        warehouse_db, "SELECT release_id, dataset_code, status, approved_by FROM publish.release")}
    # the conditional dataset waited, unserved, until approved; then it was published with the approver's name
    rid, status_then, served_then = seen_while_waiting["foreign_residents_by_district_nationality"]
    assert status_then == "awaiting_approval" and served_then in ([], [(None,)])
    assert releases["foreign_residents_by_district_nationality"] == (rid, "published", "审核员 reviewer")
    # the rejected one is not served
    assert releases["resident_microdata_sample"][1] == "rejected"
    assert rows(warehouse_db, "SELECT to_regclass('publish.resident_microdata_sample')") == [(None,)]
    assert not (settings.publish_dir / "resident_microdata_sample" / "current").exists()
    # every release either went out automatically (no request) or through a person's decision
    for code, (rid, status, approved_by) in releases.items():
        if code in seen_while_waiting:
            continue
        assert status == "published" and approved_by.startswith("auto"), (code, status, approved_by)
    # the published files are where a portal syncs them, and the table matches the release
    for code, (rid, status, _) in releases.items():
        if status == "published":
            current = settings.publish_dir / code / "current"
            assert current.resolve().name == rid
            assert {p.name for p in current.iterdir()} >= {"data.csv", "data.xlsx", "data.xml", "data.json",
                                                             "manifest.json", "review.json"}


def test_a_broken_day_is_blocked_by_the_gate(world, warehouse_db, frontdb):
    """公安's 前置库 delivers deregistrations (人口状态 死亡) with no date for dozens of residents: the golden table
    would say 'deceased' with no death date — a blocking 一致性 failure: the run fails, the Asset is not updated."""
    from pipelines.warehouse import connect

    broken = DAYS + 1
    day = world["manifest"].days[0]["date"]
    start = datetime.fromisoformat(day).replace(tzinfo=SH) + timedelta(days=broken)
    with connect(frontdb) as conn:
        conn.execute(
            """INSERT INTO psb.t_rk_hjxx
               SELECT DISTINCT ON ("RYBH") "RYBH", "GMSFHM", "XM", "XB", "CSRQ", "MZ", "HJDZ_XZQH", "HJDZ",
                      "JZDZ_XZQH", "JZDZ", '死亡', '死亡注销', NULL, %s
               FROM psb.t_rk_hjxx WHERE "RKZT" = '正常' AND "GMSFHM" ~ '^[0-9]{17}[0-9X]$'
               ORDER BY "RYBH" LIMIT 40""",
            (start + timedelta(hours=3),),
        )
    dagrun = world["run_day"](broken, write=False)
    assert str(dagrun.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()}
    assert states["quality_gate"] == "failed"
    assert states["publish_golden"] == "upstream_failed"
    status = rows(warehouse_db, "SELECT status FROM audit.run ORDER BY interval_start DESC LIMIT 1")
    assert status == [("blocked",)]
    failed = rows(warehouse_db, """SELECT r.expectation_id FROM quality.expectation_result r
        JOIN quality.validation_run v USING (validation_id) JOIN audit.run a USING (run_id)
        WHERE a.status = 'blocked' AND NOT r.success AND r.severity = 'blocking'""")
    assert ("person.population_status.deceased_has_death_date",) in failed
