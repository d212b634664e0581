"""dbcrate: dump, list, verify and restore SQL databases through one portable archive.

The library API (the CLI is a thin layer over it)::

    import dbcrate
    dbcrate.dump("sqlite:///app.db", "app.crate")
    with dbcrate.open_archive("app.crate") as archive:
        print([t.name for t in archive.tables])
    report = dbcrate.restore("app.crate", "postgresql+psycopg://postgres@127.0.0.1/app")
    report.raise_for_failures()
"""

from __future__ import annotations

__version__ = "0.3.0"

from dbcrate.containers.archive import Archive as Archive
from dbcrate.containers.archive import open_archive as open_archive
from dbcrate.containers.convert import ConvertResult as ConvertResult
from dbcrate.containers.convert import convert as convert
from dbcrate.containers.convert import dump_as as dump_as
from dbcrate.containers.convert import iter_convert as iter_convert
from dbcrate.containers.convert import iter_dump_as as iter_dump_as
from dbcrate.containers.kinds import CONTAINER_KINDS as CONTAINER_KINDS
from dbcrate.dump.run import DumpResult as DumpResult
from dbcrate.dump.run import dump as dump
from dbcrate.dump.run import iter_dump as iter_dump
from dbcrate.errors import DbcrateError as DbcrateError
from dbcrate.options import DumpOptions as DumpOptions
from dbcrate.options import RestoreOptions as RestoreOptions
from dbcrate.progress import Event as Event
from dbcrate.restore.run import RestoreReport as RestoreReport
from dbcrate.restore.run import iter_restore as iter_restore
from dbcrate.restore.run import restore as restore

__all__ = [
    "CONTAINER_KINDS",
    "Archive",
    "ConvertResult",
    "DbcrateError",
    "DumpOptions",
    "DumpResult",
    "Event",
    "RestoreOptions",
    "RestoreReport",
    "__version__",
    "convert",
    "dump",
    "dump_as",
    "iter_convert",
    "iter_dump",
    "iter_dump_as",
    "iter_restore",
    "open_archive",
    "restore",
]
