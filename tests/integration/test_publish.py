"""Publication on the real warehouse: releases of the population datasets, the privacy review, approval,
atomic publication, rollback, the catalog and the CLI.

Each test starts from an empty warehouse (``clean_warehouse``) and an empty publish schema and directory, fills
population.person with a few thousand synthetic residents in SQL (districts incl. retired codes, sexes, ages
0-86, 户籍 / 来沪 / 境外, some deceased or moved out), and records a population run whose quality gate passed.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from psycopg import sql
from scipy.optimize import linprog

from pipelines import cli as main_cli
from pipelines.publish import catalog, exports, flow
from pipelines.publish.datasets import load_datasets
from pipelines.runs import close_run, open_run
from pipelines.settings import settings
from pipelines.warehouse import connect

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 1, 5, tzinfo=SHANGHAI)          # the run's interval is this day: as_of = 2026-01-05
REAL_DATASETS = settings.project_root / "datasets"
POP = "population_by_district_sex_age"
REG = "registered_residents_by_district"
VITAL = "vital_events_by_district_month"
FOREIGN = "foreign_residents_by_district_nationality"
MICRO = "resident_microdata_sample"

# 40 slots: a rough weight per district of residence (浦东 heavy), two retired codes that must map to successors
_DISTRICT_SLOTS = (["310115"] * 8 + ["310112"] * 4 + ["310113"] * 3 + ["310117"] * 3 + ["310114"] * 3
                   + ["310107", "310110", "310104", "310118", "310120", "310106", "310109", "310105", "310101",
                      "310116", "310151", "310108", "310119"] + ["310107", "310110", "310104", "310118", "310120",
                                                                   "310106", "310109", "310105"])

FILL = """
INSERT INTO population.person (id_type, id_number, name, sex, birth_date, nationality, hukou_division, hukou_address,
    residence_division, residence_address, population_status, death_date, marital_status, row_hash, valid_from,
    created_run_id, updated_run_id)
SELECT CASE WHEN kind = 'foreign' THEN 'PASSPORT' ELSE 'RIC' END,
       CASE WHEN kind = 'foreign' THEN 'E' || lpad(g::text, 8, '0')
            ELSE coalesce(hk, '310104') || to_char(birth, 'YYYYMMDD') || lpad((g %% 1000)::text, 3, '0')
                 || (g %% 10)::text END,
       '测试' || g, sex, birth, nat, hk, CASE WHEN hk IS NOT NULL THEN '上海市测试路' || g || '号' END,
       res, '上海市居住路' || g || '弄', status, death, marital, md5(g::text), now(), %(run)s, %(run)s
