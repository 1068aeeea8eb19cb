"""Moving rows between pandas chunks and PostgreSQL at COPY speed, in bounded memory."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

import pandas as pd
import psycopg
from psycopg import sql


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """COPY ``frame[columns]`` into ``schema.table`` as CSV (empty field = NULL); returns rows written.

    The CSV text is produced by pandas' C writer, not by a Python loop over rows.
    """
    if frame.empty:
        return 0
    schema, name = table.split(".", 1)
    buf = io.StringIO()
    frame.to_csv(buf, columns=list(columns), header=False, index=False, na_rep="", date_format="%Y-%m-%d")
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(schema), sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.write(buf.getvalue())
    return len(frame)


def stream_frames(
    conn: psycopg.Connection, query: sql.Composable | str, params: Sequence | dict, columns: Sequence[str],
    chunk_rows: int, cursor_name: str = "stream",
) -> Iterator[pd.DataFrame]:
    """Yield the result of ``query`` as DataFrames of at most ``chunk_rows`` rows (server-side cursor).

    Must be called inside a transaction; the other statements of that transaction may run between chunks.
    """
    with conn.cursor(name=cursor_name) as cur:
        cur.itersize = chunk_rows
        cur.execute(query, params)
        while True:
            rows = cur.fetchmany(chunk_rows)
            if not rows:
                break
            yield pd.DataFrame.from_records(rows, columns=list(columns))
