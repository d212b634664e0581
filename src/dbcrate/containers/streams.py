"""Byte streams the containers share: a reader that hashes what passes through it, and a
window of a file read by position."""

from __future__ import annotations

import hashlib
import io
import os
from typing import IO

from dbcrate.errors import ArchiveCorrupt


class HashingReader(io.RawIOBase):
    """Reads from ``source`` and hashes what passes through."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class WindowStream(io.RawIOBase):
    """A seekable, read-only stream of ``size`` bytes: position, ``seek`` and ``tell``
    (subclasses implement ``readinto`` from ``_pos``)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move within the stream (clamped to its bounds, as a file of that size reads)."""
        if whence not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END):
            raise ValueError(f"invalid whence {whence}")
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos


class RangeStream(WindowStream):
    """The bytes ``[start, start + size)`` of an open file descriptor, as a seekable read-only
    stream of their own. Reads are positional (``preadv``), so several streams over one file
    never disturb each other. Closing the stream closes the descriptor.

    :raises ArchiveCorrupt: when the file ends before ``start + size`` (truncated).
    """

    def __init__(self, fd: int, start: int, size: int) -> None:
        super().__init__(size)
        self._fd = fd
        self._start = start

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        got = os.preadv(self._fd, [memoryview(buffer)[:want]], self._start + self._pos)
        if got == 0:
            raise ArchiveCorrupt("the archive is truncated inside a member", member=None)
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def check_stream_sha256(stream: IO[bytes], sha256: str, display: str, name: str,
                        block: int = 1024 * 1024) -> None:
    """Hash ``stream`` to its end and compare with ``sha256``: :class:`ArchiveCorrupt` naming
    the member ``name`` of ``display`` when they differ."""
    sha = hashlib.sha256()
    while chunk := stream.read(block):
        sha.update(chunk)
    if sha.hexdigest() != sha256:
        raise ArchiveCorrupt(f"{display}: member {name} does not match its SHA-256", member=name)
