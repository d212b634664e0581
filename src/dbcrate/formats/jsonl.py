"""The JSON Lines data format: one JSON object per row, one line each, in one zstd frame.

Keys are the column names in column order; values follow :mod:`dbcrate.formats.textvalues`
(binaries and temporal values as JSON strings; NaN and infinities as the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"``). U+0085, U+2028 and U+2029 are escaped so that no line splitter
breaks a row.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.formats.framing import (
    BATCH_BYTES,
    BATCH_ROWS,
    MemberDecodeError,
    check_rows,
    decoding,
    max_record,
    open_text,
    record_too_long,
)
from dbcrate.formats.textvalues import (
    TokenSpelling,
    b64decode,
    b64encode,
    batch_of,
    check_schema,
    float_text,
    parse_numbers,
    temporal_array,
)
from dbcrate.formats.tokenrows import TokenRowsWriter


class _Raw(str):
    """The text of a number as it appeared in a JSON member (decoded by Arrow, which rounds
    correctly to float32 as well as float64)."""

    __slots__ = ()


def _require(values: Sequence[Any], allowed: tuple[type, ...], what: str, name: str) -> None:
    for value in values:
        if value is not None and type(value) not in allowed:
            raise MemberDecodeError(f"column {name!r}: expected {what}, got {value!r:.60}")


_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]
_JSON_LINE_BREAKS = re.compile("[\u0085\u2028\u2029]")
_JSON_FLOAT_SPECIALS = ('"NaN"', '"Infinity"', '"-Infinity"')


def _escape_line_breaks(text: str) -> str:
    """U+0085, U+2028, U+2029 (line breaks to some line splitters) only occur inside JSON
    strings, where ``\\uXXXX`` means the same character."""
    if _JSON_LINE_BREAKS.search(text) is None:
        return text
    return _JSON_LINE_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _json_floats(array: pa.Array) -> list[str]:
    text = float_text(array, *_JSON_FLOAT_SPECIALS)
    text = pc.if_else(pc.equal(text, "-0"), "-0.0", text)
    return list(text.fill_null("null").to_pylist())


class JsonlWriter(TokenRowsWriter):
    """One JSON object per row, keys = column names in column order, one line each (LF)."""

    format_name = "jsonl"
    spelling = TokenSpelling(floats=_json_floats, string=_json_string,
                             binary=lambda v: f'"{b64encode(v)}"')

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        super().__init__(sink, schema, level)
        keys = [_json_string(name).replace("%", "%%") + ":%s" for name in schema.names]
        self.template = _escape_line_breaks("{" + ",".join(keys) + "}\n")

    def frame(self, rows: list[str], limit: int) -> bytes:
        return check_rows(rows, "jsonl", limit, _escape_line_breaks)


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
        return parse_numbers(pa.array(values, pa.string()), arrow_type, name)
    if codec == "float":
        for value in values:
            if value is not None and type(value) is not _Raw and value not in _JSON_FLOAT_WORDS:
                raise MemberDecodeError(f"column {name!r}: expected a number, got {value!r:.60}")
        return parse_numbers(pa.array(values, pa.string()), arrow_type, name)
    _require(values, (str,), "a JSON string", name)
    if codec == "text":
        return pa.array(values, pa.string())
    if codec == "binary":
        return pa.array([None if v is None else b64decode(v) for v in values], pa.large_binary())
    return temporal_array(values, arrow_type, codec)


def _row_getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        only = names[0]
        return lambda obj: (obj[only],)
    return operator.itemgetter(*names)


@decoding
def read_jsonl(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode a JSONL member into batches of ``schema``; a line longer than the record limit is
    refused before it is read whole."""
    codecs = check_schema(schema)
    names = schema.names
    getter = _row_getter(names)
    limit = max_record()
    rows: list[tuple[Any, ...]] = []
    pending = 0

    def flush() -> pa.RecordBatch:
        columns = list(zip(*rows))
        rows.clear()
        return batch_of([_from_json(c, f, k) for c, f, k in zip(columns, schema, codecs)], schema)

    stream = open_text(source)
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise record_too_long(f"line {number}", limit)
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
