"""``dbcrate dump``: a database, and directories of files, into one archive of any kind.

The options are parsed into :class:`dbcrate.options.DumpOptions` (defaults and choices from
there); ``--dry-run``/``--print-plan`` print the dump plan, else the dump goes to the output
that :func:`dbcrate.cli.output.resolve_dump_output` resolves.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from dbcrate.cli import console
from dbcrate.cli.output import print_dump_result, resolve_dump_output, tables_text
from dbcrate.cli.params import (
    chunk_rows_options,
    dump_chunk_rows,
    encryption_of,
    encryption_options,
    given_chunk_rows,
    jobs_option,
    json_option,
    kind_option,
    progress_option,
    selection_options,
    traceback_option,
)
from dbcrate.errors import DumpIncomplete, UsageError
from dbcrate.options import BUILTIN_DATA_FORMATS, DumpOptions, default_of
from dbcrate.progress import human_bytes

if TYPE_CHECKING:
    from dbcrate.dump.plan import DumpPlan

EPILOG = """
\b
Examples:
  dbcrate dump sqlite:///app.db app.crate
  dbcrate dump postgresql://postgres@127.0.0.1/shop shop.crate -t 'order*' -T audit_log
  dbcrate dump mysql+pymysql://root@127.0.0.1/shop backups/     # backups/shop_<UTC>.crate
  dbcrate dump sqlite:///app.db - > app.crate
