"""``manage.py dbcrate_dump [OUTPUT]``: the project's database and media into one archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dbcrate.atomic import AutoName
from dbcrate.contrib.django import config, validation
from dbcrate.contrib.django.commands import human, run
from dbcrate.dump.run import default_name, dump
from dbcrate.dump.run import plan as plan_dump
from dbcrate.options import MAX_DEFAULT_JOBS, DumpOptions, default_jobs
from dbcrate.storages.file_check import describe


class Command(BaseCommand):
    help = ("Dump the database (settings.DATABASES) and the media files (MEDIA_ROOT) into one "
            "dbcrate archive.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", nargs="?",
                            help="archive file or directory (default: DBCRATE['archive_dir'] or "
                            "the current directory, named <db>_<UTC>[_data][_storages].crate)")
        parser.add_argument("--database", default="default", help="a key of DATABASES")
        parser.add_argument("--app", action="append", default=[], metavar="NAME",
                            help="a definition of DBCRATE['applications'], an app label or a "
                            "model label (app.Model); repeatable. Default: everything")
        parser.add_argument("--exclude-model", action="append", default=[], metavar="LABEL",
                            help="leave out a model (app.Model) or an app; repeatable")
        parser.add_argument("--storage", action="append", default=None, metavar="DIR",
                            help="a directory of files to store (default: MEDIA_ROOT)")
        parser.add_argument("--storage-exclude", action="append", default=None, metavar="PATTERN")
        parser.add_argument("--no-data", action="store_true", help="storages only")
        parser.add_argument("--no-storages", action="store_true", help="tables only")
        parser.add_argument("--format", default=None, help="data format (default: parquet)")
        parser.add_argument("-j", "--jobs", type=int, default=default_jobs(),
                            help="parallel jobs (default: the number of cores, at most "
                            f"{MAX_DEFAULT_JOBS}; here: {default_jobs()})")
        parser.add_argument("--chmod", default=None, help="archive permissions (octal, 600)")
        parser.add_argument("--check", action="store_true",
                            help="check settings.DBCRATE and print what would be dumped "
                            "(each definition's tables, estimated rows, storages); write nothing")
        parser.add_argument("--print-plan", action="store_true", help="the plan as JSON")
        parser.add_argument("-r", "--recipient", action="append", default=[], metavar="KEY",
                            help="encrypt for this age or ssh public key (repeatable)")
        parser.add_argument("-R", "--recipients-file", action="append", default=[],
                            metavar="FILE", help="encrypt for the public keys in FILE")

    def handle(self, *args: Any, **opts: Any) -> None:
        run(lambda: self._handle(opts))

    def _handle(self, opts: dict[str, Any]) -> None:
        # every definition, option and argument is checked before the database is opened
        # (the configured storages must exist unless --storage or --no-storages sets them aside)
        validation.validate(dump=not (opts["no_storages"] or opts["storage"]))
        validation.check_arguments(opts["app"], opts["exclude_model"])
        settings = config.options()
        url = config.database_url(opts["database"])
        storages = [] if opts["no_storages"] else (opts["storage"] or config.default_storages())
        basepath = config.storages_basepath(storages)
        include: list[str] = []
        exclude: list[str] = []
        file_columns: list[str] = []
        if opts["app"] or settings.get("applications"):
            selection = config.select(opts["app"], opts["exclude_model"])
            include = [config.exact(t) for t in selection.tables]
        else:  # the whole database (django_migrations included), less excluded models
            selection = config.select(["*"], [])
            excluded = config.select(opts["exclude_model"], []) if opts["exclude_model"] \
                else config.Selection()
            exclude = [config.exact(t) for t in excluded.tables]
            selection.file_fields = [f for f in selection.file_fields
                                     if f[0] not in excluded.tables]
        root = config.media_name(basepath)
        if storages and root is not None and not opts["no_data"]:
            file_columns = [f"{c.table}.{c.column}={c.root}"
                            for c in config.file_columns(selection, root)]
        mode = opts["chmod"] or settings.get("chmod", 0o600)
        options = DumpOptions(
            include=include, exclude=exclude,
            data_format=opts["format"] or settings.get("format", "parquet"),
            jobs=opts["jobs"], storages=storages,
            storage_exclude=opts["storage_exclude"] or list(settings.get("storage_exclude", [])),
            storages_basepath=basepath, no_data=opts["no_data"],
            no_storages=opts["no_storages"] or not storages, file_columns=file_columns,
            archive_mode=int(mode, 8) if isinstance(mode, str) else int(mode),
            encryption=_encryption(opts["recipient"], opts["recipients_file"]),
        )
        if opts["check"] or opts["print_plan"]:
            self._preview(url, options, as_json=opts["print_plan"])
            return
        output: str | AutoName = opts["output"] or str(settings.get("archive_dir") or ".")
        if Path(output).is_dir():
            # a name dbcrate chooses never replaces an earlier backup (-2, -3 ... instead)
            output = AutoName(default_name(url, Path(output), data=not opts["no_data"],
                                           storages=bool(storages)), ".crate")
        result = dump(url, output, options)
        m = result.manifest
        for w in result.warnings[:50]:
            self.stderr.write(f"warning: {w}")
        stored = f" and {m.storage.files:,} files ({human(m.storage.bytes)})" if m.storage else ""
        self.stdout.write(f"dumped {len(m.tables)} tables, {m.rows:,} rows{stored} to "
                          f"{result.path}")
        if m.storage and m.storage.file_check:
            for line in describe(m.storage.file_check):
                self.stderr.write(f"warning: {line}")

    def _preview(self, url: str, options: DumpOptions, *, as_json: bool) -> None:
        """``--print-plan`` (the dump plan as JSON) or ``--check`` (the definitions, then what
        would be dumped and stored); nothing is written."""
        plan = plan_dump(url, options)
        if as_json:
            self.stdout.write(json.dumps(plan.to_dict(), indent=1))
            return
        self._print_definitions()
        for t in plan.tables:
            est = plan.estimated_rows.get(t.name)
            self.stdout.write(f"would dump {t.name} (~{est if est is not None else '?'} rows)")
        for st in plan.storages:
            self.stdout.write(f"would store {st['name']}: {st['files']:,} files, "
                              f"{human(st['bytes'])}")

    def _print_definitions(self) -> None:
        """``--check``: settings.DBCRATE is valid (it was checked), and what each definition
        selects."""
        definitions = config.options().get("applications") or []
        self.stdout.write(f"settings.DBCRATE is valid ({len(definitions)} definitions)")
        for d in definitions:
            tables = sorted(config.select([str(d["name"])], []).tables)
            kind = "drain, " if d.get("drain") else ""
            self.stdout.write(f"definition {d['name']!r} ({kind}{len(tables)} tables): "
                              + ", ".join(tables))


def _encryption(recipients: list[str], files: list[str]) -> Any:
    """The dump's :class:`dbcrate.crypto.keys.Encryption` (``-r``/``-R``), or None."""
    if not recipients and not files:
        return None
    from dbcrate.crypto.keys import Encryption, read_recipients

    return Encryption(read_recipients(recipients, files))
