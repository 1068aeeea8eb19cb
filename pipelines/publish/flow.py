"""Releases of open datasets: prepare (build + review + files), approve or reject, publish, roll back.

Life cycle of a release (``publish.release.status``)::

    prepare_release ─┬─► approved ───────────┐      (gate passed, review clean, 无条件开放: approved by "auto")
                     ├─► awaiting_approval ──┼─► approve_release ─► approved ─► publish_release ─► published
                     │        └─► reject_release ─► rejected                                        │
                     └─► blocked (never published)                    a newer release published ─► superseded
                                                                      rollback ─► rolled_back / the previous one
                                                                      published again (event "restored")

Where things live: the rows as reviewed in ``publish_work."<release_id>"`` (the build table, kept while the
release may be served); the files in ``<publish_dir>/<code>/<release_id>/`` (data.csv|xlsx|xml|json,
manifest.json, review.json), written under a temporary name and renamed when complete; the served state in
``publish.<code>`` + ``publish.catalog_entry`` (one transaction) and ``<publish_dir>/<code>/current`` (a symlink
switched with os.replace) + the catalog files.

Atomic publication. ``publish_release`` and ``rollback`` change the served state in this order: (1) open a
transaction: replace the rows of publish.<code>, update the catalog entry, the statuses and the event log;
(2) switch the ``current`` symlink; (3) rewrite catalog.json / catalog.jsonld / the changelog from the open
transaction; (4) commit. An error in (1)-(4) rolls the transaction back and puts the previous symlink and catalog
files back, so the previous release stays served everywhere. If the process dies between (2) and (4), the next
publish or rollback (or ``repair()``) first makes the files agree with the warehouse again (the warehouse is the
source of truth). Readers of the table see the old rows until the commit (MVCC); readers of the files follow one
symlink that always points at a complete release directory.

Concurrency: one advisory lock per dataset while a release is prepared, one for serving (publish, rollback,
repair); approval and rejection are single conditional UPDATEs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Connection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from sqlalchemy import URL

from pipelines.identity.divisions import SHANGHAI_DISTRICTS, SHANGHAI_RETIRED, current_successor
from pipelines.publish import catalog, exports, pii
from pipelines.publish.datasets import Dataset, DatasetError, get_dataset, load_datasets
from pipelines.publish.suppression import plan_suppression
from pipelines.settings import settings
from pipelines.warehouse import connect

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
AUTO_APPROVER = "auto"
WORK_SCHEMA = "publish_work"
ROW_COLUMN = "_row"                   # order of the rows in a build table (not published)
WARN_SUPPRESSED_SHARE = 0.5           # more of the table withheld than this: a person should look
WARN_LOCAL_SUPPRESSION_SHARE = 0.05   # more records removed for k-anonymity than this: a person should look
EXPORT_CHUNK = 5000
DISTRICT_NAMES_EN = {
    "310101": "Huangpu", "310104": "Xuhui", "310105": "Changning", "310106": "Jing'an", "310107": "Putuo",
    "310109": "Hongkou", "310110": "Yangpu", "310112": "Minhang", "310113": "Baoshan", "310114": "Jiading",
    "310115": "Pudong New Area", "310116": "Jinshan", "310117": "Songjiang", "310118": "Qingpu",
    "310120": "Fengxian", "310151": "Chongming",
}


class PublishError(RuntimeError):
    """A release operation that is not allowed in the release's state (the message says why)."""


# ---------------------------------------------------------------------------------------------------------------
# the review report

@dataclass
class Review:
    release_id: str
    dataset: Dataset
    checks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    blocked_by: list[dict[str, str]] = field(default_factory=list)

    def check(self, key: str, zh: str, en: str, passed: bool, **detail: Any) -> None:
        self.checks.append({"check": key, "label_zh": zh, "label_en": en, "passed": passed, **detail})

    def warn(self, key: str, zh: str, en: str) -> None:
        self.warnings.append({"code": key, "message_zh": zh, "message_en": en})

    def block(self, key: str, zh: str, en: str) -> None:
        self.blocked_by.append({"code": key, "message_zh": zh, "message_en": en})

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_by)

    def outcome(self, quality_passed: bool) -> str:
        if self.blocked or not quality_passed:
            return "blocked"
        if self.warnings or self.dataset.open_attribute != "unconditional":
            return "awaiting_approval"
        return "approved"

    def as_dict(self, outcome: str) -> dict[str, Any]:
        ds = self.dataset
        return {
            "release_id": self.release_id,
            "dataset_code": ds.code,
            "title": ds.title,
            "title_en": ds.title_en,
            "open_attribute": ds.open_attribute,
            "open_attribute_label": ds.open_attribute_label,
            "reviewed_at": datetime.now(SHANGHAI).isoformat(timespec="seconds"),
            "outcome": outcome,
            "outcome_label": {"approved": "自动批准 approved automatically",
                              "awaiting_approval": "待人工审批 awaiting approval",
                              "blocked": "已阻断 blocked"}[outcome],
            "checks": self.checks,
            "warnings": self.warnings,
            "blocked_by": self.blocked_by,
        }


# ---------------------------------------------------------------------------------------------------------------
# helpers

@contextmanager
def _advisory_lock(conn: Connection, key: str):
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_entry(path: Path, publish_dir: Path) -> dict[str, Any]:
    return {"path": str(path.relative_to(publish_dir)), "sha256": _sha256(path), "bytes": path.stat().st_size}


def _build_table(release_id: str) -> sql.Identifier:
    return sql.Identifier(WORK_SCHEMA, release_id)


def _table_exists(conn: Connection, schema: str, name: str) -> bool:
    return conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
                        (schema, name)).fetchone()[0]


def refresh_district_map(conn: Connection) -> None:
    """publish_work.district_map from the identifier rules: today's districts and every retired code that has a
    current successor (e.g. 310108 闸北 -> 310106 静安)."""
    rows = []
    order = {code: i for i, code in enumerate(SHANGHAI_DISTRICTS)}
    for code, name in SHANGHAI_DISTRICTS.items():
        rows.append((code, code, name, DISTRICT_NAMES_EN[code], order[code]))
    retired = list(SHANGHAI_RETIRED)
    for code, successor in zip(retired, current_successor(retired)):
        if successor is not None and str(successor) in SHANGHAI_DISTRICTS:
            s = str(successor)
            rows.append((code, s, SHANGHAI_DISTRICTS[s], DISTRICT_NAMES_EN[s], order[s]))
    with conn.transaction():
        # the mapped prepare tasks of the publish DAG run in parallel: one rewrite at a time (a reader sees the old
        # rows or the new ones, never none)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('publish:district_map'))")
        conn.execute("DELETE FROM publish_work.district_map")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO publish_work.district_map VALUES (%s, %s, %s, %s, %s)", rows)


