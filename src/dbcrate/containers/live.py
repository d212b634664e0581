"""An archive of the ``directory`` kind read while a dump is still writing it: ``copy``
loads each table while the dump writes it (docs/CLI.md, "copy").

The dump (in another thread) hands over what it writes: :meth:`LiveArchive.publish_part` as
more chunks of a table it is still reading are in the directory, :meth:`LiveArchive.publish`
once its last chunk is, :meth:`LiveArchive.fail` when it stops. The restore sees a manifest
whose tables have their schemas from the start. In
:attr:`~dbcrate.containers.base.Archive.pending`, a table's :func:`begun_name` arrives with its
first chunks and its own name with its last: a table's own load starts at the first and takes
the chunks through :meth:`LiveArchive.table_chunks`, which waits for each next one; every other
reader of the chunks (a group's load, a load into existing tables, the preflight's checks)
waits for the whole table.

A published member is hard-linked from the dump's private temp directory into a holding
directory of the live archive's own: the rename that publishes the finished dump, or the
removal of the temp directory when the dump fails halfway, does not take a table the restore
is still loading. Names are checked and opened without following links as in every dump
directory (:class:`~dbcrate.containers.directory.ConfinedDirectory`); only members the dump
reported are read, with the sizes it reported. :meth:`LiveArchive.close` removes the holding
directory.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from dbcrate.arrivals import Arrivals
from dbcrate.containers.base import ArchiveTarget
from dbcrate.containers.directory import MEMBER_PATH, ConfinedDirectory, DirectoryReader, MemberInfo
from dbcrate.containers.members import MemberArchive, MemberReader
from dbcrate.model.manifest import Chunk, Manifest, TableEntry
from dbcrate.progress import Interrupted

T = TypeVar("T")

#: how often a load waiting for a table's next chunk checks whether the run is stopped
WAIT_TICK = 0.2


def begun_name(table: str) -> str:
    """The name that arrives in :attr:`LiveArchive.pending` once the first chunks of
    ``table`` may be read (its own name arrives once every chunk may; a NUL is in no table's
    name)."""
    return f"\0begun\0{table}"


class _LiveReader(DirectoryReader):
    """The directory reader over members reported by the dump (no listing check: the
    directory is still being written, by this process)."""

    def __init__(self, directory: str | os.PathLike[str], manifest: Manifest,
                 display: str) -> None:
        self.path = self.display = display
        self._accept_edits = False
        self.manifest = manifest
        self.members: dict[str, MemberInfo] = {}
        self._dir = ConfinedDirectory(directory, display)


class LiveArchive(MemberArchive):
    """The archive a dump is writing into ``directory``, described by ``manifest`` as it was
    before the first row was read (schemas, native schema, no chunks; copied: the dump's own
    manifest object is never shared). ``holding``: a new directory on the same file system
    that keeps the published members (created 0700; removed by :meth:`close`).
    ``estimates``: each table's rows and bytes as the source engine estimates them, its size
    for the restore's schedule until its chunks are written."""

    kind = "directory"

    def __init__(self, directory: str | os.PathLike[str], manifest: Manifest, *,
                 holding: str | os.PathLike[str], display: str | None = None,
                 estimates: dict[str, tuple[int, int]] | None = None) -> None:
        self._start = Manifest.from_json(manifest.to_json())
        self._display_name = display or str(directory)
        self._staging = Path(directory)
        self._holding = Path(holding)
        self._grown = threading.Condition()  # (chunks published, or the dump failed)
        self._estimates = dict(estimates or {})
        self.pending = Arrivals()
        # (one a killed run left: it is inside the copy's own spool)
        shutil.rmtree(self._holding, ignore_errors=True)
        self._holding.mkdir(mode=0o700)
        try:
            super().__init__(self._holding)
        except BaseException:
            shutil.rmtree(self._holding, ignore_errors=True)
            raise
        # the id a restore's journal uses is fixed now, before any chunk is added
        _ = self.journal_id

    def _open(self, path: ArchiveTarget, accept_edits: bool) -> MemberReader:
        return _LiveReader(str(path), self._start, self._display_name)

    def publish(self, entry: TableEntry) -> None:
        """The dump has written every chunk of ``entry`` (its manifest entry, read now and not
        kept): they may be read from now on. Called from the dump's thread."""
        assert self.pending is not None
        if self.pending.has(entry.name):
            return
        mine = self.manifest.table(entry.name)
        with self._grown:
            self._add_chunks(mine, entry)
            mine.status, mine.error = entry.status, entry.error
            self.pending.arrive(begun_name(entry.name))
            self.pending.arrive(entry.name)
            self._grown.notify_all()

    def publish_part(self, entry: TableEntry) -> None:
        """The dump has written more chunks of ``entry``, a table it is still reading: they may
        be read from now on (:meth:`table_chunks`). Called from the dump's thread."""
        assert self.pending is not None
        mine = self.manifest.table(entry.name)
        with self._grown:
            self._add_chunks(mine, entry)
            self.pending.arrive(begun_name(entry.name))
            self._grown.notify_all()

    def _add_chunks(self, mine: TableEntry, entry: TableEntry) -> None:
        """Hold and list the chunks of ``entry`` that ``mine`` does not have yet (the dump
        only ever appends a table's chunks)."""
        reader = self._reader
        assert isinstance(reader, _LiveReader)
        known = len(mine.chunks)
        if [c.member for c in entry.chunks[:known]] != [c.member for c in mine.chunks]:
            raise RuntimeError(f"table {entry.name}: the dump rewrote chunks already published")
        for chunk in entry.chunks[known:]:
            self._hold(chunk.member)
            reader.members[chunk.member] = MemberInfo(chunk.member, chunk.size)
        mine.chunks = mine.chunks + list(entry.chunks[known:])  # (a new list: readers iterate)

    def first_chunks_name(self, table: str) -> str:
        return begun_name(table)

    def table_chunks(self, entry: TableEntry,
                     stopped: Callable[[], bool] | None = None) -> Iterator[Chunk]:
        """The chunks of ``entry`` as the dump writes them: each as soon as it is published,
        the end once the whole table is (a load can start on a table still being read).

        :raises: what stopped the dump before the table was complete;
            :class:`~dbcrate.progress.Interrupted` once ``stopped()`` says so while waiting.
        """
        assert self.pending is not None
        name, index = entry.name, 0
        while True:
            with self._grown:
                while True:
                    chunks = self.manifest.table(name).chunks
                    if index < len(chunks) or self.pending.has(name):
                        break
                    failure = self.pending.failure
                    if failure is not None:
                        raise failure
                    if stopped is not None and stopped():
                        raise Interrupted("the run was interrupted")
                    self._grown.wait(timeout=WAIT_TICK)
            if index >= len(chunks):
                return
            yield chunks[index]
            index += 1

    def expected_size(self, entry: TableEntry) -> tuple[int, int]:
        if self.pending is None or self.pending.has(entry.name):
            return super().expected_size(entry)
        rows, size = super().expected_size(entry)  # (the chunks written so far)
        estimated_rows, estimated_size = self._estimates.get(entry.name, (0, 0))
        return max(rows, estimated_rows), max(size, estimated_size)

    def _hold(self, member: str) -> None:
        """Link ``member`` of the dump's directory into the holding directory."""
        if not MEMBER_PATH.match(member):
            raise ValueError(f"bad member name {member!r}")
        folder, _, _ = member.rpartition("/")
        (self._holding / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.link(self._staging / member, self._holding / member, follow_symlinks=False)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._holding, ignore_errors=True)

    def finish(self) -> None:
        """The dump is complete: a table it did not publish never will be (a wait for one
        ends with an error instead of blocking)."""
        assert self.pending is not None
        missing = [t.name for t in self.tables if not self.pending.has(t.name)]
        if missing:
            self.fail(RuntimeError(f"the dump ended without writing {', '.join(missing)}"))

    def fail(self, error: BaseException) -> None:
        """The dump stopped (``error``): the tables not published will not be."""
        assert self.pending is not None
        with self._grown:
            self.pending.fail(error)
            self._grown.notify_all()

    def in_arrival_order(self, items: Sequence[T], name: Callable[[T], str]) -> Iterator[T]:
        assert self.pending is not None
        left = {name(item): item for item in items}
        while left:
            arrived = self.pending.wait_any(set(left))
            if arrived is None:
                failure = self.pending.failure
                assert failure is not None
                raise failure
            yield left.pop(arrived)

    def wait_complete(self) -> None:
        """Block until every table is published or the dump failed (then raise its error)."""
        assert self.pending is not None
        for entry in self.tables:
            if not self.pending.wait_for(entry.name):
                failure = self.pending.failure
                assert failure is not None
                raise failure
