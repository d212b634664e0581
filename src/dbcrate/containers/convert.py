"""Converting an archive from any container kind and data format into any other, and dumping
a database directly into any kind.

Conversion streams: table by table, chunk by chunk, Arrow record batch by record batch, so
memory stays bounded by a chunk's batch whatever the size of the archive. Every source chunk
is checked against its SHA-256 before its rows are used (``chunk_batches(verify=True)``), and
chunks copied byte for byte (tar <-> directory, same data format, same chunking) are hashed
while they are copied and compared with the manifest; a mismatch aborts the conversion and
leaves nothing under the output name.

Chunking: with ``max_row_count`` the rows are cut into chunks of at most that many rows;
without it the source's chunks are kept, except for the ``python`` kind, whose modules default
to 50,000 rows. The manifest is carried over (source, schema, creation time, version,
storages) with the new data format and chunk records, so a tar -> directory -> tar round trip
gives back the same manifest.

:func:`dump_as` dumps into any kind: it is :func:`dbcrate.dump.iter_dump` with
``DumpOptions.container`` set, whose loop hands each encoded data member to the kind's writer
(:class:`dbcrate.containers.writers.DumpWriter`); the sqlite and python kinds get members in the
``arrow`` format, which they decode into rows at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    Archive,
    ContainerWriter,
    refuse_storages,
)
from dbcrate.containers.kinds import ContainerKind, get_kind
from dbcrate.containers.members import MemberArchive
from dbcrate.containers.writers import write_table
from dbcrate.dump.run import DumpResult, iter_dump
from dbcrate.errors import ArchiveCorrupt, UsageError
from dbcrate.model.manifest import Chunk, Manifest, TableEntry
from dbcrate.options import ContainerKindName, DumpOptions

if TYPE_CHECKING:
    from dbcrate.crypto.keys import Encryption, Keyring
from dbcrate.progress import Event, drain
from dbcrate.stores.objects import is_object_url


@dataclass
class ConvertResult:
    """What a finished conversion wrote."""

    path: str
    kind: str
    manifest: Manifest
    seconds: float


def _max_rows(kind: ContainerKind, max_row_count: int | None) -> int | None:
    """Rows per output chunk: the given bound, the python kind's default, or ``None`` (keep
    the source's chunks)."""
    if max_row_count is not None:
        if max_row_count < 1:
            raise UsageError(f"--max-row-count must be at least 1 (got {max_row_count})")
        return max_row_count
    return kind.default_max_rows if kind.name == "python" else None


def _target_format(arch: Archive, kind: ContainerKind, data_format: str | None) -> str | None:
    """The output's data format: the one asked for; for a member-based output from a
    member-based source, the source's; else the writer's default."""
    if data_format is not None or not kind.member_based:
        return data_format
    return arch.format.name if isinstance(arch, MemberArchive) else None


