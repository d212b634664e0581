"""``dbcrate convert``: an archive of any kind and data format into another, streaming."""

from __future__ import annotations

import json

import click

from dbcrate.cli import console
from dbcrate.cli.output import tables_text
from dbcrate.cli.params import (
    chunk_rows_options,
    encryption_of,
    encryption_options,
    given_chunk_rows,
    identity_option,
    json_option,
    keyring_of,
    kind_option,
    progress_option,
    traceback_option,
)
from dbcrate.options import BUILTIN_DATA_FORMATS

EPILOG = """
\b
Examples:
  dbcrate convert shop.crate shop.sqlite --as sqlite
  dbcrate convert shop.sqlite shop_py/ --as python --chunk-rows 10000
  dbcrate convert shop_py/ shop.crate --as tar --format parquet
  dbcrate convert shop.crate shop.jsonl.crate --format jsonl
  dbcrate convert shop.crate shop.sealed.crate -R team-keys.txt     # encrypt
  dbcrate convert shop.sealed.crate shop.sqlite --as sqlite -i key.txt
"""


@click.command(epilog=EPILOG)
@click.argument("source")
@click.argument("output")
@kind_option("Container kind of the output.")
@click.option("--format", "data_format", default=None,
              help="Data format of the output's members (tar, directory): "
              + ", ".join(sorted(BUILTIN_DATA_FORMATS)) + ". Default: the source's.")
@chunk_rows_options(for_convert=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing dump directory at OUTPUT.")
@identity_option
@encryption_options
@json_option("Print the result as JSON.")
@progress_option
@traceback_option
def convert(source: str, output: str, kind: str, data_format: str | None,
            chunk_rows: int | None, max_row_count: int | None, overwrite: bool, as_json: bool,
            progress: bool | None, identities: tuple[str, ...], recipients: tuple[str, ...],
            recipients_files: tuple[str, ...], passphrase: bool) -> None:
    """Convert an archive of any kind and format into another, streaming, checking the
    source's checksums as it reads. The output appears only when complete.

    An encrypted SOURCE is opened with -i; -r/-R/--passphrase encrypt the output (tar)."""
    from dbcrate.cli.progress import run, show_progress  # the commands import what they run
    from dbcrate.containers.convert import iter_convert

    rows = given_chunk_rows(chunk_rows, max_row_count)  # None: the library's default
    result = run(iter_convert(source, output, kind=kind, data_format=data_format,
                              max_row_count=rows, overwrite=overwrite,
                              keys=keyring_of(identities),
                              encryption=encryption_of(recipients, recipients_files, passphrase)),
                 show_progress(progress), "Converting")
    m = result.manifest
    if as_json:
        console.out.print_json(json.dumps({"archive": result.path, "kind": result.kind,
                                           "data_format": m.data_format, "tables": len(m.tables),
                                           "rows": m.rows, "seconds": round(result.seconds, 3)}))
    else:
        console.out.print(f"converted {tables_text(len(m.tables))}, {tables_text(m.rows, 'row')} "
                          f"into {result.path} ({result.kind}, {m.data_format}) in "
                          f"{result.seconds:.1f}s")
