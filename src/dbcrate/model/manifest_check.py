"""The manifest's fields, checked by type and range before any of them is used.

A manifest comes from the archive, so every value in it is hostile until checked: a column
``length`` of ``10**30`` must be refused when the manifest is read, not crash the preflight of
a restore three modules later. :func:`check_manifest` walks the parsed JSON against
:data:`MANIFEST`, a declarative description of docs/FORMAT.md's tables (type, range, closed
lists, required or optional), and raises :class:`ManifestFieldError` naming the first bad
field by its path, e.g. ``tables[3].schema.columns[1].type.length: 10**30 is out of range
0..2**31-1``. The dataclasses' ``from_dict`` then only check what relates fields to each other
(names that must be columns, a table's name equal to its schema's).

Rules that hold everywhere: integers are JSON integers (never ``true``, ``1.0`` or ``"1"``),
booleans are JSON ``true``/``false`` (never ``0``/``1`` or ``"yes"``), names are non-empty and
hold no NUL, counts and sizes are in ``0..2**63-1``, type parameters in ``0..2**31-1`` (the
largest any engine accepts). Keys the reader does not know are ignored (docs/FORMAT.md,
"Compatibility"). Where the format says a reader ignores a value of another type (a column
``default`` that is not an object, a non-string ``source.database``, a non-string table
option), it is accepted and dropped, as documented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbcrate.model.chunks import MEMBER_NAME
from dbcrate.model.logical import KINDS

#: counts and sizes (rows, bytes, files): what a signed 64-bit integer holds
MAX_COUNT = 2**63 - 1
#: string lengths, decimal precision and scale: the largest any engine accepts (a 32-bit
#: signed type modifier); an engine that accepts less refuses it in the restore's preflight
MAX_TYPE_PARAMETER = 2**31 - 1
#: the identity / sequence / AUTO_INCREMENT value: int64 on PostgreSQL and SQLite, unsigned
#: 64-bit on MariaDB
NEXT_VALUE_RANGE = (-(2**63), 2**64 - 1)

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
FORMAT_NAME = re.compile(r"^[a-z0-9]{1,16}$")
FK_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION")


class ManifestFieldError(ValueError):
    """A manifest field of the wrong type or out of range; ``path`` names it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '(top level)'}: {problem}")
        self.path = path
        self.problem = problem


def show(value: Any) -> str:
    """A short rendering of a hostile value for an error message (never a megabyte of it)."""
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int):
        return _show_int(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"an object of {len(value)} key(s)"
    return type(value).__name__


def _show_int(value: int) -> str:
    sign, n = ("-" if value < 0 else ""), abs(value)
    if n < 10**6:
        return str(value)
    for base in (2, 10):  # 2**63, 2**31-1, 10**30 read better than their digits
        for exponent in range(2, 256):
            power = base**exponent
            if power > n + 1:
                break
            if n == power:
                return f"{sign}{base}**{exponent}"
            if n == power - 1:
                return f"{sign}{base}**{exponent}-1"
    digits = len(str(n))  # n < 10**4300: json.loads refuses longer integer literals
    return str(value) if digits <= 20 else f"a {digits}-digit integer"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


# ------------------------------------------------------------------------------ field kinds
class Spec:
    """What one field may hold. ``check`` raises :class:`ManifestFieldError` at ``path``."""

    #: a null is accepted (the reader then uses the field's default)
    nullable: bool = False

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Spec):
    """A string; ``name``: non-empty and without NUL; ``choices``/``pattern``: a closed set."""

    name: bool = False
    choices: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    fold: bool = False  # choices compared case-insensitively
    nullable: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise ManifestFieldError(path, f"must be a string, not {_type_name(value)}")
        if self.name and (not value or "\x00" in value):
            raise ManifestFieldError(path, f"{show(value)} is not a name (empty, or holds a NUL)")
        key = value.upper() if self.fold else value
        if self.choices is not None and key not in self.choices:
            raise ManifestFieldError(path, f"{show(value)} is not one of "
                                           f"{', '.join(map(repr, self.choices))}")
        if self.pattern is not None and not self.pattern.match(value):
            raise ManifestFieldError(path, f"{show(value)} does not match "
                                           f"{self.pattern.pattern}")


@dataclass(frozen=True)
class Integer(Spec):
    """A JSON integer (not a boolean, not a float) in ``lo..hi``."""

    lo: int = 0
    hi: int = MAX_COUNT
    nullable: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ManifestFieldError(path, f"must be an integer, not {_type_name(value)}")
        if not self.lo <= value <= self.hi:
            raise ManifestFieldError(path, f"{show(value)} is out of range "
                                           f"{show(self.lo)}..{show(self.hi)}")


