"""``copy``: one database into another, without an archive the user keeps.

A copy is a dump and a restore through a *spool*: an archive of the directory kind (Arrow IPC
members, zstd level 1: the quickest to write and read) in a temporary directory. It therefore
has everything the two have, with no second code path to keep exact: one snapshot of the
source, the same table selection, the restore's checks before anything is written (a value
another engine cannot hold is refused, the target untouched), its modes, its index and
constraint phases, its report and warnings, and ``--resume``.

The two run at the same time (:func:`streams`): the dump in a thread of its own
(:class:`~dbcrate.dump.background.BackgroundDump`), the restore loading each table from its
first chunk the dump has written, taking the next ones as they are written
(:class:`~dbcrate.containers.live.LiveArchive`), while the rest is still being read - as
pgcopydb does, through the spool. Where the restore checks every
value before it writes (another engine, into existing tables), its preflight waits for the
whole read first, so nothing is written before every value passed (into a SQLite file the
restore makes, the tables load while the values are checked, and a refused value removes the
file: :attr:`~dbcrate.restore.plan.Settings.checks_with_loads`). A copy that replaces what
the target has (``clean``) reads the whole source before it touches the target (a source that
cannot be read to the end must not cost the target its tables), and a ``dry_run`` reads it
before checking. When the source cannot be read to the end, the tables restored before that
are named in the error.

The spool is removed when the restore succeeds (or when the copy is only a ``dry_run``).
When the restore fails or is interrupted, the spool is kept and its path is in the error's
hint: ``copy`` with the same ``spool`` and ``resume=True`` finishes the work from the same
snapshot without reading the source again (it continues the journal the first restore kept,
under the id in the spool's ``.dbcrate-journal-id``).
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

#: the spool's data format and zstd level: the quickest to write and to read back (between
#: two databases of one engine with rows of its own, those: :func:`spool_format`)
SPOOL_FORMAT = "arrow"
SPOOL_LEVEL = 1
#: the zstd level of a spool of an engine's own rows: zstd's fastest (its minimum level: the
#: frame holds the text in raw blocks), for the CPU a copy otherwise spends compressing text
#: that is read back at once; level -50 still saved only 2-15 % of the bytes, at 1.1 GB/s
#: against 1.8 GB/s (docs/PERFORMANCE.md)
SPOOL_TEXT_LEVEL = -131072
#: the file that marks a spool directory as dbcrate's (written before the dump starts)
SPOOL_MARK = ".dbcrate-spool"
#: the id a restore that ran while the spool was written kept its journal under (``resume``
#: continues that journal; the finished spool's manifest has other bytes than the live one)
SPOOL_JOURNAL = ".dbcrate-journal-id"


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


def spool_format(source: str, target: str) -> str:
    """The spool's data format: the source engine's own rows (PostgreSQL's COPY text) when the
    target's engine loads them as they are - nothing is parsed or encoded on the way, as with
    pgcopydb - else Arrow IPC."""
    from dbcrate.connect import parse_url
    from dbcrate.dialects import dialect_class

    own = dialect_class(parse_url(source).get_backend_name()).native_rows
    theirs = dialect_class(parse_url(target).get_backend_name()).native_rows
    return own if own is not None and own == theirs else SPOOL_FORMAT


def _spool_options(options: DumpOptions, source: str, target: str) -> DumpOptions:
    """The dump's options, with the spool's container, format and level; no storages; no
    fsync (the spool is read at once and removed: a crash loses the copy either way, and
    ``resume`` continues after a failed restore, not after a lost disk)."""
    data_format = spool_format(source, target)
    return dataclasses.replace(
        options, container="directory", data_format=data_format,
        compression_level=SPOOL_LEVEL if data_format == SPOOL_FORMAT else SPOOL_TEXT_LEVEL,
        storages=[], no_storages=True, archive_mode=0o600, durable=False)


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
    dump_options = _spool_options(dump_options or DumpOptions(), source, target)
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
        if _finished_spool(holder):
            report = yield from _restore_spool(holder, target, restore_options)
        elif streams(restore_options):
            dumped, report = yield from _streamed(source, target, dump_options, restore_options,
                                                  holder)
        else:
            # (a journal id that an earlier streamed run left is another snapshot's)
            (holder / SPOOL_JOURNAL).unlink(missing_ok=True)
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


def streams(options: RestoreOptions) -> bool:
    """Whether a copy with these restore options restores tables while the source is read:
    not a dry run (it checks, after the whole read) and not ``clean`` (nothing of the target is
    replaced before the whole source is read)."""
    return not options.dry_run and not options.clean


def _streamed(source: str, target: str, dump_options: DumpOptions,
              restore_options: RestoreOptions,
              holder: Path) -> Generator[Event, None, tuple[DumpResult, RestoreReport]]:
    """The dump in a thread into the spool, the restore from it as tables are written."""
    from dbcrate.dump.background import BackgroundDump
    from dbcrate.restore.run import iter_restore

    (holder / SPOOL_JOURNAL).unlink(missing_ok=True)  # (another snapshot's, if any)
    background = BackgroundDump(source, holder / "archive", dump_options)
    background.start()
    restored: list[str] = []  # the tables whose rows are in, as the restore reports them
    try:
        live = yield from background.wait_opened()
        (holder / SPOOL_JOURNAL).write_text(live.journal_id, encoding="ascii")
        # the spool's members are this dump's own, hashed as they were written: no re-hash
        report = yield from _noting_restored(
            iter_restore(live, target, dataclasses.replace(restore_options, verify=False)),
            restored)
    except DbcrateError:
        # the restore refused or failed: the read goes on to its end, so that the spool
        # holds the whole snapshot and --resume can continue from it (as before streaming)
        try:
            background.join()
        except KeyboardInterrupt:
            background.stop()
            raise
        except BaseException:  # noqa: S110 (the restore's error is the one to report)
            pass
        raise
    except BaseException as exc:  # Ctrl-C, or the caller gave up: the read stops now
        background.stop()
        from dbcrate.connect import new_sqlite_file

        gone = new_sqlite_file(target) is not None  # (a file the restore made, then removed)
        exc.add_note("the target file is not there: nothing was kept" if gone else
                     _written_before(restored, native=False, stopped="read was interrupted"))
        raise
    finally:
        if background.archive is not None:  # (opened by the dump, even if not returned)
            background.archive.close()
    try:
        dumped = background.join()
    except DbcrateError as exc:
        written = [r.name for r in report.tables if r.status == "restored"]
        note = _written_before(written, native=(report.plan or {}).get("ddl") == "native",
                               stopped="read stopped")
        exc.hint = (f"{exc.hint}; " if exc.hint else "") + note
        raise
    return dumped, report


def _noting_restored(restore: Generator[Event, None, RestoreReport],
                     restored: list[str]) -> Generator[Event, None, RestoreReport]:
    """The restore's events, passed on; each table whose rows are in is added to
    ``restored`` (its load's last event: "Restore table t", not "Failed table t")."""
    while True:
        try:
            event = next(restore)
        except StopIteration as done:
            result: RestoreReport = done.value
            return result
        if event.phase == "data" and event.finished and event.table \
                and not event.description.startswith("Failed"):
            restored.append(event.table)
        try:
            yield event
        except BaseException as exc:  # thrown in here (Ctrl-C, the caller gave up): the
            try:  # restore ends now, its sessions and files settled, before the note
                restore.close()
            except Exception as inner:  # (the first error is the one to report)
                exc.add_note(f"ending the restore also failed: {inner}")
            raise


def _written_before(done: list[str], *, native: bool, stopped: str) -> str:
    """What the target holds after a copy that stopped halfway (nothing silent)."""
    schema = ("the target's schema was created before the rows (every object of the native "
              "schema)" if native else "")
    if not done:
        rows = "no table's rows were copied"
        return f"{schema}; {rows}" if schema else f"{rows}: nothing was written into the target's tables"
    shown = ", ".join(done[:20]) + (f" and {len(done) - 20} more" if len(done) > 20 else "")
    tables = "table" if len(done) == 1 else "tables"
    holds = (f"the target holds the {len(done)} {tables} copied before the {stopped} ({shown}); "
             "copy again with --clean to replace them")
    return f"{schema}; {holds}" if schema else holds


def _restore_spool(holder: Path, target: str,
                   options: RestoreOptions) -> Generator[Event, None, RestoreReport]:
    """Restore a finished spool (``resume``), continuing the journal of the restore that ran
    while it was written, if one did."""
    from dbcrate.containers.archive import Archive
    from dbcrate.restore.run import iter_restore

    with Archive(holder / "archive") as arch:
        journal = holder / SPOOL_JOURNAL
        if journal.is_file():
            arch.journal_id = journal.read_text(encoding="ascii").strip()
        return (yield from iter_restore(arch, target, options))


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
