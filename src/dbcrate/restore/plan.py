"""The restore plan: everything decided before the first write, as frozen data.

A :class:`RestorePlan` holds the options already resolved (what a run reads is here, not in
:class:`~dbcrate.options.RestoreOptions`), the archive tables as :class:`Source` values, what
the target held (tables to replace, the journal of an earlier run), the DDL or column mappings,
and the work as **tasks that are values** (:class:`LoadTable`, :class:`BuildIndex`,
:class:`AddForeignKey`, :class:`LoadInto`), each :class:`Scheduled` with its priority, the tasks
it comes after and the table locks it takes. :mod:`dbcrate.restore.execute` is the one runner:
it binds each task to the code that performs it. ``plan --json`` and ``restore --dry-run
--json`` print :meth:`RestorePlan.to_dict`.

The plan is built by :func:`dbcrate.restore.planner.plan_restore`; nothing in it changes while
a restore runs (the SQLAlchemy DDL objects it carries are complete before the first task).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pyarrow as pa

from dbcrate.model.manifest import TableEntry
from dbcrate.model.native import NativeObject
from dbcrate.model.schema import Table
from dbcrate.restore.ddl import TargetTables
from dbcrate.restore.mapping import TableMap

Transform = Callable[[pa.RecordBatch], pa.RecordBatch]


@dataclass(frozen=True)
class Source:
    """One archive table as it will be loaded: its (migrated) schema, the transforms its
    batches pass through (migrations, the ``transform`` hook), and its rows and bytes as the
    schedule weighs them (``None``: the entry's; a copy's table not yet written: estimated)."""

    entry: TableEntry
    schema: Table
    transforms: tuple[Transform, ...] = ()
    expected: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.schema.name


# --------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class LoadTable:
    """Recreate: (drop,) create and load one table, in one transaction."""

    kind: ClassVar[str] = "load"
    table: str
    replace: bool

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "replace": self.replace}


@dataclass(frozen=True)
class LoadTables:
    """Recreate from the native schema (which created the tables): load several small
    tables in one transaction, each in a savepoint of its own, so that a table that fails
    is rolled back alone and the others commit (what one transaction per table would give,
    for a fraction of the round trips: see :data:`~dbcrate.restore.native.SMALL_TABLE_BYTES`),
    then build their post-data ``steps`` in the same transaction (dbcrate/restore/groupload.py)."""

    kind: ClassVar[str] = "load_group"
    tables: tuple[str, ...]
    #: per table, its post-data groups (numbers of :attr:`NativePlan.groups`: keys, indexes,
    #: triggers ...) built in the same transaction once the group's rows are in
    steps: tuple[tuple[int, ...], ...] = ()

    @property
    def table(self) -> str:
        """The table progress is reported under (the group's first)."""
        return self.tables[0]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "tables": list(self.tables),
                "post_data_groups": [list(numbers) for numbers in self.steps]}


@dataclass(frozen=True)
class BuildIndex:
    """Recreate: one step of a table's primary key / index builds (``step`` numbers
    :attr:`RestorePlan.index_steps` of the table; one step may build several at once)."""

    kind: ClassVar[str] = "index"
    table: str
    step: int
    objects: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "objects": list(self.objects)}


@dataclass(frozen=True)
class AddForeignKey:
    """Recreate: add one foreign key of ``table`` (number ``number`` of
    :attr:`RestorePlan.foreign_keys`) referencing ``parent``."""

    kind: ClassVar[str] = "foreign_key"
    table: str
    number: int
    parent: str
    name: str

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "name": self.name,
                "references": self.parent}


@dataclass(frozen=True)
class LoadInto:
    """Into-existing: load ``tables`` into the target's tables. Without ``clean`` one table,
    chunk by chunk (one transaction each); with ``clean`` the tables are emptied (children
    first) and loaded in one transaction (tables linked by foreign keys go together where the
    engine checks them while loading)."""

    kind: ClassVar[str] = "load_into"
    tables: tuple[str, ...]
    clean: bool

    @property
    def table(self) -> str:
        """The table progress is reported under (the group's first)."""
        return self.tables[0]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "tables": list(self.tables), "clean": self.clean}


@dataclass(frozen=True)
class NativeStep:
    """Recreate from the native schema: one table's post-data objects (keys, indexes,
    constraints, triggers, rules, policies: group ``group`` of :attr:`NativePlan.groups`),
    once its rows are in; on PostgreSQL each index and each key is a step of its own, built
    beside the others, and the table's other objects one step after them."""

    kind: ClassVar[str] = "native"
    table: str
    group: int
    objects: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "objects": list(self.objects)}


