"""SQLite's native schema: every ``sqlite_master`` object as it was written.

SQLite keeps the text of each ``CREATE`` statement exactly as the application wrote it
(``WITHOUT ROWID``, ``STRICT``, generated columns, ``COLLATE NOCASE``, ``CHECK``, partial and
expression indexes, views, triggers): that text *is* the schema, so the capture reads it and
nothing is re-rendered. Tables, then views, are pre-data (each in creation order: a view may
read a view made before it, a table never reads a view); indexes and triggers post-data, built
once a table's rows are in (no trigger fires on a restored row, indexes are built once, as
pg_restore does). A virtual table of a module built into SQLite (FTS3/4/5, R*Tree, Geopoly) is
a ``VIRTUAL TABLE`` object, created by its module with its shadow tables, which are neither
captured nor dumped: the virtual table's rows (an FTS table's with its rowid) are loaded
through it, and the module rebuilds its index. ``user_version``, ``application_id`` and the
AUTOINCREMENT counters (``sqlite_sequence``) are settings that dbcrate writes back itself from
checked integers, never as archive text (:func:`restore_settings_sql`); so are the planner's
statistics (``sqlite_stat1``), from checked texts.

Why the counters are settings and not ``data``-section objects: ``sqlite_sequence`` has no
unique key, so ``INSERT OR REPLACE INTO sqlite_sequence`` adds a second row beside the one the
restored rows created, and SQLite then goes on from the first row, not from the archive's
value. The counter needs a ``DELETE`` then an ``INSERT``: two statements, which dbcrate builds
from a checked integer and a quoted name rather than accept from an archive.

The guard (:func:`check_object`) accepts an object only if its SQL is exactly one complete
statement, whose leading words create an object of the claimed kind with the claimed name (and,
for an index or a trigger, on the claimed table), and which calls none of the functions that
reach outside the database (``load_extension``, ``readfile``, ``writefile``, ``edit``,
``fts3_tokenizer``), however their name is quoted.

"Exactly one statement" is decided in one linear pass by the state machine of SQLite's own
``sqlite3_complete()`` (``complete.c``), which is what ``sqlite3.complete_statement`` runs: the
text is cut into SQLite's tokens (``'...'``, ``"..."``, `````...`````, ``[...]``, ``--`` and
``/* */`` comments, words) and the machine follows ``CREATE [TEMP] TRIGGER ... BEGIN ... ;
END ;`` so that the ``;`` inside a trigger's body do not end it. The first ``;`` that brings
the machine back to its start state ends the statement; after it only blanks and comments may
follow. Calling ``complete_statement`` on every prefix that ends in ``;`` would give the same
answer in quadratic time (a hostile archive of many ``;`` would stall the guard); the machine is
checked against that reference by tests, and ``complete_statement`` of the first statement is
asked once more as a cross-check. At run time Python's ``sqlite3`` refuses a second statement
again (``You can only execute one statement at a time``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Collection, Sequence
from typing import ClassVar, NamedTuple, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.dialects.native import NativeSupport, TableRef, UnsafeNativeSql
from dbcrate.model.native import NativeObject, NativeSchema, Section

#: dbcrate's own table, never part of a captured schema (restore/journal.py's JOURNAL_TABLE)
JOURNAL_TABLE = "dbcrate_journal"
#: the settings key of a table's AUTOINCREMENT counter: ``sqlite_sequence:<table>``
SEQUENCE_PREFIX = "sqlite_sequence:"
#: the settings keys of the planner's statistics: ``sqlite_stat1:<n>``
STAT_PREFIX = "sqlite_stat1:"
#: what ANALYZE writes in ``stat``: numbers, and words such as ``unordered`` or ``sz=12``
_STAT = re.compile(r"[0-9A-Za-z= ]{0,4000}")
_SECTIONS: dict[str, Section] = {"table": "pre-data", "view": "pre-data",
                                 "index": "post-data", "trigger": "post-data"}
#: restore order: sections, then tables before views; creation order within each
_RANK = {"table": 0, "view": 1, "index": 2, "trigger": 2}
#: the words after CREATE for each kind (TEMP objects are refused: they are not the file's)
_LEADS: dict[str, tuple[tuple[str, ...], ...]] = {
    "TABLE": (("TABLE",),), "VIRTUAL TABLE": (("VIRTUAL", "TABLE"),), "VIEW": (("VIEW",),),
    "INDEX": (("INDEX",), ("UNIQUE", "INDEX")), "TRIGGER": (("TRIGGER",),)}
#: the virtual table modules built into SQLite (any other needs an extension loaded, which
#: dbcrate never does): their shadow tables are theirs to create, not the archive's
VIRTUAL_MODULES = frozenset({"fts3", "fts4", "fts5", "rtree", "rtree_i32", "geopoly"})
#: functions that read or write files or load code (the sqlite3 shell's and the core's)
_OUTSIDE = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
_INT32 = (-(2**31), 2**31 - 1)
_SETTINGS_INT = {"user_version": _INT32, "application_id": _INT32}
_INT64 = (-(2**63), 2**63 - 1)

# SQLite's tokens as complete.c cuts them; an unclosed quote or /* runs to the end of the text.
# Whitespace is exactly complete.c's (space, \t, \n, \f, \r): any other character is a token.
_TOKEN = re.compile(r"""
    (?P<ws>[ \t\n\f\r]+) | (?P<line>--[^\n]*) | (?P<block>/\*.*?(?:\*/|\Z))
  | (?P<q>'(?:[^']|'')*(?:'|\Z) | "(?:[^"]|"")*(?:"|\Z) | `(?:[^`]|``)*(?:`|\Z)
          | \[[^\]]*(?:\]|\Z))
  | (?P<word>[A-Za-z0-9_$\x80-\U0010ffff]+) | (?P<semi>;) | (?P<other>.)""", re.S | re.X)
# complete.c's token classes and its transition table (SQLITE_OMIT_TRIGGER not defined)
_SEMI, _WS, _OTHER, _EXPLAIN, _CREATE, _TEMP, _TRIGGER, _END = range(8)
_KEYWORDS = {"explain": _EXPLAIN, "create": _CREATE, "temp": _TEMP, "temporary": _TEMP,
             "trigger": _TRIGGER, "end": _END}
_TRANS = ((1, 0, 2, 3, 4, 2, 2, 2),   # 0 INVALID
          (1, 1, 2, 3, 4, 2, 2, 2),   # 1 START
          (1, 2, 2, 2, 2, 2, 2, 2),   # 2 NORMAL
          (1, 3, 3, 2, 4, 2, 2, 2),   # 3 EXPLAIN
          (1, 4, 2, 2, 2, 4, 5, 2),   # 4 CREATE
          (6, 5, 5, 5, 5, 5, 5, 5),   # 5 TRIGGER
          (6, 6, 5, 5, 5, 5, 5, 7),   # 6 SEMI
          (1, 7, 5, 5, 5, 5, 5, 5))   # 7 END


class Token(NamedTuple):
    """One SQLite token: its group in :data:`_TOKEN` (``ws``, ``line``, ``block``, ``q``,
    ``word``, ``semi``, ``other``) and its text."""

    group: str
    text: str


def capture(conn: Connection, tables: Collection[str] | None = None,
            excluded: Collection[str] = ()) -> NativeSchema:
    """Every object of the ``main`` database as written, in restore order.

    Left out: SQLite's internal objects (``sqlite_%``, autoindexes, whose ``sql`` is NULL),
    dbcrate's journal table, the tables not in ``tables`` (when given) or in ``excluded``, and
    the indexes and triggers on the tables left out. Views, and triggers on views, are always
    kept: SQLite creates a view whose tables are missing (reading it fails), and which tables a
    view reads is not known without parsing it. ``settings`` holds ``user_version`` and
    ``application_id`` and, per kept table with an AUTOINCREMENT counter,
    ``sqlite_sequence:<table>`` (integers as text); and per row of the planner's statistics
    (``sqlite_stat1``, what ``ANALYZE`` wrote) on a kept table, ``sqlite_stat1:<n>`` -> the
    JSON array ``[table, index or null, stat]``. ``conn`` reads inside the dump's snapshot
    (one read transaction).
    """
    rows = [(str(k), str(n), str(t), str(s)) for k, n, t, s in conn.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid")]
    # a virtual table's shadow tables are created by its module: not objects of their own
    left_out = set(excluded) | {JOURNAL_TABLE} | shadow_tables(conn)
    if tables is not None:
        left_out |= {n for k, n, _, _ in rows if k == "table"} - set(tables)
    objects = []
    for kind, name, table, sql in rows:
        if kind not in _SECTIONS or name in left_out or table in left_out:
            continue
        upper = "VIRTUAL TABLE" if kind == "table" and _is_virtual(sql) else kind.upper()
        objects.append((_RANK[kind], NativeObject(
            kind=upper, name=name, section=_SECTIONS[kind], sql=_terminated(sql),
            table=table if kind in ("index", "trigger") else None)))
    objects.sort(key=lambda pair: pair[0])  # stable: creation order within a rank
    settings = {key: str(int(conn.exec_driver_sql(f"PRAGMA main.{key}").scalar_one()))
                for key in _SETTINGS_INT}
    kept = {o.name for _, o in objects if o.kind == "TABLE"}
    if conn.exec_driver_sql("SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
                            "AND name = 'sqlite_sequence'").first():
        for name, seq in conn.exec_driver_sql("SELECT name, seq FROM main.sqlite_sequence"):
            if name in kept and seq is not None:
                settings[SEQUENCE_PREFIX + str(name)] = str(int(seq))
    if conn.exec_driver_sql("SELECT 1 FROM main.sqlite_master WHERE type = 'table' "
                            "AND name = 'sqlite_stat1'").first():
        # the planner's statistics, as ANALYZE left them (sqlite3's .dump keeps them too)
        stats = [(str(t), i if i is None else str(i), str(v)) for t, i, v in conn.exec_driver_sql(
            "SELECT tbl, idx, stat FROM main.sqlite_stat1 WHERE stat IS NOT NULL "
            "ORDER BY tbl, idx IS NOT NULL, idx") if t in kept]
        for n, row in enumerate(stats):
            settings[f"{STAT_PREFIX}{n}"] = json.dumps(row)
    version = str(conn.exec_driver_sql("SELECT sqlite_version()").scalar_one())
    return NativeSchema(engine="sqlite", server_version=version,
                        objects=tuple(o for _, o in objects), tool=None, settings=settings)


def shadow_tables(conn: Connection) -> set[str]:
    """The shadow tables of the ``main`` database's virtual tables (``docs_data`` of an FTS5
    table ``docs`` ...), as SQLite itself tells them (``PRAGMA table_list``, SQLite 3.37+;
    older versions: none known)."""
    try:
        found = conn.exec_driver_sql("PRAGMA main.table_list").all()
    except sa.exc.DBAPIError:
        return set()
    return {str(row[1]) for row in found if str(row[2]) == "shadow"}


def _is_virtual(sql: str) -> bool:
    words = [t.text.upper() for t in _significant(tokenize(sql[:200]))[:3]]
    return words[:2] == ["CREATE", "VIRTUAL"]


def _terminated(sql: str) -> str:
    """``sql`` ending with ``;``. SQLite stores a statement up to its last token, but a
    trailing ``--`` comment would swallow a ``;`` put on the same line: it goes on a line of its
    own then (the stored text of the copy is the same: SQLite drops what follows the last
    token)."""
    text = sql.rstrip()
    tokens = tokenize(text)
    return text + ("\n;" if tokens and tokens[-1].group == "line" else ";")


def tokenize(sql: str) -> list[Token]:
    """``sql`` cut into SQLite's tokens (complete.c's cut); linear in its length."""
    return [Token(str(m.lastgroup), m.group()) for m in _TOKEN.finditer(sql)]


def _closed(token: Token) -> bool:
    """False for a quote or a block comment that the end of the text cut short."""
    text = token.text
    if token.group == "block":
        return len(text) >= 4 and text.endswith("*/")
    if token.group == "q":
        close = "]" if text[0] == "[" else text[0]
        if len(text) < 2 or not text.endswith(close):
            return False
        # an odd run of closing quotes at the end: the last one closes (doubled ones are text)
        run = len(text[1:]) - len(text[1:].rstrip(close))
        return close == "]" or run % 2 == 1
    return True


def split_first(sql: str) -> tuple[list[Token], str] | None:
    """The tokens of the first complete statement of ``sql`` (up to and with its ``;``) and
    the text after it, or ``None`` when ``sql`` holds no complete statement: one pass of
    ``sqlite3_complete()``'s state machine (see the module's docstring)."""
    state = 0
    tokens: list[Token] = []
    pos = 0
    for token in tokenize(sql):
        if not _closed(token):
            return None
        tokens.append(token)
        pos += len(token.text)
        if token.group == "semi":
            cls = _SEMI
        elif token.group in ("ws", "line", "block"):
            cls = _WS
        elif token.group == "word" and token.text.isascii():
            cls = _KEYWORDS.get(token.text.lower(), _OTHER)
        else:
            cls = _OTHER
        state = _TRANS[state][cls]
        if cls == _SEMI and state == 1:
            return tokens, sql[pos:]
    return None


def _significant(tokens: Sequence[Token]) -> list[Token]:
    return [t for t in tokens if t.group not in ("ws", "line", "block")]


def check_object(obj: NativeObject) -> None:
    """Accept ``obj`` only if its SQL is one complete ``CREATE`` of its kind and name (see the
    module's docstring); raises :class:`UnsafeNativeSql` (exit 6) otherwise. Never touches a
    database."""
    leads = _LEADS.get(obj.kind)
    if leads is None:
        _refuse(obj, f"the object kind {obj.kind!r} is not one dbcrate restores")
    if "\x00" in obj.sql:
        _refuse(obj, "its SQL holds a NUL character")
    first = split_first(obj.sql)
    if first is None:
        _refuse(obj, "its SQL is not a complete statement")
    tokens, rest = first
    trailing = tokenize(rest)
    if any(t.group not in ("ws", "line", "block") or not _closed(t) for t in trailing):
        _refuse(obj, "its SQL holds more than one statement")
    if not sqlite3.complete_statement("".join(t.text for t in tokens)):
        _refuse(obj, "its SQL is not a complete statement")  # the machine and SQLite disagree
    words = _significant(tokens)
    upper = [t.text.upper() if t.group == "word" else "" for t in words]
    if upper[:1] != ["CREATE"]:
        _refuse(obj, "its SQL is not a CREATE statement")
    lead = next((lead for lead in leads if tuple(upper[1:1 + len(lead)]) == lead), None)
    if lead is None:
        begins = " ".join(t.text for t in words[:3])
        article = "an" if obj.kind[0] in "AEIOU" else "a"
        _refuse(obj, f"its SQL does not create {article} {obj.kind.lower()} "
                     f"(it begins {begins!r})")
    at = 1 + len(lead)
    if upper[at:at + 3] == ["IF", "NOT", "EXISTS"]:
        at += 3
    name, at = _name_at(obj, words, at)
    if name != obj.name:
        _refuse(obj, f"its SQL creates {name!r}, not {obj.name!r}")
    exempt = {at - 1}
    if obj.kind in ("INDEX", "TRIGGER"):
        exempt.add(_check_table(obj, words, upper, at))
    if obj.kind == "VIRTUAL TABLE":
        module = words[at + 1].text.lower() if at + 1 < len(words) else ""
        if upper[at:at + 1] != ["USING"] or module not in VIRTUAL_MODULES:
            _refuse(obj, "its SQL does not use a module built into SQLite (" +
                    ", ".join(sorted(VIRTUAL_MODULES)) + ")")
    _check_calls(obj, words, upper, exempt)


def _name_at(obj: NativeObject, words: Sequence[Token], at: int) -> tuple[str, int]:
    """The object name that starts at ``words[at]`` (``name`` or ``main.name``) and the index
    after it. Another schema (``temp.``, an attached database) is refused."""
    if at >= len(words) or words[at].group not in ("word", "q"):
        _refuse(obj, "its SQL names no object")
    if at + 1 < len(words) and words[at + 1].text == ".":
        schema = _unquote(words[at].text)
        if schema.lower() != "main" or at + 2 >= len(words) \
                or words[at + 2].group not in ("word", "q"):
            _refuse(obj, f"its SQL creates the object in the schema {schema!r}, not main")
        at += 2
    return _unquote(words[at].text), at + 1


def _check_table(obj: NativeObject, words: Sequence[Token], upper: Sequence[str],
                 at: int) -> int:
    """An index's or a trigger's table (after its first bare ``ON``) must be ``obj.table``
    when the entry names one: the restore builds the object once that table's rows are in.
    Returns the index of the table's name."""
    on = next((i for i in range(at, len(words)) if upper[i] == "ON"), None)
    if on is None:
        _refuse(obj, "its SQL names no table (ON ...)")
    table, after = _name_at(obj, words, on + 1)
    if obj.table is not None and table != obj.table:
        _refuse(obj, f"its SQL is on the table {table!r}, not {obj.table!r}")
    return after - 1


def _check_calls(obj: NativeObject, words: Sequence[Token], upper: Sequence[str],
                 exempt: set[int]) -> None:
    """Refuse a call of an :data:`_OUTSIDE` function: its name, bare or quoted (SQLite calls
    ``"load_extension"(...)`` too), followed by ``(``. A column of that name is no call; a
    table of that name is, where a call could stand, refused (the created object's own name,
    an index's table and the names after ``INTO``, ``REFERENCES`` or ``.`` are not calls)."""
    for i, token in enumerate(words[:-1]):
        if token.group not in ("word", "q") or token.text[0] == "'" or i in exempt:
            continue
        if _unquote(token.text).lower() not in _OUTSIDE or words[i + 1].text != "(":
            continue
        if i > 0 and (upper[i - 1] in ("INTO", "REFERENCES") or words[i - 1].text == "."):
            continue
        _refuse(obj, f"it calls {_unquote(token.text)}(), which reaches outside the database")


def _unquote(token: str) -> str:
    if token[:1] in "\"`'" and len(token) >= 2:
        return token[1:-1].replace(token[0] * 2, token[0])
    if token[:1] == "[":
        return token[1:-1]
    return token


def _refuse(obj: NativeObject, why: str) -> NoReturn:
    raise UnsafeNativeSql(
        f"the archive's native schema object {obj.kind} {obj.qualified} was refused: {why}",
        hint="restore only archives you trust, or use ddl='portable', which runs no archive SQL")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def restore_settings_sql(schema: NativeSchema) -> list[str]:
    """The statements that restore ``schema``'s settings, built by dbcrate: ``PRAGMA
    user_version``/``application_id``, per AUTOINCREMENT counter, a ``DELETE`` and an
    ``INSERT`` of its ``sqlite_sequence`` row (the name quoted as a string literal), and the
    planner's statistics as the source had them (``sqlite_stat1``, created empty by ``ANALYZE
    main.sqlite_schema`` as sqlite3's ``.dump`` does, its rows inserted from checked texts).
    Run them after the rows and the indexes (inserting rows moves a counter).

    :raises UnsafeNativeSql: a setting that is not a decimal integer in its range (a pragma:
        32 bits; a counter: 64 bits); nothing has been run.
    """
    out = []
    for key, (lo, hi) in _SETTINGS_INT.items():
        if key in schema.settings:
            out.append(f"PRAGMA main.{key} = {_integer(key, schema.settings[key], lo, hi)}")
    for key, text in sorted(schema.settings.items()):
        if key.startswith(SEQUENCE_PREFIX):
            value = _integer(key, text, *_INT64)
            table = _literal(key.removeprefix(SEQUENCE_PREFIX))
            out.append(f"DELETE FROM main.sqlite_sequence WHERE name = {table}")
            out.append(f"INSERT INTO main.sqlite_sequence (name, seq) VALUES ({table}, {value})")
    stats = [_stat_row(k, v) for k, v in sorted(schema.settings.items())
             if k.startswith(STAT_PREFIX)]
    if stats:
        out += ["ANALYZE main.sqlite_schema", "DELETE FROM main.sqlite_stat1"]
    for tbl, idx, stat in stats:
        out.append(f"INSERT INTO main.sqlite_stat1 (tbl, idx, stat) VALUES ({_literal(tbl)}, "
                   f"{'NULL' if idx is None else _literal(idx)}, {_literal(stat)})")
    return out


def _stat_row(key: str, text: str) -> tuple[str, str | None, str]:
    """A row of the planner's statistics from its setting: ``[table, index or null, stat]``.

    :raises UnsafeNativeSql: not such an array of strings, or a ``stat`` that holds more
        than ANALYZE writes (numbers, and words such as ``unordered`` or ``sz=12``)."""
    try:
        row = json.loads(text) if len(text) <= 20000 else None
    except ValueError:
        row = None
    if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)
            and (row[1] is None or isinstance(row[1], str)) and isinstance(row[2], str)
            and _STAT.fullmatch(row[2])):
        raise UnsafeNativeSql(f"the archive's native schema setting {key} was refused: "
                              f"{text[:40]!r} is not a row of the planner's statistics",
                              hint="restore only archives you trust, or use ddl='portable'")
    return row[0], row[1], row[2]