def quality_gate(conn: Connection, run_ids: list[int], pipeline: str) -> dict[str, Any]:
    """Did the source runs pass their quality gate? Every run must exist, have validation results that all
    succeeded, and not be blocked or failed; and no later run of the pipeline may have been blocked by its gate
    (its data would already be in the golden tables). Also the as-of date: the last day of the newest run."""
    detail: dict[str, Any] = {"run_ids": run_ids, "problems": []}
    if not run_ids:
        detail["problems"].append("no source run given")
        return {"passed": False, "as_of": None, **detail}
    rows = conn.execute(
        """
        SELECT r.run_id, r.status, r.interval_end, count(v.validation_id), coalesce(bool_and(v.success), false),
               coalesce(sum(v.warning_failed), 0)
        FROM audit.run r LEFT JOIN quality.validation_run v ON v.run_id = r.run_id
        WHERE r.run_id = ANY(%s) GROUP BY r.run_id ORDER BY r.run_id
        """,
        (run_ids,),
    ).fetchall()
    found = {r[0] for r in rows}
    for missing in sorted(set(run_ids) - found):
        detail["problems"].append(f"run {missing} does not exist")
    warnings = 0
    for run_id, status, _end, suites, success, warning_failed in rows:
        warnings += int(warning_failed)
        if status in ("blocked", "failed"):
            detail["problems"].append(f"run {run_id} is {status}")
        if suites == 0:
            detail["problems"].append(f"run {run_id} has no quality validation")
        elif not success:
            detail["problems"].append(f"run {run_id} failed a blocking expectation")
    ends = [r[2] for r in rows]
    as_of = ((max(ends) - timedelta(microseconds=1)).astimezone(SHANGHAI).date()) if ends else None
    if ends:
        later = conn.execute(
            "SELECT run_id FROM audit.run WHERE pipeline = %s AND interval_end > %s AND status = 'blocked'"
            " ORDER BY run_id", (pipeline, max(ends)),
        ).fetchall()
        for (run_id,) in later:
            detail["problems"].append(f"a later run {run_id} was blocked by its quality gate")
    detail["warning_expectations_failed"] = warnings
    return {"passed": not detail["problems"], "as_of": as_of, **detail}


def period(frequency: str, day: date) -> tuple[int, ...]:
    """The calendar period of ``day`` for a dataset's update_frequency: one release per period is due."""
    if frequency == "daily":
        return (day.toordinal(),)
    if frequency == "weekly":
        return tuple(day.isocalendar()[:2])
    if frequency == "monthly":
        return (day.year, day.month)
    if frequency == "quarterly":
        return (day.year, (day.month - 1) // 3)
    if frequency == "annual":
        return (day.year,)
    raise ValueError(f"unknown update frequency {frequency!r}")


def due_datasets(run_ids: list[int], *, datasets_dir: Path | None = None, url: URL | None = None) -> list[str]:
    """The datasets a publication of these runs prepares: every daily one, and every other one whose declared
    update_frequency (its catalog's 更新频率 / dct:accrualPeriodicity) has no release yet for the period of the
    runs' as-of date — a release prepared and not blocked or rejected (awaiting approval, approved, published,
    superseded or rolled back all count: the period has its release, or a person is deciding on it).

    So a weekly or monthly dataset (the record-level sample, reviewed by a person) is rebuilt once per period,
    not after every daily run; ``python -m pipelines publish prepare --dataset CODE`` prepares one at any time.

    Record-level datasets come first: the mapped prepare tasks start in this order, as many at a time as the
    executor runs, and a record-level build reads every person — the longest task by far (the 1M microdata
    sample about 4.7 s, the four tables 0.3–0.9 s each). Started last, it ran alone after the others had finished;
    started first, the others finish beside it."""
    datasets = load_datasets(datasets_dir)
    with connect(url) as conn:
        (end,) = conn.execute("SELECT max(interval_end) FROM audit.run WHERE run_id = ANY(%s)",
                              (sorted(run_ids),)).fetchone()
        as_of = (end - timedelta(microseconds=1)).astimezone(SHANGHAI).date() if end else None
        released: dict[str, list[date]] = {}
        for code, day in conn.execute(
            "SELECT dataset_code, as_of FROM publish.release WHERE status NOT IN ('blocked', 'rejected')"
        ):
            released.setdefault(code, []).append(day)
    due = []
    for ds in datasets:
        if as_of is None or ds.update_frequency == "daily":
            due.append(ds.code)
            continue
        now = period(ds.update_frequency, as_of)
        if all(period(ds.update_frequency, day) != now for day in released.get(ds.code, [])):
            due.append(ds.code)
        else:
            log.info("%s: not due (%s; a release for the period of %s exists)", ds.code, ds.update_frequency, as_of)
    record_level = {ds.code for ds in datasets if ds.record_level}
    return sorted(due, key=lambda code: code not in record_level)  # (stable: otherwise in the registry's order)


def latest_run_ids(pipeline: str = "population", url: URL | None = None) -> list[int]:
    """The newest successful run of the pipeline (what the CLI releases when no run is named)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT run_id FROM audit.run WHERE pipeline = %s AND status = 'success'"
            " ORDER BY interval_end DESC, run_id DESC LIMIT 1", (pipeline,),
        ).fetchone()
    return [int(row[0])] if row else []


def _allocate(conn: Connection, ds: Dataset, publish_dir: Path) -> tuple[str, int]:
    today = datetime.now(SHANGHAI).strftime("%Y%m%d")
    version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM publish.release WHERE dataset_code = %s",
                           (ds.code,)).fetchone()[0]
    prefix = f"{ds.code}-{today}-"
    taken = {r[0] for r in conn.execute("SELECT release_id FROM publish.release WHERE release_id LIKE %s",
                                        (prefix.replace("_", r"\_") + "%",)).fetchall()}
    seq = 1
    while f"{prefix}{seq:03d}" in taken or (publish_dir / ds.code / f"{prefix}{seq:03d}").exists():
        seq += 1
    if seq > 999:
        raise PublishError(f"more than 999 releases of {ds.code} today")
    return f"{prefix}{seq:03d}", int(version)


def _cleanup_orphans(conn: Connection, ds: Dataset, publish_dir: Path) -> None:
    """What a prepare that died left behind: temporary directories, and release directories and build tables
    with no release row (called under the dataset's lock, so no other prepare is writing them)."""
    known = {r[0] for r in conn.execute("SELECT release_id FROM publish.release WHERE dataset_code = %s",
                                        (ds.code,)).fetchall()}
    base = publish_dir / ds.code
    if base.is_dir():
        for p in base.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_dir() and not p.is_symlink() and p.name.startswith(f"{ds.code}-") and p.name not in known:
                shutil.rmtree(p, ignore_errors=True)
    for (name,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE %s",
        (WORK_SCHEMA, ds.code.replace("_", r"\_") + "-%"),
    ).fetchall():
        if name not in known:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_build_table(name)))


