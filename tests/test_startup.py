"""Start-up: ``import dbcrate`` and the command line load what a command needs when it needs it
(docs/PERFORMANCE.md, "Start-up").

Structural checks in fresh interpreters (which modules are loaded), never a timing: ``--help``
of the group and of every command loads neither SQLAlchemy nor pyarrow nor the dump, restore or
engine code, nor the plugin entry points; ``ls`` of a tar archive loads no database code; the
library's public names still import as before, and ``dbcrate.dump`` / ``dbcrate.restore`` stay
the functions whatever is imported first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# the Chinook copy the repository carries (a clone anywhere has it)
CHINOOK = Path(__file__).resolve().parents[1] / "examples" / "chinook"

#: never loaded by importing the CLI or by --help
HEAVY = ("sqlalchemy", "pyarrow", "numpy", "dbcrate.dialects", "dbcrate.dump", "dbcrate.restore",
         "dbcrate.containers.kinds", "dbcrate.formats.registry", "importlib.metadata", "psycopg",
         "pymysql")



def _loaded_after(code: str, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Those of ``modules`` that a fresh interpreter has loaded after running ``code``."""
    probe = f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {modules!r} if m in sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", code + probe], capture_output=True, text=True,
                          check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def _help_code(args: list[str]) -> str:
    """Run the command line's own entry (``main``, with its allocator settings) on ``args``,
    its output discarded."""
    return ("import contextlib, io\n"
            "from dbcrate.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        main({args!r})\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, exc.code\n")


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert _loaded_after("import dbcrate.cli") == []


def test_importing_dbcrate_loads_nothing_heavy() -> None:
    assert _loaded_after("import dbcrate\nassert dbcrate.__version__") == []


def _commands() -> list[str]:
    from dbcrate.cli import cli

    return sorted(cli.commands)


@pytest.mark.parametrize("args", [["--help"], ["--version"]]
                         + [[name, "--help"] for name in _commands()])
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    assert _loaded_after(_help_code(args)) == []


def test_every_command_is_checked() -> None:
    assert {"dump", "restore", "plan", "convert", "ls", "verify"} <= set(_commands())


def test_ls_loads_no_database_code(tmp_path: Path) -> None:
    """``ls`` reads the manifest: no engine, no SQLAlchemy, no codec, no pyarrow (the model
    builds its Arrow types on first use), no numpy."""
    archive = tmp_path / "c.crate"
    import dbcrate

    dbcrate.dump(f"sqlite:///{CHINOOK / 'Chinook_Sqlite.sqlite'}", archive, include=["Artist"],
                 jobs=1)
    unneeded = ("sqlalchemy", "dbcrate.dialects", "dbcrate.dump", "dbcrate.restore",
                "importlib.metadata", "psycopg", "pymysql", "dbcrate.formats.parquet",
                "dbcrate.containers.python", "dbcrate.containers.sqlite", "pyarrow", "numpy")
    assert _loaded_after(_help_code(["ls", str(archive)]), unneeded) == []


PUBLIC = """
import dbcrate
from dbcrate import (CONTAINER_KINDS, Archive, ConvertResult, DbcrateError, DumpOptions,
                     DumpResult, Event, RestoreOptions, RestoreReport, __version__, convert, dump,
                     dump_as, iter_convert, iter_dump, iter_dump_as, iter_restore, open_archive,
                     restore)
from dbcrate.containers.archive import open_archive as real_open
from dbcrate.dump.run import dump as real_dump
from dbcrate.restore.run import restore as real_restore
assert dump is real_dump and restore is real_restore and open_archive is real_open
assert dbcrate.dump is real_dump and dbcrate.restore is real_restore
assert callable(dbcrate.dump) and callable(dbcrate.restore)
assert set(dbcrate.__all__) <= set(dir(dbcrate))
for name in dbcrate.__all__:
    assert getattr(dbcrate, name) is not None, name
namespace = {}
exec("from dbcrate import *", namespace)
assert set(dbcrate.__all__) <= set(namespace)
assert "dbcrate.formats" in sys.modules  # the atexit collection of apache/arrow#34314
"""


@pytest.mark.parametrize("first", [
    "",
    "import dbcrate.dump.run, dbcrate.restore.run\n",  # the subpackages before the names
    "import dbcrate\ndbcrate.dump, dbcrate.restore\nimport dbcrate.dump.plan\n",  # after them
    "from dbcrate.cli import main\n",
])
def test_the_public_names_import_as_before(first: str) -> None:
    code = "import sys\n" + first + PUBLIC
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import dbcrate

    with pytest.raises(AttributeError, match="no_such_name"):
        dbcrate.no_such_name
    with pytest.raises(ImportError):
        exec("from dbcrate import no_such_name")


def test_the_builtin_format_names_agree_with_the_registry() -> None:
    """``--format``'s help lists :data:`dbcrate.options.BUILTIN_DATA_FORMATS` without loading
    the registry: they must be its built-in formats, in its order (a fresh process, so that no
    plugin format registered by another test counts)."""
    code = ("from dbcrate.formats.registry import FORMATS, BuiltinFormat\n"
            "from dbcrate.options import BUILTIN_DATA_FORMATS\n"
            "builtin = tuple(n for n, f in FORMATS.items() if isinstance(f, BuiltinFormat))\n"
            "assert builtin == tuple(FORMATS) == BUILTIN_DATA_FORMATS, (builtin, FORMATS)\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_a_builtin_format_is_its_module_s_writer_and_reader() -> None:
    from dbcrate.formats import csv, parquet
    from dbcrate.formats.registry import FORMATS

    assert FORMATS["parquet"].open_writer is parquet.ParquetWriter
    assert FORMATS["parquet"].read is parquet.read_parquet
    assert FORMATS["csv"].read is csv.read_csv
    assert FORMATS["parquet"].reads_by_range and FORMATS["csv"].extension == "csv"


def test_the_kinds_traits_agree_with_the_registry() -> None:
    from dbcrate.containers.kinds import CONTAINER_KINDS
    from dbcrate.containers.traits import KIND_TRAITS
    from dbcrate.options import DumpOptions, choices_of

    assert tuple(KIND_TRAITS) == tuple(CONTAINER_KINDS) == choices_of(DumpOptions, "container")
    for name, kind in CONTAINER_KINDS.items():
        assert kind.reader.kind == name
        assert kind.writer.member_based == kind.member_based == KIND_TRAITS[name].member_based


# --- the -j default (said by --help, which is why it is checked here) -------------------------
def test_jobs_default_to_the_cores_at_most_four() -> None:
    import os

    from dbcrate.options import (
        MAX_DEFAULT_JOBS,
        DumpOptions,
        RestoreOptions,
        default_jobs,
        default_of,
    )

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_jobs() == max(1, min(cores or 1, MAX_DEFAULT_JOBS)) and MAX_DEFAULT_JOBS == 4
    assert default_of(DumpOptions, "jobs") == default_of(RestoreOptions, "jobs") == default_jobs()
    assert DumpOptions().jobs == RestoreOptions().jobs == default_jobs()
    assert DumpOptions(jobs=1).jobs == 1


@pytest.mark.parametrize("command", ["dump", "restore"])
def test_help_says_the_jobs_default(command: str) -> None:
    from click.testing import CliRunner

    from dbcrate.cli import cli
    from dbcrate.options import default_jobs

    shown = " ".join(CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output.split())
    assert f"Default: the number of cores, at most 4 (here: {default_jobs()})." in shown
