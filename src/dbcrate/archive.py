"""Reading archives: the manifest, the tables, their data as Arrow record batches; verify.

>>> with dbcrate.open_archive("shop.crate") as a:          # doctest: +SKIP
...     for entry in a.tables:
...         print(entry.name, entry.rows)
...     for batch in a.iter_batches("orders"):
...         ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from .container import ArchiveReader
from .errors import ArchiveCorrupt, NotAnArchive, UsageError
from .formats import FORMATS, get_format
from .manifest import Chunk, Manifest, TableEntry
from .progress import Event


def arrow_schema(entry: TableEntry) -> pa.Schema:
    """The Arrow schema every data member of ``entry`` must have."""
    return pa.schema([pa.field(c.name, c.type.arrow) for c in entry.schema.columns])


class Archive:
    """An open archive. The manifest and the member list are checked when it is opened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._reader = ArchiveReader(path)
        self.path = str(path)
        self.manifest: Manifest = self._reader.manifest
        try:
            self.format = get_format(self.manifest.data_format)  # loads plugin formats too
        except UsageError:
            self._reader.close()
            raise NotAnArchive(
                f"{self.path}: data format {self.manifest.data_format!r} is not known here",
                hint=f"known formats: {', '.join(sorted(FORMATS))}; a plugin may provide it",
            ) from None

    @property
    def tables(self) -> list[TableEntry]:
        return self.manifest.tables

    def table(self, name: str) -> TableEntry:
        try:
            return self.manifest.table(name)
        except KeyError:
            from .errors import UnknownTable

            raise UnknownTable(
                f"the archive has no table {name!r}",
                hint="tables: " + ", ".join(t.name for t in self.tables[:20]),
            ) from None

    def check_chunk(self, chunk: Chunk) -> None:
        """Compare a member's bytes with its SHA-256 (raises :class:`ArchiveCorrupt`)."""
        self._reader.check_member(chunk.member, chunk.sha256)

    def chunk_batches(
        self, entry: TableEntry, chunk: Chunk, *, verify: bool = True
    ) -> Iterator[pa.RecordBatch]:
        """Decode one data member; checks its hash first (``verify``), then schema and rows."""
        if verify:
            self.check_chunk(chunk)
        expected = arrow_schema(entry)
        rows = 0
        try:
            for batch in self.format.read(self._reader.open_member(chunk.member), expected):
                for column in batch.columns:  # invalid UTF-8 in a string column
                    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                        column.validate(full=True)
                # (not the whole batch: time64 86,400,000,000 - PostgreSQL's 24:00:00 - is
                # outside Arrow's range of a time of day, and the format allows it)
                if not batch.schema.equals(expected):
                    raise ArchiveCorrupt(
                        f"{self.path}: member {chunk.member} (table {entry.name}) does not have "
                        "the schema the manifest gives",
                        member=chunk.member,
                    )
                rows += batch.num_rows
                if rows > chunk.rows:
                    break
                yield batch
        except ArchiveCorrupt:
            raise
        except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) cannot be decoded: {exc}",
                member=chunk.member,
            ) from None
        if rows != chunk.rows:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) holds {rows} rows, "
                f"the manifest says {chunk.rows}",
                member=chunk.member,
            )

    def check_chunk_structure(self, entry: TableEntry, chunk: Chunk) -> None:
        """Row count and schema of a member, as cheaply as the format allows (a Parquet footer;
        other formats are decoded). Raises :class:`ArchiveCorrupt`."""
        if self.format.name != "parquet":
            for _ in self.chunk_batches(entry, chunk, verify=False):
                pass
            return
        try:
            meta = pq.ParquetFile(self._reader.open_member(chunk.member)).metadata
            schema = meta.schema.to_arrow_schema()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) cannot be decoded: {exc}",
                member=chunk.member,
            ) from None
        expected = arrow_schema(entry)
        if meta.num_rows != chunk.rows or not schema.remove_metadata().equals(expected):
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} (table {entry.name}) holds {meta.num_rows} "
                f"rows of schema {schema.names}, the manifest says {chunk.rows} rows of "
                f"{expected.names}",
                member=chunk.member,
            )

    def iter_batches(self, name: str, *, verify: bool = True) -> Iterator[pa.RecordBatch]:
        """All rows of table ``name`` as record batches, chunk after chunk (bounded memory)."""
        entry = self.table(name)
        for chunk in entry.chunks:
            yield from self.chunk_batches(entry, chunk, verify=verify)

    def read_table(self, name: str) -> pa.Table:
        """A whole table in memory (convenient for small tables)."""
        entry = self.table(name)
        return pa.Table.from_batches(list(self.iter_batches(name)), schema=arrow_schema(entry))

    def iter_verify(self) -> Iterator[Event]:
        """Check every member's hash and decode every chunk; yields progress events.

        :raises ArchiveCorrupt: at the first damaged member, naming it.
        """
        chunks = [(e, c) for e in self.tables for c in e.chunks]
        total = sum(c.size for _, c in chunks)
        done = 0
        for entry, chunk in chunks:
            for _batch in self.chunk_batches(entry, chunk, verify=True):
                pass
            done += chunk.size
            yield Event("verify", done, total, f"Verify {chunk.member}", entry.name, bytes=done)

    def verify(self) -> VerifyReport:
        for _ in self.iter_verify():
            pass
        return VerifyReport(
            path=self.path,
            tables=len(self.tables),
            members=sum(len(t.chunks) for t in self.tables),
            rows=self.manifest.rows,
            bytes=self.manifest.size,
            incomplete=[t.name for t in self.tables if t.status != "ok"],
        )

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class VerifyReport:
    path: str
    tables: int
    members: int
    rows: int
    bytes: int
    incomplete: list[str] = field(default_factory=list)


def open_archive(path: str | os.PathLike[str]) -> Archive:
    """Open an archive for reading (``"-"`` reads standard input)."""
    return Archive(path)
