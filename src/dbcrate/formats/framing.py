"""The zstd framing of the text data formats and the limits that bound a text member.

A text member is **one zstd frame** (level = the dump's compression level) holding UTF-8 text;
readers accept several concatenated frames and refuse a truncated one. The member keeps the
plain extension (``c000000.jsonl``): the manifest's member regex allows a single dot, so the
compression is a property of the format, stated here and in docs/FORMAT.md, not of the name.

Writers slice incoming batches into pieces of at most :data:`BATCH_ROWS` rows and readers
yield batches of at most that many rows or :data:`BATCH_BYTES` of text (CSV: Arrow's block
size), so memory is bounded by a batch, never by the member.

A zstd frame can expand ~32,000-fold, so readers bound what a member may cost (docs/FORMAT.md,
"Limits of the text formats"): its text to ``1 MiB + 1000 x`` its size (:func:`max_ratio`),
counted while decompressing, and one row to 64 MiB (:func:`max_record`), refused before it is
held whole. Writers keep every member they write within both: they pad a member of degenerate
data with a skippable frame and refuse a longer row.
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, cast

import pyarrow as pa
import yaml
import zstandard

from dbcrate.errors import SourceValueError, UsageError
from dbcrate.model.temporal import MemberDecodeError

__all__ = [
    "BATCH_BYTES", "BATCH_ROWS", "MAX_RATIO", "MAX_RECORD", "RATIO_ENV", "RATIO_FLOOR",
    "READ_SLACK", "RECORD_ENV", "MemberDecodeError", "ZstdSink", "ZstdSource", "budget_of",
    "check_rows", "decoding", "env_limit", "expansion_budget", "max_ratio", "max_record",
    "open_text", "record_too_long", "row_too_long",
]

#: rows per written slice (JSONL, XML, YAML document) and per decoded batch (JSONL, XML, YAML)
BATCH_ROWS = 10_000
#: a reader also ends a batch once its rows hold this many bytes of text, so that a batch of
#: 10,000 large rows does not hold ~10,000 x the record limit
BATCH_BYTES = 8 << 20
#: compressed bytes fed to the zstd decoder at a time (bounds one call's output to ~8 MiB)
_ZSTD_FEED = 256
#: what the XML and YAML readers tolerate beyond the record limit: their measure of a record
#: (bytes read without a parser event) includes up to one read-ahead buffer
READ_SLACK = 1 << 18

# ---------------------------------------------------------------------------------------------
# limits: a text member is a zstd frame that can expand ~32,000-fold, and its reader parses text
# into Python objects; these bound the work and memory one member can cost (docs/FORMAT.md,
# "Limits of the text formats")
# ---------------------------------------------------------------------------------------------

#: a member may decompress to at most RATIO_FLOOR + MAX_RATIO x its size. Real tables give
#: ratios of 5-30; a member of identical rows 10,000-30,000, which is why writers pad such a
#: member with a skippable frame (:func:`_padding`) rather than readers allowing that much.
MAX_RATIO = 1000
RATIO_FLOOR = 1 << 20
#: the longest row (JSONL line, CSV record, XML or YAML token) in bytes of text; writers refuse
#: longer rows, so that every member they write is readable
MAX_RECORD = 64 << 20
RATIO_ENV = "DBCRATE_TEXT_MAX_RATIO"
RECORD_ENV = "DBCRATE_TEXT_MAX_RECORD"
_SIZE = re.compile(r"\s*([0-9]{1,15})\s*([KMG]?)i?B?\s*", re.ASCII | re.IGNORECASE)
_SHIFTS = {"": 0, "K": 10, "M": 20, "G": 30}


def env_limit(name: str, default: int) -> int:
    """A positive whole number from the environment (``K``, ``M``, ``G`` suffixes are binary),
    or ``default`` when the variable is unset or empty (also read by the binary formats'
    :func:`dbcrate.formats.budget.decode_ratio`)."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    match = _SIZE.fullmatch(raw)
    value = int(match.group(1)) << _SHIFTS[match.group(2).upper()] if match else 0
    if value < 1:
        raise UsageError(f"{name}={raw!r} is not a positive whole number",
                         hint=f"unset it for the default ({default:,}), or give e.g. 256M")
    return value


def max_ratio() -> int:
    """The decompression ratio readers allow: :data:`MAX_RATIO` or ``$DBCRATE_TEXT_MAX_RATIO``."""
    return env_limit(RATIO_ENV, MAX_RATIO)


