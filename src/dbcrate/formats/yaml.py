"""The YAML data format: one YAML document (``---``) per slice of rows, in one zstd frame.

Each document is a mapping of ``columns`` (the column names, in order) and ``rows`` (one flow
sequence per row, values in column order). Values follow :mod:`dbcrate.formats.textvalues` as
YAML 1.1 scalars: plain ``null``, booleans, integers and floats (``.nan``, ``.inf``, ``-.inf``),
double-quoted strings and temporal values, ``!!binary`` base64. The reader streams the parser's
events through PyYAML's safe loader (composing only, never constructing objects from tags) and
bounds anchors, aliases and tokens.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import yaml

from dbcrate.formats.framing import (
    BATCH_BYTES,
    BATCH_ROWS,
    READ_SLACK,
    MemberDecodeError,
    ZstdSource,
    budget_of,
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
    parse_numbers,
    temporal_array,
)
from dbcrate.formats.tokenrows import TokenRowsWriter

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


def _yaml_floats(array: pa.Array) -> list[str]:
    return ["null" if v is None else _yaml_float_text(v)
            for v in array.cast(pa.string()).to_pylist()]


#: YAML flow scalars: plain floats (``.nan``, ``.inf``, ``-.inf``), double-quoted strings,
#: ``!!binary "<base64>"`` (booleans, integers, temporal values: the shared spellings)
_YAML_SPELLING = TokenSpelling(floats=_yaml_floats, string=_yaml_string,
                               binary=lambda v: f'!!binary "{b64encode(v)}"')


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


class YamlWriter(TokenRowsWriter):
    """One YAML document (``---``) per slice of at most :data:`BATCH_ROWS` rows: a mapping of
    ``columns`` (the column names, in order) and ``rows`` (one flow sequence per row, values
    in column order)."""

    format_name = "yaml"
    spelling = _YAML_SPELLING

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        super().__init__(sink, schema, level)
        names = ", ".join(_yaml_string(name) for name in schema.names)
        self._head = f"---\ncolumns: [{names}]\nrows:\n".encode()
        self.template = "- [" + ", ".join(["%s"] * len(schema)) + "]\n"

    def frame(self, rows: list[str], limit: int) -> bytes | None:
        """A document per slice; an empty slice writes none."""
        return self._head + check_rows(rows, "yaml", limit) if rows else None


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
            return parse_numbers(pa.array(texts, pa.string()), field.type, name)
        except MemberDecodeError:
            texts = _yaml_number_texts(items, texts, loader)
            return parse_numbers(pa.array(texts, pa.string()), field.type, name)
    if codec == "binary":
        return pa.array([None if t is None else b64decode("".join(t.split())) for t in texts],
                        pa.large_binary())
    if codec == "text":
        return pa.array(texts, pa.string())
    return temporal_array(texts, field.type, codec)


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
        if self.count > self._limit + READ_SLACK:
            raise record_too_long("a YAML scalar or token", self._limit)
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

    def __init__(self, loader: Any, meter: _YamlMeter, budget: ZstdSource, schema: pa.Schema,
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
            raise record_too_long("the anchored text of a YAML document", self._limit)
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
        return batch_of(arrays, self._schema)

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


@decoding
def read_yaml(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode a YAML member into batches of ``schema``, streaming the parser's events."""
    codecs = check_schema(schema)
    limit = max_record()
    text = open_text(source)
    meter = _YamlMeter(text, limit)
    loader = _YamlLoader(meter)
    try:
        yield from _YamlReader(loader, meter, budget_of(text), schema, codecs, limit).batches()
    finally:
        loader.dispose()
