"""The order in which a dump's read tasks are appended to the archive, and the chunks a
reader hands over before its task ends.

A task is appended once it is read: in task order (a tar is one stream), or, where the output
keeps no order (a directory), as soon as its table's earlier parts are (a table's chunks are
numbered on across its parts). Where a reader follows the archive as it is written (``copy``),
each task's reader hands over every chunk once it is complete, through the same queue as its
end (so a task's chunks always come before its end), and the runner appends a task's chunks
while the task is still read, as long as the task is its table's head (:func:`is_head`).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from typing import Any

from dbcrate.dump.encode import EncodedChunk
from dbcrate.dump.plan import DumpTask

#: what the readers tell the runner: a task number (read to its end), or a task number and
#: one complete chunk of it
Arrived = queue.SimpleQueue[int | tuple[int, EncodedChunk]]


def announce(arrived: Arrived, number: int) -> Any:
    """A done-callback putting task ``number`` on ``arrived`` (from the reading thread)."""
    return lambda _: arrived.put(number)


def chunk_to(arrived: Arrived, number: int) -> Callable[[EncodedChunk], None]:
    """What task ``number``'s reader does with each complete chunk: put it on ``arrived``."""
    return lambda chunk: arrived.put((number, chunk))


def take(item: int | tuple[int, EncodedChunk], done: set[int],
         held: dict[int, list[EncodedChunk]]) -> None:
    """Note one thing arrived: a task read to its end, or one complete chunk of a task."""
    if isinstance(item, int):
        done.add(item)
    else:
        held.setdefault(item[0], []).append(item[1])


def take_all(arrived: Arrived, timeout: float, done: set[int],
             held: dict[int, list[EncodedChunk]]) -> None:
    """Take what arrives within ``timeout`` seconds, then all that is there (a task's chunks
    always come before its end: the queue is first in, first out)."""
    with contextlib.suppress(queue.Empty):
        take(arrived.get(timeout=timeout), done, held)
        while True:
            take(arrived.get_nowait(), done, held)


def is_head(tasks: tuple[DumpTask, ...], number: int, appended: set[int]) -> bool:
    """Whether task ``number``'s chunks may be appended now: its table's earlier parts are
    (a table's chunks are numbered on across its parts)."""
    return number not in appended and (tasks[number].part == 0 or number - 1 in appended)


def appendable(tasks: tuple[DumpTask, ...], done: set[int], appended: set[int],
               any_order: bool) -> list[int]:
    """The tasks read (``done``) whose chunks may be appended now, in task order: the next in
    task order; or, in ``any_order``, each whose table's earlier parts are appended (a
    table's parts are consecutive tasks)."""
    if not any_order:
        head = len(appended)
        return [head] if head in done else []
    return sorted(n for n in done if tasks[n].part == 0 or n - 1 in appended)
