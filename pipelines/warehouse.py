"""Connections to the warehouse and the versioned migrations under sql/migrations.

Migrations are numbered SQL files applied in order, each in its own transaction, and recorded in
``public.schema_migration`` with their checksum; an applied file that later changes is an error, not a silent skip.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import URL

from pipelines.settings import Settings, settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = settings.project_root / "sql" / "migrations"


def connect(url: URL | None = None, **kwargs) -> psycopg.Connection:
    """A psycopg connection to the warehouse (or to ``url``)."""
    return psycopg.connect(Settings.libpq(url or settings.warehouse_url), **kwargs)


@contextmanager
def transaction(url: URL | None = None) -> Iterator[psycopg.Connection]:
    """One connection, one transaction: committed on success, rolled back on any error."""
    with connect(url) as conn:
        with conn.transaction():
            yield conn


def sql_file(relative: str) -> str:
    """The text of a file under sql/ (the set-based transforms live there, one purpose per file)."""
    return (settings.project_root / "sql" / relative).read_text(encoding="utf-8")


class MigrationError(RuntimeError):
    pass


def migrate(url: URL | None = None, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; return the names applied now."""
    files = sorted(p for p in directory.glob("*.sql"))
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migration ("
            " name text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # one migrator at a time (parallel tasks may all call migrate())
        conn.execute("SELECT pg_advisory_lock(7364001)")
        try:
            done = dict(conn.execute("SELECT name, sha256 FROM public.schema_migration").fetchall())
            for path in files:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if path.name in done:
                    if done[path.name] != digest:
                        raise MigrationError(
                            f"{path}: already applied with a different checksum; write a new migration instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute(
                        "INSERT INTO public.schema_migration (name, sha256) VALUES (%s, %s)", (path.name, digest)
                    )
                log.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(7364001)")
    return applied_now


def run_script(conn: psycopg.Connection, script, params: dict | None = None,
               on_statement: Callable[[str, int, float], None] | None = None) -> list[int]:
    """Run a multi-statement SQL script (text or psycopg.sql.Composable) statement by statement with the same
    named parameters (PostgreSQL prepares one statement at a time); returns each statement's row count.

    ``on_statement(statement, rowcount, seconds)``, when given, is called after each statement (the benchmark
    times the reconciliation's steps with it)."""
    import re

    from psycopg import sql as _sql

    text = script.as_string(conn) if isinstance(script, _sql.Composable) else script
    counts = []
    for statement in re.split(r";[ \t]*(?:\n|$)", text):
        body = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
        if not body:
            continue
        started = time.perf_counter()
        cur = conn.execute(body, params if params and "%(" in body else None)
        counts.append(cur.rowcount)
        if on_statement is not None:
            on_statement(body, cur.rowcount, time.perf_counter() - started)
    return counts
