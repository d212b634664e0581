"""Data formats of the archive's data members: a plain registry of Arrow encoders/decoders.

A data member holds a bounded slice of one table's rows as Arrow record batches. A format
declares its capabilities as data (:class:`DataFormat`) and provides a writer and a reader.
The built-in formats are Parquet (the default; chosen by measurement, see docs/FORMAT.md) and
Arrow IPC, both compressing with zstd inside the member, and the text formats JSON Lines, CSV,
XML and YAML (:mod:`dbcrate.textformats`), each one zstd frame, so the container never
compresses again.

Third-party formats register themselves through the entry point group ``dbcrate.formats``
(each entry point is a callable returning a :class:`DataFormat`, or a :class:`DataFormat`);
they are loaded the first time an unknown format name is looked up. The compliance suite in
:mod:`dbcrate.testing.formats` checks any format.
"""

from __future__ import annotations

import importlib.metadata
import io
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from dbcrate.errors import UsageError
from dbcrate.formats import text as textformats

DEFAULT_COMPRESSION_LEVEL = 3


class ChunkWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DataFormat:
    """A data member encoding.

    :param name: registry key, recorded in the manifest's ``data_format``; it must match
        ``[a-z0-9]{1,16}`` like the extension.
    :param extension: member file extension, ``[a-z0-9]{1,16}`` (the manifest's member regex
        allows one dot: a compressed text format keeps the plain extension).
    :param open_writer: ``(sink, schema, compression_level) -> ChunkWriter``; ``close()``
        finishes the member and leaves ``sink`` open.
    :param read: ``(source, schema) -> iterator of record batches``. ``source`` is seekable;
        ``schema`` is the Arrow schema the manifest implies. A self-describing format may ignore
        it (the caller compares every batch's schema with it); a text format decodes with it.
        Decoding failures raise ``ValueError``, ``OSError``, ``EOFError`` or an Arrow error.
    :param reads_by_range: ``read`` seeks to the parts it needs (Parquet: the footer, then one
        column chunk at a time) and decodes in the calling thread, so it is given the member
        as a file read on demand instead of a buffer holding the whole member.
    """

    name: str
    extension: str
    open_writer: Callable[[IO[bytes], pa.Schema, int], ChunkWriter]
    read: Callable[[IO[bytes], pa.Schema], Iterator[pa.RecordBatch]]
    description: str = ""
    reads_by_range: bool = False


# decoding bounds of the binary formats: a few kilobytes of Parquet or Arrow can declare
# gigabytes (a 1 MiB value in a dictionary, indexed 2,000 times; a zstd page of one repeated
# byte). Readers check the declared sizes (page headers, dictionary indexes, IPC buffer lengths)
# against a budget before decoding and decode in pieces of bounded size; writers pad a member
# whose data compresses better than the budget allows (docs/FORMAT.md, "Limits of the binary
# formats").

#: a member may decode to at most DECODE_FLOOR + ratio x its size in bytes (the floor is the
#: ``chunk_bytes`` default: a member dbcrate writes holds about that much Arrow data)
DECODE_FLOOR = 64 << 20
DECODE_RATIO = 1000
DECODE_RATIO_ENV = "DBCRATE_DATA_MAX_RATIO"
#: a decoded piece of a batch holds at most this many bytes and rows (one larger row excepted)
PIECE_BYTES, PIECE_ROWS = 16 << 20, 65_536
#: a Parquet page header larger than this is refused (Arrow's own limit)
MAX_PAGE_HEADER = 16 << 20
#: the key of the padding a writer adds (Parquet: file metadata; Arrow: an empty batch's)
PADDING_KEY = "dbcrate.padding"


