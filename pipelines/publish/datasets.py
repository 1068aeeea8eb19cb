"""Open dataset definitions: ``<datasets_dir>/<database>/<code>.yaml`` (catalog metadata, fields, privacy
settings) and ``<code>.sql`` (one SELECT over the golden tables producing the rows), loaded and validated.

A definition that does not follow the schema fails at load with the file and line (like the source registry), and
so does one that breaks a publication rule the schema cannot express: a field named like a direct identifier, an
aggregate without a count column, quasi-identifiers that are not fields, a SQL file that is missing.

The SQL may use the named parameter ``%(as_of)s`` (date: the last day covered by the source runs) and joins the
reference table ``publish_work.district_map`` for districts. It returns the dataset's fields in order, except the
suppression flag of an aggregate, which the review adds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from pipelines.departments import LABELS, Department
from pipelines.registry import RegistryError, _line_of, _load_yaml_with_lines, schema_errors
from pipelines.settings import settings

OPEN_ATTRIBUTES = {"unconditional": "无条件开放", "conditional": "有条件开放", "closed": "不予开放"}
SHARE_TYPES = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}
# code -> (Chinese label, DCAT frequency IRI of the EU vocabulary that CKAN's dcat extension understands)
UPDATE_FREQUENCIES = {
    "daily": ("每日", "http://publications.europa.eu/resource/authority/frequency/DAILY"),
    "weekly": ("每周", "http://publications.europa.eu/resource/authority/frequency/WEEKLY"),
    "monthly": ("每月", "http://publications.europa.eu/resource/authority/frequency/MONTHLY"),
    "quarterly": ("每季度", "http://publications.europa.eu/resource/authority/frequency/QUARTERLY"),
    "annual": ("每年", "http://publications.europa.eu/resource/authority/frequency/ANNUAL"),
}
# field type -> PostgreSQL type of the published table
FIELD_TYPES = {"text": "text", "integer": "bigint", "number": "numeric", "boolean": "boolean", "date": "date"}
DEFAULT_LICENSE = {
    "name": "上海市公共数据开放平台数据使用协议 (Shanghai Public Data Open Platform terms of use)",
    "url": "https://data.sh.gov.cn/",
}

# A direct identifier of a person may never be a field of an open dataset, whatever the SQL puts in it: names
# and Chinese labels that say so are refused at load (the PII scan double-checks the values).
_FORBIDDEN_NAME = re.compile(
    r"^(name|full_name|person_name|xm|ric|tel)$"
    r"|id_number|id_no|id_card|passport|permit_no|phone|mobile|telephone|email|address|person_id|source_key"
)
_FORBIDDEN_LABEL = re.compile(r"姓名|身份证|证件号|护照号|居住证号|电话|手机|邮箱|地址|人员标识")

_FIELD = {
    "type": "object",
    "required": ["name", "type", "label_zh", "description"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "type": {"enum": list(FIELD_TYPES)},
        "label_zh": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "filterable": {"type": "boolean"},
    },
}

DATASET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "title", "title_en", "provider_department", "abstract", "classification", "keywords",
                 "open_attribute", "share_type", "update_frequency", "record_level", "fields"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{2,62}$"},
        "title": {"type": "string", "minLength": 2},
        "title_en": {"type": "string", "minLength": 2},
        "provider_department": {"enum": [d.value for d in Department]},
        "abstract": {"type": "string", "minLength": 10},
        "abstract_en": {"type": "string"},
        "classification": {"type": "string", "minLength": 2},
        "keywords": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        "open_attribute": {"enum": list(OPEN_ATTRIBUTES)},
        "share_type": {"enum": list(SHARE_TYPES)},
        "update_frequency": {"enum": list(UPDATE_FREQUENCIES)},
        "record_level": {"type": "boolean"},
        "universe": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "quasi_identifiers": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        "local_suppression": {"type": "boolean"},
        "suppression": {
            "type": "object",
            "required": ["count", "dimensions", "flag"],
            "additionalProperties": False,
            "properties": {
                "count": {"type": "string"},
                "dimensions": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
                "flag": {"type": "string"},
                "independent": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            },
        },
        "fields": {"type": "array", "items": _FIELD, "minItems": 1},
        "related": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title"],
                "additionalProperties": False,
                "properties": {
                    "title": {"type": "string"},
                    "dataset": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "url": {"type": "string", "pattern": "^https?://"},
                    "relation": {"type": "string"},
                },
            },
        },
        "license": {
            "type": "object",
            "required": ["name", "url"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
        "asset_uri": {"type": "string", "pattern": "^[a-z]+://"},
    },
    "allOf": [
        {"if": {"properties": {"record_level": {"const": True}}},
         "then": {"required": ["quasi_identifiers"], "not": {"required": ["suppression"]}},
         "else": {"required": ["suppression"], "not": {"required": ["quasi_identifiers"]}}},
    ],
}


class DatasetError(RegistryError):
    """A dataset definition that is invalid; the message names the file and line."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label_zh: str
    description: str
    filterable: bool = False

    @property
    def pg_type(self) -> str:
        return FIELD_TYPES[self.type]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "label_zh": self.label_zh, "description": self.description,
                "filterable": self.filterable}