def _created_timestamp(manifest: Manifest) -> float:
    try:
        return dt.datetime.fromisoformat(manifest.created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def _refuse_same_place(source: str | os.PathLike[str], output: str | os.PathLike[str]) -> None:
    if str(source) == "-" or str(output) == "-":
        return
    src, out = Path(source).resolve(), Path(output).resolve()
    if src == out or (out.exists() and src.exists() and os.path.samefile(src, out)):
        raise UsageError("the output is the source archive itself",
                         hint="convert into a new path")
    if src.is_dir() and out.is_relative_to(src):
        raise UsageError(f"the output {output} is inside the source dump directory {source}",
                         hint="convert into a path outside it")


def copy_archive(arch: Archive, writer: ContainerWriter,
                 max_rows: int | None) -> Generator[Event, None, Manifest]:
    """Write every table (and raw member) of ``arch`` into ``writer``; yields progress and
    returns the manifest to commit (the source's, with the output's chunks and data format).

    :raises ArchiveCorrupt: a source chunk or member does not match its SHA-256.
    :raises UsageError: storages into a kind that cannot hold them.
    """
    manifest = arch.manifest
    if not writer.member_based:
        refuse_storages(manifest, writer.kind)
    raw = (isinstance(arch, MemberArchive) and writer.member_based and max_rows is None
           and writer.data_format == arch.format.name)
    total = manifest.rows
    done = 0
    tables: list[TableEntry] = []
    for number, entry in enumerate(manifest.tables, start=1):
        writer.begin_table(number, entry)
        chunks: list[Chunk] = []
        if raw:
            assert isinstance(arch, MemberArchive)
            for chunk in entry.chunks:
                _copy_member(arch, writer, chunk.member, chunk.size, chunk.sha256)
                # an offset is where the member lay in the source's tar: not in this one
                chunks.append(dataclasses.replace(chunk, offset=None))
        elif max_rows is None:
            for index, chunk in enumerate(entry.chunks):
                chunks.append(writer.write_chunk(number, index, entry,
                                                 arch.chunk_batches(entry, chunk, verify=True)))
        else:
            chunks = write_table(writer, number, entry, _table_batches(arch, entry), max_rows)
        tables.append(dataclasses.replace(entry, chunks=chunks))
        done += entry.rows
        yield Event("convert", done, total, f"Convert table {entry.name}", entry.name,
                    rows=entry.rows, bytes=sum(c.size for c in chunks))
    if isinstance(arch, MemberArchive):
        _copy_other_members(arch, writer, manifest)
    return dataclasses.replace(manifest, data_format=writer.data_format, tables=tables)


def _table_batches(arch: Archive, entry: TableEntry) -> Iterator[pa.RecordBatch]:
    for chunk in entry.chunks:
        yield from arch.chunk_batches(entry, chunk, verify=True)


def _copy_member(arch: MemberArchive, writer: ContainerWriter, name: str, size: int,
                 sha256: str | None) -> None:
    """Copy one member byte for byte, hashing it on the way (compared when ``sha256`` is
    known: then a damaged source aborts the conversion)."""
    with arch.member_stream(name) as stream:
        copied = writer.add_file(name, stream, size)
    if sha256 is not None and copied != sha256:
        raise ArchiveCorrupt(f"{arch.path}: member {name} does not match its SHA-256 in the "
                             "manifest", member=name)


def _copy_other_members(arch: MemberArchive, writer: ContainerWriter, manifest: Manifest) -> None:
    """Every member that is neither a chunk nor one of the three documents (storage members),
    in the source's order, checked against the SHA-256 the manifest gives for it."""
    known = {MARKER, MANIFEST, MANIFEST_DIGEST}
    known.update(c.member for t in manifest.tables for c in t.chunks)
    hashes: dict[str, str] = {}
    storage = getattr(manifest, "storage", None)
    if storage is not None:
        hashes = {member: sha for member, _size, sha in storage.members()}
    for name in arch.member_names():
        if name not in known:
            _copy_member(arch, writer, name, arch.member_size(name), hashes.get(name))


def iter_convert(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                 kind: str = "tar", data_format: str | None = None,
                 max_row_count: int | None = None, overwrite: bool = False,
                 keys: Keyring | None = None, encryption: Encryption | None = None
                 ) -> Generator[Event, None, ConvertResult]:
    """Convert the archive ``source`` (any kind; ``"-"``: a tar on standard input) into a new
    archive ``output`` of ``kind`` (``"-"``: a tar on standard output).

    :param data_format: data format of a tar or directory output (default: the source's when
        it has one, else ``parquet``); the sqlite and python kinds store values themselves.
    :param max_row_count: most rows per output chunk (default: keep the source's chunks;
        the python kind: 50,000 rows per module).
    :param overwrite: directory kinds: replace an existing dump directory at ``output``.
    :param keys: what opens ``source`` if it is sealed (default: the environment's).
    :param encryption: seal the output (tar kind only): encrypt an archive after the fact,
        or re-encrypt one for other recipients.
    :returns: (generator return value) a :class:`ConvertResult`.
    :raises UsageError: unknown kind, same source and output, storages into the sqlite or
        python kind, a data format with a row kind.
    :raises ArchiveCorrupt: the source is damaged (nothing is left under ``output``).
    """
    started = time.monotonic()
    info = get_kind(kind)
    max_rows = _max_rows(info, max_row_count)
    if is_object_url(output):
        raise UsageError(f"convert writes a local archive, not {output}",
                         hint="convert into a file and upload it, or dump the database to the "
                         "bucket directly")
    _refuse_same_place(source, output)
    sealer = _sealer(encryption, info.name)
    with Archive(source, **({"keys": keys} if keys is not None else {})) as arch:
        if not info.member_based:
            refuse_storages(arch.manifest, info.name)
        with info.writer(output, data_format=_target_format(arch, info, data_format),
                         mtime=_created_timestamp(arch.manifest), overwrite=overwrite,
                         format_version=arch.manifest.format_version,
                         **({"sealer": sealer} if sealer is not None else {})) as writer:
            yield Event("plan", 0, len(arch.tables),
                        f"Convert {len(arch.tables)} tables into a {info.name} archive")
            manifest = yield from copy_archive(arch, writer, max_rows)
            writer.commit(manifest)
    yield Event("done", len(manifest.tables), len(manifest.tables), "Conversion complete",
                bytes=manifest.size)
    return ConvertResult(str(output), info.name, manifest, time.monotonic() - started)


def _sealer(encryption: Encryption | None, kind: str) -> Any:
    """The tar writer's sealer for an encrypted output (refused for other kinds)."""
    if encryption is None:
        return None
    if kind != "tar":
        raise UsageError(f"the {kind} kind cannot be encrypted: its files are meant to be "
                         "read as they are", hint="convert --as tar to encrypt")
    from dbcrate.crypto.sealed import Sealer

    return Sealer(encryption)


def convert(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
            kind: str = "tar", data_format: str | None = None, max_row_count: int | None = None,
            overwrite: bool = False, keys: Keyring | None = None,
            encryption: Encryption | None = None) -> ConvertResult:
    """Convert an archive into another container kind and/or data format (see
    :func:`iter_convert`).

    >>> dbcrate.convert("shop.crate", "shop.sqlite", kind="sqlite")     # doctest: +SKIP
    >>> dbcrate.convert("shop.sqlite", "shop_py", kind="python", max_row_count=10_000)  # doctest: +SKIP
    """
    return drain(iter_convert(source, output, kind=kind, data_format=data_format,
                              max_row_count=max_row_count, overwrite=overwrite, keys=keys,
                              encryption=encryption))


def iter_dump_as(url: str, output: str | os.PathLike[str], kind: str = "tar",
                 options: DumpOptions | None = None, *, max_row_count: int | None = None,
                 overwrite: bool = False) -> Generator[Event, None, DumpResult]:
    """Dump the database at ``url`` into an archive of ``kind`` (see the module docstring for
    how the kinds other than tar are written).

    :param max_row_count: most rows per chunk (the tar and directory kinds: the dump's
        ``chunk_rows``; python: default 50,000).
    :param overwrite: directory kinds: replace an existing dump directory at ``output``.
    :raises UsageError: unknown kind; storages into the sqlite or python kind (before the
        database is opened).
    """
    info = get_kind(kind)
    options = options or DumpOptions()
    max_rows = _max_rows(info, max_row_count)
    if max_rows is not None:
        options = dataclasses.replace(options, chunk_rows=max_rows)
    if not info.member_based:  # the members are decoded into rows at once: quick to write
        options = dataclasses.replace(options, data_format="arrow", compression_level=1)
    kind_name = cast(ContainerKindName, info.name)  # a registered kind: get_kind checked it
    options = dataclasses.replace(options, container=kind_name, overwrite=overwrite)
    return (yield from iter_dump(url, output, options))


def dump_as(url: str, output: str | os.PathLike[str], kind: str = "tar",
            options: DumpOptions | None = None, *, max_row_count: int | None = None,
            overwrite: bool = False, **kwargs: Any) -> DumpResult:
    """Dump a database into an archive of any container kind; dump options may be given as
    keyword arguments (see :func:`iter_dump_as`).

    >>> dbcrate.dump_as("sqlite:///app.db", "app.sqlite", "sqlite")      # doctest: +SKIP
    >>> dbcrate.dump_as("sqlite:///app.db", "app_py", "python", max_row_count=1000)  # doctest: +SKIP
    """
    if kwargs:
        options = DumpOptions(**{**(options.__dict__ if options else {}), **kwargs})
    return drain(iter_dump_as(url, output, kind, options, max_row_count=max_row_count,
                              overwrite=overwrite))
