"""The catalog files a portal harvests and the changelog, written from the warehouse (the single source of truth).

- ``catalog.json``   every published dataset's catalog entry (core metadata of a government data catalog) with
                     its current release and files;
- ``catalog.jsonld`` the same as DCAT in JSON-LD (dcat:Catalog → dcat:Dataset → dcat:Distribution, dct: terms,
                     access rights and frequencies from the EU vocabularies, spdx checksums), which CKAN's
                     ckanext-dcat harvests. IRIs of datasets and files are relative to the catalog's own URL,
                     so the directory can be served from anywhere;
- ``CHANGELOG.md`` and ``changelog.jsonl``: one line per release event (publish.release_event), oldest first.

Every file is written to a temporary name and moved over the old one with os.replace (a reader never sees half a
file). The content depends only on the warehouse (its "generated" time is that of the newest change), so
rewriting is idempotent and repairs a crash.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Connection
from psycopg.rows import dict_row

from pipelines.publish.datasets import OPEN_ATTRIBUTES, UPDATE_FREQUENCIES
from pipelines.publish.exports import MEDIA_TYPES

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATALOG_TITLE = ("上海市公共数据开放目录 · 基础数据库", "Shanghai public data catalog · foundational databases")
CATALOG_PUBLISHER = ("上海市大数据中心", "Shanghai Big Data Center")
ACCESS_RIGHTS = {  # EU access-right authority table
    "unconditional": "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
    "conditional": "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
    "closed": "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC",
}
EVENT_LABELS = {
    "prepared": "生成", "approved": "批准", "rejected": "驳回", "published": "发布", "superseded": "被替代",
    "rolled_back": "回滚撤下", "restored": "回滚恢复", "blocked": "阻断",
}
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)


def catalog_entries(conn: Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM publish.catalog_entry WHERE current_release_id IS NOT NULL ORDER BY dataset_code")
        return cur.fetchall()


def catalog_json(entries: list[dict[str, Any]], generated: datetime) -> dict[str, Any]:
    return {
        "title": CATALOG_TITLE[0], "title_en": CATALOG_TITLE[1],
        "publisher": CATALOG_PUBLISHER[0], "publisher_en": CATALOG_PUBLISHER[1],
        "generated_at": _iso(generated),
        "datasets": entries,
    }


def _lang(zh: str, en: str | None) -> list[dict[str, str]]:
    out = [{"@value": zh, "@language": "zh"}]
    if en:
        out.append({"@value": en, "@language": "en"})
    return out


def dcat_dataset(e: dict[str, Any]) -> dict[str, Any]:
    code = e["dataset_code"]
    public = e["open_attribute"] == "unconditional"
    distributions = []
    for fmt, d in sorted(e["distributions"].items()):
        dist: dict[str, Any] = {
            "@id": f"{code}/current/{Path(d['path']).name}#distribution",
            "@type": "dcat:Distribution",
            "dct:title": f"{e['title']} ({fmt.upper()})",
            "dct:format": fmt.upper(),
            "dcat:mediaType": {"@id": f"https://www.iana.org/assignments/media-types/{MEDIA_TYPES[fmt]}"},
            "dcat:accessURL": {"@id": f"{code}/"},
            "dct:license": {"@id": e["license"]["url"]},
            "dct:rights": e["open_attribute_label"],
            "dct:modified": {"@value": _iso_str(e["updated"]), "@type": "xsd:dateTime"},
        }
        if public:  # files of a conditional or closed dataset are not linked from the public catalog
            dist["dcat:downloadURL"] = {"@id": f"{code}/current/{Path(d['path']).name}"}
            dist["dcat:byteSize"] = {"@value": str(d["bytes"]), "@type": "xsd:nonNegativeInteger"}
            dist["spdx:checksum"] = {
                "@type": "spdx:Checksum",
                "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                "spdx:checksumValue": d["sha256"],
            }
        distributions.append(dist)
    related = []
    for r in e["related"]:
        if "dataset" in r:
            related.append({"@id": f"#{r['dataset']}"})
        elif "url" in r:
            related.append({"@id": r["url"]})
    ds: dict[str, Any] = {
        "@id": f"#{code}",
        "@type": "dcat:Dataset",
        "dct:identifier": code,
        "dct:title": _lang(e["title"], e["title_en"]),
        "dct:description": _lang(e["abstract"], e.get("abstract_en")),
        "dcat:keyword": [{"@value": k, "@language": "zh"} for k in e["keywords"]],
        "dcat:theme": {"@value": e["classification"], "@language": "zh"},
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": _lang(e["provider_department_name"], None),
                          "dct:identifier": e["provider_department"]},
        "dct:issued": {"@value": _iso_str(e["first_published"]), "@type": "xsd:dateTime"},
        "dct:modified": {"@value": _iso_str(e["updated"]), "@type": "xsd:dateTime"},
        "dct:accrualPeriodicity": {"@id": UPDATE_FREQUENCIES[e["update_frequency"]][1]},
        "dct:accessRights": {"@id": ACCESS_RIGHTS[e["open_attribute"]],
                             "rdfs:label": OPEN_ATTRIBUTES[e["open_attribute"]]},
        "dct:license": {"@id": e["license"]["url"], "rdfs:label": e["license"]["name"]},
        "dcat:version": str(e["current_version"]),
        "dct:hasVersion": e["current_release_id"],
        "dct:conformsTo": {"@id": f"{code}/current/manifest.json"},
        "dcat:distribution": distributions,
    }
    if related:
        ds["dct:relation"] = related
    return ds


def _iso_str(value: Any) -> str:
    return _iso(datetime.fromisoformat(value)) if isinstance(value, str) else _iso(value)


def catalog_jsonld(entries: list[dict[str, Any]], generated: datetime) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "@id": "",
        "@type": "dcat:Catalog",
        "dct:title": _lang(*CATALOG_TITLE),
        "dct:description": _lang("上海市三大基础数据库（实有人口、法人、空间地理）经保密审查后开放的数据集。",
                                 "Open datasets of Shanghai's three foundational databases, after privacy review."),
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": _lang(*CATALOG_PUBLISHER)},
        "dct:language": {"@id": "http://id.loc.gov/vocabulary/iso639-1/zh"},
        "dct:modified": {"@value": _iso(generated), "@type": "xsd:dateTime"},
        "dcat:dataset": [dcat_dataset(e) for e in entries],
    }


def changelog_events(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        """
        SELECT e.event_id, e.at, e.dataset_code, e.release_id, r.version, e.event, e.actor, e.note, e.row_count
        FROM publish.release_event e JOIN publish.release r USING (release_id)
        ORDER BY e.event_id
        """
    ).fetchall()
    keys = ("event_id", "at", "dataset_code", "release_id", "version", "event", "actor", "note", "row_count")
    return [dict(zip(keys, r)) for r in rows]


def changelog_line(ev: dict[str, Any]) -> str:
    parts = [
        _iso(ev["at"]), ev["dataset_code"], f"{ev['release_id']} (v{ev['version']})",
        f"{EVENT_LABELS[ev['event']]} {ev['event']}",
    ]
    if ev["row_count"] is not None:
        parts.append(f"{ev['row_count']} 行 rows")
    if ev["actor"]:
        parts.append(f"by {ev['actor']}")
    if ev["note"]:
        parts.append(" ".join(str(ev["note"]).split()))
    return "- " + " · ".join(parts)


def write_all(conn: Connection, publish_dir: Path, now: datetime | None = None) -> None:
    """Rewrite catalog.json, catalog.jsonld, changelog.jsonl and CHANGELOG.md from the warehouse (the view of
    ``conn``'s transaction, so a caller can write them before committing)."""
    # the time of the newest change, not the clock: rewriting an unchanged catalog gives the same bytes
    now = now or conn.execute(
        "SELECT greatest((SELECT max(updated) FROM publish.catalog_entry), (SELECT max(at) FROM publish.release_event))"
    ).fetchone()[0] or datetime(1970, 1, 1, tzinfo=SHANGHAI)
    entries = [{k: _iso(v) for k, v in e.items()} for e in catalog_entries(conn)]
    write_atomic(publish_dir / "catalog.json",
                 json.dumps(catalog_json(entries, now), ensure_ascii=False, indent=2) + "\n")
    write_atomic(publish_dir / "catalog.jsonld",
                 json.dumps(catalog_jsonld(entries, now), ensure_ascii=False, indent=2) + "\n")
    events = changelog_events(conn)
    write_atomic(publish_dir / "changelog.jsonl", "".join(
        json.dumps({k: _iso(v) for k, v in ev.items()}, ensure_ascii=False) + "\n" for ev in events))
    md = ["# 开放数据发布日志 · Release changelog", "",
          "One line per release event, oldest first (written from `publish.release_event`).", ""]
    md.extend(changelog_line(ev) for ev in events)
    write_atomic(publish_dir / "CHANGELOG.md", "\n".join(md) + "\n")


CATALOG_FILES = ("catalog.json", "catalog.jsonld", "changelog.jsonl", "CHANGELOG.md")
