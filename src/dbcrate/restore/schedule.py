"""The work of a restore as scheduled task values (:class:`~dbcrate.restore.plan.Scheduled`).

Recreate, as ``pg_restore -j`` orders it: every load before any index build (the largest first
on several sessions, so that no big table loads alone at the end; in foreign-key order on one);
a table's index steps once its rows are committed, sharing its lock; a foreign key once both
its tables have their indexes, holding both. Into an existing schema: one load per table (or
per group of tables emptied and loaded together with ``clean``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from dbcrate.dialects import Dialect
from dbcrate.restore.ddl import CombinedDDL, TargetTables, fk_label, index_steps
from dbcrate.restore.mapping import TableMap
from dbcrate.restore.plan import AddForeignKey, BuildIndex, LoadInto, LoadTable, Scheduled, Source

#: what one row costs to load, in archive bytes: the cost of a table's load and index builds is
#: taken as its archive bytes plus this per row (scale 1: 3M small rows load slower than 60,000
#: documents of 4 KB), so that the longest work starts first and no big table loads alone at the end
ROW_WEIGHT = 100


def weight(source: Source) -> float:
    rows, size = _expected(source)
    return size + ROW_WEIGHT * rows


def expected_bytes(source: Source) -> int:
    """The table's archive bytes, or, in an archive still being written (``copy``), what the
    source engine estimated them to be: a table not yet written is not a small one."""
    return _expected(source)[1]


def _expected(source: Source) -> tuple[int, int]:
    """(rows, bytes): the archive's, or what the schedule was told to expect (a copy)."""
    return source.expected or (source.entry.rows, source.entry.size)


def load_priority(source: Source, position: int, sessions: int) -> float:
    """Loads on several sessions: the largest first, so that the last to start is a small one
    (no straggler); on one session: in the plan's (foreign-key) order."""
    return weight(source) if sessions > 1 else -position


@dataclass
class RecreateWork:
    """The recreate schedule and the DDL elements its tasks number."""

    tasks: list[Scheduled] = field(default_factory=list)
    index_steps: dict[str, tuple[tuple[Any, ...], ...]] = field(default_factory=dict)
    foreign_keys: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def add(self, scheduled: Scheduled) -> int:
        self.tasks.append(scheduled)
        return len(self.tasks) - 1


def schedule_recreate(sources: Sequence[Source], ddl: TargetTables, dialect: Dialect, *,
                      replace: frozenset[str], resumed: frozenset[str],
                      built: dict[str, set[str]], sessions: int) -> RecreateWork:
    """Loads, index steps and foreign keys of a recreate. The DDL objects are all built here,
    before any task runs: naming them touches shared state, and a foreign key must be taken
    out of CREATE TABLE before that table is created. Tables committed by an earlier run
    (``resumed``) are not loaded again, and their indexes and keys that exist (``built``) are
    not built again."""
    work = RecreateWork()
    data: dict[str, int | None] = {}
    steps: dict[str, list[int]] = {}
    for position, source in enumerate(sources):
        name = source.name
        data[name] = None if name in resumed else work.add(Scheduled(
            LoadTable(name, name in replace),
            priority=(1, load_priority(source, position, sessions)),  # every load before any index
            exclusive=frozenset({name})))
        table_steps = tuple(tuple(step) for step in index_steps(source.schema, ddl, dialect))
        work.index_steps[name] = table_steps
        steps[name] = [
            work.add(Scheduled(BuildIndex(name, number, _objects(step)), priority=(0, weight(source)),
                               after=_after(data[name]), shared=frozenset({name})))
            for number, step in enumerate(table_steps) if not already_built(step, built.get(name))
        ]
    if dialect.alter_add_foreign_key:
        for source in sources:
            _schedule_foreign_keys(work, source, ddl, built, data, steps)
    return work


