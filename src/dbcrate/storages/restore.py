"""Reading storages back: verify them, check a destination, extract them confined to it.

Extraction is in two passes over the (streamed) index. The *preflight* reads every entry and
checks it (the index and packs against their SHA-256, every path safe and in order) and the
destination (no link, file or special file where a directory must go, no link or non-regular
file where a file goes, and, unless merging or replacing, no existing file that differs), plus
the free space. Any problem refuses the whole storage part before one byte is written. The
*extraction* then walks the destination with directory file descriptors opened with
``O_NOFOLLOW`` (so a link planted between the passes is not followed either), writes each file
to a temp name beside its final name, checks its size and SHA-256, and renames it into place.

Policies for files that already exist: ``refuse`` (default: identical files are left alone,
a differing one refuses the restore), ``merge`` (archive files overwrite differing ones, other
files stay), ``replace`` (each storage root is rebuilt beside the old one and swapped in, so the
root holds exactly the archive's files).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import unicodedata
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard

from dbcrate.containers.tar import ArchiveReader
from dbcrate.errors import ArchiveCorrupt, OutputError, StorageConflict, UsageError
from dbcrate.progress import Event
from dbcrate.storages.index import INDEX_MEMBER, StorageEntry, StorageManifest, read_index

POLICIES = ("refuse", "merge", "replace")
BLOCK = 1024 * 1024
#: differing files named in a refusal
SHOWN = 10


@dataclass
class StorageReport:
    """What restoring the storages did (or, for a dry run, would do)."""

    destination: str
    policy: str
    files: int = 0
    written: int = 0
    unchanged: int = 0
    bytes_written: int = 0
    directories: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reader_of(archive: Any) -> ArchiveReader:
    """The member reader of an open archive (storages live in tar and directory archives)."""
    reader = getattr(archive, "_reader", None)
    if not hasattr(reader, "member_stream"):
        raise UsageError(f"{archive.path}: this kind of archive cannot hold storages")
    return reader  # type: ignore[return-value]


def iter_entries(reader: ArchiveReader, storage: StorageManifest) -> Iterator[StorageEntry]:
    """The index entries, validated (see :func:`read_index`).

    :raises ArchiveCorrupt: a malformed, unsafe or inconsistent entry, naming its line.
    """
    where = f"{reader.display}: {INDEX_MEMBER}"
    with reader.member_stream(INDEX_MEMBER) as stream:
        try:
            yield from read_index(stream, storage, where)
        except (ValueError, zstandard.ZstdError) as exc:
            raise ArchiveCorrupt(
                f"{exc}" if str(exc).startswith(where) else f"{where}: {exc}",
                member=INDEX_MEMBER,
                hint="the archive's storage index is damaged or unsafe; nothing was extracted",
            ) from None


class _PackReader:
    """Reads stored files out of the packs, one open pack at a time (files come in pack
    order, so each pack is opened once)."""

    def __init__(self, reader: ArchiveReader, storage: StorageManifest) -> None:
        self._reader = reader
        self._storage = storage
        self._number: int | None = None
        self._stream: IO[bytes] | None = None

    def blocks(self, entry: StorageEntry) -> Iterator[bytes]:
        """The file's original bytes, in blocks; checks size and SHA-256 at the end.

        :raises ArchiveCorrupt: naming the file and its pack.
        """
        member = self._storage.packs[entry.pack].member
        if self._number != entry.pack:
            self.close()
            self._stream = self._reader.member_stream(member)
            self._number = entry.pack
        assert self._stream is not None
        self._stream.seek(entry.offset)
        raw = _Bounded(self._stream, entry.length)
        source: Any = raw
        if entry.compressed:
            source = zstandard.ZstdDecompressor().stream_reader(
                raw, read_across_frames=True)  # type: ignore[arg-type]
        sha = hashlib.sha256()
        size = 0
        where = f"{self._reader.display}: storage file {entry.path!r} (in {member})"
        want = min(BLOCK, entry.size + 1)  # read(n) allocates n: small files ask for little
        try:
            while block := source.read(want):
                size += len(block)
                if size > entry.size:  # more than declared: a bomb or a damaged frame
                    raise ArchiveCorrupt(f"{where} is larger than its recorded size", member=member)
                sha.update(block)
                yield block
        except zstandard.ZstdError as exc:
            raise ArchiveCorrupt(f"{where} cannot be decompressed: {exc}", member=member) from None
        if size != entry.size or sha.hexdigest() != entry.sha256:
            raise ArchiveCorrupt(f"{where} does not match its size and SHA-256", member=member)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
            self._number = None


class _Bounded:
    """At most ``length`` bytes of a stream, from where it stands."""

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(size)
        self._left -= len(data)
        return data


def check_hashes(reader: ArchiveReader, storage: StorageManifest) -> None:
    """The index and every pack against their SHA-256 (raises :class:`ArchiveCorrupt`)."""
    for member, _size, sha in storage.members():
        reader.check_member(member, sha)


def iter_verify_storages(reader: ArchiveReader,
                         storage: StorageManifest) -> Iterator[Event]:
    """Check the index, every pack and every file's own size and SHA-256."""
    check_hashes(reader, storage)
    packs = _PackReader(reader, storage)
    done = 0
    try:
        for entry in iter_entries(reader, storage):
            if entry.type != "file":
                continue
            for _block in packs.blocks(entry):
                pass
            done += 1
            if done % 1000 == 0 or done == storage.files:
                yield Event("verify", done, storage.files, "Verify storage files",
                            bytes=entry.size)
    finally:
        packs.close()


