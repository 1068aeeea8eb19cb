"""File drops: ``<landing>/<department>/<dataset>/<YYYY-MM-DD>/*.<csv|xlsx|xml>``, read as streams.

* CSV: the csv module over a decoded text stream in the source's encoding (a header row names the fields); a row
  whose field count differs from the header's is kept raw (``{"_raw": line}``) with a parse error.
* XLSX: first sheet, first row is the header; cell values rendered as text. openpyxl's reader reads the workbook's
  parts (:func:`open_first_sheet`), lxml's iterparse the sheet's rows (:func:`sheet_rows`).
* XML: ``lxml.etree.iterparse`` over ``<records><record_tag><field>value</field>…</record_tag></records>``; entities
  are not resolved and nothing is fetched from the network.

Every reader yields :class:`~pipelines.sources.records.Record` objects one at a time and raises
:class:`EmptyFile` (no data rows) or :class:`MalformedFile` (cannot be read at all). A malformed file may be
detected after some of its rows were yielded (an XML error near the end, a byte that is not in the encoding): the
staging loader reads each file inside a savepoint and rolls the file back, so a file is staged all-or-nothing while
still being read in bounded memory.
"""

from __future__ import annotations

import csv
import hashlib
import re
import zipfile
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from lxml import etree

from pipelines.registry import Source
from pipelines.sources.records import (
    Chunk,
    EmptyFile,
    MalformedFile,
    Record,
    RecordBuilder,
    chunked,
    drop_day_start,
)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HASH_BLOCK = 1 << 20

# GBK is a subset of GB18030 (the national standard, mandatory since 2006): decoding a GBK file as GB18030 gives
# the same text and also keeps rare name characters (生僻字) that only GB18030 can encode.
_ENCODING_ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030"}


@dataclass(frozen=True)
class DropFile:
    path: Path        # absolute path on disk
    relpath: str      # relative to the landing dir, POSIX separators: '<dept>/<dataset>/<YYYY-MM-DD>/<name>'
    drop_date: date   # the date folder

    @property
    def origin(self) -> str:
        return f"landing/{self.relpath}"


def discover_files(source: Source, landing_dir: Path, before: date) -> list[DropFile]:
    """Files of ``source`` in date folders strictly before ``before``, sorted by path (the staging order).

    Only names ending in the registered format's extension are taken (so ``.part``/``.tmp`` uploads and marker
    files are ignored); folders whose name is not a YYYY-MM-DD date are ignored.
    """
    base = landing_dir / source.department / (source.dataset or "")
    if not base.is_dir():
        return []
    suffix = f".{source.format}"
    found: list[DropFile] = []
    for folder in base.iterdir():
        if not folder.is_dir() or not _DAY.match(folder.name):
            continue
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if day >= before:
            continue
        for f in folder.iterdir():
            if f.is_file() and not f.name.startswith(".") and f.name.lower().endswith(suffix):
                found.append(DropFile(f, f.relative_to(landing_dir).as_posix(), day))
    return sorted(found, key=lambda d: d.relpath)


def file_digest(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes), read in blocks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _is_blank_file(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return True
    if size <= 64:
        return path.read_bytes().strip(b" \t\r\n\xef\xbb\xbf") == b""
    return False


# --- CSV -------------------------------------------------------------------------------------------------------


class _LineTap:
    """Feeds the csv reader line by line and remembers the lines of the current record (its raw text)."""

    def __init__(self, stream):
        self._stream = stream
        self.lines: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._stream)
        self.lines.append(line)
        return line

    def take(self) -> str:
        raw = "".join(self.lines)
        self.lines.clear()
        return raw.rstrip("\r\n")


def _check_header(header: list[str], where: str) -> None:
    seen = set()
    for i, name in enumerate(header, 1):
        if name is None or name == "":
            raise MalformedFile(f"{where}: blank header in column {i}")
        if name in seen:
            raise MalformedFile(f"{where}: header names column {name!r} twice")
        seen.add(name)


def read_csv(source: Source, drop: DropFile) -> Iterator[Record]:
    return _records(source, drop, _csv_items)


