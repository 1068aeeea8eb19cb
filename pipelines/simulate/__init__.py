"""The simulated departments: the sources of the resident-population database, with realistic defects,
deterministic by seed and scale.

Public API::

    generate(persons, days, seed, start, landing_dir, api_dir, frontdb_url, rates=DefectRates(),
             only_days=None, changes=ChangeRates()) -> Manifest
    write_day(day, persons, seed, start, landing_dir, api_dir, frontdb_url, rates=DefectRates(),
              changes=ChangeRates()) -> Manifest
    DefectRates, ChangeRates, Manifest, manifest_path(landing_dir)

``generate`` writes day 0 (the full first extract: every department's whole holding) and the daily increments
1..days (``only_days``: just those). When day 0 is among them it starts over: the sources' landing folders and API
folder are emptied and the 前置库 tables dropped and recreated. ``write_day`` writes one day and touches nothing
else (its own files are overwritten, its 前置库 rows — update time within the day — replaced), so a test can run the
pipeline day by day and add the next day's rows afterwards, as real 前置库 rows appear over time. Both are
idempotent: the same arguments give byte-identical files, identical tables and the same manifest. The population of
day d depends only on (seed, persons) and the changes of days 1..d, each drawn from (seed, persons, day).

What is written, per source of config/population_sources.yaml (column/field names exactly the registry's; the
key column first, then the fields in registry order, then the update-time column; value spellings in
pipelines/simulate/rows.py):

* 前置库 (psb_hukou → psb.t_rk_hjxx, hrss_employment → hrss.t_jy_cbxx) in the database ``frontdb_url``: every
  column text except the update-time column (timestamptz); no primary key (a department's table may hold exact
  duplicates); rows are appended day by day — a changed record is a new row with the same key and a later update
  time — loaded with COPY. Day d's rows have update times within [d 00:00, d+1 00:00) Asia/Shanghai.
  ``frontdb_url=None`` skips the 前置库 (the manifest still counts its rows).
* file drops under ``<landing_dir>/<department>/<dataset>/<YYYY-MM-DD>/<dataset>_<YYYYMMDD>_<nn>.<ext>``:
  CSV with a header row in the registry's encoding (residence_permit: GBK; student: UTF-8 with BOM), CRLF line
  ends; XLSX (one sheet named after the dataset, header row, every cell a string, empty = no value); XML
  ``<?xml version="1.0" encoding="UTF-8"?><records><record><djbh>…</djbh>…</record></records>``. Day 0 has one part
  per 200,000 persons; a later day has part 01 (if it has rows), then an extra 0-byte file on
  ``DefectRates.empty_file_days`` (``empty_file_source``), then on ``malformed_xml_day`` a civil_marriage XML file
  cut off in the middle (records of clean rows only, none readable). On ``late_file_days`` d, a third of day d-1's
  rows of ``late_file_source`` are held back from d-1's file and written on day d, as the next part, into d-1's
  folder (their update times are on d-1). File times (mtime): the folder day 23:00 +08:00, a late file its writing
  day 10:00 +08:00.
* the HTTP API (health_vital_events, endpoint /health/vital-events): ``<api_dir>/health/vital-events/
  <YYYY-MM-DD>.jsonl``, one JSON object per line (fields named as in the registry, missing values null) for the
  records updated that day; served by ``pipelines.simulate.api`` (paging and the window rule are documented there).

Late-arriving data: psb registers a birth 1-3 days after health reports it and deregisters a death 1-2 days after
(RKZT 死亡, BDRQ the death date); event dates (births, deaths, moves, registrations) are up to a week before the
update day. The ground truth of every day and source (rows, planted defects) is the manifest, saved at
``manifest_path(landing_dir)`` = ``<landing_dir>/../sim_manifest.json`` (pipelines/simulate/manifest.py).

Scale: everything per person is numpy arrays; text is built per chunk of 200,000 persons with vectorised string
operations (openpyxl's row-by-row writer is the one loop, over the ~4% foreign residents). Measured on the 2-core
development machine, ``python -m pipelines.simulate --persons 1000000 --days 1`` (with the 前置库): 2.0M rows in
28.5 s, peak RSS 467 MB.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from sqlalchemy import URL, make_url

from pipelines.registry import Source, load_sources
from pipelines.settings import Settings
from pipelines.simulate import defects as K
from pipelines.simulate import writers
from pipelines.simulate.defects import DefectRates
from pipelines.simulate.manifest import Manifest, manifest_path
from pipelines.simulate.population import ChangeRates, rng_for
from pipelines.simulate.rows import Batch, output_columns
from pipelines.simulate.world import Simulator

__all__ = ["generate", "write_day", "DefectRates", "ChangeRates", "Manifest", "manifest_path", "SHANGHAI"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def day_window(day: date) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) of a day, Asia/Shanghai."""
    low = datetime.combine(day, time(), tzinfo=SHANGHAI)
    return low, low + timedelta(days=1)


