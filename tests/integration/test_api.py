"""The read API against the real warehouse: catalog (JSON and DCAT), paging, filters, errors, API keys, identity
verification with its audit log, and the PII guard. The app runs in-process (TestClient), once for real (uvicorn).

The published tables publish.<code> of datasets of this test only (codes api_test_*) are created here, with their
rows in publish.catalog_entry and publish.release (migration 0008), and dropped afterwards; their definitions are
injected into the app.
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from hashlib import sha256
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from stdnum.cn import ric as stdnum_ric

from pipelines.api import keys as keys_mod
from pipelines.api.app import create_app
from pipelines.api.datasets import OPEN_ATTRIBUTE_ZH
from pipelines.runs import open_run
from pipelines.warehouse import connect

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
DISTRICTS = ["310101", "310104", "310115", "310151"]
AGE_BANDS = ["0-14", "15-34", "35-59", "60-79", "80+"]

POP = "api_test_pop_district_sex_age"      # 无条件开放
REG = "api_test_registered_by_district"    # 有条件开放
CLOSED = "api_test_closed"                 # 不予开放
LEAKY = "api_test_leaky"                   # 无条件开放, with an ID number planted past the review

@dataclass(frozen=True)
class Field:
    """The attributes of pipelines.publish.datasets.Field the API reads."""

    name: str
    type: str
    label_zh: str = ""
    description: str = ""
    filterable: bool = False


@dataclass(frozen=True)
class Dataset:
    """The attributes of pipelines.publish.datasets.Dataset the API reads (the test datasets need no SQL)."""

    code: str
    title: str
    open_attribute: str
    fields: tuple[Field, ...]
    title_en: str = ""
    provider_department: str = "psb"
    abstract: str = ""


DEFS = [
    Dataset(code=POP, title="各区分性别年龄段实有人口", title_en="Residents by district, sex and age band",
            provider_department="psb", abstract="测试: 各区、性别、年龄段的实有人口数", open_attribute="unconditional",
            fields=[Field("district_code", "text", "区划代码", "GB/T 2260", True),
                    Field("sex", "text", "性别", "GB/T 2261.1", True),
                    Field("age_band", "text", "年龄段", "", True),
                    Field("population", "integer", "人口数", "人", False)]),
    Dataset(code=REG, title="各区户籍与非户籍人口", title_en="Registered and non-registered residents",
            provider_department="psb", abstract="测试: 户籍/非户籍", open_attribute="conditional",
            fields=[Field("year", "integer", "年份", "", True),
                    Field("district_code", "text", "区划代码", "", True),
                    Field("is_registered", "boolean", "是否户籍", "", True),
                    Field("population", "integer", "人口数", "", False)]),
    Dataset(code=CLOSED, title="不予开放的测试数据", open_attribute="closed", provider_department="psb",
            fields=[Field("district_code", "text", "区划代码", "", True)]),
    Dataset(code=LEAKY, title="泄漏测试", open_attribute="unconditional", provider_department="psb",
            fields=[Field("district_code", "text", "区划代码", "", True), Field("note", "text", "备注", "", True)]),
]


def ric(division: str, birth: date, seq: int) -> str:
    """A genuine 公民身份号码 (python-stdnum is the oracle); odd seq = male."""
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    number = body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]
    assert stdnum_ric.is_valid(number), number
    return number


def ric_ending_in_x(division: str, birth: date) -> str:
    return next(n for n in (ric(division, birth, s) for s in range(1, 999)) if n.endswith("X"))


# --- fixtures --------------------------------------------------------------------------------------------------

def release_id(code: str, version: int) -> str:
    """A release id as the core makes them: <code>-<YYYYMMDD>-<NNN>."""
    return f"{code}-2026010{version}-{version:03d}"


def _pop_rows() -> list[tuple]:
    rows = []
    for i, d in enumerate(DISTRICTS):
        for sex in ("1", "2"):
            for j, band in enumerate(AGE_BANDS):
                rows.append((d, sex, band, 100 + 17 * i + 5 * j + (sex == "2")))
    return rows


@pytest.fixture(scope="module")
def published(warehouse_db):
    """Published tables and catalog rows for the test datasets; dropped at the end of the module."""
    with connect(warehouse_db) as conn:
        for code in (POP, REG, CLOSED, LEAKY):
            conn.execute(f"DROP TABLE IF EXISTS publish.{code}")
        conn.execute(f"CREATE TABLE publish.{POP} (district_code text, sex text, age_band text, population integer)")
        with conn.cursor().copy(f"COPY publish.{POP} FROM STDIN") as cp:
            for r in _pop_rows():
                cp.write_row(r)
        conn.execute(f"CREATE TABLE publish.{REG} (year integer, district_code text, is_registered boolean,"
                     " population integer)")
        for y in (2025, 2026):
            for d in DISTRICTS:
                for reg in (True, False):
                    conn.execute(f"INSERT INTO publish.{REG} VALUES (%s, %s, %s, %s)", (y, d, reg, 1000 + y % 10))
        conn.execute(f"CREATE TABLE publish.{CLOSED} (district_code text)")
        conn.execute(f"INSERT INTO publish.{CLOSED} VALUES ('310101')")
        conn.execute(f"CREATE TABLE publish.{LEAKY} (district_code text, note text)")
        conn.execute(f"INSERT INTO publish.{LEAKY} VALUES ('310101', 'ok'), ('310104', 'fine')")
        _delete_catalog_rows(conn)
        for code, n_rows in ((POP, 40), (REG, 16), (LEAKY, 2)):
            d = next(d for d in DEFS if d.code == code)
            # the release directories the core keeps (its repair re-links <code>/current for every catalog entry)
            (Path(os.environ["PUBLISH_DIR"]) / code / release_id(code, 2)).mkdir(parents=True, exist_ok=True)
            for version, status, published in ((1, "superseded", True), (2, "published", True),
                                               (3, "awaiting_approval", False)):
                conn.execute(
                    "INSERT INTO publish.release (release_id, dataset_code, version, status, published_at,"
                    " quality_passed, row_count, files, review, approved_by) VALUES (%s, %s, %s, %s, %s, true, %s,"
                    " %s, %s, 'auto')",
                    (release_id(code, version), code, version, status,
                     datetime(2026, 1, version, tzinfo=timezone.utc) if published else None, n_rows,
                     json.dumps({"csv": {"path": f"{code}/{release_id(code, version)}/{code}.csv",
                                         "sha256": "ab" * 32, "bytes": 1234}}),
                     json.dumps({"passed": True, "suppressed_cells": 0})),
                )
            for event, version in (("prepared", 1), ("published", 1), ("prepared", 2), ("published", 2),
                                   ("superseded", 1), ("prepared", 3)):
                conn.execute("INSERT INTO publish.release_event (release_id, dataset_code, event, actor, note,"
                             " row_count) VALUES (%s, %s, %s, 'auto', 'approved by 张科长', %s)",
                             (release_id(code, version), code, event, n_rows))
            conn.execute(
                "INSERT INTO publish.catalog_entry (dataset_code, title, title_en, database, provider_department,"
                " provider_department_name, abstract, classification, open_attribute, open_attribute_label,"
                " share_type, update_frequency, record_level, fields, formats, license, asset_uri, table_name,"
                " current_release_id, current_version, row_count, first_published, updated) VALUES"
                " (%s, %s, %s, 'population', 'psb', '市公安局', %s, '人口与社会', %s, %s, %s, 'daily', false, %s,"
                " '{csv,xlsx,xml,json}', %s, %s, %s, %s, 2, %s, %s, %s)",
                (code, d.title, d.title_en or code, d.abstract or d.title, d.open_attribute,
                 OPEN_ATTRIBUTE_ZH[d.open_attribute], d.open_attribute,
                 json.dumps([{"name": f.name, "type": f.type, "label_zh": f.label_zh} for f in d.fields]),
                 json.dumps({"name": "test", "url": "https://data.sh.gov.cn/"}),
                 f"postgres://warehouse/warehouse/publish/{code}", f"publish.{code}", release_id(code, 2), n_rows,
                 datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc)),
            )
    yield warehouse_db
    with connect(warehouse_db) as conn:
        for code in (POP, REG, CLOSED, LEAKY):
            conn.execute(f"DROP TABLE IF EXISTS publish.{code}")
            shutil.rmtree(Path(os.environ["PUBLISH_DIR"]) / code, ignore_errors=True)
        _delete_catalog_rows(conn)


def _delete_catalog_rows(conn) -> None:
    conn.execute("DELETE FROM publish.catalog_entry WHERE dataset_code LIKE 'api\\_test\\_%'")
    if conn.execute("SELECT to_regclass('publish.release_event')").fetchone()[0]:
        conn.execute("DELETE FROM publish.release_event WHERE dataset_code LIKE 'api\\_test\\_%'")
    conn.execute("DELETE FROM publish.release WHERE dataset_code LIKE 'api\\_test\\_%'")


@pytest.fixture(scope="module")
def api_keys(session_dir):
    """Keys made with the CLI's functions: the keys file holds only their hashes."""
    path = Path(os.environ["API_KEYS_FILE"])
    made = {
        "both": keys_mod.add("api-test-psb", "psb", ["verify", "conditional"], path),
        "verify": keys_mod.add("api-test-tax", "tax", ["verify"], path),
        "conditional": keys_mod.add("api-test-stats", "stats", ["conditional"], path),
    }
    text = path.read_text()
    for key in made.values():
        assert key not in text and keys_mod.hash_key(key) in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    yield made
    for client in ("api-test-psb", "api-test-tax", "api-test-stats"):
        keys_mod.revoke(client, path)


