"""前置库 tables: rows whose update time falls in the window [low, high), read with a server-side cursor.

The table and column names come from the source registry and are quoted with ``psycopg.sql.Identifier``; the window
bounds are parameters. Rows come in the deterministic order ``updated_at, key``. The payload is the whole row with
the table's own column names, every value as text (timestamps in ISO 8601 at +08:00, the session time zone).

An update time without a time zone (a ``timestamp`` column: many departments' systems keep local times) is
Shanghai local time, as the window query compares it (the session's time zone) and as file and API sources read a
naive time (pipelines.sources.records.parse_updated_at); it is staged as that instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import Format
from psycopg.types.string import TextLoader
from sqlalchemy import URL

from pipelines.registry import Source
from pipelines.settings import Settings, settings
from pipelines.sources.records import Chunk, RecordBuilder, as_text, parse_updated_at


# text, varchar, bpchar, name: PostgreSQL types psycopg always returns as str
TEXT_TYPE_OIDS = frozenset((25, 1043, 1042, 19))
TIMESTAMPTZ_OID = 1184


def timestamptz_iso(text: str, load: Callable[[bytes], datetime]) -> str:
    """A timestamptz as the server wrote it (DateStyle ISO, the session's time zone) spelled as the payload keeps
    it: ``datetime.isoformat()`` of the value at that zone, what :func:`as_text` makes of the typed value.

    The server's spelling of a whole second at a whole-hour offset (``2026-01-01 11:55:40+08``, every update time
    of a Shanghai system since 1991) is respelled by slicing; any other (a fraction of a second, an offset with
    minutes, a year past 9999 or BC, infinity) is loaded as psycopg loads it (``load``) and rendered by
    ``as_text`` — the typed path, its errors included. Loading every value into a datetime with the zone's tzinfo
    and calling ``isoformat()`` cost 1.8 µs a row, a twelfth of a 前置库 source's extract process (py-spy,
    2026-12-05); a test compares both spellings over the instants where they could differ."""
    if len(text) == 22 and text[19] in "+-" and text[10] == " ":
        return f"{text[:10]}T{text[11:]}:00"
    return as_text(load(text.encode()))


def window_query(source: Source, low: datetime | None, high: datetime) -> tuple[sql.Composed, list[Any]]:
    """SELECT * of the source table for updated_at in [low, high); ``low`` None means -infinity.

    On the full first extract (``low`` None) rows without an update time are included too, so that they are
    received (and quarantined downstream) rather than never seen; later windows cannot place them.
    """
    if not source.table:
        raise ValueError(f"source {source.id}: no table")
    schema, table = source.table.split(".", 1)
    upd = sql.Identifier(source.updated_at)
    params: list[Any] = [high]
    where = sql.SQL("{upd} < %s").format(upd=upd)
    if low is not None:
        where = sql.SQL("{upd} >= %s AND ").format(upd=upd) + where
        params.insert(0, low)
    else:
        where = sql.SQL("({w} OR {upd} IS NULL)").format(w=where, upd=upd)
    query = sql.SQL("SELECT * FROM {tbl} WHERE {where} ORDER BY {upd} NULLS LAST, {key}").format(
        tbl=sql.Identifier(schema, table), where=where, upd=upd, key=sql.Identifier(source.key)
    )
    return query, params


def read_frontdb(
    source: Source, low: datetime | None, high: datetime, chunk_rows: int, url: URL | None = None
) -> Iterator[Chunk]:
    """Chunks of at most ``chunk_rows`` records of the window, streamed from a server-side cursor."""
    query, params = window_query(source, low, high)
    origin = f"frontdb:{source.table}"
    builder = RecordBuilder(source)
    with psycopg.connect(Settings.libpq(url or settings.frontdb_url)) as conn:
        conn.read_only = True
        conn.execute("SET TIME ZONE 'Asia/Shanghai'")
        with conn.cursor(name=f"extract_{source.id}") as cur:
            cur.itersize = chunk_rows
            # timestamptz columns come as the server's text (timestamptz_iso respells it)
            load = conn.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)(TIMESTAMPTZ_OID, conn).load
            cur.adapters.register_loader(TIMESTAMPTZ_OID, TextLoader)
            cur.execute(query, params)
            names = [d.name for d in cur.description]
            upd_index = names.index(source.updated_at)
            upd_zoned = cur.description[upd_index].type_code == TIMESTAMPTZ_OID
            # the columns whose values may not be text (a timestamp, a number…): only they are rendered, after the
            # row is zipped into its payload at C speed (a comprehension testing every value was a tenth of the
            # extract of a 前置库 source)
            other: list[tuple[int, str]] = []
            zoned: list[tuple[int, str]] = []  # (timestamptz: respelled from the server's text)
            for i, (name, d) in enumerate(zip(names, cur.description)):
                if d.type_code == TIMESTAMPTZ_OID:
                    zoned.append((i, name))
                elif d.type_code not in TEXT_TYPE_OIDS:
                    other.append((i, name))
            while rows := cur.fetchmany(chunk_rows):
                payloads, updated = [], []
                for row in rows:
                    payload = dict(zip(names, row))
                    for i, name in other:
                        if (value := row[i]) is not None and type(value) is not str:
                            payload[name] = as_text(value)
                    for i, name in zoned:
                        if (value := row[i]) is not None:
                            payload[name] = timestamptz_iso(value, load)
                    payloads.append(payload)
                    # (typed as the column holds it — a timestamptz from its ISO spelling, the same instant; a naive
                    # time is Shanghai's, by the one rule of every source)
                    updated.append(parse_updated_at(payload[source.updated_at] if upd_zoned else row[upd_index]))
                yield builder.text_chunk(payloads, [origin] * len(payloads), updated, texts=True)
