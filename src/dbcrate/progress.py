"""Progress events: what the library reports while it works (it never prints).

``iter_dump`` and ``iter_restore`` are generators of :class:`Event`; an event also unpacks as
the Camelot-style tuple ``(done, total, description)``. The CLI turns them into a progress bar.

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
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One step of work.

    :param phase: ``plan``, ``data``, ``verify``, ``schema``, ``indexes``, ``constraints``,
        ``sequences``, ``storage`` (files stored or restored), ``convert`` or ``done``.
    :param done: units finished in this phase (rows for ``data``, steps otherwise).
    :param total: units expected (``None`` when unknown).
    :param description: a human sentence ("Copy data of table Album").
    :param table: the table concerned, if any.
    :param rows: rows moved for this table so far.
    :param bytes: archive bytes written or read so far (whole run).
    """

    phase: str
    done: int
    total: int | None
    description: str
    table: str | None = None
    rows: int = 0
    bytes: int = 0

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


def human_bytes(n: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 MiB`` (for progress lines and reports)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
