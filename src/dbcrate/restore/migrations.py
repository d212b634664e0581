"""Declarative data migrations: a TOML file of steps between schema-version labels.

An archive made with ``dbcrate dump --schema-version 6`` can be restored into a schema at
version 8 with ``--migrations migrations.toml``: the steps 6 -> 7 -> 8 are applied in a chain to
the archive's tables and rows on their way into the target::

    [[step]]
    from = "6"
    to = "7"
    [step.tables.customer]
    rename_to = "client"                   # the table's new name
    rename_columns = { fullname = "name" } # old -> new
    drop_columns = ["fax"]
    [step.tables.customer.defaults]        # new columns and the value they get
    country = "unknown"
    [step.tables.customer.casts]           # column -> logical kind (checked: lossy is refused)
    age = "int32"

    [[step]]
    from = "7"
    to = "8"
    drop_tables = ["legacy_audit"]

Only data is described here (no SQL): the file cannot run code.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from dbcrate.errors import UsageError
from dbcrate.model.logical import KINDS, LogicalType
from dbcrate.model.schema import Column, ForeignKey, Index, Table
from dbcrate.restore.mapping import cast_exact


@dataclass
class TableStep:
    rename_to: str | None = None
    rename_columns: dict[str, str] = field(default_factory=dict)
    drop_columns: list[str] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    casts: dict[str, str] = field(default_factory=dict)


@dataclass
class Step:
    source: str
    target: str
    tables: dict[str, TableStep] = field(default_factory=dict)
    drop_tables: list[str] = field(default_factory=list)


def load_migrations(path: str | os.PathLike[str]) -> list[Step]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"migrations file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"migrations file {path} is not valid TOML: {exc}") from None
    steps = []
    for raw in data.get("step", []):
        try:
            tables = {}
            for name, t in (raw.get("tables") or {}).items():
                casts = {str(k): str(v) for k, v in (t.get("casts") or {}).items()}
                for col, kind in casts.items():
                    if kind not in KINDS:
                        raise ValueError(f"cast of {name}.{col} to unknown kind {kind!r}")
                tables[str(name)] = TableStep(
                    rename_to=t.get("rename_to"),
                    rename_columns={str(k): str(v) for k, v in (t.get("rename_columns") or {}).items()},
                    drop_columns=[str(c) for c in t.get("drop_columns", [])],
                    defaults=dict(t.get("defaults") or {}),
                    casts=casts,
                )
            steps.append(Step(str(raw["from"]), str(raw["to"]), tables,
                              [str(t) for t in raw.get("drop_tables", [])]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"migrations file {path}: bad step {raw!r}: {exc}") from None
    return steps


def chain(steps: list[Step], start: str | None, end: str | None) -> list[Step]:
    """The steps leading from version ``start`` to ``end`` (if None: as far as the steps go).

    An archive whose version is outside the chain is refused (it would otherwise restore
    unmigrated), unless it is already at the version the chain leads to.
    """
    if start is None:
        raise UsageError(
            "the archive has no schema version, so migrations cannot be chained",
            hint="dump with --schema-version LABEL",
        )
    by_source = {s.source: s for s in steps}
    out: list[Step] = []
    version = start
    seen = {version}
    while version != end and version in by_source:
        step = by_source[version]
        out.append(step)
        version = step.target
        if version in seen:
            raise UsageError(f"the migrations form a cycle at version {version}")
        seen.add(version)
    if end is not None and version != end:
        raise UsageError(
            f"no chain of migration steps leads from schema version {start} to {end} "
            f"(it stops at {version})"
        )
    known = {s.source for s in steps} | {s.target for s in steps}
    if not out and steps and start not in known:
        heads = sorted({s.target for s in steps} - set(by_source)) or sorted(known)
        raise UsageError(
            f"the archive's schema version {start} is not in the migration chain, which "
            f"goes {_describe_chain(steps)}: it would be restored unmigrated",
            hint=f"give migration steps that start at version {start}, or restore an archive "
            f"at version {', '.join(heads)}",
        )
    return out


def _describe_chain(steps: list[Step]) -> str:
    return ", ".join(f"{s.source} -> {s.target}" for s in steps)


BatchFn = Callable[[pa.RecordBatch], pa.RecordBatch]


def apply_to_table(table: Table, steps: list[Step],
                   notes: list[str] | None = None) -> tuple[Table | None, list[BatchFn]]:
    """The table after the steps (None if dropped) and the batch transforms to apply in order.

    Indexes and foreign keys follow the renames of their columns and of the tables they point
    to; one that names a dropped column or table is left out, with a line in ``notes``.
    """
    fns: list[BatchFn] = []
    notes = notes if notes is not None else []
    for step in steps:
        if table.name in step.drop_tables:
            return None, fns
        ts = step.tables.get(table.name)
        if ts is not None:
            table, fn = _apply_step(table, ts, notes)
            fns.append(fn)
        table = _follow_references(table, step, notes)
    return table, fns


def _follow_references(table: Table, step: Step, notes: list[str]) -> Table:
    """``table``'s foreign keys after ``step`` renamed or dropped the tables they point to."""
    kept = []
    for fk in table.foreign_keys:
        label = fk.name or f"({', '.join(fk.columns)}) -> {fk.ref_table}"
        if fk.ref_table in step.drop_tables:
            notes.append(f"{table.name}: foreign key {label} not recreated: the migration from "
                         f"{step.source} to {step.target} drops table {fk.ref_table!r}")
            continue
        ref = step.tables.get(fk.ref_table)
        if ref is not None:
            gone = [c for c in fk.ref_columns if c in ref.drop_columns]
            if gone:
                notes.append(f"{table.name}: foreign key {label} not recreated: the migration "
                             f"from {step.source} to {step.target} drops {fk.ref_table}."
                             + ", ".join(gone))
                continue
            fk = replace(fk, ref_table=ref.rename_to or fk.ref_table,
                         ref_columns=[ref.rename_columns.get(c, c) for c in fk.ref_columns])
        kept.append(fk)
    return replace(table, foreign_keys=kept)


