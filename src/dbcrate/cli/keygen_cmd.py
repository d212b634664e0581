"""``dbcrate keygen``: a new age identity for encrypted archives (what ``age-keygen`` does,
for a machine without the age tools)."""

from __future__ import annotations

import os

import click

from dbcrate.cli import console
from dbcrate.cli.params import traceback_option
from dbcrate.errors import OutputError

EPILOG = """
\b
Examples:
  dbcrate keygen -o ~/.config/dbcrate/key.txt      # prints the public key (age1...)
  dbcrate dump postgresql:///shop shop.crate -r age1...
  dbcrate restore shop.crate postgresql:///shop -i ~/.config/dbcrate/key.txt
"""


@click.command(epilog=EPILOG)
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Write the identity (secret key) here, mode 0600; never replaced.")
@traceback_option
def keygen(output: str) -> None:
    """Make a new age identity: the secret key goes into FILE, the public key (the
    recipient to encrypt for, -r) is printed. Keep FILE away from the machine that makes
    the backups: it only needs the public key."""
    from dbcrate.crypto.keys import generate_identity

    secret, public = generate_identity()
    try:  # O_EXCL: an existing identity is never overwritten (its archives would be lost)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise OutputError(f"{output} exists; dbcrate keygen never replaces an identity",
                          hint="choose another file name") from None
    except OSError as exc:
        raise OutputError(f"cannot create {output}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(f"# public key: {public}\n{secret}\n")
    console.out.print(public, markup=False, highlight=False)
    console.err.print(f"identity written to {output} (mode 0600); public key: {public}",
                      markup=False, highlight=False)
