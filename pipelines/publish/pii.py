"""The PII scan of the privacy review (保密审查): ID-number and phone patterns in rows and in every written file.

The dataset definitions already refuse fields named like a direct identifier (pipelines.publish.datasets); this
scan double-checks the values themselves, so that a definition whose SQL leaks an identifier under an innocent
name blocks its release. It looks for

- 公民身份号码: 18 digits (the last may be X) or the old 15 digits, with a plausible birth date in them;
- mainland mobile numbers (1[3-9] + 9 digits, optionally +86 / 0086 / 86 in front);
- landline numbers with an area code (0 + 2-3 digits, optionally in brackets, then 7-8 digits not starting 0/1);

each not touching another digit. In rows (SQL, PostgreSQL's regular expressions, every column as text) it also
looks for any value equal to a golden person's name, document number, address or residence-permit number (those
cannot be told by a pattern). Reports carry counts and places (file, column, line), never the matched value.

A match inside a long hexadecimal token (a sha256 in the manifest) is not a leak and is skipped.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from psycopg import Connection, sql

# The same expressions run in Python (files) and in PostgreSQL (rows): both accept this syntax (ARE in PG >= 9.6).
PATTERNS: dict[str, str] = {
    "id_number_18": r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
                    r"[0-9]{3}[0-9Xx](?![0-9])",
    "id_number_15": r"(?<![0-9])[1-9][0-9]{7}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}(?![0-9])",
    "mobile_phone": r"(?<![0-9])(?:(?:\+|00)?86[- ]?)?1[3-9][0-9]{9}(?![0-9])",
    "landline_phone": r"(?<![0-9])(?:\(0[0-9]{2,3}\)|0[0-9]{2,3})[- ]?[2-9][0-9]{6,7}(?![0-9])",
}
LABELS = {
    "id_number_18": ("18位公民身份号码", "18-digit citizen ID number"),
    "id_number_15": ("15位公民身份号码", "15-digit citizen ID number"),
    "mobile_phone": ("手机号码", "mobile phone number"),
    "landline_phone": ("固定电话号码", "landline phone number"),
    "identifier_value": ("与人员姓名/证件号码/地址相同的值", "value equal to a person's name, document number or address"),
}
_COMPILED = {name: re.compile(p) for name, p in PATTERNS.items()}
_HEX = frozenset("0123456789abcdefABCDEF")
_CHUNK = 1 << 20
_OVERLAP = 64

# Columns of the golden tables holding direct identifiers, per database: a published value equal to one is a leak.
IDENTIFIER_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "population": ("population.person",
                   ("id_number", "name", "hukou_address", "residence_address", "residence_permit_no")),
}

# Relations that hold no direct identifier (migrations 0008, 0018): the values of a release whose query reads only
# these cannot be a person's name, number or address, so they are not looked up in the golden table (a scan of every
# person per release: the cost of a daily aggregate's review grew with the population).
IDENTIFIER_FREE_RELATIONS = frozenset({"population.resident_cell", "publish_work.district_map"})


def relations_read(conn: Connection, query: sql.Composable, params: dict[str, Any]) -> set[str]:
    """schema.name of every table, view's table or materialised CTE source the query's plan reads (EXPLAIN VERBOSE:
    views are expanded, subqueries and CTEs included)."""
    (plan,) = conn.execute(sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) ") + query, params).fetchone()
    found: set[str] = set()
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Relation Name" in node:
            found.add(f"{node.get('Schema')}.{node['Relation Name']}")
        stack.extend(node.get("Plans", []))
    return found


def _inside_hex_token(text: str, start: int, end: int) -> bool:
    """True when [start, end) lies in a run of >= 32 hex characters that has a letter a-f (a checksum)."""
    lo, hi = start, end
    while lo > 0 and text[lo - 1] in _HEX:
        lo -= 1
    while hi < len(text) and text[hi] in _HEX:
        hi += 1
    run = text[lo:hi]
    return len(run) >= 32 and any(c.isalpha() for c in run)


# Every pattern's match holds a run of at least seven digits and spans at most _REACH characters on either side of
# it (a "+86-" or "(0xxx)-" prefix): only the text around such runs is searched with the patterns. A release file
# of 200,000 records has few or none, so its scan is one pass of this simple expression instead of four passes of
# the patterns with their look-arounds at every character (20 s of the resident sample's release at 1M).
_DIGIT_RUN = re.compile(r"[0-9][0-9][0-9][0-9][0-9][0-9][0-9]+")  # = [0-9]{7,}, spelled out: 3x faster in re
_REACH = 24


# A prefilter for _windows and the file scan: UTF-8 bytes with every ASCII digit mapped to "0" and every other byte to a
# space (a multi-byte UTF-8 sequence has no byte below 0x80, so no other character can turn into a digit): a run of
# seven digits is then a plain substring, found by bytes.find at memchr speed. Most chunks of a release have none
# and skip the expression entirely, which still tries a match at every digit of the text (ages, dates, codes):
# 3.1 -> 1.4 s for the four files of the resident sample's release at 1M (the XLSX's XML decompressed included).
_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_SEVEN_ZEROS = b"0" * 7


def _has_digit_run(data: bytes) -> bool:
    """Does ``data`` (UTF-8) hold a run of seven or more ASCII digits? (the prefilter of _windows, on bytes)"""
    return _SEVEN_ZEROS in data.translate(_DIGITS_TO_ZERO)


def _windows(text: str, prefiltered: bool = False) -> Iterator[tuple[int, int]]:
    """[lo, hi) spans of ``text`` around its runs of seven or more digits, overlapping spans merged.
    ``prefiltered``: the caller has already found such a run in the bytes the text was decoded from."""
    if not prefiltered and not _has_digit_run(text.encode("utf-8", "surrogatepass")):
        return
    lo = hi = -1
    for m in _DIGIT_RUN.finditer(text):
        start, end = max(0, m.start() - _REACH), min(len(text), m.end() + _REACH)
        if start <= hi:
            hi = max(hi, end)
            continue
        if hi >= 0:
            yield lo, hi
        lo, hi = start, end
    if hi >= 0:
        yield lo, hi


def identifier_free(read: set[str] | None) -> bool:
    """Did the query read only relations without identifiers (IDENTIFIER_FREE_RELATIONS)?"""
    return read is not None and read <= IDENTIFIER_FREE_RELATIONS


def scan_text(text: str, prefiltered: bool = False) -> dict[str, list[int]]:
    """pattern name -> character offsets of the matches in ``text`` (checksums skipped)."""
    found: dict[str, list[int]] = {}
    for lo, hi in _windows(text, prefiltered):
        for name, rx in _COMPILED.items():
            for m in rx.finditer(text, lo, hi):
                if not _inside_hex_token(text, m.start(), m.end()):
                    found.setdefault(name, []).append(m.start())
    return {name: sorted(offsets) for name, offsets in found.items()}


def _overlapping(raw) -> Iterator[tuple[bytes, int, int]]:
    """(bytes, bytes before them, newlines before them) of a binary stream read in chunks of _CHUNK bytes that
    overlap by _OVERLAP, so that a match (ASCII, shorter than the overlap) is never cut in two; memory stays one
    chunk whatever the file. A chunk may begin or end inside a character: its bytes there decode to escapes
    (``surrogateescape``), never to a digit, and the overlap gives the whole character to the next chunk."""
    tail, before, lines = b"", 0, 0  # before, lines: ahead of the start of ``tail``
    while block := raw.read(_CHUNK):
        data = tail + block
        yield data, before, lines
        tail = data[-_OVERLAP:]
        before += len(data) - len(tail)
        lines += data.count(b"\n") - tail.count(b"\n")


def _chunks(path: Path) -> Iterator[tuple[str, bytes, int, int]]:
    """(part name, bytes, bytes and newlines before them) of a written file: an XLSX part by part (its XML, each
    streamed out of the zip), anything else as it is (a UTF-8 BOM dropped). A worksheet of a record-level release
    is hundreds of MB of XML: read whole, it was the publication's memory peak at 4M residents (928 MB)."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                with zf.open(member) as raw:
                    for data, before, lines in _overlapping(raw):
                        yield member, data, before, lines
        return
    with path.open("rb") as raw:
        if raw.read(3) != b"\xef\xbb\xbf":
            raw.seek(0)
        for data, before, lines in _overlapping(raw):
            yield "", data, before, lines


