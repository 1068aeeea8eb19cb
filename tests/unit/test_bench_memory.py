"""Memory samples of a stage (pipelines.bench.measure.Sampler): read from /proc directly where Linux lists each
thread's children, and the same figures as psutil's — here this test process stands in for the postmaster, with
real child processes that hold memory."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from pipelines.bench import measure
from pipelines.bench.measure import Sampler

HOLD = ("import sys\nx = bytearray({n})\nfor i in range(0, len(x), 4096): x[i] = 1\n"
        "print('ready', flush=True)\nsys.stdin.read()\n")
MB = 1024 * 1024


@pytest.fixture
def holders():
    """Two child processes, each holding 64 MB of its own, until the test ends."""
    procs = [subprocess.Popen([sys.executable, "-c", HOLD.format(n=64 * MB)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    yield procs
    for p in procs:
        p.stdin.close()
        p.wait(timeout=30)


def _sample(sampler: Sampler, from_proc: bool, monkeypatch) -> measure.Sample:
    monkeypatch.setattr(measure, "_PROC_CHILDREN", from_proc)
    return sampler.sample()


@pytest.mark.skipif(not measure._PROC_CHILDREN, reason="this kernel does not list a thread's children in /proc")
def test_samples_from_proc_agree_with_psutil(holders, monkeypatch):
    me = psutil.Process()
    sampler = Sampler(me)  # (this process as the 'postmaster': its children are the holders)
    fast, slow = _sample(sampler, True, monkeypatch), _sample(sampler, False, monkeypatch)
    # the same processes found, the same figures read (this process's own memory may move a little in between)
    for a, b in ((fast.python_rss, slow.python_rss), (fast.pg_private_total, slow.pg_private_total),
                 (fast.pg_private_max, slow.pg_private_max)):
        assert abs(a - b) < 8 * MB
    assert fast.pg_private_max >= 60 * MB  # a holder's own 64 MB
    assert fast.pg_private_total >= 120 * MB  # both holders
    assert fast.python_rss >= me.memory_info().rss + 120 * MB - 8 * MB  # this process and its children
    children = measure._child_pids(me.pid)
    assert {p.pid for p in holders} <= set(children)


def test_an_ended_process_has_no_sample():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(timeout=30)
    time.sleep(0.05)
    assert measure._statm(p.pid) is None
    assert measure._child_pids(p.pid) == []
