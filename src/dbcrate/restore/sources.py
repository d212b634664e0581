"""The archive side of a restore: which archive tables, as what schema, through which
transforms (the selection ``-t``/``-T``, the ``restore_table_filter`` hook, declarative
migrations, the ``transform`` hook)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa

from dbcrate.containers.archive import Archive
from dbcrate.dialects import Dialect, dialect_class
from dbcrate.errors import UsageError
from dbcrate.hooks import Hooks
from dbcrate.model.logical import logical_of_arrow
from dbcrate.model.manifest import Chunk, TableEntry
from dbcrate.model.schema import Column, Table
from dbcrate.model.selection import select_tables
from dbcrate.options import RestoreOptions
from dbcrate.restore.migrations import apply_to_table, chain, load_migrations
from dbcrate.restore.plan import Source, Transform


def archive_sources(arch: Archive, options: RestoreOptions,
                    hooks: Hooks) -> tuple[list[Source], list[str]]:
    """The selected archive tables as :class:`Source` values (in the archive's order), and
    warnings for what the migrations dropped; refuses tables the dump recorded as failed."""
    manifest = arch.manifest
    # a pattern matches an archive name (schema.table outside the source's default schema),
    # and schema.table written out for a table in it (public.film)
    default = dialect_class(manifest.source.engine).default_schema
    outside = {t.name for t in manifest.tables if t.schema.schema is not None}

    def spellings(name: str) -> tuple[str, ...]:
        return (name,) if default is None or name in outside else (name, f"{default}.{name}")

    names = select_tables([t.name for t in manifest.tables], options.include, options.exclude,
                          "the archive", spellings)
    entries = [manifest.table(n) for n in names]
    broken = [e.name for e in entries if e.status != "ok"]
    if broken:
        raise UsageError(
            f"the archive recorded these tables as failed at dump time: {', '.join(broken)}",
            hint="exclude them with -T to restore the rest",
        )
    if hooks.restore_table_filter is not None:
        entries = [e for e in entries if hooks.restore_table_filter(e.schema)]
    warnings: list[str] = []
    steps = []
    if options.migrations:
        steps = chain(load_migrations(options.migrations), manifest.schema_version,
                      options.target_schema_version)
    sources = []
    for entry in entries:
        schema, fns = (apply_to_table(entry.schema, steps, warnings) if steps
                       else (entry.schema, []))
        if schema is None:
            warnings.append(f"{entry.name}: dropped by the migrations")
            continue
        if hooks.transform is not None:
            fns = [*fns, _bind_transform(hooks.transform, entry.name)]
            schema = _schema_after(schema, fns, entry)
        sources.append(Source(entry, schema, tuple(fns), arch.expected_size(entry)))
    return sources, warnings


def _schema_after(schema: Table, fns: list[Transform],
                  entry: TableEntry) -> Table:
    """The table as the transforms leave it: learnt by passing them an empty batch."""
    probe = pa.RecordBatch.from_pylist([], schema=pa.schema(
        [pa.field(c.name, c.type.arrow) for c in entry.schema.columns]))
    for fn in fns:
        probe = fn(probe)
    if probe.schema.names == schema.column_names and all(
        f.type == c.type.arrow for f, c in zip(probe.schema, schema.columns)
    ):
        return schema
    by_name = {c.name: c for c in schema.columns}
    columns = []
    for f in probe.schema:
        old = by_name.get(f.name)
        if old is not None and old.type.arrow == f.type:
            columns.append(old)
        else:
            columns.append(Column(f.name, logical_of_arrow(f.type), ""))
    names = {c.name for c in columns}
    return replace(schema, columns=columns,
                   primary_key=[k for k in schema.primary_key if k in names],
                   indexes=[i for i in schema.indexes if set(i.columns) <= names],
                   foreign_keys=[fk for fk in schema.foreign_keys if set(fk.columns) <= names])


def _bind_transform(fn: Callable[..., Any], table: str) -> Transform:
    def apply(batch: pa.RecordBatch) -> pa.RecordBatch:
        out = fn(table, batch)
        if isinstance(out, pa.Table):
            out = pa.RecordBatch.from_arrays(
                [c.combine_chunks() for c in out.columns], schema=out.schema
            )
        if not isinstance(out, pa.RecordBatch):
            raise UsageError(f"the transform hook returned {type(out).__name__} for {table!r}; "
                             "it must return a pyarrow.RecordBatch")
        return out

    return apply


def batches(arch: Archive, source: Source, chunk: Chunk, *, verify: bool) -> Iterator[pa.RecordBatch]:
    """One chunk's rows as the restore loads them: read, then through the source's transforms."""
    for batch in arch.chunk_batches(source.entry, chunk, verify=verify):
        for fn in source.transforms:
            batch = fn(batch)
        yield batch


def loads_as_stored(arch: Archive, dialect: Dialect, source: Source) -> bool:
    """Whether ``source``'s rows go into ``dialect``'s database as the archive stores them: an
    engine's own rows (``pgcopy``) into that engine, with no transform changing them and the
    columns the archive has (migrations may rename, not add or drop)."""
    return (arch.native_rows is not None and arch.native_rows == dialect.native_rows
            and not source.transforms
            and len(source.schema.columns) == len(source.entry.schema.columns))
