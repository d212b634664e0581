"""A data member encoded straight into a directory archive by the thread that reads its rows.

A dump encodes each chunk into a private temp file and the runner then appends that file to
the archive, in order (a tar is one stream). A ``directory`` archive keeps no order, so its
chunks skip the second copy: the reading thread writes the chunk into a file inside the
archive's own temp directory, hashing it as it goes (in parallel with the other readers), and
the runner only renames it to its member name (:meth:`ChunkFile.adopt`). Measured on the
benchmark's scale-1 data, the runner's copy of every chunk (read back, hashed, written again,
fsynced) held ``copy``'s restore back about 3 s behind the read (docs/PERFORMANCE.md).

A chunk that is not adopted (a failed or cancelled task) is removed by :meth:`ChunkFile.close`;
an abort removes the archive's temp directory with whatever is left in it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from pathlib import Path
from typing import IO, Any

from dbcrate.atomic import create_private_file, write_failed
from dbcrate.containers.base import HashingSink
from dbcrate.containers.tar import COPY_BUFFER

#: the directory, inside an archive's temp directory, where chunks are encoded before they
#: get their member names (removed before the archive is committed)
PENDING_DIR = ".pending"
_numbers = itertools.count()


class ChunkFile(io.RawIOBase):
    """A write-only private file (0600) in ``folder`` that counts and hashes what it is given.

    :param durable: fsync the file when it is finished (an archive the user keeps); a
        ``copy``'s spool, removed once read, is not.
    :param output: how errors name the archive: an ``OSError`` while writing (a full disk)
        is the :class:`~dbcrate.errors.OutputError` every kind gives (exit 12), raised in
        the reading thread.
    """

    def __init__(self, folder: Path, *, durable: bool = True, output: object = None) -> None:
        super().__init__()
        self.path = folder / f"chunk-{os.getpid()}-{next(_numbers)}"
        self._output = output if output is not None else folder
        self._handle: IO[bytes] | None = os.fdopen(create_private_file(self.path), "wb",
                                                   buffering=COPY_BUFFER)
        # (hashing releases the GIL for large blocks: the readers hash in parallel)
        self._sink = HashingSink(self._handle)
        self._durable = durable
        self.digest = ""
        self._adopted = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        assert self._handle is not None, "write after finish"
        try:
            return self._sink.write(data)
        except OSError as exc:
            raise write_failed(self._output, exc) from None

    @property
    def count(self) -> int:
        """The bytes written."""
        return self._sink.count

    def tell(self) -> int:
        return self._sink.count

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def finish(self) -> None:
        """Every byte is written: flush (fsync when durable) and close the file; its size is
        :attr:`count`, its SHA-256 :attr:`digest`."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            try:
                handle.flush()
                if self._durable:
                    os.fsync(handle.fileno())
            finally:
                handle.close()
        except OSError as exc:
            raise write_failed(self._output, exc) from None
        self.digest = self._sink.sha.hexdigest()

    def adopt(self, target: Path) -> str:
        """Give the finished file its member path (a new name in the same archive directory);
        returns its SHA-256."""
        assert self._handle is None and self.digest, "adopt before finish"
        if target.exists() or target.is_symlink():
            raise ValueError(f"member {target} exists already")
        os.rename(self.path, target)
        self._adopted = True
        return self.digest

    def close(self) -> None:
        """Close the file; remove it unless it was adopted."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            with contextlib.suppress(OSError):  # (a failed chunk: its buffered rest is lost)
                handle.close()
        if not self._adopted:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        super().close()
