"""Reports for people: the run summary, and the discrepancy (比对) and quarantine files each department receives.

Files are CSV in UTF-8 with BOM (Excel in a Chinese locale opens them correctly), one per department, under
``<REPORTS_DIR>/departments/<department>/``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from sqlalchemy import URL

from pipelines.departments import LABELS, Department
from pipelines.settings import settings
from pipelines.warehouse import connect


def _label(code: str) -> str:
    try:
        return LABELS[Department(code)]
    except ValueError:
        return code


DISCREPANCY_HEADER = ["角色 role", "数源部门 authority", "不一致部门 department", "人员标识 person_id", "数据项 attribute",
                      "权威值 authority_value", "部门值 department_value", "数据源 source_id", "部门记录 source_key",
                      "权威记录 authority_source_key", "首次发现运行 first_run", "最近运行 last_run"]
# the daily change file: what the run did to each discrepancy, then the same columns
CHANGE_HEADER = ["变化 change", *DISCREPANCY_HEADER]
NEW, STILL_OPEN, RESOLVED = "new", "still_open", "resolved"  # (新发现, 仍未整改, 已一致)

# Snapshots (every open discrepancy of a department) are written weekly, on the run whose data day is this weekday
# in Asia/Shanghai (Monday), on a department's first report, and on demand (``python -m pipelines report
# --discrepancies``); every run writes the change file. A snapshot reads every open discrepancy, so its cost
# follows the warehouse: written daily it was 2.7 s of a day's run on a 4M-resident warehouse (0.6 s at 1M), the
# change file follows the day (index discrepancy_last_run, migration 0019).
SNAPSHOT_WEEKDAY = 0

# One department's discrepancies as the authority and as the disagreeing party, in the order of (authority,
# attribute, person, source), written by the server as CSV (COPY … TO STDOUT) rather than fetched and written row
# by row in Python. {change} is the leading column of the change file (nothing in a snapshot), {which} the rows:
# the open ones (snapshot) or the ones the run wrote (change file).
_DEPARTMENT_DISCREPANCIES = """
COPY (
    SELECT {change} x.role, coalesce(la.label, x.authority_department), coalesce(ld.label, x.department),
           x.person_id, x.attribute, x.authority_value, x.department_value, x.source_id, x.source_key,
           x.authority_source_key, x.first_run_id, x.last_run_id
    FROM (SELECT 'authority' AS role, d.* FROM population.discrepancy d
          WHERE {which} AND d.authority_department = %(department)s
          UNION ALL
          SELECT 'disagreeing' AS role, d.* FROM population.discrepancy d
          WHERE {which} AND d.department = %(department)s) x
    LEFT JOIN unnest(%(codes)s::text[], %(labels)s::text[]) AS la(code, label) ON la.code = x.authority_department
    LEFT JOIN unnest(%(codes)s::text[], %(labels)s::text[]) AS ld(code, label) ON ld.code = x.department
    ORDER BY x.authority_department, x.attribute, x.person_id, x.source_id
) TO STDOUT (FORMAT csv)
"""
_SNAPSHOT = _DEPARTMENT_DISCREPANCIES.format(change="", which="d.status = 'open'")
_CHANGES = _DEPARTMENT_DISCREPANCIES.format(
    change=f"CASE WHEN x.status = 'resolved' THEN '{RESOLVED}' WHEN x.first_run_id = %(run_id)s THEN '{NEW}'"
           f" ELSE '{STILL_OPEN}' END,",
    which="d.last_run_id = %(run_id)s")


QUARANTINE_HEADER = ["数据源 source_id", "记录 source_key", "原因 reasons", "位置 origin", "原始记录 payload"]

# One department's quarantined rows of a run, written by the server (a full load quarantines hundreds of thousands
# of rows with their payloads: fetched into Python they were the benchmark process's memory peak at 4M, 770 MB).
_QUARANTINE = """
COPY (
    SELECT source_id, source_key, array_to_string(reasons, ','), origin, payload::text
    FROM quarantine.population_record WHERE run_id = %(run_id)s AND department = %(department)s
    ORDER BY source_id, seq
) TO STDOUT (FORMAT csv)
"""


def _label_params() -> dict[str, list[str]]:
    """The department codes and their names, as the report queries' parameters."""
    return {"codes": [d.value for d in LABELS], "labels": [LABELS[d] for d in LABELS]}


def _csv_line(values: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)  # (the line ending COPY's CSV rows have)
    return buf.getvalue().encode("utf-8")


