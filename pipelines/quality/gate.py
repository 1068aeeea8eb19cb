"""The data-quality gate: validate the golden tables with the GX suites in ``expectations/`` after each run.

``run_gate(run_id)`` validates every suite (or the ones named) with Great Expectations (GX Core 1.x) against the
warehouse through a SQL data source, so every expectation is computed by PostgreSQL (pushdown): no table is ever
loaded into pandas. It records one ``quality.validation_run`` row per suite and one ``quality.expectation_result``
row per expectation (replacing what an earlier attempt of the same run wrote), builds the GX Data Docs site under
``<reports_dir>/data_docs`` and writes a bilingual scorecard by GB/T 36344 dimension under
``<reports_dir>/quality/<run_id>/``. ``enforce(result)`` raises :class:`QualityGateFailed` when a blocking
expectation failed: the DAG calls it so that the run fails and nothing is published.

Privacy: the gate keeps no personal values. Results are taken in GX's BASIC format with no sample of unexpected
values, and the SQL expectations return surrogate keys (person_id) only; reports carry counts.

The GX Data Context is ephemeral (configured here, nothing in a YAML file, no cloud, no usage statistics): the
data source and its connection live only in this process. Only the validation results are kept on disk, under
``<reports_dir>/gx/validations``, so that Data Docs show the history of runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # before great_expectations is imported

import great_expectations as gx  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.util import convert_to_json_serializable  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from sqlalchemy import URL  # noqa: E402

from pipelines.quality.report import write_scorecard  # noqa: E402
from pipelines.quality.suites import DIMENSIONS, Suite, load_suites  # noqa: E402
from pipelines.settings import settings  # noqa: E402
from pipelines.warehouse import connect  # noqa: E402

log = logging.getLogger(__name__)

for _name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
    logging.getLogger(_name).setLevel(logging.WARNING)

DATA_DOCS_SITE = "local_site"
DATASOURCE = "warehouse"
# BASIC: counts and observed values; no sample of unexpected values (they would be ID numbers and names).
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
# result keys that could carry row values; never stored or reported
_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list",
               "unexpected_list", "unexpected_index_list", "unexpected_rows", "details")


class QualityGateFailed(Exception):
    """A blocking expectation failed: the run must not publish. The message names each failed rule."""

    def __init__(self, result: GateResult):
        self.result = result
        names = ", ".join(f"{f.expectation} ({f.dimension}, {f.observed_text()})" for f in result.blocking_failures)
        super().__init__(
            f"quality gate failed for run {result.run_id}: {len(result.blocking_failures)} blocking expectation(s) "
            f"failed: {names}; scorecard {result.scorecard_html}"
        )


@dataclass
class Failure:
    suite: str
    expectation: str           # meta.rule, the expectation_id in quality.expectation_result
    expectation_type: str
    column: str | None
    dimension: str
    severity: str
    description: str
    observed: dict[str, Any]   # observed_value / unexpected_count ... or the error raised
    error: str | None = None   # the expectation could not be computed (SQL error): counted as failed

    def observed_text(self) -> str:
        if self.error:
            return f"error: {self.error.splitlines()[0][:200]}"
        if "unexpected_count" in self.observed and self.observed["unexpected_count"] is not None:
            return f"{self.observed['unexpected_count']} unexpected of {self.observed.get('element_count')}"
        if "observed_value" in self.observed:
            if self.expectation_type in ("expect_query_to_return_no_rows", "unexpected_rows_expectation"):
                return f"{self.observed['observed_value']} unexpected row(s)"
            return f"observed {self.observed['observed_value']}"
        return "failed"


@dataclass
class SuiteOutcome:
    suite: str
    table: str
    validation_id: int
    success: bool              # no blocking expectation failed
    evaluated: int
    blocking_failed: int
    warning_failed: int
    data_docs_page: str | None
    seconds: float
    scope: str = "table"       # 'table': every row; 'run': the rows the run wrote (gate_scopes)


@dataclass
class GateResult:
    run_id: int
    passed: bool
    blocking_failures: list[Failure]
    warnings: list[Failure]
    scorecard: dict[str, dict[str, int]]   # GB/T 36344 dimension -> {"passed": n, "total": m}
    suites: list[SuiteOutcome]
    data_docs_index: Path | None
    scorecard_json: Path
    scorecard_html: Path
    validated_at: datetime
    seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("data_docs_index", "scorecard_json", "scorecard_html"):
            d[key] = str(d[key]) if d[key] is not None else None
        d["validated_at"] = self.validated_at.isoformat()
        return d


def enforce(result: GateResult, mark_run: bool = True, url: URL | None = None) -> GateResult:
    """Raise :class:`QualityGateFailed` when a blocking expectation failed (audit.run is marked 'blocked')."""
    if result.passed:
        return result
    if mark_run:
        from pipelines.runs import close_run

        close_run(result.run_id, "blocked", url=url)
    raise QualityGateFailed(result)


def run_gate(
    run_id: int,
    suites: list[str] | None = None,
    url: URL | None = None,
    build_docs: bool = True,
    reports_dir: Path | None = None,
    scope: str | None = None,
) -> GateResult:
    """Validate the suites (file stems under expectations/, all when None) for ``run_id`` against the warehouse
    (or ``url``), record the results in quality.*, build Data Docs and the scorecard under ``reports_dir``
    (default settings.reports_dir). Bad data never raises here: call :func:`enforce` on the result.
    A suite file that does not load raises :class:`~pipelines.quality.suites.SuiteFileError` naming the file."""
    started = time.monotonic()
    url = url or settings.warehouse_url
    reports_dir = Path(reports_dir or settings.reports_dir)
    loaded = load_suites(suites)
    parameters = _run_parameters(run_id, url)
    scopes = gate_scopes(run_id, loaded, url, scope or settings.quality_gate_scope)
    gx_dir = reports_dir / "gx"
    gx_dir.mkdir(parents=True, exist_ok=True)
    run_name = f"run-{run_id}"

    with _lock(gx_dir / ".lock"), _scope_tables(run_id, [s for s in loaded if scopes[s.name] == "run"],
                                                 url) as copies:
        context = _context(gx_dir, reports_dir / "data_docs")
        datasource = context.data_sources.add_postgres(
            DATASOURCE, connection_string=url.render_as_string(hide_password=False)
        )
        try:
            _forget_earlier_attempts(context, run_name, [s.name for s in loaded])
            validated: list[tuple[Suite, Any, ValidationResultIdentifier, float]] = []
            for suite in loaded:
                t0 = time.monotonic()
                if suite.name in copies:  # scope 'run': the rows the run wrote, copied (_scope_tables)
                    asset = datasource.add_table_asset(suite.name, table_name=copies[suite.name],
                                                       schema_name=SCOPE_SCHEMA)
                else:
                    asset = datasource.add_table_asset(
                        suite.name, table_name=suite.table_name, schema_name=suite.schema_name
                    )
                batch = asset.add_batch_definition_whole_table("whole_table")
                gx_suite = context.suites.add(suite.suite)
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{suite.name}:{run_name}", data=batch, suite=gx_suite)
                )
                result = definition.run(
                    expectation_parameters=parameters,
                    result_format=RESULT_FORMAT,
                    run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc)),
                )
                key = _result_key(result)
                validated.append((suite, result, key, time.monotonic() - t0))
                log.info("suite %s validated in %.1f s", suite.name, time.monotonic() - t0)
            docs_index, pages = None, {}
            if build_docs:
                docs_index, pages = _build_docs(context, loaded, [k for _, _, k, _ in validated],
                                                reports_dir / "data_docs")
        finally:
            datasource.get_engine().dispose()

    outcomes, blocking, warnings, scorecard = _record(run_id, validated, pages, url, scopes)
    validated_at = datetime.now(timezone.utc)
    result = GateResult(
        run_id=run_id,
        passed=not blocking,
        blocking_failures=blocking,
        warnings=warnings,
        scorecard=scorecard,
        suites=outcomes,
        data_docs_index=docs_index,
        scorecard_json=reports_dir / "quality" / str(run_id) / "scorecard.json",
        scorecard_html=reports_dir / "quality" / str(run_id) / "scorecard.html",
        validated_at=validated_at,
        seconds=round(time.monotonic() - started, 3),
        parameters={k: str(v) for k, v in parameters.items()},
    )
    write_scorecard(result, [s for s, *_ in validated])
    log.info(
        "quality gate run %s: %s (%d blocking, %d warnings) in %.1f s",
        run_id, "passed" if result.passed else "FAILED", len(blocking), len(warnings), result.seconds,
    )
    return result


# --- GX plumbing ---------------------------------------------------------------------------------------------


SCOPE_SCHEMA = "quality"


def scope_table_name(suite: Suite, run_id: int) -> str:
    """The table of the rows ``run_id`` wrote in a suite's table (scope 'run'), of this process's gate: two gates
    of one run (an operator's beside the DAG's) do not share it."""
    return f"gate_{suite.schema_name}_{suite.table_name}_r{int(run_id)}_p{os.getpid()}"


def drop_stale_scope_tables(conn) -> list[str]:
    """Drop the scope tables a gate left behind when it was killed (its ``finally`` never ran), and the views the
    gate made before them: those of runs that are no longer running (or no longer exist). Left in place, a table
    holds a copy of the rows it was made of, and a ``SELECT *`` view depends on every column of its table (a
    migration altering or dropping one would fail on it). A running run's may be a concurrent gate's and are kept.
    Returns the relations dropped."""
    stale = [(name, kind) for name, kind in conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN audit.run r ON r.run_id = substring(c.relname FROM '_r([0-9]+)(?:_p[0-9]+)?$')::bigint "
        "WHERE n.nspname = %s AND c.relkind IN ('v', 'r') AND c.relname ~ '^gate_.+_r[0-9]+(_p[0-9]+)?$' "
        "AND r.status IS DISTINCT FROM 'running'", (SCOPE_SCHEMA,)).fetchall()]
    for name, kind in stale:
        conn.execute(sql.SQL("DROP {} IF EXISTS {}").format(sql.SQL("VIEW" if kind == "v" else "TABLE"),
                                                           sql.Identifier(SCOPE_SCHEMA, name)))
        log.warning("dropped the scope %s %s.%s a killed gate left behind", "view" if kind == "v" else "table",
                    SCOPE_SCHEMA, name)
    return [name for name, _ in stale]


def scope_filter(suite: Suite, run_id: int) -> sql.Composed:
    """The condition on a suite's table that selects the rows ``run_id`` wrote (scope 'run'): its run column is the
    run. With ``meta.run_keys`` (table, key) the rows are found through that table, whose rows of the run (by an index
    on its run column) name their keys: population.person has no index on updated_run_id, which its SCD2 update
    changes on every updated person — with it no such update was HOT, each wrote the new row version on another page
    and an entry into every index of the table (migration 0032) — and the persons the run wrote are the persons of
    the versions it appended to population.person_history."""
    run = sql.Literal(int(run_id))
    own = sql.SQL("{} = {}").format(sql.Identifier(suite.run_column), run)
    if suite.run_keys is None:
        return own
    table, key = suite.run_keys
    return sql.SQL("{key} IN (SELECT {key} FROM {table} WHERE {column} = {run}) AND {own}").format(
        key=sql.Identifier(key), table=sql.Identifier(*table.split(".")), column=sql.Identifier(suite.run_column),
        run=run, own=own)


def written_rows(conn, suite: Suite, run_id: int) -> int:
    """How many rows of a suite's table ``run_id`` wrote, at most: with ``meta.run_keys``, the rows of that table the
    run wrote (one per key and run: a person's version), counted on its index without visiting the suite's table."""
    if suite.run_keys is None:
        query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            sql.Identifier(suite.schema_name, suite.table_name), scope_filter(suite, run_id))
    else:
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} = {}").format(
            sql.Identifier(*suite.run_keys[0].split(".")), sql.Identifier(suite.run_column),
            sql.Literal(int(run_id)))
    return conn.execute(query).fetchone()[0]


@contextlib.contextmanager
def _scope_tables(run_id: int, suites: list[Suite], url: URL):
    """suite name -> table (in :data:`SCOPE_SCHEMA`) holding the rows the run wrote in the suite's table, for the
    suites validated in scope 'run'; the tables are dropped afterwards.

    The rows are found once (:func:`scope_filter`), copied into an unlogged table and analysed; each of the suite's
    twenty-odd queries then reads those rows alone. Through a view, each query found them again: a day's 17k
    persons, through their history and the persons' key, 60–90 ms a query, 1.6 s for the person suite of a 1M
    warehouse's increment, against about 0.1 s to copy them once. (A table or view rather than GX's query asset:
    to learn a query asset's columns, GX runs the whole query and buffers its result in the client, once per column
    metric of the suite.) The rows are the run's as they were when the gate began, which nothing changes while it
    runs: the DAG's tasks run one after the other."""
    tables = {s.name: scope_table_name(s, run_id) for s in suites}
    if not tables:
        yield tables
        return
    by_name = {s.name: s for s in suites}
    try:
        with connect(url, autocommit=True) as conn:
            drop_stale_scope_tables(conn)
            for name, table in tables.items():
                suite = by_name[name]
                target = sql.Identifier(SCOPE_SCHEMA, table)
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
                conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} WITH (autovacuum_enabled = false) AS "
                                     "SELECT * FROM {} WHERE {}").format(
                    target, sql.Identifier(suite.schema_name, suite.table_name), scope_filter(suite, run_id)))
                conn.execute(sql.SQL("ANALYZE {}").format(target))
        yield tables
    finally:
        with connect(url, autocommit=True) as conn:
            for table in tables.values():
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCOPE_SCHEMA, table)))


