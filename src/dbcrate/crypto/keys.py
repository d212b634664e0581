"""Who can open a sealed archive: the archive key wrapped for age recipients, and unwrapped
with identities or a passphrase.

The archive key (32 random bytes, one per archive) is stored as a standard age file, member
``key.age`` (https://age-encryption.org/v1), through the pyrage binding of the age reference
implementation: X25519 recipients (``age1...``), ssh public keys (``ssh-ed25519``,
``ssh-rsa``) or one passphrase (scrypt). ``age -d -i IDENTITY key.age`` prints it, so an
archive can be opened without dbcrate. Secrets (identities, passphrases, the key) are never
part of a message, a ``repr`` or an option shown by ``--dry-run``.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbcrate.errors import CannotDecrypt, UsageError

#: the environment variables read when nothing is given explicitly
IDENTITY_ENV = "DBCRATE_IDENTITY"
PASSPHRASE_ENV = "DBCRATE_PASSPHRASE"  # noqa: S105 (a variable's name, no secret)
#: the stanza types of age recipients (a ``*-grease`` stanza is noise age adds on purpose)
_RECIPIENT_STANZAS = ("X25519", "ssh-ed25519", "ssh-rsa", "scrypt")
AGE_HEADER = b"age-encryption.org/v1\n"


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise UsageError("encrypted archives need the pyrage and cryptography packages",
                         hint="pip install 'dbcrate[encryption]'") from None
    return pyrage


@dataclass(frozen=True)
class Encryption:
    """How a dump is sealed (``dump -r/-R/--passphrase``): age recipients, or a passphrase.

    :param recipients: ``age1...`` X25519 public keys and ssh public keys (one per item, as
        in a recipients file; see :func:`read_recipients`).
    :param passphrase: encrypt for this passphrase instead (age allows no other recipient
        beside a passphrase). Hidden from ``repr``.
    """

    recipients: tuple[str, ...] = ()
    passphrase: str | None = field(default=None, repr=False)

    def check(self) -> None:
        """:raises UsageError: nothing to encrypt for, both kinds at once, or a recipient
        that is none (named, with what it should look like)."""
        if not self.recipients and not self.passphrase:
            raise UsageError("encryption needs at least one recipient or a passphrase",
                             hint="dump -r age1... , -R FILE or --passphrase")
        if self.recipients and self.passphrase:
            raise UsageError("a passphrase cannot be combined with recipients (age's rule: a "
                             "passphrase-encrypted file has that one recipient)",
                             hint="use either -r/-R or --passphrase")
        _parsed_recipients(self.recipients)

    def wrap(self, archive_key: bytes) -> bytes:
        """``archive_key`` as an age file for the recipients or the passphrase."""
        pyrage = _pyrage()
        self.check()
        if self.passphrase:
            return bytes(pyrage.passphrase.encrypt(archive_key, self.passphrase))
        return bytes(pyrage.encrypt(archive_key, _parsed_recipients(self.recipients)))


def read_recipients(texts: Iterable[str] = (), files: Iterable[str | os.PathLike[str]] = ()
                    ) -> tuple[str, ...]:
    """Recipients given one by one (``-r``) and in files (``-R``: one per line, ``#``
    comments and blank lines ignored, as age reads them).

    :raises UsageError: a file that cannot be read (named).
    """
    found = [t.strip() for t in texts if t.strip()]
    for path in files:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the recipients file {path}: {exc}") from None
        found += [line.strip() for line in lines
                  if line.strip() and not line.lstrip().startswith("#")]
    return tuple(found)


def _parsed_recipients(recipients: Sequence[str]) -> list[Any]:
    pyrage = _pyrage()
    parsed = []
    for number, text in enumerate(recipients, 1):
        try:
            if text.startswith("age1"):
                parsed.append(pyrage.x25519.Recipient.from_str(text))
            elif text.startswith("ssh-"):
                parsed.append(pyrage.ssh.Recipient.from_str(text))
            else:
                raise ValueError
        except (ValueError, pyrage.RecipientError):
            if text.upper().startswith("AGE-SECRET-KEY-") or "-----BEGIN" in text:
                raise UsageError(f"recipient {number} is a private key, not a public one (it "
                                 "is not shown here)",
                                 hint="give its public key: 'age-keygen -y FILE', the '# public "
                                 "key' line of dbcrate keygen's file, or the ssh key's .pub"
                                 ) from None
            shown = text if len(text) < 80 else text[:77] + "..."
            raise UsageError(f"recipient {number} is not an age or ssh public key: {shown!r}",
                             hint="give an 'age1...' key (age-keygen -y, dbcrate keygen) or an "
                             "'ssh-ed25519 ...' / 'ssh-rsa ...' public key") from None
    return parsed


@dataclass(frozen=True)
class Keyring:
    """What opens sealed archives: identity files and/or a passphrase.

    :param identities: paths of age identity files (``AGE-SECRET-KEY-1...`` lines, as
        ``age-keygen`` writes them) or of unencrypted ssh private keys.
    :param passphrase: for an archive sealed with a passphrase. Hidden from ``repr``.
    :param ask: ask for a passphrase on the terminal when one is needed and none was given
        (only when standard input is a terminal).
    """

    identities: tuple[str, ...] = ()
    passphrase: str | None = field(default=None, repr=False)
    ask: bool = True

    @property
    def empty(self) -> bool:
        """Nothing given (a passphrase might still be asked for on a terminal)."""
        return not self.identities and not self.passphrase

    @classmethod
    def from_environment(cls, identities: Iterable[str] = (), *, ask: bool = True) -> Keyring:
        """``identities`` and those in ``DBCRATE_IDENTITY`` (paths separated by ``:``), and
        the passphrase in ``DBCRATE_PASSPHRASE``."""
        listed = [p for p in os.environ.get(IDENTITY_ENV, "").split(os.pathsep) if p]
        return cls(tuple(identities) + tuple(listed),
                   os.environ.get(PASSPHRASE_ENV) or None, ask)

    def unwrap(self, wrapped: bytes, display: str) -> bytes:
        """The archive key from ``key.age``'s bytes.

        :raises CannotDecrypt: nothing given that could open it, or nothing given opens it
            (saying for how many recipients of which kinds it was sealed).
        :raises ArchiveCorrupt: not an age file.
        """
        pyrage = _pyrage()
        kinds = recipient_kinds(wrapped, display)
        if kinds == ["scrypt"]:
            passphrase = self.passphrase or self._asked(display)
            try:
                key = pyrage.passphrase.decrypt(wrapped, passphrase)
            except pyrage.DecryptError as exc:
                _refuse_damaged(exc, display, "Decryption failed")
                raise CannotDecrypt(f"{display}: the passphrase does not open this archive",
                                    hint="check the passphrase (DBCRATE_PASSPHRASE)") from None
            return _checked_key(bytes(key), display)
        identities = [i for path in self.identities for i in _read_identities(path)]
        if not identities:
            raise CannotDecrypt(
                f"{display} is encrypted (for {describe_recipients(kinds)}) and no identity was given",
                hint=f"give the private key with -i/--identity FILE or {IDENTITY_ENV}=FILE")
        try:
            key = pyrage.decrypt(wrapped, identities)
        except pyrage.DecryptError as exc:
            _refuse_damaged(exc, display, "No matching keys found")
            raise CannotDecrypt(
                f"{display}: none of the {len(identities)} identities given opens this archive "
                f"(encrypted for {describe_recipients(kinds)})",
                hint="give the private key of one of its recipients (-i/--identity)") from None
        return _checked_key(bytes(key), display)

    def _asked(self, display: str) -> str:
        if self.ask and sys.stdin.isatty():
            answer = getpass.getpass(f"Passphrase for {display}: ")
            if answer:
                return answer
        raise CannotDecrypt(f"{display} is encrypted with a passphrase and none was given",
                            hint=f"set {PASSPHRASE_ENV}, or run on a terminal to be asked")


def _refuse_damaged(exc: Exception, display: str, wrong_key: str) -> None:
    """Raise ArchiveCorrupt when age says ``key.age`` is damaged rather than that the key or
    passphrase given is not one of its recipients' (``wrong_key``: age's message for that)."""
    from dbcrate.errors import ArchiveCorrupt

    if str(exc) != wrong_key:
        raise ArchiveCorrupt(f"{display}: key.age is damaged ({exc})", member="key.age",
                             hint="the archive was altered or damaged after it was written; "
                             "use another copy") from None


def _checked_key(key: bytes, display: str) -> bytes:
    from dbcrate.errors import ArchiveCorrupt

    if len(key) != 32:
        raise ArchiveCorrupt(f"{display}: key.age holds no archive key ({len(key)} bytes)",
                             member="key.age")
    return key


def recipient_kinds(wrapped: bytes, display: str) -> list[str]:
    """The kinds of the recipients of an age file (its header's stanzas, grease left out).

    :raises ArchiveCorrupt: not an age file.
    """
    from dbcrate.errors import ArchiveCorrupt

    if not wrapped.startswith(AGE_HEADER):
        raise ArchiveCorrupt(f"{display}: key.age is not an age file", member="key.age")
    kinds: list[str] = []
    for line in wrapped.split(b"\n")[1:]:
        if line.startswith(b"---"):
            return kinds
        if line.startswith(b"-> "):
            kind = line[3:].split(b" ", 1)[0].decode("ascii", "replace")
            if kind in _RECIPIENT_STANZAS:
                kinds.append(kind)
    raise ArchiveCorrupt(f"{display}: key.age has no complete age header", member="key.age")


def describe_recipients(kinds: list[str]) -> str:
    counts = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    return ", ".join(f"{n} {k} recipient{'s' if n > 1 else ''}" for k, n in counts.items())


def _read_identities(path: str) -> list[Any]:
    """The identities in one file (age identities, one per line, or one ssh private key)."""
    pyrage = _pyrage()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the identity file {path}: {exc.strerror}",
                         hint="give the path of an age identity file or an ssh private key"
                         ) from None
    if b"-----BEGIN" in raw:
        try:
            return [pyrage.ssh.Identity.from_buffer(raw)]
        except pyrage.IdentityError:
            raise UsageError(f"{path} is not an ssh private key dbcrate can use (an encrypted "
                             "ssh key is not supported)",
                             hint="give an unencrypted key, or an age identity") from None
    found = []
    for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except (pyrage.IdentityError, ValueError):
            # never the line itself: it may be a secret key with a typo
            raise UsageError(f"{path}, line {number}: not an age identity",
                             hint="an age identity file holds AGE-SECRET-KEY-1... lines "
                             "(age-keygen, dbcrate keygen)") from None
    if not found:
        raise UsageError(f"{path} holds no identity",
                         hint="an age identity file holds AGE-SECRET-KEY-1... lines")
    return found


def generate_identity() -> tuple[str, str]:
    """A new X25519 identity: ``(secret "AGE-SECRET-KEY-1...", public "age1...")``."""
    pyrage = _pyrage()
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())