def _write_copy(conn, path: Path, header: list[str], query: str | None, params: dict) -> Path:
    """A CSV file (UTF-8 with BOM): the header, then the rows COPY writes for ``query`` (none if None). Written
    beside it and renamed into place, so that a department never picks up half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as fh:
            fh.write("\ufeff".encode("utf-8") + _csv_line(header))
            if query is not None:
                with conn.cursor() as cur, cur.copy(query, params) as cp:
                    for block in cp:
                        fh.write(block)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def is_snapshot_day(run_id: int, conn) -> bool:
    """Whether the run's data day (its interval's start in Asia/Shanghai) is the weekly snapshot's weekday."""
    row = conn.execute("SELECT extract(isodow FROM interval_start AT TIME ZONE 'Asia/Shanghai')::int - 1"
                       " FROM audit.run WHERE run_id = %s", (run_id,)).fetchone()
    return row is not None and row[0] == SNAPSHOT_WEEKDAY


def snapshot_departments(out_dir: Path) -> list[str]:
    """The departments that have a snapshot (discrepancies.csv) under ``out_dir``."""
    return sorted(p.parent.name for p in out_dir.glob("*/discrepancies.csv")) if out_dir.is_dir() else []


def write_snapshots(conn, out_dir: Path, only: set[str] | None = None) -> list[Path]:
    """Write ``discrepancies.csv`` (every open discrepancy that concerns it) for each department concerned and
    each that has a snapshot already (those none concerns any more get the header alone), or for ``only``."""
    params = _label_params()
    concerned = {r[0] for r in conn.execute(
        "SELECT authority_department FROM population.discrepancy WHERE status = 'open'"
        " UNION SELECT department FROM population.discrepancy WHERE status = 'open'").fetchall()}
    departments = only if only is not None else concerned | set(snapshot_departments(out_dir))
    return [_write_copy(conn, out_dir / dept / "discrepancies.csv", DISCREPANCY_HEADER,
                        _SNAPSHOT if dept in concerned else None, {**params, "department": dept})
            for dept in sorted(departments)]


def write_department_reports(run_id: int, url: URL | None = None, out_dir: Path | None = None,
                             snapshot: bool | None = None) -> list[Path]:
    """Per department:

    * ``discrepancies_run<N>.csv``: the discrepancies the run wrote that concern it (as the authority or as the
      disagreeing party), each marked ``new`` (found by this run), ``still_open`` (found earlier, confirmed again:
      the person's records changed, the disagreement did not go) or ``resolved``; written for every department
      the run concerns. Its cost follows the run, not the warehouse.
    * ``discrepancies.csv``: every open discrepancy that concerns it, rewritten when ``snapshot`` is True; when
      None (a pipeline run), on the weekly snapshot day (SNAPSHOT_WEEKDAY) and for a department that has no
      snapshot yet. A department none concerns any more gets the header alone, not its last file left standing.
    * ``quarantine_run<N>.csv``: the rows of this run it sent that were quarantined, with reasons."""
    out_dir = out_dir or settings.reports_dir / "departments"
    written: list[Path] = []
    with connect(url) as conn:
        params = {"run_id": run_id, **_label_params()}
        changed = [r[0] for r in conn.execute(
            "SELECT authority_department FROM population.discrepancy WHERE last_run_id = %(run_id)s"
            " UNION SELECT department FROM population.discrepancy WHERE last_run_id = %(run_id)s ORDER BY 1",
            {"run_id": run_id}).fetchall()]
        for dept in changed:
            written.append(_write_copy(conn, out_dir / dept / f"discrepancies_run{run_id}.csv", CHANGE_HEADER,
                                       _CHANGES, {**params, "department": dept}))
        earlier = set(snapshot_departments(out_dir))
        if snapshot if snapshot is not None else is_snapshot_day(run_id, conn):
            written += write_snapshots(conn, out_dir)
        elif snapshot is None and set(changed) - earlier:  # a department's first report
            written += write_snapshots(conn, out_dir, only=set(changed) - earlier)
        for (dept,) in conn.execute("SELECT DISTINCT department FROM quarantine.population_record"
                                    " WHERE run_id = %s ORDER BY 1", (run_id,)).fetchall():
            written.append(_write_copy(conn, out_dir / dept / f"quarantine_run{run_id}.csv", QUARANTINE_HEADER,
                                       _QUARANTINE, {"run_id": run_id, "department": dept}))
    return written