def _definition_snapshot(ds: Dataset) -> dict[str, Any]:
    """The catalog metadata of the definition as it was when the release was prepared (kept in the manifest:
    publishing later uses it even if the YAML changed since)."""
    return {
        "code": ds.code, "title": ds.title, "title_en": ds.title_en, "database": ds.database,
        "provider_department": ds.provider_department, "provider_department_name": ds.provider_department_name,
        "abstract": ds.abstract, "abstract_en": ds.abstract_en, "classification": ds.classification,
        "keywords": list(ds.keywords), "open_attribute": ds.open_attribute,
        "open_attribute_label": ds.open_attribute_label, "share_type": ds.share_type,
        "share_type_label": ds.share_type_label, "update_frequency": ds.update_frequency,
        "update_frequency_label": ds.update_frequency_label, "record_level": ds.record_level,
        "universe": ds.universe, "quasi_identifiers": list(ds.quasi_identifiers),
        "suppression": ({"count": ds.suppression.count, "dimensions": list(ds.suppression.dimensions),
                         "flag": ds.suppression.flag, "independent": list(ds.suppression.independent)}
                        if ds.suppression else None),
        "fields": [f.as_dict() for f in ds.fields], "related": list(ds.related), "license": dict(ds.license),
        "asset_uri": ds.asset_uri, "table": ds.table, "definition_sha256": ds.definition_sha256,
    }


# ---------------------------------------------------------------------------------------------------------------
# prepare

def _build(conn: Connection, ds: Dataset, build: sql.Identifier, as_of: date) -> int:
    """Run the dataset's SQL into its build table (typed columns = the fields, plus the row order)."""
    query = sql.SQL(ds.sql)
    params = {"as_of": as_of}
    cur = conn.execute(sql.SQL("SELECT * FROM (") + query + sql.SQL(") q LIMIT 0"), params)
    names = [d.name for d in cur.description]
    if names != ds.sql_columns:
        raise DatasetError(f"{ds.sql_path}:1: the query returns columns {names}; the definition's fields "
                           f"(without the suppression flag) are {ds.sql_columns}")
    # CREATE TABLE … AS rather than INSERT … SELECT: its query may run in parallel workers (an INSERT's never
    # does), which the record-level datasets' scans of every person need (the microdata sample's salted hash per
    # person); each column cast to its field's type, a field the query does not return (a suppression flag) NULL
    returned = set(ds.sql_columns)
    cols = [sql.SQL("{}::{} AS {}").format(sql.Identifier("q", f.name) if f.name in returned else sql.NULL,
                                           sql.SQL(f.pg_type), sql.Identifier(f.name)) for f in ds.fields]
    rows = conn.execute(
        sql.SQL("CREATE TABLE {} AS SELECT row_number() OVER () AS {}, {} FROM (").format(
            build, sql.Identifier(ROW_COLUMN), sql.SQL(", ").join(cols)) + query + sql.SQL(") q"), params,
    ).rowcount
    conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(build, sql.Identifier(ROW_COLUMN)))
    return rows


def _linked_margins(ds: Dataset, others: list[Dataset]) -> list[list[str]]:
    """Margins of this aggregate known from other published aggregates of the same universe: over the
    dimensions the two share (module pipelines.publish.suppression explains why they matter)."""
    out = []
    for other in others:
        if other.code == ds.code or other.suppression is None or not ds.universe or other.universe != ds.universe:
            continue
        shared = [d for d in ds.suppression.dimensions if d in other.suppression.dimensions]
        out.append(shared)
    return out


def _suppress(conn: Connection, ds: Dataset, build: sql.Identifier, others: list[Dataset], review: Review) -> None:
    s = ds.suppression
    threshold = settings.suppression_threshold
    dims = list(s.dimensions)
    rows = conn.execute(sql.SQL("SELECT {}, {}, {} FROM {} ORDER BY {}").format(
        sql.Identifier(ROW_COLUMN), sql.SQL(", ").join(sql.Identifier(d) for d in dims), sql.Identifier(s.count),
        build, sql.Identifier(ROW_COLUMN))).fetchall()
    names = [ROW_COLUMN, *dims, s.count]
    cells = dict(zip(names, map(list, zip(*rows)))) if rows else {name: [] for name in names}
    if any(v is None for d in dims for v in cells[d]):
        raise DatasetError(f"{ds.sql_path}:1: a dimension column ({', '.join(dims)}) is NULL in some row")
    try:
        plan = plan_suppression(cells, dims, s.count, threshold, _linked_margins(ds, others), list(s.independent))
    except ValueError as exc:
        raise DatasetError(f"{ds.sql_path}:1: {exc}") from exc
    withheld = [int(r) for r, withhold in zip(cells[ROW_COLUMN], plan.suppressed) if withhold]
    conn.execute(sql.SQL("UPDATE {} SET {} = ({} = ANY(%s))").format(
        build, sql.Identifier(s.flag), sql.Identifier(ROW_COLUMN)), (withheld,))
    conn.execute(sql.SQL("UPDATE {} SET {} = NULL WHERE {}").format(
        build, sql.Identifier(s.count), sql.Identifier(s.flag)))
    summary = plan.summary()
    review.check(
        "small_cell_suppression", "小单元格抑制与补充抑制", "small-cell and complementary suppression",
        passed=not plan.infeasible, count_column=s.count, dimensions=dims, independent=list(s.independent),
        linked_margins=_linked_margins(ds, others),
        method_zh=f"人数 1-{threshold - 1} 的单元格一次抑制；每条一维行/列及关联数据集的合计视为已知，补充抑制使含抑制单元格的"
                  "每条合计至少含两个未知单元格，并以线性方程组审计：无可被精确反推的单元格",
        method_en=f"cells of 1-{threshold - 1} suppressed; every 1-D line and the totals of linked datasets treated "
                  "as known; complementary cells until every known total with a suppressed cell has two unknowns; "
                  "audited as a linear system: no suppressed cell can be recovered exactly",
        **summary,
    )
    if plan.infeasible:
        review.block("suppression_infeasible", "无法通过补充抑制保护所有小单元格: " + "; ".join(plan.notes),
                     "small cells cannot all be protected by complementary suppression: " + "; ".join(plan.notes))
    elif summary["suppressed_share"] > WARN_SUPPRESSED_SHARE:
        pct = round(100 * summary["suppressed_share"])
        review.warn("mostly_suppressed", f"{pct}% 的单元格被抑制，数据可用性低，请人工确认是否发布",
                    f"{pct}% of the cells are suppressed; confirm the table is still worth publishing")


