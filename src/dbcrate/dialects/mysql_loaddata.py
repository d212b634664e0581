"""LOAD DATA's text form of Arrow batches (MariaDB / MySQL restore): escaped fields, tab
between them, newline after each row, ``\\N`` for NULL, built in Arrow without a Python loop
over rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table
from dbcrate.model.values import time_texts

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))
_BIN = pa.large_binary()
#: Arrow bytes turned into one LOAD DATA text block at once (the block is a few times larger)
LOAD_PIECE_BYTES = 4 * 1024 * 1024


def _load_data_column(arr: pa.Array, col: Column) -> pa.Array:
    """One column as LOAD DATA text (escaped, NULL as \\N), as large_binary."""
    kind = col.type.kind
    if kind == "time":
        text: pa.Array = pa.array(time_texts(arr), pa.string())
    elif kind == "boolean":
        text = pc.cast(pc.cast(arr, pa.int8()), pa.string())
    elif kind == "timestamptz":
        text = pc.cast(pc.cast(arr, pa.timestamp("us")), pa.string())
    elif kind == "binary":
        text = arr
    else:
        text = pc.cast(arr, pa.string()) if arr.type != pa.string() else arr
    out = pc.cast(text, _BIN)
    if kind in ("string", "json", "uuid", "other", "decimal", "binary"):
        for needle, replacement in _ESCAPES:
            out = pc.replace_substring(out, needle.encode(), replacement.encode())
    return pc.fill_null(out, pa.scalar(b"\\N", _BIN))


def load_data_block(
    batch: pa.RecordBatch, table: Table, bit_bytes: dict[str, int] | None = None
) -> pa.Buffer:
    """A record batch as the bytes of a LOAD DATA file: escaped fields, tab, newline."""
    columns = []
    for i, c in enumerate(table.columns):
        arr = batch.column(i)
        if bit_bytes and c.name in bit_bytes:
            width = bit_bytes[c.name]
            arr = pa.array(
                [None if v is None else int(v).to_bytes(width, "big") for v in arr.to_pylist()],
                _BIN,
            )
            c = Column(c.name, LogicalType("binary"), c.engine_type)
        columns.append(_load_data_column(arr, c))
    lines = pc.binary_join_element_wise(*columns, pa.scalar(b"\t", _BIN))
    # each line, an empty string, joined by a newline: the line and its newline (scalars
    # broadcast, so no array of empty strings is built)
    lines = pc.binary_join_element_wise(lines, pa.scalar(b"", _BIN), pa.scalar(b"\n", _BIN))
    # the lines' data buffer is exactly the concatenation of every line: a zero-copy slice
    offsets = lines.buffers()[1]
    first, last = (pa.Array.from_buffers(pa.int64(), len(lines) + 1, [None, offsets])
                   .to_numpy()[[0, -1]])
    data: pa.Buffer = lines.buffers()[2][int(first) : int(last)]
    return data
