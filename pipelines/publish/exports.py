"""The release files: data.csv (UTF-8 with BOM), data.xlsx, data.xml and data.json, written in one pass over the
rows in chunks (bounded memory), and readers that parse each back to the same rows (tests, checks).

Values are written in one textual form in every format (the CSV's): empty for NULL, ``true``/``false``, ISO dates,
integers in decimal. The XLSX keeps numbers and booleans typed (Excel sums them) and dates as ISO text; XML marks
NULL with ``nil="true"``; JSON uses null, numbers and booleans. ``read_*`` return lists of tuples of that textual
form, so the four files can be compared with each other and with the table.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

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
_XML_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})  # (a raw CR would read back as LF)
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def _xlsx_cell(value: Any) -> str:
    """One cell of a worksheet row, placed by its position in the row (the optional ``r`` reference left out, so
    that a row's cells do not depend on its number); a NULL is an empty cell, as Excel writes a blank."""
    if value is None:
        return "<c/>"
    if isinstance(value, bool):
        return f'<c t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int):
        return f"<c><v>{value}</v></c>"
    if isinstance(value, (float, Decimal)):
        return f"<c><v>{float(value)!r}</v></c>"
    if isinstance(value, (date, datetime)):
        value = value.isoformat()
    value = _xml_text(str(value))
    space = ' xml:space="preserve"' if value[:1].isspace() or value[-1:].isspace() else ""
    return f'<c t="inlineStr"><is><t{space}>{value}</t></is></c>'


def xlsx_cells(values: Iterable[Any]) -> str:
    """The cells of one worksheet row."""
    return "".join([_xlsx_cell(v) for v in values])


def _xml_text(value: str) -> str:
    """Text escaped for XML content; characters XML cannot hold become U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", value).translate(_XML_ESCAPE)


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

    def new_sheet(self, title: str) -> None:
        self._end_sheet()
        self._sheets.append(title)
        self._fh = self._zip.open(f"xl/worksheets/sheet{len(self._sheets)}.xml", "w", force_zip64=True)
        self._fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_NS}">'
                       "<sheetData>".encode())
        self._row = 0

    def append_rows(self, rows: Iterable[Iterable[Any]]) -> None:
        self.append_cells([xlsx_cells(r) for r in rows])

    def append_cells(self, rows: list[str]) -> None:
        """Rows given as their cells' XML (xlsx_cells), numbered here."""
        first = self._row + 1
        self._row += len(rows)
        self._fh.write("".join([f'<row r="{n}">{cells}</row>' for n, cells in enumerate(rows, first)]).encode())

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


# Rows whose serialised forms are remembered, per release (see Writers.write).
MEMO_ROWS = 50_000


class Writers:
    """The four writers of one release, fed chunk by chunk.

    Each distinct row is serialised once for every format and remembered (up to MEMO_ROWS of them): a record-level
    release of generalised values repeats a few hundred distinct rows (the resident sample: 200,000 records at 1M
    residents), which were serialised four times each, value by value — most of that release's time. The XML is
    written as text too (escaped as the XLSX's inline strings are), not built element by element."""

    def __init__(self, directory: Path, fields: list[Field], meta: dict[str, Any]):
        self.directory = directory
        self.fields = fields
        self.names = [f.name for f in fields]
        self.rows = 0
        self._memo: dict[tuple, tuple[str, str, str, str]] = {}
        # equal rows must have one spelling: numbers do not (Decimal('1.0') == Decimal('1'), written 1.0 and 1)
        self._memo_rows = 0 if any(f.type == "number" for f in fields) else MEMO_ROWS
        self._csv_fh = (directory / FILE_NAMES["csv"]).open("w", encoding="utf-8-sig", newline="")
        self._csv_line = _CsvLine()
        self._csv_fh.write(self._csv_line(self.names))
        self._xlsx = XlsxWriter(directory / FILE_NAMES["xlsx"])
        self._sheet_no = 0
        self._sheet_rows = 0
        self._new_sheet()
        self._json_fh = (directory / FILE_NAMES["json"]).open("w", encoding="utf-8")
        head = {**meta, "fields": [f.as_dict() for f in fields]}
        self._json_fh.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "records": [')
        self._json_first = True
        self._json_keys = [json.dumps(n, ensure_ascii=False) + ": " for n in self.names]
        self._xml_fh = (directory / FILE_NAMES["xml"]).open("w", encoding="utf-8")
        attrs = "".join(f' {k}="{_xml_attr(text(v))}"' for k, v in meta.items() if not isinstance(v, list))
        self._xml_fh.write(f"<?xml version='1.0' encoding='utf-8'?>\n<dataset{attrs}>")

    def _new_sheet(self) -> None:
        self._sheet_no += 1
        self._xlsx.new_sheet("data" if self._sheet_no == 1 else f"data_{self._sheet_no}")
        self._xlsx.append_rows([self.names])
        self._sheet_rows = 0

    def _serialise(self, row: tuple) -> tuple[str, str, str, str]:
        """(CSV line, XLSX cells, JSON object, XML record) of one row."""
        json_obj = "{" + ", ".join([k + json.dumps(_json_value(v), ensure_ascii=False)
                                    for k, v in zip(self._json_keys, row)]) + "}"
        xml = "<record>" + "".join([f'<{n} nil="true"/>' if v is None else f"<{n}>{_xml_text(text(v))}</{n}>"
                                    for n, v in zip(self.names, row)]) + "</record>"
        return self._csv_line([text(v) for v in row]), xlsx_cells(row), json_obj, xml

    def write(self, rows: Iterable[tuple]) -> None:
        memo, serialise = self._memo, self._serialise
        out = []
        for r in rows:
            forms = memo.get(r)
            if forms is None:
                forms = serialise(r)
                if len(memo) < self._memo_rows:
                    memo[r] = forms
            out.append(forms)
        if not out:
            return
        csv_lines, cells, objects, records = zip(*out)
        self._csv_fh.write("".join(csv_lines))
        start = 0
        while start < len(cells):
            if self._sheet_rows == XLSX_MAX_ROWS:
                self._new_sheet()
            part = list(cells[start:start + XLSX_MAX_ROWS - self._sheet_rows])
            self._xlsx.append_cells(part)
            self._sheet_rows += len(part)
            start += len(part)
        self._json_fh.write(("" if self._json_first else ",") + "\n" + ",\n".join(objects))
        self._json_first = False
        self._xml_fh.write("".join(records))
        self.rows += len(out)

    def close(self) -> None:
        self._csv_fh.close()
        self._xlsx.new_sheet("fields")  # after the data sheets: the field descriptions
        self._xlsx.append_rows([["name", "type", "label_zh", "description"],
                                *([f.name, f.type, f.label_zh, f.description] for f in self.fields)])
        self._xlsx.close()
        self._json_fh.write("\n]}\n")
        self._json_fh.close()
        self._xml_fh.write("</dataset>")
        self._xml_fh.close()

    def abort(self) -> None:
        """Close what is open after a failure (the caller removes the directory)."""
        for close in (self._csv_fh.close, self._json_fh.close, self._xlsx.abort, self._xml_fh.close):
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort after a failure
                pass


class _CsvLine:
    """One CSV line (RFC 4180 quoting, CRLF) as a string, by the csv module's writer."""

    def __init__(self):
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\r\n")

    def __call__(self, values: list[str]) -> str:
        self._buf.seek(0)
        self._buf.truncate()
        self._writer.writerow(values)
        return self._buf.getvalue()


def _xml_attr(value: str) -> str:
    return _xml_text(value).replace('"', "&quot;")


# ---------------------------------------------------------------------------------------------------------------
# readers: each returns (field names, rows as tuples of text)

def read_csv(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [tuple(r) for r in reader]


def read_xlsx(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    # (imported here: the writers do not need openpyxl, and importing it was 0.15 s of every publish task's start)
    from openpyxl import load_workbook

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
