"""``dbcrate restore`` and ``dbcrate plan`` (the restore's preflight alone).

Both parse their options into :class:`dbcrate.options.RestoreOptions` (choices and defaults
from there) and print the restore report; ``plan`` is ``restore --dry-run`` with fewer options.
"""

from __future__ import annotations

import json
from typing import Any

import click

from dbcrate.cli import console
from dbcrate.cli.output import print_restore_report
from dbcrate.cli.params import (
    identity_option,
    jobs_option,
    json_option,
    progress_option,
    traceback_option,
)
from dbcrate.options import (
    ConflictPolicy,
    DdlSource,
    RestoreMode,
    RestoreOptions,
    StoragesPolicy,
    choices_of,
    default_of,
)

RESTORE_EPILOG = """
\b
Examples:
  dbcrate restore shop.crate mysql+pymysql://root@127.0.0.1/shop_copy
  dbcrate restore shop.crate sqlite:///copy.db -t 'order*'
  dbcrate restore shop.crate postgresql://postgres@127.0.0.1/shop --clean
  dbcrate restore -C shop.crate postgresql://postgres@127.0.0.1/new_shop
  dbcrate restore shop.crate postgresql://postgres@127.0.0.1/shop --dry-run
  dbcrate restore shop.crate sqlite:///app.db --mode into-existing --clean
  dbcrate restore old.crate sqlite:///app.db --mode into-existing --migrations steps.toml
  dbcrate restore shop.crate postgresql://postgres@127.0.0.1/shop -j 2 --resume
  cat shop.crate | dbcrate restore - sqlite:///copy.db
"""

PLAN_EPILOG = """
\b
Examples:
  dbcrate plan shop.crate postgresql://postgres@127.0.0.1/shop
  dbcrate plan shop.crate sqlite:///app.db --mode into-existing --clean --json
"""


def _choice(field_name: str) -> dict[str, Any]:
    """``type``, ``default`` and ``show_default`` of an option that sets the ``Literal`` field
    ``field_name`` of :class:`RestoreOptions`."""
    return {"type": click.Choice(choices_of(RestoreOptions, field_name)),
            "default": default_of(RestoreOptions, field_name), "show_default": True}


# the options restore and plan share: one declaration each, the same help in both commands
tables_option = click.option("-t", "--table", "include", multiple=True, metavar="PATTERN",
                             help="Restore only archive tables matching this glob (repeatable).")
exclude_option = click.option("-T", "--exclude-table", "exclude", multiple=True, metavar="PATTERN",
                              help="Do not restore tables matching this glob (repeatable).")
mode_option = click.option("--mode", **_choice("mode"),
                           help="recreate: drop/create from the archive's schema; into-existing: "
                           "keep the target's schema and load into it.")
clean_option = click.option("-c", "--clean", is_flag=True,
                            help="recreate: drop and recreate existing tables; into-existing: "
                            "empty the selected tables first.")
on_conflict_option = click.option("--on-conflict", **_choice("on_conflict"),
                                  help="Rows whose primary key exists (into-existing): fail the "
                                  "table, skip them, update them, or check (write nothing; list "
                                  "the rows that differ, exit 17).")
migrations_option = click.option("--migrations", metavar="FILE.toml",
                                 help="Declarative migration steps.")
ddl_option = click.option("--ddl", **_choice("ddl"),
                          help="Recreate from the archive's native schema (the source engine's "
                          "own definitions: same engine only; runs the archive's checked SQL) "
                          "or the portable one (runs no archive SQL); auto: native where it can.")
no_owner_option = click.option("-O", "--no-owner", is_flag=True,
                               help="Native schema: do not restore owners.")
no_privileges_option = click.option("-x", "--no-privileges", "--no-acl", "no_privileges",
                                    is_flag=True, help="Native schema: do not restore grants.")
create_option = click.option("-C", "--create", is_flag=True,
                             help="Create the target database first (PostgreSQL, MariaDB; "
                             "SQLite creates its file anyway); one that exists and holds tables "
                             "is refused unless --clean.")
strict_option = click.option("--strict", is_flag=True,
                             help="Any warning (an object not recreated, a default dropped ...) "
                             "fails the restore (exit 16).")
single_transaction_option = click.option("-1", "--single-transaction", is_flag=True,
                                         help="All or nothing (refused where the engine cannot "
                                         "roll DDL back).")
exit_on_error_option = click.option("-e", "--exit-on-error", is_flag=True,
                                    help="Stop at the first table that fails: the tables not "
                                    "started are skipped (else the restore goes on with the "
                                    "others and reports the failures).")
target_version_option = click.option("--target-schema-version", metavar="LABEL",
                                     help="Migrate to this schema version (default: as far as "
                                     "the steps go).")