def _params(persons: int, seed: int, start: date, rates: DefectRates, changes: ChangeRates) -> dict:
    return {"persons": persons, "seed": seed, "start": start.isoformat(), "rates": rates.as_dict(),
            "changes": asdict(changes)}


def _url(frontdb_url) -> URL | None:
    if frontdb_url is None:
        return None
    return frontdb_url if isinstance(frontdb_url, URL) else make_url(str(frontdb_url))


def generate(persons: int, days: int, seed: int, start: date, landing_dir: Path, api_dir: Path, frontdb_url,
             rates: DefectRates = DefectRates(), only_days: Iterable[int] | None = None,
             changes: ChangeRates = ChangeRates()) -> Manifest:
    """Write day 0 (full extract) and the increments 1..days (or only ``only_days``); see the module docstring."""
    wanted = sorted(set(range(days + 1) if only_days is None else only_days))
    if any(d < 0 or d > days for d in wanted):
        raise ValueError(f"only_days must lie within 0..{days}: {wanted}")
    return _run(persons, seed, start, Path(landing_dir), Path(api_dir), _url(frontdb_url), rates, changes, wanted,
                reset=0 in wanted)


def write_day(day: int, persons: int, seed: int, start: date, landing_dir: Path, api_dir: Path, frontdb_url,
              rates: DefectRates = DefectRates(), changes: ChangeRates = ChangeRates()) -> Manifest:
    """Write one day (0 = the full extract) without touching other days; returns the merged manifest."""
    if day < 0:
        raise ValueError("day must be >= 0")
    return _run(persons, seed, start, Path(landing_dir), Path(api_dir), _url(frontdb_url), rates, changes, [day],
                reset=False)


# --------------------------------------------------------------------------------------------------------------


def _run(persons, seed, start, landing_dir, api_dir, url, rates, changes, wanted, reset) -> Manifest:
    sources = load_sources()
    sim = Simulator(persons, seed, start, rates, changes)
    manifest = Manifest(_params(persons, seed, start, rates, changes))
    conn = psycopg.connect(Settings.libpq(url)) if url is not None else None
    try:
        if reset:
            _reset(sources, landing_dir, api_dir, conn)
        handover: dict[str, tuple[Batch, int]] = {}
        for d in range(max(wanted) + 1):
            if d > 0:
                sim.advance()
            sim.late_handover, handover = handover, {}
            if d in wanted:
                handover = _write_day(sim, sources, manifest, landing_dir, api_dir, conn)
            elif d > 0 and d + 1 in wanted and d + 1 in rates.late_file_days:
                for s in sources:
                    if s.id == rates.late_file_source and (held := _plan_files(sim, s)[3]) is not None:
                        handover[s.id] = held
    finally:
        if conn is not None:
            conn.close()
    if reset:
        manifest.save(manifest_path(landing_dir))
        return manifest
    return manifest.merged_into_file(manifest_path(landing_dir))


def _reset(sources: list[Source], landing_dir: Path, api_dir: Path, conn) -> None:
    for s in sources:
        if s.kind == "file":
            shutil.rmtree(landing_dir / s.department / (s.dataset or ""), ignore_errors=True)
        elif s.kind == "api":
            shutil.rmtree(api_dir / (s.endpoint or "").strip("/"), ignore_errors=True)
        elif s.kind == "frontdb" and conn is not None:
            with conn.transaction():
                writers.create_table(conn, s, output_columns(s), drop=True)


