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
from dataclasses import dataclass
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
from dbcrate.containers.directory import DirectoryArchive, DirectoryWriter
from dbcrate.containers.members import TarArchive
from dbcrate.containers.python import LAUNCHER, PythonArchive, PythonWriter
from dbcrate.containers.sqlite import SqliteWriter
from dbcrate.containers.sqlite_reader import SqliteArchive, is_sqlite_file
from dbcrate.containers.tar import ArchiveWriter
from dbcrate.errors import NotAnArchive, UsageError

#: most rows per chunk of the tar, directory and sqlite kinds (the dump's ``chunk_rows``)
DEFAULT_CHUNK_ROWS = 250_000
#: most rows per module of the python kind (``--max-row-count``): a module stays readable
DEFAULT_PYTHON_ROWS = 50_000


@dataclass(frozen=True)
class ContainerKind:
    """One container kind.

    :param name: the registry key (``--as NAME``).
    :param reader: the :class:`~dbcrate.containers.base.Archive` subclass that reads it.
    :param writer: the :class:`~dbcrate.containers.base.ContainerWriter` subclass that writes it.
    :param is_directory: the output is a directory (refused when it exists and is not empty,
        unless overwriting).
    :param member_based: chunks are data members in a data format; storages can be held.
    :param default_max_rows: most rows per chunk when nothing else is said.
    """

    name: str
    reader: type[Archive]
    writer: type[ContainerWriter]
    is_directory: bool
    member_based: bool
    default_max_rows: int
    description: str


CONTAINER_KINDS: dict[str, ContainerKind] = {
    "tar": ContainerKind("tar", TarArchive, ArchiveWriter, False, True, DEFAULT_CHUNK_ROWS,
                         "one tar file (the default; docs/FORMAT.md)"),
    "directory": ContainerKind("directory", DirectoryArchive, DirectoryWriter, True, True,
                               DEFAULT_CHUNK_ROWS,
                               "the tar archive's members unpacked into a directory"),
    "sqlite": ContainerKind("sqlite", SqliteArchive, SqliteWriter, False, False,
                            DEFAULT_CHUNK_ROWS,
                            "one SQLite database file, readable with the sqlite3 shell"),
    "python": ContainerKind("python", PythonArchive, PythonWriter, True, False,
                            DEFAULT_PYTHON_ROWS,
                            "a directory of Python data modules and a restore.py launcher"),
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
    if is_file_object(path) or str(path) == "-":
        return "tar"
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
    """The :class:`~dbcrate.containers.base.Archive` subclass that reads ``path``."""
    return CONTAINER_KINDS[detect_kind(path)].reader


# ``Archive(path)`` detects the kind through this registry (the base class knows no kind)
set_reader_lookup(reader_class)
