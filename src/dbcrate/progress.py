"""Progress events: what the library reports while it works (it never prints).

``iter_dump`` and ``iter_restore`` are generators of :class:`Event`; an event also unpacks as
the Camelot-style tuple ``(done, total, description)``. The CLI turns them into progress bars.

The contract (docs/CLI.md, "Progress events"): within one description ``total`` never changes
and ``done`` never goes back. While a table's rows move, worker threads count them into a
:class:`TableProgress`; the runner, in the caller's thread, turns the counters into ``data``
events (at most one per table every :data:`TICK` seconds, never one per row) and ``overall``
events, whose ``done/total`` are the whole run's bytes.

:class:`Interrupts` is how a running dump or restore stops at once on Ctrl-C: the
``KeyboardInterrupt`` reaches the caller's thread only, while the work runs in worker threads
and on the server; see docs/RELIABILITY.md, "Ctrl-C".
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # concurrent.futures is loaded by the runs that have futures to stop
    from concurrent.futures import Future

T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One step of work.

    :param phase: ``plan``, ``overall`` (the whole run's table data, in bytes), ``data`` (one
        table's rows), ``verify``, ``schema``, ``indexes``, ``constraints``, ``sequences``,
        ``storage`` (files stored or restored), ``convert`` or ``done``.
    :param done: units finished: bytes for ``overall`` and ``verify``, rows for ``data``,
        steps otherwise. Never less than in the previous event of the same description.
    :param total: units expected (``None`` when unknown); the same in every event of one
        description (a dump's totals are estimates: see docs/CLI.md).
    :param description: a human sentence ("Dump table Album"); names one piece of work.
    :param table: the table concerned, if any.
    :param rows: rows moved for this table so far.
    :param bytes: for ``data``, this table's bytes so far (dump: bytes read from the database,
        as Arrow data; restore: archive bytes loaded); for ``overall``, the same as ``done``;
        otherwise archive bytes written or read so far.
    :param finished: the last event of its description: that piece of work is over.
    """

    phase: str
    done: int
    total: int | None
    description: str
    table: str | None = None
    rows: int = 0
    bytes: int = 0
    finished: bool = False

    def __iter__(self) -> Iterator[object]:
        return iter((self.done, self.total, self.description))


