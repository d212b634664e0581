"""Data formats of the archive's data members: a plain registry of Arrow encoders/decoders.

A data member holds a bounded slice of one table's rows as Arrow record batches. A format
declares its capabilities as data (:class:`DataFormat`) and provides a writer and a reader.
The built-in formats are Parquet (the default; chosen by measurement, see docs/PERFORMANCE.md,
"Why Parquet") and Arrow IPC, both compressing with zstd inside the member, and the text
formats JSON Lines, CSV, XML and YAML (:mod:`dbcrate.formats.jsonl` and its siblings), each
one zstd frame, so the container never compresses again.

Third-party formats register themselves through the entry point group ``dbcrate.formats``
(each entry point is a callable returning a :class:`DataFormat`, or a :class:`DataFormat`);
they are loaded the first time an unknown format name is looked up. The compliance suite in
:mod:`dbcrate.testing.formats` checks any format.

The built-in formats' modules are imported when their writer or reader is first used
(:class:`BuiltinFormat`), not with this registry: opening an archive looks its format up here,
and ``dbcrate ls`` decodes no member (docs/PERFORMANCE.md, "Start-up").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol

from dbcrate.errors import UsageError
from dbcrate.options import DEFAULT_COMPRESSION_LEVEL as DEFAULT_COMPRESSION_LEVEL

if TYPE_CHECKING:
    import pyarrow as pa

#: what opens a writer: ``(sink, schema, compression_level) -> ChunkWriter``
WriterOpener = Callable[[IO[bytes], "pa.Schema", int], "ChunkWriter"]
#: what reads a member: ``(source, schema) -> iterator of record batches``
ChunkReader = Callable[[IO[bytes], "pa.Schema"], Iterator["pa.RecordBatch"]]


class ChunkWriter(Protocol):
    """What ``DataFormat.open_writer`` returns: batches of the member's schema, then ``close``."""

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DataFormat:
    """A data member encoding.

    :param name: registry key, recorded in the manifest's ``data_format``; it must match
        ``[a-z0-9]{1,16}`` like the extension.
    :param extension: member file extension, ``[a-z0-9]{1,16}`` (the manifest's member regex
        allows one dot: a compressed text format keeps the plain extension).
    :param open_writer: ``(sink, schema, compression_level) -> ChunkWriter``; ``close()``
        finishes the member and leaves ``sink`` open.
    :param read: ``(source, schema) -> iterator of record batches``. ``source`` is seekable;
        ``schema`` is the Arrow schema the manifest implies. A self-describing format may ignore
        it (the caller compares every batch's schema with it); a text format decodes with it.
        Decoding failures raise ``ValueError``, ``OSError``, ``EOFError`` or an Arrow error.
    :param reads_by_range: ``read`` seeks to the parts it needs (Parquet: the footer, then one
        column chunk at a time) and decodes in the calling thread, so it is given the member
        as a file read on demand instead of a buffer holding the whole member.
    :param native_rows: the members hold a database's own rows (``pgcopy``: PostgreSQL's COPY
        text), written by the dump from the source's rows, not from Arrow batches, and loaded
        as they are into a database whose dialect names this format as its
        :attr:`~dbcrate.dialects.base.Dialect.native_rows`; ``read`` decodes them for every
        other use.
    """

    name: str
    extension: str
    open_writer: WriterOpener
    read: ChunkReader
    description: str = ""
    reads_by_range: bool = False
    native_rows: bool = False


class BuiltinFormat(DataFormat):
    """A built-in format, whose module is imported the first time its ``open_writer`` or
    ``read`` is asked for (they are the module's own writer class and reader function, as
    with a :class:`DataFormat`). Its extension is its name."""

    def __init__(self, name: str, codec: Callable[[], tuple[WriterOpener, ChunkReader]],
                 description: str, *, reads_by_range: bool = False,
                 native_rows: bool = False) -> None:
        """:param codec: imports the format's module and returns its writer and reader."""
        for key, value in (("name", name), ("extension", name), ("description", description),
                           ("reads_by_range", reads_by_range), ("native_rows", native_rows),
                           ("_codec", codec)):
            object.__setattr__(self, key, value)  # frozen; the codec is not a field

    @property  # type: ignore[override]
    def open_writer(self) -> WriterOpener:
        return self._codec()[0]  # type: ignore[attr-defined, no-any-return]

    @property  # type: ignore[override]
    def read(self) -> ChunkReader:
        return self._codec()[1]  # type: ignore[attr-defined, no-any-return]


# each imports its format's module (a plain import statement: tests/test_security.py, SE-07)
def _parquet() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.parquet import ParquetWriter, read_parquet
    return ParquetWriter, read_parquet


def _arrow() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.arrow import ArrowWriter, read_arrow
    return ArrowWriter, read_arrow


def _jsonl() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.jsonl import JsonlWriter, read_jsonl
    return JsonlWriter, read_jsonl


def _csv() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.csv import CsvWriter, read_csv
    return CsvWriter, read_csv


def _xml() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.xml import XmlWriter, read_xml
    return XmlWriter, read_xml


def _yaml() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.yaml import YamlWriter, read_yaml
    return YamlWriter, read_yaml


def _pgcopy() -> tuple[WriterOpener, ChunkReader]:
    from dbcrate.formats.pgcopy import open_writer, read_pgcopy
    return open_writer, read_pgcopy


#: the formats by name: the built-in ones (in the order of
#: :data:`dbcrate.options.BUILTIN_DATA_FORMATS`), then those registered
FORMATS: dict[str, DataFormat] = {
    "parquet": BuiltinFormat("parquet", _parquet,
                             "Apache Parquet, zstd-compressed column chunks (default)",
                             reads_by_range=True),
    "arrow": BuiltinFormat("arrow", _arrow, "Apache Arrow IPC stream, zstd-compressed buffers"),
    "jsonl": BuiltinFormat("jsonl", _jsonl, "JSON Lines, one object per row, zstd-compressed"),
    "csv": BuiltinFormat("csv", _csv,
                         "CSV with a header, NULL = empty unquoted field, zstd-compressed"),
    "xml": BuiltinFormat("xml", _xml,
                         "XML, <row> elements with one element per column, zstd-compressed"),
    "yaml": BuiltinFormat("yaml", _yaml,
                          "YAML, one document of row mappings per 10,000 rows, zstd-compressed"),
    "pgcopy": BuiltinFormat("pgcopy", _pgcopy,
                            "PostgreSQL's COPY text rows, zstd-compressed (PostgreSQL dumps "
                            "only; loaded into PostgreSQL as they are)", native_rows=True),
}

#: the entry point group of third-party data formats
ENTRY_POINT_GROUP = "dbcrate.formats"
_entry_points_loaded = False


def get_format(name: str) -> DataFormat:
    """Look a format up by name, loading the entry points once if the name is unknown; an
    unknown name lists the known ones."""
    if name not in FORMATS:
        load_entry_points()
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown data format {name!r}",
                         hint=f"known formats: {', '.join(sorted(FORMATS))}") from None


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def register(fmt: DataFormat) -> None:
    """Add a data format; a name can be registered only once.

    :raises ValueError: the name is taken, or the name or extension is not ``[a-z0-9]{1,16}``.
    """
    for label, value in (("name", fmt.name), ("extension", fmt.extension)):
        if not 1 <= len(value) <= 16 or not set(value) <= _NAME_CHARS:
            raise ValueError(f"data format {label} {value!r} is not [a-z0-9]{{1,16}}")
    if fmt.name in FORMATS:
        raise ValueError(f"data format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt


def load_entry_points(*, force: bool = False) -> list[str]:
    """Register the formats of the ``dbcrate.formats`` entry point group; returns their names.

    Runs once per process (again with ``force``). Each entry point loads to a callable
    returning a :class:`DataFormat` (or to a :class:`DataFormat`). A broken entry point, or one
    whose name is already registered, is skipped with a warning: a plugin cannot replace a
    built-in format or make the others unusable.
    """
    import importlib.metadata  # only when a format is not known: it takes a while to load

    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return []
    _entry_points_loaded = True
    added: list[str] = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            fmt = loaded if isinstance(loaded, DataFormat) else loaded()
            if not isinstance(fmt, DataFormat):
                raise TypeError(f"returned {type(fmt).__name__}, not a DataFormat")
            if FORMATS.get(fmt.name) is fmt:
                continue
            register(fmt)
        except Exception as exc:
            warnings.warn(
                f"data format entry point {entry.name!r} ({entry.value}) skipped: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        added.append(fmt.name)
    return added