FROM (
    SELECT g,
           CASE WHEN get_byte(b, 0) < 154 THEN 'hukou' WHEN get_byte(b, 0) < 230 THEN 'migrant' ELSE 'foreign' END
               AS kind,
           (%(slots)s::text[])[1 + get_byte(b, 1) %% cardinality(%(slots)s::text[])] AS res,
           CASE WHEN get_byte(b, 2) %% 2 = 0 THEN '1' ELSE '2' END AS sex,
           %(as_of)s::date - ((get_byte(b, 3) * 256 + get_byte(b, 4)) %% 31400) AS birth,
           get_byte(b, 5) AS status_byte, get_byte(b, 6) AS death_byte,
           (ARRAY['JPN', 'KOR', 'USA', 'DEU', 'FRA', 'CAN', 'SGP', 'GBR'])[1 + get_byte(b, 7) %% 8] AS nat_pick,
           (ARRAY['10', '20', '20', '30', '40'])[1 + get_byte(b, 8) %% 5] AS marital
    FROM generate_series(%(first)s::int, %(last)s::int) AS g,
         LATERAL (SELECT decode(md5('person:' || g), 'hex') AS b) h
) x,
LATERAL (SELECT
    CASE kind WHEN 'hukou' THEN res WHEN 'migrant' THEN '320102' END AS hk,
    CASE WHEN kind = 'foreign' THEN nat_pick END AS nat,
    CASE WHEN status_byte < 6 THEN %(as_of)s::date - death_byte * 2 END AS death,
    CASE WHEN kind <> 'hukou' THEN NULL WHEN status_byte < 6 THEN 'deceased' WHEN status_byte < 9 THEN 'moved_out'
         ELSE 'active' END AS status
) y
"""


def fill_persons(url, run_id: int, first: int, last: int) -> None:
    with connect(url) as conn:
        conn.execute(FILL, {"run": run_id, "slots": _DISTRICT_SLOTS, "as_of": DAY.date(), "first": first,
                            "last": last})


def population_run(url, day: datetime = DAY, passed: bool = True, with_validation: bool = True) -> int:
    """An audit.run of the population pipeline for ``day`` whose quality gate passed (or not)."""
    run_id = open_run("population", day, day + timedelta(days=1), url=url)
    if with_validation:
        with connect(url) as conn:
            for suite in ("population.person", "population.person_xref"):
                conn.execute(
                    "INSERT INTO quality.validation_run (run_id, suite, table_name, success, blocking_failed,"
                    " warning_failed, evaluated) VALUES (%s, %s, %s, %s, %s, 0, 10)",
                    (run_id, suite, suite, passed, 0 if passed else 1))
    close_run(run_id, "success" if passed else "blocked", url=url)
    return run_id


@pytest.fixture()
def warehouse(clean_warehouse):
    """Empty warehouse, empty publish schema and directory, 6,000 residents and a passed run (``run_id``)."""
    url = clean_warehouse
    with connect(url) as conn:
        for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'publish'"
                " AND tablename NOT IN ('release', 'release_event', 'catalog_entry')").fetchall():
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("publish", name)))
        for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'publish_work'"
                " AND tablename <> 'district_map'").fetchall():
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("publish_work", name)))
        conn.execute("TRUNCATE publish.release_event, publish.catalog_entry, publish.release RESTART IDENTITY")
    shutil.rmtree(settings.publish_dir, ignore_errors=True)
    settings.publish_dir.mkdir(parents=True)
    run_id = population_run(url)
    fill_persons(url, run_id, 1, 6000)
    return url, run_id


def served_rows(url, code: str) -> list[tuple[str, ...]]:
    ds = {d.code: d for d in load_datasets()}[code]
    with connect(url) as conn:
        rows = conn.execute(sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(f) for f in ds.field_names), sql.Identifier("publish", code))).fetchall()
    return sorted(tuple(exports.text(v) for v in r) for r in rows)


def catalog_current(url, code: str) -> str | None:
    with connect(url) as conn:
        row = conn.execute("SELECT current_release_id FROM publish.catalog_entry WHERE dataset_code = %s",
                           (code,)).fetchone()
    return row[0] if row else None


def link_target(code: str) -> str | None:
    link = settings.publish_dir / code / "current"
    return link.readlink().name if link.is_symlink() else None


def status_of(url, release_id: str) -> str:
    with connect(url) as conn:
        return conn.execute("SELECT status FROM publish.release WHERE release_id = %s", (release_id,)).fetchone()[0]


def publish_now(release: dict) -> dict:
    if release["status"] == "awaiting_approval":
        flow.approve_release(release["release_id"], "测试审批人", "test")
    return flow.publish_release(release["release_id"])


def custom_datasets(tmp_path: Path, extra: dict[str, tuple[str, str]]) -> Path:
    """The real definitions plus extra ones {code: (yaml, sql)} in a datasets dir of this test."""
    root = tmp_path / "datasets"
    shutil.copytree(REAL_DATASETS / "population", root / "population")
    for code, (yaml_text, sql_text) in extra.items():
        (root / "population" / f"{code}.yaml").write_text(yaml_text, encoding="utf-8")
        (root / "population" / f"{code}.sql").write_text(sql_text, encoding="utf-8")
    return root


def test_release_files_in_four_formats_parse_back_to_the_served_rows(warehouse):
    url, run_id = warehouse
    for code in (REG, POP):  # REG is approved automatically; POP has suppressed (empty) cells
        r = flow.prepare_release(code, [run_id])
        assert r["release_id"].startswith(f"{code}-") and r["status"] != "blocked", r["review_summary"]
        directory = Path(r["directory"])
        assert not (settings.publish_dir / code / "current").exists()  # prepared, not served
        publish_now(r)
        expected = served_rows(url, code)
        assert len(expected) == r["row_count"] > 0
        fields = [f.name for f in {d.code: d for d in load_datasets()}[code].fields]
        for fmt in exports.FORMATS:
            header, rows = exports.read(fmt, settings.publish_dir / code / "current" / f"data.{fmt}")
            assert header == fields, fmt
            assert sorted(rows) == expected, fmt
        raw = (directory / "data.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), "CSV must start with the UTF-8 BOM"
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["release_id"] == r["release_id"] and manifest["source_run_ids"] == [run_id]
        assert manifest["row_count"] == r["row_count"] and manifest["as_of"] == "2026-01-05"
        for fmt, entry in manifest["files"].items():
            assert flow._sha256(directory / entry["path"]) == entry["sha256"]
            assert (directory / entry["path"]).stat().st_size == entry["bytes"]
        review = json.loads((directory / "review.json").read_text(encoding="utf-8"))
        assert {c["check"] for c in review["checks"]} >= {"quality_gate", "small_cell_suppression",
                                                           "pii_scan_rows", "pii_scan_files"}
        assert all("label_zh" in c and "label_en" in c for c in review["checks"])
    # the served table has the fields in order, nothing else, with Chinese column comments
    with connect(url) as conn:
        cols = conn.execute(
            "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a"
            " WHERE a.attrelid = 'publish.population_by_district_sex_age'::regclass AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum").fetchall()
        suppressed = conn.execute("SELECT count(*) FILTER (WHERE suppressed), count(*) FILTER (WHERE suppressed AND"
                                  " population IS NOT NULL) FROM publish.population_by_district_sex_age").fetchone()
        retired = conn.execute("SELECT count(*) FROM publish.population_by_district_sex_age"
                               " WHERE district_code IN ('310108', '310119')").fetchone()[0]
    assert [c for c, _ in cols] == [f.name for f in {d.code: d for d in load_datasets()}[POP].fields]
    assert dict(cols)["population"].startswith("人数") and dict(cols)["district_code"].startswith("区代码")
    assert suppressed[0] > 0 and suppressed[1] == 0  # suppressed cells are published empty
    assert retired == 0  # 闸北/南汇 residents are counted in 静安/浦东


def test_registered_totals_agree_with_the_age_table(warehouse):
    """Same universe: the district totals of the two resident tables are equal (checked on the true counts)."""
    url, run_id = warehouse
    defs = {d.code: d for d in load_datasets()}
    with connect(url) as conn:
        flow.refresh_district_map(conn)
        pop = pd.DataFrame(conn.execute(sql.SQL(defs[POP].sql), {"as_of": DAY.date()}).fetchall(),
                           columns=defs[POP].sql_columns)
        reg = pd.DataFrame(conn.execute(sql.SQL(defs[REG].sql), {"as_of": DAY.date()}).fetchall(),
                           columns=defs[REG].sql_columns)
    a = pop.groupby("district_code")["population"].sum()
    b = reg.groupby("district_code")["population"].sum()
    assert a.sum() > 5000 and (a == b).all()


# the age bands as age() defines them: the reference the dataset's binary search over band limits must equal
AGE_BAND_REFERENCE = """
SELECT d.district_code, p.sex AS sex_code,
       least(floor(date_part('year', age(%(as_of)s::date, p.birth_date)) / 5), 17)::int AS band, count(*) AS n
