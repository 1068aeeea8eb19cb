"""Measuring a stage: wall time, CPU time, peak memory of this Python process and of PostgreSQL's processes.

A :class:`Sampler` thread reads, every ``interval`` seconds, the resident set (RSS) of this process (plus its child
processes: the parallel extract tasks, when the benchmark runs them as the DAG does) and the private
memory of every child of the postmaster (backends and background processes): RSS minus the shared pages
(``/proc/<pid>/statm``: file-backed and shared memory, i.e. mostly ``shared_buffers``), which is what a backend
allocates for itself — sorts and hashes within ``work_mem``, tuple stores, caches. Reading ``statm`` is cheap,
and so is finding the children where Linux lists each thread's (``/proc/<pid>/task/<tid>/children``), so sampling
does not disturb what it measures (found by psutil, which reads every process of the machine to learn its parent,
a sample took 3 ms of a core: 3 % of one of the two cores all through a benchmark that is limited by them).
PostgreSQL's figures are readable only when the server runs on this machine and its processes are visible to this
user; otherwise they are ``None`` (shown as n/a).

``ru_maxrss`` (the kernel's high-water mark of this process) backs the sampled Python peak: when it grew during a
stage, the stage's peak is exactly that value, however short the spike.

CPU time (user + system) is read at the start and the end of a stage, not sampled: this process's and that of its
child processes once they have ended (``getrusage``: the extract and publish worker processes end with their
stage); for PostgreSQL, every child of the postmaster (backends, parallel workers, the checkpointer, autovacuum…)
— the difference for those alive at both ends, the whole for those started during the stage, and for those that
ended during it what the postmaster's count of its ended children (``cutime``) gained, less what they had used
before the stage. Wall time divided into the two is how many cores the stage kept busy: on a machine of n cores a
stage can take no less than its CPU time / n.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import psutil

MB = 1024 * 1024


def ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def postmaster_process(conn) -> psutil.Process | None:
    """The postmaster of the server ``conn`` talks to, if it runs on this machine and is visible."""
    try:
        backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        data_dir = None
        try:
            data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        except Exception:  # not a superuser: fall back to the parent of our backend
            conn.rollback()
        backend = psutil.Process(backend_pid)
        parent = backend.parent()
        if parent is None:
            return None
        if data_dir is not None:
            cmd = " ".join(parent.cmdline())
            if data_dir not in cmd and "postgres" not in parent.name():
                return None
        return parent
    except (psutil.Error, OSError):
        return None


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds used so far: this process and its ended children; PostgreSQL's processes (None when unreadable)."""

    python: float
    pg_live: dict[tuple[int, float], float] | None  # (pid, start time) -> CPU seconds of each child of the postmaster
    pg_ended: float | None                           # the postmaster's own CPU plus that of its ended children


def process_cpu_seconds(children: bool = True) -> float:
    """User + system CPU seconds of this process, and of its ended child processes when ``children``."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    total = me.ru_utime + me.ru_stime
    if children:
        ended = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += ended.ru_utime + ended.ru_stime
    return total


def cpu_mark(postmaster: psutil.Process | None, attempts: int = 20) -> CpuMark:
    """The CPU used so far. PostgreSQL's is read as its children's times, then the postmaster's (its own and its
    ended children's), then the children listed again: a child that ended in between (a backend whose client
    has just closed the connection, a parallel worker) would be counted in neither or in both, so the mark is
    taken again until no child ended while it was read."""
    python = process_cpu_seconds()
    if postmaster is None:
        return CpuMark(python, None, None)
    for _ in range(attempts):
        try:
            live = _children_cpu(postmaster)
            t = postmaster.cpu_times()
            after = _children_cpu(postmaster)
        except psutil.Error:
            return CpuMark(python, None, None)
        if live is not None and after is not None and live.keys() <= after.keys():
            return CpuMark(python, live, t.user + t.system + t.children_user + t.children_system)
        time.sleep(0.01)
    return CpuMark(python, None, None)  # children ending all the time: not measurable


def _children_cpu(postmaster: psutil.Process) -> dict[tuple[int, float], float] | None:
    """CPU seconds of each child of the postmaster by (pid, start time); None if one ended while being read."""
    live = {}
    for child in postmaster.children():
        try:
            with child.oneshot():
                c = child.cpu_times()
                live[(child.pid, child.create_time())] = c.user + c.system
        except psutil.Error:
            return None
    return live


def cpu_between(before: CpuMark, after: CpuMark) -> tuple[float, float | None]:
    """(Python, PostgreSQL) CPU seconds used between two marks (PostgreSQL None when unreadable)."""
    python = after.python - before.python
    if before.pg_live is None or after.pg_live is None or before.pg_ended is None or after.pg_ended is None:
        return python, None
    pg = sum(cpu - before.pg_live.get(key, 0.0) for key, cpu in after.pg_live.items())
    pg += after.pg_ended - before.pg_ended  # the children that ended, whole lifetimes …
    pg -= sum(cpu for key, cpu in before.pg_live.items() if key not in after.pg_live)  # … less before the stage
    return python, max(pg, 0.0)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Linux lists each thread's children (CONFIG_PROC_CHILDREN): where it does not, the sampler asks psutil
_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _child_pids(pid: int) -> list[int]:
    """The children of process ``pid``, forked by any of its threads (none once it has ended)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(map(int, f.read().split()))
        except OSError:  # (a thread that just ended)
            pass
    return out


