"""MariaDB/MySQL's native schema: every object as ``SHOW CREATE ...`` gives it.

The server's own definitions keep what the portable schema cannot: ``INT UNSIGNED``,
``ENUM``/``SET``, character sets and collations, ``FULLTEXT`` and ``SPATIAL`` indexes,
generated columns, ``ON UPDATE CURRENT_TIMESTAMP``, ``CHECK``, partitioning, ``AUTO_INCREMENT``;
and the objects it has no word for: views, triggers, procedures, functions, events.

Sections: tables (as ``SHOW CREATE TABLE`` gives them, keys, indexes and foreign keys
included, as mysqldump keeps them: they are created with ``foreign_key_checks = 0``, the rows
load with it off, and the restore's orphan check runs afterwards), sequences, then functions
and procedures, then views (a view after the views it reads) are pre-data; each sequence's
value (``SETVAL`` to its next value not handed to a cache, as mariadb-dump sets it) is the
data section, run after the rows; each trigger is post-data of its table, so that no trigger
fires on a restored row; events come last.

Why foreign keys stay inside ``CREATE TABLE`` (not pg_restore's separate post-data step):
with ``foreign_key_checks = 0`` InnoDB refuses ``ALTER TABLE ... ADD FOREIGN KEY`` on the base
column of a stored generated column ("Cannot add foreign key on the base column of stored
column", MariaDB 10.11), which ``CREATE TABLE`` accepts; no row is checked or rewritten either
way. The keys stay there too, as the server gives them; at restore,
:meth:`MysqlNative.for_restore` splits the plain secondary keys (and the foreign keys they
serve) off, to build them after the rows (:mod:`dbcrate.dialects.mysql_deferred_keys`). ``AUTO_INCREMENT=N``
is kept: it is the table's counter, restored as it stood. ``DEFINER`` clauses are kept
(:func:`strip_definer` takes them out for ``--no-owner``); the ``sql_mode``, client character
set and collation that ``SHOW CREATE`` reports for views and stored programs go into
:attr:`NativeObject.session`, set (from checked values) before the object is created, so that
each object stays one statement.

The guard (:func:`check_object`) is a tokenizer, not a parser (no MariaDB grammar for Python
reads stored programs; sqlglot does not): its docstring says what it proves and what not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.dialects.mysql_deferred_keys import adds_only_keys, deferred_schema
from dbcrate.dialects.native import NativeSupport, Statement, TableRef, UnsafeNativeSql
from dbcrate.model.native import NativeObject, NativeSchema

JOURNAL_TABLE = "dbcrate_journal"
#: the session settings an object is created under, and what their values may look like
_SESSION_KEYS = {"sql_mode": re.compile(r"[A-Z_,]*"),
                 "character_set_client": re.compile(r"[a-z0-9_]{1,64}"),
                 "collation_connection": re.compile(r"[a-z0-9_]{1,64}"),
                 "time_zone": re.compile(r"[A-Za-z0-9_+:/-]{1,64}")}
_SAVE_SESSION = ("SET @dbcrate_sql_mode = @@SESSION.sql_mode, @dbcrate_cs = "
                 "@@SESSION.character_set_client, @dbcrate_cc = @@SESSION.collation_connection, "
                 "@dbcrate_tz = @@SESSION.time_zone")
_RESTORE_SESSION = ("SET SESSION sql_mode = @dbcrate_sql_mode, character_set_client = "
                    "@dbcrate_cs, collation_connection = @dbcrate_cc, time_zone = @dbcrate_tz")
_ACCOUNT_PART = r"(?:`(?:[^`]|``)*`|'[^']*'|[\w.%-]+)"
_DEFINER = re.compile(rf"\bDEFINER\s*=\s*{_ACCOUNT_PART}@{_ACCOUNT_PART}\s*", re.I)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def capture(conn: Connection, tables: Sequence[str], excluded: Sequence[str]) -> NativeSchema:
    """Every object of the connection's database as the server defines it (see the module's
    docstring); the excluded tables, and their triggers and foreign keys, left out."""
    left_out = set(excluded) | {JOURNAL_TABLE}
    kinds: dict[str, str] = {str(n): str(t) for n, t in conn.exec_driver_sql("SHOW FULL TABLES")}
    pre: list[NativeObject] = []
    post: list[NativeObject] = []
    data: list[NativeObject] = []
    for name in sorted(str(n) for n, t in kinds.items() if t == "SEQUENCE"):
        pre.append(NativeObject("SEQUENCE", name, "pre-data",
                                str(_show(conn, "SEQUENCE", name)[1]) + ";"))
        # what mariadb-dump does: the next value not yet handed to a cache (values a session
        # had cached are not reused, so none is given twice)
        value = conn.exec_driver_sql(f"SELECT next_not_cached_value FROM {_q(name)}").scalar_one()
        data.append(NativeObject("SEQUENCE SET", name, "data",
                                 f"SELECT SETVAL({_q(name)}, {int(value)}, 0);"))
    # the server qualifies a sequence in a column's DEFAULT with the database's name: the copy
    # must use its own sequence, not the source database's
    own = re.compile(r"\bnextval\(" + re.escape(_q(str(conn.exec_driver_sql(
        "SELECT DATABASE()").scalar()))) + r"\.", re.I)
    for name in sorted(str(n) for n, t in kinds.items() if t == "BASE TABLE"):
        if name in left_out:
            continue
        sql = own.sub("nextval(", str(_show(conn, "TABLE", name)[1]))
        pre.append(NativeObject("TABLE", name, "pre-data", sql + ";"))
    for kind in ("FUNCTION", "PROCEDURE"):
        for (routine,) in conn.exec_driver_sql(
                "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = "
                "DATABASE() AND ROUTINE_TYPE = %(k)s ORDER BY ROUTINE_NAME", {"k": kind}):
            row = _show(conn, kind, str(routine))
            if row[2] is not None:  # (NULL without the privilege to see the body)
                pre.append(NativeObject(kind, str(routine), "pre-data", str(row[2]) + ";",
                                        session=_session(row)))
    rows = {str(n): _show(conn, "VIEW", str(n)) for n, t in kinds.items() if t == "VIEW"}
    views = {name: str(row[1]) for name, row in rows.items()}
    pre.extend(NativeObject("VIEW", n, "pre-data", views[n] + ";", session=_session(rows[n]))
               for n in _view_order(views))
    for name, table in conn.exec_driver_sql(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE "
            "TRIGGER_SCHEMA = DATABASE() ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER"):
        if str(table) not in left_out:
            row = _show(conn, "TRIGGER", str(name))
            post.append(NativeObject("TRIGGER", str(name), "post-data", str(row[2]) + ";",
                                     table=str(table), session=_session(row)))
    for (event,) in conn.exec_driver_sql(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() "
            "ORDER BY EVENT_NAME"):
        row = _show(conn, "EVENT", str(event))
        post.append(NativeObject("EVENT", str(event), "post-data", str(row[3]) + ";",
                                 session=_session(row)))
    version = str(conn.exec_driver_sql("SELECT VERSION()").scalar())
    charset = conn.exec_driver_sql("SELECT @@character_set_database, @@collation_database").one()
    return NativeSchema(engine="mysql", server_version=version, objects=tuple(pre + data + post),
                        settings={"character_set": str(charset[0]), "collation": str(charset[1])})


def _show(conn: Connection, kind: str, name: str) -> Any:
    return conn.exec_driver_sql(f"SHOW CREATE {kind} {_q(name)}").one()


def _session(row: Any) -> dict[str, str]:
    """The session settings ``SHOW CREATE`` reports the object was created under."""
    found = row._mapping
    return {key: str(found[key]) for key in _SESSION_KEYS if found.get(key) is not None}


def _view_order(views: dict[str, str]) -> list[str]:
    """Views after the views they name (a name in backquotes in the definition)."""
    done: list[str] = []
    pending = sorted(views)
    while pending:
        ready = [v for v in pending
                 if not any(_q(o) in views[v] for o in pending if o != v)] or pending[:1]
        done.extend(ready)
        pending = [v for v in pending if v not in ready]
    return done


# ------------------------------------------------------------------------------ the guard
def _lexer(single_escapes: bool, double_escapes: bool) -> re.Pattern[str]:
    """MariaDB's tokens under one reading of its quotes: backslash escapes in '...' unless
    ``NO_BACKSLASH_ESCAPES``; "..." a string with them, or (``ANSI_QUOTES``) an identifier
    without. ``--`` starts a comment only before a space or control character, and the comment
    ends *before* the newline (a ``--`` followed by a newline comments nothing out). Every
    non-ASCII character belongs to a word, as in the server's identifiers (``BEGINé`` is a
    label, not ``BEGIN``); whitespace is the six ASCII ones only."""
    def quoted(q: str, escapes: bool) -> str:
        return rf"{q}(?:[^{q}\\]|\\.|{q}{q})*{q}" if escapes else rf"{q}(?:[^{q}]|{q}{q})*{q}"
    return re.compile(
        r"[ \t\n\r\f\v]+|--(?=[\x00-\x20\x7f])[^\n]*|\#[^\n]*|/\*.*?\*/|"
        + quoted("'", single_escapes) + "|" + quoted('"', double_escapes)
        + r"|`(?:[^`]|``)*`|[A-Za-z0-9_$\x80-\U0010ffff]+|.", re.S)


_SPACE = frozenset(" \t\n\r\f\v")
#: every reading the server may apply (its sql_mode is the target session's, or the object's)
_LEXERS = tuple(_lexer(s, d) for s in (True, False) for d in (True, False))
#: sql_mode words that leave the grammar the guard reads (ORACLE and MSSQL change it)
_SQL_MODES = frozenset({
    "ALLOW_INVALID_DATES", "ANSI", "ANSI_QUOTES", "DB2", "EMPTY_STRING_IS_NULL",
    "ERROR_FOR_DIVISION_BY_ZERO", "HIGH_NOT_PRECEDENCE", "IGNORE_BAD_TABLE_OPTIONS",
    "IGNORE_SPACE", "MAXDB", "MYSQL323", "MYSQL40", "NO_AUTO_CREATE_USER",
    "NO_AUTO_VALUE_ON_ZERO", "NO_BACKSLASH_ESCAPES", "NO_DIR_IN_CREATE",
    "NO_ENGINE_SUBSTITUTION", "NO_FIELD_OPTIONS", "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS",
    "NO_UNSIGNED_SUBTRACTION", "NO_ZERO_DATE", "NO_ZERO_IN_DATE", "ONLY_FULL_GROUP_BY",
    "PAD_CHAR_TO_FULL_LENGTH", "PIPES_AS_CONCAT", "POSTGRESQL", "REAL_AS_FLOAT",
    "SIMULTANEOUS_ASSIGNMENT", "STRICT_ALL_TABLES", "STRICT_TRANS_TABLES",
    "TIME_ROUND_FRACTIONAL", "TRADITIONAL"})
#: client character sets with a multi-byte character whose second byte is ``\`` or a quote:
#: the server would read the checked text's quotes differently
_UNSAFE_CHARSETS = ("big5", "cp932", "gbk", "gb18030", "sjis")
_KINDS = {"TABLE", "SEQUENCE", "VIEW", "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT",
          "FK CONSTRAINT", "KEYS"}
#: the one statement of a sequence's value (built by :func:`capture`, matched exactly)
_SETVAL = re.compile(r"SELECT SETVAL\(`((?:[^`]|``)+)`, (-?[0-9]{1,20}), 0\);")
_REFUSED_WORDS = {"LOAD_FILE", "OUTFILE", "DUMPFILE", "SONAME", "GRANT", "REVOKE", "INSTALL",
                  "UNINSTALL", "SHUTDOWN", "SYS_EXEC", "SYS_EVAL", "GLOBAL", "PERSIST",
                  "PERSIST_ONLY"}
_REFUSED_PAIRS = {("LOAD", "DATA"), ("LOAD", "XML"), ("SET", "GLOBAL"), ("CREATE", "USER"),
                  ("ALTER", "USER"), ("DROP", "USER"), ("RENAME", "USER"), ("CREATE", "ROLE"),
                  ("DROP", "ROLE"), ("SET", "PASSWORD"), ("SET", "ROLE"), ("DEFAULT", "ROLE"),
                  ("CREATE", "SERVER"), ("ALTER", "SERVER"), ("CHANGE", "MASTER")}
#: table options that reach the server's files or other servers (CONNECT, FEDERATED, SPIDER)
_TABLE_REFUSED = {"DIRECTORY", "CONNECTION", "FILE_NAME", "SELECT"}
_CHARACTERISTICS = {"DETERMINISTIC": 1, "NOT": 2, "CONTAINS": 2, "NO": 2, "READS": 3,
                    "MODIFIES": 3, "LANGUAGE": 2, "COMMENT": 2, "SQL": 3}
_TYPE_WORDS = {"UNSIGNED", "SIGNED", "ZEROFILL", "BINARY", "ASCII", "UNICODE", "BYTE"}
_LOOPS = {"IF", "CASE", "LOOP", "REPEAT", "WHILE", "FOR"}  # closed by END <the same word>


def check_object(obj: NativeObject) -> None:
    """Accept ``obj`` only if its SQL is one statement that creates exactly it.

    What it proves, under every way the server may read quotes (``NO_BACKSLASH_ESCAPES``,
    ``ANSI_QUOTES`` on or off, since the target's or the object's sql_mode decides): the text
    holds no executable comment (``/*! */``, ``/*M! */``, which the server runs) and no client
    command (``\\``); it is one statement (a stored program's ``BEGIN ... END``, ``IF``,
    ``CASE``, ``LOOP``, ``REPEAT``, ``WHILE``, ``FOR`` blocks followed from the body's first
    word, so their semicolons are inside it; anything after the body refused); it begins with
    the claimed kind's ``CREATE`` (``OR REPLACE``, ``ALGORITHM``, ``DEFINER``, ``SQL
    SECURITY``, ``IF NOT EXISTS`` allowed) or, for ``FK CONSTRAINT``, ``ALTER TABLE t ADD
    CONSTRAINT c FOREIGN KEY``; the object has the claimed (unqualified) name, and a trigger or
    foreign key the claimed table; no word reaches outside the database (``LOAD_FILE``, ``INTO
    OUTFILE``/``DUMPFILE``, ``LOAD DATA``, ``GRANT``, accounts, ``SET GLOBAL``/``@@global``,
    ``INSTALL``/``SONAME``; for a table ``DATA``/``INDEX DIRECTORY``, ``CONNECTION``,
    ``FILE_NAME``, ``AS SELECT``); the session settings it is created under are known ones
    (sql_mode words that keep this grammar, no character set that hides a quote).

    What it does not prove: that a procedure, function, trigger, event or view does nothing
    harmful when it *runs* later (an enabled event runs on its schedule; a view or routine
    with ``SQL SECURITY DEFINER`` runs as its definer: restore with ``--no-owner``). That code
    is the archive's: restore archives you trust, or use ``--ddl portable``, which runs none.
    Raises :class:`UnsafeNativeSql` (exit 6); nothing is run either way.
    """
    if obj.kind == "SEQUENCE SET":
        found = _SETVAL.fullmatch(obj.sql)
        if found is None or _unquote(f"`{found.group(1)}`") != obj.name or obj.session:
            _refuse(obj, f"its SQL is not SELECT SETVAL(`{obj.name}`, <integer>, 0);")
        return
    if obj.kind not in _KINDS:
        _refuse(obj, f"the object kind {obj.kind!r} is not one dbcrate restores")
    _check_session(obj)
    for lexer in _lexers(obj):
        tokens = [t for t in lexer.findall(obj.sql) if t[:1] not in _SPACE]
        if any(t.startswith(("/*!", "/*M!")) for t in tokens):
            _refuse(obj, "it holds an executable comment (/*! ... */)")
        words = [t for t in tokens if not t.startswith(("--", "#", "/*"))]
        _check_words(obj, [w.upper() for w in words], words)


def _lexers(obj: NativeObject) -> tuple[re.Pattern[str], ...]:
    """The readings to check: the one of the object's own sql_mode, which the restore sets
    before it runs the object (:meth:`MysqlNative.statements`), or, without one (tables: the
    target session's mode decides), every reading (``SHOW CREATE TABLE`` reads the same in
    all; a stored program's body is its author's text, so its own mode matters)."""
    mode = (obj.session or {}).get("sql_mode")
    if mode is None:
        return _LEXERS
    words = set(mode.split(","))
    single = "NO_BACKSLASH_ESCAPES" not in words
    double = single and not words & {"ANSI_QUOTES", "ANSI", "DB2", "MAXDB", "POSTGRESQL"}
    return (_LEXERS[(not single) * 2 + (not double)],)


def _check_session(obj: NativeObject) -> None:
    for key, value in (obj.session or {}).items():
        pattern = _SESSION_KEYS.get(key)
        if pattern is None or not pattern.fullmatch(value):
            _refuse(obj, f"its session setting {key}={value!r} is not one dbcrate sets")
        if key == "sql_mode" and not set(filter(None, value.split(","))) <= _SQL_MODES:
            _refuse(obj, f"its session setting sql_mode={value!r} changes the SQL grammar")
        if key != "sql_mode" and value.startswith(_UNSAFE_CHARSETS):
            _refuse(obj, f"its session setting {key}={value!r} is a character set that can "
                         "hide a quote")


def _check_words(obj: NativeObject, upper: list[str], words: list[str]) -> None:
    """The checks on one reading's words (comments gone; ``upper`` the same, upper-cased)."""
    if not upper:
        _refuse(obj, "its SQL is empty")
    for i, word in enumerate(upper):
        pair = (word, upper[i + 1] if i + 1 < len(upper) else "")
        if word in _REFUSED_WORDS or pair in _REFUSED_PAIRS or word == "\\" \
                or (word == "SYSTEM" and pair[1] != "VERSIONING"):
            said = " ".join(pair) if pair in _REFUSED_PAIRS else word
            _refuse(obj, f"it holds {said}, which reaches outside the database")
    body = _header(obj, upper, words)
    for i, word in enumerate(upper if obj.kind in ("TABLE", "SEQUENCE", "FK CONSTRAINT", "KEYS")
                             else ()):
        if word in _TABLE_REFUSED or (word == "ENGINE" and upper[i + 2:i + 3] == ["CONNECT"]):
            _refuse(obj, f"it holds {word}, which a table's definition does not")
    if body is None:  # not a stored program: one statement, no semicolon inside
        if ";" in upper[:-1]:
            _refuse(obj, "its SQL holds more than one statement")
        return
    if ";" in upper[:body]:
        _refuse(obj, "its SQL holds more than one statement")
    _body(obj, upper, body)


