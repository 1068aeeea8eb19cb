"""Writing batches the way each department delivers them: CSV, XLSX, XML, JSON lines (for the API), 前置库 tables.

Every writer is deterministic: the same batch gives the same bytes (XLSX: fixed zip entry times and document
properties), so a rerun with the same arguments reproduces every file byte for byte.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from pipelines.registry import Source
from pipelines.simulate import defects as K
from pipelines.simulate.rows import Batch, add

XLSX_EPOCH = (2020, 1, 1, 0, 0, 0)


def _join(batch: Batch, sep: str, null: str | None = None) -> np.ndarray:
    cols = [batch.cols[c] for c in batch.columns]
    if null is not None:
        cols = [np.where(c == "", null, c) for c in cols]
    parts = [cols[0]]
    for c in cols[1:]:
        parts += [sep, c]
    return add(*parts)


def csv_bytes(batch: Batch, encoding: str) -> bytes:
    """Header row + one line per row, CRLF line ends, in ``encoding`` (gbk / utf-8-sig: the BOM comes from the
    codec). No value contains a comma, quote or line break, so no field needs quoting. A MALFORMED_ROW row loses
    its last field (even rows) or gains an extra one (odd rows)."""
    lines = _join(batch, ",") if len(batch) else np.empty(0, dtype=object)
    bad = np.flatnonzero(batch.kind == K.MALFORMED)
    if len(bad):
        lines[bad] = [line.rsplit(",", 1)[0] if i % 2 == 0 else line + ",备注"  # the few malformed rows
                      for i, line in enumerate(lines[bad].tolist())]
    text = ",".join(batch.columns) + "\r\n" + "".join(line + "\r\n" for line in lines.tolist())
    return text.encode(encoding)


def _xml_escape(a: np.ndarray) -> np.ndarray:
    for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        if (np.strings.find(a, old) >= 0).any():
            a = np.strings.replace(a, old, new)
    return a


def xml_bytes(batch: Batch, record_tag: str, cut: bool = False) -> bytes:
    """``<?xml …?><records><record><djbh>…</djbh>…</record>…</records>`` in UTF-8, one record per line.
    ``cut``: the document stops two thirds of the way through (a transfer cut off): not well-formed."""
    parts: list = [f"<{record_tag}>"]
    for c in batch.columns:
        parts += [f"<{c}>", _xml_escape(batch.cols[c]), f"</{c}>"]
    parts.append(f"</{record_tag}>\n")
    body = "".join(add(*parts).tolist()) if len(batch) else ""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<records>\n'
    if cut:  # the root element is never closed, whatever the number of records
        return (head + body[: len(body) * 2 // 3]).encode("utf-8")
    return (head + body + "</records>\n").encode("utf-8")


def write_xlsx(path: Path, batch: Batch, sheet: str, when: datetime) -> None:
    """openpyxl write-only workbook, one sheet: the header row, then the rows, every cell a string (empty = no
    value). Repacked afterwards with fixed entry times and document dates so the bytes are reproducible."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    wb.properties.creator = "simulated department"
    ws = wb.create_sheet(title=sheet)
    ws.append(list(batch.columns))
    cols = [batch.cols[c].tolist() for c in batch.columns]
    for row in zip(*cols):  # openpyxl appends row by row; the foreign-resident extract is ~4% of persons
        ws.append([x if x != "" else None for x in row])
    buf = io.BytesIO()
    wb.save(buf)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
            zi = zipfile.ZipInfo(info.filename, date_time=XLSX_EPOCH)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, data)
    path.write_bytes(out.getvalue())


def jsonl_bytes(batch: Batch) -> bytes:
    """One JSON object per line, keys in the registry's order, '' as null."""
    cols = [batch.cols[c].tolist() for c in batch.columns]
    lines = [json.dumps({k: (x if x != "" else None) for k, x in zip(batch.columns, row)}, ensure_ascii=False)
             for row in zip(*cols)]  # health holds ~1% of persons: births and deaths
    return "".join(line + "\n" for line in lines).encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# 前置库


def _table(source: Source) -> tuple[str, str]:
    schema, table = (source.table or "").split(".", 1)
    return schema, table


def create_table(conn: psycopg.Connection, source: Source, columns: list[str], drop: bool) -> None:
    """The department's table: text columns named as in the registry, the update-time column timestamptz."""
    schema, table = _table(source)
    ident = sql.Identifier(schema, table)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    if drop:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
    coldefs = [
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL("timestamptz" if c == source.updated_at else "text"))
        for c in columns
    ]
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(ident, sql.SQL(", ").join(coldefs)))
    conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
        sql.Identifier(f"{table}_{source.updated_at.lower()}_idx"), ident, sql.Identifier(source.updated_at)))
    conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ident, sql.Literal(f"{source.title} (模拟前置库)")))


def delete_window(conn: psycopg.Connection, source: Source, low: datetime, high: datetime) -> int:
    schema, table = _table(source)
    cur = conn.execute(sql.SQL("DELETE FROM {} WHERE {} >= %s AND {} < %s").format(
        sql.Identifier(schema, table), sql.Identifier(source.updated_at), sql.Identifier(source.updated_at)),
        (low, high))
    return cur.rowcount


def copy_rows(conn: psycopg.Connection, source: Source, batch: Batch) -> int:
    """COPY the batch (text format, '' as NULL) into the source's table."""
    if not len(batch):
        return 0
    schema, table = _table(source)
    lines = _join(batch, "\t", null="\\N")
    data = "".join(line + "\n" for line in lines.tolist()).encode("utf-8")
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, batch.columns)))
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(data)
    return len(batch)
