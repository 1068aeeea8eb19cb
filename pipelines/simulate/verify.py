"""Reading back what the simulator wrote, as a consumer would, and naming each row's planted defect from the data
alone — an independent check of the manifest (python-stdnum is the oracle for the identity rules).

``read_output(source, path)`` parses one file / API file (CSV in the registry's encoding, XLSX, XML, JSON lines)
into rows (dicts with the source's own column names; a CSV line with the wrong number of fields is
``{"_malformed": line}``). ``classify(source, rows, psb=None)`` returns the defect counter of every row (None when
clean) following the rules the generator promises (one defect per row, duplicates right after their original).
``psb`` (person evidence from psb's rows) lets it tell NO_ID_MATCHABLE from REVIEW_AMBIGUOUS_MATCH and find the
hrss conflicts; without it those rows are reported as ``NO_ID`` / not checked.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from stdnum.cn import ric

from pipelines.registry import Source
from pipelines.simulate import vocab

CURRENT = {str(c) for c, _, _, _ in vocab.DISTRICTS}
RETIRED_FIELD = {str(v) for v in vocab.RETIRED_FOR_CURRENT.values()}
SUCCESSOR = {str(v): str(k) for k, v in vocab.RETIRED_FOR_CURRENT.items()}
RETIRED_ID = {str(c) for c in vocab.RETIRED_ID_CODES}
OTHER_PROVINCE = {str(c) for c, _, _ in vocab.OTHER_ID_CODES}


def read_output(source: Source, path: Path) -> list[dict]:
    path = Path(path)
    data = path.read_bytes()
    if source.kind == "api":
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    if not data:
        return []
    if source.format == "csv":
        text = data.decode(source.encoding)
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        rows = []
        for rec in reader:
            if len(rec) != len(header):
                rows.append({"_malformed": ",".join(rec)})
            else:
                rows.append(dict(zip(header, rec)))
        return rows
    if source.format == "xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True)
        try:
            it = wb.worksheets[0].iter_rows(values_only=True)
            header = list(next(it))
            return [{h: ("" if v is None else v) for h, v in zip(header, r)} for r in it]
        finally:
            wb.close()
    if source.format == "xml":
        from lxml import etree

        root = etree.fromstring(data)  # raises XMLSyntaxError on the malformed file
        return [{child.tag: child.text or "" for child in rec} for rec in root.iter(source.record_tag or "record")]
    raise ValueError(source.format)


def _text(v) -> str:
    return "" if v is None else str(v)


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s))


def _date(s: str) -> date | None:
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", s)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _canon(source: Source, row: dict) -> dict:
    out = {attr: _text(row.get(col)) for attr, col in source.fields.items()}
    out["_key"] = _text(row.get(source.key))
    return out


def evidence(rows: Iterable[dict], source: Source) -> dict:
    """psb evidence: (name, birth date, sex) -> set of ID numbers, and ID number -> (name, residence division)."""
    key_ids: dict[tuple, set] = {}
    by_id: dict[str, tuple[str, str]] = {}
    for row in rows:
        if "_malformed" in row:
            continue
        c = _canon(source, row)
        idn = _norm(c["id_number"]).upper()
        birth = _date(_norm(c["birth_date"]))
        sex = {"男": "1", "女": "2"}.get(c["sex"], c["sex"])
        if idn and birth:
            key_ids.setdefault((_norm(c["name"]), birth, sex), set()).add(idn)
            div = c.get("residence_division", "")
            by_id[idn] = (_norm(c["name"]), SUCCESSOR.get(div, div))
    return {"keys": key_ids, "ids": by_id}


def merge_evidence(*parts: dict) -> dict:
    out: dict = {"keys": {}, "ids": {}}
    for p in parts:
        for k, v in p["keys"].items():
            out["keys"].setdefault(k, set()).update(v)
        out["ids"].update(p["ids"])
    return out


def classify_row(source: Source, row: dict, prev: dict | None, psb: dict | None, check_conflicts: bool,
                 residence: bool = True) -> str | None:
    if "_malformed" in row:
        return "MALFORMED_ROW"
    if prev is not None and "_malformed" not in prev and _text(row.get(source.key)) == _text(prev.get(source.key)) != "":
        if {k: _text(v) for k, v in row.items()} == {k: _text(v) for k, v in prev.items()}:
            return "DUPLICATE_EXACT"
        if {k: _norm(_text(v)) for k, v in row.items()} == {k: _norm(_text(v)) for k, v in prev.items()}:
            return "DUPLICATE_NEAR"
    c = _canon(source, row)
    if c["_key"] == "":
        return "KEY_MISSING"
    if c["name"] == "":
        return "NAME_MISSING"
    raw = c["id_number"]
    declared_birth = c["birth_date"]
    div = c.get("residence_division")
    if "id_type" in source.fields:  # foreign residents
        if c["id_type"] not in ("护照", "外国人永久居留身份证"):
            return "ID_TYPE_UNKNOWN"
        if c["id_type"] == "护照":
            if not re.fullmatch(r"[A-Z0-9]{5,17}", raw):
                return "FOREIGN_ID_BAD_FORMAT"
        elif re.fullmatch(r"9\d{16}[\dX]", raw):
            if ric.calc_check_digit(raw) != raw[-1]:
                return "UNEXPECTED:PRP_CHECK"
        elif not re.fullmatch(r"[A-Z]{3}\d{12}", raw):
            return "FOREIGN_ID_BAD_FORMAT"
    else:
        if raw == "":
            if psb is None:
                return "NO_ID"
            sex = {"男": "1", "女": "2"}.get(c["sex"], c["sex"])
            ids = psb["keys"].get((c["name"], _date(declared_birth), sex), set())
            return {1: "NO_ID_MATCHABLE", 2: "REVIEW_AMBIGUOUS_MATCH"}.get(len(ids), f"UNEXPECTED:NO_ID_{len(ids)}")
        if raw != raw.strip() or " " in raw or any(ch in raw for ch in "０１２３４５６７８９") or "x" in raw:
            compact = _norm(raw).upper()
            if len(compact) == 18 and ric.is_valid(compact):
                return "W_ID_NORMALISED"
            return "UNEXPECTED:NORMALISED"
        if len(raw) == 15 and raw.isdigit():
            return "W_ID_UPGRADED_15" if ric.is_valid(raw[:6] + "19" + raw[6:] + ric.calc_check_digit(raw[:6] + "19" + raw[6:] + "0")) else "UNEXPECTED:15"
        if not re.fullmatch(r"\d{17}[\dX]", raw):
            return "UNEXPECTED:FORMAT"
        if ric.calc_check_digit(raw) != raw[-1]:
            return "ID_BAD_CHECK_DIGIT"
        id_birth = _date(raw[6:14])
        if id_birth is None:
            return "ID_BAD_BIRTH_DATE"
        if raw[:6] == "310199":
            return "ID_UNKNOWN_DIVISION"
        if not ric.is_valid(raw):
            return "W_DIVISION_POSTDATES_BIRTH" if raw[:6] == "310151" and id_birth.year < 2016 else "UNEXPECTED:ID"
        sex = {"男": "1", "女": "2"}.get(c["sex"], c["sex"])
        if sex != ("1" if int(raw[16]) % 2 else "2"):
            return "SEX_MISMATCH"
        b = _date(declared_birth)
        if b is None:
            return "BAD_DATE"
        if b != id_birth:
            return "BIRTH_DATE_MISMATCH"
    if "id_type" in source.fields and _date(declared_birth) is None:
        return "BAD_DATE"
    if div is not None:
        if div in RETIRED_FIELD:
            return "W_DIVISION_RETIRED"
        if div == "310199":
            return "BAD_DIVISION"
        if div not in CURRENT:
            return "UNEXPECTED:DIVISION"
    if check_conflicts and psb is not None and source.id == "hrss_employment":
        known = psb["ids"].get(raw)  # psb's own defects (a missing name, 310199) say nothing about hrss
        if known is not None:
            if known[0] and known[0] != _norm(c["name"]):
                return "CONFLICT_NAME"
            if residence and known[1] in CURRENT and known[1] != div:
                return "CONFLICT_RESIDENCE"
    return None


def classify(source: Source, rows: list[dict], psb: dict | None = None, check_conflicts: bool = False,
             residence: bool = True) -> Counter:
    """Counter of defect names over the rows (clean rows not counted). ``check_conflicts``: hrss rows are compared
    with psb's (``psb["ids"]``); ``residence=False`` compares names only — after day 0 hrss may hold an address from
    before a move (not a planted defect), so a district conflict is only certain on the full extract."""
    out: Counter = Counter()
    prev = None
    for row in rows:
        kind = classify_row(source, row, prev, psb, check_conflicts, residence)
        if kind:
            out[kind] += 1
        prev = row
    return out


def retired_ids(source: Source, rows: list[dict]) -> int:
    """Rows with a valid 公民身份号码 whose division is a retired code (the info counter id_division_retired)."""
    n = 0
    for row in rows:
        if "_malformed" in row:
            continue
        raw = _norm(_text(row.get(source.fields.get("id_number", "")))).upper()
        if len(raw) == 15 and raw.isdigit():
            body = raw[:6] + "19" + raw[6:]
            raw = body + ric.calc_check_digit(body + "0")
        if len(raw) == 18 and raw[:6] in RETIRED_ID and ric.is_valid(raw):
            n += 1
    return n
