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

__version__ = "0.2.0"

from .archive import Archive as Archive
from .archive import open_archive as open_archive
from .convert import ConvertResult as ConvertResult
from .convert import convert as convert
from .convert import dump_as as dump_as
from .convert import iter_convert as iter_convert
from .convert import iter_dump_as as iter_dump_as
from .dump import DumpResult as DumpResult
from .dump import dump as dump
from .dump import iter_dump as iter_dump
from .errors import DbcrateError as DbcrateError
from .kinds import CONTAINER_KINDS as CONTAINER_KINDS
from .options import DumpOptions as DumpOptions
from .options import RestoreOptions as RestoreOptions
from .progress import Event as Event
from .restore import RestoreReport as RestoreReport
from .restore import iter_restore as iter_restore
from .restore import restore as restore

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
