"""What the object-storage tests share: a server run on a free port of 127.0.0.1, and
counting the ranged requests dbcrate makes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(command: Callable[[int], list[str]], what: str,
            seconds: float = 15) -> Iterator[int]:
    """Run ``command(port)`` on a free port until its port accepts connections; yield the
    port; stop the server afterwards."""
    port = free_port()
    server = subprocess.Popen(command(port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what} did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def count_ranged_reads(patch: pytest.MonkeyPatch) -> list[int]:
    """Patch where dbcrate reads objects: every ranged request's length is appended to the
    list returned, and reading an object whole fails the test."""
    import dbcrate.stores.objects as objects

    fetched: list[int] = []
    real_range = objects.object_range

    def counted(url: str, start: int, length: int) -> bytes:
        data = real_range(url, start, length)
        fetched.append(len(data))
        return data

    def no_whole_read(url: str) -> Any:
        raise AssertionError(f"{url} was read whole")

    patch.setattr("dbcrate.stores.manifest.object_range", counted)
    patch.setattr("dbcrate.stores.ranged.object_range", counted)
    patch.setattr("dbcrate.containers.tar.object_reader", no_whole_read)
    return fetched
