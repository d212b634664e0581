"""Restoring an archive's storages where *this* project keeps them.

An archive names each storage by its path relative to the dumping project's base path
(``media``, ``var/media``); dbcrate's own restore puts each one at ``DIR/<its name>``. A Django
project's directories need not have those names: the media storage must land in this project's
``MEDIA_ROOT`` whatever the last component of either project's ``MEDIA_ROOT``, and the other
storages in the directories ``DBCRATE["storages"]`` gives. :func:`place` decides where each
archived storage goes; :func:`restore_placed` restores the tables and the storages there with
dbcrate's own checked extraction (same preflight, policies and confinement), one storage at a
time through a view of the archive in which that storage bears its destination's name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings

from dbcrate.containers.archive import Archive
from dbcrate.containers.tar import ArchiveReader
from dbcrate.contrib.django import config
from dbcrate.errors import UsageError
from dbcrate.options import RestoreOptions
from dbcrate.progress import drain
from dbcrate.restore.run import (
    RestoreReport,
    check_files,  # the same check as a core restore
    restore,
)
from dbcrate.storages import restore as storage_restore
from dbcrate.storages.file_check import describe as describe_file_check
from dbcrate.storages.index import (
    INDEX_MEMBER,
    IndexWriter,
    StorageEntry,
    StorageManifest,
    StorageRoot,
)


@dataclass(frozen=True)
class Placement:
    """An archived storage (``root``, its name in the archive) and the directory it becomes."""

    root: str
    target: Path
    why: str  # the setting that chose the target, for messages

    @property
    def destination(self) -> Path:
        """The directory handed to the extraction: the target's parent."""
        return self.target.parent


def media_root() -> Path | None:
    """This project's ``MEDIA_ROOT``, resolved (``None`` when it is not set)."""
    media = getattr(settings, "MEDIA_ROOT", "") or ""
    return Path(str(media)).resolve() if media else None


def configured_storages() -> list[tuple[Path, str]]:
    """This project's storage directories (resolved) with the names a dump of it gives them:
    ``DBCRATE["storages"]``, else ``[MEDIA_ROOT]`` (existing or not: a restore creates it)."""
    configured = config.options().get("storages")
    if configured is not None:
        paths = [Path(str(p)).resolve() for p in configured]
    else:
        media = media_root()
        paths = [media] if media is not None else []
    base = config.storages_basepath([str(p) for p in paths])
    named = []
    for path in paths:
        try:  # as dbcrate.storages.dump.resolve_storages names them
            name = path.relative_to(Path(str(base)).resolve()).as_posix()
        except ValueError:
            name = path.name
        named.append((path, name))
    return named


def place(storage: StorageManifest) -> list[Placement]:
    """Where each archived storage goes in this project.

    1. The archive's media storage - the root its file columns (Django's ``FileField`` columns)
       are relative to - goes to ``MEDIA_ROOT``.
    2. A storage with the name a configured storage has in this project goes to that storage.
    3. A single storage left over goes to ``MEDIA_ROOT`` when nothing else went there (an
       archive of the default ``[MEDIA_ROOT]`` whose tables have no ``FileField``).

    Returns ``[]`` when this project has no ``MEDIA_ROOT`` and no configured storage.

    :raises UsageError: an archived storage with no place here, a target that is the root of
        the filesystem, or two storages that would share or nest directories; nothing has been
        written then.
    """
    media = media_root()
    configured = configured_storages()
    if media is None and not configured:
        return []
    roots = [r.name for r in storage.roots]
    placed: dict[str, Placement] = {}
    media_roots = {c.root for c in storage.file_columns}
    if media is not None and len(media_roots) == 1 and next(iter(media_roots)) in roots:
        root = next(iter(media_roots))
        placed[root] = Placement(root, media, "MEDIA_ROOT (its FileField files)")
    claimed = {p.target for p in placed.values()}
    for path, name in configured:
        if name in roots and name not in placed and path not in claimed:
            why = "MEDIA_ROOT" if path == media else f"DBCRATE['storages'] ({path})"
            placed[name] = Placement(name, path, why)
            claimed.add(path)
    left = [r for r in roots if r not in placed]
    if len(left) == 1 and media is not None and media not in claimed:
        placed[left[0]] = Placement(left[0], media, "MEDIA_ROOT (the only storage)")
        left = []
    if left:
        raise UsageError(
            "the archive's storage(s) " + ", ".join(repr(r) for r in left) + " have no place in "
            "this project (MEDIA_ROOT and DBCRATE['storages'] name other directories); nothing "
            "was restored",
            hint="add the directories to DBCRATE['storages'], give --storages-to DIR (each "
            "storage as DIR/<its name>), or --no-storages")
    result = [placed[r] for r in roots]
    _check_targets(result)
    return result


def _check_targets(placements: list[Placement]) -> None:
    """Targets must be distinct, not nested, and not ``/`` (whose parent is itself)."""
    for p in placements:
        if p.target == p.target.parent:
            raise UsageError(f"the storage {p.root!r} would be restored into {p.target}, "
                             "the root of the filesystem", hint=f"check {p.why}")
    for a in placements:
        for b in placements:
            if a is not b and (a.target == b.target or a.target in b.target.parents):
                raise UsageError(
                    f"the storages {a.root!r} and {b.root!r} would be restored into "
                    f"{a.target} and {b.target}, one the same as or inside the other",
                    hint="give each storage its own directory in DBCRATE['storages'], or "
                    "--storages-to DIR")


