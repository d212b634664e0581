"""The dump runner: execute a :class:`~dbcrate.dump.plan.DumpPlan` into one archive.

:func:`iter_dump` checks the options, opens the source in one snapshot
(:mod:`dbcrate.dump.source`), makes the plan there (:mod:`dbcrate.dump.plan`) and runs it
(:func:`run_plan`): it opens the archive writer, runs the plan's tasks serially or on ``jobs``
connections (:mod:`dbcrate.dump.encode`), appends their chunks in task order, stores the
storages after the data, and writes the manifest last. The archive appears under its name only
when complete (temp file, fsync, rename: the container writers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import queue
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import sqlalchemy as sa

from dbcrate import __version__
from dbcrate.containers.chunkfile import ChunkFile
from dbcrate.containers.kinds import get_kind
from dbcrate.containers.tar import ArchiveWriter
from dbcrate.containers.writers import DumpWriter, open_dump_writer
from dbcrate.dialects import Dialect, driver_errors
from dbcrate.dump.encode import (
    EncodedChunk,
    Failed,
    SpoolFactory,
    close_chunks,
    encode_task,
    tolerant_task,
)
from dbcrate.dump.handover import Arrived, announce, appendable, chunk_to, is_head, take_all
from dbcrate.dump.naming import default_name
from dbcrate.dump.native import NativeCapture
from dbcrate.dump.plan import (
    DumpPlan,
    DumpTask,
    StoragePlan,
    check_file_columns,
    offline_plan,
    plan,
    plan_dump,
    storage_plan,
)
from dbcrate.dump.source import Snapshot, db_error, open_snapshot
from dbcrate.errors import DatabaseError, DbcrateError, OutputError, UsageError
from dbcrate.formats.registry import get_format
from dbcrate.model.chunks import member_name
from dbcrate.model.manifest import (
    BASE_FORMAT_VERSION,
    NATIVE_FORMAT_VERSION,
    NATIVE_ROWS_FORMAT_VERSION,
    OFFSETS_FORMAT_VERSION,
    SCHEMAS_FORMAT_VERSION,
    STORAGE_FORMAT_VERSION,
    Chunk,
    Manifest,
    TableEntry,
    needs_schemas,
)
from dbcrate.options import DumpOptions
from dbcrate.progress import Event, TableProgress, drain
from dbcrate.storages.dump import MemberSink, StorageWriter, check_output_outside
from dbcrate.storages.file_check import FileCheck
from dbcrate.storages.index import INDEX_MEMBER, FileColumn, StorageManifest
from dbcrate.stores.objects import is_object_url, object_writer

__all__ = [
    "DumpPlan", "DumpResult", "DumpTask", "EncodedChunk",
    "default_name", "dump", "encode_task", "iter_dump", "plan", "plan_dump", "run_plan",
]


class DumpObserver(Protocol):
    """Told what a dump writes while it writes it (``copy`` restores each table as soon as
    it is written). Called in the thread that runs the dump."""

    def opened(self, manifest: Manifest, writer: Any,
               estimates: dict[str, tuple[int, int]]) -> None:
        """The archive writer is open; ``manifest`` has every table's schema and no chunk;
        ``estimates``: each table's rows and bytes as the engine estimates them."""

    def written(self, entry: TableEntry) -> None:
        """Every chunk of ``entry`` is written (or the table failed: its ``status``)."""

    def part_written(self, entry: TableEntry) -> None:
        """More chunks of ``entry`` are written; it is still being read (the dump hands
        over chunks as they are complete where it writes a directory and tolerates no
        failed table)."""

    def stopping(self) -> bool:
        """Whether the dump should stop now (checked while a table is read; the reads are
        then cancelled and :class:`DumpStopped` raised)."""


class DumpStopped(DbcrateError):
    """The dump was stopped because its observer asked (the restore reading it gave up)."""


@dataclass
class DumpResult:
    """What a finished dump wrote."""

    path: str
    manifest: Manifest
    seconds: float
    warnings: list[str] = field(default_factory=list)


def dump(
    url: str,
    output: str | os.PathLike[str],
    options: DumpOptions | None = None,
    **kwargs: Any,
) -> DumpResult:
    """Dump a database into an archive; options may be given as keyword arguments.

    >>> dbcrate.dump("sqlite:///app.db", "app.crate", include=["order*"])  # doctest: +SKIP
    """
    if kwargs:
        options = DumpOptions(**{**(options.__dict__ if options else {}), **kwargs})
    return drain(iter_dump(url, output, options))