@dataclass(frozen=True)
class Suppression:
    count: str               # the count column
    dimensions: tuple[str, ...]  # the columns that identify a cell (the other columns only label it)
    flag: str                # boolean column: true where the count is withheld (published empty)
    independent: tuple[str, ...] = ()  # dimensions separating tables that no total adds up (births | deaths)


@dataclass(frozen=True)
class Dataset:
    code: str
    title: str
    title_en: str
    provider_department: str
    abstract: str
    classification: str
    keywords: tuple[str, ...]
    open_attribute: str
    share_type: str
    update_frequency: str
    record_level: bool
    fields: tuple[Field, ...]
    database: str
    yaml_path: Path
    sql_path: Path
    abstract_en: str = ""
    universe: str | None = None
    quasi_identifiers: tuple[str, ...] = ()
    local_suppression: bool = False
    suppression: Suppression | None = None
    related: tuple[dict[str, Any], ...] = ()
    license: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LICENSE))
    asset_uri: str = ""

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def sql_columns(self) -> list[str]:
        """The columns the SQL returns: every field but the suppression flag (the review sets it)."""
        flag = self.suppression.flag if self.suppression else None
        return [f.name for f in self.fields if f.name != flag]

    @property
    def open_attribute_label(self) -> str:
        return OPEN_ATTRIBUTES[self.open_attribute]

    @property
    def share_type_label(self) -> str:
        return SHARE_TYPES[self.share_type]

    @property
    def update_frequency_label(self) -> str:
        return UPDATE_FREQUENCIES[self.update_frequency][0]

    @property
    def provider_department_name(self) -> str:
        return LABELS[Department(self.provider_department)]

    @property
    def table(self) -> str:
        return f"publish.{self.code}"

    @cached_property
    def sql(self) -> str:
        return self.sql_path.read_text(encoding="utf-8").strip().rstrip(";").strip()

    @cached_property
    def definition_sha256(self) -> str:
        h = hashlib.sha256(self.yaml_path.read_bytes())
        h.update(self.sql_path.read_bytes())
        return h.hexdigest()

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


_CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
_CJK_GAP = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")


def _prose(text: str) -> str:
    """A folded YAML paragraph: stripped, and no space left where a line break fell between Chinese characters."""
    return _CJK_GAP.sub("", " ".join(text.split()))


def _fail(path: Path, root: yaml.Node | None, where: list[Any], message: str) -> DatasetError:
    line = _line_of(root, where) if root is not None else 1
    return DatasetError(f"{path}:{line}: {'/'.join(str(p) for p in where) or '(top)'}: {message}")


