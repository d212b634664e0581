"""Read ahead: run an iterator in a thread of its own, one item ahead of its consumer.

A dump task reads a batch from the database (C code: ADBC, mysqlclient, psycopg's COPY and
Arrow's CSV parser, all without the GIL) and then encodes it (Parquet and zstd, also without
the GIL). One after the other, one core waits while the other works; with the read one batch
ahead, the two overlap. Measured on the benchmark's scale-1 SQLite dump: reading 6.7 s and
encoding 4.1 s of a 16 s run, done one after the other before this (docs/PERFORMANCE.md,
"Session 4").

The cost is up to two more batches in memory (a batch is bounded in bytes, see
``DumpOptions.batch_rows`` and the dialects' ``TARGET_BATCH_BYTES``): about 40 MB more peak
RSS on that dump. So a dialect asks for it (``Dialect.read_ahead``) only where the overlap is
real: SQLite and PostgreSQL (whose COPY blocks are read by a Python loop while Arrow parses
and encodes the previous one: 6.9-7.4 s -> 6.0-6.3 s at scale 1); the MariaDB reader holds the
GIL for part of its work and was slower with it.

A restore into a SQLite file it made uses it the other way round
(:func:`dbcrate.dialects.sqlitestage.load_direct`): the next batch is decoded, checked and
converted while ADBC inserts this one (without the GIL), on the one writer SQLite has.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ReadAhead(Generic[T]):
    """Iterate ``source`` in a worker thread, ``depth`` items ahead; use as a context manager.

    The source is only ever advanced (and closed) by the worker, so a generator that holds a
    cursor is driven by one thread at a time. Leaving the ``with`` block - normally, on an
    error or when the consumer stops early - stops the worker, closes the source in the
    worker's thread and waits for it: the source's connection is free again afterwards.
    An exception of the source is raised to the consumer, at the item where it happened.
    """

    def __init__(self, source: Iterator[T], depth: int = 1, name: str = "dbcrate-read") -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._items()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a worker waiting to put
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _items(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]

    def _work(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failure(exc))
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:  # the consumer already has the real outcome
                with contextlib.suppress(Exception):
                    close()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False