def _output(path: str, kind: str, folder: date, rows: int, status: str, late: bool, batch: Batch | None,
            extra: dict[str, int] | None = None) -> dict:
    defects, info = batch.counts() if batch is not None else ({}, {})
    if extra:
        defects = {**defects, **extra}
    return {"path": path, "kind": kind, "folder_date": folder.isoformat(), "rows": rows, "status": status,
            "late": late, "defects": defects, "info": info}


def _write_day(sim: Simulator, sources: list[Source], manifest: Manifest, landing_dir: Path, api_dir: Path,
               conn) -> dict:
    d = sim.day
    today = sim.day_date()
    entry = manifest.start_day(d, today.isoformat(), sim.composition() if d == 0 else sim.events.counts())
    late_next: dict = {}
    for s in sources:
        entry["sources"][s.id] = {"rows": 0, "rows_unreadable": 0, "defects": {}, "info": {}, "outputs": []}
    for s in sources:
        if s.kind == "frontdb":
            _write_table(sim, s, entry, conn)
        elif s.kind == "api":
            _write_api(sim, s, entry, api_dir)
        else:
            late_next |= _write_files(sim, s, entry, landing_dir)
    return late_next


def _write_table(sim: Simulator, s: Source, entry: dict, conn) -> None:
    low, high = day_window(sim.day_date())
    total = 0
    defects: dict[str, int] = {}
    info: dict[str, int] = {}
    with conn.transaction() if conn is not None else nullcontext():
        if conn is not None:
            writers.create_table(conn, s, output_columns(s), drop=False)
            writers.delete_window(conn, s, low, high)
        for batch in sim.batches(s):
            if conn is not None:
                writers.copy_rows(conn, s, batch)
            total += len(batch)
            bd, bi = batch.counts()
            for k, v in bd.items():
                defects[k] = defects.get(k, 0) + v
            for k, v in bi.items():
                info[k] = info.get(k, 0) + v
    out = _output(s.table or "", "table", sim.day_date(), total, "ok", False, None)
    out["defects"], out["info"] = defects, info
    Manifest.add_output(entry, s.id, out)


def _write_api(sim: Simulator, s: Source, entry: dict, api_dir: Path) -> None:
    rel = f"{(s.endpoint or '').strip('/')}/{sim.day_date().isoformat()}.jsonl"
    path = api_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    defects: dict[str, int] = {}
    info: dict[str, int] = {}
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        for batch in sim.batches(s):
            fh.write(writers.jsonl_bytes(batch))
            total += len(batch)
            bd, bi = batch.counts()
            for k, v in bd.items():
                defects[k] = defects.get(k, 0) + v
            for k, v in bi.items():
                info[k] = info.get(k, 0) + v
    tmp.replace(path)
    out = _output(rel, "api", sim.day_date(), total, "ok", False, None)
    out["defects"], out["info"] = defects, info
    Manifest.add_output(entry, s.id, out)


# --- file drops ------------------------------------------------------------------------------------------------


