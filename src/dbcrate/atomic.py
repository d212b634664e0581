"""Making outputs appear atomically: private temp files and directories beside the final name.

Every container kind is written under a temporary name in the destination directory
(``.<final name>.dbcrate-tmp-<12 hex digits>``), created private (0600 files, 0700
directories, whatever the umask, ``O_EXCL|O_NOFOLLOW`` so that a planted link is never
followed), fsynced, and only then renamed to the final name, and the parent directory is
fsynced. A crash or an error therefore never leaves a half-written output under the final name.

A directory output replaces an existing directory only when asked (``overwrite``) and only
when that directory is itself a dbcrate dump: an ``--overwrite`` pointed at the wrong place
must not delete someone's home directory.

A name dbcrate chose itself (:class:`AutoName`: ``dump URL DIR/``) never replaces anything:
the finished output is moved there with a rename that fails when the name exists
(:func:`rename_noreplace`), and the next name (``-2``, ``-3``, ...) is tried, so two dumps of
databases with the same name in the same second, even two processes racing, both keep their
archive.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dbcrate.errors import OutputError

#: names whose presence marks a directory as a dbcrate dump (directory or python kind)
DUMP_DIRECTORY_MARKS = ("dbcrate-archive.json", "manifest.json")


def temp_name(final: Path, what: str = "tmp") -> Path:
    """A fresh hidden name beside ``final`` (never an existing one: callers create it with
    ``O_EXCL`` or ``mkdir``)."""
    return final.parent / f".{final.name}.dbcrate-{what}-{secrets.token_hex(6)}"


def check_parent(final: Path) -> None:
    """Refuse an output whose directory does not exist."""
    parent = final.parent
    if not parent.is_dir():
        raise OutputError(
            f"the output directory {parent} does not exist",
            hint="create it first or choose another path",
        )


def create_private_file(path: Path, *, dir_fd: int | None = None) -> int:
    """Create ``path`` exclusively, mode 0600 whatever the umask; returns a write descriptor.

    :raises OutputError: the name exists (even as a link) or the directory is not writable.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                     dir_fd=dir_fd)
    except OSError as exc:
        raise OutputError(
            f"cannot create {path}: {exc.strerror}", hint="check that the directory is writable"
        ) from None
    os.fchmod(fd, 0o600)
    return fd


def write_failed(path: object, exc: OSError, doing: str = "write") -> OutputError:
    """The error (exit 12) for an ``OSError`` while writing the output ``path``, worded like
    every kind's (``cannot write PATH: [Errno 28] No space left on device``), with a hint for
    the usual causes."""
    hints = {
        errno.ENOSPC: "free space on the output's filesystem, or write the archive elsewhere",
        errno.EDQUOT: "the disk quota is exhausted: free space or write the archive elsewhere",
        errno.EPIPE: "the program reading standard output stopped before the archive was "
                     "complete",
        errno.EACCES: "check that the output directory is writable",
        errno.EROFS: "the output's filesystem is read-only; write the archive elsewhere",
    }
    return OutputError(f"cannot {doing} {path}: {exc}", hint=hints.get(exc.errno or 0))


