"""Storages in an archive: the manifest section and the file index (docs/FORMAT.md, "Storages").

A *storage* is a directory of files kept beside the data (uploaded media, private files). Its
files are packed into a few large ``storage/pNNNNNN.pack`` members (each file one zstd frame,
or stored as is when compression does not help), so that a million small files make a few
hundred tar members, not a million. The list of files is the *index*: a zstd-compressed JSON
Lines member ``storage/index.jsonl.zst``, one entry per file or directory, in path order, with
relative path, size, mode, mtime, SHA-256 and where its bytes are. It is streamed, never held
whole in memory, on both sides. The manifest holds only totals, the roots, the packs and the
index's own hash.

Every entry is validated as it is read (:meth:`StorageEntry.from_dict`): only files and
directories, a relative path of plain components (no ``..``, no absolute path, no empty or
``.`` component, no NUL or backslash), and a strictly increasing path order — which also
rules out duplicate names and a file that is also a directory.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import zstandard

from dbcrate.model.manifest_check import SHA256_HEX

INDEX_MEMBER = "storage/index.jsonl.zst"
PACK_MEMBER = re.compile(r"^storage/p[0-9]{6,9}\.pack$")
#: one index line longer than this is refused (a path is at most a few KB)
MAX_INDEX_LINE = 64 * 1024
#: a path component longer than this is refused (every common filesystem stops at 255 bytes)
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096
#: modification times beyond ±this many seconds (year ~5138) are refused: utime() cannot set them
MAX_MTIME = 10**11


def pack_member(number: int) -> str:
    return f"storage/p{number:06d}.pack"


def check_relative_path(path: str, where: str) -> tuple[str, ...]:
    """The components of a safe relative path, or ``ValueError`` saying why it is unsafe."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: empty path")
    if "\x00" in path or "\\" in path:
        raise ValueError(f"{where}: path {path!r} holds a NUL or a backslash")
    if path.startswith("/"):
        raise ValueError(f"{where}: absolute path {path!r}")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ValueError(f"{where}: path longer than {MAX_PATH_BYTES} bytes")
    parts = tuple(path.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"{where}: path {path!r} has a {part or 'empty'!r} component")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
            raise ValueError(f"{where}: a component of {path!r} is longer than 255 bytes")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: path {path!r} is not valid Unicode") from None
    return parts