def iter_dump(
    url: str, output: str | os.PathLike[str], options: DumpOptions | None = None, *,
    observer: DumpObserver | None = None,
) -> Generator[Event, None, DumpResult]:
    """Dump the database at ``url`` (and the storages of ``options``) into the archive
    ``output`` (``"-"`` = stdout).

    Yields progress events; the generator's return value is the :class:`DumpResult`.
    The archive appears under ``output`` only when complete (temp file, fsync, rename).
    With ``options.jobs > 1`` tables and key ranges of big tables are read in parallel, every
    connection in the same snapshot. Storages are written after the data, then the manifest.
    ``observer`` is told of each table once it is written (:class:`DumpObserver`).
    """
    options = options or DumpOptions()
    get_kind(options.container)  # an unknown kind is refused before anything is opened
    get_format(options.data_format)
    _check_encryption(options)
    storage = storage_plan(options)
    check_output_outside(str(output), list(storage.specs))
    started = time.monotonic()
    created = dt.datetime.now(dt.UTC)
    if options.no_data:
        result = yield from _dump_storages_only(offline_plan(url, options, storage), output,
                                                options, created)
    else:
        with open_snapshot(url) as snapshot:
            native = NativeCapture(snapshot, options)
            try:
                native.start()  # (pg_dump runs while the plan is made)
                planned = plan_in_snapshot(snapshot, options, storage, native)
                yield Event("plan", 0, len(planned.tables),
                            f"{len(planned.tables)} tables to dump", finished=True)
                result = yield from run_plan(planned, snapshot, output, options, created,
                                             observer=observer, native=native)
            finally:
                native.close()
        yield Event("done", len(result.manifest.tables), len(result.manifest.tables),
                    "Dump complete", bytes=result.manifest.size)
    result.seconds = time.monotonic() - started
    return result


def plan_in_snapshot(snapshot: Snapshot, options: DumpOptions,
                     storage: StoragePlan | None = None,
                     native: NativeCapture | None = None) -> DumpPlan:
    """The plan, made inside ``snapshot``, whose worker connections are then opened for the
    plan's jobs; its file columns checked against its tables. The native schema (``native``,
    or one made here and kept on ``snapshot`` for :func:`run_plan`) is captured before the
    plan locks a table."""
    if native is None:
        native = snapshot.native = NativeCapture(snapshot, options)
    try:
        planned = plan_dump(snapshot.conn, snapshot.dialect, snapshot.url, options, storage,
                            before_locks=native.done)
    except driver_errors() as exc:
        raise db_error("reading the source schema", exc) from None
    snapshot.share(planned.jobs)
    check_file_columns(planned)
    return planned


def run_plan(planned: DumpPlan, snapshot: Snapshot, output: str | os.PathLike[str],
             options: DumpOptions, created: dt.datetime | None = None, *,
             observer: DumpObserver | None = None,
             native: NativeCapture | None = None) -> Generator[Event, None, DumpResult]:
    """Execute ``planned`` (made inside ``snapshot`` by :func:`plan_in_snapshot`, which
    captured the native schema, ``native``, before its locks) into the
    archive ``output``; ``options`` say how to write it (container kind, mode, overwrite,
    schema version). Ends the snapshot before the manifest is committed. The result's
    ``seconds`` is left 0: the caller measures."""
    created = created or dt.datetime.now(dt.UTC)
    if native is None and isinstance(snapshot.native, NativeCapture):
        native = snapshot.native
    if native is None:  # a plan not made by plan_in_snapshot
        native = NativeCapture(snapshot, options)
        native.done(list(planned.tables), list(planned.schemas))
    warnings: list[str] = list(native.warnings)
    fmt = get_format(planned.data_format)
    manifest = _new_manifest(planned, created, BASE_FORMAT_VERSION, options)
    manifest.native = native.schema
    manifest.data_format = fmt.name
    manifest.tables = [TableEntry(schema=t) for t in planned.tables]
    # the oldest version that holds what this archive has: older readers still read it
    version = (SCHEMAS_FORMAT_VERSION if needs_schemas(manifest)
               else NATIVE_FORMAT_VERSION if native is not None
               else STORAGE_FORMAT_VERSION if planned.storage.specs else BASE_FORMAT_VERSION)
    if is_object_url(output) and options.container == "tar":  # ranged reads: chunk offsets
        version = OFFSETS_FORMAT_VERSION
    if fmt.native_rows:  # (older readers would not know the format: "upgrade dbcrate")
        version = NATIVE_ROWS_FORMAT_VERSION
    manifest.format_version = version
    snapshot.share(planned.jobs)
    with _open_writer(output, created, version, options, fmt.name, planned) as writer:
        if observer is not None:
            observer.opened(manifest, writer, {
                t.name: (planned.estimated_rows.get(t.name) or 0,
                         planned.estimated_bytes.get(t.name) or 0) for t in planned.tables})
        yield from _write_tasks(planned, snapshot, writer, manifest, fmt, warnings, observer)
        if observer is not None:  # the tables no task reads (none has rows to read)
            for entry in manifest.tables:
                observer.written(entry)
        if planned.storage.specs:
            manifest.storage = yield from _store_storages(planned, snapshot, writer, warnings)
            if isinstance(writer, ArchiveWriter) and writer.record_offsets:
                _place_storage(manifest.storage, writer.offsets)
        snapshot.end()
        writer.commit(manifest)
    return DumpResult(str(output), manifest, 0.0, warnings)


