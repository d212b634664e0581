"""``dbcrate prune``: remove old archives from a directory or a bucket prefix
(:mod:`dbcrate.stores.prune`), listing what goes and what stays."""

from __future__ import annotations

import json

import click

from dbcrate.cli import console
from dbcrate.cli.params import json_option, traceback_option
from dbcrate.progress import human_bytes

EPILOG = """
\b
Examples:
  dbcrate prune backups/ --keep-last 7
  dbcrate prune backups/ --older-than 30d --dry-run
  dbcrate prune s3://bucket/backups/ --keep-last 14 --older-than 8w
  dbcrate prune backups/ --keep-last 3 --pattern 'shop_*.crate'
"""


@click.command(epilog=EPILOG)
@click.argument("location")
@click.option("--keep-last", type=click.IntRange(0), metavar="N",
              help="Keep the newest N archives.")
@click.option("--older-than", metavar="DURATION",
              help="Remove archives older than this (45s, 90m, 12h, 30d, 2w).")
@click.option("--pattern", default="*.crate", show_default=True, metavar="GLOB",
              help="Only files (objects) whose name matches this glob are candidates.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@json_option("Print the result as JSON.")
@traceback_option
def prune(location: str, keep_last: int | None, older_than: str | None, pattern: str,
          dry_run: bool, as_json: bool) -> None:
    """Remove old archives from a directory or an s3://bucket/prefix/.

    Only dbcrate archives (matching --pattern and starting with the archive marker)
    are candidates; anything else is left alone. With both --keep-last and
    --older-than an archive is removed only when neither keeps it.
    """
    from dbcrate.stores.prune import prune as run_prune  # the commands import what they run

    result = run_prune(location, keep_last=keep_last, older_than=older_than, pattern=pattern,
                       dry_run=dry_run)
    if as_json:
        def entries(items: list) -> list[dict[str, object]]:  # type: ignore[type-arg]
            return [{"name": e.name, "modified": e.modified.isoformat(), "bytes": e.size}
                    for e in items]

        console.out.print_json(json.dumps({
            "location": result.location, "dry_run": dry_run, "removed": entries(result.removed),
            "kept": entries(result.kept), "not_archives": result.not_archives}))
        return
    verb = "would remove" if dry_run else "removed"
    for e in result.removed:
        console.out.print(f"{verb}  {e.name}  {e.modified:%Y-%m-%d %H:%M:%S}Z  "
                          f"{human_bytes(e.size)}", markup=False)
    for e in result.kept:
        console.out.print(f"kept  {e.name}  {e.modified:%Y-%m-%d %H:%M:%S}Z  "
                          f"{human_bytes(e.size)}", markup=False)
    for name in result.not_archives:
        console.out.print(f"left alone (not a dbcrate archive)  {name}", markup=False)
    console.out.print(f"{verb} {len(result.removed)}, kept {len(result.kept)} of "
                      f"{len(result.removed) + len(result.kept)} archives in {location}",
                      markup=False)
