"""Option declarations that several commands share, with their choices and defaults taken from
the option dataclasses (:func:`dbcrate.options.choices_of`, :func:`dbcrate.options.default_of`)
so that a value is stated once, in :mod:`dbcrate.options`.

``--chunk-rows`` (most rows per data chunk) is the one option for the chunk size of ``dump``
and ``convert``; ``--max-row-count``, its older name, is still accepted with the same meaning
but no longer shown in ``--help`` (docs/CLI.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dbcrate.containers.traits import KIND_TRAITS
from dbcrate.errors import UsageError
from dbcrate.options import MAX_DEFAULT_JOBS, DumpOptions, choices_of, default_of

F = TypeVar("F", bound=Callable[..., Any])

#: the deprecated alias of ``--chunk-rows`` (hidden from ``--help``)
CHUNK_ROWS_ALIAS = "--max-row-count"


def traceback_option(f: F) -> F:
    """``--traceback``: show the traceback of an error (for a bug report). Accepted before the
    command (``dbcrate --traceback dump ...``) and after it; :func:`dbcrate.cli.app.main`
    reads it from the arguments before click parses them, so that it holds for errors click
    raises too."""
    return click.option("--traceback", is_flag=True, expose_value=False,
                        help="Show the traceback of an error (for a bug report).")(f)


def progress_option(f: F) -> F:
    """``--progress/--no-progress`` (default: a bar when standard error is a terminal)."""
    return click.option("--progress/--no-progress", default=None,
                        help="Progress bar (default: on a terminal).")(f)


def json_option(help: str) -> Callable[[F], F]:
    """``--json`` into the parameter ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def selection_options(verb: str, schema_default: str = "") -> Callable[[F], F]:
    """``-t/-T`` (tables) and ``-n/-N`` (schemas) into ``include``, ``exclude``, ``schemas``
    and ``exclude_schemas``: the selection of ``dump`` and ``copy`` (``verb``: "Dump", "Copy")."""
    options = [
        click.option("-t", "--table", "include", multiple=True, metavar="PATTERN",
                     help=f"{verb} only tables matching this glob (repeatable)."),
        click.option("-T", "--exclude-table", "exclude", multiple=True, metavar="PATTERN",
                     help="Leave out tables matching this glob (repeatable)."),
        click.option("-n", "--schema", "schemas", multiple=True, metavar="PATTERN",
                     help=f"{verb} only schemas matching this glob (repeatable; PostgreSQL)."
                     + (f" {schema_default}" if schema_default else "")),
        click.option("-N", "--exclude-schema", "exclude_schemas", multiple=True,
                     metavar="PATTERN", help="Leave out schemas matching this glob (repeatable)."),
    ]

    def apply(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f

    return apply


def kind_option(help: str) -> Callable[[F], F]:
    """``--as KIND`` into ``kind``: the choices and default of ``DumpOptions.container``."""
    return click.option("--as", "kind", type=click.Choice(choices_of(DumpOptions, "container")),
                        default=default_of(DumpOptions, "container"), show_default=True,
                        help=help)


def jobs_option(options: type[Any], help: str) -> Callable[[F], F]:
    """``-j/--jobs N`` into ``jobs``, with the default of ``options.jobs``
    (:func:`dbcrate.options.default_jobs`: the cores of this machine, at most
    :data:`~dbcrate.options.MAX_DEFAULT_JOBS`), said in ``--help`` with its value here."""
    here = int(default_of(options, "jobs"))
    return click.option("-j", "--jobs", type=click.IntRange(1, 64), default=here,
                        help=f"{help} Default: the number of cores, at most {MAX_DEFAULT_JOBS} "
                        f"(here: {here}).")


def dump_chunk_rows(kind: str) -> int:
    """The dump's default rows per chunk for ``kind``: ``DumpOptions.chunk_rows`` for the kinds
    that hold data members (tar, directory), the kind's own ``default_max_rows`` for the kinds
    that store rows themselves (sqlite; python, whose modules stay readable)."""
    info = KIND_TRAITS[kind]
    return int(default_of(DumpOptions, "chunk_rows")) if info.member_based else info.default_max_rows


def _dump_defaults_text() -> str:
    """``--chunk-rows``'s default in ``dump --help``: ``250,000; python: 50,000``."""
    by_value: dict[int, list[str]] = {}
    for name in choices_of(DumpOptions, "container"):
        by_value.setdefault(dump_chunk_rows(name), []).append(name)
    common = dump_chunk_rows(default_of(DumpOptions, "container"))
    others = [f"{', '.join(names)}: {rows:,}" for rows, names in by_value.items() if rows != common]
    return "; ".join([f"{common:,}", *others])


def _convert_defaults_text() -> str:
    """``--chunk-rows``'s default in ``convert --help`` (the library keeps the source's chunks,
    except for the python kind: :func:`dbcrate.containers.convert.iter_convert`)."""
    return f"the source's chunks; python: {KIND_TRAITS['python'].default_max_rows:,}"


def chunk_rows_options(for_convert: bool = False) -> Callable[[F], F]:
    """``--chunk-rows N`` into ``chunk_rows`` and its hidden alias ``--max-row-count N`` into
    ``max_row_count`` (both ``None`` when not given; :func:`given_chunk_rows` merges them)."""
    shown = _convert_defaults_text() if for_convert else _dump_defaults_text()
    what = "output chunk" if for_convert else "data chunk"
    main = click.option("--chunk-rows", type=click.IntRange(1), default=None,
                        show_default=shown,
                        help=f"Most rows per {what} (python: per module).")
    alias = click.option(CHUNK_ROWS_ALIAS, "max_row_count", type=click.IntRange(1), default=None,
                         hidden=True, help="Deprecated: the old name of --chunk-rows.")

    def apply(f: F) -> F:
        return main(alias(f))

    return apply


def given_chunk_rows(chunk_rows: int | None, max_row_count: int | None) -> int | None:
    """The rows per chunk asked for by ``--chunk-rows`` or its alias, ``None`` when neither.

    :raises UsageError: both are given, with different values.
    """
    if chunk_rows is not None and max_row_count is not None and chunk_rows != max_row_count:
        raise UsageError(f"--chunk-rows {chunk_rows} and {CHUNK_ROWS_ALIAS} {max_row_count} "
                         "disagree", hint=f"{CHUNK_ROWS_ALIAS} is the old name of --chunk-rows: "
                         "give only --chunk-rows")
    return chunk_rows if chunk_rows is not None else max_row_count


def identity_option(f: F) -> F:
    """``-i/--identity FILE`` (repeatable) into ``identities``: what opens an encrypted
    archive, beside ``DBCRATE_IDENTITY`` and ``DBCRATE_PASSPHRASE``."""
    return click.option(
        "-i", "--identity", "identities", multiple=True, metavar="FILE",
        help="Age identity file or ssh private key that opens an encrypted archive "
        "(repeatable; also DBCRATE_IDENTITY; a passphrase: DBCRATE_PASSPHRASE or asked).")(f)


def encryption_options(f: F) -> F:
    """``-r/--recipient``, ``-R/--recipients-file`` and ``--passphrase`` into ``recipients``,
    ``recipients_files`` and ``passphrase``: encrypt the archive written (see
    :func:`encryption_of`)."""
    options = [
        click.option("-r", "--recipient", "recipients", multiple=True, metavar="KEY",
                     help="Encrypt for this age (age1...) or ssh public key (repeatable)."),
        click.option("-R", "--recipients-file", "recipients_files", multiple=True,
                     metavar="FILE", help="Encrypt for the public keys in FILE, one per line "
                     "(repeatable)."),
        click.option("--passphrase", is_flag=True,
                     help="Encrypt with a passphrase (DBCRATE_PASSPHRASE, or asked twice on a "
                     "terminal) instead of recipients."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def encryption_of(recipients: tuple[str, ...], recipients_files: tuple[str, ...],
                  passphrase: bool, writes: bool = True) -> Any:
    """The :class:`dbcrate.crypto.keys.Encryption` the options ask for, or None. The
    passphrase comes from ``DBCRATE_PASSPHRASE`` or is asked twice on the terminal, never from
    the command line (where other users' ``ps`` would see it); ``writes=False`` (a dry run, a
    printed plan or script: nothing is encrypted) never asks for it."""
    if not (recipients or recipients_files or passphrase):
        return None
    import os

    from dbcrate.crypto.keys import PASSPHRASE_ENV, Encryption, read_recipients

    secret = None
    if passphrase:
        secret = os.environ.get(PASSPHRASE_ENV) or None
        if secret is None and not writes:
            secret = "(not asked: nothing is written)"  # noqa: S105 (never encrypts anything)
        if secret is None:
            import sys

            if not sys.stdin.isatty():
                raise UsageError("--passphrase needs a terminal to ask on, or "
                                 f"{PASSPHRASE_ENV}", hint=f"set {PASSPHRASE_ENV}")
            secret = click.prompt("Passphrase", hide_input=True, confirmation_prompt=True,
                                  err=True)
    encryption = Encryption(read_recipients(recipients, recipients_files), secret)
    encryption.check()
    return encryption


def keyring_of(identities: tuple[str, ...]) -> Any:
    """The :class:`dbcrate.crypto.keys.Keyring` of ``-i`` and the environment."""
    from dbcrate.crypto.keys import Keyring

    return Keyring.from_environment(identities)
