"""What each container kind is, as plain data: whether its output is a directory, whether its
chunks are data members, how many rows a chunk holds by default; and the marks that tell the
kinds that are not tar apart (:func:`is_sqlite_file`, :data:`LAUNCHER`).

The registry :data:`dbcrate.containers.kinds.CONTAINER_KINDS` pairs these with the reader and
writer classes, which it imports when a kind is used; this module imports none of them (nor
pyarrow), so that the command line can state the kinds' defaults in ``--help`` and resolve a
dump's output without loading them, and ``dbcrate ls`` of a tar archive loads no other kind.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

#: most rows per chunk of the tar, directory and sqlite kinds (the dump's ``chunk_rows``)
DEFAULT_CHUNK_ROWS = 250_000
#: most rows per module of the python kind (``--max-row-count``): a module stays readable
DEFAULT_PYTHON_ROWS = 50_000


@dataclass(frozen=True)
class KindTraits:
    """What a container kind is, its classes aside.

    :param is_directory: the output is a directory (refused when it exists and is not empty,
        unless overwriting).
    :param member_based: chunks are data members in a data format; storages can be held.
    :param default_max_rows: most rows per chunk when nothing else is said.
    """

    is_directory: bool
    member_based: bool
    default_max_rows: int
    description: str


#: the kinds, in the order of ``dbcrate.options.ContainerKindName``
KIND_TRAITS: dict[str, KindTraits] = {
    "tar": KindTraits(False, True, DEFAULT_CHUNK_ROWS, "one tar file (the default; docs/FORMAT.md)"),
    "directory": KindTraits(True, True, DEFAULT_CHUNK_ROWS,
                            "the tar archive's members unpacked into a directory"),
    "sqlite": KindTraits(False, False, DEFAULT_CHUNK_ROWS,
                         "one SQLite database file, readable with the sqlite3 shell"),
    "python": KindTraits(True, False, DEFAULT_PYTHON_ROWS,
                         "a directory of Python data modules and a restore.py launcher"),
}


#: the first 16 bytes of every SQLite 3 database file (the sqlite kind)
SQLITE_HEADER = b"SQLite format 3\x00"
#: the restore script of a dump of the python kind (with ``manifest.json``, its mark)
LAUNCHER = "restore.py"


def is_sqlite_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file starting with the SQLite 3 header (a pipe or a
    device is never read here: its first bytes would be lost to the reader that follows)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False
