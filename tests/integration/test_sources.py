"""Source adapters and the staging loader against the real PostgreSQL: 前置库 table, file drops, paged HTTP API.

Fixtures are built here (a 前置库 table in the test frontdb database, files under the session's landing dir, a tiny
paged API served from a thread at SIM_API_URL); nothing depends on the simulated departments.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from pipelines.population.validate import CHECK_COLUMNS, STATISTICS_COLUMNS, validate_run
from pipelines.registry import source
from pipelines.runs import open_run
from pipelines.settings import Settings, settings
from pipelines.sources import SourceApiError, row_hash, stage_source
from pipelines.sources import api as api_mod
from pipelines.sources import staging as staging_mod
from pipelines.warehouse import connect

pytestmark = pytest.mark.integration

SH = ZoneInfo("Asia/Shanghai")
JAN1, JAN2, JAN3, JAN4 = (datetime(2026, 1, d, tzinfo=SH) for d in (1, 2, 3, 4))


# --- helpers ---------------------------------------------------------------------------------------------------


def run_for(start: datetime, end: datetime, url) -> int:
    return open_run("population", start, end, url=url)


def staged(url, run_id: int, source_id: str) -> list[dict]:
    """Every staged column except received_at, in seq order."""
    with connect(url) as conn:
        cur = conn.execute(
            "SELECT * FROM staging.population_record WHERE run_id = %s AND source_id = %s ORDER BY seq",
            (run_id, source_id),
        )
        names = [d.name for d in cur.description]
        return [{k: v for k, v in zip(names, row) if k != "received_at"} for row in cur.fetchall()]


def one(url, query: str, params=()):
    with connect(url) as conn:
        return conn.execute(query, params).fetchone()


def rows(url, query: str, params=()):
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


def watermark(url, source_id: str):
    row = one(url, "SELECT high_watermark FROM audit.watermark WHERE source_id = %s", (source_id,))
    return row[0] if row else None


@pytest.fixture()
def landing(tmp_path, monkeypatch):
    """A landing dir of this test's own, used as settings.landing_dir by the loader (the session's dir may hold
    other tests' drops)."""
    path = tmp_path / "landing"
    path.mkdir()
    monkeypatch.setattr(staging_mod, "settings", dataclasses.replace(staging_mod.settings, landing_dir=path))
    return path


def put(landing: Path, rel: str, content: bytes) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- 前置库 ----------------------------------------------------------------------------------------------------

HUKOU = source("psb_hukou")


@pytest.fixture()
def hukou_table(frontdb):
    """psb.t_rk_hjxx in the test 前置库: registry field names as text columns, GXSJ timestamptz."""
    cols = [HUKOU.key, *HUKOU.fields.values()]
    with psycopg.connect(Settings.libpq(frontdb), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS psb")
        conn.execute("DROP TABLE IF EXISTS psb.t_rk_hjxx")
        conn.execute(
            sql.SQL("CREATE TABLE psb.t_rk_hjxx ({}, {} timestamptz)").format(
                sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in cols),
                sql.Identifier(HUKOU.updated_at),
            )
        )
    return frontdb


def hukou_row(i: int, updated: datetime | None, **over) -> dict:
    row = {
        "RYBH": f"R{i:03d}", "GMSFHM": f"31011519900101{i:04d}", "XM": ["张三", "李四", "欧阳娜娜"][i % 3],
        "XB": str(1 + i % 2), "CSRQ": "19900101", "MZ": "01", "HJDZ_XZQH": "310115",
        "HJDZ": "上海市浦东新区世纪大道100号", "JZDZ_XZQH": "310104", "JZDZ": "上海市徐汇区漕溪北路1号",
        "RKZT": "active", "BDLX": None, "BDRQ": None, "GXSJ": updated,
    }
    row.update(over)
    return row


def upsert_hukou(frontdb, rows_: list[dict]) -> None:
    names = list(rows_[0])
    stmt = sql.SQL("INSERT INTO psb.t_rk_hjxx ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names))
    )
    with psycopg.connect(Settings.libpq(frontdb), autocommit=True) as conn:
        for r in rows_:
            conn.execute("DELETE FROM psb.t_rk_hjxx WHERE \"RYBH\" = %s", (r["RYBH"],))
            conn.execute(stmt, [r[n] for n in names])


