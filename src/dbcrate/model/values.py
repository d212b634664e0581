"""Vectorised conversions between engine text forms and the archive's Arrow encoding.

Calendar arithmetic here is proleptic Gregorian on plain integers (Howard Hinnant's
days-from-civil), so that dates before year 1 and after 9999, which Python's ``datetime``
cannot hold but PostgreSQL can, are carried exactly.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.model.logical import (
    DATE_MAX_FINITE,
    DATE_MIN_FINITE,
    DATE_NEG_INFINITY,
    DATE_POS_INFINITY,
    TS_MAX_FINITE,
    TS_MIN_FINITE,
    TS_NEG_INFINITY,
    TS_POS_INFINITY,
)

US_PER_DAY = 86_400_000_000

# PostgreSQL's finite range in archive units (its sources: JULIAN_MINYEAR .. DATE_END_JULIAN,
# MIN_TIMESTAMP .. END_TIMESTAMP). Dates lie well inside the date32 sentinels. Timestamps
# start far above TS_NEG_INFINITY but end *past* TS_POS_INFINITY: the instants from
# 294247-01-10 04:00:54.775807 (exactly the sentinel) to PG_TS_MAX have no encoding.
#: 4714-11-24 BC and 5874897-12-31, in days since 1970-01-01
PG_DATE_MIN, PG_DATE_MAX = -2_440_588, 2_145_042_905
#: 4714-11-24 00:00:00 BC and 294276-12-31 23:59:59.999999, in microseconds since 1970
PG_TS_MIN, PG_TS_MAX = -210_866_803_200_000_000, 9_224_318_015_999_999_999


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (astronomical year numbering)."""
    y -= m <= 2
    era = y // 400  # Python floors: no correction for negative years (the C original has one)
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """Inverse of :func:`days_from_civil`."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


_PG_DATE = re.compile(r"^(\d{4,})-(\d{2})-(\d{2})( BC)?$")
_PG_TS = re.compile(
    r"^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
    r"(?:([+-])(\d{2})(?::?(\d{2}))?(?::(\d{2}))?|Z)?( BC)?$"
)


def _year(text: str, bc: str | None) -> int:
    year = int(text)
    return 1 - year if bc else year


def parse_pg_date(text: str) -> int:
    """PostgreSQL ISO date text -> days since epoch (sentinels for ±infinity).

    :raises ValueError: unrecognised text, or a finite date outside ``DATE_MIN_FINITE ..
        DATE_MAX_FINITE`` (a finite date never comes back as a sentinel).
    """
    if text == "infinity":
        return DATE_POS_INFINITY
    if text == "-infinity":
        return DATE_NEG_INFINITY
    m = _PG_DATE.match(text)
    if not m:
        raise ValueError(f"unrecognised date {text!r}")
    days = days_from_civil(_year(m[1], m[4]), int(m[2]), int(m[3]))
    if not DATE_MIN_FINITE <= days <= DATE_MAX_FINITE:  # unreachable from PostgreSQL
        # (its dates end at day 2145042905), but a finite date must never become a sentinel
        raise ValueError(
            f"outside {format_pg_date(DATE_MIN_FINITE)} .. {format_pg_date(DATE_MAX_FINITE)}, the "
            "archive's finite dates: the days beyond are its sentinels or past its 32-bit count")
    return days


def parse_pg_timestamp(text: str) -> int:
    """PostgreSQL ISO timestamp(tz) text -> microseconds since epoch, UTC for zoned values
    (sentinels for ±infinity).

    :raises ValueError: unrecognised text, or a finite instant outside ``TS_MIN_FINITE ..
        TS_MAX_FINITE`` (a finite instant never comes back as a sentinel).
    """
    if text == "infinity":
        return TS_POS_INFINITY
    if text == "-infinity":
        return TS_NEG_INFINITY
    m = _PG_TS.match(text)
    if not m:
        raise ValueError(f"unrecognised timestamp {text!r}")
    days = days_from_civil(_year(m[1], m[12]), int(m[2]), int(m[3]))
    secs = int(m[4]) * 3600 + int(m[5]) * 60 + int(m[6])
    if m[8]:
        offset = int(m[9]) * 3600 + int(m[10] or 0) * 60 + int(m[11] or 0)
        secs -= offset if m[8] == "+" else -offset
    micros = days * US_PER_DAY + secs * 1_000_000 + int((m[7] or "").ljust(6, "0"))
    if micros > TS_MAX_FINITE:
        # PostgreSQL's last 30 years (294247-01-10 04:00:54.775807 .. 294276-12-31) land here:
        # the first instant *is* the 'infinity' sentinel, the later ones overflow int64
        raise ValueError(
            f"later than {format_pg_timestamp(TS_MAX_FINITE, False)} (UTC for timestamptz), the "
            "archive's last finite timestamp: 2^63-1 microseconds after 1970 is its 'infinity' "
            "and later instants overflow its 64-bit count")
    if micros < TS_MIN_FINITE:  # unreachable from PostgreSQL (it starts in 4714 BC)
        raise ValueError(
            f"earlier than {format_pg_timestamp(TS_MIN_FINITE, False)}, the archive's first "
            "finite timestamp: -2^63 microseconds is its '-infinity'")
    return micros


def format_pg_date(days: int) -> str:
    if days == DATE_POS_INFINITY:
        return "infinity"
    if days == DATE_NEG_INFINITY:
        return "-infinity"
    y, m, d = civil_from_days(days)
    if y <= 0:
        return f"{1 - y:04d}-{m:02d}-{d:02d} BC"
    return f"{y:04d}-{m:02d}-{d:02d}"


def format_pg_timestamp(micros: int, tz: bool) -> str:
    if micros == TS_POS_INFINITY:
        return "infinity"
    if micros == TS_NEG_INFINITY:
        return "-infinity"
    days, rest = divmod(micros, US_PER_DAY)
    secs, us = divmod(rest, 1_000_000)
    y, m, d = civil_from_days(days)
    hh, mm, ss = secs // 3600, secs // 60 % 60, secs % 60
    frac = f".{us:06d}" if us else ""
    zone = "+00" if tz else ""
    if y <= 0:
        return f"{1 - y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}{frac}{zone} BC"
    return f"{y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}{frac}{zone}"


class UnrepresentableValue(ValueError):
    """A source value that has no exact encoding in the archive (carries the value's text)."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"{text!r}: {why}")
        self.text = text
        self.why = why


def format_time(micros: int) -> str:
    """Time of day in microseconds -> ``HH:MM:SS[.ffffff]`` (86,400,000,000 -> 24:00:00)."""
    secs, us = divmod(micros, 1_000_000)
    text = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return text + (f".{us:06d}" if us else "")


def time_texts(arr: pa.Array) -> list[str | None]:
    """A time64(us) column as engine-neutral text (exact, including PostgreSQL's 24:00:00)."""
    return [None if v is None else format_time(v) for v in arr.cast(pa.int64()).to_pylist()]


def map_strings(arr: pa.Array, fn: Callable[[str], Any], out_type: pa.DataType) -> pa.Array:
    """Apply ``fn`` to every non-null string (the slow path, used only when needed).

    :raises UnrepresentableValue: naming the first value that cannot be converted or stored.
    """
    out: list[Any] = []
    for v in arr.to_pylist():
        if v is None:
            out.append(None)
            continue
        try:
            value = fn(v)
            pa.scalar(value, type=out_type)
        except (ValueError, OverflowError, pa.ArrowInvalid) as exc:
            raise UnrepresentableValue(v, str(exc) or "out of range") from None
        out.append(value)
    return pa.array(out, type=out_type)


def text_to_date(arr: pa.Array) -> pa.Array:
    """PostgreSQL date text -> date32, vectorised with an exact fallback (BC, infinity)."""
    try:
        return pc.cast(arr, pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return map_strings(arr, parse_pg_date, pa.int32()).cast(pa.date32())


def text_to_timestamp(arr: pa.Array, tz: bool) -> pa.Array:
    target = pa.timestamp("us", tz="UTC" if tz else None)
    try:
        return pc.cast(arr, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return map_strings(arr, parse_pg_timestamp, pa.int64()).cast(target)


def text_to_time(arr: pa.Array) -> pa.Array:
    def parse(text: str) -> int:
        hh, mm, rest = text.split(":")
        ss, _, frac = rest.partition(".")
        return ((int(hh) * 60 + int(mm)) * 60 + int(ss)) * 1_000_000 + int(frac.ljust(6, "0"))

    return map_strings(arr, parse, pa.int64()).cast(pa.time64("us"))


def string_parts(arr: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], pa.Buffer | None]:
    """(offsets, data bytes, validity) of a large string/binary array, offsets relative to
    the data returned."""
    validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0] : offsets[-1]], validity


