"""The one exception hierarchy of dbcrate, and the exit codes the CLI maps it to.

Every error a user can cause or fix derives from :class:`DbcrateError`. Each carries a message
(what happened and where), an optional ``hint`` (what to do about it) and a distinct
``exit_code``. The CLI prints ``message`` and ``hint`` and exits with ``exit_code``; it never
shows a traceback for these. Anything that is *not* a ``DbcrateError`` is a bug in dbcrate.

The exit codes are part of the public contract (see docs/CLI.md) and never change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: exit code -> short name, the documented table (docs/CLI.md renders it)
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "internal error (a bug in dbcrate; please report it)",
    2: "usage error (bad option or argument)",
    3: "cannot connect to the database (bad URL, unreachable server, authentication)",
    4: "not a dbcrate archive, or the archive cannot be read",
    5: "archive format version not supported (written by a newer dbcrate)",
    6: "archive corrupt (checksum mismatch, truncated or undecodable member)",
    7: "unknown table, or the selection matched no table",
    8: "target conflict (a table to restore already exists; use --clean)",
    9: "a value or name cannot be carried exactly into the target engine",
    10: "restore finished but some tables failed (see the report)",
    11: "the source holds a value dbcrate cannot read exactly",
    12: "cannot write the output (permissions, disk full, ...)",
    13: "database error while dumping or restoring",
    14: "storage files cannot be restored safely (differing files, links or unsafe paths in the "
        "destination)",
    15: "dump finished but some tables failed (--tolerate); the archive is marked incomplete",
    16: "restore finished with warnings, and --strict makes any warning a failure",
    17: "--on-conflict check: rows of the archive differ from the target's",
    18: "the archive is encrypted and cannot be opened (no identity or passphrase given, or "
        "none of them is one it was encrypted for)",
    130: "interrupted",
}


class DbcrateError(Exception):
    """Base class of every error a user can act on.

    :param message: what went wrong and where (table, column, member, path).
    :param hint: what the user can do about it; ``None`` when there is nothing to add.
    """

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DbcrateError):
    """Options that contradict each other or an argument that makes no sense."""

    exit_code = 2


class ConnectionFailed(DbcrateError):
    """The database URL is malformed, names an unknown driver, or the server is unreachable."""

    exit_code = 3


class NotAnArchive(DbcrateError):
    """The input is not a dbcrate archive (or cannot be read as one)."""

    exit_code = 4


class UnsupportedFormatVersion(DbcrateError):
    """The archive was written in a format version this dbcrate does not know."""

    exit_code = 5

    def __init__(self, found: object, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"archive format version {found!r} is not supported (this dbcrate reads up to {supported})",
            hint="upgrade dbcrate to a version that knows this format",
        )


class ArchiveCorrupt(DbcrateError):
    """A member's checksum, size or content does not match the manifest."""

    exit_code = 6

    def __init__(self, message: str, member: str | None = None, hint: str | None = None) -> None:
        self.member = member
        super().__init__(
            message,
            hint=hint or "the archive is damaged; restore from another copy of it",
        )


class UnknownTable(DbcrateError):
    """A table named or selected by the user does not exist."""

    exit_code = 7


class TargetConflict(DbcrateError):
    """The restore target already holds tables the archive would create."""

    exit_code = 8

    def __init__(self, tables: list[str], url: str) -> None:
        self.tables = tables
        shown = ", ".join(tables[:10]) + (" ..." if len(tables) > 10 else "")
        super().__init__(
            f"the target {url} already has {len(tables)} of the tables to restore: {shown}",
            hint="add clean=True to drop and recreate them, or restore into an empty database "
            "(create=True creates a new one)",
        )


@dataclass(frozen=True)
class Incompatibility:
    """One value or name that cannot be carried exactly into the target."""

    table: str
    column: str | None
    problem: str
    row_key: dict[str, Any] | None = None
    count: int = 1

    def describe(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        key = ""
        if self.row_key:
            key = " at row " + ", ".join(f"{k}={v!r}" for k, v in self.row_key.items())
        more = f" (and {self.count - 1} more rows)" if self.count > 1 else ""
        return f"{where}: {self.problem}{key}{more}"


class NotPortable(DbcrateError):
    """Some values or names cannot be restored exactly into the target engine."""

    exit_code = 9

    #: the hint when nothing more specific is given: values (or names) the target cannot hold
    HINT = ("change these values in the source, leave the tables out (exclude=[...]), or "
            "restore into an engine that can hold them")

    def __init__(self, target: str, problems: list[Incompatibility],
                 hint: str | None = None, outcome: str = "nothing was written") -> None:
        self.problems = problems
        lines = "\n".join("  - " + p.describe() for p in problems[:50])
        extra = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"{len(problems)} problem(s) prevent an exact restore into {target}; "
            f"{outcome}:\n{lines}{extra}",
            hint=hint or self.HINT,
        )