def _header(obj: NativeObject, upper: list[str], words: list[str]) -> int | None:
    """Check the statement's head (kind, name, table); the position where a stored
    program's body begins, or ``None`` for the kinds without one."""
    if obj.kind == "FK CONSTRAINT":
        if upper[:2] != ["ALTER", "TABLE"] or upper[3:5] != ["ADD", "CONSTRAINT"] \
                or upper[6:8] != ["FOREIGN", "KEY"]:
            _refuse(obj, "its SQL is not ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY")
        _name(obj, words, 5, obj.name)
        _name(obj, words, 2, obj.table)
        if any(depth == 0 for depth in _depths(upper, ",")):
            _refuse(obj, "its SQL alters more than the foreign key")
        return None
    if obj.kind == "KEYS":  # a table's keys built after its rows (mysql_deferred_keys)
        if not adds_only_keys(upper):
            _refuse(obj, "its SQL is not ALTER TABLE ... ADD KEY ..., ADD CONSTRAINT ... "
                         "FOREIGN KEY ...")
        _name(obj, words, 2, obj.table or "")  # (the table it claims, which it must claim)
        return None
    if upper[:1] != ["CREATE"]:
        _refuse(obj, "its SQL is not a CREATE statement")
    i = _after_options(upper, 1)
    if obj.kind == "FUNCTION" and upper[i:i + 1] == ["AGGREGATE"]:
        i += 1
    if upper[i:i + 1] != [obj.kind]:
        _refuse(obj, f"its SQL does not create a {obj.kind.lower()}")
    i += 4 if upper[i + 1:i + 4] == ["IF", "NOT", "EXISTS"] else 1
    _name(obj, words, i, obj.name)
    if obj.kind in ("TABLE", "SEQUENCE", "VIEW"):
        return None
    if obj.kind == "TRIGGER":
        return _trigger_body(obj, upper, words, i + 1)
    if obj.kind == "EVENT":
        do = [j for j, depth in zip(_positions(upper, "DO"), _depths(upper, "DO"), strict=True)
              if depth == 0 and j > i]
        if upper[i + 1:i + 3] != ["ON", "SCHEDULE"] or not do:
            _refuse(obj, "its SQL is not CREATE EVENT ... ON SCHEDULE ... DO")
        return do[0] + 1
    return _routine_body(obj, upper, i + 1)


