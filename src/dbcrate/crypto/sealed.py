"""Sealed (encrypted) tar archives: the writer's half (:class:`Sealer`), the reader's
(:class:`SealedReader`) and the check that needs no key (:func:`verify_ciphertext`).

Layout (docs/FORMAT.md, "Sealed archives"): the plaintext marker (format version 6, with
``"sealed"``), ``key.age`` (the archive key as an age file for the recipients), every member of
the archive as it would be in a plain one - data, storages, the manifest and its digest, in the
same order - sealed (:mod:`dbcrate.crypto.segments`) under a hidden name
(``e/`` + HMAC-SHA256 of its name under a key derived from the archive key), then the plaintext
``index.json`` (every stored member's name, size and SHA-256 of its ciphertext) and last
``index.sha256``. With a key, a reader unwraps ``key.age``, finds the manifest by its hidden
name, and decrypts only the members it reads; without one, ``verify`` checks the ciphertext
against the index.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    checked_manifest,
    manifest_members,
)
from dbcrate.containers.streams import HashingReader
from dbcrate.crypto.keys import Encryption, Keyring, recipient_kinds
from dbcrate.crypto.segments import KEY_BYTES, SEGMENT, OpenedStream, SealingReader, plain_size, sealed_size
from dbcrate.errors import ArchiveCorrupt, NotAnArchive
from dbcrate.model.manifest import MAX_MANIFEST_BYTES, SEALED_FORMAT_VERSION, Manifest
from dbcrate.progress import Event, drain

if TYPE_CHECKING:
    import pyarrow as pa

SCHEME = "age-chacha20poly1305-64k"
KEY_MEMBER = "key.age"
INDEX = "index.json"
INDEX_DIGEST = "index.sha256"
SEALED_PREFIX = "e/"
#: the plaintext index of a sealed archive is small (three fields per member)
MAX_INDEX_BYTES = MAX_MANIFEST_BYTES

#: appends one member to the tar as it is given; returns the SHA-256 of its bytes
AddMember = Callable[[str, IO[bytes], int], str]


def hidden_name(archive_key: bytes, name: str) -> str:
    """The stored name of the member ``name``: ``e/`` and 32 hex digits of an HMAC-SHA256
    under a key derived from the archive key (equal names, equal hidden names; nothing else
    can be learnt from it)."""
    names_key = hmac.new(archive_key, b"dbcrate names", hashlib.sha256).digest()
    return SEALED_PREFIX + hmac.new(names_key, name.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class Sealer:
    """Seals the members an :class:`~dbcrate.containers.tar.ArchiveWriter` writes (its
    ``sealer``): a new archive key, wrapped for ``encryption``'s recipients.

    :raises UsageError: no recipient, or one that is none (before anything is written).
    """

    marker = {"sealed": {"scheme": SCHEME, "segment": SEGMENT}}

    def __init__(self, encryption: Encryption) -> None:
        self._key = os.urandom(KEY_BYTES)
        self._wrapped = encryption.wrap(self._key)
        self._index: list[tuple[str, int, str]] = []

    def begin(self, add: AddMember) -> None:
        """Write ``key.age`` (after the marker, before any sealed member)."""
        sha = add(KEY_MEMBER, io.BytesIO(self._wrapped), len(self._wrapped))
        self._index.append((KEY_MEMBER, len(self._wrapped), sha))

    def add(self, add: AddMember, name: str, source: IO[bytes], size: int) -> tuple[str, str]:
        """Seal ``size`` bytes of ``source`` as the member ``name``; returns its hidden name
        and the SHA-256 of its plaintext (what the manifest records)."""
        plain = HashingReader(source)
        hidden = hidden_name(self._key, name)
        stored = sealed_size(size)
        sha = add(hidden, SealingReader(plain, size, self._key, name), stored)  # type: ignore[arg-type]
        self._index.append((hidden, stored, sha))
        return hidden, plain.sha.hexdigest()

    def finish(self, add: AddMember) -> None:
        """Write the plaintext index and its digest (after the sealed manifest)."""
        raw = json.dumps({"scheme": SCHEME, "members": self._index},
                         separators=(",", ":")).encode()
        add(INDEX, io.BytesIO(raw), len(raw))
        digest = (hashlib.sha256(raw).hexdigest() + "\n").encode()
        add(INDEX_DIGEST, io.BytesIO(digest), len(digest))


class RawTar(Protocol):
    """What the sealed reader needs of the tar reader
    (:class:`~dbcrate.containers.tar.ArchiveReader` of a sealed archive)."""

    display: str

    @property
    def members(self) -> Mapping[str, Any]: ...

    def read_member(self, name: str) -> bytes: ...

    def member_stream(self, name: str) -> BinaryIO: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Plain:
    size: int
    hidden: str


def check_scheme(sealed: object, display: str) -> None:
    """Refuse a marker's ``sealed`` object that names another scheme or segment size than
    this reader's (a newer encryption would need a new format version)."""
    if sealed is None:
        return
    if not isinstance(sealed, dict) or sealed.get("scheme") != SCHEME or \
            sealed.get("segment") != SEGMENT:
        raise NotAnArchive(f"{display}: unknown encryption scheme in the marker ({sealed!r})",
                           hint="written by another program, or damaged")


