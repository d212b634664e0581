"""Engine type spellings that may be reused verbatim in DDL on the same engine, and the column
type that carries one (checked first, so that an archive can never smuggle SQL into a
``CREATE TABLE``)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.types import UserDefinedType

#: an engine type spelled like this can be reused verbatim in DDL on the same engine; anything
#: else (quotes, semicolons, enum labels ...) falls back to the logical type, so that an archive
#: can never smuggle SQL into a CREATE TABLE. After the type name only these words may follow
#: (a charset or collation name may follow CHARACTER SET / CHARSET / COLLATE).
_TYPE_SHAPE = re.compile(
    r"^[A-Za-z][A-Za-z0-9_]*( [A-Za-z][A-Za-z0-9_]*)*"
    r"( ?\(\s*\d+\s*(,\s*\d+\s*)?\))?"
    r"( [A-Za-z][A-Za-z0-9_]*)*(\[\])*$"
)
_TYPE_WORDS = {
    "WITH", "WITHOUT", "TIME", "ZONE", "PRECISION", "VARYING", "UNSIGNED", "ZEROFILL",
    "CHARACTER", "CHARSET", "SET", "COLLATE", "DOUBLE", "BINARY", "NATIONAL", "LARGE", "OBJECT",
}


class _SafeEngineType:
    """``match(spelling)``: the spelling is a plain type name with its usual modifiers."""

    def match(self, spelling: str) -> bool:
        if not _TYPE_SHAPE.match(spelling):
            return False
        words = re.sub(r"\(.*?\)|\[\]", " ", spelling).split()
        previous = ""
        for word in words[1:]:
            upper = word.upper()
            if previous in ("SET", "CHARSET", "COLLATE") and re.fullmatch(r"[a-z0-9_]+", word):
                previous = ""
                continue
            if upper not in _TYPE_WORDS:
                return False
            previous = upper
        return True


SAFE_ENGINE_TYPE = _SafeEngineType()


class RawType(UserDefinedType):  # type: ignore[type-arg]
    """A column type spelled exactly as the source engine spelled it (validated beforehand)."""

    cache_ok = True

    def __init__(self, spelling: str) -> None:
        if not SAFE_ENGINE_TYPE.match(spelling):
            raise ValueError(f"unsafe type spelling {spelling!r}")
        self.spelling = spelling

    def get_col_spec(self, **kw: Any) -> str:
        return self.spelling