def _name(obj: NativeObject, words: list[str], i: int, expected: str | None) -> None:
    """The name at ``i`` is ``expected`` (when one is claimed) and not qualified."""
    found = _unquote(words[i]) if i < len(words) else None
    if expected is not None and found != expected:
        _refuse(obj, f"its SQL creates {found!r}, not {expected!r}")
    if words[i + 1:i + 2] == ["."]:
        _refuse(obj, "its SQL names an object of another database")


def _after_options(upper: list[str], i: int) -> int:
    """The position after CREATE's options (OR REPLACE, ALGORITHM=, DEFINER=, SQL SECURITY)."""
    while i < len(upper):
        if upper[i:i + 2] == ["OR", "REPLACE"]:
            i += 2
        elif upper[i:i + 2] == ["ALGORITHM", "="]:
            i += 3
        elif upper[i:i + 2] == ["DEFINER", "="]:
            i += 3
            if upper[i - 1] in ("CURRENT_USER", "CURRENT_ROLE"):
                i += 2 if upper[i:i + 2] == ["(", ")"] else 0
            elif upper[i:i + 1] == ["@"]:
                i += 2
        elif upper[i:i + 2] == ["SQL", "SECURITY"]:
            i += 3
        else:
            return i
    return i


def _positions(upper: list[str], word: str) -> list[int]:
    return [j for j, w in enumerate(upper) if w == word]


