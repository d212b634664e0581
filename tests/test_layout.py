"""The measurable layout rules of src/dbcrate (docs/ARCHITECTURE.md, "Rules").

* no import cycle among dbcrate's modules (every import the code names counts, lazy ones and
  ``TYPE_CHECKING`` ones included: a cycle hidden in a function is still a cycle of concepts);
* no module over 600 lines;
* no function over 60 lines, unless the line just above its ``def`` (or above its first
  decorator) is a comment ``# long: <reason>``;
* no branch on an engine's name (``dialect.name == "postgresql"``, ``engine in ("mysql", ...)``)
  outside ``dialects/``: engine differences live in the dialects, behind capabilities.

The engine-name check reads the syntax tree, not lines: any comparison of an expression that
names an engine (an identifier or attribute containing ``name``, ``engine``, ``dialect`` or
``backend``, e.g. ``backend == "sqlite"`` after ``backend = url.get_backend_name()``) with an
engine's name, or a tuple of them, counts.

The team's tool ``shared/tools/layout_check.py`` (beside the clone, at ``../shared``) checks the
same rules plus the architecture page; when it is there, :func:`test_shared_layout_check` runs
it too. The rules are also checked here with a small implementation of their own, so that they
hold where the tool is absent.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "dbcrate"
SHARED_TOOL = ROOT.parent / "shared" / "tools" / "layout_check.py"
MAX_LINES = 600
MAX_FUNCTION_LINES = 60
LONG_MARK = "# long:"
ENGINES = frozenset({"postgresql", "postgres", "mysql", "mariadb", "sqlite"})


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``pkg`` for its __init__)."""
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom,
              known: dict[str, Path]) -> set[str]:
    """The dbcrate modules one import statement names (``from a import b`` names ``a`` and,
    when it is a module, ``a.b``)."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        if node.level:
            base = module.split(".")
            if path.name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = {prefix} | {f"{prefix}.{alias.name}" for alias in node.names}
    return {name for name in names if name in known}


def import_graph() -> dict[str, set[str]]:
    """Module -> the dbcrate modules it imports. A package importing its own submodules (its
    __init__ re-exporting them) is left out: that is not a cycle of concern."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                deps |= _imported(module, path, node, known)
        graph[module] = {d for d in deps if d != module and not d.startswith(module + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _is_engine_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.lower() in ENGINES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_engine_literal(e) for e in node.elts)
    return False


def _names_an_engine(node: ast.expr) -> bool:
    """``x.name``, ``dialect_name``, ``engine``, ``url.get_backend_name()``...: an expression
    that holds an engine's or a dialect's name."""
    if isinstance(node, ast.Call):
        node = node.func
    ident = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    ident = ident.lower()
    return "name" in ident or "engine" in ident or "dialect" in ident or "backend" in ident


def engine_branches() -> list[str]:
    """``file:line`` of every comparison of an engine-name expression with an engine's name
    outside ``dbcrate/dialects/``."""
    found: list[str] = []
    for module, path in modules().items():
        if module == "dbcrate.dialects" or module.startswith("dbcrate.dialects."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            if any(map(_is_engine_literal, operands)) and any(map(_names_an_engine, operands)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def long_modules() -> list[str]:
    out = []
    for path in modules().values():
        with path.open(encoding="utf-8") as f:
            lines = sum(1 for _ in f)
        if lines > MAX_LINES:
            out.append(f"{path.relative_to(ROOT)}: {lines} lines")
    return sorted(out)


def long_functions_in(source: str) -> list[tuple[int, str, int]]:
    """(line, name, lines) of every function of ``source`` over :data:`MAX_FUNCTION_LINES`
    lines without a ``# long:`` comment on the line just above it (above its decorators)."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length <= MAX_FUNCTION_LINES:
            continue
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        above = lines[first - 2].strip() if first >= 2 else ""
        if not (above.startswith(LONG_MARK) and above[len(LONG_MARK):].strip()):
            found.append((node.lineno, node.name, length))
    return found


def long_functions() -> list[str]:
    out = []
    for path in modules().values():
        for line, name, length in long_functions_in(path.read_text(encoding="utf-8")):
            out.append(f"{path.relative_to(ROOT)}:{line} {name}: {length} lines")
    return sorted(out)


# ------------------------------------------------------------------------------------- tests
def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_over_600_lines() -> None:
    found = long_modules()
    assert not found, "modules over 600 lines:\n" + "\n".join(found)


def test_no_long_function_without_a_reason() -> None:
    found = long_functions()
    assert not found, (f"functions over {MAX_FUNCTION_LINES} lines (split them, or say why "
                       f"not in a '{LONG_MARK} <reason>' comment just above the def):\n"
                       + "\n".join(found))


def test_no_engine_name_branch_outside_dialects() -> None:
    found = engine_branches()
    assert not found, ("engine-name branches outside dialects/ (ask the dialect for a "
                       "capability instead):\n" + "\n".join(found))


def test_the_checks_see_what_they_check() -> None:
    """The checks themselves: a cycle, a branch and the package are found where they are."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    branch = ast.parse('if dialect.name == "postgresql" or name in ("mysql", "x"): pass')
    compares = [n for n in ast.walk(branch) if isinstance(n, ast.Compare)]
    assert all(_is_engine_literal(c.comparators[0]) and _names_an_engine(c.left)
               for c in compares) and len(compares) == 2
    not_a_branch = ast.parse('kind == "sqlite"').body[0]
    assert isinstance(not_a_branch, ast.Expr) and isinstance(not_a_branch.value, ast.Compare)
    assert not _names_an_engine(not_a_branch.value.left)
    assert "dbcrate.errors" in modules() and len(modules()) > 20
    body = "".join(f"    x = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert [f[1:] for f in long_functions_in(f"def f():\n{body}")] == [("f", 61)]
    assert not long_functions_in(f"# long: one table's whole story\n@dec\ndef f():\n{body}")
    assert long_functions_in(f"# long:\ndef f():\n{body}")  # a reason is required
    assert not long_functions_in(f"def f():\n{body[:-10]}")


def test_shared_layout_check() -> None:
    """The team's tool, when it is beside the clone (../shared); otherwise the two rules it
    adds to the ones above: at least five subpackages, and the architecture page."""
    if SHARED_TOOL.is_file():
        proc = subprocess.run([sys.executable, str(SHARED_TOOL), str(PACKAGE)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        subpackages = {m.split(".")[1] for m in modules() if m.count(".") >= 2}
        assert len(subpackages) >= 5, sorted(subpackages)
        assert (ROOT / "docs" / "ARCHITECTURE.md").is_file()
