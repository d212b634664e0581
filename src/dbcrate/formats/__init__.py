"""Data formats: how a chunk of rows is encoded (Parquet, Arrow IPC, JSON Lines, CSV, XML,
YAML). The registry is a plain dict (``FORMATS``); third-party formats register through the
``dbcrate.formats`` entry point.

The names below are imported from their modules when first used (PEP 562), so that importing
one light module of this package loads no codec (nor pyarrow); the entry points are read only
when an unknown format is looked up (:func:`dbcrate.formats.registry.get_format`).
"""

from __future__ import annotations

import atexit
import gc
from types import ModuleType
from typing import TYPE_CHECKING, Any

# Arrow's readers left for the garbage collector (a generator abandoned in a traceback, a
# reference cycle) are destroyed at exit while Arrow's thread pools still run: otherwise one
# of their threads can outlive Arrow's teardown and abort the process after its work is done
# ("terminate called without an active exception", exit -6; apache/arrow#34314). Every codec
# lives in this package, so this runs in every process that reads or writes a data member.
# (The command line does not finalize at all: dbcrate.cli.app._end_process.)
atexit.register(gc.collect)

#: public name -> the module of this package that defines it
_LAZY: dict[str, str] = {
    **dict.fromkeys(("DECODE_FLOOR", "DECODE_RATIO", "DECODE_RATIO_ENV", "MAX_PAGE_HEADER",
                     "PADDING_KEY", "DecodeBudget", "DecodeLimitExceeded", "check_parquet",
                     "decode_ratio", "padding_for"), "dbcrate.formats.budget"),
    **dict.fromkeys(("DEFAULT_COMPRESSION_LEVEL", "ENTRY_POINT_GROUP", "FORMATS", "ChunkWriter",
                     "DataFormat", "get_format", "load_entry_points", "register"),
                    "dbcrate.formats.registry"),
}

if TYPE_CHECKING:
    from dbcrate.formats.budget import (
        DECODE_FLOOR,
        DECODE_RATIO,
        DECODE_RATIO_ENV,
        MAX_PAGE_HEADER,
        PADDING_KEY,
        DecodeBudget,
        DecodeLimitExceeded,
        check_parquet,
        decode_ratio,
        padding_for,
    )
    from dbcrate.formats.registry import (
        DEFAULT_COMPRESSION_LEVEL,
        ENTRY_POINT_GROUP,
        FORMATS,
        ChunkWriter,
        DataFormat,
        get_format,
        load_entry_points,
        register,
    )

__all__ = [
    "DECODE_FLOOR",
    "DECODE_RATIO",
    "DECODE_RATIO_ENV",
    "DEFAULT_COMPRESSION_LEVEL",
    "ENTRY_POINT_GROUP",
    "FORMATS",
    "MAX_PAGE_HEADER",
    "PADDING_KEY",
    "ChunkWriter",
    "DataFormat",
    "DecodeBudget",
    "DecodeLimitExceeded",
    "check_parquet",
    "decode_ratio",
    "get_format",
    "load_entry_points",
    "padding_for",
    "register",
]


def __getattr__(name: str) -> Any:
    """A name of ``__all__``, imported from its module when first used (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_module(module), name)
    globals()[name] = value
    return value


def _module(name: str) -> ModuleType:
    """``budget`` or ``registry``, by a plain import statement (no import by a computed name:
    tests/test_security.py, SE-07)."""
    if name == "dbcrate.formats.budget":
        from dbcrate.formats import budget
        return budget
    from dbcrate.formats import registry
    return registry


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
