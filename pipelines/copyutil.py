"""Moving rows between pandas chunks and PostgreSQL at COPY speed, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd
import psycopg
from psycopg import sql


def copy_frame(conn: psycopg.Connection, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """COPY ``frame[columns]`` into ``schema.table``; returns rows written. A missing value (None, NaN, NaT) and an
    empty string are NULL (as an empty CSV field would be).

    Each column is turned into a list of Python values at once (numpy, not a loop per row) and the rows go to
    psycopg's C row formatter: twice as fast as rendering the frame to CSV text with pandas first, which was a tenth
    of a 前置库 source's extract (its identifier checks' results are written this way, chunk by chunk).
    """
    if frame.empty:
        return 0
    schema, name = table.split(".", 1)
    lists = []
    for column in columns:
        values = frame[column].to_numpy(dtype=object)
        missing = pd.isna(values) | (values == "")
        if missing.any():
            values = values.copy()
            values[missing] = None
        lists.append(values.tolist())
    stmt = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        write = copy.write_row
        for row in zip(*lists):
            write(row)
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
