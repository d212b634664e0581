"""The ``dbcrate`` command group and its one error boundary.

:func:`main` is the only place where errors become messages and exit codes: a
:class:`~dbcrate.errors.DbcrateError` prints ``error:``/``hint:`` and exits with its
``exit_code`` (the table :data:`dbcrate.errors.EXIT_CODES`, documented in docs/CLI.md); a usage
error of click exits 2, an interrupt 130, an output that cannot be written 12, and anything
else is a bug (exit 1, a traceback only with ``--traceback``, before or after the command, or
``DBCRATE_TRACEBACK=1``). A user error never shows a traceback. The library's messages name
options by their Python names (``clean=True``); they are printed with the flags
(:mod:`dbcrate.cli.spelling`).

The commands import what they run when they run (``--help`` loads neither SQLAlchemy nor
pyarrow: ``tests/test_startup.py``), so the library's exceptions are caught here by their
common base, :class:`~dbcrate.errors.DbcrateError`, which :mod:`dbcrate.errors` (a light
module) defines.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import click

from dbcrate import __version__
from dbcrate.cli import console
from dbcrate.cli.console import STDOUT, print_error
from dbcrate.cli.convert_cmd import convert
from dbcrate.cli.copy_cmd import copy
from dbcrate.cli.dump_cmd import dump
from dbcrate.cli.keygen_cmd import keygen
from dbcrate.cli.memory import tune_allocators
from dbcrate.cli.output import RESUME_NOTE, release_stdout
from dbcrate.cli.params import traceback_option
from dbcrate.cli.prune_cmd import prune
from dbcrate.cli.read_cmds import ls, verify
from dbcrate.cli.restore_cmd import plan, restore
from dbcrate.cli.spelling import as_flags, learn
from dbcrate.errors import EXIT_CODES, DbcrateError, OutputError

EXAMPLES_MAIN = """
\b
Examples:
  dbcrate dump sqlite:///app.db app.crate
  dbcrate dump postgresql://postgres@127.0.0.1/shop shop.crate -t 'order*' -T audit_log
  dbcrate ls shop.crate
  dbcrate verify shop.crate
  dbcrate restore shop.crate mysql+pymysql://root@127.0.0.1/shop_copy
  dbcrate dump sqlite:///app.db - | dbcrate restore - postgresql://postgres@127.0.0.1/app
  dbcrate copy postgresql://postgres@127.0.0.1/shop sqlite:///shop.db

\b
Exit codes:
""" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


@click.group(help="Dump, list, verify and restore SQL databases through one portable archive.\n"
             + EXAMPLES_MAIN)
@click.version_option(__version__, prog_name="dbcrate")
@traceback_option
def cli() -> None:
    pass


for _command in (dump, restore, plan, copy, convert, ls, verify, prune, keygen):
    cli.add_command(_command)
learn(cli)  # the flags that library messages are translated into (dbcrate.cli.spelling)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to messages and exit codes.

    Standard output is flushed before the exit: when that fails (``> /dev/full``, a reader that
    closed the pipe) the command ends with exit 12 and one message, and nothing more is
    printed at interpreter exit (see :func:`dbcrate.cli.output.release_stdout`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in args or os.environ.get("DBCRATE_TRACEBACK") == "1"
    tune_allocators()  # the CLI owns its process (dbcrate.cli.memory)
    code = _dispatch(args, show_tb)
    failed = release_stdout()
    if failed is not None and code == 0:
        print_error(_write_failed(failed))
        code = OutputError.exit_code
    sys.exit(code)


def entry_point() -> None:
    """The ``dbcrate`` program and ``python -m dbcrate``: :func:`main`, then the process
    ends there (:func:`_end_process`). An embedder calling :func:`main` keeps its process."""
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        _end_process(code)


def _end_process(code: int) -> None:
    """End the process the command ran in (``dbcrate ...``, ``python -m dbcrate``: the
    program's own process, never an embedder's) with ``code`` and without the interpreter's
    finalization.

    Why: by now every archive, connection and temp file is closed, and standard output and
    error are flushed below; what finalization would still do is destroy native thread pools
    (Arrow's) while the interpreter tears down, which now and then aborts a process that has
    finished its work ("terminate called without an active exception", SIGABRT, exit -6:
    apache/arrow#34314; seen here on ``dbcrate verify`` about once a suite run).
    """
    for stream in (sys.stdout, sys.stderr):
        # (standard output that failed was reported by release_stdout)
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _dispatch(args: list[str], show_tb: bool) -> int:
    """Run the command; returns the exit code (a message is printed for every failure)."""
    # (copy says where its spool is itself: the same command would read the source again)
    interrupted = "interrupted" + (RESUME_NOTE if "restore" in args[:3] else "")
    try:
        cli.main(args=args, prog_name="dbcrate", standalone_mode=False)
    except click.exceptions.Abort:
        console.stderr_console().print(interrupted)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except DbcrateError as exc:
        if show_tb:
            traceback.print_exc()
        # the library names options as Python does (clean=True): the user typed flags
        exc.message = as_flags(exc.message) or exc.message
        exc.hint = as_flags(exc.hint)
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        console.stderr_console().print(interrupted)
        return 130
    except BrokenPipeError as exc:  # the reader of standard output went away
        release_stdout()
        print_error(_write_failed(exc))
        return OutputError.exit_code
    except Exception as exc:  # a bug: say so, show the traceback only when asked
        return _unexpected(exc, show_tb)
    return 0


def _unexpected(exc: Exception, show_tb: bool) -> int:
    """An exception no command expected: standard output that failed (exit 12), else a bug."""
    if isinstance(exc, OSError) and (release_stdout() is not None or STDOUT.failed is not None):
        print_error(_write_failed(exc))  # e.g. ls > /dev/full
        return OutputError.exit_code
    if show_tb:
        traceback.print_exc()
    err = console.stderr_console()
    err.print(f"internal error: {type(exc).__name__}: {exc}", markup=False)
    err.print("this is a bug in dbcrate; rerun with --traceback and report it", markup=False)
    return 1


def _write_failed(exc: OSError) -> OutputError:
    """The error of standard output that cannot be written (:func:`dbcrate.atomic.write_failed`)."""
    from dbcrate.atomic import write_failed

    return write_failed("standard output", exc)