#: hex text unhexlified at once by :func:`hex_to_binary` (a larger value is one piece alone)
_HEX_PIECE_BYTES = 8 * 1024 * 1024


def hex_to_binary(arr: pa.Array) -> pa.Array:
    r"""PostgreSQL bytea hex output (``\x0a1b``) -> binary, without a Python loop per value:
    in pieces of about :data:`_HEX_PIECE_BYTES` of text, the "\x" prefixes are masked out and
    the rest unhexlified at once; a value of a piece or more is unhexlified alone, in place, so
    that memory beyond the input and the output stays bounded whatever the values' sizes."""
    arr = arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr
    if len(arr) == 0:
        return pa.array([], pa.large_binary())
    offsets, body, validity = string_parts(arr)
    lengths = offsets[1:] - offsets[:-1]
    prefixed = lengths >= 2
    pieces = []
    start = 0
    while start < len(arr):
        stop = int(np.searchsorted(offsets, offsets[start] + _HEX_PIECE_BYTES, side="right")) - 1
        stop = min(len(arr), max(start + 1, stop))
        pieces.append(_unhex(body, offsets, prefixed, start, stop))
        start = stop
    raw = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    del pieces
    out_lengths = np.where(prefixed, (lengths - 2) // 2, 0)
    out_offsets = np.concatenate(([0], np.cumsum(out_lengths))).astype(np.int64)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(arr),
        [_validity_copy(arr, validity), pa.py_buffer(out_offsets.tobytes()), pa.py_buffer(raw)],
    )