FROM population.person p JOIN publish_work.district_map d ON d.division_code = p.residence_division
WHERE population.is_resident_on(p.death_date, p.population_status, p.sex, p.birth_date, %(as_of)s::date)
GROUP BY 1, 2, 3
"""


@pytest.mark.parametrize("as_of", ["2024-02-28", "2024-02-29", "2024-03-01", "2025-02-28", "2025-03-01",
                                   "2026-01-05", "2026-12-31"])
def test_age_bands_are_those_of_age_on_every_birthday_boundary(warehouse, as_of):
    """population_by_district_sex_age places each person in the band age() gives, for persons born on, one and two
    days around every fifth birthday limit of the as-of date, and on leap days (the query finds the band by a
    binary search among the limits; a person born on 29 February has a birthday on 28 February or 1 March)."""
    url, run_id = warehouse
    day = date.fromisoformat(as_of)
    with connect(url) as conn:
        conn.execute("""
            INSERT INTO population.person (id_type, id_number, name, sex, birth_date, residence_division,
                                           population_status, row_hash, valid_from, created_run_id, updated_run_id)
            SELECT 'RIC', 'B' || row_number() OVER (), '边界' || b, '1', b, '310115', 'active', md5(b::text), now(),
                   %(run)s, %(run)s
            FROM (SELECT DISTINCT b FROM (
                SELECT (%(day)s::date - make_interval(years => 5 * k))::date + o AS b
                FROM generate_series(1, 18) k, generate_series(-2, 2) o
                UNION ALL
                SELECT make_date(y, 2, 29) FROM generate_series(1940, 2024, 4) y
                UNION ALL
                SELECT make_date(y, m, d) FROM generate_series(1938, 2025) y, (VALUES (2, 28), (3, 1)) md (m, d)
            ) x WHERE b <= %(day)s::date) y""", {"day": day, "run": run_id})
        flow.refresh_district_map(conn)
        ds = {d.code: d for d in load_datasets()}[POP]
        got = pd.DataFrame(conn.execute(sql.SQL(ds.sql), {"as_of": day}).fetchall(), columns=ds.sql_columns)
        ref = pd.DataFrame(conn.execute(AGE_BAND_REFERENCE, {"as_of": day}).fetchall(),
                           columns=["district_code", "sex_code", "band", "n"])
    labels = {b: "85+" if b == 17 else f"{b * 5:02d}-{b * 5 + 4:02d}" for b in range(18)}
    ref["age_band"] = ref["band"].map(labels)
    expected = ref.groupby(["district_code", "sex_code", "age_band"])["n"].sum()
    counted = got.set_index(["district_code", "sex_code", "age_band"])["population"].astype(int)
    expected = expected.astype(int)
    assert counted.sum() == expected.sum() > 6000 / 2
    assert (counted.reindex(expected.index) == expected).all()
    assert (counted.drop(expected.index) == 0).all()


# the function that defines each shared universe (migration 0021); every dataset of that universe calls it
UNIVERSE_FUNCTION = {"resident_population": "population.is_resident_on(",
                     "foreign_residents": "population.is_present_on("}


def test_datasets_of_a_universe_call_its_function_and_the_planner_inlines_it(warehouse):
    """One definition per universe: each dataset declaring one calls its function, and the plan of its query holds
    the function's clauses, not a call (inlined: the same plan and estimates as the clauses written out)."""
    defs = load_datasets()
    assert {d.universe for d in defs} >= set(UNIVERSE_FUNCTION)
    url, _ = warehouse
    with connect(url) as conn:
        flow.refresh_district_map(conn)
        for d in defs:
            function = UNIVERSE_FUNCTION.get(d.universe)
            if function is None:
                continue
            assert function in d.sql, d.code
            plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN (VERBOSE) " + d.sql),
                                                         {"as_of": DAY.date()}))
            assert "is_resident_on" not in plan and "is_present_on" not in plan, (d.code, plan)
            assert "moved_out" in plan, d.code  # (the inlined clauses)


def test_universe_functions_are_the_clauses_they_replaced(warehouse):
    """Over every combination of values that matter, the functions answer as the WHERE clauses the datasets held."""
    url, _ = warehouse
    with connect(url) as conn:
        bad = conn.execute("""
            WITH v AS (
                SELECT d AS death_date, s AS population_status, x AS sex, b AS birth_date, date '2026-01-05' AS as_of
                FROM unnest(ARRAY[NULL, date '2026-01-04', date '2026-01-05', date '2026-01-06']) d,
                     unnest(ARRAY[NULL, 'active', 'deceased', 'moved_out', '']) s,
                     unnest(ARRAY[NULL, '1', '2', '9']) x,
                     unnest(ARRAY[NULL, date '1990-01-01', date '2026-01-05', date '2026-01-06']) b
            )
            SELECT count(*) FILTER (WHERE population.is_present_on(death_date, population_status, as_of)
                                    IS DISTINCT FROM ((death_date IS NULL OR death_date > as_of)
                                                      AND population_status IS DISTINCT FROM 'deceased'
                                                      AND population_status IS DISTINCT FROM 'moved_out')),
                   count(*) FILTER (WHERE population.is_resident_on(death_date, population_status, sex, birth_date,
                                                                    as_of)
                                    IS DISTINCT FROM ((death_date IS NULL OR death_date > as_of)
                                                      AND population_status IS DISTINCT FROM 'deceased'
                                                      AND population_status IS DISTINCT FROM 'moved_out'
                                                      AND sex IN ('1', '2') AND birth_date <= as_of)),
                   count(*)
            FROM v""").fetchone()
    assert bad == (0, 0, 320)


def test_release_ids_are_deterministic_in_shape_and_sortable(warehouse):
    url, run_id = warehouse
    ids = [flow.prepare_release(REG, [run_id])["release_id"] for _ in range(3)]
    today = datetime.now(SHANGHAI).strftime("%Y%m%d")
    assert ids == [f"{REG}-{today}-00{i}" for i in (1, 2, 3)] == sorted(ids)
    versions = [r["version"] for r in sorted(flow.list_releases(REG), key=lambda r: r["release_id"])]
    assert versions == [1, 2, 3]


# ---------------------------------------------------------------------------------------------------------------
# privacy review

