"""The command line: a thin layer over the library (``dbcrate.cli.commands``), with one place
mapping errors to messages and exit codes (``main``)."""

from dbcrate.cli.commands import cli, main

__all__ = ["cli", "main"]
