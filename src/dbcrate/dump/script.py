"""The shell script that makes a dump again (``dbcrate dump ... --print-script``): for cron, or
for a reviewer to read.

:func:`make_script` spells every option of a :class:`~dbcrate.options.DumpOptions` that differs
from its default as the ``dbcrate dump`` flag that sets it (docs/CLI.md), every argument quoted
with :func:`shlex.quote`, so that running the script makes the same dump: the same tables,
rows, chunks, storages and container kind. The script first changes into the directory it was
made in, because relative paths (the output, ``--storage``, a SQLite file) mean what they meant
there.

Secrets are never written into a script: the URL is written without its password (and without
query parameters that name a password, secret, token or key, as the manifest keeps it,
:func:`dbcrate.connect.public_url`). The database driver then reads the password the way its
client library does; a comment in the script says how.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any

from dbcrate.connect import parse_url, public_url
from dbcrate.containers.kinds import CONTAINER_KINDS
from dbcrate.errors import UsageError
from dbcrate.options import DumpOptions

#: the ``dbcrate dump`` flag of each option; a list option repeats its flag once per value, a
#: boolean option is a bare flag when true
FLAGS: dict[str, str] = {
    "include": "--table",
    "exclude": "--exclude-table",
    "schemas": "--schema",
    "exclude_schemas": "--exclude-schema",
    "data_format": "--format",
    "compression_level": "--compress-level",
    "chunk_rows": "--chunk-rows",
    "schema_only": "--schema-only",
    "schema_version": "--schema-version",
    "jobs": "--jobs",
    "hooks": "--hooks",
    "storages": "--storage",
    "storage_exclude": "--storage-exclude",
    "ignore_storage_exclude": "--ignore-storage-exclude",
    "storages_basepath": "--storages-basepath",
    "no_data": "--no-data",
    "no_storages": "--no-storages",
    "file_columns": "--file-column",
    "archive_mode": "--chmod",
    "container": "--as",
    "overwrite": "--overwrite",
    "tolerate": "--tolerate",
    "no_native_schema": "--no-native-schema",
    "encryption": "--recipient",  # or --passphrase, whose secret is never written
}

#: options that no flag sets: a script cannot make the same dump when they are not the default
NO_FLAG = ("chunk_bytes", "batch_rows", "durable")

CREDENTIALS_NOTE = """\
# No password is written here (secrets never are): the database driver reads it as its
# client library does.
#   PostgreSQL (psycopg, libpq): the PGPASSWORD environment variable, or the password file
#     PGPASSFILE (default ~/.pgpass, mode 0600) - e.g. a line 127.0.0.1:5432:shop:app:SECRET
#   MariaDB/MySQL (PyMySQL): an option file named in the URL, e.g.
#     mysql+pymysql://app@db/shop?read_default_file=/home/app/.my.cnf ([client] password=...)
#   SQLite: no password.
"""


def _default_chunk_rows(container: str) -> int:
    """The ``--chunk-rows`` the CLI uses for ``container`` when none is given."""
    info = CONTAINER_KINDS[container]
    if info.member_based:
        return int(_default(DumpOptions, "chunk_rows"))
    return info.default_max_rows


def _default(cls: type[Any], name: str) -> Any:
    found = {f.name: f for f in dataclasses.fields(cls)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default


def _hooks_argument(hooks: Any) -> str:
    """``--hooks``'s argument: a module name or a ``.py`` path (a module object has none)."""
    if isinstance(hooks, str | os.PathLike):
        return os.fspath(hooks)  # type: ignore[arg-type]
    raise UsageError("the dump's hooks are a Python object, which no command line can name",
                     hint="give hooks as a module name or a path to a .py file")


def option_arguments(options: DumpOptions) -> list[str]:
    """The ``dbcrate dump`` arguments that set every option of ``options`` that is not the
    default, in :data:`FLAGS` order (unquoted).

    :raises UsageError: a non-default option that no flag sets (:data:`NO_FLAG`), or hooks given
        as a Python object.
    """
    for name in NO_FLAG:
        if getattr(options, name) != _default(DumpOptions, name):
            raise UsageError(f"the dump option {name}={getattr(options, name)!r} has no "
                             "command-line flag, so no script can make this dump",
                             hint=f"leave {name} at its default to get a script")
    args: list[str] = []
    for name, flag in FLAGS.items():
        value = getattr(options, name)
        default = (_default_chunk_rows(options.container) if name == "chunk_rows"
                   else _default(DumpOptions, name))
        if value == default:
            continue
        if isinstance(value, bool):
            args.append(flag)
        elif isinstance(value, list):
            for item in value:
                args += [flag, str(item)]
        elif name == "archive_mode":
            args += [flag, format(value, "o")]
        elif name == "hooks":
            args += [flag, _hooks_argument(value)]
        elif name == "encryption":
            args += [a for r in value.recipients for a in (flag, r)]
            args += ["--passphrase"] if value.passphrase else []
        else:
            args += [flag, str(value)]
    return args


def make_script(url: str, path: str | os.PathLike[str], options: DumpOptions) -> str:
    """A POSIX shell script (``#!/bin/sh``, ``set -eu``) whose one ``dbcrate dump`` command
    makes the same dump of ``url`` into ``path`` with ``options``.

    The URL is written without its password (see the module docstring); a comment says where
    the driver reads the password from. The script changes into the current directory first,
    so relative paths keep their meaning when cron runs it from elsewhere.

    :raises ConnectionFailed: ``url`` is not a database URL.
    :raises UsageError: an option that no flag can set (:func:`option_arguments`).
    """
    shown = public_url(parse_url(url))
    command = ["dbcrate", "dump", shown, os.fspath(path), *option_arguments(options)]
    lines = [
        "#!/bin/sh",
        "# Made by dbcrate (dbcrate dump --print-script): runs the same dump again.",
        CREDENTIALS_NOTE.rstrip("\n"),
        "set -eu",
        f"cd {shlex.quote(os.getcwd())}",
        " \\\n    ".join(shlex.quote(a) for a in command),
    ]
    return "\n".join(lines) + "\n"
