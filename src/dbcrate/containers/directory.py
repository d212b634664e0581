"""The ``directory`` kind: the tar archive's members unpacked into a directory, one file each.

The directory holds exactly the members a tar archive of the same dump holds, under the same
names: ``dbcrate-archive.json``, ``data/tTTTT/cCCCCCC.EXT``, storage members (``storage/...``),
``manifest.json`` and ``manifest.sha256``. Reading is as defensive as the tar reader: the
marker is checked first, then the manifest against its digest; every file must be listed by the
manifest with its size, and nothing else may exist (no other file, no empty directory); no
symbolic link is followed, nothing but regular files and directories is accepted, and every
file is opened relative to the directory, component by component with ``O_NOFOLLOW``, so that
no name can lead outside it. Contents are checked against their SHA-256 like tar members.

:class:`ConfinedDirectory` is that reading discipline on its own; the ``python`` kind uses it
too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import pyarrow as pa

from dbcrate.atomic import AtomicDirectory, create_private_file, write_failed
from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    MAX_EDITED_BYTES,
    MAX_MARKER_BYTES,
    ArchiveTarget,
    ContainerWriter,
    HashingSink,
    arrow_schema,
    check_marker,
    checked_manifest,
    encode_batches,
    is_file_object,
    manifest_members,
    write_documents,
)
from dbcrate.containers.chunkfile import PENDING_DIR, ChunkFile
from dbcrate.containers.members import MemberArchive, MemberReader
from dbcrate.containers.streams import RangeStream
from dbcrate.containers.tar import COPY_BUFFER, MAX_MEMBERS
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, OutputError, UsageError
from dbcrate.formats.registry import DEFAULT_COMPRESSION_LEVEL, get_format
from dbcrate.model.chunks import member_name
from dbcrate.model.manifest import MAX_MANIFEST_BYTES, Chunk, Manifest, TableEntry

#: a member name a directory may hold: relative, '/'-separated, no empty, hidden or '..'
#: component (every name of docs/FORMAT.md and of the storage members matches)
MEMBER_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,254}){0,7}$")
#: directories deeper than this are refused while listing (members are at most 8 deep)
MAX_DEPTH = 8


@dataclass(frozen=True)
class MemberInfo:
    """A member of a directory archive: its name and its size in bytes."""

    name: str
    size: int


class ConfinedDirectory:
    """Regular files inside one directory, read without following links or leaving it.

    The directory itself is opened once (its path may be a link: the user named it); every
    file below it is reached from that descriptor, one component at a time, with
    ``O_NOFOLLOW``, so a link anywhere inside is refused, not followed, and a file swapped for a
    link after listing cannot redirect a read.

    :param display: how messages name the directory.
    """

    def __init__(self, path: str | os.PathLike[str], display: str) -> None:
        self.display = display
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise NotAnArchive(f"cannot open the directory {display}: {exc.strerror}") from None

    def list_files(self) -> tuple[dict[str, int], set[str]]:
        """Every regular file (relative name -> size) and every directory below the root.

        :raises NotAnArchive: a link, a device, a FIFO or a socket, a too deep tree, or more
            than ``MAX_MEMBERS`` files.
        """
        files: dict[str, int] = {}
        dirs: set[str] = set()
        self._walk(self._fd, "", 0, files, dirs)
        return files, dirs

    def _walk(self, fd: int, prefix: str, depth: int, files: dict[str, int],
              dirs: set[str]) -> None:
        if depth > MAX_DEPTH:
            raise NotAnArchive(f"{self.display}: directories nested deeper than {MAX_DEPTH}")
        with os.scandir(fd) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        for entry in listed:
            name = prefix + entry.name
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                dirs.add(name)
                child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                dir_fd=fd)
                try:
                    self._walk(child, name + "/", depth + 1, files, dirs)
                finally:
                    os.close(child)
            elif stat.S_ISREG(info.st_mode):
                files[name] = info.st_size
                if len(files) > MAX_MEMBERS:
                    raise NotAnArchive(f"{self.display}: more than {MAX_MEMBERS} files")
            else:
                what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                raise NotAnArchive(
                    f"{self.display}: {name!r} is {what}; dbcrate dump directories hold only "
                    "regular files and directories (links are never followed)")

    def open_file(self, name: str) -> int:
        """A read descriptor of the regular file ``name`` (checked against
        :data:`MEMBER_PATH`), reached without following any link.

        :raises ArchiveCorrupt: the name is unsafe, missing, a link or not a regular file.
        """
        if not MEMBER_PATH.match(name):
            raise ArchiveCorrupt(f"{self.display}: unsafe member name {name!r}", member=name)
        parts = name.split("/")
        fd = self._fd
        try:
            for part in parts[:-1]:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                if fd != self._fd:
                    os.close(fd)
                fd = nxt
            # O_NONBLOCK: opening a FIFO planted there must not hang (refused below)
            handle = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise ArchiveCorrupt(f"{self.display}: cannot open {name}: {exc.strerror}",
                                 member=name) from None
        finally:
            if fd != self._fd:
                os.close(fd)
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            os.close(handle)
            raise ArchiveCorrupt(f"{self.display}: {name} is not a regular file", member=name)
        os.set_blocking(handle, True)
        return handle

    def stream(self, name: str, size: int) -> BinaryIO:
        """A seekable stream of the file's first ``size`` bytes; the file must have exactly
        ``size`` bytes now. Close it after use."""
        fd = self.open_file(name)
        actual = os.fstat(fd).st_size
        if actual != size:
            os.close(fd)
            raise ArchiveCorrupt(
                f"{self.display}: {name} has {actual} bytes, the manifest says {size}", member=name)
        return cast(BinaryIO, RangeStream(fd, 0, size))

    def read_buffer(self, name: str, size: int) -> pa.Buffer:
        """The file's ``size`` bytes in an Arrow-owned buffer (see
        :meth:`dbcrate.containers.tar.ArchiveReader.member_buffer` for why Arrow-owned)."""
        buffer = pa.allocate_buffer(size)
        view = memoryview(buffer)
        fd = self.open_file(name)
        try:
            if os.fstat(fd).st_size != size:
                raise ArchiveCorrupt(f"{self.display}: {name} does not have the size the "
                                     "manifest gives", member=name)
            got = 0
            while got < size:
                count = os.preadv(fd, [view[got:]], got)
                if not count:
                    raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
                got += count
        finally:
            os.close(fd)
        return buffer

    def read_bytes(self, name: str, size: int) -> bytes:
        with self.stream(name, size) as stream:
            data = stream.read(size)
        if len(data) != size:
            raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
        return data

    def check_sha256(self, name: str, size: int, sha256: str) -> None:
        """Hash the file and compare with the manifest (:class:`ArchiveCorrupt` naming it)."""
        sha = hashlib.sha256()
        count = 0
        with self.stream(name, size) as stream:
            while block := stream.read(COPY_BUFFER):
                sha.update(block)
                count += len(block)
        if count != size:
            raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
        if sha.hexdigest() != sha256:
            raise ArchiveCorrupt(
                f"{self.display}: member {name} does not match its SHA-256 in the manifest",
                member=name,
            )

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def check_listing(display: str, files: dict[str, int], dirs: set[str],
                  expected: dict[str, int]) -> None:
    """Every expected file exists with its size; nothing else exists (files or directories
    that lead to no expected file).

    :raises ArchiveCorrupt: naming the first missing, resized or unlisted file.
    """
    for name, size in expected.items():
        if name not in files:
            raise ArchiveCorrupt(f"{display}: {name} is missing", member=name)
        if files[name] != size:
            raise ArchiveCorrupt(
                f"{display}: {name} has {files[name]} bytes, the manifest says {size}", member=name)
    extra = sorted(set(files) - set(expected))
    if extra:
        raise ArchiveCorrupt(
            f"{display}: files not listed in the manifest: {', '.join(extra[:5])}",
            member=extra[0],
            hint="a dump directory holds only what its manifest lists; remove the other files "
            "or restore from an untouched copy",
        )
    needed = {"/".join(name.split("/")[:i]) for name in expected
              for i in range(1, name.count("/") + 1)}
    stray = sorted(dirs - needed)
    if stray:
        raise ArchiveCorrupt(f"{display}: directories not part of the archive: "
                             f"{', '.join(stray[:5])}", member=stray[0])


def open_confined(path: str | os.PathLike[str], display: str,
                  read: Callable[[ConfinedDirectory], None]) -> ConfinedDirectory:
    """Open a dump directory and check it with ``read``; closed again if the check fails.

    :raises NotAnArchive: ``path`` is not a directory (or what ``read`` raises).
    """
    if not Path(path).is_dir():
        raise NotAnArchive(f"{display} is not a directory")
    directory = ConfinedDirectory(path, display)
    try:
        read(directory)
    except BaseException:
        directory.close()
        raise
    return directory


class DirectoryReader:
    """The directory kind's container reader (the interface of
    :class:`dbcrate.containers.tar.ArchiveReader`: ``manifest``, ``members``, ``member_buffer``,
    ``member_stream``, ``open_member``, ``check_member``).

    After construction the marker and the manifest are checked, and the directory holds
    exactly the listed members with their sizes (see the module docstring).
    """

    def __init__(self, path: str | os.PathLike[str], accept_edits: bool = False) -> None:
        self.path = str(path)
        self.display = self.path
        self._accept_edits = accept_edits
        self._dir = open_confined(path, self.display, self._open)

    def _open(self, directory: ConfinedDirectory) -> None:
        self._dir = directory
        files, dirs = self._dir.list_files()
        if MARKER not in files:
            raise NotAnArchive(f"{self.display} is not a dbcrate dump directory (no {MARKER})")
        if files[MARKER] > MAX_MARKER_BYTES:
            raise NotAnArchive(f"{self.display}: {MARKER} is larger than {MAX_MARKER_BYTES} "
                               "bytes; it is not a dbcrate marker")
        self.marker_version = check_marker(self._dir.read_bytes(MARKER, files[MARKER]),
                                           self.display)
        if MANIFEST not in files:
            raise ArchiveCorrupt(
                f"{self.display} has no manifest: the dump directory is incomplete",
                member=MANIFEST)
        if files.get(MANIFEST_DIGEST, 201) > 200:
            raise ArchiveCorrupt(f"{self.display}: manifest digest missing", member=MANIFEST_DIGEST)
        if files[MANIFEST] > MAX_MANIFEST_BYTES:
            raise NotAnArchive(f"{self.display}: manifest.json is larger than the limit")
        self.manifest = checked_manifest(
            self._dir.read_bytes(MANIFEST, files[MANIFEST]),
            self._dir.read_bytes(MANIFEST_DIGEST, files[MANIFEST_DIGEST]),
            self.display, self.marker_version)
        listed = manifest_members(self.manifest)
        if self._accept_edits:  # a data member may have been edited: its size is what it is
            for chunk in (c for t in self.manifest.tables for c in t.chunks):
                listed[chunk.member] = edited_size(self.display, chunk, files)
        expected = {MARKER: files[MARKER], **listed, MANIFEST: files[MANIFEST],
                    MANIFEST_DIGEST: files[MANIFEST_DIGEST]}
        check_listing(self.display, files, dirs, expected)
        self.members: dict[str, MemberInfo] = {n: MemberInfo(n, s) for n, s in expected.items()}

    def member_buffer(self, name: str) -> pa.Buffer:
        return self._dir.read_buffer(name, self.members[name].size)

    def member_stream(self, name: str) -> BinaryIO:
        return self._dir.stream(name, self.members[name].size)

    def open_member(self, name: str) -> pa.BufferReader:
        """A seekable, read-only view of a member's bytes (not checked; see check_member)."""
        return pa.BufferReader(self.member_buffer(name))

    def check_member(self, name: str, sha256: str) -> None:
        self._dir.check_sha256(name, self.members[name].size, sha256)

    def close(self) -> None:
        self._dir.close()


