"""Build the frozen :class:`~dbcrate.restore.plan.RestorePlan`: resolve the options, read what
the target holds (tables, the journal of an earlier run, the existing tables' definitions) and
schedule the work. Nothing here writes to the target; refusals (a name the target cannot hold,
existing tables without ``clean``, an unfinished earlier run, incompatible columns) are raised
here, before the preflight reads a single row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from dbcrate.containers.archive import Archive
from dbcrate.dialects import Dialect, dialect_class, engine_family, engine_name
from dbcrate.dialects.engine_types import SAFE_ENGINE_TYPE
from dbcrate.dialects.reflection import quiet_reflection
from dbcrate.errors import Incompatibility, NotPortable, TargetConflict, UnfinishedRestore, UsageError
from dbcrate.model.native import NativeSchema
from dbcrate.model.schema import Table, dependency_order
from dbcrate.options import RestoreOptions, choices_of
from dbcrate.restore import journal
from dbcrate.restore.conflicts import POLICIES
from dbcrate.restore.ddl import build_tables
from dbcrate.restore.mapping import TableMap, plan_table
from dbcrate.restore.native import (
    choose_native,
    left_out_warnings,
    plan_native,
    schedule_native_recreate,
    why_not_native,
)
from dbcrate.restore.plan import NativeForeignKey, NativeStep, RestorePlan, Settings, Source
from dbcrate.restore.report import TableResult
from dbcrate.restore.schedule import schedule_into_existing, schedule_recreate

#: the problem of an archive table that into-existing mode finds no table for
MISSING_TABLE = "the target has no such table (into-existing mode creates nothing)"


def check_options(options: RestoreOptions) -> None:
    """Refuse option combinations that make no sense, before anything is opened."""
    if options.mode not in ("recreate", "into-existing"):
        raise UsageError(f"unknown restore mode {options.mode!r}",
                         hint="modes: " + ", ".join(choices_of(RestoreOptions, "mode")))
    if options.on_conflict not in POLICIES:
        raise UsageError(f"unknown conflict policy {options.on_conflict!r}",
                         hint="policies: " + ", ".join(POLICIES))
    if options.on_conflict == "check" and options.clean:
        raise UsageError("on_conflict='check' compares the archive with the target's rows; "
                         "clean=True would empty them first", hint="leave out clean=True")
    if options.schema_only and (options.data_only or options.mode == "into-existing"):
        raise UsageError("schema_only=True creates tables; it cannot be combined with "
                         "data_only=True or mode='into-existing'",
                         hint="leave out one of them")
    if options.on_conflict != "error" and not (options.data_only or options.mode == "into-existing"):
        raise UsageError("on_conflict applies when loading into existing tables",
                         hint="add mode='into-existing'")


def plan_restore(arch: Archive, options: RestoreOptions, dialect: Dialect, target: str,
                 sources: list[Source], warnings: list[str], *,
                 new_target: bool = False) -> RestorePlan:
    """The whole plan for restoring ``sources`` of ``arch`` into the target ``dialect`` opened
    (``target`` is its URL without secrets, for messages; ``new_target``: a database file this
    restore made, which it removes whole if a value is refused)."""
    mode = "into-existing" if options.data_only else options.mode
    if options.single_transaction and not dialect.transactional_ddl and mode == "recreate":
        raise UsageError(
            f"{engine_name(dialect)} cannot roll back CREATE/DROP TABLE, so a recreating "
            "restore cannot be all-or-nothing",
            hint="use mode='into-existing' with single_transaction=True (rows are "
            "transactional), or restore one transaction per table",
        )
    with dialect.engine.connect() as conn:
        dialect.inspect_target(conn)
    same_engine = engine_family(engine_name(dialect)) == engine_family(arch.manifest.source.engine)
    by_name = {s.name: s for s in sources}
    ordered = tuple(by_name[t.name] for t in dependency_order([s.schema for s in sources]))
    archive_id = arch.journal_id
    done, forget = _journal_state(dialect, archive_id, options, target)
    parallel = dialect.parallel_restore and not options.single_transaction
    settings = _settings(options, mode, same_engine, parallel, new_target)
    common: dict[str, Any] = dict(target=target, archive_id=archive_id, same_engine=same_engine,
                                  sources=ordered, done=done, forget_journal=forget,
                                  warnings=tuple(warnings))
    present = target_tables(dialect, [t.schema for t in arch.manifest.tables])
    schema = arch.manifest.native
    archive_tables = [t.name for t in arch.manifest.tables]
    why_not = why_not_native(schema, dialect, options, mode, arch.manifest.source.engine,
                             ordered, archive_tables, present)
    if choose_native(why_not, options):
        assert schema is not None
        return _plan_native(common, settings, dialect, schema, archive_tables, present, options)
    reason = "ddl='portable' runs no archive SQL" if options.ddl == "portable" else why_not
    common["warnings"] += tuple(left_out_warnings(schema, reason or ""))
    if mode == "recreate":
        common["warnings"] += tuple(_as_text_warnings(ordered, arch.manifest.source.engine,
                                                      engine_name(dialect), same_engine))
    if mode == "recreate":
        return _plan_recreate(common, settings, dialect, present, options)
    return _plan_into_existing(common, settings, dialect, present, options)


def _as_text_warnings(sources: Sequence[Source], source: str, target: str,
                      same_engine: bool) -> list[str]:
    """One warning per column whose type the target does not get: from another engine, one
    it has no equivalent of (a PostgreSQL point, xml or composite; a MariaDB POINT), or on the
    same engine, a user-defined type the portable schema does not define (an enum, a
    composite). The values are carried exactly, the type is not (nothing silent)."""
    carried_as = dialect_class(source).carried_as
    out = []
    for s in sources:
        for c in s.schema.columns:
            if same_engine:
                how = None if SAFE_ENGINE_TYPE.match(c.engine_type) else carried_as(c)
                where = "the portable schema does not define it"
            else:
                how, where = carried_as(c), f"no {target} equivalent"
            if how:
                out.append(f"column {s.name}.{c.name}: {source} type {c.engine_type} ({where}): "
                           f"restored as {how}")
    return out


def _plan_native(common: dict[str, Any], settings: Settings, dialect: Dialect,
                 schema: NativeSchema, archive_tables: list[str], present: set[str],
                 options: RestoreOptions) -> RestorePlan:
    """Recreate from the native schema: the guard's check of every object, what exists in
    the target (refused without ``clean``), loads that create nothing, post-data tasks."""
    sources: tuple[Source, ...] = common["sources"]
    done = common["done"]
    native = plan_native(schema, dialect, [s.name for s in sources], archive_tables, present,
                         options, done, common["target"])
    resumed = _whole(done)
    tasks = schedule_native_recreate(sources, native, dialect, resumed=resumed,
                                     sessions=settings.sessions,
                                     single=settings.single_transaction)
    return RestorePlan(**common, settings=settings, resumed=resumed, native=native,
                       tasks=tuple(tasks))


def _settings(options: RestoreOptions, mode: Any, same_engine: bool, parallel: bool,
              new_target: bool) -> Settings:
    check_values = ((mode == "into-existing" or not same_engine or bool(options.migrations))
                    and not options.schema_only)
    return Settings(
        mode=mode, clean=options.clean, schema_only=options.schema_only,
        on_conflict=options.on_conflict, single_transaction=options.single_transaction,
        exit_on_error=options.exit_on_error, verify=options.verify, dry_run=options.dry_run,
        check_values=check_values, parallel=parallel, jobs=options.jobs,
        checks_with_loads=check_values and new_target and mode == "recreate",
        new_target=new_target,
        # recreate: not capped by the table count (one table's index builds run side by side)
        sessions=max(1, options.jobs) if parallel else 1,
    )


def _journal_state(dialect: Dialect, archive_id: str, options: RestoreOptions,
                   target: str) -> tuple[dict[str, frozenset[int]], bool]:
    """What an earlier run of this archive committed (kept with ``resume``), and whether the
    journal is to be forgotten (``clean`` starts over); an unfinished earlier run without
    either is refused: appending again would duplicate what it committed."""
    with dialect.engine.connect() as conn:
        earlier = journal.done(conn, dialect, archive_id)
    if options.resume:
        return {name: frozenset(chunks) for name, chunks in earlier.items()}, False
    if any(chunks - {journal.STARTED} for chunks in earlier.values()) and not options.clean:
        raise UnfinishedRestore(target, sum(len(chunks) for chunks in earlier.values()))
    return {}, bool(earlier)


def target_tables(dialect: Dialect, tables: Sequence[Table]) -> set[str]:
    """The archive names of ``tables`` that the target holds, and its other tables (see
    :meth:`~dbcrate.dialects.naming.TableNaming.present_tables`)."""
    with dialect.engine.connect() as conn:
        return dialect.present_tables(conn, tables)


def _whole(done: dict[str, frozenset[int]]) -> frozenset[str]:
    return frozenset(n for n, chunks in done.items() if journal.WHOLE_TABLE in chunks)


def _plan_recreate(common: dict[str, Any], settings: Settings, dialect: Dialect,
                   present: set[str], options: RestoreOptions) -> RestorePlan:
    sources: tuple[Source, ...] = common["sources"]
    names_wrong = dialect.name_problems([s.schema for s in sources])
    if names_wrong:
        raise NotPortable(common["target"], names_wrong,
                          hint="rename these tables or columns in the source, leave the tables "
                          "out (exclude=[...]), or restore into an engine that can hold the names")
    if dialect.case_insensitive_tables:
        lowered = {p.lower() for p in present}
        existing = {s.name for s in sources if s.name.lower() in lowered}
    else:
        existing = {s.name for s in sources if s.name in present}
    done = common["done"]
    resumed = _whole(done)
    # --resume replaces only what this archive's unfinished restore created (and did not
    # commit whole); any other existing table is the user's: refused as without --resume
    started = {n for n, chunks in done.items() if journal.STARTED in chunks}
    pending_existing = existing - resumed
    if not options.clean and pending_existing - started:
        raise TargetConflict(sorted(pending_existing - started), common["target"])
    ddl = build_tables([s.schema for s in sources], dialect, same_engine=common["same_engine"],
                       inline_foreign_keys=not dialect.alter_add_foreign_key, existing=present)
    if ddl.too_long_keys:
        raise NotPortable(common["target"], ddl.too_long_keys,
                          hint="give these columns shorter lengths in the source, leave the "
                          "tables out (exclude=[...]), or restore into an engine whose keys "
                          "can hold them")
    replace = frozenset(pending_existing)
    work = schedule_recreate(sources, ddl, dialect, replace=replace, resumed=resumed,
                             built=structure_present(dialect, resumed), sessions=settings.sessions)
    return RestorePlan(**common, settings=settings, replace=replace, resumed=resumed, ddl=ddl,
                       index_steps=work.index_steps, foreign_keys=work.foreign_keys,
                       tasks=tuple(work.tasks))


def _plan_into_existing(common: dict[str, Any], settings: Settings, dialect: Dialect,
                        present: set[str], options: RestoreOptions) -> RestorePlan:
    sources: tuple[Source, ...] = common["sources"]
    maps, narrow = _map_tables(sources, dialect, present, options, common["target"])
    resumed = _whole(common["done"]) if options.clean else frozenset()
    tasks, sessions = schedule_into_existing(sources, maps, dialect, clean=options.clean,
                                             resumed=resumed, jobs=options.jobs,
                                             parallel=settings.parallel)
    settings = Settings(**{**settings.to_dict(), "sessions": sessions})
    return RestorePlan(**common, settings=settings, resumed=resumed, maps=maps,
                       narrow_text=narrow, cyclic_columns=_cyclic_columns(sources, maps, dialect),
                       tasks=tuple(tasks))


def _map_tables(sources: tuple[Source, ...], dialect: Dialect, present: set[str],
                options: RestoreOptions,
                target: str) -> tuple[dict[str, TableMap], dict[str, frozenset[str]]]:
    """Each archive table's mapping onto the existing table of its name, and the target's
    columns that hold at most 3 UTF-8 bytes per character; every problem refused at once."""
    problems: list[Incompatibility] = []
    maps: dict[str, TableMap] = {}
    narrow: dict[str, frozenset[str]] = {}
    lookup = {p.lower() if dialect.case_insensitive_tables else p: p for p in present}
    with dialect.engine.connect() as conn:
        if dialect.reflect_in_snapshot:
            dialect.begin_snapshot(conn)
        for source in sources:
            real = lookup.get(source.name.lower() if dialect.case_insensitive_tables else source.name)
            if real is None:
                problems.append(Incompatibility(source.name, None, MISSING_TABLE))
                continue
            existing = dialect.reflect(conn, real)
            tmap = plan_table(source.schema, existing,
                              case_insensitive=dialect.case_insensitive_columns)
            maps[source.name] = tmap
            narrow[source.name] = frozenset(dialect.three_byte_utf8_columns(conn, real))
            problems.extend(Incompatibility(source.name, None, why) for why in tmap.blocking)
            if options.on_conflict != "error" and not existing.primary_key:
                problems.append(Incompatibility(
                    source.name, None, f"on_conflict={options.on_conflict!r} needs a primary key "
                    "in the target table"))
        if dialect.reflect_in_snapshot:
            dialect.end_snapshot(conn)
    if problems:
        raise NotPortable(target, problems, hint=_into_existing_hint(problems))
    return maps, narrow


def _into_existing_hint(problems: list[Incompatibility]) -> str:
    """What to do when into-existing mode cannot map the archive onto the target's tables:
    the target's schema is the master, so the fix is in the target or the selection."""
    if any(p.problem.startswith(MISSING_TABLE) for p in problems):
        return ("into-existing mode creates no table: create the missing tables first (e.g. "
                "with your application's migrations), leave them out (exclude=[...]), or "
                "restore with mode='recreate'")
    return ("make the target's tables match the archive (columns, types, keys), map the "
            "archive with migrations=FILE.toml, or leave the tables out (exclude=[...])")