def fsync_path(path: Path) -> None:
    """fsync a file or directory by name (directories: so that a rename is durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def looks_like_dump(path: Path) -> bool:
    """Whether the directory ``path`` is a dbcrate dump (directory or python kind)."""
    return any((path / mark).is_file() for mark in DUMP_DIRECTORY_MARKS)


def check_directory_target(final: Path, overwrite: bool) -> None:
    """Refuse a directory output that would clobber something.

    Accepted: a missing name, an empty directory, or (with ``overwrite``) a directory that is
    a dbcrate dump. Refused: a link, a file, a non-empty directory without ``overwrite``, and
    any other non-empty directory even with it.

    :raises OutputError: saying why and what to do.
    """
    check_parent(final)
    try:
        info = final.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(f"the output {final} is a symbolic link; it is not followed",
                          hint="give the path of a new directory")
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"the output {final} exists and is not a directory",
                          hint="give the path of a new directory")
    if not any(final.iterdir()):
        return
    if not overwrite:
        raise OutputError(f"the output directory {final} exists and is not empty",
                          hint="add --overwrite (overwrite=True) to replace it, or choose a new path")
    if not looks_like_dump(final):
        raise OutputError(
            f"refusing to replace {final}: it is not a dbcrate dump directory "
            "(no dbcrate-archive.json or manifest.json in it)",
            hint="--overwrite only replaces an earlier dump; choose a new path",
        )


class AtomicDirectory:
    """A private temp directory beside ``final`` that becomes ``final`` on :meth:`commit`.

    :param final: the output directory.
    :param overwrite: replace an existing dump directory there (see
        :func:`check_directory_target`).
    """

    def __init__(self, final: str | os.PathLike[str], overwrite: bool) -> None:
        self.final = Path(final)
        self.overwrite = overwrite
        check_directory_target(self.final, overwrite)
        self.tmp = temp_name(self.final)
        try:
            os.mkdir(self.tmp, 0o700)
            os.chmod(self.tmp, 0o700)  # whatever the umask
        except OSError as exc:
            raise OutputError(f"cannot create {self.tmp}: {exc.strerror}",
                              hint="check that the directory is writable") from None
        self._done = False

    def make_dirs(self, relative: str) -> Path:
        """Create (0700) the directories of a relative path inside the temp directory."""
        target = self.tmp
        for part in Path(relative).parts:
            target = target / part
            try:
                os.mkdir(target, 0o700)
                os.chmod(target, 0o700)
            except FileExistsError:
                if not stat.S_ISDIR(target.lstat().st_mode):
                    raise OutputError(f"{target} exists and is not a directory") from None
        return target

    def commit(self) -> None:
        """fsync every directory, then move the temp directory to the final name.

        An existing dump directory (``overwrite``) is moved aside first and removed after the
        new one is in place: the final name holds the old dump or the new one, never a mix.
        """
        try:
            for root, dirs, _files in os.walk(self.tmp, topdown=False):
                for name in dirs:
                    fsync_path(Path(root) / name)
            fsync_path(self.tmp)
            check_directory_target(self.final, self.overwrite)  # again: it may have changed
            old: Path | None = None
            if self.final.is_dir() and any(self.final.iterdir()):
                old = temp_name(self.final, "old")
                os.rename(self.final, old)
            try:
                os.rename(self.tmp, self.final)  # also replaces an empty directory
            except OSError:
                if old is not None:
                    os.rename(old, self.final)
                raise
            fsync_path(self.final.parent)
            self._done = True
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            raise write_failed(self.final, exc, "finish") from None

    def abort(self) -> None:
        """Remove the temp directory (the final name is never touched)."""
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                shutil.rmtree(self.tmp)


class AutoName(os.PathLike[str]):
    """An output name dbcrate chose (``dump URL DIR/``: ``<database>_<UTC>...crate``), which must
    never replace an existing file or directory.

    Writers that know it publish the finished output with :func:`publish_noreplace`: the first
    free name among ``first``, ``<stem>-2<suffix>``, ``<stem>-3<suffix>``, ... is taken, and
    :attr:`path` (also what ``str()`` and ``os.fspath()`` give) becomes the name written. Until
    then it is ``first``, so code that only needs a path (messages, checks) can use it as one.

    :param first: the preferred name.
    :param suffix: the extension kept at the end of every candidate (``.crate``, ``.sqlite``,
        or ``""``).
    """

    #: candidates tried before giving up (a directory with 1,000 dumps of one second is broken)
    MAX_TRIES = 1000

    def __init__(self, first: Path, suffix: str = "") -> None:
        self.first = first
        self.suffix = suffix if suffix and first.name.endswith(suffix) else ""
        self.path = first

    def candidates(self) -> Iterator[Path]:
        """``first``, then the same name with ``-2``, ``-3``, ... before the suffix."""
        stem = self.first.name[: len(self.first.name) - len(self.suffix)]
        yield self.first
        for number in range(2, self.MAX_TRIES + 1):
            yield self.first.parent / f"{stem}-{number}{self.suffix}"

    @property
    def moved(self) -> bool:
        """Whether the output went to another name than ``first`` (it was taken)."""
        return self.path != self.first

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"AutoName({str(self.path)!r})"


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _load_renameat2() -> Callable[..., int] | None:
    """Linux's ``renameat2`` from the C library (glibc 2.28+), or ``None`` where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Any = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


#: ``renameat2`` or ``None`` (then :func:`rename_noreplace` links, or claims with ``mkdir``)
RENAMEAT2 = _load_renameat2()


def rename_noreplace(src: Path, dst: Path) -> None:
    """Move ``src`` (a file or a directory) to ``dst`` atomically, only if ``dst`` does not
    exist: two processes racing for one name cannot both get it, and neither replaces the
    other's output.

    ``renameat2(RENAME_NOREPLACE)`` where the kernel and the filesystem have it; otherwise a
    file is hard-linked to ``dst`` (``link`` never replaces) and then unlinked, and a directory
    claims ``dst`` with ``mkdir`` (which never replaces) and is then renamed over that empty
    directory of its own.

    :raises FileExistsError: ``dst`` exists (nothing was moved).
    :raises OSError: the move failed otherwise (nothing was moved).
    """
    if RENAMEAT2 is not None:
        if RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                     _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        # EINVAL/ENOSYS/ENOTSUP: this kernel or filesystem cannot; fall back below
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
    if stat.S_ISDIR(src.lstat().st_mode):
        os.mkdir(dst, 0o700)
        try:
            os.rename(src, dst)  # replaces the empty directory this call just made
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            raise
        return
    os.link(src, dst, follow_symlinks=False)
    os.unlink(src)


def publish_noreplace(src: Path, name: AutoName) -> Path:
    """Move the finished output ``src`` to the first free candidate of ``name``, fsync the
    directory, and return the name written (also ``name.path`` from now on).

    :raises OutputError: every candidate is taken, or the move failed (``src`` stays).
    """
    for candidate in name.candidates():
        try:
            rename_noreplace(src, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_failed(candidate, exc, "finish") from None
        name.path = candidate
        try:
            fsync_path(candidate.parent)
        except OSError as exc:
            raise write_failed(candidate, exc, "finish") from None
        return candidate
    raise OutputError(
        f"cannot name the archive: {name.first} and {name.MAX_TRIES - 1} numbered variants of "
        "it exist already", hint="give the archive a file name, or clean up the directory")