def _new_manifest(planned: DumpPlan, created: dt.datetime, version: int,
                  options: DumpOptions) -> Manifest:
    """The manifest before any table is read (no data format: the caller sets it)."""
    return Manifest(
        source=planned.source,
        created_at=created.isoformat().replace("+00:00", "Z"),
        dbcrate_version=__version__,
        schema_version=options.schema_version,
        format_version=version,
    )


def _check_encryption(options: DumpOptions) -> None:
    """Refuse what cannot be sealed before anything is opened: no recipient, a bad one, a
    container kind other than tar (whose members other tools read as they are)."""
    if options.encryption is None:
        return
    options.encryption.check()
    if options.container != "tar":
        raise UsageError(f"the {options.container} kind cannot be encrypted: its files are "
                         "meant to be read as they are (by sqlite3, Python, a text editor)",
                         hint="dump --as tar (the default) to encrypt, or leave out -r/-R/"
                         "--passphrase")


def _sealer(options: DumpOptions) -> Any:
    """The tar writer's sealer when the dump is encrypted (a new archive key, wrapped)."""
    if options.encryption is None:
        return None
    from dbcrate.crypto.sealed import Sealer

    return Sealer(options.encryption)


def _open_writer(output: str | os.PathLike[str], created: dt.datetime, version: int,
                 options: DumpOptions, data_format: str, planned: DumpPlan) -> Any:
    """The archive writer for ``options.container``: the tar writer itself, or an adapter that
    writes the same members into another kind (docs/CONTAINERS.md)."""
    if is_object_url(output):
        if options.container == "directory":  # one object per member under a prefix
            from dbcrate.containers.prefix import PrefixWriter
            from dbcrate.containers.writers import DumpWriter

            return DumpWriter(PrefixWriter(str(output), data_format=data_format,
                                           mtime=created.timestamp(), format_version=version,
                                           overwrite=options.overwrite),
                              list(planned.tables), data_format, display=str(output))
        if options.container != "tar":
            raise UsageError(f"the {options.container} kind cannot be written to object storage",
                             hint="dump --as tar (the default) to an s3:// URL, or --as "
                             "directory to a prefix (s3://bucket/dump/)")
        return _into_object(str(output), created, version, options)
    if options.container == "tar":
        return ArchiveWriter(output, created.timestamp(), version, options.archive_mode,
                             sealer=_sealer(options))
    if str(output) == "-":
        raise UsageError(f"the {options.container} kind cannot be written to standard output",
                         hint="give a path, or dump --as tar")
    if options.storages and not options.no_storages and options.container != "directory":
        raise UsageError(f"storages (files beside the data) need the tar or directory kind, "
                         f"the {options.container} kind cannot hold them",
                         hint="dump with --as tar or --as directory, or leave out --storage")
    return open_dump_writer(output, options.container, tables=list(planned.tables),
                            data_format=data_format, mtime=created.timestamp(),
                            format_version=version, overwrite=options.overwrite,
                            durable=options.durable)


