"""The restores' queue of a partitioned first load (pipelines.reconcile.partitioned.run_queue): two connections take
the tasks in order, a table's second-phase tasks after its first-phase ones, never two conflicting locks at once,
and the finale (the accounting and the end of the load) beside the last tasks, ending after all of them."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.reconcile import partitioned
from pipelines.reconcile.partitioned import (ACCESS_EXCLUSIVE, ACCESS_SHARE, SHARE, SHARE_ROW_EXCLUSIVE,
                                             SHARE_UPDATE_EXCLUSIVE, Task, run_queue)


class FakeConnection:
    """Stands for a connection: the queue only hands it to the actions and cancels it on a failure."""

    def __init__(self, name: str):
        self.name = name
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


class Recorder:
    """Actions that sleep for a while and record when they ran, on which connection."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans: dict[str, tuple[float, float, str]] = {}

    def action(self, label: str, seconds: float, fail: BaseException | None = None):
        def run(conn: FakeConnection):
            t0 = time.perf_counter()
            time.sleep(seconds)
            if fail is not None:
                raise fail
            with self.lock:
                self.spans[label] = (t0, time.perf_counter(), conn.name)
            return 1
        return run


def task(rec: Recorder, label: str, seconds: float, locks: dict[str, str], phase: int, table: str | None,
         fail: BaseException | None = None) -> Task:
    return Task(label, rec.action(label, seconds, fail), locks, phase, table)


def overlap(a: tuple[float, float, str], b: tuple[float, float, str]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_lock_conflicts_are_postgresqls():
    """The five modes conflict as PostgreSQL's table says (symmetric; SHARE with itself does not: two index builds
    on one table run together)."""
    modes = list(partitioned.LOCK_CONFLICTS)
    for a in modes:
        for b in modes:
            assert (b in partitioned.LOCK_CONFLICTS[a]) == (a in partitioned.LOCK_CONFLICTS[b])
    assert SHARE not in partitioned.LOCK_CONFLICTS[SHARE]
    assert partitioned.LOCK_CONFLICTS[ACCESS_SHARE] == {ACCESS_EXCLUSIVE}
    assert SHARE_ROW_EXCLUSIVE in partitioned.LOCK_CONFLICTS[SHARE_ROW_EXCLUSIVE]


def test_second_phase_follows_its_tables_first_phase_without_waiting_for_the_others():
    rec = Recorder()
    tasks = [
        task(rec, "a index 1", 0.60, {"a": SHARE}, 1, "a"),
        task(rec, "b key", 0.05, {"b": ACCESS_EXCLUSIVE}, 1, "b"),
        task(rec, "b index", 0.05, {"b": SHARE}, 1, "b"),
        task(rec, "a analyze", 0.05, {"a": SHARE_UPDATE_EXCLUSIVE}, 2, "a"),
        task(rec, "b analyze", 0.05, {"b": SHARE_UPDATE_EXCLUSIVE}, 2, "b"),
        task(rec, "prewarm", 0.02, {"a": ACCESS_SHARE, "b": ACCESS_SHARE}, 2, None),
    ]
    statements: list = []
    run_queue([FakeConnection("1"), FakeConnection("2")], tasks, statements)
    s = rec.spans
    assert sorted(label for label, _, _ in statements) == sorted(t.label for t in tasks)
    # b's analysis started before a's long index build ended (no barrier between the phases) ...
    assert s["b analyze"][0] < s["a index 1"][1]
    assert s["b analyze"][0] >= max(s["b key"][1], s["b index"][1])
    # ... a's only after it; the key and b's index never at once (ACCESS EXCLUSIVE); the prewarm after every build
    assert s["a analyze"][0] >= s["a index 1"][1]
    assert not overlap(s["b key"], s["b index"])
    assert s["prewarm"][0] >= max(s["a index 1"][1], s["b key"][1], s["b index"][1])


def test_conflicting_second_phase_tasks_never_run_together():
    """Two foreign keys referencing one table (SHARE ROW EXCLUSIVE on it both) run one after the other."""
    rec = Recorder()
    tasks = [task(rec, f"fk {t}", 0.05, {t: SHARE_ROW_EXCLUSIVE, "audit.run": SHARE_ROW_EXCLUSIVE}, 2, t)
             for t in ("a", "b", "c")]
    run_queue([FakeConnection("1"), FakeConnection("2")], tasks, [])
    spans = list(rec.spans.values())
    assert len(spans) == 3
    assert not any(overlap(x, y) for i, x in enumerate(spans) for y in spans[i + 1:])


def test_finale_runs_beside_the_last_tasks_and_ends_after_them():
    rec = Recorder()
    tasks = [task(rec, "index", 0.05, {"a": SHARE}, 1, "a"),
             task(rec, "long analyze", 0.30, {"a": SHARE_UPDATE_EXCLUSIVE}, 2, "a")]
    seen: dict[str, float] = {}

    def finale(conn, restored):
        seen["started"] = time.perf_counter()
        restored()
        seen["ended"] = time.perf_counter()

    run_queue([FakeConnection("1"), FakeConnection("2")], tasks, [], finale)
    s = rec.spans
    assert s["index"][1] <= seen["started"] < s["long analyze"][1] <= seen["ended"]


def test_a_failed_task_abandons_the_finale_and_is_raised():
    rec = Recorder()
    boom = RuntimeError("duplicate key")
    tasks = [task(rec, "index", 0.02, {"a": SHARE}, 1, "a"),
             task(rec, "slow fk", 0.20, {"a": SHARE_ROW_EXCLUSIVE}, 2, "a", fail=boom),
             task(rec, "analyze b", 0.01, {"b": SHARE_UPDATE_EXCLUSIVE}, 2, "b")]
    finished = []

    def finale(conn, restored):
        restored()
        finished.append(True)  # (never: restored() raises when a task failed)

    connections = [FakeConnection("1"), FakeConnection("2")]
    with pytest.raises(RuntimeError, match="duplicate key"):
        run_queue(connections, tasks, [], finale)
    assert finished == []
    assert any(c.cancelled.is_set() for c in connections)


def test_a_failed_finale_waits_for_the_other_tasks_then_is_raised():
    rec = Recorder()
    tasks = [task(rec, "index", 0.02, {"a": SHARE}, 1, "a"),
             task(rec, "long analyze", 0.20, {"a": SHARE_UPDATE_EXCLUSIVE}, 2, "a")]
    failed_at: list[float] = []

    def finale(conn, restored):
        failed_at.append(time.perf_counter())
        raise ValueError("rows do not add up")

    connections = [FakeConnection("1"), FakeConnection("2")]
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="rows do not add up"):
        run_queue(connections, tasks, [], finale)
    # the restores were left to finish (every object back before the failure is raised), none cancelled
    assert "long analyze" in rec.spans and failed_at[0] < rec.spans["long analyze"][1] <= time.perf_counter()
    assert not any(c.cancelled.is_set() for c in connections) and time.perf_counter() - t0 >= 0.2


def test_a_foreign_keys_referenced_table_is_read_from_its_definition():
    """The referenced table of a restored foreign key (pg_get_constraintdef's spelling) is locked too."""
    text = ('ALTER TABLE "population"."person" ADD CONSTRAINT "person_created_run_id_fkey" FOREIGN KEY'
            ' (created_run_id) REFERENCES audit.run(run_id)')
    assert partitioned._REFERENCES.findall(text) == ["audit.run"]
    assert partitioned._REFERENCES.findall('… REFERENCES "Audit"."Run" (run_id)') == ['"Audit"."Run"']
