"""The simulated departments (pipelines.simulate) without a database (frontdb_url=None).

What is proved: the same arguments give byte-identical files (generate and day-by-day write_day alike); every
format parses back as its registry entry says (GBK, BOM, XLSX, well-formed XML but the one planted malformed file,
JSON lines); the manifest's defect counters equal what an independent reading of the files finds (stdnum as the
identity oracle); clean numbers are valid; late files, late events and empty files are where the manifest says;
the API server pages, applies the half-open window and rejects bad requests.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import fields
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from lxml import etree
from stdnum.cn import ric, uscc

from pipelines.registry import load_sources
from pipelines.simulate import DefectRates, Manifest, generate, manifest_path, write_day
from pipelines.simulate.api import start_in_thread
from pipelines.simulate.rows import SPECS, output_columns
from pipelines.simulate.verify import classify, read_output, retired_ids

SH = ZoneInfo("Asia/Shanghai")
START = date(2026, 1, 1)
PERSONS, DAYS, SEED = 3000, 4, 424242
SOURCES = {s.id: s for s in load_sources()}
# every row defect at a rate high enough to occur at this scale
RICH = DefectRates(**{f.name: min(1.0, getattr(DefectRates(), f.name) * 3) for f in fields(DefectRates)
                      if isinstance(getattr(DefectRates(), f.name), float) and f.name != "twin_share"})


def _run(base: Path, rates: DefectRates = RICH, seed: int = SEED) -> Manifest:
    return generate(PERSONS, DAYS, seed, START, base / "landing", base / "api", None, rates)


def _digests(base: Path) -> dict[str, str]:
    return {p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def _path(base: Path, out: dict) -> Path:
    return base / ("api" if out["kind"] == "api" else "landing") / out["path"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> tuple[Path, Manifest]:
    base = tmp_path_factory.mktemp("sim")
    return base, _run(base)


def test_registry_sources_all_simulated():
    assert set(SPECS) == set(SOURCES)


def test_rerun_is_byte_identical_and_day_by_day_equals_generate(sim, tmp_path):
    base, manifest = sim
    again = tmp_path / "again"
    _run(again)
    assert _digests(again) == _digests(base)

    daily = tmp_path / "daily"
    for d in range(DAYS + 1):
        m = write_day(d, PERSONS, SEED, START, daily / "landing", daily / "api", None, RICH)
    assert _digests(daily) == _digests(base)  # late files, manifest and all
    assert m.to_json() == manifest.to_json()

    other = tmp_path / "other"
    _run(other, seed=SEED + 1)
    assert _digests(other) != _digests(base)


def test_rewriting_a_day_keeps_the_late_file_a_later_day_put_in_its_folder(sim, tmp_path):
    base, manifest = sim
    late = [o for o in manifest.outputs() if o["late"]]
    assert late, "the default rates plant late files"
    daily = tmp_path / "daily"
    generate(PERSONS, DAYS, SEED, START, daily / "landing", daily / "api", None, RICH)
    folder_day = (date.fromisoformat(late[0]["folder_date"]) - START).days
    write_day(folder_day, PERSONS, SEED, START, daily / "landing", daily / "api", None, RICH)
    assert _digests(daily) == _digests(base)


def test_every_output_parses_as_registered(sim):
    base, manifest = sim
    seen_formats = Counter()
    for out in manifest.outputs():
        if out["kind"] == "table":
            continue
        src = next(SOURCES[s] for s in SOURCES if out["path"].startswith(_prefix(SOURCES[s])))
        path = _path(base, out)
        data = path.read_bytes()
        cols = output_columns(src)
        if out["status"] == "empty":
            assert data == b""
            continue
        if out["kind"] == "file":
            folder = path.parent.name
            assert folder == out["folder_date"]
            assert re.fullmatch(rf"{src.dataset}_{folder.replace('-', '')}_\d\d\.{src.format}", path.name)
        seen_formats[src.format or "json"] += 1
        if out["status"] == "malformed":
            with pytest.raises(etree.XMLSyntaxError):
                etree.fromstring(data)
            continue
        if src.format == "csv":
            if src.encoding == "gbk":
                text = data.decode("gbk")
                assert not data.startswith(b"\xef\xbb\xbf")
                if re.search(r"[\u4e00-\u9fff]", text):
                    with pytest.raises(UnicodeDecodeError):
                        data.decode("utf-8")
            else:
                assert src.encoding == "utf-8-sig" and data.startswith(b"\xef\xbb\xbf")
                text = data.decode("utf-8-sig")
            assert text.splitlines()[0].split(",") == cols
        elif src.format == "xml":
            root = etree.fromstring(data)
            assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
            assert root.tag == "records"
            for rec in root:
                assert rec.tag == src.record_tag and [c.tag for c in rec] == cols
        elif src.format == "xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True)
            rows = list(wb.worksheets[0].iter_rows(values_only=True))
            wb.close()
            assert list(rows[0]) == cols
            assert all(v is None or isinstance(v, str) for r in rows for v in r)
        else:
            for line in data.decode("utf-8").splitlines():
                assert list(json.loads(line)) == cols
        assert len(read_output(src, path)) == out["rows"]
    assert set(seen_formats) == {"csv", "xlsx", "xml", "json"}
    malformed = [o for o in manifest.outputs() if o["status"] == "malformed"]
    assert len(malformed) == 1 and malformed[0]["path"].endswith(".xml")
    assert malformed[0]["defects"] == {"MALFORMED_FILE": 1}
    assert [o["defects"] for o in manifest.outputs() if o["status"] == "empty"] == [{"EMPTY_FILE": 1}]


def _prefix(src) -> str:
    return (src.endpoint or "").strip("/") + "/" if src.kind == "api" else f"{src.department}/{src.dataset}/"


def test_defect_counters_equal_what_the_files_hold(sim):
    """An independent reading of every file and API record finds exactly the planted defects, output by output.
    (NO_ID_MATCHABLE vs REVIEW_AMBIGUOUS_MATCH needs psb's 前置库 rows: the integration test tells them apart.)"""
    base, manifest = sim
    total = Counter()
    for out in manifest.outputs():
        if out["kind"] == "table" or out["status"] != "ok":
            continue
        src = next(SOURCES[s] for s in SOURCES if out["path"].startswith(_prefix(SOURCES[s])))
        rows = read_output(src, _path(base, out))
        expected = Counter()
        for k, v in out["defects"].items():
            expected["NO_ID" if k in ("NO_ID_MATCHABLE", "REVIEW_AMBIGUOUS_MATCH") else k] += v
        found = classify(src, rows)
        assert found == expected, out["path"]
        assert retired_ids(src, rows) == out["info"].get("id_division_retired", 0), out["path"]
        total += found
    # the rich rates put every kind of row defect of the file and API sources into the files
    for kind in ("W_ID_UPGRADED_15", "W_ID_NORMALISED", "ID_BAD_CHECK_DIGIT", "ID_BAD_BIRTH_DATE",
                 "ID_UNKNOWN_DIVISION", "W_DIVISION_POSTDATES_BIRTH", "SEX_MISMATCH", "BIRTH_DATE_MISMATCH",
                 "BAD_DATE", "NAME_MISSING", "KEY_MISSING", "W_DIVISION_RETIRED", "BAD_DIVISION",
                 "DUPLICATE_EXACT", "DUPLICATE_NEAR", "MALFORMED_ROW", "NO_ID", "FOREIGN_ID_BAD_FORMAT",
                 "ID_TYPE_UNKNOWN"):
        assert total[kind] > 0, kind
    # manifest totals add up: per source = sum of its outputs
    for entry in manifest.days.values():
        for src in entry["sources"].values():
            assert src["rows"] == sum(o["rows"] for o in src["outputs"])


def test_no_defects_when_rates_are_zero(tmp_path):
    m = _run(tmp_path, DefectRates.none())
    assert all(not o["defects"] for o in m.outputs())
    assert all(o["status"] == "ok" and not o["late"] for o in m.outputs())
    for out in m.outputs():
        if out["kind"] != "table":
            src = next(SOURCES[s] for s in SOURCES if out["path"].startswith(_prefix(SOURCES[s])))
            assert classify(src, read_output(src, _path(tmp_path, out))) == Counter()
    assert m.days[0]["events"]["same_name_pairs"] == 0


def test_clean_identifiers_are_valid_for_the_oracles(sim):
    base, manifest = sim
    ids = []
    for out in manifest.outputs(day=0):
        if out["kind"] == "file" and out["path"].startswith("psb/residence_permit/"):
            ids += [r["GMSFHM"] for r in read_output(SOURCES["psb_residence_permit"], _path(base, out))
                    if "_malformed" not in r]
    plain = [i for i in ids if re.fullmatch(r"\d{17}[\dX]", i) and not i.startswith("310199")]  # stdnum KeyErrors
    valid = [i for i in plain if ric.is_valid(i)]
    assert len(plain) > 1000 and len(valid) / len(plain) > 0.95  # the rest are the planted wrong ones
    prefixes = {i[:6] for i in valid}
    assert prefixes & {"320102", "330106", "340104", "410105", "420106", "510107"}
    assert not any(p.startswith("31") for p in prefixes - {"310151", "310199"})  # 居住证: IDs of other provinces


def test_population_looks_like_shanghai(sim):
    base, manifest = sim
    (out,) = [o for o in manifest.outputs(source="education_student", day=0)]
    students = read_output(SOURCES["education_student"], _path(base, out))
    levels = Counter(r.get("学历层次") for r in students if "_malformed" not in r)
    assert set(levels) >= {"小学", "初中", "高中", "本科"}
    (out,) = [o for o in manifest.outputs(source="civil_marriage", day=0)]
    rows = read_output(SOURCES["civil_marriage"], _path(base, out))
    assert {r["ywlx"] for r in rows} == {"结婚登记", "离婚登记"} and {r["hyzk"] for r in rows} == {"已婚", "离婚"}
    names = [r["xm"] for r in rows if r["xm"]]
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n.replace(" ", "").replace("\u3000", "")) for n in names)
    assert len(set(names)) > len(names) * 0.5
    (out,) = [o for o in manifest.outputs(source="psb_foreign_resident", day=0)]
    foreign = read_output(SOURCES["psb_foreign_resident"], _path(base, out))
    assert {r["证件种类"] for r in foreign} >= {"护照", "外国人永久居留身份证"}
    assert {r["国籍"] for r in foreign} <= {"USA", "JPN", "KOR", "DEU", "FRA", "GBR", "AUS", "CAN", "SGP", "ITA"}
    composition = manifest.days[0]["events"]
    assert composition["persons"] == PERSONS and composition["hukou"] > composition["migrants"] > composition["foreigners"] > 0


