"""Choosing tables and schemas by glob patterns (``-t``/``-T``, ``-n``/``-N``)."""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase

from dbcrate.errors import UnknownTable


def select_names(names: list[str], include: list[str], exclude: list[str], where: str,
                 noun: str = "table",
                 spellings: Callable[[str], tuple[str, ...]] | None = None) -> list[str]:
    """Names matching any ``include`` pattern (all if none) and no ``exclude`` pattern.

    ``spellings`` gives the forms a pattern may match for a name (a table outside the default
    schema: ``sales.orders`` and ``orders``; one in it: ``orders`` and ``public.orders``);
    by default the name itself.

    :raises UnknownTable: an include pattern matches nothing (a typo must not silently dump or
        restore nothing).
    """
    forms = spellings or (lambda n: (n,))

    def matches(name: str, pattern: str) -> bool:
        return any(fnmatchcase(form, pattern) for form in forms(name))

    chosen = list(names)
    if include:
        unmatched = [p for p in include if not any(matches(n, p) for n in names)]
        if unmatched:
            raise UnknownTable(
                f"no {noun} in {where} matches {', '.join(repr(p) for p in unmatched)}",
                hint=f"{noun}s: " + (", ".join(names[:20]) or "(none)")
                + (" ..." if len(names) > 20 else ""),
            )
        chosen = [n for n in names if any(matches(n, p) for p in include)]
    return [n for n in chosen if not any(matches(n, p) for p in exclude)]


def select_tables(names: list[str], include: list[str], exclude: list[str], where: str,
                  spellings: Callable[[str], tuple[str, ...]] | None = None) -> list[str]:
    """:func:`select_names` for tables."""
    return select_names(names, include, exclude, where, "table", spellings)
