"""The container kinds: a plain registry, and detecting the kind of an existing archive.

====================  =========================================================================
``tar``               one uncompressed tar file (docs/FORMAT.md); the default
``directory``         the tar's members unpacked into a directory, one file each
``sqlite``            one SQLite database file: a data table per archived table, metadata tables
``python``            a directory of Python data modules (literals only) and a restore launcher
====================  =========================================================================

docs/CONTAINERS.md describes each. Detection (:func:`detect_kind`) looks at the path only:
a file starting with the SQLite header is ``sqlite``; a directory holding
``dbcrate-archive.json`` is ``directory``; a directory holding ``restore.py`` and
``manifest.json`` is ``python``; anything else is read as ``tar`` (whose reader says what is
wrong with it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from dbcrate.containers.base import (
    MANIFEST,
    MARKER,
    Archive,
    ArchiveTarget,
    ContainerWriter,
    is_file_object,
    set_reader_lookup,
)
from dbcrate.containers.traits import DEFAULT_CHUNK_ROWS as DEFAULT_CHUNK_ROWS
from dbcrate.containers.traits import DEFAULT_PYTHON_ROWS as DEFAULT_PYTHON_ROWS
from dbcrate.containers.traits import KIND_TRAITS, LAUNCHER, is_sqlite_file
from dbcrate.errors import NotAnArchive, UsageError
from dbcrate.stores.objects import is_object_url

#: what imports a kind's module(s) and returns its reader and writer classes
ClassLoader = Callable[[], tuple[type[Archive], type[ContainerWriter]]]


@dataclass(frozen=True)
class ContainerKind:
    """One container kind. Its classes are imported when first asked for (``ls`` of a tar
    archive loads no other kind's code).

    :param name: the registry key (``--as NAME``).
    :param classes: imports the kind's module(s) and returns :attr:`reader` and :attr:`writer`.
    :param is_directory: the output is a directory (refused when it exists and is not empty,
        unless overwriting).
    :param member_based: chunks are data members in a data format; storages can be held.
    :param default_max_rows: most rows per chunk when nothing else is said.
    """

    name: str
    classes: ClassLoader = field(repr=False, compare=False)
    is_directory: bool
    member_based: bool
    default_max_rows: int
    description: str

    @property
    def reader(self) -> type[Archive]:
        """The :class:`~dbcrate.containers.base.Archive` subclass that reads it."""
        return self.classes()[0]

    @property
    def writer(self) -> type[ContainerWriter]:
        """The :class:`~dbcrate.containers.base.ContainerWriter` subclass that writes it."""
        return self.classes()[1]


# each imports its kind's modules (plain import statements: tests/test_security.py, SE-07)
def _tar() -> tuple[type[Archive], type[ContainerWriter]]:
    from dbcrate.containers.members import TarArchive
    from dbcrate.containers.tar import ArchiveWriter
    return TarArchive, ArchiveWriter


def _directory() -> tuple[type[Archive], type[ContainerWriter]]:
    from dbcrate.containers.directory import DirectoryArchive, DirectoryWriter
    return DirectoryArchive, DirectoryWriter


def _sqlite() -> tuple[type[Archive], type[ContainerWriter]]:
    from dbcrate.containers.sqlite import SqliteWriter
    from dbcrate.containers.sqlite_reader import SqliteArchive
    return SqliteArchive, SqliteWriter


def _python() -> tuple[type[Archive], type[ContainerWriter]]:
    from dbcrate.containers.python import PythonArchive, PythonWriter
    return PythonArchive, PythonWriter


_CLASSES: dict[str, ClassLoader] = {"tar": _tar, "directory": _directory, "sqlite": _sqlite,
                                    "python": _python}

CONTAINER_KINDS: dict[str, ContainerKind] = {
    name: ContainerKind(name, _CLASSES[name], t.is_directory, t.member_based,
                        t.default_max_rows, t.description)
    for name, t in KIND_TRAITS.items()
}


def get_kind(name: str) -> ContainerKind:
    """The kind called ``name``.

    :raises UsageError: an unknown kind, naming the known ones.
    """
    try:
        return CONTAINER_KINDS[name]
    except KeyError:
        raise UsageError(f"unknown container kind {name!r}",
                         hint=f"kinds: {', '.join(CONTAINER_KINDS)}") from None


def detect_kind(path: ArchiveTarget) -> str:
    """The kind of the archive at ``path`` (see the module docstring); ``"-"`` and a file
    object are tar streams.

    :raises NotAnArchive: a directory that is no dump of either directory kind.
    """
    if is_object_url(path):  # in a store (dbcrate.stores.objects): a prefix is a directory
        return "directory" if str(path).endswith("/") else "tar"
    if is_file_object(path) or str(path) == "-":
        return "tar"  # a stream
    p = Path(cast("str | os.PathLike[str]", path))
    if p.is_dir():
        if (p / MARKER).is_file():
            return "directory"
        if (p / LAUNCHER).is_file() and (p / MANIFEST).is_file():
            return "python"
        raise NotAnArchive(
            f"{p} is a directory but not a dbcrate dump",
            hint=f"a dump directory holds {MARKER} (directory kind) or {LAUNCHER} and "
            f"{MANIFEST} (python kind); a tar archive is a file",
        )
    if is_sqlite_file(p):
        return "sqlite"
    return "tar"


def reader_class(path: ArchiveTarget) -> type[Archive]:
    """The :class:`~dbcrate.containers.base.Archive` subclass that reads ``path`` (a dump
    directory on a bucket prefix: :class:`dbcrate.containers.prefix.PrefixArchive`)."""
    if is_object_url(path) and str(path).endswith("/"):
        from dbcrate.containers.prefix import PrefixArchive

        return PrefixArchive
    return CONTAINER_KINDS[detect_kind(path)].reader


# ``Archive(path)`` detects the kind through this registry (the base class knows no kind)
set_reader_lookup(reader_class)
