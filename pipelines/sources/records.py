"""The record every source adapter yields, and the pure helpers that build it (no I/O, no database).

A :class:`Record` is one row as received: its key and update time, where it came from (``origin``), the payload with
the source's own field names, the canonical fields of ``staging.population_record`` (text, untouched) and, for a row
that could not be split into fields, the parse error.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from datetime import date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from pipelines.population.attributes import RAW_FIELD_NAMES
from pipelines.registry import Source

SHANGHAI = ZoneInfo("Asia/Shanghai")

# File-level reasons of quarantine.source_file (row-level reasons live in pipelines.reasons).
EMPTY_FILE = "EMPTY_FILE"          # 0 bytes, header only, or an XML document without records
MALFORMED_FILE = "MALFORMED_FILE"  # XML not well-formed, bytes not in the declared encoding, not an XLSX workbook

T = TypeVar("T")


_INDEX = {name: i for i, name in enumerate(RAW_FIELD_NAMES)}


@dataclass(slots=True)
class Record:
    source_key: str | None
    source_updated_at: datetime | None
    origin: str
    payload: Any
    values: tuple[str | None, ...]  # the canonical fields in RAW_FIELD_NAMES order (id_type first), text as received
    payload_utf8: bytes             # canonical JSON of the payload, UTF-8 (what is stored and hashed)
    parse_error: str | None = None
    plain: bool | None = None       # is_plain of a payload of text (None: not known, normalised in full)

    def canonical(self, name: str) -> str | None:
        return self.values[_INDEX[name]]

    @property
    def id_type(self) -> str | None:
        return self.values[_INDEX["id_type"]]

    @property
    def payload_json(self) -> str:
        """The canonical JSON of the payload as text."""
        return self.payload_utf8.decode("utf-8")

    @property
    def row_hash(self) -> str:
        return hashlib.md5(self.payload_utf8).hexdigest()


@dataclass(slots=True)
class Chunk:
    """A chunk of records by column: what the stager writes (one COPY row per position) and the identifier rules
    read (pipelines.population.validate.check_records), with no object per record.

    Built straight from a chunk of payloads of text by :meth:`RecordBuilder.text_chunk` (each step one C-level pass
    over the chunk: the sorted encoder, ``md5``, the plain test, the fields by ``dict.get``), or from records by
    :meth:`of_records`; the two give the same columns for the same rows (a property test compares them)."""

    keys: list[str | None]                 # source_key
    updated: list[datetime | None]         # source_updated_at
    origins: list[str]
    values: list[list[str | None]]         # per canonical field, in RAW_FIELD_NAMES order
    payloads: list[bytes]                  # canonical JSON, UTF-8
    hashes: list[str]                      # md5 hex of the payload (row_hash)
    parse_errors: list[str | None]
    plains: list[bool | None]

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> list[str | None]:
        """The values of canonical field ``name``."""
        return self.values[_INDEX[name]]

    @classmethod
    def of_records(cls, records: Sequence[Record]) -> Chunk:
        """The columns of ``records``, in their order."""
        return cls(
            [r.source_key for r in records],
            [r.source_updated_at for r in records],
            [r.origin for r in records],
            [list(column) for column in zip(*(r.values for r in records))] if records
            else [[] for _ in RAW_FIELD_NAMES],
            [r.payload_utf8 for r in records],
            [r.row_hash for r in records],
            [r.parse_error for r in records],
            [r.plain for r in records],
        )

    @classmethod
    def concat(cls, chunks: Sequence[Chunk]) -> Chunk:
        """One chunk of the rows of ``chunks``, in their order."""
        if len(chunks) == 1:
            return chunks[0]

        def joined(name: str) -> list:
            return list(chain.from_iterable(getattr(c, name) for c in chunks))

        return cls(
            joined("keys"), joined("updated"), joined("origins"),
            [list(chain.from_iterable(c.values[i] for c in chunks)) for i in range(len(RAW_FIELD_NAMES))],
            joined("payloads"), joined("hashes"), joined("parse_errors"), joined("plains"),
        )


class MalformedFile(Exception):
    """A file that cannot be read at all; none of its rows are staged (all-or-nothing per file)."""


class EmptyFile(Exception):
    """A file with no data rows (0 bytes, only a header, an XML document without records)."""


def as_text(value: Any) -> str | None:
    """A received value as text: strings untouched, None stays None, other JSON scalars in their JSON spelling."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False)


