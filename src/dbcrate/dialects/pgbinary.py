"""PostgreSQL's binary COPY format, built from Arrow batches without a Python object per value.

Why: loading through ``COPY ... FROM STDIN (FORMAT csv)`` makes the client print every value as
text and the server parse it back, and bytea travels as hex (twice its size). The binary form
is what the server's receive functions read directly: measured on the benchmark's tables, the
server's side of ``COPY FROM`` took half as long in binary (a 4 KB-blob table 2.5 s -> 0.9 s,
timestamps and JSON about 2x), and the client no longer formats text.

How: every column becomes an Arrow ``large_binary`` array of its rows' *fields* (a 4-byte
big-endian length, -1 for NULL, then the value in the type's binary form), computed with numpy
and Arrow kernels over whole columns; one ``binary_join_element_wise`` then lays the fields of
each row side by side behind the row's field count, and the joined array's data buffer is the
COPY data of the batch.

Which encoder a column gets is decided by the *target* column's receive function (the base
type's, for a domain), so a value is always sent in the form the server will read. A column
with no encoder here (intervals, arrays, ranges, a float32 into a double, ...) makes
:func:`plan_encoders` return ``None`` and the caller keeps the CSV path: the two paths load
the same values (tests/test_pgbinary.py compares them).

Reference: https://www.postgresql.org/docs/current/sql-copy.html (Binary Format) and each type's
``*_recv`` function in the server's sources.
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.model.logical import DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY
from dbcrate.model.values import string_parts

#: the file header: signature, flags (no OIDs), header extension length 0
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
#: the file trailer: a field count of -1
TRAILER = b"\xff\xff"

_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days since 1970-01-01
_EPOCH_US = _EPOCH_DAYS * 86_400_000_000
_I64 = np.iinfo(np.int64)
_I32 = np.iinfo(np.int32)
# numeric: sign words of the binary form
_NUMERIC_NEG, _NUMERIC_NAN, _NUMERIC_PINF, _NUMERIC_NINF = 0x4000, 0xC000, 0xD000, 0xF000
_SPECIAL_NUMERIC = {"NaN": _NUMERIC_NAN, "Infinity": _NUMERIC_PINF, "-Infinity": _NUMERIC_NINF}
# wider than this many digits (a huge unconstrained numeric), a value is encoded in Python
_NUMERIC_VECTOR_DIGITS = 96
_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_CANONICAL_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_EMPTY = pa.scalar(b"", pa.large_binary())

#: one column of a batch -> its rows' fields: a ``large_binary`` array (never null), or a
#: matrix of bytes with one row per value when every field has the same width
FieldEncoder = Callable[[pa.Array], "np.ndarray[Any, Any] | pa.Array"]


class EncodeError(ValueError):
    """A value that the target column's type cannot take (the message names the value)."""


# ----------------------------------------------------------------------------- planning
def plan_encoders(arrow_types: list[pa.DataType], receives: list[str | None]) -> list[FieldEncoder] | None:
    """One encoder per column, or ``None`` if any column must go through the text path.

    :param arrow_types: the Arrow type of each loaded column, in COPY column order.
    :param receives: the receive function of each target column's type (``int8recv``,
        ``numeric_recv``, ...; for a domain, its base type's), ``None`` if unknown.
    """
    encoders = []
    for arrow, recv in zip(arrow_types, receives, strict=True):
        encoder = _encoder_for(arrow, (recv or "").rsplit(".", 1)[-1])
        if encoder is None:
            return None
        encoders.append(encoder)
    return encoders


_INT_WIDTHS = {"int2recv": (pa.int16(), ">i2"), "int4recv": (pa.int32(), ">i4"),
               "int8recv": (pa.int64(), ">i8")}
_TEXT_RECEIVES = {"textrecv", "varcharrecv", "bpcharrecv", "json_recv", "enum_recv"}