@contextlib.contextmanager
def _into_object(url: str, created: dt.datetime, version: int,
                 options: DumpOptions) -> Iterator[ArchiveWriter]:
    """The tar writer onto an upload that becomes the object ``url`` when the archive is
    complete (aborted if anything fails: nothing appears under the key)."""
    with object_writer(url) as sink, \
            ArchiveWriter(sink, created.timestamp(), version, options.archive_mode,
                          sealer=_sealer(options)) as writer:
        writer.record_offsets = True
        yield writer


# ------------------------------------------------------------------------------- the tasks
def _write_tasks(planned: DumpPlan, snapshot: Snapshot, writer: MemberSink, manifest: Manifest,
                 fmt: Any, warnings: list[str],
                 observer: DumpObserver | None = None) -> Generator[Event, None, None]:
    """Run the plan's tasks on ``planned.jobs`` connections and append their chunks: in task
    order, or, where the output keeps no order of tables (a directory: ``copy``'s spool), each
    table as soon as it is read, so that a restore reading along can start on it while a big
    table before it is still read (a table's parts always in order: its chunks are numbered on
    across them). While a task is read, its table's rows and bytes and the overall bytes are
    reported every ``TICK`` seconds; a table's last event comes once its last part is
    appended, the overall one reaches its total at the end."""
    entries = {e.name: e for e in manifest.tables}
    run_task = tolerant_task if planned.tolerate else encode_task
    progress = _dump_progress(planned)
    last = {task.table.name: number for number, task in enumerate(planned.tasks)}
    any_order = bool(getattr(writer, "tables_in_any_order", False))
    # a directory's chunks are encoded in place by the readers, not copied in by this loop
    new_spool = (cast(SpoolFactory, writer.chunk_file)
                 if isinstance(writer, DumpWriter) and writer.direct_chunks else None)
    # a reader along (copy) gets each chunk once it is written, not each table once it is
    arrived: Arrived = queue.SimpleQueue()
    hand_over = any_order and new_spool is not None and observer is not None and not planned.tolerate
    held: dict[int, list[EncodedChunk]] = {}  # handed over, not yet appended
    with ThreadPoolExecutor(max_workers=planned.jobs,
                            thread_name_prefix="dbcrate-dump") as executor:
        submitted = {n: executor.submit(snapshot.run, run_task, snapshot.dialect,
                                        planned.tasks[n], fmt, planned, snapshot.interrupts,
                                        progress, new_spool,
                                        chunk_to(arrived, n) if hand_over else None)
                     for n in reading_order(planned, any_order)}
        futures = [submitted[number] for number in range(len(planned.tasks))]
        try:
            yield progress.start()
            for number, future in enumerate(futures):
                future.add_done_callback(announce(arrived, number))
            done, appended = set[int](), set[int]()  # (read, not yet appended; appended)
            while len(appended) < len(futures):
                take_all(arrived, progress.tick, done, held)
                if observer is not None and observer.stopping():
                    raise DumpStopped("the dump was stopped: its reader gave up")
                yield from progress.events()  # a big table's, while it is read (every tick)
                _append_handed_over(planned.tasks, held, appended, entries, writer, fmt,
                                    observer)
                while ready := appendable(planned.tasks, done, appended, any_order):
                    for number in ready:
                        done.discard(number)
                        appended.add(number)
                        yield from _append_task(planned.tasks[number], futures[number],
                                                number == last[planned.tasks[number].table.name],
                                                entries, writer, manifest, fmt, warnings,
                                                observer, progress, snapshot.dialect,
                                                held.pop(number, []), publish=hand_over)
            yield progress.end()
        except BaseException as exc:
            # Ctrl-C (or a caller that gave up): the reads stop now, not at their tables' end
            if isinstance(exc, (KeyboardInterrupt, GeneratorExit, DumpStopped)):
                snapshot.interrupts.stop(futures)
            _cancel(futures)
            for chunks in held.values():
                close_chunks(chunks)
            raise


def reading_order(planned: DumpPlan, any_order: bool) -> list[int]:
    """The order the tasks (their numbers) are read in: the plan's, or, where the output keeps
    no order of tables and several jobs read, the biggest tables first
    (:meth:`~dbcrate.dump.plan.DumpPlan.expected_bytes`; a table's parts in key order). A
    ``copy`` then starts loading its longest table first, as a restore on several sessions
    schedules it (on one, it loads in the plan's order), instead of when the tables before it
    in the plan are read; and the jobs end closer together."""
    numbers = list(range(len(planned.tasks)))
    if not any_order or planned.jobs < 2:
        return numbers
    return sorted(numbers,  # (stable: a table's parts stay in order)
                  key=lambda number: -planned.expected_bytes(planned.tasks[number].table.name))