def drain(gen: Generator[Event, None, T], on_event: Callable[[Event], None] | None = None) -> T:
    """Run a progress generator to its end and return its return value, passing each event to
    ``on_event`` (how ``dump()``, ``restore()`` and the CLI drive ``iter_dump``/``iter_restore``).
    A Ctrl-C in ``on_event`` closes ``gen`` before it is raised: the run stops its work now."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_event is not None:
            try:
                on_event(event)
            except KeyboardInterrupt:
                gen.close()
                raise


class Interrupted(KeyboardInterrupt):
    """Raised in a worker thread that finds its run stopped (a Ctrl-C in the caller's thread);
    a ``KeyboardInterrupt``, so that no ``except Exception`` records it as a failure."""


class Interrupts:
    """A run's stop flag and the cancel functions of the statements running now.

    Workers run each unit of work inside :meth:`cancellable` (with the dialect's
    ``interrupter`` of its connection) and look at the flag between batches (:meth:`check`,
    :meth:`checked`); the caller's thread, on ``KeyboardInterrupt``, calls :meth:`stop`."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._lock = threading.Lock()
        self._cancels: dict[int, Callable[[], None]] = {}
        self._keys = itertools.count()

    @property
    def stopped(self) -> bool:
        return self._flag.is_set()

    def check(self) -> None:
        """:raises Interrupted: the run is being stopped."""
        if self._flag.is_set():
            raise Interrupted("the run was interrupted")

    def checked(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, the flag looked at before each (a stopped run reads no further)."""
        for item in items:
            self.check()
            yield item

    @contextlib.contextmanager
    def cancellable(self, cancel: Callable[[], None] | None) -> Iterator[None]:
        """While the block runs, :meth:`stop` calls ``cancel`` (None: nothing to call)."""
        self.check()
        key = next(self._keys)
        if cancel is not None:
            with self._lock:
                self._cancels[key] = cancel
        try:
            yield
        finally:
            with self._lock:
                self._cancels.pop(key, None)

    def stop(self, running: Collection[Future[Any]], patience: float = 5.0) -> None:
        """Stop the run: set the flag, cancel the futures not begun, and cancel the running
        statements - again every 0.1 s, as a cancel that arrives between two statements of a
        worker does nothing - until every future is done, or ``patience`` seconds passed."""
        from concurrent.futures import wait

        self._flag.set()
        pending = [f for f in running if not f.cancel()]
        deadline = time.monotonic() + patience
        while True:
            with self._lock:
                cancels = list(self._cancels.values())
            for cancel in cancels:
                with contextlib.suppress(Exception):  # a session already gone: nothing runs
                    cancel()
            pending = [f for f in pending if not f.done()]
            if not pending or time.monotonic() >= deadline:
                return
            wait(pending, timeout=0.1)


#: seconds between two progress events of one table (and of the overall line)
TICK = 0.2


class _Rows(Protocol):
    @property
    def num_rows(self) -> int: ...


B = TypeVar("B", bound=_Rows)


@dataclass
class _Line:
    """One table's counters: ``rows`` of ``total`` expected, ``bytes`` of ``weight`` (what the
    table counts for in the overall total)."""

    total: int | None
    weight: int
    rows: int = 0
    bytes: int = 0
    shown: tuple[int, int] = (0, 0)
    finished: bool = False


class TableProgress:
    """Rows and bytes moved per table in a run: counted by worker threads (:meth:`add`,
    :meth:`metered`), turned into events by the runner in the caller's thread (:meth:`events`,
    :meth:`finish`, :meth:`end`).

    ``tables`` maps each table to ``(rows expected or None, bytes it weighs)``; the overall
    total is the sum of the weights, fixed up front. A table's contribution to the overall
    ``done`` is its bytes, capped at its weight, and its whole weight once it is finished: so
    the overall ``done`` never goes back, never passes ``total``, and reaches it exactly when
    every table is finished (:meth:`end` finishes the rest: failed or skipped tables)."""

    def __init__(self, label: str, overall: str, tables: dict[str, tuple[int | None, int]],
                 tick: float = TICK) -> None:
        self.label = label
        self.overall = overall
        self.tick = tick
        self._lock = threading.Lock()
        self._lines = {name: _Line(total, max(0, weight)) for name, (total, weight)
                       in tables.items()}
        self.total = sum(line.weight for line in self._lines.values())
        self._done = 0
        self._last = 0.0
        # the overall done without a pass over every table (2,000 tables: one pass per
        # finished table made the progress quadratic): the finished tables' weight, and the
        # tables counted since they started
        self._finished_weight = 0
        self._moving: dict[str, _Line] = {}

    def add(self, table: str, rows: int, nbytes: int) -> None:
        """Count ``rows`` and ``nbytes`` more for ``table`` (any thread; unknown tables are
        ignored)."""
        with self._lock:
            line = self._lines.get(table)
            if line is not None:
                line.rows += rows
                line.bytes += max(0, nbytes)
                if not line.finished:
                    self._moving[table] = line

    def metered(self, table: str, batches: Iterable[B], rows: int, size: int) -> Iterator[B]:
        """``batches`` of one archive chunk (``rows`` rows, ``size`` bytes), counted as they
        are taken: its bytes in proportion to its rows, all of them once it is read."""
        seen = counted = 0
        for batch in batches:
            seen += batch.num_rows
            now = size * min(seen, rows) // rows if rows else 0
            self.add(table, batch.num_rows, now - counted)
            counted = now
            yield batch
        self.add(table, 0, size - counted)

    def start(self) -> Event:
        """The first overall event (nothing done yet)."""
        self._last = time.monotonic()
        return self._overall_event()

    def events(self, force: bool = False) -> Iterator[Event]:
        """The events of the tables that moved since the last call and the overall event -
        nothing when less than ``tick`` seconds have passed since then (unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._last < self.tick:
            return
        self._last = now
        with self._lock:
            moved = [(name, line) for name, line in self._moving.items()
                     if (line.rows, line.bytes) != line.shown]
            events = [self._line_event(name, line) for name, line in moved]
        yield from events
        if events:
            yield self._overall_event()

    def finish(self, table: str, description: str | None = None) -> Iterator[Event]:
        """The table's last event (``finished``; ``description`` if it differs from its
        running one: "Failed table t") and the overall event."""
        with self._lock:
            line = self._lines.get(table)
            if line is None or line.finished:
                return
            self._mark_finished(table, line)
            event = self._line_event(table, line, description)
        yield event
        yield self._overall_event()

    def finish_quietly(self, table: str) -> None:
        """Count ``table`` as finished without an event (committed by an earlier run)."""
        with self._lock:
            line = self._lines.get(table)
            if line is not None and not line.finished:
                self._mark_finished(table, line)

    def _mark_finished(self, table: str, line: _Line) -> None:
        line.finished = True
        self._moving.pop(table, None)
        self._finished_weight += line.weight

    def end(self) -> Event:
        """The last overall event: ``done == total`` (every table counts as finished)."""
        with self._lock:
            for name, line in self._lines.items():
                if not line.finished:
                    self._mark_finished(name, line)
        event = self._overall_event()
        return Event(event.phase, event.done, event.total, event.description,
                     bytes=event.bytes, finished=True)

    def _line_event(self, table: str, line: _Line, description: str | None = None) -> Event:
        line.shown = (line.rows, line.bytes)
        return Event("data", line.rows, line.total, description or f"{self.label} {table}",
                     table, rows=line.rows, bytes=line.bytes, finished=line.finished)

    def _overall_event(self) -> Event:
        with self._lock:
            done = self._finished_weight + sum(min(line.bytes, line.weight)
                                               for line in self._moving.values())
        self._done = max(self._done, min(done, self.total))
        return Event("overall", self._done, self.total, self.overall, bytes=self._done)


def human_bytes(n: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 MiB`` (for progress lines and reports)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