def _k_anonymity(conn: Connection, ds: Dataset, build: sql.Identifier, review: Review) -> None:
    k = settings.k_anonymity
    qis = sql.SQL(", ").join(sql.Identifier(q) for q in ds.quasi_identifiers)
    measure = sql.SQL(
        "SELECT count(*), coalesce(min(n), 0), count(*) FILTER (WHERE n < %s), coalesce(sum(n) FILTER (WHERE n < %s), 0)"
        " FROM (SELECT count(*) AS n FROM {} GROUP BY {}) g").format(build, qis)
    classes, smallest, below, records_below = conn.execute(measure, (k, k)).fetchone()
    total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(build)).fetchone()[0]
    removed = 0
    if below and ds.local_suppression:
        match = sql.SQL(" AND ").join(
            sql.SQL("b.{q} IS NOT DISTINCT FROM s.{q}").format(q=sql.Identifier(q)) for q in ds.quasi_identifiers)
        removed = conn.execute(
            sql.SQL("DELETE FROM {b} b USING (SELECT {qis} FROM {b} GROUP BY {qis} HAVING count(*) < %s) s WHERE ")
            .format(b=build, qis=qis) + match, (k,)).rowcount
        classes, smallest, below, records_below = conn.execute(measure, (k, k)).fetchone()
    passed = below == 0
    review.check("k_anonymity", "k-匿名检查", "k-anonymity", passed=passed, k=k,
                 quasi_identifiers=list(ds.quasi_identifiers), records_before=int(total),
                 records_removed_by_local_suppression=int(removed), records=int(total - removed),
                 equivalence_classes=int(classes), smallest_class=int(smallest), classes_below_k=int(below),
                 records_in_classes_below_k=int(records_below))
    if not passed:
        review.block("k_anonymity_failed",
                     f"{below} 个准标识符组合出现少于 k={k} 次（涉及 {records_below} 条记录）",
                     f"{below} combinations of the quasi-identifiers occur fewer than k={k} times "
                     f"({records_below} records)")
    elif total and removed / total > WARN_LOCAL_SUPPRESSION_SHARE:
        pct = round(100 * removed / total)
        review.warn("many_records_suppressed", f"为满足 k-匿名删除了 {removed} 条记录（{pct}%），请人工确认",
                    f"{removed} records ({pct}%) were removed to reach k-anonymity; confirm before publishing")


def _write_files(conn: Connection, ds: Dataset, build: sql.Identifier, directory: Path,
                 meta: dict[str, Any]) -> int:
    writers = exports.Writers(directory, list(ds.fields), meta)
    try:
        with conn.transaction(), conn.cursor(name=f"export_{os.getpid()}") as cur:
            cur.execute(sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(sql.Identifier(f) for f in ds.field_names), build, sql.Identifier(ROW_COLUMN)))
            for rows in exports.chunks(cur, EXPORT_CHUNK):
                writers.write(rows)
        writers.close()
    except BaseException:
        writers.abort()
        raise
    return writers.rows


def _summary_text(ds: Dataset, release_id: str, version: int, outcome: str, row_count: int,
                  gate: dict[str, Any], review: Review) -> str:
    by_key = {c["check"]: c for c in review.checks}
    lines = [f"{ds.title} ({ds.code}) v{version} · {release_id} · {ds.open_attribute_label} · {row_count} 行 rows"]
    gate_zh = "通过" if gate["passed"] else "未通过: " + "; ".join(gate["problems"])
    lines.append(f"质量闸门 quality gate (runs {', '.join(map(str, gate['run_ids'])) or '-'}): {gate_zh}")
    pii_hits = sum(len(c.get("hits", [])) for c in review.checks if c["check"].startswith("pii_scan"))
    lines.append(f"PII 扫描 scan: {'未发现 none found' if not pii_hits else f'{pii_hits} 处命中 hits'}")
    if "small_cell_suppression" in by_key:
        c = by_key["small_cell_suppression"]
        lines.append(f"小单元格抑制 suppression (< {c['threshold']}): 一次 primary {c['primary']}, 补充 "
                     f"complementary {c['complementary']} / {c['cells']} 单元格 cells")
    if "k_anonymity" in by_key:
        c = by_key["k_anonymity"]
        lines.append(f"k-匿名 k-anonymity (k={c['k']}): 最小组 smallest class {c['smallest_class']}, 删除 removed "
                     f"{c['records_removed_by_local_suppression']} / {c['records_before']}")
    for w in review.warnings:
        lines.append(f"警告 warning: {w['message_zh']} / {w['message_en']}")
    for b in review.blocked_by:
        lines.append(f"阻断 blocked: {b['message_zh']} / {b['message_en']}")
    lines.append({"approved": "→ 自动批准 approved automatically",
                  "awaiting_approval": "→ 待人工审批 awaiting approval",
                  "blocked": "→ 已阻断 blocked, will not be published"}[outcome])
    return "\n".join(lines)


