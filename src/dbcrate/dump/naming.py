"""Default archive names: what ``dbcrate dump URL DIRECTORY`` calls the archive it writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa


def default_name(url: str, directory: Path, *, data: bool = True,
                 storages: bool = False, suffix: str = ".crate") -> Path:
    """``<database>_<UTC timestamp>[_data][_storages].crate`` inside ``directory`` (the
    suffixes say which halves the archive holds, as diskette names its archives)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    halves = ("_data" if data else "") + ("_storages" if storages else "")
    return directory / f"{database_stem(url)}_{stamp}{halves}{suffix}"


def database_stem(url: str) -> str:
    """The database's name from ``url`` (a file's stem for SQLite, ``db`` when it has none),
    with every character but letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    try:
        parsed = sa.engine.make_url(url) if "://" in url else None
    except sa.exc.ArgumentError:
        parsed = None
    base = Path(parsed.database or "db").stem if parsed else Path(url).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base) or "db"
