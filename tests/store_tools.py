"""What the object-storage tests share: counting the ranged requests dbcrate makes."""

from __future__ import annotations

from typing import Any

import pytest


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