@dataclass(frozen=True)
class Flag(Spec):
    """A JSON ``true`` or ``false``."""

    nullable: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise ManifestFieldError(path, f"must be true or false, not {show(value)}")


@dataclass(frozen=True)
class Items(Spec):
    """A list whose every item is ``item``."""

    item: Spec
    nullable: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise ManifestFieldError(path, f"must be a list, not {_type_name(value)}")
        for i, item in enumerate(value):
            _check_value(self.item, item, f"{path}[{i}]")


@dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = False


@dataclass(frozen=True)
class Obj(Spec):
    """An object with the named fields; other keys are ignored (forward compatibility)."""

    fields: dict[str, Field]
    nullable: bool = False

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ManifestFieldError(path, f"must be an object, not {_type_name(value)}")
        for key, field in self.fields.items():
            where = f"{path}.{key}" if path else key
            if key not in value:
                if field.required:
                    raise ManifestFieldError(where, "is missing")
                continue
            _check_value(field.spec, value[key], where)


@dataclass(frozen=True)
class IgnoredUnless(Spec):
    """The format says a value of another type is ignored by the reader: accepted (and
    dropped by ``from_dict``); a value of the type ``inner`` checks is checked in full."""

    inner: Spec
    accepts: Callable[[Any], bool]
    nullable: bool = True

    def check(self, value: Any, path: str) -> None:
        if self.accepts(value):
            self.inner.check(value, path)


@dataclass(frozen=True)
class Anything(Spec):
    """Documented as informational or ignored whatever its type."""

    nullable: bool = True

    def check(self, value: Any, path: str) -> None:
        return None


def _check_value(spec: Spec, value: Any, path: str) -> None:
    if value is None:
        if not spec.nullable:
            raise ManifestFieldError(path, "must not be null")
        return
    spec.check(value, path)


def _fields(**fields: Spec | Field) -> dict[str, Field]:
    return {k: v if isinstance(v, Field) else Field(v) for k, v in fields.items()}


def _required(spec: Spec) -> Field:
    return Field(spec, required=True)


# --------------------------------------------------------------------- the manifest's fields
NAME = Text(name=True)
NAMES = Items(NAME)
COUNT = Integer()
OPTIONAL_COUNT = Integer(nullable=True)
OPTIONAL_TEXT = Text(nullable=True)
TYPE_PARAMETER = Integer(0, MAX_TYPE_PARAMETER, nullable=True)
SHA256 = Text(pattern=SHA256_HEX)

LOGICAL_TYPE = Obj(_fields(
    kind=_required(Text(choices=tuple(KINDS))),
    length=TYPE_PARAMETER,
    precision=TYPE_PARAMETER,
    scale=TYPE_PARAMETER,
    fixed=Flag(),
))

DEFAULT = Obj(_fields(
    kind=_required(Text(choices=("literal", "current_timestamp", "expression"))),
    value=OPTIONAL_TEXT,
    sql=OPTIONAL_TEXT,
))

COLUMN = Obj(_fields(
    name=_required(NAME),
    type=_required(LOGICAL_TYPE),
    engine_type=_required(Text()),
    nullable=Flag(),
    default=IgnoredUnless(DEFAULT, lambda v: isinstance(v, dict)),
    autoincrement=Flag(),
    identity=Text(choices=("always", "by default"), nullable=True),
    comment=OPTIONAL_TEXT,
))

INDEX = Obj(_fields(
    name=Text(name=True, nullable=True),
    columns=NAMES,
    unique=Flag(),
    constraint=Flag(),
))

FOREIGN_KEY = Obj(_fields(
    name=Text(name=True, nullable=True),
    columns=NAMES,
    ref_table=_required(NAME),
    ref_columns=NAMES,
    on_delete=Text(choices=FK_ACTIONS, fold=True, nullable=True),
    on_update=Text(choices=FK_ACTIONS, fold=True, nullable=True),
    deferrable=Flag(),
    initially_deferred=Flag(),
    ref_schema=Text(name=True, nullable=True),
))

#: table options: values that are strings or integers are kept (as strings), others dropped
OPTIONS = Obj({}, nullable=True)