def scan_file(path: Path) -> list[dict[str, Any]]:
    """Hits in one file: [{file, part, pattern, count, first_line}], no values.

    The file is scanned as bytes: a chunk without a run of seven digits (nearly every chunk of a release) is
    never decoded — decoding every chunk to text and encoding it again for that test was most of the scan
    (0.7 s of the resident sample's release at 1M). A chunk with one is decoded and searched with the patterns;
    a match is placed by its byte offset in the file (or XLSX part), which the overlap of two chunks finds twice."""
    hits: dict[tuple[str, str], dict[str, Any]] = {}
    seen: set[tuple[str, str, int]] = set()
    for part, data, before, lines in _chunks(path):
        if not _has_digit_run(data):
            continue
        text = data.decode("utf-8", "surrogateescape")
        for name, offsets in scan_text(text, prefiltered=True).items():
            for off in offsets:
                at = before + len(text[:off].encode("utf-8", "surrogateescape"))
                key = (part, name, at)  # (the overlap of two chunks finds a match twice)
                if key in seen:
                    continue
                seen.add(key)
                hit = hits.setdefault((part, name), {"file": path.name, "part": part or None, "pattern": name,
                                                     "count": 0, "first_line": lines + text.count("\n", 0, off) + 1})
                hit["count"] += 1
    return list(hits.values())


