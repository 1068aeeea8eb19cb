"""Publication without a database: dataset definitions (validation with file and line), the PII patterns, and the
four file formats written and read back."""

from __future__ import annotations

import json
import random
import re
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from stdnum.cn import ric as stdnum_ric

from pipelines.publish import exports, pii
from pipelines.publish.datasets import DatasetError, Field, load_dataset, load_datasets

REAL = Path(__file__).resolve().parents[2] / "datasets"


def test_the_population_datasets_load():
    defs = {d.code: d for d in load_datasets(REAL)}
    assert set(defs) >= {"population_by_district_sex_age", "registered_residents_by_district",
                         "vital_events_by_district_month", "foreign_residents_by_district_nationality",
                         "resident_microdata_sample"}
    assert defs["foreign_residents_by_district_nationality"].open_attribute == "conditional"
    micro = defs["resident_microdata_sample"]
    assert micro.record_level and micro.quasi_identifiers and micro.suppression is None
    for d in defs.values():
        assert d.database == "population" and d.sql.lstrip().upper().startswith(("SELECT", "WITH", "--"))
        if d.suppression:
            flag = d.field(d.suppression.flag)
            assert flag.type == "boolean" and d.field(d.suppression.count).type == "integer"
            assert d.sql_columns == [f for f in d.field_names if f != d.suppression.flag]
        # folded YAML: no space left where a line break fell between Chinese characters
        assert not re.search(r"[\u4e00-\u9fff，。、；）] +[\u4e00-\u9fff（]", d.abstract), d.code


def write(tmp_path: Path, text: str, code: str = "bad_dataset") -> Path:
    d = tmp_path / "population"
    d.mkdir(exist_ok=True)
    (d / f"{code}.yaml").write_text(text, encoding="utf-8")
    (d / f"{code}.sql").write_text("SELECT 1", encoding="utf-8")
    return d / f"{code}.yaml"


BASE = """code: bad_dataset
title: 测试数据集
title_en: Test dataset
provider_department: psb
abstract: 用于测试定义校验的数据集。
classification: 测试
keywords: [测试]
open_attribute: unconditional
share_type: unconditional
update_frequency: daily
record_level: false
suppression: {count: persons, dimensions: [district_code], flag: suppressed}
fields:
  - {name: district_code, type: text, label_zh: 区代码, description: 区}
  - {name: persons, type: integer, label_zh: 人数, description: 人数}
  - {name: suppressed, type: boolean, label_zh: 是否抑制, description: 抑制}
"""


def test_a_valid_definition_loads(tmp_path):
    ds = load_dataset(write(tmp_path, BASE))
    assert ds.code == "bad_dataset" and ds.sql_columns == ["district_code", "persons"]


@pytest.mark.parametrize("change, line, message", [
    (("open_attribute: unconditional", "open_attribute: public"), 8, "open_attribute"),
    (("  - {name: persons, type: integer", "  - {name: persons, type: int"), 15, "fields/1/type"),
    (("  - {name: district_code, type: text, label_zh: 区代码",
      "  - {name: id_number, type: text, label_zh: 区代码"), 14, "direct identifier"),
    (("label_zh: 区代码", "label_zh: 居住地址"), 14, "direct identifier"),
    (("count: persons,", "count: people,"), 12, "'people' is not a field"),
    (("provider_department: psb", "provider_department: police"), 4, "provider_department"),
    (("record_level: false", "record_level: true"), 1, "quasi_identifiers"),
])
def test_a_broken_definition_fails_with_file_and_line(tmp_path, change, line, message):
    path = write(tmp_path, BASE.replace(*change))
    with pytest.raises(DatasetError) as exc:
        load_dataset(path)
    assert f"{path}:{line}:" in str(exc.value) and message in str(exc.value)


def test_the_code_is_the_file_name_and_the_sql_must_exist(tmp_path):
    path = write(tmp_path, BASE, code="other_name")
    with pytest.raises(DatasetError, match="must be the file name"):
        load_dataset(path)
    path = write(tmp_path, BASE)
    path.with_suffix(".sql").unlink()
    with pytest.raises(DatasetError, match="SQL bad_dataset.sql is missing"):
        load_dataset(path)


def ric(body17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    number = body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights)) % 11]
    assert stdnum_ric.is_valid(number)
    return number


