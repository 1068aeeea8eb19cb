"""Runs: one ``audit.run`` row per pipeline and data interval, reused when the interval is run again."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import URL

from pipelines.warehouse import connect

SHANGHAI = ZoneInfo("Asia/Shanghai")


def day_interval(day: date) -> tuple[datetime, datetime]:
    """The data interval of a day in Shanghai's time: [its midnight, the next midnight)."""
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def open_run(
    pipeline: str,
    interval_start: datetime,
    interval_end: datetime,
    dag_id: str | None = None,
    airflow_run_id: str | None = None,
    url: URL | None = None,
) -> int:
    """Return the run id of (pipeline, interval), creating it or counting one more attempt on a re-run."""
    with connect(url) as conn:
        row = conn.execute(
            """
            INSERT INTO audit.run (pipeline, interval_start, interval_end, dag_id, airflow_run_id)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (pipeline, interval_start, interval_end) DO UPDATE
               SET attempts = audit.run.attempts + 1, status = 'running', started_at = now(), finished_at = NULL,
                   dag_id = EXCLUDED.dag_id, airflow_run_id = EXCLUDED.airflow_run_id
            RETURNING run_id
            """,
            (pipeline, interval_start, interval_end, dag_id, airflow_run_id),
        ).fetchone()
    return int(row[0])


def close_run(run_id: int, status: str, url: URL | None = None) -> None:
    with connect(url) as conn:
        conn.execute("UPDATE audit.run SET status = %s, finished_at = now() WHERE run_id = %s", (status, run_id))
