"""The person-id ranges of a partitioned first load (pipelines.reconcile.partitioned.inner_bounds)."""

from pipelines.reconcile.partitioned import MAIN_SLICE_WEIGHT, inner_bounds


def test_equal_weights_split_in_equal_ranges():
    assert inner_bounds(1, 1_000_000, 2, main_weight=1.0) == [500_001]
    assert inner_bounds(1, 999, 3, main_weight=1.0) == [334, 667]
    assert inner_bounds(7, 7, 1) == []


def test_the_main_backends_slice_is_the_lighter_one_and_every_id_falls_in_one_range():
    low, high = 1_000, 1_999_999
    for k in (2, 3, 4):
        bounds = [low, *inner_bounds(low, high, k), high + 1]
        assert bounds == sorted(bounds) and len(bounds) == k + 1
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        assert sum(sizes) == high - low + 1
        assert abs(sizes[0] / sizes[1] - MAIN_SLICE_WEIGHT) < 0.001  # the main one weighs MAIN_SLICE_WEIGHT ...
        assert max(sizes[1:]) - min(sizes[1:]) <= 1  # ... the others alike
    assert 0.5 < MAIN_SLICE_WEIGHT <= 1.0


def test_fewer_persons_than_slices_leave_some_slices_empty_not_out_of_order():
    for low, high in ((5, 5), (5, 6), (0, 0)):
        inner = inner_bounds(low, high, 3)
        assert [low, *inner] == sorted([low, *inner]) and all(low <= b <= high + 1 for b in inner)
