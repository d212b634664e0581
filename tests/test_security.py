"""Security (catalogue SE-07, SE-08, SE-09): secrets, file modes, and no code from archives.

What tests/test_cli.py already covers is not repeated here (the password absent from the
output of dump, dump --dry-run, dump --json, ls, ls --json and restore, and from the archive
bytes; connection failures with a plain password; the final archive 0600 under umask 000).
Added here:

- while a dump runs, no process other than dbcrate itself (whose argv the user typed) has the
  password in its command line, no child has it in its environment, and the server's session
  list does not show it;
- restore --json, plan --json, ls --against --json, DEBUG logs, a URL with special characters
  in the password, every archive member decoded, the error of a dump whose connection dies;
- the temp file while the dump runs and the final archive are 0600 under umask 000 and 022;
  MariaDB load files and their directory, and the standard-input spool, are private; a symlink
  planted at the temp path or at the final name is never followed;
- a static check (ast) that src/ never evaluates, unpickles, unsafely YAML-loads, imports or
  executes anything (with two explicit allow-listed places that load the *user's* code, and
  one that runs the engine's own client tools at dump time: ``PROGRAMS_ALLOWED``), and
  runtime checks that archives holding a YAML python tag, a pickle in Arrow extension metadata
  or a "loader" in the manifest stay inert.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import pickle
import re
import secrets
import sqlite3
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import zstandard

import dbcrate
from archive_tools import data_members, manifest_of, read_members, tar_bytes, with_manifest, with_member
from dbcrate.containers import tar as container
from dbcrate.errors import ArchiveCorrupt, DbcrateError, NotAnArchive, OutputError

from conftest import MY_ADMIN, PG_ADMIN, ROOT, Databases, run_sql

ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)
DBCRATE = [sys.executable, "-m", "dbcrate"]
SRC = ROOT / "src" / "dbcrate"


def secret() -> tuple[str, str]:
    """(a password with URL-special characters, a distinctive core that any rendering of it -
    raw or percent-encoded - contains)."""
    core = "Zq" + secrets.token_hex(8)
    return f"{core}@:/%#?", core


def with_password(url: str, password: str) -> str:
    return sa.engine.make_url(url).set(password=password).render_as_string(hide_password=False)


def leaks(core: str, *texts: str | bytes) -> list[int]:
    """Indexes of the texts that contain the password's core."""
    out = []
    for i, t in enumerate(texts):
        data = t if isinstance(t, bytes) else t.encode("utf-8", "replace")
        if core.encode() in data:
            out.append(i)
    return out


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    d = Databases(tmp_path_factory.mktemp("secdbs"))
    yield d
    d.drop_all()


@pytest.fixture(scope="module")
def pg_source(holder: Databases) -> str:
    """PostgreSQL, 250,000 rows: a dump takes about a second (long enough to watch it)."""
    url = holder.new("postgresql")
    run_sql(url, "CREATE TABLE big (id integer PRIMARY KEY, v text NOT NULL)",
            "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 250000) g",
            "CREATE TABLE small (id integer PRIMARY KEY, big_id integer REFERENCES big(id))",
            "INSERT INTO small VALUES (1, 1), (2, 2)")
    return url