def _statm(pid: int) -> tuple[int, int] | None:
    """(resident, shared) bytes of process ``pid`` as ``/proc/<pid>/statm`` gives them (psutil's rss and shared);
    None once it has ended."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            fields = f.read().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE, int(fields[2]) * _PAGE


@dataclass
class Sample:
    python_rss: int
    pg_private_total: int | None
    pg_private_max: int | None


@dataclass(eq=False)  # windows are removed by identity
class Peaks:
    python_rss: int = 0                  # bytes
    pg_private_total: int | None = None  # sum over the postmaster's children, bytes
    pg_private_max: int | None = None    # the largest single backend, bytes
    samples: int = 0

    def add(self, s: Sample) -> None:
        self.samples += 1
        self.python_rss = max(self.python_rss, s.python_rss)
        if s.pg_private_total is not None:
            self.pg_private_total = max(self.pg_private_total or 0, s.pg_private_total)
            self.pg_private_max = max(self.pg_private_max or 0, s.pg_private_max or 0)


class Sampler:
    """Samples memory in a daemon thread; :meth:`window` yields the peaks seen while its block runs."""

    def __init__(self, postmaster: psutil.Process | None, interval: float = 0.1):
        self.postmaster = postmaster
        self.interval = interval
        self.me = psutil.Process()
        self._windows: list[Peaks] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self.pg_readable = postmaster is not None

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> Sample:
        if _PROC_CHILDREN:
            return self._sample_proc()
        rss = self.me.memory_info().rss
        try:  # worker processes of this one (the parallel extract tasks) count too
            for child in self.me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        total = biggest = None
        if self.postmaster is not None:
            total = biggest = 0
            try:
                children = self.postmaster.children()
            except psutil.Error:
                children = []
                total = biggest = None
            for child in children:
                try:
                    mem = child.memory_info()
                except psutil.Error:  # a backend that just ended
                    continue
                private = max(mem.rss - getattr(mem, "shared", 0), 0)
                total += private
                biggest = max(biggest, private)
        return Sample(rss, total, biggest)

    def _sample_proc(self) -> Sample:
        """:meth:`sample` from /proc directly: what psutil reads (``statm``), the children as Linux lists them."""
        rss = 0
        pending = [self.me.pid]
        while pending:  # this process and its descendants (the parallel extract tasks)
            pid = pending.pop()
            mem = _statm(pid)
            if mem is not None:
                rss += mem[0]
                pending.extend(_child_pids(pid))
        total = biggest = None
        if self.postmaster is not None:
            total = biggest = 0
            for pid in _child_pids(self.postmaster.pid):
                mem = _statm(pid)
                if mem is None:  # a backend that just ended
                    continue
                private = max(mem[0] - mem[1], 0)
                total += private
                biggest = max(biggest, private)
        return Sample(rss, total, biggest)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if not self._windows:
                    continue
                windows = list(self._windows)
            s = self.sample()
            for w in windows:
                w.add(s)

    @contextmanager
    def window(self) -> Iterator[Peaks]:
        peaks = Peaks()
        peaks.add(self.sample())
        before = ru_maxrss_bytes()
        with self._lock:
            self._windows.append(peaks)
        try:
            yield peaks
        finally:
            with self._lock:
                self._windows.remove(peaks)
            peaks.add(self.sample())
            after = ru_maxrss_bytes()
            if after > before:  # the process reached a new high during the window: that is its peak
                peaks.python_rss = max(peaks.python_rss, after)


@dataclass
class Stage:
    """One measured stage (or sub-step when ``parent`` is set)."""

    name: str
    seconds: float
    rows: int | None = None
    rows_label: str = ""
    python_peak: int | None = None
    pg_private_total: int | None = None
    pg_private_max: int | None = None
    parent: str | None = None
    detail: dict = field(default_factory=dict)
    python_cpu: float | None = None  # CPU seconds of this process and of the workers it ran (ended in the stage)
    pg_cpu: float | None = None      # CPU seconds of PostgreSQL's processes

    @property
    def cpu(self) -> float | None:
        """CPU seconds of Python and PostgreSQL together (None when PostgreSQL's could not be read)."""
        if self.python_cpu is None or self.pg_cpu is None:
            return None
        return self.python_cpu + self.pg_cpu

    @property
    def cores_busy(self) -> float | None:
        """How many cores the stage kept busy on average: CPU seconds / wall seconds."""
        if self.cpu is None or self.seconds <= 0:
            return None
        return self.cpu / self.seconds

    @property
    def rows_per_second(self) -> float | None:
        if self.rows is None or self.seconds <= 0:
            return None
        return self.rows / self.seconds

    def as_dict(self) -> dict:
        return {
            "name": self.name, "seconds": round(self.seconds, 3), "rows": self.rows, "rows_label": self.rows_label,
            "rows_per_second": None if self.rows_per_second is None else round(self.rows_per_second, 1),
            "python_peak_bytes": self.python_peak, "pg_private_total_bytes": self.pg_private_total,
            "pg_private_max_bytes": self.pg_private_max, "parent": self.parent, "detail": self.detail,
            "python_cpu_seconds": None if self.python_cpu is None else round(self.python_cpu, 3),
            "pg_cpu_seconds": None if self.pg_cpu is None else round(self.pg_cpu, 3),
        }


@contextmanager
def measured(sampler: Sampler, name: str, into: list[Stage], parent: str | None = None) -> Iterator[Stage]:
    """Time the block and record its CPU time and memory peaks as a :class:`Stage` appended to ``into``; the block
    may set ``stage.rows``/``rows_label``/``detail``."""
    stage = Stage(name=name, seconds=0.0, parent=parent)
    cpu_before = cpu_mark(sampler.postmaster)
    started = time.perf_counter()
    with sampler.window() as peaks:
        yield stage
    stage.seconds = time.perf_counter() - started
    stage.python_cpu, stage.pg_cpu = cpu_between(cpu_before, cpu_mark(sampler.postmaster))
    stage.python_peak = peaks.python_rss
    stage.pg_private_total = peaks.pg_private_total
    stage.pg_private_max = peaks.pg_private_max
    into.append(stage)


# Where a stage's page reads came from. PostgreSQL counts, per relation, the buffers found in shared_buffers (hit)
# and those it had to read (read: from the OS file cache, or from disk), and with track_io_timing the time spent
# waiting on those reads (pg_stat_database.blk_read_time). The difference around a stage says whether it waited on
# reads, and which tables or indexes they were — the question behind the daily increment on a large base, whose
# index probes and heap fetches land on pages a large load pushed out of memory (docs/scaling.md).
IO_QUERY = """
SELECT coalesce(t.schemaname || '.' || t.relname, '') AS relation, 'heap' AS part,
       coalesce(t.heap_blks_read, 0) AS read, coalesce(t.heap_blks_hit, 0) AS hit
FROM pg_statio_user_tables t WHERE t.schemaname NOT IN ('pg_toast')
UNION ALL
SELECT i.schemaname || '.' || i.indexrelname, 'index', coalesce(i.idx_blks_read, 0), coalesce(i.idx_blks_hit, 0)
FROM pg_statio_user_indexes i
"""


@dataclass
class IoMark:
    relations: dict[tuple[str, str], tuple[int, int]]  # (relation, 'heap' | 'index') -> (read, hit)
    read_ms: float | None                                # pg_stat_database.blk_read_time; None: track_io_timing off


def io_mark(conn) -> IoMark:
    """The cumulative read/hit counters of the connection's database (a fresh snapshot of the statistics)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    relations = {(r, p): (n, h) for r, p, n, h in conn.execute(IO_QUERY).fetchall()}
    on, read_ms = conn.execute(
        "SELECT current_setting('track_io_timing') = 'on', blk_read_time FROM pg_stat_database"
        " WHERE datname = current_database()").fetchone()
    return IoMark(relations, float(read_ms) if on else None)


def io_between(before: IoMark, after: IoMark, top: int = 6) -> dict:
    """What was read between two marks: buffers read and hit in all, the wait on reads, the relations that read the
    most (``top``) and those whose buffers were used the most, read or hit (``busiest``: a stage that does not wait
    on the disk can still spend its CPU on buffer lookups), and every relation used (``relations``). Temporary
    tables are not counted: they live in each backend's own buffers."""
    delta = []
    for key, (read, hit) in after.relations.items():
        r0, h0 = before.relations.get(key, (0, 0))
        if read - r0 or hit - h0:
            delta.append((key, read - r0, hit - h0))
    rows = [{"relation": rel, "part": part, "read": n, "hit": h} for (rel, part), n, h in delta]
    return {
        "buffers_read": sum(d[1] for d in delta), "buffers_hit": sum(d[2] for d in delta),
        "read_seconds": None if after.read_ms is None or before.read_ms is None
        else round((after.read_ms - before.read_ms) / 1000, 3),
        "top": [r for r in sorted(rows, key=lambda r: -r["read"])[:top] if r["read"]],
        "busiest": sorted(rows, key=lambda r: -(r["read"] + r["hit"]))[:top],
        "relations": sorted(rows, key=lambda r: (r["relation"], r["part"])),
    }
