"""Progress events: what the library reports while it works (it never prints).

``iter_dump`` and ``iter_restore`` are generators of :class:`Event`; an event also unpacks as
the Camelot-style tuple ``(done, total, description)``. The CLI turns them into a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One step of work.

    :param phase: ``plan``, ``data``, ``verify``, ``schema``, ``indexes``, ``constraints``,
        ``sequences``, ``storage`` (files stored or restored), ``convert`` or ``done``.
    :param done: units finished in this phase (rows for ``data``, steps otherwise).
    :param total: units expected (``None`` when unknown).
    :param description: a human sentence ("Copy data of table Album").
    :param table: the table concerned, if any.
    :param rows: rows moved for this table so far.
    :param bytes: archive bytes written or read so far (whole run).
    """

    phase: str
    done: int
    total: int | None
    description: str
    table: str | None = None
    rows: int = 0
    bytes: int = 0

    def __iter__(self) -> Iterator[object]:
        return iter((self.done, self.total, self.description))


def drain(gen: Generator[Event, None, T], on_event: Callable[[Event], None] | None = None) -> T:
    """Run a progress generator to its end and return its return value, passing each event to
    ``on_event`` (how ``dump()``, ``restore()`` and the CLI drive ``iter_dump``/``iter_restore``)."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_event is not None:
            on_event(event)


def human_bytes(n: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 MiB`` (for progress lines and reports)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