def _csv_items(source: Source, drop: DropFile, builder: RecordBuilder, fallback: datetime) -> Iterator[_Item]:
    encoding = _ENCODING_ALIASES.get(source.encoding.lower(), source.encoding)
    rows = 0
    try:
        with drop.path.open("r", encoding=encoding, newline="") as stream:
            tap = _LineTap(stream)
            reader = csv.reader(tap, strict=True)  # bad quoting is a malformed row, not a guess
            header: list[str] | None = None
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    if header is None:
                        raise MalformedFile(f"header line {start}: {exc}") from exc
                    rows += 1
                    yield builder.malformed(tap.take(), f"{drop.origin}:{start}", f"CSV: {exc}", fallback)
                    continue
                raw = tap.take()
                if not row or (len(row) == 1 and row[0].strip() == ""):
                    continue  # blank line
                if header is None:
                    header = row
                    _check_header(header, f"header line {start}")
                    continue
                origin = f"{drop.origin}:{start}"
                rows += 1
                if len(row) != len(header):
                    yield builder.malformed(
                        raw, origin, f"expected {len(header)} fields, got {len(row)}", fallback
                    )
                else:
                    yield dict(zip(header, row)), origin
    except UnicodeDecodeError as exc:
        raise MalformedFile(f"not {source.encoding} text: {exc}") from exc
    if rows == 0:
        raise EmptyFile("no data rows" if header is not None else "no header")


# --- XLSX ------------------------------------------------------------------------------------------------------


def cell_text(value: Any) -> str | None:
    """An XLSX cell as text: numbers without a spurious '.0', dates as ISO (a midnight datetime as its date)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def read_xlsx(source: Source, drop: DropFile) -> Iterator[Record]:
    if drop.path.stat().st_size == 0:
        raise EmptyFile("0 bytes")
    fallback = drop_day_start(drop.drop_date)
    sheet = open_first_sheet(drop.path)
    builder = RecordBuilder(source)
    rows = 0
    try:
        if sheet.target is None:
            raise EmptyFile("no sheet")
        header: list[str] | None = None
        try:
            for line, values in sheet_rows(sheet):
                texts = [cell_text(v) for v in values]
                if all(t is None or t == "" for t in texts):
                    continue  # blank row
                if header is None:
                    while texts and texts[-1] is None:
                        texts.pop()
                    header = texts
                    _check_header(header, f"header row {line}")
                    continue
                rows += 1
                origin = f"{drop.origin}:{line}"
                extra = texts[len(header):]
                if any(t not in (None, "") for t in extra):
                    yield builder.malformed(
                        texts, origin, f"expected {len(header)} cells, got {len(texts)}", fallback
                    )
                    continue
                texts = texts[: len(header)] + [None] * (len(header) - len(texts))
                yield builder.build(dict(zip(header, texts)), origin, fallback)
        except (zipfile.BadZipFile, KeyError, IndexError, TypeError, etree.XMLSyntaxError, ValueError) as exc:
            raise MalformedFile(f"XLSX sheet not readable: {exc}") from exc
    finally:
        sheet.archive.close()
    if rows == 0:
        raise EmptyFile("no data rows" if header is not None else "no header")


@dataclass
class Sheet:
    """The first worksheet of a workbook and what its cells' values depend on."""
    archive: zipfile.ZipFile
    target: str | None            # the worksheet's part in the archive; None: the workbook has no worksheet
    strings: list[str]            # the shared strings
    dates: Container[int]         # the cell formats (style ids) that show a number as a date or time ...
    durations: Container[int]     # ... or as a duration
    epoch: datetime               # 1899-12-30 or 1904-01-01