def run_summary(run_id: int, url: URL | None = None) -> dict:
    """What a data engineer wants to see after a run: accounting, rows, reasons, discrepancies, gate."""
    with connect(url) as conn:
        accounting = conn.execute(
            "SELECT source_id, received, merged, quarantined, duplicates FROM audit.row_accounting"
            " WHERE run_id = %s ORDER BY source_id", (run_id,)).fetchall()
        reasons = conn.execute(
            "SELECT reason, count(*) FROM quarantine.population_record, unnest(reasons) AS reason"
            " WHERE run_id = %s GROUP BY reason ORDER BY count(*) DESC, reason", (run_id,)).fetchall()
        gate = conn.execute(
            "SELECT suite, success, blocking_failed, warning_failed FROM quality.validation_run"
            " WHERE run_id = %s ORDER BY suite", (run_id,)).fetchall()
    reports = write_department_reports(run_id, url)
    return {
        "run_id": run_id,
        "accounting": [dict(zip(("source_id", "received", "merged", "quarantined", "duplicates"), r))
                       for r in accounting],
        "quarantine_reasons": dict(reasons),
        "quality": [dict(zip(("suite", "success", "blocking_failed", "warning_failed"), r)) for r in gate],
        "department_reports": [str(p) for p in reports],
    }


def warehouse_summary(url: URL | None = None) -> dict:
    """The state of the whole population database (for `make demo` and `python -m pipelines report`)."""
    with connect(url) as conn:
        q = lambda s, *a: conn.execute(s, a).fetchall()  # noqa: E731
        tables = {
            t: q(f"SELECT count(*) FROM {t}")[0][0]  # table names are constants here
            for t in ("population.person", "population.person_history", "population.person_retired",
                      "population.source_record",
                      "population.person_xref", "population.review_queue", "population.discrepancy",
                      "quarantine.population_record", "staging.population_record")
        }
        by_reason = q("SELECT reason, count(*) FROM quarantine.population_record, unnest(reasons) reason"
                      " GROUP BY reason ORDER BY 2 DESC, 1")
        disc = q("SELECT authority_department, department, count(*) FROM population.discrepancy"
                 " WHERE status = 'open' GROUP BY 1, 2 ORDER BY 3 DESC")
        runs = q("SELECT r.run_id, (r.interval_start AT TIME ZONE 'Asia/Shanghai')::date, r.status, coalesce(sum(a.received), 0),"
                 " coalesce(sum(a.merged), 0), coalesce(sum(a.quarantined), 0), coalesce(sum(a.duplicates), 0)"
                 " FROM audit.run r LEFT JOIN audit.row_accounting a USING (run_id)"
                 " WHERE r.pipeline = 'population' GROUP BY r.run_id ORDER BY r.interval_start")
        gates = q("SELECT DISTINCT ON (v.suite) v.suite, v.run_id, v.success, v.blocking_failed, v.warning_failed,"
                  " v.data_docs_path FROM quality.validation_run v ORDER BY v.suite, v.run_id DESC")
        unfinished = q("SELECT run_id, started_at FROM population.bulk_load ORDER BY run_id")
    return {"tables": tables, "quarantine_by_reason": by_reason, "discrepancies": disc, "runs": runs,
            "quality": gates, "unfinished_loads": unfinished}


def format_summary(summary: dict) -> str:
    lines = ["", "== 实有人口库 (resident population) — demo summary ==", "", "Runs (day, status, received = merged + quarantined + duplicates):"]
    for run_id, day, status, rec, mer, qua, dup in summary["runs"]:
        lines.append(f"  run {run_id:>3}  {day}  {status:<8} {rec:>8} = {mer} + {qua} + {dup}")
    for run_id, started in summary.get("unfinished_loads", []):
        lines.append(f"  ! run {run_id}: a partitioned load started {started:%Y-%m-%d %H:%M} did not finish; the golden"
                     " tables may hold part of it until the next reconciliation undoes it (docs/operations.md)")
    lines += ["", "Rows per table:"]
    lines += [f"  {t:<32} {n:>10}" for t, n in summary["tables"].items()]
    lines += ["", "Quarantined rows by reason:"]
    lines += [f"  {r:<28} {n:>8}" for r, n in summary["quarantine_by_reason"]] or ["  (none)"]
    lines += ["", "Open discrepancies (比对) by authority department ← disagreeing department:"]
    lines += [f"  {_label(a)} ← {_label(d):<14} {n:>6}" for a, d, n in summary["discrepancies"]] or ["  (none)"]
    lines += ["", "Quality gate (latest run per suite):"]
    for suite, run_id, ok, blocking, warning, docs in summary["quality"]:
        lines.append(f"  {suite:<32} run {run_id}: {'PASSED' if ok else 'BLOCKED'}"
                     f" ({blocking} blocking, {warning} warning failures)")
    lines += ["", f"Reports: {settings.reports_dir}  (departments/, quality/, data_docs/)", ""]
    return "\n".join(lines)
