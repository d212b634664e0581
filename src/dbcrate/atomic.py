"""Making outputs appear atomically: private temp files and directories beside the final name.

Every container kind is written under a temporary name in the destination directory
(``.<final name>.dbcrate-tmp-<12 hex digits>``), created private (0600 files, 0700
directories, whatever the umask, ``O_EXCL|O_NOFOLLOW`` so that a planted link is never
followed), fsynced, and only then renamed to the final name, and the parent directory is
fsynced. A crash or an error therefore never leaves a half-written output under the final name.

A directory output replaces an existing directory only when asked (``overwrite``) and only
when that directory is itself a dbcrate dump: an ``--overwrite`` pointed at the wrong place
must not delete someone's home directory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from pathlib import Path

from .errors import OutputError

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
            raise OutputError(f"cannot finish {self.final}: {exc}") from None

    def abort(self) -> None:
        """Remove the temp directory (the final name is never touched)."""
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                shutil.rmtree(self.tmp)