def scan_document(name: str, text: str) -> list[dict[str, Any]]:
    """Hits in a document about to be written (e.g. a manifest): [{file, part, pattern, count, first_line}]."""
    return [{"file": name, "part": None, "pattern": pattern, "count": len(offsets),
             "first_line": text.count("\n", 0, offsets[0]) + 1}
            for pattern, offsets in scan_text(text).items()]


def scan_files(paths: list[Path]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in paths:
        out.extend(scan_file(p))
    return out


def scan_rows(conn: Connection, table: sql.Composable, columns: list[str], database: str,
              read: set[str] | None = None) -> list[dict[str, Any]]:
    """Hits in the rows of ``table`` (a build table): per column and pattern the number of rows, no values.

    ``read``: the relations the table's query read (relations_read); when all are IDENTIFIER_FREE_RELATIONS the
    values are not looked up among the persons' identifiers (None: they are)."""
    if not columns:
        return []
    values = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {name} AS col, b.{c}::text AS val FROM {t} b WHERE b.{c} IS NOT NULL").format(
            name=sql.Literal(col), c=sql.Identifier(col), t=table)
        for col in columns
    )
    # The patterns are tested once per distinct value of a column, each value counting for the rows that hold it: a
    # release's columns hold few distinct values (codes, labels, bands), and the regular expressions were the cost
    # (every pattern on every row's every column: 2.1 s of a 196k-row record-level sample's review at 1M residents)
    exprs, keys = [], []
    for col in columns:
        for name, pattern in PATTERNS.items():
            exprs.append(sql.SQL("coalesce(sum(d.n) FILTER (WHERE d.col = {name} AND d.val ~ {p}), 0)").format(
                name=sql.Literal(col), p=sql.Literal(pattern)))
            keys.append((col, name))
    counts = conn.execute(sql.SQL(
        "SELECT {} FROM (SELECT bv.col, bv.val, count(*) AS n FROM ({}) bv GROUP BY bv.col, bv.val) d"
    ).format(sql.SQL(", ").join(exprs), values)).fetchone()
    hits = [{"column": col, "pattern": name, "rows": int(n)} for (col, name), n in zip(keys, counts) if n]
    if database in IDENTIFIER_COLUMNS and not identifier_free(read):
        # Values of the release that are a person's identifier in the source database. The release's distinct
        # values (few: codes, labels, counts; tens of thousands at most for a record-level sample) are read first;
        # the source table is then scanned once with each identifier column tested against them as a constant
        # array (PostgreSQL hashes it), so only the rows that hit come back, and the scan can run in parallel
        # workers. (Was: every person's identifiers turned into rows by a LATERAL VALUES and joined to a
        # materialised CTE, which kept the scan in one process: 4 s per release at 4M residents.) The rows per
        # release column are then counted from the values that hit.
        source, ident_cols = IDENTIFIER_COLUMNS[database]
        src = sql.Identifier(*source.split("."))
        (distinct,) = conn.execute(sql.SQL("SELECT array_agg(DISTINCT val) FROM ({}) bv").format(values)).fetchone()
        if not distinct:
            return hits
        vals = sql.Literal(distinct)  # a constant, so that the planner hashes it and workers can share the scan
        ident = [sql.SQL("s.{}::text").format(sql.Identifier(c)) for c in ident_cols]
        rows = conn.execute(sql.SQL("SELECT {cols} FROM {s} s WHERE {any}").format(
            cols=sql.SQL(", ").join(ident), s=src,
            any=sql.SQL(" OR ").join(sql.SQL("{} = ANY({}::text[])").format(i, vals) for i in ident),
        )).fetchall()
        wanted = set(distinct)
        hit_values = sorted({v for row in rows for v in row if v in wanted})
        found: dict[str, int] = {}
        if hit_values:
            found = dict(conn.execute(
                sql.SQL("SELECT bv.col, count(*) FROM ({}) bv WHERE bv.val = ANY(%s) GROUP BY bv.col").format(values),
                (hit_values,)).fetchall())
        hits.extend({"column": col, "pattern": "identifier_value", "rows": found[col]}
                    for col in columns if found.get(col))
    return hits
