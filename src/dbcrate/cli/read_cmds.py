"""The commands that read an archive and change nothing: ``ls`` (with ``--against``, a
comparison with a database) and ``verify``. They need no database, except ``ls --against``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import click

from dbcrate.cli import console
from dbcrate.cli.output import tables_text
from dbcrate.cli.params import (
    identity_option,
    json_option,
    keyring_of,
    progress_option,
    traceback_option,
)
from dbcrate.progress import Event, human_bytes

if TYPE_CHECKING:
    from dbcrate.containers.archive import Archive
    from dbcrate.model.manifest import Manifest

# Each command imports what it runs, in its body: ``--help`` loads no archive reader, ``ls``
# no database driver (``ls --against`` excepted).

LS_EPILOG = """
\b
Examples:
  dbcrate ls shop.crate
  dbcrate ls shop.crate --json | jq '.tables[].name'
  dbcrate ls shop.crate -i ~/.config/dbcrate/key.txt      # an encrypted archive
"""

VERIFY_EPILOG = """
\b
Examples:
  dbcrate verify shop.crate
  dbcrate verify shop.crate --json
  dbcrate verify shop.crate                # encrypted, no key: the ciphertext is checked
  dbcrate verify shop.crate -i key.txt     # encrypted: everything is checked
"""


# ------------------------------------------------------------------------------------------ ls
@click.command(name="ls", epilog=LS_EPILOG)
@click.argument("archive")
@click.option("--against", metavar="URL",
              help="Compare with a database: does it have each table, do the columns match?")
@json_option("Print the manifest summary as JSON.")
@identity_option
@traceback_option
def ls(archive: str, against: str | None, as_json: bool, identities: tuple[str, ...]) -> None:
    """List an archive: tables, rows, bytes, when and from what it was made.

    Needs no database, and reads only the manifest (unless --against is given).
    """
    from dbcrate.containers.archive import open_archive
    from dbcrate.stores.objects import is_object_url

    # an archive in a store: the manifest by ranged reads (a prefix is a dump directory)
    if is_object_url(archive) and not archive.endswith("/") and not against:
        from dbcrate.stores.manifest import object_manifest

        manifest = object_manifest(archive)  # (None: sealed, read by its reader)
        if manifest is not None and manifest.storage is None:  # (storages: from their index)
            _show_listing(archive, manifest, None, as_json)
            return
    with open_archive(archive, keys=keyring_of(identities)) as a:
        if against:
            _print_comparison(archive, a, against, as_json)
        else:
            _show_listing(archive, a.manifest, a, as_json)


def _show_listing(name: str, manifest: Manifest, archive: Archive | None, as_json: bool) -> None:
    """``ls`` or ``ls --json``; ``archive`` is needed only for an archive with storages."""
    if as_json:
        console.out.print_json(json.dumps(_listing(name, manifest, archive)))
    else:
        _print_listing(name, manifest, archive)


def _print_comparison(name: str, archive: Archive, against: str, as_json: bool) -> None:
    """``ls --against URL``: per archive table, is it in the database, do the columns match."""
    from rich.table import Table as RichTable

    from dbcrate.compare import compare_with
    from dbcrate.connect import parse_url, public_url

    rows = compare_with(archive, against)
    if as_json:
        shown = public_url(parse_url(against))
        console.out.print_json(json.dumps({"archive": name, "target": shown, "tables": rows}))
        return
    table = RichTable(show_edge=False, box=None)
    for col in ("table", "in target", "columns", "differences"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], "yes" if r["present"] else "no", r["columns"],
                      "; ".join(r["differences"]))
    console.out.print(table)


def _listing(name: str, m: Manifest, archive: Archive | None) -> dict[str, Any]:
    """``ls --json`` (its fields are documented in docs/CLI.md)."""
    return {
        "archive": name, "format_version": m.format_version,
        "dbcrate_version": m.dbcrate_version, "created_at": m.created_at,
        "complete": m.complete, "source": m.source.to_dict(),
        "data_format": m.data_format, "schema_version": m.schema_version,
        "rows": m.rows, "bytes": m.size,
        "tables": [{"name": t.name, "rows": t.rows, "bytes": t.size,
                    "chunks": len(t.chunks), "columns": len(t.schema.columns),
                    "status": t.status} for t in m.tables],
        "storage": _storage_summary(archive) if m.storage and archive is not None else None,
        "native": ({"engine": m.native.engine, "server_version": m.native.server_version,
                    "tool": m.native.tool, "objects": len(m.native.objects),
                    "kinds": m.native.kinds()} if m.native is not None else None),
        "encrypted": _recipients(archive) is not None,
        "recipients": _recipients(archive),
    }


def _print_listing(name: str, m: Manifest, archive: Archive | None) -> None:
    """``ls``: where the archive came from, a table of its tables, failures and storages."""
    from rich.table import Table as RichTable

    console.out.print(f"archive:   {name} (format {m.format_version}, dbcrate {m.dbcrate_version})")
    console.out.print(f"created:   {m.created_at} (UTC)")
    console.out.print(f"source:    {m.source.engine} {m.source.server_version}  {m.source.url}")
    recipients = _recipients(archive)
    if recipients is not None:
        from dbcrate.crypto.keys import describe_recipients

        console.out.print(f"encrypted: {describe_recipients(recipients)} (sealed, format 6)",
                          markup=False)
    if m.schema_version:
        console.out.print(f"schema version: {m.schema_version}")
    table = RichTable(show_edge=False, box=None)
    for col, right in (("table", False), ("rows", True), ("bytes", True), ("chunks", True),
                       ("columns", True)):
        table.add_column(col, justify="right" if right else "left")
    for t in m.tables:
        table.add_row(t.name + ("" if t.status == "ok" else f" ({t.status})"),
                      f"{t.rows:,}", human_bytes(t.size), str(len(t.chunks)),
                      str(len(t.schema.columns)))
    console.out.print(table)
    console.out.print(f"{tables_text(len(m.tables))}, {tables_text(m.rows, 'row')}, "
                      f"{human_bytes(m.size)} of {m.data_format} data")
    failed = [t for t in m.tables if t.status != "ok"]
    if failed or not m.complete:
        console.out.print(f"INCOMPLETE: {tables_text(len(failed))} failed at dump time (--tolerate):",
                          markup=False)
        for t in failed:
            console.out.print(f"  {t.name}: {t.error or 'failed'}", markup=False)
    if m.native is not None:
        kinds = ", ".join(tables_text(n, k.lower()) for k, n in sorted(m.native.kinds().items()))
        console.out.print(f"native schema ({m.native.engine} {m.native.server_version}"
                          f"{', ' + m.native.tool if m.native.tool else ''}): "
                          f"{tables_text(len(m.native.objects), 'object')}: {kinds}", markup=False)
    if m.storage and archive is not None:
        _print_storages(archive)


def _print_storages(archive: Archive) -> None:
    """``ls``: the archive's storages, their largest directories, the row <-> file check."""
    from rich.table import Table as RichTable

    from dbcrate.storages.file_check import describe as describe_file_check

    storage = archive.manifest.storage
    assert storage is not None
    summary = _storage_summary(archive)
    console.out.print(f"storages: {summary['files']:,} files, {human_bytes(summary['bytes'])}"
                      + (f" (excluded: {', '.join(storage.exclude)})" if storage.exclude else ""),
                      markup=False)
    listing = RichTable(show_edge=False, box=None)
    for col, right in (("directory", False), ("files", True), ("bytes", True)):
        listing.add_column(col, justify="right" if right else "left")
    for row in summary["top"]:
        listing.add_row(row["directory"], f"{row['files']:,}", human_bytes(row["bytes"]))
    console.out.print(listing)
    if storage.file_check:
        for w in describe_file_check(storage.file_check) or ["row <-> file check: every file "
                                                             "is in place"]:
            console.out.print(w, markup=False)


