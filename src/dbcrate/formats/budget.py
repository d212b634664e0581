"""The decode budget of the binary formats, and the checks of a Parquet member's metadata
against it.

A few kilobytes of Parquet or Arrow can declare gigabytes (a 1 MiB value in a dictionary,
indexed 2,000 times; a zstd page of one repeated byte). Readers check the declared sizes (page
headers, dictionary indexes, IPC buffer lengths) against a :class:`DecodeBudget` before
decoding and decode in pieces of bounded size; writers pad a member whose data compresses
better than the budget allows (:func:`padding_for`; docs/FORMAT.md, "Limits of the binary
formats").
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dbcrate.formats.framing import env_limit
from dbcrate.formats.thrift import Short, field_int, read_struct

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
    return env_limit(DECODE_RATIO_ENV, DECODE_RATIO)


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


def fixed_width(schema: pa.Schema) -> int:
    """Bytes per row a batch of ``schema`` costs whatever its values: fixed-width values,
    offsets of variable-length ones, and a byte of validity (generously) per column."""
    width = 0
    for t in schema.types:
        try:
            width += 9 if is_large(t) else 5 if is_variable(t) else max(1, t.bit_width // 8) + 1
        except ValueError:  # (a nested type: no schema of dbcrate has one)
            width += 17
    return width


def is_large(t: pa.DataType) -> bool:
    return bool(pa.types.is_large_binary(t) or pa.types.is_large_string(t))


def is_variable(t: pa.DataType) -> bool:
    return bool(is_large(t) or pa.types.is_binary(t) or pa.types.is_string(t))


def stream_size(source: Any) -> int:
    here, end = source.tell(), source.seek(0, io.SEEK_END)
    source.seek(here)
    return int(end)


# ---------------------------------------------- Parquet footer and page headers against the budget
def _page_header(source: Any, pos: int, end: int) -> tuple[int, int, int, int]:
    """(page type, uncompressed size, compressed size, header length) of the page at ``pos``."""
    window = 256
    while True:
        source.seek(pos)
        buf = source.read(min(window, end - pos))
        try:
            fields, length = read_struct(buf, 0)
        except Short:
            if len(buf) < min(window, end - pos) or window >= MAX_PAGE_HEADER or pos + window >= end:
                raise ValueError(f"truncated Parquet page header at byte {pos}") from None
            window *= 8
            continue
        where = f"page header at byte {pos}"
        return (field_int(fields, 1, where), field_int(fields, 2, where), field_int(fields, 3, where), length)


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
        footer = read_struct(source.read(length), 0)[0]
    except Short:
        raise ValueError("truncated Parquet footer") from None
    groups, dictionary = [], set()
    for g, group in enumerate(footer.get(4) or []):  # FileMetaData.row_groups
        columns = group.get(1) if isinstance(group, dict) else None
        total = 0
        for c, column in enumerate(columns if isinstance(columns, list) else []):
            meta = column.get(3) if isinstance(column, dict) else None  # ColumnChunk.meta_data
            stored = field_int(meta, 7, f"column chunk {g}/{c}")  # total_compressed_size
            start = field_int(meta, 9, f"column chunk {g}/{c}")  # data_page_offset
            first = field_int(meta, 11, f"column chunk {g}/{c}", 0)  # dictionary_page_offset
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
        groups.append((field_int(group, 3, f"row group {g}"), total))
    return groups, dictionary


def _dictionary_bytes(pf: pq.ParquetFile, columns: list[str], budget: DecodeBudget,
                      declared: int) -> int:
    """Bytes of values the dictionary-encoded ``columns`` decode to (their dictionaries'
    values, once per row that refers to them), reading indexes only; refused as soon as
    ``declared`` plus that exceeds the budget."""
    total = 0
    for batch in pf.iter_batches(batch_size=PIECE_ROWS, columns=columns, use_threads=False):
        for column in batch.columns:
            total += int(pc.sum(row_lengths(column)).as_py() or 0)
        budget.check(declared + total, "dictionary-encoded values")
    return total


def row_lengths(column: pa.DictionaryArray) -> pa.Array:
    """Bytes of each row's value of a dictionary binary/string column; 0 for NULL."""
    lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
    return pc.fill_null(lengths.cast(pa.int64()), 0)


def check_parquet(source: Any) -> tuple[pq.ParquetFile, list[tuple[int, int]], list[int],
                                        DecodeBudget]:
    """Check a Parquet member's declared sizes against its budget without decoding its values
    (every page header; the indexes of dictionary-encoded columns); returns the file, (rows,
    bytes its pages decompress to) of each row group, its dictionary-encoded variable-length
    columns (by position) and its budget. Raises ``ValueError`` (:class:`DecodeLimitExceeded`
    for a bomb) or an Arrow error."""
    budget = DecodeBudget(stream_size(source))
    pf = pq.ParquetFile(source)
    fields = pf.schema_arrow
    if pf.metadata.num_columns != len(fields) or len(set(fields.names)) != len(fields):
        raise ValueError("nested or duplicate columns (a table's columns are flat and unique)")
    groups, dictionary = _parquet_layout(source, budget.size)
    if len(groups) != pf.metadata.num_row_groups or any(c >= len(fields) for c in dictionary):
        raise ValueError("the Parquet footer does not describe its row groups")
    declared = sum(g[1] for g in groups) + sum(g[0] for g in groups) * fixed_width(fields)
    budget.check(declared, "pages and rows")
    indexes = [c for c in sorted(dictionary) if is_variable(fields[c].type)]
    if indexes:  # (by index: Arrow matches a name with dots as a path)
        reader = pq.ParquetFile(source, metadata=pf.metadata, read_dictionary=indexes)
        names = [fields[c].name for c in indexes]
        budget.check(declared + _dictionary_bytes(reader, names, budget, declared),
                     "dictionary-encoded values")
    return pf, groups, indexes, budget

