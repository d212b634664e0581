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
from typing import Any

from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    MAX_MARKER_BYTES,
    check_marker,
    checked_manifest,
)
from dbcrate.errors import NotAnArchive
from dbcrate.model.manifest import MAX_MANIFEST_BYTES, Manifest
from dbcrate.stores.objects import object_range, object_size

BLOCK = 512
#: the first tail read (then 16 times that, then the largest manifest a reader takes)
FIRST_TAIL = 1024 * 1024


def object_manifest(url: str) -> Manifest:
    """The checked manifest of the tar archive at ``url``.

    :raises NotAnArchive: no such object, not a dbcrate archive, no manifest at its end.
    :raises UnsupportedFormatVersion: written by a newer dbcrate.
    :raises ArchiveCorrupt: the manifest does not match its digest.
    """
    size = object_size(url)
    head = object_range(url, 0, BLOCK + MAX_MARKER_BYTES + BLOCK)
    marker = _member_at(head, 0, MARKER)
    if marker is None:
        raise NotAnArchive(f"{url} is not a dbcrate archive (no marker at its start)",
                           hint="give the key of a .crate file written by dbcrate dump")
    version = check_marker(marker[0], url)
    # 1 MiB, then 16 MiB, then as much as the largest manifest a reader takes (and its digest)
    for length in (FIRST_TAIL, 16 * FIRST_TAIL, MAX_MANIFEST_BYTES + FIRST_TAIL):
        length = min(length, size)
        tail = object_range(url, size - length, length)
        found = _manifest_in(tail, size - length)
        if found is not None:
            return checked_manifest(found[0], found[1], url, version)
        if length == size:
            break
        del tail
    raise NotAnArchive(f"{url}: no manifest at the end of the archive (an interrupted upload, "
                       "or not a whole dbcrate archive)")


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
    first = (-base) % BLOCK  # the first offset of ``tail`` on a block boundary of the object
    for offset in range(len(tail) - BLOCK, first - 1, -BLOCK):
        manifest = _member_at(tail, offset, MANIFEST)
        if manifest is None:
            continue
        digest = _member_at(tail, manifest[1], MANIFEST_DIGEST)
        if digest is not None and not tail[digest[1]:].strip(b"\0"):
            return manifest[0], digest[0]
    return None
