"""``manage.py dbcrate_restore ARCHIVE``: tables into DATABASES, files into MEDIA_ROOT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from dbcrate.contrib.django import config
from dbcrate.contrib.django.commands import human, run
from dbcrate.errors import RestoreIncomplete
from dbcrate.options import RestoreOptions
from dbcrate.restore import restore


class Command(BaseCommand):
    help = ("Restore a dbcrate archive: its tables into the database (settings.DATABASES) and "
            "its storages beside MEDIA_ROOT.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive")
        parser.add_argument("--database", default="default")
        parser.add_argument("--app", action="append", default=[], metavar="NAME",
                            help="restore only these definitions, apps or models")
        parser.add_argument("--mode", choices=["recreate", "into-existing"], default="recreate",
                            help="recreate tables (into an empty database, or with --clean), or "
                            "load into the migrated schema")
        parser.add_argument("--clean", action="store_true")
        parser.add_argument("--on-conflict", choices=["error", "skip", "update"], default="error")
        parser.add_argument("--storages-to", default=None, metavar="DIR",
                            help="where the storages go (default: the parent of MEDIA_ROOT, so "
                            "that the media storage lands in MEDIA_ROOT)")
        parser.add_argument("--storages", dest="policy", choices=["refuse", "merge", "replace"],
                            default="refuse")
        parser.add_argument("--no-storages", action="store_true")
        parser.add_argument("--no-data", action="store_true")
        parser.add_argument("-j", "--jobs", type=int, default=1)
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        run(lambda: self._handle(opts))

    def _handle(self, opts: dict[str, Any]) -> None:
        url = config.database_url(opts["database"])
        include = []
        if opts["app"]:
            include = [config.exact(t) for t in config.select(opts["app"], []).tables]
        target = opts["storages_to"]
        media = str(getattr(settings, "MEDIA_ROOT", None) or "")
        if target is None and media:
            target = str(config.storages_basepath(config.default_storages())
                         or Path(media).resolve().parent)
        options = RestoreOptions(
            include=include, mode=opts["mode"], clean=opts["clean"],
            on_conflict=opts["on_conflict"], storages_to=target, storages_policy=opts["policy"],
            no_storages=opts["no_storages"], no_data=opts["no_data"], jobs=opts["jobs"],
            dry_run=opts["dry_run"],
        )
        report = restore(opts["archive"], url, options)
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
        if not report.ok:
            raise RestoreIncomplete(report)
