"""The preflight: everything checked before the first write. Every value against what the
target will hold (lengths, precisions, casts into existing columns, 4-byte UTF-8 into utf8mb3),
or every member's checksum; the ``--on-conflict`` statements probed on an empty stage; and for a
dry run into existing tables, how many archive rows collide with the target's keys."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from dbcrate.containers.archive import Archive
from dbcrate.dialects import Dialect
from dbcrate.errors import Incompatibility, NotPortable, driver_message
from dbcrate.model.schema import Table
from dbcrate.progress import Event
from dbcrate.restore.conflicts import probe_policy
from dbcrate.restore.mapping import TableMap, lossy_rows
from dbcrate.restore.plan import RestorePlan, Source
from dbcrate.restore.portability import ProblemCollector, batch_problems, target_lengths
from dbcrate.restore.report import TableResult
from dbcrate.restore.session import begin, rollback
from dbcrate.restore.sources import batches


def preflight(arch: Archive, plan: RestorePlan, dialect: Dialect) -> Iterator[Event]:
    """Values and integrity, before anything is written: every value against the target
    (``check_values``), else every member's checksum and structure (``verify``); all the
    values a table would change or refuse are reported at once (:class:`NotPortable`)."""
    settings = plan.settings
    if settings.schema_only:
        return
    if arch.pending is not None and not (settings.check_values or settings.verify):
        return  # nothing to check: the tables load as the dump writes them
    problems = ProblemCollector()
    # an archive read while it is dumped (copy): each table checked as soon as it is written,
    # and nothing is written into the target before the last one is checked
    total = None if arch.pending is not None else sum(c.size for s in plan.sources
                                                      for c in s.entry.chunks)
    done = 0
    for source in arch.in_arrival_order(plan.sources, lambda s: s.entry.name):
        # (the checks need the target's types: a native-schema recreate checks no values)
        limits = _limits(plan, source) if settings.check_values else None
        base = 0
        for chunk in source.entry.chunks:
            if settings.check_values:
                assert limits is not None
                for batch in batches(arch, source, chunk, verify=settings.verify):
                    _check_batch(plan, dialect, source, limits, batch, base, problems)
                    base += batch.num_rows
            elif settings.verify:
                arch.check_chunk(chunk)
                arch.check_chunk_structure(source.entry, chunk)
            done += chunk.size
            yield Event("verify", done, total, f"Check {source.name}", source.name, bytes=done)
    refused = problems.problems()
    if refused:
        raise NotPortable(plan.target, refused)


class ChecksAlongside:
    """The preflight's checks in a thread of their own while the rows load (a plan with
    ``checks_with_loads``: into a database file the restore made, removed whole if a value is
    refused). :meth:`finish` waits for them and raises what they found; :meth:`abandon` stops
    them after the chunk they are checking (the restore failed otherwise)."""

    def __init__(self, arch: Archive, plan: RestorePlan, dialect: Dialect) -> None:
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(arch, plan, dialect),
                                        name="dbcrate-checks", daemon=True)
        self._thread.start()

    def _run(self, arch: Archive, plan: RestorePlan, dialect: Dialect) -> None:
        try:
            for _chunk_checked in preflight(arch, plan, dialect):
                if self._stop.is_set():
                    return
        except BaseException as exc:  # (raised again by finish, in the caller's thread)
            self._error = exc

    def finish(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        self._stop.set()


@dataclass(frozen=True)
class _Limits:
    """What a table's values are checked against: the schema they load as, and the target's
    text lengths and decimal precisions."""

    schema: Table
    lengths: dict[str, int]
    decimals: dict[str, tuple[int | None, int | None]]


def _limits(plan: RestorePlan, source: Source) -> _Limits:
    if plan.mode == "into-existing":
        load_schema = plan.maps[source.name].load_schema()
        return _Limits(load_schema,
                       {c.name: c.type.length for c in load_schema.columns if c.type.length is not None},
                       {c.name: (c.type.precision, c.type.scale) for c in load_schema.columns
                        if c.type.kind == "decimal"})
    assert plan.ddl is not None
    types = plan.ddl.types[source.name]
    return _Limits(source.schema, target_lengths(source.schema, types),
                   _decimal_targets(source.schema, types))


def _check_batch(plan: RestorePlan, dialect: Dialect, source: Source, limits: _Limits,
                 batch: pa.RecordBatch, base: int, problems: ProblemCollector) -> None:
    if plan.mode == "into-existing":
        tmap = plan.maps[source.name]
        if _cast_problems(tmap, batch, base, problems):
            return  # reported; the other checks need the cast values
        batch = tmap.convert(batch)
    found = batch_problems(limits.schema, batch, dialect, limits.lengths, limits.decimals)
    found += _four_byte_problems(batch, plan.narrow_text.get(source.name, frozenset()))
    problems.add_batch(limits.schema, batch, base, found)


def report_conflicts(arch: Archive, plan: RestorePlan, dialect: Dialect,
                     results: dict[str, TableResult]) -> None:
    """Dry run: how many archive rows have a key the target already holds (the archive keys go
    into a session-private temporary table; the target's tables are only read)."""
    q = dialect.quote
    for source in plan.sources:
        tmap = plan.maps[source.name]
        load_schema = tmap.load_schema()
        pk = tmap.target.primary_key
        if not pk or not set(pk) <= set(load_schema.column_names) or not source.entry.rows:
            continue
        stage = Table(name=f"_dbcrate_keys_{os.urandom(4).hex()}",
                      columns=[load_schema.column(c) for c in pk])
        cols = ", ".join(q(c) for c in pk)
        match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in pk)
        with dialect.engine.connect() as conn:
            dialect.prepare_restore_session(conn)
            begin(conn, dialect)
            try:
                conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {q(stage.name)} AS SELECT {cols} "
                                     f"FROM {q(tmap.target.name)} WHERE 1 = 0")
                keys = (tmap.convert(b).select(pk) for chunk in source.entry.chunks
                           for b in batches(arch, source, chunk, verify=False))
                dialect.load(conn, stage, keys, temporary=True)
                count = conn.exec_driver_sql(
                    f"SELECT count(*) FROM {q(tmap.target.name)} t JOIN {q(stage.name)} s ON {match}"
                ).scalar()
            finally:
                rollback(conn)
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(stage.name)}")
        if count:
            outcome = {"error": "the table would fail", "skip": "they would be skipped",
                       "update": "they would overwrite the target's rows",
                       "check": "they would be compared with the target's"}[plan.settings.on_conflict]
            results[source.name].plan.append(
                f"conflicts: {count} archive rows have a key the target already holds ({outcome})")