def edited_size(display: str, chunk: Chunk, files: dict[str, int]) -> int:
    """The size of the data member of ``chunk`` as it is now (its manifest size when missing:
    the listing check then says so), for ``accept_edits``.

    :raises ArchiveCorrupt: larger than :data:`~dbcrate.containers.base.MAX_EDITED_BYTES`.
    """
    size = files.get(chunk.member, chunk.size)
    if size != chunk.size and size > MAX_EDITED_BYTES:
        raise ArchiveCorrupt(f"{display}: the edited member {chunk.member} has {size:,} bytes, "
                             f"more than an edited member may have ({MAX_EDITED_BYTES:,})",
                             member=chunk.member)
    return size


class DirectoryArchive(MemberArchive):
    """The ``directory`` kind, read (see the module docstring); with ``accept_edits`` a data
    member edited after the dump is accepted (:class:`MemberArchive`)."""

    kind = "directory"
    edits_allowed = True

    def _open(self, path: ArchiveTarget, accept_edits: bool) -> MemberReader:
        if is_file_object(path):
            raise UsageError("a dump directory is read from its path, not from a file object",
                             hint="give the directory's path")
        return DirectoryReader(cast("str | os.PathLike[str]", path), accept_edits)


class DirectoryWriter(ContainerWriter):
    """The ``directory`` kind, written into a private temp directory beside the final name
    (0700 directories, 0600 files, each fsynced) that is renamed into place by ``commit``.

    An existing non-empty directory is refused unless ``overwrite`` and it is a dump directory
    (see :func:`dbcrate.atomic.check_directory_target`). An ``OSError`` while writing (a full
    disk, a quota) is the :class:`OutputError` the tar kind gives (exit 12, ``cannot write
    PATH: ...``); the caller's abort then removes the temp directory, so nothing is left under
    the final name.
    """

    kind = "directory"
    member_based = True
    tables_in_any_order = True

    def __init__(self, path: str | os.PathLike[str], *, data_format: str | None = None,
                 mtime: float | None = None, overwrite: bool = False, format_version: int = 1,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL) -> None:
        if str(path) == "-":
            raise UsageError("a dump directory cannot be written to standard output",
                             hint="give a directory path, or use the tar kind")
        self.format = get_format(data_format or "parquet")
        self.data_format = self.format.name
        self.level = compression_level
        self._out = AtomicDirectory(path, overwrite)
        self._names: set[str] = set()
        #: fsync each file (False: scratch output that need not survive a crash; set by
        #: :func:`~dbcrate.containers.writers.open_dump_writer`)
        self.durable = True

    @property
    def staging(self) -> Path:
        """The private temp directory being written (renamed to the final name by ``commit``)."""
        return self._out.tmp

    def _member_path(self, name: str) -> Path:
        """Where the new member ``name`` goes in the temp directory (its folders made)."""
        if not MEMBER_PATH.match(name) or name in self._names:
            raise ValueError(f"bad or repeated member name {name!r}")
        self._names.add(name)
        folder, _, base = name.rpartition("/")
        return (self._out.make_dirs(folder) if folder else self._out.tmp) / base

    def _create(self, name: str) -> IO[bytes]:
        return os.fdopen(create_private_file(self._member_path(name)), "wb",
                         buffering=COPY_BUFFER)

    def _finish(self, handle: IO[bytes]) -> None:
        handle.flush()
        if self.durable:
            os.fsync(handle.fileno())
        handle.close()

    def chunk_file(self) -> ChunkFile:
        """A new file in the temp directory for a data member to be encoded into, by any
        thread; :meth:`adopt_chunk` gives it its member name."""
        folder = self._out.tmp / PENDING_DIR
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            return ChunkFile(folder, durable=self.durable, output=self._out.final)
        except OSError as exc:
            raise write_failed(self._out.final, exc) from None

    def adopt_chunk(self, name: str, chunk: ChunkFile) -> str:
        """Make the finished ``chunk`` the member ``name``; returns its SHA-256."""
        try:
            return chunk.adopt(self._member_path(name))
        except OSError as exc:
            raise write_failed(self._out.final, exc) from None

    def add_file(self, name: str, source: IO[bytes], size: int) -> str:
        try:
            return self._add_file(name, source, size)
        except OSError as exc:
            raise write_failed(self._out.final, exc) from None

    def _add_file(self, name: str, source: IO[bytes], size: int) -> str:
        with self._create(name) as handle:
            sink = HashingSink(handle)
            left = size
            while left > 0:
                block = source.read(min(COPY_BUFFER, left))
                if not block:
                    break
                sink.write(block)
                left -= len(block)
            if sink.count != size:
                raise OutputError(f"member {name}: wrote {sink.count} bytes instead of {size}")
            self._finish(handle)
        return sink.sha.hexdigest()

    def add_bytes(self, name: str, data: bytes) -> str:
        return self.add_file(name, io.BytesIO(data), len(data))

    def write_chunk(self, number: int, index: int, entry: TableEntry,
                    batches: Iterable[pa.RecordBatch]) -> Chunk:
        member = member_name(number, index, self.format.extension)
        try:
            with self._create(member) as handle:
                sink = HashingSink(handle)
                rows = encode_batches(self.format, arrow_schema(entry), batches,
                                      cast(IO[bytes], sink), self.level)
                self._finish(handle)
        except OSError as exc:  # Arrow passes the sink's own OSError through
            raise write_failed(self._out.final, exc) from None
        return Chunk(member, rows, sink.count, sink.sha.hexdigest())

    def commit(self, manifest: Manifest) -> None:
        """Write the marker, the manifest and its digest, fsync, rename into place."""
        self.check_manifest(manifest)
        with contextlib.suppress(FileNotFoundError):  # (empty: every chunk was adopted)
            shutil.rmtree(self._out.tmp / PENDING_DIR)
        write_documents(self.add_bytes, manifest)
        self._out.commit()

    def abort(self) -> None:
        self._out.abort()
