"""``dbcrate copy``: one database into another (:mod:`dbcrate.transfer`), with the dump's
table selection and the restore's options and report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from dbcrate.cli import console
from dbcrate.cli.output import print_restore_report, tables_text
from dbcrate.cli.params import (
    jobs_option,
    json_option,
    progress_option,
    selection_options,
    traceback_option,
)
from dbcrate.cli.restore_cmd import (
    clean_option,
    create_option,
    ddl_option,
    exit_on_error_option,
    mode_option,
    no_owner_option,
    no_privileges_option,
    on_conflict_option,
    single_transaction_option,
    strict_option,
)
from dbcrate.errors import DbcrateError
from dbcrate.options import ConflictPolicy, DdlSource, DumpOptions, RestoreMode, RestoreOptions
from dbcrate.progress import human_bytes

if TYPE_CHECKING:
    from dbcrate.transfer import CopyResult

EPILOG = """
\b
Examples:
  dbcrate copy postgresql://postgres@127.0.0.1/shop postgresql://postgres@127.0.0.1/shop_copy -C
  dbcrate copy postgresql://postgres@127.0.0.1/shop sqlite:///shop.db -t 'order*'
  dbcrate copy mysql+pymysql://root@127.0.0.1/shop postgresql://postgres@127.0.0.1/shop --clean
  dbcrate copy SRC DST --spool /var/tmp/shop.spool --resume   # after a failed restore
"""


@click.command(epilog=EPILOG)
@click.argument("source")
@click.argument("target")
@selection_options("Copy")
@mode_option
@clean_option
@create_option
@ddl_option
@no_owner_option
@no_privileges_option
@on_conflict_option
@click.option("--no-native-schema", is_flag=True,
              help="Copy the portable schema only (tables, keys, indexes), not the engine's own "
              "definitions (views, functions, triggers ...).")
@click.option("-s", "--schema-only", is_flag=True, help="Create the tables, copy no rows.")
@strict_option
@single_transaction_option
@exit_on_error_option
@jobs_option(RestoreOptions, "Tables read and loaded in parallel.")
@click.option("--spool", metavar="DIR",
              help="Where the rows wait between source and target (created; kept after the "
              "copy). Default: a new directory in the temporary directory (TMPDIR), removed "
              "after a successful copy, kept after a failed one.")
@click.option("--resume", is_flag=True,
              help="With the --spool of a failed copy: continue its restore from the spool "
              "(the source is not read again).")
@click.option("--dry-run", is_flag=True,
              help="Read the source and check everything against the target; change nothing.")
@json_option("Print the result as JSON.")
@progress_option
@traceback_option
def copy(source: str, target: str, include: tuple[str, ...], exclude: tuple[str, ...],
         schemas: tuple[str, ...], exclude_schemas: tuple[str, ...], mode: RestoreMode,
         clean: bool, create: bool, ddl: DdlSource, no_owner: bool, no_privileges: bool,
         on_conflict: ConflictPolicy, no_native_schema: bool, schema_only: bool, strict: bool,
         single_transaction: bool, exit_on_error: bool, jobs: int, spool: str | None,
         resume: bool, dry_run: bool, as_json: bool, progress: bool | None) -> None:
    """Copy a database into another (the same engine or another), with no archive to keep.

    The source is read in one snapshot into a spool (an archive in a temporary
    directory); each table is restored as soon as it is read, with the restore's checks
    before anything is written (into another engine: after the whole read; into a new
    SQLite file, while the rows load, and a refused value removes the file). After a
    failed restore the spool is kept: --spool DIR --resume continues.
    """
    import os
    import secrets
    import tempfile

    from dbcrate.cli.progress import run, show_progress  # the commands import what they run
    from dbcrate.transfer import finished_spool, iter_copy, resume_hint

    dump_options = DumpOptions(
        include=list(include), exclude=list(exclude), schemas=list(schemas),
        exclude_schemas=list(exclude_schemas), schema_only=schema_only, jobs=jobs,
        no_native_schema=no_native_schema)
    restore_options = RestoreOptions(  # the selection too: a kept spool may hold more
        include=list(include), exclude=list(exclude), clean=clean, create=create, mode=mode,
        ddl=ddl, no_owner=no_owner, no_privileges=no_privileges, on_conflict=on_conflict, strict=strict,
        single_transaction=single_transaction, exit_on_error=exit_on_error, jobs=jobs,
        resume=resume, dry_run=dry_run)
    path = spool or os.path.join(tempfile.gettempdir(), f"dbcrate-copy-{secrets.token_hex(6)}")
    try:
        result = run(iter_copy(source, target, dump_options, restore_options, spool=path,
                               keep_spool=spool is not None),
                     show_progress(progress), "Copying")
    except KeyboardInterrupt as exc:
        if finished_spool(path) and not dry_run:
            console.stderr_console().print(resume_hint(path), markup=False)
        for note in getattr(exc, "__notes__", ()):  # what the target holds
            console.stderr_console().print(note, markup=False)
        raise
    report = result.report
    _print_result(result, source, target, as_json, dry_run)
    try:
        report.raise_for_failures()
    except DbcrateError as exc:
        if result.spool is not None and not dry_run:  # a failed restore: its spool is kept
            exc.hint = (f"{exc.hint}; " if exc.hint else "") + resume_hint(result.spool)
        raise


def _print_result(result: CopyResult, source: str, target: str, as_json: bool,
                  dry_run: bool) -> None:
    """The read's line and warnings, then the restore's report; or all of it as JSON."""
    report, dumped = result.report, result.dump
    if as_json:
        console.out.print_json(json.dumps({
            "source": _shown(source), "target": _shown(target), "spool": result.spool,
            "dump": None if dumped is None else {
                "tables": len(dumped.manifest.tables), "rows": dumped.manifest.rows,
                "bytes": dumped.manifest.size, "seconds": round(dumped.seconds, 3),
                "warnings": dumped.warnings},
            "restore": report.to_dict()}, default=str))
        return
    if dumped is not None:
        m = dumped.manifest
        for w in dumped.warnings[:50]:
            console.err.print(f"warning: {w}", markup=False)
        console.out.print(f"read {tables_text(len(m.tables))}, {tables_text(m.rows, 'row')} "
                          f"({human_bytes(m.size)} spooled) in {dumped.seconds:.1f}s",
                          markup=False)
    print_restore_report(report, dry_run, console.out)


def _shown(url: str) -> str:
    """``url`` as output may show it: without its password or secret query parameters."""
    import sqlalchemy as sa

    from dbcrate.connect import public_url

    try:
        return public_url(sa.engine.make_url(url))
    except sa.exc.ArgumentError:  # not a URL (a SQLite file's path): nothing secret in it
        return url