def _encoder_for(arrow: pa.DataType, recv: str) -> FieldEncoder | None:
    if recv in _INT_WIDTHS and pa.types.is_integer(arrow):
        target, dtype = _INT_WIDTHS[recv]
        # a checked cast: a value too wide for the column fails, as it does in text
        return lambda arr: _fixed(_numbers(arr.cast(target), dtype), _valid(arr))
    if recv == "float8recv" and arrow == pa.float64():
        return lambda arr: _fixed(_numbers(arr, ">f8"), _valid(arr))
    if recv == "float4recv" and arrow == pa.float32():
        return lambda arr: _fixed(_numbers(arr, ">f4"), _valid(arr))
    if recv == "boolrecv" and arrow == pa.bool_():
        return lambda arr: _fixed(_numbers(arr.cast(pa.uint8()), "u1"), _valid(arr))
    if _is_text(arrow):
        if recv in _TEXT_RECEIVES:
            return _variable
        if recv == "jsonb_recv":
            return lambda arr: _variable(arr, version=b"\x01")
        if recv == "uuid_recv":
            return _uuid
        if recv == "numeric_recv":
            return _numeric
    if recv == "numeric_recv" and pa.types.is_integer(arrow):
        return lambda arr: _numeric(arr.cast(pa.string()))
    if recv == "bytearecv" and (pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow)):
        return _variable
    if recv == "date_recv" and arrow == pa.date32():
        return _date
    if recv in ("timestamp_recv", "timestamptz_recv") and pa.types.is_timestamp(arrow) \
            and arrow.unit == "us":
        return _timestamp
    if recv == "time_recv" and arrow == pa.time64("us"):
        return lambda arr: _fixed(_numbers(arr.cast(pa.int64()), ">i8"), _valid(arr))
    return None


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


# ----------------------------------------------------------------------------- encoding
def encode_batch(batch: pa.RecordBatch, encoders: list[FieldEncoder]) -> pa.Buffer:
    """The COPY rows of ``batch`` (no signature, no trailer) as one buffer."""
    n = batch.num_rows
    if n == 0:
        return pa.py_buffer(b"")
    fields = [enc(batch.column(i)) for i, enc in enumerate(encoders)]
    count = len(encoders).to_bytes(2, "big")
    if all(isinstance(f, np.ndarray) for f in fields):
        # every field has the same width in every row: the rows are one matrix
        widths = [f.shape[1] for f in fields]
        rows = np.empty((n, 2 + sum(widths)), np.uint8)
        rows[:, :2].view(">i2")[:] = len(encoders)
        at = 2
        for f, w in zip(fields, widths):
            rows[:, at:at + w] = f
            at += w
        return pa.py_buffer(rows)
    parts = [_as_binary(f) for f in fields]
    joined = pc.binary_join_element_wise(pa.scalar(count, pa.large_binary()), *parts, _EMPTY)
    return pa.py_buffer(string_parts(joined)[1])


def encode_row(batch: pa.RecordBatch, encoders: list[FieldEncoder]) -> Iterator[bytes | memoryview]:
    """The COPY data of a one-row ``batch`` (what :func:`encode_batch` gives) in pieces, each
    text or binary value a view of its Arrow buffer: a 100 MB value is sent as it is, not
    copied into a field and then into a row (two more copies of its size in memory)."""
    if batch.num_rows != 1:
        raise ValueError("encode_row takes a batch of one row")
    yield len(encoders).to_bytes(2, "big")
    for i, encoder in enumerate(encoders):
        column = batch.column(i)
        if encoder is not _variable or not _is_bytes(column.type):
            fields = encoder(column)
            if isinstance(fields, np.ndarray):
                yield fields.tobytes()
            else:
                yield string_parts(fields)[1].data
            continue
        if not column.is_valid()[0].as_py():
            yield b"\xff\xff\xff\xff"  # length -1: NULL
            continue
        wide = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int64 if wide else np.int32)
        start, end = int(offsets[column.offset]), int(offsets[column.offset + 1])
        if end - start > _I32.max:
            raise EncodeError("a value is larger than PostgreSQL's 1 GB field limit")
        yield (end - start).to_bytes(4, "big")
        data = column.buffers()[2]
        yield memoryview(data.slice(start, end - start)) if data is not None else b""


def _is_bytes(t: pa.DataType) -> bool:
    return bool(_is_text(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t))


def _as_binary(fields: np.ndarray[Any, Any] | pa.Array) -> pa.Array:
    """Fields as a ``large_binary`` array (a matrix of fixed-width fields is wrapped)."""
    if not isinstance(fields, np.ndarray):
        return fields
    n, width = fields.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_binary(), n,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(fields))])


