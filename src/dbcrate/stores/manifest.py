"""The manifest of a tar archive in object storage, read with ranged requests.

``ls s3://bucket/key`` needs only the marker (the archive's first member) and the manifest
with its digest (its last members, docs/FORMAT.md): two or three ranged requests, however big
the archive, instead of reading all of it. The checks are the reader's own
(:func:`~dbcrate.containers.base.check_marker` first, then
:func:`~dbcrate.containers.base.checked_manifest` against ``manifest.sha256``). The manifest is
the one whose digest member is followed only by the tar's end (zero blocks) to the object's
end: a member's data that imitates a tar header cannot stand in for it.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import Any, TypeVar

from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    MAX_MARKER_BYTES,
    check_marker,
    checked_manifest,
)
from dbcrate.errors import NotAnArchive
from dbcrate.model.manifest import MAX_MANIFEST_BYTES, SEALED_FORMAT_VERSION, Manifest
from dbcrate.stores.objects import object_range, object_size

T = TypeVar("T")
BLOCK = 512
#: the first tail read (then 16 times that, then the largest manifest a reader takes)
FIRST_TAIL = 1024 * 1024


def object_marker_version(url: str) -> int:
    """The format version in the marker of the archive at ``url`` (one ranged read).

    :raises NotAnArchive: no such object, or not a dbcrate archive.
    :raises UnsupportedFormatVersion: written by a newer dbcrate.
    """
    head = object_range(url, 0, BLOCK + MAX_MARKER_BYTES + BLOCK)
    marker = _member_at(head, 0, MARKER)
    if marker is None:
        raise NotAnArchive(f"{url} is not a dbcrate archive (no marker at its start)",
                           hint="give the key of a .crate file written by dbcrate dump")
    return check_marker(marker[0], url)


def object_manifest(url: str) -> Manifest | None:
    """The checked manifest of the tar archive at ``url``; None for a sealed (encrypted)
    archive, whose manifest only its reader can open (:mod:`dbcrate.crypto.sealed`).

    :raises NotAnArchive: no such object, not a dbcrate archive, no manifest at its end.
    :raises UnsupportedFormatVersion: written by a newer dbcrate.
    :raises ArchiveCorrupt: the manifest does not match its digest.
    """
    version = object_marker_version(url)
    if version == SEALED_FORMAT_VERSION:
        return None
    found = search_tail(url, _manifest_in)
    if found is None:
        raise NotAnArchive(f"{url}: no manifest at the end of the archive (an interrupted "
                           "upload, or not a whole dbcrate archive)")
    return checked_manifest(found[0], found[1], url, version)


def search_tail(url: str, find: Callable[[bytes, int], T | None]) -> T | None:
    """``find(tail, base)`` on ever longer tails of the object (``tail`` starts at its offset
    ``base``): 1 MiB, then 16 MiB, then as much as the largest manifest a reader takes."""
    size = object_size(url)
    for length in (FIRST_TAIL, 16 * FIRST_TAIL, MAX_MANIFEST_BYTES + FIRST_TAIL):
        length = min(length, size)
        found = find(object_range(url, size - length, length), size - length)
        if found is not None or length == size:
            return found
    return None


def _header(buf: bytes, offset: int) -> Any:
    """The tar header at ``offset`` of ``buf``, or None (no valid header there)."""
    if offset + BLOCK > len(buf):
        return None
    try:
        return tarfile.TarInfo.frombuf(buf[offset:offset + BLOCK], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None


def _member_at(buf: bytes, offset: int, name: str) -> tuple[bytes, int] | None:
    """``(data, end)`` of the member ``name`` whose header is at ``offset`` (a PAX header
    before it is stepped over); ``end`` is the offset after its padded data."""
    info = _header(buf, offset)
    if info is not None and info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
        offset += BLOCK + _padded(info.size)
        info = _header(buf, offset)
    if info is None or info.name != name or not info.isfile():
        return None
    start = offset + BLOCK
    if start + info.size > len(buf):
        return None
    return buf[start:start + info.size], start + _padded(info.size)


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _manifest_in(tail: bytes, base: int) -> tuple[bytes, bytes] | None:
    """``(manifest, digest)`` from the tail of the object (``tail`` starts at the object's
    offset ``base``): the manifest member followed by its digest member and then nothing but
    zero blocks to the end."""
    found = last_pair(tail, base, MANIFEST, MANIFEST_DIGEST)
    return None if found is None else (found[0], found[1])


def last_pair(tail: bytes, base: int, first: str, second: str,
              end: int | None = None) -> tuple[bytes, bytes, int] | None:
    """``(first's data, second's data, offset in tail of first's header)``: the member
    ``first`` followed by ``second`` and then, up to ``end`` (an offset in ``tail``), nothing
    (``end`` given: what follows is another member) or only zero blocks to the end of the
    object (``end`` None). ``tail`` starts at the object's offset ``base``."""
    start = (-base) % BLOCK  # the first offset of ``tail`` on a block boundary of the object
    for offset in range(len(tail) - BLOCK, start - 1, -BLOCK):
        one = _member_at(tail, offset, first)
        if one is None:
            continue
        two = _member_at(tail, one[1], second)
        if two is None:
            continue
        if (two[1] == end) if end is not None else not tail[two[1]:].strip(b"\0"):
            return one[0], two[0], offset
    return None


def head_members(url: str, names: tuple[str, ...], length: int) -> list[bytes] | None:
    """The data of the first members of the object, which must be ``names`` in that order,
    from its first ``length`` bytes (one ranged read); None when they do not fit in it."""
    head = object_range(url, 0, min(length, object_size(url)))
    found, offset = [], 0
    for name in names:
        member = _member_at(head, offset, name)
        if member is None:
            return None
        found.append(member[0])
        offset = member[1]
    return found