@pytest.mark.parametrize("text, pattern", [
    (ric("31010419800301123"), "id_number_18"),
    ("身份证:" + ric("11010519491231002"), "id_number_18"),
    ("id 310104800301123 old", "id_number_15"),
    ("手机13812345678", "mobile_phone"),
    ("+86 139-0000-0000".replace("-", ""), "mobile_phone"),
    ("电话 021-62345678", "landline_phone"),
    ("(0571)87654321", "landline_phone"),
])
def test_pii_patterns_find_identifiers(text, pattern):
    assert pattern in pii.scan_text(text)


@pytest.mark.parametrize("text", [
    "310101,黄浦区,1,男,00-04,12,false", "2026-01-05", "2026-01-05T23:59:59.123456+08:00",
    "population_by_district_sex_age-20260105-001", "12345678", "8a3c" + "13812345678" + "f" * 49,
    "1234567890123456789012", "31010419800301123", "count 100000000",
])
def test_pii_patterns_leave_codes_dates_counts_and_checksums_alone(text):
    assert pii.scan_text(text) == {}


def test_pii_scan_of_files_reads_inside_xlsx_and_reports_no_values(tmp_path):
    fields = [Field("a", "text", "甲", ""), Field("b", "integer", "乙", "")]
    w = exports.Writers(tmp_path, fields, {"dataset_code": "t", "release_id": "t-20260105-001"})
    w.write([("x", 1), ("y 13812345678", 2)])
    w.close()
    hits = pii.scan_files([tmp_path / f"data.{f}" for f in exports.FORMATS])
    assert {(h["file"], h["pattern"], h["count"]) for h in hits} == {
        (f"data.{f}", "mobile_phone", 1) for f in exports.FORMATS}
    assert not any("13812345678" in json.dumps(h) for h in hits)
    assert next(h for h in hits if h["file"] == "data.xlsx")["part"].startswith("xl/")


