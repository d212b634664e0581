"""The source side of a dump: one engine, and connections that all read one snapshot.

:func:`open_snapshot` opens the engine and the leader connection and begins the snapshot (each
dialect's ``begin_snapshot``); :meth:`Snapshot.share` adds the ``-j`` worker connections and
puts them into the leader's snapshot (``share_snapshot``). Whatever happens, the workers are
dropped and the engine disposed when the block ends. The errors the database drivers raise, and
the :class:`~dbcrate.errors.DatabaseError` they become, are defined here too.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa

from dbcrate.connect import open_engine
from dbcrate.dialects import Dialect, driver_errors
from dbcrate.errors import DatabaseError, DbcrateError, driver_message
from dbcrate.progress import Interrupts

T = TypeVar("T")



def tolerated() -> tuple[type[BaseException], ...]:
    """What ``--tolerate`` turns into a failed table: the drivers' errors and dbcrate's."""
    return (*driver_errors(), DbcrateError)


def db_error(doing: str, exc: BaseException) -> DbcrateError:
    """The error a user sees when the database failed while ``doing`` something."""
    return DatabaseError(f"the database failed while {doing}: {driver_message(exc)}")


class Snapshot:
    """The source engine, its dialect, and the connections reading one snapshot.

    ``conn`` (the leader) is in the snapshot from the start; :meth:`share` adds workers.
    :meth:`run` lends a free connection to a function, so that ``jobs`` threads read at once;
    ``interrupts`` can cancel what the connections lent run (Ctrl-C, :meth:`run`).
    """

    def __init__(self, engine: sa.Engine, dialect: Dialect, url: sa.URL,
                 conn: sa.Connection) -> None:
        self.engine = engine
        self.dialect = dialect
        self.url = url
        self.conn = conn
        self.workers: list[sa.Connection] = []
        #: the native schema's capture of this snapshot's dump (dump/native.py), once planned
        self.native: object | None = None
        self._shared = False
        self._free: queue.Queue[sa.Connection] = queue.Queue()
        self._free.put(conn)
        self.interrupts = Interrupts()

    def share(self, jobs: int) -> None:
        """Open ``jobs - 1`` worker connections in the leader's snapshot (once; later calls do
        nothing). A driver error here is an error reading the source schema, as planning's."""
        if self._shared or jobs <= 1:
            return
        self._shared = True
        try:
            for _ in range(jobs - 1):
                self.workers.append(self.engine.connect())
            self.dialect.share_snapshot(self.conn, self.workers)
        except driver_errors() as exc:
            raise db_error("reading the source schema", exc) from None
        for conn in self.workers:
            self._free.put(conn)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` on a connection no other thread is using; what it runs there
        is cancelled by ``interrupts.stop()``. A worker refused a table's lock it may not wait
        for (``Dialect.lock_refused``) reads no more, and the leader, which holds every
        table's lock, runs ``fn`` instead."""
        conn = self._free.get()
        keep = True
        try:
            with self.interrupts.cancellable(self.dialect.interrupter(conn)):
                return fn(conn, *args)
        except driver_errors() as exc:
            if conn is self.conn or self.interrupts.stopped or not self.dialect.lock_refused(exc):
                raise
            keep = False  # (its transaction failed; it is rolled back with the others at the end)
        finally:
            if keep:
                self._free.put(conn)
        return self._on_leader(fn, *args)

    def _on_leader(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(leader, *args)``, once the leader is free (the workers taken meanwhile are
        given back at once)."""
        taken: list[sa.Connection] = []
        try:
            conn = self._free.get()
            while conn is not self.conn:
                taken.append(conn)
                conn = self._free.get()
        finally:
            for other in taken:
                self._free.put(other)
        try:
            with self.interrupts.cancellable(self.dialect.interrupter(conn)):
                return fn(conn, *args)
        finally:
            self._free.put(conn)

    def end(self) -> None:
        """End the snapshot on every connection (the dump read everything it needed)."""
        for conn in [self.conn, *self.workers]:
            self.dialect.end_snapshot(conn)

    def close_readers(self) -> None:
        """Close what the reads opened beside each connection (before they are dropped)."""
        for conn in [self.conn, *self.workers]:
            with contextlib.suppress(Exception):
                self.dialect.close_readers(conn)

    def drop_workers(self) -> None:
        """Drop the worker connections without a rollback (they may be dead)."""
        for conn in self.workers:
            with contextlib.suppress(Exception):
                conn.invalidate()


@contextlib.contextmanager
def open_snapshot(url: str) -> Iterator[Snapshot]:
    """The source at ``url``, read only, its leader connection in a snapshot begun.

    A driver error while beginning it is a :class:`DatabaseError` ("reading the source
    schema"). On the way out the workers are dropped and the engine is disposed; the snapshot
    is ended only by :meth:`Snapshot.end` (after an error, the connection is dropped instead).
    """
    engine, dialect, parsed = open_engine(url, read_only=True)
    snapshot: Snapshot | None = None
    try:
        with _connection(engine) as conn:
            snapshot = Snapshot(engine, dialect, parsed, conn)
            try:
                dialect.begin_snapshot(conn)
            except driver_errors() as exc:
                raise db_error("reading the source schema", exc) from None
            try:
                yield snapshot
            finally:  # ended already if all went well; after an error, before the drops
                snapshot.close_readers()
    finally:
        if snapshot is not None:
            snapshot.drop_workers()
        engine.dispose()


@contextlib.contextmanager
def _connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that, when an error is already on its way out, is dropped instead of rolled
    back: a rollback over a killed connection would raise and hide the error that matters."""
    conn = engine.connect()
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(Exception):
            conn.invalidate()
        raise
    else:
        conn.close()