def _cyclic_columns(sources: tuple[Source, ...], maps: dict[str, TableMap],
                    dialect: Dialect) -> dict[str, tuple[str, ...]]:
    """Foreign-key columns that close a cycle (self-references included) among the tables
    loaded into an existing PostgreSQL schema: they are loaded as NULL, then updated."""
    if dialect.fk_checks_off_sql is not None:
        return {}  # MariaDB and SQLite turn the checks off for the session instead
    order = {s.name: i for i, s in enumerate(sources)}
    by_target = {maps[s.name].target.name: s.name for s in sources}
    out: dict[str, tuple[str, ...]] = {}
    for source in sources:
        for fk in maps[source.name].target.foreign_keys:
            ref = by_target.get(fk.ref_table)
            if ref is not None and order[ref] >= order[source.name]:
                out[source.name] = (*out.get(source.name, ()), *fk.columns)
    return out


def structure_present(dialect: Dialect, tables: frozenset[str]) -> dict[str, set[str]]:
    """For tables committed by an earlier run (resume): the names of the indexes and
    constraints they have, and ``""`` for a primary key, so that only the missing ones are built
    (the earlier run may have stopped before or among them)."""
    out: dict[str, set[str]] = {}
    if not tables:
        return out
    with dialect.engine.connect() as conn, quiet_reflection():
        insp = sa.inspect(conn)
        for name in tables:
            schema, own = dialect.where(name)
            have = {ix["name"] for ix in insp.get_indexes(own, schema=schema) if ix["name"]}
            have |= {uc["name"] for uc in insp.get_unique_constraints(own, schema=schema) if uc["name"]}
            have |= {fk["name"] for fk in insp.get_foreign_keys(own, schema=schema) if fk["name"]}
            if insp.get_pk_constraint(own, schema=schema).get("constrained_columns"):
                have.add("")
            out[name] = have
    return out