def _context(gx_dir: Path, docs_dir: Path):
    """An ephemeral Data Context: suites and data source in memory, validation results and Data Docs on disk."""
    defaults = InMemoryStoreBackendDefaults()
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(gx_dir / "validations")},
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "validation_results_limit": 400},
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _forget_earlier_attempts(context, run_name: str, suite_names: list[str]) -> None:
    """A re-run of the gate for the same run replaces its validation results (and their Data Docs pages)."""
    store = context.validation_results_store
    docs_root = Path(context.get_config().data_docs_sites[DATA_DOCS_SITE]["store_backend"]["base_directory"])
    for key in store.list_keys():
        if key.run_id.run_name == run_name and key.expectation_suite_identifier.name in suite_names:
            store.remove_key(key)
            page = docs_root / "validations" / Path(*key.to_tuple()[:-1]) / f"{key.to_tuple()[-1]}.html"
            page.unlink(missing_ok=True)
            for directory in (page.parent, page.parent.parent):  # <run_time>/ and <run_name>/, once empty
                with contextlib.suppress(OSError):
                    directory.rmdir()


def _result_key(result) -> ValidationResultIdentifier:
    """The key ValidationDefinition.run stored the result under (suite, run, batch)."""
    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
        run_id=result.meta["run_id"],
        batch_identifier=result.batch_id,
    )