def prepare_release(dataset_code: str, run_ids: list[int], *, datasets_dir: Path | None = None,
                    url: URL | None = None) -> dict[str, Any]:
    """Build, review and write a new release of one dataset; it is NOT served yet.

    Returns {release_id, dataset_code, version, status ('approved' | 'awaiting_approval' | 'blocked'),
    needs_approval (bool), review_summary (text for the approver), row_count, directory}.
    Raises DatasetError when the definition or its SQL is wrong (no release is recorded then).
    """
    datasets = load_datasets(datasets_dir)
    ds = next((d for d in datasets if d.code == dataset_code), None)
    if ds is None:
        raise KeyError(f"no dataset {dataset_code!r} under {datasets_dir or settings.datasets_dir}")
    run_ids = sorted({int(r) for r in run_ids})
    publish_dir = settings.publish_dir
    (publish_dir / ds.code).mkdir(parents=True, exist_ok=True)
    with connect(url, autocommit=True) as conn, _advisory_lock(conn, f"publish:prepare:{ds.code}"):
        refresh_district_map(conn)
        _cleanup_orphans(conn, ds, publish_dir)
        gate = quality_gate(conn, run_ids, ds.database)
        as_of = gate["as_of"] or datetime.now(SHANGHAI).date()
        release_id, version = _allocate(conn, ds, publish_dir)
        build = _build_table(release_id)
        review = Review(release_id, ds)
        review.check("quality_gate", "来源运行的质量闸门", "quality gate of the source runs", passed=gate["passed"],
                     run_ids=run_ids, problems=gate["problems"],
                     warning_expectations_failed=gate.get("warning_expectations_failed", 0))
        if not gate["passed"]:
            review.block("quality_gate", "来源运行未通过质量闸门: " + "; ".join(gate["problems"]),
                         "the source runs did not pass the quality gate: " + "; ".join(gate["problems"]))
        review.check("field_declaration", "数据项声明 (无直接标识)", "declared fields (no direct identifier)",
                     passed=True, fields=ds.field_names)
        tmp_dir = publish_dir / ds.code / f".{release_id}.tmp"
        final_dir = publish_dir / ds.code / release_id
        try:
            _build(conn, ds, build, as_of)
            if ds.suppression is not None:
                _suppress(conn, ds, build, datasets, review)
            if ds.record_level:
                _k_anonymity(conn, ds, build, review)
            read = pii.relations_read(conn, sql.SQL(ds.sql), {"as_of": as_of})
            row_hits = pii.scan_rows(conn, build, ds.field_names, ds.database, read)
            review.check("pii_scan_rows", "记录 PII 扫描 (身份证号码、电话、姓名/地址值)",
                         "PII scan of the rows (ID numbers, phones, name/address values)",
                         passed=not row_hits, patterns=list(pii.PATTERNS) + (
                             [] if pii.identifier_free(read) else ["identifier_value"]),
                         relations_read=sorted(read), hits=row_hits)
            if row_hits:
                review.block("pii_in_rows", "记录中发现疑似个人身份信息: " + ", ".join(
                    f"{h['column']}/{pii.LABELS[h['pattern']][0]} ({h['rows']} 行)" for h in row_hits),
                    "personal identifiers found in the rows: " + ", ".join(
                    f"{h['column']}/{pii.LABELS[h['pattern']][1]} ({h['rows']} rows)" for h in row_hits))
            row_count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(build)).fetchone()[0]
            if row_count == 0 and not review.blocked:
                review.warn("empty", "数据集为空", "the dataset has no rows")

            shutil.rmtree(tmp_dir, ignore_errors=True)
            tmp_dir.mkdir(parents=True)
            created_at = datetime.now(SHANGHAI)
            meta = {"dataset_code": ds.code, "title": ds.title, "release_id": release_id, "version": version,
                    "as_of": as_of.isoformat(), "created_at": created_at.isoformat(timespec="seconds")}
            files: dict[str, dict[str, Any]] = {}
            manifest = {
                **meta, "source_run_ids": run_ids, "quality_passed": gate["passed"], "row_count": row_count,
                "fields": [f.as_dict() for f in ds.fields], "files": {}, "dataset": _definition_snapshot(ds),
            }
            if not review.blocked:  # identifiers already found, or not releasable: no data file is written at all
                _write_files(conn, ds, build, tmp_dir, meta)
                data_paths = [tmp_dir / exports.FILE_NAMES[f] for f in exports.FORMATS]
                # every file: the four data files, and the manifest's text (field descriptions, abstract) before
                # it is written; review.json holds only counts and names (checked below as well)
                file_hits = pii.scan_files(data_paths) + pii.scan_document(
                    "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
                review.check("pii_scan_files", "文件 PII 扫描 (身份证号码、电话)", "PII scan of every file (ID numbers, phones)",
                             passed=not file_hits, files=[p.name for p in data_paths] + ["manifest.json", "review.json"],
                             hits=file_hits)
                if file_hits:
                    review.block("pii_in_files", "文件中发现疑似身份证号码或电话号码: " + ", ".join(
                        f"{h['file']}/{pii.LABELS[h['pattern']][0]} ×{h['count']}" for h in file_hits),
                        "ID-number or phone patterns found in the files: " + ", ".join(
                        f"{h['file']}/{pii.LABELS[h['pattern']][1]} x{h['count']}" for h in file_hits))
                else:
                    files = {f: _file_entry(tmp_dir / exports.FILE_NAMES[f], tmp_dir) for f in exports.FORMATS}
            outcome = review.outcome(gate["passed"])
            if outcome == "blocked":
                for f in exports.FORMATS:  # a blocked release keeps only its review and a manifest without text
                    (tmp_dir / exports.FILE_NAMES[f]).unlink(missing_ok=True)
                files = {}
                manifest["fields"] = [{"name": f.name, "type": f.type} for f in ds.fields]
                manifest.pop("dataset")
            report = review.as_dict(outcome)
            (tmp_dir / "review.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n",
                                                 encoding="utf-8")
            manifest["review_outcome"] = outcome
            manifest["files"] = {f: {**e, "path": exports.FILE_NAMES[f]} for f, e in files.items()}
            manifest["review"] = {"path": "review.json", "sha256": _sha256(tmp_dir / "review.json")}
            (tmp_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                                   encoding="utf-8")
            for name in ("review.json", "manifest.json"):  # the scan covers every file written
                extra = pii.scan_file(tmp_dir / name)
                if extra:
                    raise PublishError(f"{name} of {release_id} matched a PII pattern: {extra}")
            os.rename(tmp_dir, final_dir)
            rel_files = {f: {**e, "path": f"{ds.code}/{release_id}/{exports.FILE_NAMES[f]}"} for f, e in files.items()}
            with conn.transaction():
                conn.execute(
                    """
                    INSERT INTO publish.release (release_id, dataset_code, version, status, created_at, as_of,
                        source_run_ids, quality_passed, row_count, files, review, definition_sha256, approved_by,
                        decided_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    (release_id, ds.code, version, outcome, created_at, as_of, run_ids, gate["passed"], row_count,
                     Jsonb(rel_files), Jsonb(report), ds.definition_sha256,
                     AUTO_APPROVER if outcome == "approved" else None, created_at if outcome == "approved" else None),
                )
                _event(conn, release_id, ds.code, "prepared", None, f"review: {outcome}", row_count)
                if outcome == "approved":
                    _event(conn, release_id, ds.code, "approved", AUTO_APPROVER,
                           "quality gate passed, review clean, 无条件开放", row_count)
                elif outcome == "blocked":
                    _event(conn, release_id, ds.code, "blocked", None,
                           "; ".join(b["code"] for b in review.blocked_by) or "quality gate", row_count)
            if outcome == "blocked":  # never published: its rows are not kept
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(build))
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            try:
                recorded = _release_exists(conn, release_id)
            except Exception:  # noqa: BLE001 - the connection may be what failed; the next prepare cleans up
                recorded = True
            if not recorded:
                shutil.rmtree(final_dir, ignore_errors=True)
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(build))
            raise
    _rewrite_catalog_files(url)  # the changelog gets the release's lines
    summary = _summary_text(ds, release_id, version, outcome, row_count, gate, review)
    log.info("prepared %s: %s", release_id, outcome)
    return {"release_id": release_id, "dataset_code": ds.code, "version": version, "status": outcome,
            "needs_approval": outcome == "awaiting_approval", "review_summary": summary, "row_count": row_count,
            "directory": str(final_dir)}


def prepare_all(run_ids: list[int], *, datasets_dir: Path | None = None, url: URL | None = None) -> list[dict]:
    """prepare_release for every defined dataset, in code order."""
    return [prepare_release(ds.code, run_ids, datasets_dir=datasets_dir, url=url)
            for ds in load_datasets(datasets_dir)]


def _release_exists(conn: Connection, release_id: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM publish.release WHERE release_id = %s)",
                        (release_id,)).fetchone()[0]


def _event(conn: Connection, release_id: str, code: str, event: str, actor: str | None, note: str | None,
           row_count: int | None) -> None:
    conn.execute("INSERT INTO publish.release_event (release_id, dataset_code, event, actor, note, row_count)"
                 " VALUES (%s, %s, %s, %s, %s, %s)", (release_id, code, event, actor, note, row_count))


def _release(conn: Connection, release_id: str, lock: bool = False) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM publish.release WHERE release_id = %s" + (" FOR UPDATE" if lock else ""),
                    (release_id,))
        row = cur.fetchone()
    if row is None:
        raise KeyError(f"no release {release_id!r}")
    return row


# ---------------------------------------------------------------------------------------------------------------
# approval

def approve_release(release_id: str, by: str, note: str | None = None, *, url: URL | None = None) -> dict[str, Any]:
    """A person approves a release awaiting approval (a blocked or rejected one cannot be approved).
    Returns {release_id, status: 'approved', approved_by}; approving an approved release again changes nothing."""
    if not by or not by.strip():
        raise ValueError("approve_release needs the approver's name")
    with connect(url) as conn, conn.transaction():
        rel = _release(conn, release_id, lock=True)
        if rel["status"] == "approved":
            return {"release_id": release_id, "status": "approved", "approved_by": rel["approved_by"]}
        if rel["status"] != "awaiting_approval":
            raise PublishError(f"release {release_id} is {rel['status']}: only a release awaiting approval can be "
                               "approved")
        conn.execute("UPDATE publish.release SET status = 'approved', approved_by = %s, decided_at = now(), note = %s"
                     " WHERE release_id = %s", (by, note, release_id))
        _event(conn, release_id, rel["dataset_code"], "approved", by, note, rel["row_count"])
    _rewrite_catalog_files(url)
    return {"release_id": release_id, "status": "approved", "approved_by": by}


def reject_release(release_id: str, by: str, note: str | None = None, *, url: URL | None = None) -> dict[str, Any]:
    """A person rejects a release that is awaiting approval or approved but not yet published. Its data files and
    build table are removed (its review and manifest stay). Returns {release_id, status: 'rejected'}."""
    if not by or not by.strip():
        raise ValueError("reject_release needs the name of the person rejecting")
    with connect(url) as conn:
        with conn.transaction():
            rel = _release(conn, release_id, lock=True)
            if rel["status"] == "rejected":
                return {"release_id": release_id, "status": "rejected"}
            if rel["status"] not in ("awaiting_approval", "approved"):
                raise PublishError(f"release {release_id} is {rel['status']}: only a release awaiting approval "
                                   "or approved and not yet published can be rejected")
            conn.execute("UPDATE publish.release SET status = 'rejected', approved_by = %s, decided_at = now(),"
                         " note = %s WHERE release_id = %s", (by, note, release_id))
            _event(conn, release_id, rel["dataset_code"], "rejected", by, note, rel["row_count"])
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_build_table(release_id)))
    _withdraw_data_files(rel)
    _rewrite_catalog_files(url)
    return {"release_id": release_id, "status": "rejected"}


def _withdraw_data_files(rel: dict[str, Any]) -> None:
    for entry in (rel["files"] or {}).values():
        (settings.publish_dir / entry["path"]).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------------------
# serving: publish, rollback, repair

def _current_link(code: str) -> Path:
    return settings.publish_dir / code / "current"


def switch_symlink(code: str, release_id: str) -> None:
    """Point <publish_dir>/<code>/current at the release directory: a new link under a temporary name, then
    os.replace over the old one (atomic: a reader follows either the old or the new link)."""
    link = _current_link(code)
    tmp = link.with_name(f".current.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(release_id, tmp)  # relative: the tree can be synced or moved as a whole
    os.replace(tmp, link)


class _ServedFiles:
    """The symlink target and the catalog files as they were, to put back if serving fails."""

    def __init__(self, code: str):
        self.code = code
        link = _current_link(code)
        self.target = os.readlink(link) if link.is_symlink() else None
        self.files = {}
        for name in catalog.CATALOG_FILES:
            p = settings.publish_dir / name
            self.files[name] = p.read_bytes() if p.exists() else None

    def restore(self) -> None:
        link = _current_link(self.code)
        try:
            if self.target is None:
                link.unlink(missing_ok=True)
            elif not link.is_symlink() or os.readlink(link) != self.target:
                switch_symlink(self.code, self.target)
        finally:
            for name, content in self.files.items():
                p = settings.publish_dir / name
                if content is None:
                    p.unlink(missing_ok=True)
                elif not p.exists() or p.read_bytes() != content:
                    tmp = p.with_name(f".{name}.restore-{os.getpid()}")
                    tmp.write_bytes(content)
                    os.replace(tmp, p)


def _check_files(rel: dict[str, Any]) -> dict[str, Any]:
    """The release's files are all there with the checksums recorded at prepare; returns its manifest."""
    directory = settings.publish_dir / rel["dataset_code"] / rel["release_id"]
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise PublishError(f"release {rel['release_id']}: {manifest_path} is missing")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if not rel["files"]:
        raise PublishError(f"release {rel['release_id']} has no data files")
    for fmt, entry in rel["files"].items():
        p = settings.publish_dir / entry["path"]
        if not p.is_file() or _sha256(p) != entry["sha256"]:
            raise PublishError(f"release {rel['release_id']}: {p} is missing or does not match its checksum")
    return manifest


def _replace_table(conn: Connection, code: str, fields: list[dict[str, Any]], build: sql.Identifier) -> None:
    """publish.<code> := the build table's rows (same transaction as the catalog); the table is re-created only
    when the fields changed."""
    from pipelines.publish.datasets import FIELD_TYPES

    table = sql.Identifier("publish", code)
    want = [(f["name"], FIELD_TYPES[f["type"]]) for f in fields]
    have = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(format('publish.%%I', %s::text)) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum", (code,)).fetchall()
    normal = {"bigint": "bigint", "text": "text", "boolean": "boolean", "date": "date", "numeric": "numeric"}
    if [(n, normal.get(t, t)) for n, t in have] != want:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in want)))
    else:
        conn.execute(sql.SQL("DELETE FROM {}").format(table))
    cols = sql.SQL(", ").join(sql.Identifier(n) for n, _ in want)
    conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}").format(
        table, cols, cols, build, sql.Identifier(ROW_COLUMN)))
    for f in fields:
        comment = f["label_zh"] + (f" — {f['description']}" if f["description"] else "")
        conn.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
            table, sql.Identifier(f["name"]), sql.Literal(comment)))