LEAK_YAML = """
code: leaky_dataset
title: 泄露测试数据集
title_en: A dataset whose SQL leaks identifiers
provider_department: psb
abstract: 测试用：SQL 把证件号码和电话号码放进看似无害的列。
classification: 测试
keywords: [测试]
open_attribute: unconditional
share_type: unconditional
update_frequency: daily
record_level: false
suppression: {count: persons, dimensions: [district_code, note], flag: suppressed}
fields:
  - {name: district_code, type: text, label_zh: 区代码, description: 区}
  - {name: note, type: text, label_zh: 备注, description: 备注}
  - {name: contact, type: text, label_zh: 联系方式, description: 联系方式}
  - {name: persons, type: integer, label_zh: 人数, description: 人数}
  - {name: suppressed, type: boolean, label_zh: 是否抑制, description: 抑制}
"""
LEAK_SQL = """
SELECT d.district_code, min(p.id_number) AS note, '13812345678' AS contact, count(*) AS persons
FROM population.person p JOIN publish_work.district_map d ON d.division_code = p.residence_division
WHERE p.id_type = 'RIC' AND %(as_of)s::date IS NOT NULL
GROUP BY d.district_code
"""


def test_pii_scan_blocks_a_dataset_whose_sql_leaks_an_id_number_and_a_phone(warehouse, tmp_path):
    url, run_id = warehouse
    root = custom_datasets(tmp_path, {"leaky_dataset": (LEAK_YAML, LEAK_SQL)})
    r = flow.prepare_release("leaky_dataset", [run_id], datasets_dir=root)
    assert r["status"] == "blocked" and not r["needs_approval"]
    review = flow.review_report(r["release_id"])
    hits = {(h["column"], h["pattern"]) for c in review["checks"] if c["check"] == "pii_scan_rows"
            for h in c["hits"]}
    assert ("note", "id_number_18") in hits and ("contact", "mobile_phone") in hits
    # counted in rows (the patterns are tested once per distinct value, each counting for the rows that hold it:
    # the phone number is one value on every row, the ID numbers one per row)
    rows_hit = {(h["column"], h["pattern"]): h["rows"] for c in review["checks"] if c["check"] == "pii_scan_rows"
                for h in c["hits"]}
    with connect(url) as conn:
        (districts,) = conn.execute(
            "SELECT count(DISTINCT d.district_code) FROM population.person p JOIN publish_work.district_map d"
            " ON d.division_code = p.residence_division WHERE p.id_type = 'RIC'").fetchone()
    assert districts > 1 and rows_hit[("contact", "mobile_phone")] == rows_hit[("note", "id_number_18")] == districts
    assert ("note", "identifier_value") in hits  # equal to a golden person's ID number
    assert {b["code"] for b in review["blocked_by"]} == {"pii_in_rows"}
    directory = Path(r["directory"])
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "review.json"]  # no data file
    text = (directory / "review.json").read_text(encoding="utf-8") + (directory / "manifest.json").read_text()
    assert "13812345678" not in text and "3101" not in text.replace("310101", "")  # counts, never the values
    with pytest.raises(flow.PublishError, match="blocked"):
        flow.publish_release(r["release_id"])
    with pytest.raises(flow.PublishError):
        flow.approve_release(r["release_id"], "someone")
    assert catalog_current(url, "leaky_dataset") is None
    with connect(url) as conn:
        assert conn.execute("SELECT to_regclass('publish.leaky_dataset')").fetchone()[0] is None


def test_identifier_values_are_looked_up_unless_the_query_reads_only_identifier_free_tables(warehouse, tmp_path):
    """The rows' values are compared with the persons' names, numbers and addresses (a scan of the golden table)
    whenever the dataset's query reads a table that may hold them; the daily aggregates read only the counted
    cells and the district map (migration 0018), which hold none, and the review says what was read."""
    url, run_id = warehouse
    r = flow.prepare_release("population_by_district_sex_age", [run_id])
    check = next(c for c in flow.review_report(r["release_id"])["checks"] if c["check"] == "pii_scan_rows")
    assert check["relations_read"] == ["population.resident_cell", "publish_work.district_map"]
    assert "identifier_value" not in check["patterns"] and check["passed"]
    root = custom_datasets(tmp_path, {"leaky_dataset": (LEAK_YAML, LEAK_SQL)})
    r = flow.prepare_release("leaky_dataset", [run_id], datasets_dir=root)
    check = next(c for c in flow.review_report(r["release_id"])["checks"] if c["check"] == "pii_scan_rows")
    assert "population.person" in check["relations_read"] and "identifier_value" in check["patterns"]


DESC_LEAK_YAML = LEAK_YAML.replace("leaky_dataset", "described_leak").replace(
    "{name: contact, type: text, label_zh: 联系方式, description: 联系方式}",
    "{name: contact, type: text, label_zh: 联系方式, description: '样例 310104198003011234, 咨询 021-62345678'}")
CLEAN_SQL = """
SELECT d.district_code, 'n/a' AS note, '' AS contact, count(*) AS persons
FROM population.person p JOIN publish_work.district_map d ON d.division_code = p.residence_division
WHERE %(as_of)s::date IS NOT NULL
GROUP BY d.district_code
"""


def test_pii_scan_of_the_files_blocks_what_the_rows_do_not_show(warehouse, tmp_path):
    """Rows are clean, but a field description (written into XLSX, XML, JSON and the manifest) carries an ID
    number and a landline: the file scan blocks the release and its data files are removed."""
    url, run_id = warehouse
    root = custom_datasets(tmp_path, {"described_leak": (DESC_LEAK_YAML, CLEAN_SQL)})
    r = flow.prepare_release("described_leak", [run_id], datasets_dir=root)
    assert r["status"] == "blocked"
    review = flow.review_report(r["release_id"])
    rows_check = next(c for c in review["checks"] if c["check"] == "pii_scan_rows")
    files_check = next(c for c in review["checks"] if c["check"] == "pii_scan_files")
    assert rows_check["passed"] and not files_check["passed"]
    found = {(h["file"], h["pattern"]) for h in files_check["hits"]}
    assert {("data.xlsx", "id_number_18"), ("data.json", "landline_phone"), ("manifest.json", "id_number_18")} <= found
    directory = Path(r["directory"])
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "review.json"]
    assert "310104198003011234" not in (directory / "manifest.json").read_text(encoding="utf-8")


