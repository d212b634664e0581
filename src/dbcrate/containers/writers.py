"""Writing archives of any container kind through the one writing interface
(:class:`~dbcrate.containers.base.ContainerWriter`, which every kind's writer implements).

:func:`write_table` cuts a stream of batches into chunks of at most N rows; the
:class:`ArchiveBuilder` (``dbcrate.open_archive(path, "w", kind=...)``) writes tables given as
Arrow data into any kind; :class:`DumpWriter` (:func:`open_dump_writer`) lets the dump loop,
which appends encoded members, write into any kind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import pyarrow as pa

from dbcrate import __version__
from dbcrate.atomic import AutoName, check_parent, publish_noreplace, temp_name, write_failed
from dbcrate.containers.base import (
    ArchiveTarget,
    ContainerWriter,
    arrow_schema,
    file_object_name,
    is_file_object,
)
from dbcrate.containers.chunkfile import ChunkFile
from dbcrate.containers.directory import DirectoryWriter
from dbcrate.containers.kinds import get_kind
from dbcrate.errors import OutputError, UsageError
from dbcrate.formats.registry import get_format
from dbcrate.model.chunks import member_name, parse_member_name
from dbcrate.model.manifest import Chunk, Manifest, Source, TableEntry
from dbcrate.model.schema import Table


class _RowStream:
    """Rows of a stream of batches, taken N at a time as slices (no copy, no concatenation)."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._batches = iter(batches)
        self._current: pa.RecordBatch | None = None
        self._pos = 0

    def has_more(self) -> bool:
        while self._current is None or self._pos >= self._current.num_rows:
            nxt = next(self._batches, None)
            if nxt is None:
                return False
            self._current, self._pos = nxt, 0
        return True

    def take(self, rows: int) -> Iterator[pa.RecordBatch]:
        left = rows
        while left > 0 and self.has_more():
            assert self._current is not None
            count = min(left, self._current.num_rows - self._pos)
            yield self._current.slice(self._pos, count)
            self._pos += count
            left -= count


def write_table(writer: ContainerWriter, number: int, entry: TableEntry,
                batches: Iterable[pa.RecordBatch], max_rows: int) -> list[Chunk]:
    """Write a table's rows as chunks of at most ``max_rows`` rows (streaming: one batch at a
    time is held); returns the chunks. ``begin_table`` must have been called."""
    if max_rows < 1:
        raise UsageError(f"the most rows per chunk must be at least 1 (got {max_rows})")
    stream = _RowStream(batches)
    chunks: list[Chunk] = []
    while stream.has_more():
        chunks.append(writer.write_chunk(number, len(chunks), entry, stream.take(max_rows)))
    return chunks


