"""The expectation suites under ``expectations/``: GX ExpectationSuite JSON, one file per table, reviewed like code.

A suite file is what ``great_expectations`` itself (de)serialises (``ExpectationSuiteSchema``), plus our own
conventions, checked here at load so that a typo fails loudly with the file name instead of silently dropping an
expectation (GX only *logs* an expectation it cannot build and carries on without it):

* the suite ``name`` is the file name without ``.json`` and ``meta.table`` names the table (``schema.table``);
  ``meta.run_column`` (optional) names the column holding the run that last wrote a row: with it, a daily
  increment's gate validates only the rows the run wrote (pipelines.quality.gate, scope ``run``), so every
  expectation must hold on any subset of rows, and whole-table facts are checked with queries on the table itself;
  ``meta.run_keys`` (optional, with ``run_column``: ``{"table": "schema.table", "key": "column"}``) says where the
  run's rows are found: their ``key`` is among the keys of that table's rows whose ``run_column`` is the run (the
  persons through their history, which every write of a person's values appends to), so that the suite's own table
  needs no index on its run column (see :func:`pipelines.quality.gate.scope_filter`);
* every expectation's ``meta`` carries ``rule`` (a stable id, unique in the suite; it is the ``expectation_id`` in
  ``quality.expectation_result``), ``dimension`` (one of the six GB/T 36344 dimensions), ``severity``
  (``blocking`` fails the gate, ``warning`` is reported only) and a short Chinese ``description``; optionally
  ``column`` for a SQL expectation that is about one column.

GX's own ``severity`` field is derived from ``meta.severity`` (blocking -> critical) so that one value rules both,
and the description is copied into ``notes`` so that Data Docs show it next to the rendered rule.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations.expectations.core.unexpected_rows_expectation as _unexpected_rows  # noqa: E402
from great_expectations.core.expectation_suite import ExpectationSuite, expectationSuiteSchema  # noqa: E402
from great_expectations.expectations.expectation import Expectation  # noqa: E402
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration  # noqa: E402
from marshmallow import ValidationError  # noqa: E402

from pipelines.quality import expectations as _custom  # noqa: E402,F401  registers expect_query_to_return_no_rows
from pipelines.settings import settings  # noqa: E402

# GB/T 36344-2018 信息技术 数据质量评价指标: the six dimensions, with the English word reports show beside them.
DIMENSIONS: dict[str, str] = {
    "规范性": "conformity",
    "完整性": "completeness",
    "准确性": "accuracy",
    "一致性": "consistency",
    "时效性": "timeliness",
    "可访问性": "accessibility",
}
SEVERITIES: dict[str, str] = {"blocking": "critical", "warning": "warning"}  # ours -> GX FailureSeverity

EXPECTATIONS_DIR = settings.project_root / "expectations"

# UnexpectedRowsExpectation print()s a hint each time one is built whose query does not use {batch} (our catalog
# checks on primary keys need not), and GX rebuilds expectations many times per run: keep it off the task log.
_unexpected_rows.print = lambda *args, **kwargs: None  # type: ignore[attr-defined]


class SuiteFileError(ValueError):
    """A suite file that does not parse or breaks the conventions; the message starts with the file's path."""


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite file, as the gate reports it."""

    rule: str
    expectation_type: str
    dimension: str
    severity: str
    description: str
    column: str | None


@dataclass(frozen=True)
class Suite:
    name: str
    table: str
    path: Path
    suite: ExpectationSuite  # not yet added to any Data Context
    rules: dict[str, Rule]   # by rule id, in file order
    run_column: str | None = None  # meta.run_column: the column naming the run that last wrote a row (gate scope 'run')
    run_keys: tuple[str, str] | None = None  # meta.run_keys: (table, key) through which the run's rows are found

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]


def suite_paths(directory: Path = EXPECTATIONS_DIR) -> dict[str, Path]:
    """Suite name -> file, for every ``*.json`` suite in the directory."""
    return {p.name[: -len(".json")]: p for p in sorted(directory.glob("*.json"))}


def load_suites(names: list[str] | None = None, directory: Path = EXPECTATIONS_DIR) -> list[Suite]:
    """Load the named suites (all of them when ``names`` is None), failing on the first bad file."""
    available = suite_paths(directory)
    if names is None:
        names = list(available)
    missing = [n for n in names if n not in available]
    if missing:
        raise SuiteFileError(f"{directory}: no suite file for {missing} (have {sorted(available)})")
    return [load_suite(available[n]) for n in names]


def _column_of(kwargs: dict, meta: dict) -> str | None:
    if meta.get("column"):
        return str(meta["column"])
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs and "column_B" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return None


def load_suite(path: Path) -> Suite:
    """Parse one suite file with GX's ExpectationSuite schema and check our conventions."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SuiteFileError(f"{path}: not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from e
    if not isinstance(raw, dict):
        raise SuiteFileError(f"{path}: a suite file is a JSON object with name, meta and expectations")
    try:
        loaded = expectationSuiteSchema.load(raw)
    except ValidationError as e:
        raise SuiteFileError(f"{path}: not a GX expectation suite: {e.messages}") from e

    name = loaded.get("name")
    if name != path.name[: -len(".json")]:
        raise SuiteFileError(f"{path}: suite name {name!r} must equal the file name without .json")
    suite_meta = dict(loaded.get("meta") or {})
    table = suite_meta.get("table")
    if not isinstance(table, str) or table.count(".") != 1:
        raise SuiteFileError(f"{path}: meta.table must name the table as schema.table, got {table!r}")
    run_column = suite_meta.get("run_column")
    if run_column is not None and not (isinstance(run_column, str) and run_column.isidentifier()):
        raise SuiteFileError(f"{path}: meta.run_column must be a column name, got {run_column!r}")
    run_keys = suite_meta.get("run_keys")
    if run_keys is not None:
        if run_column is None:
            raise SuiteFileError(f"{path}: meta.run_keys needs meta.run_column (the run column of both tables)")
        if not (isinstance(run_keys, dict) and set(run_keys) == {"table", "key"}
                and isinstance(run_keys["table"], str) and run_keys["table"].count(".") == 1
                and all(part.isidentifier() for part in run_keys["table"].split("."))
                and isinstance(run_keys["key"], str) and run_keys["key"].isidentifier()):
            raise SuiteFileError(f"{path}: meta.run_keys must be {{\"table\": \"schema.table\", \"key\": \"column\"}}, "
                                 f"got {run_keys!r}")
        run_keys = (run_keys["table"], run_keys["key"])

    expectations: list[Expectation] = []
    rules: dict[str, Rule] = {}
    raw_expectations = raw.get("expectations") or []
    for i, config in enumerate(loaded.get("expectations") or [], start=1):
        meta = dict(config.meta or {})
        gx_severity = raw_expectations[i - 1].get("severity") if i <= len(raw_expectations) else None
        where = f"{path}: expectation #{i} ({config.type}, rule {meta.get('rule')!r})"
        rule = meta.get("rule")
        if not rule or not isinstance(rule, str):
            raise SuiteFileError(f"{where}: meta.rule (a stable id) is required")
        if rule in rules:
            raise SuiteFileError(f"{where}: meta.rule {rule!r} is used twice")
        dimension = meta.get("dimension")
        if dimension not in DIMENSIONS:
            raise SuiteFileError(f"{where}: meta.dimension must be one of {list(DIMENSIONS)}, got {dimension!r}")
        severity = meta.get("severity")
        if severity not in SEVERITIES:
            raise SuiteFileError(f"{where}: meta.severity must be one of {list(SEVERITIES)}, got {severity!r}")
        description = meta.get("description")
        if not description or not isinstance(description, str):
            raise SuiteFileError(f"{where}: meta.description (短中文说明) is required")
        if gx_severity is not None and gx_severity != SEVERITIES[severity]:
            raise SuiteFileError(
                f"{where}: GX severity {gx_severity!r} contradicts meta.severity {severity!r}; "
                "leave GX severity out, it is derived"
            )
        kwargs = dict(config.kwargs or {})
        try:
            expectation = ExpectationConfiguration(
                type=config.type,
                kwargs=kwargs,
                meta=meta,
                notes=config.notes or f"[{dimension} {DIMENSIONS[dimension]} · {severity}] {description}",
                severity=SEVERITIES[severity],
            ).to_domain_obj()
        except Exception as e:  # GX raises several kinds (not found, invalid kwargs, pydantic errors)
            raise SuiteFileError(f"{where}: not a valid expectation: {e}") from e
        expectations.append(expectation)
        rules[rule] = Rule(rule, config.type, dimension, severity, description, _column_of(kwargs, meta))

    if not expectations:
        raise SuiteFileError(f"{path}: the suite has no expectations")
    suite = ExpectationSuite(name=name, expectations=expectations, meta=suite_meta)
    if len(suite.expectations) != len(expectations):  # GX drops what it cannot add; we do not
        raise SuiteFileError(f"{path}: GX accepted {len(suite.expectations)} of {len(expectations)} expectations")
    return Suite(name=name, table=table, path=path, suite=suite, rules=rules, run_column=run_column,
                 run_keys=run_keys)
