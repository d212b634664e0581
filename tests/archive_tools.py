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