def test_update_times_late_files_and_late_events(sim):
    base, manifest = sim
    for d, entry in manifest.days.items():
        day = START + timedelta(days=d)
        for sid, src in entry["sources"].items():
            for out in src["outputs"]:
                if out["kind"] == "table" or out["status"] != "ok":
                    continue
                source = SOURCES[sid]
                rows = [r for r in read_output(source, _path(base, out)) if "_malformed" not in r]
                folder = date.fromisoformat(out["folder_date"])
                assert folder == (day - timedelta(days=1) if out["late"] else day)
                for r in rows:  # a late file holds rows the department updated on the folder's day
                    upd = datetime.fromisoformat(r[source.updated_at])
                    assert upd.utcoffset() == timedelta(hours=8) and upd.astimezone(SH).date() == folder
                if out["late"]:
                    mtime = datetime.fromtimestamp(_path(base, out).stat().st_mtime, SH)
                    assert mtime.date() == day and d in RICH.late_file_days
                event = source.fields.get("event_date")
                if event and d > 0:
                    late_events = sum(1 for r in rows if r[event] and date.fromisoformat(r[event]) < folder)
                    assert late_events == out["info"].get("late_event", 0)
    assert {(date.fromisoformat(o["folder_date"]) - START).days + 1 for o in manifest.outputs() if o["late"]} \
        == set(RICH.late_file_days)
    assert manifest.info("late_event", source="health_vital_events") > 0


