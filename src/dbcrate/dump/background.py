"""A dump run in a thread of its own into a dump directory, each table handed over as soon as
it is written: ``copy`` restores from the :class:`~dbcrate.containers.live.LiveArchive` while
the source is still being read (docs/CLI.md, "copy").

The dump is :func:`~dbcrate.dump.run.iter_dump` unchanged (one snapshot, the same plan, the
same files), told of each written table through its observer. Its progress events are
forwarded until the archive is open (:meth:`BackgroundDump.opened`); after that the restore's
events tell the progress (a table is restored soon after it is read).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

from dbcrate.containers.live import LiveArchive
from dbcrate.dump.run import DumpResult, DumpStopped, iter_dump
from dbcrate.errors import DbcrateError
from dbcrate.model.manifest import Manifest, TableEntry
from dbcrate.options import DumpOptions
from dbcrate.progress import TICK, Event


class BackgroundDump:
    """``iter_dump(url, output, options)`` in a thread; ``options.container`` must be
    ``directory`` (the members are read from the directory while it is written).

    Use: :meth:`start`, ``archive = yield from`` :meth:`wait_opened`, restore from ``archive``,
    then :meth:`join` (the dump's result, or its error); :meth:`stop` when the reader gives up.
    """

    def __init__(self, url: str, output: str | os.PathLike[str], options: DumpOptions) -> None:
        self._url, self._output, self._options = url, output, options
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._forward = True
        self._stop = threading.Event()
        self.archive: LiveArchive | None = None
        self.result: DumpResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dbcrate-copy-dump", daemon=True)

    # ------------------------------------------- told by the dump (its thread), see _Observer
    def archive_opened(self, manifest: Manifest, writer: Any,
                       estimates: dict[str, tuple[int, int]]) -> None:
        staging = getattr(writer, "staging", None)
        if staging is None:
            raise DbcrateError("a copy reads its spool while it is written: it needs the "
                               "directory kind")
        holding = Path(self._output).with_name(Path(self._output).name + ".live")
        self.archive = LiveArchive(staging, manifest, holding=holding, display=str(self._output),
                                   estimates=estimates)
        self._events.put(None)  # the archive is open

    def table_written(self, entry: TableEntry) -> None:
        assert self.archive is not None
        self.archive.publish(entry)

    # ------------------------------------------------------------------------ the thread
    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        observer = _Observer(self)
        dump = iter_dump(self._url, self._output, self._options, observer=observer)
        try:
            while True:
                event = next(dump)
                if self._stop.is_set():
                    dump.close()  # the reads stop, the directory is removed
                    raise DumpStopped("the copy's restore stopped; the source read was stopped")
                if self._forward:
                    self._events.put(event)
        except StopIteration as done:
            self.result = done.value
            if self.archive is not None:
                self.archive.finish()
        except BaseException as exc:  # handed to the caller's thread by join()
            self.error = exc
            if self.archive is not None:
                self.archive.fail(exc)
        finally:
            self._events.put(None)

    # ------------------------------------------------------------- the caller's side
    def wait_opened(self) -> Generator[Event, None, LiveArchive]:
        """The dump's events until its archive is open; then the archive (the events stop).

        :raises: what the dump raised before it opened the archive.
        """
        while True:
            try:
                event = self._events.get(timeout=TICK)
            except queue.Empty:
                continue
            if event is not None:
                yield event
                continue
            self._forward = False
            if self.archive is None:
                self._thread.join()
                assert self.error is not None
                raise self.error
            return self.archive

    def join(self) -> DumpResult:
        """Wait for the dump to finish; its result, or what it raised."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop the dump (the reader gave up) and wait for its thread: a read in progress is
        cancelled (checked every progress tick)."""
        self._stop.set()
        self._thread.join()


class _Observer:
    """The :class:`~dbcrate.dump.run.DumpObserver` of a :class:`BackgroundDump`."""

    def __init__(self, owner: BackgroundDump) -> None:
        self._owner = owner

    def opened(self, manifest: Manifest, writer: Any,
               estimates: dict[str, tuple[int, int]]) -> None:
        self._owner.archive_opened(manifest, writer, estimates)

    def written(self, entry: TableEntry) -> None:
        self._owner.table_written(entry)

    def part_written(self, entry: TableEntry) -> None:
        assert self._owner.archive is not None
        self._owner.archive.publish_part(entry)

    def stopping(self) -> bool:
        return self._owner.stop_requested
