'''The ``python`` kind: a dump as a directory of readable, diffable Python data modules.

Layout::

    DUMP/restore.py                 a launcher: python DUMP/restore.py URL [restore options]
    DUMP/manifest.json              the manifest (data_format "python"), portable schema included
    DUMP/manifest.sha256            its SHA-256
    DUMP/data/t0001/c000000.py      chunk 0 of table 1: at most N rows (--max-row-count)

A data module is comments, then one assignment of a list of row tuples, one row per line::

    # dbcrate data module: table 'orders' (t0001), chunk 0, rows from 1
    # ...
    ROWS = [
        (1, 'Ann', '12.50', '2024-02-29T12:00:00', b'\\x00\\xff', None),
    ]

Values are Python literals chosen so that every logical type round-trips exactly and reads
well: ``None`` for NULL; ``True``/``False``; integers; floats as the shortest literal that reads
back to the same float32/float64 (``-0.0`` keeps its sign) with NaN and infinities as the
strings ``'NaN'``, ``'Infinity'``, ``'-Infinity'``; decimal, string, json, uuid and other as
strings (a decimal keeps its exact text); binary as bytes literals; dates, times and timestamps
as the ISO strings of the text data formats (``'infinity'``/``'-infinity'`` sentinels, years
outside 1..9999 as ``'+YYYYY'``/``'-YYYY'``, ``'24:00:00'``, a ``Z`` suffix in UTC).

**Data modules are read as data, never run.** The reader checks the layout line by line
(only comments before ``ROWS = [``, only comments after the closing ``]``), parses the rows with
:func:`ast.parse` a group of lines at a time (memory bounded by the group) and walks the tree
accepting only literal nodes: constants (``None``, booleans, numbers, strings, bytes), a minus
sign on a number, and a tuple or list per row. Anything else - a call such as
``__import__('os').system(...)``, a name, an attribute, an f-string, a comprehension, a lambda,
an operator - is refused as :class:`~dbcrate.errors.ArchiveCorrupt` naming the file and line.
Nothing is imported, evaluated or compiled. Every module's SHA-256 and size are in the
manifest's chunk records, so ``verify`` detects any change; ``restore.py`` is not read by
dbcrate at all (it only calls dbcrate's restore on its own directory).

The directory is written into a private temp directory beside the final name and renamed into
place at the end; an existing non-empty directory is refused unless ``overwrite`` (and then
only if it is a dbcrate dump).
'''

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from dbcrate.atomic import AtomicDirectory, create_private_file, write_failed
from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    Archive,
    ContainerWriter,
    EditedChunk,
    accept_edit,
    arrow_schema,
    checked_manifest,
    is_file_object,
    row_kind_format,
)
from dbcrate.containers.directory import (
    ConfinedDirectory,
    check_listing,
    edited_size,
    open_confined,
)
from dbcrate.containers.traits import LAUNCHER as LAUNCHER
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, UsageError
from dbcrate.formats.registry import DEFAULT_COMPRESSION_LEVEL
from dbcrate.formats.textvalues import codec_of
from dbcrate.model.chunks import member_name
from dbcrate.model.manifest import MAX_MANIFEST_BYTES, Chunk, Manifest, TableEntry
from dbcrate.model.temporal import (
    format_date,
    format_time,
    format_timestamp,
    parse_date,
    parse_time,
    parse_timestamp,
)

KIND = "python"
#: the launcher is never read; a big one is not ours
MAX_LAUNCHER_BYTES = 64 * 1024
ROWS_LINE = "ROWS = ["
END_LINE = "]"
#: lines parsed per ast.parse call (and rows per decoded record batch)
GROUP_LINES = 4096
FLOAT_WORDS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}

#: the launcher; it holds no data. It drops its own directory from the import path first, so
#: nothing inside the dump can shadow a module dbcrate imports.
LAUNCHER_TEXT = '''#!/usr/bin/env python3
"""Restore this dbcrate dump into a database:

    python restore.py URL [restore options]       e.g. python restore.py sqlite:///copy.db

It runs `dbcrate restore <this directory> URL [options]` (see `python restore.py --help`) and
needs dbcrate installed. The data is in data/ (Python modules of literal values, which dbcrate
reads as data and never runs) and manifest.json; this file holds none of it.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

try:
    from dbcrate.cli import main
except ImportError:
    sys.exit("restoring this dump needs dbcrate: pip install dbcrate")

main(["restore", HERE, *sys.argv[1:]])
'''


