"""CPU time of a stage (pipelines.bench.measure): this process, and the children of a 'postmaster' — here this test
process itself standing in for it, with real child processes that burn CPU before, across and after the marks."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from pipelines.bench.measure import CpuMark, cpu_between, cpu_mark

BURN = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def test_ended_child_counted_whole():
    me = psutil.Process()
    before = cpu_mark(me)
    subprocess.run([sys.executable, "-c", BURN.format(s=0.4)], check=True)  # started and collected between the marks
    python, pg = cpu_between(before, cpu_mark(me))
    assert pg is not None and pg >= 0.35
    assert python >= 0.35  # an ended child of this process counts as this process's too (RUSAGE_CHILDREN)


def test_child_alive_at_the_first_mark_counts_only_what_it_used_after_it():
    me = psutil.Process()
    # burns 0.5 s, waits for its stdin to close, burns 0.4 s more and ends
    code = BURN.format(s=0.5) + "sys.stdin.read()\n" + BURN.format(s=0.4)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while _cpu(child.pid) < 0.5 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # now waiting on stdin
    before = cpu_mark(me)
    assert any(pid == child.pid for pid, _ in before.pg_live)
    child.stdin.close()
    assert child.wait(timeout=30) == 0
    python, pg = cpu_between(before, cpu_mark(me))
    assert 0.35 <= pg < 0.85  # the second burn only, not the first


def test_unreadable_server_gives_none():
    python, pg = cpu_between(cpu_mark(None), cpu_mark(None))
    assert pg is None and python >= 0
    assert CpuMark(1.0, None, None).pg_ended is None
