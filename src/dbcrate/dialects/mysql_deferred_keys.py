"""MariaDB's native restore builds a table's plain secondary keys after its rows.

``SHOW CREATE TABLE`` keeps every index inside the table's definition. Created that way,
InnoDB maintains each secondary index row by row while the rows load. With a buffer pool
smaller than the data, that made the native restore of the benchmark 1.4-1.6 times slower
than the portable one, which builds the indexes once after the load (docs/PERFORMANCE.md).
So, as myloader's ``--innodb-optimize-keys`` does, a restore splits each table's checked
definition in two:

* the ``CREATE TABLE`` without its deferred keys (pre-data, as before);
* one ``KEYS`` object of the table's post-data, run after its rows:
  ``ALTER TABLE t ADD KEY ..., ADD KEY ..., ADD CONSTRAINT ... FOREIGN KEY ...``. InnoDB
  builds the keys in one pass; a foreign key whose key is deferred moves with it (left in the
  table, it would make InnoDB create a key of its own for it), added after it in the same
  statement, with ``foreign_key_checks = 0`` as every native object of MariaDB (no row is
  read for it).

Which keys are deferred: the plain ``KEY``/``INDEX`` elements at the end of the definition's
index list (after the last element that stays), so that the server lists the indexes in the
same order as the source's definition. (The server sorts a table's keys: unique ones first,
``FULLTEXT`` ones last, the others in the order they were made; a key added later goes after
the plain keys there are, before the ``FULLTEXT`` ones.) Stays inside the table:

* ``PRIMARY``, ``UNIQUE``, ``FULLTEXT`` and ``SPATIAL`` keys;
* a key whose columns begin with the columns another table's foreign key references in this
  one, or with those of a foreign key that stays: one on the base column of a stored
  generated column, which InnoDB adds in ``CREATE TABLE`` but refuses in ``ALTER TABLE``;
* a key that begins with the ``AUTO_INCREMENT`` column (the counter needs it).

How the text is cut: on the guard's tokens (:mod:`dbcrate.dialects.native_mysql`), at the
commas between the definition's elements, under every reading of quotes the guard checks.
When the readings disagree on any cut, or the definition has a comment or something the split
does not recognise, the table keeps its keys. Both results are checked by the guard again
before anything runs: the table as a ``TABLE``, the keys as a ``KEYS`` object, which the guard
accepts only as ``ALTER TABLE <its table>`` followed by ``ADD KEY``/``ADD INDEX`` and ``ADD
CONSTRAINT <name> FOREIGN KEY`` clauses.
The split depends only on the archive, so a resumed restore makes the same steps and the
journal's marks still name them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from re import Pattern
from typing import NamedTuple

from dbcrate.model.native import NativeObject

#: the object kind of a table's deferred keys (the guard: ``ALTER TABLE t ADD KEY ...``)
KEYS_KIND = "KEYS"
_SKIPPED = (" ", "\t", "\n", "\r", "\f", "\v")
_COMMENTS = ("--", "#", "/*")
#: a cut of the definition: where the comma before the element starts, its start, its end
_Cut = tuple[int, int, int]
#: the elements of a definition that are not indexes and follow them
_CONSTRAINTS = frozenset({"CONSTRAINT", "FOREIGN", "CHECK", "PERIOD"})


class _Token(NamedTuple):
    text: str
    start: int
    end: int


class _Element(NamedTuple):
    """One element of the definition's list: its tokens, and where its text starts and ends."""

    tokens: list[_Token]
    start: int
    end: int
    comma: int  # where the comma before it starts (-1 for the first element)


#: the readings of quotes under which the guard checks an object (its lexers)
Readings = Callable[[NativeObject], Sequence[Pattern[str]]]
#: the guard: raises for an object that is not the definition it claims
Check = Callable[[NativeObject], None]


def deferred_schema(objects: Sequence[NativeObject], context: Sequence[NativeObject],
                    readings: Readings, check: Check) -> list[NativeObject]:
    """``objects`` with each table's deferred keys split off (see the module's docstring): the
    ``KEYS`` objects go just before the first post-data object. ``context``: every object of
    the archive's schema (the foreign keys of tables not restored still reference these);
    ``readings`` and ``check``: the guard's (:mod:`dbcrate.dialects.native_mysql`)."""
    referenced: dict[str, list[list[str]]] = {}
    for obj in context:
        if obj.kind == "TABLE":
            for parent, columns in _foreign_keys(obj, readings(obj)[0]):
                referenced.setdefault(parent, []).append(columns)
    out: list[NativeObject] = []
    keys: list[NativeObject] = []
    for obj in objects:
        if obj.kind == "TABLE":
            table, deferred = split_table(obj, readings, check, referenced.get(obj.name, []))
            out.append(table)
            if deferred is not None:
                keys.append(deferred)
        else:
            out.append(obj)
    at = next((i for i, o in enumerate(out) if o.section == "post-data"), len(out))
    return out[:at] + keys + out[at:]


