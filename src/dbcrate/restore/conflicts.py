"""Loading rows into a table that may hold their keys already: the ``--on-conflict`` policies.

``error``
    rows are appended; a key that exists fails the table (its transaction rolls back).
``skip``
    rows whose primary key exists are left as the target has them.
``update``
    rows whose primary key exists get the archive's values.
``check``
    nothing is written: the archive's rows are compared with the target's (python-icat's
    ``check``), and the keys whose rows differ are listed; the restore fails if any do.

Every policy but ``error`` goes through a session-temporary stage table with the target's
column types, so the comparison is made between values of one type, and counts what it did:
``inserted``, ``skipped``, ``updated`` (the row existed and differed), ``unchanged`` (it existed
and was equal) and, for ``check``, ``missing`` (keys the target lacks), ``identical`` and
``differing``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
from sqlalchemy.engine import Connection

from dbcrate.dialects.base import Dialect
from dbcrate.errors import DatabaseError
from dbcrate.model.schema import Table

Policy = Literal["error", "skip", "update", "check"]
POLICIES: tuple[Policy, ...] = ("error", "skip", "update", "check")
#: the most differing keys a ``check`` lists per table (the count is always exact)
MAX_LISTED_KEYS = 50


@dataclass
class ConflictCounts:
    """What a policy did to one table (summed over its chunks)."""

    policy: Policy
    inserted: int = 0
    skipped: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0
    identical: int = 0
    differing: int = 0
    #: the first :data:`MAX_LISTED_KEYS` primary keys whose rows differ (``check``)
    differing_keys: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The counts that apply to the policy (the JSON report's ``conflicts`` object)."""
        names = {"error": ("inserted",), "skip": ("inserted", "skipped"),
                 "update": ("inserted", "updated", "unchanged"),
                 "check": ("missing", "identical", "differing")}[self.policy]
        out: dict[str, Any] = {n: getattr(self, n) for n in names}
        if self.policy == "check":
            out["differing_keys"] = self.differing_keys
        return out


def load_with_policy(conn: Connection, dialect: Dialect, table: Table,
                     batches: Iterator[pa.RecordBatch], policy: Policy,
                     counts: ConflictCounts) -> int:
    """Load ``batches`` into ``table`` under ``policy`` in the caller's transaction, adding to
    ``counts``; returns the number of archive rows handled."""
    if policy == "error":
        rows = dialect.load(conn, table, batches)
        counts.inserted += rows
        return rows
    stage = create_stage(conn, dialect, table)
    rows = dialect.load(conn, stage, batches, temporary=True)
    existing, differing = _compare(conn, dialect, table, stage.name, counts)
    if policy == "check":
        counts.missing += rows - existing
        counts.identical += existing - differing
        counts.differing += differing
    else:
        conn.exec_driver_sql(dialect.merge_sql(table.name, stage.name, table.column_names,
                                               table.primary_key, policy))
        if dialect.upsert_style == "on_duplicate_key":
            _check_every_key_landed(conn, dialect, table, stage.name, rows)
        counts.inserted += rows - existing
        if policy == "skip":
            counts.skipped += existing
        else:
            counts.updated += differing
            counts.unchanged += existing - differing
    conn.exec_driver_sql(f"DROP TABLE {dialect.quote(stage.name)}")
    return rows


def create_stage(conn: Connection, dialect: Dialect, table: Table) -> Table:
    """A session-temporary, empty table with ``table``'s columns and the target's types."""
    q = dialect.quote
    stage = Table(name=f"_dbcrate_stage_{os.urandom(4).hex()}", columns=table.columns,
                  primary_key=table.primary_key)
    cols = ", ".join(q(c.name) for c in table.columns)
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {q(stage.name)} AS SELECT {cols} FROM "
                         f"{dialect.table_sql(table.name)} WHERE 1 = 0")
    return stage


def probe_policy(conn: Connection, dialect: Dialect, table: Table, policy: Policy) -> None:
    """Run the policy's statements on an empty stage (a dry run's check that the load will
    not fail on them); the caller rolls the transaction back."""
    if policy == "error":
        return
    stage = create_stage(conn, dialect, table)
    _compare(conn, dialect, table, stage.name, ConflictCounts(policy))
    if policy != "check":
        conn.exec_driver_sql(dialect.merge_sql(table.name, stage.name, table.column_names,
                                               table.primary_key, policy))
    conn.exec_driver_sql(f"DROP TABLE {dialect.quote(stage.name)}")


def _compare(conn: Connection, dialect: Dialect, table: Table, stage: str,
             counts: ConflictCounts) -> tuple[int, int]:
    """(rows of the stage whose key the table holds, how many of those differ); the first
    differing keys go into ``counts`` for ``check``."""
    q = dialect.quote
    key = table.primary_key
    join = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in key)
    others = [c for c in table.column_names if c not in key]
    same = " AND ".join(dialect.same_value_sql.format(a=f"s.{q(c)}", b=f"t.{q(c)}")
                        for c in others) or "1 = 1"
    base = f"FROM {q(stage)} s JOIN {dialect.table_sql(table.name)} t ON {join}"
    existing, differing = conn.exec_driver_sql(
        f"SELECT count(*), coalesce(sum(CASE WHEN {same} THEN 0 ELSE 1 END), 0) {base}"
    ).one()
    existing, differing = int(existing), int(differing)
    room = MAX_LISTED_KEYS - len(counts.differing_keys)
    if counts.policy == "check" and differing and room > 0:
        keys = ", ".join(f"s.{q(c)}" for c in key)
        found = conn.exec_driver_sql(
            f"SELECT {keys} {base} WHERE NOT ({same}) ORDER BY {keys} LIMIT {int(room)}"
        ).all()
        counts.differing_keys.extend(dict(zip(key, row)) for row in found)
    return existing, differing


def _check_every_key_landed(conn: Connection, dialect: Dialect, table: Table, stage: str,
                            rows: int) -> None:
    """MariaDB's ``ON DUPLICATE KEY`` matches any unique key: an archive row that clashes on
    another unique key would leave (or change) a row with another primary key. Every archive
    key must now be in the table, or the chunk is refused (the caller's transaction rolls back)."""
    q = dialect.quote
    join = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in table.primary_key)
    found = conn.exec_driver_sql(
        f"SELECT count(*) FROM {q(stage)} s JOIN {dialect.table_sql(table.name)} t ON {join}").scalar()
    if int(found or 0) != rows:
        raise DatabaseError(
            f"{table.name}: {rows - int(found or 0)} archive rows clash with a target row on "
            "another unique key (not the primary key); nothing of this chunk was written",
            hint="remove the clashing rows from the target, or restore with --on-conflict error "
            "to see the first clash")
