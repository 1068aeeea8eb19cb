"""Reads of the published tables (schema ``publish``) for the API: catalog entries, releases, pages of rows.

Values come only from ``publish.<code>`` — the current, privacy-reviewed release of each dataset — never from the
golden tables. A page and its total are read in one REPEATABLE READ, read-only transaction together with the
catalog's current release id, so they always describe the same release even while a new one is being swapped in.
Identifiers are composed with psycopg.sql, values are parameters (DESIGN rule 7).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from pipelines.warehouse import connect

SCHEMA = "publish"
# Columns of publish.release the API shows; the rest (source run ids, the review report, who approved) stays in.
RELEASE_COLUMNS = ("release_id", "dataset_code", "version", "status", "published_at", "as_of", "row_count", "files")
EVENT_COLUMNS = ("release_id", "event", "at", "row_count")


@contextmanager
def snapshot() -> Iterator[psycopg.Connection]:
    """One read-only connection in one REPEATABLE READ transaction (a consistent snapshot)."""
    with connect(autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn


def _exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{table}",)).fetchone()[0]


def _columns(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Column name -> type name (format_type) of publish.<table>, in table order; {} when there is no table."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) AND a.attnum > 0"
        " AND NOT a.attisdropped ORDER BY a.attnum",
        (SCHEMA, table),
    ).fetchall()
    return dict(rows)


def _catalog_key(conn: psycopg.Connection) -> str | None:
    """The dataset-code column of publish.catalog_entry (the contract calls it dataset_code)."""
    cols = _columns(conn, "catalog_entry")
    for name in ("dataset_code", "code"):
        if name in cols:
            return name
    return None


def catalog_entries(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """publish.catalog_entry by dataset code (every column as JSON), {} before the first release."""
    key = _catalog_key(conn)
    if key is None:
        return {}
    rows = conn.execute(
        sql.SQL("SELECT {k}, to_jsonb(c) FROM {t} c").format(
            k=sql.Identifier(key), t=sql.Identifier(SCHEMA, "catalog_entry"))
    ).fetchall()
    return {code: entry for code, entry in rows}


def current_release(conn: psycopg.Connection, code: str) -> dict[str, Any] | None:
    """The release publish.<code> holds now: the catalog entry's current_release_id, with its release row."""
    key = _catalog_key(conn)
    if key is None:
        return None
    row = conn.execute(
        sql.SQL("SELECT current_release_id FROM {t} WHERE {k} = %s").format(
            t=sql.Identifier(SCHEMA, "catalog_entry"), k=sql.Identifier(key)),
        (code,),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    release_id = row[0]
    if _exists(conn, "release"):
        found = conn.execute(
            sql.SQL("SELECT to_jsonb(r) FROM {t} r WHERE r.release_id = %s").format(
                t=sql.Identifier(SCHEMA, "release")),
            (release_id,),
        ).fetchone()
        if found:
            return _release_view(found[0])
    return {"release_id": release_id}


def _release_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in RELEASE_COLUMNS if k in row}


def releases(conn: psycopg.Connection, code: str) -> list[dict[str, Any]]:
    """Every release of a dataset that was ever published, newest first."""
    if not _exists(conn, "release"):
        return []
    rows = conn.execute(
        sql.SQL("SELECT to_jsonb(r) FROM {t} r WHERE r.dataset_code = %s AND r.published_at IS NOT NULL"
                " ORDER BY r.published_at DESC, r.release_id DESC").format(t=sql.Identifier(SCHEMA, "release")),
        (code,),
    ).fetchall()
    return [_release_view(r) for (r,) in rows]


def changelog(conn: psycopg.Connection, code: str) -> list[dict[str, Any]]:
    """The dataset's release events (publish.release_event) in order, without who acted or their notes."""
    if not _exists(conn, "release_event"):
        return []
    rows = conn.execute(
        sql.SQL("SELECT to_jsonb(e) FROM {t} e WHERE e.dataset_code = %s ORDER BY e.event_id").format(
            t=sql.Identifier(SCHEMA, "release_event")),
        (code,),
    ).fetchall()
    return [{k: r[k] for k in EVENT_COLUMNS if k in r} for (r,) in rows]


def table_columns(conn: psycopg.Connection, code: str) -> dict[str, str]:
    return _columns(conn, code)


def _where(filters: dict[str, list[Any]]) -> tuple[sql.Composable, list[Any]]:
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for name, values in filters.items():
        if len(values) == 1:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(name)))
            params.append(values[0])
        else:
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(name)))
            params.append(list(values))
    if not parts:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def page(conn: psycopg.Connection, code: str, fields: Sequence[str], filters: dict[str, list[Any]],
         page_no: int, page_size: int) -> tuple[int, list[dict[str, Any]]]:
    """(total rows matching the filters, the rows of page ``page_no``), ordered by every field in the dataset's
    order (dimensions first), which is a total order: paging neither loses nor repeats a row."""
    table = sql.Identifier(SCHEMA, code)
    where, params = _where(filters)
    total = conn.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=table) + where, params).fetchone()[0]
    cols = sql.SQL(", ").join(sql.Identifier(f) for f in fields)
    order = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(f)) for f in fields)
    query = (sql.SQL("SELECT row_to_json(t) FROM (SELECT {cols} FROM {t}").format(cols=cols, t=table) + where
             + sql.SQL(") t ORDER BY {order} LIMIT %s OFFSET %s").format(order=order))
    rows = conn.execute(query, [*params, page_size, (page_no - 1) * page_size]).fetchall()
    return total, [r for (r,) in rows]


def ping() -> bool:
    with connect(connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone()[0] == 1