@pytest.fixture(scope="module")
def client(published):
    with TestClient(create_app(datasets_loader=lambda: DEFS)) as c:
        yield c


def all_rows(client, url: str, **params) -> tuple[list[dict], list[dict]]:
    """Follow `next` from the first page; (rows, page bodies)."""
    bodies, rows = [], []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        rows.extend(body["rows"])
        if not body["next"]:
            return rows, bodies
        response = client.get(body["next"])


# --- catalog ---------------------------------------------------------------------------------------------------

def test_catalog_lists_the_open_datasets_with_fields_and_current_release(client):
    r = client.get("/api/v1/catalog")
    assert r.status_code == 200
    body = r.json()
    by_code = {d["code"]: d for d in body["datasets"]}
    assert set(by_code) == {POP, REG, LEAKY}, "the closed dataset is never listed"
    pop = by_code[POP]
    assert pop["open_attribute"] == "unconditional" and pop["open_attribute_zh"] == "无条件开放"
    assert pop["access"] == "public"
    assert pop["provider_department_name"] == "市公安局"
    assert [f["name"] for f in pop["fields"]] == ["district_code", "sex", "age_band", "population"]
    assert [f["filterable"] for f in pop["fields"]] == [True, True, True, False]
    assert pop["fields"][0]["label_zh"] == "区划代码"
    assert pop["current_release"]["release_id"] == release_id(POP, 2)
    assert pop["current_release"]["row_count"] == 40
    assert pop["catalog_entry"]["update_frequency"] == "daily"
    assert by_code[REG]["access"] == "API key with scope 'conditional'"
    assert body["count"] == 3


