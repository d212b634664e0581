"""The preflight: everything checked before the first write. Every value against what the
target will hold (lengths, precisions, casts into existing columns, 4-byte UTF-8 into utf8mb3),
or every member's checksum; the ``--on-conflict`` statements probed on an empty stage; and for a
dry run into existing tables, how many archive rows collide with the target's keys."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from dbcrate.containers.archive import Archive
from dbcrate.dialects import Dialect
from dbcrate.errors import Incompatibility, NotPortable, driver_message
from dbcrate.model.manifest import Chunk
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
    yield from _check_sources(arch, plan, dialect, plan.sources, problems)
    refused = problems.problems()
    if refused:
        raise NotPortable(plan.target, refused)


def _check_sources(arch: Archive, plan: RestorePlan, dialect: Dialect,
                   sources: Sequence[Source], problems: ProblemCollector) -> Iterator[Event]:
    """The preflight's checks of ``sources``, an event per chunk; what they find goes into
    ``problems``."""
    settings = plan.settings
    # an archive read while it is dumped (copy): each table checked as soon as it is written,
    # and nothing is written into the target before the last one is checked
    total = None if arch.pending is not None else sum(c.size for s in sources
                                                      for c in s.entry.chunks)
    if not settings.check_values and settings.verify and arch.pending is None:
        done = 0
        for source, chunk in verified_chunks(arch, sources, settings.jobs):
            done += chunk.size
            yield Event("verify", done, total, f"Check {source.name}", source.name, bytes=done)
        return
    done = 0
    for source in arch.in_arrival_order(sources, lambda s: s.entry.name):
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
                _check_chunk(arch, source, chunk)
            done += chunk.size
            yield Event("verify", done, total, f"Check {source.name}", source.name, bytes=done)


def verified_chunks(arch: Archive, sources: Sequence[Source],
                    workers: int) -> Iterator[tuple[Source, Chunk]]:
    """Each chunk of ``sources``, in order, once its checksum and its structure are checked
    (:meth:`~dbcrate.containers.base.Archive.check_chunk`, ``check_chunk_structure``), up to
    ``workers`` chunks at once: the hashing and the reads release the GIL, so a big archive is
    checked on several cores (the loads wait for this). Raises what the first failing chunk
    in order raises, as checking one at a time would; checks not yet started are cancelled,
    those running are waited for (one chunk each)."""
    def check(source: Source, chunk: Chunk) -> None:
        _check_chunk(arch, source, chunk)

    items = [(source, chunk) for source in sources for chunk in source.entry.chunks]
    if min(workers, len(items)) <= 1:
        for source, chunk in items:
            check(source, chunk)
            yield source, chunk
        return
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="dbcrate-verify")
    try:
        futures = [pool.submit(check, source, chunk) for source, chunk in items]
        for item, future in zip(items, futures):
            future.result()
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_chunk(arch: Archive, source: Source, chunk: Chunk) -> None:
    """One chunk's checksum, then its structure (raises :class:`ArchiveCorrupt`)."""
    arch.check_chunk(chunk)
    arch.check_chunk_structure(source.entry, chunk)


#: what a refusal made after the loads leaves: the file the restore made is removed
REMOVED = "the database file this restore made was removed: nothing is left"


class ChecksWithLoads:
    """The preflight's value checks made on the rows as the loads read them (a plan with
    ``checks_with_loads``: into a database file the restore made), so that no table waits for
    the others' checks and no chunk is decoded twice.

    :meth:`passing` checks each batch on its way to the target (and each chunk's checksum
    before it is decoded, with ``verify``); a batch with a value the target cannot hold fails
    its table's load (rolled back: no table is committed with a refused value) and sets
    :attr:`refused`. :meth:`finish`, after the loads, checks every table no load read to the
    end (a refused one, a failed one, one not loaded) as the preflight does, and raises
    :class:`NotPortable` with every problem found, as the preflight would have. Whenever
    :attr:`refused` is set, whatever stopped the restore, the caller removes the file."""

    def __init__(self, arch: Archive, plan: RestorePlan, dialect: Dialect) -> None:
        self._arch, self._plan, self._dialect = arch, plan, dialect
        self._lock = threading.Lock()  # (loads on several sessions at once)
        self._checked: set[str] = set()
        #: a value was refused, or a check failed: the file must not be kept
        self.refused = False

    @property
    def verify(self) -> bool:
        """Whether the loads check each chunk's checksum as they read it."""
        return self._plan.settings.verify

    def passing(self, source: Source,
                rows: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``rows`` (the whole table's batches, in order), each checked before it is passed on."""
        limits = _limits(self._plan, source)
        base = 0
        for batch in rows:
            found = ProblemCollector()
            _check_batch(self._plan, self._dialect, source, limits, batch, base, found)
            refused = found.problems()
            if refused:
                self.refused = True
                raise NotPortable(self._plan.target, refused, outcome=REMOVED)
            base += batch.num_rows
            yield batch
        with self._lock:
            self._checked.add(source.name)

    def finish(self) -> Iterator[Event]:
        """The checks of the tables no load read to the end, an event per chunk; raises what
        the preflight would have raised."""
        unread = [s for s in self._plan.sources if s.name not in self._checked]
        problems = ProblemCollector()
        try:
            yield from _check_sources(self._arch, self._plan, self._dialect, unread, problems)
        except Exception:  # a corrupt member, a source that could not be read (copy)
            self.refused = True
            raise
        refused = problems.problems()
        if refused:
            self.refused = True
            raise NotPortable(self._plan.target, refused, outcome=REMOVED)


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