def test_generation_is_vectorised_at_scale(tmp_path):
    t0 = time.perf_counter()
    m = generate(100_000, 1, 7, START, tmp_path / "landing", tmp_path / "api", None)
    elapsed = time.perf_counter() - t0
    assert m.rows(day=0) > 200_000
    assert elapsed < 30, f"100k persons took {elapsed:.1f} s"
    assert manifest_path(tmp_path / "landing") == tmp_path / "sim_manifest.json"
    assert Manifest.load(tmp_path / "sim_manifest.json").to_json() == m.to_json()


def test_uscc_of_employers_are_valid():
    from pipelines.simulate.population import Tables

    t = Tables.build(1, 50_000)
    assert all(uscc.is_valid(c) for c in t.employer_uscc.tolist())
    assert len(set(t.employer_uscc.tolist())) == len(t.employer_uscc)


# --- the API server ---------------------------------------------------------------------------------------------


@pytest.fixture()
def api(sim):
    base, _ = sim
    stop = start_in_thread(0, base / "api")
    try:
        yield stop.url, base
    finally:
        stop()


def _all_pages(client: httpx.Client, params: dict) -> tuple[list[dict], list[dict]]:
    items, pages, page = [], [], 1
    while page is not None:
        body = client.get("/health/vital-events", params={**params, "page": page}).raise_for_status().json()
        pages.append(body)
        items += body["items"]
        page = body["next_page"]
    return items, pages


