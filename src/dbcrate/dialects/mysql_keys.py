"""How many bytes an InnoDB index key takes, and a narrower type that makes one fit.

InnoDB refuses an index whose columns take more than 3,072 bytes (error 1071 "Specified key
was too long", with the DYNAMIC row format: the default since MariaDB 10.2 and MySQL 5.7).
A character column counts its declared length times the widest character of its character
set: 4 bytes in utf8mb4, the character set dbcrate creates tables with. So a primary key of
an integer and a ``VARCHAR(768)`` (what a PostgreSQL ``varchar`` without a length becomes in
a key) asks for 4 + 3,072 bytes and is refused; these functions let the restore see that
before it creates anything.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: InnoDB's limit for one index key (all its columns), in bytes
MAX_KEY_BYTES = 3072

#: bytes per character of the character sets a column may be given (the widest character)
_CHARSET_BYTES = {"utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "latin1": 1, "ascii": 1, "binary": 1}

#: the key bytes of fixed-size types, most specific class first (isinstance order)
_FIXED_BYTES: tuple[tuple[type[Any], int], ...] = (
    (mysql.TINYINT, 1), (mysql.SMALLINT, 2), (mysql.MEDIUMINT, 3), (mysql.BIGINT, 8),
    (sa.Boolean, 1), (sa.Integer, 4), (mysql.DOUBLE, 8), (sa.Float, 4), (mysql.YEAR, 1),
    (sa.DateTime, 8), (sa.Date, 3), (sa.Time, 6),
)


def key_bytes(sa_type: Any) -> int:
    """The bytes ``sa_type`` takes in an InnoDB key; 0 for a type whose size is not known
    here (it is then not counted: the engine still refuses a key that does not fit)."""
    if isinstance(sa_type, sa.String) and sa_type.length is not None:
        charset = getattr(sa_type, "charset", None) or "utf8mb4"
        return int(sa_type.length) * _CHARSET_BYTES.get(charset, 4)
    if isinstance(sa_type, sa.types._Binary) and sa_type.length is not None:
        return int(sa_type.length)
    if isinstance(sa_type, sa.Numeric) and not isinstance(sa_type, sa.Float):
        precision = sa_type.precision or 10
        # 4 bytes per 9 digits, on each side of the point (about precision / 2 + 1)
        return precision // 2 + 1
    for cls, size in _FIXED_BYTES:
        if isinstance(sa_type, cls):
            return size
    return 0


def narrowed(sa_type: Any, max_bytes: int) -> Any | None:
    """``sa_type`` with a length that takes at most ``max_bytes`` in a key, or None when it is
    not a character or binary type with a length (or ``max_bytes`` leaves no room)."""
    if isinstance(sa_type, sa.String) and sa_type.length is not None:
        charset = getattr(sa_type, "charset", None) or "utf8mb4"
        chars = max_bytes // _CHARSET_BYTES.get(charset, 4)
        if chars < 1:
            return None
        kind = mysql.CHAR if isinstance(sa_type, sa.CHAR) else mysql.VARCHAR
        return kind(chars, charset=getattr(sa_type, "charset", None),
                    collation=getattr(sa_type, "collation", None))
    if isinstance(sa_type, sa.types._Binary) and sa_type.length is not None and max_bytes > 0:
        return (mysql.BINARY if isinstance(sa_type, sa.BINARY) else mysql.VARBINARY)(max_bytes)
    return None