def _build_docs(context, loaded: list[Suite], keys: list[ValidationResultIdentifier], docs_dir: Path):
    """Render the new validation pages, the index, and the suites' pages when a suite changed since they were
    rendered (not the whole history again). A suite's page shows its expectations: rendering both again on every
    run cost about 0.15 s of each gate, a tenth of a daily run's. What they were rendered from is remembered in
    ``<docs_dir>/.suite-pages`` (the suite files' digest and GX's version): a changed suite, another GX or a
    missing page renders them again."""
    import hashlib

    digest = hashlib.sha256(gx.__version__.encode())
    for suite in sorted(loaded, key=lambda s: s.name):
        digest.update(suite.name.encode() + b"\0" + suite.path.read_bytes() + b"\0")
    marker = docs_dir / ".suite-pages"
    current = (marker.is_file() and marker.read_text() == digest.hexdigest()
               and all((docs_dir / "expectations" / Path(*s.name.split("."))).with_suffix(".html").is_file()
                       for s in loaded))
    identifiers = ([] if current else [ExpectationSuiteIdentifier(name=s.name) for s in loaded]) + keys
    sites = context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=identifiers)
    if not current:
        with contextlib.suppress(OSError):
            marker.write_text(digest.hexdigest())
    index = _file_path(sites.get(DATA_DOCS_SITE))
    pages: dict[str, str] = {}
    for key in keys:
        with contextlib.suppress(Exception):  # a page link is a convenience, never a reason to fail the gate
            urls = context.get_docs_sites_urls(resource_identifier=key, site_name=DATA_DOCS_SITE)
            if urls and urls[0].get("site_url"):
                pages[key.expectation_suite_identifier.name] = str(_file_path(urls[0]["site_url"]))
    return index, pages


