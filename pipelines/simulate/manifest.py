"""The ground truth of a simulation: per day and source, the rows written and the defects planted.

Saved as JSON (sorted keys, no timestamps: reruns give the same bytes) at ``manifest_path(landing_dir)``, i.e.
``<landing_dir>/../sim_manifest.json``; writing a day replaces that day's entry and keeps the others (as long as
persons, seed, start and rates are the same — otherwise the file starts over). Layout::

    {"format": "popetl-sim-manifest/1",
     "params": {"persons", "seed", "start", "rates": {...}, "changes": {...}},
     "days": {"<d>": {"date": "YYYY-MM-DD", "events": {"births": n, ...},
                      "sources": {"<source id>": {"rows": n, "rows_unreadable": n, "defects": {counter: n},
                                                  "info": {name: n}, "outputs": [output, ...]}}}}}

    output = {"path": "psb/residence_permit/2026-01-02/residence_permit_20260102_01.csv"   (relative to the
                       landing dir; API: relative to the API dir; 前置库: the table name),
              "kind": "file" | "table" | "api", "folder_date": "YYYY-MM-DD" (files; the update day for tables and
              API files), "late": bool (a file written on this day into the previous day's folder),
              "status": "ok" | "empty" (0 bytes) | "malformed" (not well-formed: none of its rows readable),
              "rows": n, "defects": {...}, "info": {...}}

Day 0's ``events`` is the population's composition instead (persons, hukou, migrants, foreigners, deceased,
moved_out, same_name_pairs). ``rows`` counts every record written (duplicates and malformed rows included, records of a malformed file too);
``rows_unreadable`` the records inside files that cannot be parsed at all. Defect counters are named by reason code
where one exists (pipelines.reasons), else DUPLICATE_EXACT, DUPLICATE_NEAR, NO_ID_MATCHABLE, CONFLICT_NAME,
CONFLICT_RESIDENCE; file counters EMPTY_FILE and MALFORMED_FILE count files. Every planted defect is in exactly one
counter of exactly one output. Info counters are facts, not planted defects (see pipelines.simulate.defects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "popetl-sim-manifest/1"


def manifest_path(landing_dir: Path) -> Path:
    return Path(landing_dir).parent / "sim_manifest.json"


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


@dataclass
class Manifest:
    params: dict[str, Any]
    days: dict[int, dict[str, Any]] = field(default_factory=dict)

    # --- building ------------------------------------------------------------------------------------------
    def start_day(self, day: int, date: str, events: dict[str, int]) -> dict[str, Any]:
        entry = {"date": date, "events": events, "sources": {}}
        self.days[day] = entry
        return entry

    @staticmethod
    def add_output(day_entry: dict[str, Any], source_id: str, output: dict[str, Any]) -> None:
        src = day_entry["sources"].setdefault(
            source_id, {"rows": 0, "rows_unreadable": 0, "defects": {}, "info": {}, "outputs": []})
        src["outputs"].append(output)
        src["rows"] += output["rows"]
        if output["status"] == "malformed":
            src["rows_unreadable"] += output["rows"]
        _add(src["defects"], output["defects"])
        _add(src["info"], output["info"])

    # --- reading -------------------------------------------------------------------------------------------
    def _sources(self, source: str | None, day: int | None):
        for d, entry in sorted(self.days.items()):
            if day is not None and d != day:
                continue
            for sid, src in sorted(entry["sources"].items()):
                if source is None or sid == source:
                    yield src

    def count(self, counter: str, source: str | None = None, day: int | None = None) -> int:
        """Planted defects of one counter (all sources / all days unless narrowed)."""
        return sum(src["defects"].get(counter, 0) for src in self._sources(source, day))

    def info(self, name: str, source: str | None = None, day: int | None = None) -> int:
        return sum(src["info"].get(name, 0) for src in self._sources(source, day))

    def rows(self, source: str | None = None, day: int | None = None) -> int:
        return sum(src["rows"] for src in self._sources(source, day))

    def outputs(self, source: str | None = None, day: int | None = None) -> list[dict[str, Any]]:
        return [o for src in self._sources(source, day) for o in src["outputs"]]

    def defects(self, source: str | None = None, day: int | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for src in self._sources(source, day):
            _add(out, src["defects"])
        return out

    # --- JSON ----------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        doc = {"format": FORMAT, "params": self.params,
               "days": {str(d): self.days[d] for d in sorted(self.days)}}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a simulation manifest ({doc.get('format')!r})")
        return cls(doc["params"], {int(d): e for d, e in doc["days"].items()})

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    def merged_into_file(self, path: Path) -> "Manifest":
        """This manifest's days written over the file's (same params), saved; the merged manifest returned."""
        path = Path(path)
        merged = Manifest(self.params, {})
        if path.exists():
            try:
                old = Manifest.load(path)
                if old.params == self.params:
                    merged.days.update(old.days)
            except (ValueError, KeyError, json.JSONDecodeError):
                pass
        merged.days.update(self.days)
        merged.save(path)
        return merged
