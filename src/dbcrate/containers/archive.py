"""Reading archives of every container kind: the manifest, the tables, their data as Arrow
record batches; verify.

An archive is one dump in one *container kind* (docs/CONTAINERS.md): the tar file of
docs/FORMAT.md (``tar``), the same members unpacked into a directory (``directory``), one SQLite
database file (``sqlite``), or a directory of Python data modules (``python``). They all read
through :class:`Archive`; ``Archive(path)`` and :func:`open_archive` detect the kind and return
the matching subclass, so restore, compare, ``ls`` and ``verify`` never look at the kind.

This module is the top of the containers package: :class:`Archive` itself lives in
:mod:`dbcrate.containers.base` (re-exported here, where callers have always found it), the
kinds depend on that, the registry (:mod:`dbcrate.containers.kinds`) on the kinds, and this
module on the registry and the builder.

>>> with dbcrate.open_archive("shop.crate") as a:          # doctest: +SKIP
...     for entry in a.tables:
...         print(entry.name, entry.rows)
...     for batch in a.iter_batches("orders"):
...         ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

from dbcrate.containers.base import Archive as Archive
from dbcrate.containers.base import ArchiveTarget, is_file_object
from dbcrate.containers.kinds import get_kind
from dbcrate.errors import UsageError

if TYPE_CHECKING:  # imported when an archive is written (reading one needs no writer)
    from dbcrate.containers.writers import ArchiveBuilder
    from dbcrate.crypto.keys import Keyring


@overload
def open_archive(path: ArchiveTarget, mode: Literal["r"] = "r", *,
                 kind: str | None = None, accept_edits: bool = False,
                 keys: Keyring | None = None) -> Archive: ...


@overload
def open_archive(path: ArchiveTarget, mode: Literal["w"], *, kind: str | None = None,
                 format: str | None = None, max_row_count: int | None = None,
                 overwrite: bool = False) -> ArchiveBuilder: ...


def open_archive(path: ArchiveTarget, mode: str = "r", *, kind: str | None = None,
                 format: str | None = None, max_row_count: int | None = None,
                 overwrite: bool = False, accept_edits: bool = False,
                 keys: Keyring | None = None) -> Archive | ArchiveBuilder:
    """Open an archive of any container kind.

    ``mode="r"`` (default): read; the kind is detected unless ``kind`` names it (``"-"`` reads
    a tar from standard input). ``mode="w"``: an :class:`~dbcrate.containers.writers.ArchiveBuilder`
    writing a new archive of ``kind`` (default ``"tar"``) with data ``format`` (tar and
    directory kinds), as a context manager that commits on success and leaves nothing
    behind on error::

        with dbcrate.open_archive("out.sqlite", "w", kind="sqlite") as out:
            out.add_table(table_schema, batches)

    ``path`` may also be an open binary file object, for the tar kind only: readable for
    ``"r"`` (read from its position to its end and spooled to a private temp file, so the
    checks are those of a file), writable for ``"w"`` (written sequentially: a pipe will do).
    dbcrate never closes it; after a failed write it holds a tar without a manifest.

    ``keys`` (``"r"``): the identities or passphrase that open a sealed (encrypted) archive
    (:class:`dbcrate.crypto.keys.Keyring`); without it, those of the environment
    (``DBCRATE_IDENTITY``, ``DBCRATE_PASSPHRASE``).

    ``accept_edits=True`` (``"r"``, python and directory kinds): data members edited after the
    dump are re-hashed and accepted instead of refused; ``archive.edited`` lists them
    (docs/CONTAINERS.md, "Edited dumps").

    :raises UsageError: an unknown mode or kind (naming the choices); a file object with a
        kind other than tar; ``accept_edits`` with another kind or mode.
    :raises NotAnArchive: (reading) the path is no archive of any kind.
    """
    if is_file_object(path) and (kind or "tar") != "tar":
        raise UsageError(f"the {kind} kind is not read or written through a file object",
                         hint="give a path for the directory, sqlite and python kinds; a file "
                         "object holds the tar kind")
    if mode == "r":
        if format is not None or max_row_count is not None or overwrite:
            raise UsageError("format, max_row_count and overwrite apply to mode='w'")
        reader = Archive if kind is None else get_kind(kind).reader
        if accept_edits:
            return reader(path, accept_edits=True)
        return reader(path, keys=keys) if keys is not None else reader(path)
    if mode == "w":
        if accept_edits:
            raise UsageError("accept_edits applies to mode='r'")
        from dbcrate.containers.writers import ArchiveBuilder

        return ArchiveBuilder(path, kind=kind or "tar", data_format=format,
                              max_row_count=max_row_count, overwrite=overwrite)
    raise UsageError(f"unknown archive mode {mode!r}", hint="modes: 'r' (read), 'w' (write)")
