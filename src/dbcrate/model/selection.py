"""Choosing tables by glob patterns (``-t`` / ``-T``)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from dbcrate.errors import UnknownTable


def select_tables(names: list[str], include: list[str], exclude: list[str], where: str) -> list[str]:
    """Names matching any ``include`` pattern (all if none) and no ``exclude`` pattern.

    :raises UnknownTable: an include pattern matches nothing (a typo must not silently dump or
        restore nothing).
    """
    chosen = list(names)
    if include:
        unmatched = [p for p in include if not any(fnmatchcase(n, p) for n in names)]
        if unmatched:
            raise UnknownTable(
                f"no table in {where} matches {', '.join(repr(p) for p in unmatched)}",
                hint="tables: " + (", ".join(names[:20]) or "(none)")
                + (" ..." if len(names) > 20 else ""),
            )
        chosen = [n for n in names if any(fnmatchcase(n, p) for p in include)]
    return [n for n in chosen if not any(fnmatchcase(n, p) for p in exclude)]
