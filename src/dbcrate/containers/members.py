"""The member-based kinds' reader (``tar`` and ``directory``): chunks are data members
encoded in a data format, found by name in a container that :class:`MemberReader` describes.
:class:`TarArchive` (the tar kind's reader) is here too: it is :class:`MemberArchive` over
:class:`~dbcrate.containers.tar.ArchiveReader`, which storages also read, so it cannot live in
``tar.py`` without a cycle through :mod:`dbcrate.storages.restore`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

from dbcrate.containers.base import (
    Archive,
    ArchiveTarget,
    EditedChunk,
    accept_edit,
    arrow_schema,
    file_object_name,
    is_file_object,
    refuse_edits,
)
from dbcrate.containers.tar import COPY_BUFFER, ArchiveReader
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, UsageError
from dbcrate.formats.registry import FORMATS, DataFormat, get_format
from dbcrate.model.manifest import Chunk, Manifest, TableEntry
from dbcrate.progress import Event
from dbcrate.stores.objects import is_object_url

if TYPE_CHECKING:  # pyarrow is imported where it is used: ls reads a manifest without it
    import pyarrow as pa

    from dbcrate.crypto.keys import Keyring


#: a member up to this size is read whole before it is decoded, even by a format that seeks
WHOLE_MEMBER_BYTES = 1024 * 1024


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
    #: data members may be edited and accepted (``accept_edits``): the directory kind
    edits_allowed: ClassVar[bool] = False

    def __init__(self, path: ArchiveTarget, *, accept_edits: bool = False,
                 keys: Keyring | None = None) -> None:
        """Open and check the archive at ``path`` (the tar kind: also a file object).

        :param keys: (tar kind) what opens a sealed archive; default
            :meth:`Keyring.from_environment() <dbcrate.crypto.keys.Keyring.from_environment>`
            (``DBCRATE_IDENTITY``, ``DBCRATE_PASSPHRASE``). Ignored for a plain archive.

        :param accept_edits: (directory kind) a data member whose bytes differ from the
            manifest is decoded (with the data format's reader, never run), re-hashed and
            accepted: :attr:`edited` lists it and the manifest describes it as it is now.
        :raises UsageError: ``accept_edits`` for the tar kind.
        """
        self.path = self._display(path)
        self._keys = keys
        if accept_edits and not self.edits_allowed:
            refuse_edits(self.kind, self.path)
        self._reader = self._open(path, accept_edits)
        self.manifest = self._reader.manifest
        self.edited = []
        try:
            self.format = get_format(self.manifest.data_format)  # loads plugin formats too
            if accept_edits:
                self.edited = self._accept_edits()
        except UsageError:
            self._reader.close()
            raise NotAnArchive(
                f"{self.path}: data format {self.manifest.data_format!r} is not known here",
                hint=f"known formats: {', '.join(sorted(FORMATS))}; a plugin may provide it",
            ) from None
        except BaseException:
            self._reader.close()
            raise

    @staticmethod
    def _display(path: ArchiveTarget) -> str:
        return file_object_name(path) if is_file_object(path) else str(path)

    def _open(self, path: ArchiveTarget, accept_edits: bool) -> MemberReader:
        """Open and check the container (marker, manifest, member list); with
        ``accept_edits`` data members may have other sizes than the manifest says."""
        raise NotImplementedError

    def _accept_edits(self) -> list[EditedChunk]:
        """Re-hash every data member; each one that differs from its manifest record is
        decoded in full (its schema checked, its rows counted) and accepted."""
        import pyarrow as pa

        edited = []
        for entry in self.tables:
            for index, chunk in enumerate(entry.chunks):
                size = self._reader.members[chunk.member].size
                sha = hashlib.sha256()
                with self._reader.member_stream(chunk.member) as stream:
                    while block := stream.read(COPY_BUFFER):
                        sha.update(block)
                if size == chunk.size and sha.hexdigest() == chunk.sha256:
                    continue
                rows = 0
                try:
                    for batch in self._decoded(entry, chunk.member):
                        rows += batch.num_rows
                except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
                    raise self._undecodable(entry, chunk.member, exc) from None
                after = Chunk(chunk.member, rows, size, sha.hexdigest())
                edited.append(accept_edit(entry, index, after))
        return edited

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
            from dbcrate.storages.restore import iter_verify_storages  # storages only

            yield from iter_verify_storages(self._reader,  # type: ignore[arg-type]
                                            self.manifest.storage)

    def chunk_batches(
        self, entry: TableEntry, chunk: Chunk, *, verify: bool = True
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        if verify:
            self.check_chunk(chunk)
        rows = 0
        try:
            for batch in self._decoded(entry, chunk.member):
                rows += batch.num_rows
                if rows > chunk.rows:
                    break
                yield batch
        except ArchiveCorrupt:
            raise
        except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
            raise self._undecodable(entry, chunk.member, exc) from None
        if rows != chunk.rows:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) holds {rows} rows, "
                f"the manifest says {chunk.rows}",
                member=chunk.member,
            )

    @property
    def native_rows(self) -> str | None:
        return self.format.name if self.format.native_rows else None

    def chunk_text(self, entry: TableEntry, chunk: Chunk, *,
                   verify: bool = True) -> Iterator[Any]:
        from dbcrate.formats.pgcopy import text_pieces

        if verify:
            self.check_chunk(chunk)
        rows = 0
        try:
            with self._reader.member_stream(chunk.member) as stream:
                for piece in text_pieces(stream, self._reader.members[chunk.member].size,
                                         whole_rows=False):
                    rows += piece.num_rows
                    if rows > chunk.rows:
                        break
                    yield piece
        except (OSError, ValueError, EOFError) as exc:
            raise self._undecodable(entry, chunk.member, exc) from None
        if rows != chunk.rows:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) holds "
                f"{'more than ' if rows > chunk.rows else ''}{rows} rows, the manifest says "
                f"{chunk.rows}", member=chunk.member)

    def _decoded(self, entry: TableEntry, member: str) -> Iterator[pa.RecordBatch]:
        """The member's rows decoded by the data format, each batch checked: valid UTF-8 in
        string columns, exactly the entry's Arrow schema (raises :class:`ArchiveCorrupt`; the
        format's own errors go through, for the caller to restate)."""
        import pyarrow as pa

        expected = arrow_schema(entry)
        with self._open_for_format(member) as source:
            for batch in self.format.read(source, expected):
                for column in batch.columns:  # invalid UTF-8 in a string column
                    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                        column.validate(full=True)
                # (not the whole batch: time64 86,400,000,000 - PostgreSQL's 24:00:00 - is
                # outside Arrow's range of a time of day, and the format allows it)
                if not batch.schema.equals(expected):
                    raise ArchiveCorrupt(
                        f"{self.path}: member {member} (table {entry.name}) does not "
                        "have the schema the manifest gives",
                        member=member,
                    )
                yield batch

    def _undecodable(self, entry: TableEntry, member: str, exc: Exception) -> ArchiveCorrupt:
        return ArchiveCorrupt(
            f"{self.path}: member {member} (table {entry.name}) cannot be decoded: {exc}",
            member=member,
            hint=getattr(exc, "hint", None),  # a text format's limit names its setting
        )

    def _open_for_format(self, member: str) -> pa.NativeFile:
        """The member as the format reads it best: a file read by range on demand for a format
        that seeks (a 56 MB Parquet member of documents is then never held whole while it is
        decoded), else - or when it is small - the whole member in an Arrow-owned buffer (each
        read of a file read by range is a call back into Python: 0.7 ms of a 20-row member's
        decoding, a third of a small table's restore)."""
        import pyarrow as pa

        if self.format.reads_by_range and self._reader.members[member].size > WHOLE_MEMBER_BYTES:
            return pa.PythonFile(self._reader.member_stream(member), mode="r")
        return self._reader.open_member(member)

    def check_chunk_structure(self, entry: TableEntry, chunk: Chunk) -> None:
        """Row count and schema of a member, as cheaply as the format allows (a Parquet footer
        and page headers, checked against the decoding budget; an engine's own rows counted,
        not decoded: the server that loads them parses them; other formats are decoded).
        Raises :class:`ArchiveCorrupt`."""
        import pyarrow as pa

        if self.format.native_rows:  # its rows counted; the engine that loads them parses
            for _ in self.chunk_text(entry, chunk, verify=False):  # them (else they decode)
                pass
            return
        if self.format.name != "parquet":
            for _ in self.chunk_batches(entry, chunk, verify=False):
                pass
            return
        from dbcrate.formats.budget import check_parquet  # with the codecs: not for ls

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

    def _open(self, path: ArchiveTarget, accept_edits: bool) -> MemberReader:
        if is_object_url(path):  # s3://: member by member where the manifest places them
            from dbcrate.crypto.ranged import sealed_ranged_reader
            from dbcrate.stores.ranged import ranged_reader

            def sealed(url: str) -> MemberReader | None:
                return sealed_ranged_reader(url, self._keys)

            ranged: MemberReader | None = ranged_reader(str(path), sealed)
            if ranged is not None:
                return ranged
        reader = ArchiveReader(path)
        if reader.sealed is None:
            return reader
        try:  # encrypted (format 6): decrypted member by member as they are read
            from dbcrate.crypto.keys import Keyring
            from dbcrate.crypto.sealed import SealedReader

            return SealedReader(reader, self._keys or Keyring.from_environment())
        except BaseException:
            reader.close()
            raise