def _storage_summary(archive: Archive) -> dict[str, Any]:
    from dbcrate.storages.restore import reader_of, summarize

    storage = archive.manifest.storage
    assert storage is not None
    return {
        "files": storage.files, "bytes": storage.bytes, "exclude": storage.exclude,
        "roots": [r.to_dict() for r in storage.roots],
        "top": summarize(reader_of(archive), storage),
        "file_check": storage.file_check,
    }


# -------------------------------------------------------------------------------------- verify
@click.command(epilog=VERIFY_EPILOG)
@click.argument("archive")
@json_option("Print the result as JSON.")
@identity_option
@progress_option
@traceback_option
def verify(archive: str, as_json: bool, progress: bool | None, identities: tuple[str, ...]) -> None:
    """Check an archive without a database: every member's SHA-256, every chunk decoded
    with the schema and row count the manifest gives.

    An encrypted archive is decrypted and checked the same way with its key (-i); without
    one, its ciphertext is checked against its index (damage, not forgery)."""
    from dbcrate.containers.archive import open_archive

    keys = keyring_of(identities)
    with contextlib.ExitStack() as stack:
        source = _spooled_stdin(stack) if keys.empty and archive == "-" else archive
        if keys.empty:
            from dbcrate.crypto.sealed import is_sealed

            if is_sealed(source):
                _verify_ciphertext(source, archive, as_json, progress)
                return
        _verify_open(stack.enter_context(open_archive(source, keys=keys)), archive, as_json,
                     progress)


