"""Foreigners' documents: passports (外国护照) and 外国人永久居留身份证 (PRP), checked a whole column at a time.

Passports: after normalisation (half-width, no whitespace, upper case) 5 to 17 of [A-Z0-9]; countries' formats
differ too much to check more (ICAO 9303 allows up to 9 characters in the MRZ field, but sources also deliver
older and longer document numbers). Otherwise FOREIGN_ID_BAD_FORMAT.

PRP, two formats in use side by side:
- 2017 card: 15 characters, 3 Latin letters (the nationality) + 12 digits. Only the pattern is checked.
- 2023 card (issued from 2023-12-01): 18 characters, 17 digits + a check character, first digit "9" (the
  foreigner marker, RIC numbers start with 1-8). The National Immigration Administration's 新版外国人永久居留身份证
  机读信息规则 (2023) says the last character is MOD 11-2, "与公民身份号码校验方式相同" — the RIC rule, so a wrong
  one is ID_BAD_CHECK_DIGIT. The other parts (the letters' numeric code, birth date) are not checked here.
Anything else is FOREIGN_ID_BAD_FORMAT. A missing number gives no reason (the caller decides).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines import reasons as rc
from pipelines.identity.flags import R, W, mask, reasons_literal, warnings_literal
from pipelines.identity.compact import compact, is_digit, is_upper
from pipelines.identity.ric import mod11_2, object_frame


def passport_arrays(values: pd.Series) -> dict[str, np.ndarray]:
    c = compact(values, upper=True)
    ok = (c.lengths >= 5) & (c.lengths <= 17) & c.row_all(is_digit(c.cp) | is_upper(c.cp))
    bad = ~c.missing & ~ok
    id_number = np.full(len(ok), None, dtype=object)
    id_number[ok] = c.strings(ok, 17)
    return {"id_number": id_number, "reasons": mask(R, rc.FOREIGN_ID_BAD_FORMAT, bad),
            "warnings": mask(W, rc.W_ID_NORMALISED, c.changed)}


def prp_arrays(values: pd.Series) -> dict[str, np.ndarray]:
    c = compact(values, upper=True)
    n = len(c.lengths)
    old, new = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    m = c.matrix(c.lengths == 15, 15)
    old[c.lengths == 15] = is_upper(m[:, :3]).all(axis=1) & is_digit(m[:, 3:]).all(axis=1)
    m = c.matrix(c.lengths == 18, 18)
    new[c.lengths == 18] = ((m[:, 0] == ord("9")) & is_digit(m[:, :17]).all(axis=1)
                            & (is_digit(m[:, 17]) | (m[:, 17] == ord("X"))))
    bad_check = np.zeros(n, dtype=bool)
    if new.any():
        m = c.matrix(new, 18)
        bad_check[new] = mod11_2((m[:, :17] - ord("0")).astype(np.int8)) != m[:, 17]
    bad_format = ~c.missing & ~old & ~new
    valid = (old | new) & ~bad_check
    id_number = np.full(n, None, dtype=object)
    id_number[valid] = c.strings(valid, 18)
    reasons = mask(R, rc.FOREIGN_ID_BAD_FORMAT, bad_format) | mask(R, rc.ID_BAD_CHECK_DIGIT, bad_check)
    return {"id_number": id_number, "reasons": reasons, "warnings": mask(W, rc.W_ID_NORMALISED, c.changed)}


def _frame(a: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    return object_frame({"id_number": a["id_number"], "reasons": reasons_literal(a["reasons"]),
                         "warnings": warnings_literal(a["warnings"])}, index)


def check_passport(numbers: pd.Series) -> pd.DataFrame:
    """Passport numbers -> DataFrame(id_number normalised or None, reasons, warnings as text[] literals)."""
    return _frame(passport_arrays(numbers), numbers.index)


def check_prp(numbers: pd.Series) -> pd.DataFrame:
    """外国人永久居留身份证 numbers -> DataFrame(id_number normalised or None, reasons, warnings)."""
    return _frame(prp_arrays(numbers), numbers.index)