def published_cells(code: str) -> pd.DataFrame:
    header, rows = exports.read_csv(settings.publish_dir / code / "current" / "data.csv")
    return pd.DataFrame(rows, columns=header)


def true_cells(url, code: str) -> pd.DataFrame:
    ds = {d.code: d for d in load_datasets()}[code]
    with connect(url) as conn:
        rows = conn.execute(sql.SQL(ds.sql), {"as_of": DAY.date()}).fetchall()
    df = pd.DataFrame(rows, columns=ds.sql_columns)
    return df.astype({c: str for c in ds.suppression.dimensions})


def attack(published: pd.DataFrame, truth: pd.DataFrame, dims: list[str], count: str,
           totals: list[tuple[np.ndarray, int]]) -> tuple[set[int], dict[int, tuple[float, float]]]:
    """The attacker: known totals (masks over cells, value) and the published cells. Returns the suppressed cells
    recovered by repeated subtraction, and for each suppressed cell the [min, max] its value can take given every
    total and that counts are not negative (linear programming)."""
    merged = truth.merge(published, on=dims, suffixes=("_true", ""))
    value = pd.to_numeric(merged[count], errors="coerce").to_numpy()  # NaN where suppressed
    unknown = np.isnan(value)
    known = np.where(unknown, 0, value)
    recovered: set[int] = set()
    progress = True
    while progress:
        progress = False
        for mask, total in totals:
            cells = np.flatnonzero(mask & unknown)
            if len(cells) == 1:
                known[cells[0]] = total - known[mask & ~unknown].sum()
                unknown[cells[0]] = False
                recovered.add(int(cells[0]))
                progress = True
    sup = np.flatnonzero(np.isnan(value))
    col = {c: i for i, c in enumerate(sup)}
    a, b = [], []
    for mask, total in totals:
        cells = np.flatnonzero(mask & np.isnan(value))
        if len(cells):
            row = np.zeros(len(sup))
            row[[col[c] for c in cells]] = 1
            a.append(row)
            b.append(total - np.nansum(value[mask]))
    bounds: dict[int, tuple[float, float]] = {}
    for i, cell in enumerate(sup):
        c = np.zeros(len(sup))
        c[i] = 1
        lo = linprog(c, A_eq=np.array(a), b_eq=np.array(b), bounds=[(0, None)] * len(sup), method="highs")
        hi = linprog(-c, A_eq=np.array(a), b_eq=np.array(b), bounds=[(0, None)] * len(sup), method="highs")
        assert lo.status == 0 and hi.status == 0
        bounds[int(cell)] = (lo.fun, -hi.fun)
    return recovered, bounds


def line_totals(truth: pd.DataFrame, dims: list[str], count: str, independent: list[str]) -> list:
    totals = []
    for d in dims:
        if d in independent:
            continue
        others = [x for x in dims if x != d]
        for _, idx in truth.groupby(others).groups.items():
            mask = np.zeros(len(truth), dtype=bool)
            mask[truth.index.get_indexer(idx)] = True
            totals.append((mask, int(truth.loc[idx, count].sum())))
    return totals


def test_suppressed_cells_cannot_be_recovered_from_totals(warehouse):
    """Publish every aggregate, then attack each with every line total (as if all margins were published), the
    district totals readable from the registered/non-registered file and the grand total: no suppressed cell is
    recovered by subtraction, and linear programming cannot pin any small cell to one value."""
    url, run_id = warehouse
    defs = {d.code: d for d in load_datasets()}
    for code in (POP, REG, VITAL, FOREIGN):
        r = flow.prepare_release(code, [run_id])
        assert r["status"] != "blocked", r["review_summary"]
        publish_now(r)
    reg = published_cells(REG)
    reg_pop = pd.to_numeric(reg["population"], errors="coerce")
    district_totals = reg.assign(population=reg_pop).groupby("district_code")["population"].agg(
        lambda s: None if s.isna().any() else int(s.sum())).dropna().to_dict()
    attacked = 0
    for code in (POP, REG, VITAL, FOREIGN):
        s = defs[code].suppression
        dims, count = list(s.dimensions), s.count
        truth = true_cells(url, code).reset_index(drop=True)
        published = published_cells(code)[dims + [count]]
        totals = line_totals(truth, dims, count, list(s.independent))
        totals.append((np.ones(len(truth), dtype=bool), int(truth[count].sum())))
        if defs[code].universe == "resident_population" and "district_code" in dims:
            for district, total in district_totals.items():
                totals.append(((truth["district_code"] == district).to_numpy(), int(total)))
        recovered, bounds = attack(published, truth, dims, count, totals)
        assert not recovered, f"{code}: suppressed cells recovered by subtraction: {sorted(recovered)[:5]}"
        small = truth.index[(truth[count] > 0) & (truth[count] < settings.suppression_threshold)]
        for cell in small:
            lo, hi = bounds[int(cell)]
            assert hi - lo >= 1 - 1e-6, f"{code}: cell {truth.loc[cell, dims].to_dict()} pinned to [{lo}, {hi}]"
        attacked += len(small)
        review = next(c for c in flow.review_report(r_id(code))["checks"] if c["check"] == "small_cell_suppression")
        assert review["primary"] == len(small) and review["recoverable_primary_cells"] == 0
        assert review["suppressed"] == int(pd.to_numeric(published[count], errors="coerce").isna().sum())
    assert attacked > 50  # the data has plenty of small cells to protect


def r_id(code: str) -> str:
    return next(r["release_id"] for r in flow.list_releases(code) if r["current"])