def _spooled_stdin(stack: contextlib.ExitStack) -> str:
    """Standard input copied into a private temp file (removed when ``stack`` closes): it can
    be read only once, and ``verify`` must look at its marker before choosing how to check."""
    import shutil
    import sys
    import tempfile

    spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix="dbcrate-stdin-"))
    shutil.copyfileobj(sys.stdin.buffer, spool, 1024 * 1024)
    spool.flush()
    return spool.name


def _verify_open(a: Archive, archive: str, as_json: bool, progress: bool | None) -> None:
    """``verify`` of an open archive: every chunk (and storage file), then the summary."""
    from dbcrate.cli.progress import run, show_progress

    def gen() -> Generator[Event, None, None]:
        yield from a.iter_verify()  # storages included

    run(gen(), show_progress(progress), "Verifying")
    m = a.manifest
    members = sum(len(t.chunks) for t in m.tables)
    files = m.storage.files if m.storage else 0
    if as_json:
        console.out.print_json(json.dumps({"archive": archive, "ok": True, "encrypted": _sealed(a),
                                           "tables": len(m.tables),
                                           "members": members, "rows": m.rows, "bytes": m.size,
                                           "storage_files": files}))
    else:
        stored = f", {tables_text(files, 'storage file')}" if m.storage else ""
        console.out.print(f"ok: {archive}: {tables_text(len(m.tables))}, "
                          f"{tables_text(members, 'data member')}, {tables_text(m.rows, 'row')}, "
                          f"{human_bytes(m.size)}{stored}: every checksum matches and every chunk "
                          "decodes")


def _sealed(archive: Archive) -> bool:
    return _recipients(archive) is not None


def _recipients(archive: Archive | None) -> list[str] | None:
    """The recipients' kinds of a sealed archive (``X25519``, ``scrypt``...); None if plain."""
    reader = getattr(archive, "reader", None)
    return getattr(reader, "recipients", None)


def _verify_ciphertext(source: str, archive: str, as_json: bool, progress: bool | None) -> None:
    """``verify`` of an encrypted archive without its key: what can be checked, and what not."""
    from dbcrate.cli.progress import run, show_progress
    from dbcrate.containers.tar import ArchiveReader
    from dbcrate.crypto.sealed import iter_verify_ciphertext

    raw = ArchiveReader(source)
    try:
        report = run(iter_verify_ciphertext(raw), show_progress(progress), "Verifying")
    finally:
        raw.close()
    note = ("encrypted, no identity given: the ciphertext of every member matches its index; "
            "contents not decrypted (give -i/--identity to check them)")
    if as_json:
        console.out.print_json(json.dumps({
            "archive": archive, "ok": True, "encrypted": True, "decrypted": False,
            "members": report.members, "bytes": report.bytes, "recipients": report.recipients,
            "note": note}))
    else:
        console.out.print(f"ok: {archive}: {tables_text(report.members, 'stored member')}, "
                          f"{human_bytes(report.bytes)}: {note}")
