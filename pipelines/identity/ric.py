"""公民身份号码 (GB 11643-1999, the resident identity card number), checked a whole column at a time.

Why by hand and not ``stdnum.cn.ric`` (the oracle in tests): stdnum checks one string at a time (~26 s for 1M,
DESIGN.md) and rejects genuine numbers whose district code postdates the birth year, which we must only warn on.
Here the normalised numbers are viewed as an (n, 18) uint8 matrix and every rule is numpy arithmetic on it.

Rules, in stdnum's order: normalise (half-width, no whitespace, x -> X: W_ID_NORMALISED); a 15-digit legacy
number is upgraded to 18 (insert "19", compute the check character: W_ID_UPGRADED_15); 17 digits + digit/X else
ID_BAD_FORMAT; ISO 7064 MOD 11-2 check character else ID_BAD_CHECK_DIGIT; birth date real, not after ``as_of``
and not before 1890 else ID_BAD_BIRTH_DATE (stdnum checks only the first); first six digits a GB/T 2260 code
else ID_UNKNOWN_DIVISION. The code must have been in use in the birth year (as stdnum) *or later*: a code that
came into use only after the birth year is a number issued later (W_DIVISION_POSTDATES_BIRTH, accepted; stdnum
rejects it); a code whose every period ended before the birth year cannot be on the number (ID_UNKNOWN_DIVISION,
as stdnum). A retired code (310103 卢湾) is accepted with W_DIVISION_RETIRED.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipelines import reasons as rc
from pipelines.identity import divisions
from pipelines.identity.flags import R, W, mask, reasons_literal, warnings_literal
from pipelines.identity.compact import compact, is_digit
from pipelines.normalise import valid_ymd, ymd_to_datetime64

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int32)
CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)  # indexed by (sum of weighted digits) mod 11
EARLIEST_BIRTH = np.datetime64("1890-01-01", "D")
_SEX_BY_PARITY = np.array(["2", "1"], dtype=object)  # 17th digit even: female, odd: male (GB/T 2261.1 codes)
_POW = {k: (10 ** np.arange(k - 1, -1, -1)).astype(np.int64) for k in (2, 4, 6)}


def mod11_2(body: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check character (as an ASCII byte) of each row of an (n, 17) array of digit values."""
    return CHECK_CHARS[(body.astype(np.int32) @ WEIGHTS) % 11]


def matrix_strings(m: np.ndarray) -> np.ndarray:
    """Object array of str from an (n, width) ASCII code matrix (viewed as fixed-width unicode, no Python loop)."""
    n, width = m.shape
    if n == 0:
        return np.array([], dtype=object)
    return np.ascontiguousarray(m, dtype=np.uint32).view(f"<U{width}").reshape(n).astype(object)


def object_frame(columns: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """DataFrame keeping object columns as object dtype with None (pandas 3 would infer ``str`` with NaN)."""
    return pd.DataFrame({k: pd.Series(v, index=index, dtype=object if v.dtype == object else None)
                         for k, v in columns.items()}, index=index)


def _number(d: np.ndarray, start: int, width: int) -> np.ndarray:
    return d[:, start:start + width].astype(np.int64) @ _POW[width]


def ric_arrays(values: pd.Series, as_of: dt.date) -> dict[str, np.ndarray]:
    """The checks on a column, as numpy arrays (see ``check_ric``); reasons/warnings as bit masks."""
    c = compact(values)
    n = len(c.lengths)
    m18 = c.matrix(c.lengths == 18, 18)
    is18 = np.zeros(n, dtype=bool)
    is18[c.lengths == 18] = is_digit(m18[:, :17]).all(axis=1) & (is_digit(m18[:, 17]) | (m18[:, 17] == ord("X")))
    m15 = c.matrix(c.lengths == 15, 15)
    is15 = np.zeros(n, dtype=bool)
    is15[c.lengths == 15] = is_digit(m15).all(axis=1)
    usable = is18 | is15
    bad_format = ~c.missing & ~usable

    m = np.full((n, 18), ord("0"), dtype=np.uint8)
    m[is18] = m18[is18[c.lengths == 18]]
    if is15.any():
        m15 = m15[is15[c.lengths == 15]]
        m[is15, :6] = m15[:, :6]
        m[is15, 6:8] = np.frombuffer(b"19", dtype=np.uint8)
        m[is15, 8:17] = m15[:, 6:]
    d = (m[:, :17] - ord("0")).astype(np.int8)
    check = mod11_2(d)
    m[is15, 17] = check[is15]
    bad_check = is18 & (m[:, 17] != check)

    year, month, day = _number(d, 6, 4), _number(d, 10, 2), _number(d, 12, 2)
    real = usable & valid_ymd(year, month, day)
    birth = ymd_to_datetime64(year, month, day, real)
    date_ok = real & (birth >= EARLIEST_BIRTH) & (birth <= np.datetime64(as_of, "D"))
    bad_date = usable & ~date_ok

    code = np.where(usable, _number(d, 0, 6), -1)
    known = divisions.is_known(code)
    in_use, later = divisions.period_status(code, year)
    bad_division = usable & (~known | (date_ok & ~in_use & ~later))

    rejected = bad_format | bad_check | bad_date | bad_division
    valid = usable & ~rejected
    reasons = (mask(R, rc.ID_BAD_FORMAT, bad_format) | mask(R, rc.ID_BAD_CHECK_DIGIT, bad_check)
               | mask(R, rc.ID_BAD_BIRTH_DATE, bad_date) | mask(R, rc.ID_UNKNOWN_DIVISION, bad_division))
    warnings = (mask(W, rc.W_ID_NORMALISED, c.changed) | mask(W, rc.W_ID_UPGRADED_15, is15)
                | mask(W, rc.W_DIVISION_RETIRED, valid & divisions.is_retired(code))
                | mask(W, rc.W_DIVISION_POSTDATES_BIRTH, valid & later))

    id_number = np.full(n, None, dtype=object)
    plain = valid & is18 & ~c.changed           # the input string itself, no new object
    id_number[plain] = c.raw[plain]
    rebuilt = valid & ~plain
    id_number[rebuilt] = matrix_strings(m[rebuilt])
    id_division = np.where(valid, divisions.code_strings(code), None)
    id_sex = np.where(valid, _SEX_BY_PARITY[d[:, 16] % 2], None)
    id_birth = np.where(valid, birth, np.datetime64("NaT", "D")).astype("datetime64[ns]")
    return {"id_number": id_number, "id_birth_date": id_birth, "id_sex": id_sex, "id_division": id_division,
            "reasons": reasons, "warnings": warnings}


def check_ric(id_numbers: pd.Series, as_of: dt.date) -> pd.DataFrame:
    """Check a column of 公民身份号码 as of a date (birth dates after it are impossible).

    Returns a DataFrame on the input's index: ``id_number`` (normalised 18 characters, None when missing or
    rejected), ``id_birth_date`` (datetime64[ns], NaT unless accepted), ``id_sex`` ('1' odd / '2' even 17th
    digit), ``id_division`` (first six digits), ``reasons`` and ``warnings`` (PostgreSQL text[] literals, '{}'
    when none). A missing number is not a reason here: the caller decides (records are matched on other evidence).
    """
    a = ric_arrays(id_numbers, as_of)
    return object_frame(
        {"id_number": a["id_number"], "id_birth_date": a["id_birth_date"], "id_sex": a["id_sex"],
         "id_division": a["id_division"], "reasons": reasons_literal(a["reasons"]),
         "warnings": warnings_literal(a["warnings"])},
        id_numbers.index,
    )
