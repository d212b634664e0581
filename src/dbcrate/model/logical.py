"""Portable logical column types and their Arrow encoding.

A column in an archive has a *logical* type (engine-neutral, below) and keeps the *engine* type it
had in the source (``engine_type``, e.g. ``VARCHAR(120)``). The logical type decides the
Arrow type of the column's data and the type created in another engine; the engine type is used,
after validation, when restoring into the same engine so that a same-engine copy is exact.

The table :data:`ARROW_TYPES` is the normative encoding (docs/FORMAT.md copies it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow is imported on first use: ``ls`` reads a manifest without it
    import pyarrow as pa

    #: logical kind -> its Arrow type (built on first use; see :func:`arrow_types`)
    ARROW_TYPES: dict[str, pa.DataType]

#: logical kind -> documentation of the values it holds
KINDS: dict[str, str] = {
    "boolean": "true/false",
    "int8": "signed 8-bit integer",
    "int16": "signed 16-bit integer",
    "int32": "signed 32-bit integer",
    "int64": "signed 64-bit integer",
    "uint64": "unsigned 64-bit integer (MariaDB BIGINT UNSIGNED)",
    "float32": "IEEE 754 binary32",
    "float64": "IEEE 754 binary64",
    "decimal": "exact decimal number, stored as canonical text (NaN/Infinity/-Infinity allowed)",
    "string": "Unicode text (optional max length in characters; fixed=true for CHAR(n))",
    "binary": "byte string (optional max length in bytes)",
    "date": "calendar date (proleptic Gregorian); ±infinity as sentinels",
    "time": "time of day without zone, microseconds",
    "datetime": "timestamp without time zone, microseconds; ±infinity as sentinels",
    "timestamptz": "instant in time, microseconds, stored in UTC",
    "json": "JSON document, stored as its exact text",
    "uuid": "UUID, stored as canonical lower-case text",
    "other": "an engine-specific type, stored as the engine's own text representation",
}

#: date32 sentinels for PostgreSQL's 'infinity' / '-infinity' dates (days since 1970-01-01)
DATE_POS_INFINITY = 2**31 - 1
DATE_NEG_INFINITY = -(2**31)
#: timestamp(us) sentinels for PostgreSQL's 'infinity' / '-infinity' timestamps
TS_POS_INFINITY = 2**63 - 1
TS_NEG_INFINITY = -(2**63)

# The finite values of each temporal encoding: every integer strictly between its sentinels
# (docs/FORMAT.md, "Dates and timestamps"). A finite source value outside these bounds has no
# encoding and is refused when it is read, never written as a sentinel.
#: 5877642-06-24 BC .. 5881580-07-10 (days since 1970-01-01)
DATE_MIN_FINITE = DATE_NEG_INFINITY + 1
DATE_MAX_FINITE = DATE_POS_INFINITY - 1
#: 290309-12-21 19:59:05.224193 BC .. 294247-01-10 04:00:54.775806 (microseconds since 1970);
#: PostgreSQL's own timestamps go on to 294276-12-31 23:59:59.999999, past the int64 range
TS_MIN_FINITE = TS_NEG_INFINITY + 1
TS_MAX_FINITE = TS_POS_INFINITY - 1


@functools.cache
def arrow_types() -> dict[str, pa.DataType]:
    """Logical kind -> its Arrow type: the normative encoding (also as ``ARROW_TYPES``)."""
    import pyarrow as pa

    return {
        "boolean": pa.bool_(),
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "uint64": pa.uint64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "decimal": pa.string(),
        "string": pa.string(),
        "binary": pa.large_binary(),
        "date": pa.date32(),
        "time": pa.time64("us"),
        "datetime": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "json": pa.string(),
        "uuid": pa.string(),
        "other": pa.string(),
    }


def __getattr__(name: str) -> Any:
    # ARROW_TYPES is built when first asked for, so that importing the model loads no pyarrow
    if name == "ARROW_TYPES":
        return arrow_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def logical_of_arrow(t: pa.DataType) -> LogicalType:
    """The logical type whose encoding is the Arrow type ``t`` (text types map to string)."""
    import pyarrow as pa

    if t in (pa.string(), pa.large_string(), pa.null()):
        # null: what a hook builds from an empty list; its rows will tell
        return LogicalType("string")
    if t == pa.binary():
        return LogicalType("binary")
    for kind, arrow in arrow_types().items():
        if arrow == t and kind not in ("decimal", "json", "uuid", "other"):
            return LogicalType(kind)
    raise ValueError(f"Arrow type {t} has no logical type in dbcrate")


INTEGER_KINDS = ("int8", "int16", "int32", "int64", "uint64")
FLOAT_KINDS = ("float32", "float64")
TEXTUAL_KINDS = ("string", "json", "uuid", "other", "decimal")

#: inclusive value range of each integer kind
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("'fixed' must be true or false")
    return value


@dataclass(frozen=True)
class LogicalType:
    """An engine-neutral column type.

    :param kind: one of :data:`KINDS`.
    :param length: max length in characters (string) or bytes (binary); ``None`` = unbounded.
    :param precision: total digits of a decimal; ``None`` = unconstrained.
    :param scale: digits after the point of a decimal.
    :param fixed: ``True`` for blank-padded CHAR(n).
    """

    kind: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    fixed: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown logical type {self.kind!r}; known: {', '.join(KINDS)}")

    @property
    def arrow(self) -> pa.DataType:
        return arrow_types()[self.kind]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("length", "precision", "scale"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.fixed:
            out["fixed"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogicalType:
        def opt_int(name: str) -> int | None:
            value = data.get(name)
            if value is None:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"logical type field {name!r} must be a non-negative integer")
            return value

        kind = data.get("kind")
        if not isinstance(kind, str):
            raise ValueError("logical type without a 'kind'")
        return cls(
            kind=kind,
            length=opt_int("length"),
            precision=opt_int("precision"),
            scale=opt_int("scale"),
            fixed=_flag(data.get("fixed", False)),
        )

    def describe(self) -> str:
        if self.kind == "decimal" and self.precision is not None:
            return f"decimal({self.precision},{self.scale or 0})"
        if self.kind in ("string", "binary") and self.length is not None:
            return f"{self.kind}({self.length})"
        return self.kind