def test_pii_file_scan_streams_in_chunks_counts_every_match_and_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(pii, "_CHUNK", 100)  # many chunks, matches across their boundaries
    fields = [Field("a", "text", "甲", ""), Field("b", "integer", "乙", "")]
    rows = [(f"行 {i}", i) for i in range(300)]
    rows[150] = rows[200] = ("y 13812345678", 1)  # the same value twice, in identical rows
    w = exports.Writers(tmp_path, fields, {"dataset_code": "t", "release_id": "t-20260105-001"})
    w.write(rows)
    w.close()
    hits = {h["file"]: h for h in pii.scan_files([tmp_path / f"data.{f}" for f in exports.FORMATS])}
    assert {f: h["count"] for f, h in hits.items()} == {f"data.{f}": 2 for f in exports.FORMATS}
    assert hits["data.csv"]["first_line"] == 152  # header, then rows 0..150
    text = (tmp_path / "data.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[151].startswith("y 13812345678")


def test_the_four_formats_round_trip_with_nulls_booleans_dates_and_chinese(tmp_path):
    fields = [Field("d", "date", "日期", ""), Field("name_zh", "text", "区名称", ""), Field("n", "integer", "人数", ""),
              Field("s", "boolean", "是否抑制", "")]
    rows = [(date(2026, 1, 5), "浦东新区", 1234, False), (date(2026, 1, 5), "黄浦区", None, True),
            (date(2026, 1, 5), 'quote " and, comma', 0, False)]
    w = exports.Writers(tmp_path, fields, {"dataset_code": "t", "release_id": "t-20260105-001"})
    w.write(rows[:2])
    w.write(rows[2:])
    w.close()
    expected = [tuple(exports.text(v) for v in r) for r in rows]
    for fmt in exports.FORMATS:
        header, back = exports.read(fmt, tmp_path / f"data.{fmt}")
        assert header == ["d", "name_zh", "n", "s"] and back == expected, fmt
    assert (tmp_path / "data.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    with zipfile.ZipFile(tmp_path / "data.xlsx") as zf:
        assert any("sheet" in n for n in zf.namelist())
    doc = json.loads((tmp_path / "data.json").read_text(encoding="utf-8"))
    assert doc["records"][1]["n"] is None and doc["records"][1]["s"] is True and doc["fields"][1]["label_zh"] == "区名称"


def test_repeated_rows_are_written_alike_in_every_format_beyond_the_memo(tmp_path, monkeypatch):
    """Writers serialises each distinct row once (up to MEMO_ROWS): repeats, rows past the memo's size, markup and
    line breaks in text read back from every format as written."""
    monkeypatch.setattr(exports, "MEMO_ROWS", 3)
    fields = [Field("region", "text", "区域", ""), Field("band", "text", "年龄段", ""), Field("n", "integer", "人数", "")]
    distinct = [("中心城区", "20-29", 1), ("郊区", "<b>&amp;</b>", None), ("浦东新区", "line\r\nbreak", 3),
                ("郊区", " lead", 4), ("郊区", "80+", 5)]
    rows = [distinct[i % len(distinct)] for i in range(23)]
    w = exports.Writers(tmp_path, fields, {"dataset_code": "t", "release_id": "t-20260105-001"})
    w.write(rows[:10])
    w.write([])
    w.write(rows[10:])
    w.close()
    assert w.rows == 23 and len(w._memo) == 3
    expected = [tuple(exports.text(v) for v in r) for r in rows]
    for fmt in exports.FORMATS:
        header, back = exports.read(fmt, tmp_path / f"data.{fmt}")
        assert header == ["region", "band", "n"] and back == expected, fmt


def test_numbers_equal_in_value_keep_their_own_spelling(tmp_path):
    """Decimal('1.0') == Decimal('1'): a release with a number field is not served from the row memo."""
    fields = [Field("share", "number", "比例", "")]
    rows = [(Decimal("1.0"),), (Decimal("1"),), (Decimal("1.0"),)]
    w = exports.Writers(tmp_path, fields, {"dataset_code": "t", "release_id": "t-20260105-001"})
    w.write(rows)
    w.close()
    assert exports.read("csv", tmp_path / "data.csv")[1] == [("1.0",), ("1",), ("1.0",)]


def test_scan_text_finds_what_a_full_scan_finds():
    """scan_text searches only around runs of seven or more digits: on random texts full of near-misses (cut ID
    numbers, prefixed phones, digits glued to letters) it finds exactly what the patterns find over the whole text."""
    import random

    def full_scan(text):
        found = {}
        for name, rx in pii._COMPILED.items():
            for m in rx.finditer(text):
                if not pii._inside_hex_token(text, m.start(), m.end()):
                    found.setdefault(name, []).append(m.start())
        return found

    rnd = random.Random(20261122)
    alphabet = "0123456789-+() X,abc\n中号１２３٣"  # (multi-byte characters, digits of other scripts: the prefilter)
    hits = 0
    for _ in range(5000):
        parts = []
        for _ in range(rnd.randint(1, 12)):
            r = rnd.random()
            if r < 0.2:
                parts.append("110101199003071234"[:rnd.randint(10, 18)])
            elif r < 0.3:
                parts.append(rnd.choice(["+86-", "0086", "(021)", "021-", "86 "]) + "13912345678"[:rnd.randint(7, 11)])
            elif r < 0.4:
                parts.append("0" + str(rnd.randint(10, 999)) + rnd.choice(["-", " ", ""])
                             + str(rnd.randint(2000000, 99999999)))
            else:
                parts.append("".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30))))
        text = "".join(parts)
        expected = full_scan(text)
        assert pii.scan_text(text) == expected, text
        hits += bool(expected)
    assert hits > 1000  # the texts really hold identifiers


def test_pii_file_scan_by_bytes_places_matches_across_multibyte_chunk_boundaries(tmp_path, monkeypatch):
    """The file scan reads bytes and decodes only the chunks holding a run of seven digits: with chunks far
    smaller than the file, cut inside three-byte characters, it counts every match once and gives the line of the
    first, as a scan of the whole text does (a BOM dropped; mobile numbers only, whose every suffix is too short
    or too differently shaped to match a pattern where a chunk begins inside one)."""
    rng = random.Random(7)
    lines = []
    for i in range(400):
        words = [rng.choice(["浦东新区", "黄浦区", "居民", "abc", "12345", "2026-01-05", "x" * rng.randint(1, 9)])
                 for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.2:
            words.insert(rng.randint(0, len(words)), f"1{rng.choice('3456789')}{rng.randrange(10 ** 9):09d}")
        lines.append(" ".join(words))
    text = "\n".join(lines) + "\n"
    (tmp_path / "data.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    whole = pii.scan_text(text)["mobile_phone"]
    expected = {"count": len(whole), "first_line": text.count("\n", 0, whole[0]) + 1}
    for chunk in (65, 100, 257, 1 << 20):
        monkeypatch.setattr(pii, "_CHUNK", chunk)
        (hit,) = pii.scan_file(tmp_path / "data.csv")
        assert {k: hit[k] for k in expected} == expected, chunk