def _float_literal(text: str) -> str:
    """Arrow's shortest text of a float (per its own width) as a Python float literal."""
    if text == "nan":
        return "'NaN'"
    if text in ("inf", "-inf"):
        return "'Infinity'" if text == "inf" else "'-Infinity'"
    return text if any(c in text for c in ".en") else text + ".0"


def literals(array: pa.Array, codec: str) -> list[str]:
    """The Python literal of every value of a column (``None`` for NULL).

    ``codec`` is :func:`dbcrate.formats.text.codec_of` of the column's Arrow type.
    """
    if codec == "float":
        texts = array.cast(pa.string()).to_pylist()  # shortest round-trip text, float32 too
        return ["None" if t is None else _float_literal(t) for t in texts]
    if codec == "bool":
        return ["None" if v is None else ("True" if v else "False") for v in array.to_pylist()]
    if codec == "int":
        return ["None" if v is None else str(v) for v in array.to_pylist()]
    if codec in ("text", "binary"):
        return ["None" if v is None else repr(v) for v in array.to_pylist()]
    if codec == "date":
        return ["None" if v is None else repr(format_date(v))
                for v in array.view(pa.int32()).to_pylist()]
    ints = array.view(pa.int64()).to_pylist()
    if codec == "time":
        return ["None" if v is None else repr(format_time(v)) for v in ints]
    utc = codec == "timestamptz"
    return ["None" if v is None else repr(format_timestamp(v, utc)) for v in ints]


def module_header(entry: TableEntry, number: int, index: int, first_row: int) -> str:
    """The comment lines at the top of a data module (names shown with ``repr``: one line
    each, whatever characters they hold)."""
    lines = [
        f"# dbcrate data module: table {entry.name!r} (t{number:04d}), chunk {index}, "
        f"rows from {first_row}",
        "# This file is data, not code: dbcrate reads it with ast.parse, accepts only literal",
        "# values and never imports or runs it. It is described by manifest.json (SHA-256).",
        "# Values: None = NULL; decimal, date, time and timestamp values are ISO strings",
        "# ('infinity'/'-infinity' sentinels); float NaN/Infinity/-Infinity are strings.",
        "# Columns of each row tuple:",
    ]
    lines += [f"#   {c.name!r}: {c.type.describe()}" for c in entry.schema.columns]
    return "\n".join(lines) + "\n"


