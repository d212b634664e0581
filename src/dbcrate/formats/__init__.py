"""Data formats: how a chunk of rows is encoded (Parquet, Arrow IPC, JSON Lines, CSV, XML,
YAML). The registry is a plain dict (``FORMATS``); third-party formats register through the
``dbcrate.formats`` entry point."""

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
