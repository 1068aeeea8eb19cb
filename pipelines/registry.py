"""The registries people edit — the source registry and the authority registry (数源目录) — loaded and validated.

A typo fails loudly at load time with the file and line of the offending entry, never later in a task.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.departments import Department
from pipelines.population.attributes import GOLDEN_ATTRIBUTES, ID_TYPES, RAW_FIELD_NAMES
from pipelines.settings import settings, write_cache_file

DEPARTMENTS = [d.value for d in Department]

SOURCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sources"],
    "additionalProperties": False,
    "properties": {
        "sources": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "department", "title", "kind", "key", "updated_at", "fields"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "department": {"enum": DEPARTMENTS},
                    "title": {"type": "string"},
                    "kind": {"enum": ["frontdb", "file", "api"]},
                    "table": {"type": "string", "pattern": r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"},
                    "dataset": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "format": {"enum": ["csv", "xlsx", "xml"]},
                    "encoding": {"type": "string"},
                    "record_tag": {"type": "string"},
                    "endpoint": {"type": "string", "pattern": "^/"},
                    "page_size": {"type": "integer", "minimum": 1, "maximum": 10000},
                    "key": {"type": "string"},
                    "updated_at": {"type": "string"},
                    "id_type": {"enum": list(ID_TYPES)},
                    "weight": {"type": "integer", "minimum": 0},
                    "fields": {
                        "type": "object",
                        "minProperties": 1,
                        "propertyNames": {"enum": RAW_FIELD_NAMES},
                        "additionalProperties": {"type": "string"},
                    },
                },
                "allOf": [
                    {"if": {"properties": {"kind": {"const": "frontdb"}}}, "then": {"required": ["table"]}},
                    {"if": {"properties": {"kind": {"const": "file"}}}, "then": {"required": ["dataset", "format"]}},
                    {"if": {"properties": {"kind": {"const": "api"}}}, "then": {"required": ["endpoint"]}},
                    {"if": {"required": ["format"], "properties": {"format": {"const": "xml"}}}, "then": {"required": ["record_tag"]}},
                ],
            },
        }
    },
}

AUTHORITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["database", "attributes"],
    "additionalProperties": False,
    "properties": {
        "database": {"type": "string"},
        "attributes": {
            "type": "object",
            "propertyNames": {"enum": GOLDEN_ATTRIBUTES},
            "required": GOLDEN_ATTRIBUTES,
            "additionalProperties": {
                "type": "object",
                "required": ["authority"],
                "additionalProperties": False,
                "properties": {
                    "authority": {"enum": DEPARTMENTS},
                    "fallback": {"type": "array", "items": {"enum": DEPARTMENTS}, "uniqueItems": True},
                    "compare": {"type": "boolean"},
                },
            },
        },
    },
}


class RegistryError(ValueError):
    """A registry file that does not follow its schema; the message names the file and line."""


# libyaml's parser where PyYAML was built with it (the wheels are): the same documents and marks, a thirtieth of the
# time — the pure-Python one, parsing each file twice (data, then nodes for the line numbers), took 15–25 ms of
# every extract task (the source registry) and 40–60 ms of every publication task (the dataset definitions)
# (BENCHMARKS.md row 108)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml_with_lines(path: Path) -> tuple[Any, yaml.Node | None]:
    """The document of a YAML file (what ``yaml.safe_load`` gives) and its node tree, which :func:`_line_of` finds
    line numbers in: parsed once, the data constructed from the nodes."""
    text = path.read_text(encoding="utf-8")
    loader = _SAFE_LOADER(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _line_of(node: yaml.Node, where: list[Any]) -> int:
    """1-based line of the YAML node at the JSON path ``where`` (as deep as the path can be followed)."""
    for step in where:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            nxt = node.value[step]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
    return node.start_mark.line + 1


def _valid_marker(path: Path, schema: dict[str, Any]) -> Path | None:
    """The file that says this content of ``path`` was valid against ``schema`` (named by the digest of both, under
    the project's cache); None when the file cannot be read."""
    try:
        content = path.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(json.dumps(schema, sort_keys=True, default=str).encode() + b"\0" + content).hexdigest()
    return settings.local_dir / "cache" / "valid" / digest[:40]


def schema_errors(path: Path, data: Any, schema: dict[str, Any]) -> list:
    """The JSON-schema errors of ``data`` (the document of the YAML file ``path``), sorted by their place.

    A file found valid is remembered (:func:`_valid_marker`, an empty file written through a temporary one), and
    the same content against the same schema is not validated again: every task process loads the registry or
    the dataset definitions, and jsonschema's import alone (format checkers included) was 0.06–0.07 s of each
    one's start. Another content or another schema is another name, validated afresh; a cache that cannot be
    written only means validating every time."""
    marker = _valid_marker(path, schema)
    if marker is not None and marker.exists():
        return []
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if not errors and marker is not None:
        write_cache_file(marker, b"")
    return errors


def _validate(path: Path, schema: dict[str, Any]) -> Any:
    data, root = _load_yaml_with_lines(path)
    errors = schema_errors(path, data, schema)
    if errors:
        err = errors[0]
        line = _line_of(root, list(err.absolute_path)) if root is not None else 1
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        raise RegistryError(f"{path}:{line}: {where}: {err.message}")
    return data


@dataclass(frozen=True)
class Source:
    id: str
    department: str
    title: str
    kind: str
    key: str
    updated_at: str
    fields: dict[str, str]
    table: str | None = None
    dataset: str | None = None
    format: str | None = None
    encoding: str = "utf-8"
    record_tag: str | None = None
    endpoint: str | None = None
    page_size: int = 500
    id_type: str | None = None
    weight: int = 0  # about how many rows a full extract holds: the extract tasks start heaviest first
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributeAuthority:
    attribute: str
    authority: str
    fallback: tuple[str, ...]
    compare: bool

    @property
    def order(self) -> tuple[str, ...]:
        """Departments in survivorship order: the authority first, then the fallbacks."""
        return (self.authority, *self.fallback)


def load_sources(path: Path | None = None) -> list[Source]:
    path = path or settings.source_registry
    data = _validate(path, SOURCE_SCHEMA)
    sources = [Source(**entry) for entry in data["sources"]]
    seen: set[str] = set()
    for s in sources:
        if s.id in seen:
            raise RegistryError(f"{path}: source id {s.id!r} appears twice")
        seen.add(s.id)
        if s.id_type is None and "id_type" not in s.fields:
            raise RegistryError(f"{path}: source {s.id!r} has neither id_type nor a fields.id_type column")
    return sources


def extract_order(sources: list[Source]) -> list[Source]:
    """The sources in the order their extract tasks start: heaviest first (``weight``, registry order among equals).

    The mapped extract tasks run a few at a time (the executor's parallelism); started largest first, the last to
    finish is a small one, not the largest started last (longest-processing-time-first: on the 2-core benchmark the
    full load's extract ends about a second sooner). Only the start order changes, never what a task does."""
    return sorted(sources, key=lambda s: -s.weight)


@lru_cache(maxsize=8)
def _sources_cached(path: str) -> tuple[Source, ...]:
    return tuple(load_sources(Path(path)))


def source(source_id: str, path: Path | None = None) -> Source:
    for s in _sources_cached(str(path or settings.source_registry)):
        if s.id == source_id:
            return s
    raise KeyError(f"no source {source_id!r} in the source registry")


def load_authority(path: Path | None = None) -> list[AttributeAuthority]:
    path = path or settings.authority_registry
    data = _validate(path, AUTHORITY_SCHEMA)
    out = []
    for attr in GOLDEN_ATTRIBUTES:  # the registry may list them in any order; survivorship uses ours
        spec = data["attributes"][attr]
        fallback = tuple(spec.get("fallback", []))
        if spec["authority"] in fallback:
            raise RegistryError(f"{path}: {attr}: the authority {spec['authority']!r} is also listed as fallback")
        out.append(AttributeAuthority(attr, spec["authority"], fallback, bool(spec.get("compare", True))))
    return out
