"""The outcome of a restore, table by table: :class:`TableResult` and :class:`RestoreReport`
(what ``restore --json`` prints and what :meth:`RestoreReport.raise_for_failures` judges)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbcrate.errors import RestoreIncomplete, RowsDiffer, StrictWarnings


@dataclass
class TableResult:
    """The outcome for one table: ``restored``, ``failed``, ``skipped``, ``planned`` or
    ``checked`` (``--on-conflict check``). ``error`` says why it failed and what state the
    table is in; ``warnings`` name what was not carried and why; ``not_recreated`` is the same
    for objects of the schema, as data (``kind``, ``name``, ``reason``)."""

    name: str
    status: str = "pending"
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    not_recreated: list[dict[str, str]] = field(default_factory=list)
    #: what the ``--on-conflict`` policy did (:meth:`ConflictCounts.to_dict`), into-existing
    conflicts: dict[str, Any] | None = None

    def skip_object(self, kind: str, name: str, reason: str) -> None:
        """Record a schema object (foreign key, index, default ...) that is not recreated."""
        self.not_recreated.append({"kind": kind, "name": name, "reason": reason})
        self.warnings.append(f"{kind} {name} not recreated: {reason}")


@dataclass
class RestoreReport:
    """What a restore did (or, for a dry run, would do), table by table."""

    target: str
    tables: list[TableResult]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = "recreate"
    #: what restoring the storages did (``None``: the archive has none, or they were skipped)
    storages: dict[str, Any] | None = None

    #: ``--strict``: :meth:`raise_for_failures` raises for any warning too
    strict: bool = False
    #: the plan that was (or, for a dry run, would be) executed, as data
    #: (:meth:`dbcrate.restore.plan.RestorePlan.to_dict`); ``None`` when no table was planned
    plan: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(t.status != "failed" for t in self.tables)

    @property
    def all_warnings(self) -> list[str]:
        """The report's warnings and every table's, each table's prefixed with its name."""
        return [*self.warnings, *(f"{t.name}: {w}" for t in self.tables for w in t.warnings)]

    @property
    def differing(self) -> dict[str, int]:
        """``--on-conflict check``: table -> rows that differ from the target's."""
        return {t.name: t.conflicts["differing"] for t in self.tables
                if t.conflicts and t.conflicts.get("differing")}

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def raise_for_failures(self) -> None:
        """Raise :class:`RestoreIncomplete` if a table failed, :class:`RowsDiffer` if a
        ``check`` found differing rows, and with ``strict``, :class:`StrictWarnings` if
        anything was not carried."""
        if not self.ok:
            raise RestoreIncomplete(self)
        if self.differing:
            raise RowsDiffer(self.differing)
        if self.strict and self.all_warnings:
            raise StrictWarnings(self.all_warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mode": self.mode,
            "ok": self.ok and not self.differing
            and not (self.strict and self.all_warnings),
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "tables": [t.__dict__ for t in self.tables],
            "storages": self.storages,
            "plan": self.plan,
        }
