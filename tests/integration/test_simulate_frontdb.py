"""The simulated departments' 前置库 tables on the real PostgreSQL (pipelines.simulate with a frontdb URL).

The tables live in a database of their own on the test server (``<test frontdb>_simulate``), so that other tests'
fixtures in the session's 前置库 (a hand-made psb.t_rk_hjxx) and these never meet. What is proved: the tables have the
registry's columns and types; each day's rows carry update times inside that day (Asia/Shanghai); the planted
defects read back from the tables (and the psb evidence they need) equal the manifest, including the split of rows
without an ID into NO_ID_MATCHABLE / REVIEW_AMBIGUOUS_MATCH and the hrss conflicts; reruns give identical tables;
writing day by day adds each day's rows to the tables as real 前置库 rows appear; psb's late updates follow health.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import fields
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from pipelines.registry import load_sources
from pipelines.settings import Settings
from pipelines.simulate import DefectRates, generate, write_day
from pipelines.simulate.rows import output_columns
from pipelines.simulate.verify import classify, evidence, merge_evidence, read_output
from support import scratch_database

pytestmark = pytest.mark.integration

SH = ZoneInfo("Asia/Shanghai")
START = date(2026, 1, 1)
PERSONS, DAYS, SEED = 2500, 4, 97
SOURCES = {s.id: s for s in load_sources()}
TABLES = [s for s in SOURCES.values() if s.kind == "frontdb"]
RICH = DefectRates(**{f.name: min(1.0, getattr(DefectRates(), f.name) * 3) for f in fields(DefectRates)
                      if isinstance(getattr(DefectRates(), f.name), float) and f.name != "twin_share"})


@pytest.fixture(scope="module")
def simdb(frontdb):
    with scratch_database(frontdb, f"{frontdb.database}_simulate") as url:
        yield url


def _generate(base: Path, url, **kw):
    return generate(PERSONS, DAYS, SEED, START, base / "landing", base / "api", url, RICH, **kw)


@pytest.fixture(scope="module")
def world(simdb, tmp_path_factory):
    base = tmp_path_factory.mktemp("simdb")
    return base, _generate(base, simdb)


def _window(d: int) -> tuple[datetime, datetime]:
    low = datetime.combine(START + timedelta(days=d), time(), SH)
    return low, low + timedelta(days=1)


def _rows(url, source, d: int | None = None) -> list[dict]:
    """The table's rows as text (update time as ISO at +08:00), in insertion order, optionally of day d only."""
    schema, table = source.table.split(".")
    cols = output_columns(source)
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, cols)),
                                              sql.Identifier(schema, table))
    params: tuple = ()
    if d is not None:
        query += sql.SQL(" WHERE {u} >= %s AND {u} < %s").format(u=sql.Identifier(source.updated_at))
        params = _window(d)
    query += sql.SQL(" ORDER BY ctid")
    with psycopg.connect(Settings.libpq(url)) as conn:
        conn.execute("SET TIME ZONE 'Asia/Shanghai'")
        out = []
        for row in conn.execute(query, params):
            rec = {c: ("" if v is None else v) for c, v in zip(cols, row)}
            rec[source.updated_at] = row[-1].isoformat()
            out.append(rec)
        return out


def _dump(url) -> str:
    h = hashlib.sha256()
    for source in TABLES:
        for row in sorted(_rows(url, source), key=lambda r: tuple(map(str, r.values()))):
            h.update(repr(row).encode())
    return h.hexdigest()


def _file_rows(base: Path, manifest, source_id: str, day: int) -> list[dict]:
    src = SOURCES[source_id]
    rows = []
    for out in manifest.outputs(source=source_id, day=day):
        if out["status"] == "ok":
            rows += read_output(src, base / "landing" / out["path"])
    return rows


def test_tables_have_the_registry_columns(world, simdb):
    with psycopg.connect(Settings.libpq(simdb)) as conn:
        for source in TABLES:
            schema, table = source.table.split(".")
            got = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (schema, table)).fetchall()
            assert [c for c, _ in got] == output_columns(source)
            assert set(source.fields.values()) | {source.key, source.updated_at} == {c for c, _ in got}
            types = dict(got)
            assert types.pop(source.updated_at) == "timestamp with time zone"
            assert set(types.values()) == {"text"}


def test_each_day_rows_fall_inside_the_day(world, simdb):
    _, manifest = world
    with psycopg.connect(Settings.libpq(simdb)) as conn:
        for source in TABLES:
            schema, table = source.table.split(".")
            tbl, upd = sql.Identifier(schema, table), sql.Identifier(source.updated_at)
            total = conn.execute(sql.SQL("SELECT count(*), count({}) FROM {}").format(upd, tbl)).fetchone()
            assert total[0] == total[1] == manifest.rows(source=source.id)
            for d in range(DAYS + 1):
                low, high = _window(d)
                n, lo, hi = conn.execute(sql.SQL("SELECT count(*), min({u}), max({u}) FROM {t} WHERE {u} >= %s AND {u} < %s")
                                         .format(u=upd, t=tbl), (low, high)).fetchone()
                assert n == manifest.rows(source=source.id, day=d) > 0
                assert low <= lo and hi < high
                assert manifest.days[d]["sources"][source.id]["outputs"][0]["path"] == source.table