class DumpWriter:
    """The interface of :class:`dbcrate.containers.tar.ArchiveWriter` (``add_file``, ``commit``,
    ``abort``, a context manager) onto a writer of any kind, so that the dump loop, which
    encodes each chunk into a spool file in its data format and appends it, writes into any
    kind directly.

    Member-based kinds take the members as they are. For the row kinds each data member is
    decoded (with the dump's data format and the table's schema) into the writer's chunk;
    :meth:`commit` then rewrites the manifest's chunk records and data format in place, so the
    caller's manifest describes what was written. Raw non-data members (storages) are refused
    by the row kinds. (The dump hands the row kinds encoded members too, Arrow IPC at zstd
    level 1, quick to write and decode: the encoded spool is what bounds the memory of the
    parallel readers, docs/PERFORMANCE.md.)

    An ``OSError`` while writing (a full disk, a quota) becomes the :class:`OutputError` every
    kind gives (exit 12), whichever kind raised it.

    :param tables: the dumped tables, in manifest order (member ``data/tTTTT/...`` belongs to
        ``tables[TTTT - 1]``).
    :param data_format: the data format the dump encodes members in.
    :param display: how messages name the output.
    :param staged: with ``auto``: the private directory holding the writer's output, which
        :meth:`commit` moves to the first free name of ``auto`` (see :func:`open_dump_writer`).
    """

    def __init__(self, writer: ContainerWriter, tables: list[Table], data_format: str, *,
                 display: str = "the output", staged: Path | None = None,
                 auto: AutoName | None = None) -> None:
        self.writer = writer
        self.format = get_format(data_format)
        self.display = display
        self._staged = staged
        self._auto = auto
        self._entries = [TableEntry(schema=t) for t in tables]
        self._begun = 0
        self._chunks: dict[str, Chunk] = {}

    @property
    def staging(self) -> Path | None:
        """Where a directory kind's members are being written (its private temp directory),
        else None."""
        staging = getattr(self.writer, "staging", None)
        return staging if isinstance(staging, Path) else None

    def _begin_through(self, number: int) -> None:
        while self._begun < number:
            self._begun += 1
            self.writer.begin_table(self._begun, self._entries[self._begun - 1])

    @property
    def tables_in_any_order(self) -> bool:
        """Whether the tables' data members may come in any order (a member-based kind that
        keeps none); the row kinds write the tables in manifest order."""
        return self.writer.member_based and self.writer.tables_in_any_order

    @property
    def direct_chunks(self) -> bool:
        """Whether data members are encoded straight into the output (:meth:`chunk_file`,
        :meth:`adopt_chunk`): a directory kind's writer; the others take them through
        :meth:`add_file`."""
        return isinstance(self.writer, DirectoryWriter)

    def chunk_file(self) -> ChunkFile:
        """A new file inside the output for a data member to be encoded into (only where
        :attr:`direct_chunks`)."""
        assert isinstance(self.writer, DirectoryWriter)
        with self._output_errors():
            return self.writer.chunk_file()

    def adopt_chunk(self, name: str, chunk: ChunkFile) -> str:
        """Make the finished ``chunk`` the data member ``name``; returns its SHA-256."""
        assert isinstance(self.writer, DirectoryWriter)
        with self._output_errors():
            return self.writer.adopt_chunk(name, chunk)

    def add_file(self, name: str, source: IO[bytes], size: int) -> str:
        """Add a member (a data member must come in table order, unless
        :attr:`tables_in_any_order`); returns the SHA-256 that
        the caller records (the row kinds' own chunk hash: see :meth:`commit`)."""
        with self._output_errors():
            return self._add_file(name, source, size)

    def _add_file(self, name: str, source: IO[bytes], size: int) -> str:
        if self.writer.member_based:
            return self.writer.add_file(name, source, size)
        parsed = parse_member_name(name)
        if parsed is None:
            return self.writer.add_file(name, source, size)  # refused with a clear message
        schema = arrow_schema(self._entry(parsed.number))
        chunk = self._write_batches(parsed.number, parsed.index, self.format.read(source, schema))
        return chunk.sha256

    @contextlib.contextmanager
    def _output_errors(self) -> Iterator[None]:
        """An ``OSError`` while writing (a full disk) becomes the kind-independent
        :class:`OutputError`; an ``OutputError`` names the output as the user gave it."""
        try:
            yield
        except OSError as exc:
            raise write_failed(self.display, exc) from None
        except OutputError as exc:
            raise self._restated(exc) from None

    def _entry(self, number: int) -> TableEntry:
        if not self._begun <= number <= len(self._entries):
            raise ValueError(f"table {number} is out of table order")
        return self._entries[number - 1]

    def _write_batches(self, number: int, index: int,
                       batches: Iterable[pa.RecordBatch]) -> Chunk:
        entry = self._entry(number)
        self._begin_through(number)
        chunk = self.writer.write_chunk(number, index, entry, batches)
        # keyed by the member's name: commit() points the manifest's records at the chunks
        # as written
        self._chunks[member_name(number, index, self.format.extension)] = chunk
        return chunk

    def commit(self, manifest: Manifest) -> None:
        """Begin the tables without rows, point the manifest at the chunks as written (in
        place), and commit the writer."""
        if not self.writer.member_based:
            self._begin_through(len(manifest.tables))
            for entry in manifest.tables:
                entry.chunks = [self._chunks[c.member] for c in entry.chunks]
            manifest.data_format = self.writer.data_format
        try:
            self.writer.commit(manifest)
            if self._staged is not None and self._auto is not None:
                publish_noreplace(self._staged / self._auto.first.name, self._auto)
                self._remove_staging()
        except OSError as exc:
            raise write_failed(self.display, exc, "finish") from None
        except OutputError as exc:
            raise self._restated(exc) from None

    def _restated(self, exc: OutputError) -> OutputError:
        if self._staged is None or self._auto is None:
            return exc
        return restated(exc, self._staged / self._auto.first.name, self.display)

    def _remove_staging(self) -> None:
        """Remove the staging directory and whatever is still in it (idempotent)."""
        if self._staged is not None:
            shutil.rmtree(self._staged, ignore_errors=True)
            self._staged = None

    def abort(self) -> None:
        try:
            self.writer.abort()
        finally:
            self._remove_staging()

    def __enter__(self) -> DumpWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


def restated(exc: OutputError, staged: Path, display: str) -> OutputError:
    """``exc`` naming the output as the user knows it (``display``), not its staging path."""
    return OutputError(exc.message.replace(str(staged), display), hint=exc.hint)