def probe_policies(plan: RestorePlan, dialect: Dialect) -> None:
    """Before anything is written: run each table's ``--on-conflict`` statements on an empty
    stage, in a transaction rolled back, so that a statement the target refuses is found now
    and not after other tables were loaded."""
    problems = []
    for source in plan.sources:
        tmap = plan.maps[source.name]
        with dialect.engine.connect() as conn:
            dialect.prepare_restore_session(conn)
            begin(conn, dialect)
            try:
                probe_policy(conn, dialect, tmap.load_schema(), plan.settings.on_conflict)
            except sa.exc.DBAPIError as exc:
                problems.append(Incompatibility(
                    source.name, None, f"on_conflict={plan.settings.on_conflict!r} cannot run "
                    f"on the target table: {driver_message(exc)}"))
            finally:
                rollback(conn)
    if problems:
        raise NotPortable(plan.target, problems,
                          hint="choose another on_conflict policy for these tables, or leave "
                          "them out (exclude=[...])")


def _four_byte_problems(batch: pa.RecordBatch, columns: frozenset[str]) -> list[tuple[str, str, Any]]:
    """Rows whose text needs 4 UTF-8 bytes per character where the column holds at most 3."""
    found = []
    for name in columns & set(batch.schema.names):
        arr = batch.column(batch.schema.get_field_index(name))
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            mask = pc.fill_null(pc.match_substring_regex(arr, "[\U00010000-\U0010FFFF]"), False)
            if pc.any(mask).as_py():
                found.append((name, "a 4-byte UTF-8 character (e.g. an emoji) into a utf8mb3 "
                              "column", mask.to_numpy(zero_copy_only=False)))
    return found


def _cast_problems(tmap: TableMap, batch: pa.RecordBatch, base: int,
                   problems: ProblemCollector) -> bool:
    """Record values that a cast would change; True if there were any."""
    names = batch.schema.names
    found = False
    for cm in tmap.loaded:
        if cm.cast != "checked" or cm.source is None:
            continue
        mask = lossy_rows(batch.column(names.index(cm.source.name)), cm.source.type, cm.target.type)
        if mask.any():
            found = True
            problems.add_batch(tmap.source, batch, base, [
                (cm.target.name, f"value would change when cast from {cm.source.type.describe()} "
                 f"to {cm.target.type.describe()}", mask)])
    return found


def _decimal_targets(table: Table, types: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    out: dict[str, tuple[int | None, int | None]] = {}
    for col in table.columns:
        if col.type.kind == "decimal":
            t = types.get(col.name)
            out[col.name] = (getattr(t, "precision", None), getattr(t, "scale", None))
    return out
