"""``manage.py dbcrate_restore ARCHIVE``: tables into DATABASES, files into MEDIA_ROOT."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dbcrate.containers.archive import open_archive
from dbcrate.contrib.django import config, storages, validation
from dbcrate.contrib.django.commands import human, run
from dbcrate.crypto.keys import Keyring
from dbcrate.errors import RestoreIncomplete
from dbcrate.options import MAX_DEFAULT_JOBS, RestoreOptions, default_jobs
from dbcrate.restore.run import RestoreReport, restore


class Command(BaseCommand):
    help = ("Restore a dbcrate archive: its tables into the database (settings.DATABASES), its "
            "media storage into MEDIA_ROOT and its other storages into DBCRATE['storages'].")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive")
        parser.add_argument("-i", "--identity", action="append", default=[], metavar="FILE",
                            help="an identity that opens an encrypted archive (repeatable; "
                            "also DBCRATE_IDENTITY)")
        parser.add_argument("--database", default="default")
        parser.add_argument("--app", action="append", default=[], metavar="NAME",
                            help="restore only these definitions, apps or models")
        parser.add_argument("--mode", choices=["recreate", "into-existing"], default="recreate",
                            help="recreate tables (into an empty database, or with --clean), or "
                            "load into the migrated schema")
        parser.add_argument("--clean", action="store_true")
        parser.add_argument("--on-conflict", choices=["error", "skip", "update"], default="error")
        parser.add_argument("--storages-to", default=None, metavar="DIR",
                            help="restore each storage as DIR/<its name in the archive> "
                            "(default: the media storage into MEDIA_ROOT whatever its name, the "
                            "others into the DBCRATE['storages'] directories of the same name)")
        parser.add_argument("--storages", dest="policy", choices=["refuse", "merge", "replace"],
                            default="refuse")
        parser.add_argument("--no-storages", action="store_true")
        parser.add_argument("--no-data", action="store_true")
        parser.add_argument("-j", "--jobs", type=int, default=default_jobs(),
                            help="parallel jobs (default: the number of cores, at most "
                            f"{MAX_DEFAULT_JOBS}; here: {default_jobs()})")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        run(lambda: self._handle(opts))

    def _handle(self, opts: dict[str, Any]) -> None:
        validation.validate(dump=False)  # before the archive or the database is opened
        validation.check_arguments(opts["app"], [])
        url = config.database_url(opts["database"])
        include = []
        if opts["app"]:
            include = [config.exact(t) for t in config.select(opts["app"], []).tables]
        options = RestoreOptions(
            include=include, mode=opts["mode"], clean=opts["clean"],
            on_conflict=opts["on_conflict"], storages_to=opts["storages_to"],
            storages_policy=opts["policy"], no_storages=opts["no_storages"],
            no_data=opts["no_data"], jobs=opts["jobs"], dry_run=opts["dry_run"],
            identities=opts["identity"],
        )
        keys = Keyring.from_environment(opts["identity"])
        with open_archive(opts["archive"], keys=keys) as archive:
            storage = archive.manifest.storage
            placements = []
            if storage is not None and options.storages_to is None and not options.no_storages:
                placements = storages.place(storage)  # [] when the project names no directory
            if placements:
                report = storages.restore_placed(archive, url, options, placements)
            else:  # --storages-to DIR (each storage as DIR/<name>), or no storage to place
                report = restore(archive, url, options)
        self._print(report)
        if not report.ok:
            raise RestoreIncomplete(report)

    def _print(self, report: RestoreReport) -> None:
        for t in report.tables:
            line = f"{t.name}: {t.status}, {t.rows:,} rows"
            self.stdout.write(line + (f" ({t.error})" if t.error else ""))
        for w in report.warnings:
            self.stderr.write(f"warning: {w}")
        if report.storages:
            st = report.storages
            self.stdout.write(f"storages: {st.get('written', 0):,} files written "
                              f"({human(st.get('bytes_written', 0))}), "
                              f"{st.get('unchanged', 0):,} identical, under {st['destination']}")
            for root in st.get("roots", []):
                self.stdout.write(f"  {root['name']} -> {root['destination']} ({root['why']}): "
                                  f"{root['written']:,} written, {root['unchanged']:,} identical")