def summarize(reader: ArchiveReader, storage: StorageManifest, depth: int = 1,
              top: int = 20) -> list[dict[str, Any]]:
    """Files and bytes per top directory of each root (for ``ls``), biggest first."""
    totals: dict[str, list[int]] = {}
    roots = [tuple(r.name.split("/")) for r in storage.roots]
    for entry in iter_entries(reader, storage):
        if entry.type != "file":
            continue
        parts = entry.parts
        root = next(r for r in roots if parts[: len(r)] == r)
        key = "/".join(parts[: len(root) + depth]) if len(parts) > len(root) + depth else \
            "/".join(root) + "/ (files)"
        slot = totals.setdefault(key, [0, 0])
        slot[0] += 1
        slot[1] += entry.size
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return [{"directory": k, "files": v[0], "bytes": v[1]} for k, v in ranked[:top]]


# ---------------------------------------------------------------------------------- preflight
def _same_file(path: str | int, entry: StorageEntry, dir_fd: int | None = None) -> bool:
    """Whether an existing regular file holds exactly the entry's bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd) if isinstance(path, str) \
        else path
    with os.fdopen(fd, "rb") as handle:
        if os.fstat(handle.fileno()).st_size != entry.size:
            return False
        sha = hashlib.sha256()
        while block := handle.read(min(BLOCK, entry.size + 1)):
            sha.update(block)
    return sha.hexdigest() == entry.sha256


def preflight(reader: ArchiveReader, storage: StorageManifest, destination: str | Path,
              policy: str, *, verify: bool = True) -> StorageReport:
    """Check everything before anything is written; returns what extraction will do.

    :raises ArchiveCorrupt: a damaged or unsafe index, or a pack that fails its SHA-256.
    :raises StorageConflict: links or non-directories in the way, or (policy ``refuse``)
        existing files that differ from the archive's.
    :raises OutputError: not enough free space.
    """
    if policy not in POLICIES:
        raise UsageError(f"unknown storage policy {policy!r}", hint="policies: "
                         + ", ".join(POLICIES))
    dest = Path(destination)
    if dest.exists() and not dest.is_dir():
        raise StorageConflict(f"the storage destination {dest} is not a directory")
    if verify:  # every pack's hash now; every file is decoded and hashed in the pass below,
        check_hashes(reader, storage)  # so a damaged or oversized file refuses before writing
    packs = _PackReader(reader, storage) if verify else None
    try:
        return _preflight_entries(reader, storage, dest, policy, packs)
    finally:
        if packs is not None:
            packs.close()


def _preflight_entries(reader: ArchiveReader, storage: StorageManifest, dest: Path, policy: str,
                       packs: _PackReader | None) -> StorageReport:
    """Walk the archive's entries against ``dest`` (reading every block when ``packs``) and
    count them; nothing is written.

    :raises StorageConflict: something in the way, or too little space.
    """
    report = StorageReport(str(dest), policy)
    unsafe: list[str] = []
    differing: list[str] = []
    checked: set[tuple[str, ...]] = set()  # directories known to be safe (only current path)
    needed = 0
    if policy == "replace":  # the roots are rebuilt: only the way to them (and they) matter
        for root in storage.roots:
            _check_dirs(dest, tuple(root.name.split("/")), checked, unsafe)
    collisions = _Collisions()
    for entry in iter_entries(reader, storage):
        parts = entry.parts
        report.files += entry.type == "file"
        report.directories += entry.type == "dir"
        collisions.see(parts)
        if packs is not None and entry.type == "file":
            for _block in packs.blocks(entry):
                pass
        if policy == "replace":
            needed += entry.size
            continue
        _check_dirs(dest, parts if entry.type == "dir" else parts[:-1], checked, unsafe)
        if entry.type == "dir":
            continue
        target = dest.joinpath(*parts)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            needed += entry.size
            continue
        except NotADirectoryError:
            continue  # a parent is a file: already reported by _check_dirs
        if not stat.S_ISREG(st.st_mode):
            unsafe.append(f"{target} exists and is not a regular file")
        elif not _same_file(str(target), entry):
            if policy == "refuse":
                differing.append(str(target))
            needed += entry.size
        if len(unsafe) > SHOWN:
            break
    if collisions.found and _folds_names(dest):
        unsafe.extend(f"{a!r} and {b!r} are one name on this filesystem (it ignores case or "
                      "Unicode normalization): one would overwrite the other"
                      for a, b in collisions.found[:SHOWN])
    _refuse_conflicts(dest, unsafe, differing)
    _check_space(dest, needed)
    return report

def _refuse_conflicts(dest: Path, unsafe: list[str], differing: list[str]) -> None:
    """Raise what the preflight found in the way, if anything (the first :data:`SHOWN`).

    :raises StorageConflict: unsafe paths (links, non-files, folded names) or, with policy
        ``refuse``, files that differ from the archive's.
    """
    if unsafe:
        raise StorageConflict(
            f"cannot restore the storages into {dest} safely; nothing was written:\n"
            + "\n".join(f"  - {u}" for u in unsafe[:SHOWN]),
            hint="remove the links or files in the way, or give another --storages-to",
        )
    if differing:
        raise StorageConflict(
            f"{len(differing)} file(s) in {dest} differ from the archive's; nothing was "
            "written:\n" + "\n".join(f"  - {d}" for d in differing[:SHOWN])
            + ("\n  ..." if len(differing) > SHOWN else ""),
            hint="--storages merge overwrites them (other files stay), --storages replace makes "
            "each storage exactly the archive's",
        )


class _Collisions:
    """Sibling names that differ only in case or Unicode normalization (``a.txt`` and
    ``A.TXT``; ``é`` composed and decomposed). Entries come depth first, so one set of names per
    level of the current path is enough."""

    def __init__(self) -> None:
        self._levels: list[dict[str, str]] = []
        self.found: list[tuple[str, str]] = []

    def see(self, parts: tuple[str, ...]) -> None:
        depth = len(parts)
        del self._levels[depth:]  # the children of earlier siblings are behind us
        while len(self._levels) < depth:
            self._levels.append({})
        siblings = self._levels[depth - 1]
        key = unicodedata.normalize("NFC", parts[-1]).casefold()
        other = siblings.setdefault(key, parts[-1])
        if other != parts[-1] and len(self.found) <= SHOWN:
            self.found.append(("/".join((*parts[:-1], other)), "/".join(parts)))


def _folds_names(dest: Path) -> bool:
    """Whether the filesystem of ``dest`` (or of its nearest existing parent) treats names that
    differ in case or normalization as one: a probe file is created and looked up."""
    probe_dir = dest
    while not probe_dir.is_dir():
        probe_dir = probe_dir.parent
    name = f".dbcrate-probe-{secrets.token_hex(4)}-Ab\u00e9"
    path = probe_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return True  # cannot tell: assume the worst (the restore is refused with the names)
    os.close(fd)
    try:
        variants = (name.swapcase(), unicodedata.normalize("NFD", name))
        return any(os.path.lexists(probe_dir / v) for v in variants)
    finally:
        path.unlink(missing_ok=True)


def _check_dirs(dest: Path, parts: tuple[str, ...], checked: set[tuple[str, ...]],
                unsafe: list[str]) -> None:
    """Every existing prefix of ``parts`` under ``dest`` must be a real directory."""
    for depth in range(1, len(parts) + 1):
        prefix = parts[:depth]
        if prefix in checked:
            continue
        path = dest.joinpath(*prefix)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            checked.add(prefix)
            continue
        except NotADirectoryError:
            return
        if stat.S_ISLNK(st.st_mode):
            unsafe.append(f"{path} is a symbolic link (it could point outside the destination)")
            return
        if not stat.S_ISDIR(st.st_mode):
            unsafe.append(f"{path} exists and is not a directory")
            return
        if len(checked) > 10_000:  # bounded: entries come in path order, old prefixes recur
            checked.clear()
        checked.add(prefix)


def _check_space(dest: Path, needed: int) -> None:
    probe = dest
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise OutputError(
            f"the storages need {needed:,} bytes in {dest}, only {free:,} are free; "
            "nothing was written", hint="free some space or choose another --storages-to")


# --------------------------------------------------------------------------------- extraction
class _DirCursor:
    """Directory file descriptors along the current path under a base directory.

    Every component is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent, and
    created (mode 0777 less the umask) when missing, so nothing can lead outside the base.
    """

    def __init__(self, base: Path) -> None:
        self.base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        self._names: list[str] = []
        self._fds: list[int] = []

    def enter(self, parts: tuple[str, ...]) -> int:
        common = 0
        while (common < len(parts) and common < len(self._names)
               and self._names[common] == parts[common]):
            common += 1
        while len(self._fds) > common:
            os.close(self._fds.pop())
            self._names.pop()
        for name in parts[common:]:
            parent = self._fds[-1] if self._fds else self.base_fd
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            except OSError as exc:
                raise StorageConflict(
                    f"cannot enter {'/'.join([*self._names, name])} under the destination: "
                    f"{exc.strerror} (a link or a file is in the way); the restore stopped "
                    "here", hint="remove it and restore again") from None
            self._fds.append(fd)
            self._names.append(name)
        return self._fds[-1] if self._fds else self.base_fd

    def close(self) -> None:
        for fd in [*self._fds, self.base_fd]:
            os.close(fd)
        self._fds.clear()
        self._names.clear()


def extract(reader: ArchiveReader, storage: StorageManifest, destination: str | Path,
            policy: str, report: StorageReport) -> Generator[Event, None, StorageReport]:
    """Write the storages under ``destination`` (after :func:`preflight` said yes).

    :raises OutputError: the filesystem refused a write (disk full, no inodes, permissions),
        saying how many files were written before; no temp file is left behind.
    """
    dest = Path(destination)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return (yield from _extract(reader, storage, dest, policy, report))
    except OSError as exc:  # disk full, out of inodes, permissions: say what is there now
        raise OutputError(
            f"restoring the storages into {dest} stopped: {exc.strerror or exc} "
            f"({exc.filename or 'a file'}); {report.written:,} files were written before "
            "(each complete and checked), the rest were not",
            hint="free space or fix the permissions, then restore again with --storages merge "
            "(identical files are skipped)",
        ) from None


def _extract(reader: ArchiveReader, storage: StorageManifest, dest: Path, policy: str,
             report: StorageReport) -> Generator[Event, None, StorageReport]:
    roots = [tuple(r.name.split("/")) for r in storage.roots]
    staging: dict[tuple[str, ...], tuple[str, ...]] = {}
    if policy == "replace":  # each root is built under a temp name beside it, then swapped in
        for root in roots:
            staging[root] = (*root[:-1], f".{root[-1]}.dbcrate-new-{secrets.token_hex(4)}")
    cursor = _DirCursor(dest)
    packs = _PackReader(reader, storage)
    done = 0
    try:
        for entry in iter_entries(reader, storage):
            parts = entry.parts
            if staging:
                root = next(r for r in roots if parts[: len(r)] == r)
                parts = staging[root] + parts[len(root):]
            if entry.type == "dir":
                cursor.enter(parts)
                continue
            fd = cursor.enter(parts[:-1])
            written = _write_file(fd, parts[-1], entry, packs, skip_same=policy != "replace")
            if written:
                report.written += 1
                report.bytes_written += entry.size
            else:
                report.unchanged += 1
            done += 1
            if done % 1000 == 0 or done == storage.files:
                yield Event("storage", done, storage.files, "Restore storage files",
                            bytes=report.bytes_written)
        cursor.close()
        for root, temp in staging.items():
            _swap(dest, root, temp)
        staging.clear()
    finally:
        packs.close()
        with contextlib.suppress(OSError):
            cursor.close()
        for temp in staging.values():  # an error before the swap: drop the half-built roots
            shutil.rmtree(dest.joinpath(*temp), ignore_errors=True)
    return report


def _write_file(dir_fd: int, name: str, entry: StorageEntry, packs: _PackReader,
                skip_same: bool) -> bool:
    """Write one file atomically in ``dir_fd``; ``False`` when an identical one is there."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise StorageConflict(f"{name} appeared in the destination and is not a regular "
                                  "file; the restore stopped here")
        if skip_same and st.st_size == entry.size and _same_file(name, entry, dir_fd):
            return False
    temp = f".{name[:200]}.dbcrate-tmp-{secrets.token_hex(4)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            for block in packs.blocks(entry):
                out.write(block)
            os.fchmod(out.fileno(), entry.mode & 0o777)  # no setuid, setgid or sticky bits
            out.flush()
            os.utime(out.fileno(), (entry.mtime, entry.mtime))
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
    return True


def _swap(dest: Path, root: tuple[str, ...], temp: tuple[str, ...]) -> None:
    final = dest.joinpath(*root)
    built = dest.joinpath(*temp)
    old: Path | None = None
    if os.path.lexists(final):
        if final.is_symlink() or not final.is_dir():
            raise StorageConflict(f"{final} is not a directory; it was not replaced")
        old = final.with_name(f".{final.name}.dbcrate-old-{secrets.token_hex(4)}")
        os.rename(final, old)
    os.rename(built, final)
    if old is not None:
        shutil.rmtree(old)