def describe_plan(plan: RestorePlan, results: dict[str, TableResult]) -> None:
    """The plan in words, per table (``TableResult.plan``), and what it leaves out."""
    settings = plan.settings
    for source in plan.sources:
        r = results[source.name]
        rows = source.entry.rows
        if plan.native is not None:
            r.plan.extend(_native_lines(plan, source))
            continue
        if plan.mode == "recreate":
            verb = "drop and recreate" if source.name in plan.replace else "create"
            if source.name in plan.resumed:
                verb = "already restored (resume: skip)"
            r.plan.append(f"{verb}; load {_rows(rows)}" if not settings.schema_only else verb)
        else:
            tmap = plan.maps[source.name]
            action = "empty, then load" if settings.clean else "append"
            r.plan.append(f"{action} {_rows(rows)} into existing {tmap.target.name!r} "
                          f"(on conflict: {settings.on_conflict})")
            r.plan.append("columns: " + ", ".join(c.describe() for c in tmap.columns))
            if tmap.dropped:
                r.warnings.append("archive columns not in the target, dropped: "
                                  + ", ".join(tmap.dropped))
            if plan.cyclic_columns.get(source.name):
                r.plan.append("cyclic foreign key columns loaded as NULL, then updated: "
                              + ", ".join(plan.cyclic_columns[source.name]))
        for item in source.entry.schema.skipped:
            r.warnings.append(f"not recreated: {item}")


def _native_tasks(plan: RestorePlan) -> dict[str, list[NativeStep | NativeForeignKey]]:
    """The post-data tasks per table, in plan order (found once per plan, not per table)."""
    found = plan.__dict__.get("_native_tasks")
    if found is None:
        found = {}
        for scheduled in plan.tasks:
            if isinstance(scheduled.task, NativeStep | NativeForeignKey):
                found.setdefault(scheduled.task.table, []).append(scheduled.task)
        object.__setattr__(plan, "_native_tasks", found)
    return found  # type: ignore[no-any-return]


def _native_lines(plan: RestorePlan, source: Source) -> list[str]:
    """A table's plan when the native schema recreates it."""
    native = plan.native
    assert native is not None
    if source.name in plan.resumed:
        return ["already restored (resume: skip)"]
    lines = ["create from the archive's native schema (before the rows)"]
    if not plan.settings.schema_only:
        lines.append(f"load {_rows(source.entry.rows)}")
    built = [native.label(i) for task in _native_tasks(plan).get(source.name, ())
             for i in native.groups[task.group]]
    if built:
        lines.append("then: " + ", ".join(built))
    return lines


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"