K_YAML = """
code: exact_microdata
title: 精确个体数据（测试）
title_en: Microdata with exact birth year (test)
provider_department: psb
abstract: 测试用：准标识符过细（区、性别、出生年份），不做局部抑制。
classification: 测试
keywords: [测试]
open_attribute: unconditional
share_type: unconditional
update_frequency: daily
record_level: true
quasi_identifiers: [district_code, sex_code, birth_year]
fields:
  - {name: district_code, type: text, label_zh: 区代码, description: 区}
  - {name: sex_code, type: text, label_zh: 性别代码, description: 性别}
  - {name: birth_year, type: integer, label_zh: 出生年份, description: 出生年份}
"""
K_SQL = """
SELECT d.district_code, p.sex AS sex_code, date_part('year', p.birth_date)::int AS birth_year
FROM population.person p JOIN publish_work.district_map d ON d.division_code = p.residence_division
WHERE p.death_date IS NULL AND %(as_of)s::date IS NOT NULL
ORDER BY 1, 2, 3
"""


def test_k_anonymity_failure_blocks_and_the_sample_passes(warehouse, tmp_path):
    url, run_id = warehouse
    root = custom_datasets(tmp_path, {"exact_microdata": (K_YAML, K_SQL)})
    bad = flow.prepare_release("exact_microdata", [run_id], datasets_dir=root)
    assert bad["status"] == "blocked"
    check = next(c for c in flow.review_report(bad["release_id"])["checks"] if c["check"] == "k_anonymity")
    assert not check["passed"] and check["classes_below_k"] > 0 and check["smallest_class"] < settings.k_anonymity
    assert not (Path(bad["directory"]) / "data.csv").exists()
    with pytest.raises(flow.PublishError):
        flow.publish_release(bad["release_id"])

    good = flow.prepare_release(MICRO, [run_id], datasets_dir=root)
    assert good["status"] == "awaiting_approval"  # 有条件开放
    check = next(c for c in flow.review_report(good["release_id"])["checks"] if c["check"] == "k_anonymity")
    assert check["passed"] and check["smallest_class"] >= settings.k_anonymity
    assert check["records"] == good["row_count"] > 500
    header, rows = exports.read_csv(Path(good["directory"]) / "data.csv")
    df = pd.DataFrame(rows, columns=header)
    assert df.groupby(["region_code", "sex_code", "age_band", "registered"]).size().min() >= settings.k_anonymity
    assert not set(header) & {"name", "id_number", "person_id", "residence_address"}


def test_a_release_of_runs_that_failed_the_gate_is_blocked(warehouse):
    url, run_id = warehouse
    failed = population_run(url, DAY + timedelta(days=1), passed=False)
    r = flow.prepare_release(REG, [failed])
    assert r["status"] == "blocked" and "quality" in r["review_summary"]
    unvalidated = population_run(url, DAY + timedelta(days=2), with_validation=False)
    assert flow.prepare_release(REG, [unvalidated])["status"] == "blocked"
    # the good run alone: a later run was blocked by its gate, so the golden tables are not publishable either
    r = flow.prepare_release(REG, [run_id])
    assert r["status"] == "blocked" and f"later run {failed}" in r["review_summary"]


# ---------------------------------------------------------------------------------------------------------------
# approval, atomic publication, rollback

def test_a_conditional_release_is_not_published_until_approved(warehouse):
    url, run_id = warehouse
    r = flow.prepare_release(FOREIGN, [run_id])
    assert r["status"] == "awaiting_approval" and r["needs_approval"]
    assert "有条件开放" in r["review_summary"] and "awaiting approval" in r["review_summary"]
    with pytest.raises(flow.PublishError, match="awaiting_approval"):
        flow.publish_release(r["release_id"])
    assert catalog_current(url, FOREIGN) is None and link_target(FOREIGN) is None
    with connect(url) as conn:
        assert conn.execute("SELECT to_regclass('publish.foreign_residents_by_district_nationality')").fetchone()[0] \
            is None
    approved = flow.approve_release(r["release_id"], "李四", "核对无误")
    assert approved == {"release_id": r["release_id"], "status": "approved", "approved_by": "李四"}
    out = flow.publish_release(r["release_id"])
    assert out["status"] == "published" and catalog_current(url, FOREIGN) == r["release_id"]
    assert link_target(FOREIGN) == r["release_id"]
    rel = next(x for x in flow.list_releases(FOREIGN) if x["release_id"] == r["release_id"])
    assert rel["approved_by"] == "李四" and rel["note"] == "核对无误" and rel["current"]

    # a rejected release never publishes and its data files are withdrawn
    r2 = flow.prepare_release(FOREIGN, [run_id])
    flow.reject_release(r2["release_id"], "李四", "口径有误")
    assert status_of(url, r2["release_id"]) == "rejected"
    with pytest.raises(flow.PublishError):
        flow.publish_release(r2["release_id"])
    with pytest.raises(flow.PublishError):
        flow.approve_release(r2["release_id"], "王五")
    assert not (Path(r2["directory"]) / "data.csv").exists()
    assert catalog_current(url, FOREIGN) == r["release_id"]


def two_versions(url, run_id: int, code: str = REG) -> tuple[dict, dict]:
    """v1 published; more residents arrive; v2 prepared and approved (not yet published)."""
    v1 = flow.prepare_release(code, [run_id])
    publish_now(v1)
    fill_persons(url, run_id, 6001, 7500)
    v2 = flow.prepare_release(code, [run_id])
    if v2["status"] == "awaiting_approval":
        flow.approve_release(v2["release_id"], "测试审批人")
    assert v2["release_id"] > v1["release_id"]
    return v1, v2


def served_state(url, code: str) -> tuple:
    return (served_rows(url, code), catalog_current(url, code), link_target(code),
            *((settings.publish_dir / name).read_bytes() for name in catalog.CATALOG_FILES))


