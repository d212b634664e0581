"""The CLI's allocator settings (dbcrate.cli.memory): applied in a fresh process, skipped when the
environment sets them."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import pyarrow as pa
from dbcrate.cli.memory import tune_allocators
done = tune_allocators()
print(pa.default_memory_pool().backend_name)
print(";".join(done))
"""


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_the_system_pool_and_one_arena_by_default() -> None:
    backend, done = _probe()
    assert backend == "system"
    assert "arrow pool: system" in done
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert "glibc malloc arenas: 1" in done


@pytest.mark.parametrize("pool", ["jemalloc", "mimalloc"])
def test_the_environment_wins(pool: str) -> None:
    backend, *done = _probe(ARROW_DEFAULT_MEMORY_POOL=pool, MALLOC_ARENA_MAX="4")
    assert backend == pool
    assert done in ([], [""])


def test_the_cli_applies_it() -> None:
    code = ("import sys, pyarrow as pa, dbcrate.cli.commands as c\n"
            "try:\n    c.main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(pa.default_memory_pool().backend_name)")
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[-1] == "system"