def _file_path(site_url: str | None) -> Path | None:
    if not site_url:
        return None
    return Path(site_url[len("file://"):]) if site_url.startswith("file://") else Path(site_url)


@contextlib.contextmanager
def _lock(path: Path):
    """One gate at a time per reports directory: the result store and the Data Docs index are shared files."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- parameters, results, rows -----------------------------------------------------------------------------


def _run_parameters(run_id: int, url: URL) -> dict[str, Any]:
    """The values the suites refer to as {"$PARAMETER": ...}: the run and its data interval."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT interval_start, interval_end FROM audit.run WHERE run_id = %s", (run_id,)
        ).fetchone()
    if row is None:
        raise ValueError(f"audit.run has no run {run_id}: open the run (pipelines.runs.open_run) before the gate")
    return {
        "run_id": run_id,
        "run_interval_start": row[0].isoformat(),
        "run_interval_end": row[1].isoformat(),
        "today": date.today().isoformat(),
    }


def _error_of(r) -> str | None:
    info = r.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():  # keyed by metric when a metric failed
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _observed(r, error: str | None) -> dict[str, Any]:
    raw = convert_to_json_serializable(dict(r.result or {}))
    observed = {k: v for k, v in raw.items() if k not in _VALUE_KEYS}
    if error:
        observed["error"] = error.splitlines()[0][:2000]
    return observed


