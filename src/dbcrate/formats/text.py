"""Text data formats: JSON Lines, CSV, XML and YAML data members.

A text member is **one zstd frame** (level = the dump's compression level) holding UTF-8 text;
readers accept several concatenated frames and refuse a truncated one. The member keeps the
plain extension (``c000000.jsonl``): the manifest's member regex allows a single dot, so the
compression is a property of the format, stated here and in docs/FORMAT.md, not of the name.

Text carries no Arrow types, so a reader decodes with the Arrow schema the manifest implies
(``read(source, schema)``) and produces batches of exactly that schema. Every value of every
logical kind round-trips exactly: NULL stays distinct from the empty string, floats keep NaN,
±infinity and -0.0 (NaN payloads are not kept), binaries keep every byte, text keeps NUL,
CR and astral-plane characters, dates/timestamps keep their ±infinity sentinels and years
outside 1..9999, ``time`` keeps 24:00:00.

The value encodings are normative; docs/FORMAT.md ("Text formats") copies them. Shared
spellings (all formats unless a format section says otherwise):

* boolean ``true`` / ``false``; integers in decimal (``-9223372036854775808``);
* floats: the shortest decimal text that reads back to the same float32/float64
  (``0.1``, ``1e+30``, ``-0``); NaN and infinities as the format spells them;
* decimal, string, json, uuid, other: the text itself;
* date ``YYYY-MM-DD``; years 0..9999 with 4 digits, later years ``+YYYYY``, years before 0
  ``-YYYY`` (astronomical numbering: ``0000`` = 1 BC); sentinels ``infinity`` / ``-infinity``;
* time ``HH:MM:SS`` plus ``.ffffff`` (6 digits) when the microseconds are not 0; ``24:00:00``;
* datetime ``<date>THH:MM:SS[.ffffff]``; timestamptz the same in UTC with a ``Z`` suffix;
  sentinels ``infinity`` / ``-infinity``;
* binary: base64 (RFC 4648, padded), except CSV: ``\\x`` and lower-case hex.

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

import binascii
import datetime as dt
import functools
import io
import json
import math
import operator
import os
import re
import struct
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml
import zstandard

from dbcrate.errors import SourceValueError, UsageError
from dbcrate.model.logical import DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY
from dbcrate.model.values import civil_from_days, days_from_civil

#: rows per written slice (JSONL, XML, YAML document) and per decoded batch (JSONL, XML, YAML)
BATCH_ROWS = 10_000
#: a reader also ends a batch once its rows hold this many bytes of text, so that a batch of
#: 10,000 large rows does not hold ~10,000 x the record limit
BATCH_BYTES = 8 << 20
#: compressed bytes fed to the zstd decoder at a time (bounds one call's output to ~8 MiB)
_ZSTD_FEED = 256
#: Arrow CSV block size of the first try (a row must fit in one block; the largest block is
#: the record limit), and the largest Arrow allows (an int32), which caps the limit for CSV
_CSV_BLOCK = 1 << 18
_CSV_MAX_BLOCK = 1 << 30
#: decompressed bytes fed to the XML parser at a time (iterparse's size: feeding 64 KiB made
#: reading 1.8x slower)
_XML_FEED = 1 << 14
#: what the XML and YAML readers tolerate beyond the record limit: their measure of a record
#: (bytes read without a parser event) includes up to one read-ahead buffer
_SLACK = 1 << 18

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


def _env_limit(name: str, default: int) -> int:
    """A positive whole number from the environment (``K``, ``M``, ``G`` suffixes are binary),
    or ``default`` when the variable is unset or empty."""
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
    return _env_limit(RATIO_ENV, MAX_RATIO)


def max_record() -> int:
    """The record limit of readers and writers: :data:`MAX_RECORD` or
    ``$DBCRATE_TEXT_MAX_RECORD``."""
    return _env_limit(RECORD_ENV, MAX_RECORD)


def expansion_budget(member_size: int, ratio: int | None = None) -> int:
    """The most bytes of text a member of ``member_size`` bytes may decompress to."""
    return RATIO_FLOOR + (max_ratio() if ratio is None else ratio) * member_size


def _padding(text_bytes: int, written: int, ratio: int) -> int:
    """Bytes of skippable frames a member of ``written`` bytes holding ``text_bytes`` of text
    needs so that a reader allowing ``ratio`` accepts it (0, or at least one 8-byte header)."""
    needed = -(-(text_bytes - RATIO_FLOOR) // ratio)
    return 0 if needed <= written else max(8, needed - written)


class MemberDecodeError(ValueError):
    """A text member does not decode to the expected schema (a ``ValueError``: the archive
    reader reports it as a corrupt member). ``hint`` says what the user can do, if anything."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _record_too_long(what: str, limit: int) -> MemberDecodeError:
    return MemberDecodeError(
        f"{what} is longer than {limit:,} bytes, the text formats' limit per row "
        f"(a row this long is never written with this limit; {RECORD_ENV} sets it)",
        hint=f"if the archive is trusted and was dumped with a larger {RECORD_ENV}, set the "
             "same value for verify and restore",
    )


def _row_too_long(fmt: str, size: int, limit: int) -> SourceValueError:
    """The writers' refusal: a member holding this row would be refused by readers."""
    return SourceValueError(
        f"a row is {size:,} bytes long in the {fmt} format, more than the text formats' limit "
        f"of {limit:,} bytes per row",
        hint=f"dump with --format parquet or arrow, which have no such limit, or raise "
             f"{RECORD_ENV} (bytes, e.g. 512M) for this dump and for every verify and restore "
             "of the archive",
    )


def _check_rows(texts: Sequence[str], fmt: str, limit: int,
                transform: Callable[[str], str] = str) -> bytes:
    """The UTF-8 text of a slice's rows (each passed through ``transform``), checked against
    the record limit; each row is measured only when the whole slice is longer than the limit."""
    data = transform("".join(texts)).encode("utf-8")
    if len(data) > limit:
        for text in texts:
            size = len(transform(text).encode("utf-8"))
            if size > limit:
                raise _row_too_long(fmt, size, limit)
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


