"""The staging loader: one source, one run, one data interval -> ``staging.population_record``, in one transaction.

Idempotent by interval. A call first deletes what an earlier attempt of the same (run, source) staged, quarantined
or put in the file manifest, then reads the same window again:

* window ``[low, high)``: ``low`` is the ``audit.extract.low_watermark`` already recorded for (run, source) — so a
  re-run reads exactly the window of the first attempt — else the source's ``audit.watermark`` (else NULL, meaning
  -infinity: the full first extract); ``high`` is ``interval_end``.
* 前置库 and API sources read rows whose update time is in the window. File sources take every file of a date folder
  before ``interval_end``'s date (Asia/Shanghai) that the manifest does not record under another run: a file dropped
  late into an old folder is taken by the next run, never lost and never taken twice; a re-run re-reads the files it
  took the first time (and any new late file). The manifest knows a file by path and content (sha256): a file
  replaced under the same path with other content (a department's corrected re-drop) is taken again by the next
  run, its manifest row naming the content it replaces; a file untouched since it was taken (same size and mtime)
  is not even hashed again.
* rows are COPYed in chunks with ``seq`` 1.. in a deterministic order (files by path then line; 前置库 by update
  time then key; API in page order). A file that turns out to be malformed is rolled back to a savepoint: none of
  its rows are staged and it is recorded in ``quarantine.source_file`` (MALFORMED_FILE, with the parser's message);
  an empty file is recorded there as EMPTY_FILE.
* ``audit.extract`` gets the window, the count and the detail (files and their rows, or API pages);
  ``audit.file_manifest`` every file taken; ``audit.watermark`` is raised to ``high`` and never lowered.

The transaction holds an advisory lock per source, so two runs of one source never stage concurrently.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import URL

from pipelines.population.validate import CHECK_COLUMNS, check_records
from pipelines.registry import Source, source as registry_source
from pipelines.settings import settings
from pipelines.sources.files import DropFile, discover_files, file_digest, read_drop_chunks
from pipelines.sources.frontdb import read_frontdb
from pipelines.sources.records import (
    COPY_COLUMNS,
    EMPTY_FILE,
    MALFORMED_FILE,
    SHANGHAI,
    Chunk,
    EmptyFile,
    MalformedFile,
    Record,
)
from pipelines.warehouse import transaction

log = logging.getLogger(__name__)

_LOCK_NAMESPACE = 7364002  # pg_advisory_xact_lock(namespace, hashtext(source_id))

# a staged row: what the source said, then its checks, then whether its key may repeat in the (run, source)
_STAGED_COLUMNS = [*COPY_COLUMNS, *CHECK_COLUMNS, "key_repeated"]
_COPY = sql.SQL("COPY staging.population_record ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in _STAGED_COLUMNS)
)


class _JsonbText(Dumper):
    """A payload already spelled as canonical JSON in UTF-8 (``Record.payload_utf8``), sent as jsonb in COPY's binary
    format (version 1, then the text) — psycopg's own jsonb dumper would encode it again as a JSON string."""

    format = Format.BINARY
    oid = psycopg.adapters.types["jsonb"].oid

    def dump(self, obj: bytes) -> bytes:
        return b"\x01" + obj


def _copy_types(conn: psycopg.Connection) -> list[int]:
    """The type oids of the staged columns in staging.population_record, as the binary format needs them."""
    oids = dict(conn.execute(
        "SELECT attname, atttypid FROM pg_attribute"
        " WHERE attrelid = 'staging.population_record'::regclass AND attnum > 0 AND NOT attisdropped"
    ).fetchall())
    return [oids[c] for c in _STAGED_COLUMNS]


_COLLECT_EVERY = 10  # chunks between two collections of cyclic garbage while staging
# record keys a stager remembers for key_repeated (about 100 bytes each: at most some 400 MB); past it, every further
# row is flagged as one whose key may repeat — grouped by 20_duplicates as every row was before migration 0030
KEYS_TRACKED = 4_000_000


