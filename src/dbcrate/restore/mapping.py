"""Loading an archive table into an existing table whose schema is the master.

Columns are matched by name (case-insensitively on engines whose names are). Archive columns the
target lacks are dropped (with a warning); target columns the archive lacks take their defaults,
and must be able to. Where the types differ the values are cast with Arrow's *safe* casts and
cast back: a value that does not come back identical would be changed by the restore, so it is
refused in the preflight, by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table

#: logical kind -> the kinds it widens into without any possible loss
WIDENS_TO: dict[str, set[str]] = {
    "boolean": {"int8", "int16", "int32", "int64", "uint64"},
    "int8": {"int16", "int32", "int64", "decimal", "float32", "float64"},
    "int16": {"int32", "int64", "decimal", "float32", "float64"},
    "int32": {"int64", "decimal", "float64"},
    "int64": {"decimal"},
    "uint64": {"decimal"},
    "float32": {"float64"},
    "date": {"datetime", "timestamptz"},
    "uuid": {"string"},
    "json": {"string"},
}


@dataclass
class ColumnMap:
    """How one target column is filled."""

    target: Column
    source: Column | None  # None: the target default applies
    cast: str = "same"  # 'same' | 'widen' | 'checked'

    def describe(self) -> str:
        if self.source is None:
            return f"{self.target.name} <- (default)"
        arrow = "" if self.source.name == self.target.name else f" <- {self.source.name}"
        how = "" if self.cast == "same" else (
            f" ({self.cast} cast {self.source.type.describe()} -> {self.target.type.describe()})"
        )
        return f"{self.target.name}{arrow}{how}"


@dataclass
class TableMap:
    """The plan for one table: which target columns are filled from which archive columns."""

    source: Table
    target: Table
    columns: list[ColumnMap] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> list[ColumnMap]:
        return [c for c in self.columns if c.source is not None]

    def load_schema(self) -> Table:
        """The table as the loader sees it: target names, target types, mapped columns only."""
        return Table(
            name=self.target.name,
            columns=[c.target for c in self.loaded],
            primary_key=[k for k in self.target.primary_key if k in {c.target.name for c in self.loaded}],
        )

    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """An archive batch -> a batch of the load schema (select, rename, cast)."""
        names = batch.schema.names
        arrays = []
        fields = []
        for cm in self.loaded:
            assert cm.source is not None
            arr = batch.column(names.index(cm.source.name))
            if cm.cast != "same":
                arr = cast_exact(arr, cm.source.type, cm.target.type)
            arrays.append(arr)
            fields.append(pa.field(cm.target.name, cm.target.type.arrow))
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def cast_exact(arr: pa.Array, src: LogicalType, dst: LogicalType) -> pa.Array:
    """Cast with Arrow's safe cast (raises on overflow or truncation)."""
    if dst.kind == "decimal" and src.kind in ("float32", "float64"):
        return pa.array(
            [None if v is None else format(_dec(v), "f") for v in arr.to_pylist()], pa.string()
        )
    return pc.cast(arr, dst.arrow, safe=True)


def _dec(value: float) -> Any:
    from decimal import Decimal

    return Decimal(repr(value))


def lossy_rows(arr: pa.Array, src: LogicalType, dst: LogicalType) -> np.ndarray[Any, Any]:
    """Mask of rows whose value would not survive ``src -> dst`` exactly."""
    mask = np.zeros(len(arr), bool)
    try:
        there = cast_exact(arr, src, dst)
        back = pc.cast(there, src.arrow, safe=True) if dst.kind != "decimal" or src.kind not in (
            "float32", "float64") else there
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # find the rows one by one (slow path, only when something does not fit)
        for i, value in enumerate(arr):
            if not value.is_valid:
                continue
            try:
                one = pa.array([value.as_py()], src.arrow)
                pc.cast(pc.cast(one, dst.arrow, safe=True), src.arrow, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError, ValueError):
                mask[i] = True
        return mask
    if dst.kind == "decimal" and src.kind in ("float32", "float64"):
        return mask
    same = pc.equal(back, arr)
    if pa.types.is_floating(arr.type):
        same = pc.or_(same, pc.and_(pc.is_nan(arr), pc.is_nan(back)))
    return np.asarray(pc.fill_null(pc.invert(same), False).to_numpy(zero_copy_only=False))


def cast_kind(src: LogicalType, dst: LogicalType) -> str | None:
    """'same', 'widen', 'checked', or None when no exact conversion exists."""
    if src.kind == dst.kind:
        return "same"
    if dst.kind in WIDENS_TO.get(src.kind, set()):
        return "widen"
    checked = {
        ("int16", "int8"), ("int32", "int8"), ("int32", "int16"), ("int64", "int8"),
        ("int64", "int16"), ("int64", "int32"), ("int64", "uint64"), ("uint64", "int64"),
        ("float64", "float32"), ("decimal", "int64"), ("decimal", "int32"),
        ("decimal", "int16"), ("float64", "decimal"), ("float32", "decimal"),
        ("int64", "float64"), ("datetime", "date"), ("timestamptz", "datetime"),
        ("datetime", "timestamptz"), ("int32", "float32"), ("int64", "float32"),
        ("string", "uuid"), ("string", "json"), ("other", "string"),
    }
    if (src.kind, dst.kind) in checked:
        return "checked"
    if dst.kind in ("string", "other") and src.kind in ("int8", "int16", "int32", "int64",
                                                         "uint64", "decimal", "date", "boolean"):
        return "widen"  # the exact text of the value
    return None


def plan_table(source: Table, target: Table, *, case_insensitive: bool) -> TableMap:
    """Match archive columns to target columns; record what blocks the load."""

    def key(name: str) -> str:
        return name.lower() if case_insensitive else name

    by_name = {key(c.name): c for c in source.columns}
    tmap = TableMap(source, target)
    used: set[str] = set()
    for col in target.columns:
        src = by_name.get(key(col.name))
        if src is None:
            fillable = col.nullable or col.default is not None or col.autoincrement or col.identity
            if not fillable:
                tmap.blocking.append(
                    f"target column {col.name!r} is NOT NULL without a default, and the archive "
                    "has no values for it"
                )
            tmap.columns.append(ColumnMap(col, None))
            continue
        used.add(src.name)
        kind = cast_kind(src.type, col.type)
        if kind is None:
            tmap.blocking.append(
                f"column {col.name!r}: archive type {src.type.describe()} cannot be converted "
                f"exactly to the target's {col.type.describe()}"
            )
            tmap.columns.append(ColumnMap(col, src))
            continue
        if kind == "same" and src.type != col.type:
            kind = "checked" if _narrower(src.type, col.type) else "same"
        tmap.columns.append(ColumnMap(col, src, kind))
    tmap.dropped = [c.name for c in source.columns if c.name not in used]
    return tmap


def _narrower(src: LogicalType, dst: LogicalType) -> bool:
    if dst.length is not None and (src.length is None or src.length > dst.length):
        return True
    if dst.precision is None:
        return False
    return (
        src.precision is None
        or src.precision > dst.precision
        or (src.scale or 0) > (dst.scale or 0)
    )