def max_record() -> int:
    """The record limit of readers and writers: :data:`MAX_RECORD` or
    ``$DBCRATE_TEXT_MAX_RECORD``."""
    return env_limit(RECORD_ENV, MAX_RECORD)


def expansion_budget(member_size: int, ratio: int | None = None) -> int:
    """The most bytes of text a member of ``member_size`` bytes may decompress to."""
    return RATIO_FLOOR + (max_ratio() if ratio is None else ratio) * member_size


def _padding(text_bytes: int, written: int, ratio: int) -> int:
    """Bytes of skippable frames a member of ``written`` bytes holding ``text_bytes`` of text
    needs so that a reader allowing ``ratio`` accepts it (0, or at least one 8-byte header)."""
    needed = -(-(text_bytes - RATIO_FLOOR) // ratio)
    return 0 if needed <= written else max(8, needed - written)


def record_too_long(what: str, limit: int) -> MemberDecodeError:
    """The readers' refusal of ``what`` (a line, a record, a token) longer than ``limit``."""
    return MemberDecodeError(
        f"{what} is longer than {limit:,} bytes, the text formats' limit per row "
        f"(a row this long is never written with this limit; {RECORD_ENV} sets it)",
        hint=f"if the archive is trusted and was dumped with a larger {RECORD_ENV}, set the "
             "same value for verify and restore",
    )


def row_too_long(fmt: str, size: int, limit: int) -> SourceValueError:
    """The writers' refusal: a member holding this row would be refused by readers."""
    return SourceValueError(
        f"a row is {size:,} bytes long in the {fmt} format, more than the text formats' limit "
        f"of {limit:,} bytes per row",
        hint=f"dump with --format parquet or arrow, which have no such limit, or raise "
             f"{RECORD_ENV} (bytes, e.g. 512M) for this dump and for every verify and restore "
             "of the archive",
    )


def check_rows(texts: Sequence[str], fmt: str, limit: int,
                transform: Callable[[str], str] = str) -> bytes:
    """The UTF-8 text of a slice's rows (each passed through ``transform``), checked against
    the record limit; each row is measured only when the whole slice is longer than the limit."""
    data = transform("".join(texts)).encode("utf-8")
    if len(data) > limit:
        for text in texts:
            size = len(transform(text).encode("utf-8"))
            if size > limit:
                raise row_too_long(fmt, size, limit)
    return data


# ---------------------------------------------------------------------------------------------
# zstd framing
# ---------------------------------------------------------------------------------------------

#: magic number of a zstd skippable frame (RFC 8878, 3.1.2): decoders skip its content
_SKIPPABLE_MAGIC = 0x184D2A50
_SKIPPABLE_MAX = 1 << 30


class _CountingSink:
    """Counts the compressed bytes on their way to the member's sink."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.count = 0

    def write(self, data: Any) -> int:
        self._sink.write(data)
        n = len(memoryview(data).cast("B"))
        self.count += n
        return n

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()


class ZstdSink:
    """Write side: compresses into ``sink`` as one zstd frame; ``close`` ends the frame and
    leaves ``sink`` open (the caller measures and hashes it).

    A member whose text compresses better than readers allow (a table of identical rows, a
    value of one repeated character) gets a skippable frame of zeros after its frame, just
    long enough for :func:`expansion_budget` of the member's size to cover the text: readers
    then bound the work of any member by its size, and still read every member dbcrate writes.
    The padding is at most 1/1000 of the text.
    """

    def __init__(self, sink: IO[bytes], level: int) -> None:
        compressor = zstandard.ZstdCompressor(level=level)
        self._counter = _CountingSink(sink)
        self._writer = compressor.stream_writer(cast(IO[bytes], self._counter), closefd=False,
                                                write_return_read=True)
        self.text_bytes = 0
        self.closed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n: int = self._writer.write(data)
        self.text_bytes += n
        return n

    def flush(self) -> None:
        """Nothing to do: the frame is completed by :meth:`close` (Arrow's CSV writer calls this)."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writer.close()  # type: ignore[no-untyped-call]
            # never more lenient than the default, so that default readers accept the member
            ratio = min(MAX_RATIO, max_ratio())
            pad = _padding(self.text_bytes, self._counter.count, ratio)
            while pad:
                # frames of at most 1 GiB; never leave a remainder too small for a header
                size = min(pad - 8, _SKIPPABLE_MAX)
                if 0 < pad - 8 - size < 8:
                    size -= 8
                self._counter.write(struct.pack("<II", _SKIPPABLE_MAGIC, size))
                for start in range(0, size, 1 << 20):
                    self._counter.write(bytes(min(1 << 20, size - start)))
                pad -= 8 + size


class ZstdSource(io.RawIOBase):
    """Read side: the decompressed bytes of one or more zstd frames (skippable frames are
    skipped, as RFC 8878 requires).

    Compressed input is fed in small pieces so that one call's output stays bounded even for a
    hostile, extremely compressible frame, and the output is refused as soon as it exceeds
    ``budget`` bytes (see :func:`expansion_budget`); a frame cut short is an error (zstandard's
    own stream reader would end silently).
    """

    def __init__(self, source: IO[bytes], budget: int, size: int, ratio: int) -> None:
        super().__init__()
        self._source = source
        self._dctx = zstandard.ZstdDecompressor()
        self._obj: Any = None
        self._pending = b""
        self._buf = b""
        self._pos = 0
        self._frames = 0
        self._budget = budget
        self._size = size
        self._ratio = ratio
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._buf):
            if not self._fill():
                return 0
        n = min(len(buffer), len(self._buf) - self._pos)
        buffer[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def charge(self, n: int) -> None:
        """Count ``n`` bytes of text against the budget: decompressed bytes, and what a YAML
        alias repeats (an alias is as much work as its text, for a few bytes)."""
        self.total += n
        if self.total > self._budget:
            raise MemberDecodeError(
                f"the member expands to more than {self._budget:,} bytes of text, "
                f"{self._ratio:,} times its {self._size:,} bytes plus {RATIO_FLOOR:,}: refused "
                f"as a decompression bomb (dbcrate never writes such a member; {RATIO_ENV} "
                "sets the ratio)",
                hint=f"if the archive is trusted, raise {RATIO_ENV} (now {self._ratio:,})",
            )

    def _fill(self) -> bool:
        data = self._pending or self._source.read(_ZSTD_FEED)
        self._pending = b""
        if not data:
            if self._obj is not None and not self._obj.eof:
                raise MemberDecodeError("the zstd frame is truncated")
            if self._frames == 0:
                raise MemberDecodeError("the member holds no zstd frame")
            return False
        if self._obj is None or self._obj.eof:
            self._obj = self._dctx.decompressobj()
            self._frames += 1
        try:
            self._buf = self._obj.decompress(data)
        except zstandard.ZstdError as exc:
            raise MemberDecodeError(f"zstd: {exc}") from None
        self._pos = 0
        self.charge(len(self._buf))
        if self._obj.eof:
            self._pending = self._obj.unused_data
        return True


def open_text(source: IO[bytes]) -> io.BufferedReader:
    """The decompressed content of a text member (from the current position of the seekable
    ``source`` to its end), as a buffered binary stream whose ``raw`` is the
    :class:`ZstdSource` (for its budget)."""
    start = source.tell()
    size = source.seek(0, io.SEEK_END) - start
    source.seek(start)
    ratio = max_ratio()
    raw = ZstdSource(source, expansion_budget(size, ratio), size, ratio)
    return io.BufferedReader(raw, buffer_size=1 << 16)


def budget_of(stream: io.BufferedReader) -> ZstdSource:
    """The :class:`ZstdSource` under a stream of :func:`open_text` (to charge it more text)."""
    raw = stream.raw
    assert isinstance(raw, ZstdSource)
    return raw


def decoding(
    read: Callable[[IO[bytes], pa.Schema], Iterator[pa.RecordBatch]],
) -> Callable[[IO[bytes], pa.Schema], Iterator[pa.RecordBatch]]:
    """Turn every decoding failure of a reader into :class:`MemberDecodeError` (a ValueError)."""

    @functools.wraps(read)
    def wrapper(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            yield from read(source, schema)
        except (ValueError, pa.ArrowException, OSError, EOFError):
            raise
        except (
            yaml.YAMLError,
            SyntaxError,  # xml.etree.ElementTree.ParseError
            OverflowError,
            TypeError,
            KeyError,
            IndexError,
            zstandard.ZstdError,
        ) as exc:
            raise MemberDecodeError(f"{type(exc).__name__}: {exc}") from None

    return wrapper