def _depths(upper: list[str], word: str) -> list[int]:
    """The parenthesis depth at each occurrence of ``word``."""
    out, depth = [], 0
    for w in upper:
        depth += {"(": 1, ")": -1}.get(w, 0)
        if w == word:
            out.append(depth)
    return out


def _skip_parens(upper: list[str], i: int) -> int:
    """The position after the parenthesised group that starts at ``i``."""
    depth = 0
    for j in range(i, len(upper)):
        depth += {"(": 1, ")": -1}.get(upper[j], 0)
        if depth == 0:
            return j + 1
    return len(upper)


def _routine_body(obj: NativeObject, upper: list[str], i: int) -> int:
    """Where a procedure's or function's body starts: after its parameters, a function's
    RETURNS type and the characteristics."""
    if upper[i:i + 1] != ["("]:
        _refuse(obj, f"its SQL is not CREATE {obj.kind} name (...)")
    i = _skip_parens(upper, i)
    if obj.kind == "FUNCTION":
        if upper[i:i + 1] != ["RETURNS"]:
            _refuse(obj, "its SQL is not CREATE FUNCTION name (...) RETURNS ...")
        i += 2
        i = _skip_parens(upper, i) if upper[i:i + 1] == ["("] else i
        while i < len(upper):
            if upper[i] in _TYPE_WORDS:
                i += 1
            elif upper[i] in ("CHARSET", "COLLATE"):
                i += 2
            elif upper[i:i + 2] == ["CHARACTER", "SET"]:
                i += 3
            else:
                break
    while i < len(upper) and upper[i] in _CHARACTERISTICS:
        if upper[i] == "SQL" and upper[i + 1:i + 2] != ["SECURITY"]:
            break
        i += _CHARACTERISTICS[upper[i]]
    return i