def as_payload(row: dict) -> dict:
    return {k: (v.astimezone(SH).isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def test_frontdb_window_rerun_late_update_and_watermark(clean_warehouse, hukou_table):
    url = clean_warehouse
    first = [
        hukou_row(3, JAN1 + timedelta(hours=9)),
        hukou_row(1, JAN1 + timedelta(hours=9)),  # same time: ordered by key
        hukou_row(2, JAN1 - timedelta(days=30), BDLX="迁入", BDRQ="20251202"),
        hukou_row(4, JAN2 + timedelta(hours=1)),  # after interval_end: next run
        hukou_row(5, None),                        # no update time: only the full first extract sees it
    ]
    upsert_hukou(hukou_table, first)

    run1 = run_for(JAN1, JAN2, url)
    counts = stage_source("psb_hukou", run1, JAN1, JAN2, url)
    assert counts == {"source_id": "psb_hukou", "run_id": run1, "received": 4, "files": 0, "quarantined_files": 0,
                      "low_watermark": None, "high_watermark": JAN2.isoformat()}
    got = staged(url, run1, "psb_hukou")
    assert [r["source_key"] for r in got] == ["R002", "R001", "R003", "R005"]
    assert [r["seq"] for r in got] == [1, 2, 3, 4]
    by_key = {r["RYBH"]: r for r in first}
    for r in got:
        src = by_key[r["source_key"]]
        assert r["payload"] == as_payload(src)  # the record as received, the table's own column names
        assert r["row_hash"] == row_hash(as_payload(src))
        assert r["origin"] == "frontdb:psb.t_rk_hjxx" and r["department"] == "psb" and r["id_type"] == "RIC"
        assert (r["id_number"], r["name"], r["hukou_address"], r["event_type"]) == (
            src["GMSFHM"], src["XM"], src["HJDZ"], src["BDLX"])
        assert r["source_updated_at"] == src["GXSJ"] and r["parse_error"] is None
    extract = one(url, "SELECT low_watermark, high_watermark, received, detail FROM audit.extract"
                       " WHERE run_id = %s AND source_id = 'psb_hukou'", (run1,))
    assert extract == (None, JAN2, 4, {"kind": "frontdb", "table": "psb.t_rk_hjxx"})
    assert watermark(url, "psb_hukou") == JAN2

    # Re-running the interval leaves staging identical.
    assert run_for(JAN1, JAN2, url) == run1
    stage_source("psb_hukou", run1, JAN1, JAN2, url)
    assert staged(url, run1, "psb_hukou") == got

    # Next interval: only rows updated in [JAN2, JAN3) — a new row and one updated later.
    upsert_hukou(hukou_table, [hukou_row(1, JAN2 + timedelta(hours=5), JZDZ="上海市静安区南京西路2号")])
    run2 = run_for(JAN2, JAN3, url)
    counts = stage_source("psb_hukou", run2, JAN2, JAN3, url)
    assert counts["received"] == 2 and counts["low_watermark"] == JAN2.isoformat()
    got2 = staged(url, run2, "psb_hukou")
    assert [(r["source_key"], r["residence_address"]) for r in got2] == [
        ("R004", "上海市徐汇区漕溪北路1号"), ("R001", "上海市静安区南京西路2号")]
    assert watermark(url, "psb_hukou") == JAN3

    # Re-running the old interval reads its own recorded window and never lowers the watermark.
    stage_source("psb_hukou", run1, JAN1, JAN2, url)
    assert one(url, "SELECT low_watermark, high_watermark FROM audit.extract WHERE run_id = %s"
                    " AND source_id = 'psb_hukou'", (run1,)) == (None, JAN2)
    assert [r["source_key"] for r in staged(url, run1, "psb_hukou")] == ["R002", "R003", "R005"]  # R001 moved on
    assert watermark(url, "psb_hukou") == JAN3
    assert staged(url, run2, "psb_hukou") == got2  # untouched


def test_timestamptz_spelled_as_the_typed_value_would_be(frontdb):
    """frontdb.timestamptz_iso gives, for the server's text of a timestamptz, exactly what isoformat() of the typed
    value gives: on random instants from 1890 to 2100 (whole seconds and fractions) and on the ones where the
    spellings part (Shanghai's local mean time, its summer times of 1940–1991, offsets with minutes, west of UTC),
    in four session time zones."""
    import random

    from pipelines.sources.frontdb import TIMESTAMPTZ_OID, timestamptz_iso
    from pipelines.sources.records import as_text
    from psycopg.pq import Format
    from psycopg.types.string import TextLoader

    rng = random.Random(20261205)
    base = datetime(1890, 1, 1, tzinfo=ZoneInfo("UTC"))
    instants = [base + timedelta(seconds=rng.randrange(0, 210 * 365 * 86400)) for _ in range(3000)]
    instants += [t + timedelta(microseconds=rng.choice([1, 10, 500000, 123456, 999999])) for t in instants[:1000]]
    instants += [datetime(1900, 1, 1, tzinfo=SH), datetime(1987, 7, 1, 12, tzinfo=SH),
                 datetime(1991, 9, 14, 23, 30, tzinfo=SH), datetime(2026, 1, 1, tzinfo=SH)]
    fast = 0
    with psycopg.connect(Settings.libpq(frontdb)) as conn:
        for zone in ("Asia/Shanghai", "America/New_York", "Asia/Kathmandu", "UTC"):
            conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(zone)))
            # (as read_frontdb does: the loader made after the session's zone is set — it converts to that zone)
            load = conn.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)(TIMESTAMPTZ_OID, conn).load
            typed = [r[0] for r in conn.execute("SELECT unnest(%s::timestamptz[])", (instants,)).fetchall()]
            cur = conn.cursor()
            cur.adapters.register_loader(TIMESTAMPTZ_OID, TextLoader)
            texts = [r[0] for r in cur.execute("SELECT unnest(%s::timestamptz[])", (instants,)).fetchall()]
            for value, text in zip(typed, texts, strict=True):
                assert timestamptz_iso(text, load) == as_text(value), (zone, text)
                fast += len(text) == 22
    assert fast > 6000  # (most took the sliced path)


