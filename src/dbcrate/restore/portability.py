"""The preflight: everything that would make a restore inexact, found before anything is written.

Names are checked against the target's identifier rules; values are checked, column by column
with vectorised Arrow kernels, against what the target holds exactly (the capability attributes
of its :class:`~dbcrate.dialects.base.Dialect`). Each problem names table, column and row key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.dialects.base import Dialect
from dbcrate.errors import Incompatibility
from dbcrate.model.logical import (
    DATE_NEG_INFINITY,
    DATE_POS_INFINITY,
    INTEGER_RANGES,
    TS_NEG_INFINITY,
    TS_POS_INFINITY,
)
from dbcrate.model.schema import Table
from dbcrate.model.values import US_PER_DAY, days_from_civil, decimal_misfits, float_signbit

MAX_KEYS_PER_PROBLEM = 3
_SPECIALS = pa.array(["NaN", "Infinity", "-Infinity"])


def target_lengths(table: Table, sa_types: dict[str, Any]) -> dict[str, int]:
    """Column -> enforced max length of the type it will be created with in the target."""
    out = {}
    for col in table.columns:
        length = getattr(sa_types.get(col.name), "length", None)
        if isinstance(length, int):
            out[col.name] = length
    return out


def batch_problems(
    table: Table,
    batch: pa.RecordBatch,
    target: Dialect,
    lengths: dict[str, int],
    decimal_limits: dict[str, tuple[int | None, int | None]],
) -> list[tuple[str, str, np.ndarray[Any, Any]]]:
    """``(column, problem, mask of offending rows)`` for values ``target`` cannot hold exactly."""
    found: list[tuple[str, str, np.ndarray[Any, Any]]] = []

    def check(column: str, problem: str, mask: Any) -> None:
        arr = np.asarray(
            mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else mask
        )
        arr = np.where(arr == None, False, arr).astype(bool)  # noqa: E711 - nulls are fine
        if arr.any():
            found.append((column, problem, arr))

    for i, col in enumerate(table.columns):
        arr = batch.column(i)
        if arr.null_count == len(arr):
            continue
        kind = col.type.kind
        if kind in ("float32", "float64"):
            if not target.holds_nan:
                check(col.name, "NaN cannot be stored", pc.is_nan(arr))
            if not target.holds_infinity:
                check(col.name, "infinity cannot be stored", pc.is_inf(arr))
            if not target.holds_negative_zero:
                check(col.name, "-0.0 would become 0.0", float_signbit(arr))
        elif kind in ("string", "json", "other", "uuid"):
            if not target.holds_nul_in_text:
                check(col.name, "text contains a NUL character", pc.match_substring(arr, "\x00"))
            if target.enforces_length and col.name in lengths:
                check(
                    col.name,
                    f"text longer than {lengths[col.name]} characters",
                    pc.greater(pc.utf8_length(arr), lengths[col.name]),
                )
        elif kind == "binary":
            if target.enforces_length and col.name in lengths:
                check(
                    col.name,
                    f"value longer than {lengths[col.name]} bytes",
                    pc.greater(pc.binary_length(arr), lengths[col.name]),
                )
        elif kind == "uint64":
            if target.max_integer < INTEGER_RANGES["uint64"][1]:
                check(
                    col.name,
                    f"integer larger than {target.max_integer}",
                    pc.greater(arr, pa.scalar(target.max_integer, pa.uint64())),
                )
        elif kind == "decimal":
            precision, scale = decimal_limits.get(col.name, (None, None))
            limits = target.decimal_limits
            special_ok = target.holds_decimal_specials
            p = precision if precision is not None else (limits[0] if limits else None)
            # NUMERIC(p) means scale 0
            s = (scale or 0) if precision is not None else (limits[1] if limits else None)
            mask = decimal_misfits(arr, p, s, target.decimal_significant_digits)
            if not special_ok:
                mask |= np.asarray(pc.fill_null(pc.is_in(arr, _SPECIALS), False), bool)
            check(col.name, "number does not fit the target's decimal type exactly", mask)
        elif kind == "date":
            ints = arr.cast(pa.int32())
            if not target.holds_infinite_dates:
                check(
                    col.name,
                    "infinite date",
                    pc.is_in(ints, pa.array([DATE_POS_INFINITY, DATE_NEG_INFINITY], pa.int32())),
                )
            if target.year_range:
                lo = days_from_civil(target.year_range[0], 1, 1)
                hi = days_from_civil(target.year_range[1], 12, 31)
                finite = pc.invert(
                    pc.is_in(ints, pa.array([DATE_POS_INFINITY, DATE_NEG_INFINITY], pa.int32()))
                )
                out = pc.or_(pc.less(ints, lo), pc.greater(ints, hi))
                check(col.name, f"date outside the years {target.year_range}", pc.and_(finite, out))
        elif kind in ("datetime", "timestamptz"):
            ints = arr.cast(pa.int64())
            sentinels = pa.array([TS_POS_INFINITY, TS_NEG_INFINITY], pa.int64())
            if not target.holds_infinite_dates:
                check(col.name, "infinite timestamp", pc.is_in(ints, sentinels))
            if target.year_range:
                lo = days_from_civil(target.year_range[0], 1, 1) * US_PER_DAY
                hi = (days_from_civil(target.year_range[1], 12, 31) + 1) * US_PER_DAY - 1
                finite = pc.invert(pc.is_in(ints, sentinels))
                out = pc.or_(pc.less(ints, lo), pc.greater(ints, hi))
                check(
                    col.name,
                    f"timestamp outside the years {target.year_range}",
                    pc.and_(finite, out),
                )
    return found


def row_keys(
    table: Table, batch: pa.RecordBatch, mask: np.ndarray[Any, Any], base: int
) -> list[dict[str, Any]]:
    """Primary-key values (or row numbers) of the first offending rows."""
    idx = np.flatnonzero(mask)[:MAX_KEYS_PER_PROBLEM]
    keys = []
    for j in idx:
        if table.primary_key:
            keys.append(
                {k: batch.column(table.column_names.index(k))[int(j)].as_py() for k in table.primary_key}
            )
        else:
            keys.append({"row": base + int(j) + 1})
    return keys


class ProblemCollector:
    """Accumulates problems per (table, column, problem) with a count and example keys."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str | None, str], list[Any]] = {}

    def add_batch(self, table: Table, batch: pa.RecordBatch, base: int,
                  found: list[tuple[str, str, np.ndarray[Any, Any]]]) -> None:
        for column, problem, mask in found:
            key = (table.name, column, problem)
            slot = self._items.setdefault(key, [0, []])
            slot[0] += int(mask.sum())
            if len(slot[1]) < MAX_KEYS_PER_PROBLEM:
                slot[1].extend(row_keys(table, batch, mask, base)[: MAX_KEYS_PER_PROBLEM - len(slot[1])])

    def add(self, problem: Incompatibility) -> None:
        self._items[(problem.table, problem.column, problem.problem)] = [problem.count, []]

    def problems(self) -> list[Incompatibility]:
        out = []
        for (table, column, problem), (count, keys) in self._items.items():
            out.append(
                Incompatibility(table, column, problem, row_key=keys[0] if keys else None, count=count)
            )
        return out