# ----------------------------------------------------------------------------- the root views
class _RootView:
    """The archive as the extraction sees it for one storage: only that storage, named after
    its target directory (``var/media/a.png`` becomes ``uploads/a.png``).

    The renamed index is a private temp file written from the archive's index entries (each
    validated by dbcrate as it is read); every other member is read from the archive, and
    member checks (``check_member``) go to the archive's real members, each hashed once for all
    views. Order is kept: a common prefix replaced by another keeps paths strictly ordered.
    """

    def __init__(self, reader: ArchiveReader, storage: StorageManifest, placement: Placement,
                 index: str, checked: set[str]) -> None:
        self._reader = reader
        self._checked = checked
        self.placement = placement
        self.display = reader.display
        self._index = index
        source = next(r for r in storage.roots if r.name == placement.root)
        renamed = StorageRoot(placement.target.name, source.files, source.bytes,
                              source.directories)
        self.storage = dataclasses.replace(storage, roots=[renamed], file_columns=[],
                                           file_check=None)
        self._sink: IO[bytes] = open(self._index, "wb")  # closed by finish()
        self._writer = IndexWriter(self._sink)
        self._prefix = tuple(placement.root.split("/"))

    def add(self, parts: tuple[str, ...], entry: StorageEntry) -> bool:
        """Take the entry if it belongs to this view's storage (renamed); else ``False``."""
        if parts[: len(self._prefix)] != self._prefix:
            return False
        path = "/".join((self.placement.target.name, *parts[len(self._prefix):]))
        self._writer.add(dataclasses.replace(entry, path=path))
        return True

    def finish(self) -> None:
        self._writer.close()
        self._sink.close()

    def member_stream(self, name: str) -> IO[bytes]:
        if name == INDEX_MEMBER:
            return open(self._index, "rb")  # the caller closes it
        return self._reader.member_stream(name)

    def check_member(self, name: str, sha256: str) -> None:
        if name not in self._checked:
            self._reader.check_member(name, sha256)
            self._checked.add(name)


@contextlib.contextmanager
def _views(arch: Archive, storage: StorageManifest,
           placements: list[Placement]) -> Iterator[list[_RootView]]:
    """One view per placement, their indexes written in one pass over the archive's index."""
    reader = storage_restore.reader_of(arch)
    checked: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="dbcrate-django-") as directory:
        views = [_RootView(reader, storage, p, os.path.join(directory, f"index-{i}.jsonl.zst"),
                           checked) for i, p in enumerate(placements)]
        try:
            for entry in storage_restore.iter_entries(reader, storage):
                parts = entry.parts
                for view in views:  # roots neither share nor nest: one view takes the entry
                    if view.add(parts, entry):
                        break
        finally:
            for view in views:
                view.finish()
        yield views


# ------------------------------------------------------------------------------------ restore
def restore_placed(arch: Archive, url: str, options: RestoreOptions,
                   placements: list[Placement]) -> RestoreReport:
    """Tables (unless ``no_data``) and storages, each storage into its placement's target.

    As dbcrate's own restore: every storage is preflighted (index, packs and every file
    against their SHA-256; the destination for links, non-directories, differing files under
    the policy, free space) before anything - tables included - is written; storages are
    written after the tables, unless tables failed and ``exit_on_error`` is set, and not at all
    on a dry run. ``report.storages`` sums the storages and lists each under ``"roots"``.
    """
    storage = arch.manifest.storage
    assert storage is not None
    with _views(arch, storage, placements) as views:
        planned = []
        for view in views:
            planned.append(storage_restore.preflight(
                cast(ArchiveReader, view), view.storage, view.placement.destination,
                options.storages_policy, verify=options.verify))
        if options.no_data:
            report = RestoreReport("", [], mode=options.mode)
        else:
            report = restore(arch, url, dataclasses.replace(options, storages_to=None,
                                                            no_storages=True))
        if not options.dry_run and (report.ok or not options.exit_on_error):
            for i, view in enumerate(views):
                planned[i] = drain(storage_restore.extract(
                    cast(ArchiveReader, view), view.storage, view.placement.destination,
                    options.storages_policy, planned[i]))
    report.storages = _summary(placements, [p.to_dict() for p in planned], options)
    if storage.file_columns:
        result = check_files(arch, storage)
        report.storages["file_check"] = result
        report.warnings.extend(describe_file_check(result))
    return report


def _summary(placements: list[Placement], reports: list[dict[str, Any]],
             options: RestoreOptions) -> dict[str, Any]:
    total: dict[str, Any] = {
        "destination": ", ".join(str(p.target) for p in placements),
        "policy": options.storages_policy,
        "roots": [{**r, "name": p.root, "destination": str(p.target), "why": p.why}
                  for p, r in zip(placements, reports)],
    }
    for key in ("files", "written", "unchanged", "bytes_written", "directories"):
        total[key] = sum(int(r.get(key, 0)) for r in reports)
    total["warnings"] = [w for r in reports for w in r.get("warnings", [])]
    return total
