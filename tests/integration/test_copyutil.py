"""copy_frame writes what the frame holds: every kind of missing value and the empty string as NULL, the rest as
given (text, numbers, dates spelled as text, array literals), and reads back equal."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipelines.copyutil import copy_frame
from pipelines.warehouse import connect

pytestmark = pytest.mark.integration


def test_copy_frame_nulls_and_values(warehouse_db):
    frame = pd.DataFrame({
        "n": np.array([1, 2, 3, 4, 5], dtype=np.int64),
        "t": ["a", None, np.nan, "", "tab\there, quote\" back\\slash 张三"],
        "d": ["2026-01-02", None, pd.NaT, "", "1999-12-31"],
        "a": ["{}", "{A,B}", None, "{X}", "{}"],
        "s": np.char.add(np.array(["x", "y", "z", "w", "v"]), "!"),  # numpy str_ values
        "unused": [object()] * 5,
    })
    with connect(warehouse_db) as conn, conn.transaction():
        conn.execute("CREATE TEMP TABLE copied (n bigint, t text, d date, a text[], s text) ON COMMIT DROP")
        assert copy_frame(conn, "pg_temp.copied", frame, ["n", "t", "d", "a", "s"]) == 5
        rows = conn.execute("SELECT n, t, d, a, s FROM copied ORDER BY n").fetchall()
        assert copy_frame(conn, "pg_temp.copied", frame.iloc[:0], ["n", "t", "d", "a", "s"]) == 0
    assert rows == [
        (1, "a", date(2026, 1, 2), [], "x!"),
        (2, None, None, ["A", "B"], "y!"),
        (3, None, None, None, "z!"),
        (4, None, None, ["X"], "w!"),
        (5, "tab\there, quote\" back\\slash 张三", date(1999, 12, 31), [], "v!"),
    ]
