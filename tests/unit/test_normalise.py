"""Text helpers: half-width, whitespace, dates (Python's datetime as the oracle) and sex codes. No database."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.normalise import normalise_sex, parse_dates, squash, to_halfwidth

FULLWIDTH_DIGITS = str.maketrans("0123456789-/.", "０１２３４５６７８９－／．")


@pytest.mark.parametrize("dtype", [object, "str"])
def test_to_halfwidth(dtype) -> None:
    s = pd.Series(["ＡＢＣ１２３", "ｘ\u3000ｙ！～", "plain", None, "汉字，（注）"], index=[5, 4, 3, 2, 1], dtype=dtype)
    out = to_halfwidth(s)
    assert out.tolist() == ["ABC123", "x y!~", "plain", None, "汉字,(注)"]
    assert list(out.index) == [5, 4, 3, 2, 1]


def test_to_halfwidth_covers_the_whole_block() -> None:
    wide = "".join(chr(c) for c in range(0xFF01, 0xFF5F))
    narrow = "".join(chr(c) for c in range(0x21, 0x7F))
    assert to_halfwidth(pd.Series([wide])).iloc[0] == narrow


@pytest.mark.parametrize("dtype", [object, "str"])
def test_squash(dtype) -> None:
    s = pd.Series(["  上海市 \t 黄浦区\u3000\u3000南京东路 ", "   ", "", None, "a"], dtype=dtype)
    assert squash(s).tolist() == ["上海市 黄浦区 南京东路", None, None, None, "a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02", "2026-01-02"),
        ("20260102", "2026-01-02"),
        ("2026/01/02", "2026-01-02"),
        ("2026/1/2", "2026-01-02"),
        ("2026.01.02", "2026-01-02"),
        ("2026年1月2日", "2026-01-02"),
        ("2026年01月02日", "2026-01-02"),
        ("2026-01-02 08:00:00", "2026-01-02 08:00:00"),
        ("2026-01-02T08:00:00", "2026-01-02 08:00:00"),
        ("2026-01-02T08:00:00.123+08:00", "2026-01-02 08:00:00"),
        ("2026-01-02 08:30", "2026-01-02 08:30:00"),
        ("20260102 23:59:59", "2026-01-02 23:59:59"),
        ("2026年1月2日 08:00", "2026-01-02 08:00:00"),
        ("２０２６－０１－０２", "2026-01-02"),
        ("  2000-02-29 ", "2000-02-29"),
    ],
)
def test_parse_dates_formats(text, expected) -> None:
    values, bad = parse_dates(pd.Series([text]))
    assert values.iloc[0] == pd.Timestamp(expected)
    assert not bad.iloc[0]


@pytest.mark.parametrize(
    "text",
    ["1999-02-30", "2026-13-01", "2026-00-10", "1900-02-29", "2026-04-31", "20261301", "2026-01-02 24:00",
     "2026-01-02 08:60", "2026-01/02", "02/01/2026", "abc", "2026", "2026-01", "1600-01-01", "9999-12-31",
     "2026年13月1日"],
)
def test_parse_dates_bad(text) -> None:
    values, bad = parse_dates(pd.Series([text]))
    assert pd.isna(values.iloc[0])
    assert bad.iloc[0]


def test_parse_dates_missing_is_not_bad() -> None:
    s = pd.Series([None, float("nan"), "", "   ", "2026-01-02"], index=list("abcde"), dtype=object)
    values, bad = parse_dates(s)
    assert values.isna().tolist() == [True, True, True, True, False]
    assert bad.tolist() == [False] * 5
    assert list(values.index) == list("abcde") and list(bad.index) == list("abcde")
    assert str(values.dtype) == "datetime64[ns]"


def test_parse_dates_against_python_datetime() -> None:
    """20k random (year, month, day) triples, a third impossible, in every format: ours equals datetime.date's."""
    rng = np.random.default_rng(11)
    n = 20_000
    y = rng.integers(1890, 2100, n)
    m = rng.integers(0, 14, n)
    d = rng.integers(0, 33, n)
    formats = [lambda a, b, c: f"{a}-{b:02d}-{c:02d}", lambda a, b, c: f"{a}{b:02d}{c:02d}",
               lambda a, b, c: f"{a}/{b}/{c}", lambda a, b, c: f"{a}.{b:02d}.{c:02d}",
               lambda a, b, c: f"{a}年{b}月{c}日", lambda a, b, c: f"{a}-{b:02d}-{c:02d}T12:34:56",
               lambda a, b, c: f"{a}-{b:02d}-{c:02d}".translate(FULLWIDTH_DIGITS)]
    texts, expected = [], []
    for i, (a, b, c) in enumerate(zip(y.tolist(), m.tolist(), d.tolist())):
        fmt = formats[i % len(formats)]
        texts.append(fmt(a, b, c))
        try:
            day = pd.Timestamp(dt.date(a, b, c))
            expected.append(day + pd.Timedelta("12:34:56") if "T" in texts[-1] else day)
        except ValueError:
            expected.append(pd.NaT)
    values, bad = parse_dates(pd.Series(texts))
    exp = pd.Series(expected, dtype="datetime64[ns]")
    assert (bad.to_numpy() == exp.isna().to_numpy()).all()
    assert values.equals(exp)
    assert 0.2 < bad.mean() < 0.5