# scope 'auto': a run that wrote at least this share of a table's rows (a first load, a reload) validates the whole
# table; a daily increment validates the rows it wrote
RUN_SCOPE_MAX_SHARE = 0.2
SCOPES = ("auto", "table", "run")


def gate_scopes(run_id: int, suites: list[Suite], url: URL, scope: str) -> dict[str, str]:
    """Per suite, 'table' (every row) or 'run' (the rows the run wrote: meta.run_column = run_id, :func:`scope_filter`).

    A daily increment's gate validates what the run wrote, so that its cost follows the size of the change (the
    run's rows are found by an index on the run column); the rows it did not touch were validated by the run that
    wrote them, and the facts about the whole table (not empty, has its key, has its columns, no duplicate ID
    number: a unique index) are queries on the table itself, whatever the batch. 'table' is what a full load
    gets, and what an operator can ask for (QUALITY_GATE_SCOPE=table) for a periodic full check."""
    if scope not in SCOPES:
        raise ValueError(f"QUALITY_GATE_SCOPE must be one of {', '.join(SCOPES)}, got {scope!r}")
    out = {}
    with connect(url) as conn:
        for suite in suites:
            if scope == "table" or suite.run_column is None:
                out[suite.name] = "table"
            elif scope == "run":
                out[suite.name] = "run"
            else:
                written = written_rows(conn, suite, run_id)
                held = conn.execute(  # the planner's estimate: counting every row is what 'run' avoids
                    "SELECT greatest(c.reltuples, 0) FROM pg_class c WHERE c.oid = %s::regclass",
                    (suite.table,)).fetchone()[0]
                out[suite.name] = "run" if held > 0 and written < RUN_SCOPE_MAX_SHARE * held else "table"
    return out


def _record(run_id: int, validated, pages: dict[str, str], url: URL, scopes: dict[str, str]):
    outcomes: list[SuiteOutcome] = []
    blocking: list[Failure] = []
    warnings: list[Failure] = []
    scorecard = {d: {"passed": 0, "total": 0} for d in DIMENSIONS}
    with connect(url) as conn, conn.transaction():
        conn.execute(
            "DELETE FROM quality.validation_run WHERE run_id = %s AND suite = ANY(%s)",
            (run_id, [s.name for s, *_ in validated]),
        )
        for suite, result, _key, seconds in validated:
            rows = []
            suite_blocking = suite_warning = 0
            for r in result.results:
                meta = r.expectation_config.meta or {}
                rule = suite.rules[meta["rule"]]
                error = _error_of(r)
                success = bool(r.success) and error is None
                observed = _observed(r, error)
                scorecard[rule.dimension]["total"] += 1
                scorecard[rule.dimension]["passed"] += int(success)
                if not success:
                    failure = Failure(suite.name, rule.rule, rule.expectation_type, rule.column, rule.dimension,
                                      rule.severity, rule.description, observed, error)
                    if rule.severity == "blocking":
                        blocking.append(failure)
                        suite_blocking += 1
                    else:
                        warnings.append(failure)
                        suite_warning += 1
                rows.append((
                    rule.rule, rule.expectation_type, rule.column, rule.dimension, rule.severity, success,
                    observed.get("element_count"), observed.get("unexpected_count"),
                    observed.get("unexpected_percent"), Jsonb(observed),
                ))
            page = pages.get(suite.name)
            validation_id = conn.execute(
                """
                INSERT INTO quality.validation_run
                    (run_id, suite, table_name, success, blocking_failed, warning_failed, evaluated, data_docs_path,
                     scope)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING validation_id
                """,
                (run_id, suite.name, suite.table, suite_blocking == 0, suite_blocking, suite_warning, len(rows), page,
                 scopes[suite.name]),
            ).fetchone()[0]
            with conn.cursor() as cur:
                cur.executemany(
                    """
                    INSERT INTO quality.expectation_result
                        (validation_id, expectation_id, expectation_type, column_name, dimension, severity, success,
                         element_count, unexpected_count, unexpected_percent, observed)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    [(validation_id, *row) for row in rows],
                )
            outcomes.append(SuiteOutcome(suite.name, suite.table, validation_id, suite_blocking == 0, len(rows),
                                         suite_blocking, suite_warning, page, round(seconds, 3),
                                         scopes[suite.name]))
    return outcomes, blocking, warnings, scorecard
