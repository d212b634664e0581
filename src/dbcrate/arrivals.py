"""Names that arrive from another thread: the tables a dump has finished writing, which a
restore reading the same archive as it is written (``copy``) may then load.

One thread calls :meth:`Arrivals.arrive` (or :meth:`Arrivals.fail` once, when it cannot
deliver the rest); another waits: on :meth:`Arrivals.wait_for` for one name, or on the
:attr:`Arrivals.signal` future beside its other futures
(:func:`concurrent.futures.wait`), then :meth:`Arrivals.take` what came since it last looked.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future


class Arrivals:
    """A thread-safe record of the names that have arrived, and of the failure (if any) that
    means the others never will."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._arrived: set[str] = set()
        self._new: list[str] = []
        self._failure: BaseException | None = None
        self._signal: Future[None] = Future()

    def arrive(self, name: str) -> None:
        """``name`` is ready (a second arrival of a name is ignored)."""
        with self._lock:
            if name in self._arrived:
                return
            self._arrived.add(name)
            self._new.append(name)
            self._wake()

    def fail(self, error: BaseException) -> None:
        """Nothing more will arrive, because of ``error`` (the first failure is kept)."""
        with self._lock:
            if self._failure is None:
                self._failure = error
            self._wake()

    def _wake(self) -> None:
        if not self._signal.done():
            self._signal.set_result(None)
        self._lock.notify_all()

    @property
    def signal(self) -> Future[None]:
        """A future that is done once something arrived or failed since the last :meth:`take`."""
        with self._lock:
            return self._signal

    def take(self) -> tuple[list[str], BaseException | None]:
        """The names that arrived since the last call, and the failure if there is one."""
        with self._lock:
            new, self._new = self._new, []
            if self._signal.done():
                self._signal = Future()
            return new, self._failure

    def has(self, name: str) -> bool:
        with self._lock:
            return name in self._arrived

    @property
    def failure(self) -> BaseException | None:
        with self._lock:
            return self._failure

    def wait_any(self, names: set[str]) -> str | None:
        """Block until one of ``names`` has arrived (returned), or a failure means none will
        (None)."""
        with self._lock:
            while True:
                found = next((n for n in names if n in self._arrived), None)
                if found is not None or self._failure is not None:
                    return found
                self._lock.wait()

    def wait_for(self, name: str) -> bool:
        """Block until ``name`` arrives (True) or a failure means it never will (False)."""
        with self._lock:
            while name not in self._arrived and self._failure is None:
                self._lock.wait()
            return name in self._arrived
