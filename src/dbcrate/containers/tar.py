"""The tar container: writing an archive atomically, and reading one defensively.

Layout (docs/FORMAT.md): an uncompressed POSIX tar whose first member is ``dbcrate-archive.json``
(format name and version, so that the version is checked before anything else), then the data
members (each one compressed on its own by its data format), then ``manifest.json`` and last
``manifest.sha256``. The manifest is written last because it describes members that already
exist; a reader reads it first (for a file it seeks; for a pipe it spools to a private temp file).

Writing goes to a temp file beside the final name (created 0600 with O_EXCL), is fsynced, then
renamed over the final name and the directory is fsynced: a crash or an error never leaves a
half-written archive under the final name, and an older archive there survives until the new
one is complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from dbcrate.atomic import AutoName, publish_noreplace, write_failed
from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    MAX_MARKER_BYTES,
    ArchiveTarget,
    ContainerWriter,
    file_object_name,
    is_file_object,
    spooled_chunk,
)
from dbcrate.containers.streams import HashingReader, RangeStream
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, OutputError, UsageError
from dbcrate.formats.registry import DEFAULT_COMPRESSION_LEVEL, get_format
from dbcrate.model.chunks import member_name
from dbcrate.model.manifest import (
    BASE_FORMAT_VERSION,
    FORMAT_NAME,
    MAX_MANIFEST_BYTES,
    SEALED_FORMAT_VERSION,
    Chunk,
    Manifest,
    TableEntry,
    check_format_version,
)
from dbcrate.stores.objects import is_object_url, object_reader

if TYPE_CHECKING:  # pyarrow is imported where it is used: ls reads a manifest without it
    import pyarrow as pa

#: a tar with more members than this is refused while scanning (member floods)
MAX_MEMBERS = 2_000_000
COPY_BUFFER = 1024 * 1024


class MemberSealer(Protocol):
    """Seals every member as it is written (:class:`dbcrate.crypto.sealed.Sealer`): the
    writer hands it each member and the function that appends one to the tar."""

    marker: dict[str, Any]

    def begin(self, add: Any) -> None: ...

    def add(self, add: Any, name: str, source: IO[bytes], size: int) -> tuple[str, str]: ...

    def finish(self, add: Any) -> None: ...


class ArchiveWriter(ContainerWriter):
    """The ``tar`` kind's writer (the :class:`~dbcrate.containers.base.ContainerWriter` of
    docs/FORMAT.md's tar): members go into a tar archive; ``commit()`` makes it appear under its
    final name. Chunks come either as Arrow batches (:meth:`write_chunk`, encoded in
    ``data_format``) or as members already encoded (:meth:`add_file`: the dump, convert).

    :param path: the archive's final path, ``"-"`` for standard output, or a writable binary
        file object (written sequentially, so a pipe will do; never closed by dbcrate; after an
        error it holds a cut-short tar without a manifest, which no reader accepts).
    :param mtime: the modification time recorded on every member (the dump's start time;
        default now).
    :param format_version: the version written in the marker; the manifest must say the same.
    :param mode: the permissions the finished archive gets (0600 unless asked otherwise; the
        temp file is always 0600).
    :param data_format: the format :meth:`write_chunk` encodes in (default ``parquet``).
    :param overwrite: ignored (a file output is always replaced atomically).
    :param compression_level: zstd level of the chunks :meth:`write_chunk` encodes.
    :param sealer: encrypt every member (a sealed archive, format 6: docs/FORMAT.md); the
        marker then says version 6 and the manifest ``format_version``, its contents'.

    Use as a context manager: leaving the block with an exception removes the temp file.
    """

    kind = "tar"
    member_based = True

    def __init__(self, path: ArchiveTarget, mtime: float | None = None,
                 format_version: int = BASE_FORMAT_VERSION, mode: int = 0o600, *,
                 data_format: str | None = None, overwrite: bool = False,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL,
                 sealer: MemberSealer | None = None) -> None:
        self.sealer = sealer
        self.format = get_format(data_format or "parquet")
        self.data_format = self.format.name
        self.level = compression_level
        #: the manifest must name this format at commit: it was asked for, or a chunk was
        #: encoded in it (members added as they are carry the caller's format)
        self._check_format = data_format is not None
        if mtime is None:
            mtime = dt.datetime.now(dt.UTC).timestamp()
        self.mtime = int(mtime)
        self.format_version = format_version
        self.mode = mode
        self.final: Path | None = None
        #: a name dbcrate chose: published without replacing anything (dbcrate.atomic)
        self.auto = path if isinstance(path, AutoName) else None
        self._tmp: Path | None = None
        #: with ``record_offsets``, where each member's bytes start (format 5, object storage)
        self.record_offsets, self.offsets = False, dict[str, int]()
        self._raw: BinaryIO
        if is_file_object(path):
            assert not isinstance(path, str | os.PathLike)
            if not getattr(path, "writable", lambda: False)():
                raise UsageError(f"{file_object_name(path)} is not open for writing",
                                 hint="open the file in binary write mode ('wb')")
            self._raw = path  # type: ignore[assignment]
            tar_mode = "w|"
        elif str(path) == "-":
            if sys.stdout.isatty():
                raise UsageError(
                    "refusing to write a binary archive to a terminal",
                    hint="redirect standard output to a file or a pipe, or give a file name",
                )
            self._raw = sys.stdout.buffer
            tar_mode = "w|"
        else:
            self._raw = self._open_temp(path)  # type: ignore[arg-type]
            tar_mode = "w:"
        self._closed = False
        try:
            # members copied in 1 MiB reads, not tarfile's 16 KiB: each read and hash update
            # releases the GIL, and taking it back waits behind the encoding threads
            self._tar = tarfile.open(  # type: ignore[call-overload]
                fileobj=self._raw, mode=tar_mode, format=tarfile.PAX_FORMAT,
                copybufsize=COPY_BUFFER,
            )
            marker: dict[str, Any] = {"format": FORMAT_NAME, "format_version": format_version}
            if sealer is not None:
                marker.update(sealer.marker, format_version=SEALED_FORMAT_VERSION)
            raw = json.dumps(marker).encode()
            self._add_raw(MARKER, io.BytesIO(raw), len(raw))
            if sealer is not None:
                sealer.begin(self._add_raw)
        except BaseException:
            self.abort()  # the caller's with-block has not started: clean up here
            raise

    def _open_temp(self, path: str | os.PathLike[str]) -> BinaryIO:
        """Check the output path and create the private temp file beside it (sets ``final``
        and ``_tmp``)."""
        self.final = Path(path)
        if self.final.is_dir() and self.auto is None:
            raise OutputError(
                f"the output {self.final} is a directory",
                hint="give a file name for the archive, e.g. backup.crate",
            )
        if str(path).endswith(("/", os.sep)):  # Path() drops it: a directory was meant
            raise OutputError(
                f"the output {path} ends with / (a directory), but the archive is a file",
                hint="give a file name for the archive, e.g. backup.crate",
            )
        parent = self.final.parent
        if not parent.is_dir():
            raise OutputError(
                f"the output directory {parent} does not exist",
                hint="create it first or choose another path",
            )
        self._tmp = parent / f".{self.final.name}.dbcrate-tmp-{secrets.token_hex(6)}"
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise OutputError(
                f"cannot create {self._tmp}: {exc.strerror}",
                hint="check that the directory is writable",
            ) from None
        os.fchmod(fd, 0o600)  # whatever the umask
        return os.fdopen(fd, "wb", buffering=COPY_BUFFER)

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = self.mtime
        info.type = tarfile.REGTYPE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def add_file(self, name: str, source: IO[bytes], size: int) -> str:
        """Append a member of ``size`` bytes read from ``source``; returns its SHA-256 (hex)
        (sealed: of the plaintext, stored encrypted under a hidden name)."""
        if self.sealer is None:
            return self._add_raw(name, source, size)
        hidden, sha = self.sealer.add(self._add_raw, name, source, size)
        if self.record_offsets:  # where the sealed member starts
            self.offsets[name] = self.offsets.pop(hidden)
        return sha

    def _add_raw(self, name: str, source: IO[bytes], size: int) -> str:
        reader = HashingReader(source)
        try:
            self._tar.addfile(self._info(name, size), reader)  # type: ignore[arg-type]
        except OSError as exc:
            raise write_failed(self.final or "stdout", exc) from None
        if reader.count != size:
            raise OutputError(f"member {name}: wrote {reader.count} bytes instead of {size}")
        if self.record_offsets:  # the data ends at the tar's offset, padded to a block
            self.offsets[name] = self._tar.offset - -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        return reader.sha.hexdigest()

    def add_bytes(self, name: str, data: bytes) -> str:
        return self.add_file(name, io.BytesIO(data), len(data))

    def write_chunk(self, number: int, index: int, entry: TableEntry,
                    batches: Iterable[pa.RecordBatch]) -> Chunk:
        """Encode a chunk into a private temp file first (a tar header states the member's
        size), then append it."""
        self._check_format = True
        return spooled_chunk(self.add_file, member_name(number, index, self.format.extension),
                             self.format, entry, batches, self.level)

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest and its digest, close, fsync and rename into place."""
        if self._check_format:
            self.check_manifest(manifest)
        if manifest.format_version != self.format_version:
            raise ValueError(f"the manifest says format {manifest.format_version}, the marker "
                             f"{self.format_version}")
        raw = manifest.to_json()
        self.add_bytes(MANIFEST, raw)
        self.add_bytes(MANIFEST_DIGEST, (hashlib.sha256(raw).hexdigest() + "\n").encode())
        if self.sealer is not None:
            self.sealer.finish(self._add_raw)
        try:
            self._tar.close()
            self._raw.flush()
            if self.final is not None and self._tmp is not None:
                if self.mode != 0o600:
                    os.fchmod(self._raw.fileno(), self.mode)
                os.fsync(self._raw.fileno())
                self._raw.close()
                if self.auto is not None:
                    self.final = publish_noreplace(self._tmp, self.auto)
                    self._tmp = None
                else:
                    os.replace(self._tmp, self.final)
                    self._tmp = None
                    _fsync_dir(self.final.parent)
        except OSError as exc:
            raise write_failed(self.final or "stdout", exc, "finish") from None
        self._closed = True

    def abort(self) -> None:
        """Drop everything written so far (the final name is never touched)."""
        if self._closed:
            return
        self._closed = True
        if self.final is None:
            # a stream: nothing to remove; the reader sees no manifest. The tar stream must not
            # flush its buffer into the failed output when it is collected: that write fails
            # again and Python prints it as an ignored exception after the clean error
            stream = getattr(getattr(self, "_tar", None), "fileobj", None)
            if stream is not None and hasattr(stream, "closed"):
                stream.closed = True
            return
        with contextlib.suppress(OSError):
            self._raw.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArchiveReader:
    """Reads a dbcrate archive: checks the marker first, then the manifest and the member list.

    After construction, ``manifest`` is parsed and every data member it lists is known to exist
    exactly once with the recorded size; no unlisted or non-regular member exists. Contents are
    checked against their SHA-256 by :meth:`open_member` (``verify=True``) or :meth:`check_member`.

    :param path: an archive file, ``"-"`` to read standard input, or a readable binary file
        object (read from its position to its end, never closed). A stream is spooled to a
        private temp file first, because the manifest is at its end; every check is then the
        one a file gets.
    """

    def __init__(self, path: ArchiveTarget) -> None:
        self._spool: IO[bytes] | None = None
        stream: Any = (path if is_file_object(path)
                       else sys.stdin.buffer if str(path) == "-"
                       else object_reader(str(path)) if is_object_url(path)  # s3://...
                       else None)
        if stream is not None:
            self.path, self.display = (("-", "standard input") if stream is sys.stdin.buffer
                                       else (str(path),) * 2 if is_object_url(path)
                                       else (file_object_name(path),) * 2)
            # a named (0600) temp file, deleted on close: members are read from it by name
            self._spool = tempfile.NamedTemporaryFile(prefix="dbcrate-stdin-")
            try:
                shutil.copyfileobj(stream, self._spool, COPY_BUFFER)  # type: ignore[arg-type]
            except (OSError, ValueError) as exc:  # write-only, closed
                self._spool.close()
                raise NotAnArchive(f"cannot read {self.display}: {exc}") from None
            finally:
                if stream is not path and stream is not sys.stdin.buffer:
                    stream.close()  # an object store's stream: ours to close
            self._spool.flush()
            self._spool.seek(0)
            fileobj: IO[bytes] = self._spool
            self._map_path = self._spool.name
        else:
            self.path = str(path)
            p = Path(self.path)
            self.display = self.path
            if p.is_dir():
                raise NotAnArchive(
                    f"{p} is a directory, not a dbcrate archive",
                    hint="give the path of a .crate file",
                )
            self._map_path = str(p)
            try:
                fileobj = open(p, "rb")
            except FileNotFoundError:
                raise NotAnArchive(f"{p} does not exist") from None
            except OSError as exc:
                raise NotAnArchive(f"cannot open {p}: {exc.strerror}") from None
        self._file = fileobj

        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:")
        except (tarfile.TarError, EOFError, OSError):
            self.close()
            raise NotAnArchive(
                f"{self.display} is not a dbcrate archive (not a tar file)",
                hint="dbcrate archives are written by 'dbcrate dump'",
            ) from None
        try:
            self.members = self._scan()
            if self.sealed is None:  # (sealed: dbcrate.crypto.sealed reads it, with its key)
                self.manifest = self._read_manifest()
                self._check_members()
            self._check_length()
        except BaseException:
            self.close()
            raise

    def _scan(self) -> dict[str, tarfile.TarInfo]:
        members: dict[str, tarfile.TarInfo] = {}
        first = True
        while True:
            try:
                info = self._tar.next()
            except tarfile.TarError as exc:
                raise ArchiveCorrupt(
                    f"{self.display}: damaged tar structure ({exc})", member=None
                ) from None
            if info is None:
                break
            if first:
                first = False
                self._check_marker(info)
            if not info.isreg():
                raise NotAnArchive(
                    f"{self.display}: member {info.name!r} is not a regular file; "
                    "dbcrate archives hold only regular files"
                )
            if info.name in members:
                raise NotAnArchive(f"{self.display}: member {info.name!r} appears twice")
            members[info.name] = info
            if len(members) > MAX_MEMBERS:
                raise NotAnArchive(f"{self.display}: more than {MAX_MEMBERS} members")
        if first:
            raise NotAnArchive(f"{self.display} is an empty tar file, not a dbcrate archive")
        return members

    def _check_marker(self, info: tarfile.TarInfo) -> None:
        if info.name != MARKER or not info.isreg() or info.size > MAX_MARKER_BYTES:
            raise NotAnArchive(
                f"{self.display} is a tar file but not a dbcrate archive",
                hint="dbcrate archives are written by 'dbcrate dump'",
            )
        handle = self._tar.extractfile(info)
        assert handle is not None
        try:
            marker = json.loads(handle.read())
        except (ValueError, tarfile.TarError):
            raise NotAnArchive(f"{self.display}: unreadable archive marker") from None
        if not isinstance(marker, dict) or marker.get("format") != FORMAT_NAME:
            raise NotAnArchive(f"{self.display} is a tar file but not a dbcrate archive")
        check_format_version(marker.get("format_version"))
        self.marker_version = int(marker["format_version"])
        #: the marker's ``sealed`` object: the archive is encrypted (format 6)
        self.sealed: dict[str, Any] | None = marker.get("sealed")
        if (self.sealed is not None) != (self.marker_version == SEALED_FORMAT_VERSION) or (
                self.sealed is not None and not isinstance(self.sealed, dict)):
            raise NotAnArchive(f"{self.display}: the marker's format version and its 'sealed' "
                               "field disagree")

    def _read_manifest(self) -> Manifest:
        if MANIFEST not in self.members:
            raise ArchiveCorrupt(
                f"{self.display} has no manifest: the archive is incomplete "
                "(the dump was interrupted or the file was truncated)",
                member=MANIFEST,
            )
        if self.members[MANIFEST].size > MAX_MANIFEST_BYTES:
            raise NotAnArchive(f"{self.display}: manifest.json is larger than the limit")
        raw = self._read_all(MANIFEST)
        digest_info = self.members.get(MANIFEST_DIGEST)
        if digest_info is None or digest_info.size > 200:
            raise ArchiveCorrupt(f"{self.display}: manifest digest missing", member=MANIFEST_DIGEST)
        expected = self._read_all(MANIFEST_DIGEST).decode("ascii", "replace").strip()
        if hashlib.sha256(raw).hexdigest() != expected:
            raise ArchiveCorrupt(
                f"{self.display}: manifest.json does not match its SHA-256", member=MANIFEST
            )
        manifest = Manifest.from_json(raw, where=f"{self.display}: manifest.json")
        if manifest.format_version != self.marker_version:
            raise NotAnArchive(
                f"{self.display}: the marker says format {self.marker_version}, the manifest "
                f"says {manifest.format_version}"
            )
        return manifest

    def read_member(self, name: str) -> bytes:
        """A (small) member's bytes, all of them.

        :raises ArchiveCorrupt: it cannot be read whole.
        """
        return self._read_all(name)

    def _read_all(self, name: str) -> bytes:
        handle = self._tar.extractfile(self.members[name])
        assert handle is not None
        try:
            data = handle.read()
        except (tarfile.TarError, OSError) as exc:
            raise ArchiveCorrupt(f"{self.display}: cannot read {name}: {exc}", member=name) from None
        if len(data) != self.members[name].size:
            raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
        return data

    def _check_members(self) -> None:
        listed = {MARKER, MANIFEST, MANIFEST_DIGEST}
        for table in self.manifest.tables:
            for chunk in table.chunks:
                listed.add(chunk.member)
                info = self.members.get(chunk.member)
                if info is None:
                    raise ArchiveCorrupt(
                        f"{self.display}: member {chunk.member} (table {table.name}) is missing",
                        member=chunk.member,
                    )
                if info.size != chunk.size:
                    raise ArchiveCorrupt(
                        f"{self.display}: member {chunk.member} (table {table.name}) has "
                        f"{info.size} bytes, the manifest says {chunk.size}",
                        member=chunk.member,
                    )
        if self.manifest.storage is not None:
            for member, size, _sha in self.manifest.storage.members():
                listed.add(member)
                info = self.members.get(member)
                if info is None or info.size != size:
                    raise ArchiveCorrupt(
                        f"{self.display}: storage member {member} is "
                        + ("missing" if info is None else f"{info.size} bytes, the manifest "
                           f"says {size}"), member=member)
        extra = sorted(set(self.members) - listed)
        if extra:
            raise ArchiveCorrupt(
                f"{self.display}: members not listed in the manifest: {', '.join(extra[:5])}",
                member=extra[0],
            )

    def _check_length(self) -> None:
        end = max((i.offset_data + i.size for i in self.members.values()), default=0)
        self._file.seek(0, os.SEEK_END)
        if self._file.tell() < end:
            raise ArchiveCorrupt(f"{self.display} is truncated")

    def member_buffer(self, name: str) -> pa.Buffer:
        """A member's bytes in an Arrow-owned buffer (thread-safe: each call reads with its own
        file handle).

        Arrow-owned, not Python ``bytes``: Arrow's threads can free it without the interpreter
        (a Python-owned buffer released by an Arrow thread during shutdown aborts the process).
        Read per member rather than memory-mapped, so that the process only ever holds the
        members it is decoding.
        """
        import pyarrow as pa

        info = self.members[name]
        with pa.OSFile(self._map_path, "r") as handle:
            if info.offset_data + info.size > handle.size():
                raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
            handle.seek(info.offset_data)
            buffer = handle.read_buffer(info.size)
        if buffer.size != info.size:
            raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
        return buffer

    def member_stream(self, name: str) -> BinaryIO:
        """A seekable read-only stream over one member's bytes, on its own file handle (for
        members too big to hold in memory: storage packs). Close it after use."""
        info = self.members[name]
        fd = os.open(self._map_path, os.O_RDONLY)
        return RangeStream(fd, info.offset_data, info.size)  # type: ignore[return-value]

    def open_member(self, name: str) -> pa.BufferReader:
        """A seekable, read-only view of a member's bytes (not checked; see check_member)."""
        import pyarrow as pa

        return pa.BufferReader(self.member_buffer(name))

    def check_member(self, name: str, sha256: str) -> None:
        """Hash a member and compare with the manifest.

        :raises ArchiveCorrupt: naming the member, if the bytes differ or cannot be read.
        """
        sha = hashlib.sha256()
        count = 0
        try:
            with self.member_stream(name) as stream:
                while block := stream.read(COPY_BUFFER):
                    sha.update(block)
                    count += len(block)
        except OSError as exc:
            raise ArchiveCorrupt(f"{self.display}: cannot read {name}: {exc}", member=name) from None
        if count != self.members[name].size:
            raise ArchiveCorrupt(f"{self.display}: {name} is truncated", member=name)
        if sha.hexdigest() != sha256:
            raise ArchiveCorrupt(
                f"{self.display}: member {name} does not match its SHA-256 in the manifest",
                member=name,
            )

    def iter_members(self) -> Iterator[tarfile.TarInfo]:
        return iter(self.members.values())

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            if self._spool is not None:
                self._spool.close()