TABLE_SCHEMA = Obj(_fields(
    name=_required(NAME),
    columns=_required(Items(COLUMN)),
    primary_key=NAMES,
    primary_key_name=Text(name=True, nullable=True),
    indexes=Items(INDEX),
    foreign_keys=Items(FOREIGN_KEY),
    next_value=Integer(*NEXT_VALUE_RANGE, nullable=True),
    comment=OPTIONAL_TEXT,
    skipped=Items(Text()),
    options=OPTIONS,
    schema=Text(name=True, nullable=True),
))

CHUNK = Obj(_fields(
    member=_required(Text(pattern=MEMBER_NAME)),
    rows=_required(COUNT),
    size=_required(COUNT),
    sha256=_required(SHA256),
    offset=COUNT,
))

TABLE_ENTRY = Obj(_fields(
    name=_required(NAME),
    rows=OPTIONAL_COUNT,
    bytes=OPTIONAL_COUNT,
    status=Text(choices=("ok", "failed")),
    error=OPTIONAL_TEXT,
    schema=_required(TABLE_SCHEMA),
    chunks=Items(CHUNK),
))

SOURCE = Obj(_fields(
    engine=Text(),
    server_version=Text(),
    url=Text(),
    database=Anything(),  # a non-string database or driver is read as null
    driver=Anything(),
), nullable=True)

STORAGE = Obj(_fields(
    roots=Items(Obj(_fields(name=_required(NAME), files=COUNT, bytes=COUNT,
                            directories=COUNT))),
    files=OPTIONAL_COUNT,
    bytes=OPTIONAL_COUNT,
    exclude=Items(Text()),
    index=_required(Obj(_fields(member=_required(Text()), size=_required(COUNT),
                                sha256=_required(SHA256), entries=OPTIONAL_COUNT))),
    packs=Items(Obj(_fields(member=_required(Text()), size=_required(COUNT),
                            sha256=_required(SHA256)))),
    file_columns=Items(Obj(_fields(table=_required(NAME), column=_required(NAME),
                                   root=_required(NAME)))),
    file_check=IgnoredUnless(Obj(_fields(
        missing=OPTIONAL_COUNT,
        orphans=OPTIONAL_COUNT,
        missing_examples=Items(Text()),
        orphan_examples=Items(Text()),
    )), lambda v: isinstance(v, dict)),
))

#: the native schema (format version 3): the engine's own definitions, checked here by type
#: only; the SQL is checked by the target dialect's guard before anything runs
NATIVE = Obj(_fields(
    engine=_required(Text(name=True)),
    server_version=_required(Text()),
    tool=Text(nullable=True),
    settings=Anything(),
    objects=_required(Items(Obj(_fields(
        kind=_required(Text(name=True)),
        name=_required(Text(name=True)),
        section=_required(Text(choices=("pre-data", "data", "post-data"))),
        sql=_required(Text()),
        schema=Text(name=True, nullable=True),
        table=Text(name=True, nullable=True),
        owner=Text(nullable=True),
        session=Anything(),  # checked word by word by the dialect that sets it
    )))),
))

MANIFEST = Obj(_fields(
    dbcrate_version=Text(nullable=True),
    created_at=Text(nullable=True),
    complete=Flag(),
    schema_version=OPTIONAL_TEXT,
    source=SOURCE,
    data_format=Text(pattern=FORMAT_NAME),
    tables=_required(Items(TABLE_ENTRY)),
    storage=STORAGE,
    native=NATIVE,
))


def check_manifest(data: dict[str, Any]) -> None:
    """Check every field of a parsed manifest (``format`` and ``format_version`` are checked
    before, by the caller) and the totals that add fields up.

    :raises ManifestFieldError: the first bad field, by its path (``tables[0].chunks[2].rows``).
    """
    MANIFEST.check(data, "")
    total_rows = total_bytes = 0
    for i, table in enumerate(data["tables"]):
        chunks = table.get("chunks") or []
        rows, size = sum(c["rows"] for c in chunks), sum(c["size"] for c in chunks)
        for label, value in (("rows", rows), ("size", size)):
            if value > MAX_COUNT:  # each chunk is in range, their sum need not be
                raise ManifestFieldError(f"tables[{i}].chunks", f"the chunks' {label} add up "
                                                                f"to {show(value)}, more than "
                                                                f"{show(MAX_COUNT)}")
        total_rows, total_bytes = total_rows + rows, total_bytes + size
    if total_rows > MAX_COUNT or total_bytes > MAX_COUNT:
        raise ManifestFieldError("tables", f"the tables' rows or bytes add up to more than "
                                           f"{show(MAX_COUNT)}")