def _trigger_body(obj: NativeObject, upper: list[str], words: list[str], i: int) -> int:
    """Where a trigger's body starts (after FOR EACH ROW [FOLLOWS|PRECEDES t]); its table is
    the claimed one."""
    on = upper.index("ON", i) if "ON" in upper[i:] else len(upper)
    _name(obj, words, on + 1, obj.table)
    if upper[on + 2:on + 5] != ["FOR", "EACH", "ROW"]:
        _refuse(obj, "its SQL is not CREATE TRIGGER ... ON table FOR EACH ROW ...")
    i = on + 5
    return i + 2 if upper[i:i + 1] in (["FOLLOWS"], ["PRECEDES"]) else i


def _body(obj: NativeObject, upper: list[str], i: int) -> None:
    """Follow a stored program's body from its first word: ``[kind, in_condition]`` for each
    open block; a statement starts at the body, after a ``;`` inside a block, after THEN, ELSE,
    DO, LOOP, REPEAT, BEGIN, a label, a handler's conditions. Only a block opened at a
    statement's start counts (``begin`` may name a column), and a CASE anywhere (reserved).
    Once the body's outermost block is closed, only its label and ``;`` may follow."""
    stack: list[list[Any]] = []
    start, closed = True, False
    while i < len(upper) and not closed:
        word = upper[i]
        if word == ";":
            if not stack or stack[-1][0] == "CASEX":
                break
            start, i = True, i + 1
        elif word == "END" and (start or (stack and (
                stack[-1][0] == "CASEX" or stack[-1] == ["REPEAT", True]))):
            i, kind = _close(obj, upper, i, stack)
            start, closed = False, not stack and kind != "CASEX"
        elif start:
            i, start = _statement_start(upper, i, stack)
        elif word == "CASE":
            stack.append(["CASEX", False])
            i += 1
        elif word in ("THEN", "DO") and stack and stack[-1][1] and stack[-1][0] != "CASEX":
            stack[-1][1] = False
            start, i = True, i + 1
        else:
            i += 1
    rest = upper[i:]
    if closed and rest[:1] != [";"] and re.fullmatch(r"[A-Z0-9_$]+|`.*`", "".join(rest[:1])):
        rest = rest[1:]  # the block's label
    if stack or rest not in ([], [";"]):
        _refuse(obj, "its SQL holds more than one statement (or an unbalanced block)")


