"""Options of dump and restore: typed, documented, with defaults (the CLI fills them).

A field that takes one of a closed set of words is typed with a ``Literal`` alias below; the
CLI takes its choices (:func:`choices_of`) and every default (:func:`default_of`) from here, so
that an option's values are stated once. Each alias mirrors a registry that the library
dispatches on (``tests/test_cli_options.py`` checks that they agree):
``ContainerKindName`` the keys of ``dbcrate.containers.kinds.CONTAINER_KINDS``,
``ConflictPolicy`` ``dbcrate.restore.conflicts.POLICIES``. ``data_format`` stays a ``str``:
third-party formats register at run time (the ``dbcrate.formats`` entry point), so that set is
open.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

#: the zstd level of the data members when none is given (``--compress-level``); kept here, in
#: this light module, for the CLI's ``--help`` (re-exported by :mod:`dbcrate.formats.registry`)
DEFAULT_COMPRESSION_LEVEL = 3
#: the built-in data formats (``--format``), in the order of
#: ``dbcrate.formats.registry.FORMATS``: named here so that ``--help`` lists them without
#: loading the codecs (``tests/test_startup.py`` checks that they agree); plugin formats add
#: to that registry at run time
BUILTIN_DATA_FORMATS: tuple[str, ...] = ("parquet", "arrow", "jsonl", "csv", "xml", "yaml",
                                             "pgcopy")
#: most jobs :func:`default_jobs` gives, whatever the number of cores
MAX_DEFAULT_JOBS = 4

#: the container kinds (``--as``; docs/CONTAINERS.md)
ContainerKindName = Literal["tar", "directory", "sqlite", "python"]
#: what to do with rows whose primary key already exists (``--on-conflict``)
ConflictPolicy = Literal["error", "skip", "update", "check"]
#: how a restore treats the target's schema (``--mode``)
RestoreMode = Literal["recreate", "into-existing"]
#: existing storage files that differ (``restore --storages``)
StoragesPolicy = Literal["refuse", "merge", "replace"]
#: which schema a recreating restore runs (``--ddl``): ``auto`` is ``native`` when the archive
#: carries its engine's native schema and the target is that engine, else ``portable``
DdlSource = Literal["auto", "native", "portable"]


def default_jobs() -> int:
    """The default of ``jobs`` (``-j``) for dump and restore: the cores this process may run on,
    at most :data:`MAX_DEFAULT_JOBS` (docs/PERFORMANCE.md, "Jobs by default").

    Past a few jobs the database server, not dbcrate, is what is busy, and each job holds a
    connection and a batch in memory; so the default stops at 4, and ``-j`` gives more.
    """
    return max(1, min(_usable_cores(), MAX_DEFAULT_JOBS))


def _usable_cores() -> int:
    """The cores this process may use: its CPU affinity where the system tells it (a container
    or ``taskset`` may allow fewer than the machine has), else the machine's count."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13
    if counter is not None:
        return int(counter() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@dataclass(frozen=True)
class DumpOptions:
    """How to dump."""

    include: list[str] = field(default_factory=list)
    """glob patterns of tables to dump (``-t``); empty = every table"""
    exclude: list[str] = field(default_factory=list)
    """glob patterns of tables to leave out (``-T``); applied after ``include``. A pattern
    with a dot (``sales.*``) is matched against ``schema.table`` on an engine with schemas"""
    schemas: list[str] = field(default_factory=list)
    """glob patterns of schemas to dump (``-n``, pg_dump's meaning); empty = every schema
    that is not the engine's own (PostgreSQL; engines without schemas ignore it)"""
    exclude_schemas: list[str] = field(default_factory=list)
    """glob patterns of schemas to leave out (``-N``); applied after ``schemas``"""
    data_format: str = "parquet"
    """data member format (a key of ``dbcrate.formats.registry.FORMATS``)"""
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    """zstd level inside the data members (1 = fastest, 22 = smallest)"""
    chunk_rows: int = 250_000
    """most rows in one data member; big tables are split into several members"""
    chunk_bytes: int = 64 * 1024 * 1024
    """most bytes of (uncompressed Arrow) data in one data member, so that wide rows still
    make members that decode in bounded memory"""
    batch_rows: int = 65_536
    """most rows fetched at once (fewer when rows are wide, to bound memory)"""
    schema_only: bool = False
    """record the schema of every table but no rows"""
    schema_version: str | None = None
    """a label of the application's schema version, kept in the manifest"""
    jobs: int = field(default_factory=default_jobs)
    """tables (and key ranges of big tables) read in parallel, all in one snapshot (default:
    :func:`default_jobs`, the cores of the machine, at most 4)"""
    hooks: Any = None
    """a hooks module, module name or .py path; its ``dump_table_filter`` chooses tables"""
    storages: list[str] = field(default_factory=list)
    """directories of files to store beside the data (``--storage``), e.g. uploaded media"""
    storage_exclude: list[str] = field(default_factory=list)
    """glob patterns of storage files to leave out (``*.tmp``: any depth; ``cache/**``: a path)"""
    ignore_storage_exclude: bool = False
    """collect every storage file: ``storage_exclude`` is not applied (diskette's
    ``with_storages_excludes=False``)"""
    storages_basepath: str | None = None
    """storages are named in the archive by their path relative to this (default: the current
    directory; a storage outside it is named by its last component)"""
    no_data: bool = False
    """store the storages only, no tables (the database is not opened)"""
    no_storages: bool = False
    """ignore ``storages`` (data only)"""
    file_columns: list[str] = field(default_factory=list)
    """``TABLE.COLUMN[=STORAGE]`` columns holding storage paths: checked against the files"""
    archive_mode: int = 0o600
    """permissions of the finished archive (``--chmod``)"""
    container: ContainerKindName = "tar"
    """the container kind written (``--as``): ``tar`` (one archive file), ``directory`` (the
    archive unpacked), ``sqlite`` (one SQLite database file), ``python`` (a directory of
    Python-literal modules); see docs/CONTAINERS.md"""
    overwrite: bool = False
    """directory kinds: replace an existing dump directory at the output"""
    durable: bool = True
    """the directory kind: fsync every file it writes (off for ``copy``'s spool: scratch, read
    at once and removed, so the rows need not reach the disk)"""
    tolerate: bool = False
    """a table that cannot be read is recorded as failed in the manifest and the dump goes on
    (the archive is then marked incomplete); else the first failure ends the dump"""
    no_native_schema: bool = False
    """do not capture the engine's own schema definitions (pg_dump's schema sections, ...)
    beside the portable schema (docs/RESTORE.md, "The native schema"): no client tool needed,
    and a same-engine restore recreates only what the portable schema holds"""
    encryption: Any = None
    """a :class:`dbcrate.crypto.keys.Encryption` (age recipients or a passphrase): write a
    sealed archive, every member encrypted (tar kind only; docs/FORMAT.md, "Sealed archives")"""


@dataclass(frozen=True)
class RestoreOptions:
    """How to restore."""

    include: list[str] = field(default_factory=list)
    """glob patterns of archive tables to restore (``-t``); empty = all"""
    exclude: list[str] = field(default_factory=list)
    """glob patterns of archive tables not to restore (``-T``)"""
    clean: bool = False
    """drop and recreate tables that already exist in the target (else refuse)"""
    exit_on_error: bool = False
    """stop at the first table that fails (else carry on and report)"""
    schema_only: bool = False
    """create tables, indexes and constraints but load no rows"""
    verify: bool = True
    """check every selected member's SHA-256 before touching the target"""
    dry_run: bool = False
    """plan and preflight only (names, values, checksums); change nothing"""
    jobs: int = field(default_factory=default_jobs)
    """tables loaded, and indexes built, in parallel (SQLite targets load one at a time;
    default: :func:`default_jobs`, the cores of the machine, at most 4)"""
    mode: RestoreMode = "recreate"
    """``recreate``: drop/create from the archive's schema; ``into-existing``: keep the
    target's schema (it is the master) and load the rows into it"""
    data_only: bool = False
    """load rows into existing tables only, no DDL (the same as ``mode='into-existing'``)"""
    on_conflict: ConflictPolicy = "error"
    """rows whose primary key already exists: ``error`` (the table fails), ``skip`` (keep the
    target's row), ``update`` (take the archive's values), ``check`` (write nothing; list the
    keys whose rows differ, and fail if any do); see :mod:`dbcrate.conflicts`"""
    strict: bool = False
    """any warning (an object not recreated, a default dropped, an orphan ...) makes the
    restore fail (:class:`dbcrate.errors.StrictWarnings`, exit code 16)"""
    single_transaction: bool = False
    """all or nothing, in one transaction (refused where the engine cannot roll DDL back)"""
    hooks: Any = None
    """a hooks module, module name or .py path (see dbcrate.hooks)"""
    migrations: str | None = None
    """a TOML file of declarative migration steps (see dbcrate.restore.migrations)"""
    target_schema_version: str | None = None
    """the schema version to migrate to (default: as far as the steps go)"""
    resume: bool = False
    """skip the tables and chunks the journal in the target says are committed"""
    storages_to: str | None = None
    """directory to restore the archive's storages under (each as ``DIR/<its name>``);
    ``None``: storages are not restored"""
    storages_policy: StoragesPolicy = "refuse"
    """existing files that differ: ``refuse`` (nothing is written), ``merge`` (overwrite them,
    keep other files), ``replace`` (each storage becomes exactly the archive's)"""
    no_storages: bool = False
    """do not restore storages even when ``storages_to`` is given"""
    no_data: bool = False
    """restore the storages only, no tables (the database is not opened)"""
    ddl: DdlSource = "auto"
    """recreate from the archive's native schema (same engine only) or from the portable one;
    ``auto``: native where it can"""
    no_owner: bool = False
    """native schema: do not restore the objects' owners (pg_restore's ``-O``)"""
    no_privileges: bool = False
    """native schema: do not restore grants (pg_restore's ``-x``)"""
    create: bool = False
    """create the target database first (pg_restore's ``-C``; PostgreSQL and MariaDB: SQLite
    creates its file anyway)"""
    accept_edits: bool = False
    """python and directory kinds: restore data modules edited by hand (Lino's data
    migrations): each edited module is re-hashed (still parsed as literals only, never run)
    and restored, and the restore lists which changed"""
    identities: list[str] = field(default_factory=list)
    """age identity files or ssh private keys that open an encrypted archive (``-i``), beside
    ``DBCRATE_IDENTITY``; a passphrase comes from ``DBCRATE_PASSPHRASE`` or a terminal"""


def choices_of(cls: type[Any], field_name: str) -> tuple[str, ...]:
    """The words the ``Literal``-typed field ``field_name`` of the dataclass ``cls`` accepts,
    in their declared order (the annotations are strings here: they are resolved first).

    :raises TypeError: the field is not typed with a ``Literal``.
    """
    hint = typing.get_type_hints(cls)[field_name]
    if typing.get_origin(hint) is not Literal:
        raise TypeError(f"{cls.__name__}.{field_name} is not a Literal type: {hint!r}")
    return tuple(str(choice) for choice in typing.get_args(hint))


def default_of(cls: type[Any], field_name: str) -> Any:
    """The default of the dataclass field ``field_name`` of ``cls`` (a fresh value when the
    field has a ``default_factory``).

    :raises KeyError: ``cls`` has no such field.
    :raises TypeError: the field has no default.
    """
    found = {f.name: f for f in dataclasses.fields(cls)}[field_name]
    if found.default is not dataclasses.MISSING:
        return found.default
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    raise TypeError(f"{cls.__name__}.{field_name} has no default")
