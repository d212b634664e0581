"""The former home of the whole command line, kept so that ``dbcrate.cli.commands`` imports
(``main``, ``cli``, the consoles ``out`` and ``err``, the commands) keep working.

The command line now lives in one module per concept: :mod:`dbcrate.cli.app` (the group and
the error boundary), :mod:`dbcrate.cli.dump_cmd`, :mod:`dbcrate.cli.restore_cmd` (restore and
plan), :mod:`dbcrate.cli.convert_cmd`, :mod:`dbcrate.cli.copy_cmd`,
:mod:`dbcrate.cli.read_cmds` (ls, verify), :mod:`dbcrate.cli.prune_cmd`,
:mod:`dbcrate.cli.keygen_cmd`,
:mod:`dbcrate.cli.progress`, :mod:`dbcrate.cli.params` (shared option declarations) and
:mod:`dbcrate.cli.console`.
"""

from dbcrate.cli.app import EXAMPLES_MAIN, cli, main
from dbcrate.cli.console import STDOUT, err, out
from dbcrate.cli.convert_cmd import convert
from dbcrate.cli.copy_cmd import copy
from dbcrate.cli.dump_cmd import dump
from dbcrate.cli.keygen_cmd import keygen
from dbcrate.cli.prune_cmd import prune
from dbcrate.cli.read_cmds import ls, verify
from dbcrate.cli.restore_cmd import plan, restore

__all__ = ["EXAMPLES_MAIN", "STDOUT", "cli", "convert", "copy", "dump", "err", "keygen", "ls", "main", "out",
           "plan", "prune", "restore", "verify"]