def test_planted_defects_read_back_from_the_tables(world, simdb):
    base, manifest = world
    psb_days = []
    total = Counter()
    for d in range(DAYS + 1):
        hukou_rows = _rows(simdb, SOURCES["psb_hukou"], d)
        psb_days.append(evidence(hukou_rows, SOURCES["psb_hukou"]))
        psb_days.append(evidence(_file_rows(base, manifest, "psb_residence_permit", d), SOURCES["psb_residence_permit"]))
        psb = merge_evidence(*psb_days)
        for source in TABLES:
            rows = hukou_rows if source.id == "psb_hukou" else _rows(simdb, source, d)
            found = classify(source, rows, psb, check_conflicts=True, residence=(d == 0))
            want = Counter(manifest.defects(source=source.id, day=d))
            if d > 0:  # a district conflict is told from a stale address (after a move) on the full extract only
                found["CONFLICT_RESIDENCE"] += want["CONFLICT_RESIDENCE"]
            assert +found == +want, (source.id, d)
            total += found
        # the students' rows without an ID split the same way once psb's evidence is at hand
        edu = _file_rows(base, manifest, "education_student", d)
        want = {k: v for k, v in manifest.defects(source="education_student", day=d).items()
                if k in ("NO_ID_MATCHABLE", "REVIEW_AMBIGUOUS_MATCH")}
        got = classify(SOURCES["education_student"], edu, psb)
        assert {k: got[k] for k in ("NO_ID_MATCHABLE", "REVIEW_AMBIGUOUS_MATCH") if got[k]} == want
    for kind in ("NO_ID_MATCHABLE", "REVIEW_AMBIGUOUS_MATCH", "CONFLICT_NAME", "CONFLICT_RESIDENCE",
                 "ID_BAD_CHECK_DIGIT", "W_ID_NORMALISED", "DUPLICATE_EXACT", "DUPLICATE_NEAR", "W_DIVISION_RETIRED"):
        assert total[kind] > 0, kind


def test_psb_follows_health_late(world, simdb):
    """psb deregisters a death 1-2 days after health reports it and registers a birth 1-3 days after."""
    base, manifest = world
    health = {}
    for d in range(1, DAYS + 1):
        for out in manifest.outputs(source="health_vital_events", day=d):
            for r in read_output(SOURCES["health_vital_events"], base / "api" / out["path"]):
                health[r["eventId"]] = (d, r)
    checked = Counter()
    for d in range(1, DAYS + 1):
        for r in _rows(simdb, SOURCES["psb_hukou"], d):
            if r["BDLX"] not in ("死亡注销", "出生登记") or not r["RYBH"]:
                continue
            event_id = ("SW" if r["BDLX"] == "死亡注销" else "CS") + r["RYBH"][2:]
            day, h = health[event_id]
            lag = d - day
            if r["BDLX"] == "死亡注销":
                assert r["RKZT"] == "死亡" and 1 <= lag <= 2
                assert r["BDRQ"] == h["deathDate"].replace("-", "")
            else:
                assert r["RKZT"] == "正常" and 1 <= lag <= 3
                assert r["BDRQ"] == h["birthDate"].replace("-", "")
            assert date.fromisoformat(h["eventDate"]) < START + timedelta(days=d)  # a late update
            checked[r["BDLX"]] += 1
    assert checked["死亡注销"] > 0 and checked["出生登记"] > 0
    assert manifest.info("late_event", source="psb_hukou") >= sum(checked.values())


def test_reruns_and_day_by_day_give_identical_tables(world, simdb, tmp_path):
    base, manifest = world
    full = _dump(simdb)
    again = _generate(tmp_path / "again", simdb)
    assert _dump(simdb) == full and again.to_json() == manifest.to_json()

    # the full extract and day 1 first; later days' rows arrive afterwards, as in a real 前置库
    _generate(tmp_path / "daily", simdb, only_days=range(0, 2))
    with psycopg.connect(Settings.libpq(simdb)) as conn:
        n = conn.execute('SELECT count(*) FROM psb.t_rk_hjxx').fetchone()[0]
    assert n == manifest.rows(source="psb_hukou", day=0) + manifest.rows(source="psb_hukou", day=1)
    for d in range(2, DAYS + 1):
        m = write_day(d, PERSONS, SEED, START, tmp_path / "daily" / "landing", tmp_path / "daily" / "api", simdb, RICH)
    assert _dump(simdb) == full and m.to_json() == manifest.to_json()
    write_day(3, PERSONS, SEED, START, tmp_path / "daily" / "landing", tmp_path / "daily" / "api", simdb, RICH)
    assert _dump(simdb) == full  # rewriting a day replaces its rows
