"""The command line: a thin layer over the library. :mod:`dbcrate.cli.app` holds the command
group and ``main``, the one place mapping errors to messages and exit codes; each command
lives in a module of its concept (``dump_cmd``, ``restore_cmd``, ``convert_cmd``,
``read_cmds``)."""

from dbcrate.cli.app import cli, entry_point, main

__all__ = ["cli", "entry_point", "main"]