_ENCODE_SORTED = msgspec.json.Encoder(order="sorted").encode
_TEXT_TYPES = frozenset((str, type(None)))
_ABSENT = object()  # a key no payload has: ``payload.get(_ABSENT)`` is None
_DICT_ONLY = frozenset((dict,))
_HEXDIGEST = operator.methodcaller("hexdigest")


def canonical_json(payload: Any) -> str:
    """The payload as canonical JSON: sorted keys, UTF-8 text (ensure_ascii=False), compact separators — the
    spelling of ``json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``, which every
    stored row hash was made from.

    A flat payload of text (what 前置库 tables, CSV and XML give) is encoded by msgspec, three times faster, whose
    output for such payloads is the same string (keys in code point order, the same escapes; a property test
    compares the two); anything else (numbers, nested values from an API) goes through ``json``."""
    return canonical_utf8(payload).decode("utf-8")


def canonical_utf8(payload: Any) -> bytes:
    """:func:`canonical_json` encoded in UTF-8 — what a record keeps: it is hashed and sent to the warehouse as
    bytes, so the text is never decoded from msgspec's output only to be encoded twice again (BENCHMARKS.md row 73)."""
    if type(payload) is dict and _TEXT_TYPES.issuperset(map(type, payload.values())):  # (all text or None)
        return _text_json(payload)
    return _json_canonical(payload).encode("utf-8")


def _text_json(payload: dict[str, str | None]) -> bytes:
    """canonical_utf8 of a dict whose values are all text or None."""
    try:
        return _ENCODE_SORTED(payload)
    except (TypeError, ValueError, msgspec.EncodeError):  # a non-text key: json's spelling (an unpaired
        return _json_canonical(payload).encode("utf-8")   # surrogate raises UnicodeEncodeError here: build())


# Bytes of canonical JSON that may belong to a character text normalisation changes (population.norm_text: white
# space, full-width forms): the space; the backslash of an escape (JSON escapes every control character, tab and
# line breaks included); the lead bytes of the UTF-8 of U+0080–U+00BF (U+0085, U+00A0), U+1000–U+1FFF (U+1680),
# U+2000–U+2FFF (U+2000–U+200B, U+2028, U+2029, U+202F, U+205F), U+3000–U+3FFF (U+3000) and U+F000–U+FFFF (the
# full-width forms, U+FEFF). More than those characters (every character of those blocks, a quoted quote): a row
# with any of them is simply normalised in full.
_NOT_PLAIN = b" \\\xc2\xe1\xe2\xe3\xef"


def is_plain(payload_utf8: bytes) -> bool:
    """True when no value of a payload of text (its canonical JSON, :func:`canonical_utf8`) holds a character that
    ``population.norm_text`` changes, so that each normalises to itself (an empty one to NULL): the candidates skip
    the normalisation's per-field test for such a row (staging.population_record.plain, migration 0028). One C-level
    pass over the bytes (``bytes.translate`` deleting the bytes of :data:`_NOT_PLAIN`): 0.25 µs a row, where the
    test in PostgreSQL cost 0.19 µs a field. Conservative: a row it does not call plain is only normalised in full."""
    return len(payload_utf8.translate(None, _NOT_PLAIN)) == len(payload_utf8)


def _json_canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def row_hash(payload: Any) -> str:
    """md5 hex of the canonical JSON of the payload (staging.population_record.row_hash)."""
    return hashlib.md5(canonical_utf8(payload)).hexdigest()


_FORMATS = ("%Y%m%d%H%M%S", "%Y%m%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y.%m.%d")


