"""Recreate from the archive's native schema (same engine): plan it, schedule it, run it.

The order is pg_restore's: **pre-data** (types, functions, tables without their keys,
sequences, views) before any row, in as few transactions as the target can lock (run by
:mod:`dbcrate.restore.native_run`); the **rows** (the ordinary load tasks,
which then create nothing); per table its **post-data** (primary key, indexes, constraints,
triggers, rules, policies) once its rows are in, so that no trigger fires on a restored row and
no index is updated row by row; each **foreign key** once both its tables are built; and last
the **data section** (sequence values) and the post-data of no restored table (materialized
view data, ...). Every object is checked by the target dialect's guard while the plan is made,
before anything runs (:func:`plan_native`); what runs is the checked text, statement by
statement (:meth:`~dbcrate.dialects.native.NativeSupport.statements`).

A failure is reported, never silent: a table whose definition fails is a failed table (its
rows cannot load); any other object that fails is a warning naming it and the engine's error
(the rest goes on, as pg_restore does without ``--exit-on-error``); an owner or a grant naming
a role the target lacks is a warning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from sqlalchemy.engine import Connection

from dbcrate.dialects import Dialect, engine_family, engine_name
from dbcrate.dialects.native import NativeSupport
from dbcrate.errors import TargetConflict, UsageError, driver_message
from dbcrate.model.native import NativeObject, NativeSchema, not_portable
from dbcrate.options import RestoreOptions
from dbcrate.progress import Event
from dbcrate.restore import native_run
from dbcrate.restore.native_run import JOURNAL_NAME, PRE_DATA, run_objects, run_setup
from dbcrate.restore.plan import (
    LeftOut,
    LoadTable,
    LoadTables,
    NativeForeignKey,
    NativePlan,
    NativeStep,
    Scheduled,
    Source,
)
from dbcrate.restore.recreate import FRESH_MIN_BYTES
from dbcrate.restore.report import TableResult
from dbcrate.restore.schedule import by_critical_path, expected_bytes, load_priority, weight
from dbcrate.restore.session import Execution

#: a table whose data takes less than this in the archive loads with others in one
#: transaction (:class:`LoadTables`); a bigger one in its own, which ``FREEZE`` needs (and
#: its load is not dominated by the transaction's round trips)
SMALL_TABLE_BYTES = FRESH_MIN_BYTES
#: the most tables, and archive bytes, one group loads
GROUP_TABLES = 64
GROUP_BYTES = 8 * 1024 * 1024
AFTER = -11


def group_mark(group: int) -> int:
    return -100 - group


def steps_mark(objects: Sequence[NativeObject], pre: Sequence[int],
               groups: Sequence[Sequence[int]], after: Sequence[int]) -> int:
    """A journal mark that names the plan's steps (a hash of their objects, in order): the
    journal's group marks are positions in the plan, so a ``--resume`` whose plan has other
    steps (another dbcrate made the first run) must not read them as its own."""
    def labels(positions: Sequence[int]) -> str:
        return "\x1f".join(f"{objects[i].kind} {objects[i].qualified}" for i in positions)

    text = "\x1e".join([labels(pre), *(labels(g) for g in groups), labels(after)])
    return -(1 << 30) - int.from_bytes(hashlib.sha256(text.encode()).digest()[:4]) % (1 << 29)


def why_not_native(schema: NativeSchema | None, dialect: Dialect, options: RestoreOptions,
                   mode: str, source_engine: str, sources: Sequence[Source],
                   archive_tables: Sequence[str], present: set[str]) -> str | None:
    """Why this restore cannot recreate from the archive's native schema, or ``None``."""
    target = engine_name(dialect)
    if schema is None:
        return ("the archive carries no native schema (dumped by an older dbcrate, with "
                "no_native_schema=True, or from an engine without one)")
    if dialect.native is None or engine_family(schema.engine) != engine_family(target) \
            or engine_family(source_engine) != engine_family(target):
        return f"the archive's native schema is {schema.engine}'s, the target is {target}"
    if mode != "recreate":
        return "into-existing: the target's schema is kept (nothing is created)"
    if options.migrations:
        return "migrations change the tables: the source's definitions no longer fit"
    support = dialect.native
    defined = {support.table_name(o) for o in schema.objects if o.kind in support.table_kinds}
    chosen = {s.name for s in sources}
    odd = sorted((chosen - defined) | (defined - set(archive_tables)))
    if odd:
        return (f"the native schema and the archive's tables disagree ({', '.join(odd[:5])}): "
                "the archive was changed after the dump")
    if not any(support.is_foreign_key(o) for o in schema.objects):
        # foreign keys inside CREATE TABLE (SQLite, MariaDB) cannot be left out of it
        for source in sources:
            for fk in source.schema.foreign_keys:
                if fk.ref_table not in chosen and fk.ref_table not in present:
                    return (f"table {source.name!r} has a foreign key to {fk.ref_table!r}, "
                            "which is neither restored nor present: its native definition "
                            "would create it dangling")
    return None