def open_first_sheet(path: Path) -> Sheet:
    """Open a workbook's parts the way ``openpyxl.load_workbook(read_only=True, data_only=True)`` does — content
    types, shared strings, workbook (sheets, 1904 epoch), styles — without what load_workbook adds: its read-only
    worksheets measure every sheet's size on opening by parsing the whole sheet when it has no ``<dimension>``
    (openpyxl's own writer and many others write none), 0.57 s of a simulated 8,000-row drop read twice.
    Raises MalformedFile for what is not a workbook."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import apply_stylesheet
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        reader = ExcelReader(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise MalformedFile(f"not an XLSX workbook: {exc}") from exc
    try:
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        target = next((rel.target for _sheet, rel in reader.parser.find_sheets()  # (as wb.worksheets[0])
                       if rel.target in reader.valid_files and "chartsheet" not in rel.Type), None)
        wb = reader.wb
        return Sheet(reader.archive, target, reader.shared_strings, wb._date_formats, wb._timedelta_formats,
                     wb.epoch)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, TypeError, ValueError,
            etree.XMLSyntaxError) as exc:  # (openpyxl's TypeError: a part whose attributes are not what it expects)
        reader.archive.close()
        raise MalformedFile(f"not an XLSX workbook: {exc}") from exc


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _CELL_VALUE, _INLINE, _TEXT = _MAIN + "row", _MAIN + "v", _MAIN + "is", _MAIN + "t"
_COORDINATE = re.compile(r"([^0-9]*)(.*)", re.DOTALL)  # a cell reference: its letters, then from the first digit


def sheet_rows(sheet: Sheet) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number, cell values) of the sheet, the values exactly as openpyxl's read-only
    ``iter_rows(values_only=True)`` gives them after ``reset_dimensions()``, empty rows left out.

    openpyxl reads each cell into a dict, then a tuple, in Python; here lxml's iterparse walks the rows and only
    each cell's value is made (with open_first_sheet: 2.7 → 0.9 CPU s for a simulated 8,000-row 外国人 drop).
    A property test (tests/unit/test_sources_parse.py) compares the two on random and hand-written workbooks."""
    from openpyxl.cell.text import Text
    from openpyxl.utils.cell import column_index_from_string, coordinate_to_tuple
    from openpyxl.utils.datetime import from_excel, from_ISO8601

    strings, dates, durations, epoch = sheet.strings, sheet.dates, sheet.durations, sheet.epoch
    columns: dict[str, int] = {}  # letters -> column, filled only from references split and checked below
    expected = 1  # openpyxl's counter: a row numbered below it (out of order, repeated) is skipped
    number = 0
    with sheet.archive.open(sheet.target) as stream:
        for _event, row in etree.iterparse(stream, events=("end",), tag=_ROW, resolve_entities=False,
                                           no_network=True, load_dtd=False, huge_tree=False):
            r = row.get("r")
            if r is None:
                number += 1
                suffix = None
            else:
                try:
                    number = int(r)
                except ValueError:
                    as_float = float(r)
                    if not as_float.is_integer():
                        raise ValueError(f"{r} is not a valid row number") from None
                    number = int(as_float)
                suffix = r if r.isascii() and r.isdigit() else None  # what every cell reference of the row ends with
            cells: list[tuple[int, Any]] = []
            column = 0
            for c in row:
                ref = c.get("r")
                if ref:
                    # 'AB12' in row '12': the letters are a known column (the cache holds only checked letters)
                    column = columns.get(ref[:-len(suffix)]) if suffix and ref.endswith(suffix) else None
                    if column is None:
                        letters, digits = _COORDINATE.match(ref).groups()
                        if digits.isascii() and digits.isdigit():
                            column = columns[letters] = column_index_from_string(letters)
                        else:  # anything else as openpyxl reads it, its ValueError included
                            column = coordinate_to_tuple(ref)[1]
                else:
                    column += 1
                kind = c.get("t", "n")
                if kind == "inlineStr":
                    inline = c.find(_INLINE)
                    if inline is None:
                        value = None
                    elif len(inline) == 1 and inline[0].tag == _TEXT and not len(inline[0]):
                        value = inline[0].text or ""  # (Text.content of one plain <t>)
                    else:
                        value = Text.from_tree(inline).content
                else:
                    value = c.findtext(_CELL_VALUE, None) or None
                    if value is not None:
                        if kind == "n":
                            value = float(value) if ("." in value or "E" in value or "e" in value) else int(value)
                            style = c.get("s", 0)
                            if style:
                                style = int(style)
                            if style in dates:  # (no style is style 0, as openpyxl reads it)
                                try:
                                    value = from_excel(value, epoch, timedelta=style in durations)
                                except (OverflowError, ValueError):
                                    value = "#VALUE!"  # (openpyxl's error value for a date out of range)
                        elif kind == "s":
                            value = strings[int(value)]
                        elif kind == "b":
                            value = bool(int(value))
                        elif kind == "d":
                            value = from_ISO8601(value)
                cells.append((column, value))
            row.clear(keep_tail=False)
            while row.getprevious() is not None:
                del row.getparent()[0]
            if number < expected:
                continue
            expected = number + 1
            if not cells:
                continue
            width = cells[-1][0]
            values = [None] * width
            for col, value in cells:
                if 1 <= col <= width:
                    values[col - 1] = value
            yield number, tuple(values)


# --- XML -------------------------------------------------------------------------------------------------------


def read_xml(source: Source, drop: DropFile) -> Iterator[Record]:
    return _records(source, drop, _xml_items)