def _groups_share(batch: Batch, eligible_groups: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Row mask of about ``share`` of the eligible groups (at least one when there is any)."""
    if not len(eligible_groups):
        return np.zeros(len(batch), dtype=bool)
    k = max(1, int(round(len(eligible_groups) * share)))
    chosen = rng.choice(eligible_groups, min(k, len(eligible_groups)), replace=False)
    return np.isin(batch.group, chosen)


def _plan_files(sim: Simulator, s: Source):
    """An increment's files of a source: (regular batch, malformed batch or None, empty file?, late hand-over).
    The late hand-over is (rows held back for tomorrow's late file, number of parts already in today's folder)."""
    d = sim.day
    rates = sim.rates
    (batch,) = list(sim.batches(s))
    held = np.zeros(len(batch), dtype=bool)
    if d + 1 in rates.late_file_days and s.id == rates.late_file_source:
        held = _groups_share(batch, np.unique(batch.group), rng_for(sim.seed, sim.persons, d + 1, "late"), 1 / 3)
    malformed = None
    if d == rates.malformed_xml_day and s.format == "xml":
        g = batch.group[~held]
        dirty = np.unique(batch.group[batch.kind != 0])
        clean = np.setdiff1d(np.unique(g), dirty)
        m = _groups_share(batch, clean, rng_for(sim.seed, sim.persons, d, "malformed"), 1 / 3) & ~held
        malformed = batch.take(np.flatnonzero(m))
        held_or_bad = held | m
    else:
        held_or_bad = held
    regular = batch.take(np.flatnonzero(~held_or_bad))
    empty = d in rates.empty_file_days and s.id == rates.empty_file_source
    parts = int(len(regular) > 0) + int(empty) + int(malformed is not None)
    late = (batch.take(np.flatnonzero(held)), parts) if held.any() else None
    return regular, malformed, empty, late


def _file_name(s: Source, folder: date, part: int) -> str:
    return f"{s.dataset}_{folder.strftime('%Y%m%d')}_{part:02d}.{s.format}"


def _stamp(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


def _write_file(s: Source, path: Path, batch: Batch | None, when: datetime, cut: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    if batch is None:
        tmp.write_bytes(b"")
    elif s.format == "csv":
        tmp.write_bytes(writers.csv_bytes(batch, s.encoding))
    elif s.format == "xml":
        tmp.write_bytes(writers.xml_bytes(batch, s.record_tag or "record", cut=cut))
    elif s.format == "xlsx":
        writers.write_xlsx(tmp, batch, s.dataset or "sheet1", when.astimezone(ZoneInfo("UTC")))
    else:  # pragma: no cover - the registry schema allows only these
        raise ValueError(s.format)
    ts = when.timestamp()
    os.utime(tmp, (ts, ts))
    tmp.replace(path)


def _write_files(sim: Simulator, s: Source, entry: dict, landing_dir: Path) -> dict:
    d, today = sim.day, sim.day_date()
    folder = landing_dir / s.department / (s.dataset or "") / today.isoformat()
    rel = f"{s.department}/{s.dataset}/{today.isoformat()}"
    regular_when = _stamp(today, 23)
    written: list[str] = []
    late_next: dict = {}

    def emit(name: str, batch: Batch | None, status: str, extra=None, cut=False, fold=folder, frel=rel,
             fdate=today, when=regular_when, is_late=False):
        _write_file(s, fold / name, batch, when, cut)
        rows = len(batch) if batch is not None else 0
        out = _output(f"{frel}/{name}", "file", fdate, rows, status, is_late, None if cut else batch, extra)
        Manifest.add_output(entry, s.id, out)
        if fold == folder:
            written.append(name)

    if d == 0:
        part = 0
        for batch in sim.batches(s):
            if len(batch):
                part += 1
                emit(_file_name(s, today, part), batch, "ok")
    else:
        regular, malformed, empty, held = _plan_files(sim, s)
        part = 0
        if len(regular):
            part += 1
            emit(_file_name(s, today, part), regular, "ok")
        if empty:
            part += 1
            emit(_file_name(s, today, part), None, "empty", {K.EMPTY_FILE: 1})
        if malformed is not None:
            part += 1
            emit(_file_name(s, today, part), malformed, "malformed", {K.MALFORMED_FILE: 1}, cut=True)
        if held is not None:
            late_next[s.id] = held
        # the late file for yesterday's folder, handed over when yesterday was written (or planned)
        handed = sim.late_handover.get(s.id)
        if d in sim.rates.late_file_days and handed is not None:
            batch, parts = handed
            yday = sim.day_date(d - 1)
            name = _file_name(s, yday, parts + 1)
            emit(name, batch, "ok", fold=folder.parent / yday.isoformat(), frel=f"{s.department}/{s.dataset}/{yday.isoformat()}",
                 fdate=yday, when=_stamp(today, 10), is_late=True)
    # leftovers of an earlier run with other parameters (keep the late file a later day put here)
    if folder.is_dir():
        keep = set(written)
        keep_late = d + 1 in sim.rates.late_file_days and s.id == sim.rates.late_file_source
        for f in folder.iterdir():
            if f.name in keep or not f.name.startswith(f"{s.dataset}_"):
                continue
            if keep_late and f.name == _file_name(s, today, len(written) + 1):
                continue
            f.unlink()
    return late_next
