"""The ``dbcrate`` command: a thin layer over the library.

Each command parses its options into the library's options object, calls one library function
and renders the result. :func:`main` is the one place where errors become messages and exit
codes (see :data:`dbcrate.errors.EXIT_CODES`); a user error never shows a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Generator
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

from dbcrate import __version__
from dbcrate.atomic import write_failed
from dbcrate.cli.memory import tune_allocators
from dbcrate.cli.output import (
    RESUME_NOTE,
    StdoutProxy,
    print_dump_result,
    print_restore_report,
    release_stdout,
    resolve_dump_output,
)
from dbcrate.compare import compare_with
from dbcrate.connect import parse_url, public_url
from dbcrate.containers.archive import Archive, open_archive
from dbcrate.containers.convert import iter_convert, iter_dump_as
from dbcrate.containers.kinds import CONTAINER_KINDS
from dbcrate.dump.run import plan as plan_dump
from dbcrate.errors import (
    EXIT_CODES,
    DbcrateError,
    DumpIncomplete,
    OutputError,
    UsageError,
)
from dbcrate.formats.registry import FORMATS
from dbcrate.options import DumpOptions, RestoreOptions
from dbcrate.progress import Event, drain, human_bytes
from dbcrate.restore.conflicts import POLICIES, Policy
from dbcrate.restore.run import iter_restore
from dbcrate.storages.file_check import describe as describe_file_check
from dbcrate.storages.restore import reader_of, summarize

T = TypeVar("T")
err = Console(stderr=True, highlight=False)
STDOUT = StdoutProxy()  # what out writes to: a failed write is an output error, not a bug
out = Console(file=STDOUT, highlight=False, soft_wrap=True)  # type: ignore[arg-type]

EXAMPLES_MAIN = """
\b
Examples:
  dbcrate dump sqlite:///app.db app.crate
  dbcrate dump postgresql://postgres@127.0.0.1/shop shop.crate -t 'order*' -T audit_log
  dbcrate ls shop.crate
  dbcrate verify shop.crate
  dbcrate restore shop.crate mysql+pymysql://root@127.0.0.1/shop_copy
  dbcrate dump sqlite:///app.db - | dbcrate restore - postgresql://postgres@127.0.0.1/app

\b
Exit codes:
""" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


@click.group(help="Dump, list, verify and restore SQL databases through one portable archive.\n"
             + EXAMPLES_MAIN)
@click.version_option(__version__, prog_name="dbcrate")
@click.option("--traceback", is_flag=True, hidden=True, help="Show tracebacks (debugging).")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


def _show_progress(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stderr.isatty()


def _run(gen: Generator[Event, None, T], show: bool, label: str) -> T:
    """Drive a library generator, drawing a progress bar when asked."""
    if not show:
        return drain(gen)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        # one bar per phase: a restore builds indexes while other tables still load
        first = bar.add_task(label, total=None, detail="")
        tasks: dict[str, TaskID] = {}

        def show_event(ev: Event) -> None:
            detail = f"{ev.rows:,} rows" if ev.phase == "data" else f"{ev.done}/{ev.total or '?'}"
            if ev.phase not in tasks:  # the first phase takes the placeholder's bar
                tasks[ev.phase] = bar.add_task("", detail="") if tasks else first
            bar.update(tasks[ev.phase], description=ev.description, completed=ev.done,
                       total=ev.total, detail=detail)

        return drain(gen, show_event)


_human = human_bytes


# ---------------------------------------------------------------------------------------- dump
@cli.command(epilog="""
\b
Examples:
  dbcrate dump sqlite:///app.db app.crate
  dbcrate dump postgresql://postgres@127.0.0.1/shop shop.crate -t 'order*' -T audit_log
  dbcrate dump mysql+pymysql://root@127.0.0.1/shop backups/     # backups/shop_<UTC>.crate
  dbcrate dump sqlite:///app.db - > app.crate
