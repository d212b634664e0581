"""The task graph that schedules a restore's loads, index builds and foreign keys."""

from __future__ import annotations

import threading
import time

import pytest

from dbcrate.restore.taskgraph import Task, TaskGraph


def _recorder() -> tuple[list[str], threading.Lock]:
    return [], threading.Lock()


def test_one_worker_runs_by_priority_then_insertion_order_and_after_dependencies() -> None:
    log, lock = _recorder()
    graph = TaskGraph()

    def note(name: str) -> None:
        with lock:
            log.append(name)

    small = graph.add(lambda: note("small"), priority=(1, 10))
    big = graph.add(lambda: note("big"), priority=(1, 99))
    graph.add(lambda: note("index of big"), priority=(0, 99), after=[big])
    graph.add(lambda: note("index of small"), priority=(0, 10), after=[small])
    graph.add(lambda: note("tie 1"), priority=(1, 10))
    graph.add(lambda: note("key"), priority=(5,), after=[big, small, None])
    finished = [t.payload for t in graph.run(1)]
    # "key" outranks "tie 1" once both its tables are done; "small" and "tie 1" tie: added first
    assert log == ["big", "small", "key", "tie 1", "index of big", "index of small"]
    assert len(finished) == 6


def test_exclusive_locks_never_overlap_and_shared_ones_do() -> None:
    graph = TaskGraph()
    holders: dict[str, int] = {}
    peaks: dict[str, int] = {}
    lock = threading.Lock()
    both_shared = threading.Barrier(2, timeout=5)

    def hold(name: str, meet: bool = False) -> None:
        with lock:
            holders[name] = holders.get(name, 0) + 1
            peaks[name] = max(peaks.get(name, 0), holders[name])
        if meet:  # two shared holders must be able to run at the same time
            both_shared.wait()
        time.sleep(0.02)
        with lock:
            holders[name] -= 1

    for _ in range(4):
        graph.add(lambda: hold("t"), exclusive={"t"})
    graph.add(lambda: hold("s", True), shared={"s"})
    graph.add(lambda: hold("s", True), shared={"s"})
    graph.add(lambda: hold("s"), exclusive={"s", "t"})
    assert len(list(graph.run(2))) == 7
    assert peaks["t"] == 1
    assert peaks["s"] == 2


def test_a_lock_conflict_lets_a_lower_priority_task_go_first() -> None:
    graph = TaskGraph()
    started: list[str] = []
    gate = threading.Event()

    def first() -> None:
        started.append("first")
        assert gate.wait(5)

    def other(name: str) -> None:
        started.append(name)
        gate.set()

    graph.add(first, priority=(9,), exclusive={"a"})
    graph.add(lambda: other("same table"), priority=(8,), exclusive={"a"})
    graph.add(lambda: other("other table"), priority=(1,), exclusive={"b"})
    list(graph.run(2))
    assert started == ["first", "other table", "same table"]


def test_dropped_tasks_do_not_run_and_their_dependents_do() -> None:
    graph = TaskGraph()
    ran: list[str] = []
    first = graph.add(lambda: ran.append("first"), priority=(2,), payload="data")
    second = graph.add(lambda: ran.append("second"), priority=(1,), payload="data")
    graph.add(lambda: ran.append("after second"), after=[second], payload="index")
    seen = []
    for task in graph.run(1):
        seen.append(task)
        if task is first:
            graph.drop(lambda t: t.payload != "data")
    assert ran == ["first", "after second"]
    assert second.dropped and second not in seen


def test_an_exception_is_raised_after_the_running_tasks_and_nothing_starts_after_it() -> None:
    graph = TaskGraph()
    ran: list[str] = []
    slow_done = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        ran.append("slow")
        slow_done.set()

    def boom() -> None:
        raise ValueError("boom")

    graph.add(slow, priority=(3,))
    graph.add(boom, priority=(2,))
    graph.add(lambda: ran.append("later"), priority=(1,))
    with pytest.raises(ValueError, match="boom"):
        list(graph.run(2))
    assert slow_done.is_set()
    assert "later" not in ran


def test_a_cycle_is_a_caller_bug_reported_not_a_hang() -> None:
    graph = TaskGraph()
    a = graph.add(lambda: None)
    b = graph.add(lambda: None, after=[a])
    a.after.append(b)
    with pytest.raises(RuntimeError, match="wait for each other"):
        list(graph.run(2))


def test_tasks_are_yielded_in_the_callers_thread() -> None:
    graph = TaskGraph()
    workers: set[str] = set()
    for _ in range(5):
        graph.add(lambda: workers.add(threading.current_thread().name))
    caller = {threading.current_thread().name for _ in graph.run(2)}
    assert caller == {threading.current_thread().name}
    assert all(name.startswith("dbcrate-task") for name in workers)
    assert isinstance(graph.tasks[0], Task)


def test_a_task_awaiting_a_name_starts_when_it_arrives_and_others_run_meanwhile() -> None:
    from dbcrate.arrivals import Arrivals

    log, lock = _recorder()
    arrivals = Arrivals()
    arrivals.arrive("early")  # arrived before the graph runs: not waited for

    def note(name: str) -> None:
        with lock:
            log.append(name)
        if name == "index of early":  # the next table arrives while the graph runs
            threading.Timer(0.05, arrivals.arrive, ["late"]).start()

    graph = TaskGraph()
    late = graph.add(lambda: note("load late"), priority=(1, 99), awaits={"late"})
    early = graph.add(lambda: note("load early"), priority=(1, 1), awaits={"early"})
    graph.add(lambda: note("index of early"), priority=(0,), after=[early])
    graph.add(lambda: note("index of late"), priority=(0,), after=[late])
    assert len(list(graph.run(1, arrivals=arrivals))) == 4
    # the highest priority waits for its name; the ready work runs first
    assert log == ["load early", "index of early", "load late", "index of late"]


def test_a_failure_releases_what_awaits_and_nothing_hangs() -> None:
    from dbcrate.arrivals import Arrivals

    arrivals = Arrivals()
    ran: list[str] = []
    graph = TaskGraph()
    graph.add(lambda: ran.append(str(arrivals.failure)), awaits={"never"})
    threading.Timer(0.05, arrivals.fail, [RuntimeError("the source broke")]).start()
    assert len(list(graph.run(2, arrivals=arrivals))) == 1
    assert ran == ["the source broke"]  # the task runs and sees the failure
