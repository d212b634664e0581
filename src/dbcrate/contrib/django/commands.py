"""What the three management commands share: error mapping and option plumbing.

Errors from dbcrate become ``CommandError`` with dbcrate's message, hint and exit code, so that
``manage.py`` exits with the same documented codes as the ``dbcrate`` command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.core.management.base import CommandError

from dbcrate.errors import DbcrateError
from dbcrate.progress import human_bytes

T = TypeVar("T")


def run(fn: Callable[[], T]) -> T:
    """Call ``fn``; a :class:`DbcrateError` becomes a ``CommandError`` with its exit code."""
    try:
        return fn()
    except DbcrateError as exc:
        text = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
        raise CommandError(text, returncode=exc.exit_code) from None


human = human_bytes
