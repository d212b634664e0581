"""The two consoles every command prints to: ``out`` (results, on standard output) and ``err``
(messages and progress bars, on standard error).

``out`` writes through :class:`~dbcrate.cli.output.StdoutProxy`, which remembers a write that
failed, so that the error boundary (:mod:`dbcrate.cli.app`) can tell "standard output is full
or closed" (exit 12) from a bug in dbcrate.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from dbcrate.cli.output import StdoutProxy
from dbcrate.errors import DbcrateError

err = Console(stderr=True, highlight=False)
STDOUT = StdoutProxy()  # what out writes to: a failed write is an output error, not a bug
out = Console(file=STDOUT, highlight=False, soft_wrap=True)  # type: ignore[arg-type]


def print_error(exc: DbcrateError) -> None:
    """A user error as the user sees it: ``error: <what, where>`` and ``hint: <what to do>``."""
    err.print(Text.assemble(("error: ", "bold red"), exc.message))
    if exc.hint:
        err.print(f"hint: {exc.hint}", markup=False)
