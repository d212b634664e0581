"""One dump task: read its rows and encode them into chunk files, bounded in rows and bytes.

Each chunk is encoded into a private temp file (bounded memory) and handed to the runner, which
appends it to the archive in task order; into a directory archive, the chunk's file is made in
the archive itself (:mod:`dbcrate.containers.chunkfile`) and only renamed, and where a restore
reads along (``copy``) each chunk is handed over as soon as it is complete. A chunk holds at
most the plan's ``chunk_rows`` rows and about ``chunk_bytes`` bytes of Arrow data, so that wide
rows still make members that decode in bounded memory. Under ``--tolerate``
(:func:`tolerant_task`) a table that cannot be read is reported as :class:`Failed` instead of
ending the dump.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import sqlalchemy as sa

from dbcrate.containers.chunkfile import ChunkFile
from dbcrate.dialects import Dialect, driver_errors
from dbcrate.dump.plan import DumpPlan, DumpTask
from dbcrate.dump.source import db_error, tolerated
from dbcrate.errors import SourceValueError, driver_message
from dbcrate.formats.framing import ZstdSink
from dbcrate.formats.registry import ChunkWriter
from dbcrate.progress import Interrupts, TableProgress
from dbcrate.readahead import ReadAhead

#: a chunk's encoding stays in memory up to this size (a file beyond): the temp file of each of
#: 2,000 small tables cost 0.3 s of a dump; finished chunks may wait for the tables before
#: them (in a tar), so this bounds what they hold, about 32 MB for 2,000 of them
SPOOL_IN_MEMORY_BYTES = 16 * 1024
#: a table estimated smaller than this is read without a thread reading ahead (there is no
#: next block to read while one encodes; the thread costs more than it saves)
READ_AHEAD_MIN_BYTES = 4 * 1024 * 1024


#: makes the file one chunk is encoded into
SpoolFactory = Callable[[], IO[bytes]]


class _ChunkSpool(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """A private temp file for one chunk, in memory while it is small. It moves to disk
    *before* a write that would pass the limit: the standard class writes first, so a
    100 MB page went to memory whole before it was copied out (a 100 MB bytea: 766 MB
    peak, not 668 MB)."""

    on_disk = False

    def rollover(self) -> None:
        super().rollover()
        self.on_disk = True

    def write(self, data: Any) -> int:
        if not self.on_disk and self.tell() + memoryview(data).nbytes > SPOOL_IN_MEMORY_BYTES:
            self.rollover()
        return int(super().write(data))


def _new_spool() -> IO[bytes]:
    """A private temp file for one chunk (in memory while it is small)."""
    return _ChunkSpool(max_size=SPOOL_IN_MEMORY_BYTES,  # type: ignore[return-value]
                       prefix="dbcrate-chunk-")


@dataclass
class EncodedChunk:
    """A data member encoded into a private temp file, waiting to be appended to the archive."""

    spool: IO[bytes]
    rows: int
    size: int


#: takes a chunk as soon as it is complete (called in the reading thread)
ChunkHandler = Callable[[EncodedChunk], None]


@dataclass(frozen=True)
class Failed:
    """A task that failed under ``--tolerate``: the table is recorded as failed."""

    message: str


def encode_task(conn: sa.Connection, dialect: Dialect, task: DumpTask, fmt: Any,
                plan: DumpPlan, interrupts: Interrupts | None = None,
                progress: TableProgress | None = None,
                new_spool: SpoolFactory | None = None,
                on_chunk: ChunkHandler | None = None) -> list[EncodedChunk]:
    """Read one task's rows and encode them into chunk files (``fmt`` is the plan's data
    format; one of the engine's own rows is written as the engine gives them). On any error
    the task's temp files are closed; a value the format cannot write is a
    :class:`SourceValueError` naming the table. A stopped ``interrupts`` ends the task at the
    next batch (:class:`~dbcrate.progress.Interrupted`). Each batch read is counted into
    ``progress`` (its rows, its Arrow or text bytes) as it is encoded. ``new_spool`` makes
    each chunk's file (default: a private temp file, in memory while small); a
    :class:`~dbcrate.containers.chunkfile.ChunkFile` is finished, not rewound. ``on_chunk``
    takes each chunk as soon as it is complete (it is then not in the list returned, and the
    caller owns it), so that a reader of the archive can start on a table still being read."""
    spooler: _Spooler
    size = plan.estimated_bytes.get(task.table.name)
    if fmt.native_rows:
        spooler = _TextSpooler(plan, new_spool or _new_spool, on_chunk)
        items: Iterator[Any] = dialect.read_native_rows(conn, task.table, task.key_range,
                                                        table_bytes=size)
    else:
        spooler = _Spooler(fmt, plan, new_spool or _new_spool, on_chunk)
        items = dialect.read_table(conn, task.table, plan.batch_rows, task.key_range,
                                   table_bytes=size)
    try:
        small = size is not None and size < READ_AHEAD_MIN_BYTES
        ahead = ReadAhead(items) if dialect.read_ahead and not small \
            else contextlib.nullcontext(items)
        with ahead as batches:  # the next batch is read while this one encodes
            for batch in batches:
                if interrupts is not None:
                    interrupts.check()
                rows, size = spooler.add(batch)
                if progress is not None:
                    progress.add(task.table.name, rows, size)
        spooler.close_last()
    except SourceValueError as exc:  # a value the format cannot write: name the table
        spooler.discard()
        if task.table.name in exc.message:
            raise
        raise SourceValueError(f"table {task.table.name!r}: {exc.message}", hint=exc.hint) \
            from None
    except BaseException:
        spooler.discard()
        raise
    return spooler.chunks


def tolerant_task(conn: sa.Connection, dialect: Dialect, task: DumpTask, fmt: Any,
                  plan: DumpPlan, interrupts: Interrupts | None = None,
                  progress: TableProgress | None = None,
                  new_spool: SpoolFactory | None = None,
                  on_chunk: ChunkHandler | None = None) -> list[EncodedChunk] | Failed:
    """:func:`encode_task` inside a savepoint: a table that cannot be read (no privilege, a
    value dbcrate cannot carry, a broken table) is reported instead of ending the dump, and the
    savepoint keeps the snapshot's transaction usable for the next tables. A statement
    cancelled by a stopped ``interrupts`` is no failed table: it is raised."""
    conn.exec_driver_sql("SAVEPOINT dbcrate_task")
    try:
        chunks = encode_task(conn, dialect, task, fmt, plan, interrupts, progress, new_spool,
                             on_chunk)
    except tolerated() as exc:
        if interrupts is not None and interrupts.stopped:
            raise
        try:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT dbcrate_task")
        except driver_errors() as again:  # the connection itself is gone: that ends the dump
            raise db_error(f"reading table {task.table.name!r}", again) from None
        if dialect.lock_refused(exc):  # not the table's failure: the leader reads it
            raise
        return Failed(driver_message(exc))
    conn.exec_driver_sql("RELEASE SAVEPOINT dbcrate_task")
    return chunks


def close_chunks(chunks: list[EncodedChunk]) -> None:
    """Drop encoded chunks that will not be written."""
    for chunk in chunks:
        chunk.spool.close()


class _Spooler:
    """The chunks of one task: the finished ones, and the one being encoded (its temp file, its
    format writer, and how many rows and bytes it holds)."""

    def __init__(self, fmt: Any, plan: DumpPlan, new_spool: SpoolFactory,
                 on_chunk: ChunkHandler | None = None) -> None:
        self.chunks: list[EncodedChunk] = []
        self._new_spool = new_spool
        self._on_chunk = on_chunk
        self._fmt = fmt
        self._plan = plan
        self._spool: IO[bytes] | None = None
        self._writer: ChunkWriter | ZstdSink | None = None
        self._rows = 0
        self._bytes = 0

    def add(self, batch: pa.RecordBatch) -> tuple[int, int]:
        """Encode ``batch``, starting a new chunk whenever one is full; its rows and bytes."""
        limit_rows, limit_bytes = self._plan.chunk_rows, self._plan.chunk_bytes
        start = 0
        while start < batch.num_rows:
            if self._writer is None:
                self._spool = self._new_spool()
                self._writer = self._fmt.open_writer(self._spool, batch.schema,
                                                     self._plan.compression_level)
            take = min(batch.num_rows - start, limit_rows - self._rows)
            if self._bytes and batch.num_rows:  # wide rows: stop near the byte limit
                per_row = max(1, batch.nbytes // batch.num_rows)
                take = max(1, min(take, (limit_bytes - self._bytes) // per_row))
            piece = batch.slice(start, take)
            self._writer.write(piece)
            self._rows += take
            self._bytes += piece.nbytes
            start += take
            if self._rows >= limit_rows or self._bytes >= limit_bytes:
                self._finish()
        return batch.num_rows, batch.nbytes

    def close_last(self) -> None:
        """Finish the last chunk, if it holds rows."""
        if self._writer is not None and self._rows:
            self._finish()

    def discard(self) -> None:
        """Drop every spool of a failed task."""
        if self._writer is not None:  # before its file: a writer collected later would write
            with contextlib.suppress(Exception):  # to the closed file and print a traceback
                self._writer.close()
        if self._spool is not None:
            self._spool.close()
        close_chunks(self.chunks)

    def _finish(self) -> None:
        assert self._spool is not None and self._writer is not None
        self._writer.close()
        size = self._spool.tell()
        if isinstance(self._spool, ChunkFile):
            self._spool.finish()  # (in place: adopted by the archive, not read back)
        else:
            self._spool.seek(0)
        chunk = EncodedChunk(self._spool, self._rows, size)
        self._spool, self._writer, self._rows, self._bytes = None, None, 0, 0
        if self._on_chunk is not None:
            self._on_chunk(chunk)
        else:
            self.chunks.append(chunk)


class _TextSpooler(_Spooler):
    """The chunks of one task whose rows come as the engine writes them (``pgcopy``): pieces
    of whole rows compressed into one zstd frame per chunk (the frame is the chunk's writer)."""

    def __init__(self, plan: DumpPlan, new_spool: SpoolFactory,
                 on_chunk: ChunkHandler | None = None) -> None:
        super().__init__(None, plan, new_spool, on_chunk)

    def add(self, piece: tuple[Any, int]) -> tuple[int, int]:  # type: ignore[override]
        """Compress one piece (its text, the rows it ends), split where a chunk reaches the
        plan's row limit (exactly) or its byte limit (at the end of the piece); its rows and
        bytes. A piece that ends no row is part of a row continued by the next pieces."""
        data, rows = piece
        view, start, left = memoryview(data), 0, rows
        if not rows:  # a piece inside a very large row: the chunk cannot end here
            self._open().write(view)
            self._bytes += len(data)
            return 0, len(data)
        while left:
            writer = self._open()
            take = min(left, self._plan.chunk_rows - self._rows)
            end = len(data) if take == left else _after_lines(data, start, take)
            writer.write(view[start:end])
            self._rows += take
            self._bytes += end - start
            start, left = end, left - take
            if self._rows >= self._plan.chunk_rows or self._bytes >= self._plan.chunk_bytes:
                self._finish()
        return rows, len(data)

    def _open(self) -> Any:
        """The current chunk's zstd writer, begun if none is."""
        if self._writer is None:
            self._spool = self._new_spool()
            self._writer = ZstdSink(self._spool, self._plan.compression_level)
        return self._writer


def _after_lines(data: Any, start: int, lines: int) -> int:
    """The position after the ``lines``-th line feed of ``data`` from ``start``."""
    end = start
    for _ in range(lines):
        end = data.index(b"\n", end) + 1
    return end