def parse_updated_at(value: Any) -> datetime | None:
    """A source update time, tz-aware; naive values are Asia/Shanghai local time. None when not parsable."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time())
    else:
        text = str(value).strip()
        if not text:
            return None
        dt = None
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            for fmt in _FORMATS:
                try:
                    dt = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if dt is None:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=SHANGHAI)
    return dt


def drop_day_start(day: date) -> datetime:
    """00:00 Asia/Shanghai of a drop date: the update time of file rows without a parsable one."""
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


_SURROGATE = re.compile("[\ud800-\udfff]")  # (in a str: unpaired, a pair being one character)


def _scrub(value: Any) -> Any:
    """``value`` with every NUL and unpaired surrogate replaced by U+FFFD: what PostgreSQL's text and UTF-8 cannot
    hold (an API's JSON may spell both, as ``\\u0000`` and ``\\ud800``)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value.replace("\x00", "\ufffd"))
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


class RecordBuilder:
    """Builds the records of one source: the registry mapping is resolved once, not per row."""

    def __init__(self, source: Source):
        self.source = source
        # per canonical column: the source field to read, or a constant (the registry's id_type default)
        self._plan: list[tuple[str | None, str | None]] = []
        for name in RAW_FIELD_NAMES:
            if name in source.fields:
                self._plan.append((source.fields[name], None))
            elif name == "id_type":
                self._plan.append((None, source.id_type))
            else:
                self._plan.append((None, None))
        self._malformed_values = tuple(const for _, const in self._plan)
        # for a payload of text (see build): the payload key of every canonical field (_ABSENT where none), and the
        # constant of id_type (the only field a constant can fill: the first)
        self._keys = [_ABSENT if src is None else src for src, _ in self._plan]
        if RAW_FIELD_NAMES[0] != "id_type" or any(const is not None for _, const in self._plan[1:]):
            raise RuntimeError("only id_type, the first canonical field, may have a constant")
        self._id_type_const = self._plan[0][1]

    def build(
        self,
        payload: dict[str, Any],
        origin: str,
        fallback_updated_at: datetime | None = None,
        source_updated_at: datetime | None = None,
    ) -> Record:
        """A well-formed record: key, update time and canonical fields taken from ``payload`` by the registry.

        ``source_updated_at`` is used as given when the caller already has it typed (前置库 timestamptz); otherwise
        the ``updated_at`` field is parsed, falling back to ``fallback_updated_at`` (the drop date for files).
        PostgreSQL text cannot hold NUL nor an unpaired surrogate (not UTF-8): a payload containing one is kept with
        it replaced by U+FFFD and flagged as a parse error, so it is quarantined rather than silently altered.
        """
        source = self.source
        # every value text or None (a 前置库 row, a CSV row, an XML record, an XLSX row's cell texts — nearly every
        # row): the payload goes straight to the sorted encoder and the fields are taken by one C-level map, with
        # nothing to convert (testing each field in a genexpr was a tenth of a 前置库 source's extract)
        text = type(payload) is dict and _TEXT_TYPES.issuperset(map(type, payload.values()))
        try:
            payload_utf8 = _text_json(payload) if text else _json_canonical(payload).encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate
            payload_utf8 = None
        parse_error = None
        if payload_utf8 is None or (b"\\u0000" in payload_utf8 and _has_nul(payload)):  # (cheap filter first)
            what = "unpaired surrogate" if payload_utf8 is None else "NUL character"
            payload = _scrub(payload)
            payload_utf8 = canonical_utf8(payload)
            parse_error = f"{what} in the record (replaced by U+FFFD in the payload)"
        get = payload.get
        if text:
            values = tuple(map(get, self._keys))
            if self._id_type_const is not None:
                values = (self._id_type_const, *values[1:])
        else:
            values = tuple(  # (as_text inlined for the common case of text)
                const if src is None else (v if (v := get(src)) is None or type(v) is str else as_text(v))
                for src, const in self._plan
            )
        if source_updated_at is None:
            source_updated_at = parse_updated_at(get(source.updated_at)) or fallback_updated_at
        # (plain only for a payload of text, where the canonical fields are the payload's values as they are)
        plain = is_plain(payload_utf8) if text and parse_error is None else None
        return Record(as_text(get(source.key)), source_updated_at, origin, payload, values, payload_utf8, parse_error,
                      plain)

    def text_chunk(
        self,
        payloads: list[dict[str, Any]],
        origins: list[str],
        updated: list[datetime | None] | None = None,
        fallback_updated_at: datetime | None = None,
        texts: bool = False,
    ) -> Chunk:
        """The chunk of the records :meth:`build` makes of ``payloads`` (with their ``origins``, and their update
        times ``updated`` when the caller has them typed), built column by column.

        The fast way is for what nearly every chunk is — every payload a dict whose keys and values are text (or
        None), none holding a NUL: each column is one C-level pass over the chunk (the sorted encoder, ``md5``, the
        plain test, each field by ``dict.get``), where building a record at a time cost about twice as much in
        Python (BENCHMARKS.md row 118). Any other chunk (a number in an API's payload, a NUL, an unpaired surrogate,
        a key that is not text) is built record by record, by :meth:`build`, which knows those cases.

        ``texts``: the caller guarantees that every payload is a dict of text keys to text or None (a 前置库 row
        whose other values it rendered, a CSV or XML row), so the scan of every value's type that decides the fast
        way is skipped (0.7 µs a row: about 1.4 CPU s of a 1M full load's extract); a NUL or an unpaired surrogate
        is still found (by the encoder and the NUL test)."""
        n = len(payloads)
        fast = texts or (
            _DICT_ONLY.issuperset(map(type, payloads))
            and _TEXT_TYPES.issuperset(map(type, chain.from_iterable(map(dict.values, payloads))))
        )
        utf8: list[bytes] = []
        if fast:
            try:
                utf8 = list(map(_ENCODE_SORTED, payloads))
            except (TypeError, ValueError, msgspec.EncodeError):  # (an unpaired surrogate: build() flags it)
                fast = False
        if not fast or b"\\u0000" in b"".join(utf8):  # (a NUL: build() scrubs and flags it)
            if updated is None:
                updated = [None] * n
            return Chunk.of_records([self.build(p, o, fallback_updated_at, u)
                                     for p, o, u in zip(payloads, origins, updated)])
        source = self.source
        if updated is None:
            updated = [parse_updated_at(v) or fallback_updated_at
                       for v in map(dict.get, payloads, repeat(source.updated_at))]
        elif None in updated:  # (build() parses the payload's update time where none is given)
            updated = [u if u is not None else parse_updated_at(p.get(source.updated_at)) or fallback_updated_at
                       for p, u in zip(payloads, updated)]
        nothing = [None] * n
        values = [nothing if key is _ABSENT else list(map(dict.get, payloads, repeat(key))) for key in self._keys]
        if self._id_type_const is not None:
            values[0] = [self._id_type_const] * n
        return Chunk(
            list(map(dict.get, payloads, repeat(source.key))),
            updated,
            origins,
            values,
            utf8,
            list(map(_HEXDIGEST, map(hashlib.md5, utf8))),
            nothing,
            list(map(operator.eq, map(len, map(bytes.translate, utf8, repeat(None), repeat(_NOT_PLAIN))),
                     map(len, utf8))),
        )

    def malformed(self, raw: Any, origin: str, error: str, fallback_updated_at: datetime | None) -> Record:
        """A row that could not be split into the source's fields: kept raw as ``{"_raw": raw}`` with its error."""
        payload = {"_raw": _scrub(raw)}
        return Record(None, fallback_updated_at, origin, payload, self._malformed_values, canonical_utf8(payload),
                      error)


def build_record(
    source: Source,
    payload: dict[str, Any],
    origin: str,
    fallback_updated_at: datetime | None = None,
    source_updated_at: datetime | None = None,
) -> Record:
    """One record of ``source`` (see :meth:`RecordBuilder.build`; readers keep one builder per stream)."""
    return RecordBuilder(source).build(payload, origin, fallback_updated_at, source_updated_at)


def malformed_record(source: Source, raw: Any, origin: str, error: str, fallback_updated_at: datetime | None) -> Record:
    """A malformed row of ``source`` (see :meth:`RecordBuilder.malformed`)."""
    return RecordBuilder(source).malformed(raw, origin, error, fallback_updated_at)


# the columns of a staged row a source gives, in the order the stager writes them (then the checks, then key_repeated)
COPY_COLUMNS: list[str] = [
    "run_id",
    "source_id",
    "seq",
    "department",
    "source_key",
    "source_updated_at",
    "row_hash",
    "origin",
    *RAW_FIELD_NAMES,
    "payload",
    "parse_error",
    "plain",
]


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, streaming (one chunk in memory at a time)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
