"""Check that two SQLite databases hold the same tables and rows (an independent check that
uses only the standard library's sqlite3, not dbcrate)."""

from __future__ import annotations

import hashlib
import sqlite3
import sys


def digest(path: str) -> dict[str, tuple[int, str]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    out = {}
    for name in sorted(names):
        quoted = '"' + name.replace('"', '""') + '"'
        rows = sorted(repr(r) for r in con.execute(f"SELECT * FROM {quoted}"))
        out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
    con.close()
    return out


def main() -> int:
    a, b = digest(sys.argv[1]), digest(sys.argv[2])
    for name in sorted(set(a) | set(b)):
        mark = "ok" if a.get(name) == b.get(name) else "DIFFERENT"
        print(f"{mark:9} {name:15} {a.get(name)}  {b.get(name)}")
    same = a == b
    print("the copy is identical to the original" if same else "the copy differs")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