def _upsert_catalog(conn: Connection, rel: dict[str, Any], manifest: dict[str, Any]) -> None:
    d = manifest["dataset"]
    distributions = {
        fmt: {"path": f"{rel['dataset_code']}/current/{exports.FILE_NAMES[fmt]}", "sha256": e["sha256"],
              "bytes": e["bytes"], "media_type": exports.MEDIA_TYPES[fmt]}
        for fmt, e in rel["files"].items()
    }
    conn.execute(
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            sql.Identifier("publish", rel["dataset_code"]),
            sql.Literal(f"{d['title']} ({d['open_attribute_label']}) — current release {rel['release_id']}")))
    conn.execute(
        """
        INSERT INTO publish.catalog_entry (dataset_code, title, title_en, database, provider_department,
            provider_department_name, abstract, abstract_en, classification, keywords, open_attribute,
            open_attribute_label, share_type, update_frequency, record_level, fields, formats, distributions, related,
            license, asset_uri, table_name, current_release_id, current_version, row_count, as_of, first_published,
            updated)
        VALUES (%(code)s, %(title)s, %(title_en)s, %(database)s, %(provider_department)s, %(provider_department_name)s,
            %(abstract)s, %(abstract_en)s, %(classification)s, %(keywords)s, %(open_attribute)s,
            %(open_attribute_label)s, %(share_type)s, %(update_frequency)s, %(record_level)s, %(fields)s,
            %(formats)s, %(distributions)s, %(related)s, %(license)s, %(asset_uri)s, %(table)s, %(release_id)s,
            %(version)s, %(row_count)s, %(as_of)s, now(), now())
        ON CONFLICT (dataset_code) DO UPDATE SET
            title = EXCLUDED.title, title_en = EXCLUDED.title_en, database = EXCLUDED.database,
            provider_department = EXCLUDED.provider_department,
            provider_department_name = EXCLUDED.provider_department_name, abstract = EXCLUDED.abstract,
            abstract_en = EXCLUDED.abstract_en, classification = EXCLUDED.classification,
            keywords = EXCLUDED.keywords, open_attribute = EXCLUDED.open_attribute,
            open_attribute_label = EXCLUDED.open_attribute_label, share_type = EXCLUDED.share_type,
            update_frequency = EXCLUDED.update_frequency, record_level = EXCLUDED.record_level,
            fields = EXCLUDED.fields, formats = EXCLUDED.formats, distributions = EXCLUDED.distributions,
            related = EXCLUDED.related, license = EXCLUDED.license, asset_uri = EXCLUDED.asset_uri,
            table_name = EXCLUDED.table_name, current_release_id = EXCLUDED.current_release_id,
            current_version = EXCLUDED.current_version, row_count = EXCLUDED.row_count, as_of = EXCLUDED.as_of,
            updated = now()
        """,
        {**{k: d.get(k) for k in ("title", "title_en", "database", "provider_department", "provider_department_name",
                                  "abstract", "abstract_en", "classification", "keywords", "open_attribute",
                                  "open_attribute_label", "update_frequency", "record_level", "asset_uri", "table")},
         "code": rel["dataset_code"], "share_type": d["share_type_label"], "fields": Jsonb(d["fields"]),
         "formats": sorted(rel["files"]), "distributions": Jsonb(distributions), "related": Jsonb(d["related"]),
         "license": Jsonb(d["license"]), "release_id": rel["release_id"], "version": rel["version"],
         "row_count": rel["row_count"], "as_of": rel["as_of"]},
    )