# --- file drops ------------------------------------------------------------------------------------------------

PERMIT_HEADER = ["JZZBH", "GMSFHM", "XM", "XB", "CSRQ", "HJDZ_XZQH", "JZDZ_XZQH", "JZDZ", "GXSJ"]
PERMIT_ROWS = [
    ["JZZ001", "420102199003071234", "张伟", "1", "19900307", "420102", "310115", "上海市浦东新区张江路88弄3号",
     "2026-01-01 10:00:00"],
    ["JZZ002", "51010719851111222X", "欧阳娜娜", "2", "19851111", "510107", "310104", "上海市徐汇区\"漕河泾\"1号",
     "2026-01-01T11:30:00+08:00"],
]
STUDENT_HEADER = ["学籍号", "身份证件号", "姓名", "性别", "出生日期", "居住区划", "学校名称", "学历层次", "更新时间"]
STUDENT_ROWS = [
    ["G310115201001010011", "310115201001010011", "陈小明", "1", "2010-01-01", "310115", "上海市建平中学", "初中",
     "2026-01-02 08:00:00"],
    ["G310104201203040022", "310104201203040022", "王雨萱", "2", "2012-03-04", "310104", "上海市南洋模范中学", "小学",
     ""],
]
FOREIGN_HEADER = ["登记编号", "证件种类", "证件号码", "姓名", "性别", "出生日期", "国籍", "居住地区划", "居住地址", "更新时间"]
FOREIGN_ROWS = [
    ["WG0001", "PASSPORT", "E12345678", "SMITH JOHN", "1", "1980-05-06", "USA", "310105", "上海市长宁区虹桥路1号",
     "2026-01-02 09:30:00"],
    ["WG0002", "PRP", "156310198001010011", "山田太郎", "1", "1975-02-03", "JPN", "310112", "上海市闵行区", None],
]
MARRIAGE = [
    {"djbh": "HY0001", "sfzh": "310101199001011234", "xm": "刘洋", "xb": "1", "csrq": "1990-01-01", "hyzk": "20",
     "ywlx": "结婚", "djrq": "2026-01-02", "gxsj": "2026-01-02 14:00:00"},
    {"djbh": "HY0002", "sfzh": "310101199202022345", "xm": "周婷", "xb": "2", "csrq": "1992-02-02", "hyzk": "20",
     "ywlx": "结婚", "djrq": "2026-01-02", "gxsj": "2026-01-02 14:00:00"},
]


def csv_bytes(header, rows_, encoding, extra_lines=()) -> bytes:
    import csv
    import io

    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows_)
    for line in extra_lines:
        buf.write(line + "\r\n")
    return buf.getvalue().encode(encoding)