class DecodeLimitExceeded(ValueError):
    """A member declares more decoded data than its size allows (a ``ValueError``: reported as
    a damaged member); ``hint`` names the setting."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def decode_ratio() -> int:
    """The ratio readers allow: :data:`DECODE_RATIO` or ``$DBCRATE_DATA_MAX_RATIO``."""
    return textformats._env_limit(DECODE_RATIO_ENV, DECODE_RATIO)


@dataclass
class DecodeBudget:
    """Counts the bytes a member decodes to against ``DECODE_FLOOR + ratio x size``."""

    size: int
    ratio: int = field(default_factory=decode_ratio)
    spent: int = 0

    @property
    def limit(self) -> int:
        return DECODE_FLOOR + self.ratio * self.size

    def check(self, declared: int, what: str) -> None:
        """Refuse ``declared`` bytes more than the budget allows (without spending them)."""
        if self.spent + declared > self.limit:
            raise DecodeLimitExceeded(
                f"the member declares {what} of {self.spent + declared:,} bytes, more than "
                f"{self.limit:,} ({self.ratio:,} times its {self.size:,} bytes plus "
                f"{DECODE_FLOOR:,}): refused as a decompression bomb (dbcrate never writes such "
                f"a member; {DECODE_RATIO_ENV} sets the ratio)",
                hint=f"if the archive is trusted, raise {DECODE_RATIO_ENV} (now {self.ratio:,})")

    def charge(self, n: int, what: str) -> None:
        self.check(n, what)
        self.spent += n


def padding_for(decoded: int, written: int, ratio: int = DECODE_RATIO) -> int:
    """Bytes a writer adds to a member of ``written`` bytes that decodes to ``decoded`` bytes
    so that a default reader's budget covers it (0 when it already does)."""
    needed = -(-(decoded - DECODE_FLOOR) // ratio)
    return max(0, needed - written)


def _fixed_width(schema: pa.Schema) -> int:
    """Bytes per row a batch of ``schema`` costs whatever its values: fixed-width values,
    offsets of variable-length ones, and a byte of validity (generously) per column."""
    width = 0
    for t in schema.types:
        try:
            width += 9 if _large(t) else 5 if _variable(t) else max(1, t.bit_width // 8) + 1
        except ValueError:  # (a nested type: no schema of dbcrate has one)
            width += 17
    return width


def _large(t: pa.DataType) -> bool:
    return bool(pa.types.is_large_binary(t) or pa.types.is_large_string(t))


def _variable(t: pa.DataType) -> bool:
    return bool(_large(t) or pa.types.is_binary(t) or pa.types.is_string(t))


def _stream_size(source: Any) -> int:
    here, end = source.tell(), source.seek(0, io.SEEK_END)
    source.seek(here)
    return int(end)


# ---------------------------------------------- Parquet footer and page headers (thrift compact)
# (read here, not through pyarrow's metadata objects: RowGroupMetaData.column() aborts the
# process on some malformed statistics instead of raising)
class _Short(Exception):
    """The bytes read so far end inside the thrift structure."""


def _need(buf: bytes, i: int, n: int) -> int:
    if n < 0 or i + n > len(buf):
        raise _Short
    return i + n


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while shift <= 63:
        byte = buf[_need(buf, i, 1) - 1]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
    raise ValueError("bad varint in Parquet metadata")


def _value(buf: bytes, i: int, kind: int, depth: int, item: bool = False) -> tuple[Any, int]:
    """One thrift compact value of ``kind`` (integers zigzag-decoded, structs as dicts by field
    id, lists and maps as lists, binary as bytes, doubles as None); the position after it."""
    if depth > 32:
        raise ValueError("Parquet metadata nested too deeply")
    if kind in (1, 2) and not item:  # a boolean field: its value is its type
        return kind == 1, i
    if kind in (1, 2, 3, 7):  # a boolean list item, a byte, a double
        end = _need(buf, i, 8 if kind == 7 else 1)
        return (None if kind == 7 else buf[i] if kind == 3 else buf[i] == 1), end
    if kind in (4, 5, 6):
        raw, i = _varint(buf, i)
        return (raw >> 1) ^ -(raw & 1), i
    if kind == 8:
        n, i = _varint(buf, i)
        return buf[i:_need(buf, i, n)], i + n
    if kind == 12:
        return _struct(buf, i, depth + 1)
    if kind not in (9, 10, 11):
        raise ValueError(f"bad thrift type {kind} in Parquet metadata")
    elements: tuple[int, ...]
    if kind == 11:  # map: a varint size, then one byte of key and value types
        n, i = _varint(buf, i)
        types = buf[_need(buf, i, 1) - 1] if n else 0
        i, elements = i + (1 if n else 0), (types >> 4, types & 0x0F)
    else:  # list, set: size (15: a varint follows) and element type in one byte
        head = buf[_need(buf, i, 1) - 1]
        n, i, elements = head >> 4, i + 1, (head & 0x0F,)
        if n == 15:
            n, i = _varint(buf, i)
    _need(buf, i, n)  # every element takes a byte at least: a huge count is refused here
    out = []
    for _ in range(n):
        for elem in elements:
            value, i = _value(buf, i, elem, depth + 1, item=True)
            out.append(value)
    return out, i


def _struct(buf: bytes, i: int, depth: int = 0) -> tuple[dict[int, Any], int]:
    fields: dict[int, Any] = {}
    last = 0
    while True:
        head = buf[_need(buf, i, 1) - 1]
        i += 1
        if head == 0:
            return fields, i
        if head >> 4:
            last += head >> 4
        else:
            raw, i = _varint(buf, i)
            last = (raw >> 1) ^ -(raw & 1)
        fields[last], i = _value(buf, i, head & 0x0F, depth)


def _int(fields: Any, key: int, where: str, default: int | None = None) -> int:
    """A non-negative integer field of a thrift struct (``ValueError`` naming ``where``)."""
    value = fields.get(key, default) if isinstance(fields, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"bad Parquet metadata: {where}")
    return value


def _page_header(source: Any, pos: int, end: int) -> tuple[int, int, int, int]:
    """(page type, uncompressed size, compressed size, header length) of the page at ``pos``."""
    window = 256
    while True:
        source.seek(pos)
        buf = source.read(min(window, end - pos))
        try:
            fields, length = _struct(buf, 0)
        except _Short:
            if len(buf) < min(window, end - pos) or window >= MAX_PAGE_HEADER or pos + window >= end:
                raise ValueError(f"truncated Parquet page header at byte {pos}") from None
            window *= 8
            continue
        where = f"page header at byte {pos}"
        return (_int(fields, 1, where), _int(fields, 2, where), _int(fields, 3, where), length)


def _parquet_layout(source: Any, size: int) -> tuple[list[tuple[int, int]], set[int]]:
    """(rows, bytes its pages decompress to) of each row group, and the columns (by position)
    that have a dictionary page: the footer and every page header are read (the footer's
    sizes are only claims; the page headers are what the decoder allocates by)."""
    source.seek(size - 8)
    tail = source.read(8)
    length = struct.unpack("<I", tail[:4])[0] if len(tail) == 8 else -1
    if tail[4:] != b"PAR1" or not 0 < length <= size - 12:
        raise ValueError("not a Parquet file (or an encrypted one)")
    source.seek(size - 8 - length)
    try:
        footer = _struct(source.read(length), 0)[0]
    except _Short:
        raise ValueError("truncated Parquet footer") from None
    groups, dictionary = [], set()
    for g, group in enumerate(footer.get(4) or []):  # FileMetaData.row_groups
        columns = group.get(1) if isinstance(group, dict) else None
        total = 0
        for c, column in enumerate(columns if isinstance(columns, list) else []):
            meta = column.get(3) if isinstance(column, dict) else None  # ColumnChunk.meta_data
            stored = _int(meta, 7, f"column chunk {g}/{c}")  # total_compressed_size
            start = _int(meta, 9, f"column chunk {g}/{c}")  # data_page_offset
            first = _int(meta, 11, f"column chunk {g}/{c}", 0)  # dictionary_page_offset
            start = first if 0 < first < start else start
            if stored and (start < 4 or start + stored > size - 8 - length):
                raise ValueError(f"column chunk {g}/{c} lies outside the member")
            pos, end = start, start + stored
            while pos < end:  # (a row group of 0 rows has no pages)
                kind, raw, compressed, header = _page_header(source, pos, end)
                pos += header + compressed
                if pos > end:
                    raise ValueError(f"a page of column chunk {g}/{c} runs past its end")
                total += raw
                if kind == 2:
                    dictionary.add(c)
        groups.append((_int(group, 3, f"row group {g}"), total))
    return groups, dictionary


def _dictionary_bytes(pf: pq.ParquetFile, columns: list[str], budget: DecodeBudget,
                      declared: int) -> int:
    """Bytes of values the dictionary-encoded ``columns`` decode to (their dictionaries'
    values, once per row that refers to them), reading indexes only; refused as soon as
    ``declared`` plus that exceeds the budget."""
    total = 0
    for batch in pf.iter_batches(batch_size=PIECE_ROWS, columns=columns, use_threads=False):
        for column in batch.columns:
            total += int(pc.sum(_row_lengths(column)).as_py() or 0)
        budget.check(declared + total, "dictionary-encoded values")
    return total


def _row_lengths(column: pa.DictionaryArray) -> pa.Array:
    """Bytes of each row's value of a dictionary binary/string column; 0 for NULL."""
    lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
    return pc.fill_null(lengths.cast(pa.int64()), 0)


def _read_parquet(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Self-describing: ``schema`` is not needed (the caller checks every batch against it).

    Every page header is checked against the member's budget before anything is decoded;
    variable-length columns with a dictionary page are read as dictionaries and expanded in
    pieces of at most :data:`PIECE_BYTES`, so that memory stays bounded whatever the indexes
    repeat."""
    pf, groups, dictionary, budget = check_parquet(source)
    dense = pf.schema_arrow.remove_metadata()  # (metadata: ARROW:schema's rest, padding)
    if dictionary:
        pf = pq.ParquetFile(source, metadata=pf.metadata, read_dictionary=dictionary)
    width = _fixed_width(dense)
    for group, (rows, page_bytes) in enumerate(groups):
        per_row = max(1, width + page_bytes // max(1, rows))
        # single-threaded: parallelism is per table (-j); decoding threads that outlive a
        # short-lived CLI run can abort the interpreter at exit
        for batch in pf.iter_batches(batch_size=max(1, min(PIECE_ROWS, PIECE_BYTES // per_row)),
                                     row_groups=[group], use_threads=False):
            yield from _dense_pieces(batch, dense, budget)


def check_parquet(source: Any) -> tuple[pq.ParquetFile, list[tuple[int, int]], list[int],
                                        DecodeBudget]:
    """Check a Parquet member's declared sizes against its budget without decoding its values
    (every page header; the indexes of dictionary-encoded columns); returns the file, (rows,
    bytes its pages decompress to) of each row group, its dictionary-encoded variable-length
    columns (by position) and its budget. Raises ``ValueError`` (:class:`DecodeLimitExceeded`
    for a bomb) or an Arrow error."""
    budget = DecodeBudget(_stream_size(source))
    pf = pq.ParquetFile(source)
    fields = pf.schema_arrow
    if pf.metadata.num_columns != len(fields) or len(set(fields.names)) != len(fields):
        raise ValueError("nested or duplicate columns (a table's columns are flat and unique)")
    groups, dictionary = _parquet_layout(source, budget.size)
    if len(groups) != pf.metadata.num_row_groups or any(c >= len(fields) for c in dictionary):
        raise ValueError("the Parquet footer does not describe its row groups")
    declared = sum(g[1] for g in groups) + sum(g[0] for g in groups) * _fixed_width(fields)
    budget.check(declared, "pages and rows")
    indexes = [c for c in sorted(dictionary) if _variable(fields[c].type)]
    if indexes:  # (by index: Arrow matches a name with dots as a path)
        reader = pq.ParquetFile(source, metadata=pf.metadata, read_dictionary=indexes)
        names = [fields[c].name for c in indexes]
        budget.check(declared + _dictionary_bytes(reader, names, budget, declared),
                     "dictionary-encoded values")
    return pf, groups, indexes, budget


def _dense_pieces(batch: pa.RecordBatch, dense: pa.Schema,
                  budget: DecodeBudget) -> Iterator[pa.RecordBatch]:
    """``batch`` with its dictionary columns expanded, in pieces of bounded size."""
    dictionary = [i for i, c in enumerate(batch.columns) if isinstance(c, pa.DictionaryArray)]
    if not dictionary:
        budget.charge(batch.nbytes, "decoded data")
        yield pa.RecordBatch.from_arrays(batch.columns, schema=dense)
        return
    costs = np.zeros(batch.num_rows, dtype=np.int64) + _fixed_width(dense)
    for i in dictionary:
        costs += _row_lengths(batch.column(i)).to_numpy(zero_copy_only=False)
    ends = np.cumsum(costs)
    start = 0
    while start < batch.num_rows:
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + PIECE_BYTES, side="right")))
        piece = batch.slice(start, stop - start)
        budget.charge(int(ends[stop - 1]) - base, "decoded data")
        columns = [c.dictionary_decode().cast(dense.field(i).type)
                   if isinstance(c, pa.DictionaryArray) else c
                   for i, c in enumerate(piece.columns)]
        yield pa.RecordBatch.from_arrays(columns, schema=dense)
        start = stop


class _ParquetWriter:
    """Writes one row group per batch; pads the file metadata of a member whose data
    compresses better than a reader's budget allows (see :func:`padding_for`)."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._sink, self._start, self._decoded = sink, sink.tell(), 0
        self._width = _fixed_width(schema)
        # plain values: zstd compresses them better than dictionary indexes, and the writer
        # is faster (scale 1: 349 -> 321 MB, 2.2 -> 1.4 s; docs/FORMAT.md)
        self._writer = pq.ParquetWriter(sink, schema, compression="zstd",
                                        compression_level=level, use_dictionary=False,
                                        write_statistics=False, store_schema=True)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        # what a reader counts: pages (at most the values plus levels and lengths) and rows
        self._decoded += batch.nbytes + 2 * batch.num_rows * self._width + 4096

    def close(self) -> None:
        # (the footer still to come only adds to the size the budget is computed from)
        pad = padding_for(self._decoded, self._sink.tell() - self._start)
        if pad:
            self._writer.add_key_value_metadata({PADDING_KEY: "0" * pad})
        self._writer.close()


class _ArrowWriter:
    """One IPC record batch per batch; a member whose data compresses better than a reader's
    budget allows ends with an empty batch whose custom metadata is padding."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        options = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=level))
        self._sink, self._start, self._schema, self._decoded = sink, sink.tell(), schema, 0
        self._writer = ipc.new_stream(sink, schema, options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self._decoded += batch.nbytes + 64 * batch.num_columns + 4096

    def close(self) -> None:
        pad = padding_for(self._decoded, self._sink.tell() - self._start)
        if pad:  # (readers skip it: an empty batch, whose custom metadata is the padding)
            self._writer.write_batch(pa.RecordBatch.from_pylist([], schema=self._schema),
                                     custom_metadata={PADDING_KEY: "0" * pad})
        self._writer.close()


# ------------------------------------------------------------------ Arrow IPC buffer lengths
def _fb(fmt: str, buf: bytes, pos: int) -> Any:
    if pos < 0 or pos + struct.calcsize(fmt) > len(buf):
        raise ValueError("bad Arrow IPC message metadata")
    return struct.unpack_from(fmt, buf, pos)[0]


def _fb_field(buf: bytes, table: int, index: int) -> int:
    """Position of field ``index`` of the flatbuffer table at ``table`` (0: absent)."""
    vtable = table - _fb("<i", buf, table)
    if 4 + 2 * index >= _fb("<H", buf, vtable):
        return 0
    offset: int = _fb("<H", buf, vtable + 4 + 2 * index)
    return table + offset if offset else 0


def _ipc_decoded_bytes(metadata: bytes, body: pa.Buffer) -> int:
    """The bytes a record batch message's buffers decode to: with compression, each buffer
    starts with its uncompressed length (-1: stored as is); without, its length."""
    root = _fb("<I", metadata, 0)
    header = _fb_field(metadata, root, 2)  # Message.header (a RecordBatch table)
    if not header:
        raise ValueError("an Arrow IPC record batch message without a header")
    batch = header + _fb("<I", metadata, header)
    buffers = _fb_field(metadata, batch, 2)  # RecordBatch.buffers: [struct {offset, length}]
    compressed = bool(_fb_field(metadata, batch, 3))  # RecordBatch.compression
    if not buffers:
        return 0
    vector = buffers + _fb("<I", metadata, buffers)
    total = 0
    for k in range(_fb("<I", metadata, vector)):
        offset = _fb("<q", metadata, vector + 4 + 16 * k)
        length = _fb("<q", metadata, vector + 12 + 16 * k)
        if offset < 0 or length < 0 or offset + length > body.size:
            raise ValueError("an Arrow IPC buffer lies outside its message body")
        declared = length
        if compressed and length >= 8:  # (a negative length must not offset a huge one)
            declared = struct.unpack("<q", body.slice(offset, 8).to_pybytes())[0]
            if declared < -1:
                raise ValueError("an Arrow IPC buffer of negative length")
        total += length - 8 if declared == -1 else declared
    return total


def _read_arrow(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Self-describing: ``schema`` is not needed (the caller checks every batch against it).

    Message by message: each record batch's declared buffer lengths are charged against the
    member's budget before it is decompressed; dictionary batches (which dbcrate never writes)
    are refused."""
    budget = DecodeBudget(_stream_size(source))
    messages = ipc.MessageReader.open_stream(source)
    try:
        first = messages.read_next_message()
    except StopIteration:
        raise EOFError("an empty Arrow IPC stream (no schema message)") from None
    if first.type != "schema":
        raise ValueError(f"an Arrow IPC stream starting with a {first.type} message")
    stream_schema = ipc.read_schema(first)
    while True:
        try:
            message = messages.read_next_message()
        except StopIteration:
            return
        if message.type != "record batch":
            raise ValueError(f"an Arrow IPC {message.type} message (the format has none)")
        budget.charge(_ipc_decoded_bytes(message.metadata.to_pybytes(), message.body),
                      "record batch buffers")
        yield ipc.read_record_batch(message, stream_schema)


FORMATS: dict[str, DataFormat] = {
    "parquet": DataFormat("parquet", "parquet", _ParquetWriter, _read_parquet,
                          "Apache Parquet, zstd-compressed column chunks (default)",
                          reads_by_range=True),
    "arrow": DataFormat("arrow", "arrow", _ArrowWriter, _read_arrow,
                        "Apache Arrow IPC stream, zstd-compressed buffers"),
    "jsonl": DataFormat("jsonl", "jsonl", textformats.JsonlWriter, textformats.read_jsonl,
                        "JSON Lines, one object per row, zstd-compressed"),
    "csv": DataFormat("csv", "csv", textformats.CsvWriter, textformats.read_csv,
                      "CSV with a header, NULL = empty unquoted field, zstd-compressed"),
    "xml": DataFormat("xml", "xml", textformats.XmlWriter, textformats.read_xml,
                      "XML, <row> elements with one element per column, zstd-compressed"),
    "yaml": DataFormat("yaml", "yaml", textformats.YamlWriter, textformats.read_yaml,
                       "YAML, one document of row mappings per 10,000 rows, zstd-compressed"),
}

#: the entry point group of third-party data formats
ENTRY_POINT_GROUP = "dbcrate.formats"
_entry_points_loaded = False


def get_format(name: str) -> DataFormat:
    """Look a format up by name, loading the entry points once if the name is unknown; an
    unknown name lists the known ones."""
    if name not in FORMATS:
        load_entry_points()
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown data format {name!r}",
                         hint=f"known formats: {', '.join(sorted(FORMATS))}") from None


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def register(fmt: DataFormat) -> None:
    """Add a data format; a name can be registered only once.

    :raises ValueError: the name is taken, or the name or extension is not ``[a-z0-9]{1,16}``.
    """
    for label, value in (("name", fmt.name), ("extension", fmt.extension)):
        if not 1 <= len(value) <= 16 or not set(value) <= _NAME_CHARS:
            raise ValueError(f"data format {label} {value!r} is not [a-z0-9]{{1,16}}")
    if fmt.name in FORMATS:
        raise ValueError(f"data format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt


def load_entry_points(*, force: bool = False) -> list[str]:
    """Register the formats of the ``dbcrate.formats`` entry point group; returns their names.

    Runs once per process (again with ``force``). Each entry point loads to a callable
    returning a :class:`DataFormat` (or to a :class:`DataFormat`). A broken entry point, or one
    whose name is already registered, is skipped with a warning: a plugin cannot replace a
    built-in format or make the others unusable.
    """
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return []
    _entry_points_loaded = True
    added: list[str] = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            fmt = loaded if isinstance(loaded, DataFormat) else loaded()
            if not isinstance(fmt, DataFormat):
                raise TypeError(f"returned {type(fmt).__name__}, not a DataFormat")
            if FORMATS.get(fmt.name) is fmt:
                continue
            register(fmt)
        except Exception as exc:
            warnings.warn(
                f"data format entry point {entry.name!r} ({entry.value}) skipped: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        added.append(fmt.name)
    return added
