"""What the three management commands share: error mapping and option plumbing.

Errors from dbcrate become ``CommandError`` with dbcrate's message, hint and exit code, so that
``manage.py`` exits with the same documented codes as the ``dbcrate`` command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import CommandError

from dbcrate.errors import DbcrateError

T = TypeVar("T")


def run(fn: Callable[[], T]) -> T:
    """Call ``fn``; a :class:`DbcrateError` becomes a ``CommandError`` with its exit code."""
    try:
        return fn()
    except DbcrateError as exc:
        text = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        raise CommandError(text, returncode=exc.exit_code) from None


def human(n: Any) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)
