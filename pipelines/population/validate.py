"""Normalise and validate the staged rows of a run; reject the ones that break a hard rule into quarantine.

Identifier rules are vectorised over chunks (pipelines.identity); the chunks stream out of staging through a
server-side cursor and their results stream back with COPY, so memory stays bounded whatever the run's size.
Output: ``staging.population_checked`` (one row per staged row: normalised identifiers and dates, reasons,
warnings) and ``quarantine.population_record`` (every row with at least one reason, with its raw payload).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import URL

from pipelines import reasons as R
from pipelines.copyutil import copy_frame, stream_frames
from pipelines.identity import check_identities
from pipelines.identity.divisions import is_known
from pipelines.normalise import parse_dates
from pipelines.settings import settings
from pipelines.warehouse import connect, sql_file

STAGED_COLUMNS = [
    "source_id", "seq", "source_key", "parse_error", "id_type", "id_number", "name", "sex", "birth_date",
    "death_date", "event_date", "hukou_division", "residence_division",
]
CHECKED_COLUMNS = [
    "run_id", "source_id", "seq", "id_type", "id_number", "id_birth_date", "id_sex", "id_division",
    "birth_date", "death_date", "event_date", "sex", "reasons", "warnings",
]


def add_codes(codes: np.ndarray, mask: np.ndarray, code: str) -> np.ndarray:
    """Append ``code`` to the comma-separated code lists where ``mask`` holds (vectorised, no row loop)."""
    mask = np.asarray(mask, dtype=bool)
    joined = np.where(codes == "", code, np.char.add(np.char.add(codes.astype(str), ","), code))
    return np.where(mask, joined, codes).astype(object)


def _inner(literals: pd.Series) -> np.ndarray:
    """'{A,B}' -> 'A,B' for every element."""
    return literals.fillna("{}").str.slice(1, -1).to_numpy(dtype=object)


def _dates(values) -> np.ndarray:
    """datetime-like values as 'YYYY-MM-DD' strings (None for missing), ready for COPY into a date column."""
    series = pd.Series(pd.to_datetime(pd.Series(values), errors="coerce"))
    return series.dt.strftime("%Y-%m-%d").astype(object).where(series.notna(), None).to_numpy(dtype=object)


def check_chunk(frame: pd.DataFrame, run_id: int, as_of: date) -> pd.DataFrame:
    """The identifier and record rules applied to one chunk of staged rows."""
    ids = check_identities(frame["id_type"], frame["id_number"], frame["sex"], frame["birth_date"], as_of)
    reasons = _inner(ids["reasons"])
    warnings = _inner(ids["warnings"])

    malformed = frame["parse_error"].notna().to_numpy()
    reasons = np.where(malformed, R.MALFORMED_ROW, reasons).astype(object)  # a malformed row: that is the reason
    no_key = frame["source_key"].isna() | (frame["source_key"].astype("string").str.strip() == "")
    reasons = add_codes(reasons, no_key.to_numpy() & ~malformed, R.KEY_MISSING)
    no_name = frame["name"].isna() | (frame["name"].astype("string").str.strip() == "")
    reasons = add_codes(reasons, no_name.to_numpy() & ~malformed, R.NAME_MISSING)

    death, death_bad = parse_dates(frame["death_date"])
    event, event_bad = parse_dates(frame["event_date"])
    reasons = add_codes(reasons, (np.asarray(death_bad) | np.asarray(event_bad)) & ~malformed, R.BAD_DATE)

    for column in ("hukou_division", "residence_division"):
        codes = frame[column].astype("string").str.strip()
        present = codes.notna() & (codes != "")
        known = np.asarray(is_known(codes.fillna("").to_numpy(dtype=object)), dtype=bool)
        reasons = add_codes(reasons, present.to_numpy() & ~known & ~malformed, R.BAD_DIVISION)

    def trusted(values) -> np.ndarray:  # a malformed row carries nothing trustworthy
        return np.where(malformed, None, np.asarray(values, dtype=object))

    out = pd.DataFrame(
        {
            "run_id": run_id,
            "source_id": frame["source_id"].to_numpy(),
            "seq": frame["seq"].to_numpy(),
            "id_type": trusted(ids["id_type"]),
            "id_number": trusted(ids["id_number"]),
            "id_birth_date": trusted(_dates(ids["id_birth_date"])),
            "id_sex": trusted(ids["id_sex"]),
            "id_division": trusted(ids["id_division"]),
            "birth_date": trusted(_dates(ids["birth_date"])),
            "death_date": _dates(death),
            "event_date": _dates(event),
            "sex": trusted(ids["sex"]),
            "reasons": np.char.add(np.char.add("{", reasons.astype(str)), "}"),
            "warnings": np.char.add(np.char.add("{", warnings.astype(str)), "}"),
        }
    )
    return out


def validate_run(run_id: int, as_of: date, url: URL | None = None,
                 on_step: Callable[[str, float], None] | None = None) -> dict[str, int]:
    """Check every staged row of the run (idempotent: the run's previous results are replaced).

    ``on_step(step, seconds)``, when given, is called with the time of each part (the benchmark's timing hook):
    ``delete`` (an earlier attempt's results), ``read`` (streaming staged rows out), ``rules`` (the vectorised
    checks), ``copy`` (results back in), ``quarantine`` (rejected rows copied to quarantine), ``analyze``
    (statistics of the staging tables, after a large run)."""
    checked = 0
    spent = {"read": 0.0, "rules": 0.0, "copy": 0.0}
    clock = time.perf_counter
    with connect(url) as conn, conn.transaction():
        t = clock()
        for stmt in (
            "DELETE FROM staging.population_checked WHERE run_id = %s",
            "DELETE FROM population.review_queue WHERE run_id = %s",
            "DELETE FROM quarantine.population_record WHERE run_id = %s",
            "DELETE FROM staging.population_duplicate WHERE run_id = %s",
        ):
            conn.execute(stmt, (run_id,))
        if on_step is not None:
            on_step("delete", clock() - t)
        query = (
            "SELECT " + ", ".join(STAGED_COLUMNS) + " FROM staging.population_record WHERE run_id = %s"
            " ORDER BY source_id, seq"
        )
        t = clock()
        for frame in stream_frames(conn, query, (run_id,), STAGED_COLUMNS, settings.copy_chunk_rows, "validate"):
            t1 = clock()
            result = check_chunk(frame, run_id, as_of)
            t2 = clock()
            checked += copy_frame(conn, "staging.population_checked", result, CHECKED_COLUMNS)
            t3 = clock()
            spent["read"] += t1 - t
            spent["rules"] += t2 - t1
            spent["copy"] += t3 - t2
            t = clock()
        spent["read"] += clock() - t
        if on_step is not None:
            for name, seconds in spent.items():
                on_step(name, seconds)
        t = clock()
        quarantined = conn.execute(sql_file("population/quarantine_rejected.sql"), {"run_id": run_id}).rowcount
        if on_step is not None:
            on_step("quarantine", clock() - t)
        t = clock()
        if analyze_staging(conn, checked) and on_step is not None:
            on_step("analyze", clock() - t)
    return {"checked": checked, "quarantined": quarantined}


def analyze_staging(conn, rows: int) -> bool:
    """ANALYZE the staging tables when this run's rows are a large share of them (a full load; autovacuum has not
    seen them yet), so that the reconciliation is planned on the real sizes: without it, a first full load's join
    of staging with its checks is planned for a few thousand rows and probes an index two million times. A daily
    increment (≈1%) leaves the statistics as they are, as autovacuum would. Returns whether it analysed."""
    (known,) = conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = 'staging.population_record'::regclass").fetchone()
    if known >= 0 and rows <= 0.1 * known:
        return False
    conn.execute("ANALYZE staging.population_record")
    conn.execute("ANALYZE staging.population_checked")
    return True
