"""A reader of the Thrift compact protocol, as much as the Parquet footer and page headers need.

Parquet's metadata is read here, not through pyarrow's metadata objects:
``RowGroupMetaData.column()`` aborts the process on some malformed statistics instead of
raising. Every read is bounded by the bytes given: a structure that runs past them raises
:class:`Short` (the caller may read more and try again); a malformed one ``ValueError``.
"""

from __future__ import annotations

from typing import Any

#: the deepest nesting of values read (a struct in a list in a struct ... counts each level)
MAX_DEPTH = 32


class Short(Exception):
    """The bytes read so far end inside the thrift structure."""


def need(buf: bytes, i: int, n: int) -> int:
    if n < 0 or i + n > len(buf):
        raise Short
    return i + n


def varint(buf: bytes, i: int) -> tuple[int, int]:
    try:
        byte = buf[i]
        if byte < 0x80:  # (most varints of the metadata are one byte)
            return byte, i + 1
        value, shift = byte & 0x7F, 7
        while shift <= 63:
            i += 1
            byte = buf[i]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, i + 1
            shift += 7
    except IndexError:
        raise Short from None
    raise ValueError("bad varint in Parquet metadata")


def _too_deep(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("Parquet metadata nested too deeply")


def _value(buf: bytes, i: int, kind: int, depth: int, item: bool = False) -> tuple[Any, int]:
    """One thrift compact value of ``kind`` (integers zigzag-decoded, structs as dicts by field
    id, lists and maps as lists, binary as bytes, doubles as None); the position after it."""
    _too_deep(depth)
    if kind in (4, 5, 6):
        raw, i = varint(buf, i)
        return (raw >> 1) ^ -(raw & 1), i
    if kind == 12:
        return read_struct(buf, i, depth + 1)
    if kind == 8:
        n, i = varint(buf, i)
        return buf[i:need(buf, i, n)], i + n
    if kind in (1, 2) and not item:  # a boolean field: its value is its type
        return kind == 1, i
    if kind in (1, 2, 3, 7):  # a boolean list item, a byte, a double
        end = need(buf, i, 8 if kind == 7 else 1)
        return (None if kind == 7 else buf[i] if kind == 3 else buf[i] == 1), end
    if kind not in (9, 10, 11):
        raise ValueError(f"bad thrift type {kind} in Parquet metadata")
    elements: tuple[int, ...]
    if kind == 11:  # map: a varint size, then one byte of key and value types
        n, i = varint(buf, i)
        types = buf[need(buf, i, 1) - 1] if n else 0
        i, elements = i + (1 if n else 0), (types >> 4, types & 0x0F)
    else:  # list, set: size (15: a varint follows) and element type in one byte
        head = buf[need(buf, i, 1) - 1]
        n, i, elements = head >> 4, i + 1, (head & 0x0F,)
        if n == 15:
            n, i = varint(buf, i)
    need(buf, i, n)  # every element takes a byte at least: a huge count is refused here
    out = []
    for _ in range(n):
        for elem in elements:
            value, i = _value(buf, i, elem, depth + 1, item=True)
            out.append(value)
    return out, i


def read_struct(buf: bytes, i: int, depth: int = 0) -> tuple[dict[int, Any], int]:
    # (the integer fields, most of a page header's, are read here without a call of _value:
    # the footer and page headers of a restore's members were parsed twice as fast)
    fields: dict[int, Any] = {}
    last = 0
    try:
        while True:
            head = buf[i]
            i += 1
            if head == 0:
                return fields, i
            if head >> 4:
                last += head >> 4
            else:
                raw, i = varint(buf, i)
                last = (raw >> 1) ^ -(raw & 1)
            kind = head & 0x0F
            if 4 <= kind <= 6:
                _too_deep(depth)
                raw, i = varint(buf, i)
                fields[last] = (raw >> 1) ^ -(raw & 1)
            else:
                fields[last], i = _value(buf, i, kind, depth)
    except IndexError:
        raise Short from None


def field_int(fields: Any, key: int, where: str, default: int | None = None) -> int:
    """A non-negative integer field of a thrift struct (``ValueError`` naming ``where``)."""
    value = fields.get(key, default) if isinstance(fields, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"bad Parquet metadata: {where}")
    return value

