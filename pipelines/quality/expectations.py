"""Our one custom GX expectation, a SQL expectation in the way GX 1.x documents them (subclass
``UnexpectedRowsExpectation``).

``UnexpectedRowsExpectation`` computes two metrics from its query: the count of unexpected rows and the rows
themselves (``unexpected_rows_query.table``). Each is a separate statement, so on a 1M-row golden table every SQL
rule scans the table twice, and the second scan sends every unexpected row to the client only for the BASIC result
format to drop them again (the gate never keeps row values: they are ID numbers and names). This expectation
depends on the count alone: one statement, same SQL, same result (``observed_value`` = unexpected rows), same
Data Docs rendering.

In a suite file: ``"type": "expect_query_to_return_no_rows"``, ``"kwargs": {"unexpected_rows_query": "SELECT ..."}``
with ``{batch}`` standing for the validated table and literal braces doubled (``\\d{{17}}``).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Tuple

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from great_expectations.expectations import UnexpectedRowsExpectation  # noqa: E402


class ExpectQueryToReturnNoRows(UnexpectedRowsExpectation):
    """Fail when ``unexpected_rows_query`` returns rows; observed value = how many (the query runs once, as a count)."""

    metric_dependencies: ClassVar[Tuple[str, ...]] = ("unexpected_rows_query.row_count",)

    def _validate(
        self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None
    ) -> dict:
        unexpected = metrics["unexpected_rows_query.row_count"]
        return {"success": unexpected == 0, "result": {"observed_value": unexpected}}
