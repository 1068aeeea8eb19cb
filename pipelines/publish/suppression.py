"""Small-cell suppression with complementary suppression for aggregate datasets, and its audit.

Why by hand: the statistical disclosure control tools that do this (τ-ARGUS, sdcTable) are not Python libraries;
the few lines here do the classic approach, and the audit proves the outcome with scipy (already a dependency).

The table is a grid of cells identified by their dimension values with one count each.

1. **Primary suppression**: every cell with 0 < count < threshold.
2. **What an attacker knows** (conservatively): the total of every 1-D *line* of the table (all cells sharing all
   dimension values but one) — as if each margin were published somewhere — the grand total, and the totals other
   published aggregates of the same universe give: their margin over the dimensions both tables share
   (``linked``; e.g. district totals from the registered/non-registered table). With every line known these
   margins are implied anyway, except when another table has all of this one's dimensions — then every cell is
   known and the release is blocked (the audit finds every suppressed cell determined). A dimension declared
   *independent* (e.g. ``event``: births and deaths) separates tables that no total adds up: no line runs along it.
3. **Complementary suppression**: as long as some constraint (line or total) contains exactly one cell that is
   still unknown, suppress one more cell of it: the smallest non-zero count (a zero only when the line has no
   other cell), preferring a cell that also fixes another such constraint. A suppressed zero in a constraint whose
   suppressed cells are all zero is known to be zero (counts are not negative) and does not count as unknown;
   when a constraint can only be fixed through such a zero, a positive cell is suppressed where it is given away.
   Suppressed zeros that stay given away at the end are published (0): they protect nothing.
4. **Audit**: the published values and every known total give a linear system over the suppressed cells (with
   counts ≥ 0). A primary cell is recoverable when the system fixes its value. Per connected group of suppressed
   cells, cells forced to zero by non-negativity are found with linear programs (scipy HiGHS), then a primary cell
   is fixed exactly when the unit vector of that cell lies in the row space of the remaining system (its row of
   the null-space basis is zero). Every recoverable primary cell gets one more complementary suppression in one
   of its constraints and the steps repeat. If nothing is left to suppress the result is ``infeasible``.

Everything is vectorised over cells and constraints (a table of a few thousand cells takes well under a second);
the only loops are over constraints that need one more suppression.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# The cells of a table: its columns by name, one value per cell each (a dict of lists; a pandas DataFrame reads the
# same). Not a DataFrame: pandas was the import of every publication task that suppresses (0.2 s of its start) for
# a few groupings of a few hundred cells.
Cells = Mapping[str, Sequence[Any]]

# scipy (0.7 s to import) is imported only by the function that solves linear programs with it (zero cells among
# the suppressed ones): every publication task imports this module, most tables suppress a few cells, and the
# null space and the connected components they need are a few lines of numpy here (tested against scipy's).


@dataclass
class Plan:
    suppressed: np.ndarray                     # bool per cell: withheld
    primary: np.ndarray                        # bool per cell: 0 < count < threshold
    threshold: int
    constraints: int                           # known totals considered
    determined_primary: int                    # primary cells the audit found recoverable (0 unless infeasible)
    infeasible: bool
    rounds: int
    notes: list[str] = field(default_factory=list)

    @property
    def primary_count(self) -> int:
        return int(self.primary.sum())

    @property
    def complementary_count(self) -> int:
        return int((self.suppressed & ~self.primary).sum())

    def summary(self) -> dict[str, Any]:
        cells = len(self.suppressed)
        return {
            "threshold": self.threshold,
            "cells": cells,
            "primary": self.primary_count,
            "complementary": self.complementary_count,
            "suppressed": int(self.suppressed.sum()),
            "suppressed_share": round(float(self.suppressed.sum()) / cells, 4) if cells else 0.0,
            "known_totals": self.constraints,
            "recoverable_primary_cells": self.determined_primary,
            "infeasible": self.infeasible,
            "rounds": self.rounds,
            "notes": self.notes,
        }


def _columns(cells: Cells, names: list[str]) -> list[list[Any]]:
    return [list(cells[name]) for name in names]


def _group_ids(cells: Cells, by: list[str], n: int) -> np.ndarray:
    """Per cell, the number of its group of equal values of the columns ``by``, groups numbered in the order they
    first appear (pandas' ``groupby(by, sort=False).ngroup()`` on cells without NULLs)."""
    if not by:
        return np.zeros(n, dtype=np.int64)
    seen: dict[tuple, int] = {}
    return np.fromiter((seen.setdefault(key, len(seen)) for key in zip(*_columns(cells, by))), dtype=np.int64,
                       count=n)


def constraint_ids(cells: Cells, dims: list[str], linked: list[list[str]] = (),
                   independent: list[str] = ()) -> np.ndarray:
    """(cells × families) matrix of global constraint ids: family k is a partition of the cells into constraints
    whose totals the attacker knows — the lines along each dimension, each linked margin, the grand total.
    ``independent`` dimensions separate tables that have no common total (births and deaths are not added up):
    no line runs along them, and every other total is taken within each of their values."""
    n = len(list(cells[dims[0]])) if dims else 0

    def groups(by: list[str]) -> np.ndarray:
        return _group_ids(cells, by, n)

    indep = [d for d in dims if d in independent]
    families: list[np.ndarray] = []
    for d in dims:
        if d in indep:
            continue
        families.append(groups([x for x in dims if x != d]))
    for shared in linked:
        families.append(groups(list(dict.fromkeys([*indep, *shared]))))
    families.append(groups(indep))  # grand total (of each independent table)
    out = np.empty((n, len(families)), dtype=np.int64)
    offset = 0
    for k, ids in enumerate(families):
        out[:, k] = ids + offset
        offset += int(ids.max()) + 1 if len(ids) else 0
    return out


class _Constraints:
    """Incidence of cells in known totals, with the members of each total."""

    def __init__(self, ids: np.ndarray):
        self.ids = ids
        self.n = int(ids.max()) + 1 if ids.size else 0
        flat = ids.ravel()
        cell_of = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
        order = np.argsort(flat, kind="stable")
        self._cells = cell_of[order]
        self._starts = np.searchsorted(flat[order], np.arange(self.n + 1))

    def members(self, c: int) -> np.ndarray:
        return self._cells[self._starts[c]:self._starts[c + 1]]

    def unknown_counts(self, unknown: np.ndarray) -> np.ndarray:
        return np.bincount(self.ids[unknown].ravel(), minlength=self.n)


def _known_zeros(cons: _Constraints, suppressed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Suppressed zero cells an attacker knows are zero: in some constraint all suppressed cells are zero, so
    their (known) sum is 0; repeated until stable (a known zero is as good as published)."""
    unknown = suppressed.copy()
    while True:
        positive_unknown = np.bincount(cons.ids[unknown & (values > 0)].ravel(), minlength=cons.n)
        zero_unknown = unknown & (values == 0)
        if not zero_unknown.any():
            return unknown
        revealed = zero_unknown & (positive_unknown[cons.ids] == 0).any(axis=1)
        if not revealed.any():
            return unknown
        unknown = unknown & ~revealed


def _complete_lines(cons: _Constraints, suppressed: np.ndarray, values: np.ndarray) -> bool:
    """Step 3: until no constraint has exactly one unknown cell, the shortest such constraint first (its choice
    is the most constrained). When such a constraint has no cell left to suppress but holds suppressed zeros that
    are known to be zero, a positive cell is suppressed in the constraint that gives one of them away.
    False when nothing can fix a constraint."""
    sizes = np.diff(cons._starts)
    while True:
        unknown = _known_zeros(cons, suppressed, values)
        counts = cons.unknown_counts(unknown)
        single = np.flatnonzero(counts == 1)
        if not len(single):
            return True
        c = single[np.lexsort((single, sizes[single]))[0]]
        members = cons.members(c)
        candidates = members[~suppressed[members]]
        if len(candidates):
            fixes = (counts[cons.ids[candidates]] == 1).sum(axis=1)
            # positive counts first, then the smallest count, then the one fixing most lines, then grid order
            order = np.lexsort((candidates, -fixes, values[candidates], values[candidates] == 0))
            suppressed[candidates[order[0]]] = True
            continue
        if not _unreveal_zero(cons, suppressed, values, unknown, members):
            return False


def _unreveal_zero(cons: _Constraints, suppressed: np.ndarray, values: np.ndarray, unknown: np.ndarray,
                   members: np.ndarray) -> bool:
    """Suppress one more positive cell in a constraint that reveals a suppressed zero among ``members``."""
    positive_unknown = np.bincount(cons.ids[unknown & (values > 0)].ravel(), minlength=cons.n)
    for z in members[suppressed[members] & ~unknown[members]]:
        for r in cons.ids[z]:
            if positive_unknown[r]:
                continue  # this constraint does not give z away
            cells = cons.members(r)
            candidates = cells[~suppressed[cells] & (values[cells] > 0)]
            if len(candidates):
                order = np.lexsort((candidates, values[candidates]))
                suppressed[candidates[order[0]]] = True
                return True
    return False


def _forced_zero(a: np.ndarray, b: np.ndarray, zero_cols: np.ndarray) -> np.ndarray:
    """Columns (among ``zero_cols``) that every non-negative solution of a x = b has at zero.

    1. Exact and cheap: a total whose suppressed remainder is 0 forces every cell in it to 0 (x >= 0).
    2. One LP: can all the other columns be positive together (max s, x_j >= s)? The solutions form a convex set,
       so if each can be positive, all can at once — usually the end.
    3. Otherwise LPs maximising sum(t_j), t_j <= min(x_j, 1), over the undecided columns: every column made
       positive is not forced; when the optimum is 0 the rest are."""
    from scipy.optimize import linprog

    n = a.shape[1]
    zero_cols = np.asarray(zero_cols, dtype=np.int64)
    in_zero_total = (a[np.abs(b) < 1e-9] > 0).any(axis=0)
    forced = zero_cols[in_zero_total[zero_cols]]
    undecided = zero_cols[~in_zero_total[zero_cols]]
    if not len(undecided):
        return forced
    k = len(undecided)
    c = np.zeros(n + 1)
    c[-1] = -1.0
    a_eq = np.hstack([a, np.zeros((a.shape[0], 1))])
    a_ub = np.zeros((k, n + 1))
    a_ub[np.arange(k), undecided] = -1.0
    a_ub[:, -1] = 1.0
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(k), A_eq=a_eq, b_eq=b, bounds=[(0, None)] * n + [(0, 1)],
                  method="highs")
    if res.status == 0 and -res.fun > 1e-9:
        return forced
    while len(undecided):
        k = len(undecided)
        c = np.concatenate([np.zeros(n), -np.ones(k)])
        a_eq = np.hstack([a, np.zeros((a.shape[0], k))])
        a_ub = np.zeros((k, n + k))
        a_ub[np.arange(k), undecided] = -1.0          # t_j - x_j <= 0
        a_ub[np.arange(k), n + np.arange(k)] = 1.0
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(k), A_eq=a_eq, b_eq=b,
                      bounds=[(0, None)] * n + [(0, 1)] * k, method="highs")
        if res.status != 0:
            return np.concatenate([forced, undecided])  # no solution: treat as determined (protect more)
        positive = res.x[n:] > 1e-9
        if not positive.any():
            return np.concatenate([forced, undecided])
        undecided = undecided[~positive]
    return forced


def _components(ids: np.ndarray) -> np.ndarray:
    """A label per row of ``ids`` (cells × their constraint ids): rows sharing a constraint, directly or through
    others, have the same label, labels numbered from 0 in order of first row (a union-find: the few hundred
    suppressed cells of a table, where scipy.sparse's connected components cost its import, 0.1 s of every
    publication task, for microseconds of work)."""
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[int, int] = {}  # constraint -> the first row in it
    for row, constraints in enumerate(ids.tolist()):
        for c in constraints:
            a, b = root(first.setdefault(c, row)), root(row)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.unique([root(i) for i in range(len(ids))], return_inverse=True)[1].reshape(-1)


def _null_space(a: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the null space of ``a``, as columns: ``scipy.linalg.null_space`` (the same SVD, the
    same rank tolerance), without importing scipy.linalg (0.1 s of a publication task) for it."""
    _, s, vh = np.linalg.svd(a, full_matrices=True)
    tol = np.amax(s, initial=0.0) * np.finfo(s.dtype).eps * max(a.shape)
    return vh[int(np.sum(s > tol)):, :].T.conj()


def recoverable(ids: np.ndarray, suppressed: np.ndarray, values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cells among ``targets`` (bool) whose value the known totals and the published cells fix exactly."""
    sup = np.flatnonzero(suppressed)
    out = np.zeros(len(values), dtype=bool)
    if not len(sup):
        return out
    # suppressed cells connected through shared constraints form independent sub-systems
    labels = _components(ids[sup])
    for comp in range(int(labels.max()) + 1):
        cells = sup[labels == comp]
        if not targets[cells].any():
            continue
        used = np.unique(ids[cells].ravel())
        a = np.zeros((len(used), len(cells)))
        a[np.searchsorted(used, ids[cells]), np.arange(len(cells))[:, None]] = 1.0
        x = values[cells].astype(float)
        b = a @ x
        keep = np.ones(len(cells), dtype=bool)
        zero_cols = np.flatnonzero(x == 0)
        if len(zero_cols):
            keep[_forced_zero(a, b, zero_cols)] = False
        basis = _null_space(a[:, keep]) if keep.any() else np.zeros((0, 0))
        norms = np.zeros(len(cells))
        if basis.size:
            norms[keep] = np.linalg.norm(basis, axis=1)
        fixed = norms < 1e-9
        out[cells] = fixed & targets[cells]
    return out


def plan_suppression(cells: Cells, dims: list[str], count: str, threshold: int,
                     linked: list[list[str]] = (), independent: list[str] = (),
                     max_rounds: int | None = None, time_budget_s: float | None = 120.0) -> Plan:
    """Decide which cells of an aggregate table to withhold (steps 1-4 of the module docstring).

    A table so sparse that no stable pattern is found within ``time_budget_s`` is infeasible (its release is
    blocked, never published unprotected, never left hanging)."""
    deadline = time.monotonic() + time_budget_s if time_budget_s else None
    counts = list(cells[count])
    if len(set(zip(*_columns(cells, dims)))) != len(counts):
        raise ValueError(f"cells are not unique by their dimensions {dims}")
    values = np.array([0 if v is None or v != v else int(v) for v in counts], dtype=np.int64)  # (NULL, NaN: 0)
    if (values < 0).any():
        raise ValueError(f"negative counts in {count!r}")
    primary = (values > 0) & (values < threshold)
    suppressed = primary.copy()
    ids = constraint_ids(cells, dims, linked, independent)
    cons = _Constraints(ids)
    notes: list[str] = []
    rounds = 0
    limit = max_rounds or len(values) + 1
    infeasible = False
    determined = np.zeros(len(values), dtype=bool)
    while rounds < limit:
        rounds += 1
        if not _complete_lines(cons, suppressed, values):
            infeasible = True
            notes.append("a known total has a single cell: it cannot be protected")
            break
        determined = recoverable(ids, suppressed, values, primary)
        if not determined.any():
            break
        if deadline is not None and time.monotonic() > deadline:
            infeasible = True
            notes.append(f"no stable suppression pattern within {time_budget_s:.0f} s: the table is too sparse "
                         "at this level of detail")
            break
        # one more complementary cell in a constraint of each recoverable primary cell (in grid order; a cell
        # already protected by an earlier choice of this round costs nothing more)
        before = suppressed.copy()
        stuck = False
        for cell in np.flatnonzero(determined):
            members = np.unique(np.concatenate([cons.members(c) for c in ids[cell]]))
            if (suppressed[members] & ~before[members]).any():
                continue  # this round already added a complement next to it
            candidates = members[~suppressed[members]]
            if len(candidates):
                order = np.lexsort((candidates, values[candidates], values[candidates] == 0))
                suppressed[candidates[order[0]]] = True
            elif not _unreveal_zero(cons, suppressed, values, _known_zeros(cons, suppressed, values), members):
                stuck = True
                break
        if stuck:
            infeasible = True
            notes.append("a primary cell stays recoverable with every cell of its totals suppressed")
            break
    else:
        infeasible = True
        notes.append(f"no stable suppression pattern after {limit} rounds")
    if not infeasible:
        # a complementary zero that the totals give away protects nothing: publish it (the attacker learns nothing
        # new), so that no withheld cell can be recovered by subtraction
        suppressed = _known_zeros(cons, suppressed, values) | primary
    return Plan(suppressed=suppressed, primary=primary, threshold=threshold, constraints=cons.n,
                determined_primary=int(determined.sum()), infeasible=infeasible, rounds=rounds, notes=notes)