def test_catalog_as_dcat_jsonld(client):
    """Built by the API while the publication core has written no catalog.jsonld."""
    core_file = Path(os.environ["PUBLISH_DIR"]) / "catalog.jsonld"
    aside = core_file.with_name("catalog.jsonld.aside")
    if core_file.exists():
        core_file.rename(aside)
    try:
        _check_built_dcat(client)
    finally:
        if aside.exists():
            aside.rename(core_file)


def _check_built_dcat(client):
    for url in ("/api/v1/catalog.jsonld", "/api/v1/catalog?format=dcat"):
        r = client.get(url)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/ld+json")
        doc = r.json()
        assert doc["@type"] == "dcat:Catalog" and "dcat" in doc["@context"]
        datasets = {d["dct:identifier"]: d for d in doc["dcat:dataset"]}
        assert set(datasets) == {POP, REG, LEAKY}
        assert datasets[POP]["@type"] == "dcat:Dataset"
        assert datasets[POP]["dct:accessRights"]["@id"].endswith("/PUBLIC")
        assert datasets[REG]["dct:accessRights"]["@id"].endswith("/RESTRICTED")
        assert datasets[POP]["dcat:distribution"][0]["dcat:accessURL"]["@id"].endswith(f"/datasets/{POP}/rows")
    assert client.get("/api/v1/catalog?format=xml").status_code == 422


def test_dcat_file_written_by_the_publication_core_is_served_as_is(client, session_dir):
    path = Path(os.environ["PUBLISH_DIR"]) / "catalog.jsonld"
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_bytes() if path.exists() else None
    doc = {"@context": {"dcat": "http://www.w3.org/ns/dcat#"}, "@type": "dcat:Catalog", "dcat:dataset": [],
           "dct:title": "written by publish"}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    try:
        assert client.get("/api/v1/catalog.jsonld").json() == doc
    finally:
        if before is None:
            path.unlink()
        else:
            path.write_bytes(before)


def test_dataset_metadata_and_release_history(client):
    r = client.get(f"/api/v1/datasets/{POP}")
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == POP and body["current_release"]["release_id"] == release_id(POP, 2)
    assert body["links"]["rows"].endswith(f"/api/v1/datasets/{POP}/rows")
    r = client.get(f"/api/v1/datasets/{POP}/releases")
    assert r.status_code == 200
    body = r.json()
    assert body["current_release_id"] == release_id(POP, 2)
    assert [x["release_id"] for x in body["releases"]] == [release_id(POP, 2), release_id(POP, 1)], \
        "the release awaiting approval is not shown"
    assert body["releases"][0]["files"]["csv"]["path"] == f"{POP}/{release_id(POP, 2)}/{POP}.csv"
    assert "review" not in body["releases"][0] and "approved_by" not in body["releases"][0]
    assert [(e["event"], e["release_id"]) for e in body["changelog"]] == [
        ("prepared", release_id(POP, 1)), ("published", release_id(POP, 1)), ("prepared", release_id(POP, 2)),
        ("published", release_id(POP, 2)), ("superseded", release_id(POP, 1)), ("prepared", release_id(POP, 3))]
    assert "张科长" not in r.text and "actor" not in body["changelog"][0], "who decided stays inside"
    # a conditional dataset's metadata is public (it is in the catalog); only its rows need a key
    assert client.get(f"/api/v1/datasets/{REG}").status_code == 200


@pytest.mark.parametrize("url", [f"/api/v1/datasets/{CLOSED}", f"/api/v1/datasets/{CLOSED}/rows",
                                 f"/api/v1/datasets/{CLOSED}/releases", "/api/v1/datasets/no_such_dataset/rows",
                                 "/api/v1/datasets/Bad-Code!/rows", "/api/v1/datasets/310101199003071230/rows"])
