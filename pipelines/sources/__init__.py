"""Source adapters (前置库 table, file drop, HTTP API) and the staging loader.

``stage_source(source_id, run_id, interval_start, interval_end)`` is what a DAG task calls; the readers
(``read_frontdb``, ``read_drop``/``discover_files``, ``read_api``) yield :class:`Record` objects (``read_frontdb`` and
``read_drop_chunks`` chunks of them by column, :class:`pipelines.sources.records.Chunk`) and can be used on their
own. Edge behaviour (windows, late files, malformed input) is described in ``staging.py``.

The API reader (``read_api``, ``SourceApiError``: httpx and tenacity, about a quarter of a second of a task process's
start-up) is imported when first named, so that the extract tasks of the other kinds of source never load it.
"""

from typing import Any

from pipelines.sources.files import DropFile, discover_files, read_drop, read_drop_chunks
from pipelines.sources.frontdb import read_frontdb
from pipelines.sources.records import (
    EMPTY_FILE,
    MALFORMED_FILE,
    EmptyFile,
    MalformedFile,
    Record,
    RecordBuilder,
    build_record,
    canonical_json,
    parse_updated_at,
    row_hash,
)
from pipelines.sources.staging import stage_source

__all__ = [
    "EMPTY_FILE",
    "MALFORMED_FILE",
    "DropFile",
    "EmptyFile",
    "MalformedFile",
    "Record",
    "RecordBuilder",
    "SourceApiError",
    "build_record",
    "canonical_json",
    "discover_files",
    "parse_updated_at",
    "read_api",
    "read_drop",
    "read_drop_chunks",
    "read_frontdb",
    "row_hash",
    "stage_source",
]


def __getattr__(name: str) -> Any:
    if name in ("SourceApiError", "read_api"):
        from pipelines.sources import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
