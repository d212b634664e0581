"""Driving a library generator from the command line, with a progress bar on standard error.

The library never prints: it yields :class:`dbcrate.progress.Event` values. :func:`run` drains
them, drawing one bar per phase when asked (:func:`show_progress`: by default only when standard
error is a terminal).
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dbcrate.cli.console import err
from dbcrate.progress import Event, drain

T = TypeVar("T")


def show_progress(flag: bool | None) -> bool:
    """``--progress/--no-progress``: as given, else whether standard error is a terminal."""
    if flag is not None:
        return flag
    return sys.stderr.isatty()


def run(gen: Generator[Event, None, T], show: bool, label: str) -> T:
    """Drive a library generator to its return value, drawing a progress bar when ``show``."""
    if not show:
        return drain(gen)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        # one bar per phase: a restore builds indexes while other tables still load
        first = bar.add_task(label, total=None, detail="")
        tasks: dict[str, TaskID] = {}

        def show_event(ev: Event) -> None:
            detail = f"{ev.rows:,} rows" if ev.phase == "data" else f"{ev.done}/{ev.total or '?'}"
            if ev.phase not in tasks:  # the first phase takes the placeholder's bar
                tasks[ev.phase] = bar.add_task("", detail="") if tasks else first
            bar.update(tasks[ev.phase], description=ev.description, completed=ev.done,
                       total=ev.total, detail=detail)

        return drain(gen, show_event)