@dataclass(frozen=True)
class StorageEntry:
    """One file or directory of a storage, as the index records it.

    ``path`` starts with the storage root's name (``media/avatars/1.png``). For a file,
    ``pack``/``offset``/``length`` say where its stored bytes are, ``compressed`` whether they
    are one zstd frame (else the file's bytes as is), ``size`` and ``sha256`` describe the
    original file.
    """

    path: str
    type: str  # "file" | "dir"
    mode: int = 0o644
    mtime: float = 0.0
    size: int = 0
    sha256: str = ""
    pack: int = 0
    offset: int = 0
    length: int = 0
    compressed: bool = False

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    def to_dict(self) -> dict[str, Any]:
        if self.type == "dir":
            return {"path": self.path, "type": "dir", "mode": self.mode, "mtime": self.mtime}
        return {"path": self.path, "type": "file", "mode": self.mode, "mtime": self.mtime,
                "size": self.size, "sha256": self.sha256, "pack": self.pack,
                "offset": self.offset, "length": self.length, "compressed": self.compressed}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StorageEntry:
        """Parse and validate one index entry (raises ``ValueError`` naming ``where``)."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: not an object")
        kind = data.get("type")
        if kind not in ("file", "dir"):
            raise ValueError(f"{where}: entry of type {kind!r}; storages hold only regular "
                             "files and directories (no links, devices or other special files)")
        path: Any = data.get("path")
        check_relative_path(path, where)
        mode, mtime = data.get("mode", 0o644), data.get("mtime", 0)
        if not _natural(mode) or mode > 0o7777:
            raise ValueError(f"{where}: bad mode {mode!r}")
        if (not isinstance(mtime, (int, float)) or isinstance(mtime, bool)
                or not -MAX_MTIME <= mtime <= MAX_MTIME):  # NaN and infinities fail too
            raise ValueError(f"{where}: bad mtime {mtime!r}")
        if kind == "dir":
            return cls(path, "dir", mode, float(mtime))
        fields: dict[str, Any] = {k: data.get(k) for k in ("size", "pack", "offset", "length")}
        for name, value in fields.items():
            if not _natural(value):
                raise ValueError(f"{where}: field {name!r} must be a non-negative integer")
        sha, compressed = data.get("sha256"), data.get("compressed")
        if not isinstance(sha, str) or not SHA256_HEX.match(sha):
            raise ValueError(f"{where}: bad sha256")
        if not isinstance(compressed, bool):
            raise ValueError(f"{where}: 'compressed' must be true or false")
        if not compressed and fields["length"] != fields["size"]:
            raise ValueError(f"{where}: an uncompressed file's length differs from its size")
        return cls(path, "file", mode, float(mtime), fields["size"], sha, fields["pack"],
                   fields["offset"], fields["length"], compressed)


def _natural(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class StorageRoot:
    """One storage directory given at dump time, by the name it has in the archive."""

    name: str
    files: int = 0
    bytes: int = 0
    directories: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PackInfo:
    member: str
    size: int
    sha256: str
    #: where the member's bytes start in the tar (an archive written to object storage)
    offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.offset is None:
            del out["offset"]
        return out


@dataclass(frozen=True)
class FileColumn:
    """A table column holding paths of files relative to a storage root (a Django FileField)."""

    table: str
    column: str
    root: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StorageManifest:
    """The manifest's ``storage`` section."""

    roots: list[StorageRoot] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    packs: list[PackInfo] = field(default_factory=list)
    index_size: int = 0
    index_sha256: str = ""
    file_columns: list[FileColumn] = field(default_factory=list)
    #: the row<->file check made at dump time: {"missing": n, "orphans": n, "examples": [...]}
    file_check: dict[str, Any] | None = None
    #: where the index's bytes start in the tar (an archive written to object storage)
    index_offset: int | None = None

    @property
    def files(self) -> int:
        return sum(r.files for r in self.roots)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.roots)

    @property
    def entries(self) -> int:
        return sum(r.files + r.directories for r in self.roots)

    def members(self) -> list[tuple[str, int, str]]:
        """(member, size, sha256) of every member the storages occupy."""
        return [(INDEX_MEMBER, self.index_size, self.index_sha256),
                *((p.member, p.size, p.sha256) for p in self.packs)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": [r.to_dict() for r in self.roots],
            "files": self.files,
            "bytes": self.bytes,
            "exclude": self.exclude,
            "index": {"member": INDEX_MEMBER, "size": self.index_size,
                      "sha256": self.index_sha256, "entries": self.entries,
                      **({} if self.index_offset is None else {"offset": self.index_offset})},
            "packs": [p.to_dict() for p in self.packs],
            "file_columns": [c.to_dict() for c in self.file_columns],
            "file_check": self.file_check,
        }

    @classmethod
    def from_dict(cls, data: Any) -> StorageManifest:
        """Parse strictly (raises ``ValueError``)."""
        if not isinstance(data, dict):
            raise ValueError("'storage' must be an object")
        roots = []
        for r in _list(data, "roots"):
            name = r.get("name") if isinstance(r, dict) else None
            check_relative_path(name, "storage root")  # type: ignore[arg-type]
            counts = [r.get(k, 0) for k in ("files", "bytes", "directories")]
            if not all(_natural(c) for c in counts):
                raise ValueError(f"storage root {name!r}: bad counts")
            roots.append(StorageRoot(name, *counts))  # type: ignore[arg-type]
        check_roots([r.name for r in roots])
        index = data.get("index")
        if not isinstance(index, dict) or index.get("member") != INDEX_MEMBER:
            raise ValueError(f"storage index must be the member {INDEX_MEMBER}")
        if not _natural(index.get("size")) or not SHA256_HEX.match(str(index.get("sha256"))):
            raise ValueError("storage index: bad size or sha256")
        packs = []
        for p in _list(data, "packs"):
            if not isinstance(p, dict) or not PACK_MEMBER.match(str(p.get("member"))):
                raise ValueError(f"bad storage pack {p!r}")
            if not _natural(p.get("size")) or not SHA256_HEX.match(str(p.get("sha256"))):
                raise ValueError(f"storage pack {p.get('member')}: bad size or sha256")
            packs.append(PackInfo(p["member"], p["size"], p["sha256"],
                                  _offset(p, f"storage pack {p['member']}")))
        if len({p.member for p in packs}) != len(packs):
            raise ValueError("a storage pack is listed twice")
        columns = []
        for c in _list(data, "file_columns"):
            if not isinstance(c, dict) or not all(isinstance(c.get(k), str)
                                                  for k in ("table", "column", "root")):
                raise ValueError(f"bad file column {c!r}")
            columns.append(FileColumn(c["table"], c["column"], c["root"]))
        exclude = [str(x) for x in _list(data, "exclude")]
        check = data.get("file_check")
        return cls(roots, exclude, packs, index["size"], index["sha256"], columns,
                   check if isinstance(check, dict) else None, _offset(index, "storage index"))

    def placed_members(self) -> list[tuple[str, int, str, int]]:
        """(member, size, sha256, offset) of every storage member, when all are placed."""
        if not self.placed():
            return []
        assert self.index_offset is not None
        return [(INDEX_MEMBER, self.index_size, self.index_sha256, self.index_offset),
                *((p.member, p.size, p.sha256, p.offset) for p in self.packs
                  if p.offset is not None)]

    def placed(self) -> bool:
        """Whether every storage member's offset is recorded (ranged reads)."""
        return self.index_offset is not None and all(p.offset is not None for p in self.packs)