def _append_handed_over(tasks: tuple[DumpTask, ...], held: dict[int, list[EncodedChunk]],
                        appended: set[int], entries: dict[str, TableEntry], writer: MemberSink,
                        fmt: Any, observer: DumpObserver | None) -> None:
    """Append the chunks handed over by tasks still being read that are their table's head
    (the others wait in ``held``), and tell the reader along."""
    for number in [n for n in held if is_head(tasks, n, appended)]:
        entry = entries[tasks[number].table.name]
        _append_chunks(writer, entry, tasks[number], held.pop(number), fmt.extension)
        if observer is not None:
            observer.part_written(entry)


def _append_task(task: DumpTask, future: Future[Any], last_part: bool,
                 entries: dict[str, TableEntry], writer: MemberSink, manifest: Manifest,
                 fmt: Any, warnings: list[str], observer: DumpObserver | None,
                 progress: TableProgress, dialect: Dialect,
                 held: list[EncodedChunk], *, publish: bool = False) -> Iterator[Event]:
    """Append one read task's chunks to its table (``held``: those it handed over that are
    not appended yet, then the rest), or record its failure under ``--tolerate``; the
    table's last events once its ``last_part`` is appended. ``publish``: the reader along
    takes a table's chunks as they are appended, an earlier part's too (else it would wait
    for the next part's first chunk: one held by a lock waits with it)."""
    entry = entries[task.table.name]
    try:
        encoded = _result_of(task, future, dialect)
    except BaseException:
        close_chunks(held)
        raise
    if isinstance(encoded, Failed):
        close_chunks(held)
        _record_failure(manifest, entry, encoded, warnings)
        if observer is not None:
            observer.written(entry)
        yield from progress.finish(entry.name, f"Failed table {entry.name}")
        return
    _append_chunks(writer, entry, task, held + encoded, fmt.extension)
    if last_part:
        if observer is not None:
            observer.written(entry)
        yield from progress.finish(entry.name)
    elif publish and observer is not None:
        observer.part_written(entry)


def _dump_progress(planned: DumpPlan) -> TableProgress:
    """The counters of the tables with rows to read. A table weighs in the overall total what
    the engine estimates its size to be (else its estimated rows times 100 bytes, else 64 KiB):
    an estimate, fixed before the first row is read (docs/CLI.md, "Progress events")."""
    tables = {name: (planned.estimated_rows.get(name), planned.expected_bytes(name))
              for name in dict.fromkeys(task.table.name for task in planned.tasks)}
    return TableProgress("Dump table", "Dump (size estimated)", tables)


def _result_of(task: DumpTask, future: Future[Any],
               dialect: Dialect) -> list[EncodedChunk] | Failed:
    """The task's chunks, once read; a database failure names the table."""
    try:
        result: list[EncodedChunk] | Failed = future.result()
    except driver_errors() as exc:
        failure = db_error(f"reading table {task.table.name!r}", exc)
        failure.hint = dialect.failure_hint(exc)
        raise failure from None
    except DatabaseError as exc:
        raise DatabaseError(f"the database failed while reading table {task.table.name!r}: "
                            f"{exc.message}", hint=exc.hint) from None
    return result


def _record_failure(manifest: Manifest, entry: TableEntry, failed: Failed,
                    warnings: list[str]) -> None:
    """``--tolerate``: the table is recorded as failed and the archive as incomplete."""
    entry.status, entry.error = "failed", entry.error or failed.message
    manifest.complete = False
    warnings.append(f"table {entry.name!r} failed and is recorded as failed: {failed.message}")


def _append_chunks(writer: MemberSink, entry: TableEntry, task: DumpTask,
                   encoded: list[EncodedChunk], extension: str) -> None:
    """Append a task's chunks as members of the table, closing their spools."""
    for chunk in encoded:
        member = member_name(task.number, len(entry.chunks), extension)
        with chunk.spool:
            if isinstance(chunk.spool, ChunkFile):  # encoded in place: only renamed
                assert isinstance(writer, DumpWriter)
                sha = writer.adopt_chunk(member, chunk.spool)
            else:
                sha = writer.add_file(member, chunk.spool, chunk.size)
        offset = writer.offsets.get(member) if isinstance(writer, ArchiveWriter) else None
        entry.chunks.append(Chunk(member, chunk.rows, chunk.size, sha, offset))