""")
@click.argument("url")
@click.argument("output")
@click.option("-t", "--table", "include", multiple=True, metavar="PATTERN",
              help="Dump only tables matching this glob (repeatable).")
@click.option("-T", "--exclude-table", "exclude", multiple=True, metavar="PATTERN",
              help="Leave out tables matching this glob (repeatable).")
@click.option("--format", "data_format", default="parquet", show_default=True,
              help="Encoding of the data members: " + ", ".join(sorted(FORMATS))
              + " (or a plugin format).")
@click.option("--compress-level", type=click.IntRange(1, 22), default=3, show_default=True,
              help="zstd level of the data members.")
@click.option("--chunk-rows", type=click.IntRange(1), default=250_000, show_default=True,
              help="Most rows per data member.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Tables and key ranges of big tables read in parallel (one snapshot).")
@click.option("--schema-only", is_flag=True, help="Record the schema, no rows.")
@click.option("--schema-version", metavar="LABEL", help="Your application's schema version.")
@click.option("--hooks", metavar="FILE.py|MODULE",
              help="Python hooks; dump_table_filter(table) -> bool leaves tables out.")
@click.option("--storage", "storages", multiple=True, metavar="DIR",
              help="A directory of files (e.g. media/) to store beside the data (repeatable).")
@click.option("--storage-exclude", multiple=True, metavar="PATTERN",
              help="Leave out storage files matching this glob: '*.tmp' at any depth, "
              "'cache/**' by path (repeatable).")
@click.option("--storages-basepath", metavar="DIR",
              help="Storages are named by their path relative to this (default: the current "
              "directory).")
@click.option("--no-data", is_flag=True, help="Store the storages only (no tables).")
@click.option("--no-storages", is_flag=True, help="Ignore --storage (tables only).")
@click.option("--file-column", "file_columns", multiple=True, metavar="TABLE.COLUMN[=STORAGE]",
              help="A column holding paths of storage files: missing files and orphans are "
              "reported (repeatable).")
@click.option("--as", "kind", type=click.Choice(sorted(CONTAINER_KINDS)), default="tar",
              show_default=True,
              help="Container: tar (one file), directory (unpacked), sqlite (one SQLite file), "
              "python (a directory of Python-literal modules).")
@click.option("--max-row-count", type=click.IntRange(1), default=None,
              help="Most rows per chunk (python: per module, default 50,000).")
@click.option("--overwrite", is_flag=True,
              help="directory/python: replace an existing dump directory at OUTPUT.")
@click.option("--tolerate", is_flag=True,
              help="A table that cannot be read is recorded as failed and the dump goes on "
              "(exit 15, archive marked incomplete).")
@click.option("--chmod", "archive_mode", default="600", show_default=True, metavar="OCTAL",
              help="Permissions of the finished archive.")
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="Print what would be dumped (tables, storage files); write nothing.")
@click.option("--print-plan", is_flag=True, help="Print the dump plan as JSON; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def dump(url: str, output: str, include: tuple[str, ...], exclude: tuple[str, ...], hooks: str | None,
         data_format: str, compress_level: int, chunk_rows: int, jobs: int, schema_only: bool,
         schema_version: str | None, storages: tuple[str, ...], storage_exclude: tuple[str, ...],
         storages_basepath: str | None, no_data: bool, no_storages: bool,
         file_columns: tuple[str, ...], kind: str, max_row_count: int | None, overwrite: bool,
         tolerate: bool, archive_mode: str, dry_run: bool, print_plan: bool, as_json: bool,
         progress: bool | None) -> None:
    """Dump a database (any SQLAlchemy URL), and directories of files, into one archive.

    OUTPUT is a file name, a directory (the archive is named
    <database>_<UTC time>[_data][_storages].crate, -2, -3, ... when that name is
    taken; DIR/ is created when missing) or - for standard output. The archive
    appears under its name only when it is complete; it is created with mode 0600
    (see --chmod). --as directory and --as python: OUTPUT is the dump directory.
    """
    try:
        mode = int(archive_mode, 8)
    except ValueError:
        raise UsageError(f"--chmod {archive_mode!r} is not an octal mode",
                         hint="e.g. --chmod 600 or --chmod 640") from None
    if not 0 <= mode <= 0o777:
        raise UsageError(f"--chmod {archive_mode} is not a permission mode (000 to 777)")
    options = DumpOptions(
        include=list(include), exclude=list(exclude), data_format=data_format,
        compression_level=compress_level, chunk_rows=chunk_rows, schema_only=schema_only, jobs=jobs,
        schema_version=schema_version, hooks=hooks, storages=list(storages),
        storage_exclude=list(storage_exclude), storages_basepath=storages_basepath,
        no_data=no_data, no_storages=no_storages, file_columns=list(file_columns),
        archive_mode=mode, tolerate=tolerate,
    )
    if dry_run or print_plan:
        plan = plan_dump(url, options)
        if as_json or print_plan:
            out.print_json(json.dumps(plan.to_dict()))
            return
        if not no_data:
            out.print(f"would dump {len(plan.tables)} tables from {plan.source.url}")
        for t in plan.tables:
            est = plan.estimated_rows.get(t.name)
            out.print(f"  {t.name}  ~{est if est is not None else '?'} rows, {len(t.columns)} columns")
            for s in t.skipped:
                out.print(f"    not carried: {s}")
        for st in plan.storages:
            out.print(f"would store {st['name']} ({st['path']}): {st['files']:,} files, "
                      f"{_human(st['bytes'])}, {st['directories']:,} directories")
            for w in st["warnings"][:20]:
                out.print(f"    {w}", markup=False)
        return
    # a directory kind's OUTPUT is the dump directory itself; a file kind's may be a folder
    target = resolve_dump_output(output, kind, url, data=not no_data,
                                 storages=bool(storages) and not no_storages)
    try:
        result = _run(iter_dump_as(url, target.output, kind, options,
                                   max_row_count=max_row_count, overwrite=overwrite),
                      _show_progress(progress) and not target.to_stdout, "Dumping")
    except BaseException:
        target.discard()
        raise
    print_dump_result(result, target, as_json, out, err)
    m = result.manifest
    if not m.complete:
        raise DumpIncomplete(result.path, [t.name for t in m.tables if t.status != "ok"])


# ------------------------------------------------------------------------------------- restore
@cli.command(epilog="""
\b
Examples:
  dbcrate restore shop.crate mysql+pymysql://root@127.0.0.1/shop_copy
  dbcrate restore shop.crate sqlite:///copy.db -t 'order*'
  dbcrate restore shop.crate postgresql://postgres@127.0.0.1/shop --clean
  dbcrate restore shop.crate postgresql://postgres@127.0.0.1/shop --dry-run
  dbcrate restore shop.crate sqlite:///app.db --mode into-existing --clean
  dbcrate restore old.crate sqlite:///app.db --mode into-existing --migrations steps.toml
  dbcrate restore shop.crate postgresql://postgres@127.0.0.1/shop -j 2 --resume
  cat shop.crate | dbcrate restore - sqlite:///copy.db