def _unhex(body: np.ndarray[Any, Any], offsets: np.ndarray[Any, Any],
           prefixed: np.ndarray[Any, Any], start: int, stop: int) -> bytes:
    """The bytes of values ``start`` to ``stop`` (exclusive) of hex text ``body``."""
    lo, hi = int(offsets[start]), int(offsets[stop])
    try:
        if stop - start == 1:
            return binascii.unhexlify(body[lo + 2:hi].data) if prefixed[start] else b""
        keep = np.ones(hi - lo, bool)
        starts = offsets[start:stop][prefixed[start:stop]] - lo
        keep[starts] = False
        keep[starts + 1] = False
        return binascii.unhexlify(body[lo:hi][keep].tobytes())
    except binascii.Error as exc:
        raise ValueError(f"invalid bytea hex text: {exc}") from None


def _validity_copy(arr: pa.Array, validity: pa.Buffer | None) -> pa.Buffer | None:
    if validity is None or arr.null_count == 0:
        return None
    if arr.offset == 0:
        return validity
    mask = pc.is_valid(arr)
    return mask.buffers()[1]


def binary_to_hex(arr: pa.Array) -> pa.Array:
    r"""binary -> PostgreSQL bytea hex input text (``\x..``): one hexlify of the whole buffer,
    then the "\x" prefixes inserted at every value's start in one numpy call."""
    arr = arr.cast(pa.large_binary()) if arr.type != pa.large_binary() else arr
    if len(arr) == 0:
        return pa.array([], pa.large_string())
    offsets, body, validity = string_parts(arr)
    hexed = pa.py_buffer(binascii.hexlify(body.tobytes()))
    digits = pa.LargeStringArray.from_buffers(
        len(arr), pa.py_buffer((offsets * 2).tobytes()), hexed, _validity_copy(arr, validity)
    )
    prefix = pa.scalar("\\x", pa.large_string())
    return pc.binary_join_element_wise(prefix, digits, pa.scalar("", pa.large_string()))


def decimal_text(value: Any) -> str:
    """Canonical text of an exact number read from a driver (Decimal, int, float or str)."""
    if isinstance(value, bool):
        raise ValueError("boolean where a number was expected")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return _decimal_str(Decimal(repr(value)))  # shortest exact digits, never exponent form
    if isinstance(value, Decimal):
        return _decimal_str(value)
    if isinstance(value, str):
        try:
            return _decimal_str(Decimal(value))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    raise ValueError(f"{type(value).__name__} where a number was expected")


