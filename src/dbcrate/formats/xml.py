"""The XML data format: ``<rows>`` of ``<row>`` elements, one child element per column, in
one zstd frame.

Elements are named by :func:`xml_name` (SQL/XML identifier mapping); NULL is
``xsi:nil="true"``; text XML cannot carry is base64 with ``encoding="base64"``. Values follow
:mod:`dbcrate.formats.textvalues` (floats' specials ``NaN``, ``INF``, ``-INF``). The reader
streams and refuses DTDs, entity declarations and any encoding but UTF-8.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO

import pyarrow as pa

from dbcrate.formats.framing import (
    BATCH_BYTES,
    BATCH_ROWS,
    READ_SLACK,
    MemberDecodeError,
    ZstdSink,
    check_rows,
    decoding,
    max_record,
    open_text,
    record_too_long,
)
from dbcrate.formats.textvalues import (
    Style,
    b64decode,
    b64encode,
    batch_of,
    check_schema,
    from_text,
    row_slices,
    to_text,
)

#: decompressed bytes fed to the XML parser at a time (iterparse's size: feeding 64 KiB made
#: reading 1.8x slower)
_XML_FEED = 1 << 14
#: floats' specials as XML Schema spells them
_XML_STYLE = Style("NaN", "INF", "-INF")


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
            out.append(f'<{tag} encoding="base64">{b64encode(value.encode("utf-8"))}</{tag}>')
        else:
            out.append(f"<{tag}>{_xml_escape(value)}</{tag}>")
    return out


class XmlWriter:
    """``<rows>`` of ``<row>`` elements, one child element per column (named by
    :func:`xml_name`, in column order); NULL is ``xsi:nil="true"``."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = check_schema(schema)
        self._schema = schema
        self._tags = [xml_name(name) for name in schema.names]
        self._out = ZstdSink(sink, level)
        self._out.write(_XML_HEAD)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = max_record()
        for part in row_slices(batch, self._schema):
            columns = [_xml_fragments(c, k, t)
                       for c, k, t in zip(part.columns, self._codecs, self._tags)]
            rows = ["<row>" + "".join(row) + "</row>\n" for row in zip(*columns)]
            self._out.write(check_rows(rows, "xml", limit))

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
            return b64decode(elem.text or "").decode("utf-8")
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
        if quiet > limit + READ_SLACK:
            raise record_too_long("an XML value or tag", limit)
    parser.close()
    yield from parser.read_events()  # type: ignore[misc]


@decoding
def read_xml(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Decode an XML member into batches of ``schema`` (streaming; each row is cleared)."""
    codecs = check_schema(schema)
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
        return batch_of(arrays, schema)

    guarded = _XmlGuard(open_text(source))  # no DTD, no entities, UTF-8 only
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
