"""How the command's process allocates memory: one heap, returned to the system when freed.

The CLI owns its process and calls :func:`tune_allocators` first; the library never does (its
caller's process is the caller's to tune).

Two settings, each skipped when its environment variable is set (so both can be measured or
overridden):

- **Arrow's memory pool: the system allocator** (``ARROW_DEFAULT_MEMORY_POOL``). pyarrow's
  default, mimalloc, and its jemalloc both keep the pages of freed batches for reuse; with the
  other settings, glibc's malloc does not. pyarrow is not imported for this (``--help`` and
  ``--version`` need no pyarrow): before pyarrow is loaded the variable is set, to ``system``,
  and Arrow reads it when it makes its default pool; when pyarrow is loaded already (the CLI
  run inside another program), the pool is set through pyarrow.
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
import os
import sys

#: glibc's ``mallopt`` parameter number for the arena limit (``malloc.h``)
M_ARENA_MAX = -8


def tune_allocators() -> list[str]:
    """Apply both settings where they apply; returns what was set (for a debug log)."""
    done = []
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and _system_arrow_pool():
        done.append("arrow pool: system")
    if "MALLOC_ARENA_MAX" not in os.environ and _glibc_mallopt(M_ARENA_MAX, 1):
        done.append("glibc malloc arenas: 1")
    return done


def _system_arrow_pool() -> bool:
    """Make the system allocator Arrow's default pool; True when done."""
    pa = sys.modules.get("pyarrow")
    if pa is None:  # read by Arrow when it makes its default pool, after this
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        return True
    with contextlib.suppress(NotImplementedError, AttributeError):
        pa.set_memory_pool(pa.system_memory_pool())
        return True
    return False


def _glibc_mallopt(parameter: int, value: int) -> bool:
    """``mallopt(parameter, value)`` if this process runs on glibc; False elsewhere (musl,
    macOS, Windows) or when glibc refuses.

    glibc is told by ``confstr(_CS_GNU_LIBC_VERSION)``, which only glibc answers (quicker than
    :func:`platform.libc_ver`, which reads the interpreter's binary); its library is always
    ``libc.so.6``.
    """
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):  # no such name (musl, macOS), no confstr
        return False
    if not version or not version.startswith("glibc"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(ctypes.c_int(parameter), ctypes.c_int(value)))
    except (OSError, AttributeError):
        return False