class PythonWriter(ContainerWriter):
    """Writes the ``python`` kind (see the module docstring)."""

    kind = KIND
    member_based = False

    def __init__(self, path: str | os.PathLike[str], *, data_format: str | None = None,
                 mtime: float | None = None, overwrite: bool = False, format_version: int = 1,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL) -> None:
        self.data_format = row_kind_format(KIND, data_format)
        if str(path) == "-":
            raise UsageError("a Python dump is a directory; it cannot go to standard output",
                             hint="give a directory path, or use the tar kind")
        self._out = AtomicDirectory(path, overwrite)
        self._rows: dict[int, int] = {}

    def begin_table(self, number: int, entry: TableEntry) -> None:
        self._rows[number] = 0

    def _create(self, relative: str, mode: int = 0o600) -> BinaryIO:
        folder, _, base = relative.rpartition("/")
        parent = self._out.make_dirs(folder) if folder else self._out.tmp
        fd = create_private_file(parent / base)
        if mode != 0o600:
            os.fchmod(fd, mode)
        return os.fdopen(fd, "wb", buffering=1024 * 1024)

    def write_chunk(self, number: int, index: int, entry: TableEntry,
                    batches: Iterable[pa.RecordBatch]) -> Chunk:
        try:
            return self._write_chunk(number, index, entry, batches)
        except OSError as exc:  # a full disk: the same clean error as every kind
            raise write_failed(self._out.final, exc) from None

    def _write_chunk(self, number: int, index: int, entry: TableEntry,
                     batches: Iterable[pa.RecordBatch]) -> Chunk:
        member = member_name(number, index, "py")
        codecs = [codec_of(f.type) for f in arrow_schema(entry)]
        one = len(codecs) == 1
        first = self._rows.get(number, 0) + 1
        sha = hashlib.sha256()
        size = 0
        rows = 0
        with self._create(member) as handle:

            def put(text: str) -> None:
                nonlocal size
                data = text.encode("utf-8")
                handle.write(data)
                sha.update(data)
                size += len(data)

            put(module_header(entry, number, index, first))
            put(ROWS_LINE + "\n")
            for batch in batches:
                columns = [literals(batch.column(i), c) for i, c in enumerate(codecs)]
                # one row per line: the reader's layout, and a diff shows changed rows
                put("".join(f"    ({', '.join(values)}{',' if one else ''}),\n"
                            for values in zip(*columns)))
                rows += batch.num_rows
            put(END_LINE + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._rows[number] = first - 1 + rows
        return Chunk(member, rows, size, sha.hexdigest())

    def commit(self, manifest: Manifest) -> None:
        """Write manifest.json, manifest.sha256 and the launcher; rename into place."""
        try:
            self._commit(manifest)
        except OSError as exc:
            raise write_failed(self._out.final, exc) from None

    def _commit(self, manifest: Manifest) -> None:
        self.check_manifest(manifest)
        raw = manifest.to_json()
        for name, data, mode in ((MANIFEST, raw, 0o600),
                                 (MANIFEST_DIGEST,
                                  (hashlib.sha256(raw).hexdigest() + "\n").encode(), 0o600),
                                 (LAUNCHER, LAUNCHER_TEXT.encode(), 0o700)):
            with self._create(name, mode) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        self._out.commit()

    def abort(self) -> None:
        self._out.abort()


# --------------------------------------------------------------------------------------------
# reading: literals only
# --------------------------------------------------------------------------------------------


class _Refused(Exception):
    """A node that is not an accepted literal (turned into ArchiveCorrupt with file and line)."""

    def __init__(self, node: ast.AST, what: str) -> None:
        super().__init__(what)
        self.lineno = getattr(node, "lineno", 0)


_NODE_NAMES = {
    ast.Call: "a function call", ast.Name: "a name", ast.Attribute: "an attribute access",
    ast.Lambda: "a lambda", ast.JoinedStr: "an f-string", ast.BinOp: "an operator",
    ast.Subscript: "a subscript", ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a generator expression", ast.Starred: "a starred expression",
    ast.NamedExpr: "an assignment expression", ast.Await: "an await",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
}


def _describe(node: ast.AST) -> str:
    return _NODE_NAMES.get(type(node), f"a {type(node).__name__} node")


def _offender(tree: ast.AST) -> ast.AST:
    """The first node of ``tree`` that no literal row list holds (the culprit to name when
    the rows do not even make up one list)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.expr_context | ast.USub):
            continue
        if isinstance(node, ast.Constant | ast.UnaryOp):
            try:
                literal_value(node)
                continue
            except _Refused:
                pass
        return node
    return tree


def literal_value(node: ast.AST) -> Any:
    """The value of an accepted scalar literal: a constant that is ``None``, a boolean, an
    integer, a float, a string or bytes, or a minus sign on an integer or float constant.

    :raises _Refused: anything else (a call, a name, an attribute, an f-string, ...).
    """
    if isinstance(node, ast.Constant):
        if node.value is None or type(node.value) in (bool, int, float, str, bytes):
            return node.value
        raise _Refused(node, f"a {type(node.value).__name__} constant is not a value")
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)):
        number = node.operand.value
        if type(number) is int or type(number) is float:
            return -number
    raise _Refused(node, f"{_describe(node)} is not a literal value")


def _convert(value: Any, codec: str, node: ast.AST) -> Any:
    """A literal of a column of ``codec`` to what Arrow builds the column from."""
    if value is None:
        return None
    kind = type(value)
    if codec == "bool" and kind is bool:
        return value
    if codec == "int" and kind is int:
        return value
    if codec == "float":
        if kind is float or kind is int:
            return float(value)
        if kind is str and value in FLOAT_WORDS:
            return FLOAT_WORDS[value]
    if codec == "text" and kind is str:
        return value
    if codec == "binary" and kind is bytes:
        return value
    if kind is str and codec in ("date", "time", "datetime", "timestamptz"):
        try:
            if codec == "date":
                return parse_date(value)
            if codec == "time":
                return parse_time(value)
            return parse_timestamp(value, codec == "timestamptz")
        except ValueError as exc:
            raise _Refused(node, str(exc)) from None
    raise _Refused(node, f"{value!r:.60} is not a {codec} value")


class ModuleReader:
    """Reads the rows of one data module as record batches of ``schema``.

    :param text: the module's text (UTF-8 decoded).
    :param where: how messages name the file (``DUMP/data/t0001/c000000.py``).
    """

    def __init__(self, text: str, schema: pa.Schema, where: str, member: str) -> None:
        self.lines = text.split("\n")
        self.schema = schema
        self.codecs = [codec_of(f.type) for f in schema]
        self.where = where
        self.member = member

    def _error(self, line: int, what: str) -> ArchiveCorrupt:
        return ArchiveCorrupt(
            f"{self.where}: line {line}: {what}; a dbcrate data module holds only literal "
            "values (it is read as data and never run)",
            member=self.member,
            hint="the data module was changed after the dump: fix the edit (literal values "
            "only, one row tuple per line) or restore from an untouched copy",
        )

    def _layout(self) -> tuple[int, int]:
        """(index of the first row line, index of the closing line), 0-based."""
        start = None
        for i, line in enumerate(self.lines):
            stripped = line.strip()
            if line.rstrip() == ROWS_LINE:
                start = i + 1
                break
            if stripped and not stripped.startswith("#"):
                raise self._error(i + 1, f"only comments may come before {ROWS_LINE!r}")
        if start is None:
            raise self._error(len(self.lines), f"no {ROWS_LINE!r} line")
        for end in range(start, len(self.lines)):
            if self.lines[end].rstrip() == END_LINE:
                for j in range(end + 1, len(self.lines)):
                    rest = self.lines[j].strip()
                    if rest and not rest.startswith("#"):
                        raise self._error(j + 1, "only comments may come after the rows")
                return start, end
        raise self._error(len(self.lines), f"the rows are not closed by a {END_LINE!r} line")

    def batches(self) -> Iterator[pa.RecordBatch]:
        start, end = self._layout()
        for first in range(start, end, GROUP_LINES):
            group = self.lines[first:min(first + GROUP_LINES, end)]
            yield self._parse_group(group, first + 1)

    def _parse_group(self, group: list[str], first_line: int) -> pa.RecordBatch:
        # the group is wrapped in brackets: its rows must make up one list expression
        source = "[\n" + "\n".join(group) + "\n]"
        offset = first_line - 2  # source line 2 is file line first_line
        try:
            tree = ast.parse(source, filename=self.where, mode="eval")
        except SyntaxError as exc:
            line = max(first_line, min((exc.lineno or 2) + offset, first_line + len(group) - 1))
            raise self._error(line, f"not Python literal syntax ({exc.msg})") from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise self._error(first_line, f"cannot be parsed ({exc})") from None
        body = tree.body
        if not isinstance(body, ast.List):  # e.g. a line "], code, [" closed the list early
            culprit = _offender(body)
            line = getattr(culprit, "lineno", 2) + offset
            raise self._error(line, f"{_describe(culprit)} where rows belong")
        columns: list[list[Any]] = [[] for _ in self.codecs]
        try:
            for row in body.elts:
                if not isinstance(row, ast.Tuple | ast.List):
                    raise _Refused(row, f"{_describe(row)} where a row tuple belongs")
                if len(row.elts) != len(self.codecs):
                    raise _Refused(row, f"a row of {len(row.elts)} values, the table has "
                                   f"{len(self.codecs)} columns")
                for node, codec, column in zip(row.elts, self.codecs, columns):
                    column.append(_convert(literal_value(node), codec, node))
        except _Refused as refused:
            raise self._error(refused.lineno + offset, str(refused)) from None
        try:
            arrays = [self._array(values, codec, field)
                      for values, codec, field in zip(columns, self.codecs, self.schema)]
        except (ValueError, TypeError, OverflowError, pa.ArrowException) as exc:
            raise self._error(first_line, f"a value does not fit its column: {exc}") from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    @staticmethod
    def _array(values: list[Any], codec: str, field: pa.Field) -> pa.Array:
        if codec in ("date", "time", "datetime", "timestamptz"):
            return pa.array(values, pa.int32() if codec == "date" else pa.int64()).view(field.type)
        return pa.array(values, field.type)


class PythonArchive(Archive):
    """The ``python`` kind, read (see the module docstring): the directory must hold exactly
    ``restore.py``, the manifest, its digest and the data modules the manifest lists."""

    kind = KIND

    def __init__(self, path: str | os.PathLike[str], *, accept_edits: bool = False,
                 keys: object = None) -> None:  # keys: only a tar is sealed
        """Open and check the dump directory ``path``.

        :param accept_edits: a data module whose bytes differ from the manifest (edited by
            hand, Lino-style data migrations) is parsed in full - literals only, as always,
            never run - re-hashed and accepted: :attr:`edited` lists it, and the manifest
            describes it as it is now (its rows, size and SHA-256), so what is restored and
            counted are the edited rows. Else such a module is refused as corrupt.
        """
        if is_file_object(path):
            raise UsageError("a Python dump is read from its directory, not from a file object",
                             hint="give the directory's path")
        self.path = str(path)
        self._accept_edits = accept_edits
        self.edited = []
        self._dir = open_confined(path, self.path, self._open)

    def _open(self, directory: ConfinedDirectory) -> None:
        self._dir = directory
        files, dirs = self._dir.list_files()
        if LAUNCHER not in files or MANIFEST not in files:
            raise NotAnArchive(f"{self.path} is not a Python dbcrate dump "
                               f"(it needs {LAUNCHER} and {MANIFEST})")
        if files[MANIFEST] > MAX_MANIFEST_BYTES:
            raise NotAnArchive(f"{self.path}: manifest.json is larger than the limit")
        if files.get(MANIFEST_DIGEST, 201) > 200:
            raise ArchiveCorrupt(f"{self.path}: manifest digest missing", member=MANIFEST_DIGEST)
        if files[LAUNCHER] > MAX_LAUNCHER_BYTES:
            raise ArchiveCorrupt(f"{self.path}: {LAUNCHER} is not dbcrate's launcher",
                                 member=LAUNCHER)
        self.manifest = checked_manifest(
            self._dir.read_bytes(MANIFEST, files[MANIFEST]),
            self._dir.read_bytes(MANIFEST_DIGEST, files[MANIFEST_DIGEST]), self.path)
        if self.manifest.data_format != KIND:
            raise NotAnArchive(f"{self.path}: the manifest says data format "
                               f"{self.manifest.data_format!r}, not {KIND!r}")
        if getattr(self.manifest, "storage", None):
            raise ArchiveCorrupt(f"{self.path}: a Python dump cannot hold storages")
        self._entries: dict[str, TableEntry] = {}
        expected = {LAUNCHER: files[LAUNCHER], MANIFEST: files[MANIFEST],
                    MANIFEST_DIGEST: files[MANIFEST_DIGEST]}
        for entry in self.manifest.tables:
            for chunk in entry.chunks:
                if not chunk.member.endswith(".py"):
                    raise NotAnArchive(f"{self.path}: chunk {chunk.member} is not a Python module")
                expected[chunk.member] = (edited_size(self.path, chunk, files)
                                          if self._accept_edits else chunk.size)
                self._entries[chunk.member] = entry
        check_listing(self.path, files, dirs, expected)
        if self._accept_edits:
            found = (self._accept(entry, index, chunk, files[chunk.member])
                     for entry in self.manifest.tables for index, chunk in enumerate(entry.chunks))
            self.edited = [e for e in found if e is not None]

    def _accept(self, entry: TableEntry, index: int, chunk: Chunk,
                size: int) -> EditedChunk | None:
        """Chunk ``index`` of ``entry`` re-hashed; if it differs from the manifest, its rows
        parsed (literals only) and counted, and the edit accepted (None: unchanged)."""
        data = self._dir.read_bytes(chunk.member, size)
        sha = hashlib.sha256(data).hexdigest()
        if size == chunk.size and sha == chunk.sha256:
            return None
        where = f"{self.path}/{chunk.member}"
        rows = sum(b.num_rows for b in _module_batches(data, entry, where, chunk.member))
        return accept_edit(entry, index, Chunk(chunk.member, rows, size, sha))

    def _read(self, chunk: Chunk, verify: bool) -> bytes:
        data = self._dir.read_bytes(chunk.member, chunk.size)
        if verify and hashlib.sha256(data).hexdigest() != chunk.sha256:
            raise ArchiveCorrupt(
                f"{self.path}: member {chunk.member} does not match its SHA-256 in the manifest",
                member=chunk.member)
        return data

    def check_chunk(self, chunk: Chunk) -> None:
        self._read(chunk, verify=True)

    def chunk_batches(self, entry: TableEntry, chunk: Chunk, *,
                      verify: bool = True) -> Iterator[pa.RecordBatch]:
        data = self._read(chunk, verify)  # the whole module: at most --max-row-count rows
        where = f"{self.path}/{chunk.member}"
        rows = 0
        for batch in _module_batches(data, entry, where, chunk.member):
            rows += batch.num_rows
            if rows > chunk.rows:
                break
            yield batch
        if rows != chunk.rows:
            raise ArchiveCorrupt(f"{where} (table {entry.name!r}) holds {rows} rows, the "
                                 f"manifest says {chunk.rows}", member=chunk.member)

    def check_chunk_structure(self, entry: TableEntry, chunk: Chunk) -> None:
        for _ in self.chunk_batches(entry, chunk, verify=False):
            pass

    def close(self) -> None:
        self._dir.close()


def _module_batches(data: bytes, entry: TableEntry, where: str,
                    member: str) -> Iterator[pa.RecordBatch]:
    """The rows of a data module's bytes (UTF-8, literals only: :class:`ModuleReader`)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArchiveCorrupt(f"{where} is not UTF-8 text: {exc}", member=member) from None
    del data
    yield from ModuleReader(text, arrow_schema(entry), where, member).batches()