def choose_native(why_not: str | None, options: RestoreOptions) -> bool:
    """``--ddl``: native where it can with ``auto``; ``native`` where it cannot is refused.

    :raises UsageError: ``--ddl native`` and ``why_not`` (:func:`why_not_native`).
    """
    if options.ddl == "portable":
        return False
    if options.ddl == "native" and why_not is not None:
        raise UsageError(f"ddl='native' cannot be used: {why_not}",
                         hint="leave out ddl (or use ddl='portable')")
    return why_not is None


def left_out_warnings(schema: NativeSchema | None, reason: str) -> list[str]:
    """One warning per native object the portable path does not carry (nothing silent)."""
    if schema is None:
        return []
    return [f"not carried: {o.kind} {o.qualified} ({reason})" for o in not_portable(schema)]


def plan_native(schema: NativeSchema, dialect: Dialect, tables: Sequence[str],
                archive_tables: Sequence[str], present: set[str], options: RestoreOptions,
                done: dict[str, frozenset[int]], target: str) -> NativePlan:
    """Check every object (the guard refuses the archive before anything runs), select the
    objects of the restored ``tables``, and split them into pre-data, per-table groups and
    what runs after.

    :raises UnsafeNativeSql: an object that is not the definition it claims (exit 6).
    :raises TargetConflict: objects exist in the target and neither ``clean`` nor a resumed
        run of this archive created them.
    """
    support = dialect.native
    assert support is not None
    for obj in schema.objects:
        support.check(obj)
    support.settings_sql(schema)  # refuses a setting that is not a checked value, up front
    chosen = set(tables)
    unchosen = set(archive_tables) - chosen
    objects: list[NativeObject] = []
    left_out: list[LeftOut] = []
    known = set(archive_tables)
    for obj in schema.objects:
        why = _left_out_because(obj, support, unchosen, present, known)
        if why is None:
            objects.append(obj)
        else:
            table = support.table_of(obj)
            owner = table if table in chosen else None
            left_out.append(LeftOut(_noun(obj), obj.name, f"{obj.kind} {obj.qualified}", why,
                                    owner))
    objects = support.for_restore(objects, schema.objects)
    pre = tuple(i for i, o in enumerate(objects) if o.section == "pre-data")
    groups, after = _groups(objects, support, chosen)
    marks = done.get(JOURNAL_NAME, frozenset())
    pre_done = PRE_DATA in marks
    size, parts_done = native_run.recorded_parts(marks)
    mark = steps_mark(objects, pre, groups, after)
    if (pre_done or parts_done) and mark not in marks:
        raise UsageError("the restore to resume was begun by another version of dbcrate, whose "
                         "steps for the native schema differ: they cannot be matched",
                         hint="restore again without --resume, with --clean (the target's "
                         "objects of this archive are replaced)")
    with dialect.engine.connect() as conn:
        slots = support.lock_slots(conn)
    if size is None:  # (a resumed run cuts the parts the first one journaled)
        size = native_run.objects_per_transaction(slots, native_run.LOCKS_PER_CREATE)
    kept = {p for i, part in enumerate(native_run.parts(pre, size)) if i in parts_done for p in part}
    drops: tuple[str, ...] = ()
    if not pre_done:  # (an event or a trigger may exist too)
        drops = _drops(dialect, support, [o for i, o in enumerate(objects) if i not in kept],
                       options.clean, target)
    return NativePlan(objects=tuple(objects), pre=pre, groups=groups, after=after, drops=drops,
                      left_out=tuple(left_out), no_owner=options.no_owner,
                      no_privileges=options.no_privileges, pre_done=pre_done,
                      groups_done=frozenset(i for i in range(len(groups)) if group_mark(i) in marks),
                      steps_mark=mark, pre_per_transaction=size, pre_parts_done=parts_done,
                      drops_per_transaction=native_run.objects_per_transaction(
                          slots, native_run.LOCKS_PER_DROP))