def _integer(key: str, text: str, lo: int, hi: int) -> int:
    value = int(text) if re.fullmatch(r"-?[0-9]{1,20}", text) else None
    if value is None or not lo <= value <= hi:
        raise UnsafeNativeSql(
            f"the archive's native schema setting {key} was refused: {text[:40]!r} is not an "
            f"integer from {lo} to {hi}",
            hint="restore only archives you trust, or use ddl='portable'")
    return value


class SqliteNative(NativeSupport):
    """The native schema of SQLite (``sqlite_master`` as written)."""

    table_kinds: ClassVar[frozenset[str]] = frozenset({"TABLE", "VIRTUAL TABLE"})

    def capture(self, conn: Connection, url: sa.URL, tables: Sequence[TableRef],
                excluded: Sequence[TableRef], schemas: Sequence[str] = ()) -> NativeSchema:
        return capture(conn, [name for _, name in tables], [name for _, name in excluded])

    def check(self, obj: NativeObject) -> None:
        check_object(obj)

    def existing(self, conn: Connection,
                 objects: Sequence[NativeObject]) -> list[tuple[NativeObject, str]]:
        have = {(str(t).upper(), str(n)) for t, n in conn.exec_driver_sql(
            "SELECT type, name FROM main.sqlite_master")}
        kind = {"VIRTUAL TABLE": "TABLE"}  # DROP TABLE drops a virtual table and its shadows
        return [(o, f"DROP {kind.get(o.kind, o.kind)} IF EXISTS main.{_identifier(o.name)}")
                for o in objects if (kind.get(o.kind, o.kind), o.name) in have]

    def settings_sql(self, schema: NativeSchema) -> list[str]:
        return restore_settings_sql(schema)