@pytest.mark.parametrize("where", ["table", "symlink", "catalog_jsonld", "changelog", "commit"])
def test_an_interrupted_publish_leaves_the_previous_release_served(warehouse, monkeypatch, where):
    url, run_id = warehouse
    v1, v2 = two_versions(url, run_id)
    before = served_state(url, REG)
    assert before[1] == v1["release_id"] == before[2]

    class Crash(RuntimeError):
        pass

    def boom(*a, **kw):
        raise Crash(where)

    if where == "table":
        monkeypatch.setattr(flow, "_upsert_catalog", boom)
    elif where == "symlink":
        monkeypatch.setattr(flow.os, "replace", boom)
    elif where in ("catalog_jsonld", "changelog"):
        real = catalog.write_atomic
        victim = "catalog.jsonld" if where == "catalog_jsonld" else "CHANGELOG.md"

        def write_atomic(path, content):
            if path.name == victim:
                raise Crash(where)
            real(path, content)

        monkeypatch.setattr(catalog, "write_atomic", write_atomic)
    else:  # everything written, then the commit fails
        real_write_all = catalog.write_all

        def write_all_then_fail_commit(conn, publish_dir, now=None):
            real_write_all(conn, publish_dir, now)
            # a deferred foreign key that is violated: the error comes only when the transaction commits
            conn.execute("CREATE TEMP TABLE crash_parent (x int PRIMARY KEY)")
            conn.execute("CREATE TEMP TABLE crash_child (x int REFERENCES crash_parent DEFERRABLE INITIALLY DEFERRED)")
            conn.execute("INSERT INTO crash_child VALUES (1)")

        monkeypatch.setattr(catalog, "write_all", write_all_then_fail_commit)
    with pytest.raises(Exception):
        flow.publish_release(v2["release_id"])
    monkeypatch.undo()
    assert served_state(url, REG) == before, where
    assert status_of(url, v2["release_id"]) == "approved" and status_of(url, v1["release_id"]) == "published"
    # and the same release publishes cleanly afterwards
    flow.publish_release(v2["release_id"])
    assert catalog_current(url, REG) == link_target(REG) == v2["release_id"]
    assert served_rows(url, REG) != before[0]


