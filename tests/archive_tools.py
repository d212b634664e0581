"""Crafting archives for the security and fuzz tests: read every member of an archive, change
members or the manifest, and write a tar again, keeping the manifest's sizes and SHA-256 and the
manifest digest consistent when asked to (so that a crafted input reaches the check it targets
instead of failing at the first checksum)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "dbcrate-archive.json"
MANIFEST = "manifest.json"
DIGEST = "manifest.sha256"


@dataclass
class Member:
    name: str
    data: bytes


def read_members(path: Path) -> list[Member]:
    out = []
    with tarfile.open(path, "r:") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            assert handle is not None
            out.append(Member(info.name, handle.read()))
    return out


def tar_bytes(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.size = len(m.data)
            info.mode = 0o600
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(m.data))
    return buf.getvalue()


def manifest_of(members: list[Member]) -> dict[str, Any]:
    return json.loads(next(m.data for m in members if m.name == MANIFEST))


def with_manifest_bytes(members: list[Member], raw: bytes) -> list[Member]:
    """Replace manifest.json by ``raw`` and recompute manifest.sha256."""
    digest = (hashlib.sha256(raw).hexdigest() + "\n").encode()
    out = []
    for m in members:
        if m.name == MANIFEST:
            out.append(Member(m.name, raw))
        elif m.name == DIGEST:
            out.append(Member(m.name, digest))
        else:
            out.append(m)
    return out


def with_manifest(members: list[Member], doc: Any) -> list[Member]:
    return with_manifest_bytes(members, json.dumps(doc, indent=1, ensure_ascii=False).encode())


def with_member(members: list[Member], name: str, data: bytes) -> list[Member]:
    """Replace a data member's bytes and record the new size and SHA-256 in the manifest."""
    doc = manifest_of(members)
    for table in doc["tables"]:
        for chunk in table["chunks"]:
            if chunk["member"] == name:
                chunk["size"] = len(data)
                chunk["sha256"] = hashlib.sha256(data).hexdigest()
                table["bytes"] = sum(c["size"] for c in table["chunks"])
    replaced = [Member(m.name, data) if m.name == name else m for m in members]
    return with_manifest(replaced, doc)


def data_members(members: list[Member]) -> list[str]:
    return [m.name for m in members if m.name.startswith("data/")]


def with_chunk(members: list[Member], name: str, data: bytes, rows: int) -> list[Member]:
    """Replace a data member's bytes and row count, keeping the manifest consistent (size,
    SHA-256, the chunk's and the table's rows and bytes, the manifest digest): a crafted member
    then reaches the decoder."""
    doc = manifest_of(with_member(members, name, data))
    for table in doc["tables"]:
        for chunk in table["chunks"]:
            if chunk["member"] == name:
                chunk["rows"] = rows
        table["rows"] = sum(c["rows"] for c in table["chunks"])
    replaced = [Member(m.name, data) if m.name == name else m for m in members]
    return with_manifest(replaced, doc)


#: a node of a JSON document: keys and list positions from the root
JsonPath = tuple[str | int, ...]


def json_paths(doc: Any, at: JsonPath = ()) -> list[JsonPath]:
    """Every node of a JSON document but the root, containers before their items."""
    out: list[JsonPath] = [at] if at else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += json_paths(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += json_paths(value, (*at, i))
    return out


def get_at(doc: Any, path: JsonPath) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def render(path: JsonPath) -> str:
    """A path as the validator names it: ``tables[1].schema.columns[1].type.length``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def mutate(doc: Any, path: JsonPath, how: str, value: Any = None) -> Any:
    """Apply one mutation at ``path`` (``set``, ``delete``, ``wrap_list``, ``wrap_object``,
    ``add_key``, ``append``); returns the document."""
    parent, key = get_at(doc, path[:-1]), path[-1]
    if how == "set":
        parent[key] = value
    elif how == "delete":
        del parent[key]
    elif how == "wrap_list":
        parent[key] = [parent[key]]
    elif how == "wrap_object":
        parent[key] = {"value": parent[key]}
    elif how == "add_key" and isinstance(parent[key], dict):
        parent[key]["zz_unknown"] = value
    elif how == "append" and isinstance(parent[key], list):
        parent[key].append(value)
    return doc