"""


@click.command(epilog=EPILOG)
@click.argument("url")
@click.argument("output")
@selection_options("Dump", "Default: every schema but the system ones.")
@click.option("--format", "data_format", default=default_of(DumpOptions, "data_format"),
              show_default=True,
              help="Encoding of the data members: " + ", ".join(sorted(BUILTIN_DATA_FORMATS))
              + " (or a plugin format).")
@click.option("--compress-level", type=click.IntRange(1, 22),
              default=default_of(DumpOptions, "compression_level"), show_default=True,
              help="zstd level of the data members.")
@chunk_rows_options()
@jobs_option(DumpOptions, "Tables and key ranges of big tables read in parallel (one snapshot).")
@click.option("-s", "--schema-only", is_flag=True, help="Record the schema, no rows.")
@click.option("-a", "--data-only", is_flag=True,
              help="The rows without the engine's own schema definitions: the same as "
              "--no-native-schema (the portable schema stays: the rows are read by it); "
              "restore such an archive with restore -a into existing tables.")
@click.option("--schema-version", metavar="LABEL", help="Your application's schema version.")
@click.option("--hooks", metavar="FILE.py|MODULE",
              help="Python hooks; dump_table_filter(table) -> bool leaves tables out.")
@click.option("--storage", "storages", multiple=True, metavar="DIR",
              help="A directory of files (e.g. media/) to store beside the data (repeatable).")
@click.option("--storage-exclude", multiple=True, metavar="PATTERN",
              help="Leave out storage files matching this glob: '*.tmp' at any depth, "
              "'cache/**' by path (repeatable).")
@click.option("--ignore-storage-exclude", is_flag=True,
              help="Store every storage file: --storage-exclude patterns are not applied.")
@click.option("--storages-basepath", metavar="DIR",
              help="Storages are named by their path relative to this (default: the current "
              "directory).")
@click.option("--no-data", is_flag=True, help="Store the storages only (no tables).")
@click.option("--no-storages", is_flag=True, help="Ignore --storage (tables only).")
@click.option("--file-column", "file_columns", multiple=True, metavar="TABLE.COLUMN[=STORAGE]",
              help="A column holding paths of storage files: missing files and orphans are "
              "reported (repeatable).")
@kind_option("Container: tar (one file), directory (unpacked), sqlite (one SQLite file), "
             "python (a directory of Python-literal modules).")
@click.option("--overwrite", is_flag=True,
              help="directory/python: replace an existing dump directory at OUTPUT.")
@click.option("--no-native-schema", is_flag=True,
              help="Carry the portable schema only, not the engine's own definitions (no "
              "pg_dump needed; a same-engine restore then recreates tables, keys and "
              "indexes, not views, functions, triggers ...).")
@click.option("--tolerate", is_flag=True,
              help="A table that cannot be read is recorded as failed and the dump goes on "
              "(exit 15, archive marked incomplete).")
@click.option("--chmod", "archive_mode", default=format(default_of(DumpOptions, "archive_mode"), "o"),
              show_default=True, metavar="OCTAL", help="Permissions of the finished archive.")
@click.option("--dry-run", "--check", "dry_run", is_flag=True,
              help="Print what would be dumped (tables, storage files); write nothing.")
@encryption_options
@click.option("--print-plan", is_flag=True, help="Print the dump plan as JSON; write nothing.")
@click.option("--print-script", is_flag=True,
              help="Print a script that makes this dump (the options given); dump nothing.")
@json_option("Print the result as JSON.")
@progress_option
@traceback_option
def dump(url: str, output: str, include: tuple[str, ...], exclude: tuple[str, ...], hooks: str | None,
         data_format: str, compress_level: int, chunk_rows: int | None, max_row_count: int | None,
         jobs: int, schema_only: bool, schema_version: str | None, storages: tuple[str, ...],
         storage_exclude: tuple[str, ...], storages_basepath: str | None, no_data: bool,
         no_storages: bool, file_columns: tuple[str, ...], kind: str, overwrite: bool,
         tolerate: bool, archive_mode: str, dry_run: bool, print_plan: bool, as_json: bool,
         progress: bool | None, no_native_schema: bool, data_only: bool,
         ignore_storage_exclude: bool, print_script: bool, schemas: tuple[str, ...],
         exclude_schemas: tuple[str, ...], recipients: tuple[str, ...],
         recipients_files: tuple[str, ...], passphrase: bool) -> None:
    """Dump a database (any SQLAlchemy URL), and directories of files, into one archive.

    OUTPUT is a file name, a directory (the archive is named
    <database>_<UTC time>[_data][_storages].crate, -2, -3, ... when that name is
    taken; DIR/ is created when missing) or - for standard output. The archive
    appears under its name only when it is complete; it is created with mode 0600
    (see --chmod). --as directory and --as python: OUTPUT is the dump directory.
    """
    rows = given_chunk_rows(chunk_rows, max_row_count) or dump_chunk_rows(kind)
    options = DumpOptions(
        include=list(include), exclude=list(exclude), data_format=data_format,
        schemas=list(schemas), exclude_schemas=list(exclude_schemas),
        compression_level=compress_level, chunk_rows=rows, schema_only=schema_only, jobs=jobs,
        schema_version=schema_version, hooks=hooks, storages=list(storages),
        storage_exclude=list(storage_exclude), storages_basepath=storages_basepath,
        ignore_storage_exclude=ignore_storage_exclude,
        no_data=no_data, no_storages=no_storages, file_columns=list(file_columns),
        archive_mode=_parse_mode(archive_mode), tolerate=tolerate,
        no_native_schema=no_native_schema or data_only,
        encryption=encryption_of(recipients, recipients_files, passphrase,
                                 writes=not (dry_run or print_plan or print_script)),
    )
    if print_script:
        _print_script(url, output, options)
        return
    if dry_run or print_plan:
        from dbcrate.dump.run import plan as plan_dump  # the commands import what they run

        plan = plan_dump(url, options)
        if as_json or print_plan:
            console.out.print_json(json.dumps(plan.to_dict()))
        else:
            _print_plan(plan, no_data)
        return
    _write(url, output, kind, options, overwrite=overwrite, as_json=as_json, progress=progress)


def _print_script(url: str, output: str, options: DumpOptions) -> None:
    """``--print-script``: the text of :func:`dbcrate.dump.script.make_script`, as it is (no
    markup, no wrapping); nothing is dumped."""
    # imported when asked for: only this option needs the script writer
    from dbcrate.dump.script import make_script

    script = make_script(url, output, options)
    click.echo(script, nl=not script.endswith("\n"))


def _parse_mode(text: str) -> int:
    """``--chmod OCTAL`` as a permission mode.

    :raises UsageError: not octal, or outside 000 to 777.
    """
    try:
        mode = int(text, 8)
    except ValueError:
        raise UsageError(f"--chmod {text!r} is not an octal mode",
                         hint="e.g. --chmod 600 or --chmod 640") from None
    if not 0 <= mode <= 0o777:
        raise UsageError(f"--chmod {text} is not a permission mode (000 to 777)")
    return mode


def _print_plan(plan: DumpPlan, no_data: bool) -> None:
    """``dump --dry-run``: the tables and storages that would be dumped, as lines."""
    if not no_data:
        n = len(plan.tables)
        console.out.print(f"would dump {n} table{'' if n == 1 else 's'} from {plan.source.url} "
                          f"({plan.data_format}, {len(plan.tasks)} reading "
                          f"task{'' if len(plan.tasks) == 1 else 's'}, {plan.jobs} at once)")
    for t in plan.tables:
        est = plan.estimated_rows.get(t.name)
        rows = "~? rows" if est is None else "~" + tables_text(est, "row")
        console.out.print(f"  {t.name}  {rows}, {tables_text(len(t.columns), 'column')}")
        for s in t.skipped:
            console.out.print(f"    not carried: {s}")
    for st in plan.storages:
        console.out.print(f"would store {st['name']} ({st['path']}): {st['files']:,} files, "
                          f"{human_bytes(st['bytes'])}, {st['directories']:,} directories")
        for w in st["warnings"][:20]:
            console.out.print(f"    {w}", markup=False)


def _write(url: str, output: str, kind: str, options: DumpOptions, *, overwrite: bool,
           as_json: bool, progress: bool | None) -> None:
    """Dump into ``output`` and print the result.

    :raises DumpIncomplete: some tables failed (``--tolerate``; the archive is written).
    """
    from dbcrate.cli.progress import run, show_progress
    from dbcrate.containers.convert import iter_dump_as

    # a directory kind's OUTPUT is the dump directory itself; a file kind's may be a folder
    target = resolve_dump_output(output, kind, url, data=not options.no_data,
                                 storages=bool(options.storages) and not options.no_storages)
    try:
        # the chunk size goes as max_row_count too: iter_dump_as would else put the python
        # kind's default in place of a --chunk-rows given for it
        result = run(iter_dump_as(url, target.output, kind, options,
                                  max_row_count=options.chunk_rows, overwrite=overwrite),
                     show_progress(progress) and not target.to_stdout, "Dumping")
    except BaseException:
        target.discard()
        raise
    print_dump_result(result, target, as_json, console.out, console.err)
    m = result.manifest
    if not m.complete:
        raise DumpIncomplete(result.path, [t.name for t in m.tables if t.status != "ok"])
