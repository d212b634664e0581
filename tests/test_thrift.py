"""The Thrift compact reader of the Parquet checks (:mod:`dbcrate.formats.thrift`) against a
reference reader written apart, on random bytes and on well-formed structures: the same values, the
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
# (written as the protocol reads, a cursor over the bytes, independently of the module's; the
# same refusals with the same messages: Short when the bytes end, ValueError when malformed)
class _Cursor:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.at = buf, 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.buf):
            raise thrift.Short
        self.at += count
        return self.buf[self.at - count:self.at]

    def unsigned(self) -> int:
        result = 0
        for group in range(10):  # at most 70 bits' worth of 7-bit groups
            octet = self.take(1)[0]
            result += (octet % 128) * 128 ** group
            if octet < 128:
                return result
        raise ValueError("bad varint in Parquet metadata")

    def signed(self) -> int:
        raw = self.unsigned()
        return -(raw + 1) // 2 if raw % 2 else raw // 2

    def value(self, kind: int, depth: int, in_list: bool) -> Any:
        if depth > thrift.MAX_DEPTH:
            raise ValueError("Parquet metadata nested too deeply")
        if not in_list and kind in (1, 2):
            return kind == 1
        if kind == 1 or kind == 2:
            return self.take(1)[0] == 1
        if kind == 3:
            return self.take(1)[0]
        if kind == 7:
            self.take(8)
            return None
        if kind in (4, 5, 6):
            return self.signed()
        if kind == 8:
            return self.take(self.unsigned())
        if kind == 12:
            return self.struct(depth + 1)
        if kind == 11:
            size = self.unsigned()
            kinds = divmod(self.take(1)[0], 16) if size else (0, 0)
        elif kind in (9, 10):
            size, element = divmod(self.take(1)[0], 16)
            if size == 15:
                size = self.unsigned()
            kinds = (element,)
        else:
            raise ValueError(f"bad thrift type {kind} in Parquet metadata")
        if self.at + size > len(self.buf):
            raise thrift.Short
        return [self.value(k, depth + 1, True) for _ in range(size) for k in kinds]

    def struct(self, depth: int) -> dict[int, Any]:
        found: dict[int, Any] = {}
        field = 0
        while (head := self.take(1)[0]) != 0:
            field = field + head // 16 if head // 16 else self.signed()
            found[field] = self.value(head % 16, depth, False)
        return found


def read_struct(buf: bytes, i: int) -> tuple[dict[int, Any], int]:
    cursor = _Cursor(buf)
    cursor.at = i
    return cursor.struct(0), cursor.at


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
