"""``manage.py dbcrate_ls ARCHIVE``: what an archive holds (no database needed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dbcrate.containers.archive import open_archive
from dbcrate.contrib.django.commands import human, run
from dbcrate.storages.restore import reader_of, summarize


class Command(BaseCommand):
    help = "List a dbcrate archive: tables, rows, storages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive")
        parser.add_argument("-i", "--identity", action="append", default=[], metavar="FILE",
                            help="an identity that opens an encrypted archive (repeatable; "
                            "also DBCRATE_IDENTITY)")

    def handle(self, *args: Any, **opts: Any) -> None:
        run(lambda: self._handle(opts["archive"], opts["identity"]))

    def _handle(self, path: str, identities: list[str]) -> None:
        from dbcrate.crypto.keys import Keyring

        with open_archive(path, keys=Keyring.from_environment(identities)) as archive:
            m = archive.manifest
            self.stdout.write(f"{path}: format {m.format_version}, created {m.created_at}, "
                              f"from {m.source.engine} {m.source.url}")
            for t in m.tables:
                self.stdout.write(f"  {t.name}: {t.rows:,} rows, {human(t.size)}")
            if m.storage:
                self.stdout.write(f"storages: {m.storage.files:,} files, {human(m.storage.bytes)}")
                for row in summarize(reader_of(archive), m.storage):
                    self.stdout.write(f"  {row['directory']}: {row['files']:,} files, "
                                      f"{human(row['bytes'])}")