@click.command(epilog=RESTORE_EPILOG)
@click.argument("archive")
@click.argument("url")
@tables_option
@exclude_option
@mode_option
@clean_option
@create_option
@click.option("-a", "--data-only", is_flag=True,
              help="Load rows into existing tables (no DDL): --mode into-existing.")
@ddl_option
@no_owner_option
@no_privileges_option
@on_conflict_option
@strict_option
@single_transaction_option
@jobs_option(RestoreOptions, "Tables loaded and indexes built in parallel (SQLite: one at a time).")
@exit_on_error_option
@click.option("-s", "--schema-only", is_flag=True, help="Create the tables, load no rows.")
@click.option("--hooks", metavar="FILE.py|MODULE", help="Python hooks (see docs/RESTORE.md).")
@migrations_option
@target_version_option
@click.option("--resume", is_flag=True,
              help="Continue a killed restore: skip what the target's journal says is committed.")
@click.option("--storages-to", metavar="DIR",
              help="Restore the archive's storages under DIR (each as DIR/<its name>).")
@click.option("--storages", "storages_policy", **_choice("storages_policy"),
              help="Existing files that differ: refuse (write nothing), merge (overwrite them, "
              "keep others), replace (each storage becomes exactly the archive's).")
@click.option("--no-storages", is_flag=True, help="Do not restore storages.")
@click.option("--no-data", is_flag=True, help="Restore the storages only (no tables).")
@click.option("--accept-edits", is_flag=True,
              help="python and directory kinds: restore data modules edited by hand (each is "
              "re-hashed, still parsed as literals only) and list which changed.")
@click.option("--dry-run", is_flag=True,
              help="Check everything (names, values, checksums) and print the plan; change nothing.")
@json_option("Print the report as JSON.")
@identity_option
@progress_option
@traceback_option
def restore(archive: str, url: str, include: tuple[str, ...], exclude: tuple[str, ...],
            mode: RestoreMode, clean: bool, data_only: bool, on_conflict: ConflictPolicy,
            strict: bool, single_transaction: bool, jobs: int, exit_on_error: bool,
            schema_only: bool, hooks: str | None, migrations: str | None,
            target_schema_version: str | None, resume: bool, storages_to: str | None,
            storages_policy: StoragesPolicy, no_storages: bool, no_data: bool, dry_run: bool,
            as_json: bool, progress: bool | None, ddl: DdlSource, no_owner: bool,
            no_privileges: bool, create: bool, accept_edits: bool,
            identities: tuple[str, ...]) -> None:
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
        no_data=no_data, ddl=ddl, no_owner=no_owner, no_privileges=no_privileges,
        create=create, accept_edits=accept_edits, identities=list(identities),
    )
    restore_and_report(archive, url, options, as_json, progress)


@click.command(epilog=PLAN_EPILOG)
@click.argument("archive")
@click.argument("url")
@tables_option
@exclude_option
@mode_option
@clean_option
@ddl_option
@no_owner_option
@no_privileges_option
@on_conflict_option
@migrations_option
@target_version_option
@json_option("Print the plan as JSON.")
@identity_option
@traceback_option
def plan(archive: str, url: str, include: tuple[str, ...], exclude: tuple[str, ...],
         mode: RestoreMode, clean: bool, on_conflict: ConflictPolicy, migrations: str | None,
         target_schema_version: str | None, as_json: bool, ddl: DdlSource, no_owner: bool,
         no_privileges: bool, identities: tuple[str, ...]) -> None:
    """Preflight a restore without touching the target (the same as restore --dry-run).

    Prints, table by table, what would happen: create, clean, append, the column
    mapping and casts, and every blocking problem (exit code 9 when something blocks).
    """
    options = RestoreOptions(include=list(include), exclude=list(exclude), mode=mode,
                             clean=clean, on_conflict=on_conflict, migrations=migrations,
                             target_schema_version=target_schema_version, dry_run=True,
                             ddl=ddl, no_owner=no_owner, no_privileges=no_privileges,
                             identities=list(identities))
    restore_and_report(archive, url, options, as_json, False)


def restore_and_report(archive: str, url: str, options: RestoreOptions, as_json: bool,
                       progress: bool | None) -> None:
    """Run the restore (or its preflight) and print its report.

    :raises DbcrateError: the report's failures (:meth:`RestoreReport.raise_for_failures`).
    """
    from dbcrate.cli.progress import run, show_progress  # the commands import what they run
    from dbcrate.restore.run import iter_restore

    report = run(iter_restore(archive, url, options), show_progress(progress), "Restoring")
    if as_json:
        console.out.print_json(json.dumps(report.to_dict(), default=str))
    else:
        print_restore_report(report, options.dry_run, console.out)
    report.raise_for_failures()