def _valid(arr: pa.Array) -> np.ndarray[Any, Any] | None:
    """The validity of ``arr`` as a bool array, ``None`` if no value is null."""
    if arr.null_count == 0:
        return None
    return np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(arr: pa.Array, dtype: str) -> np.ndarray[Any, Any]:
    """Fixed-width values as big-endian bytes, one row of bytes per value (nulls as zeros)."""
    values = arr.fill_null(0).to_numpy(zero_copy_only=False)
    out = np.ascontiguousarray(values.astype(dtype, copy=False))
    return out.view(np.uint8).reshape(len(arr), out.dtype.itemsize)


def _fixed(payload: np.ndarray[Any, Any],
           valid: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any] | pa.Array:
    """Fields of fixed-width values: ``payload`` is one row of bytes per value; a NULL row
    (``valid`` false) becomes the 4-byte length -1 alone. Without NULLs, the fields are
    returned as a matrix of bytes (one row per value), otherwise as a binary array."""
    n, width = payload.shape
    out = np.empty((n, 4 + width), np.uint8)
    lengths = out[:, :4].view(">i4")  # one 4-byte word per row (a strided byte copy is slow)
    lengths[:] = width
    out[:, 4:] = payload
    if valid is None:
        return out
    nulls = ~valid
    lengths[nulls] = -1
    keep = np.ones((n, 4 + width), bool)
    keep[nulls, 4:] = False
    data = out[keep]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.where(valid, 4 + width, 4), out=offsets[1:])
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _variable(arr: pa.Array, version: bytes = b"") -> pa.Array:
    """Fields of text or binary values (their bytes as they are), behind an optional format
    version byte (``jsonb``'s 1)."""
    binary = arr.cast(pa.large_binary())
    n = len(binary)
    lengths = pc.binary_length(binary).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    valid = _valid(binary)
    field_lengths = lengths + len(version)
    if valid is not None:
        field_lengths = np.where(valid, field_lengths, -1)
    if field_lengths.size and field_lengths.max() > _I32.max:
        raise EncodeError("a value is larger than PostgreSQL's 1 GB field limit")
    header = pa.Array.from_buffers(
        pa.large_binary(), n,
        [None, pa.py_buffer(np.arange(0, 4 * (n + 1), 4, dtype=np.int64)),
         pa.py_buffer(field_lengths.astype(">i4"))])
    parts = [header]
    if version:  # behind every length but -1
        parts.append(pc.if_else(pc.is_valid(binary), pa.scalar(version, pa.large_binary()), _EMPTY))
    return pc.binary_join_element_wise(*parts, binary.fill_null(b""), _EMPTY)


def _date(arr: pa.Array) -> pa.Array:
    days = arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    shifted = days - _EPOCH_DAYS
    # out of PostgreSQL's range either way: keep it out of range instead of wrapping around,
    # and off _I32.min / _I32.max, PostgreSQL's own '-infinity' / 'infinity' (DATEVAL_NOBEGIN,
    # DATEVAL_NOEND), which only the sentinels may become
    shifted = np.clip(shifted, _I32.min + 1, _I32.max - 1)
    shifted[days == DATE_POS_INFINITY] = _I32.max
    shifted[days == DATE_NEG_INFINITY] = _I32.min
    out = shifted.astype(">i4")
    return _fixed(out.view(np.uint8).reshape(len(arr), 4), _valid(arr))


def _timestamp(arr: pa.Array) -> pa.Array:
    us = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    # out of PostgreSQL's range either way: keep it out of range instead of wrapping around.
    # "<=": the finite value _I64.min + _EPOCH_US (290279-12-22 19:59:05.224192 BC) would
    # shift to exactly _I64.min, PostgreSQL's '-infinity' (DT_NOBEGIN), not to an error.
    # Finite values cannot shift to _I64.max ('infinity'): they end at TS_MAX_FINITE.
    with np.errstate(over="ignore"):
        shifted = np.where(us <= _I64.min + _EPOCH_US, _I64.min + 1, us - _EPOCH_US)
    shifted[us == TS_POS_INFINITY] = _I64.max
    shifted[us == TS_NEG_INFINITY] = _I64.min
    out = shifted.astype(">i8")
    return _fixed(out.view(np.uint8).reshape(len(arr), 8), _valid(arr))


