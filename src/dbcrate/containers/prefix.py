"""The ``directory`` kind on a bucket prefix: ``dump --as directory s3://bucket/prefix/``
(or ``az://container/prefix/``) writes one object per member under the prefix, named as the
files of a dump directory are (docs/CONTAINERS.md), and the manifest last.

A store has no rename, so a prefix cannot appear whole the way a local directory does:
instead the marker, the manifest and its digest are the last objects written, and a reader
refuses a prefix without them as incomplete (as a tar cut short). A dump onto a prefix that
holds any object is refused (its objects would be replaced one by one); a dump that fails
deletes the objects it wrote. Reading lists the prefix once and checks it as a local dump
directory is checked: the marker, the manifest against its digest, every listed member with
its size and nothing else; each member is fetched when it is read, and checked against its
SHA-256 like every member.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, BinaryIO

from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    MAX_MARKER_BYTES,
    ArchiveTarget,
    ContainerWriter,
    HashingSink,
    check_marker,
    checked_manifest,
    manifest_members,
    spooled_chunk,
    write_documents,
)
from dbcrate.containers.directory import MEMBER_PATH, check_listing
from dbcrate.containers.members import MemberArchive, MemberReader
from dbcrate.containers.streams import check_stream_sha256
from dbcrate.containers.tar import COPY_BUFFER
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, OutputError, UsageError
from dbcrate.formats.registry import DEFAULT_COMPRESSION_LEVEL, get_format
from dbcrate.model.chunks import member_name
from dbcrate.model.manifest import MAX_MANIFEST_BYTES, Chunk, Manifest, TableEntry
from dbcrate.stores.objects import (
    delete_object,
    is_object_url,
    list_tree,
    object_range,
    object_writer,
)

if TYPE_CHECKING:
    import pyarrow as pa


def is_object_prefix(target: object) -> bool:
    """``target`` is an object URL that names a prefix (``s3://bucket/dump/``)."""
    return is_object_url(target) and str(target).endswith("/")


class PrefixWriter(ContainerWriter):
    """The ``directory`` kind written onto a bucket prefix (see the module docstring).

    :raises UsageError: ``overwrite`` (objects cannot be replaced all at once), a URL that
        names no prefix.
    :raises OutputError: the prefix holds objects, or the store refuses.
    """

    kind = "directory"
    member_based = True

    def __init__(self, url: str, *, data_format: str | None = None, mtime: float | None = None,
                 overwrite: bool = False, format_version: int = 1,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL) -> None:
        if not is_object_prefix(url):
            raise UsageError(f"{url}: a dump directory in a bucket is a prefix ending with /",
                             hint="e.g. s3://bucket/backups/shop-2026-12-06/")
        if overwrite:
            raise UsageError("--overwrite is not taken for a bucket prefix: its objects would "
                             "be replaced one by one, and a failed dump would leave a mix",
                             hint="dump into a new prefix, then remove the old one")
        self.url = url
        self.format = get_format(data_format or "parquet")
        self.data_format = self.format.name
        self.level = compression_level
        held = list_tree(url)
        if held:
            raise OutputError(f"{url} already holds {len(held)} objects (e.g. "
                              f"{sorted(held)[0]})", hint="dump into an empty prefix")
        self._written: list[str] = []

    def add_file(self, name: str, source: IO[bytes], size: int) -> str:
        if not MEMBER_PATH.match(name) or name in self._written:
            raise ValueError(f"bad or repeated member name {name!r}")
        self._written.append(name)
        with object_writer(self.url + name) as upload:
            sink = HashingSink(upload)
            left = size
            while left > 0 and (block := source.read(min(COPY_BUFFER, left))):
                sink.write(block)
                left -= len(block)
        if sink.count != size:
            raise OutputError(f"member {name}: wrote {sink.count} bytes instead of {size}")
        return sink.sha.hexdigest()

    def add_bytes(self, name: str, data: bytes) -> str:
        return self.add_file(name, io.BytesIO(data), len(data))

    def write_chunk(self, number: int, index: int, entry: TableEntry,
                    batches: Iterable[pa.RecordBatch]) -> Chunk:
        """Encode into a private temp file first (an upload is sequential), then upload."""
        return spooled_chunk(self.add_file, member_name(number, index, self.format.extension),
                             self.format, entry, batches, self.level)

    def commit(self, manifest: Manifest) -> None:
        """The marker, the manifest and its digest, last: the prefix is a dump from now on."""
        self.check_manifest(manifest)
        write_documents(self.add_bytes, manifest)
        self._written = []

    def abort(self) -> None:
        """Delete the objects written so far (best effort: a store that fails now leaves them,
        and without a manifest no reader takes them for a dump)."""
        for name in reversed(self._written):
            with contextlib.suppress(OutputError, NotAnArchive, OSError):
                delete_object(self.url + name)
        self._written = []

    def __enter__(self) -> PrefixWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


@dataclass(frozen=True)
class _Sized:
    size: int


class PrefixReader:
    """The container reader (``MemberReader``) of a dump directory on a bucket prefix."""

    def __init__(self, url: str) -> None:
        self.url = self.display = url
        files = list_tree(url)
        if MARKER not in files:
            raise NotAnArchive(f"{url} holds no dbcrate dump (no {MARKER})",
                               hint="give the prefix a dump --as directory wrote")
        if files[MARKER] > MAX_MARKER_BYTES:
            raise NotAnArchive(f"{url}: {MARKER} is larger than {MAX_MARKER_BYTES} bytes")
        version = check_marker(object_range(url + MARKER, 0, files[MARKER]), url)
        if MANIFEST not in files or files.get(MANIFEST_DIGEST, 201) > 200:
            raise ArchiveCorrupt(f"{url} has no manifest: the dump is incomplete (interrupted "
                                 "while it was written)", member=MANIFEST)
        if files[MANIFEST] > MAX_MANIFEST_BYTES:
            raise NotAnArchive(f"{url}: manifest.json is larger than the limit")
        self.manifest = checked_manifest(object_range(url + MANIFEST, 0, files[MANIFEST]),
                                         object_range(url + MANIFEST_DIGEST, 0,
                                                      files[MANIFEST_DIGEST]), url, version)
        expected = {MARKER: files[MARKER], **manifest_members(self.manifest),
                    MANIFEST: files[MANIFEST], MANIFEST_DIGEST: files[MANIFEST_DIGEST]}
        check_listing(url, files, set(), expected)
        self._members = {name: _Sized(size) for name, size in expected.items()}
        # members fetched so far, in a private temp directory (a restore checks a member,
        # then loads it: one request); a file is registered only once written
        self._dir = tempfile.mkdtemp(prefix="dbcrate-members-")
        self._fetched: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def members(self) -> Mapping[str, _Sized]:
        return self._members

    def _path(self, name: str) -> str:
        with self._lock:
            kept = self._fetched.get(name)
        if kept is not None:
            return kept
        size = self._members[name].size
        data = object_range(self.url + name, 0, size)
        if len(data) != size:
            raise ArchiveCorrupt(f"{self.url}: {name} has changed size", member=name)
        fd, path = tempfile.mkstemp(prefix="m", dir=self._dir)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        with self._lock:
            return self._fetched.setdefault(name, path)

    def member_stream(self, name: str) -> BinaryIO:
        return open(self._path(name), "rb")

    def member_buffer(self, name: str) -> pa.Buffer:
        import pyarrow as pa

        with pa.OSFile(self._path(name), "r") as handle:  # Arrow-owned (see ArchiveReader)
            return handle.read_buffer()

    def open_member(self, name: str) -> pa.BufferReader:
        import pyarrow as pa

        return pa.BufferReader(self.member_buffer(name))

    def check_member(self, name: str, sha256: str) -> None:
        with self.member_stream(name) as stream:
            check_stream_sha256(stream, sha256, self.url, name, COPY_BUFFER)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class PrefixArchive(MemberArchive):
    """The ``directory`` kind read from a bucket prefix."""

    kind = "directory"

    def _open(self, path: ArchiveTarget, accept_edits: bool) -> MemberReader:
        return PrefixReader(str(path))