class _ZstdSink:
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


class _ZstdSource(io.RawIOBase):
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


class _SourceView:
    """A private read position in a seekable source shared with other views: Arrow's CSV reader
    reads its input on an I/O thread, and one that is being abandoned (a retry with a larger
    block) may still read ahead while the next pass reads the same source from the start."""

    def __init__(self, source: IO[bytes], start: int, lock: threading.Lock) -> None:
        self._source = source
        self._pos = start
        self._lock = lock

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            self._source.seek(self._pos)
            data = self._source.read(size)
        self._pos += len(data)
        return data

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


def _open_text(source: IO[bytes]) -> io.BufferedReader:
    """The decompressed content of a text member (from the current position of the seekable
    ``source`` to its end), as a buffered binary stream whose ``raw`` is the
    :class:`_ZstdSource` (for its budget)."""
    start = source.tell()
    size = source.seek(0, io.SEEK_END) - start
    source.seek(start)
    ratio = max_ratio()
    raw = _ZstdSource(source, expansion_budget(size, ratio), size, ratio)
    return io.BufferedReader(raw, buffer_size=1 << 16)


def _budget_of(stream: io.BufferedReader) -> _ZstdSource:
    raw = stream.raw
    assert isinstance(raw, _ZstdSource)
    return raw


def _decoding(
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


# ---------------------------------------------------------------------------------------------
# scalar codecs: calendar, dates, times, timestamps, binaries
# ---------------------------------------------------------------------------------------------

_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_FAST_MIN_DAY = dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL
_FAST_MAX_DAY = dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL
_EPOCH = dt.datetime(1970, 1, 1)
_FAST_MIN_US = _FAST_MIN_DAY * _DAY_US
_FAST_MAX_US = (_FAST_MAX_DAY + 1) * _DAY_US - 1

_YEAR = r"([+-]?)([0-9]{4,7})-([0-9]{2})-([0-9]{2})"
_CLOCK = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
_DATE_RE = re.compile(_YEAR, re.ASCII)
_TIME_RE = re.compile(_CLOCK, re.ASCII)
_TS_RE = re.compile(_YEAR + "T" + _CLOCK, re.ASCII)
_TSZ_RE = re.compile(_YEAR + "T" + _CLOCK + "Z", re.ASCII)
_HEX_RE = re.compile(r"\\x((?:[0-9a-fA-F]{2})*)", re.ASCII)


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _date_text(days: int) -> str:
    if _FAST_MIN_DAY <= days <= _FAST_MAX_DAY:
        return dt.date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
    year, month, day = civil_from_days(days)
    if year > 9999:
        text = f"+{year}"
    elif year < 0:
        text = f"-{-year:04d}"
    else:
        text = f"{year:04d}"
    return f"{text}-{month:02d}-{day:02d}"


def _clock_text(us: int) -> str:
    seconds, fraction = divmod(us, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def format_date(days: int) -> str:
    """``YYYY-MM-DD`` (``+YYYYY`` after 9999, ``-YYYY`` before year 0), or ``infinity`` /
    ``-infinity`` for the sentinels."""
    if days == DATE_POS_INFINITY:
        return "infinity"
    if days == DATE_NEG_INFINITY:
        return "-infinity"
    return _date_text(days)


def format_time(us: int) -> str:
    """``HH:MM:SS[.ffffff]``; 86400000000 is ``24:00:00``; anything outside that range is refused."""
    if not 0 <= us <= _DAY_US:
        raise ValueError(f"time value {us} us is outside 00:00:00..24:00:00")
    return "24:00:00" if us == _DAY_US else _clock_text(us)


def format_timestamp(us: int, utc: bool) -> str:
    """``<date>THH:MM:SS[.ffffff]`` (``Z`` appended when ``utc``), or ``infinity`` / ``-infinity``."""
    if us == TS_POS_INFINITY:
        return "infinity"
    if us == TS_NEG_INFINITY:
        return "-infinity"
    if _FAST_MIN_US <= us <= _FAST_MAX_US:
        text = (_EPOCH + dt.timedelta(microseconds=us)).isoformat()
    else:
        days, rest = divmod(us, _DAY_US)
        text = f"{_date_text(days)}T{_clock_text(rest)}"
    return text + "Z" if utc else text


def _days_of(sign: str, year_text: str, month_text: str, day_text: str) -> int:
    year = -int(year_text) if sign == "-" else int(year_text)
    month, day = int(month_text), int(day_text)
    if not 1 <= month <= 12 or not 1 <= day <= _month_days(year, month):
        raise ValueError("no such day")
    return days_from_civil(year, month, day)


def _clock_of(hours: str, minutes: str, seconds: str, fraction: str | None) -> int:
    h, m, s = int(hours), int(minutes), int(seconds)
    if h > 23 or m > 59 or s > 59:
        raise ValueError("no such time of day")
    return ((h * 60 + m) * 60 + s) * 1_000_000 + (int(fraction.ljust(6, "0")) if fraction else 0)


def parse_date(text: str) -> int:
    """Inverse of :func:`format_date`."""
    if text == "infinity":
        return DATE_POS_INFINITY
    if text == "-infinity":
        return DATE_NEG_INFINITY
    match = _DATE_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError("not a date")
        days = _days_of(*match.groups())
        if not DATE_NEG_INFINITY < days < DATE_POS_INFINITY:
            raise ValueError("out of range")
    except ValueError as exc:
        raise MemberDecodeError(f"invalid date {text[:40]!r}: {exc}") from None
    return days


def parse_time(text: str) -> int:
    """Inverse of :func:`format_time`."""
    if text == "24:00:00":
        return _DAY_US
    match = _TIME_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError("not a time")
        return _clock_of(*match.groups())
    except ValueError as exc:
        raise MemberDecodeError(f"invalid time {text[:40]!r}: {exc}") from None


def parse_timestamp(text: str, utc: bool) -> int:
    """Inverse of :func:`format_timestamp`."""
    if text == "infinity":
        return TS_POS_INFINITY
    if text == "-infinity":
        return TS_NEG_INFINITY
    match = (_TSZ_RE if utc else _TS_RE).fullmatch(text)
    try:
        if match is None:
            raise ValueError("not an ISO timestamp" + (" ending in Z" if utc else " without zone"))
        parts = match.groups()
        us = _days_of(*parts[:4]) * _DAY_US + _clock_of(*parts[4:])
        if not TS_NEG_INFINITY < us < TS_POS_INFINITY:
            raise ValueError("out of range")
    except ValueError as exc:
        raise MemberDecodeError(f"invalid timestamp {text[:40]!r}: {exc}") from None
    return us


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MemberDecodeError(f"invalid base64 {text[:40]!r}: {exc}") from None


def _hexencode(data: bytes) -> str:
    return "\\x" + data.hex()


def _hexdecode(text: str) -> bytes:
    match = _HEX_RE.fullmatch(text)
    if match is None:
        raise MemberDecodeError(f"invalid \\x hex bytes {text[:40]!r}")
    return bytes.fromhex(match.group(1))


# ---------------------------------------------------------------------------------------------
# column codecs: Arrow arrays <-> text
# ---------------------------------------------------------------------------------------------


def codec_of(arrow_type: pa.DataType) -> str:
    """The value codec of an Arrow type of :data:`dbcrate.model.logical.ARROW_TYPES`."""
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if arrow_type in (pa.float32(), pa.float64()):
        return "float"
    if arrow_type == pa.string():
        return "text"
    if arrow_type == pa.large_binary():
        return "binary"
    if arrow_type == pa.date32():
        return "date"
    if arrow_type == pa.time64("us"):
        return "time"
    if arrow_type == pa.timestamp("us"):
        return "datetime"
    if arrow_type == pa.timestamp("us", tz="UTC"):
        return "timestamptz"
    raise TypeError(f"the text formats do not encode Arrow type {arrow_type}")


def _check_schema(schema: pa.Schema) -> list[str]:
    if len(schema) == 0:
        raise ValueError("a data member needs at least one column")
    return [codec_of(field.type) for field in schema]


@dataclass(frozen=True)
class _Style:
    """Format-specific spellings of the text codec."""

    nan: str
    pos_inf: str
    neg_inf: str
    hex_binary: bool = False


_CSV_STYLE = _Style("NaN", "Infinity", "-Infinity", hex_binary=True)
_XML_STYLE = _Style("NaN", "INF", "-INF")


def _float_text(array: pa.Array, nan: str, pos_inf: str, neg_inf: str) -> pa.Array:
    """Shortest round-trip text (Arrow's formatter), specials replaced."""
    text = array.cast(pa.string())
    text = pc.if_else(pc.is_nan(array), nan, text)
    text = pc.if_else(pc.equal(array, math.inf), pos_inf, text)
    return pc.if_else(pc.equal(array, -math.inf), neg_inf, text)


def _python_values(array: pa.Array, codec: str) -> list[Any]:
    """Python values of a column: ints for the temporal codecs (never ``datetime`` objects,
    which cannot hold the whole range), bytes for binary."""
    if codec == "date":
        return list(array.view(pa.int32()).to_pylist())
    if codec in ("time", "datetime", "timestamptz"):
        return list(array.view(pa.int64()).to_pylist())
    return list(array.to_pylist())


def _temporal_text(values: list[Any], codec: str) -> list[str | None]:
    if codec == "date":
        return [None if v is None else format_date(v) for v in values]
    if codec == "time":
        return [None if v is None else format_time(v) for v in values]
    utc = codec == "timestamptz"
    return [None if v is None else format_timestamp(v, utc) for v in values]


def to_text(array: pa.Array, codec: str, style: _Style) -> pa.Array:
    """A column as a string array of the shared spellings (CSV, XML); nulls stay null."""
    if codec == "text":
        return array
    if codec == "bool":
        return pc.if_else(array, "true", "false")
    if codec == "int":
        return array.cast(pa.string())
    if codec == "float":
        return _float_text(array, style.nan, style.pos_inf, style.neg_inf)
    values = _python_values(array, codec)
    if codec == "binary":
        encode = _hexencode if style.hex_binary else _b64encode
        return pa.array([None if v is None else encode(v) for v in values], pa.string())
    return pa.array(_temporal_text(values, codec), pa.string())


def _numbers(strings: pa.Array, arrow_type: pa.DataType, name: str) -> pa.Array:
    """Decimal text to integers or floats (Arrow's parsers: range-checked integers, floats
    rounded once and correctly, also to float32)."""
    try:
        return strings.cast(arrow_type)
    except pa.ArrowInvalid as exc:
        raise MemberDecodeError(f"column {name!r}: {exc}") from None


def from_text(strings: pa.Array, field: pa.Field, codec: str, style: _Style) -> pa.Array:
    """Inverse of :func:`to_text` (``strings`` is a string array; nulls stay null)."""
    if codec == "text":
        return strings
    if codec == "bool":
        true = pc.equal(strings, "true")
        valid = pc.or_(true, pc.equal(strings, "false"))
        if not pc.all(valid, skip_nulls=True, min_count=0).as_py():
            raise MemberDecodeError(f"column {field.name!r}: a boolean is not 'true' or 'false'")
        return true
    if codec in ("int", "float"):
        return _numbers(strings, field.type, field.name)
    values = strings.to_pylist()
    if codec == "binary":
        decode = _hexdecode if style.hex_binary else _b64decode
        return pa.array([None if v is None else decode(v) for v in values], pa.large_binary())
    return _temporal_array(values, field.type, codec)


def _temporal_array(values: Sequence[str | None], arrow_type: pa.DataType, codec: str) -> pa.Array:
    if codec == "date":
        ints = [None if v is None else parse_date(v) for v in values]
    elif codec == "time":
        ints = [None if v is None else parse_time(v) for v in values]
    else:
        utc = codec == "timestamptz"
        ints = [None if v is None else parse_timestamp(v, utc) for v in values]
    return pa.array(ints, arrow_type)


def _batch(columns: Sequence[pa.Array], schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(list(columns), schema=schema)


def _slices(batch: pa.RecordBatch, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if not batch.schema.equals(schema):
        raise ValueError(f"batch schema {batch.schema} differs from the member's schema {schema}")
    for start in range(0, batch.num_rows, BATCH_ROWS):
        yield batch.slice(start, BATCH_ROWS)


class _Raw(str):
    """The text of a number as it appeared in a JSON member (decoded by Arrow, which rounds
    correctly to float32 as well as float64)."""

    __slots__ = ()


def _require(values: Sequence[Any], allowed: tuple[type, ...], what: str, name: str) -> None:
    for value in values:
        if value is not None and type(value) not in allowed:
            raise MemberDecodeError(f"column {name!r}: expected {what}, got {value!r:.60}")


# ---------------------------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------------------------

_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]
_JSON_LINE_BREAKS = re.compile("[\u0085\u2028\u2029]")
_JSON_FLOAT_SPECIALS = ('"NaN"', '"Infinity"', '"-Infinity"')


def _escape_line_breaks(text: str) -> str:
    """U+0085, U+2028, U+2029 (line breaks to some line splitters) only occur inside JSON
    strings, where ``\\uXXXX`` means the same character."""
    if _JSON_LINE_BREAKS.search(text) is None:
        return text
    return _JSON_LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _json_tokens(array: pa.Array, codec: str) -> list[str]:
    """One JSON token per value (``null`` for NULL)."""
    if codec == "bool":
        return list(pc.if_else(array, "true", "false").fill_null("null").to_pylist())
    if codec == "int":
        return list(array.cast(pa.string()).fill_null("null").to_pylist())
    if codec == "float":
        text = _float_text(array, *_JSON_FLOAT_SPECIALS)
        text = pc.if_else(pc.equal(text, "-0"), "-0.0", text)
        return list(text.fill_null("null").to_pylist())
    values = _python_values(array, codec)
    if codec == "text":
        return ["null" if v is None else _json_string(v) for v in values]
    if codec == "binary":
        return ["null" if v is None else f'"{_b64encode(v)}"' for v in values]
    return ["null" if v is None else f'"{v}"' for v in _temporal_text(values, codec)]


class JsonlWriter:
    """One JSON object per row, keys = column names in column order, one line each (LF)."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = _check_schema(schema)
        self._schema = schema
        keys = [_json_string(name).replace("%", "%%") + ":%s" for name in schema.names]
        self._template = _escape_line_breaks("{" + ",".join(keys) + "}\n")
        self._out = _ZstdSink(sink, level)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = max_record()
        for part in _slices(batch, self._schema):
            columns = [_json_tokens(c, k) for c, k in zip(part.columns, self._codecs)]
            lines = [self._template % row for row in zip(*columns)]
            self._out.write(_check_rows(lines, "jsonl", limit, _escape_line_breaks))

    def close(self) -> None:
        self._out.close()


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MemberDecodeError("a JSON object has the same key twice")
    return obj


def _json_constant(name: str) -> Any:
    raise MemberDecodeError(f"non-standard JSON token {name}")


_JSON_FLOAT_WORDS = frozenset(("NaN", "Infinity", "-Infinity"))


def _from_json(values: Sequence[Any], field: pa.Field, codec: str) -> pa.Array:
    name, arrow_type = field.name, field.type
    if codec == "bool":
        _require(values, (bool,), "true/false", name)
        return pa.array(values, pa.bool_())
    if codec == "int":
        _require(values, (_Raw,), "a JSON number", name)
        return _numbers(pa.array(values, pa.string()), arrow_type, name)
    if codec == "float":
        for value in values:
            if value is not None and type(value) is not _Raw and value not in _JSON_FLOAT_WORDS:
                raise MemberDecodeError(f"column {name!r}: expected a number, got {value!r:.60}")
        return _numbers(pa.array(values, pa.string()), arrow_type, name)
    _require(values, (str,), "a JSON string", name)
    if codec == "text":
        return pa.array(values, pa.string())
    if codec == "binary":
        return pa.array([None if v is None else _b64decode(v) for v in values], pa.large_binary())
    return _temporal_array(values, arrow_type, codec)


def _row_getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda obj: (obj[only],)
    return operator.itemgetter(*names)


@_decoding
def read_jsonl(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode a JSONL member into batches of ``schema``; a line longer than the record limit is
    refused before it is read whole."""
    codecs = _check_schema(schema)
    names = schema.names
    getter = _row_getter(names)
    limit = max_record()
    rows: list[tuple[Any, ...]] = []
    pending = 0

    def flush() -> pa.RecordBatch:
        columns = list(zip(*rows))
        rows.clear()
        return _batch([_from_json(c, f, k) for c, f, k in zip(columns, schema, codecs)], schema)

    stream = _open_text(source)
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise _record_too_long(f"line {number}", limit)
        obj = json.loads(
            line.decode("utf-8"),
            parse_int=_Raw,
            parse_float=_Raw,
            parse_constant=_json_constant,
            object_pairs_hook=_json_pairs,
        )
        if type(obj) is not dict or len(obj) != len(names):
            raise MemberDecodeError(f"line {number}: not an object with the {len(names)} columns")
        try:
            rows.append(getter(obj))
        except KeyError as exc:
            raise MemberDecodeError(f"line {number}: no column {exc.args[0]!r}") from None
        pending += len(line)
        if len(rows) >= BATCH_ROWS or pending >= BATCH_BYTES:
            pending = 0
            yield flush()
    if rows:
        yield flush()


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


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
        raise _row_too_long("csv", biggest, limit)


class CsvWriter:
    """RFC 4180 CSV: a header of column names, LF line ends, every non-NULL field quoted;
    NULL is an empty unquoted field, the empty string is ``""``."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = _check_schema(schema)
        self._schema = schema
        self._text_schema = pa.schema([pa.field(name, pa.string()) for name in schema.names])
        self._out = _ZstdSink(sink, level)
        options = pacsv.WriteOptions(include_header=True, delimiter=",", quoting_style="all_valid")
        self._writer = pacsv.CSVWriter(self._out, self._text_schema, write_options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = min(max_record(), _CSV_MAX_BLOCK)
        for part in _slices(batch, self._schema):
            columns = [to_text(c, k, _CSV_STYLE) for c, k in zip(part.columns, self._codecs)]
            _check_csv_records(columns, limit)
            self._writer.write_batch(_batch(columns, self._text_schema))

    def close(self) -> None:
        self._writer.close()
        self._out.close()


def _csv_batches(source: IO[bytes], schema: pa.Schema, codecs: list[str], block_size: int,
                 skip: int) -> Iterator[pa.RecordBatch]:
    reader = pacsv.open_csv(
        _open_text(source),
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
        yield _batch(columns, schema)


@_decoding
def read_csv(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode a CSV member into batches of ``schema`` (the header must name its columns).

    Arrow's CSV reader needs every row inside one block: a row longer than the block makes it
    fail ("straddling object"); then the member is read again from the start with a block four
    times larger, skipping the rows already produced (the source is seekable), up to a block of
    the record limit.
    """
    codecs = _check_schema(schema)
    start = source.tell()
    lock = threading.Lock()
    limit = min(max_record(), _CSV_MAX_BLOCK)
    block_size = min(_CSV_BLOCK, limit)
    produced = 0
    while True:
        view = cast(IO[bytes], _SourceView(source, start, lock))
        try:
            for batch in _csv_batches(view, schema, codecs, block_size, produced):
                produced += batch.num_rows
                yield batch
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            if block_size >= limit:  # a record fits in a block as large as itself
                raise _record_too_long(f"a CSV record after row {produced:,}", limit) from None
        block_size = min(block_size * 4, limit)


# ---------------------------------------------------------------------------------------------
# XML
# ---------------------------------------------------------------------------------------------

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NIL = f"{{{_XSI}}}nil"
_XML_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<rows xmlns:xsi="{_XSI}">\n'.encode()
#: characters XML 1.0 cannot carry, not even as character references
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECL = re.compile(
    rb"<\?xml\s+version\s*=\s*([\"'])1\.[0-9]\1(\s+encoding\s*=\s*([\"'])(?i:utf-8)\3)?"
    rb"(\s+standalone\s*=\s*([\"'])(?:yes|no)\5)?\s*\?>"
)
_ASCII_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_ASCII_NAME = _ASCII_NAME_START | frozenset("0123456789-.")


def xml_name(column: str) -> str:
    """The element name of a column: SQL/XML identifier mapping (as PostgreSQL's
    ``table_to_xml``), restricted to ASCII: every character that is not an ASCII letter, ``_``,
    or (not first) a digit, ``-`` or ``.`` becomes ``_xHHHH_`` (upper-case hex of the code
    point, at least 4 digits); ``_`` before ``x`` becomes ``_x005F_``; the first letter of a
    name starting with ``xml`` (any case) is escaped; the empty name is ``_x_``."""
    if not column:
        return "_x_"
    out = []
    for i, ch in enumerate(column):
        if ch == "_" and column[i + 1 : i + 2] == "x":
            out.append("_x005F_")
        elif i == 0 and column[:3].lower() == "xml":
            out.append(f"_x{ord(ch):04X}_")
        elif ch in (_ASCII_NAME if i else _ASCII_NAME_START):
            out.append(ch)
        else:
            out.append(f"_x{ord(ch):04X}_")
    return "".join(out)


def _xml_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def _xml_fragments(array: pa.Array, codec: str, tag: str) -> list[str]:
    """One ``<tag>value</tag>`` element per value."""
    nil = f'<{tag} xsi:nil="true"/>'
    values = to_text(array, codec, _XML_STYLE).to_pylist()
    if codec != "text":
        return [nil if v is None else f"<{tag}>{v}</{tag}>" for v in values]
    out = []
    for value in values:
        if value is None:
            out.append(nil)
        elif _XML_ILLEGAL.search(value):
            out.append(f'<{tag} encoding="base64">{_b64encode(value.encode("utf-8"))}</{tag}>')
        else:
            out.append(f"<{tag}>{_xml_escape(value)}</{tag}>")
    return out


class XmlWriter:
    """``<rows>`` of ``<row>`` elements, one child element per column (named by
    :func:`xml_name`, in column order); NULL is ``xsi:nil="true"``."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = _check_schema(schema)
        self._schema = schema
        self._tags = [xml_name(name) for name in schema.names]
        self._out = _ZstdSink(sink, level)
        self._out.write(_XML_HEAD)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = max_record()
        for part in _slices(batch, self._schema):
            columns = [_xml_fragments(c, k, t)
                       for c, k, t in zip(part.columns, self._codecs, self._tags)]
            rows = ["<row>" + "".join(row) + "</row>\n" for row in zip(*columns)]
            self._out.write(_check_rows(rows, "xml", limit))

    def close(self) -> None:
        if not self._out.closed:
            self._out.write(b"</rows>\n")
        self._out.close()


class _XmlGuard:
    """The parser's input: refuses, before the parser sees them, a document type declaration
    or an entity declaration (so no DTD and no entity expansion) and any encoding but UTF-8."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self._stream = stream
        self._tail = b""
        self._first = True

    def read(self, size: int = -1) -> bytes:
        if self._first:
            self._first = False
            data = self._stream.read(max(size, 4096))
            self._check_prolog(data)
        else:
            data = self._stream.read(size)
        window = self._tail + data
        if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
            raise MemberDecodeError("an XML member must not have a DTD or entity declarations")
        self._tail = window[-8:]
        return data

    @staticmethod
    def _check_prolog(data: bytes) -> None:
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        if body.startswith(b"<?xml") and _XML_DECL.match(body) is None:
            raise MemberDecodeError("an XML member must be UTF-8 (bad XML declaration)")
        if not body.lstrip(b" \t\r\n").startswith(b"<"):
            raise MemberDecodeError("not an XML document")


def _xml_value(elem: ET.Element, codec: str, name: str) -> str | None:
    attrib = elem.attrib
    if attrib:
        nil = attrib.get(_NIL)
        encoding = attrib.get("encoding")
        if len(attrib) != (nil is not None) + (encoding is not None):
            raise MemberDecodeError(f"column {name!r}: unknown attributes {sorted(attrib)}")
        if nil is not None:
            if nil not in ("true", "1") or elem.text:
                raise MemberDecodeError(f"column {name!r}: bad xsi:nil")
            return None
        if encoding is not None:
            if encoding != "base64" or codec != "text":
                raise MemberDecodeError(f"column {name!r}: encoding={encoding!r} not allowed")
            return _b64decode(elem.text or "").decode("utf-8")
    return elem.text or ""


def _xml_events(stream: _XmlGuard, limit: int) -> Iterator[tuple[str, ET.Element]]:
    """``start`` and ``end`` events of the document, parsed incrementally. The parser holds a
    value's text (or a tag) whole until it ends: more than ``limit`` bytes without an event is
    refused before the parser has buffered much more than that."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    quiet = 0  # bytes fed since the last chunk that produced an event
    while data := stream.read(_XML_FEED):
        parser.feed(data)
        seen = False
        for item in parser.read_events():
            seen = True
            yield item  # type: ignore[misc]  # only start and end events were asked for
        quiet = 0 if seen else quiet + len(data)
        if quiet > limit + _SLACK:
            raise _record_too_long("an XML value or tag", limit)
    parser.close()
    yield from parser.read_events()  # type: ignore[misc]


@_decoding
def read_xml(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode an XML member into batches of ``schema`` (streaming; each row is cleared)."""
    codecs = _check_schema(schema)
    names = schema.names
    tags = [xml_name(name) for name in names]
    width = len(tags)
    columns: list[list[str | None]] = [[] for _ in tags]
    count = 0
    depth = 0
    position = 0
    pending = 0  # characters of text in the batch
    root: ET.Element | None = None

    def flush() -> pa.RecordBatch:
        arrays = [from_text(pa.array(values, pa.string()), field, codec, _XML_STYLE)
                  for values, field, codec in zip(columns, schema, codecs)]
        for values in columns:
            values.clear()
        return _batch(arrays, schema)

    guarded = _XmlGuard(_open_text(source))  # no DTD, no entities, UTF-8 only
    for event, elem in _xml_events(guarded, max_record()):
        if event == "start":
            depth += 1
            if depth == 1:
                if elem.tag != "rows":
                    raise MemberDecodeError(f"root element <{elem.tag}> is not <rows>")
                root = elem
            elif depth == 2:
                if elem.tag != "row":
                    raise MemberDecodeError(f"element <{elem.tag}> is not <row>")
                position = 0
            elif depth == 3:
                if position >= width or elem.tag != tags[position]:
                    want = tags[position] if position < width else "</row>"
                    raise MemberDecodeError(f"row {count + 1}: <{elem.tag}> where {want} belongs")
            else:
                raise MemberDecodeError(f"row {count + 1}: nested element <{elem.tag}>")
            continue
        if depth == 3:
            value = _xml_value(elem, codecs[position], names[position])
            columns[position].append(value)
            pending += len(value) if value else 0
            position += 1
        elif depth == 2:
            if position != width:
                raise MemberDecodeError(f"row {count + 1} has {position} of {width} columns")
            count += 1
            assert root is not None
            root.clear()
            if len(columns[0]) >= BATCH_ROWS or pending >= BATCH_BYTES:
                pending = 0
                yield flush()
        depth -= 1
    if columns[0]:
        yield flush()


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------

_FLOAT_TAG = "tag:yaml.org,2002:float"
_YAML_SPECIALS = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf", "-0": "-0.0"}
_YAML_READ_SPECIALS = {
    ".nan": "nan", ".NaN": "nan", ".NAN": "nan",
    ".inf": "inf", ".Inf": "inf", ".INF": "inf",
    "+.inf": "inf", "+.Inf": "inf", "+.INF": "inf",
    "-.inf": "-inf", "-.Inf": "-inf", "-.INF": "-inf",
}
#: characters a YAML double-quoted scalar writes as escapes: the quote, the backslash, every C0
#: and C1 control and DEL, the line and paragraph separators, BOM and the non-characters
#: U+FFFE/U+FFFF (everything else is printable and written as it is)
_YAML_ESCAPED = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]')
_YAML_ESCAPES = {
    '"': '\\"', "\\": "\\\\", "\x00": "\\0", "\x07": "\\a", "\b": "\\b", "\t": "\\t",
    "\n": "\\n", "\x0b": "\\v", "\x0c": "\\f", "\r": "\\r", "\x1b": "\\e", "\x85": "\\N",
    "\u2028": "\\L", "\u2029": "\\P",
}


def _yaml_escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return _YAML_ESCAPES.get(ch) or (f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}")


def _yaml_string(text: str) -> str:
    """A double-quoted YAML scalar: always a string, whatever the text looks like."""
    return '"' + _YAML_ESCAPED.sub(_yaml_escape, text) + '"'


def _yaml_float_text(text: str) -> str:
    """Arrow's shortest text in YAML 1.1 float syntax (a ``.`` and a signed exponent)."""
    special = _YAML_SPECIALS.get(text)
    if special is not None:
        return special
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if e and exponent[0] not in "+-":
        exponent = "+" + exponent
    return mantissa + e + exponent


def _yaml_tokens(array: pa.Array, codec: str) -> list[str]:
    """One YAML flow scalar per value: ``null``, ``true``/``false``, plain integers and floats
    (``.nan``, ``.inf``, ``-.inf``), double-quoted strings, ``!!binary "<base64>"``."""
    if codec in ("bool", "int"):
        return _json_tokens(array, codec)
    if codec == "float":
        return ["null" if v is None else _yaml_float_text(v)
                for v in array.cast(pa.string()).to_pylist()]
    values = _python_values(array, codec)
    if codec == "text":
        return ["null" if v is None else _yaml_string(v) for v in values]
    if codec == "binary":
        return ["null" if v is None else f'!!binary "{_b64encode(v)}"' for v in values]
    return ["null" if v is None else f'"{v}"' for v in _temporal_text(values, codec)]


_LoaderBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _BOOL, _NULL, _BINARY, _TIMESTAMP, _SEQ, _MAP = (
    _TAG + t for t in ("str", "int", "bool", "null", "binary", "timestamp", "seq", "map")
)
#: the YAML tags each codec accepts (besides !!null)
_YAML_TAGS: dict[str, frozenset[str]] = {
    "bool": frozenset((_BOOL,)),
    "int": frozenset((_INT,)),
    "float": frozenset((_FLOAT_TAG, _INT)),
    "text": frozenset((_STR,)),
    "binary": frozenset((_BINARY,)),
    "date": frozenset((_STR, _TIMESTAMP)),
    "time": frozenset((_STR,)),
    "datetime": frozenset((_STR, _TIMESTAMP)),
    "timestamptz": frozenset((_STR, _TIMESTAMP)),
}


_YAML_PLAIN_WORDS = {"null": _NULL, "true": _BOOL, "false": _BOOL}
#: subsets of YAML 1.1's int and float patterns (dbcrate's spellings); anything else goes
#: through PyYAML's resolver
_YAML_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]*)", re.ASCII)
_YAML_PLAIN_FLOAT = re.compile(r"-?[0-9]+\.[0-9]*(?:e[-+][0-9]+)?|-?\.inf|\.nan", re.ASCII)


