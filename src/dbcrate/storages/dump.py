"""Dumping storages: walk directories of files and stream them into packs and the index.

Memory is bounded whatever the number and size of the files: the walk is a generator
(one directory listing at a time), files are read in blocks, packs are spooled to private temp
files of at most :data:`PACK_BYTES` (a bigger file gets a pack of its own) and the index is
streamed into a temp file. Only regular files and directories are stored: symbolic links are
not followed and, like sockets, FIFOs and devices, are skipped with a warning, so a dump never
reads outside the storage directory it was given.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import zstandard

from dbcrate.errors import OutputError, SourceValueError, UsageError
from dbcrate.options import DumpOptions
from dbcrate.storages.index import (
    INDEX_MEMBER,
    IndexWriter,
    PackInfo,
    StorageEntry,
    StorageManifest,
    StorageRoot,
    check_relative_path,
    check_roots,
    pack_member,
)

#: a pack is closed once it holds this many bytes (a bigger file gets a pack of its own)
PACK_BYTES = 64 * 1024 * 1024
#: files up to this size are compressed in one piece and stored as is when that does not help
SMALL_FILE = 1024 * 1024
BLOCK = 1024 * 1024
#: errors of writing the temp spools, not of reading a storage file
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
#: a progress event every this many files
PROGRESS_EVERY = 1000


class MemberSink(Protocol):
    """Where members go: the tar writer, or a writer of another member-based kind."""

    def add_file(self, name: str, source: IO[bytes], size: int) -> str:
        """Append a member of ``size`` bytes from ``source``; returns its SHA-256 (hex)."""
        ...


@dataclass(frozen=True)
class StorageSpec:
    """A storage directory to dump, and the name (a relative path) it has in the archive."""

    path: Path
    name: str


def storage_patterns(options: DumpOptions) -> list[str]:
    """The exclude patterns a dump applies to its storages: ``options.storage_exclude``, or
    none at all when ``options.ignore_storage_exclude`` (every file is collected, and the
    manifest records no pattern)."""
    return [] if options.ignore_storage_exclude else list(options.storage_exclude)


def resolve_storages(paths: list[str], basepath: str | None) -> list[StorageSpec]:
    """Name each storage by its path relative to ``basepath`` (default: the current directory;
    a storage outside the current directory is then named by its last component).

    A relative storage path (and a relative ``basepath``) is resolved against the current
    working directory, also when ``basepath`` is given: the base path only names storages.

    :raises UsageError: a storage that is not a directory, lies outside an explicit base path,
        or has the same name as, or lies inside, another.
    """
    base = Path(basepath or ".").resolve()
    specs = []
    for given in paths:
        # a relative storage path means what it means to the shell that typed it: relative to
        # the current directory, never to the base path (which only names the storage)
        path = Path(given).resolve()
        if not path.is_dir():
            raise UsageError(f"the storage {given} is not a directory",
                             hint="give directories of files, e.g. --storage media/")
        try:
            name = path.relative_to(base).as_posix()
        except ValueError:
            if basepath is not None:
                raise UsageError(
                    f"the storage {given} lies outside the base path {basepath}",
                    hint="choose a --storages-basepath that contains every storage",
                ) from None
            name = path.name
        if name in ("", "."):
            raise UsageError(f"the storage {given} is the base path itself",
                             hint="give a directory inside the base path, or a different base")
        try:
            check_relative_path(name, f"storage {given}")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        specs.append(StorageSpec(path, name))
    try:
        check_roots([s.name for s in specs])
    except ValueError as exc:
        raise UsageError(str(exc), hint="each storage needs its own name in the archive") from None
    return sorted(specs, key=lambda s: tuple(s.name.split("/")))


def is_excluded(relative: str, is_dir: bool, patterns: list[str]) -> bool:
    """Whether a path (relative to its storage root) matches an exclusion pattern.

    A pattern without ``/`` matches the last component at any depth (``*.tmp``); one with
    ``/`` matches the whole relative path, ``*`` crossing directories (``cache/**``). A
    directory matched by ``dir/**`` or ``dir/`` is pruned whole.
    """
    name = relative.rsplit("/", 1)[-1]
    for pattern in patterns:
        core = pattern.rstrip("/")
        if "/" not in core:
            if fnmatch.fnmatchcase(name, core) and (is_dir or not pattern.endswith("/")):
                return True
        elif fnmatch.fnmatchcase(relative, core) or (
            is_dir and fnmatch.fnmatchcase(relative + "/", pattern)
        ):
            return True
    return False


@dataclass(frozen=True)
class WalkEntry:
    relative: str  # path inside the root ("" for the root itself)
    absolute: str
    is_dir: bool


def walk(spec: StorageSpec, exclude: list[str], warnings: list[str]) -> Iterator[WalkEntry]:
    """Directories and regular files under ``spec.path``, depth first with names sorted: the
    index's path order. Links and special files are skipped with a warning. Holds one
    directory listing per level of depth."""
    root = WalkEntry("", str(spec.path), True)
    yield root
    stack = [iter(_children(spec, root, exclude, warnings))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        yield item
        if item.is_dir:
            stack.append(iter(_children(spec, item, exclude, warnings)))


def _children(spec: StorageSpec, parent: WalkEntry, exclude: list[str],
              warnings: list[str]) -> list[WalkEntry]:
    try:
        with os.scandir(parent.absolute) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise UsageError(f"cannot read the storage directory {parent.absolute}: "
                         f"{exc.strerror}") from None
    out = []
    for entry in entries:
        rel = f"{parent.relative}/{entry.name}" if parent.relative else entry.name
        shown = f"{spec.name}/{rel}"
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            warnings.append(f"skipped {entry.path!r}: its name is not valid UTF-8")
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            warnings.append(f"skipped {shown}: it vanished while the storage was read")
            continue
        if stat.S_ISLNK(mode):
            warnings.append(f"skipped {shown}: a symbolic link (links are not followed)")
        elif stat.S_ISDIR(mode):
            if not is_excluded(rel, True, exclude):
                out.append(WalkEntry(rel, entry.path, True))
        elif not stat.S_ISREG(mode):
            warnings.append(f"skipped {shown}: not a regular file")
        elif not is_excluded(rel, False, exclude):
            out.append(WalkEntry(rel, entry.path, False))
    return out


@dataclass
class StorageStats:
    files: int = 0
    bytes: int = 0
    directories: int = 0


@dataclass
class StorageWriter:
    """Appends storages to an archive being written: packs as they fill, the index last.

    :param writer: the archive being written (its data members are already in).
    :param level: the zstd level of compressible files.
    """

    writer: MemberSink
    level: int = 3
    pack_bytes: int = PACK_BYTES
    warnings: list[str] = field(default_factory=list)
    packs: list[PackInfo] = field(default_factory=list)
    roots: list[StorageRoot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pack: IO[bytes] | None = None
        self._compressor = zstandard.ZstdCompressor(level=self.level)
        self._index_spool: IO[bytes] = tempfile.TemporaryFile(prefix="dbcrate-index-")
        self._index = IndexWriter(self._index_spool)

    def add_storages(
        self, specs: list[StorageSpec], exclude: list[str],
        on_file: Callable[[str, str], None] | None = None,
    ) -> Iterator[tuple[str, int, int]]:
        """Walk and store every storage; yields (storage name, files so far, bytes so far).
        ``on_file(storage name, path inside it)`` is called for every stored file."""
        for spec in specs:
            stats = StorageStats()
            for item in walk(spec, exclude, self.warnings):
                path = f"{spec.name}/{item.relative}" if item.relative else spec.name
                if item.is_dir:
                    self._add_dir(path, item.absolute)
                    if item.relative:
                        stats.directories += 1
                    continue
                size = self._add_file(path, item.absolute)
                if size is None:
                    continue
                if on_file is not None:
                    on_file(spec.name, item.relative)
                stats.files += 1
                stats.bytes += size
                if stats.files % PROGRESS_EVERY == 0:
                    yield spec.name, stats.files, stats.bytes
            self.roots.append(StorageRoot(spec.name, stats.files, stats.bytes, stats.directories))
            yield spec.name, stats.files, stats.bytes

    def _add_dir(self, path: str, absolute: str) -> None:
        try:
            st = os.stat(absolute, follow_symlinks=False)
        except OSError:
            st = None
        mode = stat.S_IMODE(st.st_mode) if st else 0o755
        self._index.add(StorageEntry(path, "dir", mode, st.st_mtime if st else 0.0))

    def _add_file(self, path: str, absolute: str) -> int | None:
        """Store one file; ``None`` when it vanished or is no longer a regular file."""
        try:
            fd = os.open(absolute, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0))
        except OSError as exc:
            self.warnings.append(f"skipped {path}: {exc.strerror}")
            return None
        try:
            return self._read_file(path, fd)
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS:  # the spools: reported by the caller as output
                raise
            # a read error inside the file (EIO, a file system gone away)
            raise SourceValueError(f"cannot read the storage file {path}: {exc.strerror or exc}",
                                   hint="fix or exclude it (--storage-exclude)") from None

    def _read_file(self, path: str, fd: int) -> int | None:
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                self.warnings.append(f"skipped {path}: not a regular file")
                return None
            pack = self._current_pack()
            offset = pack.tell()
            sha = hashlib.sha256()
            size = 0
            if st.st_size <= SMALL_FILE:
                # ask for what fstat says plus one byte (to see growth): read(n) allocates n
                data = handle.read(st.st_size + 1)
                if len(data) <= st.st_size:
                    sha.update(data)
                    size = len(data)
                    packed = self._compressor.compress(data)
                    compressed = len(packed) < len(data)
                    pack.write(packed if compressed else data)
                else:  # it grew while we looked: stream it
                    size, compressed = self._stream(handle, data, pack, sha)
            else:
                size, compressed = self._stream(handle, b"", pack, sha)
        length = pack.tell() - offset
        self._index.add(StorageEntry(
            path, "file", stat.S_IMODE(st.st_mode), st.st_mtime, size, sha.hexdigest(),
            len(self.packs), offset, length, compressed))
        if pack.tell() >= self.pack_bytes:
            self._flush_pack()
        return size

    def _stream(self, handle: IO[bytes], first: bytes, pack: IO[bytes],
                sha: hashlib._Hash) -> tuple[int, bool]:
        size = 0
        with self._compressor.stream_writer(pack, closefd=False) as out:
            block = first or handle.read(BLOCK)
            while block:
                sha.update(block)
                size += len(block)
                out.write(block)
                block = handle.read(BLOCK)
        return size, True

    def _current_pack(self) -> IO[bytes]:
        if self._pack is None:
            self._pack = tempfile.TemporaryFile(prefix="dbcrate-pack-")
        return self._pack

    def _flush_pack(self) -> None:
        if self._pack is None:
            return
        pack, self._pack = self._pack, None
        with pack:
            size = pack.tell()
            pack.seek(0)
            member = pack_member(len(self.packs))
            sha = self.writer.add_file(member, pack, size)
        self.packs.append(PackInfo(member, size, sha))

    def finish(self, exclude: list[str]) -> StorageManifest:
        """Append the last pack and the index; the manifest section describing them."""
        self._flush_pack()
        self._index.close()
        size = self._index_spool.tell()
        self._index_spool.seek(0)
        with self._index_spool:
            sha = self.writer.add_file(INDEX_MEMBER, self._index_spool, size)
        return StorageManifest(self.roots, list(exclude), self.packs, size, sha)

    def close(self) -> None:
        """Drop the spools (after an error)."""
        for spool in (self._pack, self._index_spool):
            if spool is not None:
                with contextlib.suppress(OSError):
                    spool.close()


def survey(specs: list[StorageSpec], exclude: list[str]) -> list[dict[str, object]]:
    """What a dump would store: per storage, files, bytes and directories (for ``--check``);
    skipped links and special files are listed as warnings."""
    out: list[dict[str, object]] = []
    for spec in specs:
        warnings: list[str] = []
        stats = StorageStats()
        for item in walk(spec, exclude, warnings):
            if item.is_dir:
                stats.directories += bool(item.relative)
                continue
            try:
                stats.bytes += os.stat(item.absolute, follow_symlinks=False).st_size
            except OSError:
                continue
            stats.files += 1
        out.append({"name": spec.name, "path": str(spec.path), "files": stats.files,
                    "bytes": stats.bytes, "directories": stats.directories,
                    "warnings": warnings})
    return out


def check_output_outside(output: str, specs: list[StorageSpec]) -> None:
    """Refuse to write the archive inside a storage it is reading (it would read itself)."""
    if output == "-":
        return
    target = Path(output).resolve().parent
    for spec in specs:
        if target == spec.path or spec.path in target.parents:
            raise OutputError(f"the archive {output} would be written inside the storage "
                              f"{spec.path}", hint="write the archive somewhere else")
