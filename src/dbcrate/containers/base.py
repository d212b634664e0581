"""The interfaces every container kind implements, and what they share.

Reading: :class:`Archive` (the manifest, the tables, their data as Arrow record batches,
verify). Writing: :class:`ContainerWriter` (``begin_table``, ``write_chunk``, ``add_file``,
``commit``, ``abort``). Every kind's module depends on this one; the registry
(:mod:`dbcrate.containers.kinds`) depends on the kinds, and detection and ``open_archive``
(:mod:`dbcrate.containers.archive`) on the registry - never the reverse.

Writing protocol: a :class:`ContainerWriter` receives, table by table in manifest order,
``begin_table`` and then the table's chunks (``write_chunk``: Arrow record batches of one
chunk, consumed as they come, so memory stays bounded by a batch), then ``commit(manifest)``
with the manifest whose chunks are the ones it returned. Leaving its ``with`` block with an
exception (or ``abort()``) leaves nothing under the final name. *Member-based* kinds (``tar``,
``directory``) also accept raw members (``add_file``): chunks copied byte for byte, and storage
members.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeVar

from dbcrate.errors import ArchiveCorrupt, NotAnArchive, UnknownTable, UsageError
from dbcrate.formats.registry import DEFAULT_COMPRESSION_LEVEL, ChunkWriter, DataFormat
from dbcrate.model.manifest import (
    FORMAT_NAME,
    MAX_MANIFEST_BYTES,
    Chunk,
    Manifest,
    TableEntry,
    check_format_version,
)
from dbcrate.progress import Event

if TYPE_CHECKING:  # pyarrow is imported where it is used: ls reads a manifest without it
    import pyarrow as pa

    from dbcrate.arrivals import Arrivals

T = TypeVar("T")

#: where an archive is: a path (``"-"``: standard input or output), or for the tar kind an
#: open binary file object, which dbcrate reads or writes but never closes
ArchiveTarget = str | os.PathLike[str] | IO[bytes]


def is_file_object(target: object) -> bool:
    """``target`` is an open file object rather than a path (``str``, ``os.PathLike``)."""
    return (not isinstance(target, str | os.PathLike)
            and (hasattr(target, "read") or hasattr(target, "write")))


def file_object_name(target: object) -> str:
    """How messages name an archive given as a file object: its ``name`` when that is a path
    (a file opened with ``open``), else a description of it."""
    name = getattr(target, "name", None)
    return str(name) if isinstance(name, str) and name else f"the file object {type(target).__name__}"


#: the marker member (docs/FORMAT.md): format name and version, read before anything else
MARKER = "dbcrate-archive.json"
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
#: the marker member is tiny; a large one is not ours
MAX_MARKER_BYTES = 4096

#: how ``Archive(path)`` finds the reader of ``path``'s kind. Set by the registry
#: (:func:`dbcrate.containers.kinds.reader_class`) when it is imported - ``import dbcrate``
#: imports it - so that this module depends on no kind.
_reader_lookup: Callable[[ArchiveTarget], type[Archive]] | None = None


def set_reader_lookup(lookup: Callable[[ArchiveTarget], type[Archive]]) -> None:
    """Install how ``Archive(path)`` detects the kind (the registry calls this once)."""
    global _reader_lookup
    _reader_lookup = lookup


def arrow_schema(entry: TableEntry) -> pa.Schema:
    """The Arrow schema every data member of ``entry`` must have."""
    import pyarrow as pa

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
    #: data members edited after the dump and accepted (opened with ``accept_edits=True``,
    #: python and directory kinds); the manifest describes them as they are now
    edited: Sequence[EditedChunk] = ()
    #: the tables still being written, for an archive read while it is dumped (``copy``:
    #: :class:`~dbcrate.containers.live.LiveArchive`): a table's chunks are known once its
    #: name has arrived. None for every archive that is complete.
    pending: Arrivals | None = None
    #: what :attr:`journal_id` is when set (see there)
    _journal_id: str | None = None

    def __new__(cls, path: ArchiveTarget, *args: Any, **kwargs: Any) -> Archive:
        if cls is Archive:
            if _reader_lookup is None:  # only when dbcrate.containers.kinds was never imported
                raise RuntimeError("Archive(path) needs the kinds registry: import dbcrate first")
            cls = _reader_lookup(path)
        return object.__new__(cls)

    @property
    def tables(self) -> list[TableEntry]:
        return self.manifest.tables

    @property
    def journal_id(self) -> str:
        """What a restore's journal records its progress under (``resume`` continues the
        work recorded under the same id): the SHA-256 of the manifest, unless set (a ``copy``
        resumed from its spool continues what it recorded while the archive was written)."""
        if self._journal_id is None:
            self._journal_id = hashlib.sha256(self.manifest.to_json()).hexdigest()
        return self._journal_id

    @journal_id.setter
    def journal_id(self, value: str) -> None:
        self._journal_id = value

    def wait_complete(self) -> None:
        """Return once every table's chunks are known: at once for a complete archive; an
        archive read while it is written (:attr:`pending`) waits for the dump, and raises
        what stopped it."""

    def first_chunks_name(self, table: str) -> str:
        """The name that arrives in :attr:`pending` once the first chunks of ``table`` may
        be read through :meth:`table_chunks` (a load may start on it then); the table's own
        name where tables arrive whole."""
        return table

    def table_chunks(self, entry: TableEntry,
                     stopped: Callable[[], bool] | None = None) -> Iterator[Chunk]:
        """The chunks of ``entry``, each once it may be read: all of them, at once, for a
        complete archive; one read while it is written may wait for the dump to write the
        next (and raise what stopped it, or :class:`~dbcrate.progress.Interrupted` once
        ``stopped()`` says so while waiting)."""
        return iter(entry.chunks)

    def in_arrival_order(self, items: Sequence[T], name: Callable[[T], str]) -> Iterator[T]:
        """``items`` (named by ``name``: tables of this archive), each once its chunks are
        known: in their order for a complete archive; for one read while it is written, as
        the dump writes them (raises what stopped the dump)."""
        return iter(items)

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

    def expected_size(self, entry: TableEntry) -> tuple[int, int]:
        """A table's rows and data bytes, what a restore schedules by: the chunks' (a table
        still being written - a copy - is the source engine's estimate)."""
        return entry.rows, entry.size

    @property
    def native_rows(self) -> str | None:
        """The data format when its members hold an engine's own rows (``pgcopy``), which
        :meth:`chunk_text` gives as they are; else None."""
        return None

    def chunk_text(self, entry: TableEntry, chunk: Chunk, *,
                   verify: bool = True) -> Iterator[Any]:
        """The rows of a chunk of an engine's own rows, undecoded: pieces of bounded size with
        ``data`` and ``num_rows``, the line feeds each holds (a row may span pieces;
        :class:`dbcrate.formats.pgcopy.TextPiece`); checks its hash first (``verify``), and
        that it holds the chunk's rows."""
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
        import pyarrow as pa

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
        """Check every chunk (see :meth:`iter_verify`); returns what was checked."""
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


@dataclass(frozen=True)
class EditedChunk:
    """A data member changed after the dump and accepted (``accept_edits``): the manifest's
    record of it (``before``) and what the member holds now (``after``: its rows, size and
    SHA-256, which the open archive's manifest now carries)."""

    table: str
    before: Chunk
    after: Chunk

    @property
    def member(self) -> str:
        return self.after.member

    def describe(self) -> str:
        """The warning a restore shows for it."""
        rows = ("" if self.after.rows == self.before.rows else
                f"; {self.after.rows:,} rows, the dump had {self.before.rows:,}")
        return (f"edited by hand: {self.member} (table {self.table}): accepted "
                f"(accept_edits=True){rows}")


def refuse_edits(kind: str, display: str) -> None:
    """``accept_edits`` asked of a kind whose members are not meant to be edited.

    :raises UsageError: always.
    """
    raise UsageError(f"{display} is a {kind} archive; accepting edited data members applies "
                     "to the python and directory kinds only",
                     hint="convert the archive with --as python (or --as directory with a text "
                     "format such as jsonl), edit that, and restore it with accept_edits=True")


def accept_edit(entry: TableEntry, index: int, after: Chunk) -> EditedChunk:
    """Put ``after`` in place of chunk ``index`` of ``entry`` (the open archive's manifest then
    describes the edited member: its rows, size and SHA-256) and return the record of it."""
    before = entry.chunks[index]
    entry.chunks[index] = after
    return EditedChunk(entry.name, before, after)


#: an edited data member larger than this is refused (the dump's members are bounded by the
#: chunk size; a hand edit does not make one many times bigger)
MAX_EDITED_BYTES = 512 * 1024 * 1024


@dataclass
class VerifyReport:
    path: str
    tables: int
    members: int
    rows: int
    bytes: int
    incomplete: list[str] = field(default_factory=list)
    storage_files: int = 0


class HashingSink(io.RawIOBase):
    """A write-only file that passes everything to ``target`` and counts and hashes it."""

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__()
        self.target = target
        self.sha = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.target.write(view)
        self.sha.update(view)
        self.count += len(view)
        return len(view)

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        self.target.flush()


def spooled_chunk(add_file: Callable[[str, IO[bytes], int], str], member: str,
                  fmt: DataFormat, entry: TableEntry, batches: Iterable[pa.RecordBatch],
                  level: int) -> Chunk:
    """Encode a chunk into a private temp file first (a tar header states a member's size;
    an upload is sequential), then hand it to ``add_file``; its record for the manifest."""
    import tempfile

    with tempfile.TemporaryFile(prefix="dbcrate-chunk-") as spool:
        rows = encode_batches(fmt, arrow_schema(entry), batches, spool, level)
        size = spool.tell()
        spool.seek(0)
        sha = add_file(member, spool, size)
    return Chunk(member, rows, size, sha)


def manifest_members(manifest: Manifest) -> dict[str, int]:
    """The data and storage members a manifest lists, with their sizes, in archive order."""
    out = {c.member: c.size for t in manifest.tables for c in t.chunks}
    storage = getattr(manifest, "storage", None)
    if storage is not None:
        for member, size, _sha in storage.members():
            out[member] = size
    return out


def write_documents(add_bytes: Callable[[str, bytes], str], manifest: Manifest) -> None:
    """The marker, the manifest and its digest, in that order (the last members written)."""
    raw = manifest.to_json()
    add_bytes(MARKER, json.dumps(
        {"format": FORMAT_NAME, "format_version": manifest.format_version}).encode())
    add_bytes(MANIFEST, raw)
    add_bytes(MANIFEST_DIGEST, (hashlib.sha256(raw).hexdigest() + "\n").encode())


def encode_batches(fmt: DataFormat, schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                   sink: IO[bytes], level: int) -> int:
    """Encode ``batches`` as one data member of format ``fmt`` into ``sink``; returns the rows.

    ``sink`` stays open. On an error the format's writer is closed before the error goes on (a
    writer collected later would write into a closed file).
    """
    writer: ChunkWriter = fmt.open_writer(sink, schema, level)
    rows = 0
    try:
        for batch in batches:
            writer.write(batch)
            rows += batch.num_rows
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        raise
    writer.close()
    return rows


class ContainerWriter:
    """The writing side of a container kind (see the module docstring for the protocol).

    :param path: the final path of the output.
    :param data_format: the data format of member-based kinds (default ``parquet``); the row
        kinds store values themselves and accept only ``None`` or their own name.
    :param mtime: the dump's start time (Unix seconds), recorded where the kind records times.
    :param overwrite: directory kinds: replace an existing dump directory.
    :param format_version: the archive format version of the manifest that will be committed
        (the tar marker is written first and must agree with it).
    :param compression_level: zstd level of re-encoded data members.
    """

    #: the kind's name (a key of ``dbcrate.containers.kinds.CONTAINER_KINDS``)
    kind: ClassVar[str] = ""
    #: chunks are data members in a data format, and raw members can be added
    member_based: ClassVar[bool] = False
    #: a member-based kind whose members may come table by table in any order (a directory:
    #: its members are files; a tar's are in manifest order, docs/FORMAT.md)
    tables_in_any_order: ClassVar[bool] = False
    #: what the manifest's ``data_format`` says for this output
    data_format: str

    def __init__(self, path: ArchiveTarget, *, data_format: str | None = None,
                 mtime: float | None = None, overwrite: bool = False, format_version: int = 1,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL) -> None:
        raise NotImplementedError

    def begin_table(self, number: int, entry: TableEntry) -> None:
        """Called once per table (1-based ``number``, in manifest order) before its chunks,
        also for a table without rows."""

    def write_chunk(self, number: int, index: int, entry: TableEntry,
                    batches: Iterable[pa.RecordBatch]) -> Chunk:
        """Write chunk ``index`` (0-based) of table ``number`` from ``batches`` (each with
        exactly ``arrow_schema(entry)``; consumed to the end); returns its manifest record."""
        raise NotImplementedError

    def add_file(self, name: str, source: IO[bytes], size: int) -> str:
        """Add a raw member of ``size`` bytes read from ``source``; returns its SHA-256 (hex).
        Member-based kinds only."""
        raise UsageError(f"the {self.kind} kind stores no raw archive members ({name})",
                         hint="storages and byte-exact members need the tar or directory kind")

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest and make the output appear under its final name."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop everything written so far (the final name is never touched; idempotent)."""
        raise NotImplementedError

    def check_manifest(self, manifest: Manifest) -> None:
        """What every kind checks at commit: the data format it wrote, and (row kinds) that
        there are no storages, which only member-based kinds can hold."""
        if manifest.data_format != self.data_format:
            raise ValueError(f"the manifest says data format {manifest.data_format!r}, "
                             f"this {self.kind} output holds {self.data_format!r}")
        if not self.member_based:
            refuse_storages(manifest, self.kind)

    def __enter__(self) -> ContainerWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


def refuse_storages(manifest: Manifest, kind: str) -> None:
    """Storages (files beside the data, manifest format 2) live in raw archive members, which
    only the tar and directory kinds hold.

    :raises UsageError: the manifest describes storages.
    """
    if getattr(manifest, "storage", None):
        raise UsageError(
            f"the archive holds storages (files beside the data): storages need the tar or "
            f"directory kind, the {kind} kind cannot hold them",
            hint="convert or dump with --as tar or --as directory",
        )


def row_kind_format(kind: str, data_format: str | None) -> str:
    """The manifest ``data_format`` of a row kind (its own name); refuses another format."""
    if data_format not in (None, kind):
        raise UsageError(
            f"the {kind} kind stores values itself; a data format ({data_format!r}) applies to "
            "the tar and directory kinds only",
            hint=f"leave out the format with --as {kind}",
        )
    return kind