class _YamlLoader(_LoaderBase):  # type: ignore[misc]
    """PyYAML's safe loader (libyaml's parser when PyYAML has it), used to *compose* only:
    the reader takes each scalar's resolved tag and text and decodes the text itself (numbers
    by Arrow, so that float32 values are rounded once), never constructing Python objects from
    tags."""

    def resolve(self, kind: Any, value: str, implicit: tuple[bool, bool]) -> str:
        """YAML 1.1 resolution, with shortcuts for what dbcrate writes (same tags, faster)."""
        if kind is yaml.ScalarNode:
            if not implicit[0]:  # quoted: always a string
                return _STR
            tag = _YAML_PLAIN_WORDS.get(value)
            if tag is not None:
                return tag
            if _YAML_PLAIN_INT.fullmatch(value):
                return _INT
            if _YAML_PLAIN_FLOAT.fullmatch(value):
                return _FLOAT_TAG
        resolved: str = yaml.resolver.Resolver.resolve(self, kind, value, implicit)
        return resolved


class YamlWriter:
    """One YAML document (``---``) per slice of at most :data:`BATCH_ROWS` rows: a mapping of
    ``columns`` (the column names, in order) and ``rows`` (one flow sequence per row, values
    in column order)."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = _check_schema(schema)
        self._schema = schema
        names = ", ".join(_yaml_string(name) for name in schema.names)
        self._head = f"---\ncolumns: [{names}]\nrows:\n"
        self._template = "- [" + ", ".join(["%s"] * len(schema)) + "]\n"
        self._out = _ZstdSink(sink, level)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = max_record()
        for part in _slices(batch, self._schema):
            if part.num_rows == 0:
                continue
            columns = [_yaml_tokens(c, k) for c, k in zip(part.columns, self._codecs)]
            rows = [self._template % row for row in zip(*columns)]
            self._out.write(self._head.encode("utf-8") + _check_rows(rows, "yaml", limit))

    def close(self) -> None:
        self._out.close()


#: a scalar as the reader keeps it: (resolved tag, text)
_Item = tuple[str, str]
_DEFAULT_TAGS = (None, "!")


def _yaml_number_texts(items: Sequence[_Item], texts: list[str | None], loader: Any) -> list[Any]:
    """Texts of YAML 1.1 numbers Arrow cannot parse (``0x1F``, ``1_000``, ``190:20:30``) as
    PyYAML reads them (only another writer's spellings take this path)."""
    out: list[Any] = []
    for (tag, value), text in zip(items, texts):
        if text is None:
            out.append(None)
            continue
        node = yaml.ScalarNode(tag, value)
        if tag == _INT:
            out.append(str(loader.construct_yaml_int(node)))
        else:
            out.append(_YAML_READ_SPECIALS.get(text) or repr(loader.construct_yaml_float(node)))
    return out


def _from_yaml(items: Sequence[_Item], field: pa.Field, codec: str, loader: Any) -> pa.Array:
    name = field.name
    allowed = _YAML_TAGS[codec]
    texts: list[str | None] = []
    for tag, value in items:
        if tag == _NULL:
            texts.append(None)
        elif tag in allowed:
            texts.append(value)
        else:
            raise MemberDecodeError(f"column {name!r}: a {tag} value {value!r:.60}")
    if codec == "bool":
        return pa.array([None if t is None else loader.bool_values[t.lower()] for t in texts],
                        pa.bool_())
    if codec in ("int", "float"):
        if codec == "float":
            texts = [None if t is None else _YAML_READ_SPECIALS.get(t, t) for t in texts]
        try:
            return _numbers(pa.array(texts, pa.string()), field.type, name)
        except MemberDecodeError:
            texts = _yaml_number_texts(items, texts, loader)
            return _numbers(pa.array(texts, pa.string()), field.type, name)
    if codec == "binary":
        return pa.array([None if t is None else _b64decode("".join(t.split())) for t in texts],
                        pa.large_binary())
    if codec == "text":
        return pa.array(texts, pa.string())
    return _temporal_array(texts, field.type, codec)


class _YamlMeter:
    """The YAML parser's input. The parser holds a whole token (a scalar) before it produces
    its event, so the bytes it reads for one event are counted: more than the record limit is
    refused before the parser has buffered much more than that."""

    def __init__(self, stream: io.BufferedReader, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        if self.count > self._limit + _SLACK:
            raise _record_too_long("a YAML scalar or token", self._limit)
        return data


class _YamlReader:
    """Rows from the parser's events, one at a time, so that memory is bounded by a batch and
    not by a document (composing a document would build a node per scalar, ~40 times the text).

    The structure checked is the format's: documents that are a mapping of ``columns`` (the
    column names, in order) and ``rows`` (sequences of one scalar per column), in either order.
    Tags are resolved as a safe loader's composer resolves them; nothing is constructed from a
    tag. Anchors and aliases of scalars and of rows are kept per document, the anchored text
    bounded by the record limit and every repetition counted against the member's budget (an
    alias is the work of its text for a few bytes of input).
    """

    def __init__(self, loader: Any, meter: _YamlMeter, budget: _ZstdSource, schema: pa.Schema,
                 codecs: list[str], limit: int) -> None:
        self._loader = loader
        self._meter = meter
        self._budget = budget
        self._schema = schema
        self._codecs = codecs
        self._names = list(schema.names)
        self._width = len(schema)
        self._limit = limit
        self._columns: list[list[_Item]] = [[] for _ in schema]
        self._pending = 0
        self._anchors: dict[str, _Item | list[_Item]] = {}
        self._anchored = 0

    def _event(self) -> Any:
        self._meter.count = 0
        return self._loader.get_event()

    def _anchor(self, name: str, value: _Item | list[_Item], size: int) -> None:
        if name in self._anchors:
            raise MemberDecodeError(f"YAML anchor &{name:.40} is defined twice")
        self._anchored += size
        if self._anchored > self._limit:
            raise _record_too_long("the anchored text of a YAML document", self._limit)
        self._anchors[name] = value

    def _scalar(self, event: Any, what: str) -> _Item:
        kind = type(event).__name__
        if kind == "AliasEvent":
            target = self._anchors.get(event.anchor)
            if not isinstance(target, tuple):
                raise MemberDecodeError(f"YAML alias *{event.anchor:.40} in {what} does not "
                                        "name an earlier scalar")
            self._budget.charge(len(target[1]))
            return target
        if kind != "ScalarEvent":
            raise MemberDecodeError(f"YAML {what} is not a scalar")
        tag = event.tag
        if tag in _DEFAULT_TAGS:
            tag = self._loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        item = (tag, event.value)
        if event.anchor is not None:
            self._anchor(event.anchor, item, len(event.value))
        return item

    def _flat_sequence(self, event: Any, what: str) -> list[_Item]:
        """A sequence of at most one scalar per column (an alias of an earlier one too)."""
        kind = type(event).__name__
        if kind == "AliasEvent":
            target = self._anchors.get(event.anchor)
            if not isinstance(target, list):
                raise MemberDecodeError(f"YAML alias *{event.anchor:.40} in {what} does not "
                                        "name an earlier sequence")
            self._budget.charge(sum(len(value) for _, value in target))
            return target
        if kind != "SequenceStartEvent" or event.tag not in (*_DEFAULT_TAGS, _SEQ):
            raise MemberDecodeError(f"YAML {what} is not a sequence")
        items: list[_Item] = []
        while type(next_event := self._event()).__name__ != "SequenceEndEvent":
            if len(items) == self._width:
                raise MemberDecodeError(f"YAML {what} has more than {self._width} values")
            items.append(self._scalar(next_event, what))
        if event.anchor is not None:
            self._anchor(event.anchor, items, sum(len(value) for _, value in items))
        return items

    def _flush(self) -> pa.RecordBatch:
        arrays = [_from_yaml(items, field, codec, self._loader)
                  for items, field, codec in zip(self._columns, self._schema, self._codecs)]
        for items in self._columns:
            items.clear()
        self._pending = 0
        return _batch(arrays, self._schema)

    def _rows(self) -> Iterator[pa.RecordBatch]:
        event = self._event()
        if type(event).__name__ != "SequenceStartEvent" or event.tag not in (*_DEFAULT_TAGS, _SEQ):
            raise MemberDecodeError("YAML rows is not a sequence")
        while type(event := self._event()).__name__ != "SequenceEndEvent":
            row = self._flat_sequence(event, "row")
            if len(row) != self._width:
                raise MemberDecodeError(f"a YAML row is not a sequence of {self._width} scalars")
            for items, item in zip(self._columns, row):
                items.append(item)
                self._pending += len(item[1])
            if len(self._columns[0]) >= BATCH_ROWS or self._pending >= BATCH_BYTES:
                yield self._flush()

    def _document(self) -> Iterator[pa.RecordBatch]:
        self._anchors.clear()
        self._anchored = 0
        event = self._event()
        if type(event).__name__ != "MappingStartEvent" or event.tag not in (*_DEFAULT_TAGS, _MAP):
            raise MemberDecodeError("a YAML document is not a mapping of 'columns' and 'rows'")
        seen: set[str] = set()
        while type(event := self._event()).__name__ != "MappingEndEvent":
            tag, key = self._scalar(event, "mapping key")
            if tag != _STR or key in seen:
                raise MemberDecodeError("a YAML document has a bad or repeated key")
            seen.add(key)
            if key == "columns":
                columns = self._flat_sequence(self._event(), "columns")
                if any(tag != _STR for tag, _ in columns) or [n for _, n in columns] != self._names:
                    raise MemberDecodeError(f"YAML columns are not {self._names[:20]}")
            elif key == "rows":
                yield from self._rows()
            else:
                raise MemberDecodeError("a YAML document is not a mapping of 'columns' and 'rows'")
        if len(seen) != 2:
            raise MemberDecodeError("a YAML document is not a mapping of 'columns' and 'rows'")

    def batches(self) -> Iterator[pa.RecordBatch]:
        self._event()  # StreamStartEvent
        while type(self._event()).__name__ != "StreamEndEvent":  # DocumentStartEvent
            yield from self._document()
            self._event()  # DocumentEndEvent (the parser allows nothing else here)
        if self._columns[0]:
            yield self._flush()


@_decoding
def read_yaml(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode a YAML member into batches of ``schema``, streaming the parser's events."""
    codecs = _check_schema(schema)
    limit = max_record()
    text = _open_text(source)
    meter = _YamlMeter(text, limit)
    loader = _YamlLoader(meter)
    try:
        yield from _YamlReader(loader, meter, _budget_of(text), schema, codecs, limit).batches()
    finally:
        loader.dispose()