def _fix_rows(arr: pa.Array, mask: np.ndarray[Any, Any], fix: Callable[[str], str]) -> pa.Array:
    """``arr`` with the values where ``mask`` is set replaced by ``fix(value)`` (few rows)."""
    if not mask.any():
        return arr
    rows = np.flatnonzero(mask)
    fixed = pa.array([fix(arr[int(i)].as_py()) for i in rows], arr.type)
    return pc.replace_with_mask(arr, pa.array(mask), fixed)


def _uuid(arr: pa.Array) -> pa.Array:
    n = len(arr)
    valid = _valid(arr)
    present = np.ones(n, bool) if valid is None else valid
    canonical = pc.fill_null(pc.match_substring_regex(arr, _CANONICAL_UUID), True)
    arr = _fix_rows(arr, present & ~np.asarray(canonical.to_numpy(zero_copy_only=False), bool),
                    _canonical_uuid)
    hexed = pc.replace_substring(arr.fill_null("00000000-0000-0000-0000-000000000000"), "-", "")
    text = hexed.cast(pa.large_binary())
    raw = binascii.unhexlify(string_parts(text)[1].data)
    return _fixed(np.frombuffer(raw, np.uint8).reshape(n, 16), valid)


def _canonical_uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise EncodeError(f"{text!r} is not a UUID") from None


