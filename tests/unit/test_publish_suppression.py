"""Small-cell suppression with complementary suppression, and its audit (no database)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pipelines.publish.suppression import constraint_ids, plan_suppression, recoverable


def grid(values: list[list[int]]) -> pd.DataFrame:
    rows = [(r, c, v) for r, line in enumerate(values) for c, v in enumerate(line)]
    return pd.DataFrame(rows, columns=["r", "c", "n"])


def unknowns_per_line(cells: pd.DataFrame, suppressed: np.ndarray, dims: list[str]) -> list[int]:
    ids = constraint_ids(cells, dims)
    counts = np.bincount(ids[suppressed].ravel(), minlength=ids.max() + 1)
    return [int(x) for x in counts if x]


def test_one_small_cell_gets_a_rectangle_of_four():
    cells = grid([[40, 32, 50], [24, 4, 31], [60, 70, 80]])
    plan = plan_suppression(cells, ["r", "c"], "n", 10)
    assert plan.primary_count == 1 and plan.complementary_count == 3
    assert sorted(cells.loc[plan.suppressed, "n"]) == [4, 24, 32, 40]  # the smallest partners, one rectangle
    assert min(unknowns_per_line(cells, plan.suppressed, ["r", "c"])) >= 2
    assert not plan.infeasible and plan.determined_primary == 0


def test_no_small_cell_nothing_suppressed():
    plan = plan_suppression(grid([[10, 20], [30, 40]]), ["r", "c"], "n", 10)
    assert not plan.suppressed.any()


def test_zero_cells_are_published_and_not_primary():
    cells = grid([[0, 12, 15], [13, 0, 14]])
    plan = plan_suppression(cells, ["r", "c"], "n", 10)
    assert not plan.suppressed.any()


def test_a_bridge_between_two_rectangles_is_recoverable():
    """Every row and column holds two or more suppressed cells, yet the cell joining two cycles is fixed by the
    totals: the audit must see it (the naive 'two per line' rule does not)."""
    cells = grid([[5, 6, 20, 20], [7, 8, 3, 20], [20, 20, 5, 6], [20, 20, 7, 8]])
    sup = np.zeros(len(cells), dtype=bool)
    for r, c in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]:
        sup[r * 4 + c] = True
    ids = constraint_ids(cells, ["r", "c"])
    counts = np.bincount(ids[sup].ravel())
    assert all(x >= 2 for x in counts if x)  # the naive rule is satisfied
    fixed = recoverable(ids, sup, cells["n"].to_numpy(), sup)
    assert list(np.flatnonzero(fixed)) == [1 * 4 + 2]
    # and the planner protects it by suppressing more
    small = cells.copy()
    plan = plan_suppression(small, ["r", "c"], "n", 10)
    assert plan.determined_primary == 0 and not plan.infeasible


def test_non_negativity_can_give_a_cell_away_and_the_planner_sees_it():
    """A small cell whose only partner in a line is a zero that another line proves to be zero."""
    cells = grid([[3, 0, 50], [20, 0, 40], [30, 0, 60]])
    plan = plan_suppression(cells, ["r", "c"], "n", 10)
    ids = constraint_ids(cells, ["r", "c"])
    values = cells["n"].to_numpy()
    assert not recoverable(ids, plan.suppressed, values, plan.primary).any()
    assert min(unknowns_per_line(cells, plan.suppressed, ["r", "c"])) >= 2


def test_linked_margins_and_grand_total_are_constraints():
    cells = pd.DataFrame(list(itertools.product(range(3), range(2), range(4))), columns=["d", "s", "a"])
    cells["n"] = 20
    ids = constraint_ids(cells, ["d", "s", "a"], linked=[["d"]])
    # lines along d (2*4), along s (3*4), along a (3*2), the linked district margins (3), the grand total (1)
    assert ids.max() + 1 == 8 + 12 + 6 + 3 + 1
    # a linked table with all our dimensions would make every cell known: nothing can protect a small one
    cells.loc[0, "n"] = 3
    plan = plan_suppression(cells, ["d", "s", "a"], "n", 10, linked=[["d", "s", "a"]])
    assert plan.infeasible


def test_independent_dimension_has_no_line_along_it():
    cells = pd.DataFrame([(m, e, v) for m, (e, v) in itertools.product(range(3), [("birth", 30), ("death", 20)])],
                         columns=["m", "e", "n"])
    cells.loc[0, "n"] = 4  # births in month 0
    with_lines = plan_suppression(cells, ["m", "e"], "n", 10)
    independent = plan_suppression(cells, ["m", "e"], "n", 10, independent=["e"])
    # births and deaths are two tables: the partner is another month's births, not the same month's deaths
    partner = cells[independent.suppressed & ~independent.primary]
    assert list(partner["e"]) == ["birth"]
    assert with_lines.complementary_count >= independent.complementary_count


def test_a_line_of_one_cell_cannot_be_protected():
    cells = pd.DataFrame({"d": ["a"], "n": [3]})
    plan = plan_suppression(cells, ["d"], "n", 10)
    assert plan.infeasible


def test_duplicate_cells_are_refused():
    cells = pd.DataFrame({"d": ["a", "a"], "n": [3, 4]})
    with pytest.raises(ValueError, match="not unique"):
        plan_suppression(cells, ["d"], "n", 10)


@pytest.mark.parametrize("seed", range(8))
def test_random_tables_leave_no_small_cell_recoverable(seed):
    rng = np.random.default_rng(seed)
    cells = pd.DataFrame(list(itertools.product(range(6), range(2), range(7))), columns=["d", "s", "a"])
    cells["n"] = rng.poisson(rng.uniform(3, 15), len(cells))
    plan = plan_suppression(cells, ["d", "s", "a"], "n", 10, linked=[["d"]])
    assert not plan.infeasible
    ids = constraint_ids(cells, ["d", "s", "a"], linked=[["d"]])
    assert not recoverable(ids, plan.suppressed, cells["n"].to_numpy(), plan.primary).any()
    assert min(unknowns_per_line(cells, plan.suppressed, ["d", "s", "a"]), default=2) >= 2
    assert (plan.suppressed >= plan.primary).all()


def test_null_space_and_components_are_scipys():
    """The audit's null space and connected components (numpy, so that a publication task need not import
    scipy.linalg and scipy.sparse) agree with scipy's: the same null space (its projector: any orthonormal basis
    of it gives the same one) and the same partition of the cells."""
    from scipy.linalg import null_space
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from pipelines.publish.suppression import _components, _null_space

    rng = np.random.default_rng(7)
    for m, n in [(1, 1), (3, 5), (6, 4), (8, 8), (12, 30), (30, 12)]:
        a = (rng.random((m, n)) < 0.4).astype(float)
        a[:, : n // 3] = a[:, [0]]  # (columns that repeat: a rank below min(m, n))
        mine, theirs = _null_space(a), null_space(a)
        assert mine.shape == theirs.shape
        assert np.allclose(mine @ mine.T, theirs @ theirs.T)
        assert np.allclose(np.linalg.norm(mine, axis=1), np.linalg.norm(theirs, axis=1))
    for cells, families, span in [(1, 1, 1), (10, 2, 12), (40, 3, 30), (200, 3, 400), (200, 2, 50)]:
        ids = rng.integers(0, span, size=(cells, families)) + np.arange(families) * span
        labels = _components(ids)
        rows = np.repeat(np.arange(cells), families)
        inc = coo_matrix((np.ones(len(rows)), (rows, ids.ravel())), shape=(cells, families * span)).tocsr()
        count, reference = connected_components(inc @ inc.T, directed=False)
        assert labels.max() + 1 == count
        pairs = set(zip(labels.tolist(), reference.tolist()))
        assert len(pairs) == count  # the same partition, whatever the numbering
        assert labels[0] == 0 and list(dict.fromkeys(labels.tolist())) == list(range(count))
