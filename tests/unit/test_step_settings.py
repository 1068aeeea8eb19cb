"""merge.STEP_SETTINGS: the candidates' parallel workers leave one core to the leader, which writes every row."""

import pytest

from pipelines.reconcile import merge


@pytest.mark.parametrize(("cores", "current", "expected"), [
    (2, "2", "1"),  # this machine: one worker beside the leader
    (8, "2", "2"),  # never more than the session's own setting
    (8, "16", "7"),
    (1, "2", "1"),  # one core: still one worker (the leader alone was not measured better)
    (None, "2", "1"),  # cores unknown: taken as two
    (4, "0", "0"),  # parallel query off stays off
])
def test_candidates_leave_one_core_to_the_leader(monkeypatch, cores, current, expected):
    monkeypatch.setattr(merge.os, "cpu_count", lambda: cores)
    workers = merge.STEP_SETTINGS["population/10_candidates.sql"]["max_parallel_workers_per_gather"]
    assert workers(current) == expected