def _plain_decimal(text: str) -> str:
    """A decimal in exponent notation (dbcrate 0.1.0 wrote some) -> plain positional text."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise EncodeError(f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise EncodeError(f"{text!r} is not a decimal number")
    return format(value, "f")


def _numeric(arr: pa.Array) -> pa.Array:
    """Decimal texts -> ``numeric``'s binary form: base-10000 digit groups, the weight of the
    first, sign, display scale (the number of fraction digits written). Exact whatever the
    precision: the integer part is aligned to whole groups of four on the left, the fraction on
    the right; the server strips zero groups again."""
    n = len(arr)
    if n == 0:
        return pa.array([], pa.large_binary())
    arr = arr.cast(pa.string())
    valid = _valid(arr)
    present = np.ones(n, bool) if valid is None else valid
    special = np.asarray(pc.is_in(arr, value_set=pa.array(list(_SPECIAL_NUMERIC))).to_numpy(
        zero_copy_only=False), bool)
    # NULLs and the special words get zero digits (a special value is its sign word alone)
    text = pc.if_else(pa.array(special | ~present), "0", arr).cast(pa.large_binary())
    if not _only_plain_characters(text):  # exponent notation, or not a number at all
        text = _fix_rows(text.cast(pa.string()), ~_matches(text, _PLAIN_DECIMAL),
                         _plain_decimal).cast(pa.large_binary())
    offsets, data, _ = string_parts(text)
    negative = data[offsets[:-1]] == ord("-")
    starts = offsets[:-1] + negative
    lengths = offsets[1:] - starts
    dots = pc.find_substring(text, ".").to_numpy(zero_copy_only=False).astype(np.int64) - negative
    int_len = np.where(dots >= 0, dots, lengths)
    frac_len = np.where(dots >= 0, lengths - dots - 1, 0)
    width_i = max(4, -(-int(int_len.max()) // 4) * 4)
    width_f = -(-int(frac_len.max()) // 4) * 4
    if width_i + width_f > _NUMERIC_VECTOR_DIGITS or frac_len.max() > 0x3FFF:
        return _numeric_slow(arr)
    k = (width_i + width_f) // 4
    if width_i + width_f <= 18:
        digits = _digit_groups_decimal(text, width_i, width_f, k)
    else:
        if not _matches(text, _PLAIN_DECIMAL).all():
            raise EncodeError("a value is not a decimal number")
        digits = _digit_groups_chars(data, starts, int_len, frac_len, width_i, width_f)
    sign = np.where(negative, _NUMERIC_NEG, 0).astype(np.uint16)
    for word_text, word in _SPECIAL_NUMERIC.items():
        sign[np.asarray(pc.fill_null(pc.equal(arr, word_text), False).to_numpy(zero_copy_only=False),
                        bool)] = word
    rec = np.empty((n, 4 + k), ">u2")
    rec[:, 0] = k
    rec[:, 1] = width_i // 4 - 1  # weight of the first digit group
    rec[:, 2] = sign
    rec[:, 3] = frac_len
    rec[:, 4:] = digits
    return _fixed(rec.view(np.uint8).reshape(n, 2 * (4 + k)), valid)


_PLAIN_CHARACTERS = np.zeros(256, bool)
_PLAIN_CHARACTERS[list(b"0123456789.-")] = True


def _only_plain_characters(text: pa.Array) -> bool:
    """Whether every byte of the values is a digit, a point or a minus (one table lookup over
    the whole buffer: far cheaper than a regular expression per value)."""
    body = string_parts(text)[1]
    return body.size > 0 and bool(_PLAIN_CHARACTERS[body].all())


def _matches(arr: pa.Array, pattern: str) -> np.ndarray[Any, Any]:
    found = pc.match_substring_regex(arr.cast(pa.large_string()), pattern)
    return np.asarray(pc.fill_null(found, True).to_numpy(zero_copy_only=False), bool)


def _digit_groups_decimal(text: pa.Array, width_i: int, width_f: int, k: int) -> np.ndarray[Any, Any]:
    """Base-10000 digit groups when every value has at most 18 digits once its fraction is
    padded to ``width_f``: Arrow parses the text (checking it) into a 128-bit integer scaled
    by ``10**width_f``, whose low word is the value."""
    try:
        scaled = text.cast(pa.large_string()).cast(pa.decimal128(width_i + width_f, width_f))
    except pa.ArrowInvalid:
        raise EncodeError("a value is not a decimal number") from None
    words = np.frombuffer(scaled.buffers()[1], np.int64)[2 * scaled.offset:2 * (scaled.offset + len(text))]
    value = np.abs(words[0::2])
    digits = np.empty((len(text), k), np.uint16)
    for j in range(k - 1, -1, -1):
        value, digits[:, j] = np.divmod(value, 10_000)
    return digits


def _digit_groups_chars(data: np.ndarray[Any, Any], starts: np.ndarray[Any, Any],
                        int_len: np.ndarray[Any, Any], frac_len: np.ndarray[Any, Any],
                        width_i: int, width_f: int) -> np.ndarray[Any, Any]:
    """Base-10000 digit groups of any width, from the digit characters: the integer part
    right-aligned to ``width_i`` and the fraction left-aligned behind it, zero-padded (one
    numpy pass per character position)."""
    n = len(starts)
    chars = np.full((n, width_i + width_f), ord("0"), np.uint8)
    for j in range(width_i):
        offset_in_int = j - (width_i - int_len)
        take = offset_in_int >= 0
        chars[take, j] = data[starts[take] + offset_in_int[take]]
    for j in range(width_f):
        take = j < frac_len
        chars[take, width_i + j] = data[starts[take] + int_len[take] + 1 + j]
    k = (width_i + width_f) // 4
    groups = chars.reshape(n, k, 4).astype(np.uint16) - ord("0")
    return groups @ np.array([1000, 100, 10, 1], np.uint16)


def _numeric_slow(arr: pa.Array) -> pa.Array:
    """:func:`_numeric` one value at a time, for the rare batch with a huge number in it."""
    fields = []
    for text in arr.to_pylist():
        if text is None:
            fields.append(b"\xff\xff\xff\xff")
            continue
        payload = _numeric_value(text)
        fields.append(len(payload).to_bytes(4, "big") + payload)
    return pa.array(fields, pa.large_binary())


def _numeric_value(text: str) -> bytes:
    if text in _SPECIAL_NUMERIC:
        return (0).to_bytes(2, "big") * 2 + _SPECIAL_NUMERIC[text].to_bytes(2, "big") + b"\0\0"
    negative = text.startswith("-")
    int_part, _, frac = text.lstrip("-").partition(".")
    if not re.fullmatch(r"[0-9]+", int_part) or (frac and not frac.isdigit()):
        raise EncodeError(f"{text!r} is not a decimal number")
    width_i = -(-len(int_part) // 4) * 4
    width_f = -(-len(frac) // 4) * 4
    digits = int_part.rjust(width_i, "0") + frac.ljust(width_f, "0")
    groups = [int(digits[i:i + 4]) for i in range(0, len(digits), 4)]
    head = [len(groups), width_i // 4 - 1, _NUMERIC_NEG if negative else 0, len(frac)]
    return b"".join(v.to_bytes(2, "big", signed=False) for v in head + groups)
