"""``prune``: remove old archives from a directory or a bucket prefix, keeping the newest.

Only dbcrate archives are candidates: a file (or object) directly in the location whose name
matches the pattern (``*.crate`` by default) *and* that starts with the archive marker (a tar
whose first member is ``dbcrate-archive.json``, docs/FORMAT.md); anything else is left alone
and listed as not an archive. Archives are ordered by their modification time (the object's
``last_modified`` in a bucket), newest first. ``keep_last`` keeps the newest N, ``older_than``
keeps those younger than the duration; with both, an archive goes only when neither keeps it
(each rule protects, as in restic's ``forget``). Nothing is removed with ``dry_run``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from dbcrate.errors import OutputError, UsageError
from dbcrate.stores.objects import delete_object, is_object_url, list_objects, read_start

#: the first member of every tar archive (docs/FORMAT.md): how an archive is recognised
MARKER = "dbcrate-archive.json"
#: the bytes read from each candidate to recognise an archive (its first tar headers)
START_BYTES = 4096
_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Entry:
    """One file or object of the location."""

    name: str
    modified: dt.datetime
    size: int


@dataclass
class PruneResult:
    """What prune removed (or would remove, ``dry_run``), kept, and left alone."""

    location: str
    removed: list[Entry] = field(default_factory=list)
    kept: list[Entry] = field(default_factory=list)
    not_archives: list[str] = field(default_factory=list)
    dry_run: bool = False


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` as a duration.

    :raises UsageError: another spelling.
    """
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"--older-than {text!r} is not a duration",
                         hint="a number and a unit: 45s, 90m, 12h, 30d, 2w")
    return dt.timedelta(seconds=int(match["n"]) * _UNITS[match["unit"]])


def prune(location: str, *, keep_last: int | None = None, older_than: str | None = None,
          pattern: str = "*.crate", dry_run: bool = False,
          now: dt.datetime | None = None) -> PruneResult:
    """Remove the archives of ``location`` (a directory or ``s3://bucket/prefix/``) that no
    rule keeps; see the module docstring.

    :raises UsageError: neither rule given, a negative count, a bad duration, a location that
        is no directory.
    :raises OutputError: an archive that cannot be removed (those before it are removed).
    """
    if keep_last is None and older_than is None:
        raise UsageError("prune needs --keep-last N or --older-than DURATION (or both)",
                         hint="e.g. dbcrate prune backups/ --keep-last 7")
    if keep_last is not None and keep_last < 0:
        raise UsageError(f"--keep-last {keep_last} is negative")
    age = parse_duration(older_than) if older_than is not None else None
    now = now or dt.datetime.now(dt.UTC)
    remote = is_object_url(location)
    entries = _list_objects(location) if remote else _list_directory(location)
    result = PruneResult(location, dry_run=dry_run)
    archives = []
    for entry in entries:
        if not fnmatch.fnmatchcase(entry.name.rpartition("/")[2], pattern):
            continue
        start = read_start(_join(location, entry.name), START_BYTES) if remote else \
            _read_file_start(Path(location, entry.name), START_BYTES)
        if _is_archive_start(start):
            archives.append(entry)
        else:
            result.not_archives.append(entry.name)
    archives.sort(key=lambda e: (e.modified, e.name), reverse=True)
    for index, entry in enumerate(archives):
        kept_by_count = keep_last is not None and index < keep_last
        kept_by_age = age is not None and now - entry.modified < age
        (result.kept if kept_by_count or kept_by_age else result.removed).append(entry)
    if not dry_run:
        for entry in result.removed:
            if remote:
                delete_object(_join(location, entry.name))
            else:
                _remove_file(Path(location, entry.name))
    return result


def _join(location: str, name: str) -> str:
    return location.rstrip("/") + "/" + name


def _is_archive_start(start: bytes) -> bool:
    """Whether ``start`` (the first bytes of a file) is a tar whose first member is the
    marker; a PAX extended header before it is stepped over."""
    offset = 0
    for _ in range(2):
        if len(start) < offset + 512:
            return False
        try:
            header = tarfile.TarInfo.frombuf(start[offset:offset + 512], "utf-8",
                                             "surrogateescape")
        except tarfile.HeaderError:
            return False
        if header.type not in (tarfile.XHDTYPE, tarfile.XGLTYPE):
            return header.name == MARKER
        offset += 512 + -(-header.size // 512) * 512
    return False


def _list_directory(location: str) -> list[Entry]:
    path = Path(location)
    if not path.is_dir():
        raise UsageError(f"{location} is not a directory",
                         hint="give the directory the archives are in, or s3://bucket/prefix/")
    entries = []
    for child in sorted(path.iterdir()):
        if child.is_symlink() or not child.is_file():
            continue  # only regular files are archives here (a link is never followed)
        st = child.stat()
        entries.append(Entry(child.name, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
                             st.st_size))
    return entries


def _list_objects(location: str) -> list[Entry]:
    return [Entry(name, modified, size) for name, modified, size in list_objects(location)]


def _read_file_start(path: Path, size: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass  # removed meanwhile: the goal is met
    except OSError as exc:
        raise OutputError(f"cannot remove {path}: {exc.strerror}",
                          hint="the archives listed before it are removed; fix the permissions "
                          "and run prune again") from None
