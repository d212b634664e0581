"""The archive manifest: what an archive holds, and how to check it.

The manifest is JSON (docs/FORMAT.md specifies every field). Parsing checks the format version
*first*, before looking at anything else, so that an archive from a newer dbcrate is refused
with a clear message instead of a confusing error about some field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dbcrate.errors import NotAnArchive, UnsupportedFormatVersion
from dbcrate.model.chunks import MEMBER_NAME
from dbcrate.model.manifest_check import SHA256_HEX, ManifestFieldError, check_manifest
from dbcrate.model.native import NativeSchema
from dbcrate.model.schema import Table
from dbcrate.storages.index import StorageManifest

FORMAT_NAME = "dbcrate-archive"
#: the newest format version this dbcrate reads and writes. An archive is written with the
#: lowest version that describes it, so that older readers keep reading what they can:
#: 1 = tables only; 2 = tables and storages (files beside the data); 3 = the native schema;
#: 4 = tables in several schemas (a table's ``schema``, a foreign key's ``ref_schema``);
#: 5 = each chunk's ``offset`` in the tar (an archive written to object storage, whose
#: members are then read by ranged requests); 6 = a sealed archive's marker; 7 = data members
#: holding an engine's own rows (``data_format`` ``pgcopy``).
FORMAT_VERSION = 7
#: the first version with storages (``storage``), the first with the native schema, and the
#: first with tables outside the source's default schema
STORAGE_FORMAT_VERSION = 2
NATIVE_FORMAT_VERSION = 3
SCHEMAS_FORMAT_VERSION = 4
OFFSETS_FORMAT_VERSION = 5
#: the version of a sealed (encrypted) archive's marker; its manifest, inside, states the
#: version its contents need (1 to 5, 7), so a manifest never says it
SEALED_FORMAT_VERSION = 6
#: the first version whose data members may hold an engine's own rows, and those formats
NATIVE_ROWS_FORMAT_VERSION = 7
NATIVE_ROWS_FORMATS = frozenset({"pgcopy"})
#: the version an archive without storages is written with
BASE_FORMAT_VERSION = 1
#: a manifest larger than this is refused before parsing (bytes)
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
#: JSON nesting deeper than this is refused
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Chunk:
    """One data member: a bounded slice of a table's rows, in the archive's data format."""

    member: str
    rows: int
    size: int
    sha256: str
    #: where the member's bytes start in the tar (format 5, archives in object storage)
    offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"member": self.member, "rows": self.rows, "size": self.size,
                               "sha256": self.sha256}
        if self.offset is not None:
            out["offset"] = self.offset
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        member, rows, size, sha = (data.get(k) for k in ("member", "rows", "size", "sha256"))
        if not isinstance(member, str) or not MEMBER_NAME.match(member):
            raise ValueError(f"bad data member name {member!r}")
        for name, value in (("rows", rows), ("size", size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"chunk field {name!r} must be a non-negative integer")
        if not isinstance(sha, str) or not SHA256_HEX.match(sha):
            raise ValueError(f"bad sha256 for {member}")
        assert isinstance(rows, int) and isinstance(size, int)
        offset = data.get("offset")
        if offset is not None and (not isinstance(offset, int) or isinstance(offset, bool)
                                   or offset < 0):
            raise ValueError(f"chunk field 'offset' of {member} must be a non-negative integer")
        return cls(member, rows, size, sha, offset)


@dataclass
class TableEntry:
    """A table in the archive: its schema, its data chunks and totals."""

    schema: Table
    chunks: list[Chunk] = field(default_factory=list)
    status: str = "ok"  # 'ok' | 'failed' (a --tolerate dump recorded a failure)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    @property
    def size(self) -> int:
        return sum(c.size for c in self.chunks)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "rows": self.rows,
            "bytes": self.size,
            "status": self.status,
            "schema": self.schema.to_dict(),
            "chunks": [c.to_dict() for c in self.chunks],
        }
        if self.error:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableEntry:
        schema = data.get("schema")
        if not isinstance(schema, dict):
            raise ValueError("table entry without a schema")
        chunks = data.get("chunks", [])
        if not isinstance(chunks, list):
            raise ValueError("'chunks' must be a list")
        entry = cls(
            schema=Table.from_dict(schema),
            chunks=[Chunk.from_dict(c) for c in chunks],
            status=_status(data.get("status", "ok")),
            error=data.get("error") if isinstance(data.get("error"), str) else None,
        )
        if data.get("name") != entry.name:
            raise ValueError(f"table entry name {data.get('name')!r} differs from its schema")
        if isinstance(data.get("rows"), int) and data["rows"] != entry.rows:
            raise ValueError(f"table {entry.name!r}: row total differs from its chunks")
        return entry


@dataclass
class Source:
    """Where the data came from. ``url`` never holds a password."""

    engine: str
    server_version: str
    url: str
    database: str | None = None
    driver: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "server_version": self.server_version,
            "url": self.url,
            "database": self.database,
            "driver": self.driver,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(
            engine=str(data.get("engine", "")),
            server_version=str(data.get("server_version", "")),
            url=str(data.get("url", "")),
            database=data.get("database") if isinstance(data.get("database"), str) else None,
            driver=data.get("driver") if isinstance(data.get("driver"), str) else None,
        )


@dataclass
class Manifest:
    """Everything an archive says about itself."""

    source: Source
    created_at: str
    dbcrate_version: str
    data_format: str = "parquet"
    tables: list[TableEntry] = field(default_factory=list)
    format_version: int = BASE_FORMAT_VERSION
    complete: bool = True
    schema_version: str | None = None
    #: the files beside the data (format version 2); ``None`` when the dump had no storages
    storage: StorageManifest | None = None
    #: the source engine's own schema definitions (format version 3); ``None`` when the
    #: engine's dialect captures none or the archive is older
    native: NativeSchema | None = None

    def table(self, name: str) -> TableEntry:
        # by a name -> position index, checked at each use and rebuilt when the list changed
        # (a scan per call was quadratic in the number of tables)
        index: dict[str, int] = self.__dict__.get("_positions") or {}
        pos = index.get(name)
        if pos is None or pos >= len(self.tables) or self.tables[pos].name != name:
            index = {entry.name: i for i, entry in enumerate(self.tables)}
            self.__dict__["_positions"] = index
            pos = index.get(name)
        if pos is None:
            raise KeyError(name)
        return self.tables[pos]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def size(self) -> int:
        return sum(t.size for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "dbcrate_version": self.dbcrate_version,
            "created_at": self.created_at,
            "complete": self.complete,
            "schema_version": self.schema_version,
            "source": self.source.to_dict(),
            "data_format": self.data_format,
            "tables": [t.to_dict() for t in self.tables],
            **({"storage": self.storage.to_dict()} if self.storage is not None else {}),
            **({"native": self.native.to_dict()} if self.native is not None else {}),
        }

    def to_json(self) -> bytes:
        # one line: indentation makes json use its pure-Python encoder (a manifest of 2,000
        # tables took 317 ms to write instead of 82 ms)
        return json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes, where: str = "manifest.json") -> Manifest:
        """Parse and validate a manifest; the format version is checked first, then every
        field's type and range (:mod:`dbcrate.manifest_check`), then how fields relate.

        :raises NotAnArchive: not JSON, not a dbcrate manifest, or malformed.
        :raises UnsupportedFormatVersion: written by a newer dbcrate.
        """
        if len(raw) > MAX_MANIFEST_BYTES:
            raise NotAnArchive(f"{where} is {len(raw)} bytes, more than the limit")
        try:
            data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise NotAnArchive(f"{where} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise NotAnArchive(f"{where} is not a dbcrate manifest")
        check_format_version(data.get("format_version"))
        if _depth(data) > MAX_JSON_DEPTH:
            raise NotAnArchive(f"{where} is nested too deeply")
        try:  # JSON escapes can spell lone surrogates, which are not text
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise NotAnArchive(f"{where} holds a string that is not valid Unicode") from None
        try:  # every field by type and range first, naming it by its path
            check_manifest(data)
        except ManifestFieldError as exc:
            raise NotAnArchive(f"{where} is malformed: {exc}") from None
        try:
            manifest = cls(
                source=Source.from_dict(data.get("source") or {}),
                created_at=data.get("created_at") or "",
                dbcrate_version=data.get("dbcrate_version") or "",
                data_format=data.get("data_format", "parquet"),
                tables=[TableEntry.from_dict(t) for t in data["tables"]],
                format_version=int(data["format_version"]),
                complete=data.get("complete", True),
                schema_version=data.get("schema_version"),
            )
            if "storage" in data:
                if manifest.format_version < 2:
                    raise ValueError("a 'storage' section needs format version 2")
                manifest.storage = StorageManifest.from_dict(data["storage"])
            if "native" in data:
                if manifest.format_version < NATIVE_FORMAT_VERSION:
                    raise ValueError("a 'native' section needs format version 3")
                manifest.native = NativeSchema.from_dict(data["native"])
            _check_versioned_fields(manifest)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise NotAnArchive(f"{where} is malformed: {exc}") from None
        names = [t.name for t in manifest.tables]
        if len(set(names)) != len(names):
            raise NotAnArchive(f"{where} lists a table twice")
        members = [c.member for t in manifest.tables for c in t.chunks]
        if len(set(members)) != len(members):
            raise NotAnArchive(f"{where} lists a data member twice")
        return manifest


def _check_versioned_fields(manifest: Manifest) -> None:
    """Refuse a field that the manifest's format version does not have (raises ValueError)."""
    if manifest.format_version == SEALED_FORMAT_VERSION:
        raise ValueError(f"format {SEALED_FORMAT_VERSION} is a sealed archive's marker; a "
                         "manifest states its contents' version")
    if manifest.format_version < OFFSETS_FORMAT_VERSION and any(
            c.offset is not None for t in manifest.tables for c in t.chunks):
        raise ValueError(f"a chunk's 'offset' needs format version {OFFSETS_FORMAT_VERSION}")
    if manifest.format_version < NATIVE_ROWS_FORMAT_VERSION \
            and manifest.data_format in NATIVE_ROWS_FORMATS:
        raise ValueError(f"data format {manifest.data_format!r} needs format version "
                         f"{NATIVE_ROWS_FORMAT_VERSION}")
    if manifest.format_version < SCHEMAS_FORMAT_VERSION and needs_schemas(manifest):
        raise ValueError("a table in a schema ('schema', 'ref_schema') needs format "
                         f"version {SCHEMAS_FORMAT_VERSION}")


def needs_schemas(manifest: Manifest) -> bool:
    """Whether a table of ``manifest`` lies outside the source's default schema or refers to
    one that does (format version 4)."""
    return any(t.schema.schema is not None
               or any(fk.ref_schema is not None for fk in t.schema.foreign_keys)
               for t in manifest.tables)


def _status(value: Any) -> str:
    if value not in ("ok", "failed"):
        raise ValueError(f"unknown table status {value!r}")
    return str(value)


def check_format_version(found: object) -> None:
    """Refuse a missing, malformed or newer format version."""
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise NotAnArchive(f"the archive has no valid format version ({found!r})")
    if found > FORMAT_VERSION:
        raise UnsupportedFormatVersion(found, FORMAT_VERSION)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level