def _serve(conn: Connection, rel: dict[str, Any], previous_status: str, events: list[tuple[str, str, str | None,
           str | None]]) -> None:
    """Make ``rel`` the served release of its dataset (steps 1-4 of the module docstring)."""
    code = rel["dataset_code"]
    manifest = _check_files(rel)
    build = _build_table(rel["release_id"])
    if not _table_exists(conn, WORK_SCHEMA, rel["release_id"]):
        raise PublishError(f"release {rel['release_id']}: its build table {WORK_SCHEMA}.{rel['release_id']} is gone")
    served: _ServedFiles | None = None
    try:
        with conn.transaction():
            current = conn.execute("SELECT current_release_id FROM publish.catalog_entry WHERE dataset_code = %s"
                                   " FOR UPDATE", (code,)).fetchone()
            current_id = current[0] if current else None
            _replace_table(conn, code, manifest["fields"], build)
            _upsert_catalog(conn, rel, manifest)
            conn.execute("UPDATE publish.release SET status = 'published', published_at = coalesce(published_at, now())"
                         " WHERE release_id = %s", (rel["release_id"],))
            if current_id and current_id != rel["release_id"]:
                conn.execute("UPDATE publish.release SET status = %s WHERE release_id = %s",
                             (previous_status, current_id))
            for release_id, event, actor, note in events:
                n = conn.execute("SELECT row_count FROM publish.release WHERE release_id = %s",
                                 (release_id,)).fetchone()[0]
                _event(conn, release_id, code, event, actor, note, n)
            served = _ServedFiles(code)
            switch_symlink(code, rel["release_id"])
            catalog.write_all(conn, settings.publish_dir)
    except BaseException:
        if served is not None:
            served.restore()
        raise


@contextmanager
def _serving(url: URL | None):
    with connect(url, autocommit=True) as conn, _advisory_lock(conn, "publish:serve"):
        yield conn


def _rewrite_catalog_files(url: URL | None) -> None:
    """Catalog and changelog files from the committed state (under the serving lock: never racing a publish)."""
    with _serving(url) as conn, conn.transaction():
        catalog.write_all(conn, settings.publish_dir)


def repair(url: URL | None = None) -> dict[str, Any]:
    """Make the files agree with the warehouse: every dataset's ``current`` symlink points at its current release
    and the catalog and changelog files are rewritten. Run first by publish and rollback (after a crash between
    the symlink switch and the commit this undoes the switch). Returns {datasets: n, relinked: [codes]}."""
    with _serving(url) as conn:
        return _repair(conn)


