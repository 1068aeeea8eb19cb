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
