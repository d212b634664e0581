"""The native schema of a dump: the source engine's own definitions of the dumped objects,
captured inside the dump's snapshot by the dialect (:mod:`dbcrate.dialects.native`) and
carried in the manifest beside the portable schema (format version 3)."""

from __future__ import annotations

import dataclasses

from dbcrate.connect import JOURNAL_TABLE
from dbcrate.dialects import engine_name
from dbcrate.dump.plan import DumpPlan
from dbcrate.dump.source import DRIVER_ERRORS, Snapshot, db_error
from dbcrate.errors import DatabaseError, DbcrateError
from dbcrate.model.native import NativeSchema
from dbcrate.options import DumpOptions


def capture_native(planned: DumpPlan, snapshot: Snapshot, options: DumpOptions,
                   warnings: list[str]) -> NativeSchema | None:
    """The native schema of the planned tables and the objects outside tables, or ``None``
    when the engine's dialect has none or ``options.no_native_schema`` is set.

    The tables the dump leaves out (``-T``, or not matched by ``-t``) are left out of it too,
    with what hangs on them; types, functions and views stay (a view over a left-out table
    fails at restore, and is reported there, as with pg_dump ``-T``).

    With ``options.tolerate`` a capture that fails (a table the role cannot read: pg_dump
    locks every table) is a warning in ``warnings``, and the archive carries the portable
    schema only.

    :raises UsageError: the engine's tool is missing or too old (the hint names
        ``--no-native-schema``).
    :raises DatabaseError: the engine or its tool failed.
    """
    support = snapshot.dialect.native
    if support is None or options.no_native_schema:
        return None
    try:
        available = snapshot.dialect.list_tables(snapshot.conn, planned.schemas)
        selected = [t.name for t in planned.tables]
        chosen = set(selected) | {JOURNAL_TABLE}
        excluded = [snapshot.dialect.where(n) for n in sorted(available) if n not in chosen]
        schema = support.capture(snapshot.conn, snapshot.url,
                                 [snapshot.dialect.where(n) for n in selected], excluded,
                                 planned.schemas)
    except DRIVER_ERRORS as exc:
        failure: DbcrateError = db_error("capturing the native schema", exc)
        if not options.tolerate:
            raise failure from None
        warnings.append(f"the native schema was not captured ({failure.message}): the "
                        "archive carries the portable schema only")
        return None
    except DatabaseError as exc:
        if not options.tolerate:
            raise
        warnings.append(f"the native schema was not captured ({exc.message}): the archive "
                        "carries the portable schema only")
        return None
    # the engine as the manifest's source names it (MariaDB is not MySQL)
    return dataclasses.replace(schema, engine=engine_name(snapshot.dialect))
