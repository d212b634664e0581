"""One member's bytes in authenticated segments (age's STREAM construction).

A sealed member is ``salt (16 bytes) || segment_0 || ... || segment_n``. Its key is
HKDF-SHA256 of the archive key with the salt, bound to the member's plaintext name (a member
moved under another name does not decrypt). Each segment is ChaCha20-Poly1305 of 64 KiB of
plaintext (the last one may be shorter, and is empty only for an empty member) under the nonce
``counter (11 bytes, big-endian) || last (1 byte: 1 for the last segment, else 0)``, so that a
segment cut off, reordered or dropped fails authentication, and so does a member cut at a
segment boundary. The ciphertext size follows from the plaintext size
(:func:`sealed_size`), so a tar header can state it before anything is encrypted, and a segment
is found by arithmetic: a member can be read from any offset without decrypting what precedes.
"""

from __future__ import annotations

import io
import os
from typing import IO

from dbcrate.containers.streams import WindowStream
from dbcrate.errors import ArchiveCorrupt

SALT = 16
SEGMENT = 64 * 1024
TAG = 16
KEY_BYTES = 32


def member_key(archive_key: bytes, salt: bytes, name: str) -> bytes:
    """The key of the member ``name`` (HKDF-SHA256, salt, info ``dbcrate member`` + name)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    info = b"dbcrate member\x00" + name.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(archive_key)


def segment_count(size: int) -> int:
    """How many segments hold ``size`` bytes of plaintext (one, empty, for an empty member)."""
    return max(1, -(-size // SEGMENT))


def sealed_size(size: int) -> int:
    """The ciphertext size of ``size`` bytes of plaintext."""
    return SALT + size + TAG * segment_count(size)


def plain_size(sealed: int) -> int:
    """The plaintext size of a member of ``sealed`` bytes (inverse of :func:`sealed_size`).

    :raises ValueError: no plaintext size seals to ``sealed`` bytes.
    """
    body = sealed - SALT
    full, rest = divmod(body, SEGMENT + TAG)
    size = full * SEGMENT + (rest - TAG if rest else 0)
    if body < TAG or 0 < rest < TAG or sealed_size(size) != sealed:
        raise ValueError(f"{sealed} bytes is not the size of a sealed member")
    return size


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class SealingReader(io.RawIOBase):
    """Reads ``size`` bytes of plaintext from ``source`` and gives their ciphertext, segment
    by segment (one segment of plaintext held at a time)."""

    def __init__(self, source: IO[bytes], size: int, archive_key: bytes, name: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        salt = os.urandom(SALT)
        self._aead = ChaCha20Poly1305(member_key(archive_key, salt, name))
        self._source = source
        self._left = size
        self._segments = segment_count(size)
        self._counter = 0
        self._pending = memoryview(salt)

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes:
        want = min(SEGMENT, self._left)
        plain = _read_exactly(self._source, want)
        self._left -= want
        last = self._counter == self._segments - 1
        sealed = self._aead.encrypt(_nonce(self._counter, last), plain, None)
        self._counter += 1
        return sealed

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` whole unless the ciphertext ends first (tarfile's copy takes a
        short read for the end of its data)."""
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                if self._counter == self._segments:
                    break
                self._pending = memoryview(self._next())
            n = min(len(buffer) - filled, len(self._pending))
            buffer[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled


def _read_exactly(source: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left:
        block = source.read(left)
        if not block:
            raise OSError(f"the source ended {left} bytes early")
        parts.append(block)
        left -= len(block)
    return b"".join(parts)


class OpenedStream(WindowStream):
    """The plaintext of a sealed member, as a seekable read-only stream over a stream of its
    ciphertext (which it closes when closed). A segment is decrypted when a read reaches it
    and kept until the next one, so reading from any offset costs one segment.

    :raises ArchiveCorrupt: (on read) a segment that fails authentication: tampered, cut
        short, reordered, moved from another member, or sealed with another key.
    """

    def __init__(self, sealed: IO[bytes], sealed_bytes: int, archive_key: bytes, name: str,
                 display: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        self._sealed = sealed
        self._name, self._display = name, display
        try:
            super().__init__(plain_size(sealed_bytes))
        except ValueError:
            raise self._corrupt("has a size no sealed member has (cut short?)") from None
        salt = _read_exactly_or(sealed, SALT, self._corrupt("is cut short"))
        self._aead = ChaCha20Poly1305(member_key(archive_key, salt, name))
        self._segments = segment_count(self._size)
        self._cached: tuple[int, bytes] | None = None

    def _corrupt(self, what: str) -> ArchiveCorrupt:
        return ArchiveCorrupt(f"{self._display}: sealed member {self._name} {what}",
                              member=self._name,
                              hint="the archive was altered or damaged after it was written; "
                              "use another copy")

    def segment(self, index: int) -> bytes:
        """The plaintext of segment ``index``, authenticated."""
        from cryptography.exceptions import InvalidTag

        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        last = index == self._segments - 1
        plain_len = self._size - index * SEGMENT if last else SEGMENT
        self._sealed.seek(SALT + index * (SEGMENT + TAG))
        sealed = _read_exactly_or(self._sealed, plain_len + TAG, self._corrupt("is cut short"))
        try:
            plain = self._aead.decrypt(_nonce(index, last), sealed, None)
        except InvalidTag:
            raise self._corrupt(f"fails authentication in segment {index}") from None
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` whole unless the member ends first (Arrow's file reader takes a
        short read for the end)."""
        if self._size == 0:  # an empty member is still one authenticated (empty) segment
            self.segment(0)
        filled = 0
        while filled < len(buffer) and self._pos < self._size:
            index, within = divmod(self._pos, SEGMENT)
            plain = self.segment(index)
            n = min(len(buffer) - filled, len(plain) - within)
            buffer[filled:filled + n] = plain[within:within + n]
            self._pos += n
            filled += n
        return filled

    def read_all_into(self, target: memoryview) -> None:
        """Decrypt every segment into ``target`` (exactly the plaintext size), checking each."""
        for index in range(self._segments):
            plain = self.segment(index)
            target[index * SEGMENT:index * SEGMENT + len(plain)] = plain
        self._cached = None

    @property
    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if not self.closed:
            self._sealed.close()
        super().close()


def _read_exactly_or(source: IO[bytes], size: int, error: Exception) -> bytes:
    try:
        return _read_exactly(source, size)
    except OSError:
        raise error from None