@pytest.fixture(scope="module")
def pg_archive(pg_source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secarch") / "pg.crate"
    dbcrate.dump(pg_source, path, chunk_rows=50_000)
    return path


# ---------------------------------------------------------------- SE-08: process listings
def _proc_ids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for pid in _proc_ids():
        stat_line = _read(f"/proc/{pid}/stat").decode("ascii", "replace")
        if ")" in stat_line:
            fields = stat_line.rsplit(")", 1)[1].split()
            if len(fields) > 1 and fields[1].isdigit():
                parents[pid] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def test_no_password_in_any_process_while_dumping(pg_source: str, tmp_path: Path) -> None:
    """Sampled every ~10 ms while the dump runs: /proc/*/cmdline of every process, the
    environment of dbcrate's children (if any), and pg_stat_activity of the source database."""
    password, core = secret()
    url = with_password(pg_source, password)
    database = sa.engine.make_url(pg_source).database
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    proc = subprocess.Popen([*DBCRATE, "dump", url, str(tmp_path / "pw.crate"), "--chunk-rows",
                             "20000", "--no-progress"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    own_seen = samples = sessions_seen = 0
    found: dict[int, str] = {}
    own_cmdline = b""
    try:
        with admin.connect() as c:
            while proc.poll() is None:
                samples += 1
                children = _descendants(proc.pid)
                own_cmdline = own_cmdline or _read(f"/proc/{proc.pid}/cmdline")
                for pid in _proc_ids():
                    cmdline = _read(f"/proc/{pid}/cmdline")
                    if core.encode() in cmdline:
                        if pid == proc.pid:
                            own_seen += 1
                        elif cmdline == own_cmdline:
                            # a child between fork and exec (pg_dump starting) still shows its
                            # parent's command line: the same text, no new exposure
                            pass
                        else:
                            found[pid] = cmdline.replace(b"\0", b" ").decode("utf-8", "replace")
                for pid in children:
                    if core.encode() in _read(f"/proc/{pid}/environ"):
                        found[pid] = "environment of a child of dbcrate"
                rows = c.execute(sa.text(
                    "SELECT concat_ws(' ', usename, application_name, client_addr::text, "
                    "client_hostname, query) FROM pg_stat_activity WHERE datname = :d"),
                    {"d": database}).scalars().all()
                sessions_seen += len(rows)
                for text in rows:
                    if core in (text or ""):
                        found[-1] = f"pg_stat_activity: {text}"
                time.sleep(0.01)
    finally:
        admin.dispose()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert own_seen > 0 and samples > 3, "the dump was never observed running"
    assert sessions_seen > 0, "the dump's session was never observed"
    assert found == {}, f"the password is visible in other processes: {found}"
    assert leaks(core, out, err, (tmp_path / "pw.crate").read_bytes()) == []


def test_password_absent_from_reports_logs_and_members(pg_source: str, pg_archive: Path,
                                                       holder: Databases, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    password, core = secret()
    target = holder.new("postgresql")
    target_pw = with_password(target, password)
    source_pw = with_password(pg_source, password)
    outputs: dict[str, subprocess.CompletedProcess[bytes]] = {}

    def run(label: str, *args: str) -> None:
        outputs[label] = subprocess.run([*DBCRATE, *args], env=ENV, capture_output=True,
                                        timeout=120)

    run("restore --json", "restore", str(pg_archive), target_pw, "--json", "--no-progress")
    run("restore --json again (conflict, exit 8)", "restore", str(pg_archive), target_pw, "--json")
    run("plan --json (conflict, exit 8)", "plan", str(pg_archive), target_pw, "--json")
    run("plan --clean", "plan", str(pg_archive), target_pw, "--clean")
    run("ls --against", "ls", str(pg_archive), "--against", target_pw)
    run("dump -j 2 --json", "dump", source_pw, str(tmp_path / "j2.crate"), "-j", "2", "--json")
    bad = f"postgresql+psycopg://postgres:{quote(password, safe='')}@127.0.0.1:1/x"
    run("dump, unreachable server", "dump", bad, str(tmp_path / "x.crate"))
    run("restore, unreachable server", "restore", str(pg_archive), bad, "--json")
    run("mariadb, wrong database", "dump", with_password(MY_ADMIN + "dbcrate_no_such_db", password),
        str(tmp_path / "y.crate"))
    codes = {label: r.returncode for label, r in outputs.items()}
    assert codes == {"restore --json": 0, "restore --json again (conflict, exit 8)": 8,
                     "plan --json (conflict, exit 8)": 8, "plan --clean": 0, "ls --against": 0,
                     "dump -j 2 --json": 0, "dump, unreachable server": 3,
                     "restore, unreachable server": 3, "mariadb, wrong database": 3}, {
        k: r.stderr.decode()[-300:] for k, r in outputs.items()}
    leaked = [label for label, r in outputs.items() if leaks(core, r.stdout, r.stderr)]
    assert leaked == [], f"the password appears in the output of {leaked}"

    # the library at DEBUG (dbcrate's and SQLAlchemy's loggers), success and failure
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "dbcrate"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        dbcrate.dump(source_pw, tmp_path / "lib.crate", chunk_rows=100_000)
        report = dbcrate.restore(tmp_path / "lib.crate", with_password(holder.new("postgresql"),
                                                                       password))
        assert report.ok
        with pytest.raises(DbcrateError) as info:
            dbcrate.dump(bad, tmp_path / "z.crate")
    finally:
        for name in ("sqlalchemy.engine", "sqlalchemy.pool", "dbcrate"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert leaks(core, caplog.text, str(info.value), info.value.hint or "",
                 json.dumps(report.to_dict(), default=str)) == []

    # every member of the archives, decoded (not only the raw bytes), and the report objects
    for path in (tmp_path / "j2.crate", tmp_path / "lib.crate"):
        raw = path.read_bytes()
        assert leaks(core, raw) == []
        with dbcrate.open_archive(path) as a:
            assert leaks(core, a.manifest.to_json()) == []
            for entry in a.tables:
                table = a.read_table(entry.name)
                assert leaks(core, str(table.schema.metadata), str(table.to_pylist())) == []
        with tarfile.open(path) as tar:
            for info_ in tar.getmembers():
                assert leaks(core, info_.name, str(info_.pax_headers)) == []
                if info_.name.endswith(".parquet"):
                    handle = tar.extractfile(info_)
                    assert handle is not None
                    meta = pq.ParquetFile(io.BytesIO(handle.read())).metadata
                    assert leaks(core, str(meta.metadata), str(meta.to_dict())) == []


def test_ls_against_json_does_not_print_the_password(pg_archive: Path, holder: Databases) -> None:
    password, core = secret()
    target_pw = with_password(holder.new("postgresql"), password)
    res = subprocess.run([*DBCRATE, "ls", str(pg_archive), "--against", target_pw, "--json"],
                         env=ENV, capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    assert json.loads(res.stdout)["tables"]
    assert leaks(core, res.stdout, res.stderr) == []


def test_password_absent_when_the_connection_dies_mid_dump(pg_source: str, tmp_path: Path) -> None:
    """The error of a dump whose server session is terminated (whatever its exit code: see
    test_faults.py::test_connection_killed_mid_dump) does not show the password."""
    password, core = secret()
    url = with_password(pg_source, password)
    database = sa.engine.make_url(pg_source).database
    proc = subprocess.Popen([*DBCRATE, "dump", url, str(tmp_path / "d.crate"), "--chunk-rows",
                             "20000", "--no-progress"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    killed = False
    try:
        with admin.connect() as c:
            while proc.poll() is None and not killed:
                killed = bool(c.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d "
                    "AND query LIKE 'COPY%' AND pid <> pg_backend_pid()"), {"d": database}).first())
                time.sleep(0.01)
    finally:
        admin.dispose()
    out, err = proc.communicate(timeout=60)
    assert killed and proc.returncode != 0
    assert leaks(core, out, err) == []
    assert not (tmp_path / "d.crate").exists()


# ---------------------------------------------------------------------- SE-09: file modes
def _umask(value: int) -> Any:
    return lambda: os.umask(value)


def _watch_modes(directory: Path, proc: subprocess.Popen[bytes]) -> dict[str, int]:
    """Every file and directory seen under ``directory`` while ``proc`` runs -> its mode."""
    seen: dict[str, int] = {}
    while proc.poll() is None:
        for root, dirs, files in os.walk(directory):
            for name in dirs + files:
                p = os.path.join(root, name)
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                seen[os.path.relpath(p, directory)] = st.st_mode
        time.sleep(0.005)
    return seen


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask000", "umask022"])
def test_archive_and_temp_file_are_0600(umask: int, pg_source: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([*DBCRATE, "dump", pg_source, str(out / "a.crate"), "--chunk-rows",
                             "20000", "--no-progress"], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=_umask(umask))
    seen = _watch_modes(out, proc)
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    temps = {n: m for n, m in seen.items() if n.startswith(".a.crate.dbcrate-tmp-")}
    assert temps, f"the temp file was never seen: {seen}"
    assert {n: stat.S_IMODE(m) for n, m in temps.items()} == {n: 0o600 for n in temps}
    assert all(stat.S_ISREG(m) for m in temps.values())
    assert stat.S_IMODE((out / "a.crate").stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["a.crate"]


@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask000", "umask022"])
def test_private_temporary_files_while_restoring(umask: int, pg_archive: Path, holder: Databases,
                                                 tmp_path: Path) -> None:
    """MariaDB loads go through LOAD DATA LOCAL files in a temp directory; a restore from
    standard input spools the archive to a temp file: all private (dirs 0700, files 0600)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(mode=0o777)
    tmpdir.chmod(0o777)
    env = {**ENV, "TMPDIR": str(tmpdir)}
    target = holder.new("mysql")
    proc = subprocess.Popen([*DBCRATE, "restore", str(pg_archive), target, "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_umask(umask))
    seen = _watch_modes(tmpdir, proc)
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    with open(pg_archive, "rb") as stdin:
        proc = subprocess.Popen([*DBCRATE, "restore", "-", f"sqlite:///{tmp_path / 'c.db'}",
                                 "--no-progress"], env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=_umask(umask))
        seen_stdin = _watch_modes(tmpdir, proc)
        assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    assert any(n.startswith("dbcrate-load-") for n in seen), f"no load directory seen: {seen}"
    assert any(n.startswith("dbcrate-stdin-") for n in seen_stdin), seen_stdin
    wrong = {n: oct(stat.S_IMODE(m)) for n, m in {**seen, **seen_stdin}.items()
             if stat.S_IMODE(m) != (0o700 if stat.S_ISDIR(m) else 0o600)}
    assert wrong == {}, f"not private: {wrong}"
    assert list(tmpdir.iterdir()) == [], "temporary files left behind"


def test_symlink_planted_at_the_temp_path_is_not_followed(pg_archive: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """In a shared directory an attacker who guesses the temp name plants a symlink there:
    O_EXCL|O_NOFOLLOW refuses it; the victim is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    src = tmp_path / "s.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    monkeypatch.setattr(container.secrets, "token_hex", lambda n: "a" * (2 * n))
    (tmp_path / ".out.crate.dbcrate-tmp-aaaaaaaaaaaa").symlink_to(victim)
    with pytest.raises(OutputError, match="cannot create"):
        dbcrate.dump(f"sqlite:///{src}", tmp_path / "out.crate")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out.crate").exists()


def test_symlink_at_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o644)
    src = tmp_path / "s.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    final = tmp_path / "out.crate"
    final.symlink_to(victim)
    dbcrate.dump(f"sqlite:///{src}", final)
    assert victim.read_text() == "precious"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not final.is_symlink() and stat.S_IMODE(final.stat().st_mode) == 0o600
    with dbcrate.open_archive(final) as a:
        a.verify()


# ---------------------------------------------------------- SE-07: static check of src/
#: calls of these builtins run or build code
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint", "input"}
#: modules that turn bytes into objects or code, or run programs
FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle",
                     "jsonpickle", "joblib", "subprocess", "pty", "code", "codeop", "runpy"}
FORBIDDEN_OS = re.compile(r"^os\.(system|popen|exec\w*|spawn\w*|posix_spawn\w*|fork\w*)$")
#: the yaml API a safe reader may touch (loading only through the safe loaders)
#: (composing - building the node graph and resolving tags, without constructing objects
#: from tags - is safe too)
ALLOWED_YAML = {"safe_load", "safe_load_all", "SafeLoader", "CSafeLoader", "safe_dump",
                "safe_dump_all", "dump", "dump_all", "SafeDumper", "CSafeDumper", "YAMLError",
                "MarkedYAMLError", "compose", "compose_all", "Node", "ScalarNode", "SequenceNode",
                "MappingNode", "nodes", "resolver"}
IMPORT_MACHINERY = {"exec_module", "load_module", "import_module", "spec_from_file_location",
                    "module_from_spec", "entry_points", "find_spec", "__import__"}
#: The only places allowed to import code. Both load code the *user* names (never anything read
#: from an archive): the ``--hooks FILE.py|MODULE`` option / ``hooks=`` argument, and the data
#: format plugins installed in the environment (the ``dbcrate.formats`` entry point group; an
#: archive can only pick among the names already registered, see Archive.__init__).
IMPORT_ALLOWED = {("hooks.py", "load_hooks"), ("registry.py", "load_entry_points")}
IMPORT_ALLOWED_MODULES = {("hooks.py", "importlib.util"), ("registry.py", "importlib.metadata")}
#: The only module allowed to run programs: the dump's capture of PostgreSQL's native schema
#: runs the engine's own client tools (pg_dump, pg_restore, their --version) on the *source*
#: database, with arguments built from the dump's options, never from an archive; a restore
#: runs no program at all.
PROGRAMS_ALLOWED = {"native_pg.py"}
PYTHON_YAML_TAG = re.compile(r"(tag:yaml\.org,2002:python|!!python|python/(object|name|module))")


class _Checker(ast.NodeVisitor):
    def __init__(self, filename: str) -> None:
        self.file = filename
        self.aliases: dict[str, str] = {}
        self.functions: list[str] = []
        self.problems: list[str] = []

    def _flag(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"{self.file}:{getattr(node, 'lineno', 0)}: {what}")

    def _allowed_import(self) -> bool:
        return any((self.file, f) in IMPORT_ALLOWED for f in self.functions)

    def _dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])

    def _runs_programs(self, top: str) -> bool:
        return top == "subprocess" and self.file in PROGRAMS_ALLOWED

    def _module(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top in FORBIDDEN_MODULES and not self._runs_programs(top):
            self._flag(node, f"imports {name}")
        if top == "importlib" and (self.file, name) not in IMPORT_ALLOWED_MODULES:
            self._flag(node, f"imports {name} outside the allow-list")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            self.aliases[(alias.asname or alias.name).split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0])
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0:
            self._module(node, module)
        for alias in node.names:
            full = f"{module}.{alias.name}"
            self.aliases[alias.asname or alias.name] = full
            if module == "yaml" and alias.name not in ALLOWED_YAML:
                self._flag(node, f"imports yaml.{alias.name}")
            if module == "os" and FORBIDDEN_OS.match(full):
                self._flag(node, f"imports {full}")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted is not None:
            head, _, rest = dotted.partition(".")
            if head == "yaml" and rest and rest.split(".")[0] not in ALLOWED_YAML:
                self._flag(node, f"uses {dotted}")
            if head in FORBIDDEN_MODULES and not self._runs_programs(head):
                self._flag(node, f"uses {dotted}")
            if FORBIDDEN_OS.match(dotted):
                self._flag(node, f"uses {dotted}")
            if head == "importlib" and not self._allowed_import():
                self._flag(node, f"uses {dotted} outside the allow-list")
        if node.attr in IMPORT_MACHINERY and not self._allowed_import():
            self._flag(node, f"uses .{node.attr} outside the allow-list")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            name = self.aliases.get(node.func.id, node.func.id)
            if node.func.id in FORBIDDEN_BUILTINS and node.func.id not in self.aliases:
                self._flag(node, f"calls {node.func.id}()")
            top = name.split(".")[0]
            if (top in FORBIDDEN_MODULES and not self._runs_programs(top)) \
                    or FORBIDDEN_OS.match(name):
                self._flag(node, f"calls {name}()")
            if name.startswith("importlib") and not self._allowed_import():
                self._flag(node, f"calls {name}() outside the allow-list")
        if isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr") and len(
                node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in (
                "builtins", "__builtins__"):
            self._flag(node, "reaches builtins dynamically")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and PYTHON_YAML_TAG.search(node.value):
            self._flag(node, f"mentions a python YAML tag: {node.value!r}")


def check_source(text: str, filename: str) -> list[str]:
    checker = _Checker(filename)
    checker.visit(ast.parse(text, filename))
    return checker.problems


def test_static_check_no_code_from_archives() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    problems = []
    for path in files:
        problems += check_source(path.read_text(), path.name)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("snippet", [
    "eval(data)",
    "exec(data)",
    "x = compile(data, 'f', 'exec')",
    "__import__(name)",
    "import pickle\npickle.loads(data)",
    "from pickle import loads\nloads(data)",
    "import pickle as p\np.load(f)",
    "import marshal\nmarshal.loads(data)",
    "import yaml\nyaml.load(data, Loader=yaml.Loader)",
    "import yaml\nyaml.unsafe_load(data)",
    "import yaml\nyaml.full_load(data)",
    "from yaml import load\nload(data)",
    "import yaml\nclass L(yaml.UnsafeLoader): pass",
    "T = 'tag:yaml.org,2002:python/object/apply'",
    "import importlib\nimportlib.import_module(manifest['loader'])",
    "def f():\n    import importlib.util\n    importlib.util.spec_from_file_location('m', p)",
    "import os\nos.system(cmd)",
    "from os import popen\npopen(cmd)",
    "import subprocess\nsubprocess.run(cmd)",
    "def load_hooks():\n    pass\ndef other(spec):\n    spec.loader.exec_module(m)",
])
def test_static_check_catches(snippet: str) -> None:
    """The checker itself: each of these is flagged (a check that flags nothing proves nothing)."""
    assert check_source(snippet, "archive.py"), snippet


def test_static_check_allows_only_the_two_user_code_loaders() -> None:
    hooks = "import importlib.util\ndef load_hooks(p):\n    s = importlib.util.spec_from_file_location('m', p)\n" \
            "    s.loader.exec_module(m)\n    importlib.import_module(p)\n"
    assert check_source(hooks, "hooks.py") == []
    assert check_source(hooks, "restore.py") != []
    formats = "import importlib.metadata\ndef load_entry_points():\n" \
              "    return importlib.metadata.entry_points(group='g')\n"
    assert check_source(formats, "registry.py") == []
    assert check_source(formats.replace("load_entry_points", "get_format"), "registry.py") != []
    safe = "import yaml\nyaml.safe_load(s)\nyaml.safe_load_all(s)\nclass L(yaml.CSafeLoader): pass\n"
    assert check_source(safe, "textformats.py") == []


# ------------------------------------------------------ SE-07: archives that carry "code"
@pytest.fixture
def tiny(tmp_path: Path) -> str:
    src = tmp_path / "tiny.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b"), (3, None)])
    con.commit()
    con.close()
    return f"sqlite:///{src}"


def _outcome(path: Path, target: Path) -> str:
    """open + verify + restore; 'ok' or the DbcrateError class. Anything else propagates."""
    try:
        with dbcrate.open_archive(path) as a:
            a.verify()
        report = dbcrate.restore(path, f"sqlite:///{target}")
    except DbcrateError as exc:
        return type(exc).__name__
    return "ok" if report.ok else "report: " + "; ".join(t.error or "" for t in report.tables)


def test_yaml_member_with_a_python_tag_is_inert(tiny: str, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    dbcrate.dump(tiny, tmp_path / "y.crate", data_format="yaml")
    members = read_members(tmp_path / "y.crate")
    (name,) = data_members(members)
    for payload in (
        f"--- !!python/object/apply:os.system [\"touch {pwned}\"]\n",
        "---\ncolumns: [id, v]\nrows:\n- [1, !!python/object/apply:os.system "
        f"[\"touch {pwned}\"]]\n",
        "---\ncolumns: [id, v]\nrows:\n- [1, !!python/name:os.system ]\n",
    ):
        crafted = tmp_path / "evil.crate"
        crafted.write_bytes(tar_bytes(with_member(members, name,
                                                  zstandard.ZstdCompressor().compress(payload.encode()))))
        target = tmp_path / "t.db"
        assert _outcome(crafted, target) == ArchiveCorrupt.__name__
        assert not pwned.exists()
        assert not target.exists() or sqlite3.connect(target).execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone() == (0,)


class _Evil:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def test_pickle_in_arrow_extension_metadata_is_never_loaded(tiny: str, tmp_path: Path) -> None:
    """CVE-2023-47248 shape: a Parquet member whose Arrow schema declares the pickle-based
    'arrow.py_extension_type' with a __reduce__ payload. It must stay data (or be refused)."""
    pwned = tmp_path / "pwned"
    dbcrate.dump(tiny, tmp_path / "p.crate")
    members = read_members(tmp_path / "p.crate")
    (name,) = data_members(members)
    table = pq.read_table(io.BytesIO(next(m.data for m in members if m.name == name)))
    payload = pickle.dumps(_Evil(pwned))
    fields = [f.with_metadata({b"ARROW:extension:name": b"arrow.py_extension_type",
                               b"ARROW:extension:metadata": payload}) if f.name == "v" else f
              for f in table.schema]
    evil = table.cast(pa.schema(fields))
    buf = io.BytesIO()
    pq.write_table(evil, buf, compression="zstd")
    crafted = tmp_path / "evil.crate"
    crafted.write_bytes(tar_bytes(with_member(members, name, buf.getvalue())))
    result = _outcome(crafted, tmp_path / "t.db")
    assert result in ("ok", "ArchiveCorrupt"), result
    assert not pwned.exists()


def test_manifest_loader_and_format_names_are_not_code(tiny: str, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    dbcrate.dump(tiny, tmp_path / "m.crate")
    members = read_members(tmp_path / "m.crate")
    doc = manifest_of(members)
    doc["loader"] = "os.system"
    doc["restore_hook"] = f"__import__('os').system('touch {pwned}')"
    crafted = tmp_path / "loader.crate"
    crafted.write_bytes(tar_bytes(with_manifest(members, doc)))
    assert _outcome(crafted, tmp_path / "a.db") == "ok"  # unknown keys are inert
    for fmt in ("os.system", "pickle", f"__import__('os').system('touch {pwned}')"):
        doc = manifest_of(members)
        doc["data_format"] = fmt
        crafted.write_bytes(tar_bytes(with_manifest(members, doc)))
        assert _outcome(crafted, tmp_path / "b.db") == NotAnArchive.__name__
    assert not pwned.exists()


# ------------------------------------------- BI-06: decompression bombs (bounded memory)
BOMB_BYTES = 300_000_000
BOMBS = {
    "jsonl": lambda n: b'{"id": 1, "v": "' + b"a" * n + b'"}\n',
    "csv": lambda n: b'"id","v"\n1,"' + b"a" * n + b'"\n',
    "yaml": lambda n: b"---\ncolumns: [id, v]\nrows:\n- [1, " + b"a" * n + b"]\n",
    "xml": lambda n: b'<?xml version="1.0" encoding="UTF-8"?>\n<rows xmlns:xsi="http://www.w3.org/'
                     b'2001/XMLSchema-instance">\n<row><id>1</id><v>' + b"a" * n + b"</v></row>\n</rows>\n",
}
PEAK_RSS = ("import resource, subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-m', 'dbcrate', *sys.argv[1:]], capture_output=True, "
            "text=True)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.stderr.write(r.stderr)\n")


def peak_rss(*args: str) -> tuple[int, int, str]:
    """(exit code, peak RSS in KB, stderr) of one ``dbcrate`` run (in a fresh parent process,
    so that ru_maxrss is that run's)."""
    res = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], env=ENV, capture_output=True,
                         text=True, timeout=300)
    rc, kb = res.stdout.split()
    return int(rc), int(kb), res.stderr


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_decompression_bomb_is_refused_with_bounded_memory(fmt: str, tiny: str, tmp_path: Path) -> None:
    good = tmp_path / "good.crate"
    dbcrate.dump(tiny, good, data_format=fmt)
    rc, baseline, err = peak_rss("verify", str(good))
    assert rc == 0, err
    members = read_members(good)
    (name,) = data_members(members)
    bomb = zstandard.ZstdCompressor(level=19).compress(BOMBS[fmt](BOMB_BYTES))
    assert len(bomb) < 64_000
    crafted = tmp_path / "bomb.crate"
    crafted.write_bytes(tar_bytes(with_member(members, name, bomb)))
    started = time.monotonic()
    rc, peak, err = peak_rss("verify", str(crafted))
    assert rc == ArchiveCorrupt.exit_code, err
    assert "Traceback" not in err
    # refused by the decompression budget (1 MiB + 1000 x the member's size), naming the member
    assert name in err and "decompression bomb" in err, err
    assert time.monotonic() - started < 30
    assert peak - baseline < 200_000, f"peak RSS {peak // 1024} MB, {baseline // 1024} MB for the good archive"