def _repair(conn: Connection) -> dict[str, Any]:
    relinked = []
    rows = conn.execute("SELECT dataset_code, current_release_id FROM publish.catalog_entry").fetchall()
    for code, release_id in rows:
        link = _current_link(code)
        if release_id and (not link.is_symlink() or os.readlink(link) != release_id):
            switch_symlink(code, release_id)
            relinked.append(code)
    # datasets with a current link but no catalog entry (a first publish that did not commit)
    for link in settings.publish_dir.glob("*/current"):
        if link.is_symlink() and link.parent.name not in {c for c, _ in rows}:
            link.unlink()
            relinked.append(link.parent.name)
    with conn.transaction():
        catalog.write_all(conn, settings.publish_dir)
    return {"datasets": len(rows), "relinked": relinked}


def publish_release(release_id: str, approved_by: str | None = None, *, url: URL | None = None) -> dict[str, Any]:
    """Serve an approved release atomically: publish.<code> and the catalog entry in one transaction, the
    ``current`` symlink, catalog.json/.jsonld and the changelog; the release served before becomes superseded.
    Refuses a release that is not approved, or older than the one served (use rollback to go back).
    ``approved_by`` is recorded as who released it (the approver is recorded by approve_release).
    Returns {release_id, dataset_code, version, status: 'published', previous_release_id, row_count, table,
    directory}."""
    with _serving(url) as conn:
        _repair(conn)
        rel = _release(conn, release_id)
        if rel["status"] != "approved":
            raise PublishError(f"release {release_id} is {rel['status']}: only an approved release is published"
                               + (" (approve it first)" if rel["status"] == "awaiting_approval" else ""))
        cur = conn.execute("SELECT current_release_id, current_version FROM publish.catalog_entry"
                           " WHERE dataset_code = %s", (rel["dataset_code"],)).fetchone()
        previous = cur[0] if cur else None
        if cur and cur[1] is not None and cur[1] > rel["version"]:
            raise PublishError(f"release {release_id} (v{rel['version']}) is older than the served {previous} "
                               f"(v{cur[1]}); use rollback to go back")
        events = [(release_id, "published", approved_by or rel["approved_by"], None)]
        if previous and previous != release_id:
            events.append((previous, "superseded", None, f"replaced by {release_id}"))
        # approved or awaiting releases older than this one can no longer be published
        stale = conn.execute(
            "SELECT release_id FROM publish.release WHERE dataset_code = %s AND version < %s"
            " AND status IN ('approved', 'awaiting_approval')", (rel["dataset_code"], rel["version"])).fetchall()
        _serve(conn, rel, "superseded", events)
        for (old,) in stale:
            with conn.transaction():
                conn.execute("UPDATE publish.release SET status = 'superseded' WHERE release_id = %s"
                             " AND status IN ('approved', 'awaiting_approval')", (old,))
                _event(conn, old, rel["dataset_code"], "superseded", None, f"never published; {release_id} was", None)
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_build_table(old)))
            _withdraw_data_files(_release(conn, old))
        if stale:
            with conn.transaction():
                catalog.write_all(conn, settings.publish_dir)
    log.info("published %s (previous %s)", release_id, previous)
    return {"release_id": release_id, "dataset_code": rel["dataset_code"], "version": rel["version"],
            "status": "published", "previous_release_id": previous, "row_count": rel["row_count"],
            "table": f"publish.{rel['dataset_code']}",
            "directory": str(settings.publish_dir / rel["dataset_code"] / release_id)}


def rollback(dataset_code: str, by: str | None = None, *, url: URL | None = None) -> dict[str, Any]:
    """Serve the previous published release of the dataset again (table, symlink, catalog, changelog) in one
    atomic step; the release served until now becomes rolled_back. Repeating it goes one release further back.
    Returns {dataset_code, release_id (now served), rolled_back_release_id, version, row_count}."""
    with _serving(url) as conn:
        _repair(conn)
        cur = conn.execute("SELECT current_release_id, current_version FROM publish.catalog_entry"
                           " WHERE dataset_code = %s", (dataset_code,)).fetchone()
        if not cur or not cur[0]:
            raise PublishError(f"{dataset_code} has no published release to roll back")
        current_id, current_version = cur
        prev = conn.execute(
            "SELECT release_id FROM publish.release WHERE dataset_code = %s AND status = 'superseded'"
            " AND published_at IS NOT NULL AND version < %s ORDER BY version DESC LIMIT 1",
            (dataset_code, current_version)).fetchone()
        if prev is None:
            raise PublishError(f"{dataset_code}: no earlier published release to roll back to from {current_id}")
        rel = _release(conn, prev[0])
        _serve(conn, rel, "rolled_back", [
            (current_id, "rolled_back", by, f"rolled back to {rel['release_id']}"),
            (rel["release_id"], "restored", by, f"served again instead of {current_id}"),
        ])
    log.info("rolled back %s from %s to %s", dataset_code, current_id, rel["release_id"])
    return {"dataset_code": dataset_code, "release_id": rel["release_id"], "rolled_back_release_id": current_id,
            "version": rel["version"], "row_count": rel["row_count"]}


def list_releases(dataset_code: str | None = None, *, url: URL | None = None) -> list[dict[str, Any]]:
    """Releases, newest first: {release_id, dataset_code, version, status, current (bool), created_at,
    published_at, as_of, source_run_ids, quality_passed, row_count, approved_by, decided_at, note,
    review_outcome, warnings, blocked_by}."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT r.release_id, r.dataset_code, r.version, r.status,
                   (c.current_release_id IS NOT NULL) AS current, r.created_at, r.published_at, r.as_of,
                   r.source_run_ids, r.quality_passed, r.row_count, r.approved_by, r.decided_at, r.note,
                   r.review->>'outcome' AS review_outcome,
                   coalesce(jsonb_array_length(r.review->'warnings'), 0) AS warnings,
                   ARRAY(SELECT jsonb_array_elements(r.review->'blocked_by')->>'code') AS blocked_by
            FROM publish.release r
            LEFT JOIN publish.catalog_entry c ON c.current_release_id = r.release_id
            WHERE %(code)s::text IS NULL OR r.dataset_code = %(code)s
            ORDER BY r.created_at DESC, r.release_id DESC
            """,
            {"code": dataset_code},
        )
        return cur.fetchall()


def review_report(release_id: str, *, url: URL | None = None) -> dict[str, Any]:
    """The privacy review report of a release (as in its review.json)."""
    with connect(url) as conn:
        return _release(conn, release_id)["review"]


__all__ = ["prepare_release", "prepare_all", "approve_release", "reject_release", "publish_release", "rollback",
           "list_releases", "review_report", "repair", "latest_run_ids", "quality_gate", "PublishError",
           "AUTO_APPROVER", "get_dataset"]