def _migrated_keys(
    table: Table, ts: TableStep, new_name: str, notes: list[str]
) -> tuple[list[Index], list[ForeignKey]]:
    """The table's indexes and foreign keys after a step's renames; one on a dropped column is
    left out, with a note."""
    rename = dict(ts.rename_columns)
    indexes = []
    for index in table.indexes:
        if set(index.columns) & set(ts.drop_columns):
            notes.append(f"{new_name}: index {index.name or index.columns} not recreated: the "
                         "migration drops its column(s)")
            continue
        indexes.append(replace(index, columns=[rename.get(c, c) for c in index.columns]))
    fks = []
    for fk in table.foreign_keys:
        if set(fk.columns) & set(ts.drop_columns):
            notes.append(f"{new_name}: foreign key {fk.name or fk.columns} not recreated: the "
                         "migration drops its column(s)")
            continue
        ref_columns = fk.ref_columns
        if fk.ref_table == table.name:  # a self-reference follows the table's own renames
            ref_columns = [rename.get(c, c) for c in fk.ref_columns]
        fks.append(replace(fk, columns=[rename.get(c, c) for c in fk.columns],
                           ref_table=new_name if fk.ref_table == table.name else fk.ref_table,
                           ref_columns=ref_columns))
    return indexes, fks


def _apply_step(table: Table, ts: TableStep, notes: list[str]) -> tuple[Table, BatchFn]:
    columns: list[Column] = []
    for col in table.columns:
        if col.name in ts.drop_columns:
            continue
        new = replace(col, name=ts.rename_columns.get(col.name, col.name))
        if col.name in ts.casts:
            new = replace(new, type=LogicalType(ts.casts[col.name]), engine_type="")
        columns.append(new)
    added = [c for c in ts.defaults if c not in {x.name for x in columns}]
    for name in added:
        value = ts.defaults[name]
        kind = "boolean" if isinstance(value, bool) else "int64" if isinstance(value, int) else (
            "float64" if isinstance(value, float) else "string")
        columns.append(Column(name, LogicalType(kind), "", nullable=True))
    rename = dict(ts.rename_columns)
    pk = [rename.get(c, c) for c in table.primary_key if c not in ts.drop_columns]
    new_name = ts.rename_to or table.name
    indexes, fks = _migrated_keys(table, ts, new_name, notes)
    if table.primary_key and len(pk) != len(table.primary_key):
        notes.append(f"{new_name}: primary key not recreated: the migration drops its column(s)")
        pk = []
    new_table = replace(
        table,
        name=new_name,
        columns=columns,
        primary_key=pk,
        indexes=indexes,
        foreign_keys=fks,
    )
    by_old = {c.name: c for c in table.columns}

    def fn(batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays, fields = [], []
        names = batch.schema.names
        for col in table.columns:
            if col.name in ts.drop_columns or col.name not in names:
                continue
            arr = batch.column(names.index(col.name))
            new_name = rename.get(col.name, col.name)
            target = next(c for c in columns if c.name == new_name)
            if col.name in ts.casts:
                arr = cast_exact(arr, by_old[col.name].type, target.type)
            arrays.append(arr)
            fields.append(pa.field(new_name, target.type.arrow))
        for name in added:
            target = next(c for c in columns if c.name == name)
            arrays.append(pa.array([ts.defaults[name]] * batch.num_rows, target.type.arrow))
            fields.append(pa.field(name, target.type.arrow))
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))

    return new_table, fn
