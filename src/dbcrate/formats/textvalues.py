"""Value encoding of the text data formats: Arrow columns to text and back.

Text carries no Arrow types, so a reader decodes with the Arrow schema the manifest implies
(``read(source, schema)``) and produces batches of exactly that schema. Every value of every
logical kind round-trips exactly: NULL stays distinct from the empty string, floats keep NaN,
±infinity and -0.0 (NaN payloads are not kept), binaries keep every byte, text keeps NUL,
CR and astral-plane characters, dates/timestamps keep their ±infinity sentinels and years
outside 1..9999, ``time`` keeps 24:00:00.

The value encodings are normative; docs/FORMAT.md ("Text formats") copies them. Shared
spellings (all formats unless a format module says otherwise):

* boolean ``true`` / ``false``; integers in decimal (``-9223372036854775808``);
* floats: the shortest decimal text that reads back to the same float32/float64
  (``0.1``, ``1e+30``, ``-0``); NaN and infinities as the format spells them;
* decimal, string, json, uuid, other: the text itself;
* date, time, datetime, timestamptz: :mod:`dbcrate.model.temporal`;
* binary: base64 (RFC 4648, padded), except CSV: ``\\x`` and lower-case hex.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.formats.framing import BATCH_ROWS
from dbcrate.model.temporal import (
    MemberDecodeError,
    format_date,
    format_time,
    format_timestamp,
    parse_date,
    parse_time,
    parse_timestamp,
)


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MemberDecodeError(f"invalid base64 {text[:40]!r}: {exc}") from None


def hexencode(data: bytes) -> str:
    return "\\x" + data.hex()


_HEX_RE = re.compile(r"\\x((?:[0-9a-fA-F]{2})*)", re.ASCII)


def hexdecode(text: str) -> bytes:
    match = _HEX_RE.fullmatch(text)
    if match is None:
        raise MemberDecodeError(f"invalid \\x hex bytes {text[:40]!r}")
    return bytes.fromhex(match.group(1))


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


def check_schema(schema: pa.Schema) -> list[str]:
    if len(schema) == 0:
        raise ValueError("a data member needs at least one column")
    return [codec_of(field.type) for field in schema]


@dataclass(frozen=True)
class Style:
    """Format-specific spellings of the text codec."""

    nan: str
    pos_inf: str
    neg_inf: str
    hex_binary: bool = False


def float_text(array: pa.Array, nan: str, pos_inf: str, neg_inf: str) -> pa.Array:
    """Shortest round-trip text (Arrow's formatter), specials replaced."""
    text = array.cast(pa.string())
    text = pc.if_else(pc.is_nan(array), nan, text)
    text = pc.if_else(pc.equal(array, math.inf), pos_inf, text)
    return pc.if_else(pc.equal(array, -math.inf), neg_inf, text)


def python_values(array: pa.Array, codec: str) -> list[Any]:
    """Python values of a column: ints for the temporal codecs (never ``datetime`` objects,
    which cannot hold the whole range), bytes for binary."""
    if codec == "date":
        return list(array.view(pa.int32()).to_pylist())
    if codec in ("time", "datetime", "timestamptz"):
        return list(array.view(pa.int64()).to_pylist())
    return list(array.to_pylist())


def temporal_text(values: list[Any], codec: str) -> list[str | None]:
    if codec == "date":
        return [None if v is None else format_date(v) for v in values]
    if codec == "time":
        return [None if v is None else format_time(v) for v in values]
    utc = codec == "timestamptz"
    return [None if v is None else format_timestamp(v, utc) for v in values]


def to_text(array: pa.Array, codec: str, style: Style) -> pa.Array:
    """A column as a string array of the shared spellings (CSV, XML); nulls stay null."""
    if codec == "text":
        return array
    if codec == "bool":
        return pc.if_else(array, "true", "false")
    if codec == "int":
        return array.cast(pa.string())
    if codec == "float":
        return float_text(array, style.nan, style.pos_inf, style.neg_inf)
    values = python_values(array, codec)
    if codec == "binary":
        encode = hexencode if style.hex_binary else b64encode
        return pa.array([None if v is None else encode(v) for v in values], pa.string())
    return pa.array(temporal_text(values, codec), pa.string())


def literal_tokens(array: pa.Array, codec: str) -> list[str]:
    """Booleans as ``true``/``false`` and integers in decimal, ``null`` for NULL (the
    spelling JSON and YAML share)."""
    if codec == "bool":
        return list(pc.if_else(array, "true", "false").fill_null("null").to_pylist())
    return list(array.cast(pa.string()).fill_null("null").to_pylist())


def parse_numbers(strings: pa.Array, arrow_type: pa.DataType, name: str) -> pa.Array:
    """Decimal text to integers or floats (Arrow's parsers: range-checked integers, floats
    rounded once and correctly, also to float32)."""
    try:
        return strings.cast(arrow_type)
    except pa.ArrowInvalid as exc:
        raise MemberDecodeError(f"column {name!r}: {exc}") from None


def from_text(strings: pa.Array, field: pa.Field, codec: str, style: Style) -> pa.Array:
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
        return parse_numbers(strings, field.type, field.name)
    values = strings.to_pylist()
    if codec == "binary":
        decode = hexdecode if style.hex_binary else b64decode
        return pa.array([None if v is None else decode(v) for v in values], pa.large_binary())
    return temporal_array(values, field.type, codec)


def temporal_array(values: Sequence[str | None], arrow_type: pa.DataType, codec: str) -> pa.Array:
    if codec == "date":
        ints = [None if v is None else parse_date(v) for v in values]
    elif codec == "time":
        ints = [None if v is None else parse_time(v) for v in values]
    else:
        utc = codec == "timestamptz"
        ints = [None if v is None else parse_timestamp(v, utc) for v in values]
    return pa.array(ints, arrow_type)


@dataclass(frozen=True)
class TokenSpelling:
    """How a token format (JSON Lines, YAML) spells the values that are not plain literals;
    each callable gets a non-null value (``floats`` a whole float column, nulls included)."""

    floats: Callable[[pa.Array], list[str]]
    string: Callable[[str], str]
    binary: Callable[[bytes], str]


def value_tokens(array: pa.Array, codec: str, spelling: TokenSpelling) -> list[str]:
    """One token per value of a column, ``null`` for NULL: booleans, integers and temporal
    values (double-quoted) as JSON and YAML share them, the rest as ``spelling`` says."""
    if codec in ("bool", "int"):
        return literal_tokens(array, codec)
    if codec == "float":
        return spelling.floats(array)
    values = python_values(array, codec)
    if codec == "text":
        return ["null" if v is None else spelling.string(v) for v in values]
    if codec == "binary":
        return ["null" if v is None else spelling.binary(v) for v in values]
    return ["null" if v is None else f'"{v}"' for v in temporal_text(values, codec)]


def batch_of(columns: Sequence[pa.Array], schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(list(columns), schema=schema)


def row_slices(batch: pa.RecordBatch, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    if not batch.schema.equals(schema):
        raise ValueError(f"batch schema {batch.schema} differs from the member's schema {schema}")
    for start in range(0, batch.num_rows, BATCH_ROWS):
        yield batch.slice(start, BATCH_ROWS)
