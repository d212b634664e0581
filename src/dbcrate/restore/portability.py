"""The preflight: everything that would make a restore inexact, found before anything is written.

Names are checked against the target's identifier rules; values are checked, column by column
with vectorised Arrow kernels, against what the target holds exactly (the capability attributes
of its :class:`~dbcrate.dialects.base.Dialect`). Each problem names table, column and row key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Limits:
    """What the target holds: its dialect's capabilities and the columns' declared limits."""

    target: Dialect
    lengths: dict[str, int]
    decimals: dict[str, tuple[int | None, int | None]]


#: a problem and the rows it concerns (a boolean Arrow array or numpy mask; null = fine)
_Check = tuple[str, Any]


def _float_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    if not lim.target.holds_nan:
        yield "NaN cannot be stored", pc.is_nan(arr)
    if not lim.target.holds_infinity:
        yield "infinity cannot be stored", pc.is_inf(arr)
    if not lim.target.holds_negative_zero:
        yield "-0.0 would become 0.0", float_signbit(arr)


def _text_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    if not lim.target.holds_nul_in_text:
        yield "text contains a NUL character", pc.match_substring(arr, "\x00")
    if lim.target.enforces_length and name in lim.lengths:
        length = lim.lengths[name]
        yield f"text longer than {length} characters", pc.greater(pc.utf8_length(arr), length)


def _binary_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    if lim.target.enforces_length and name in lim.lengths:
        length = lim.lengths[name]
        yield f"value longer than {length} bytes", pc.greater(pc.binary_length(arr), length)


def _uint64_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    top = lim.target.max_integer
    if top < INTEGER_RANGES["uint64"][1]:
        yield f"integer larger than {top}", pc.greater(arr, pa.scalar(top, pa.uint64()))


def _decimal_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    precision, scale = lim.decimals.get(name, (None, None))
    limits = lim.target.decimal_limits
    p = precision if precision is not None else (limits[0] if limits else None)
    # NUMERIC(p) means scale 0
    s = (scale or 0) if precision is not None else (limits[1] if limits else None)
    mask = decimal_misfits(arr, p, s, lim.target.decimal_significant_digits)
    if not lim.target.holds_decimal_specials:
        mask |= np.asarray(pc.fill_null(pc.is_in(arr, _SPECIALS), False), bool)
    yield "number does not fit the target's decimal type exactly", mask


def _temporal_checks(ints: pa.Array, sentinels: pa.Array, bounds: tuple[int, int], what: str,
                     lim: _Limits) -> Iterator[_Check]:
    """Infinities (``sentinels``) and finite values outside ``bounds``, the target's year
    range in the column's unit (inclusive)."""
    infinite = pc.is_in(ints, sentinels)
    if not lim.target.holds_infinite_dates:
        yield f"infinite {what}", infinite
    if lim.target.year_range:
        out = pc.or_(pc.less(ints, bounds[0]), pc.greater(ints, bounds[1]))
        yield (f"{what} outside the years {lim.target.year_range}",
               pc.and_(pc.invert(infinite), out))


def _date_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    first, last = lim.target.year_range or (1, 9999)
    bounds = (days_from_civil(first, 1, 1), days_from_civil(last, 12, 31))
    sentinels = pa.array([DATE_POS_INFINITY, DATE_NEG_INFINITY], pa.int32())
    yield from _temporal_checks(arr.cast(pa.int32()), sentinels, bounds, "date", lim)


def _timestamp_checks(arr: pa.Array, name: str, lim: _Limits) -> Iterator[_Check]:
    first, last = lim.target.year_range or (1, 9999)
    bounds = (days_from_civil(first, 1, 1) * US_PER_DAY,
              (days_from_civil(last, 12, 31) + 1) * US_PER_DAY - 1)
    sentinels = pa.array([TS_POS_INFINITY, TS_NEG_INFINITY], pa.int64())
    yield from _temporal_checks(arr.cast(pa.int64()), sentinels, bounds, "timestamp", lim)


#: logical kind -> the checks of its values (kinds not named here hold anywhere exactly)
_CHECKS: dict[str, Callable[[pa.Array, str, _Limits], Iterator[_Check]]] = {
    "float32": _float_checks, "float64": _float_checks,
    "string": _text_checks, "json": _text_checks, "other": _text_checks, "uuid": _text_checks,
    "binary": _binary_checks,
    "uint64": _uint64_checks,
    "decimal": _decimal_checks,
    "date": _date_checks,
    "datetime": _timestamp_checks, "timestamptz": _timestamp_checks,
}


def _rows_mask(mask: Any) -> np.ndarray[Any, Any]:
    """A check's rows as a numpy boolean mask (null: not a problem)."""
    arr = np.asarray(mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else mask)
    return np.where(arr == None, False, arr).astype(bool)  # noqa: E711 - nulls are fine


def batch_problems(
    table: Table,
    batch: pa.RecordBatch,
    target: Dialect,
    lengths: dict[str, int],
    decimal_limits: dict[str, tuple[int | None, int | None]],
) -> list[tuple[str, str, np.ndarray[Any, Any]]]:
    """``(column, problem, mask of offending rows)`` for values ``target`` cannot hold exactly,
    in column order, only problems some row has."""
    limits = _Limits(target, lengths, decimal_limits)
    found: list[tuple[str, str, np.ndarray[Any, Any]]] = []
    for i, col in enumerate(table.columns):
        arr = batch.column(i)
        checks = _CHECKS.get(col.type.kind)
        if checks is None or arr.null_count == len(arr):
            continue
        for problem, mask in checks(arr, col.name, limits):
            rows = _rows_mask(mask)
            if rows.any():
                found.append((col.name, problem, rows))
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