def _statement_start(upper: list[str], i: int, stack: list[list[Any]]) -> tuple[int, bool]:
    """One word at a statement's start: the position after it and whether a statement
    starts there."""
    word, top = upper[i], (stack[-1][0] if stack else None)
    if upper[i + 1:i + 2] == [":"] and upper[i + 2:i + 3] != ["="] and word not in _LOOPS:
        return i + 2, True  # a label
    if word == "BEGIN":
        stack.append(["BEGIN", False])
        return (i + 3 if upper[i + 1:i + 3] == ["NOT", "ATOMIC"] else i + 1), True
    if word in ("LOOP", "REPEAT"):
        stack.append([word, False])
        return i + 1, True
    if word in ("IF", "CASE", "WHILE", "FOR"):
        stack.append([word, True])
        return i + 1, False
    if (word == "WHEN" and top == "CASE") or (word == "ELSEIF" and top == "IF") \
            or (word == "UNTIL" and top == "REPEAT"):
        stack[-1][1] = True
        return i + 1, False
    if word == "ELSE" and top in ("IF", "CASE"):
        return i + 1, True
    if word == "DECLARE" and upper[i + 1:i + 2] in (["CONTINUE"], ["EXIT"], ["UNDO"]) \
            and upper[i + 2:i + 4] == ["HANDLER", "FOR"]:
        return _handler_conditions(upper, i + 4), True
    return i + 1, False


