"""How the command's process allocates memory: one heap, returned to the system when freed.

The CLI owns its process and calls :func:`tune_allocators` first; the library never does (its
caller's process is the caller's to tune).

Two settings, each skipped when its environment variable is set (so both can be measured or
overridden):

- **Arrow's memory pool: the system allocator** (``ARROW_DEFAULT_MEMORY_POOL``). pyarrow's
  default, mimalloc, and its jemalloc both keep the pages of freed batches for reuse; with the
  other settings, glibc's malloc does not.
- **glibc: one malloc arena** (``MALLOC_ARENA_MAX``). glibc gives each thread that contends
  for the heap an arena of its own (up to 8 per core), and each arena keeps its own freed
  memory: with the restore's worker threads, several copies of a batch's worth.

Measured at scale 1 (docs/PERFORMANCE.md, "Session 5"), peak RSS of ``dbcrate restore -j 2``,
three runs each, the wall time unchanged: PostgreSQL 282-296 MB (jemalloc pool, default
arenas) -> 219-224 MB; MariaDB 388-402 -> 313-320 MB; SQLite (one job) 253 -> 244-250 MB.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform

#: glibc's ``mallopt`` parameter number for the arena limit (``malloc.h``)
M_ARENA_MAX = -8


def tune_allocators() -> list[str]:
    """Apply both settings where they apply; returns what was set (for a debug log)."""
    done = []
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        with contextlib.suppress(NotImplementedError, AttributeError):
            pa.set_memory_pool(pa.system_memory_pool())
            done.append("arrow pool: system")
    if "MALLOC_ARENA_MAX" not in os.environ and _glibc_mallopt(M_ARENA_MAX, 1):
        done.append("glibc malloc arenas: 1")
    return done


def _glibc_mallopt(parameter: int, value: int) -> bool:
    """``mallopt(parameter, value)`` if this process runs on glibc; False elsewhere (musl,
    macOS, Windows) or when glibc refuses."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(ctypes.c_int(parameter), ctypes.c_int(value)))
    except (OSError, AttributeError):
        return False