def split_table(obj: NativeObject, readings: Readings, check: Check,
                referenced: Sequence[Sequence[str]] = ()
                ) -> tuple[NativeObject, NativeObject | None]:
    """The table's definition without its deferred keys, and the ``KEYS`` object that adds
    them (``None``, with ``obj`` unchanged, when none is deferred). ``referenced``: the column
    lists that other tables' foreign keys reference in this table.

    :raises UnsafeNativeSql: a result the guard refuses (never for a definition it accepted).
    """
    cuts = {_cuts(obj.sql, lexer, referenced) for lexer in readings(obj)}
    if len(cuts) != 1:  # (the readings disagree, or one of them cannot be cut)
        return obj, None
    found = cuts.pop()
    if found is None or not found[0]:
        return obj, None
    deferred, moved = found
    sql = obj.sql
    kept = "".join(sql[a:b] for a, b in _between(sorted(deferred + moved), len(sql)))
    clauses = ", ".join(f"ADD {sql[start:end]}" for _, start, end in deferred + moved)
    table = dataclasses.replace(obj, sql=kept)
    name = "`" + obj.name.replace("`", "``") + "`"
    keys = NativeObject(KEYS_KIND, obj.name, "post-data", f"ALTER TABLE {name} {clauses};",
                        table=obj.name)
    check(table)
    check(keys)
    return table, keys


def adds_only_keys(upper: Sequence[str]) -> bool:
    """Whether a statement's words (upper-cased, comments gone) are ``ALTER TABLE t`` and then
    only ``ADD KEY``/``ADD INDEX`` and ``ADD CONSTRAINT c FOREIGN KEY`` clauses, one after
    each comma outside parentheses (the guard's check of a ``KEYS`` object)."""
    starts, depth = [3], 0
    for j, word in enumerate(upper):
        depth += {"(": 1, ")": -1}.get(word, 0)
        if word == "," and depth == 0:
            starts.append(j + 1)
    return list(upper[:2]) == ["ALTER", "TABLE"] and all(
        upper[j:j + 1] == ["ADD"] and (list(upper[j + 1:j + 2]) in (["KEY"], ["INDEX"]) or (
            list(upper[j + 1:j + 2]) == ["CONSTRAINT"]
            and list(upper[j + 3:j + 5]) == ["FOREIGN", "KEY"])) for j in starts)


def _between(found: Sequence[tuple[int, int, int]], size: int) -> list[tuple[int, int]]:
    """The spans of the text that stay: everything but each deferred key and its comma."""
    spans, at = [], 0
    for comma, _, end in found:
        spans.append((at, comma))
        at = end
    spans.append((at, size))
    return spans


def _tokens(sql: str, lexer: Pattern[str]) -> list[_Token] | None:
    """The statement's tokens without blanks; ``None`` if it holds a comment (not split)."""
    out = []
    for match in lexer.finditer(sql):
        text = match.group()
        if text[:1] in _SKIPPED:
            continue
        if text.startswith(_COMMENTS):
            return None
        out.append(_Token(text, match.start(), match.end()))
    return out


def _elements(tokens: list[_Token]) -> list[_Element] | None:
    """The elements of ``CREATE TABLE name (...)``'s list; ``None`` if it has none."""
    upper = [t.text.upper() for t in tokens]
    if "TABLE" not in upper:
        return None
    i = upper.index("TABLE") + 1
    i += 3 if upper[i:i + 3] == ["IF", "NOT", "EXISTS"] else 0
    if upper[i + 1:i + 2] != ["("]:  # (CREATE TABLE t LIKE u, or a qualified name)
        return None
    elements: list[_Element] = []
    depth, begin, comma = 0, i + 2, -1
    for j in range(i + 1, len(tokens)):
        word = upper[j]
        depth += {"(": 1, ")": -1}.get(word, 0)
        if (word == "," and depth == 1) or depth == 0:
            if begin >= j:
                return None
            part = tokens[begin:j]
            elements.append(_Element(part, part[0].start, part[-1].end, comma))
            if depth == 0:
                return elements
            begin, comma = j + 1, tokens[j].start
    return None


