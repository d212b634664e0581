"""The Arrow IPC data format: a stream of record batches with zstd-compressed buffers.

The reader reads message by message and charges each record batch's declared buffer lengths
against the member's decode budget before decompressing it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.ipc as ipc

from dbcrate.formats.budget import PADDING_KEY, DecodeBudget, padding_for, stream_size


class ArrowWriter:
    """One IPC record batch per batch; a member whose data compresses better than a reader's
    budget allows ends with an empty batch whose custom metadata is padding."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        options = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=level))
        self._sink, self._start, self._schema, self._decoded = sink, sink.tell(), schema, 0
        self._writer = ipc.new_stream(sink, schema, options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self._decoded += batch.nbytes + 64 * batch.num_columns + 4096

    def close(self) -> None:
        pad = padding_for(self._decoded, self._sink.tell() - self._start)
        if pad:  # (readers skip it: an empty batch, whose custom metadata is the padding)
            self._writer.write_batch(pa.RecordBatch.from_pylist([], schema=self._schema),
                                     custom_metadata={PADDING_KEY: "0" * pad})
        self._writer.close()


def _fb(fmt: str, buf: bytes, pos: int) -> Any:
    if pos < 0 or pos + struct.calcsize(fmt) > len(buf):
        raise ValueError("bad Arrow IPC message metadata")
    return struct.unpack_from(fmt, buf, pos)[0]


def _fb_field(buf: bytes, table: int, index: int) -> int:
    """Position of field ``index`` of the flatbuffer table at ``table`` (0: absent)."""
    vtable = table - _fb("<i", buf, table)
    if 4 + 2 * index >= _fb("<H", buf, vtable):
        return 0
    offset: int = _fb("<H", buf, vtable + 4 + 2 * index)
    return table + offset if offset else 0


def _ipc_decoded_bytes(metadata: bytes, body: pa.Buffer) -> int:
    """The bytes a record batch message's buffers decode to: with compression, each buffer
    starts with its uncompressed length (-1: stored as is); without, its length."""
    root = _fb("<I", metadata, 0)
    header = _fb_field(metadata, root, 2)  # Message.header (a RecordBatch table)
    if not header:
        raise ValueError("an Arrow IPC record batch message without a header")
    batch = header + _fb("<I", metadata, header)
    buffers = _fb_field(metadata, batch, 2)  # RecordBatch.buffers: [struct {offset, length}]
    compressed = bool(_fb_field(metadata, batch, 3))  # RecordBatch.compression
    if not buffers:
        return 0
    vector = buffers + _fb("<I", metadata, buffers)
    total = 0
    for k in range(_fb("<I", metadata, vector)):
        offset = _fb("<q", metadata, vector + 4 + 16 * k)
        length = _fb("<q", metadata, vector + 12 + 16 * k)
        if offset < 0 or length < 0 or offset + length > body.size:
            raise ValueError("an Arrow IPC buffer lies outside its message body")
        declared = length
        if compressed and length >= 8:  # (a negative length must not offset a huge one)
            declared = struct.unpack("<q", body.slice(offset, 8).to_pybytes())[0]
            if declared < -1:
                raise ValueError("an Arrow IPC buffer of negative length")
        total += length - 8 if declared == -1 else declared
    return total


def read_arrow(source: IO[bytes], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Self-describing: ``schema`` is not needed (the caller checks every batch against it).

    Message by message: each record batch's declared buffer lengths are charged against the
    member's budget before it is decompressed; dictionary batches (which dbcrate never writes)
    are refused."""
    budget = DecodeBudget(stream_size(source))
    messages = ipc.MessageReader.open_stream(source)
    try:
        first = messages.read_next_message()
    except StopIteration:
        raise EOFError("an empty Arrow IPC stream (no schema message)") from None
    if first.type != "schema":
        raise ValueError(f"an Arrow IPC stream starting with a {first.type} message")
    stream_schema = ipc.read_schema(first)
    while True:
        try:
            message = messages.read_next_message()
        except StopIteration:
            return
        if message.type != "record batch":
            raise ValueError(f"an Arrow IPC {message.type} message (the format has none)")
        budget.charge(_ipc_decoded_bytes(message.metadata.to_pybytes(), message.body),
                      "record batch buffers")
        yield ipc.read_record_batch(message, stream_schema)

