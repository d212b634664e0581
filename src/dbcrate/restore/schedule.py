"""The work of a restore as scheduled task values (:class:`~dbcrate.restore.plan.Scheduled`).

Recreate: a table's index steps once its rows are committed, sharing its lock; a foreign key
once both its tables have their indexes, holding both. On one session every load comes before
any index build, in foreign-key order; on several, the ready task with the most work behind it
starts first (:func:`by_critical_path`). Into an existing schema: one load per table (or
per group of tables emptied and loaded together with ``clean``).
"""

from __future__ import annotations

import dataclasses
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
    if sessions > 1:
        work.tasks = by_critical_path(work.tasks, sources)
    return work


def by_critical_path(work: list[Scheduled], sources: Sequence[Source]) -> list[Scheduled]:
    """``work`` with each task's priority replaced by the estimated work of the longest chain
    that starts with it: its own (:func:`task_cost`) and the longest chain of the tasks that
    come after it. Ready tasks then start by the most work left behind them (list scheduling
    by "upward rank"), as on several sessions the restore ends with its longest chain: a big
    table's load, its key, its indexes and the foreign keys on it start before smaller tables
    load, and a small table whose key a big table's foreign key waits for is not left for last
    (scale 1, two sessions: 0.3-0.6 s of 11-14 s against every load before any index).
    On one session the order does not change the time, and the plan's order is kept.

    :raises ValueError: a task comes after one planned later (the schedulers plan every task
        after those it waits for)."""
    tables = {s.name: s for s in sources}
    later: list[list[int]] = [[] for _ in work]
    for number, scheduled in enumerate(work):
        for before in scheduled.after:
            if before >= number:
                raise ValueError(f"task {number} comes after task {before}, planned later")
            later[before].append(number)
    # every task comes after tasks planned before it: from the last back, the tasks after
    # each one have their rank already
    rank = [0.0] * len(work)
    for number in reversed(range(len(work))):
        rank[number] = task_cost(work[number], tables) + max(
            (rank[n] for n in later[number]), default=0.0)
    return [dataclasses.replace(scheduled, priority=(rank[number],))
            for number, scheduled in enumerate(work)]


#: estimated cost of building an index or a key, per row of its table, and of checking a
#: foreign key, per row of its two tables, in the units of :func:`weight` (scale 1: a table of
#: 3,000,000 short rows, weight 3.6e8, loads in about 3.5 s, builds an index or its key in
#: 1.1-1.9 s and checks a foreign key in 0.8-1.1 s)
INDEX_ROW_COST = 50
FOREIGN_KEY_ROW_COST = 30


def task_cost(scheduled: Scheduled, tables: dict[str, Source]) -> float:
    """The estimated work of one task, in the units of :func:`weight`: a load weighs its
    tables; an index step, its table's rows; a foreign key, the rows of both its tables."""
    task = scheduled.task

    def rows(name: str) -> int:
        source = tables.get(name)
        return 0 if source is None else _expected(source)[0]

    phase = scheduled.phase
    if phase == "data":
        names = getattr(task, "tables", None) or (task.table,)
        return sum(weight(tables[n]) for n in names if n in tables)
    if phase == "constraints":
        return FOREIGN_KEY_ROW_COST * (rows(task.table) + rows(getattr(task, "parent", "")))
    return INDEX_ROW_COST * rows(task.table)


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