class _EveryKey:
    """The stager's key set once it is full: every key is taken as already staged (flagged), none is kept."""

    def __contains__(self, key: object) -> bool:
        return True

    def __len__(self) -> int:
        return KEYS_TRACKED

    def add(self, key: object) -> None:
        return None


_EVERY_KEY = _EveryKey()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a source is staged; :meth:`_Stager.copy` collects every
    :data:`_COLLECT_EVERY` chunks instead, and this once at the end.

    A chunk is tens of thousands of records, each a handful of new container objects that live until the chunk is
    staged, so the collector — started by every 700 allocations — ran hundreds of times a chunk, walking the young
    records again and again, and now and then every object of the process: about a quarter of a 前置库 source's
    extract process (BENCHMARKS.md row 70). The readers make almost no cyclic garbage (a whole source's staging
    left 0–800 unreachable objects), so collecting after every chunk would only cost time (60 ms a chunk: it walks
    the chunk its reader still holds), while every tenth chunk bounds what a reader making cycles could pile up.
    What was alive before is frozen, so those collections do not walk it."""
    enabled = gc.isenabled()
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.collect()
        gc.unfreeze()
        if enabled:
            gc.enable()


class _Stager:
    """COPYs chunks of records of one (run, source) and numbers them; each row's identifier and record checks
    (pipelines.population.validate, per chunk) are written into it, by the same COPY (migration 0024: one row and
    one key per staged row, no table of checks beside it to write and join back).

    The rows go in COPY's binary format: no escaping of every value by psycopg nor parsing of its text by the server
    (in text, formatting the rows was a fifth of a source's extract process; in binary it takes about half as much,
    and a 前置库 source's extract about 5 % less CPU on both sides: BENCHMARKS.md row 68).

    ``key_repeated`` (migration 0030): true for a row whose key this stager has already staged, or whose key the
    candidates' normalisation (``population.norm_text``) might change — anything but printable ASCII without a
    space — so that of any two candidates of the run with one normalised key at least one is flagged, and
    20_duplicates groups only the flagged rows; false otherwise. A key of a file rolled back stays in the set: a
    later row of it is flagged for nothing, never missed. Past :data:`KEYS_TRACKED` keys the set stops growing and
    every further row is flagged (memory stays bounded; an unflagged first row and a flagged later one of the same
    key still make it a repeated key)."""

    def __init__(self, conn: psycopg.Connection, source: Source, run_id: int, as_of: date):
        self.conn = conn
        self.source = source
        self.run_id = run_id
        self.as_of = as_of
        self.seq = 0
        self.chunks = 0
        self.types = _copy_types(conn)
        self.keys: set[str | None] | _EveryKey = set()  # the record keys staged so far (_EVERY_KEY once full)

    def copy(self, chunks: Iterable[Chunk | list[Record]]) -> int:
        """Stage every chunk (a :class:`Chunk`, or a list of records); return the rows staged. On an error ``seq``
        is left where it was.

        A chunk's rows are zipped from its columns and its checks' (no tuple built per row in Python: with the
        record objects, BENCHMARKS.md row 118); only the key's repetition is decided row by row."""
        seq = self.seq
        with self.conn.cursor() as cur:
            cur.adapters.register_dumper(None, _JsonbText)  # (by oid only, this cursor only)
            for chunk in chunks:  # the reader may raise here (malformed file): the caller rolls back
                if not isinstance(chunk, Chunk):
                    chunk = Chunk.of_records(chunk)
                n = len(chunk)
                checks = check_records(chunk, self.as_of)
                if len(self.keys) >= KEYS_TRACKED:
                    self.keys = _EVERY_KEY
                keys = self.keys
                repeated = []
                flag, remember = repeated.append, keys.add
                for key in chunk.keys:
                    flag(key in keys or not (
                        key is not None and key.isascii() and key.isprintable() and " " not in key))
                    remember(key)
                with cur.copy(_COPY) as cp:
                    cp.set_types(self.types)
                    write = cp.write_row
                    for row in zip(repeat(self.run_id, n), repeat(self.source.id, n), range(seq + 1, seq + n + 1),
                                   repeat(self.source.department, n), chunk.keys, chunk.updated, chunk.hashes,
                                   chunk.origins, *chunk.values, chunk.payloads, chunk.parse_errors, chunk.plains,
                                   *checks, repeated):
                        write(row)
                seq += n
                self.chunks += 1
                if self.chunks % _COLLECT_EVERY == 0:
                    gc.collect()
        staged, self.seq = seq - self.seq, seq
        return staged


def _window_low(conn: psycopg.Connection, source_id: str, run_id: int) -> datetime | None:
    row = conn.execute(
        "SELECT low_watermark FROM audit.extract WHERE run_id = %s AND source_id = %s", (run_id, source_id)
    ).fetchone()
    if row is not None:
        return row[0]
    row = conn.execute("SELECT high_watermark FROM audit.watermark WHERE source_id = %s", (source_id,)).fetchone()
    return row[0] if row else None


def _stage_files(
    conn: psycopg.Connection, stager: _Stager, source: Source, run_id: int, interval_end: datetime,
    landing_dir: Path, chunk_rows: int,
) -> dict[str, Any]:
    before = interval_end.astimezone(SHANGHAI).date()
    drops = discover_files(source, landing_dir, before)
    taken: dict[str, list[tuple[str, int, int | None]]] = {}  # path -> (sha256, size, mtime_ns) taken by other runs
    for path, sha256, size, mtime_ns in conn.execute(
        "SELECT path, sha256, size_bytes, mtime_ns FROM audit.file_manifest"
        " WHERE source_id = %s AND run_id <> %s AND path = ANY(%s)",
        (source.id, run_id, [d.relpath for d in drops]),
    ):
        taken.setdefault(path, []).append((sha256, size, mtime_ns))
    files: list[dict[str, Any]] = []
    for drop in drops:
        earlier = taken.get(drop.relpath)
        stat = drop.path.stat()
        if earlier and any(size == stat.st_size and mtime == stat.st_mtime_ns for _, size, mtime in earlier):
            continue  # untouched since it was taken
        digest = file_digest(drop.path)
        replaces = None
        if earlier:
            if any(sha == digest[0] for sha, _, _ in earlier):
                continue  # touched, but the same content
            replaces = earlier[-1][0]
            log.warning("%s: %s changed after it was taken (sha256 %s… -> %s…): taken again",
                        source.id, drop.relpath, replaces[:12], digest[0][:12])
        files.append(_stage_one_file(conn, stager, source, run_id, drop, chunk_rows, digest, stat.st_mtime_ns,
                                     replaces))
    return {"kind": "file", "before_drop_date": before.isoformat(), "files": files}


def _stage_one_file(
    conn: psycopg.Connection, stager: _Stager, source: Source, run_id: int, drop: DropFile, chunk_rows: int,
    digest: tuple[str, int], mtime_ns: int, replaces: str | None,
) -> dict[str, Any]:
    sha256, size = digest
    rows, reason, message = 0, None, None
    try:
        with conn.transaction():  # savepoint: a file is staged all-or-nothing
            rows = stager.copy(read_drop_chunks(source, drop, chunk_rows))
    except EmptyFile as exc:
        reason, message = EMPTY_FILE, str(exc)
    except MalformedFile as exc:
        reason, message = MALFORMED_FILE, str(exc)
    if reason:
        log.warning("%s: %s %s: %s", source.id, drop.relpath, reason, message)
        conn.execute(
            "INSERT INTO quarantine.source_file (run_id, source_id, origin, reason, detail) VALUES (%s, %s, %s, %s, %s)",
            (run_id, source.id, drop.origin, reason, message),
        )
    conn.execute(
        """
        INSERT INTO audit.file_manifest (source_id, path, sha256, size_bytes, drop_date, run_id, rows_read, error,
                                         mtime_ns, replaces_sha256)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (source.id, drop.relpath, sha256, size, drop.drop_date, run_id, rows,
         f"{reason}: {message}" if reason else None, mtime_ns, replaces),
    )
    return {"path": drop.relpath, "rows": rows, "error": reason, **({"replaces_sha256": replaces} if replaces else {})}


def stage_source(
    source_id: str,
    run_id: int,
    interval_start: datetime,
    interval_end: datetime,
    url: URL | None = None,
    *,
    landing_dir: Path | None = None,
    api_url: str | None = None,
    frontdb_url: URL | None = None,
) -> dict[str, Any]:
    """Stage one source for one run and interval; return the counts (JSON-friendly, for XCom).

    Returns ``{"source_id", "run_id", "received", "files", "quarantined_files", "low_watermark",
    "high_watermark"}`` with the watermarks as ISO 8601 text (``low_watermark`` None = -infinity).
    ``interval_start`` is recorded by ``audit.run``; the window itself starts at the watermark (see the module doc).
    """
    if interval_end.tzinfo is None or interval_start.tzinfo is None:
        raise ValueError("interval_start and interval_end must be timezone-aware")
    src = registry_source(source_id)
    chunk_rows = settings.copy_chunk_rows
    high = interval_end.astimezone(SHANGHAI)
    with transaction(url) as conn, _collector_paused():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, source_id))
        started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        low = _window_low(conn, source_id, run_id)
        low = low.astimezone(SHANGHAI) if low is not None else None  # the same instant, spelled +08:00
        for table in ("staging.population_record", "quarantine.source_file", "audit.file_manifest"):
            schema, name = table.split(".")
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE run_id = %s AND source_id = %s").format(sql.Identifier(schema, name)),
                (run_id, source_id),
            )
        stager = _Stager(conn, src, run_id, interval_end.date())  # the as-of date validate_run is given
        detail: dict[str, Any]
        if src.kind == "frontdb":
            detail = {"kind": "frontdb", "table": src.table}
            stager.copy(read_frontdb(src, low, high, chunk_rows, url=frontdb_url))
        elif src.kind == "api":
            from pipelines.sources.api import read_api  # (httpx: loaded only by the tasks of API sources)

            detail = {"kind": "api", "endpoint": src.endpoint}
            stager.copy(read_api(src, low, high, chunk_rows, base_url=api_url, detail=detail))
        elif src.kind == "file":
            detail = _stage_files(conn, stager, src, run_id, interval_end, landing_dir or settings.landing_dir,
                                  chunk_rows)
        else:  # the registry schema forbids it
            raise ValueError(f"source {source_id}: unknown kind {src.kind!r}")
        received = stager.seq
        conn.execute(
            """
            INSERT INTO audit.extract
                (run_id, source_id, low_watermark, high_watermark, received, detail, started_at, finished_at)
            VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, clock_timestamp())
            ON CONFLICT (run_id, source_id) DO UPDATE
               SET high_watermark = EXCLUDED.high_watermark, received = EXCLUDED.received,
                   detail = EXCLUDED.detail, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at
            """,
            (run_id, source_id, low, high, received, json.dumps(detail, ensure_ascii=False), started),
        )
        conn.execute(
            """
            INSERT INTO audit.watermark (source_id, high_watermark, run_id) VALUES (%s, %s, %s)
            ON CONFLICT (source_id) DO UPDATE
               SET high_watermark = EXCLUDED.high_watermark, run_id = EXCLUDED.run_id, updated_at = now()
             WHERE audit.watermark.high_watermark < EXCLUDED.high_watermark
            """,
            (source_id, high, run_id),
        )
    files = detail.get("files", [])
    return {
        "source_id": source_id,
        "run_id": run_id,
        "received": received,
        "files": len(files),
        "quarantined_files": sum(1 for f in files if f["error"]),
        "low_watermark": low.isoformat() if low else None,
        "high_watermark": high.isoformat(),
    }
