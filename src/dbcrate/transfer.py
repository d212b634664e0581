"""``copy``: one database into another, without an archive the user keeps.

A copy is a dump and a restore run back to back through a *spool*: an archive of the
directory kind (Arrow IPC members, zstd level 1: the quickest to write and read) in a
temporary directory. It therefore has everything the two have, with no second code path to
keep exact: one snapshot of the source, the same table selection, the restore's checks before
anything is written (a value another engine cannot hold is refused, the target untouched),
its modes, its index and constraint phases, its report and warnings, and ``--resume``.

The spool is removed when the restore succeeds (or when the copy is only a ``dry_run``).
When the restore fails or is interrupted, the spool is kept and its path is in the error's
hint: ``copy`` with the same ``spool`` and ``resume=True`` (or ``dbcrate restore SPOOL
TARGET --resume``) finishes the work from the same snapshot without reading the source again.
A spool that holds a finished archive is restored as it is with ``resume=True`` (the
source is not read) and refused without it; a directory that is not a spool is refused (a
copy writes only into its own).

The spool takes the disk space of the compressed data (about the size of ``pg_dump -Fc``'s
output) in ``spool_dir`` (default: the system's temporary directory, ``TMPDIR``).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dbcrate.errors import DbcrateError, OutputError, UsageError
from dbcrate.options import DumpOptions, RestoreOptions
from dbcrate.progress import Event, drain

if TYPE_CHECKING:
    from dbcrate.dump.run import DumpResult
    from dbcrate.restore.report import RestoreReport

#: the spool's data format and zstd level: the quickest to write and to read back
SPOOL_FORMAT = "arrow"
SPOOL_LEVEL = 1
#: the file that marks a spool directory as dbcrate's (written before the dump starts)
SPOOL_MARK = ".dbcrate-spool"


@dataclass
class CopyResult:
    """What a copy did: the dump into the spool (None when a kept spool was reused), the
    restore's report, and the spool's path if it was kept (else None)."""

    dump: DumpResult | None
    report: RestoreReport
    spool: str | None


def copy(source: str, target: str, dump_options: DumpOptions | None = None,
         restore_options: RestoreOptions | None = None, *, spool: str | None = None,
         keep_spool: bool | None = None, spool_dir: str | None = None) -> CopyResult:
    """Copy the database at ``source`` into ``target``; see :func:`iter_copy`."""
    return drain(iter_copy(source, target, dump_options, restore_options, spool=spool,
                           keep_spool=keep_spool, spool_dir=spool_dir))


def iter_copy(source: str, target: str, dump_options: DumpOptions | None = None,
              restore_options: RestoreOptions | None = None, *, spool: str | None = None,
              keep_spool: bool | None = None,
              spool_dir: str | None = None) -> Generator[Event, None, CopyResult]:
    """Dump ``source`` into a spool and restore it into ``target``, yielding the progress
    events of both; returns the :class:`CopyResult`.

    ``dump_options`` choose what is read (tables, schemas, jobs ...; the container, format and
    compression are the spool's own); ``restore_options`` how it is written (mode, clean,
    create, resume ...). ``spool``: the spool's path (default: a new directory under
    ``spool_dir``). ``keep_spool``: keep it after a successful restore (default: when
    ``spool`` is given); after a failed or interrupted restore it is always kept.

    :raises UsageError: ``spool`` exists and is not a spool (nothing is read).
    :raises DbcrateError: what the dump or the restore raises; when the restore fails after the
        dump finished, the hint names the kept spool and how to continue from it.
    """
    from dbcrate.dump.run import iter_dump
    from dbcrate.restore.run import iter_restore

    restore_options = restore_options or RestoreOptions()
    dump_options = dataclasses.replace(
        dump_options or DumpOptions(), container="directory", data_format=SPOOL_FORMAT,
        compression_level=SPOOL_LEVEL, storages=[], no_storages=True, archive_mode=0o600)
    keep = spool is not None if keep_spool is None else keep_spool
    if spool is None:
        holder = Path(tempfile.mkdtemp(prefix="dbcrate-copy-", dir=spool_dir))
        (holder / SPOOL_MARK).touch(mode=0o600)
    else:
        holder = _own_spool(Path(spool))
    archive = holder / "archive"
    dumped: DumpResult | None = None
    if _finished_spool(holder) and not restore_options.resume:
        raise UsageError(f"the spool {holder} holds a finished read of a source already",
                         hint="add --resume to restore it (the source is not read again), or "
                         "give a new --spool path to read the source anew")
    try:
        if not _finished_spool(holder):
            dumped = yield from iter_dump(source, archive, dump_options)
        report = yield from iter_restore(str(archive), target, restore_options)
    except BaseException as exc:
        if _finished_spool(holder) and not restore_options.dry_run:
            keep = True  # the snapshot is read: a rerun continues from it
            if isinstance(exc, DbcrateError):
                exc.hint = (f"{exc.hint}; " if exc.hint else "") + resume_hint(holder)
        if not keep:
            shutil.rmtree(holder, ignore_errors=True)
        raise
    if not report.ok and not restore_options.dry_run:
        keep = True
    if not keep:
        shutil.rmtree(holder, ignore_errors=True)
    return CopyResult(dumped, report, str(holder) if keep else None)


def _own_spool(path: Path) -> Path:
    """``path`` as a spool: created (mode 0700, with the spool mark) when it does not exist,
    taken when it holds the mark, refused otherwise (a copy never writes into a directory
    that is not its own)."""
    if not path.exists():
        try:
            path.mkdir(mode=0o700, parents=True)
            (path / SPOOL_MARK).touch(mode=0o600)
        except OSError as exc:
            raise OutputError(f"cannot create the spool {path}: {exc.strerror}",
                              hint="give --spool a path in a writable directory") from None
    elif not (path / SPOOL_MARK).is_file():
        raise UsageError(f"--spool {path} exists and is not a copy spool",
                         hint="give copy a new --spool path (it is created), or the spool that "
                         "an earlier copy kept")
    return path


def resume_hint(spool: str | Path) -> str:
    """What to do with a spool kept after a failed or interrupted restore."""
    return (f"the source's rows are kept in {spool}: dbcrate copy --spool {spool} --resume "
            f"(same target) continues from them without reading the source")


def finished_spool(spool: str | Path) -> bool:
    """Whether ``spool`` holds an archive that a copy finished dumping (the directory kind
    appears under its name only when complete)."""
    return _finished_spool(Path(spool))


def _finished_spool(spool: Path) -> bool:
    """Whether ``spool`` holds an archive that a copy finished dumping (the directory kind
    appears under its name only when complete)."""
    return (spool / SPOOL_MARK).is_file() and (spool / "archive" / "manifest.json").is_file()
