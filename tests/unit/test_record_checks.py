"""The record checks of a chunk (pipelines.population.validate.check_chunk), as the stager writes them."""

from __future__ import annotations

from datetime import date

import pandas as pd

from pipelines.population.validate import CHECK_COLUMNS, STAGED_COLUMNS, check_chunk

AS_OF = date(2026, 1, 2)


def chunk(*rows: dict) -> pd.DataFrame:
    base = {"source_id": "psb_hukou", "seq": 1, "source_key": "K1", "parse_error": None, "id_type": "身份证",
            "id_number": "11010519491231002X", "name": "张三", "sex": "2", "birth_date": "1949-12-31",
            "death_date": None, "event_date": None, "hukou_division": "310101", "residence_division": "310104"}
    return pd.DataFrame([{**base, **r} for r in rows], columns=STAGED_COLUMNS)


def test_an_accepted_row_has_typed_values_and_empty_code_lists():
    out = check_chunk(chunk({}), AS_OF)
    assert list(out) == CHECK_COLUMNS
    assert [out[c][0] for c in CHECK_COLUMNS] == ["RIC", "11010519491231002X", "2", date(1949, 12, 31), None, None,
                                                 [], []]


def test_each_reason_is_listed_once_in_the_order_of_reasons_py():
    # both divisions unknown, a bad death date and a bad event date, no name: each code once
    out = check_chunk(chunk({"hukou_division": "999999", "residence_division": "999998", "death_date": "2025-02-30",
                             "event_date": "not a date", "name": " "}), AS_OF)
    assert out["reasons"] == [["BAD_DATE", "NAME_MISSING", "BAD_DIVISION"]]


def test_a_malformed_row_has_that_reason_only_and_no_trusted_values():
    out = check_chunk(chunk({"parse_error": "11 fields, 10 expected", "name": None, "source_key": None}), AS_OF)
    assert out["reasons"] == [["MALFORMED_ROW"]]
    assert out["checked_id_number"] == [None] and out["checked_birth_date"] == [None]


def test_blank_keys_and_names_are_the_whitespace_only_or_missing_ones():
    """A key or name is missing when it is None, empty or whitespace only (what ``str.strip`` removes: tabs, line
    breaks, the ideographic space, no-break spaces…): the C-level test of a text column gives what stripping each
    value gives, and a column holding other values (NaN) is read value by value."""
    import random

    from pipelines.population.validate import _blank

    rng = random.Random(20261206)
    alphabet = [" ", "\t", "\n", "\u3000", "\u00a0", "\u2028", "\x1c", "\u200b", "a", "张", ""]
    for _ in range(500):
        values = [None if rng.random() < 0.1 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3)))
                  for _ in range(rng.randint(0, 40))]
        expected = [v is None or v.strip() == "" for v in values]
        assert _blank(pd.Series(values, dtype=object)).tolist() == expected
    assert _blank(pd.Series(["K1", float("nan"), " ", None, 7], dtype=object)).tolist() == [False, True, True, True,
                                                                                           False]
    out = check_chunk(chunk({"source_key": "\u3000", "name": "\t"}, {"seq": 2}), AS_OF)
    assert out["reasons"] == [["NAME_MISSING", "KEY_MISSING"], []]  # (in the order of reasons.py)