def _schedule_foreign_keys(work: RecreateWork, source: Source, ddl: TargetTables,
                           built: dict[str, set[str]], data: dict[str, int | None],
                           steps: dict[str, list[int]]) -> None:
    name = source.name
    constraints = ddl.foreign_keys.get(name, [])
    adds = []
    for fkc in constraints:
        ddl.tables[name].append_constraint(fkc)
        adds.append(sa.schema.AddConstraint(fkc))  # also takes it out of CREATE TABLE
    work.foreign_keys[name] = tuple(adds)
    for number, (fkc, add) in enumerate(zip(constraints, adds)):
        if already_built((add,), built.get(name)):
            continue
        parent = fkc.referred_table.name
        label = fk_label(fkc.name if isinstance(fkc.name, str) else None,
                         [c.name for c in fkc.columns], parent)
        work.add(Scheduled(
            AddForeignKey(name, number, parent, label), priority=(0, weight(source)),
            after=(*_after(data[name]), *steps[name], *_after(data.get(parent)),
                   *steps.get(parent, [])),
            exclusive=frozenset({name, parent})))


def _after(index: int | None) -> tuple[int, ...]:
    return () if index is None else (index,)


def _objects(step: tuple[Any, ...]) -> tuple[str, ...]:
    """The names of what one index step builds (for the plan's JSON)."""
    names = []
    for element in step:
        for part in element.parts if isinstance(element, CombinedDDL) else [element]:
            target = part.element
            if isinstance(target, sa.PrimaryKeyConstraint):
                names.append("primary key")
            else:
                names.append(str(target.name) if target.name is not None else "(unnamed)")
    return tuple(names)


def already_built(step: Sequence[Any], have: set[str] | None) -> bool:
    """Whether every element of an index/constraint step exists already (resume)."""
    if have is None:
        return False
    elements = [p for e in step for p in (e.parts if isinstance(e, CombinedDDL) else [e])]
    for element in elements:
        target = element.element
        if isinstance(target, sa.PrimaryKeyConstraint):
            if "" not in have:
                return False
        elif target.name is None or target.name not in have:
            return False
    return True


def schedule_into_existing(sources: Sequence[Source], maps: dict[str, TableMap],
                           dialect: Dialect, *, clean: bool, resumed: frozenset[str],
                           jobs: int, parallel: bool) -> tuple[list[Scheduled], int]:
    """One load per table, or with ``clean`` one per group (:func:`clean_groups`), and the
    sessions they run on; tables an earlier ``clean`` run committed whole (``resumed``) are
    left out of their group."""
    units = clean_groups(sources, maps, dialect) if clean else [[s] for s in sources]
    sessions = max(1, min(jobs, len(units))) if parallel else 1
    if dialect.fk_checks_off_sql is None:
        sessions = 1  # its foreign keys are checked while loading: parents first, in order
    tasks = []
    for position, group in enumerate(units):
        todo = [s for s in group if s.name not in resumed]
        if todo:
            tasks.append(Scheduled(
                LoadInto(tuple(s.name for s in todo), clean),
                priority=(load_priority(group[0], position, sessions),),
                exclusive=frozenset(s.name for s in todo)))
    return tasks, sessions


def clean_groups(sources: Sequence[Source], maps: dict[str, TableMap],
                 dialect: Dialect) -> list[list[Source]]:
    """The units a ``clean`` load empties and loads in one transaction each: every table on
    its own where the loading session turns foreign-key checks off, else the tables linked by
    foreign keys among the selected ones together (in plan order)."""
    if dialect.fk_checks_off_sql is not None:
        return [[s] for s in sources]
    group_of = {s.name: s.name for s in sources}

    def root(name: str) -> str:
        while group_of[name] != name:
            name = group_of[name]
        return name

    by_target = {maps[s.name].target.name: s.name for s in sources}
    for source in sources:
        for fk in maps[source.name].target.foreign_keys:
            parent = by_target.get(fk.ref_table)
            if parent is not None:
                group_of[root(source.name)] = root(parent)
    groups: dict[str, list[Source]] = {}
    for source in sources:
        groups.setdefault(root(source.name), []).append(source)
    return list(groups.values())
