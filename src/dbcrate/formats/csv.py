"""The CSV data format: RFC 4180 with a header of column names, in one zstd frame.

Every non-NULL field is quoted; NULL is an empty unquoted field, the empty string ``""``.
Values follow :mod:`dbcrate.formats.textvalues`, with floats' specials spelled ``NaN``,
``Infinity``, ``-Infinity`` and binaries as ``\\x`` and lower-case hex. Arrow's CSV reader and
writer do the work.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dbcrate.formats.framing import (
    MemberDecodeError,
    ZstdSink,
    decoding,
    max_record,
    open_text,
    record_too_long,
    row_too_long,
)
from dbcrate.formats.textvalues import Style, batch_of, check_schema, from_text, row_slices, to_text

#: Arrow CSV block size of the first try (a row must fit in one block; the largest block is
#: the record limit), and the largest Arrow allows (an int32), which caps the limit for CSV
_CSV_BLOCK = 1 << 18
_CSV_MAX_BLOCK = 1 << 30
#: floats' specials and binaries as PostgreSQL's text output spells them (NaN, \x hex)
_CSV_STYLE = Style("NaN", "Infinity", "-Infinity", hex_binary=True)


class _SourceView:
    """A private read position in a seekable source shared with other views: Arrow's CSV reader
    reads its input on an I/O thread, and one that is being abandoned (a retry with a larger
    block) may still read ahead while the next pass reads the same source from the start.

    :meth:`close` ends that thread's reads before the view is dropped: a thread still calling
    into Python when the interpreter exits is killed inside Arrow's C++ frames, which aborts the
    process ("terminate called without an active exception") instead of exiting with the
    error's code. After ``close`` a read returns end of input, which stops Arrow's reader.
    """

    def __init__(self, source: IO[bytes], start: int, lock: threading.Lock) -> None:
        self._source = source
        self._pos = start
        self._lock = lock
        self._closed = False
        self._ended = threading.Event()  # the reading thread saw the end, or an error
        self._busy = 0
        self._last = time.monotonic()

    def read(self, size: int = -1) -> bytes:
        if self._closed:
            self._ended.set()
            return b""
        self._busy += 1
        try:
            with self._lock:
                self._source.seek(self._pos)
                data = self._source.read(size)
        except BaseException:
            self._ended.set()
            raise
        finally:
            self._busy -= 1
            self._last = time.monotonic()
        if not data:
            self._ended.set()
        self._pos += len(data)
        return data

    def close(self, *, wait: bool, quiet: float = 0.05, timeout: float = 5.0) -> None:
        """Make later reads end the input and, with ``wait`` (the reader was abandoned), wait
        until the reading thread has stopped: it saw the end or an error, or it has not read
        for ``quiet`` seconds (its read-ahead queue is full, and a dropped reader does not read
        again)."""
        self._closed = True
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while not self._ended.wait(quiet / 5) and time.monotonic() < deadline:
            if not self._busy and time.monotonic() - self._last > quiet:
                return

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            with self._lock:
                offset += self._source.seek(0, io.SEEK_END)
        elif whence == io.SEEK_CUR:
            offset += self._pos
        self._pos = offset
        return offset

def _check_csv_records(columns: Sequence[pa.Array], limit: int) -> None:
    """Refuse a record longer than the record limit. A non-NULL field takes at most its bytes,
    one more per ``"`` (doubled), two quotes and a separator; NULL one separator."""
    if not columns or sum(c.nbytes for c in columns) * 2 + 3 * len(columns[0]) * len(columns) <= limit:
        return
    sizes: Any = None
    for column in columns:
        field = pc.add(pc.add(pc.binary_length(column).cast(pa.int64()),
                              pc.count_substring(column, '"').cast(pa.int64())), 3).fill_null(1)
        sizes = field if sizes is None else pc.add(sizes, field)
    biggest = pc.max(sizes).as_py()
    if biggest is not None and biggest > limit:
        raise row_too_long("csv", biggest, limit)


class CsvWriter:
    """RFC 4180 CSV: a header of column names, LF line ends, every non-NULL field quoted;
    NULL is an empty unquoted field, the empty string is ``""``."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = check_schema(schema)
        self._schema = schema
        self._text_schema = pa.schema([pa.field(name, pa.string()) for name in schema.names])
        self._out = ZstdSink(sink, level)
        options = pacsv.WriteOptions(include_header=True, delimiter=",", quoting_style="all_valid")
        self._writer = pacsv.CSVWriter(self._out, self._text_schema, write_options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = min(max_record(), _CSV_MAX_BLOCK)
        for part in row_slices(batch, self._schema):
            columns = [to_text(c, k, _CSV_STYLE) for c, k in zip(part.columns, self._codecs)]
            _check_csv_records(columns, limit)
            self._writer.write_batch(batch_of(columns, self._text_schema))

    def close(self) -> None:
        self._writer.close()
        self._out.close()


def _csv_batches(source: IO[bytes], schema: pa.Schema, codecs: list[str], block_size: int,
                 skip: int) -> Iterator[pa.RecordBatch]:
    reader = pacsv.open_csv(
        open_text(source),
        read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size),
        parse_options=pacsv.ParseOptions(
            delimiter=",", quote_char='"', double_quote=True, escape_char=False,
            newlines_in_values=True, ignore_empty_lines=False,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in schema.names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            check_utf8=True,
        ),
    )
    # closed on every path: Arrow reads ahead on an I/O thread, and a reader left open when a
    # read fails (a budget refusal) can still hold that thread at interpreter exit, which
    # aborts the process ("terminate called without an active exception") instead of exiting
    try:
        if reader.schema.names != schema.names:
            raise MemberDecodeError(f"CSV header {reader.schema.names[:20]} is not {schema.names[:20]}")
        for batch in reader:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            if skip:
                batch, skip = batch.slice(skip), 0
            columns = [from_text(batch.column(i), field, codec, _CSV_STYLE)
                       for i, (field, codec) in enumerate(zip(schema, codecs))]
            yield batch_of(columns, schema)
    finally:
        reader.close()


@decoding
def read_csv(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode a CSV member into batches of ``schema`` (the header must name its columns).

    Arrow's CSV reader needs every row inside one block: a row longer than the block makes it
    fail ("straddling object"); then the member is read again from the start with a block four
    times larger, skipping the rows already produced (the source is seekable), up to a block of
    the record limit.
    """
    codecs = check_schema(schema)
    start = source.tell()
    lock = threading.Lock()
    limit = min(max_record(), _CSV_MAX_BLOCK)
    block_size = min(_CSV_BLOCK, limit)
    produced = 0
    while True:
        view = _SourceView(source, start, lock)
        finished = False
        try:
            for batch in _csv_batches(cast(IO[bytes], view), schema, codecs, block_size,
                                      produced):
                produced += batch.num_rows
                yield batch
            finished = True  # Arrow's reader saw the end of the text: its thread is done
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            if block_size >= limit:  # a record fits in a block as large as itself
                raise record_too_long(f"a CSV record after row {produced:,}", limit) from None
        finally:
            view.close(wait=not finished)
        block_size = min(block_size * 4, limit)
