"""A sealed archive in object storage, read by ranges: ``ls`` fetches the marker, the wrapped
key and the tail (the sealed manifest, the index), and a restore each member it needs,
decrypting only those.

The sealed manifest and its digest are the two members before ``index.json`` (docs/FORMAT.md,
"Sealed archives"); their hidden names come from the archive key, so they are found only once
``key.age`` (the second member) is opened. Every chunk's ``offset`` (format 5, written by a dump
to object storage) places its sealed member. An archive without offsets (or storages dumped without theirs) is
read whole (None), as a plain one is.
"""

from __future__ import annotations

import io
import json
from typing import BinaryIO, cast

from dbcrate.containers.base import MANIFEST, MANIFEST_DIGEST, MARKER, check_marker, checked_manifest
from dbcrate.crypto.keys import Keyring, recipient_kinds
from dbcrate.crypto.sealed import (
    INDEX,
    INDEX_DIGEST,
    KEY_MEMBER,
    SealedReader,
    check_scheme,
    hidden_name,
)
from dbcrate.crypto.segments import OpenedStream, sealed_size
from dbcrate.errors import NotAnArchive
from dbcrate.model.manifest import SEALED_FORMAT_VERSION, Manifest
from dbcrate.stores.manifest import head_members, last_pair, search_tail
from dbcrate.stores.objects import object_size
from dbcrate.stores.ranged import RangedReader, has_offsets

#: the marker and ``key.age`` are read in one request of this many bytes (an age header of
#: ~100 ssh-rsa recipients); more recipients: the archive is read whole
HEAD_BYTES = 64 * 1024


class SealedRangedReader(RangedReader):
    """:class:`~dbcrate.stores.ranged.RangedReader` of a sealed archive: fetches each
    member's sealed bytes and decrypts them (every segment authenticated) before they are
    checked against the manifest's SHA-256 and decoded."""

    def __init__(self, url: str, manifest: Manifest, object_bytes: int, key: bytes,
                 recipients: list[str]) -> None:
        self._key = key
        #: the kinds of its recipients, as ``ls`` shows them
        self.recipients = recipients
        super().__init__(url, manifest, object_bytes)

    def _stored(self, size: int) -> int:
        return sealed_size(size)

    def _opened(self, name: str, data: bytes) -> bytes:
        return _decrypted(data, self._key, name, self.display)

    def member_stream(self, name: str) -> BinaryIO:
        """The plaintext, decrypted segment by segment from the fetched ciphertext (a large
        storage pack is never held in memory)."""
        stored = self._stored(self.members[name].size)
        return cast(BinaryIO, OpenedStream(super().member_stream(name), stored, self._key, name,
                                           self.display))


def _decrypted(data: bytes, key: bytes, name: str, display: str) -> bytes:
    with OpenedStream(io.BytesIO(data), len(data), key, name, display) as stream:
        return stream.read()


def sealed_ranged_reader(url: str, keys: Keyring | None) -> SealedRangedReader | SealedReader | None:
    """The ranged reader of the sealed archive at ``url``; when it must be read whole (no
    chunk offsets or storage offsets) the reader of the whole object, with the key already unwrapped
    (one passphrase prompt); None when the key member is too large for one head request
    (the caller reads it whole).

    :raises CannotDecrypt: nothing given opens it.
    :raises ArchiveCorrupt: the manifest, its digest or a member fails authentication.
    :raises NotAnArchive: no index or sealed manifest at the end (an interrupted upload).
    """
    head = head_members(url, (MARKER, KEY_MEMBER), HEAD_BYTES)
    if head is None:
        return None
    if check_marker(head[0], url) != SEALED_FORMAT_VERSION:
        raise NotAnArchive(f"{url}: its marker changed while it was read")
    check_scheme(json.loads(head[0]).get("sealed"), url)
    key = (keys or Keyring.from_environment()).unwrap(head[1], url)
    names = hidden_name(key, MANIFEST), hidden_name(key, MANIFEST_DIGEST)

    def find(tail: bytes, base: int) -> tuple[bytes, bytes] | None:
        index = last_pair(tail, base, INDEX, INDEX_DIGEST)
        if index is None:
            return None
        sealed = last_pair(tail, base, *names, end=index[2])
        return None if sealed is None else (sealed[0], sealed[1])

    found = search_tail(url, find)
    if found is None:
        raise NotAnArchive(f"{url}: no sealed manifest and index at the end of the archive (an "
                           "interrupted upload, or not a whole dbcrate archive)")
    manifest = checked_manifest(_decrypted(found[0], key, MANIFEST, url),
                                _decrypted(found[1], key, MANIFEST_DIGEST, url), url)
    if manifest.format_version == SEALED_FORMAT_VERSION:
        raise NotAnArchive(f"{url}: a sealed manifest says format {manifest.format_version}")
    if not has_offsets(manifest):
        from dbcrate.containers.tar import ArchiveReader

        raw = ArchiveReader(url)  # the whole object, into a private temp file
        try:
            return SealedReader(raw, keys or Keyring.from_environment(), key=key)
        except BaseException:
            raw.close()
            raise
    return SealedRangedReader(url, manifest, object_size(url), key,
                              recipient_kinds(head[1], url))
