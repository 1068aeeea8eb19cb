"""Identifier rules against python-stdnum (the oracle) and hand-picked cases with their reason codes. No database.

The big comparison generates >= 50k numbers (valid ones from every division in stdnum's data, and corrupted ones)
and asserts that our verdict and first reason equal stdnum's, except exactly where the district code postdates the
birth year: there we accept with W_DIVISION_POSTDATES_BIRTH and stdnum rejects (DESIGN.md, known traps).
Normalisation (full-width, spaces, lowercase x) and the 15-digit upgrade are ours: stdnum is asked about the
normalised / upgraded number. Birth dates are drawn from 1890-01-01..AS_OF because stdnum does not check the range
(a future date is ours alone, tested by hand below).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from stdnum import numdb
from stdnum.cn import ric as sric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from pipelines import reasons as rc
from pipelines.identity import ID_TYPE_ALIASES, check_identities, check_passport, check_prp, divisions
from pipelines.identity.flags import from_pg_array
from pipelines.identity.ric import check_ric, mod11_2

AS_OF = dt.date(2026, 1, 15)
FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def _stdnum_codes() -> list[str]:
    return [p + c for _, p, _, _, counties in numdb.get("cn/loc").prefixes for _, c, _, _, _ in counties]


STDNUM_CODES = _stdnum_codes()


def with_check(body17: str) -> str:
    return body17 + sric.calc_check_digit(body17 + "0")


def stdnum_reason(number: str) -> str | None:
    """stdnum's verdict on a normalised 18-character number, as our reason code (None: valid)."""
    try:
        sric.validate(number)
        return None
    except (InvalidLength, InvalidFormat):
        return rc.ID_BAD_FORMAT
    except InvalidChecksum:
        # stdnum checks only that the first 17 are digits; a last character other than a digit or X is a format
        # error for us (GB 11643: the check character is 0-9 or X), a checksum error for stdnum
        return rc.ID_BAD_CHECK_DIGIT if number[-1] in "0123456789X" else rc.ID_BAD_FORMAT
    except InvalidComponent:
        try:
            sric.get_birth_date(number)
        except InvalidComponent:
            return rc.ID_BAD_BIRTH_DATE
        return rc.ID_UNKNOWN_DIVISION
    except KeyError:
        # stdnum 2.2 raises KeyError (not InvalidComponent) for an unknown county under a known province, e.g. 319999
        return rc.ID_UNKNOWN_DIVISION


