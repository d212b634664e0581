"""dbcrate.readahead: the read-ahead thread gives every item in order, raises the source's
error at its place, and always closes the source in its own thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dbcrate.readahead import ReadAhead


class Source:
    """A generator-like source that records which thread advanced and closed it."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.threads: set[str] = set()
        self.closed_in: str | None = None
        self.produced = 0
        self._gen = self._items()

    def _items(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise ValueError(f"bad row {i}")
                self.produced += 1
                yield i
        finally:
            self.closed_in = threading.current_thread().name

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()


def test_every_item_in_order_from_one_worker_thread() -> None:
    source = Source(1000)
    with ReadAhead(source, name="reader") as items:
        assert list(items) == list(range(1000))
    assert source.threads == {"reader"} and source.closed_in == "reader"


def test_the_source_error_arrives_after_the_items_before_it() -> None:
    source = Source(10, fail_at=4)
    got = []
    with pytest.raises(ValueError, match="bad row 4"), ReadAhead(source) as items:
        for item in items:
            got.append(item)
    assert got == [0, 1, 2, 3]


def test_a_consumer_that_stops_early_stops_and_closes_the_source() -> None:
    source = Source(10**6)
    with pytest.raises(RuntimeError), ReadAhead(source, depth=2, name="reader") as items:
        for item in items:
            if item == 5:
                raise RuntimeError("encode failed")
    # the worker was joined: the source is closed and went at most depth + 1 items further
    assert source.closed_in == "reader"
    assert source.produced <= 5 + 1 + 3
    assert not [t for t in threading.enumerate() if t.name == "reader"]


def test_an_empty_source() -> None:
    with ReadAhead(iter(())) as items:
        assert list(items) == []


def test_a_chunk_spool_goes_to_disk_before_a_write_that_would_pass_its_limit() -> None:
    """Small chunks stay in memory; a write that would pass the limit is not held in memory
    first (a 100 MB Parquet page cost 100 MB more peak RSS that way)."""
    import io

    from dbcrate.dump import encode

    small = encode._new_spool()
    small.write(b"x" * 100)
    assert isinstance(small._file, io.BytesIO)  # type: ignore[attr-defined]
    big = encode._new_spool()
    big.write(b"x" * 100)
    held = []  # what memory held when the spool moved to disk
    rollover = big.rollover

    def recorded() -> None:
        held.append(big._file.getbuffer().nbytes)  # type: ignore[attr-defined]
        rollover()

    big.rollover = recorded  # type: ignore[method-assign]
    big.write(memoryview(b"y" * (encode.SPOOL_IN_MEMORY_BYTES + 1)))
    assert held == [100]
    assert not isinstance(big._file, io.BytesIO)  # type: ignore[attr-defined]
    big.seek(0)
    assert big.read() == b"x" * 100 + b"y" * (encode.SPOOL_IN_MEMORY_BYTES + 1)
    small.close()
    big.close()