class RestoreIncomplete(DbcrateError):
    """The restore ran to the end but some tables failed (they are listed in the report)."""

    exit_code = 10

    def __init__(self, report: Any) -> None:
        self.report = report
        failed = [t.name for t in report.tables if t.status == "failed"]
        partial = [t.name for t in report.tables if t.status == "failed" and t.rows]
        hint = "see the report above: each failed table's notes say what state it is in"
        if partial:
            hint += ("; rows of " + ", ".join(partial) + " stay committed: fix the cause and "
                     "restore again with resume=True to continue")
        super().__init__(
            f"{len(failed)} {'table' if len(failed) == 1 else 'tables'} failed to restore: "
            + ", ".join(failed),
            hint=hint,
        )


class StrictWarnings(DbcrateError):
    """``--strict``: the restore finished, but with warnings (something was not carried)."""

    exit_code = 16

    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings
        shown = "\n".join("  - " + w for w in warnings[:50])
        more = f"\n  ... and {len(warnings) - 50} more" if len(warnings) > 50 else ""
        super().__init__(
            f"the restore finished with {len(warnings)} "
            f"{'warning' if len(warnings) == 1 else 'warnings'} (strict=True):\n{shown}{more}",
            hint="fix what the warnings name, or restore without strict=True to accept them",
        )


class RowsDiffer(DbcrateError):
    """``--on-conflict check``: some archive rows differ from the target's (nothing was written)."""

    exit_code = 17

    def __init__(self, tables: dict[str, int]) -> None:
        self.tables = tables
        listed = ", ".join(f"{name} ({n:,} rows)" for name, n in tables.items())
        super().__init__(
            f"archive rows differ from the target's in {len(tables)} "
            f"{'table' if len(tables) == 1 else 'tables'}: {listed}; nothing was written",
            hint="the report lists the differing keys; on_conflict='update' takes the "
            "archive's values",
        )


class UnfinishedRestore(DbcrateError):
    """The target's journal holds an unfinished restore of this archive."""

    exit_code = 8

    def __init__(self, url: str, entries: int) -> None:
        super().__init__(
            f"an earlier restore of this archive into {url} did not finish "
            f"({entries} {'table or chunk' if entries == 1 else 'tables or chunks'} of it "
            f"{'is' if entries == 1 else 'are'} committed)",
            hint="add resume=True to continue it, or clean=True to start over",
        )


class SourceValueError(DbcrateError):
    """The source holds a value dbcrate cannot represent exactly in the archive."""

    exit_code = 11


class OutputError(DbcrateError):
    """The archive cannot be written (permission, disk full, bad path)."""

    exit_code = 12


class DatabaseError(DbcrateError):
    """The database refused a statement while dumping or restoring."""

    exit_code = 13


class StorageConflict(DbcrateError):
    """Restoring storage files would overwrite differing files, or write through a link or a
    non-directory already in the destination. Nothing has been written when it is raised."""

    exit_code = 14


class CannotDecrypt(DbcrateError):
    """A sealed (encrypted) archive was given no identity or passphrase, or none that opens
    it. Nothing has been read from it but its plaintext parts, nothing written anywhere."""

    exit_code = 18


class DumpIncomplete(DbcrateError):
    """A ``--tolerate`` dump finished, but some tables could not be read (they are recorded as
    failed in the manifest, which says ``complete: false``)."""

    exit_code = 15

    def __init__(self, path: str, failed: list[str]) -> None:
        self.failed = failed
        super().__init__(
            f"the archive {path} is incomplete: {len(failed)} "
            f"{'table' if len(failed) == 1 else 'tables'} failed: " + ", ".join(failed[:20]),
            hint="see the warnings above; restore the rest, leaving those tables out "
            "(exclude=[...])",
        )


@dataclass
class ErrorDetails:
    """What the CLI renders for an error (also the ``--json`` error object)."""

    error: str
    message: str
    hint: str | None
    exit_code: int
    extra: dict[str, Any] = field(default_factory=dict)


def driver_message(exc: BaseException) -> str:
    """The first line of what a database driver said (SQLAlchemy wraps it in ``orig``)."""
    if isinstance(exc, DbcrateError):
        return exc.message
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


#: driver error codes that mean the session is gone (MariaDB/MySQL clients: 2006 "server has
#: gone away", 2013 "lost connection during query", 4031 "disconnected by the server")
_LOST_CODES = {2006, 2013, 4031}


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the database session is gone (killed, server restarted, network)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _LOST_CODES:
        return True
    # PyMySQL, asked to write on a connection it has already closed after a failure
    if isinstance(orig, AttributeError) and "sendall" in str(orig):
        return True
    text = str(orig).lower()
    return "server closed the connection" in text or "terminating connection" in text


def failure_message(exc: BaseException) -> str:
    """:func:`driver_message`, saying plainly when the cause is a lost connection."""
    if connection_lost(exc):
        said = driver_message(exc)
        return ("the connection to the database server was lost (the server rolled back the "
                f"open transaction): {said}")
    return driver_message(exc)


def details_of(exc: DbcrateError) -> ErrorDetails:
    """Render an error as plain data (used by ``--json`` output)."""
    return ErrorDetails(type(exc).__name__, exc.message, exc.hint, exc.exit_code)