def periods(code: str) -> list[tuple[int, int]]:
    """The code's periods of use parsed from stdnum's county string, independently of pipelines.identity."""
    info = {k: v for _, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    out = []
    for part in info["county"].split(","):
        if not part.startswith("["):
            out.append((0, 9999))
            continue
        start, end = part[1:].split("]")[0].split("-")
        out.append((int(start or 0), int(end or 9999)))
    return out


def reasons_of(frame: pd.DataFrame) -> list[list[str]]:
    return [from_pg_array(x) for x in frame["reasons"]]


def warnings_of(frame: pd.DataFrame) -> list[list[str]]:
    return [from_pg_array(x) for x in frame["warnings"]]


# ---------------------------------------------------------------------------------------------------------------
# The big comparison with stdnum
@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    """~70k numbers: (raw input, the normalised/upgraded 18-char number stdnum is asked about, kind)."""
    rng = np.random.default_rng(20260115)
    shanghai = [c for c in STDNUM_CODES if c.startswith("31")]

    def valid_bodies(n: int, lo: dt.date = dt.date(1890, 1, 1), hi: dt.date = AS_OF) -> list[str]:
        codes = np.where(rng.random(n) < 0.5, rng.choice(shanghai, n), rng.choice(STDNUM_CODES, n))
        days = rng.integers(0, (hi - lo).days + 1, n)
        births = [lo + dt.timedelta(days=int(d)) for d in days]
        seq = rng.integers(0, 1000, n)
        return [f"{c}{b:%Y%m%d}{s:03d}" for c, b, s in zip(codes, births, seq)]

    rows: list[tuple[str, str, str]] = []
    for body in valid_bodies(30_000):
        n = with_check(body)
        rows.append((n, n, "valid"))
    for body in valid_bodies(6_000):
        n = with_check(body)
        wrong = "0123456789X".replace(n[-1], "")[rng.integers(0, 10)]
        rows.append((n[:17] + wrong, n[:17] + wrong, "bad_check"))
    for body in valid_bodies(6_000):
        month, day = [("13", "01"), ("00", "10"), ("02", "30"), ("04", "31"), ("06", "00"), ("01", "32")][
            rng.integers(0, 6)]
        n = with_check(body[:10] + month + day + body[14:])
        rows.append((n, n, "bad_date"))
    known = set(STDNUM_CODES)
    unknown = [f"{c:06d}" for c in rng.integers(100000, 999999, 20_000) if f"{c:06d}" not in known][:6_000]
    for code, body in zip(unknown, valid_bodies(len(unknown))):
        n = with_check(code + body[6:])
        rows.append((n, n, "unknown_division"))
    for body in valid_bodies(6_000, dt.date(1900, 1, 1), dt.date(1999, 12, 31)):
        n18 = with_check(body)
        rows.append((n18[:6] + n18[8:17], n18, "legacy_15"))
    x_numbers = [n for n in (with_check(b) for b in valid_bodies(60_000)) if n.endswith("X")][:5_000]
    for n in x_numbers:
        rows.append((n[:17] + "x", n, "lowercase_x"))
    for body in valid_bodies(6_000):
        n = with_check(body)
        k = int(rng.integers(1, 18))
        rows.append((n[:k].translate(FULLWIDTH) + n[k:], n, "fullwidth"))
    for body in valid_bodies(6_000):
        n = with_check(body)
        a, b = sorted(rng.integers(1, 18, 2))
        rows.append(("\u3000" + n[:a] + " " + n[a:b] + "\t" + n[b:] + " ", n, "spaces"))
    bad = ["31010119900101123", "3101011990010112345", "31010119900101123A", "ABCDEFGHIJKLMNOPQR",
           "3101011990-01-01123", "31010119900101123Y", "310101X99001011234", "1234567890123456"]
    for raw in bad * 250:
        rows.append((raw, raw, "bad_format"))
    frame = pd.DataFrame(rows, columns=["raw", "oracle_input", "kind"])
    frame.index = pd.RangeIndex(1000, 1000 + len(frame))  # not 0..n: results must align on the input's index
    return frame


@pytest.fixture(scope="module")
def compared(generated: pd.DataFrame) -> pd.DataFrame:
    out = check_ric(generated["raw"], AS_OF)
    out["kind"] = generated["kind"]
    out["oracle_input"] = generated["oracle_input"]
    out["oracle"] = [stdnum_reason(n) for n in generated["oracle_input"]]
    out["ours"] = reasons_of(out)
    out["warns"] = warnings_of(out)
    return out


def test_generated_set_is_large_and_varied(compared: pd.DataFrame) -> None:
    assert len(compared) >= 50_000
    counts = compared["kind"].value_counts()
    assert counts.min() >= 2_000, counts
    assert set(compared["oracle"].dropna()) == {rc.ID_BAD_FORMAT, rc.ID_BAD_CHECK_DIGIT, rc.ID_BAD_BIRTH_DATE,
                                                rc.ID_UNKNOWN_DIVISION}


def test_verdicts_equal_stdnum_except_division_postdating_birth(compared: pd.DataFrame) -> None:
    ours_valid = compared["ours"].map(len) == 0
    oracle_valid = compared["oracle"].isna()
    postdates = compared["warns"].map(lambda w: rc.W_DIVISION_POSTDATES_BIRTH in w)

    # stdnum accepts -> we accept, and never with the postdates warning
    assert ours_valid[oracle_valid].all()
    assert not postdates[oracle_valid].any()
    # stdnum rejects and we reject -> same first reason (both check format, check digit, date, place in order)
    both_reject = ~oracle_valid & ~ours_valid
    first = compared.loc[both_reject, "ours"].map(lambda r: r[0])
    pd.testing.assert_series_equal(first, compared.loc[both_reject, "oracle"], check_names=False)
    # the only disagreement: stdnum rejects the place, we accept with W_DIVISION_POSTDATES_BIRTH
    disagree = compared[~oracle_valid & ours_valid]
    assert (disagree["oracle"] == rc.ID_UNKNOWN_DIVISION).all()
    assert disagree["warns"].map(lambda w: rc.W_DIVISION_POSTDATES_BIRTH in w).all()
    assert (postdates == (~oracle_valid & ours_valid)).all()
    # and each of them really is a code that came into use after the birth year (checked on stdnum's own text)
    for number in disagree["id_number"]:
        year = int(number[6:10])
        ps = periods(number[:6])
        assert not any(s <= year <= e for s, e in ps) and any(s > year for s, e in ps), number
    assert len(disagree) > 1_000  # the case is common (every code created since 1980), so it is well exercised


def test_accepted_numbers_carry_stdnum_fields(compared: pd.DataFrame) -> None:
    ok = compared[compared["ours"].map(len) == 0]
    assert len(ok) > 40_000
    assert (ok["id_number"] == ok["oracle_input"]).all()
    births = ok["oracle_input"].map(lambda n: pd.Timestamp(sric.get_birth_date(n)))
    assert (ok["id_birth_date"] == births).all()
    assert (ok["id_sex"] == ok["oracle_input"].map(lambda n: "1" if int(n[16]) % 2 else "2")).all()
    assert (ok["id_division"] == ok["oracle_input"].str[:6]).all()
    rejected = compared[compared["ours"].map(len) > 0]
    assert rejected["id_number"].isna().all() and rejected["id_birth_date"].isna().all()
    assert rejected["id_sex"].isna().all() and rejected["id_division"].isna().all()


def test_normalisation_and_upgrade_warnings(compared: pd.DataFrame) -> None:
    for kind in ("lowercase_x", "fullwidth", "spaces"):
        part = compared[compared["kind"] == kind]
        assert part["warns"].map(lambda w: rc.W_ID_NORMALISED in w).all(), kind
        accepted = part["ours"].map(len) == 0
        assert accepted.sum() > 0.5 * len(part)
        assert (part.loc[accepted, "id_number"] == part.loc[accepted, "oracle_input"]).all(), kind
    legacy = compared[compared["kind"] == "legacy_15"]
    assert legacy["warns"].map(lambda w: rc.W_ID_UPGRADED_15 in w).all()
    assert not legacy["warns"].map(lambda w: rc.W_ID_NORMALISED in w).any()
    accepted = legacy["ours"].map(len) == 0
    assert (legacy.loc[accepted, "id_number"] == legacy.loc[accepted, "oracle_input"]).all()
    clean = compared[compared["kind"].isin(["valid", "bad_check", "bad_date"])]
    assert not clean["warns"].map(lambda w: rc.W_ID_NORMALISED in w or rc.W_ID_UPGRADED_15 in w).any()


def test_retired_warning_matches_stdnum_data(compared: pd.DataFrame) -> None:
    ok = compared[compared["ours"].map(len) == 0]
    retired = ok["id_division"].map(lambda c: all(e != 9999 for _, e in periods(c)))
    warned = ok["warns"].map(lambda w: rc.W_DIVISION_RETIRED in w)
    assert (retired == warned).all()
    assert warned.sum() > 500


def test_check_character_equals_stdnum() -> None:
    rng = np.random.default_rng(7)
    bodies = rng.integers(0, 10, (20_000, 17), dtype=np.int8)
    ours = mod11_2(bodies).tobytes().decode("ascii")
    theirs = "".join(sric.calc_check_digit("".join(map(str, b)) + "0") for b in bodies)
    assert ours == theirs
    assert "X" in ours


# ---------------------------------------------------------------------------------------------------------------
# Hand-picked RIC cases
def one(number, as_of: dt.date = AS_OF) -> pd.Series:
    return check_ric(pd.Series([number], dtype=object), as_of).iloc[0]


@pytest.mark.parametrize(
    ("number", "reasons", "warnings"),
    [
        (with_check("31010119900101123"), [], []),
        (with_check("31011519850304123"), [], [rc.W_DIVISION_POSTDATES_BIRTH]),   # 浦东 from 1992, born 1985
        (with_check("31011519920101123"), [], []),
        (with_check("31015120000101123"), [], [rc.W_DIVISION_POSTDATES_BIRTH]),   # 崇明区 from 2016
        (with_check("31023019900101123"), [], [rc.W_DIVISION_RETIRED]),           # 崇明县 until 2016
        (with_check("31010319800101124"), [], [rc.W_DIVISION_RETIRED]),           # 卢湾 until 2011
        (with_check("31010820150101124"), [], [rc.W_DIVISION_RETIRED]),           # 闸北 until 2015
        (with_check("31011919660101124"), [], [rc.W_DIVISION_RETIRED, rc.W_DIVISION_POSTDATES_BIRTH]),  # 南汇区 2001-2009
        (with_check("31010320150101124"), [rc.ID_UNKNOWN_DIVISION], []),          # 卢湾 ended before the birth
        (with_check("99999919900101123"), [rc.ID_UNKNOWN_DIVISION], []),
        (with_check("31999919900101123"), [rc.ID_UNKNOWN_DIVISION], []),
        (with_check("31010119900230123"), [rc.ID_BAD_BIRTH_DATE], []),
        (with_check("31010120300101123"), [rc.ID_BAD_BIRTH_DATE], []),            # future: stdnum would accept
        (with_check("31010118891231123"), [rc.ID_BAD_BIRTH_DATE], []),            # before 1890
        (with_check("31010119900101123")[:17] + "0", [rc.ID_BAD_CHECK_DIGIT], []),
        ("31010119900101123", [rc.ID_BAD_FORMAT], []),
        ("3101011990010112X3", [rc.ID_BAD_FORMAT], []),
        ("身份证", [rc.ID_BAD_FORMAT], []),
        (None, [], []),
        ("", [], []),
        (" \u3000 ", [], []),
    ],
)
def test_hand_picked(number, reasons, warnings) -> None:
    r = one(number)
    assert from_pg_array(r["reasons"]) == reasons
    assert sorted(from_pg_array(r["warnings"])) == sorted(warnings)
    if reasons or number is None or not str(number).strip():
        assert r["id_number"] is None
    else:
        assert r["id_number"] == number


def test_birth_date_on_as_of_is_fine_and_day_after_is_not() -> None:
    n = with_check("31010120260115123")
    assert one(n, dt.date(2026, 1, 15))["reasons"] == "{}"
    assert one(n, dt.date(2026, 1, 14))["reasons"] == "{ID_BAD_BIRTH_DATE}"


def test_fifteen_digit_upgrade_and_fields() -> None:
    n18 = with_check("31010419750823042")
    r = one(n18[:6] + n18[8:17])
    assert r["id_number"] == n18
    assert r["warnings"] == "{W_ID_UPGRADED_15}"
    assert r["id_birth_date"] == pd.Timestamp("1975-08-23")
    assert r["id_sex"] == "2" and r["id_division"] == "310104"


def test_normalised_forms() -> None:
    n = next(with_check(f"31010119900101{i:03d}") for i in range(200)
             if with_check(f"31010119900101{i:03d}").endswith("X"))
    for raw in (n[:17] + "x", n.translate(FULLWIDTH), f" {n[:6]} {n[6:14]}\u3000{n[14:]}\n", "\ufeff" + n):
        r = one(raw)
        assert (r["id_number"], r["reasons"], r["warnings"]) == (n, "{}", "{W_ID_NORMALISED}"), raw
    assert one(n)["warnings"] == "{}"


def test_non_string_input_is_converted() -> None:
    r = check_ric(pd.Series([310101199001011234, None], dtype=object), AS_OF)
    assert r["id_number"].tolist() == ["310101199001011234", None]


# ---------------------------------------------------------------------------------------------------------------
# Divisions
def test_shanghai_districts_are_current_with_stdnum_names() -> None:
    codes = list(divisions.SHANGHAI_DISTRICTS)
    assert len(codes) == 16
    assert divisions.is_known(codes).all() and not divisions.is_retired(codes).any()
    assert list(divisions.district_name(codes)) == list(divisions.SHANGHAI_DISTRICTS.values())
    assert list(divisions.current_successor(codes)) == codes
    current_in_stdnum = {c for c in STDNUM_CODES if c.startswith("3101") and periods(c)[-1][1] == 9999}
    assert current_in_stdnum - {"310100"} == set(codes)


def test_shanghai_retired_codes_follow_stdnum() -> None:
    retired_in_stdnum = {c for c in STDNUM_CODES if c.startswith("31") and all(e != 9999 for _, e in periods(c))}
    assert set(divisions.SHANGHAI_RETIRED) == retired_in_stdnum
    for code, (name, _succ, year) in divisions.SHANGHAI_RETIRED.items():
        assert max(e for _, e in periods(code)) == year, code
        assert divisions.district_name([code])[0] == name
    assert divisions.is_retired(list(retired_in_stdnum)).all()
    got = dict(zip(divisions.SHANGHAI_RETIRED, divisions.current_successor(list(divisions.SHANGHAI_RETIRED))))
    assert {k: got[k] for k in ("310103", "310108", "310230", "310119", "310205", "310210")} == {
        "310103": "310101", "310108": "310106", "310230": "310151", "310119": "310115", "310205": "310115",
        "310210": "310151"}
    assert got["310200"] is None
    assert {v for k, v in got.items() if k != "310200"} <= set(divisions.SHANGHAI_DISTRICTS)
    assert {k: divisions.SHANGHAI_RETIRED[k][2] for k in ("310103", "310108", "310230", "310119")} == {
        "310103": 2011, "310108": 2015, "310230": 2016, "310119": 2009}


def test_first_valid_year_and_lookups_accept_str_and_int() -> None:
    codes = ["310115", "310151", "310101", "310114", "999999", None, "31011", "31011x", " 310115"]
    assert divisions.first_valid_year(codes).tolist() == [1992, 2016, divisions.ALWAYS, 1992] + [divisions.UNKNOWN] * 5
    assert divisions.is_known(codes).tolist() == [True, True, True, True, False, False, False, False, False]
    assert divisions.is_known(np.array([310115, 999999, -5, 10**7])).tolist() == [True, False, False, False]
    assert divisions.is_known(pd.Series(["110105", "440305", "710000", "820000"])).all()
    assert divisions.district_name(pd.Series([310115, 440305])).tolist() == ["浦东新区", "南山区"]
    assert divisions.current_successor(["440305", "999999", "110103"]).tolist() == ["440305", None, None]


def test_period_status_equals_stdnum_for_every_code() -> None:
    """Our 'in use in the birth year' equals stdnum.get_birth_place for all 6.9k codes, including the reused ones
    with a gap between periods (e.g. 511403 [1995-1997]李渡区,[2014-]彭山区)."""
    years = [1950, 1983, 1992, 1996, 1999, 2001, 2010, 2016, 2025]
    codes = [c for c in STDNUM_CODES for _ in years]
    ys = years * len(STDNUM_CODES)
    in_use, later = divisions.period_status(codes, ys)

    def stdnum_ok(code: str, year: int) -> bool:
        try:
            sric.get_birth_place(f"{code}{year}0101001X")
            return True
        except InvalidComponent:
            return False

    assert in_use.tolist() == [stdnum_ok(c, y) for c, y in zip(codes, ys)]
    assert not (in_use & later).any()
    assert in_use[np.array(codes) == "511403"].tolist() == [False, False, False, True, False, False, False, True, True]
    assert later[np.array(codes) == "511403"].tolist() == [True, True, True, False, True, True, True, False, False]


# ---------------------------------------------------------------------------------------------------------------
# Foreign documents
def test_passports() -> None:
    r = check_passport(pd.Series(["E12345678", "e1234 5678", "Ｇ１２３４５６７８", "AB12", "A" * 18, "E1234-5678", None]))
    assert r["id_number"].tolist() == ["E12345678", "E12345678", "G12345678", None, None, None, None]
    bad = [rc.FOREIGN_ID_BAD_FORMAT]
    assert reasons_of(r) == [[], [], [], bad, bad, bad, []]
    assert warnings_of(r)[:3] == [[], [rc.W_ID_NORMALISED], [rc.W_ID_NORMALISED]]


def test_permanent_residence_cards() -> None:
    new = with_check("93101119800101123")   # 2023 card: MOD 11-2 like the RIC (NIA 2023 machine-readable rules)
    wrong = new[:17] + ("0" if new[-1] != "0" else "1")
    r = check_prp(pd.Series(["USA310119800101", "usa 310119800101", new, wrong, "US3101198001011",
                             with_check("13101119800101123"), "USA31011980010", None]))
    assert r["id_number"].tolist() == ["USA310119800101", "USA310119800101", new, None, None, None, None, None]
    assert reasons_of(r) == [[], [], [], [rc.ID_BAD_CHECK_DIGIT], [rc.FOREIGN_ID_BAD_FORMAT],
                             [rc.FOREIGN_ID_BAD_FORMAT], [rc.FOREIGN_ID_BAD_FORMAT], []]


# ---------------------------------------------------------------------------------------------------------------
# check_identities
def identities(rows: list[tuple], index=None) -> pd.DataFrame:
    cols = list(zip(*rows))
    idx = pd.Index(index) if index is not None else pd.RangeIndex(len(rows))
    series = [pd.Series(list(c), index=idx, dtype=object) for c in cols]
    return check_identities(*series, as_of=AS_OF)


def test_id_type_aliases() -> None:
    n = with_check("31010119900101123")
    types = [None, "", "居民身份证", "身份证", "111", "ric", "护照", "普通护照", "414", "PASSPORT", "外国人永久居留身份证",
             "永久居留证", "553", "ＰＲＰ", " 护照 ", "军官证", "999"]
    r = identities([(t, "E1234567" if t and "护照" in t else n, None, None) for t in types])
    assert r["id_type"].tolist() == ["RIC"] * 6 + ["PASSPORT"] * 4 + ["PRP"] * 4 + ["PASSPORT", None, None]
    assert reasons_of(r)[-2:] == [[rc.ID_TYPE_UNKNOWN]] * 2
    assert r["id_number"].iloc[-2:].isna().all()
    assert set(ID_TYPE_ALIASES.values()) == {"RIC", "PASSPORT", "PRP"}


def test_cross_checks_and_fallbacks() -> None:
    man = with_check("31010119900101123")      # 17th digit 3: male
    woman = with_check("31010419851231124")    # 4: female
    bad = man[:17] + ("0" if man[-1] != "0" else "1")
    r = identities([
        ("RIC", man, "男", "1990-01-01"),                 # all agree
        ("RIC", man, "女", "1990/01/02"),                 # both disagree
        ("RIC", woman, None, None),                       # taken from the ID
        ("RIC", woman, "未知", "1985年12月31日 08:00"),    # 9 -> the ID's; same day with a time
        ("RIC", bad, "F", "1999-02-30"),                  # rejected number and an impossible declared date
        ("PASSPORT", "E1234567", "female", "19800101"),
        ("PRP", "USA310119800101", "x?", "not a date"),
        ("军官证", None, "1", None),
        ("RIC", None, "2", "2000-01-01"),
    ], index=[10, 30, 20, 50, 40, 60, 70, 80, 90])
    assert list(r.index) == [10, 30, 20, 50, 40, 60, 70, 80, 90]
    assert r["reasons"].tolist() == ["{}", "{SEX_MISMATCH,BIRTH_DATE_MISMATCH}", "{}", "{}",
                                     "{ID_BAD_CHECK_DIGIT,BAD_DATE}", "{}", "{BAD_DATE}", "{}", "{}"]
    assert r["sex"].tolist() == ["1", "2", "2", "2", "2", "2", None, "1", "2"]
    assert r["birth_date"].tolist()[:4] == [pd.Timestamp("1990-01-01"), pd.Timestamp("1990-01-02"),
                                           pd.Timestamp("1985-12-31"), pd.Timestamp("1985-12-31")]
    assert pd.isna(r["birth_date"].loc[40]) and r["birth_date"].loc[60] == pd.Timestamp("1980-01-01")
    assert r["birth_date"].loc[90] == pd.Timestamp("2000-01-01")
    assert r["id_sex"].tolist()[:5] == ["1", "1", "2", "2", None]
    assert r["id_division"].loc[20] == "310104" and r["id_number"].loc[40] is None
    assert r["id_type"].loc[80] is None and r["id_number"].loc[90] is None


def test_output_is_ready_for_copy() -> None:
    r = identities([("RIC", with_check("31010119900101123"), "男", None), ("RIC", "x", None, None)])
    assert list(r.columns) == ["id_type", "id_number", "id_birth_date", "id_sex", "id_division", "sex",
                               "birth_date", "reasons", "warnings"]
    assert r["reasons"].tolist() == ["{}", "{ID_BAD_FORMAT}"]
    assert r["id_number"].tolist()[1] is None  # None, not NaN, for COPY's NULL
    assert str(r["id_birth_date"].dtype) == "datetime64[ns]" and str(r["birth_date"].dtype) == "datetime64[ns]"


def test_misaligned_inputs_are_refused() -> None:
    a = pd.Series(["RIC", "RIC"], index=[1, 2])
    b = pd.Series([with_check("31010119900101123"), None], index=[2, 1])
    with pytest.raises(ValueError, match="share id_number's index"):
        check_identities(a, b, None, None, AS_OF)


def test_the_division_table_cache_holds_the_table_stdnum_gives(tmp_path, monkeypatch):
    """divisions._load: the table as _build makes it from stdnum's loc.dat, whether read from the cache file, written
    to it, or rebuilt because the file is unreadable (a partial write, another numpy): never a different table."""
    import numpy as np

    built = divisions._build()
    path = tmp_path / "cache" / "table.pickle"
    monkeypatch.setattr(divisions, "cache_path", lambda: path)

    def same(table):  # (index, starts, ends, codes, names): the index is that of the codes
        index, *rest = table
        return (all(np.array_equal(a, b) for a, b in zip(rest[:3], built[:3])) and rest[3] == built[3]
                and np.array_equal(index[built[2]], np.arange(len(built[2]))) and (index >= 0).sum() == len(built[2]))

    assert same(divisions._load()) and path.exists()  # built, then written
    assert same(divisions._load())  # read back
    path.write_bytes(b"not a pickle")
    assert same(divisions._load())  # unreadable: built again and rewritten
    assert same(divisions._load())
    assert not list(path.parent.glob("*.tmp"))


def test_the_division_table_cache_is_named_by_what_it_was_built_from():
    """A new stdnum, or another loc.dat, is another cache file (never a table built from other data)."""
    import stdnum

    path = divisions.cache_path()
    stat = divisions._loc_dat().stat()
    assert path.name == f"gbt2260-stdnum{stdnum.__version__}-{stat.st_size}-{stat.st_mtime_ns}.pickle"


def test_division_codes_are_read_as_six_ascii_digits_without_pandas():
    """code_values reads text as pandas' ``str.fullmatch("[0-9]{6}")`` did (it no longer imports pandas): six ASCII
    digits are a code; another length, full-width or other Unicode digits, spaces, numbers in text columns, None
    and NaN are not. Integer columns are codes when in range; a Series is read like its values."""
    texts = ["310101", "310115", "３１０１０１", "31010", "3101011", " 310101", "310101\n", "٣١٠١٠١", "31O101", "",
             None, float("nan"), 310101, np.str_("310104"), "000000", "999999"]
    reference = pd.Series(texts, dtype=object).str.fullmatch(r"[0-9]{6}").fillna(False).to_numpy(dtype=bool)
    expected = [int(t) if ok else -1 for t, ok in zip(texts, reference)]
    assert divisions.code_values(np.array(texts, dtype=object)).tolist() == expected
    assert divisions.code_values(pd.Series(texts, dtype=object)).tolist() == expected
    assert divisions.code_values([310101, -1, 1_000_000, 0]).tolist() == [310101, -1, -1, 0]
    assert divisions.code_values(np.array(["310101", "310115"])).tolist() == [310101, 310115]


def test_publication_tasks_do_not_import_pandas():
    """A publication task process needs the division tables, not the batch checks: importing pipelines.publish.flow
    leaves pandas out (pipelines/identity/__init__.py imports the checks when one is named)."""
    import subprocess
    import sys
    code = ("import sys, pipelines.publish.flow; assert 'pandas' not in sys.modules, 'pandas imported'; "
            "from pipelines.identity import check_ric, divisions; "
            "assert callable(check_ric) and divisions.SHANGHAI_DISTRICTS")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
