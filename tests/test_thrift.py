"""The Thrift compact reader of the Parquet checks (:mod:`dbcrate.formats.thrift`) against a
plain reference reader, on random bytes and on well-formed structures: the same values, the
same end positions, the same refusals (``Short`` for bytes that end too soon, ``ValueError``
for malformed ones)."""

from __future__ import annotations

import glob
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from dbcrate.formats import thrift


# ------------------------------------------------------------------ the reference reader
# (the module's first version, one call per value: simple enough to read as the protocol)
def need(buf: bytes, i: int, n: int) -> int:
    if n < 0 or i + n > len(buf):
        raise thrift.Short
    return i + n


def varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while shift <= 63:
        byte = buf[need(buf, i, 1) - 1]
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
        end = need(buf, i, 8 if kind == 7 else 1)
        return (None if kind == 7 else buf[i] if kind == 3 else buf[i] == 1), end
    if kind in (4, 5, 6):
        raw, i = varint(buf, i)
        return (raw >> 1) ^ -(raw & 1), i
    if kind == 8:
        n, i = varint(buf, i)
        return buf[i:need(buf, i, n)], i + n
    if kind == 12:
        return read_struct(buf, i, depth + 1)
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
    fields: dict[int, Any] = {}
    last = 0
    while True:
        head = buf[need(buf, i, 1) - 1]
        i += 1
        if head == 0:
            return fields, i
        if head >> 4:
            last += head >> 4
        else:
            raw, i = varint(buf, i)
            last = (raw >> 1) ^ -(raw & 1)
        fields[last], i = _value(buf, i, head & 0x0F, depth)


def _outcome(reader: Any, buf: bytes) -> Any:
    try:
        return reader(buf, 0)
    except thrift.Short:
        return "short"
    except ValueError as exc:
        return ("malformed", str(exc))
    except RecursionError:
        return "recursion"


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_INTS = st.integers(-(2**63), 2**63 - 1)


@st.composite
def _struct(draw: Any, depth: int = 0) -> bytes:
    """A well-formed compact struct: integer, binary, boolean, list and nested struct fields."""
    out = bytearray()
    last = 0
    for _ in range(draw(st.integers(0, 6))):
        field = last + draw(st.integers(1, 20))
        kind = draw(st.sampled_from([1, 2, 5, 6, 8, 9] + ([12] if depth < 3 else [])))
        delta = field - last
        out += bytes([(delta << 4) | kind]) if delta <= 15 else \
            bytes([kind]) + _varint(_zigzag(field))
        last = field
        if kind in (5, 6):
            out += _varint(_zigzag(draw(_INTS)))
        elif kind == 8:
            data = draw(st.binary(max_size=20))
            out += _varint(len(data)) + data
        elif kind == 9:
            items = draw(st.lists(_INTS, max_size=20))
            out += bytes([(len(items) << 4) | 6]) if len(items) < 15 else \
                bytes([0xF6]) + _varint(len(items))
            out += b"".join(_varint(_zigzag(v)) for v in items)
        elif kind == 12:
            out += draw(_struct(depth + 1))
    return bytes(out + b"\0")


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes_read_alike(buf: bytes) -> None:
    assert _outcome(thrift.read_struct, buf) == _outcome(read_struct, buf)


@settings(max_examples=500)
@given(_struct(), st.integers(0, 64))
def test_structures_and_their_cut_prefixes_read_alike(buf: bytes, cut: int) -> None:
    whole = _outcome(thrift.read_struct, buf)
    assert whole == _outcome(read_struct, buf) and whole[1] == len(buf)
    part = buf[:max(0, len(buf) - cut)]
    assert _outcome(thrift.read_struct, part) == _outcome(read_struct, part)


def test_deep_nesting_is_refused_alike() -> None:
    for depth in (31, 32, 33, 34, 40):
        # struct -> field 1 struct -> ... -> an integer field
        buf = b"\x1c" * depth + b"\x15\x02" + b"\0" * (depth + 1)
        assert _outcome(thrift.read_struct, buf) == _outcome(read_struct, buf)
        lists = b"\x19\x1c" * depth + b"\x15\x02" + b"\0" * (depth + 1)
        assert _outcome(thrift.read_struct, lists) == _outcome(read_struct, lists)


def test_real_footers_read_alike(tmp_path: Any) -> None:
    table = pa.table({"i": list(range(1000)), "s": [str(i) * 3 for i in range(1000)],
                      "d": [i / 7 for i in range(1000)]})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=300, compression="zstd")
    for path in glob.glob(str(tmp_path / "*.parquet")):
        raw = open(path, "rb").read()
        length = int.from_bytes(raw[-8:-4], "little")
        footer = raw[-8 - length:-8]
        assert _outcome(thrift.read_struct, footer) == _outcome(read_struct, footer)
        assert _outcome(thrift.read_struct, footer)[1] == length
        header = raw[4:4 + 256]  # the first page header
        assert _outcome(thrift.read_struct, header) == _outcome(read_struct, header)