""")
@click.argument("archive")
@click.argument("url")
@click.option("-t", "--table", "include", multiple=True, metavar="PATTERN",
              help="Restore only archive tables matching this glob (repeatable).")
@click.option("-T", "--exclude-table", "exclude", multiple=True, metavar="PATTERN",
              help="Do not restore tables matching this glob (repeatable).")
@click.option("--mode", type=click.Choice(["recreate", "into-existing"]), default="recreate",
              show_default=True,
              help="recreate: drop/create from the archive's schema; into-existing: keep the "
              "target's schema and load into it.")
@click.option("--clean", is_flag=True,
              help="recreate: drop and recreate existing tables; into-existing: empty the "
              "selected tables first.")
@click.option("--data-only", is_flag=True, help="Load rows into existing tables (no DDL).")
@click.option("--on-conflict", type=click.Choice(POLICIES), default="error",
              show_default=True,
              help="Rows whose primary key exists (into-existing): fail the table, skip them, "
              "update them, or check (write nothing; list the rows that differ, exit 17).")
@click.option("--strict", is_flag=True,
              help="Any warning (an object not recreated, a default dropped ...) fails the "
              "restore (exit 16).")
@click.option("--single-transaction", is_flag=True,
              help="All or nothing (refused where the engine cannot roll DDL back).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Tables loaded and indexes built in parallel (SQLite: one at a time).")
@click.option("--exit-on-error", is_flag=True, help="Stop at the first table that fails.")
@click.option("--schema-only", is_flag=True, help="Create the tables, load no rows.")
@click.option("--hooks", metavar="FILE.py|MODULE", help="Python hooks (see docs/RESTORE.md).")
@click.option("--migrations", metavar="FILE.toml", help="Declarative migration steps.")
@click.option("--target-schema-version", metavar="LABEL",
              help="Migrate to this schema version (default: as far as the steps go).")
@click.option("--resume", is_flag=True,
              help="Continue a killed restore: skip what the target's journal says is committed.")
@click.option("--storages-to", metavar="DIR",
              help="Restore the archive's storages under DIR (each as DIR/<its name>).")
@click.option("--storages", "storages_policy", type=click.Choice(["refuse", "merge", "replace"]),
              default="refuse", show_default=True,
              help="Existing files that differ: refuse (write nothing), merge (overwrite them, "
              "keep others), replace (each storage becomes exactly the archive's).")
@click.option("--no-storages", is_flag=True, help="Do not restore storages.")
@click.option("--no-data", is_flag=True, help="Restore the storages only (no tables).")
@click.option("--dry-run", is_flag=True,
              help="Check everything (names, values, checksums) and print the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def restore(archive: str, url: str, include: tuple[str, ...], exclude: tuple[str, ...],
            mode: str, clean: bool, data_only: bool, on_conflict: Policy, strict: bool,
            single_transaction: bool,
            jobs: int, exit_on_error: bool, schema_only: bool, hooks: str | None,
            migrations: str | None, target_schema_version: str | None, resume: bool,
            storages_to: str | None, storages_policy: str, no_storages: bool, no_data: bool,
            dry_run: bool, as_json: bool, progress: bool | None) -> None:
    """Restore an archive into a database (the same engine or another).

    Tables are created in foreign-key order and loaded one transaction each, then
    indexes, foreign keys and sequences are added. Everything that would make the
    restore inexact is checked before anything is written. ARCHIVE may be - for
    standard input.
    """
    options = RestoreOptions(
        include=list(include), exclude=list(exclude), clean=clean, exit_on_error=exit_on_error,
        schema_only=schema_only, dry_run=dry_run, jobs=jobs, mode=mode, data_only=data_only,
        on_conflict=on_conflict, strict=strict, single_transaction=single_transaction, hooks=hooks,
        migrations=migrations, target_schema_version=target_schema_version, resume=resume,
        storages_to=storages_to, storages_policy=storages_policy, no_storages=no_storages,
        no_data=no_data,
    )
    _restore_and_report(archive, url, options, as_json, progress)


def _restore_and_report(archive: str, url: str, options: RestoreOptions, as_json: bool,
                        progress: bool | None) -> None:
    report = _run(iter_restore(archive, url, options), _show_progress(progress), "Restoring")
    dry_run = options.dry_run
    if as_json:
        out.print_json(json.dumps(report.to_dict(), default=str))
    else:
        print_restore_report(report, dry_run, out)
    report.raise_for_failures()


@cli.command(epilog="""
\b
Examples:
  dbcrate plan shop.crate postgresql://postgres@127.0.0.1/shop
  dbcrate plan shop.crate sqlite:///app.db --mode into-existing --clean --json