@dataclass(frozen=True)
class NativeForeignKey:
    """Recreate from the native schema: one foreign key of ``table`` referencing ``parent``
    (group ``group`` of :attr:`NativePlan.groups`), once both tables have their post-data."""

    kind: ClassVar[str] = "native_foreign_key"
    table: str
    group: int
    parent: str
    name: str

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "name": self.name,
                "references": self.parent}


RestoreTask = (LoadTable | LoadTables | BuildIndex | AddForeignKey | LoadInto | NativeStep
               | NativeForeignKey)

#: the progress phase of each kind of task (:class:`dbcrate.progress.Event` ``phase``)
PHASES: dict[str, str] = {"load": "data", "load_group": "data", "load_into": "data",
                          "index": "indexes", "foreign_key": "constraints", "native": "indexes",
                          "native_foreign_key": "constraints"}


@dataclass(frozen=True)
class LeftOut:
    """A native object a restore does not create, and why; ``table``: the restored table it
    would have belonged to (its report names it), or ``None``."""

    kind: str
    name: str
    label: str
    reason: str
    table: str | None = None


@dataclass(frozen=True)
class NativePlan:
    """A recreate from the archive's native schema (same engine): every object already
    checked by the target dialect's guard. ``pre`` runs before the rows, in one transaction
    (the ``drops`` of ``--clean`` first); ``groups`` are run by :class:`NativeStep` and
    :class:`NativeForeignKey` tasks; ``after`` (the data section: sequence values; and the
    post-data objects of no restored table: materialized-view data ...) runs last.
    Positions index :attr:`objects`."""

    objects: tuple[NativeObject, ...]
    pre: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]
    after: tuple[int, ...]
    #: statements dropping what exists in the target (``--clean``), built from its catalog
    drops: tuple[str, ...] = ()
    #: objects of the archive this restore leaves out, and why
    left_out: tuple[LeftOut, ...] = ()
    no_owner: bool = False
    no_privileges: bool = False
    #: the earlier run of this archive (resume) ran the pre-data already
    pre_done: bool = False
    #: groups an earlier run built (resume)
    groups_done: frozenset[int] = frozenset()
    #: the journal mark that names this plan's steps, kept with the pre-data's
    #: (:func:`dbcrate.restore.native.steps_mark`)
    steps_mark: int = 0
    #: the most pre-data objects, and drops, one transaction runs (0: no bound), and the parts
    #: of the pre-data an earlier run committed (resume; :mod:`dbcrate.restore.native_run`)
    pre_per_transaction: int = 0
    drops_per_transaction: int = 0
    pre_parts_done: frozenset[int] = frozenset()

    def label(self, position: int) -> str:
        obj = self.objects[position]
        return f"{obj.kind} {obj.qualified}"

    def to_dict(self) -> dict[str, Any]:
        def listed(positions: tuple[int, ...]) -> list[str]:
            return [self.label(i) for i in positions]
        return {"pre_data": listed(self.pre), "post_data": [listed(g) for g in self.groups],
                "after": listed(self.after), "drops": len(self.drops),
                "pre_data_transactions": max(1, -(-len(self.pre) // self.pre_per_transaction))
                if self.pre_per_transaction else 1,
                "left_out": [{"object": o.label, "reason": o.reason} for o in self.left_out],
                "no_owner": self.no_owner, "no_privileges": self.no_privileges}


@dataclass(frozen=True)
class Scheduled:
    """A task with its place in the run: it starts after the tasks numbered ``after`` (indexes
    into :attr:`RestorePlan.tasks`), highest ``priority`` first, and holds the table locks
    ``shared``/``exclusive`` while it runs (see :class:`dbcrate.restore.taskgraph.TaskGraph`)."""

    task: RestoreTask
    priority: tuple[float, ...]
    after: tuple[int, ...] = ()
    shared: frozenset[str] = frozenset()
    exclusive: frozenset[str] = frozenset()

    @property
    def phase(self) -> str:
        return PHASES[self.task.kind]


# ---------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Settings:
    """The options a run reads, resolved (``mode`` from ``data_only``, the sessions from
    ``jobs``, the engine and ``single_transaction``)."""

    mode: Literal["recreate", "into-existing"]
    clean: bool
    schema_only: bool
    on_conflict: Literal["error", "skip", "update", "check"]
    single_transaction: bool
    exit_on_error: bool
    verify: bool
    dry_run: bool
    #: every value is checked against the target before writing (not needed for a
    #: same-engine recreate without migrations: the types are the source's)
    check_values: bool
    #: the values are checked as the loads read the rows, not before (the target is a database
    #: file this restore made: a refusal removes it whole, so the user's target is untouched;
    #: a dry run, which writes nothing, checks first)
    checks_with_loads: bool
    #: the target is a database file this restore made: no one else uses it while the restore
    #: runs, so a table may be created and committed before its load
    #: (:meth:`~dbcrate.dialects.base.Dialect.load_committed`)
    new_target: bool
    #: several sessions may run at once (the engine allows it, and not one transaction)
    parallel: bool
    #: ``jobs`` as given: the most sessions at once
    jobs: int
    #: sessions that run the task graph
    sessions: int

    def sessions_for(self, units: int) -> int:
        """How many sessions run ``units`` independent units of DDL or checks at once."""
        return max(1, min(self.jobs, units)) if self.parallel else 1

    def readers_for(self, units: int) -> int:
        """How many sessions run ``units`` independent read-only checks at once: ``jobs``
        also where the engine takes one writer at a time (SQLite's readers do not wait for
        each other), one in a single transaction (its one connection)."""
        return 1 if self.single_transaction else max(1, min(self.jobs, units))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RestorePlan:
    """Everything decided before the first write (see the module's docstring)."""

    target: str
    archive_id: str
    same_engine: bool
    settings: Settings
    sources: tuple[Source, ...]
    #: existing tables a recreate drops and creates again
    replace: frozenset[str] = frozenset()
    #: the journal of an unfinished earlier run of this archive: table -> committed chunks
    done: Mapping[str, frozenset[int]] = field(default_factory=dict)
    #: tables an earlier run committed whole (resume: skipped)
    resumed: frozenset[str] = frozenset()
    #: the journal holds an unfinished earlier run, and ``clean`` starts over
    forget_journal: bool = False
    #: recreate: the SQLAlchemy tables, constraints and types for the target
    ddl: TargetTables | None = None
    #: recreate: per table, its index steps (:class:`BuildIndex` numbers them)
    index_steps: Mapping[str, tuple[tuple[Any, ...], ...]] = field(default_factory=dict)
    #: recreate: per table, its foreign keys added after the data (:class:`AddForeignKey`)
    foreign_keys: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: into-existing: archive table -> how its columns map onto the target's table
    maps: Mapping[str, TableMap] = field(default_factory=dict)
    #: into-existing: foreign-key columns closing a cycle, loaded as NULL then updated
    cyclic_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: target columns (by archive table) that cannot hold 4-byte UTF-8 (MariaDB utf8mb3)
    narrow_text: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: the work, in the order it was planned
    tasks: tuple[Scheduled, ...] = ()
    #: what the plan leaves out, and why (migrations that drop tables ...)
    warnings: tuple[str, ...] = ()
    #: recreate from the archive's native schema (same engine); ``None``: the portable DDL
    native: NativePlan | None = None

    @property
    def mode(self) -> str:
        return self.settings.mode

    def source(self, name: str) -> Source:
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Source]:
        # (a lookup per table and task: a scan of 2,000 sources each time was quadratic)
        return {s.name: s for s in self.sources}

    def source_of_target(self, target: str) -> Source:
        """Into-existing: the archive table loaded into the target's table ``target``."""
        return next(s for s in self.sources if self.maps[s.name].target.name == target)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON data (``plan --json``): settings, tables and tasks."""
        return {
            "target": self.target,
            "mode": self.mode,
            "archive_id": self.archive_id,
            "same_engine": self.same_engine,
            "settings": self.settings.to_dict(),
            "tables": [self._table_dict(s) for s in self.sources],
            "tasks": [{**s.task.describe(), "after": list(s.after)} for s in self.tasks],
            "warnings": list(self.warnings),
            "ddl": "native" if self.native is not None else "portable",
            "native": self.native.to_dict() if self.native is not None else None,
        }

    def _table_dict(self, source: Source) -> dict[str, Any]:
        out: dict[str, Any] = {"name": source.name, "rows": source.entry.rows,
                               "chunks": len(source.entry.chunks)}
        if self.mode == "recreate":
            out["action"] = ("resume: already restored" if source.name in self.resumed
                             else "replace" if source.name in self.replace else "create")
        else:
            tmap = self.maps[source.name]
            out["action"] = "empty, then load" if self.settings.clean else "append"
            out["target_table"] = tmap.target.name
            out["columns"] = [c.describe() for c in tmap.columns]
            out["dropped_columns"] = list(tmap.dropped)
        return out