def _handler_conditions(upper: list[str], i: int) -> int:
    """The position after a handler's condition list (then its statement starts)."""
    while i < len(upper):
        if upper[i] == "SQLSTATE":
            i += 3 if upper[i + 1:i + 2] == ["VALUE"] else 2
        elif upper[i] == "NOT":
            i += 2
        else:
            i += 1
        if upper[i:i + 1] != [","]:
            break
        i += 1
    return i


def _close(obj: NativeObject, upper: list[str], i: int,
           stack: list[list[Any]]) -> tuple[int, str]:
    """``END`` at ``i`` closes the innermost block: ``END IF`` an IF ..., ``END`` a BEGIN or a
    CASE expression. The position after it, and the kind closed."""
    if not stack:
        _refuse(obj, "its SQL holds more than one statement (an END closes no block)")
    kind = str(stack.pop()[0])
    following = upper[i + 1] if i + 1 < len(upper) else ""
    if kind in _LOOPS:
        if following != kind:
            _refuse(obj, f"its SQL closes {kind} with END {following}")
        return i + 2, kind
    if following in _LOOPS:
        _refuse(obj, f"its SQL closes {kind.replace('CASEX', 'CASE')} with END {following}")
    return i + 1, kind


def _unquote(token: str) -> str:
    if token[:1] == "`":
        return token[1:-1].replace("``", "`")
    return token