""")
@click.argument("archive")
@click.argument("url")
@click.option("-t", "--table", "include", multiple=True, metavar="PATTERN")
@click.option("-T", "--exclude-table", "exclude", multiple=True, metavar="PATTERN")
@click.option("--mode", type=click.Choice(["recreate", "into-existing"]), default="recreate",
              show_default=True)
@click.option("--clean", is_flag=True)
@click.option("--on-conflict", type=click.Choice(POLICIES), default="error",
              show_default=True)
@click.option("--migrations", metavar="FILE.toml")
@click.option("--target-schema-version", metavar="LABEL")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(archive: str, url: str, include: tuple[str, ...], exclude: tuple[str, ...], mode: str,
         clean: bool, on_conflict: Policy, migrations: str | None,
         target_schema_version: str | None, as_json: bool) -> None:
    """Preflight a restore without touching the target (the same as restore --dry-run).

    Prints, table by table, what would happen: create, clean, append, the column
    mapping and casts, and every blocking problem (exit code 9 when something blocks).
    """
    options = RestoreOptions(include=list(include), exclude=list(exclude), mode=mode,
                             clean=clean, on_conflict=on_conflict, migrations=migrations,
                             target_schema_version=target_schema_version, dry_run=True)
    _restore_and_report(archive, url, options, as_json, False)


# ------------------------------------------------------------------------------------- convert
@cli.command(epilog="""
\b
Examples:
  dbcrate convert shop.crate shop.sqlite --as sqlite
  dbcrate convert shop.sqlite shop_py/ --as python --max-row-count 10000
  dbcrate convert shop_py/ shop.crate --as tar --format parquet
  dbcrate convert shop.crate shop.jsonl.crate --format jsonl