def _decimal_str(d: Decimal) -> str:
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "Infinity" if d > 0 else "-Infinity"
    return format(d, "f")  # plain digits: 1E+3 -> "1000", 1E-5 -> "0.00001"


def decimal_fits(text: str, precision: int | None, scale: int | None) -> bool:
    """Whether a canonical decimal text fits NUMERIC(precision, scale) without rounding."""
    if text in ("NaN", "Infinity", "-Infinity"):
        return False
    body = text.lstrip("-")
    whole, _, frac = body.partition(".")
    frac = frac.rstrip("0")
    whole = whole.lstrip("0")
    if scale is not None and len(frac) > scale:
        return False
    return not (precision is not None and len(whole) > precision - (scale or 0))


def significant_digits(text: str) -> int:
    """Significant decimal digits of a canonical decimal text."""
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0")
    return max(len(digits), 1)


_PLAIN_DECIMAL = r"^-?[0-9]*(?:\.[0-9]*)?$"


def decimal_misfits(
    texts: pa.Array, precision: int | None, scale: int | None, max_significant: int | None
) -> np.ndarray[Any, Any]:
    """Mask of decimal texts that do not fit NUMERIC(precision, scale) or have more than
    ``max_significant`` significant digits: :func:`decimal_fits` and :func:`significant_digits`
    over a whole column with Arrow kernels (the per-value loop cost 8 s of a 44 s restore of
    the benchmark into SQLite). NaN and the infinities are not misfits here (the caller knows
    whether the target holds them); NULLs never are. Texts that are not plain digits go through
    the per-value functions, so the answer is theirs for every input."""
    plain = pc.fill_null(pc.match_substring_regex(texts, _PLAIN_DECIMAL), False)
    body = pc.ascii_ltrim(texts, characters="-0")  # "-0012.3400" -> "12.3400"
    dot = pc.find_substring(body, ".")
    has_dot = pc.greater_equal(dot, 0)
    whole_len = pc.if_else(has_dot, dot, pc.binary_length(body))
    no_trailing = pc.ascii_rtrim(body, characters="0")  # "12.34"; keeps the dot: "12."
    frac_len = pc.if_else(
        has_dot, pc.subtract(pc.subtract(pc.binary_length(no_trailing), dot), 1), 0
    )
    bad = pa.array(np.zeros(len(texts), bool))
    if scale is not None:
        bad = pc.or_(bad, pc.greater(frac_len, scale))
    if precision is not None:
        bad = pc.or_(bad, pc.greater(whole_len, precision - (scale or 0)))
    if max_significant is not None:
        # the whole part's digits and the fraction's up to its last non-zero one; without a
        # whole part, from the fraction's first non-zero digit; without a fraction, up to the
        # whole part's last non-zero digit
        significant = pc.if_else(
            pc.greater(frac_len, 0),
            pc.if_else(
                pc.greater(whole_len, 0),
                pc.add(whole_len, frac_len),
                pc.binary_length(pc.ascii_ltrim(no_trailing, characters=".0")),
            ),
            pc.binary_length(pc.ascii_rtrim(body, characters=".0")),
        )
        bad = pc.or_(bad, pc.greater(significant, max_significant))
    mask = np.asarray(pc.fill_null(pc.and_(bad, plain), False).to_numpy(zero_copy_only=False), bool)
    # NaN, the infinities and any text that is not plain digits: per value
    other = pc.and_(pc.invert(plain), texts.is_valid())
    for j in np.flatnonzero(np.asarray(other.to_numpy(zero_copy_only=False), bool)):
        text = texts[int(j)].as_py()
        if text in ("NaN", "Infinity", "-Infinity"):
            continue
        too_big = (precision is not None or scale is not None) and not decimal_fits(
            text, precision, scale)
        mask[j] = too_big or (max_significant is not None
                              and significant_digits(text) > max_significant)
    return mask


def float_signbit(arr: pa.Array) -> np.ndarray[Any, Any]:
    values = arr.to_numpy(zero_copy_only=False)
    return np.asarray(np.signbit(values) & (values == 0))


def first_true(mask: Sequence[bool] | np.ndarray[Any, Any]) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.asarray(mask))]
