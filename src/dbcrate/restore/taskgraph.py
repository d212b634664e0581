"""Run a graph of tasks on N worker threads, as ``pg_restore -j`` schedules its work.

A task starts once every task it comes ``after`` has finished and no running task holds a lock
that conflicts with its own; among the tasks that could start, the one with the highest
``priority`` (a tuple, compared as tuples are) starts first (ties: the one added first).
Locks are per name (a table): any number
of ``shared`` holders at once, or one ``exclusive`` holder. They keep two sessions from
queueing on the same table's lock inside the database, which would leave a worker idle (or,
with two foreign keys between the same tables in opposite directions, deadlock).

The restore uses it so that a table's indexes are built as soon as its rows are in, while other
tables still load, instead of waiting for the last table: with two workers, the index builds
fill the time in which the last big table loads alone.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from dbcrate.arrivals import Arrivals
from dbcrate.progress import Interrupts


@dataclass(eq=False)
class Task:
    """One unit of work. ``run`` is called in a worker thread; ``payload`` is the caller's."""

    run: Callable[[], None]
    priority: tuple[float, ...] = ()
    after: list[Task] = field(default_factory=list)
    shared: frozenset[str] = frozenset()
    exclusive: frozenset[str] = frozenset()
    payload: Any = None
    #: names that must have arrived (:class:`~dbcrate.arrivals.Arrivals` given to
    #: :meth:`TaskGraph.run`) before the task may start: a table still being dumped
    awaits: frozenset[str] = frozenset()
    #: set by :meth:`TaskGraph.drop`: finished without running
    dropped: bool = False
    #: ``waiting``, ``running`` or ``finished``
    state: str = "waiting"
    order: int = 0


