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
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree
from openpyxl import load_workbook

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


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def _column_letters(n: int) -> str:
    letters = ""
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _xlsx_cell(ref: str, value: Any) -> str:
    """One cell of a worksheet row (a NULL is an empty cell, as Excel writes a blank)."""
    if value is None:
        return f'<c r="{ref}"/>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if isinstance(value, (float, Decimal)):
        return f'<c r="{ref}"><v>{float(value)!r}</v></c>'
    if isinstance(value, (date, datetime)):
        value = value.isoformat()
    value = _XML_ILLEGAL.sub("\ufffd", str(value)).translate(_XML_ESCAPE)
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{value}</t></is></c>'


class XlsxWriter:
    """An Office Open XML workbook (SpreadsheetML) streamed row by row into its zip: each worksheet's XML is
    written as its rows arrive (inline strings, typed numbers and booleans), and the workbook parts at close.

    Five times faster than openpyxl's write-only mode, which builds an element per cell: the XLSX was half of the
    record-level release's time. Read back by openpyxl (exports.read_xlsx) in the tests, as Excel and LibreOffice
    read it. Sheets are written one after the other (a zip takes one open member at a time)."""

    def __init__(self, path: Path):
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self._sheets: list[str] = []
        self._fh = None
        self._row = 0
        self._letters: list[str] = []

    def new_sheet(self, title: str) -> None:
        self._end_sheet()
        self._sheets.append(title)
        self._fh = self._zip.open(f"xl/worksheets/sheet{len(self._sheets)}.xml", "w", force_zip64=True)
        self._fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_NS}">'
                       "<sheetData>".encode())
        self._row = 0

    def append_rows(self, rows: Iterable[Iterable[Any]]) -> None:
        parts = []
        row = self._row
        letters = self._letters
        for r in rows:
            row += 1
            if len(r) > len(letters):
                letters = self._letters = [_column_letters(i) for i in range(1, len(r) + 1)]
            n = str(row)
            parts.append(f'<row r="{n}">' + "".join([_xlsx_cell(c + n, v) for c, v in zip(letters, r)]) + "</row>")
        self._row = row
        self._fh.write("".join(parts).encode("utf-8"))

    def _end_sheet(self) -> None:
        if self._fh is not None:
            self._fh.write(b"</sheetData></worksheet>")
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        self._end_sheet()
        n = len(self._sheets)
        head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        sheets = "".join(f'<sheet name="{t.translate(_XML_ESCAPE)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, t in enumerate(self._sheets, 1))
        parts = {
            "[Content_Types].xml": (
                '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                'spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                'spreadsheetml.styles+xml"/>'
                + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                          'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
                + "</Types>"),
            "_rels/.rels": (
                f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/officeDocument" '
                'Target="xl/workbook.xml"/></Relationships>'),
            "xl/workbook.xml": f'<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>{sheets}</sheets></workbook>',
            "xl/_rels/workbook.xml.rels": (
                f'<Relationships xmlns="{_PKG_REL}">'
                + "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                          for i in range(1, n + 1))
                + f'<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'),
            "xl/styles.xml": (
                f'<styleSheet xmlns="{_NS}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
                '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
                'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/>'
                '<diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
                'borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
                'borderId="0" xfId="0"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" '
                'builtinId="0"/></cellStyles></styleSheet>'),
        }
        for name, xml in parts.items():
            self._zip.writestr(name, head + xml)
        self._zip.close()

    def abort(self) -> None:
        try:
            if self._fh is not None:
                self._fh.close()
        finally:
            self._zip.close()


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
        self._xlsx = XlsxWriter(directory / FILE_NAMES["xlsx"])
        self._sheet_no = 0
        self._sheet_rows = 0
        self._new_sheet()
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
        self._xlsx.new_sheet("data" if self._sheet_no == 1 else f"data_{self._sheet_no}")
        self._xlsx.append_rows([self.names])
        self._sheet_rows = 0

    def write(self, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        self._csv.writerows([text(v) for v in r] for r in rows)
        start = 0
        while start < len(rows):
            if self._sheet_rows == XLSX_MAX_ROWS:
                self._new_sheet()
            part = rows[start:start + XLSX_MAX_ROWS - self._sheet_rows]
            self._xlsx.append_rows(part)
            self._sheet_rows += len(part)
            start += len(part)
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
        self._xlsx.new_sheet("fields")  # after the data sheets: the field descriptions
        self._xlsx.append_rows([["name", "type", "label_zh", "description"],
                                *([f.name, f.type, f.label_zh, f.description] for f in self.fields)])
        self._xlsx.close()
        self._json_fh.write("\n]}\n")
        self._json_fh.close()
        self._xml_root.__exit__(None, None, None)
        self._xml_cm.__exit__(None, None, None)

    def abort(self) -> None:
        """Close what is open after a failure (the caller removes the directory)."""
        closers = [self._csv_fh.close, self._json_fh.close, self._xlsx.abort,
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