def _refuse(obj: NativeObject, why: str) -> NoReturn:
    raise UnsafeNativeSql(
        f"the archive's native schema object {obj.kind} {obj.qualified} was refused: {why}",
        hint="restore only archives you trust, or use ddl='portable', which runs no archive SQL")


def strip_definer(sql: str) -> str:
    """The statement without its ``DEFINER=user@host`` (``--no-owner``: the restoring user
    becomes the definer)."""
    return _DEFINER.sub("", sql, count=1)


_DROP = {"TABLE": ("TABLES", "TABLE_NAME", "TABLE_SCHEMA", "TABLE_TYPE = 'BASE TABLE'"),
         "SEQUENCE": ("TABLES", "TABLE_NAME", "TABLE_SCHEMA", "TABLE_TYPE = 'SEQUENCE'"),
         "VIEW": ("VIEWS", "TABLE_NAME", "TABLE_SCHEMA", "1 = 1"),
         "FUNCTION": ("ROUTINES", "ROUTINE_NAME", "ROUTINE_SCHEMA", "ROUTINE_TYPE = 'FUNCTION'"),
         "PROCEDURE": ("ROUTINES", "ROUTINE_NAME", "ROUTINE_SCHEMA", "ROUTINE_TYPE = 'PROCEDURE'"),
         "TRIGGER": ("TRIGGERS", "TRIGGER_NAME", "TRIGGER_SCHEMA", "1 = 1"),
         "EVENT": ("EVENTS", "EVENT_NAME", "EVENT_SCHEMA", "1 = 1")}


class MysqlNative(NativeSupport):
    """The native schema of MariaDB/MySQL (``SHOW CREATE ...``)."""

    table_kinds: ClassVar[frozenset[str]] = frozenset({"TABLE"})
    savepoints: ClassVar[bool] = False  # DDL commits by itself: a savepoint would not survive

    def capture(self, conn: Connection, url: sa.URL, tables: Sequence[TableRef],
                excluded: Sequence[TableRef], schemas: Sequence[str] = ()) -> NativeSchema:
        return capture(conn, [name for _, name in tables], [name for _, name in excluded])

    def check(self, obj: NativeObject) -> None:
        check_object(obj)

    def for_restore(self, objects: Sequence[NativeObject],
                    schema: Sequence[NativeObject]) -> list[NativeObject]:
        return deferred_schema(objects, schema, _lexers, check_object)

    def statements(self, obj: NativeObject, *, no_owner: bool,
                   no_privileges: bool) -> list[Statement]:
        """The object under the session settings it was created with (checked values: see
        :func:`check_object`), after the unit's own are put back."""
        session = [Statement(_RESTORE_SESSION)]
        for key, value in (obj.session or {}).items():
            if key in ("character_set_client", "collation_connection") \
                    and not value.startswith("utf8"):
                # the text comes as the server gave it, in UTF-8: declaring it latin1 (say)
                # would garble it; UTF-8's own variants are kept (mysqldump's output differs)
                continue
            literal = f"'{value}'" if key in ("sql_mode", "time_zone") else value
            session.append(Statement(f"SET SESSION {key} = {literal}"))
        return [*session, Statement(strip_definer(obj.sql) if no_owner else obj.sql)]

    def setup(self) -> tuple[str, ...]:
        return (_SAVE_SESSION,)

    def reset(self) -> tuple[str, ...]:
        return (_RESTORE_SESSION,)

    def fk_parent(self, obj: NativeObject) -> str | None:
        match = re.search(r"\bREFERENCES\s+`((?:[^`]|``)+)`", obj.sql, re.I)
        return match.group(1).replace("``", "`") if match else None

    def existing(self, conn: Connection,
                 objects: Sequence[NativeObject]) -> list[tuple[NativeObject, str]]:
        out = []
        for obj in objects:
            if obj.kind not in _DROP:
                continue
            view, column, schema, where = _DROP[obj.kind]
            found = conn.exec_driver_sql(
                f"SELECT 1 FROM information_schema.{view} WHERE {schema} = DATABASE() AND "
                f"{column} = %(n)s AND {where}", {"n": obj.name}).first()
            if found:
                out.append((obj, f"DROP {obj.kind} IF EXISTS {_q(obj.name)}"))
        return out

