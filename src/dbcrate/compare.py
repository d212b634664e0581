"""Comparing an archive with a live database, without changing anything."""

from __future__ import annotations

from typing import Any

from dbcrate.connect import open_engine
from dbcrate.containers.archive import Archive
from dbcrate.restore.mapping import plan_table


def compare_with(archive: Archive, url: str) -> list[dict[str, Any]]:
    """Per archive table: is it in the database, and how do its columns compare?

    ``columns`` is ``same``, ``compatible`` (loadable with ``--mode into-existing``) or
    ``different``; ``differences`` lists what differs, in words.
    """
    engine, dialect, _ = open_engine(url)
    rows = []
    try:
        with engine.connect() as conn:
            present = dialect.present_tables(conn, [e.schema for e in archive.tables])
            for entry in archive.tables:
                if entry.name not in present:
                    rows.append({"name": entry.name, "present": False, "columns": "-",
                                 "differences": ["not in the database"]})
                    continue
                target = dialect.reflect(conn, entry.name)
                tmap = plan_table(entry.schema, target,
                                  case_insensitive=dialect.case_insensitive_columns)
                diffs = list(tmap.blocking)
                diffs += [f"archive column {c!r} not in the database" for c in tmap.dropped]
                diffs += [f"database column {c.target.name!r} not in the archive"
                          for c in tmap.columns if c.source is None]
                diffs += [c.describe() for c in tmap.columns if c.source is not None and c.cast != "same"]
                status = "same" if not diffs else "compatible" if not tmap.blocking else "different"
                rows.append({"name": entry.name, "present": True, "columns": status,
                             "differences": diffs})
    finally:
        engine.dispose()
    return rows