def open_dump_writer(output: str | os.PathLike[str], kind: str, *, tables: list[Table],
                     data_format: str, mtime: float, format_version: int = 1,
                     overwrite: bool = False, durable: bool = True) -> DumpWriter:
    """A :class:`DumpWriter` for a dump into ``kind`` (for the tar kind the dump keeps its
    own :class:`~dbcrate.containers.tar.ArchiveWriter`).

    ``output`` may be an :class:`~dbcrate.atomic.AutoName` (a name dbcrate chose, which must
    replace nothing): the kind's writer then writes, as usual, into a private staging directory
    beside it (``.<name>.dbcrate-auto-XXXXXXXXXXXX``), and the finished output is moved from
    there to the first free name (:func:`~dbcrate.atomic.publish_noreplace`).

    ``durable``: the directory kind fsyncs every file (off for scratch output).

    :raises OutputError: a file kind's ``output`` ends with ``/`` (a directory was meant;
        ``dbcrate dump`` resolves that to a name inside it before it gets here).
    """
    info = get_kind(kind)
    if not info.is_directory and str(output).endswith(("/", os.sep)):
        raise OutputError(f"the output {output} ends with / (a directory), but a {kind} "
                          "archive is a file", hint="give a file name for the archive")
    auto = output if isinstance(output, AutoName) else None
    staged: Path | None = None
    target: str | os.PathLike[str] = output
    if auto is not None:
        check_parent(auto.first)
        staged = temp_name(auto.first, "auto")
        try:
            os.mkdir(staged, 0o700)
        except OSError as exc:
            raise write_failed(staged, exc, "create") from None
        target = staged / auto.first.name
    try:
        writer = info.writer(target, data_format=data_format if info.member_based else None,
                             mtime=mtime, overwrite=overwrite, format_version=format_version)
        if isinstance(writer, DirectoryWriter):
            writer.durable = durable
    except BaseException as exc:
        if staged is None:
            raise
        shutil.rmtree(staged, ignore_errors=True)
        if isinstance(exc, OutputError):
            raise restated(exc, Path(target), str(output)) from None
        raise
    return DumpWriter(writer, tables, data_format, display=str(output), staged=staged, auto=auto)


class ArchiveBuilder:
    """Writes a new archive of any kind from Arrow data (``dbcrate.open_archive(path, "w")``).

    Tables are added one at a time (:meth:`add_table`); leaving the ``with`` block normally
    commits (the archive appears under ``path``), with an exception aborts (nothing appears).

    :param kind: a key of ``dbcrate.containers.kinds.CONTAINER_KINDS``.
    :param data_format: data format of the tar and directory kinds (default ``parquet``).
    :param max_row_count: most rows per chunk (default: the kind's, see ``ContainerKind``).
    :param overwrite: directory kinds: replace an existing dump directory.
    :param source: what the manifest says the data came from (default: nothing).
    """

    def __init__(self, path: ArchiveTarget, *, kind: str = "tar",
                 data_format: str | None = None, max_row_count: int | None = None,
                 overwrite: bool = False, source: Source | None = None,
                 schema_version: str | None = None) -> None:
        info = get_kind(kind)
        created = dt.datetime.now(dt.UTC)
        self.path = file_object_name(path) if is_file_object(path) else str(path)
        self.max_rows = max_row_count or info.default_max_rows
        if self.max_rows < 1:
            raise UsageError(f"max_row_count must be at least 1 (got {max_row_count})")
        self._writer = info.writer(path, data_format=data_format, mtime=created.timestamp(),
                                   overwrite=overwrite)
        self.manifest = Manifest(
            source=source or Source(engine="", server_version="", url=""),
            created_at=created.isoformat().replace("+00:00", "Z"),
            dbcrate_version=__version__,
            data_format=self._writer.data_format,
            schema_version=schema_version,
        )
        self._finished = False

    def add_table(self, table: Table, data: Iterable[pa.RecordBatch] | pa.Table) -> TableEntry:
        """Add a table: its portable schema and its rows (record batches or an Arrow table,
        whose schema must be exactly the Arrow schema the logical types give).

        :raises UsageError: a table of that name was added already, or the data does not
            have the table's Arrow schema.
        """
        if self._finished:
            raise UsageError("the archive is already committed or aborted")
        if any(t.name == table.name for t in self.manifest.tables):
            raise UsageError(f"table {table.name!r} is already in the archive")
        entry = TableEntry(schema=table)
        expected = arrow_schema(entry)
        batches = data.to_batches() if isinstance(data, pa.Table) else data

        def checked() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                if not batch.schema.remove_metadata().equals(expected):
                    raise UsageError(
                        f"table {table.name!r}: a batch has the schema {batch.schema}, the "
                        f"table's logical types need {expected}")
                # drop schema metadata (pandas' and the like): the members carry none
                yield (pa.RecordBatch.from_arrays(batch.columns, schema=expected)
                       if batch.schema.metadata else batch)

        number = len(self.manifest.tables) + 1
        self._writer.begin_table(number, entry)
        entry.chunks = write_table(self._writer, number, entry, checked(), self.max_rows)
        self.manifest.tables.append(entry)
        return entry

    def commit(self) -> Manifest:
        """Write the manifest; the archive appears under its path."""
        if self._finished:
            raise UsageError("the archive is already committed or aborted")
        self._finished = True
        try:
            self._writer.commit(self.manifest)
        except BaseException:
            self._writer.abort()
            raise
        return self.manifest

    def abort(self) -> None:
        """Drop the archive (nothing appears under its path)."""
        self._finished = True
        self._writer.abort()

    def __enter__(self) -> ArchiveBuilder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._finished:
            self.commit()