def _cancel(futures: list[Future[Any]]) -> None:
    """The dump failed: cancel the tasks not begun; close the chunks of those done."""
    for f in futures:
        f.cancel()
    for f in futures:
        if f.done() and not f.cancelled() and f.exception() is None:
            result = f.result()
            close_chunks(result if isinstance(result, list) else [])


# ---------------------------------------------------------------------------- the storages
def _store_storages(planned: DumpPlan, snapshot: Snapshot, writer: MemberSink,
                    warnings: list[str]) -> Generator[Event, None, StorageManifest]:
    """Store the plan's storages (after the data) and, with file columns, check the columns'
    values against the stored files (inside the snapshot); the manifest's storage section."""
    columns = list(planned.storage.file_columns)
    check = FileCheck() if columns else None
    try:
        section = yield from _write_storages(writer, planned, warnings, check, columns)
        if check is not None:
            for column in columns:
                check.add_references(column, _column_values(snapshot.conn, snapshot.dialect,
                                                            column))
            section.file_columns = columns
            section.file_check = check.result()
    except driver_errors() as exc:
        raise db_error("reading the file columns", exc) from None
    finally:
        if check is not None:
            check.close()
    return section


def _place_storage(section: StorageManifest, offsets: dict[str, int]) -> None:
    """Record where the storage members start in the tar (ranged reads, format 5)."""
    section.index_offset = offsets.get(INDEX_MEMBER)
    section.packs = [dataclasses.replace(p, offset=offsets.get(p.member)) for p in section.packs]


def _column_values(conn: sa.Connection, dialect: Dialect, column: FileColumn) -> Iterator[Any]:
    """Non-empty values of one column, streamed (inside the dump's snapshot)."""
    sql = (f"SELECT {dialect.quote(column.column)} FROM {dialect.table_sql(column.table)} "
           f"WHERE {dialect.quote(column.column)} IS NOT NULL")
    # execution options on the statement, not the connection: Connection.execution_options()
    # changes the connection itself, and its later statements would stream too
    result = conn.exec_driver_sql(sql, execution_options={"stream_results": True,
                                                          "yield_per": 10_000})
    for (value,) in result:
        yield value


def _write_storages(writer: MemberSink, planned: DumpPlan, warnings: list[str],
                    check: FileCheck | None,
                    file_columns: list[FileColumn]) -> Generator[Event, None, StorageManifest]:
    """Store every storage of the plan; the manifest section describing them. The stored
    paths of the storages that ``file_columns`` name go into ``check``."""
    storages = StorageWriter(writer, level=planned.compression_level)
    checked = {c.root for c in file_columns}
    exclude = list(planned.storage_exclude)

    def on_file(root: str, path: str) -> None:
        if check is not None and root in checked:
            check.add_file(root, path)

    try:
        for name, files, size in storages.add_storages(list(planned.storage.specs), exclude,
                                                       on_file):
            yield Event("storage", files, None, f"Dump storage {name}", bytes=size)
        section = storages.finish(exclude)
    except OSError as exc:  # the temp spools (disk full); a source file is handled in _add_file
        storages.close()
        raise OutputError(f"cannot store the storages: {exc.strerror or exc}",
                          hint="free space in the temporary directory (TMPDIR) and the output's"
                          ) from None
    except BaseException:
        storages.close()
        raise
    warnings.extend(storages.warnings)
    return section


def _dump_storages_only(planned: DumpPlan, output: str | os.PathLike[str],
                        options: DumpOptions,
                        created: dt.datetime) -> Generator[Event, None, DumpResult]:
    """``--no-data``: the storages alone; the database is not opened."""
    manifest = _new_manifest(planned, created, STORAGE_FORMAT_VERSION, options)
    warnings: list[str] = []
    with _open_writer(output, created, STORAGE_FORMAT_VERSION, options, planned.data_format,
                      planned) as writer:
        manifest.storage = yield from _write_storages(writer, planned, warnings, None, [])
        writer.commit(manifest)
    yield Event("done", 0, 0, "Dump complete", bytes=manifest.storage.bytes)
    return DumpResult(str(output), manifest, 0.0, warnings)
