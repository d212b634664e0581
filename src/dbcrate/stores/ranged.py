"""A tar archive in object storage, read member by member with ranged requests.

An archive dumped to object storage records where each chunk's bytes start in the tar
(format 5, ``Chunk.offset``). Its reader asks the store for the marker and the manifest
(:mod:`dbcrate.stores.manifest`), then for each chunk the restore or verify needs, and only
those: restoring one table of a large archive reads that table's members. Each member is
checked against the manifest's SHA-256 before it is decoded, as every reader does.

The storages' index and packs are placed too (their offsets in the manifest's storage
section): a restore of the tables alone fetches none of them, one with ``storages_to``
fetches each pack once, in ranges of :data:`FETCH_BYTES` into the private temp directory,
and reads its files from there.

What a ranged reader does not do: look at the bytes between the members it reads. The file
reader checks that no unlisted member exists; this one cannot without reading everything, and
needs not: what it reads is named by the checked manifest and checked by its hash. An archive
without offsets (written locally and uploaded, formats 1-4, or storages dumped before their
offsets were recorded) is read whole (:class:`dbcrate.containers.tar.ArchiveReader` spools
it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from dbcrate.containers.streams import check_stream_sha256
from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.manifest import OFFSETS_FORMAT_VERSION, Manifest
from dbcrate.stores.manifest import object_manifest
from dbcrate.stores.objects import object_range, object_size

if TYPE_CHECKING:
    import pyarrow as pa


T = TypeVar("T")
#: a member is fetched in ranges of this size (a pack of one large file may be gigabytes)
FETCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Placed:
    size: int
    offset: int


class RangedReader:
    """The container reader (``MemberReader`` of :mod:`dbcrate.containers.members`) of an
    archive in object storage whose manifest gives every chunk's offset."""

    def __init__(self, url: str, manifest: Manifest, object_bytes: int) -> None:
        self.display = url
        self.manifest = manifest
        self._members: dict[str, _Placed] = {}
        for table in manifest.tables:
            for chunk in table.chunks:
                assert chunk.offset is not None  # (ranged_reader checked it)
                if chunk.offset + self._stored(chunk.size) > object_bytes:
                    raise ArchiveCorrupt(f"{url}: member {chunk.member} lies past the end of "
                                         "the object (truncated?)", member=chunk.member)
                self._members[chunk.member] = _Placed(chunk.size, chunk.offset)
        storage = manifest.storage
        placed = [] if storage is None else [(m, s, o) for m, s, _, o in storage.placed_members()]
        for member, size, offset in placed:
            if offset + self._stored(size) > object_bytes:
                raise ArchiveCorrupt(f"{url}: member {member} lies past the end of the object "
                                     "(truncated?)", member=member)
            self._members[member] = _Placed(size, offset)
        # members fetched so far, kept in a private temp directory: a restore checks a
        # member, then loads it (two reads, one request); removed by close()
        self._dir = tempfile.mkdtemp(prefix="dbcrate-members-")
        self._fetched: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def members(self) -> Mapping[str, _Placed]:
        return self._members

    def _stored(self, size: int) -> int:
        """How many bytes of the object hold a member of ``size`` bytes (sealed: more)."""
        return size

    def _opened(self, name: str, data: bytes) -> bytes:
        """A member's bytes as fetched, as the archive's reader reads them (sealed:
        decrypted and authenticated)."""
        return data

    def _bytes(self, name: str) -> bytes:
        """The member's bytes as the reader reads them. What is kept on disk is what the
        object holds (a sealed member stays encrypted there: its plaintext never touches the
        disk, and is decrypted again at each read); a file is registered only once written,
        so a concurrent read never sees it half-written."""
        with open(self._fetch(name), "rb") as kept:
            return self._opened(name, kept.read())

    def _fetch(self, name: str) -> str:
        """The path of the member's stored bytes in the private temp directory, fetched in
        ranges of :data:`FETCH_BYTES` the first time."""
        with self._lock:
            path = self._fetched.get(name)
        if path is not None:
            return path
        placed = self._members[name]
        stored = self._stored(placed.size)
        fd, path = tempfile.mkstemp(prefix="m", dir=self._dir)  # (0600)
        with os.fdopen(fd, "wb") as kept:
            for start in range(0, stored, FETCH_BYTES):
                want = min(FETCH_BYTES, stored - start)
                data = object_range(self.display, placed.offset + start, want)
                if len(data) != want:
                    raise ArchiveCorrupt(f"{self.display}: member {name} is cut short",
                                         member=name)
                kept.write(data)
        with self._lock:
            return self._fetched.setdefault(name, path)

    def member_buffer(self, name: str) -> pa.Buffer:
        """In an Arrow-owned buffer (see ArchiveReader.member_buffer: Arrow's threads may free
        it during shutdown, which a Python-owned one does not survive)."""
        import pyarrow as pa

        data = self._bytes(name)
        buffer = pa.allocate_buffer(len(data))
        memoryview(buffer).cast("B")[:] = data  # type: ignore[arg-type]
        return buffer

    def member_stream(self, name: str) -> BinaryIO:
        """The member's bytes as a stream: of the fetched file itself (its bytes are the
        member's), so that a large storage pack is never held in memory."""
        return open(self._fetch(name), "rb")

    def open_member(self, name: str) -> pa.BufferReader:
        import pyarrow as pa

        return pa.BufferReader(self.member_buffer(name))

    def check_member(self, name: str, sha256: str) -> None:
        with self.member_stream(name) as stream:
            check_stream_sha256(stream, sha256, self.display, name, FETCH_BYTES)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def ranged_reader(url: str, sealed: Callable[[str], T | None] | None = None
                  ) -> RangedReader | T | None:
    """A ranged reader of the archive at ``url``, or None when it must be read whole (no
    offsets: formats 1-4, or storages dumped without theirs).
    A sealed archive is opened by ``sealed`` (the caller's, with its keys:
    :func:`dbcrate.crypto.ranged.sealed_ranged_reader`), or read whole without one."""
    manifest = object_manifest(url)
    if manifest is None:
        return None if sealed is None else sealed(url)
    if not has_offsets(manifest):
        return None
    return RangedReader(url, manifest, object_size(url))


def has_offsets(manifest: Manifest) -> bool:
    """Every member of ``manifest`` can be fetched by its offset (format 5; the storages'
    members too)."""
    chunks = [c for t in manifest.tables for c in t.chunks]
    return (manifest.format_version >= OFFSETS_FORMAT_VERSION
            and (manifest.storage is None or manifest.storage.placed())
            and all(c.offset is not None for c in chunks))
