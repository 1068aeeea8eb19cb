"""Pure parsing of the source adapters: no database (files in tmp dirs, the API through httpx.MockTransport)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from pipelines.registry import source
from pipelines.sources.api import SourceApiError, read_api
from pipelines.sources.files import (
    DropFile,
    cell_text,
    discover_files,
    read_csv,
    read_drop_chunks,
    read_xlsx,
    read_xml,
)
from pipelines.sources.records import (
    Chunk,
    EmptyFile,
    RecordBuilder,
    MalformedFile,
    build_record,
    canonical_json,
    chunked,
    parse_updated_at,
    row_hash,
)

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 1, 2)


def drop(tmp_path: Path, rel: str, content: bytes) -> DropFile:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return DropFile(path, rel, DAY)


# --- records ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-02T10:15:00+08:00", datetime(2026, 1, 2, 10, 15, tzinfo=SH)),
        ("2026-01-02T02:15:00Z", datetime(2026, 1, 2, 10, 15, tzinfo=SH)),
        ("2026-01-02 10:15:00", datetime(2026, 1, 2, 10, 15, tzinfo=SH)),  # naive = Shanghai local time
        ("20260102101500", datetime(2026, 1, 2, 10, 15, tzinfo=SH)),
        ("2026/01/02 10:15:00", datetime(2026, 1, 2, 10, 15, tzinfo=SH)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=SH)),
        ("", None),
        ("not a time", None),
        (None, None),
    ],
)
def test_parse_updated_at(text, expected):
    got = parse_updated_at(text)
    assert got == expected
    if got is not None:
        assert got.tzinfo is not None


def test_canonical_json_spells_every_text_payload_as_json_dumps_did():
    """The msgspec fast path must give the very string json.dumps gave (stored row hashes were made from it):
    random flat text payloads over control characters, quotes, backslashes, CJK, astral and separator code points;
    payloads with other values take json.dumps itself."""
    import random

    def reference(payload):
        return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    rng = random.Random(20261122)
    alphabet = [chr(i) for i in range(0x80)] + list("张三欧阳é\u0085\u2028\u2029\ufffd😀\U0010ffff")

    def text(n):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    for _ in range(20_000):
        payload = {text(5): None if rng.random() < 0.1 else text(12) for _ in range(rng.randint(0, 8))}
        assert canonical_json(payload) == reference(payload)
    for payload in ({"n": 1, "f": 1e16, "t": True}, {"nested": {"b": [1, "二"], "a": None}}, {1: "x"}, []):
        assert canonical_json(payload) == reference(payload)


def test_row_hash_is_md5_of_sorted_utf8_json():
    a = {"XM": "张三", "GMSFHM": "310101199001011234"}
    b = {"GMSFHM": "310101199001011234", "XM": "张三"}
    assert row_hash(a) == row_hash(b)
    assert canonical_json(a) == '{"GMSFHM":"310101199001011234","XM":"张三"}'
    assert row_hash(a) == hashlib.md5(canonical_json(a).encode("utf-8")).hexdigest()
    assert row_hash(a) != row_hash({**a, "XM": "张四"})


def test_build_record_maps_fields_and_defaults_id_type():
    s = source("psb_residence_permit")  # id_type RIC from the registry, no id_type column
    payload = {"JZZBH": "J1", "GMSFHM": " 31010119900101123x ", "XM": "李四", "GXSJ": "2026-01-02 08:00:00", "OTHER": "1"}
    r = build_record(s, payload, "o:1", fallback_updated_at=datetime(2026, 1, 2, tzinfo=SH))
    assert r.source_key == "J1"
    assert r.id_type == "RIC"
    assert r.canonical("id_number") == " 31010119900101123x "  # untouched
    assert r.canonical("name") == "李四"
    assert r.canonical("residence_permit_no") == "J1"
    assert r.canonical("ethnicity") is None  # not delivered by this source
    assert r.source_updated_at == datetime(2026, 1, 2, 8, tzinfo=SH)
    assert r.payload == payload and r.parse_error is None

    fr = source("psb_foreign_resident")  # has an id_type column and no registry default
    r = build_record(fr, {"登记编号": "D1", "证件种类": "PASSPORT", "更新时间": "garbage"}, "o:2",
                     fallback_updated_at=datetime(2026, 1, 2, tzinfo=SH))
    assert r.id_type == "PASSPORT"
    assert r.source_updated_at == datetime(2026, 1, 2, tzinfo=SH)  # unparsable -> drop date 00:00


def test_text_payloads_and_other_payloads_give_the_same_fields():
    """A payload of text takes the fast path (one map over the payload); one with a number or a nested value
    (an API's JSON) takes the general one (each field rendered as text): both give the fields and JSON the general one does."""
    from pipelines.population.attributes import RAW_FIELD_NAMES

    for sid in ("psb_residence_permit", "psb_foreign_resident", "health_vital_events"):
        s = source(sid)
        fields = {name: col for name, col in s.fields.items()}
        text = {col: f"v{i}" for i, col in enumerate(fields.values())} | {s.key: "K1", "EXTRA": None}
        mixed = {**text, next(iter(fields.values())): 42, "EXTRA": {"nested": [1, 2.5, "x"]}}
        for payload in (text, mixed):
            r = build_record(s, payload, "o:1")
            expected = tuple(
                s.id_type if name == "id_type" and name not in fields
                else (None if name not in fields else (v if (v := payload.get(fields[name])) is None or
                                                       isinstance(v, str) else json.dumps(v)))
                for name in RAW_FIELD_NAMES)
            assert r.values == expected, sid
            assert r.payload_json == json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            assert r.source_key == "K1"


def test_a_chunk_built_by_column_is_the_chunk_of_its_records():
    """RecordBuilder.text_chunk (the columnar path every 前置库, CSV and XML chunk takes) gives, column by column,
    what building each record and taking its fields gives, with or without the reader vouching for text
    (``texts``): random chunks of text payloads with missing fields,
    None, spaces and full-width characters (plain or not), with and without given update times (some None: parsed
    from the payload as build() does), a registry id_type default; and chunks that must go record by record — a
    number, a NUL, an unpaired surrogate, a key that is not text — give the same columns too."""
    import random

    rng = random.Random(20261206)
    alphabet = list("0123456789AXZ张三欧阳 \u3000\uff21\t\"\\") + ["2026-01-02 08:00:00"]
    fallback = datetime(2026, 1, 2, tzinfo=SH)

    def text():
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    def columns(chunk):
        return (chunk.keys, chunk.updated, chunk.origins, chunk.values, chunk.payloads, chunk.hashes,
                chunk.parse_errors, chunk.plains)

    for sid in ("psb_hukou", "psb_residence_permit", "civil_marriage", "health_vital_events"):
        s = source(sid)
        builder = RecordBuilder(s)
        names = [*s.fields.values(), s.key, s.updated_at, "OTHER"]
        for trial in range(40):
            payloads = [{name: (None if rng.random() < 0.2 else text()) for name in names if rng.random() < 0.9}
                        for _ in range(rng.randint(0, 30))]
            for p in payloads:
                if rng.random() < 0.3:
                    p[s.updated_at] = rng.choice(["2026-01-02T08:00:00+08:00", "20260102", "garbage", ""])
            if trial % 10 == 1 and payloads:
                payloads[-1]["OTHER"] = 7  # a number: record by record
            if trial % 10 == 2 and payloads:
                payloads[0]["OTHER"] = "a\x00b"  # a NUL
            if trial % 10 == 3 and payloads:
                payloads[0]["OTHER"] = "\ud800"  # an unpaired surrogate
            if trial % 10 == 4 and payloads:
                payloads[0] = {1: "x"}  # a key that is not text
            origins = [f"o:{i}" for i in range(len(payloads))]
            given = None if trial % 2 else [None if rng.random() < 0.3 else fallback + timedelta(hours=i)
                                           for i in range(len(payloads))]
            chunk = builder.text_chunk(payloads, origins, given, fallback)
            records = [builder.build(p, o, fallback, None if given is None else given[i])
                       for i, (p, o) in enumerate(zip(payloads, origins))]
            assert columns(chunk) == columns(Chunk.of_records(records)), (sid, trial)
            if trial % 10 not in (1, 4):  # text to text (a NUL and a surrogate included): what a reader vouches for
                vouched = builder.text_chunk(payloads, origins, given, fallback, texts=True)
                assert columns(vouched) == columns(chunk), (sid, trial)
    flagged = builder.text_chunk([{"a": "x\x00"}], ["o"], None, fallback)
    assert flagged.parse_errors[0].startswith("NUL character") and flagged.plains == [None]


def test_file_chunks_are_the_files_records_in_order(tmp_path):
    """A CSV or XML file is staged in chunks whose well-formed runs are built by column, joined with the malformed
    rows' records in the file's order: the same columns as its records read one by one, whatever the chunk size."""
    csv_drop = drop(tmp_path, "psb/residence_permit/2026-01-02/a.csv", GBK_CSV.encode("gbk"))
    xml = ("<records>" + "".join(
        f"<record><djbh>JH{i}</djbh><sfzh>3101011990010112{i:02d}</sfzh><xm>名{i}</xm><gxsj>2026-01-02T0{i % 10}:00:00"
        f"</gxsj></record>" + ("<record><xm>a</xm><xm>b</xm></record>" if i % 4 == 1 else "") for i in range(12))
        + "</records>")
    xml_drop = drop(tmp_path, "civil_affairs/marriage/2026-01-02/a.xml", xml.encode())
    for s, d, reader in ((source("psb_residence_permit"), csv_drop, read_csv),
                         (source("civil_marriage"), xml_drop, read_xml)):
        whole = Chunk.of_records(list(reader(s, d)))
        assert any(whole.parse_errors) and not all(whole.parse_errors)
        for size in (1, 2, 3, 5, 100):
            chunks = list(read_drop_chunks(s, d, size))
            assert all(isinstance(c, Chunk) and 0 < len(c) <= size for c in chunks)
            joined = Chunk.concat(chunks)
            assert (joined.keys, joined.origins, joined.values, joined.payloads, joined.hashes, joined.parse_errors,
                    joined.updated, joined.plains) == (whole.keys, whole.origins, whole.values, whole.payloads,
                                                       whole.hashes, whole.parse_errors, whole.updated, whole.plains)


def test_nul_characters_are_flagged_not_silently_dropped():
    s = source("psb_residence_permit")
    r = build_record(s, {"JZZBH": "J1", "XM": "张\x00三"}, "o:1")
    assert r.payload == {"JZZBH": "J1", "XM": "张\ufffd三"} and r.parse_error.startswith("NUL character")
    assert "\x00" not in r.payload_json
    ok = build_record(s, {"JZZBH": "J2", "XM": "a\\u0000b"}, "o:2")  # a literal backslash-u0000 is just text
    assert ok.parse_error is None and ok.payload["XM"] == "a\\u0000b"


def test_unpaired_surrogates_are_flagged_not_a_failed_extract():
    # an API's JSON may spell "\\ud800" alone: json gives a str that is not UTF-8, which neither the row hash nor
    # PostgreSQL could take (the whole source's extract failed on it)
    s = source("psb_residence_permit")
    r = build_record(s, {"JZZBH": "J1", "XM": "张\ud800三", "NOTE": {"x": ["\udfff"]}}, "o:1")
    assert r.payload == {"JZZBH": "J1", "XM": "张\ufffd三", "NOTE": {"x": ["\ufffd"]}}
    assert r.parse_error.startswith("unpaired surrogate") and r.canonical("name") == "张\ufffd三"
    assert r.payload_utf8.decode("utf-8") == r.payload_json and r.row_hash == row_hash(r.payload)
    pair = build_record(s, {"JZZBH": "J2", "XM": "\U0001f600"}, "o:2")  # a pair is one character: fine
    assert pair.parse_error is None and pair.payload_json == '{"JZZBH":"J2","XM":"\U0001f600"}'


def test_malformed_record_keeps_raw_and_registry_id_type():
    from pipelines.sources.records import malformed_record

    r = malformed_record(source("psb_residence_permit"), "a,b,c", "o:9", "expected 2 fields, got 3", None)
    assert r.payload == {"_raw": "a,b,c"} and r.row_hash == row_hash({"_raw": "a,b,c"})
    assert r.id_type == "RIC" and r.canonical("name") is None and r.source_key is None


def test_chunked_bounds_chunks():
    assert [len(c) for c in chunked(range(7), 3)] == [3, 3, 1]
    assert list(chunked([], 3)) == []


# --- CSV -------------------------------------------------------------------------------------------------------

GBK_CSV = (
    "JZZBH,GMSFHM,XM,JZDZ,GXSJ\r\n"
    'J1,310101199001011234,张三,"上海市浦东新区世纪大道100号\r\n3楼",2026-01-02 09:00:00\r\n'
    "J2,310101199001011235,欧阳娜娜,上海市徐汇区,20260102100000\r\n"
    "\r\n"
    "J3,310101199001011236,王五,多,了,字段,2026-01-02\r\n"
    'J4,310101199001011237,"bad"quote,x,2026-01-02\r\n'
    "J5,310101199001011238,赵六,,\r\n"
)


def test_csv_gbk_rows_lines_and_malformed(tmp_path):
    s = source("psb_residence_permit")
    d = drop(tmp_path, "psb/residence_permit/2026-01-02/a.csv", GBK_CSV.encode("gbk"))
    recs = list(read_csv(s, d))
    assert [r.origin for r in recs] == [
        "landing/psb/residence_permit/2026-01-02/a.csv:2",
        "landing/psb/residence_permit/2026-01-02/a.csv:4",
        "landing/psb/residence_permit/2026-01-02/a.csv:6",
        "landing/psb/residence_permit/2026-01-02/a.csv:7",
        "landing/psb/residence_permit/2026-01-02/a.csv:8",
    ]
    j1, j2, bad_count, bad_quote, j5 = recs
    assert j1.payload["JZDZ"] == "上海市浦东新区世纪大道100号\r\n3楼"
    assert j1.canonical("name") == "张三" and j1.source_updated_at == datetime(2026, 1, 2, 9, tzinfo=SH)
    assert j2.source_updated_at == datetime(2026, 1, 2, 10, tzinfo=SH)
    assert bad_count.payload == {"_raw": "J3,310101199001011236,王五,多,了,字段,2026-01-02"}
    assert bad_count.parse_error == "expected 5 fields, got 7" and bad_count.source_key is None
    assert bad_quote.parse_error.startswith("CSV:") and bad_quote.payload["_raw"].startswith("J4,")
    assert j5.payload == {"JZZBH": "J5", "GMSFHM": "310101199001011238", "XM": "赵六", "JZDZ": "", "GXSJ": ""}
    assert j5.source_updated_at == datetime(2026, 1, 2, tzinfo=SH)  # no update time -> drop date


def test_csv_gbk_declared_file_keeps_gb18030_rare_characters(tmp_path):
    s = source("psb_residence_permit")
    text = "JZZBH,XM\nJ1,王䶮\n"  # 䶮 (U+4DAE) is in GB18030, not in GBK
    d = drop(tmp_path, "psb/residence_permit/2026-01-02/rare.csv", text.encode("gb18030"))
    (r,) = read_csv(s, d)
    assert r.payload["XM"] == "王䶮"


def test_csv_utf8_bom_header(tmp_path):
    s = source("education_student")
    text = "学籍号,身份证件号,姓名,更新时间\nG1,310101201001011234,小明,2026-01-02T08:00:00+08:00\n"
    d = drop(tmp_path, "education/student/2026-01-02/s.csv", text.encode("utf-8-sig"))
    (r,) = read_csv(s, d)
    assert list(r.payload) == ["学籍号", "身份证件号", "姓名", "更新时间"]  # no BOM glued to the first name
    assert r.source_key == "G1" and r.canonical("id_number") == "310101201001011234" and r.id_type == "RIC"


@pytest.mark.parametrize("content", [b"", "JZZBH,XM\r\n".encode("gbk"), b"\r\n\r\n"])
def test_csv_empty(tmp_path, content):
    s = source("psb_residence_permit")
    with pytest.raises(EmptyFile):
        list(read_csv(s, drop(tmp_path, "psb/residence_permit/2026-01-02/e.csv", content)))


def test_csv_not_in_encoding_is_malformed_file(tmp_path):
    s = source("education_student")
    d = drop(tmp_path, "education/student/2026-01-02/bad.csv", "学籍号,姓名\nG1,小明\n".encode("gbk"))
    with pytest.raises(MalformedFile, match="utf-8-sig"):
        list(read_csv(s, d))


def test_csv_duplicate_header_is_malformed_file(tmp_path):
    s = source("psb_residence_permit")
    with pytest.raises(MalformedFile, match="twice"):
        list(read_csv(s, drop(tmp_path, "psb/residence_permit/2026-01-02/d.csv", b"XM,XM\na,b\n")))


# --- XLSX ------------------------------------------------------------------------------------------------------


def test_xlsx_first_sheet_header_and_cells(tmp_path):
    from openpyxl import Workbook

    s = source("psb_foreign_resident")
    wb = Workbook()
    ws = wb.active
    ws.append(["登记编号", "证件种类", "证件号码", "姓名", "出生日期", "更新时间"])
    ws.append(["D1", "PASSPORT", "E12345678", "约翰·史密斯", datetime(1980, 5, 6), datetime(2026, 1, 2, 9, 30)])
    ws.append([None, None, None])  # blank row: skipped, line numbers kept
    ws.append(["D2", "PRP", 156123456789, "Anna", "1990-01-01", None])
    ws.append(["D3", "PRP", "X", "Y", "Z", None, "extra cell"])
    wb.create_sheet("ignored").append(["not", "read"])
    path = tmp_path / "psb/foreign_resident/2026-01-02/f.xlsx"
    path.parent.mkdir(parents=True)
    wb.save(path)
    recs = list(read_xlsx(s, DropFile(path, "psb/foreign_resident/2026-01-02/f.xlsx", DAY)))
    assert [r.origin.rsplit(":", 1)[1] for r in recs] == ["2", "4", "5"]
    d1, d2, d3 = recs
    assert d1.payload == {"登记编号": "D1", "证件种类": "PASSPORT", "证件号码": "E12345678", "姓名": "约翰·史密斯",
                          "出生日期": "1980-05-06", "更新时间": "2026-01-02 09:30:00"}
    assert d1.id_type == "PASSPORT" and d1.source_updated_at == datetime(2026, 1, 2, 9, 30, tzinfo=SH)
    assert d2.payload["证件号码"] == "156123456789" and d2.payload["更新时间"] is None
    assert d2.source_updated_at == datetime(2026, 1, 2, tzinfo=SH)
    assert d3.parse_error == "expected 6 cells, got 7" and d3.payload["_raw"][-1] == "extra cell"


def test_xlsx_cell_text():
    assert cell_text(3.0) == "3" and cell_text(2.5) == "2.5" and cell_text(True) == "TRUE"
    assert cell_text(datetime(2026, 1, 2)) == "2026-01-02"


def test_xlsx_not_a_workbook(tmp_path):
    s = source("psb_foreign_resident")
    with pytest.raises(MalformedFile):
        list(read_xlsx(s, drop(tmp_path, "psb/foreign_resident/2026-01-02/x.xlsx", b"this is not a zip")))
    with pytest.raises(EmptyFile):
        list(read_xlsx(s, drop(tmp_path, "psb/foreign_resident/2026-01-02/y.xlsx", b"")))


def _openpyxl_rows(path: Path) -> list[tuple[int, tuple]]:
    """What openpyxl's own read-only iteration gives: (row number, values), empty rows left out."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = wb.worksheets[0]
        sheet.reset_dimensions()
        return [(n, v) for n, v in enumerate(sheet.iter_rows(values_only=True), 1) if v]
    finally:
        wb.close()


def _our_rows(path: Path) -> list[tuple[int, tuple]]:
    from pipelines.sources.files import open_first_sheet, sheet_rows

    sheet = open_first_sheet(path)
    try:
        return list(sheet_rows(sheet))
    finally:
        sheet.archive.close()


def _random_cell(rng):
    kind = rng.randrange(12)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randrange(-10**12, 10**12)
    if kind == 2:
        return rng.choice([0.5, -2.25, 1e-7, 3.0e21, 1234567.125, float(rng.randrange(10**6)) / 7])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return datetime(rng.randrange(1901, 2100), rng.randrange(1, 13), rng.randrange(1, 29),
                        rng.randrange(24), rng.randrange(60), rng.randrange(60))
    if kind == 5:
        return date(rng.randrange(1901, 2100), rng.randrange(1, 13), rng.randrange(1, 29))
    if kind == 6:
        return timedelta(hours=rng.randrange(100), minutes=rng.randrange(60))
    if kind == 7:
        return ""
    alphabet = "aZ 09-_·張三李四𠀀 \t&<>\"'ÄéŠ"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))


def test_xlsx_sheet_rows_read_as_openpyxl_does(tmp_path):
    """The fast row reader against openpyxl's, on random workbooks written by openpyxl (shared strings, numbers,
    booleans, dates, times and durations by their number formats, gaps between cells and rows), in both write
    modes and both date epochs."""
    import random

    from openpyxl import Workbook
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    rng = random.Random(20261203)
    for case in range(30):
        write_only = case % 3 == 0
        wb = Workbook(write_only=write_only)
        if case % 4 == 1:
            wb.epoch = CALENDAR_MAC_1904
        ws = wb.create_sheet("data") if write_only else wb.active
        for _ in range(rng.randrange(1, 25)):
            width = rng.randrange(0, 9)
            row = [_random_cell(rng) for _ in range(width)]
            if not write_only and rng.random() < 0.2:
                ws.append([])  # (an empty row: a gap in the numbering)
            ws.append(row)
        if not write_only:
            ws.cell(row=ws.max_row + 2, column=rng.randrange(1, 30), value="far cell")
            ws.cell(row=ws.max_row + 1, column=3, value="=1+1")  # (a formula without a cached value: None)
        path = tmp_path / f"case{case}.xlsx"
        wb.save(path)
        assert _our_rows(path) == _openpyxl_rows(path), case


def _sheet_xlsx(path: Path, sheet_data: str, shared: str = "", styles: str = "", date1904: bool = False) -> None:
    """A minimal workbook around hand-written sheetData (and shared strings, and cell formats)."""
    import zipfile

    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    ct = "http://schemas.openxmlformats.org/package/2006/content-types"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml",
                   f'<Types xmlns="{ct}"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package'
                   '.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument'
                   '.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType='
                   '"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName='
                   '"/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml'
                   '.sharedStrings+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship'
                   f' Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml",
                   f'<workbook xmlns="{main}" xmlns:r="{rel}"><workbookPr date1904="{int(date1904)}"/>'
                   '<sheets><sheet name="s" sheetId="1" r:id="rId1"/></sheets></workbook>')
        parts = (f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
                 + (f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>' if shared else "")
                 + (f'<Relationship Id="rId3" Type="{rel}/styles" Target="styles.xml"/>' if styles else ""))
        z.writestr("xl/_rels/workbook.xml.rels",
                   f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{parts}'
                   '</Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{main}"><sheetData>{sheet_data}</sheetData></worksheet>')
        if shared:
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{shared}</sst>')
        if styles:
            z.writestr("xl/styles.xml", f'<styleSheet xmlns="{main}">{styles}</styleSheet>')


def test_xlsx_sheet_rows_hand_written_sheets(tmp_path):
    """What other writers do: rows and cells without references, rows out of order or repeated, rich text, inline
    strings, error and formula-string cells, ISO dates, a cell format that is a date, the 1904 epoch."""
    shared = ('<si><t>plain</t></si><si><r><t>rich </t></r><r><rPr><b/></rPr><t>text</t></r><rPh sb="0" eb="1"><t>ふりがな</t></rPh></si>'
              '<si><t/></si><si><t xml:space="preserve">  spaced  </t></si>')
    styles = ('<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy/mm/dd"/></numFmts>'
              '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="46"/></cellXfs>')
    sheets = [
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c><c t="s"><v>2</v></c></row>'
        '<row><c t="s"><v>3</v></c><c t="inlineStr"><is><t>inline</t></is></c>'
        '<c t="inlineStr"><is><r><t>a</t></r><r><t>b</t></r></is></c><c t="inlineStr"/></row>'
        '<row r="5"><c r="B5" t="e"><v>#N/A</v></c><c r="C5" t="str"><f>A1</f><v>cached</v></c>'
        '<c r="D5" t="d"><v>2026-01-02T03:04:05</v></c><c r="E5" t="b"><v>1</v></c><c r="F5"><v></v></c></row>'
        '<row r="3"><c r="A3"><v>7</v></c></row>'  # (before the row counter: skipped, as openpyxl does)
        '<row r="5"><c r="A5"><v>8</v></c></row>'  # (repeated: skipped)
        '<row r="6.0"><c r="A6" s="1"><v>45000</v></c><c r="B6" s="2"><v>1.5</v></c><c r="C6"><v>1E3</v></c>'
        '<c r="D6" s="1"><v>1e300</v></c></row>'
        '<row r="8"><c r="D8"><v>1</v></c><c r="B8"><v>2</v></c></row>'  # (out of order: width from the last)
        '<row r="9"/>',
    ]
    for date1904 in (False, True):
        for i, data in enumerate(sheets):
            path = tmp_path / f"hand{i}_{date1904}.xlsx"
            _sheet_xlsx(path, data, shared, styles, date1904)
            ours = _our_rows(path)
            assert ours == _openpyxl_rows(path)
            assert ours[0] == (1, ("plain", None, "rich text", ""))


def test_xlsx_sheet_rows_bad_references_are_malformed(tmp_path):
    s = source("psb_foreign_resident")
    for i, bad in enumerate(['<row r="x"><c r="A1"><v>1</v></c></row>', '<row r="1"><c r="A"><v>1</v></c></row>',
                             '<row r="1"><c r="A1" t="s"><v>5</v></c></row>', '<row r="1.5"/>']):
        path = tmp_path / f"psb/foreign_resident/2026-01-02/bad{i}.xlsx"
        path.parent.mkdir(parents=True, exist_ok=True)
        _sheet_xlsx(path, bad, shared="<si><t>only</t></si>")
        with pytest.raises(MalformedFile, match="XLSX sheet not readable"):
            list(read_xlsx(s, DropFile(path, f"psb/foreign_resident/2026-01-02/bad{i}.xlsx", DAY)))


# --- XML -------------------------------------------------------------------------------------------------------

GOOD_XML = """<?xml version="1.0" encoding="UTF-8"?>
<records>
  <record><djbh>M1</djbh><sfzh>310101199001011234</sfzh><xm>张三</xm><hyzk>20</hyzk><gxsj>2026-01-02 11:00:00</gxsj></record>
  <record>
    <djbh>M2</djbh><xm></xm><gxsj/>
  </record>
  <record><djbh>M3</djbh><xm><b>nested</b></xm></record>
