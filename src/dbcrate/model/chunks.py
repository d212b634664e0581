"""Chunk member names: the one place that formats and parses them.

Every chunk of every container kind is named ``data/tTTTT/cCCCCCC.EXT`` (docs/FORMAT.md):
``TTTT`` the table's 1-based number in manifest order (4 to 8 digits), ``CCCCCC`` the chunk's
0-based index within the table (6 to 9 digits), ``EXT`` the data format's extension (the row
kinds use their own name: ``sqlite``, ``py``). Writers name chunks with :func:`member_name`;
whoever needs the table number and index back uses :func:`parse_member_name`, and manifest
validation uses :data:`MEMBER_NAME` (the same pattern).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: a chunk member name; groups: table number, chunk index, extension
MEMBER_NAME = re.compile(r"^data/t([0-9]{4,8})/c([0-9]{6,9})\.([a-z0-9]{1,16})$")


@dataclass(frozen=True)
class ChunkName:
    """A parsed chunk member name."""

    number: int  #: the table's 1-based number in manifest order
    index: int  #: the chunk's 0-based index within the table
    extension: str  #: the data format's extension (or the row kind's name)


def member_name(number: int, index: int, extension: str) -> str:
    """``data/tTTTT/cCCCCCC.EXT``: chunk ``index`` (0-based) of table ``number`` (1-based)."""
    return f"data/t{number:04d}/c{index:06d}.{extension}"


def parse_member_name(name: str) -> ChunkName | None:
    """The parts of a chunk member name, or ``None`` when ``name`` is no chunk member (a marker,
    a manifest, a storage member, or anything malformed)."""
    match = MEMBER_NAME.match(name)
    if match is None:
        return None
    return ChunkName(int(match.group(1)), int(match.group(2)), match.group(3))
