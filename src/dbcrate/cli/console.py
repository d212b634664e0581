"""The two consoles every command prints to: ``out`` (results, on standard output) and ``err``
(messages and progress bars, on standard error).

``out`` writes through :class:`~dbcrate.cli.output.StdoutProxy`, which remembers a write that
failed, so that the error boundary (:mod:`dbcrate.cli.app`) can tell "standard output is full
or closed" (exit 12) from a bug in dbcrate.

Both are made the first time they are used (PEP 562), with rich: ``--help`` and ``--version``
print through click and never load rich. The commands therefore use them as ``console.out``
and ``console.err`` when they print; ``from dbcrate.cli.console import out`` still works (and
makes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbcrate.cli.output import StdoutProxy
from dbcrate.errors import DbcrateError

if TYPE_CHECKING:
    from rich.console import Console

    err: Console
    out: Console

STDOUT = StdoutProxy()  # what out writes to: a failed write is an output error, not a bug


def __getattr__(name: str) -> Any:
    """``err`` and ``out``, made once (both at once), when first asked for."""
    if name not in ("err", "out"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    made = {"err": Console(stderr=True, highlight=False),
            "out": Console(file=STDOUT, highlight=False, soft_wrap=True)}  # type: ignore[arg-type]
    globals().update(made)
    return made[name]


def stderr_console() -> Console:
    """``err`` (made when it is not yet)."""
    found: Console | None = globals().get("err")
    return found if found is not None else __getattr__("err")


def print_error(exc: DbcrateError) -> None:
    """A user error as the user sees it: ``error: <what, where>`` and ``hint: <what to do>``."""
    from rich.text import Text

    stream = stderr_console()
    stream.print(Text.assemble(("error: ", "bold red"), exc.message))
    if exc.hint:
        stream.print(f"hint: {exc.hint}", markup=False)