def _left_out_because(obj: NativeObject, support: NativeSupport, unchosen: set[str],
                      present: set[str], known: set[str]) -> str | None:
    """Why an object of an archive table the restore's selection leaves out is left out too
    (objects on other relations, a materialized view's index, stay), and a foreign key to a
    table that is neither in the archive (a schema the dump left out) nor in the target."""
    if obj.kind in support.table_kinds and support.table_name(obj) in unchosen:
        return "its table is not restored (selection)"
    table = support.table_of(obj)
    if table is not None and table in unchosen:
        return f"table {table!r} is not restored (selection)"
    if support.is_foreign_key(obj):
        parent = support.fk_parent(obj)
        if parent is not None and parent in unchosen and parent not in present:
            return f"table {parent!r} is neither restored nor present in the target"
        if parent is not None and parent not in known and parent not in present:
            return f"table {parent!r} is neither in the archive nor in the target"
    return None


def _groups(objects: list[NativeObject], support: NativeSupport,
            chosen: set[str]) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
    """Per table its post-data groups: each object of a kind built alone
    (:attr:`~dbcrate.dialects.native.NativeSupport.steps_alone`: an index, a key) a group of
    its own, then one group of the table's other objects, in the captured order; then one
    group per foreign key; the rest (the data section, post-data of no table) runs after."""
    per_table: dict[str, list[int]] = {}
    keys: list[tuple[int, ...]] = []
    after: list[int] = []
    for i, obj in enumerate(objects):
        if obj.section == "pre-data":
            continue
        table = support.table_of(obj) if obj.section == "post-data" else None
        if table is None or table not in chosen:
            after.append(i)
        elif support.is_foreign_key(obj):
            keys.append((i,))
        else:
            per_table.setdefault(table, []).append(i)
    groups: list[tuple[int, ...]] = []
    for members in per_table.values():
        alone = [i for i in members if objects[i].kind in support.steps_alone]
        rest = tuple(i for i in members if i not in alone)
        groups.extend([*((i,) for i in alone), *([rest] if rest else [])])
    return tuple(groups + keys), tuple(after)


def _drops(dialect: Dialect, support: NativeSupport, pre: list[NativeObject], clean: bool,
           target: str) -> tuple[str, ...]:
    with dialect.engine.connect() as conn:
        found = support.existing(conn, pre)
    if found and not clean:
        raise TargetConflict([f"{o.kind} {o.qualified}" for o, _ in found], target)
    return tuple(drop for _, drop in reversed(found))


def schedule_native_recreate(sources: Sequence[Source], native: NativePlan, dialect: Dialect, *,
                             resumed: frozenset[str], sessions: int,
                             single: bool = False) -> list[Scheduled]:
    """The loads (which create nothing: the pre-data did) and the post-data tasks. Small
    tables load in groups (:func:`load_groups`) where the engine can and each load is
    otherwise a transaction of its own (not ``single``)."""
    support = dialect.native
    assert support is not None
    work: list[Scheduled] = []
    loads: dict[str, int | None] = dict.fromkeys(resumed)
    pending = [(position, s) for position, s in enumerate(sources) if s.name not in resumed]
    grouped = load_groups([s for _, s in pending], sessions) \
        if support.group_small_loads and not single else []
    in_group = {s.name for group in grouped for s in group}
    for position, source in pending:
        if source.name in in_group:
            continue
        work.append(Scheduled(LoadTable(source.name, False),
                              priority=(1, load_priority(source, position, sessions)),
                              exclusive=frozenset({source.name})))
        loads[source.name] = len(work) - 1
    position_of = {s.name: position for position, s in pending}
    steps = _post_data_steps(native, support)
    absorbed: set[int] = set()
    for group in grouped:
        # after the big tables on several sessions (they weigh more), in plan order on one
        first = min(position_of[s.name] for s in group)
        priority = sum(weight(s) for s in group) if sessions > 1 else -first
        names = tuple(s.name for s in group)
        task = LoadTables(names, tuple(tuple(steps.get(name, ())) for name in names))
        work.append(Scheduled(task, priority=(1, priority), exclusive=frozenset(names)))
        loads.update(dict.fromkeys(names, len(work) - 1))
        absorbed.update(number for numbers in task.steps for number in numbers)
    schedule_native(work, native, loads, support, {s.name: weight(s) for s in sources},
                    absorbed=frozenset(absorbed))
    return by_critical_path(work, sources) if sessions > 1 else work