def test_api_pages_a_window_in_order(api):
    url, base = api
    files = sorted((base / "api" / "health" / "vital-events").glob("*.jsonl"))
    records = [json.loads(line) for f in files[1:3] for line in f.read_text(encoding="utf-8").splitlines()]
    expected = sorted(records, key=lambda r: (datetime.fromisoformat(r["updatedAt"]), r["eventId"]))
    since = datetime.combine(START + timedelta(days=1), datetime.min.time(), SH)
    with httpx.Client(base_url=url) as client:
        items, pages = _all_pages(client, {"updated_since": since.isoformat(),
                                           "updated_until": (since + timedelta(days=2)).isoformat(), "page_size": 3})
    assert items == expected and len(items) > 3
    assert [p["page"] for p in pages] == list(range(1, len(pages) + 1))
    assert all(p["total"] == len(expected) and p["page_size"] == 3 for p in pages)
    assert [len(p["items"]) for p in pages[:-1]] == [3] * (len(pages) - 1) and pages[-1]["next_page"] is None


def test_api_window_is_half_open(tmp_path):
    d = tmp_path / "health" / "vital-events"
    d.mkdir(parents=True)
    recs = [{"eventId": f"E{i}", "updatedAt": t} for i, t in enumerate(
        ["2026-01-01T23:59:59+08:00", "2026-01-02T00:00:00+08:00", "2026-01-01T16:00:00Z",  # same instant as #1
         "2026-01-02T12:00:00+08:00", "2026-01-03T00:00:00+08:00"])]
    (d / "2026-01-02.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    stop = start_in_thread("http://127.0.0.1:0", tmp_path)
    try:
        with httpx.Client(base_url=stop.url) as client:
            body = client.get("/health/vital-events", params={
                "updated_since": "2026-01-02T00:00:00+08:00", "updated_until": "2026-01-03T00:00:00+08:00"}).json()
            assert [r["eventId"] for r in body["items"]] == ["E1", "E2", "E3"]  # ties ordered by eventId
            assert body["total"] == 3 and body["next_page"] is None and body["page"] == 1
            # an unencoded '+' arrives as a space and is still understood
            raw = client.get("/health/vital-events?updated_since=2026-01-02T00:00:00+08:00").json()
            assert [r["eventId"] for r in raw["items"]] == ["E1", "E2", "E3", "E4"]
            past = client.get("/health/vital-events", params={"page": 9, "page_size": 2}).json()
            assert past["items"] == [] and past["next_page"] is None and past["total"] == 5
    finally:
        stop()


def test_api_reads_a_new_days_file_without_parsing_the_earlier_ones_again(tmp_path, monkeypatch):
    """A new file joins the endpoint's records (in the answer's order, pages bisected on the update times); only
    the new or changed files are parsed again — a department's server does not read its whole history per day."""
    from pipelines.simulate import api as api_module

    d = tmp_path / "health" / "vital-events"
    d.mkdir(parents=True)

    def write(day: str, recs: list[tuple[str, str]]) -> None:
        (d / f"{day}.jsonl").write_text("".join(json.dumps({"eventId": e, "updatedAt": t}) + "\n" for e, t in recs),
                                        encoding="utf-8")

    parsed: list[str] = []
    real_loads = api_module.json.loads
    monkeypatch.setattr(api_module.json, "loads", lambda line: parsed.append(line) or real_loads(line))
    store = api_module.Store(tmp_path)

    def ids(query: str) -> list[str]:
        return [r["eventId"] for r in store.page("health/vital-events", query)["items"]]

    write("2026-01-01", [("E2", "2026-01-01T10:00:00+08:00"), ("E1", "2026-01-01T09:00:00+08:00")])
    assert ids("") == ["E1", "E2"] and len(parsed) == 2
    write("2026-01-02", [("E3", "2026-01-02T09:00:00+08:00"), ("E0", "2026-01-01T09:00:00+08:00")])
    assert ids("") == ["E0", "E1", "E2", "E3"] and len(parsed) == 4  # (the first file not parsed again)
    assert ids("updated_since=2026-01-01T09:30:00%2B08:00&page_size=1&page=2") == ["E3"]
    assert ids("updated_until=2026-01-01T09:00:00%2B08:00") == []
    write("2026-01-01", [("E1", "2026-01-01T09:00:00+08:00")])  # a day's file written again: parsed again
    assert ids("updated_since=2026-01-01T00:00:00%2B08:00&updated_until=2026-01-02T00:00:00%2B08:00") == ["E0", "E1"]
    assert len(parsed) == 5


@pytest.mark.parametrize("params, message", [
    ({"page": "0"}, "page"),
    ({"page": "x"}, "page"),
    ({"page_size": "10001"}, "page_size"),
    ({"page_size": "0"}, "page_size"),
    ({"updated_since": "2026-01-02T00:00:00"}, "offset"),
    ({"updated_since": "yesterday"}, "ISO 8601"),
    ({"updated_since": "2026-01-03T00:00:00+08:00", "updated_until": "2026-01-02T00:00:00+08:00"}, "after"),
    ({"updatedSince": "2026-01-02T00:00:00+08:00"}, "unknown parameter"),
])
def test_api_rejects_bad_parameters(api, params, message):
    url, _ = api
    r = httpx.get(url + "/health/vital-events", params=params)
    assert r.status_code == 400 and message in r.json()["error"]


def test_api_unknown_endpoint_and_method(api):
    url, _ = api
    r = httpx.get(url + "/health/unknown")
    assert r.status_code == 404 and "unknown endpoint" in r.json()["error"]
    assert httpx.get(url + "/../etc").status_code == 404
    assert httpx.post(url + "/health/vital-events").status_code == 405