def test_unknown_and_closed_datasets_are_404(client, url):
    r = client.get(url)
    assert r.status_code == 404
    assert r.json()["error"] == "dataset_not_found"
    assert "catalog" in r.json()["detail"]


def test_unknown_route_is_a_json_404(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


# --- rows: paging and filters ----------------------------------------------------------------------------------

def _expected(conn_url, code: str, order: str, where: str = "", params=()) -> list[dict]:
    with connect(conn_url) as conn:
        cur = conn.execute(f"SELECT * FROM publish.{code} {where} ORDER BY {order}", params)
        names = [c.name for c in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def test_paging_walks_every_row_once_in_dimension_order(client, published):
    rows, bodies = all_rows(client, f"/api/v1/datasets/{POP}/rows", page_size=7)
    expected = _expected(published, POP, "district_code, sex, age_band, population")
    assert len(expected) == 40
    assert rows == expected, "pages, concatenated, are the table in the dataset's field order: no loss, no repeat"
    assert len(bodies) == 6 and [b["page"] for b in bodies] == [1, 2, 3, 4, 5, 6]
    assert all(b["total"] == 40 and b["pages"] == 6 for b in bodies)
    assert [len(b["rows"]) for b in bodies] == [7, 7, 7, 7, 7, 5]
    assert bodies[0]["previous"] is None and bodies[-1]["next"] is None
    assert "release_id=" + release_id(POP, 2) in bodies[0]["next"]
    assert bodies[0]["fields"] == ["district_code", "sex", "age_band", "population"]
    assert bodies[0]["release_id"] == release_id(POP, 2)
    # one page of everything agrees; beyond the last page is empty, not an error
    assert client.get(f"/api/v1/datasets/{POP}/rows", params={"page_size": 1000}).json()["rows"] == expected
    past = client.get(f"/api/v1/datasets/{POP}/rows", params={"page": 9, "page_size": 7}).json()
    assert past["rows"] == [] and past["total"] == 40 and past["next"] is None


def test_filters_select_exactly_the_matching_rows(client, published):
    rows, bodies = all_rows(client, f"/api/v1/datasets/{POP}/rows", district_code="310101", sex="1", page_size=2)
    assert rows == _expected(published, POP, "district_code, sex, age_band, population",
                             "WHERE district_code = %s AND sex = %s", ("310101", "1"))
    assert len(rows) == 5 and bodies[0]["total"] == 5
    assert bodies[0]["filters"] == {"district_code": ["310101"], "sex": ["1"]}
    assert "district_code=310101" in bodies[0]["next"] and "sex=1" in bodies[0]["next"]
    # a field given twice matches either value
    r = client.get(f"/api/v1/datasets/{POP}/rows?district_code=310101&district_code=310151&age_band=80%2B")
    assert {(x["district_code"], x["age_band"]) for x in r.json()["rows"]} == {("310101", "80+"), ("310151", "80+")}
    assert r.json()["total"] == 4
    # no match is an empty page, not an error
    r = client.get(f"/api/v1/datasets/{POP}/rows", params={"district_code": "999999"})
    assert r.status_code == 200 and r.json()["total"] == 0 and r.json()["rows"] == []


@pytest.mark.parametrize(
    ("params", "status", "error", "says"),
    [
        ({"page": 0}, 422, "invalid_parameter", "page"),
        ({"page": "two"}, 422, "invalid_parameter", "page"),
        ({"page_size": 1001}, 422, "invalid_parameter", "page_size"),
        ({"page_size": 0}, 422, "invalid_parameter", "page_size"),
        ({"colour": "red"}, 400, "unknown_filter", "filterable fields of " + POP + ": district_code, sex, age_band"),
        ({"population": "100"}, 400, "unknown_filter", "'population' is not filterable"),
        ({"sex": ""}, 400, "invalid_filter_value", "'sex' expects a value"),
        ({"310101199003071230": "1"}, 400, "unknown_filter", "a parameter is not a field of this dataset"),
    ],
)
def test_bad_parameters_are_4xx_with_a_message(client, params, status, error, says):
    r = client.get(f"/api/v1/datasets/{POP}/rows", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert says in r.json()["detail"]


def test_filter_values_are_checked_against_the_column_type(client, api_keys):
    h = {"X-API-Key": api_keys["conditional"]}
    url = f"/api/v1/datasets/{REG}/rows"
    r = client.get(url, params={"year": "2026", "is_registered": "true"}, headers=h)
    assert r.status_code == 200 and r.json()["total"] == 4
    assert all(x["year"] == 2026 and x["is_registered"] is True for x in r.json()["rows"])
    r = client.get(url, params={"year": "last year"}, headers=h)
    assert r.status_code == 400 and r.json() == {"error": "invalid_filter_value",
                                                 "detail": "filter 'year' expects an integer"}
    r = client.get(url, params={"is_registered": "maybe"}, headers=h)
    assert r.status_code == 400 and "true or false" in r.json()["detail"]


def test_a_new_release_while_paging_is_a_409_not_a_mixed_answer(client, published):
    first = client.get(f"/api/v1/datasets/{POP}/rows", params={"page_size": 10}).json()
    with connect(published) as conn:
        conn.execute("UPDATE publish.catalog_entry SET current_release_id = %s WHERE dataset_code = %s",
                     (release_id(POP, 3), POP))
    try:
        r = client.get(first["next"])
        assert r.status_code == 409 and r.json()["error"] == "release_changed"
    finally:
        with connect(published) as conn:
            conn.execute("UPDATE publish.catalog_entry SET current_release_id = %s WHERE dataset_code = %s",
                         (release_id(POP, 2), POP))


# --- API keys --------------------------------------------------------------------------------------------------

def test_conditional_data_needs_a_key_with_the_scope(client, api_keys):
    url = f"/api/v1/datasets/{REG}/rows"
    r = client.get(url)
    assert r.status_code == 401 and r.json()["error"] == "api_key_required"
    assert "X-API-Key" in r.json()["detail"] and r.headers["www-authenticate"].startswith("APIKey")
    r = client.get(url, headers={"X-API-Key": "sk_not-a-key"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_api_key"
    r = client.get(url, headers={"X-API-Key": api_keys["verify"]})
    assert r.status_code == 403 and r.json()["error"] == "scope_required" and "'conditional'" in r.json()["detail"]
    for k in ("conditional", "both"):
        r = client.get(url, headers={"X-API-Key": api_keys[k]})
        assert r.status_code == 200 and r.json()["total"] == 16
        assert r.headers["cache-control"] == "private, no-store"
    # public data needs no key, but a key that is sent must be a real one
    assert client.get(f"/api/v1/datasets/{POP}/rows").status_code == 200
    assert client.get(f"/api/v1/datasets/{POP}/rows", headers={"X-API-Key": "sk_nope"}).status_code == 401


def test_revoked_key_is_refused_without_a_restart(client, api_keys):
    path = Path(os.environ["API_KEYS_FILE"])
    key = keys_mod.add("api-test-temp", "stats", ["conditional"], path)
    url = f"/api/v1/datasets/{REG}/rows"
    assert client.get(url, headers={"X-API-Key": key}).status_code == 200
    assert keys_mod.revoke("api-test-temp", path)
    assert client.get(url, headers={"X-API-Key": key}).status_code == 401


def test_keys_cli_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    path = tmp_path / "keys.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "pipelines.api.keys", "--file", str(path), "add", "--client",
                          "psb-household", "--department", "psb", "--scopes", "verify,conditional"],
                         capture_output=True, text=True, env=env, check=True)
    key = out.stdout.strip()
    assert key.startswith("sk_") and len(key) > 40
    text = path.read_text()
    assert key not in text and sha256(key.encode()).hexdigest() in text
    store = keys_mod.load(path)
    assert store.lookup(key).scopes == {"verify", "conditional"} and store.lookup(key).department == "psb"
    listed = subprocess.run([sys.executable, "-m", "pipelines.api.keys", "--file", str(path), "list"],
                            capture_output=True, text=True, env=env, check=True).stdout
    assert listed.strip() == "psb-household\tpsb\tconditional,verify"
    bad = subprocess.run([sys.executable, "-m", "pipelines.api.keys", "--file", str(path), "add", "--client", "x",
                          "--department", "psb", "--scopes", "everything"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "scopes must be" in bad.stderr


def test_a_keys_file_with_a_typo_fails_with_file_and_line(tmp_path):
    from pipelines.registry import RegistryError

    path = tmp_path / "keys.yaml"
    path.write_text("audit_salt: " + "a" * 64 + "\nclients:\n  - client: c1\n    department: psb\n"
                    "    key_sha256: " + "b" * 64 + "\n    scopes: [verify, condtional]\n")
    with pytest.raises(RegistryError, match=r"keys.yaml:6: clients/0/scopes/1"):
        keys_mod.load(path)


# --- identity verification -------------------------------------------------------------------------------------

LIVING = ric("310101", date(1990, 3, 7), 123)
LIVING_X = ric_ending_in_x("310104", date(1985, 11, 2))
DECEASED = ric("310106", date(1931, 5, 20), 456)
DEATH_REPORTED = ric("310110", date(1940, 2, 1), 31)
LEGACY_15 = "310105" + "720615" + "021"          # 15 digits: born 1972-06-15
LEGACY_18 = ric("310105", date(1972, 6, 15), 21)
NEVER_SEEN = ric("310110", date(2000, 1, 1), 77)


@pytest.fixture()
def residents(clean_warehouse):
    run_id = open_run("population", datetime(2026, 1, 5, tzinfo=timezone.utc), datetime(2026, 1, 6, tzinfo=timezone.utc),
                      url=clean_warehouse)
    people = [
        (LIVING, "王小明", "active", None),
        (LIVING_X, "李娜", "active", None),
        (DECEASED, "赵老先生", "deceased", date(2025, 12, 1)),
        (DEATH_REPORTED, "钱阿婆", "active", date(2026, 1, 2)),
        (LEGACY_18, "孙建国", "moved_out", None),
    ]
    with connect(clean_warehouse) as conn:
        for number, name, status, death in people:
            conn.execute(
                "INSERT INTO population.person (id_type, id_number, name, population_status, death_date, row_hash,"
                " valid_from, created_run_id, updated_run_id)"
                " VALUES ('RIC', %s, %s, %s, %s, md5(%s), now(), %s, %s)",
                (number, name, status, death, number, run_id, run_id),
            )
        conn.execute("INSERT INTO population.person (id_type, id_number, name, row_hash, valid_from, created_run_id,"
                     " updated_run_id) VALUES ('PASSPORT', 'E12345678', 'JOHN SMITH', 'x', now(), %s, %s)",
                     (run_id, run_id))
        conn.execute("TRUNCATE api.verification_log RESTART IDENTITY")
    return clean_warehouse


def _verify(client, key, id_number, name):
    return client.post("/api/v1/verify", json={"id_number": id_number, "name": name},
                       headers={"X-API-Key": key} if key else {})


@pytest.mark.parametrize(
    ("id_number", "name", "match"),
    [
        (LIVING, "王小明", True),
        (LIVING, " 王 小明 ", True),                            # names compared as the warehouse normalises them
        (LIVING, "王晓明", False),                              # wrong name
        (LIVING_X, "李娜", True),
        (LIVING_X.lower(), "李娜", True),                       # lower-case x
        (" ".join([LIVING_X[:6], LIVING_X[6:14], LIVING_X[14:]]), "李娜", True),   # spaces
        (LIVING_X.translate({ord(c): 0xFF10 + int(c) for c in "0123456789"}).replace("X", "Ｘ"), "李娜", True),
        (LEGACY_15, "孙建国", True),                            # 15 digits upgraded to 18; moved out but alive
        (DECEASED, "赵老先生", False),                          # deceased
        (DEATH_REPORTED, "钱阿婆", False),                      # death reported, not yet deregistered
        (NEVER_SEEN, "王小明", False),                          # no such number
    ],
)
def test_verify_answers_only_whether_a_living_resident_matches(client, api_keys, residents, id_number, name, match):
    r = _verify(client, api_keys["verify"], id_number, name)
    assert r.status_code == 200, r.text
    assert r.json() == {"match": match}, "the same shape whatever the reason for no match"
    assert r.headers["cache-control"] == "no-store"


def test_verify_audits_every_call_without_the_number(client, api_keys, residents):
    calls = [(LIVING, "王小明"), (LIVING, "王晓明"), (NEVER_SEEN, "无此人"), (LEGACY_15, "孙建国"),
             ("310101199003071235", "周某")]
    for number, name in calls:
        _verify(client, api_keys["both"], number, name)
    salt = keys_mod.current().audit_salt
    with connect(residents) as conn:
        rows = conn.execute("SELECT client, department, id_hash, outcome, called_at, t::text FROM"
                            " api.verification_log t ORDER BY log_id").fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("api-test-psb", "psb", "match"), ("api-test-psb", "psb", "no_match"), ("api-test-psb", "psb", "no_match"),
        ("api-test-psb", "psb", "match"), ("api-test-psb", "psb", "invalid_id")]
    expect = [LIVING, LIVING, NEVER_SEEN, LEGACY_18, "310101199003071235"]
    assert [r[2] for r in rows] == [hmac.new(salt, n.encode(), sha256).hexdigest() for n in expect]
    dump = " ".join(r[5] for r in rows)
    for number, name in calls:
        assert number not in dump and number[:14] not in dump and name not in dump
    assert all(r[4] is not None for r in rows)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"id_number": "310101199003071235", "name": "王小明"}, "ID_BAD_CHECK_DIGIT"),
        ({"id_number": "31010119900307123", "name": "王小明"}, "ID_BAD_FORMAT"),
        ({"id_number": "310101199013071234", "name": "王小明"}, "ID_BAD_"),
        ({"id_number": "not a number", "name": "王小明"}, "ID_BAD_FORMAT"),
        ({"id_number": LIVING, "name": "   "}, "name: Value error, must not be blank"),
        ({"id_number": LIVING}, "name: Field required"),
        ({"id_number": LIVING, "name": "王小明", "extra": 1}, "extra"),
    ],
)
def test_verify_refuses_invalid_input_with_a_clear_422(client, api_keys, residents, body, says):
    r = client.post("/api/v1/verify", json=body, headers={"X-API-Key": api_keys["verify"]})
    assert r.status_code == 422, r.text
    assert says in r.json()["detail"]
    assert r.json()["error"] in ("invalid_id_number", "invalid_parameter")
    assert body["id_number"] not in r.text, "the input is never echoed"