def _post_data_steps(native: NativePlan, support: NativeSupport) -> dict[str, list[int]]:
    """Each table's post-data groups (not its foreign keys) still to build."""
    steps: dict[str, list[int]] = {}
    for number, group in enumerate(native.groups):
        first = native.objects[group[0]]
        if number not in native.groups_done and not support.is_foreign_key(first):
            steps.setdefault(support.table_of(first) or "", []).append(number)
    return steps


def load_groups(sources: Sequence[Source], sessions: int) -> list[list[Source]]:
    """The small tables (under :data:`SMALL_TABLE_BYTES` in the archive, or estimated to be:
    :func:`~dbcrate.restore.schedule.expected_bytes`) in groups of at most
    :data:`GROUP_TABLES` tables and :data:`GROUP_BYTES` bytes, at least ``4 * sessions``
    groups where there are that many tables (so that the sessions share them out evenly);
    a group of one table is no group."""
    small = [s for s in sources if expected_bytes(s) < SMALL_TABLE_BYTES]
    if len(small) < 2:
        return []
    size = max(2, min(GROUP_TABLES, -(-len(small) // (4 * sessions))))
    groups: list[list[Source]] = [[]]
    for source in small:
        if len(groups[-1]) >= size or sum(expected_bytes(s) for s in groups[-1]) \
                + expected_bytes(source) > GROUP_BYTES:
            groups.append([])
        groups[-1].append(source)
    return [g for g in groups if len(g) > 1]


def schedule_native(work: list[Scheduled], native: NativePlan, loads: dict[str, int | None],
                    support: NativeSupport, weight: dict[str, float], *,
                    absorbed: frozenset[int] = frozenset()) -> None:
    """Add the post-data tasks: a table's group after its load, a foreign key after both
    tables' loads and groups (``loads``: table -> its load task's position, ``None`` when
    resumed). The ``absorbed`` groups are built by their table's load task (a group of small
    tables: :class:`LoadTables`), so a foreign key waits for that task."""
    built: dict[str, list[int]] = {}

    def load_of(table: str) -> list[int]:
        position = loads.get(table)
        return [] if position is None else [position]

    for number, group in enumerate(native.groups):
        if number in native.groups_done:
            continue
        first = native.objects[group[0]]
        table = support.table_of(first) or ""
        priority = (0.0, weight.get(table, 0.0))
        if number in absorbed:
            built.setdefault(table, []).extend(load_of(table))
        elif support.is_foreign_key(first):
            parent = support.fk_parent(first) or table
            after = [*load_of(table), *built.get(table, []), *load_of(parent),
                     *built.get(parent, [])]
            work.append(Scheduled(NativeForeignKey(table, number, parent, first.name),
                                  priority=priority, after=tuple(after),
                                  exclusive=frozenset({table, parent})))
        else:
            # an index or key alone (sharing its table, or holding it): after the rows; the
            # table's other objects (rules, triggers, policies ...) after those too
            alone = support.steps_alone.get(first.kind) if len(group) == 1 else None
            after = load_of(table) if alone is not None \
                else [*load_of(table), *built.get(table, [])]
            lock = frozenset({table})
            work.append(Scheduled(NativeStep(table, number, tuple(native.label(i) for i in group)),
                                  priority=priority, after=tuple(after),
                                  shared=frozenset() if alone is False else lock,
                                  exclusive=lock if alone is False else frozenset()))
            built.setdefault(table, []).append(len(work) - 1)


# ------------------------------------------------------------------------------- running
#: how a table's report names the kinds of its post-data objects
_NOUNS = {"FK CONSTRAINT": "foreign key", "CONSTRAINT": "constraint", "INDEX": "index",
          "TRIGGER": "trigger", "RULE": "rule", "POLICY": "policy"}


def _noun(obj: NativeObject) -> str:
    return _NOUNS.get(obj.kind, obj.kind.lower())


def run_group(ctx: Execution, task: NativeStep | NativeForeignKey) -> None:
    """One table's post-data group, or one foreign key, in one transaction, once its rows
    are in. An object that fails marks the table failed with its rows in, naming the object
    (as a failed index build does); skipped, with a note per object, when a table it needs
    failed."""
    native, support = ctx.plan.native, ctx.dialect.native
    assert native is not None and support is not None
    result = ctx.result(task.table)
    needs = [task.table] + ([task.parent] if isinstance(task, NativeForeignKey) else [])
    for name in needs:
        other = ctx.results.get(name)
        if other is not None and other.status != "restored":
            skip_group(ctx, task.group, result, f"table {name!r} failed to restore ({other.status})")
            return
    failures: list[str] = []

    def work(conn: Connection) -> None:
        marks: list[tuple[str, int, int]] = []
        run_setup(conn, support)
        failures.extend(build_group(ctx, conn, task.group, marks))
        run_setup(conn, support, reset=True)  # (the journal is found by the search path)
        ctx.runner.record_many(conn, marks)

    try:
        ctx.runner.unit(work)
    except Exception as exc:  # the transaction itself (a lost connection)
        failures.append(driver_message(exc))
    if failures:
        result.status = "failed"
        result.error = "rows restored, but " + "; and ".join(failures)


def skip_group(ctx: Execution, number: int, result: TableResult, why: str) -> None:
    """Post-data group ``number`` is not built: a note per object in ``result``."""
    assert ctx.plan.native is not None
    for position in ctx.plan.native.groups[number]:
        obj = ctx.plan.native.objects[position]
        result.skip_object(_noun(obj), obj.name, why)


def build_group(ctx: Execution, conn: Connection, number: int,
                marks: list[tuple[str, int, int]]) -> list[str]:
    """Run post-data group ``number`` in ``conn``'s transaction (its setup done); what
    failed, as the table's report says it. A group that built whole adds its journal mark to
    ``marks``, for the caller to write once the setup is reset (so that ``--resume`` builds
    only the failed ones again)."""
    native = ctx.plan.native
    assert native is not None
    failures: list[str] = []
    positions = native.groups[number]
    for position, failure in zip(positions, run_objects(ctx, conn, positions)):
        if failure is not None:
            obj = native.objects[position]
            noun = _noun(obj)
            article = "an" if noun[0] in "aeiou" else "a"
            failures.append(f"{article} {noun} could not be created ({obj.name}): {failure}")
    if not failures:
        marks.append((JOURNAL_NAME, group_mark(number), 0))
    return failures


def epilogue(ctx: Execution) -> Iterator[Event]:
    """After the graph: the data section (sequence values), the post-data of no restored
    table, and the database-level settings; an object that fails is a warning naming it."""
    native, support = ctx.plan.native, ctx.dialect.native
    assert native is not None and support is not None
    if AFTER in ctx.plan.done.get(JOURNAL_NAME, frozenset()):
        return

    def work(conn: Connection) -> None:
        run_setup(conn, support)
        for position, failure in zip(native.after, run_objects(ctx, conn, native.after)):
            if failure is not None:
                obj = native.objects[position]
                ctx.report.warnings.append(f"not restored: {obj.kind} {obj.qualified}: {failure}")
        run_setup(conn, support, reset=True)
        for sql in support.settings_sql(ctx.arch.manifest.native) \
                if ctx.arch.manifest.native is not None else []:
            support.execute(conn, sql)
        ctx.runner.record(conn, JOURNAL_NAME, AFTER, 0)

    ctx.runner.unit(work)
    yield Event("schema", len(native.after), len(native.after), "Native schema (after the data)")




