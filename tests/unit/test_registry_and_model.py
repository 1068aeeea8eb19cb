"""The registries fail loudly with file and line; the model's lists agree with the migrations and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines import reasons
from pipelines.population.attributes import GOLDEN_ATTRIBUTES, RAW_FIELD_NAMES
from pipelines.registry import RegistryError, extract_order, load_authority, load_sources

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_registries_load():
    sources = load_sources()
    assert {s.kind for s in sources} == {"frontdb", "file", "api"}
    assert {s.format for s in sources if s.kind == "file"} == {"csv", "xlsx", "xml"}
    assert len({s.department for s in sources}) >= 5
    authority = {a.attribute: a for a in load_authority()}
    assert authority["name"].order[0] == "psb"
    assert authority["death_date"].authority == "health"
    assert authority["marital_status"].authority == "civil_affairs"


def test_yaml_is_read_as_safe_load_reads_it_with_the_nodes_marks(tmp_path):
    """The registries and dataset definitions are parsed once (libyaml's parser where PyYAML has it) into nodes, the
    data constructed from them: the same data as ``yaml.safe_load``, the same lines as ``yaml.compose``."""
    import yaml

    from pipelines.registry import _line_of, _load_yaml_with_lines

    files = [*sorted((ROOT / "config").glob("*.yaml")), *sorted((ROOT / "datasets").rglob("*.yaml"))]
    assert len(files) >= 7
    for path in files:
        text = path.read_text(encoding="utf-8")
        data, root = _load_yaml_with_lines(path)
        assert data == yaml.safe_load(text), path
        reference = yaml.compose(text)
        first = next(iter(data))
        assert _line_of(root, [first]) == _line_of(reference, [first]), path
    empty, broken = tmp_path / "empty.yaml", tmp_path / "broken.yaml"
    empty.write_text("# nothing\n", encoding="utf-8")
    assert _load_yaml_with_lines(empty) == (None, None)
    broken.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="broken.yaml: not valid YAML"):
        _load_yaml_with_lines(broken)


def test_typo_in_source_registry_names_file_and_line(tmp_path):
    text = (ROOT / "config" / "population_sources.yaml").read_text(encoding="utf-8")
    bad = text.replace("    kind: api\n", "    kind: apii\n", 1)
    path = tmp_path / "sources.yaml"
    path.write_text(bad, encoding="utf-8")
    line = next(i for i, l in enumerate(bad.splitlines(), 1) if "apii" in l)
    with pytest.raises(RegistryError, match=rf"sources.yaml:{line}: sources/\d+/kind: 'apii' is not one of"):
        load_sources(path)


def test_unknown_field_and_department_in_registries(tmp_path):
    text = (ROOT / "config" / "population_sources.yaml").read_text(encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("      employer: DWMC", "      employr: DWMC"), encoding="utf-8")
    with pytest.raises(RegistryError, match="employr"):
        load_sources(path)
    auth = (ROOT / "config" / "authority.yaml").read_text(encoding="utf-8")
    path = tmp_path / "a.yaml"
    path.write_text(auth.replace("{authority: hrss, fallback: []", "{authority: hrs, fallback: []", 1),
                    encoding="utf-8")
    with pytest.raises(RegistryError, match=r"a.yaml:\d+: attributes/employer/authority: 'hrs' is not one of"):
        load_authority(path)


def test_extract_tasks_start_heaviest_first(tmp_path):
    """The mapped extract tasks are queued heaviest first (weight), equals and unweighted in registry order; the DAG
    maps over that order and the benchmark submits its extract tasks in it."""
    from pipelines.population import flow

    shipped = load_sources()
    ordered = extract_order(shipped)
    assert sorted(s.id for s in ordered) == sorted(s.id for s in shipped)  # a reordering, nothing lost
    assert [s.weight for s in ordered] == sorted((s.weight for s in shipped), reverse=True)
    assert ordered[0].id == "psb_hukou" and ordered[-1].kind == "api"
    assert flow.source_ids() == [s.id for s in ordered]

    text = (ROOT / "config" / "population_sources.yaml").read_text(encoding="utf-8")
    unweighted = re.sub(r"\n    weight: [0-9_]+", "", text)
    path = tmp_path / "s.yaml"
    path.write_text(unweighted, encoding="utf-8")
    assert [s.id for s in extract_order(load_sources(path))] == [s.id for s in shipped]  # registry order
    path.write_text(text.replace("    weight: 100_000", "    weight: -1", 1), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"s.yaml:\d+: sources/\d+/weight: -1 is less than the minimum of 0"):
        load_sources(path)


def _columns(migration: str, table: str) -> list[str]:
    sql = "\n".join((ROOT / "sql" / "migrations").joinpath(f).read_text(encoding="utf-8")
                    for f in sorted(p.name for p in (ROOT / "sql" / "migrations").glob("*.sql")))
    body = re.search(rf"CREATE TABLE {re.escape(table)} \((.*?)\n\);", sql, re.S).group(1)
    return [line.split()[0] for line in body.splitlines()
            if line.strip() and not line.strip().startswith(("PRIMARY", "UNIQUE", "CONSTRAINT", "--"))]


def test_migrations_declare_the_model_attributes():
    staging = _columns("", "staging.population_record")
    assert [c for c in staging if c in RAW_FIELD_NAMES] == RAW_FIELD_NAMES
    person = _columns("", "population.person")
    assert [c for c in person if c in GOLDEN_ATTRIBUTES] == GOLDEN_ATTRIBUTES
    assert [c for c in person if c.startswith("src_")] == [f"src_{a}" for a in GOLDEN_ATTRIBUTES]


def test_every_reason_code_is_documented():
    doc = (ROOT / "docs" / "reason-codes.md").read_text(encoding="utf-8")
    for code in reasons.REASONS + reasons.WARNINGS:
        assert f"`{code}`" in doc, f"{code} missing from docs/reason-codes.md"


def test_a_file_found_valid_is_not_validated_again_until_it_changes(tmp_path, monkeypatch):
    """schema_errors remembers a valid content (an empty marker named by the digest of the schema and the file) and
    skips jsonschema for it; an edited file — a typo — is validated again and fails with its line."""
    import dataclasses

    import pipelines.registry as registry

    own = dataclasses.replace(registry.settings, local_dir=tmp_path / "local")
    monkeypatch.setattr(registry, "settings", own)
    path = tmp_path / "sources.yaml"
    path.write_text(Path(own.source_registry).read_text(encoding="utf-8"), encoding="utf-8")
    first = load_sources(path)
    markers = list((tmp_path / "local" / "cache" / "valid").iterdir())
    assert len(markers) == 1 and markers[0].read_bytes() == b""

    class NoValidator:  # the second load must not reach jsonschema
        def __getattr__(self, name):
            raise AssertionError("validated again")

    monkeypatch.setitem(__import__("sys").modules, "jsonschema", NoValidator())
    assert load_sources(path) == first
    monkeypatch.undo()
    monkeypatch.setattr(registry, "settings", own)
    typo = path.read_text(encoding="utf-8").replace("    kind: api\n", "    kind: apii\n", 1)
    path.write_text(typo, encoding="utf-8")
    with pytest.raises(RegistryError, match=r"sources\.yaml:\d+: sources/\d+/kind"):
        load_sources(path)
    assert registry._valid_marker(path, registry.SOURCE_SCHEMA) not in (None, *markers)
