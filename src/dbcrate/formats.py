"""Data formats of the archive's data members: a plain registry of Arrow encoders/decoders.

A data member holds a bounded slice of one table's rows as Arrow record batches. A format
declares its capabilities as data (:class:`DataFormat`) and provides a writer and a reader.
The built-in formats are Parquet (the default; chosen by measurement, see docs/FORMAT.md) and
Arrow IPC; both compress with zstd inside the member, so the container never compresses again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .errors import UsageError

DEFAULT_COMPRESSION_LEVEL = 3


class ChunkWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DataFormat:
    """A data member encoding.

    :param name: registry key, recorded in the manifest's ``data_format``.
    :param extension: member file extension.
    :param open_writer: ``(sink, schema, compression_level) -> ChunkWriter``.
    :param read: ``(source) -> iterator of record batches`` (source is seekable).
    """

    name: str
    extension: str
    open_writer: Callable[[IO[bytes], pa.Schema, int], ChunkWriter]
    read: Callable[[IO[bytes]], Iterator[pa.RecordBatch]]
    description: str = ""


class _ParquetWriter:
    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._writer = pq.ParquetWriter(
            sink,
            schema,
            compression="zstd",
            compression_level=level,
            use_dictionary=True,
            write_statistics=False,
            store_schema=True,
        )

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def _read_parquet(source: IO[bytes]) -> Iterator[pa.RecordBatch]:
    reader = pq.ParquetFile(source)
    for group in range(reader.num_row_groups):
        table = reader.read_row_group(group)
        yield from table.to_batches()


class _ArrowWriter:
    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        options = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=level))
        self._writer = ipc.new_stream(sink, schema, options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def _read_arrow(source: IO[bytes]) -> Iterator[pa.RecordBatch]:
    yield from ipc.open_stream(source)


FORMATS: dict[str, DataFormat] = {
    "parquet": DataFormat(
        "parquet",
        "parquet",
        _ParquetWriter,
        _read_parquet,
        "Apache Parquet, zstd-compressed column chunks (default)",
    ),
    "arrow": DataFormat(
        "arrow",
        "arrow",
        _ArrowWriter,
        _read_arrow,
        "Apache Arrow IPC stream, zstd-compressed buffers",
    ),
}


def get_format(name: str) -> DataFormat:
    """Look a format up by name; an unknown name lists the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(
            f"unknown data format {name!r}",
            hint=f"known formats: {', '.join(sorted(FORMATS))}",
        ) from None


def register(fmt: DataFormat) -> None:
    """Add a data format; a name can be registered only once."""
    if fmt.name in FORMATS:
        raise ValueError(f"data format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