def read_index(raw: RawTar) -> dict[str, tuple[int, str]]:
    """The plaintext index, checked against its digest and against the tar: every stored
    member is listed once, with its size. ``{stored name: (size, sha256)}``.

    :raises ArchiveCorrupt: no index (the dump was cut short), a mismatch.
    """
    where = raw.display
    if INDEX not in raw.members or INDEX_DIGEST not in raw.members:
        raise ArchiveCorrupt(f"{where} has no index: the archive is incomplete (the dump was "
                             "interrupted or the file was truncated)", member=INDEX)
    if raw.members[INDEX].size > MAX_INDEX_BYTES or raw.members[INDEX_DIGEST].size > 200:
        raise NotAnArchive(f"{where}: {INDEX} is larger than the limit")
    data = raw.read_member(INDEX)
    expected = raw.read_member(INDEX_DIGEST).decode("ascii", "replace").strip()
    if hashlib.sha256(data).hexdigest() != expected:
        raise ArchiveCorrupt(f"{where}: {INDEX} does not match its SHA-256", member=INDEX)
    try:
        parsed = json.loads(data)
        if parsed.get("scheme") != SCHEME:
            raise NotAnArchive(f"{where}: unknown encryption scheme {parsed.get('scheme')!r}")
        index = {str(n): (int(s), str(h)) for n, s, h in parsed["members"]}
        if len(index) != len(parsed["members"]):
            raise ValueError("a member listed twice")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise NotAnArchive(f"{where}: {INDEX} is malformed ({exc})") from None
    stored = set(raw.members) - {MARKER, INDEX, INDEX_DIGEST}
    if stored != set(index):
        extra, missing = sorted(stored - set(index)), sorted(set(index) - stored)
        what = (f"members not in the index: {', '.join(extra[:5])}" if extra
                else f"members missing: {', '.join(missing[:5])}")
        raise ArchiveCorrupt(f"{where}: {what}", member=(extra or missing)[0])
    for name, (size, _sha) in index.items():
        if raw.members[name].size != size:
            raise ArchiveCorrupt(f"{where}: member {name} has {raw.members[name].size} bytes, "
                                 f"the index says {size}", member=name)
    if KEY_MEMBER not in index:
        raise ArchiveCorrupt(f"{where}: no {KEY_MEMBER}", member=KEY_MEMBER)
    return index


class SealedReader:
    """The container reader (``MemberReader`` of :mod:`dbcrate.containers.members`) of a
    sealed tar archive: plaintext names and sizes, each member decrypted when it is read.

    :raises CannotDecrypt: no identity or passphrase opens ``key.age``.
    :raises ArchiveCorrupt: the index, the manifest or the member list do not hold together.
    """

    def __init__(self, raw: RawTar, keys: Keyring, *, key: bytes | None = None) -> None:
        """:param key: the archive key, when the caller has unwrapped it already (a ranged
            reader that found it must read the archive whole: no second passphrase prompt)."""
        self._raw = raw
        self.display = raw.display
        check_scheme(getattr(raw, "sealed", None), self.display)
        read_index(raw)
        wrapped = raw.read_member(KEY_MEMBER)
        #: the kinds of its recipients, as ``ls`` shows them (``X25519``, ``scrypt``, ...)
        self.recipients = recipient_kinds(wrapped, self.display)
        self._key = key if key is not None else keys.unwrap(wrapped, self.display)
        manifest = self._read(MANIFEST, raw.members)
        digest = self._read(MANIFEST_DIGEST, raw.members)
        self.manifest: Manifest = checked_manifest(manifest, digest, self.display)
        if self.manifest.format_version == SEALED_FORMAT_VERSION:
            raise NotAnArchive(f"{self.display}: a sealed manifest says format "
                               f"{self.manifest.format_version} (its contents' version, not 6)")
        self._members = self._listed()

    def _read(self, name: str, stored: Mapping[str, Any]) -> bytes:
        """The manifest or its digest, decrypted; its size checked against the plain
        reader's limit first (a forged archive cannot make it read gigabytes)."""
        hidden = hidden_name(self._key, name)
        if hidden not in stored:
            raise ArchiveCorrupt(f"{self.display}: the sealed {name} is missing (or the "
                                 "archive key does not match its members)", member=name)
        limit = MAX_MANIFEST_BYTES if name == MANIFEST else 200
        if stored[hidden].size > sealed_size(limit):
            raise NotAnArchive(f"{self.display}: {name} is larger than the limit")
        with self._open(name, hidden) as stream:
            return stream.read()

    def _open(self, name: str, hidden: str) -> OpenedStream:
        return OpenedStream(self._raw.member_stream(hidden), self._raw.members[hidden].size,
                            self._key, name, self.display)

    def _listed(self) -> dict[str, _Plain]:
        """Every member the manifest lists, by plaintext name, checked: present, its size
        that of its plaintext; and no stored member it does not list."""
        members: dict[str, _Plain] = {}
        for name, size in manifest_members(self.manifest).items():
            hidden = hidden_name(self._key, name)
            info = self._raw.members.get(hidden)
            if info is None:
                raise ArchiveCorrupt(f"{self.display}: member {name} is missing", member=name)
            try:
                stored = plain_size(info.size)
            except ValueError:
                stored = -1
            if stored != size:
                raise ArchiveCorrupt(f"{self.display}: member {name} holds {stored} bytes, "
                                     f"the manifest says {size}", member=name)
            members[name] = _Plain(size, hidden)
        known = {p.hidden for p in members.values()} | {
            hidden_name(self._key, n) for n in (MANIFEST, MANIFEST_DIGEST)}
        extra = sorted(set(self._raw.members) - known - {MARKER, KEY_MEMBER, INDEX, INDEX_DIGEST})
        if extra:
            raise ArchiveCorrupt(f"{self.display}: members not listed in the manifest: "
                                 f"{', '.join(extra[:5])}", member=extra[0])
        return members

    @property
    def members(self) -> Mapping[str, _Plain]:
        return self._members

    def member_stream(self, name: str) -> BinaryIO:
        """The plaintext of a member, seekable, decrypted as it is read (close it after use)."""
        return self._open(name, self._members[name].hidden)  # type: ignore[return-value]

    def member_buffer(self, name: str) -> pa.Buffer:
        """The plaintext in an Arrow-owned buffer (see ArchiveReader.member_buffer: Arrow's
        threads may free it)."""
        import pyarrow as pa

        buffer = pa.allocate_buffer(self._members[name].size)
        with self._open(name, self._members[name].hidden) as stream:
            stream.read_all_into(memoryview(buffer).cast("B"))  # type: ignore[arg-type]
        return buffer

    def open_member(self, name: str) -> pa.BufferReader:
        import pyarrow as pa

        return pa.BufferReader(self.member_buffer(name))

    def check_member(self, name: str, sha256: str) -> None:
        """Decrypt the member (every segment authenticated) and compare its SHA-256."""
        sha = hashlib.sha256()
        with self._open(name, self._members[name].hidden) as stream:
            while block := stream.read(SEGMENT):
                sha.update(block)
        if sha.hexdigest() != sha256:
            raise ArchiveCorrupt(f"{self.display}: member {name} does not match its SHA-256 "
                                 "in the manifest", member=name)

    def close(self) -> None:
        self._raw.close()


