"""Driving a library generator from the command line, with progress lines on standard error.

The library never prints: it yields :class:`dbcrate.progress.Event` values. :func:`run` drains
them, drawing when asked (:func:`show_progress`: by default only when standard error is a
terminal):

* one overall bar (``overall`` events): bytes done of the total, the rate, the time left;
* one line per table being read or written (``data`` events): its rows and bytes, removed when
  its last event (``finished``) comes, so that no finished table's line stays behind;
* one status line for the other phases (plan, schema, indexes ...), replaced by each event.

Sizes are shown for people (``12.3 MiB``), never as raw byte counts.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TypeVar

from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn
from rich.progress import Task as BarTask
from rich.table import Column
from rich.text import Text

from dbcrate.cli.console import err
from dbcrate.progress import Event, drain, human_bytes

T = TypeVar("T")

#: phases whose ``done``/``total`` count bytes
_BYTE_PHASES = frozenset({"overall", "verify"})


def show_progress(flag: bool | None) -> bool:
    """``--progress/--no-progress``: as given, else whether standard error is a terminal."""
    if flag is not None:
        return flag
    return sys.stderr.isatty()


class _Detail(ProgressColumn):
    """What a line counts, for people: ``12.3 MiB/80.0 MiB 4.1 MiB/s 0:00:12`` (done/total,
    rate, time left) for the overall bar, ``1,234/5,000 rows, 5.6 MiB`` for a table, ``3/12``
    for a step."""

    def render(self, task: BarTask) -> Text:
        kind = task.fields.get("kind", "steps")
        if kind == "table":
            rows, size = task.fields.get("rows", 0), task.fields.get("size", 0)
            of = f"/{task.total:,.0f}" if task.total else ""
            return Text(f"{rows:,}{of} rows, {human_bytes(size)}", no_wrap=True)
        if kind == "bytes":
            done = human_bytes(task.completed)
            total = f"/{human_bytes(task.total)}" if task.total is not None else ""
            speed = _speed(task)
            rate = f" {human_bytes(speed)}/s" if speed else ""
            left = (task.total - task.completed) / speed if task.total and speed else None
            eta = f" {_clock(max(0.0, left))}" if left is not None else ""
            return Text(f"{done}{total}{rate}{eta}", no_wrap=True)
        if kind == "text" or task.total is None:
            return Text("")
        return Text(f"{task.completed:,.0f}/{task.total:,.0f}")


def _speed(task: BarTask) -> float | None:
    """Bytes per second: rich's recent-window rate once it has two samples, before that the
    average since the line appeared (a run that moves once before it ends still shows one)."""
    if task.speed:
        return task.speed
    elapsed = task.elapsed
    if task.completed and elapsed:
        return task.completed / elapsed
    return None


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Screen:
    """The lines on screen and which event updates which line."""

    def __init__(self, bar: Progress, label: str) -> None:
        self.bar = bar
        self.overall: TaskID | None = None
        self.tables: dict[str, TaskID] = {}
        self.status: TaskID | None = bar.add_task(label, total=None, kind="text")

    def show(self, ev: Event) -> None:
        if ev.phase == "overall":
            self._overall(ev)
        elif ev.phase == "data" and ev.table is not None:
            self._table(ev)
        else:
            self._status(ev)

    def _overall(self, ev: Event) -> None:
        if self.overall is None:
            if self.status is not None:  # the plan's line: the data phase has begun
                self.bar.remove_task(self.status)
                self.status = None
            self.overall = self.bar.add_task(ev.description, total=ev.total, kind="bytes")
        self.bar.update(self.overall, description=ev.description, completed=ev.done,
                        total=ev.total)

    def _table(self, ev: Event) -> None:
        line = self.tables.get(ev.table or "")
        if ev.finished:  # the table is done: its line goes (the overall bar says the rest)
            if line is not None:
                self.bar.remove_task(line)
                del self.tables[ev.table or ""]
            return
        if line is None:
            self.tables[ev.table or ""] = self.bar.add_task(
                f"  {ev.description}", total=ev.total, completed=ev.done, kind="table",
                rows=ev.rows, size=ev.bytes)
        else:
            self.bar.update(line, completed=ev.done, total=ev.total, rows=ev.rows, size=ev.bytes)

    def _status(self, ev: Event) -> None:
        if ev.phase == "done":
            if self.status is not None:
                self.bar.remove_task(self.status)
                self.status = None
            return
        kind = "bytes" if ev.phase in _BYTE_PHASES else "text" if ev.phase == "plan" else "steps"
        total = None if kind == "text" else ev.total  # "2 tables to dump" is no 0/2 bar
        if self.status is None:
            self.status = self.bar.add_task(ev.description, total=total, completed=ev.done,
                                            kind=kind)
        elif self.bar.tasks[self._index(self.status)].description != ev.description:
            # a new piece of work: all of the line changes at once, its rate starts again
            self.bar.reset(self.status, total=total, completed=ev.done,
                           description=ev.description, kind=kind)
        else:
            self.bar.update(self.status, completed=ev.done, total=total)

    def _index(self, task_id: TaskID) -> int:
        return next(i for i, t in enumerate(self.bar.tasks) if t.id == task_id)


def run(gen: Generator[Event, None, T], show: bool, label: str) -> T:
    """Drive a library generator to its return value, drawing progress lines when ``show``;
    the lines are cleared when it ends (what stays on screen is the command's own output)."""
    if not show:
        return drain(gen)
    columns = (
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=20),
        _Detail(),
    )
    with Progress(*columns, console=err, transient=True, refresh_per_second=8) as bar:
        screen = _Screen(bar, label)
        return drain(gen, screen.show)
