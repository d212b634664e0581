"""The native schema of a dump: the source engine's own definitions of the dumped objects,
captured inside the dump's snapshot by the dialect (:mod:`dbcrate.dialects.native`) and
carried in the manifest beside the portable schema (format version 3)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from dbcrate.dialects import engine_name
from dbcrate.dump.plan import DumpPlan
from dbcrate.dump.source import DRIVER_ERRORS, Snapshot, db_error
from dbcrate.errors import DatabaseError, DbcrateError
from dbcrate.model.native import NativeSchema
from dbcrate.options import DumpOptions
from dbcrate.restore.journal import JOURNAL_TABLE


def capture_native(planned: DumpPlan, snapshot: Snapshot, options: DumpOptions,
                   warnings: list[str]) -> NativeCapture | None:
    """Start capturing the native schema of the planned tables and the objects outside tables,
    or ``None`` when the engine's dialect has none or ``options.no_native_schema`` is set.
    What needs the snapshot's connection runs now; the engine's tool (pg_dump) runs in a thread
    of its own while the dump reads the rows: :meth:`NativeCapture.result` waits for it, and
    must be called while the snapshot is open.

    The tables the dump leaves out (``-T``, or not matched by ``-t``) are left out of it too,
    with what hangs on them; types, functions and views stay (a view over a left-out table
    fails at restore, and is reported there, as with pg_dump ``-T``).

    With ``options.tolerate`` a capture that fails (a table the role cannot read: pg_dump
    locks every table) is a warning in ``warnings``, and the archive carries the portable
    schema only.

    :raises UsageError: the engine's tool is missing or too old (the hint names
        ``--no-native-schema``); raised now, before any row is read.
    :raises DatabaseError: the engine or its tool failed (now, or from ``result``).
    """
    support = snapshot.dialect.native
    if support is None or options.no_native_schema:
        return None
    capture = NativeCapture(snapshot, options, warnings)
    try:
        available = snapshot.dialect.list_tables(snapshot.conn, planned.schemas)
        selected = [t.name for t in planned.tables]
        chosen = set(selected) | {JOURNAL_TABLE}
        excluded = [snapshot.dialect.where(n) for n in sorted(available) if n not in chosen]
        finish = support.start_capture(snapshot.conn, snapshot.url,
                                       [snapshot.dialect.where(n) for n in selected], excluded,
                                       planned.schemas)
    except DRIVER_ERRORS as exc:
        if not options.tolerate:  # (refused before any row is read)
            raise db_error("capturing the native schema", exc) from None
        capture.failed(exc)
        return capture
    except DatabaseError as exc:
        if not options.tolerate:
            raise
        capture.failed(exc)
        return capture
    capture.start(finish)
    return capture


class NativeCapture:
    """A native schema being captured in a thread of its own (see :func:`capture_native`)."""

    def __init__(self, snapshot: Snapshot, options: DumpOptions, warnings: list[str]) -> None:
        self._engine = engine_name(snapshot.dialect)
        self._tolerate = options.tolerate
        self._warnings = warnings
        self._schema: NativeSchema | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, finish: Callable[[], NativeSchema]) -> None:
        def run() -> None:
            try:
                self._schema = finish()
            except BaseException as exc:  # (raised by result, in the dump's thread)
                self._error = exc

        self._thread = threading.Thread(target=run, name="dbcrate-native", daemon=True)
        self._thread.start()

    def failed(self, exc: BaseException) -> None:
        self._error = exc

    def result(self) -> NativeSchema | None:
        """The captured schema (None: it failed under ``tolerate``, with a warning); waits for
        the capture; raises its error otherwise (once: then None)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            self._warn_or_raise(error)
            return None
        if self._schema is None:
            return None
        # the engine as the manifest's source names it (MariaDB is not MySQL)
        return dataclasses.replace(self._schema, engine=self._engine)

    def _warn_or_raise(self, exc: BaseException) -> None:
        tolerable = isinstance(exc, (DRIVER_ERRORS, DatabaseError))
        failure = db_error("capturing the native schema", exc) \
            if isinstance(exc, DRIVER_ERRORS) else exc
        if not (self._tolerate and tolerable and isinstance(failure, DbcrateError)):
            raise failure from None
        self._warnings.append(f"the native schema was not captured ({failure.message}): the "
                              "archive carries the portable schema only")