def _cuts(sql: str, lexer: Pattern[str], referenced: Sequence[Sequence[str]]
          ) -> tuple[tuple[_Cut, ...], tuple[_Cut, ...]] | None:
    """The deferred keys, and the foreign keys that move with them, under one reading;
    ``None``: not split."""
    tokens = _tokens(sql, lexer)
    elements = None if tokens is None else _elements(tokens)
    if elements is None:
        return None
    keep_prefixes = [list(c) for c in referenced]
    auto: str | None = None
    stored_bases: set[str] = set()
    foreign: list[tuple[_Element, list[str]]] = []
    for element in elements:
        words = [t.text.upper() for t in element.tokens]
        fk = _foreign_key(element)
        if fk is not None:
            named, columns, _, _ = fk
            if named:
                foreign.append((element, columns))
            else:
                keep_prefixes.append(columns)
        elif element.tokens[0].text.startswith("`"):
            if "AUTO_INCREMENT" in words:
                auto = _name(element.tokens[0].text)
            if "AS" in words and ("STORED" in words or "PERSISTENT" in words):
                stored_bases.update(_name(t.text) for t in element.tokens[words.index("AS"):]
                                    if t.text.startswith("`"))
    # InnoDB adds no foreign key on the base column of a stored generated column by ALTER
    # TABLE: such a foreign key, and the keys it uses, stay inside the table
    keep_prefixes += [cols for _, cols in foreign if not cols or set(cols) & stored_bases]
    deferred: list[tuple[_Cut, list[str]]] = []
    for element in reversed(elements):
        first = element.tokens[0].text.upper()
        if first in _CONSTRAINTS or first == "FULLTEXT":
            # not an index (listed after the indexes), or an index the server lists after
            # every plain one, whenever it was made
            continue
        if first not in ("KEY", "INDEX"):
            break  # a column (the list of indexes is over), or a key of a kind that stays
        columns = _columns(element.tokens, 2)
        if not columns or columns[0] == auto or any(
                columns[:len(prefix)] == prefix for prefix in keep_prefixes if prefix):
            break  # (it stays, and so do the keys before it: the order is kept)
        deferred.append(((element.comma, element.start, element.end), columns))
    # a foreign key whose key is built later is added after it, in the same ALTER TABLE
    moved = [(e.comma, e.start, e.end) for e, cols in foreign if cols and not set(cols) &
             stored_bases and any(k[:len(cols)] == cols for _, k in deferred)]
    return tuple(cut for cut, _ in reversed(deferred)), tuple(moved)


def _columns(tokens: list[_Token], at: int) -> list[str]:
    """The column names in the parenthesised list that starts at ``tokens[at]`` (a name's
    prefix length and ``ASC``/``DESC`` left out); empty if there is no such list."""
    if at >= len(tokens) or tokens[at].text != "(":
        return []
    names, depth = [], 0
    for token in tokens[at:]:
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if depth == 0:
            break
        if depth == 1 and token.text.startswith("`"):
            names.append(_name(token.text))
    return names


def _name(token: str) -> str:
    return token[1:-1].replace("``", "`")


def _foreign_keys(obj: NativeObject, lexer: Pattern[str]) -> list[tuple[str, list[str]]]:
    """The table's foreign keys: (the referenced table, the referenced columns)."""
    tokens = _tokens(obj.sql, lexer)
    elements = None if tokens is None else _elements(tokens)
    found = (_foreign_key(element) for element in elements or [])
    return [(parent, columns) for fk in found if fk is not None
            for _, _, parent, columns in [fk] if parent is not None]


def _foreign_key(element: _Element) -> tuple[bool, list[str], str | None, list[str]] | None:
    """A foreign-key element of the definition: whether it is named (``CONSTRAINT c FOREIGN
    KEY``, as SHOW CREATE TABLE writes it), its columns, the referenced table and columns;
    ``None`` for another element."""
    words = [t.text.upper() for t in element.tokens]
    if "FOREIGN" not in words:
        return None
    at = words.index("FOREIGN")
    named = words[0] == "CONSTRAINT" and at == 2 and words[3:4] == ["KEY"]
    parent: str | None = None
    referenced: list[str] = []
    if "REFERENCES" in words:
        ref = words.index("REFERENCES") + 1
        if ref < len(words) and element.tokens[ref].text.startswith("`"):
            parent = _name(element.tokens[ref].text)
            referenced = _columns(element.tokens, ref + 1)
    return named, _columns(element.tokens, at + 2), parent, referenced
