"""Where ``dbcrate dump`` writes, what it says it wrote, and standard output at the end.

Split from :mod:`dbcrate.cli` (which stays a thin layer of commands and the error boundary).

``dump URL OUTPUT`` (docs/CLI.md, "Where dump writes"):

- ``-``: a tar stream on standard output;
- a directory kind (``--as directory|python``): ``OUTPUT`` is the dump directory itself, with
  or without a trailing ``/`` (created, like ``pg_dump -Fd``; an existing one must be empty or,
  with ``--overwrite``, an earlier dump);
- a file kind (``--as tar|sqlite``) and an existing directory, or a path ending with ``/``
  (that directory is created, mode 0700, when it does not exist and its parent does): the
  archive is named ``<database>_<UTC>[_data][_storages].crate`` (``.sqlite``) inside it, and
  that name never replaces an existing file (:class:`dbcrate.atomic.AutoName`: ``-2``, ``-3``,
  ... when it is taken);
- any other path: that file, replaced when the new archive is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbcrate.cli.spelling import as_flags
from dbcrate.containers.traits import KIND_TRAITS
from dbcrate.errors import OutputError
from dbcrate.progress import human_bytes
from dbcrate.stores.objects import is_object_url

if TYPE_CHECKING:
    from rich.console import Console

    from dbcrate.atomic import AutoName
    from dbcrate.dump.run import DumpResult
    from dbcrate.restore.run import RestoreReport

#: the extension of an automatically named archive of each file kind
AUTO_SUFFIX = {"tar": ".crate", "sqlite": ".sqlite"}


@dataclass
class DumpTarget:
    """The resolved ``OUTPUT`` of a dump.

    :param output: what the writer gets: ``"-"``, a path, or an :class:`AutoName`.
    :param created: the directory made for it (``OUTPUT`` ended with ``/``), removed again by
        :meth:`discard` when the dump fails.
    """

    output: str | AutoName
    created: Path | None = None

    @property
    def to_stdout(self) -> bool:
        return self.output == "-"

    def discard(self) -> None:
        """Remove the directory made for a dump that failed (only while it is still empty)."""
        if self.created is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self.created)


def resolve_dump_output(output: str, kind: str, url: str, *, data: bool,
                        storages: bool) -> DumpTarget:
    """The dump target ``OUTPUT`` means for ``kind`` (see the module docstring).

    :raises OutputError: ``OUTPUT`` ends with ``/`` but is an existing file, or its parent
        directory does not exist, or the directory cannot be created.
    """
    if is_object_url(output) and output.endswith("/") and not KIND_TRAITS[kind].is_directory:
        # a bucket prefix: an automatic key under it, as in a local directory
        from dbcrate.dump.run import default_name
        from dbcrate.stores.objects import unused_key

        name = default_name(url, Path("."), data=data, storages=storages,
                            suffix=AUTO_SUFFIX.get(kind, ".crate")).name
        return DumpTarget(unused_key(output + name))
    if output == "-" or KIND_TRAITS[kind].is_directory or is_object_url(output):
        return DumpTarget(output)  # (an object URL: dbcrate.stores.objects checks it)
    path = Path(output)
    created = None
    if output.endswith(("/", os.sep)) and not path.is_dir():
        created = _make_output_directory(output, path)
    if not path.is_dir():
        return DumpTarget(output)
    from dbcrate.atomic import AutoName
    from dbcrate.dump.run import default_name  # imported when a dump runs: it loads the dump

    suffix = AUTO_SUFFIX.get(kind, "")
    first = default_name(url, path, data=data, storages=storages, suffix=suffix)
    return DumpTarget(AutoName(first, suffix), created)


def _make_output_directory(output: str, path: Path) -> Path | None:
    """Create the directory ``OUTPUT/`` names (one level, mode 0700 whatever the umask: it
    holds private archives); returns it, or ``None`` when another process made it first.

    :raises OutputError: a file is there, the parent is missing, or ``mkdir`` fails.
    """
    from dbcrate.atomic import write_failed

    if path.is_symlink() or path.exists():
        raise OutputError(f"the output {output} ends with / but {path} is not a directory",
                          hint="leave out the / to write a file of that name, or name a "
                          "directory")
    if not path.parent.is_dir():
        raise OutputError(f"cannot create the output directory {path}: {path.parent} does not "
                          "exist", hint="create it first (dump creates only the last directory "
                          "of OUTPUT)")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if path.is_dir() and not path.is_symlink():
            return None
        raise OutputError(f"the output {output} ends with / but {path} is not a directory",
                          hint="name a directory") from None
    except OSError as exc:
        raise write_failed(path, exc, "create") from None
    os.chmod(path, 0o700)
    return path


def print_dump_result(result: DumpResult, target: DumpTarget, as_json: bool, out: Console,
                      err: Console) -> None:
    """The dump's report: JSON (``--json``) or a line, on standard error when the archive went
    to standard output. Both name the archive as written (an automatic name that was taken is
    said)."""
    from dbcrate.atomic import AutoName

    m = result.manifest
    console = err if target.to_stdout else out
    auto = target.output if isinstance(target.output, AutoName) else None
    if as_json:
        payload = {"archive": result.path, "tables": len(m.tables), "rows": m.rows,
                   "bytes": m.size, "seconds": round(result.seconds, 3),
                   "storage": ({"files": m.storage.files, "bytes": m.storage.bytes,
                                "file_check": m.storage.file_check} if m.storage else None),
                   "warnings": result.warnings, "complete": m.complete,
                   "failed": [t.name for t in m.tables if t.status != "ok"]}
        if auto is not None:
            payload["name_taken"] = str(auto.first) if auto.moved else None
        console.print_json(json.dumps(payload))
        return
    for w in result.warnings[:50]:
        err.print(f"warning: {w}", markup=False)
    if m.storage and m.storage.file_check:
        from dbcrate.storages.file_check import describe as describe_file_check

        for w in describe_file_check(m.storage.file_check):
            err.print(f"warning: {w}", markup=False)
    stored = (f" and {m.storage.files:,} storage files ({human_bytes(m.storage.bytes)})"
              if m.storage else "")
    taken = (f" ({auto.first.name} exists already: not replaced)"
             if auto is not None and auto.moved else "")
    console.print(
        f"dumped {tables_text(len(m.tables))}, {tables_text(m.rows, 'row')} "
        f"({human_bytes(m.size)} of data){stored} to {result.path}{taken} "
        f"in {result.seconds:.1f}s", markup=False)


#: what an interrupted restore says: what is committed stays, and the journal knows it
RESUME_NOTE = ("; what was committed stays in the target: rerun the same command with --resume "
               "to continue")


#: a restore report lists every table up to this many tables restored without a note
REPORT_TABLES = 50


def print_restore_report(report: RestoreReport, dry_run: bool, out: Console) -> None:
    """The restore report as a table, its warnings and storages, and a closing line (moved
    unchanged from :mod:`dbcrate.cli`)."""
    from rich.table import Table as RichTable

    table = RichTable(show_edge=False, box=None)
    for col in ("table", "status", "rows", "seconds", "notes"):
        table.add_column(col, justify="right" if col in ("rows", "seconds") else "left")
    lines = []
    for t in report.tables:
        counts = [_describe_conflicts(t.conflicts)] if t.conflicts else []
        notes = as_flags("; ".join(([t.error] if t.error else []) + (t.plan if dry_run else [])
                                   + counts + t.warnings)) or ""
        lines.append((t, notes))
    # a long report keeps the tables with something to say (a failure, a note): 2,000 plain
    # lines bury them, and took rich 1.5 s to lay out; --json lists every table
    plain = {t.name for t, notes in lines if not notes and t.status in ("restored", "checked")}
    hidden = len(plain) > REPORT_TABLES
    for t, notes in lines:
        if not (hidden and t.name in plain):
            table.add_row(t.name, t.status, f"{t.rows:,}", f"{t.seconds:.2f}", notes,
                          style="red" if t.status == "failed" else None)
    if table.row_count:
        out.print(table)
    if hidden:
        statuses = sorted({t.status for t, _ in lines if t.name in plain})
        out.print(f"{tables_text(len(plain))} {' or '.join(statuses)}"
                  " without notes not listed (--json lists every table)", markup=False)
    native = (report.plan or {}).get("native")
    if dry_run and native:
        for label, objects in (("before the rows", native["pre_data"]),
                               ("after the rows", native["after"])):
            if objects:
                out.print(f"native schema, {label}: " + ", ".join(objects), markup=False)
    for w in report.warnings:
        out.print(f"warning: {as_flags(w)}", markup=False)
    if report.storages:
        st = report.storages
        if dry_run:
            out.print(f"storages: {st['files']:,} files would be restored under "
                      f"{st['destination']} (policy {st['policy']})", markup=False)
        else:
            out.print(f"storages: {st['written']:,} files written ({human_bytes(st['bytes_written'])}),"
                      f" {st['unchanged']:,} already identical, under {st['destination']}",
                      markup=False)
    restored = sum(1 for t in report.tables if t.status == "restored")
    failed = sum(1 for t in report.tables if t.status == "failed")
    checked = sum(1 for t in report.tables if t.status == "checked")
    if dry_run:
        out.print(f"dry run: {tables_text(len(report.tables))} would be restored into "
                  f"{report.target}; nothing was changed")
    elif checked and not restored:
        differing = sum(report.differing.values())
        out.print(f"checked {tables_text(checked)} ({tables_text(report.rows, 'row')}) against "
                  f"{report.target}: {tables_text(differing, 'row')} differ; nothing was written"
                  + (f"; {failed} failed" if failed else "") + f" in {report.seconds:.1f}s")
    else:
        out.print(f"restored {tables_text(restored)} ({tables_text(report.rows, 'row')}) into {report.target}"
                  + (f"; {failed} failed" if failed else "") + f" in {report.seconds:.1f}s")


def tables_text(n: int, noun: str = "table") -> str:
    """``1 table``, ``2 tables``: a count with its noun in the right number (every count the
    commands print goes through here)."""
    if n == 1:
        return f"{n:,} {noun}"
    return f"{n:,} {noun}es" if noun.endswith(("s", "x", "ch", "sh")) else f"{n:,} {noun}s"


def _describe_conflicts(counts: dict[str, Any]) -> str:
    """``inserted 2, skipped 2`` / ``missing 2, identical 1, differing 1 (keys: id=3)``."""
    text = ", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "differing_keys")
    keys = counts.get("differing_keys") or []
    if keys:
        shown = "; ".join(", ".join(f"{k}={v!r}" for k, v in key.items()) for key in keys[:10])
        text += f" (keys: {shown}{' ...' if counts.get('differing', 0) > 10 else ''})"
    return text


class StdoutProxy:
    """Standard output for rich's console: ``sys.stdout`` at the time of each call (as rich's
    default is, so that ``redirect_stdout`` still works), remembering a write or flush that
    failed, so that the error boundary can tell "standard output is full or closed" (exit 12)
    from a bug in dbcrate."""

    def __init__(self) -> None:
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except OSError as exc:
            self.failed = exc
            raise

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except OSError as exc:
            self.failed = exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


def release_stdout() -> OSError | None:
    """Flush standard output; when that fails (a full disk, a reader that closed the pipe),
    point file descriptor 1 at ``os.devnull`` and return the error.

    Without that the interpreter flushes again at exit, fails again, and prints "Exception
    ignored ... OSError" after the clean message (the Python documentation's note on SIGPIPE
    prescribes the same).
    """
    try:
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())
            finally:
                os.close(devnull)
        return exc
    except ValueError:  # closed by someone else: nothing left to flush
        return None
    return None