</records>
"""


def test_xml_records(tmp_path):
    s = source("civil_marriage")
    d = drop(tmp_path, "civil_affairs/marriage/2026-01-02/m.xml", GOOD_XML.encode("utf-8"))
    m1, m2, m3 = read_xml(s, d)
    assert m1.origin.endswith("m.xml:3") and m2.origin.endswith("m.xml:4")
    assert m1.payload == {"djbh": "M1", "sfzh": "310101199001011234", "xm": "张三", "hyzk": "20",
                          "gxsj": "2026-01-02 11:00:00"}
    assert m1.canonical("marital_status") == "20" and m1.source_updated_at == datetime(2026, 1, 2, 11, tzinfo=SH)
    assert m2.payload == {"djbh": "M2", "xm": "", "gxsj": ""}
    assert m3.parse_error == "element <xm> has child elements" and "<b>nested</b>" in m3.payload["_raw"]


def test_xml_not_well_formed_raises_after_rows(tmp_path):
    s = source("civil_marriage")
    text = "<records><record><djbh>M1</djbh></record><record><djbh>M2</djbh></record><record><djbh>M3</djbh></recrd>"
    d = drop(tmp_path, "civil_affairs/marriage/2026-01-02/bad.xml", text.encode())
    got = []
    with pytest.raises(MalformedFile, match="not well-formed"):
        for r in read_xml(s, d):
            got.append(r.source_key)
    assert got == ["M1", "M2"]  # the loader rolls these back: a file is all-or-nothing


@pytest.mark.parametrize("content", [b"", b"  \n", b'<?xml version="1.0"?><records/>'])
def test_xml_empty(tmp_path, content):
    with pytest.raises(EmptyFile):
        list(read_xml(source("civil_marriage"), drop(tmp_path, "civil_affairs/marriage/2026-01-02/e.xml", content)))


def test_xml_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    text = (f'<?xml version="1.0"?><!DOCTYPE records [<!ENTITY x SYSTEM "file://{secret}">]>'
            "<records><record><djbh>M1</djbh><xm>&x;</xm></record></records>")
    d = drop(tmp_path, "civil_affairs/marriage/2026-01-02/xxe.xml", text.encode())
    recs = list(read_xml(source("civil_marriage"), d))
    assert "TOP SECRET" not in json.dumps(recs[0].payload, ensure_ascii=False)


# --- discovery -------------------------------------------------------------------------------------------------


def test_discover_files_by_date_folder_and_extension(tmp_path):
    s = source("psb_residence_permit")
    for rel in ["2026-01-01/b.csv", "2026-01-01/a.csv", "2026-01-02/c.CSV", "2026-01-02/c.csv.part",
                "2026-01-02/.hidden.csv", "2026-01-03/d.csv", "notadate/e.csv", "2026-01-02/x.xml"]:
        p = tmp_path / "psb/residence_permit" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    got = discover_files(s, tmp_path, before=date(2026, 1, 3))
    assert [d.relpath for d in got] == [
        "psb/residence_permit/2026-01-01/a.csv",
        "psb/residence_permit/2026-01-01/b.csv",
        "psb/residence_permit/2026-01-02/c.CSV",
    ]
    assert got[2].drop_date == date(2026, 1, 2)
    assert discover_files(source("education_student"), tmp_path, before=date(2026, 1, 3)) == []


# --- API -------------------------------------------------------------------------------------------------------


def _api_handler(items, fail_first: dict[int, int] | None = None, status_4xx: int | None = None):
    calls = []
    fail_first = dict(fail_first or {})

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        calls.append(dict(q))
        if status_4xx:
            return httpx.Response(status_4xx, json={"error": "updated_since must be before updated_until"})
        page, size = int(q["page"]), int(q["page_size"])
        if fail_first.get(page, 0) > 0:
            fail_first[page] -= 1
            return httpx.Response(503, json={"error": "busy"})
        lo, hi = datetime.fromisoformat(q["updated_since"]), datetime.fromisoformat(q["updated_until"])
        sel = [i for i in items if lo <= datetime.fromisoformat(i["updatedAt"]) < hi]
        chunk = sel[(page - 1) * size: page * size]
        nxt = page + 1 if page * size < len(sel) else None
        return httpx.Response(200, json={"items": chunk, "page": page, "page_size": size, "total": len(sel),
                                         "next_page": nxt})

    return handler, calls


def _items(n, start):
    return [{"eventId": f"E{i}", "idNumber": f"3101011990010{i:05d}", "name": "张三", "eventType": "birth",
             "updatedAt": (start + timedelta(minutes=i)).isoformat(), "extra": [1, None]} for i in range(n)]


def test_api_pages_window_and_retry():
    start = datetime(2026, 1, 2, tzinfo=SH)
    items = _items(12, start) + _items(1, start + timedelta(days=1))
    handler, calls = _api_handler(items, fail_first={2: 2})
    s = source("health_vital_events").__class__(**{**source("health_vital_events").__dict__, "page_size": 5})
    detail: dict = {}
    sleeps: list[float] = []
    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(handler)) as client:
        chunks = list(read_api(s, start, start + timedelta(days=1), chunk_rows=4, detail=detail, client=client,
                               sleep=sleeps.append))
    recs = [r for c in chunks for r in c]
    assert [len(c) for c in chunks] == [4, 4, 4]  # chunks span the pages of 5, 5 and 2
    assert [r.source_key for r in recs] == [f"E{i}" for i in range(12)]
    assert recs[0].origin == "api:/health/vital-events?page=1" and recs[-1].origin.endswith("page=3")
    assert recs[0].payload == items[0] and recs[0].canonical("name") == "张三" and recs[0].id_type == "RIC"
    assert recs[0].source_updated_at == start
    assert detail == {"total": 12, "pages": [{"page": 1, "rows": 5}, {"page": 2, "rows": 5}, {"page": 3, "rows": 2}]}
    assert len(sleeps) == 2  # two 503s on page 2, retried with backoff
    assert calls[0]["updated_since"] == start.isoformat() and calls[0]["page_size"] == "5"


def test_api_window_that_changes_while_read_fails_rather_than_skipping_a_record():
    from pipelines.sources.api import WindowChanged

    start = datetime(2026, 1, 2, tzinfo=SH)
    items = _items(12, start)
    handler, _ = _api_handler(items)

    def moving(request: httpx.Request) -> httpx.Response:  # E0 is updated at the source after page 1 is read
        if request.url.params["page"] == "2":
            items[0] = {**items[0], "updatedAt": (start + timedelta(days=2)).isoformat()}
        return handler(request)

    s = source("health_vital_events").__class__(**{**source("health_vital_events").__dict__, "page_size": 5})
    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(moving)) as client:
        with pytest.raises(WindowChanged, match="total went from 12 to 11 at page 2"):
            list(read_api(s, start, start + timedelta(days=1), chunk_rows=100, client=client, sleep=lambda s: None))

    handler, _ = _api_handler(_items(12, start))

    def short(request: httpx.Request) -> httpx.Response:  # pages shorter than the total says
        response = handler(request)
        body = response.json()
        return httpx.Response(200, json={**body, "items": body["items"][:4]})

    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(short)) as client:
        with pytest.raises(WindowChanged, match="10 items read from a window whose total is 12"):
            list(read_api(s, start, start + timedelta(days=1), chunk_rows=100, client=client, sleep=lambda s: None))


def test_api_4xx_is_a_clear_error():
    handler, _ = _api_handler([], status_4xx=400)
    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceApiError, match="HTTP 400.*updated_since must be before"):
            list(read_api(source("health_vital_events"), None, datetime(2026, 1, 2, tzinfo=timezone.utc), 10,
                          client=client, sleep=lambda s: None))


def test_api_5xx_gives_up_after_attempts():
    handler, calls = _api_handler([], fail_first={1: 99})
    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceApiError, match="after 4 attempts"):
            list(read_api(source("health_vital_events"), None, datetime(2026, 1, 2, tzinfo=timezone.utc), 10,
                          client=client, sleep=lambda s: None))
    assert len(calls) == 4


def test_plain_marks_rows_whose_fields_need_no_normalisation():
    """A record of text is plain unless a value holds whitespace (ASCII, escaped by JSON, or Unicode), a character of
    the blocks the full-width forms and the Unicode spaces live in, or anything JSON escapes; a record whose payload
    is not all text, or that is malformed, is not known (None): the candidates normalise it in full."""
    from pipelines.sources.records import canonical_utf8, is_plain, malformed_record

    plain = ["张三", "上海市黄浦区南京东路100弄5号301室", "RY0000080092", "310101", "é", "", "2026-01-01T00:00:00+08:00"]
    not_plain = ["张 三", "a\tb", "a\nb", "x\x0b", "ＡＢＣ", "张\u3000三", "\u00a0", "\u0085", "\u1680", "\u2002", "\u2028",
                 "\u202f", "\u205f", "\ufeff", "a\"b", "a\\b", "，"]
    assert [v for v in plain if not is_plain(canonical_utf8({"k": v}))] == []
    assert [v for v in not_plain if is_plain(canonical_utf8({"k": v}))] == []
    s = source("psb_residence_permit")
    assert build_record(s, {"JZZBH": "J1", "XM": "张三"}, "o:1").plain is True
    assert build_record(s, {"JZZBH": "J1", "XM": "John Smith"}, "o:1").plain is False
    assert build_record(s, {"JZZBH": "J1", "XM": "张三", "N": 3}, "o:1").plain is None  # (not all text)
    assert build_record(s, {"JZZBH": "J1", "XM": "a\x00b"}, "o:1").plain is None  # (a parse error)
    assert malformed_record(s, "a,b,c", "o:9", "expected 2 fields, got 3", None).plain is None


def test_extract_of_a_file_or_table_source_does_not_load_the_api_client():
    """An extract task of a 前置库 or file source never imports httpx and tenacity (a quarter of a second of each task
    process's start-up on a slow machine); the API reader is still importable from the package by name."""
    import subprocess
    import sys

    code = ("import sys; from pipelines.sources import stage_source; assert 'httpx' not in sys.modules;"
            " from pipelines.sources import read_api, SourceApiError; import pipelines.sources.api as a;"
            " assert read_api is a.read_api and SourceApiError is a.SourceApiError; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
    import pipelines.sources as package

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018
