"""MariaDB's native restore builds a table's plain secondary keys after its rows
(dialects/mysql_deferred_keys.py): which keys are split off, how the text is cut, and the
guard's check of the ``ALTER TABLE ... ADD KEY`` it makes. No server: the round trip on
MariaDB is in test_native_restore_mysql.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbcrate.dialects.mysql_deferred_keys import split_table
from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.dialects.native_mysql import MysqlNative, _lexers, check_object
from dbcrate.model.native import NativeObject

CITY = """CREATE TABLE `city` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `country_id` int(10) unsigned NOT NULL,
  `name` varchar(50) DEFAULT NULL COMMENT 'a, b (c)',
  `doc` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `by_country` (`country_id`),
  KEY `by_name` (`name`(10),`id`),
  KEY `by_doc` (`doc`(20)) COMMENT 'x, KEY `y` (`z`)',
  FULLTEXT KEY `ft` (`doc`),
  CONSTRAINT `fk_country` FOREIGN KEY (`country_id`) REFERENCES `country` (`id`) ON DELETE CASCADE,
  CONSTRAINT `c1` CHECK (char_length(`name`) > 0)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4;"""


def _table(sql: str, name: str = "city") -> NativeObject:
    return NativeObject("TABLE", name, "pre-data", sql)


def _split(sql: str, name: str = "city", referenced: list[list[str]] | None = None
           ) -> tuple[NativeObject, NativeObject | None]:
    return split_table(_table(sql, name), _lexers, check_object, referenced or [])


def test_plain_keys_and_their_foreign_key_move_after_the_rows() -> None:
    table, keys = _split(CITY)
    assert keys is not None and keys.kind == "KEYS" and keys.table == "city"
    assert keys.section == "post-data"
    assert keys.sql == (
        "ALTER TABLE `city` ADD KEY `by_country` (`country_id`), ADD KEY `by_name` "
        "(`name`(10),`id`), ADD KEY `by_doc` (`doc`(20)) COMMENT 'x, KEY `y` (`z`)', ADD "
        "CONSTRAINT `fk_country` FOREIGN KEY (`country_id`) REFERENCES `country` (`id`) ON "
        "DELETE CASCADE;")
    assert table.sql == """CREATE TABLE `city` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `country_id` int(10) unsigned NOT NULL,
  `name` varchar(50) DEFAULT NULL COMMENT 'a, b (c)',
  `doc` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  FULLTEXT KEY `ft` (`doc`),
  CONSTRAINT `c1` CHECK (char_length(`name`) > 0)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4;"""


def test_a_key_another_table_references_stays_with_the_keys_before_it() -> None:
    _, keys = _split(CITY, referenced=[["name"]])
    assert keys is not None and "by_name" not in keys.sql and "by_country" not in keys.sql
    assert "fk_country" not in keys.sql  # (its key stays: so does it)
    assert keys.sql == ("ALTER TABLE `city` ADD KEY `by_doc` (`doc`(20)) COMMENT "
                        "'x, KEY `y` (`z`)';")


def test_a_foreign_key_on_a_stored_generated_columns_base_stays_with_its_key() -> None:
    sql = CITY.replace("  `doc` text DEFAULT NULL,\n", "  `doc` text DEFAULT NULL,\n  `twice` "
                       "int(11) GENERATED ALWAYS AS (`country_id` * 2) STORED,\n")
    table, keys = _split(sql)
    assert keys is not None and "FOREIGN" not in keys.sql and "by_country" not in keys.sql
    assert "KEY `by_country`" in table.sql and "CONSTRAINT `fk_country`" in table.sql
    assert "`by_name`" in keys.sql and "`by_doc`" in keys.sql


@pytest.mark.parametrize("last", [
    "UNIQUE KEY `u` (`name`)", "SPATIAL KEY `sp` (`doc`)", "KEY `by_id` (`id`,`name`)"])
def test_keys_before_one_that_stays_stay(last: str) -> None:
    """A key that stays (unique, spatial, one on the AUTO_INCREMENT column) keeps the keys
    listed before it: added later, they would be listed after it."""
    sql = CITY.replace("  FULLTEXT KEY `ft` (`doc`),\n", f"  {last},\n")
    table, keys = _split(sql)
    assert keys is None and table.sql == sql


@pytest.mark.parametrize("sql", [
    CITY.replace("`name` varchar(50)", "/* note */ `name` varchar(50)"),  # a comment
    "CREATE TABLE `city` LIKE `town`;",
    "CREATE TABLE `city` (`id` int PRIMARY KEY);"])
def test_nothing_to_split(sql: str) -> None:
    table, keys = _split(sql)
    assert keys is None and table.sql == sql


def test_readings_that_cut_differently_keep_the_keys() -> None:
    """With backslash escapes the comment ends at the second quote; without them at the first,
    and the text after it reads otherwise: the split is made only when every reading the guard
    checks cuts the same."""
    sql = CITY.replace("COMMENT 'a, b (c)'", "COMMENT 'a\\', KEY `k` (`id`), `q` int COMMENT '")
    cuts = {len(lexer.findall(sql)) for lexer in _lexers(_table(sql))}
    assert len(cuts) > 1  # (the readings do differ here)
    table, keys = split_table(_table(sql), _lexers, lambda obj: None)
    assert keys is None and table.sql == sql


def test_the_schema_gets_the_keys_before_its_post_data() -> None:
    trigger = NativeObject("TRIGGER", "t1", "post-data", "CREATE TRIGGER `t1` BEFORE INSERT ON "
                           "`city` FOR EACH ROW SET NEW.name = 'x';", table="city")
    other = _table("CREATE TABLE `town` (\n  `id` int(11) NOT NULL,\n  `name` varchar(9),\n"
                   "  PRIMARY KEY (`id`),\n  KEY `by_name` (`name`)\n);", "town")
    out = MysqlNative().for_restore([_table(CITY), trigger], [_table(CITY), other, trigger])
    assert [o.kind for o in out] == ["TABLE", "KEYS", "TRIGGER"]
    # a table that is not restored still counts: its foreign key references city's by_name
    child = _table("CREATE TABLE `kid` (\n  `id` int(11) NOT NULL,\n  `n` varchar(50),\n  KEY "
                   "`k` (`n`),\n  CONSTRAINT `f` FOREIGN KEY (`n`) REFERENCES `city` (`name`)\n"
                   ");", "kid")
    out = MysqlNative().for_restore([_table(CITY)], [_table(CITY), child])
    assert [o.sql for o in out if o.kind == "KEYS"] == [
        "ALTER TABLE `city` ADD KEY `by_doc` (`doc`(20)) COMMENT 'x, KEY `y` (`z`)';"]


@pytest.mark.parametrize(("sql", "table"), [
    ("ALTER TABLE `city` ADD KEY `a` (`id`), DROP COLUMN `name`;", "city"),
    ("ALTER TABLE `city` ADD COLUMN `z` int;", "city"),
    ("ALTER TABLE `city` ADD KEY `a` (`id`); DROP TABLE `city`;", "city"),
    ("ALTER TABLE `town` ADD KEY `a` (`id`);", "city"),
    ("ALTER TABLE `city` ADD KEY `a` (`id`);", None),
    ("ALTER TABLE `city` ADD KEY `a` ((load_file('/etc/passwd')));", "city"),
    ("ALTER TABLE `city` ADD KEY `a` (`id`), ALGORITHM=COPY;", "city"),
    ("ALTER TABLE `city` ADD CONSTRAINT `c` CHECK (1);", "city"),
    ("ALTER TABLE `city` ADD KEY `a` (`id`) /*! , DROP COLUMN `name` */;", "city"),
])
def test_the_guard_refuses_keys_that_are_more(sql: str, table: str | None) -> None:
    with pytest.raises(UnsafeNativeSql):
        check_object(NativeObject("KEYS", "city", "post-data", sql, table=table))


_PLAIN = st.lists(st.tuples(st.sampled_from(["KEY", "INDEX", "UNIQUE KEY", "FULLTEXT KEY"]),
                            st.lists(st.sampled_from(["a", "b", "c", "id"]), min_size=1,
                                     max_size=3, unique=True)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(keys=_PLAIN, fk=st.sampled_from([None, "a", "b"]), referenced=st.sampled_from([[], ["c"]]))
def test_the_split_puts_back_what_it_took(keys: list[tuple[str, list[str]]], fk: str | None,
                                          referenced: list[str]) -> None:
    """Whatever the keys: the deferred keys are the last plain keys (FULLTEXT ones aside), in
    their order, up to one that starts with the AUTO_INCREMENT column or a referenced column;
    the foreign key moves, after them, exactly when one of them serves it; the table's text
    and the ALTER's clauses hold exactly the definition's elements, and both pass the guard."""
    elements = ["  `id` int(11) NOT NULL AUTO_INCREMENT", "  `a` int(11)", "  `b` int(11)",
                "  `c` varchar(9) COMMENT 'x, y'", "  PRIMARY KEY (`id`)"]
    elements += [f"  {kind} `k{i}` ({','.join(f'`{c}`' for c in cols)})"
                 for i, (kind, cols) in enumerate(keys)]
    if fk is not None:
        elements.append(f"  CONSTRAINT `f` FOREIGN KEY (`{fk}`) REFERENCES `p` (`id`)")
    sql = "CREATE TABLE `t` (\n" + ",\n".join(elements) + "\n) ENGINE=InnoDB;"
    expected: list[str] = []  # the trailing plain keys that may move, FULLTEXT ones aside
    for i, (kind, cols) in reversed(list(enumerate(keys))):
        if kind == "FULLTEXT KEY":
            continue
        if kind not in ("KEY", "INDEX") or cols[0] == "id" or [cols[0]] == referenced:
            break
        expected.insert(0, elements[5 + i])
    fk_moves = fk is not None and any(e.split("(`")[1].startswith(f"{fk}`") for e in expected)
    table, moved = split_table(_table(sql, "t"), _lexers, check_object,
                               [referenced] if referenced else [])
    if not expected:
        assert moved is None and table.sql == sql
        return
    assert moved is not None
    check_object(table)
    check_object(moved)
    clauses = moved.sql.removeprefix("ALTER TABLE `t` ADD ").removesuffix(";").split(", ADD ")
    taken = ["  " + c for c in clauses]
    assert taken == expected + ([elements[-1]] if fk_moves else [])
    kept = [e for e in elements if e not in taken]
    assert table.sql == "CREATE TABLE `t` (\n" + ",\n".join(kept) + "\n) ENGINE=InnoDB;"