def _xml_items(source: Source, drop: DropFile, builder: RecordBuilder, fallback: datetime) -> Iterator[_Item]:
    if _is_blank_file(drop.path):
        raise EmptyFile("0 bytes" if drop.path.stat().st_size == 0 else "blank")
    tag = source.record_tag or "record"
    rows = 0
    local: dict[str, str] = {}  # element tag -> its local name (a few field tags repeat in every record)
    context = etree.iterparse(
        str(drop.path), events=("end",), tag=(tag, "{*}" + tag),
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
    )
    try:
        for _event, elem in context:
            rows += 1
            origin = f"{drop.origin}:{elem.sourceline}"
            payload: dict[str, str] = {}
            problem = None
            for child in elem:
                if not isinstance(child.tag, str):
                    continue  # comment or processing instruction
                name = local.get(child.tag)
                if name is None:
                    name = local[child.tag] = etree.QName(child).localname
                if len(child):
                    problem = f"element <{name}> has child elements"
                elif name in payload:
                    problem = f"element <{name}> appears twice"
                text = child.text
                payload[name] = "" if text is None else text
            if problem:
                raw = etree.tostring(elem, encoding="unicode", with_tail=False)
                yield builder.malformed(raw, origin, problem, fallback)
            else:
                yield payload, origin
            elem.clear(keep_tail=False)
            while elem.getprevious() is not None:
                del elem.getparent()[0]
    except etree.XMLSyntaxError as exc:
        raise MalformedFile(f"XML not well-formed: {exc}") from exc
    finally:
        del context
    if rows == 0:
        raise EmptyFile(f"no <{tag}> elements")


_READERS = {"csv": read_csv, "xlsx": read_xlsx, "xml": read_xml}


def read_drop(source: Source, drop: DropFile) -> Iterator[Record]:
    """The records of one dropped file, by the source's registered format."""
    try:
        reader = _READERS[source.format or ""]
    except KeyError:
        raise ValueError(f"source {source.id}: no reader for format {source.format!r}") from None
    return reader(source, drop)


def read_drop_chunks(source: Source, drop: DropFile, chunk_rows: int) -> Iterator[Chunk | list[Record]]:
    """The records of one dropped file in chunks of at most ``chunk_rows``: a CSV or XML file's as
    :class:`Chunk` objects (its well-formed rows built column by column, :meth:`RecordBuilder.text_chunk`), an
    XLSX workbook's as lists of records."""
    items = _ITEMS.get(source.format or "")
    if items is None:
        return chunked(read_drop(source, drop), chunk_rows)
    return _item_chunks(source, drop, items, chunk_rows)


# --- rows as items -----------------------------------------------------------------------------------------------

# What the CSV and XML readers yield per row: a well-formed row's payload and origin, or a malformed row's record
_Item = tuple[dict[str, str], str] | Record
_ItemReader = Callable[[Source, DropFile, RecordBuilder, datetime], Iterator[_Item]]


def _records(source: Source, drop: DropFile, items: _ItemReader) -> Iterator[Record]:
    """The records of a file whose reader yields items, one at a time."""
    fallback = drop_day_start(drop.drop_date)
    builder = RecordBuilder(source)
    for item in items(source, drop, builder, fallback):
        yield item if type(item) is Record else builder.build(item[0], item[1], fallback)


def _item_chunks(source: Source, drop: DropFile, items: _ItemReader, chunk_rows: int) -> Iterator[Chunk]:
    """Chunks of a file whose reader yields items: each run of well-formed rows built at once, the malformed rows'
    records between them, joined in the file's order."""
    fallback = drop_day_start(drop.drop_date)
    builder = RecordBuilder(source)
    for group in chunked(items(source, drop, builder, fallback), chunk_rows):
        parts: list[Chunk] = []
        start = 0
        for at, item in enumerate(group):
            if type(item) is Record:
                if at > start:
                    parts.append(_text_part(builder, group[start:at], fallback))
                parts.append(Chunk.of_records([item]))
                start = at + 1
        if start < len(group):
            parts.append(_text_part(builder, group[start:] if start else group, fallback))
        yield Chunk.concat(parts)


def _text_part(builder: RecordBuilder, items: list[tuple[dict[str, str], str]], fallback: datetime) -> Chunk:
    """A run of well-formed rows of a CSV or XML file, built at once: their payloads map text to text (the
    header's or the elements' names to the fields' texts), as :meth:`RecordBuilder.text_chunk` is told."""
    payloads, origins = map(list, zip(*items))
    return builder.text_chunk(payloads, origins, None, fallback, texts=True)


_ITEMS: dict[str, _ItemReader] = {"csv": _csv_items, "xml": _xml_items}