def xlsx_bytes(header, rows_) -> bytes:
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows_:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xml_bytes(records, tail="</records>\n") -> bytes:
    body = "".join(
        "  <record>" + "".join(f"<{k}>{v}</{k}>" for k, v in r.items()) + "</record>\n" for r in records
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<records>\n' + body + tail).encode("utf-8")


def payloads(url, run_id, source_id):
    return [(r["origin"], r["payload"], r["parse_error"]) for r in staged(url, run_id, source_id)]


@pytest.fixture()
def small_chunks(monkeypatch):
    """COPY in chunks of 2 rows, so files span several COPYs (and a malformed file is rolled back across them)."""
    monkeypatch.setattr(staging_mod, "settings", dataclasses.replace(staging_mod.settings, copy_chunk_rows=2))


def test_files_formats_edges_rerun_and_late_files(clean_warehouse, landing, small_chunks):
    url = clean_warehouse
    P, S, F, M = "psb/residence_permit", "education/student", "psb/foreign_resident", "civil_affairs/marriage"
    bad_line = "JZZ003,310101199001011234,多字段,1,19900101,310101,310101,上海,2026-01-01,多余"
    put(landing, f"{P}/2026-01-01/permit.csv", csv_bytes(PERMIT_HEADER, PERMIT_ROWS, "gbk", [bad_line]))
    put(landing, f"{P}/2026-01-02/empty.csv", b"")
    put(landing, f"{P}/2026-01-02/header_only.csv", csv_bytes(PERMIT_HEADER, [], "gbk"))
    put(landing, f"{P}/2026-01-03/tomorrow.csv", csv_bytes(PERMIT_HEADER, [["JZZ009"] + ["x"] * 8], "gbk"))
    put(landing, f"{S}/2026-01-02/student.csv", csv_bytes(STUDENT_HEADER, STUDENT_ROWS, "utf-8-sig"))
    put(landing, f"{F}/2026-01-02/foreign.xlsx", xlsx_bytes(FOREIGN_HEADER, FOREIGN_ROWS))
    put(landing, f"{M}/2026-01-02/a_good.xml", xml_bytes(MARRIAGE))
    broken = xml_bytes(MARRIAGE * 2, tail="  <record><djbh>HY9</djbh></recrd>\n</records>\n")
    put(landing, f"{M}/2026-01-02/b_broken.xml", broken)

    run1 = run_for(JAN2, JAN3, url)
    results = {sid: stage_source(sid, run1, JAN2, JAN3, url)
               for sid in ("psb_residence_permit", "education_student", "psb_foreign_resident", "civil_marriage")}

    # GBK CSV: Chinese text round-trips; the row with too many fields is staged raw with its parse error.
    assert results["psb_residence_permit"]["received"] == 3
    assert results["psb_residence_permit"]["files"] == 3  # permit.csv, empty.csv, header_only.csv (not 01-03)
    assert payloads(url, run1, "psb_residence_permit") == [
        (f"landing/{P}/2026-01-01/permit.csv:2", dict(zip(PERMIT_HEADER, PERMIT_ROWS[0])), None),
        (f"landing/{P}/2026-01-01/permit.csv:3", dict(zip(PERMIT_HEADER, PERMIT_ROWS[1])), None),
        (f"landing/{P}/2026-01-01/permit.csv:4", {"_raw": bad_line}, "expected 9 fields, got 10"),
    ]
    p1 = staged(url, run1, "psb_residence_permit")[0]
    assert (p1["source_key"], p1["id_number"], p1["name"], p1["residence_address"], p1["residence_permit_no"],
            p1["id_type"], p1["department"]) == ("JZZ001", "420102199003071234", "张伟", "上海市浦东新区张江路88弄3号",
                                                 "JZZ001", "RIC", "psb")
    assert p1["source_updated_at"] == datetime(2026, 1, 1, 10, tzinfo=SH)
    assert p1["row_hash"] == hashlib.md5(
        json.dumps(p1["payload"], sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
    assert rows(url, "SELECT origin, reason FROM quarantine.source_file WHERE run_id = %s"
                     " AND source_id = 'psb_residence_permit' ORDER BY origin", (run1,)) == [
        (f"landing/{P}/2026-01-02/empty.csv", "EMPTY_FILE"),
        (f"landing/{P}/2026-01-02/header_only.csv", "EMPTY_FILE"),
    ]

    # UTF-8 with BOM: the first header name has no BOM; no update time -> the drop date 00:00 Shanghai.
    st = staged(url, run1, "education_student")
    assert [r["payload"] for r in st] == [dict(zip(STUDENT_HEADER, r)) for r in STUDENT_ROWS]
    assert [r["source_updated_at"] for r in st] == [datetime(2026, 1, 2, 8, tzinfo=SH), JAN2]
    assert (st[1]["school"], st[1]["education_level"]) == ("上海市南洋模范中学", "小学")

    # XLSX: id_type comes from the 证件种类 column (no registry default).
    fr = staged(url, run1, "psb_foreign_resident")
    assert [r["payload"] for r in fr] == [dict(zip(FOREIGN_HEADER, r)) for r in FOREIGN_ROWS]
    assert [(r["id_type"], r["nationality"], r["origin"].rsplit(":", 1)[1]) for r in fr] == [
        ("PASSPORT", "USA", "2"), ("PRP", "JPN", "3")]

    # XML: the good file is staged; the broken one (4 good records, then an error) is quarantined whole.
    assert [r["payload"] for r in staged(url, run1, "civil_marriage")] == MARRIAGE
    assert results["civil_marriage"]["received"] == 2 and results["civil_marriage"]["quarantined_files"] == 1
    (reason, detail), = rows(url, "SELECT reason, detail FROM quarantine.source_file WHERE run_id = %s"
                                  " AND source_id = 'civil_marriage'", (run1,))
    assert reason == "MALFORMED_FILE" and "not well-formed" in detail and "line 7" in detail

    # The manifest records every file taken, with its digest, size, drop date, rows and error.
    manifest = rows(url, "SELECT path, sha256, size_bytes, drop_date::text, run_id, rows_read, error"
                         " FROM audit.file_manifest ORDER BY source_id, path")
    by_path = {m[0]: m for m in manifest}
    assert set(by_path) == {
        f"{M}/2026-01-02/a_good.xml", f"{M}/2026-01-02/b_broken.xml", f"{S}/2026-01-02/student.csv",
        f"{F}/2026-01-02/foreign.xlsx", f"{P}/2026-01-01/permit.csv", f"{P}/2026-01-02/empty.csv",
        f"{P}/2026-01-02/header_only.csv",
    }
    assert by_path[f"{M}/2026-01-02/b_broken.xml"][1:] == (
        hashlib.sha256(broken).hexdigest(), len(broken), "2026-01-02", run1, 0,
        by_path[f"{M}/2026-01-02/b_broken.xml"][6])
    assert by_path[f"{M}/2026-01-02/b_broken.xml"][6].startswith("MALFORMED_FILE: ")
    assert by_path[f"{P}/2026-01-01/permit.csv"][5:] == (3, None)
    assert by_path[f"{P}/2026-01-02/empty.csv"][5:] == (0, "EMPTY_FILE: no header")
    detail = one(url, "SELECT detail FROM audit.extract WHERE run_id = %s AND source_id = 'psb_residence_permit'",
                 (run1,))[0]
    assert detail["files"] == [
        {"path": f"{P}/2026-01-01/permit.csv", "rows": 3, "error": None},
        {"path": f"{P}/2026-01-02/empty.csv", "rows": 0, "error": "EMPTY_FILE"},
        {"path": f"{P}/2026-01-02/header_only.csv", "rows": 0, "error": "EMPTY_FILE"},
    ]

    # Re-running the interval: staging, quarantine and manifest identical.
    before = {sid: staged(url, run1, sid) for sid in results}
    q_before = rows(url, "SELECT * FROM quarantine.source_file ORDER BY source_id, origin")
    m_before = manifest
    assert run_for(JAN2, JAN3, url) == run1
    for sid in results:
        stage_source(sid, run1, JAN2, JAN3, url)
    assert {sid: staged(url, run1, sid) for sid in results} == before
    assert rows(url, "SELECT * FROM quarantine.source_file ORDER BY source_id, origin") == q_before
    assert rows(url, "SELECT path, sha256, size_bytes, drop_date::text, run_id, rows_read, error"
                     " FROM audit.file_manifest ORDER BY source_id, path") == m_before

    # The extract checked every row it staged (its checks are in the row, migration 0024); validate_run computes
    # the same checks from the staged rows alone (here: a source whose checks were cleared, as rows staged by other
    # means have none) and touches nothing else.
    unchecked = "SELECT count(*) FROM staging.population_record WHERE run_id = %s AND reasons IS NULL"
    assert rows(url, unchecked, (run1,)) == [(0,)]
    checks = ("SELECT source_id, seq, " + ", ".join(CHECK_COLUMNS) + " FROM staging.population_record"
              " WHERE run_id = %s ORDER BY source_id, seq")
    by_extract = rows(url, checks, (run1,))
    assert any(r[-2] for r in by_extract)  # some row was rejected (the malformed line)
    assert ("civil_marriage", 1, "RIC", "310101199001011234", "1", date(1990, 1, 1), None, date(2026, 1, 2), [],
            []) in by_extract  # typed: dates as date, codes as text[]
    with connect(url) as conn:
        gone = conn.execute("UPDATE staging.population_record SET " + ", ".join(f"{c} = NULL" for c in CHECK_COLUMNS)
                            + " WHERE run_id = %s AND source_id = %s", (run1, "civil_marriage")).rowcount
    assert gone > 0
    assert rows(url, unchecked, (run1,)) == [(gone,)]
    result = validate_run(run1, JAN3.date(), url)
    assert (result["checked"], result["checked_here"]) == (len(by_extract), gone)
    assert rows(url, checks, (run1,)) == by_extract
    assert rows(url, unchecked, (run1,)) == [(0,)]
    result = validate_run(run1, JAN3.date(), url)  # again: nothing left to check, the same quarantine
    assert (result["checked"], result["checked_here"]) == (len(by_extract), 0)

    # Next interval: tomorrow's folder and a late file dropped into an old folder; nothing taken twice.
    late = [["JZZ100", "310101199001011234", "迟到", "1", "19900101", "310101", "310101", "上海市黄浦区", ""]]
    put(landing, f"{P}/2026-01-01/zz_late.csv", csv_bytes(PERMIT_HEADER, late, "gbk"))
    run2 = run_for(JAN3, JAN4, url)
    r2 = stage_source("psb_residence_permit", run2, JAN3, JAN4, url)
    assert (r2["received"], r2["files"], r2["low_watermark"]) == (2, 2, JAN3.isoformat())
    got2 = staged(url, run2, "psb_residence_permit")
    assert [r["origin"] for r in got2] == [f"landing/{P}/2026-01-01/zz_late.csv:2",
                                           f"landing/{P}/2026-01-03/tomorrow.csv:2"]
    assert got2[0]["source_updated_at"] == JAN1  # no update time: its drop date
    assert watermark(url, "psb_residence_permit") == JAN4

    # Re-running the first interval now does not steal the late file, and leaves the watermark.
    stage_source("psb_residence_permit", run1, JAN2, JAN3, url)
    assert staged(url, run1, "psb_residence_permit") == before["psb_residence_permit"]
    assert staged(url, run2, "psb_residence_permit") == got2
    assert watermark(url, "psb_residence_permit") == JAN4
    assert one(url, "SELECT run_id FROM audit.file_manifest WHERE path = %s", (f"{P}/2026-01-01/zz_late.csv",)) == (
        run2,)


# --- HTTP API --------------------------------------------------------------------------------------------------


class _Api:
    """A tiny paged API over an in-memory list, with switches for failures."""

    def __init__(self):
        self.items: list[dict] = []
        self.fail_5xx: dict[int, int] = {}  # page -> how many 503s before answering
        self.fail_4xx = False
        self.requests: list[dict] = []

    def answer(self, path: str, query: dict) -> tuple[int, dict]:
        self.requests.append(query)
        if path != "/health/vital-events":
            return 404, {"error": f"no such endpoint {path}"}
        if self.fail_4xx:
            return 400, {"error": "page_size too large"}
        page, size = int(query["page"]), int(query["page_size"])
        if self.fail_5xx.get(page, 0) > 0:
            self.fail_5xx[page] -= 1
            return 503, {"error": "temporarily unavailable"}
        lo = datetime.fromisoformat(query["updated_since"])
        hi = datetime.fromisoformat(query["updated_until"])
        sel = sorted((i for i in self.items if lo <= datetime.fromisoformat(i["updatedAt"]) < hi),
                     key=lambda i: (i["updatedAt"], i["eventId"]))
        return 200, {"items": sel[(page - 1) * size: page * size], "page": page, "page_size": size,
                     "total": len(sel), "next_page": page + 1 if page * size < len(sel) else None}


@pytest.fixture(scope="module")
def api():
    state = _Api()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            parts = urlsplit(self.path)
            status, body = state.answer(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})
            try:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:  # an unpaired surrogate: spelled as its JSON escape, as a real API would
                data = json.dumps(body).encode("ascii")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    try:  # at SIM_API_URL, where the loader looks by default
        server = ThreadingHTTPServer(("127.0.0.1", urlsplit(settings.sim_api_url).port), Handler)
        moved = None
    except OSError:  # the port is taken (another API fixture of this session): serve elsewhere and say so
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        moved = dataclasses.replace(api_mod.settings, sim_api_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as mp:
        if moved:
            mp.setattr(api_mod, "settings", moved)
        yield state
    server.shutdown()
    server.server_close()


def vital(i: int, updated: datetime) -> dict:
    return {"eventId": f"EV{i:05d}", "idNumber": f"3101152026010{i:05d}", "name": "新生儿" if i % 2 else "王五",
            "sex": "2", "birthDate": "2026-01-01", "deathDate": None, "districtCode": "310115",
            "eventType": "birth", "eventDate": "2026-01-01", "updatedAt": updated.isoformat(), "hospital": {"id": 7}}


def test_api_pages_window_retry_rerun_and_4xx(clean_warehouse, api, monkeypatch):
    monkeypatch.setattr("pipelines.sources.api.wait_exponential", lambda **kw: (lambda state: 0.01))
    url = clean_warehouse
    api.items = [vital(i, JAN1 + timedelta(seconds=30 * i)) for i in range(1203)]
    api.items.append(vital(5000, JAN2 + timedelta(hours=3)))  # next interval
    api.fail_5xx = {2: 2}
    api.requests.clear()

    run1 = run_for(JAN1, JAN2, url)
    counts = stage_source("health_vital_events", run1, JAN1, JAN2, url)
    assert counts["received"] == 1203 and counts["low_watermark"] is None
    got = staged(url, run1, "health_vital_events")
    assert [r["source_key"] for r in got] == [f"EV{i:05d}" for i in range(1203)]
    assert [r["seq"] for r in got] == list(range(1, 1204))
    assert got[0]["payload"] == api.items[0]  # as received, nested JSON and nulls included
    assert (got[0]["origin"], got[500]["origin"], got[1202]["origin"]) == (
        "api:/health/vital-events?page=1", "api:/health/vital-events?page=2", "api:/health/vital-events?page=3")
    assert (got[1]["name"], got[1]["residence_division"], got[1]["death_date"], got[1]["id_type"]) == (
        "新生儿", "310115", None, "RIC")
    assert got[1]["source_updated_at"] == JAN1 + timedelta(seconds=30)
    detail = one(url, "SELECT detail FROM audit.extract WHERE run_id = %s", (run1,))[0]
    assert detail["pages"] == [{"page": 1, "rows": 500}, {"page": 2, "rows": 500}, {"page": 3, "rows": 203}]
    assert sum(1 for q in api.requests if q["page"] == "2") == 3  # two 503s, then the page
    assert api.requests[0]["page_size"] == "500" and api.requests[0]["updated_until"] == JAN2.isoformat()

    stage_source("health_vital_events", run1, JAN1, JAN2, url)
    assert staged(url, run1, "health_vital_events") == got

    run2 = run_for(JAN2, JAN3, url)
    api.requests.clear()
    counts = stage_source("health_vital_events", run2, JAN2, JAN3, url)
    assert counts["received"] == 1 and api.requests[0]["updated_since"] == JAN2.isoformat()
    assert watermark(url, "health_vital_events") == JAN3

    # A 4xx fails clearly, and the transaction leaves nothing behind for that run.
    api.fail_4xx = True
    run3 = run_for(JAN3, JAN4, url)
    with pytest.raises(SourceApiError, match="HTTP 400.*page_size too large"):
        stage_source("health_vital_events", run3, JAN3, JAN4, url)
    api.fail_4xx = False
    assert one(url, "SELECT count(*) FROM audit.extract WHERE run_id = %s", (run3,)) == (0,)
    assert watermark(url, "health_vital_events") == JAN3


def test_an_unpaired_surrogate_from_the_api_is_quarantined_not_a_failed_extract(clean_warehouse, api):
    """JSON may spell a lone UTF-16 half ("\\ud800"); decoded, it is no UTF-8 text: the row is staged with it replaced
    by U+FFFD and quarantined as malformed, its neighbours staged as usual (the extract failed whole before)."""
    url = clean_warehouse
    bad = vital(1, JAN1 + timedelta(seconds=60)) | {"name": "王\ud800五"}
    api.items = [vital(0, JAN1 + timedelta(seconds=30)), bad]
    run1 = run_for(JAN1, JAN2, url)
    assert stage_source("health_vital_events", run1, JAN1, JAN2, url)["received"] == 2
    got = staged(url, run1, "health_vital_events")
    assert got[1]["payload"]["name"] == "王\ufffd五" and got[1]["parse_error"].startswith("unpaired surrogate")
    assert got[0]["parse_error"] is None
    validate_run(run1, JAN3.date(), url)
    assert rows(url, "SELECT reasons FROM quarantine.population_record WHERE run_id = %s AND source_key = %s",
                (run1, "EV00001")) == [(["MALFORMED_ROW"],)]  # (the fixture's numbers fail their checks anyway)


def test_a_file_replaced_under_the_same_path_is_taken_again(clean_warehouse, landing):
    """A department drops a corrected file under the name it used before: the next run takes it again (its rows
    are not lost), the manifest keeps both contents; a file merely touched (same content) is not taken twice."""
    url = clean_warehouse
    P = "psb/residence_permit"
    path = put(landing, f"{P}/2026-01-01/permit.csv", csv_bytes(PERMIT_HEADER, PERMIT_ROWS[:1], "gbk"))
    run1 = run_for(JAN2, JAN3, url)
    assert stage_source("psb_residence_permit", run1, JAN2, JAN3, url)["received"] == 1

    run2 = run_for(JAN3, JAN3 + timedelta(days=1), url)
    os.utime(path)  # touched, same content
    assert stage_source("psb_residence_permit", run2, JAN3, JAN3 + timedelta(days=1), url)["received"] == 0

    put(landing, f"{P}/2026-01-01/permit.csv", csv_bytes(PERMIT_HEADER, PERMIT_ROWS, "gbk"))  # corrected re-drop
    run3 = run_for(JAN3 + timedelta(days=1), JAN3 + timedelta(days=2), url)
    result = stage_source("psb_residence_permit", run3, JAN3 + timedelta(days=1), JAN3 + timedelta(days=2), url)
    assert result["received"] == len(PERMIT_ROWS)
    manifest = rows(url, "SELECT run_id, rows_read, replaces_sha256 IS NOT NULL FROM audit.file_manifest"
                         " WHERE path = %s ORDER BY run_id", (f"{P}/2026-01-01/permit.csv",))
    assert manifest == [(run1, 1, False), (run3, len(PERMIT_ROWS), True)]

    # a re-run of run 3 takes the same file again (its own take), and nothing twice
    again = stage_source("psb_residence_permit", run3, JAN3 + timedelta(days=1), JAN3 + timedelta(days=2), url)
    assert again["received"] == len(PERMIT_ROWS)
    assert len(rows(url, "SELECT 1 FROM audit.file_manifest WHERE path = %s", (f"{P}/2026-01-01/permit.csv",))) == 2


def test_a_local_update_time_without_time_zone_is_shanghai_time(clean_warehouse, hukou_table):
    """A 前置库 whose update time is a ``timestamp`` (no time zone, as many departments' systems keep it): the window
    and the staged update time read it as Shanghai local time; the payload keeps it as received."""
    with psycopg.connect(Settings.libpq(hukou_table), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE psb.t_rk_hjxx ALTER COLUMN {} TYPE timestamp").format(
            sql.Identifier(HUKOU.updated_at)))
    local = datetime(2026, 1, 1, 20, 0)  # 20:00 in Shanghai on the first: inside [JAN1, JAN2) (as UTC it would not be)
    late = datetime(2026, 1, 2, 0, 30)   # 00:30 in Shanghai on the second: the next window
    upsert_hukou(hukou_table, [hukou_row(1, local), hukou_row(2, late)])
    url = clean_warehouse
    run1 = run_for(JAN1, JAN2, url)
    assert stage_source("psb_hukou", run1, JAN1, JAN2, url)["received"] == 1
    (r,) = staged(url, run1, "psb_hukou")
    assert r["source_key"] == "R001"
    assert r["source_updated_at"] == local.replace(tzinfo=SH)
    assert r["payload"]["GXSJ"] == "2026-01-01T20:00:00"


def test_each_run_stages_into_its_own_partition_made_without_waiting(clean_warehouse, hukou_table):
    """Staging is partitioned by run (migration 0014): opening a run makes its partitions, by ATTACH, so that a new
    run is not held up by another run's extract still writing; the run's rows land in its partition, which is what
    validation analyses."""
    url = clean_warehouse
    upsert_hukou(hukou_table, [hukou_row(i, JAN2 + timedelta(hours=i)) for i in range(1, 4)])
    run1 = run_for(JAN1, JAN2, url)
    with connect(url) as writer:  # run 1's extract, still open, holding its rows
        writer.execute(
            "INSERT INTO staging.population_record (run_id, source_id, seq, department, row_hash, payload)"
            " VALUES (%s, 'psb_hukou', 1, 'psb', 'h', '{}')", (run1,))
        with connect(url) as other:
            other.execute("SET lock_timeout = '2s'")  # PARTITION OF would wait for the writer and fail here
            run2 = other.execute(
                "INSERT INTO audit.run (pipeline, interval_start, interval_end) VALUES ('population', %s, %s)"
                " RETURNING run_id", (JAN2, JAN3)).fetchone()[0]
    assert run2 != run1
    stage_source("psb_hukou", run2, JAN2, JAN3, url)
    with connect(url) as conn:
        parts = dict(conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c"
            " ON c.oid = i.inhrelid WHERE i.inhparent = 'staging.population_record'::regclass").fetchall())
        assert parts == {f"population_record_r{run1}": f"FOR VALUES IN ('{run1}')",
                         f"population_record_r{run2}": f"FOR VALUES IN ('{run2}')"}
        whole = conn.execute("SELECT count(*) FROM staging.population_record WHERE run_id = %s", (run2,)).fetchone()[0]
        own = conn.execute(f"SELECT count(*) FROM staging.population_record_r{run2}").fetchone()[0]
        assert whole == own > 0
    validate_run(run2, JAN3.date(), url)
    with connect(url) as conn:
        analysed = conn.execute(
            "SELECT relname FROM pg_stat_user_tables"
            " WHERE schemaname = 'staging' AND relname LIKE 'population_record_r%%' AND last_analyze IS NOT NULL"
        ).fetchall()
        assert [name for (name,) in analysed] == [f"population_record_r{run2}"]
        # (statistics of the columns the statements compare, not of the fields and payload they only read)
        columns = {c for (c,) in conn.execute(
            "SELECT attname FROM pg_stats WHERE schemaname = 'staging' AND tablename = %s",
            (f"population_record_r{run2}",)).fetchall()}
        assert columns == set(STATISTICS_COLUMNS["staging.population_record"])


def test_the_extract_flags_the_rows_whose_key_may_repeat(clean_warehouse, landing, small_chunks, monkeypatch):
    """key_repeated (migration 0030): false for the first row of a key that normalises to itself, true for a key
    already staged by the same extract — in an earlier file, or in a file rolled back as malformed — and for a key
    normalisation might change (full-width, white space) or a row without one; another run starts afresh."""
    url = clean_warehouse
    P = "psb/residence_permit"
    row = PERMIT_ROWS[0]
    # (past the decoder's first block of 8 KB: some chunks of it are staged before it fails, then rolled back)
    broken = csv_bytes(PERMIT_HEADER, [[f"JZZ{n:03d}", *row[1:]] for n in range(6, 206)], "gbk")
    put(landing, f"{P}/2026-01-01/a_broken.csv", broken + b"JZZ999,\xff\xfe\xff\r\n")  # (not GBK: rolled back)
    keys = ["JZZ001", "JZZ002", "JZZ001", "ＪＺＺ004", " JZZ005", "JZZ006", "JZZ300"]
    put(landing, f"{P}/2026-01-01/b.csv", csv_bytes(PERMIT_HEADER, [[k, *row[1:]] for k in keys], "gbk",
                                                     ["JZZ011,too,few"]))
    run1 = run_for(JAN2, JAN3, url)
    assert stage_source("psb_residence_permit", run1, JAN2, JAN3, url)["received"] == len(keys) + 1
    assert rows(url, "SELECT reason FROM quarantine.source_file WHERE run_id = %s", (run1,)) == [("MALFORMED_FILE",)]
    got = [(r["source_key"], r["key_repeated"]) for r in staged(url, run1, "psb_residence_permit")]
    assert got == [("JZZ001", False), ("JZZ002", False), ("JZZ001", True), ("ＪＺＺ004", True), (" JZZ005", True),
                   ("JZZ006", True), ("JZZ300", False), (None, True)]

    put(landing, f"{P}/2026-01-02/c.csv", csv_bytes(PERMIT_HEADER, [[k, *row[1:]] for k in ("JZZ001", "JZZ002",
                                                                                              "JZZ003")], "gbk"))
    run2 = run_for(JAN3, JAN4, url)
    stage_source("psb_residence_permit", run2, JAN3, JAN4, url)
    assert [(r["source_key"], r["key_repeated"]) for r in staged(url, run2, "psb_residence_permit")] == [
        ("JZZ001", False), ("JZZ002", False), ("JZZ003", False)]

    # past KEYS_TRACKED keys (checked per chunk of 2 rows here) every further row is flagged: memory stays bounded
    monkeypatch.setattr(staging_mod, "KEYS_TRACKED", 2)
    stage_source("psb_residence_permit", run2, JAN3, JAN4, url)
    assert [(r["source_key"], r["key_repeated"]) for r in staged(url, run2, "psb_residence_permit")] == [
        ("JZZ001", False), ("JZZ002", False), ("JZZ003", True)]
