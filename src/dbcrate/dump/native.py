"""The native schema of a dump: the source engine's own definitions of the dumped objects,
captured inside the dump's snapshot by the dialect (:mod:`dbcrate.dialects.native`) and
carried in the manifest beside the portable schema (format version 3).

It is captured before any of the dump's connections locks a table. The engine's tool
(pg_dump) locks every table it dumps; were the dump's own transaction to hold a table's lock
first (a key range's ``min``/``max``, a read), a concurrent ``ALTER TABLE`` would queue behind
it and the tool's lock behind the ``ALTER``, while the dump waited for the tool: a wait no
server sees as a deadlock. Where the dialect captures apart from the connection
(``NativeSupport.captures_apart``), the capture starts as soon as the snapshot is open and runs
while the plan is made; the plan waits for it before its first lock (:meth:`NativeCapture.done`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

from dbcrate.connect import JOURNAL_TABLE
from dbcrate.dialects import driver_errors, engine_name
from dbcrate.dump.source import Snapshot, db_error, tolerated
from dbcrate.errors import DatabaseError, DbcrateError
from dbcrate.model.native import NativeSchema
from dbcrate.model.schema import Table
from dbcrate.options import DumpOptions


class NativeCapture:
    """The native schema of one dump, or ``None`` when the engine's dialect has none or
    ``options.no_native_schema`` is set.

    :meth:`start` begins the capture early, on another thread, when the dump takes every table
    of its schemas (no ``-t``/``-T``, no table filter hook): the tables it will dump are then
    known before the plan is made. :meth:`done` (the plan's ``before_locks``) ends it: it
    keeps the early capture when the plan dumps what it assumed, and captures otherwise.
    :meth:`close` waits for a capture still running (after an error). Not thread-safe: one
    dump's thread calls it.

    With ``options.tolerate`` a capture that fails (a table the role cannot read: pg_dump
    locks every table) is a warning in :attr:`warnings`, and the archive carries the portable
    schema only.
    """

    def __init__(self, snapshot: Snapshot, options: DumpOptions) -> None:
        self.snapshot = snapshot
        self.options = options
        self.warnings: list[str] = []
        self.schema: NativeSchema | None = None
        self.finished = False
        self._early: tuple[tuple[str, ...], threading.Thread, list[object]] | None = None

    def start(self) -> None:
        """Begin the capture on another thread if it can be begun before the plan."""
        support = self.snapshot.dialect.native
        opts = self.options
        if support is None or opts.no_native_schema or not support.captures_apart \
                or opts.include or opts.exclude or opts.hooks:
            return
        dialect, conn = self.snapshot.dialect, self.snapshot.conn
        try:
            schemas = tuple(dialect.chosen_schemas(conn, opts.schemas, opts.exclude_schemas))
            run = support.capture_apart(conn, self.snapshot.url, [], [], schemas)
        except tolerated():
            return  # the plan reads the same and reports it; the capture runs after it
        outcome: list[object] = []

        def work() -> None:
            try:
                outcome.append(run())
            except BaseException as exc:  # raised again by done()
                outcome.append(exc)

        thread = threading.Thread(target=work, name="dbcrate-native-capture", daemon=True)
        thread.start()
        self._early = (schemas, thread, outcome)

    def done(self, tables: Sequence[Table], schemas: Sequence[str]) -> None:
        """Finish the capture for the plan's ``tables`` of ``schemas`` (before any lock).

        :raises UsageError: the engine's tool is missing or too old (the hint names
            ``--no-native-schema``).
        :raises DatabaseError: the engine or its tool failed.
        """
        if self.finished:
            return
        self.finished = True
        support = self.snapshot.dialect.native
        if support is None or self.options.no_native_schema:
            return
        dialect, conn = self.snapshot.dialect, self.snapshot.conn
        selected = [t.name for t in tables]
        chosen = set(selected) | {JOURNAL_TABLE}
        early = self._take_early()
        try:
            available = dialect.list_tables(conn, list(schemas))
            excluded = [dialect.where(n) for n in sorted(available) if n not in chosen]
            if early is not None and early[0] == tuple(schemas) and not excluded:
                run: Callable[[], NativeSchema] = early[1]
            else:
                run = support.capture_apart(conn, self.snapshot.url,
                                            [dialect.where(n) for n in selected], excluded,
                                            list(schemas))
            schema = run()
        except driver_errors() as exc:
            self._failed(db_error("capturing the native schema", exc))
            return
        except DatabaseError as exc:
            self._failed(exc)
            return
        # the engine as the manifest's source names it (MariaDB is not MySQL)
        self.schema = dataclasses.replace(schema, engine=engine_name(dialect))

    def _take_early(self) -> tuple[tuple[str, ...], Callable[[], NativeSchema]] | None:
        """The early capture's schemas and a function giving its result (or raising its
        error), once its thread has ended; None if there was none."""
        if self._early is None:
            return None
        schemas, thread, outcome = self._early
        thread.join()  # (then forgotten: interrupted here, close() still waits for it)
        self._early = None

        def result() -> NativeSchema:
            found = outcome[0]
            if isinstance(found, BaseException):
                raise found
            assert isinstance(found, NativeSchema)
            return found

        return schemas, result

    def _failed(self, failure: DbcrateError) -> None:
        if not self.options.tolerate:
            raise failure from None
        self.warnings.append(f"the native schema was not captured ({failure.message}): the "
                             "archive carries the portable schema only")

    def close(self) -> None:
        """Wait for a capture still running (its tool and its password file end with it)."""
        if self._early is not None:
            self._early[1].join()
            self._early = None