def _offset(record: dict[str, Any], where: str) -> int | None:
    """A member's optional ``offset`` (format 5, written to object storage)."""
    value = record.get("offset")
    if value is not None and not _natural(value):
        raise ValueError(f"{where}: bad offset {value!r}")
    return value if value is None else int(value)


def check_roots(names: list[str]) -> None:
    """Root names must be distinct and none may lie inside another (``ValueError``)."""
    ordered = sorted(tuple(n.split("/")) for n in names)
    for a, b in itertools.pairwise(ordered):
        if b[: len(a)] == a:
            raise ValueError(f"storage root {'/'.join(b)!r} is the same as or inside "
                             f"{'/'.join(a)!r}")


def root_of(parts: tuple[str, ...], roots: list[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The root (as components) that ``parts`` lies in or is, else ``None``."""
    for root in roots:
        if parts[: len(root)] == root:
            return root
    return None


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"storage field {key!r} must be a list")
    return value


class IndexWriter:
    """Streams index entries into a zstd-compressed JSON Lines file."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._writer = zstandard.ZstdCompressor(level=3).stream_writer(sink, closefd=False)

    def add(self, entry: StorageEntry) -> None:
        line = json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":"))
        self._writer.write(line.encode("utf-8") + b"\n")

    def close(self) -> None:
        self._writer.flush(zstandard.FLUSH_FRAME)
        self._writer.close()  # type: ignore[no-untyped-call]


def read_index(source: IO[bytes], storage: StorageManifest, where: str) -> Iterator[StorageEntry]:
    """Stream and validate the index entries (``source`` yields the member's stored bytes).

    Checks each entry, the strict path order (no duplicates, no file that is also a
    directory's parent), every file's place inside a listed pack, that every path lies under a
    listed root, and that the totals match the manifest. Raises ``ValueError`` naming the line.
    """
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
    buffered = _Lines(reader)
    previous: StorageEntry | None = None
    roots = {tuple(r.name.split("/")): r for r in storage.roots}
    seen = {name: [0, 0, 0] for name in roots}
    for number, line in enumerate(buffered, start=1):
        at = f"{where} line {number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{at}: not JSON ({exc})") from None
        entry = StorageEntry.from_dict(data, at)
        parts = entry.parts
        root = root_of(parts, list(roots))
        if root is None:
            raise ValueError(f"{at}: {entry.path!r} is not under a storage root of the manifest")
        if parts == root and entry.type != "dir":
            raise ValueError(f"{at}: the storage root {entry.path!r} must be a directory")
        if previous is not None:
            if parts <= previous.parts:
                raise ValueError(f"{at}: {entry.path!r} is out of order or a duplicate name")
            if previous.type == "file" and parts[: len(previous.parts)] == previous.parts:
                raise ValueError(f"{at}: {entry.path!r} lies inside the file {previous.path!r}")
        if entry.type == "file":
            if entry.pack >= len(storage.packs):
                raise ValueError(f"{at}: {entry.path!r} points to pack {entry.pack}, "
                                 f"the archive has {len(storage.packs)}")
            if entry.offset + entry.length > storage.packs[entry.pack].size:
                raise ValueError(f"{at}: {entry.path!r} lies beyond the end of its pack")
            counts = seen[root]
            counts[0] += 1
            counts[1] += entry.size
        elif parts != root:
            seen[root][2] += 1
        previous = entry
        yield entry
    for name, info in roots.items():
        files, size, dirs = seen[name]
        if (files, size, dirs) != (info.files, info.bytes, info.directories):
            raise ValueError(f"{where}: storage {info.name!r} lists {files} files ({size} bytes) and "
                             f"{dirs} directories, the manifest says {info.files} "
                             f"({info.bytes} bytes) and {info.directories}")


class _Lines:
    """Lines of a binary stream, each bounded by :data:`MAX_INDEX_LINE`."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        while True:
            block = self._source.read(256 * 1024)
            if not block:
                break
            pending += block
            lines = pending.split(b"\n")
            pending = lines.pop()
            if len(pending) > MAX_INDEX_LINE:
                raise ValueError(f"an index line is longer than {MAX_INDEX_LINE} bytes")
            for line in lines:
                if len(line) > MAX_INDEX_LINE:
                    raise ValueError(f"an index line is longer than {MAX_INDEX_LINE} bytes")
                yield line
        if pending:
            raise ValueError("the index does not end with a newline (truncated?)")