class TaskGraph:
    """Tasks and their order; :meth:`run` executes them."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self._count = itertools.count()
        #: dropped since the runner last looked: their successors are released
        self._dropped: list[Task] = []

    def add(self, run: Callable[[], None], *, priority: tuple[float, ...] = (),
            after: list[Task | None] | None = None, shared: set[str] | None = None,
            exclusive: set[str] | None = None, payload: Any = None,
            awaits: set[str] | None = None) -> Task:
        """Add a task (``None`` in ``after`` is ignored: a step that has nothing to wait for)."""
        task = Task(run, priority, [t for t in (after or []) if t is not None],
                    frozenset(shared or ()), frozenset(exclusive or ()), payload,
                    frozenset(awaits or ()), order=next(self._count))
        self.tasks.append(task)
        return task

    def drop(self, keep: Callable[[Task], bool]) -> None:
        """Mark every task not started yet for which ``keep`` is false as finished without
        running it (e.g. the remaining tables after a failure with ``--exit-on-error``)."""
        for task in self.tasks:
            if task.state == "waiting" and not task.dropped and not keep(task):
                task.dropped = True
                self._dropped.append(task)

    def run(self, workers: int, interrupts: Interrupts | None = None,
            arrivals: Arrivals | None = None) -> Iterator[Task]:
        """Run every task on up to ``workers`` threads; yield each one, in the caller's thread,
        when it has finished (dropped tasks are not yielded). An exception raised by a task is
        raised here once the running tasks have finished; nothing more starts after it. A
        ``KeyboardInterrupt`` in the caller's thread (or this generator closed early) first
        stops ``interrupts``: the running tasks' statements are cancelled, so that they end at
        once and the interrupt is raised without waiting for them to finish their work.

        A task that ``awaits`` names starts only once each has arrived in ``arrivals`` (or
        they failed: the task then runs and sees the failure there); meanwhile the workers
        run the other ready tasks."""
        ticking = self.run_ticking(workers, interrupts, arrivals=arrivals)
        try:
            for task in ticking:
                if task is not None:
                    yield task
        finally:  # closed early: the running tasks are stopped now, not when collected
            ticking.close()

    def run_ticking(self, workers: int, interrupts: Interrupts | None = None,
                    tick: float | None = None, *,
                    arrivals: Arrivals | None = None) -> Generator[Task | None, None, None]:
        """:meth:`run`, also yielding ``None`` whenever ``tick`` seconds pass with no task
        finished (so that the caller can report the progress of the tasks running)."""
        running: dict[Future[None], Task] = {}
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dbcrate-task") as pool:
            try:
                yield from self._run(pool, max(1, workers), running, tick, arrivals)
            except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C, or a caller that gave up
                if interrupts is not None:
                    interrupts.stop(list(running))
                raise

    def _run(self, pool: ThreadPoolExecutor, workers: int, running: dict[Future[None], Task],
             tick: float | None, arrivals: Arrivals | None) -> Iterator[Task | None]:
        # each task counts the tasks it still waits for; one that waits for none is ready, in
        # a heap by priority: choosing the next task does not scan every task (2,000 tables
        # made 6,000 tasks, and scanning them for each start cost more than the restore)
        successors: dict[int, list[Task]] = {}
        blocked: dict[int, int] = {}
        ready: list[_Ranked] = []
        # a name not arrived yet blocks its tasks like an unfinished task does
        awaiting: dict[str, list[Task]] = {}
        for task in self.tasks:
            open_ = [p for p in task.after if p.state != "finished" and not p.dropped]
            names = [n for n in task.awaits if arrivals is not None and not arrivals.has(n)]
            blocked[id(task)] = len(open_) + len(names)
            for before in open_:
                successors.setdefault(id(before), []).append(task)
            for name in names:
                awaiting.setdefault(name, []).append(task)
            if not blocked[id(task)] and task.state == "waiting" and not task.dropped:
                heapq.heappush(ready, _Ranked(task))

        def unblock(later: Task) -> None:
            blocked[id(later)] -= 1
            if blocked[id(later)] == 0:
                heapq.heappush(ready, _Ranked(later))

        def release(done: Task) -> None:
            for later in successors.pop(id(done), ()):
                unblock(later)

        while True:
            for dropped in self._take_dropped():  # a dropped task counts as finished
                release(dropped)
            if arrivals is not None and awaiting:
                for later in _arrived(arrivals, awaiting):
                    unblock(later)
            while len(running) < workers:
                started = _pick(ready, list(running.values()))
                if started is None:
                    break
                started.state = "running"
                running[pool.submit(started.run)] = started
            if not running and not awaiting:
                waiting = [t for t in self.tasks if t.state == "waiting" and not t.dropped]
                if waiting:  # a cycle in ``after``: a bug of the caller, not of the data
                    raise RuntimeError(f"tasks wait for each other: {waiting[:3]}")
                return
            watched: list[Future[None]] = list(running)
            if arrivals is not None and awaiting:
                watched.append(arrivals.signal)
            done, _ = wait(watched, timeout=tick, return_when=FIRST_COMPLETED)
            done = {f for f in done if f in running}
            if not done:
                yield None
            for future in sorted(done, key=lambda f: running[f].order):
                task = running.pop(future)
                task.state = "finished"
                future.result()  # the pool's exit waits for the others
                release(task)
                yield task

    def _take_dropped(self) -> list[Task]:
        taken, self._dropped = self._dropped, []
        return taken


def _arrived(arrivals: Arrivals, awaiting: dict[str, list[Task]]) -> list[Task]:
    """The tasks that waited for the names arrived since the last look (taken out of
    ``awaiting``), one entry per name; after a failure, all of them: nothing more arrives,
    and the tasks run and see the failure."""
    names, failure = arrivals.take()
    out: list[Task] = []
    for name in list(awaiting) if failure is not None else names:
        out.extend(awaiting.pop(name, ()))
    return out


class _Ranked:
    """A ready task in the heap: the highest ``priority`` first, then the one added first."""

    __slots__ = ("task",)

    def __init__(self, task: Task) -> None:
        self.task = task

    def __lt__(self, other: _Ranked) -> bool:
        return (self.task.priority, -self.task.order) > (other.task.priority, -other.task.order)


def _pick(ready: list[_Ranked], busy: list[Task]) -> Task | None:
    """The best ready task whose locks do not conflict with a running task's (the others
    stay ready)."""
    skipped: list[_Ranked] = []
    chosen: Task | None = None
    while ready:
        item = heapq.heappop(ready)
        task = item.task
        if task.dropped or task.state != "waiting":
            continue
        if any(_conflict(task, other) for other in busy):
            skipped.append(item)
            continue
        chosen = task
        break
    for item in skipped:
        heapq.heappush(ready, item)
    return chosen


def _conflict(a: Task, b: Task) -> bool:
    return bool(a.exclusive & (b.exclusive | b.shared) or b.exclusive & a.shared)