def test_verify_needs_a_key_with_the_verify_scope(client, api_keys, residents):
    r = _verify(client, None, LIVING, "王小明")
    assert r.status_code == 401 and r.json()["error"] == "api_key_required"
    r = _verify(client, "sk_wrong", LIVING, "王小明")
    assert r.status_code == 401 and r.json()["error"] == "invalid_api_key"
    r = _verify(client, api_keys["conditional"], LIVING, "王小明")
    assert r.status_code == 403 and r.json()["error"] == "scope_required"
    r = client.post("/api/v1/verify", json={"id_number": "bad"})
    assert r.status_code == 401, "the key is checked before the body"
    with connect(residents) as conn:
        assert conn.execute("SELECT count(*) FROM api.verification_log").fetchone()[0] == 0


def test_no_such_number_and_wrong_name_run_the_same_statements(client, api_keys, residents, monkeypatch):
    """Both 'no' answers must be indistinguishable: the same statements with the same shape of parameters run for
    a number nobody holds and for a right number with a wrong name (checked structurally — timings belong to the
    benchmark, not to tests)."""
    import psycopg

    seen: list[tuple] = []
    real_execute = psycopg.Connection.execute

    def spy(self, query, params=None, *args, **kwargs):
        seen.append((str(query), tuple(sorted(params)) if isinstance(params, dict) else None))
        return real_execute(self, query, params, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    traces = {}
    for kind, (number, name) in (("absent", (NEVER_SEEN, "王小明")), ("wrong_name", (LIVING, "王晓明"))):
        seen.clear()
        assert _verify(client, api_keys["verify"], number, name).json() == {"match": False}
        traces[kind] = list(seen)
    assert traces["absent"] == traces["wrong_name"] and traces["absent"]


# --- the PII guard ---------------------------------------------------------------------------------------------

def test_pii_guard_blocks_a_planted_id_number_and_phone(client, published, caplog):
    url = f"/api/v1/datasets/{LEAKY}/rows"
    assert client.get(url).status_code == 200
    planted = ric("310101", date(1988, 8, 8), 88)
    with connect(published) as conn:
        conn.execute(f"INSERT INTO publish.{LEAKY} VALUES ('310115', %s)", (f"联系人身份证 {planted}",))
    try:
        with caplog.at_level("ERROR", logger="pipelines.api.pii"):
            r = client.get(url)
        assert r.status_code == 500
        assert r.json()["error"] == "pii_blocked" and "id_number" in r.json()["detail"]
        assert planted not in r.text
        assert any("blocked" in m and "id_number" in m and planted not in m for m in caplog.messages)
        # the filter on another field does not select the planted row: the page is clean and goes out
        assert client.get(url, params={"district_code": "310101"}).status_code == 200
        for leak, kind in ((planted.lower()[:17] + "x", "id_number"), ("138 0013 8000".replace(" ", ""), "mobile"),
                           ("021-63211234", "landline"), ("３１０１０１" + planted[6:], "id_number"),
                           (planted[:6] + planted[8:17], "id_number_15")):
            with connect(published) as conn:
                conn.execute(f"UPDATE publish.{LEAKY} SET note = %s WHERE district_code = '310115'", (leak,))
            r = client.get(url)
            assert r.status_code == 500 and kind in r.json()["detail"], (leak, r.text)
    finally:
        with connect(published) as conn:
            conn.execute(f"DELETE FROM publish.{LEAKY} WHERE district_code = '310115'")
    assert client.get(url).status_code == 200


def test_pii_guard_lets_checksums_dates_and_counts_through():
    from pipelines.api.pii import find

    assert find(json.dumps({"sha256": "1234567890" * 6 + "abcd", "published_at": "2026-01-02T03:04:05+08:00",
                            "total": 1234567, "release_id": "api_test-v2", "district_code": "310101"})) is None
    assert find('{"n": "3101011988080808X8"}') is None  # an X inside: not a number's shape
    assert find('{"id": "31010119880808088X"}') == ("id_number_18", 8)


# --- the real server -------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uvicorn_serves_the_docs_and_the_catalog(warehouse_db):
    """The module-level app, as `make api` starts it (the project's own dataset definitions): OpenAPI docs and the
    catalog over real HTTP."""
    from pipelines.api.datasets import load_datasets

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "pipelines.api.app:app", "--host", "127.0.0.1",
                             "--port", str(port)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                docs = httpx.get(base + "/docs", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.1)
        else:
            pytest.fail("uvicorn did not start")
        assert docs.status_code == 200 and "swagger-ui" in docs.text
        spec = httpx.get(base + "/openapi.json").json()
        assert {"/api/v1/catalog", "/api/v1/datasets/{code}/rows", "/api/v1/verify"} <= set(spec["paths"])
        cat = httpx.get(base + "/api/v1/catalog")
        assert cat.status_code == 200, cat.text
        open_codes = sorted(d.code for d in load_datasets() if d.open_attribute != "closed")
        assert sorted(d["code"] for d in cat.json()["datasets"]) == open_codes
        assert httpx.get(base + "/api/v1/health").json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- a real release, end to end --------------------------------------------------------------------------------

def test_a_release_made_by_the_publication_core_is_served(clean_warehouse, frontdb, api_keys):
    """Simulated departments -> one population run -> the core prepares and publishes an unconditional and a
    conditional dataset -> the module app serves exactly publish.<code>, its catalog and DCAT file, and verifies a
    real golden person."""
    from pipelines import simulate
    from pipelines.api.app import app
    from pipelines.cli import run_interval
    from pipelines.publish import flow
    from pipelines.publish.datasets import get_dataset
    from pipelines.settings import settings
    from pipelines.simulate.api import start_in_thread

    stop = start_in_thread(settings.sim_api_url, settings.sim_api_dir)
    try:
        simulate.generate(persons=400, days=0, seed=11, start=settings.sim_start, landing_dir=settings.landing_dir,
                          api_dir=settings.sim_api_dir, frontdb_url=frontdb)
        summary = run_interval(settings.sim_start)
    finally:
        stop()
    with connect(clean_warehouse) as conn:
        status = conn.execute("SELECT status FROM audit.run WHERE run_id = %s", (summary["run_id"],)).fetchone()[0]
    assert status == "success", summary
    open_code, cond_code = "population_by_district_sex_age", "foreign_residents_by_district_nationality"
    opened = flow.prepare_release(open_code, [summary["run_id"]])
    assert opened["status"] in ("approved", "awaiting_approval"), opened  # a review warning waits for a person
    if opened["status"] == "awaiting_approval":
        flow.approve_release(opened["release_id"], "api-test")
    flow.publish_release(opened["release_id"])
    cond = flow.prepare_release(cond_code, [summary["run_id"]])
    assert cond["status"] == "awaiting_approval", cond
    flow.approve_release(cond["release_id"], "api-test")
    flow.publish_release(cond["release_id"])

    with TestClient(app) as c:
        catalog = {d["code"]: d for d in c.get("/api/v1/catalog").json()["datasets"]}
        assert catalog[open_code]["current_release"]["release_id"] == opened["release_id"]
        assert catalog[cond_code]["current_release"]["release_id"] == cond["release_id"]
        dcat = c.get("/api/v1/catalog.jsonld")
        assert dcat.status_code == 200
        assert dcat.json() == json.loads((settings.publish_dir / "catalog.jsonld").read_text(encoding="utf-8"))

        fields = get_dataset(open_code).field_names
        rows, bodies = all_rows(c, f"/api/v1/datasets/{open_code}/rows", page_size=50)
        expected = _expected(clean_warehouse, open_code, ", ".join(fields))
        assert [list(r.values()) for r in rows] == [
            [v.isoformat() if hasattr(v, "isoformat") else v for v in e.values()] for e in expected]
        assert bodies[0]["total"] == len(expected) == opened["row_count"] and len(bodies) > 1
        suppressed = [r for r in rows if r["suppressed"]]
        assert all(r["population"] is None for r in suppressed), "suppressed cells are served empty"
        one = rows[0]
        r = c.get(f"/api/v1/datasets/{open_code}/rows", params={"district_code": one["district_code"],
                                                                "sex_code": one["sex_code"]})
        want = [e for e in expected if e["district_code"] == one["district_code"] and e["sex_code"] == one["sex_code"]]
        assert r.json()["total"] == len(want) > 0

        assert c.get(f"/api/v1/datasets/{cond_code}/rows").status_code == 401
        r = c.get(f"/api/v1/datasets/{cond_code}/rows", headers={"X-API-Key": api_keys["conditional"]})
        assert r.status_code == 200 and r.json()["release_id"] == cond["release_id"]
        history = c.get(f"/api/v1/datasets/{cond_code}/releases").json()
        assert [e["event"] for e in history["changelog"]] == ["prepared", "approved", "published"]

        with connect(clean_warehouse) as conn:
            number, name = conn.execute(
                "SELECT id_number, name FROM population.person WHERE id_type = 'RIC' AND name IS NOT NULL"
                " AND population_status = 'active' AND death_date IS NULL ORDER BY person_id LIMIT 1").fetchone()
        key = {"X-API-Key": api_keys["verify"]}
        assert c.post("/api/v1/verify", json={"id_number": number, "name": name}, headers=key).json() == {"match": True}
        assert c.post("/api/v1/verify", json={"id_number": number, "name": name + "某"},
                      headers=key).json() == {"match": False}


def test_verify_is_rate_limited_per_client(client, api_keys, residents, monkeypatch):
    from pipelines.api import app as app_module

    limiter = app_module.RateLimiter(3)
    monkeypatch.setattr(app_module, "verify_limiter", limiter)
    answers = [_verify(client, api_keys["verify"], NEVER_SEEN, "王小明").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    r = _verify(client, api_keys["verify"], NEVER_SEEN, "王小明")
    assert r.status_code == 429 and r.json()["error"] == "rate_limited" and "a minute" in r.json()["detail"]
    # the window slides: a minute later the client may ask again
    client_name = next(iter(limiter._calls))
    limiter._calls[client_name] = type(limiter._calls[client_name])(t - 61 for t in limiter._calls[client_name])
    assert _verify(client, api_keys["verify"], NEVER_SEEN, "王小明").status_code == 200
