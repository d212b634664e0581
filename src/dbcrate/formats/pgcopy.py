r"""The ``pgcopy`` data format: PostgreSQL's own ``COPY`` text rows, in one zstd frame.

A PostgreSQL dump may keep its rows as the server wrote them (``COPY ... TO STDOUT``, text
format: one row per line, fields separated by tabs, ``\N`` for NULL, backslash escapes), the
way ``pg_dump`` does. Such a member is loaded into PostgreSQL as it is, by ``COPY ... FROM
STDIN`` (:meth:`dbcrate.dialects.base.Dialect.load_native_rows`): no value is parsed or encoded
on the client, which is what a same-engine ``copy`` spends its time on otherwise. Every other
reader - ``verify``, ``compare``, a restore into another engine or into an existing schema -
decodes it here into the table's Arrow schema, with the same value conversions as the
PostgreSQL reader's own (:mod:`dbcrate.model.values`).

Nothing writes this format from Arrow batches: the dump asks the source database for its rows
(:attr:`dbcrate.dialects.base.Dialect.native_rows`), and refuses the format for a database
that has no such rows. docs/FORMAT.md, "pgcopy", is the specification.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import zstandard

from dbcrate.errors import UsageError
from dbcrate.formats.framing import MemberDecodeError, decoding, expansion_budget, max_ratio
from dbcrate.model import values

#: decompressed text read at once; a row longer than this is read on until its line ends
READ_BYTES = 8 << 20
#: the escapes PostgreSQL's COPY TO writes (it never writes octal or hex escapes)
_ESCAPES = (("\\b", "\b"), ("\\f", "\f"), ("\\n", "\n"), ("\\r", "\r"), ("\\t", "\t"),
            ("\\v", "\v"))
#: Arrow types parsed by Arrow's reader itself; ``int8`` goes through int16 (Arrow's CSV
#: reader has no int8 conversion with range checks)
_PARSED = {pa.bool_(), pa.int16(), pa.int32(), pa.int64(), pa.uint64(), pa.float32(),
           pa.float64()}


@dataclass(frozen=True)
class TextPiece:
    """Rows of a member's text and how many line feeds it holds: whole rows (``data`` ends
    with a line feed), or a piece of the text that may end inside a row."""

    data: bytes
    num_rows: int


def open_writer(sink: IO[bytes], schema: pa.Schema, level: int) -> Any:
    """No writer from Arrow: the rows come from the source database as it writes them."""
    raise UsageError("the pgcopy data format holds PostgreSQL's own COPY rows: only a dump of "
                     "a PostgreSQL database writes it",
                     hint="choose another --format (parquet is the default)")


def text_pieces(source: IO[bytes], size: int, whole_rows: bool = True) -> Iterator[TextPiece]:
    """The decompressed text of a member (``size`` stored bytes from ``source``'s position) in
    pieces of whole rows, about :data:`READ_BYTES` each (a longer row is one piece); or, not
    ``whole_rows``, in pieces of :data:`READ_BYTES` that may end inside a row (what COPY FROM
    and a row count need: a 100 MB row is never held whole).

    :raises MemberDecodeError: not zstd, a frame cut short, text beyond the decompression
        budget (docs/FORMAT.md, "Limits of the text formats"), or text that does not end
        with a line feed.
    """
    budget = expansion_budget(size, max_ratio())
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=1 << 20,
                                                        read_across_frames=True, closefd=False)
    total = 0
    rest: list[bytes] = []  # a row's text so far, while it is longer than a read
    try:
        while block := reader.read(READ_BYTES):
            total += len(block)
            if total > budget:
                raise MemberDecodeError(
                    f"the member expands to more than {budget:,} bytes of text: refused as a "
                    "decompression bomb (dbcrate never writes such a member)")
            if not whole_rows:
                rest = [] if block.endswith(b"\n") else [block[-1:]]
                yield TextPiece(block, block.count(b"\n"))
                continue
            end = block.rfind(b"\n") + 1
            if not end:
                rest.append(block)
                continue
            text = b"".join([*rest, block[:end]]) if rest else block[:end]
            rest = [block[end:]] if end < len(block) else []
            yield TextPiece(text, text.count(b"\n"))
    except zstandard.ZstdError as exc:
        raise MemberDecodeError(f"zstd: {exc}") from None
    if rest:
        raise MemberDecodeError("the member's text does not end with a line feed: it is cut "
                                "short")


def read_pgcopy(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The member's rows as record batches of ``schema`` (each piece of text one batch)."""
    start = source.tell()
    size = source.seek(0, io.SEEK_END) - start
    source.seek(start)
    for piece in text_pieces(source, size):
        yield decode_rows(piece, schema)


read_pgcopy = decoding(read_pgcopy)  # type: ignore[assignment]


def decode_rows(piece: TextPiece, schema: pa.Schema) -> pa.RecordBatch:
    """Whole COPY text rows -> a batch of ``schema``.

    :raises MemberDecodeError: a row without exactly one field per column, a value that is not
        the text of its column's type, an escape COPY does not write, or a NUL character.
    """
    if b"\0" in piece.data:
        raise MemberDecodeError("a NUL character: PostgreSQL's text never holds one")
    if not piece.num_rows and not piece.data:
        return pa.RecordBatch.from_pylist([], schema=schema)
    if not len(schema):
        if piece.data.strip(b"\n"):
            raise MemberDecodeError("a row has values but the table has no columns")
        return pa.RecordBatch.from_struct_array(
            pa.array([{}] * piece.num_rows, pa.struct([])))
    names = [f"c{i}" for i in range(len(schema))]
    table = pacsv.read_csv(
        pa.py_buffer(piece.data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=len(piece.data) + 1,
                                       use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False,
                                         escape_char=False, newlines_in_values=False,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: _read_type(f.type) for n, f in zip(names, schema)},
            null_values=["\\N"], strings_can_be_null=True, true_values=["t"],
            false_values=["f"]),
    )
    if table.num_rows != piece.num_rows:
        raise MemberDecodeError(f"{table.num_rows} rows decoded from {piece.num_rows} lines")
    arrays = [_convert(table.column(i).combine_chunks(), field)
              for i, field in enumerate(schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _read_type(t: pa.DataType) -> pa.DataType:
    if t == pa.int8():
        return pa.int16()
    return t if t in _PARSED else pa.string()


def _convert(arr: pa.Array, field: pa.Field) -> pa.Array:
    """One column as Arrow parsed it -> the field's type (text unescaped first)."""
    t = field.type
    if t == pa.int8():
        return arr.cast(pa.int8())
    if t in _PARSED:
        return arr
    arr = unescape(arr)
    try:
        if pa.types.is_string(t):
            return arr
        if pa.types.is_large_binary(t):
            return values.hex_to_binary(arr)
        if t == pa.date32():
            return values.text_to_date(arr)
        if pa.types.is_timestamp(t):
            return values.text_to_timestamp(arr, tz=t.tz is not None)
        if t == pa.time64("us"):
            return values.text_to_time(arr)
    except (ValueError, TypeError, pa.ArrowException) as exc:
        raise MemberDecodeError(f"column {field.name!r}: not the text of a {t}: {exc}") \
            from None
    raise MemberDecodeError(f"column {field.name!r}: no pgcopy decoding for Arrow type {t}")


def unescape(arr: pa.Array) -> pa.Array:
    r"""COPY's backslash escapes undone (``\\``, ``\b``, ``\f``, ``\n``, ``\r``, ``\t``,
    ``\v``), vectorised: the doubled backslash becomes a NUL (which PostgreSQL text never
    holds) while the others are replaced, then a backslash again.

    :raises MemberDecodeError: any other escape (COPY TO writes none)."""
    if not pc.any(pc.match_substring(arr, "\\")).as_py():
        return arr
    arr = pc.replace_substring(arr, "\\\\", "\0")
    for escape, char in _ESCAPES:
        arr = pc.replace_substring(arr, escape, char)
    if pc.any(pc.match_substring(arr, "\\")).as_py():
        raise MemberDecodeError("an escape COPY does not write (only \\\\, \\b, \\f, \\n, \\r, "
                                "\\t and \\v)")
    return pc.replace_substring(arr, "\0", "\\")
