"""Data formats: how a chunk of rows is encoded (Parquet, Arrow IPC, JSON Lines, CSV, XML,
YAML). The registry is a plain dict (``FORMATS``); third-party formats register through the
``dbcrate.formats`` entry point."""

import atexit
import gc

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

# Arrow's readers left for the garbage collector (a generator abandoned in a traceback, a
# reference cycle) are destroyed at exit while Arrow's thread pools still run: otherwise one
# of their threads can outlive Arrow's teardown and abort the process after its work is done
# ("terminate called without an active exception", exit -6; apache/arrow#34314)
atexit.register(gc.collect)

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
