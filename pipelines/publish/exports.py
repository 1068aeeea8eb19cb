"""The release files: data.csv (UTF-8 with BOM), data.xlsx, data.xml and data.json, written in one pass over the
rows in chunks (bounded memory), and readers that parse each back to the same rows (tests, checks).

Values are written in one textual form in every format (the CSV's): empty for NULL, ``true``/``false``, ISO dates,
integers in decimal. The XLSX keeps numbers and booleans typed (Excel sums them) and dates as ISO text; XML marks
NULL with ``nil="true"``; JSON uses null, numbers and booleans. ``read_*`` return lists of tuples of that textual
form, so the four files can be compared with each other and with the table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree
from openpyxl import Workbook, load_workbook

from pipelines.publish.datasets import Field

FORMATS = ("csv", "xlsx", "xml", "json")
FILE_NAMES = {f: f"data.{f}" for f in FORMATS}
MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xml": "application/xml",
    "json": "application/json",
}
XLSX_MAX_ROWS = 1_048_575  # data rows per sheet (Excel's limit less the header); more go to data_2, data_3, …


def text(value: Any) -> str:
    """The one textual form of a value in every file."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class Writers:
    """The four writers of one release, fed chunk by chunk."""

    def __init__(self, directory: Path, fields: list[Field], meta: dict[str, Any]):
        self.directory = directory
        self.fields = fields
        self.names = [f.name for f in fields]
        self.rows = 0
        self._csv_fh = (directory / FILE_NAMES["csv"]).open("w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._csv_fh, lineterminator="\r\n")
        self._csv.writerow(self.names)
        self._wb = Workbook(write_only=True)
        self._sheet_no = 0
        self._sheet_rows = 0
        self._new_sheet()
        info = self._wb.create_sheet("fields")
        info.append(["name", "type", "label_zh", "description"])
        for f in fields:
            info.append([f.name, f.type, f.label_zh, f.description])
        self._json_fh = (directory / FILE_NAMES["json"]).open("w", encoding="utf-8")
        head = {**meta, "fields": [f.as_dict() for f in fields]}
        self._json_fh.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "records": [')
        self._json_first = True
        self._xml_cm = etree.xmlfile(str(directory / FILE_NAMES["xml"]), encoding="utf-8")
        self._xml = self._xml_cm.__enter__()
        self._xml.write_declaration()
        self._xml_root = self._xml.element("dataset", {k: text(v) for k, v in meta.items() if not isinstance(v, list)})
        self._xml_root.__enter__()

    def _new_sheet(self) -> None:
        self._sheet_no += 1
        title = "data" if self._sheet_no == 1 else f"data_{self._sheet_no}"
        self._sheet = self._wb.create_sheet(title, index=self._sheet_no - 1)
        self._sheet.append(self.names)
        self._sheet_rows = 0

    def write(self, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        self._csv.writerows([text(v) for v in r] for r in rows)
        for r in rows:
            if self._sheet_rows == XLSX_MAX_ROWS:
                self._new_sheet()
            self._sheet.append([_xlsx_value(v) for v in r])
            self._sheet_rows += 1
        parts = []
        for r in rows:
            parts.append(json.dumps(dict(zip(self.names, (_json_value(v) for v in r))), ensure_ascii=False))
        if parts:
            self._json_fh.write(("" if self._json_first else ",") + "\n" + ",\n".join(parts))
            self._json_first = False
        for r in rows:
            rec = etree.Element("record")
            for name, v in zip(self.names, r):
                el = etree.SubElement(rec, name)
                if v is None:
                    el.set("nil", "true")
                else:
                    el.text = text(v)
            self._xml.write(rec)
        self.rows += len(rows)

    def close(self) -> None:
        self._csv_fh.close()
        self._wb.save(self.directory / FILE_NAMES["xlsx"])
        self._json_fh.write("\n]}\n")
        self._json_fh.close()
        self._xml_root.__exit__(None, None, None)
        self._xml_cm.__exit__(None, None, None)

    def abort(self) -> None:
        """Close what is open after a failure (the caller removes the directory)."""
        closers = [self._csv_fh.close, self._json_fh.close,
                   *(ws.close for ws in self._wb.worksheets if hasattr(ws, "close")),
                   lambda: self._xml_root.__exit__(None, None, None),
                   lambda: self._xml_cm.__exit__(None, None, None)]
        for close in closers:
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort after a failure
                pass


# ---------------------------------------------------------------------------------------------------------------
# readers: each returns (field names, rows as tuples of text)

def read_csv(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [tuple(r) for r in reader]


def read_xlsx(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    wb = load_workbook(path, read_only=True)
    header: list[str] = []
    rows: list[tuple[str, ...]] = []
    for ws in wb.worksheets:
        if not (ws.title == "data" or ws.title.startswith("data_")):
            continue
        it = ws.iter_rows(values_only=True)
        header = [str(h) for h in next(it)]
        rows.extend(tuple(text(v) for v in r) for r in it)
    wb.close()
    return header, rows


def read_xml(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    header: list[str] = []
    rows: list[tuple[str, ...]] = []
    for _, rec in etree.iterparse(str(path), tag="record"):
        if not header:
            header = [child.tag for child in rec]
        rows.append(tuple("" if child.get("nil") == "true" else (child.text or "") for child in rec))
        rec.clear()
    return header, rows


def read_json(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    header = [f["name"] for f in doc["fields"]]
    return header, [tuple(text(rec[h]) for h in header) for rec in doc["records"]]


READERS = {"csv": read_csv, "xlsx": read_xlsx, "xml": read_xml, "json": read_json}


def read(fmt: str, path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    return READERS[fmt](path)


def chunks(cursor, size: int) -> Iterator[list[tuple]]:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows
