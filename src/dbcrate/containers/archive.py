"""Reading archives of every container kind: the manifest, the tables, their data as Arrow
record batches; verify.

An archive is one dump in one *container kind* (docs/CONTAINERS.md): the tar file of
docs/FORMAT.md (``tar``), the same members unpacked into a directory (``directory``), one SQLite
database file (``sqlite``), or a directory of Python data modules (``python``). They all read
through :class:`Archive`; ``Archive(path)`` and :func:`open_archive` detect the kind and return
the matching subclass, so restore, compare, ``ls`` and ``verify`` never look at the kind.

>>> with dbcrate.open_archive("shop.crate") as a:          # doctest: +SKIP
...     for entry in a.tables:
...         print(entry.name, entry.rows)
...     for batch in a.iter_batches("orders"):
...         ...
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Literal, Protocol, overload

import pyarrow as pa

from dbcrate.containers.tar import MAX_MARKER_BYTES, ArchiveReader
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, UnknownTable, UsageError
from dbcrate.formats.registry import FORMATS, DataFormat, check_parquet, get_format
from dbcrate.model.manifest import (
    FORMAT_NAME,
    MAX_MANIFEST_BYTES,
    Chunk,
    Manifest,
    TableEntry,
    check_format_version,
)
from dbcrate.progress import Event

if TYPE_CHECKING:
    from dbcrate.containers.writers import ArchiveBuilder


def arrow_schema(entry: TableEntry) -> pa.Schema:
    """The Arrow schema every data member of ``entry`` must have."""
    return pa.schema([pa.field(c.name, c.type.arrow) for c in entry.schema.columns])


def check_marker(raw: bytes, display: str) -> int:
    """The format version of a marker (``dbcrate-archive.json``'s bytes), checked as
    docs/FORMAT.md says, before anything else is read.

    :raises NotAnArchive: not a dbcrate marker, or a malformed version.
    :raises UnsupportedFormatVersion: a newer format.
    """
    if len(raw) > MAX_MARKER_BYTES:
        raise NotAnArchive(f"{display}: the archive marker is larger than {MAX_MARKER_BYTES} bytes")
    try:
        marker = json.loads(raw)
    except (ValueError, RecursionError):
        raise NotAnArchive(f"{display}: unreadable archive marker") from None
    if not isinstance(marker, dict) or marker.get("format") != FORMAT_NAME:
        raise NotAnArchive(f"{display} is not a dbcrate archive (its marker is not dbcrate's)")
    version = marker.get("format_version")
    check_format_version(version)
    return int(version)  # type: ignore[arg-type]


def checked_manifest(raw: bytes, digest: bytes, display: str,
                     marker_version: int | None = None) -> Manifest:
    """Parse a manifest after comparing it with its digest (``manifest.sha256``'s bytes).

    :raises ArchiveCorrupt: the manifest does not match its digest.
    :raises NotAnArchive: malformed, or its version differs from the marker's.
    """
    if len(raw) > MAX_MANIFEST_BYTES:
        raise NotAnArchive(f"{display}: manifest.json is larger than the limit")
    expected = digest[:200].decode("ascii", "replace").strip()
    if hashlib.sha256(raw).hexdigest() != expected:
        raise ArchiveCorrupt(f"{display}: manifest.json does not match its SHA-256",
                             member="manifest.json")
    manifest = Manifest.from_json(raw, where=f"{display}: manifest.json")
    if marker_version is not None and manifest.format_version != marker_version:
        raise NotAnArchive(f"{display}: the marker says format {marker_version}, the manifest "
                           f"says {manifest.format_version}")
    return manifest


class Archive:
    """An open archive of any container kind; the manifest is checked when it is opened.

    ``Archive(path)`` detects the kind (see :func:`dbcrate.containers.kinds.detect_kind`) and returns an
    instance of the matching subclass; a subclass called directly opens its own kind only.
    Subclasses implement :meth:`check_chunk`, :meth:`chunk_batches`,
    :meth:`check_chunk_structure` and :meth:`close`; everything else is shared.

    Contract of every kind: ``chunk_batches(..., verify=True)`` checks the chunk's SHA-256
    *before* yielding any row; every batch has exactly :func:`arrow_schema` of the entry; the
    rows of a chunk add up to ``chunk.rows``; failures are :class:`ArchiveCorrupt` naming the
    chunk's member. Methods may be called from several threads at once (parallel restore).
    """

    #: the container kind's name (a key of ``dbcrate.containers.kinds.CONTAINER_KINDS``)
    kind: ClassVar[str] = ""
    path: str
    manifest: Manifest

    def __new__(cls, path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Archive:
        if cls is Archive:
            # imported here: the kinds registry imports every kind, and they import this module
            from dbcrate.containers.kinds import reader_class

            cls = reader_class(path)
        return object.__new__(cls)

    @property
    def tables(self) -> list[TableEntry]:
        return self.manifest.tables

    def table(self, name: str) -> TableEntry:
        try:
            return self.manifest.table(name)
        except KeyError:
            raise UnknownTable(
                f"the archive has no table {name!r}",
                hint="tables: " + ", ".join(t.name for t in self.tables[:20]),
            ) from None

    # (not @abstractmethod: ``Archive(path)`` is how callers open any kind, and type checkers
    # refuse to instantiate an abstract class)
    def check_chunk(self, chunk: Chunk) -> None:
        """Compare a chunk's stored bytes with its SHA-256 (raises :class:`ArchiveCorrupt`)."""
        raise NotImplementedError

    def chunk_batches(
        self, entry: TableEntry, chunk: Chunk, *, verify: bool = True
    ) -> Iterator[pa.RecordBatch]:
        """Decode one chunk; checks its hash first (``verify``), then schema and rows."""
        raise NotImplementedError

    def check_chunk_structure(self, entry: TableEntry, chunk: Chunk) -> None:
        """Row count and schema of a chunk, as cheaply as the kind allows (raises
        :class:`ArchiveCorrupt`)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release files and connections (idempotent)."""
        raise NotImplementedError

    def iter_batches(self, name: str, *, verify: bool = True) -> Iterator[pa.RecordBatch]:
        """All rows of table ``name`` as record batches, chunk after chunk (bounded memory)."""
        entry = self.table(name)
        for chunk in entry.chunks:
            yield from self.chunk_batches(entry, chunk, verify=verify)

    def read_table(self, name: str) -> pa.Table:
        """A whole table in memory (convenient for small tables)."""
        entry = self.table(name)
        return pa.Table.from_batches(list(self.iter_batches(name)), schema=arrow_schema(entry))

    def iter_verify(self) -> Iterator[Event]:
        """Check every chunk's hash and decode every chunk; yields progress events.

        :raises ArchiveCorrupt: at the first damaged chunk, naming it.
        """
        chunks = [(e, c) for e in self.tables for c in e.chunks]
        total = sum(c.size for _, c in chunks)
        done = 0
        for entry, chunk in chunks:
            for _batch in self.chunk_batches(entry, chunk, verify=True):
                pass
            done += chunk.size
            yield Event("verify", done, total, f"Verify {chunk.member}", entry.name, bytes=done)

    def verify(self) -> VerifyReport:
        for _ in self.iter_verify():
            pass
        return VerifyReport(
            path=self.path,
            tables=len(self.tables),
            members=sum(len(t.chunks) for t in self.tables),
            rows=self.manifest.rows,
            bytes=self.manifest.size,
            incomplete=[t.name for t in self.tables if t.status != "ok"],
            storage_files=self.manifest.storage.files if self.manifest.storage else 0,
        )

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SizedMember(Protocol):
    @property
    def size(self) -> int: ...


class MemberReader(Protocol):
    """What :class:`MemberArchive` needs of a container: the tar reader
    (:class:`dbcrate.containers.tar.ArchiveReader`) and the directory reader provide it. After
    construction the manifest is parsed and every member it lists exists with its size; no
    unlisted member exists."""

    display: str
    manifest: Manifest

    @property
    def members(self) -> Mapping[str, SizedMember]: ...

    def member_buffer(self, name: str) -> pa.Buffer: ...

    def member_stream(self, name: str) -> BinaryIO: ...

    def open_member(self, name: str) -> pa.BufferReader: ...

    def check_member(self, name: str, sha256: str) -> None: ...

    def close(self) -> None: ...


class MemberArchive(Archive):
    """The kinds whose chunks are data members encoded in a data format (``tar`` and
    ``directory``): members are found by name, checked against their SHA-256 and decoded by
    the manifest's data format."""

    _reader: MemberReader
    format: DataFormat

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._reader = self._open(path)
        self.manifest = self._reader.manifest
        try:
            self.format = get_format(self.manifest.data_format)  # loads plugin formats too
        except UsageError:
            self._reader.close()
            raise NotAnArchive(
                f"{self.path}: data format {self.manifest.data_format!r} is not known here",
                hint=f"known formats: {', '.join(sorted(FORMATS))}; a plugin may provide it",
            ) from None

    def _open(self, path: str | os.PathLike[str]) -> MemberReader:
        """Open and check the container (marker, manifest, member list)."""
        raise NotImplementedError

    @property
    def reader(self) -> MemberReader:
        """The container reader (members by name; used to copy members and storages)."""
        return self._reader

    def member_names(self) -> list[str]:
        """Every member, in container order (the tar's; a directory's sorted)."""
        return list(self._reader.members)

    def member_size(self, name: str) -> int:
        return self._reader.members[name].size

    def member_stream(self, name: str) -> BinaryIO:
        """A stream of a member's stored bytes (not checked); close it after use."""
        return self._reader.member_stream(name)

    def check_chunk(self, chunk: Chunk) -> None:
        self._reader.check_member(chunk.member, chunk.sha256)

    def iter_verify(self) -> Iterator[Event]:
        """Every chunk (see :meth:`Archive.iter_verify`), then the storages: the index and
        every pack against their SHA-256, every file's own size and SHA-256."""
        yield from super().iter_verify()
        if self.manifest.storage is not None:
            from dbcrate.storages.restore import iter_verify_storages  # it imports the container only

            yield from iter_verify_storages(self._reader,  # type: ignore[arg-type]
                                            self.manifest.storage)

    def chunk_batches(
        self, entry: TableEntry, chunk: Chunk, *, verify: bool = True
    ) -> Iterator[pa.RecordBatch]:
        if verify:
            self.check_chunk(chunk)
        expected = arrow_schema(entry)
        rows = 0
        try:
            with self._open_for_format(chunk.member) as source:
                for batch in self.format.read(source, expected):
                    for column in batch.columns:  # invalid UTF-8 in a string column
                        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                            column.validate(full=True)
                    # (not the whole batch: time64 86,400,000,000 - PostgreSQL's 24:00:00 - is
                    # outside Arrow's range of a time of day, and the format allows it)
                    if not batch.schema.equals(expected):
                        raise ArchiveCorrupt(
                            f"{self.path}: member {chunk.member} (table {entry.name}) does not "
                            "have the schema the manifest gives",
                            member=chunk.member,
                        )
                    rows += batch.num_rows
                    if rows > chunk.rows:
                        break
                    yield batch
        except ArchiveCorrupt:
            raise
        except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) cannot be decoded: {exc}",
                member=chunk.member,
                hint=getattr(exc, "hint", None),  # a text format's limit names its setting
            ) from None
        if rows != chunk.rows:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) holds {rows} rows, "
                f"the manifest says {chunk.rows}",
                member=chunk.member,
            )

    def _open_for_format(self, member: str) -> pa.NativeFile:
        """The member as the format reads it best: a file read by range on demand for a format
        that seeks (a 56 MB Parquet member of documents is then never held whole while it is
        decoded), else the whole member in an Arrow-owned buffer."""
        if self.format.reads_by_range:
            return pa.PythonFile(self._reader.member_stream(member), mode="r")
        return self._reader.open_member(member)

    def check_chunk_structure(self, entry: TableEntry, chunk: Chunk) -> None:
        """Row count and schema of a member, as cheaply as the format allows (a Parquet footer
        and page headers, checked against the decoding budget; other formats are decoded).
        Raises :class:`ArchiveCorrupt`."""
        if self.format.name != "parquet":
            for _ in self.chunk_batches(entry, chunk, verify=False):
                pass
            return
        try:
            with self._open_for_format(chunk.member) as source:  # the footer, page headers
                # the sizes it declares, within its budget: a bomb is refused before a restore
                # writes anything, not halfway through a table
                meta = check_parquet(source)[0].metadata
            schema = meta.schema.to_arrow_schema()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) cannot be decoded: {exc}",
                member=chunk.member,
                hint=getattr(exc, "hint", None),  # a decoding limit names its setting
            ) from None
        expected = arrow_schema(entry)
        if meta.num_rows != chunk.rows or not schema.remove_metadata().equals(expected):
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) holds {meta.num_rows} "
                f"rows of schema {schema.names}, the manifest says {chunk.rows} rows of "
                f"{expected.names}",
                member=chunk.member,
            )

    def close(self) -> None:
        self._reader.close()


class TarArchive(MemberArchive):
    """The ``tar`` kind: one uncompressed tar file (docs/FORMAT.md); ``"-"`` reads standard
    input (spooled to a private temp file)."""

    kind = "tar"

    def _open(self, path: str | os.PathLike[str]) -> MemberReader:
        return ArchiveReader(path)


@dataclass
class VerifyReport:
    path: str
    tables: int
    members: int
    rows: int
    bytes: int
    incomplete: list[str] = field(default_factory=list)
    storage_files: int = 0


@overload
def open_archive(path: str | os.PathLike[str], mode: Literal["r"] = "r", *,
                 kind: str | None = None) -> Archive: ...


@overload
def open_archive(path: str | os.PathLike[str], mode: Literal["w"], *, kind: str | None = None,
                 format: str | None = None, max_row_count: int | None = None,
                 overwrite: bool = False) -> ArchiveBuilder: ...


def open_archive(path: str | os.PathLike[str], mode: str = "r", *, kind: str | None = None,
                 format: str | None = None, max_row_count: int | None = None,
                 overwrite: bool = False) -> Archive | ArchiveBuilder:
    """Open an archive of any container kind.

    ``mode="r"`` (default): read; the kind is detected unless ``kind`` names it (``"-"`` reads
    a tar from standard input). ``mode="w"``: an :class:`~dbcrate.containers.writers.ArchiveBuilder`
    writing a new archive of ``kind`` (default ``"tar"``) with data ``format`` (tar and
    directory kinds), as a context manager that commits on success and leaves nothing
    behind on error::

        with dbcrate.open_archive("out.sqlite", "w", kind="sqlite") as out:
            out.add_table(table_schema, batches)

    :raises UsageError: an unknown mode or kind (naming the choices).
    :raises NotAnArchive: (reading) the path is no archive of any kind.
    """
    if mode == "r":
        if format is not None or max_row_count is not None or overwrite:
            raise UsageError("format, max_row_count and overwrite apply to mode='w'")
        if kind is None:
            return Archive(path)
        from dbcrate.containers.kinds import get_kind

        return get_kind(kind).reader(path)
    if mode == "w":
        from dbcrate.containers.writers import ArchiveBuilder

        return ArchiveBuilder(path, kind=kind or "tar", data_format=format,
                              max_row_count=max_row_count, overwrite=overwrite)
    raise UsageError(f"unknown archive mode {mode!r}", hint="modes: 'r' (read), 'w' (write)")