@dataclass(frozen=True)
class CiphertextReport:
    """What ``verify`` checked of a sealed archive without its key."""

    path: str
    members: int
    bytes: int
    recipients: list[str]


def iter_verify_ciphertext(raw: RawTar) -> Generator[Event, None, CiphertextReport]:
    """Check a sealed archive without its key: the index against its digest, every stored
    member against the index (size and SHA-256 of the ciphertext), ``key.age`` an age file.
    This finds damage (a bad disk, a cut-short copy), not a forgery: anyone holding a
    recipient's public key can write a sealed archive (docs/FORMAT.md, threat model).
    Yields progress events; returns what was checked.

    :raises ArchiveCorrupt: at the first member that differs, naming it.
    """
    index = read_index(raw)
    kinds = recipient_kinds(raw.read_member(KEY_MEMBER), raw.display)
    total = sum(size for size, _ in index.values())
    done = 0
    for name, (size, expected) in index.items():
        sha = hashlib.sha256()
        with raw.member_stream(name) as stream:
            while block := stream.read(1024 * 1024):
                sha.update(block)
        if sha.hexdigest() != expected:
            raise ArchiveCorrupt(f"{raw.display}: stored member {name} does not match its "
                                 "SHA-256 in the index", member=name,
                                 hint="the archive was damaged after it was written; use "
                                 "another copy")
        done += size
        yield Event("verify", done, total, f"Verify {name}", None, bytes=done)
    return CiphertextReport(raw.display, len(index), total, kinds)


def verify_ciphertext(raw: RawTar) -> CiphertextReport:
    """:func:`iter_verify_ciphertext` to the end."""
    return drain(iter_verify_ciphertext(raw))


def is_sealed(path: str) -> bool | None:
    """Whether the archive at ``path`` is sealed, from its marker alone (a local tar file: its
    first member; an object: one ranged read); None when that cannot be known without
    reading it whole (standard input, another kind, not an archive: its reader says why)."""
    import tarfile

    from dbcrate.containers.base import check_marker
    from dbcrate.stores.objects import is_object_url

    try:
        if is_object_url(path):
            if path.endswith("/"):  # a dump directory on a prefix: never sealed
                return False
            from dbcrate.stores.manifest import object_marker_version

            return object_marker_version(path) == SEALED_FORMAT_VERSION
        if path == "-" or not os.path.isfile(path):
            return None
        with tarfile.open(path, mode="r:") as tar:
            first = tar.next()
            if first is None or first.name != MARKER or not first.isfile():
                return None
            handle = tar.extractfile(first)
            assert handle is not None
            return check_marker(handle.read(4096), path) == SEALED_FORMAT_VERSION
    except (tarfile.TarError, OSError, ValueError):
        return None