def test_a_crash_while_preparing_leaves_nothing_behind(warehouse, monkeypatch):
    url, run_id = warehouse
    v1 = flow.prepare_release(REG, [run_id])
    publish_now(v1)
    before = served_state(url, REG)

    def boom(self, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports.Writers, "write", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        flow.prepare_release(REG, [run_id])
    monkeypatch.undo()
    assert served_state(url, REG) == before
    assert [r["release_id"] for r in flow.list_releases(REG)] == [v1["release_id"]]
    assert sorted(p.name for p in (settings.publish_dir / REG).iterdir()) == ["current", v1["release_id"]]
    with connect(url) as conn:
        work = {t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'publish_work'")}
    assert work == {"district_map", v1["release_id"]}


def test_repair_undoes_a_symlink_switched_by_a_publish_that_died_before_commit(warehouse):
    url, run_id = warehouse
    v1, v2 = two_versions(url, run_id)
    flow.switch_symlink(REG, v2["release_id"])  # as if the process was killed after step 2
    assert flow.repair()["relinked"] == [REG]
    assert link_target(REG) == v1["release_id"] == catalog_current(url, REG)


def test_rollback_restores_the_previous_release(warehouse):
    url, run_id = warehouse
    v1, v2 = two_versions(url, run_id)
    rows_v1 = served_rows(url, REG)
    flow.publish_release(v2["release_id"], approved_by="发布员")
    assert status_of(url, v1["release_id"]) == "superseded" and served_rows(url, REG) != rows_v1
    out = flow.rollback(REG, by="值班员")
    assert out == {"dataset_code": REG, "release_id": v1["release_id"], "rolled_back_release_id": v2["release_id"],
                   "version": 1, "row_count": v1["row_count"]}
    assert served_rows(url, REG) == rows_v1
    assert catalog_current(url, REG) == link_target(REG) == v1["release_id"]
    assert status_of(url, v2["release_id"]) == "rolled_back" and status_of(url, v1["release_id"]) == "published"
    entry = next(e for e in json.loads((settings.publish_dir / "catalog.json").read_text())["datasets"]
                 if e["dataset_code"] == REG)
    assert entry["current_release_id"] == v1["release_id"] and entry["current_version"] == 1
    changelog = [json.loads(line) for line in (settings.publish_dir / "changelog.jsonl").read_text().splitlines()]
    assert [(e["release_id"], e["event"]) for e in changelog[-2:]] == [
        (v2["release_id"], "rolled_back"), (v1["release_id"], "restored")]
    assert "回滚恢复 restored" in (settings.publish_dir / "CHANGELOG.md").read_text().splitlines()[-1]
    with pytest.raises(flow.PublishError, match="no earlier"):
        flow.rollback(REG)
    with pytest.raises(flow.PublishError):  # a rolled-back release is not published again; prepare a new one
        flow.publish_release(v2["release_id"])
    with pytest.raises(flow.PublishError, match="older"):
        older = flow.prepare_release(REG, [run_id])
        with connect(url) as conn:  # as if a newer version were served
            conn.execute("UPDATE publish.catalog_entry SET current_version = 99 WHERE dataset_code = %s", (REG,))
        flow.publish_release(older["release_id"])


# ---------------------------------------------------------------------------------------------------------------
# catalog, changelog, CLI

def test_catalog_json_and_dcat_jsonld(warehouse):
    url, run_id = warehouse
    for code in (REG, FOREIGN):
        publish_now(flow.prepare_release(code, [run_id]))
    cat = json.loads((settings.publish_dir / "catalog.json").read_text(encoding="utf-8"))
    entries = {e["dataset_code"]: e for e in cat["datasets"]}
    assert set(entries) == {REG, FOREIGN}
    e = entries[REG]
    for key in ("title", "title_en", "provider_department", "provider_department_name", "abstract", "classification",
                "keywords", "fields", "share_type", "open_attribute", "open_attribute_label", "update_frequency",
                "first_published", "updated", "formats", "related", "current_release_id", "license"):
        assert e[key] not in (None, "", []), key
    assert e["open_attribute_label"] == "无条件开放" and entries[FOREIGN]["open_attribute_label"] == "有条件开放"
    assert e["formats"] == ["csv", "json", "xlsx", "xml"] and e["provider_department_name"] == "市公安局"
    assert [f["name"] for f in e["fields"]][:3] == ["stat_date", "district_code", "district_name"]
    assert all({"name", "type", "label_zh"} <= set(f) for f in e["fields"])

    ld = json.loads((settings.publish_dir / "catalog.jsonld").read_text(encoding="utf-8"))
    assert ld["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    assert ld["@context"]["dct"] == "http://purl.org/dc/terms/"
    assert ld["@type"] == "dcat:Catalog"
    datasets = {d["dct:identifier"]: d for d in ld["dcat:dataset"]}
    assert set(datasets) == {REG, FOREIGN}
    for code, d in datasets.items():
        assert d["@type"] == "dcat:Dataset" and d["@id"] == f"#{code}"
        assert {t["@language"] for t in d["dct:title"]} == {"zh", "en"}
        assert datetime.fromisoformat(d["dct:issued"]["@value"]).tzinfo is not None
        assert d["dct:accrualPeriodicity"]["@id"].endswith("/DAILY")
        assert {x["@type"] for x in d["dcat:distribution"]} == {"dcat:Distribution"}
        assert len(d["dcat:distribution"]) == 4
        # every prefix used in a key or a compact IRI is declared in the context
        for key in _keys(d):
            if ":" in key and not key.startswith("@"):
                assert key.split(":")[0] in ld["@context"], key
    public = datasets[REG]["dcat:distribution"]
    assert all("dcat:downloadURL" in x and x["spdx:checksum"]["spdx:checksumValue"] for x in public)
    csv = next(x for x in public if x["dct:format"] == "CSV")
    assert (settings.publish_dir / csv["dcat:downloadURL"]["@id"]).is_file()
    assert datasets[REG]["dct:accessRights"]["@id"].endswith("/PUBLIC")
    assert datasets[FOREIGN]["dct:accessRights"]["@id"].endswith("/RESTRICTED")
    assert not any("dcat:downloadURL" in x for x in datasets[FOREIGN]["dcat:distribution"])

    lines = (settings.publish_dir / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
    events = [json.loads(x) for x in (settings.publish_dir / "changelog.jsonl").read_text().splitlines()]
    assert len([x for x in lines if x.startswith("- ")]) == len(events) >= 6
    assert [e["event"] for e in events if e["dataset_code"] == FOREIGN] == ["prepared", "approved", "published"]


def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            if k == "@type" and isinstance(v, str):
                yield v
            yield from _keys(v)
    elif isinstance(obj, list):
        for x in obj:
            yield from _keys(x)


def test_cli_prepare_approve_release_list_rollback(warehouse, capsys):
    url, run_id = warehouse
    assert main_cli.main(["publish", "prepare", "--dataset", FOREIGN, "--runs", str(run_id)]) == 0
    prepared = json.loads(capsys.readouterr().out)
    release_id = prepared[0]["release_id"]
    assert prepared[0]["status"] == "awaiting_approval"
    assert main_cli.main(["publish", "release", release_id]) == 1  # refused: not approved
    assert "refused" in capsys.readouterr().err
    assert main_cli.main(["publish", "approve", release_id, "--by", "王五"]) == 0
    assert main_cli.main(["publish", "release", release_id]) == 0
    capsys.readouterr()
    assert main_cli.main(["publish", "list", "--dataset", FOREIGN, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["release_id"], r["status"], r["current"]) for r in listed] == [(release_id, "published", True)]
    assert main_cli.main(["publish", "rollback", FOREIGN]) == 1  # nothing earlier
    assert main_cli.main(["publish", "prepare", "--all"]) in (0, 1)  # default: the newest successful run
    out = json.loads(capsys.readouterr().out)
    assert {r["dataset_code"] for r in out} == {d.code for d in load_datasets()}


def test_a_monthly_dataset_is_due_once_per_month_the_daily_ones_every_run(warehouse):
    url, run_id = warehouse
    daily = sorted(d.code for d in load_datasets() if d.update_frequency == "daily")
    assert MICRO not in daily and next(d for d in load_datasets() if d.code == MICRO).update_frequency == "monthly"
    assert sorted(flow.due_datasets([run_id])) == sorted([*daily, MICRO])   # nothing released yet
    assert flow.due_datasets([run_id])[0] == MICRO  # (record-level first: the longest prepare task starts first)
    rejected = flow.prepare_release(MICRO, [run_id])
    flow.reject_release(rejected["release_id"], "李四", "口径有误")
    assert MICRO in flow.due_datasets([run_id])                             # a rejected release does not count
    waiting = flow.prepare_release(MICRO, [run_id])
    assert waiting["status"] == "awaiting_approval"
    later = population_run(url, DAY + timedelta(days=3))                     # 2026-01-08: the same month
    assert sorted(flow.due_datasets([later])) == daily                      # the month has its release
    next_month = population_run(url, datetime(2026, 2, 1, tzinfo=SHANGHAI))
    assert MICRO in flow.due_datasets([next_month])
    assert [flow.period(f, date(2026, 1, 5)) for f in ("weekly", "monthly", "quarterly", "annual")] == [
        (2026, 2), (2026, 1), (2026, 0), (2026,)]


def test_prepares_of_two_datasets_may_run_at_the_same_time(warehouse):
    """The publish DAG maps prepare_release over the datasets, and a parallel executor runs them together: the
    shared work tables they refresh must not collide (they did: a duplicate key in the district map)."""
    from concurrent.futures import ThreadPoolExecutor

    url, run_id = warehouse

    def refresh(_):
        with connect(url, autocommit=True) as conn:
            for _ in range(5):
                flow.refresh_district_map(conn)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(refresh, range(6)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda code: flow.prepare_release(code, [run_id]), [POP, MICRO]))
    assert [d["dataset_code"] for d in done] == [POP, MICRO]
    assert all(d["status"] != "blocked" and Path(d["directory"]).is_dir() for d in done)