""")
@click.argument("source")
@click.argument("output")
@click.option("--as", "kind", type=click.Choice(sorted(CONTAINER_KINDS)), default="tar",
              show_default=True, help="Container kind of the output.")
@click.option("--format", "data_format", default=None,
              help="Data format of the output's members (tar, directory): "
              + ", ".join(sorted(FORMATS)) + ". Default: the source's.")
@click.option("--max-row-count", type=click.IntRange(1), default=None,
              help="Most rows per output chunk (python: per module, default 50,000).")
@click.option("--overwrite", is_flag=True, help="Replace an existing dump directory at OUTPUT.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def convert(source: str, output: str, kind: str, data_format: str | None,
            max_row_count: int | None, overwrite: bool, as_json: bool,
            progress: bool | None) -> None:
    """Convert an archive of any kind and format into another, streaming, checking the
    source's checksums as it reads. The output appears only when complete."""
    result = _run(iter_convert(source, output, kind=kind, data_format=data_format,
                               max_row_count=max_row_count, overwrite=overwrite),
                  _show_progress(progress), "Converting")
    m = result.manifest
    if as_json:
        out.print_json(json.dumps({"archive": result.path, "kind": result.kind,
                                   "data_format": m.data_format, "tables": len(m.tables),
                                   "rows": m.rows, "seconds": round(result.seconds, 3)}))
    else:
        out.print(f"converted {len(m.tables)} tables, {m.rows:,} rows into {result.path} "
                  f"({result.kind}, {m.data_format}) in {result.seconds:.1f}s")


# ------------------------------------------------------------------------------------------ ls
@cli.command(name="ls", epilog="""
\b
Examples:
  dbcrate ls shop.crate
  dbcrate ls shop.crate --json | jq '.tables[].name'
""")
@click.argument("archive")
@click.option("--against", metavar="URL",
              help="Compare with a database: does it have each table, do the columns match?")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest summary as JSON.")
def ls(archive: str, against: str | None, as_json: bool) -> None:
    """List an archive: tables, rows, bytes, when and from what it was made.

    Needs no database, and reads only the manifest (unless --against is given).
    """
    with open_archive(archive) as a:
        m = a.manifest
        if against:
            rows = compare_with(a, against)
            if as_json:
                shown = public_url(parse_url(against))
                out.print_json(json.dumps({"archive": archive, "target": shown, "tables": rows}))
                return
            table = RichTable(show_edge=False, box=None)
            for col in ("table", "in target", "columns", "differences"):
                table.add_column(col)
            for r in rows:
                table.add_row(r["name"], "yes" if r["present"] else "no", r["columns"],
                              "; ".join(r["differences"]))
            out.print(table)
            return
        if as_json:
            out.print_json(json.dumps({
                "archive": archive, "format_version": m.format_version,
                "dbcrate_version": m.dbcrate_version, "created_at": m.created_at,
                "complete": m.complete, "source": m.source.to_dict(),
                "data_format": m.data_format, "schema_version": m.schema_version,
                "rows": m.rows, "bytes": m.size,
                "tables": [{"name": t.name, "rows": t.rows, "bytes": t.size,
                            "chunks": len(t.chunks), "columns": len(t.schema.columns),
                            "status": t.status} for t in m.tables],
                "storage": _storage_summary(a) if m.storage else None,
            }))
            return
        out.print(f"archive:   {archive} (format {m.format_version}, dbcrate {m.dbcrate_version})")
        out.print(f"created:   {m.created_at} (UTC)")
        out.print(f"source:    {m.source.engine} {m.source.server_version}  {m.source.url}")
        if m.schema_version:
            out.print(f"schema version: {m.schema_version}")
        table = RichTable(show_edge=False, box=None)
        for col, right in (("table", False), ("rows", True), ("bytes", True), ("chunks", True),
                           ("columns", True)):
            table.add_column(col, justify="right" if right else "left")
        for t in m.tables:
            table.add_row(t.name + ("" if t.status == "ok" else f" ({t.status})"),
                          f"{t.rows:,}", _human(t.size), str(len(t.chunks)), str(len(t.schema.columns)))
        out.print(table)
        out.print(f"{len(m.tables)} tables, {m.rows:,} rows, {_human(m.size)} of {m.data_format} data")
        failed = [t for t in m.tables if t.status != "ok"]
        if failed or not m.complete:
            out.print(f"INCOMPLETE: {len(failed)} table(s) failed at dump time (--tolerate):",
                      markup=False)
            for t in failed:
                out.print(f"  {t.name}: {t.error or 'failed'}", markup=False)
        if m.storage:
            summary = _storage_summary(a)
            out.print(f"storages: {summary['files']:,} files, {_human(summary['bytes'])}"
                      + (f" (excluded: {', '.join(m.storage.exclude)})" if m.storage.exclude
                         else ""), markup=False)
            listing = RichTable(show_edge=False, box=None)
            for col, right in (("directory", False), ("files", True), ("bytes", True)):
                listing.add_column(col, justify="right" if right else "left")
            for row in summary["top"]:
                listing.add_row(row["directory"], f"{row['files']:,}", _human(row["bytes"]))
            out.print(listing)
            if m.storage.file_check:
                for w in describe_file_check(m.storage.file_check) or ["row <-> file check: "
                                                                      "every file is in place"]:
                    out.print(w, markup=False)