def load_dataset(path: Path) -> Dataset:
    """One definition (``<code>.yaml`` with its ``<code>.sql`` beside it), validated."""
    data, root = _load_yaml_with_lines(path)
    errors = schema_errors(path, data, DATASET_SCHEMA)
    if errors:
        err = errors[0]
        raise _fail(path, root, list(err.absolute_path), err.message)
    if data["code"] != path.stem:
        raise _fail(path, root, ["code"], f"code {data['code']!r} must be the file name ({path.stem!r})")
    names = [f["name"] for f in data["fields"]]
    for i, f in enumerate(data["fields"]):
        if names.count(f["name"]) > 1:
            raise _fail(path, root, ["fields", i, "name"], f"field {f['name']!r} appears twice")
        if _FORBIDDEN_NAME.search(f["name"]) or _FORBIDDEN_LABEL.search(f["label_zh"]):
            raise _fail(path, root, ["fields", i], f"field {f['name']!r} ({f['label_zh']}) looks like a direct "
                        "identifier of a person (name, ID number, phone, address): it may not be published")
    if "suppression" in data:
        s = data["suppression"]
        for key, cols in (("count", [s["count"]]), ("flag", [s["flag"]]), ("dimensions", s["dimensions"])):
            for col in cols:
                if col not in names:
                    raise _fail(path, root, ["suppression", key], f"{col!r} is not a field")
        types = {f["name"]: f["type"] for f in data["fields"]}
        if types[s["count"]] != "integer":
            raise _fail(path, root, ["suppression", "count"], f"the count {s['count']!r} must be an integer field")
        if types[s["flag"]] != "boolean":
            raise _fail(path, root, ["suppression", "flag"], f"the flag {s['flag']!r} must be a boolean field")
        if s["count"] in s["dimensions"] or s["flag"] in s["dimensions"]:
            raise _fail(path, root, ["suppression", "dimensions"], "the count and the flag are not dimensions")
        for i, d in enumerate(s.get("independent", [])):
            if d not in s["dimensions"]:
                raise _fail(path, root, ["suppression", "independent", i], f"{d!r} is not one of the dimensions")
    for i, q in enumerate(data.get("quasi_identifiers", [])):
        if q not in names:
            raise _fail(path, root, ["quasi_identifiers", i], f"quasi-identifier {q!r} is not a field")
    if data.get("local_suppression") and not data["record_level"]:
        raise _fail(path, root, ["local_suppression"], "local_suppression is for record-level datasets")
    sql_path = path.with_suffix(".sql")
    if not sql_path.is_file():
        raise _fail(path, root, ["code"], f"the dataset's SQL {sql_path.name} is missing")
    s = data.get("suppression")
    return Dataset(
        code=data["code"], title=data["title"], title_en=data["title_en"],
        provider_department=data["provider_department"], abstract=_prose(data["abstract"]),
        abstract_en=_prose(data.get("abstract_en", "")), classification=data["classification"],
        keywords=tuple(data["keywords"]), open_attribute=data["open_attribute"], share_type=data["share_type"],
        update_frequency=data["update_frequency"], record_level=data["record_level"],
        fields=tuple(Field(f["name"], f["type"], f["label_zh"], f["description"].strip(),
                           bool(f.get("filterable", False))) for f in data["fields"]),
        database=path.parent.name, yaml_path=path, sql_path=sql_path, universe=data.get("universe"),
        quasi_identifiers=tuple(data.get("quasi_identifiers", ())),
        local_suppression=bool(data.get("local_suppression", False)),
        suppression=(Suppression(s["count"], tuple(s["dimensions"]), s["flag"], tuple(s.get("independent", ())))
                     if s else None),
        related=tuple(data.get("related", ())), license=data.get("license", dict(DEFAULT_LICENSE)),
        asset_uri=data.get("asset_uri", f"postgres://warehouse/warehouse/publish/{data['code']}"),
    )


def load_datasets(directory: Path | None = None) -> list[Dataset]:
    """Every definition under ``<directory>/<database>/*.yaml`` (default: settings.datasets_dir), sorted by code."""
    directory = directory or settings.datasets_dir
    out = [load_dataset(p) for p in sorted(directory.glob("*/*.yaml"))]
    seen: dict[str, Path] = {}
    for ds in out:
        if ds.code in seen:
            raise DatasetError(f"{ds.yaml_path}:1: code {ds.code!r} is also defined in {seen[ds.code]}")
        seen[ds.code] = ds.yaml_path
    codes = set(seen)
    for ds in out:
        for rel in ds.related:
            if "dataset" in rel and rel["dataset"] not in codes:
                raise DatasetError(f"{ds.yaml_path}:1: related dataset {rel['dataset']!r} is not defined")
    return sorted(out, key=lambda d: d.code)


def get_dataset(code: str, directory: Path | None = None) -> Dataset:
    for ds in load_datasets(directory):
        if ds.code == code:
            return ds
    raise KeyError(f"no dataset {code!r} under {directory or settings.datasets_dir}")
