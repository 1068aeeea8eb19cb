"""The open-dataset definitions the API serves, through one small adapter.

The publication core owns the definitions (``pipelines.publish.datasets.load_datasets() -> list[Dataset]``, each
with code, title, title_en, provider_department, abstract, open_attribute and fields of
Field(name, type, label_zh, description, filterable)). The API only reads those attributes, so any object that
has them will do. Until the core's loader exists, the YAML files under ``settings.datasets_dir/*/*.yaml`` are read
here with the same shape: swapping to the core's loader is the one import below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from pipelines.settings import settings

log = logging.getLogger(__name__)

OPEN_ATTRIBUTES = ("unconditional", "conditional", "closed")
OPEN_ATTRIBUTE_ZH = {"unconditional": "无条件开放", "conditional": "有条件开放", "closed": "不予开放"}


class FieldLike(Protocol):
    name: str
    type: str
    label_zh: str
    description: str
    filterable: bool


class DatasetLike(Protocol):
    code: str
    title: str
    title_en: str
    provider_department: str
    abstract: str
    open_attribute: str
    fields: list


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "text"
    label_zh: str = ""
    description: str = ""
    filterable: bool = False


@dataclass(frozen=True)
class Dataset:
    code: str
    title: str
    open_attribute: str
    fields: list[Field] = field(default_factory=list)
    title_en: str = ""
    provider_department: str = ""
    abstract: str = ""


def _yaml_datasets(directory: Path) -> list[Dataset]:
    """Read ``<directory>/*/*.yaml`` (one dataset per file) in the contract's shape; unknown keys are ignored."""
    out: list[Dataset] = []
    for path in sorted(directory.glob("*/*.yaml")):
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            fields = [
                Field(name=f["name"], type=str(f.get("type", "text")), label_zh=f.get("label_zh", ""),
                      description=f.get("description", ""), filterable=bool(f.get("filterable", False)))
                for f in data.get("fields", [])
            ]
            ds = Dataset(code=data["code"], title=data["title"], open_attribute=data["open_attribute"],
                         fields=fields, title_en=data.get("title_en", ""),
                         provider_department=data.get("provider_department", ""), abstract=data.get("abstract", ""))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: dataset definition without {exc}") from exc
        if ds.open_attribute not in OPEN_ATTRIBUTES:
            raise ValueError(f"{path}: open_attribute {ds.open_attribute!r} is not one of {OPEN_ATTRIBUTES}")
        out.append(ds)
    return out


def _fallback_loader() -> list[Dataset]:
    return _yaml_datasets(settings.datasets_dir)


try:  # the publication core's loader, once it exists (the one line to keep when the fallback goes)
    from pipelines.publish.datasets import load_datasets as _core_loader  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on what is checked in
    _core_loader = None


def load_datasets() -> list[DatasetLike]:
    """Every dataset definition, closed ones included (the API decides what to serve)."""
    return list(_core_loader() if _core_loader is not None else _fallback_loader())