def _storage_summary(archive: Archive) -> dict[str, Any]:
    storage = archive.manifest.storage
    assert storage is not None
    return {
        "files": storage.files, "bytes": storage.bytes, "exclude": storage.exclude,
        "roots": [r.to_dict() for r in storage.roots],
        "top": summarize(reader_of(archive), storage),
        "file_check": storage.file_check,
    }


# -------------------------------------------------------------------------------------- verify
@cli.command(epilog="""
\b
Examples:
  dbcrate verify shop.crate
  dbcrate verify shop.crate --json
""")
@click.argument("archive")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def verify(archive: str, as_json: bool, progress: bool | None) -> None:
    """Check an archive without a database: every member's SHA-256, every chunk decoded
    with the schema and row count the manifest gives."""
    with open_archive(archive) as a:

        def gen() -> Generator[Event, None, None]:
            yield from a.iter_verify()  # storages included

        _run(gen(), _show_progress(progress), "Verifying")
        m = a.manifest
        members = sum(len(t.chunks) for t in m.tables)
        files = m.storage.files if m.storage else 0
        if as_json:
            out.print_json(json.dumps({"archive": archive, "ok": True, "tables": len(m.tables),
                                       "members": members, "rows": m.rows, "bytes": m.size,
                                       "storage_files": files}))
        else:
            stored = f", {files:,} storage files" if m.storage else ""
            out.print(f"ok: {archive}: {len(m.tables)} tables, {members} data members, "
                      f"{m.rows:,} rows, {_human(m.size)}{stored}: every checksum matches and "
                      "every chunk decodes")


# ---------------------------------------------------------------------------- the error boundary
def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to messages and exit codes.

    Standard output is flushed before the exit: when that fails (``> /dev/full``, a reader that
    closed the pipe) the command ends with exit 12 and one message, and nothing more is
    printed at interpreter exit (see :func:`dbcrate.cli.output.release_stdout`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in args or os.environ.get("DBCRATE_TRACEBACK") == "1"
    tune_allocators()  # the CLI owns its process (dbcrate.cli.memory)
    code = _dispatch(args, show_tb)
    failed = release_stdout()
    if failed is not None and code == 0:
        _print_error(write_failed("standard output", failed))
        code = OutputError.exit_code
    sys.exit(code)


def _print_error(exc: DbcrateError) -> None:
    err.print(Text.assemble(("error: ", "bold red"), exc.message))
    if exc.hint:
        err.print(f"hint: {exc.hint}", markup=False)


def _dispatch(args: list[str], show_tb: bool) -> int:
    """Run the command; returns the exit code (a message is printed for every failure)."""
    try:
        cli.main(args=args, prog_name="dbcrate", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("interrupted" + (RESUME_NOTE if "restore" in args[:3] else ""))
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DbcrateError as exc:
        if show_tb:
            traceback.print_exc()
        _print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted" + (RESUME_NOTE if "restore" in args[:3] else ""))
        return 130
    except BrokenPipeError as exc:  # the reader of standard output went away
        release_stdout()
        _print_error(write_failed("standard output", exc))
        return OutputError.exit_code
    except Exception as exc:  # a bug: say so, show the traceback only when asked
        if isinstance(exc, OSError) and (release_stdout() is not None
                                         or STDOUT.failed is not None):
            _print_error(write_failed("standard output", exc))  # e.g. ls > /dev/full
            return OutputError.exit_code
        if show_tb:
            traceback.print_exc()
        err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
        err.print("this is a bug in dbcrate; rerun with --traceback and report it", markup=False)
        return 1
    return 0
