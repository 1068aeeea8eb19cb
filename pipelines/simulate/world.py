"""The simulated world day by day: the population, its changes, and which rows each department holds each day."""

from __future__ import annotations

from datetime import date

import numpy as np

from pipelines.registry import Source
from pipelines.simulate import population as P
from pipelines.simulate.defects import DefectRates
from pipelines.simulate.population import NO_DAY, ChangeRates, Events
from pipelines.simulate.rows import (
    EV_BIRTH, EV_DEATH, EV_MOVE, EV_MOVED_OUT, EV_REGISTERED, SPECS, Batch, Selection, build_batch, evidence_context,
)

FULL_CHUNK = 200_000  # persons per chunk (and per file part) of the full first extract


class Simulator:
    """State of the world on ``self.day`` (0 = the full first extract), advanced one day at a time."""

    def __init__(self, persons: int, seed: int, start: date, rates: DefectRates, changes: ChangeRates):
        if persons < 1:
            raise ValueError("persons must be at least 1")
        self.persons, self.seed, self.start, self.rates, self.changes = persons, seed, start, rates, changes
        self.start_day = P.day_number(start)
        self.tables = P.Tables.build(seed, persons)
        self.people = P.base_population(seed, persons, self.start_day, self.tables, rates.twin_share)
        self.day = 0
        self.events: Events | None = None
        self._pending = np.empty((4, 0), dtype=np.int64)  # rows: due day, kind (0 birth, 1 death), pid, event day
        self._ctx = None
        self.late_handover: dict = {}  # set by the writer: yesterday's rows held back for today's late file

    # --- time ----------------------------------------------------------------------------------------------
    def advance(self) -> None:
        d = self.day + 1
        ev = P.step(self.people, self.seed, self.persons, d, self.start_day + d, self.tables, self.changes)
        births = np.vstack([d + ev.birth_psb_lag, np.zeros(len(ev.births)), ev.births, self.people.birth[ev.births]])
        deaths = np.vstack([d + ev.death_psb_lag, np.ones(len(ev.deaths)), ev.deaths, ev.death_day])
        pending = np.hstack([self._pending, births.astype(np.int64), deaths.astype(np.int64)])
        self._pending = pending[:, pending[0] >= d]
        self.day, self.events, self._ctx = d, ev, None

    def day_date(self, day: int | None = None) -> date:
        return date.fromordinal(self.start.toordinal() + (self.day if day is None else day))

    def _due(self, kind: int, cat: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        m = (self._pending[0] == self.day) & (self._pending[1] == kind)
        pids, days = self._pending[2, m], self._pending[3, m]
        keep = np.isin(self.people.cat[pids], cat)
        return pids[keep], days[keep]

    def composition(self) -> dict[str, int]:
        p = self.people
        return {
            "persons": len(p), "hukou": int((p.cat == P.HUKOU).sum()), "migrants": int((p.cat == P.MIGRANT).sum()),
            "foreigners": int((p.cat >= P.PASSPORT).sum()), "deceased": int((p.status == P.DECEASED).sum()),
            "moved_out": int((p.status == P.MOVED_OUT).sum()), "same_name_pairs": int((p.twin_of >= 0).sum() // 2),
        }

    # --- who each department holds -------------------------------------------------------------------------
    def full_selection(self, source_id: str, lo: int, hi: int) -> Selection:
        """Day 0: the department's whole holding among persons lo..hi-1."""
        p = self.people
        idx = np.arange(lo, hi, dtype=np.int64)
        cat, status = p.cat[idx], p.status[idx]
        active = status == P.ACTIVE
        chinese = cat <= P.MIGRANT
        if source_id == "psb_hukou":
            i = idx[cat == P.HUKOU]
            st = p.status[i]
            event = np.select([st == P.DECEASED, st == P.MOVED_OUT], [EV_DEATH, EV_MOVED_OUT], EV_REGISTERED)
            day = np.where(st == P.ACTIVE, p.birth[i], p.status_day[i])
            return Selection.of(i, event, day)
        if source_id == "psb_residence_permit":
            return Selection.of(idx[(cat == P.MIGRANT) & active])
        if source_id == "psb_foreign_resident":
            return Selection.of(idx[(cat >= P.PASSPORT) & active])
        if source_id == "health_vital_events":
            born = idx[chinese & active & (p.birth[idx] >= self.start_day - 365)]
            died = idx[(cat == P.HUKOU) & (status == P.DECEASED)]
            return Selection.concat([Selection.of(born, 0, p.birth[born]), Selection.of(died, 1, p.status_day[died])])
        if source_id == "civil_marriage":
            i = idx[(cat == P.HUKOU) & active & np.isin(p.marital[idx], (2, 4))]
            return Selection.of(i, np.where(p.marital[i] == 4, 1, 0), p.marital_day[i])
        if source_id == "hrss_employment":
            return Selection.of(idx[chinese & active & (p.employer[idx] >= 0)])
        if source_id == "education_student":
            return Selection.of(idx[chinese & active & (p.school[idx] >= 0)])
        raise KeyError(source_id)

    def increment_selection(self, source_id: str) -> Selection:
        """Day d >= 1: the department's new and changed records of the day (late ones included)."""
        p, ev = self.people, self.events
        assert ev is not None
        moves = ev.moves
        mcat = p.cat[moves]
        if source_id == "psb_hukou":
            b, bd = self._due(0, (P.HUKOU,))
            dd, ddd = self._due(1, (P.HUKOU,))
            m = mcat == P.HUKOU
            return Selection.concat([Selection.of(b, EV_BIRTH, bd), Selection.of(dd, EV_DEATH, ddd),
                                     Selection.of(moves[m], EV_MOVE, ev.move_day[m])])
        if source_id == "psb_residence_permit":
            b, _ = self._due(0, (P.MIGRANT,))
            return Selection.concat([Selection.of(b), Selection.of(ev.new_migrants), Selection.of(moves[mcat == P.MIGRANT])])
        if source_id == "psb_foreign_resident":
            return Selection.concat([Selection.of(ev.new_foreigners), Selection.of(moves[mcat >= P.PASSPORT])])
        if source_id == "health_vital_events":
            return Selection.concat([Selection.of(ev.births, 0, p.birth[ev.births]),
                                     Selection.of(ev.deaths, 1, ev.death_day)])
        if source_id == "civil_marriage":
            nm = len(ev.marriages)
            pids = np.concatenate([ev.marriages, ev.divorces])
            return Selection.of(pids, np.r_[np.zeros(nm), np.ones(len(ev.divorces))].astype(np.int8), ev.registration_day)
        if source_id == "hrss_employment":
            return Selection.concat([Selection.of(ev.job_changes), Selection.of(ev.new_migrants_employed)])
        if source_id == "education_student":
            return Selection.of(ev.transfers)
        raise KeyError(source_id)

    # --- rows ----------------------------------------------------------------------------------------------
    def batches(self, source: Source):
        """The day's batches of a source: chunks of FULL_CHUNK persons on day 0, one batch on later days."""
        if self.day == 0:
            for chunk, lo in enumerate(range(0, self.persons, FULL_CHUNK)):
                yield self.batch(source, self.full_selection(source.id, lo, min(lo + FULL_CHUNK, self.persons)), chunk)
        else:
            yield self.batch(source, self.increment_selection(source.id), 0)

    def batch(self, source: Source, sel: Selection, chunk: int) -> Batch:
        d = self.day
        secs = P.rng_for(self.seed, self.persons, d, f"updated/{source.id}/{chunk}").integers(0, 86400, len(sel))
        if d > 0:  # an increment reads like the department's log of the day
            order = np.lexsort((sel.pids, secs))
            sel = Selection(sel.pids[order], sel.event[order], sel.event_day[order])
            secs = secs[order]
        ctx = None
        if SPECS[source.id].no_id:
            if self._ctx is None:
                self._ctx = evidence_context(self.people)
            ctx = self._ctx
        rng = P.rng_for(self.seed, self.persons, d, f"defects/{source.id}/{chunk}")
        return build_batch(source, self.people, self.tables, sel, self.start_day + d, secs, self.rates, rng, ctx,
                           increment=d > 0)


__all__ = ["Simulator", "FULL_CHUNK", "NO_DAY"]