def test_parse_dates_accepts_datetime_and_date_objects() -> None:
    s = pd.Series([dt.date(1990, 1, 2), dt.datetime(1990, 1, 2, 8, 0), None, 19900102], dtype=object)
    values, bad = parse_dates(s)
    assert values.tolist()[:2] == [pd.Timestamp("1990-01-02"), pd.Timestamp("1990-01-02 08:00")]
    assert pd.isna(values.iloc[2]) and values.iloc[3] == pd.Timestamp("1990-01-02")
    assert not bad.any()
    already = pd.Series(pd.to_datetime(["2020-01-01", None]))
    values, bad = parse_dates(already)
    assert values.iloc[0] == pd.Timestamp("2020-01-01") and not bad.any()


def test_normalise_sex() -> None:
    s = pd.Series(["1", "男", "M", "m", "Male", "男性", "Ｍ", "2", "女", "F", "female", "ＦＥＭＡＬＥ", " 女 ", "9", "0",
                   "未知", "未说明", None, "", "x", "3", "男女", 1, 2.0], dtype=object)
    codes, bad = normalise_sex(s)
    assert codes.tolist() == ["1"] * 7 + ["2"] * 6 + ["9"] * 4 + [None] * 5 + ["1", None]
    assert bad.tolist() == [False] * 19 + [True] * 3 + [False, True]
    assert codes.dtype == object


def test_normalise_sex_keeps_index_and_many_rows() -> None:
    s = pd.Series(np.random.default_rng(1).choice(["男", "女", "F", None], 10_000), dtype=object)
    s.index = s.index[::-1]
    codes, bad = normalise_sex(s)
    assert list(codes.index) == list(s.index)
    expected = s.map({"男": "1", "女": "2", "F": "2"})
    assert (codes.fillna("-") == expected.fillna("-")).all()
    assert not bad.any()


def test_dates_read_from_their_bytes_are_the_dates_the_parser_gives():
    """The distinct values spelled exactly YYYY-MM-DD or YYYYMMDD in ASCII digits are read from their bytes (numpy),
    the others by the general path: over random values of every spelling — padded and unpadded, with times, with
    slashes, full-width or Arabic-Indic digits, impossible days and months, years out of range, signs, blanks — the
    same dates and bad flags as the general path alone, for object and string columns."""
    import random

    from pipelines.normalise import _parse_distinct, _parse_general

    rng = random.Random(20261206)

    def value():
        r = rng.random()
        y, m, d = rng.randint(1600, 2300), rng.randint(0, 13), rng.randint(0, 32)
        if r < 0.4:
            return f"{y:04d}-{m:02d}-{d:02d}"
        if r < 0.5:
            return f"{y}-{m}-{d}"
        if r < 0.7:
            return f"{y:04d}{m:02d}{d:02d}"
        if r < 0.75:
            return f"{y:04d}/{m:02d}/{d:02d}"
        if r < 0.8:
            return rng.choice(["２０２６-01-02", "２０２６０１０２", "2026０102"])
        if r < 0.85:
            return f"{y:04d}-{m:02d}-{d:02d} 08:00:00"
        if r < 0.9:
            return "".join(rng.choice("0123456789-+ /x٣") for _ in range(rng.choice([8, 10])))
        return rng.choice(["", " ", "garbage", "2026年1月2日", "0000-01-01", "00000101", "2026-1-02", "+026-01-02",
                           "+0260102", "2026-01-0 ", "2026_01_02", "2026010 ", "-2026010"])

    for _ in range(300):
        values = list(dict.fromkeys(value() for _ in range(rng.randint(0, 60))))
        for s in (pd.Series(values, dtype=object), pd.Series(values)):
            fast, general = _parse_distinct(s), _parse_general(s)
            assert fast[0].astype("int64").tolist() == general[0].astype("int64").tolist(), values
            assert np.array_equal(fast[1], general[1]), values
    dates, bad = parse_dates(pd.Series(["19841024", "1984-10-24", None, "1984-02-30", "19840230"]))
    assert dates.dt.strftime("%Y-%m-%d").tolist()[:2] == ["1984-10-24", "1984-10-24"]
    assert bad.tolist() == [False, False, False, True, True]
