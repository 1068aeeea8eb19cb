"""Normalise and validate the staged rows of a run; reject the ones that break a hard rule into quarantine.

Identifier rules are vectorised over chunks (pipelines.identity). They run where the rows already are: the extract
task checks each chunk before it stages it (:func:`check_records`) and the checks go into the staged rows
themselves, by the same COPY (migration 0024), so that the rules of all sources run in the parallel extract tasks
rather than in one process afterwards, no staged row has to be read back, and a staged row and its checks are one
row under one key. :func:`validate_run` then only checks the rows staged without their checks (``reasons IS
NULL``: rows staged by other means, or by an older version), streamed out of staging through a server-side cursor
with their results streamed back with COPY and written into them, so memory stays bounded whatever the run's size,
and quarantines every rejected row.
Output: the check columns of ``staging.population_record`` (:data:`CHECK_COLUMNS`: normalised identifiers and
dates, reasons, warnings) and ``quarantine.population_record`` (every row with at least one reason, with its raw
payload).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np
import pandas as pd
from psycopg import sql
from sqlalchemy import URL

from pipelines import reasons as rc
from pipelines.copyutil import copy_frame, stream_frames
from pipelines.identity import identity_arrays
from pipelines.identity.flags import R, mask, to_code_lists
from pipelines.identity.divisions import is_known
from pipelines.normalise import distinct, parse_dates
from pipelines.population.attributes import RAW_FIELD_NAMES
from pipelines.reasons import REASONS, WARNINGS
from pipelines.settings import settings
from pipelines.warehouse import connect, sql_file

STAGED_COLUMNS = [
    "source_id", "seq", "source_key", "parse_error", "id_type", "id_number", "name", "sex", "birth_date",
    "death_date", "event_date", "hukou_division", "residence_division",
]
_RECORD_COLUMNS = [c for c in STAGED_COLUMNS if c not in ("source_id", "seq")]  # what check_chunk reads
# the columns of staging.population_record that hold a staged row's checks, in the order check_chunk returns them
CHECK_COLUMNS = [
    "checked_id_type", "checked_id_number", "checked_sex", "checked_birth_date", "checked_death_date",
    "checked_event_date", "reasons", "warnings",
]


_TEXT_OR_NONE = frozenset((str, type(None)))


def _blank(values: pd.Series) -> np.ndarray:
    """True where a value is missing or only whitespace.

    A column of text or None (what a chunk of records holds) is tested by C-level passes: missing or empty by
    ``not``, then ``str.isspace`` over the other values (a text is blank when it is empty or ``isspace()`` —
    ``strip()`` removes exactly the characters ``isspace`` tests); about a fifth of the chunk's identifier rules
    went into a Python expression per value. Anything else (NaN, numbers) goes value by value."""
    items = values.to_numpy(dtype=object)
    if _TEXT_OR_NONE.issuperset(map(type, items)):
        blank = np.fromiter(map(operator.not_, items), dtype=bool, count=len(items))
        blank[~blank] = np.fromiter(map(str.isspace, filter(None, items)), dtype=bool,
                                    count=len(items) - int(blank.sum()))
        return blank
    return np.fromiter((v is None or v != v or (v.strip() == "" if type(v) is str else str(v).strip() == "")
                        for v in items), dtype=bool, count=len(items))


def _dates(values) -> np.ndarray:
    """datetime-like values as datetime.date objects (None for missing), ready for COPY into a date column."""
    return pd.to_datetime(pd.Series(values), errors="coerce").to_numpy(dtype="datetime64[D]").astype(object)


def check_chunk(frame: pd.DataFrame, as_of: date) -> dict[str, list]:
    """The identifier and record rules applied to one chunk of staged rows: per name of :data:`CHECK_COLUMNS`,
    the chunk's values in its order (Python objects: str, datetime.date, list of codes, None). Reasons and warnings
    travel as bit masks (pipelines.identity.flags) and become lists once per distinct mask, so a code is listed
    once and in the order of pipelines/reasons.py whichever rules found it."""
    ids = identity_arrays(frame["id_type"], frame["id_number"], frame["sex"], frame["birth_date"], as_of)
    reasons = ids["reason_bits"]

    malformed = frame["parse_error"].notna().to_numpy()
    fine = ~malformed
    reasons |= mask(R, rc.KEY_MISSING, _blank(frame["source_key"]) & fine)
    reasons |= mask(R, rc.NAME_MISSING, _blank(frame["name"]) & fine)

    death, death_bad = parse_dates(frame["death_date"])
    event, event_bad = parse_dates(frame["event_date"])
    reasons |= mask(R, rc.BAD_DATE, (np.asarray(death_bad) | np.asarray(event_bad)) & fine)

    for column in ("hukou_division", "residence_division"):
        # per distinct code (a chunk holds a few hundred), broadcast back: stripping and matching every row's code
        # was a quarter of the checks' time
        at, codes = distinct(frame[column])
        codes = codes.str.strip()
        present = (codes.notna() & (codes != "")).to_numpy(dtype=bool)
        known = np.asarray(is_known(codes.fillna("").to_numpy(dtype=object)), dtype=bool)
        bad = np.append(present & ~known, False)[at]  # (a missing code: at -1, the appended False)
        reasons |= mask(R, rc.BAD_DIVISION, bad & fine)
    reasons = np.where(malformed, R[rc.MALFORMED_ROW], reasons)  # a malformed row: that is the reason
    warnings = ids["warning_bits"]

    def trusted(values) -> list:  # a malformed row carries nothing trustworthy
        return np.where(malformed, None, np.asarray(values, dtype=object)).tolist()

    return {
        "checked_id_type": trusted(ids["id_type"]),
        "checked_id_number": trusted(ids["id_number"]),
        "checked_sex": trusted(ids["sex"]),
        "checked_birth_date": trusted(_dates(ids["birth_date"])),
        "checked_death_date": _dates(death).tolist(),
        "checked_event_date": _dates(event).tolist(),
        "reasons": to_code_lists(reasons, REASONS),
        "warnings": to_code_lists(warnings, WARNINGS),
    }


def check_records(chunk, as_of: date) -> list[list]:
    """The checks of a chunk of records about to be staged: the columns of :data:`CHECK_COLUMNS`, each in the
    chunk's order (the stager writes them into the staged rows). ``chunk`` is a
    :class:`pipelines.sources.records.Chunk`."""
    if not len(chunk):
        return [[] for _ in CHECK_COLUMNS]
    frame = pd.DataFrame({
        "source_key": chunk.keys,
        "parse_error": chunk.parse_errors,
        **{name: chunk.column(name) for name in _RECORD_COLUMNS if name in RAW_FIELD_NAMES},
    }, columns=_RECORD_COLUMNS)
    checks = check_chunk(frame, as_of)
    return [checks[c] for c in CHECK_COLUMNS]


def validate_run(run_id: int, as_of: date, url: URL | None = None,
                 on_step: Callable[[str, float], None] | None = None) -> dict[str, int]:
    """Check every staged row of the run that its extract did not check, and quarantine the rejected rows
    (idempotent: the run's review queue, quarantine and duplicates are replaced; checks are per staged row).

    ``on_step(step, seconds)``, when given, is called with the time of each part (the benchmark's timing hook):
    ``delete`` (an earlier attempt's results), ``read`` (streaming unchecked staged rows out), ``rules`` (the
    vectorised checks), ``copy`` (results back in, and written into their rows), ``analyze`` (statistics of the
    staged rows and their checks), ``quarantine`` (rejected rows copied to quarantine). Returns ``checked`` (the
    run's staged rows: every one is checked when this returns), ``checked_here`` (those this call checked) and
    ``quarantined``."""
    checked = 0
    spent = {"read": 0.0, "rules": 0.0, "copy": 0.0}
    clock = time.perf_counter
    with connect(url) as conn, conn.transaction():
        t = clock()
        for stmt in (
            "DELETE FROM population.review_queue WHERE run_id = %s",
            "DELETE FROM quarantine.population_record WHERE run_id = %s",
            "DELETE FROM staging.population_duplicate WHERE run_id = %s",
        ):
            conn.execute(stmt, (run_id,))
        unchecked = sources_to_check(conn, run_id)
        if on_step is not None:
            on_step("delete", clock() - t)
        if unchecked:
            conn.execute(
                "CREATE TEMP TABLE rechecked ON COMMIT DROP AS SELECT source_id, seq, " + ", ".join(CHECK_COLUMNS)
                + " FROM staging.population_record WITH NO DATA")  # (the staged columns' own types)
        query = (  # the staged rows of those sources without their checks (the partial index finds them)
            "SELECT " + ", ".join(STAGED_COLUMNS) + " FROM staging.population_record"
            " WHERE run_id = %s AND source_id = ANY(%s) AND reasons IS NULL ORDER BY source_id, seq"
        )
        t = clock()
        frames = stream_frames(conn, query, (run_id, unchecked), STAGED_COLUMNS, settings.copy_chunk_rows,
                               "validate") if unchecked else ()
        for frame in frames:
            t1 = clock()
            result = pd.DataFrame({"source_id": frame["source_id"], "seq": frame["seq"],
                                   **check_chunk(frame, as_of)})
            t2 = clock()
            checked += copy_frame(conn, "pg_temp.rechecked", result, ["source_id", "seq", *CHECK_COLUMNS])
            t3 = clock()
            spent["read"] += t1 - t
            spent["rules"] += t2 - t1
            spent["copy"] += t3 - t2
            t = clock()
        spent["read"] += clock() - t
        if unchecked:
            t = clock()
            conn.execute(
                "UPDATE staging.population_record s SET "
                + ", ".join(f"{c} = r.{c}" for c in CHECK_COLUMNS)
                + " FROM rechecked r WHERE s.run_id = %s AND s.source_id = r.source_id AND s.seq = r.seq",
                (run_id,))
            spent["copy"] += clock() - t
        if on_step is not None:
            for name, seconds in spent.items():
                on_step(name, seconds)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-count") as side:
            # the run's rows, every one of them checked once this transaction commits (those without checks were
            # checked above), counted by another connection while this one analyses and quarantines: a scan of
            # every staged row (0.6–1.5 s at 1M) that otherwise ran alone at the end, the analyse keeping one core
            total = side.submit(count_run_rows, url, run_id)
            t = clock()
            analyze_staging(conn, "staging.population_record", run_id)  # the extract tasks have committed its rows
            if on_step is not None:
                on_step("analyze", clock() - t)
            t = clock()
            quarantined = conn.execute(sql_file("population/quarantine_rejected.sql"), {"run_id": run_id}).rowcount
            if on_step is not None:
                on_step("quarantine", clock() - t)
            total = total.result()
    return {"checked": total, "checked_here": checked, "quarantined": quarantined}


def count_run_rows(url: URL | None, run_id: int) -> int:
    """The staged rows of a run, counted by a connection of its own."""
    with connect(url, autocommit=True) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM staging.population_record WHERE run_id = %s",
                               (run_id,)).fetchone()
    return rows


def sources_to_check(conn, run_id: int) -> list[str]:
    """The sources of the run with staged rows that have no checks (``reasons IS NULL``), found through the
    partial index of such rows (migration 0024), which is empty when every row was checked as it was staged."""
    return [source for (source,) in conn.execute(
        "SELECT DISTINCT source_id FROM staging.population_record WHERE run_id = %s AND reasons IS NULL"
        " ORDER BY source_id", (run_id,))]


def run_partition(table: str, run_id: int) -> sql.Identifier:
    """The partition of a staging table that holds one run's rows (migration 0014: ``staging.<table>_r<run_id>``,
    created with the run by the trigger on audit.run)."""
    schema, name = table.split(".")
    return sql.Identifier(schema, f"{name}_r{run_id}")


# The columns of a run's staged rows that the statements over them filter, join or group on (validation, the
# quarantine, 10_candidates, 20_duplicates, 40_match_by_evidence, 90_accounting): the only ones whose statistics
# a plan uses. The 22 canonical fields and the payload are only read and normalised, never compared: sampling them
# (text and JSON values of thirty thousand rows, sorted per column) was two thirds of the ANALYZE.
STATISTICS_COLUMNS = {"staging.population_record": ("run_id", "source_id", "seq", "source_key", "reasons",
                                                    "key_repeated")}


def analyze_staging(conn, table: str, run_id: int) -> None:
    """ANALYZE the run's partition of a staging table once the run's rows are in it, so that the statements over
    them are planned on their real size and values. Until then the partition has no statistics and the planner
    guesses: a daily increment's quarantine join was once a nested loop comparing every rejected row with every
    checked one (19k x 19k rows: 56 s at 1M residents), a full load's candidates a two-million-fold index probe.
    Only the run's partition is sampled: on one table holding every run this took 16 s on a 4M-resident
    warehouse, whatever the run's size. Only the columns a plan compares (:data:`STATISTICS_COLUMNS`), when the
    table names them; its row and page counts are taken all the same."""
    columns = STATISTICS_COLUMNS.get(table)
    conn.execute(sql.SQL("ANALYZE {}{}").format(run_partition(table, run_id), sql.SQL("") if not columns else
                 sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, columns)))))