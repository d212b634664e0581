"""Encrypted (sealed) archives, issue 18: ``dump -r/-R/--passphrase``, ``-i`` and
``DBCRATE_IDENTITY`` to read, docs/FORMAT.md "Sealed archives".

What a user relies on: the archive holds no plaintext name or value; the right key gives back
every row, a wrong or missing key is refused with exit 18 before anything is written;
``verify`` without a key checks the ciphertext, with one everything; any changed byte of a
sealed member is caught (a property over every member and offset); the archive key opens with
the ``age`` tool itself. Restores are compared with the source by :mod:`content`, which uses no
dbcrate code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.crypto.keys import Encryption, Keyring, generate_identity
from dbcrate.crypto.sealed import INDEX, KEY_MEMBER, SCHEME, SEALED_PREFIX, SealedReader
from dbcrate.errors import ArchiveCorrupt, CannotDecrypt, UsageError

from conftest import CHINOOK, Databases, run_cli
from content import snapshot

CHINOOK_DB = CHINOOK / "Chinook_Sqlite.sqlite"
SOURCE = f"sqlite:///{CHINOOK_DB}"


def _identity(directory: Path, name: str = "id.txt") -> tuple[Path, str]:
    secret, public = generate_identity()
    path = directory / name
    path.write_text(f"# test identity\n{secret}\n")
    path.chmod(0o600)
    return path, public


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Chinook dumped sealed for one recipient, and the same dump in the clear:
    ``(sealed archive, its identity, plain archive)``."""
    where = tmp_path_factory.mktemp("sealed")
    identity, public = _identity(where)
    code, _, err = run_cli("dump", SOURCE, str(where / "c.crate"), "-r", public, "--no-progress")
    assert code == 0, err
    code, _, err = run_cli("dump", SOURCE, str(where / "plain.crate"), "--no-progress")
    assert code == 0, err
    return where / "c.crate", identity, where / "plain.crate"


def test_no_name_or_value_in_the_clear(sealed: tuple[Path, Path, Path]) -> None:
    archive, _, plain = sealed
    body, clear = archive.read_bytes(), plain.read_bytes()
    # what the plain archive shows (manifest, member names, values of the native schema)
    secrets = [b"InvoiceLine", b"PlaylistTrack", b"Album", b"data/t0001", b"UnitPrice",
               b"CREATE TABLE", b"Chinook_Sqlite", b"sqlite"]
    assert all(s in clear for s in secrets)
    assert [s for s in secrets if s in body] == []
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[:2] == ["dbcrate-archive.json", KEY_MEMBER] and names[-2:] == [INDEX,
                                                                                "index.sha256"]
    assert all(n.startswith(SEALED_PREFIX) for n in names[2:-2])
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    marker = json.loads(tarfile.open(archive).extractfile("dbcrate-archive.json").read())
    assert marker["format_version"] == 6 and marker["sealed"]["scheme"]


def test_round_trip_with_the_identity(sealed: tuple[Path, Path, Path], dbs: Databases,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    archive, identity, _ = sealed
    code, out, err = run_cli("ls", str(archive), "-i", str(identity))
    assert code == 0, err
    assert "InvoiceLine" in out and "encrypted: 1 X25519 recipient" in out
    code, out, err = run_cli("verify", str(archive), "-i", str(identity), "--json")
    assert code == 0, err
    assert json.loads(out)["encrypted"] is True and json.loads(out)["rows"] == 15607
    target = dbs.new("sqlite")
    code, _, err = run_cli("restore", str(archive), target, "-i", str(identity), "--no-progress")
    assert code == 0, err
    assert snapshot(target) == snapshot(SOURCE)
    # the environment variable, as cron jobs and the Django commands use it
    monkeypatch.setenv("DBCRATE_IDENTITY", str(identity))
    again = dbs.new("sqlite")
    report = dbcrate.restore(archive, again, include=["Album"])
    assert report.ok and snapshot(again)["Album"] == snapshot(SOURCE)["Album"]


def test_a_missing_or_wrong_key_is_refused_before_anything_is_written(
        sealed: tuple[Path, Path, Path], tmp_path: Path, dbs: Databases,
        monkeypatch: pytest.MonkeyPatch) -> None:
    archive, _, _ = sealed
    monkeypatch.delenv("DBCRATE_IDENTITY", raising=False)
    monkeypatch.delenv("DBCRATE_PASSPHRASE", raising=False)
    target = tmp_path / "t.db"
    code, _, err = run_cli("restore", str(archive), f"sqlite:///{target}", "--no-progress")
    assert code == 18, err
    assert "no identity was given" in err and "-i/--identity" in err
    assert not target.exists()
    other, _ = _identity(tmp_path, "other.txt")
    pg = dbs.new("postgresql")
    code, _, err = run_cli("restore", str(archive), pg, "-i", str(other), "--no-progress")
    assert code == 18, err
    assert "none of the 1 identities given opens this archive" in " ".join(err.split())
    assert "Traceback" not in err and other.read_text().split()[-1] not in err
    from conftest import tables
    assert tables(pg) == set()
    code, _, err = run_cli("ls", str(archive), "-i", str(other))
    assert code == 18, err
    # an identity file that is none: named, its line never echoed (it may be a secret)
    bad = tmp_path / "bad.txt"
    bad.write_text("AGE-SECRET-KEY-1NOTAKEY\n")
    code, _, err = run_cli("ls", str(archive), "-i", str(bad))
    assert code == 2 and "line 1: not an age identity" in err and "NOTAKEY" not in err


def test_verify_without_a_key_checks_the_ciphertext(sealed: tuple[Path, Path, Path],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    archive, _, _ = sealed
    monkeypatch.delenv("DBCRATE_IDENTITY", raising=False)
    code, out, err = run_cli("verify", str(archive), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["decrypted"] is False and report["recipients"] == ["X25519"]
    assert report["members"] == 14  # key.age, 11 chunks, the manifest and its digest
    damaged = tmp_path / "damaged.crate"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    code, _, err = run_cli("verify", str(damaged))
    assert code == 6, err
    assert "does not match its SHA-256 in the index" in " ".join(err.split())
    # standard input: spooled, then the same check
    piped = subprocess.run([sys.executable, "-m", "dbcrate", "verify", "-", "--json"],
                           input=archive.read_bytes(), capture_output=True,
                           env={k: v for k, v in os.environ.items() if k != "DBCRATE_IDENTITY"})
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["decrypted"] is False
    # key.age damaged: a corrupt archive (exit 6), not a wrong key (exit 18)
    with tarfile.open(archive) as tar:
        key_start = tar.getmember(KEY_MEMBER).offset_data
        key_size = tar.getmember(KEY_MEMBER).size
    bad_key = bytearray(archive.read_bytes())
    bad_key[key_start + key_size - 3] ^= 0x01
    (tmp_path / "badkey.crate").write_bytes(bytes(bad_key))
    identity = sealed[1]
    code, _, err = run_cli("ls", str(tmp_path / "badkey.crate"), "-i", str(identity))
    assert code == 6 and "key.age is damaged" in err, err
    cut = tmp_path / "cut.crate"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    code, _, err = run_cli("verify", str(cut))
    assert code in (4, 6), err
    assert "Traceback" not in err


def _member_spans(archive: Path) -> list[tuple[str, int, int]]:
    with tarfile.open(archive) as tar:
        return [(m.name, m.offset_data, m.size) for m in tar.getmembers()
                if m.name.startswith(SEALED_PREFIX)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_of_a_sealed_member_is_caught(sealed: tuple[Path, Path, Path],
                                                       data: st.DataObject) -> None:
    """Property: flip one bit anywhere in any sealed member (data, the manifest, its digest)
    and the keyed reader refuses it - at open (the manifest) or when the member is read - with
    ArchiveCorrupt naming a member; never wrong rows."""
    archive, identity, _ = sealed
    spans = _member_spans(archive)
    _, start, size = data.draw(st.sampled_from(spans))
    offset = data.draw(st.integers(0, size - 1))
    bit = data.draw(st.integers(0, 7))
    body = bytearray(archive.read_bytes())
    body[start + offset] ^= 1 << bit
    keys = Keyring((str(identity),), ask=False)
    with pytest.raises(ArchiveCorrupt) as caught, \
            dbcrate.open_archive(io.BytesIO(bytes(body)), keys=keys) as opened:
        opened.verify()
    assert caught.value.member is not None


def test_members_moved_between_names_do_not_decrypt(sealed: tuple[Path, Path, Path],
                                                    tmp_path: Path) -> None:
    """Each member's key is bound to its name: two sealed members stored under each other's
    names, with an index rewritten to match (so the keyless check passes), fail
    authentication when read with the key."""
    archive, identity, _ = sealed
    with tarfile.open(archive) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    stored = [name for name, _ in members if name.startswith(SEALED_PREFIX)]
    swap = {stored[0]: stored[1], stored[1]: stored[0]}
    moved = [(swap.get(name, name), body) for name, body in members
             if name not in (INDEX, "index.sha256")]
    index = [[n, len(b), hashlib.sha256(b).hexdigest()] for n, b in moved
             if n != "dbcrate-archive.json"]
    raw = json.dumps({"scheme": SCHEME, "members": index}).encode()
    moved += [(INDEX, raw), ("index.sha256", (hashlib.sha256(raw).hexdigest() + "\n").encode())]
    out = tmp_path / "swapped.crate"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in moved:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    assert run_cli("verify", str(out))[0] == 0  # the ciphertext is intact
    keys = Keyring((str(identity),), ask=False)
    with pytest.raises(ArchiveCorrupt, match=r"holds \d+ bytes|fails authentication"), \
            dbcrate.open_archive(out, keys=keys) as opened:
        opened.verify()


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3 * 65536 + 7), name=st.text(min_size=1, max_size=40),
       other=st.text(min_size=1, max_size=40), cut=st.integers(1, 40))
def test_segments_round_trip_and_bind_key_and_name(data: bytes, name: str, other: str,
                                                   cut: int) -> None:
    """Property of one sealed member: it decrypts to its bytes, from any offset; under another
    name, another key, or cut short by any number of bytes, it does not decrypt."""
    from dbcrate.crypto.segments import OpenedStream, SealingReader, plain_size, sealed_size

    key = bytes(range(32))
    sealed_bytes = SealingReader(io.BytesIO(data), len(data), key, name).read()
    assert len(sealed_bytes) == sealed_size(len(data)) and plain_size(len(sealed_bytes)) == len(data)
    opened = OpenedStream(io.BytesIO(sealed_bytes), len(sealed_bytes), key, name, "t")
    assert opened.read() == data
    if data:
        opened.seek(len(data) // 3)
        assert opened.read(70000) == data[len(data) // 3:len(data) // 3 + 70000]
    wrong = [(key, other)] if other != name else []
    wrong.append((bytes(32), name))
    for wrong_key, wrong_name in wrong:
        with pytest.raises(ArchiveCorrupt):
            OpenedStream(io.BytesIO(sealed_bytes), len(sealed_bytes), wrong_key, wrong_name,
                         "t").read()
    short = sealed_bytes[:-cut]
    with pytest.raises(ArchiveCorrupt):
        OpenedStream(io.BytesIO(short), len(short), key, name, "t").read()


def test_the_age_tool_opens_the_archive_key(sealed: tuple[Path, Path, Path]) -> None:
    """key.age is a standard age file: ``age -d`` with the identity gives the 32-byte key,
    which opens the members as docs/FORMAT.md describes."""
    if shutil.which("age") is None and os.environ.get("CI") != "true":
        pytest.skip("the age tool is not installed (scripts/test.sh installs it)")
    archive, identity, _ = sealed
    with tarfile.open(archive) as tar:
        wrapped = tar.extractfile(KEY_MEMBER).read()
    key = subprocess.run(["age", "-d", "-i", str(identity)], input=wrapped,
                         capture_output=True, check=True).stdout
    assert len(key) == 32
    from dbcrate.crypto.sealed import hidden_name
    from dbcrate.crypto.segments import OpenedStream

    with tarfile.open(archive) as tar:
        hidden = hidden_name(key, "manifest.json")
        stored = tar.extractfile(hidden).read()
    plain = OpenedStream(io.BytesIO(stored), len(stored), key, "manifest.json", "x").read()
    assert {t["name"] for t in json.loads(plain)["tables"]} >= {"Artist", "Album", "Track"}


def test_passphrase_and_several_recipients(tmp_path: Path, dbs: Databases,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBCRATE_PASSPHRASE", "correct horse battery staple")
    archive = tmp_path / "p.crate"
    code, _, err = run_cli("dump", SOURCE, str(archive), "--passphrase", "-t", "Genre",
                           "--no-progress")
    assert code == 0, err
    assert b"correct horse" not in archive.read_bytes()
    target = dbs.new("sqlite")
    code, _, err = run_cli("restore", str(archive), target, "--no-progress")
    assert code == 0, err
    assert snapshot(target)["Genre"] == snapshot(SOURCE)["Genre"]
    monkeypatch.setenv("DBCRATE_PASSPHRASE", "wrong")
    code, _, err = run_cli("ls", str(archive))
    assert code == 18 and "passphrase does not open" in err
    # a recipients file with two keys (and an ssh key): each identity opens it alone
    first, one = _identity(tmp_path, "1.txt")
    second, two = _identity(tmp_path, "2.txt")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "ssh")],
                   check=True)
    ssh_public = (tmp_path / "ssh.pub").read_text().strip()
    recipients = tmp_path / "team.txt"
    recipients.write_text(f"# the team\n{one}\n\n{two}\n{ssh_public}\n")
    many = tmp_path / "m.crate"
    code, _, err = run_cli("dump", SOURCE, str(many), "-R", str(recipients), "-t", "Genre",
                           "--no-progress")
    assert code == 0, err
    monkeypatch.delenv("DBCRATE_PASSPHRASE")
    for identity in (first, second, tmp_path / "ssh"):
        code, out, err = run_cli("ls", str(many), "-i", str(identity), "--json")
        assert code == 0, (identity, err)
        assert json.loads(out)["recipients"] == ["X25519", "X25519", "ssh-ed25519"]


def test_bad_encryption_options_are_refused_before_reading(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _, public = _identity(tmp_path)
    cases = [
        (["-r", "age1nope"], "recipient 1 is not an age or ssh public key"),
        (["-r", public, "--as", "sqlite"], "the sqlite kind cannot be encrypted"),
        (["-R", str(tmp_path / "missing.txt")], "cannot read the recipients file"),
    ]
    for extra, message in cases:
        out = tmp_path / "x.crate"
        code, _, err = run_cli("dump", SOURCE, str(out), *extra, "--no-progress")
        assert code == 2 and message in err, (extra, err)
        assert not out.exists()
    monkeypatch.setenv("DBCRATE_PASSPHRASE", "x")
    code, _, err = run_cli("dump", SOURCE, str(tmp_path / "y.crate"), "-r", public,
                           "--passphrase")
    assert code == 2 and "cannot be combined" in err
    # the passphrase is never an argument (other users' ps would show it)
    code, _, err = run_cli("dump", SOURCE, str(tmp_path / "y.crate"), "--passphrase", "secret")
    assert code == 2
    with pytest.raises(UsageError):
        Encryption().check()
    # the identity file given where the public key belongs: refused, the secret not shown
    identity, _ = _identity(tmp_path, "mine.txt")
    code, _, err = run_cli("dump", SOURCE, str(tmp_path / "z.crate"), "-R", str(identity))
    secret = identity.read_text().split()[-1]
    assert code == 2 and "is a private key" in err and secret not in err
    assert secret[15:40] not in err


def test_convert_encrypts_and_decrypts(sealed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    archive, identity, plain = sealed
    _, public = _identity(tmp_path, "new.txt")
    resealed = tmp_path / "resealed.crate"
    code, _, err = run_cli("convert", str(plain), str(resealed), "-r", public, "--no-progress")
    assert code == 0, err
    assert b"InvoiceLine" not in resealed.read_bytes()
    out = tmp_path / "open.sqlite"
    code, _, err = run_cli("convert", str(archive), str(out), "--as", "sqlite", "-i",
                           str(identity), "--no-progress")
    assert code == 0, err
    with dbcrate.open_archive(out) as opened:
        assert opened.manifest.rows == 15607
    code, _, err = run_cli("convert", str(archive), str(tmp_path / "d"), "--as", "directory",
                           "-i", str(identity), "-r", public)
    assert code == 2 and "cannot be encrypted" in err
    # an archive dumped to object storage (chunk offsets, format 5) sealed by convert: the
    # offsets were the source tar's, so none is kept (a ranged reader would read elsewhere)
    v5 = Path(__file__).parent / "fixtures" / "format-v5" / "chinook-sqlite-s3.crate"
    key, v5_public = _identity(tmp_path, "v5.txt")
    out5 = tmp_path / "v5-sealed.crate"
    code, _, err = run_cli("convert", str(v5), str(out5), "-r", v5_public, "--no-progress")
    assert code == 0, err
    with dbcrate.open_archive(out5, keys=Keyring((str(key),))) as opened:
        opened.verify()
        assert all(c.offset is None for t in opened.tables for c in t.chunks)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_server_round_trip_sealed(kind: str, chinook_sources, dbs: Databases,
                                  tmp_path: Path) -> None:
    source = chinook_sources(kind)
    identity, public = _identity(tmp_path)
    archive = tmp_path / "s.crate"
    code, _, err = run_cli("dump", source, str(archive), "-r", public, "--no-progress")
    assert code == 0, err
    target = dbs.new(kind)
    code, _, err = run_cli("restore", str(archive), target, "-i", str(identity), "--no-progress")
    assert code == 0, err
    assert snapshot(target) == snapshot(source)


def test_storages_are_sealed_too(tmp_path: Path, dbs: Databases) -> None:
    media = tmp_path / "media"
    (media / "docs").mkdir(parents=True)
    (media / "docs" / "secret-plan.txt").write_text("the launch is on tuesday")
    identity, public = _identity(tmp_path)
    archive = tmp_path / "m.crate"
    code, _, err = run_cli("dump", SOURCE, str(archive), "-t", "Genre", "--storage", str(media),
                           "--storages-basepath", str(tmp_path), "-r", public, "--no-progress")
    assert code == 0, err
    assert b"secret-plan" not in archive.read_bytes() and b"tuesday" not in archive.read_bytes()
    out = tmp_path / "restored"
    code, _, err = run_cli("restore", str(archive), dbs.new("sqlite"), "-i", str(identity),
                           "--storages-to", str(out), "--no-progress")
    assert code == 0, err
    assert (out / "media" / "docs" / "secret-plan.txt").read_text() == "the launch is on tuesday"


def test_library_reader_decrypts_only_what_it_reads(sealed: tuple[Path, Path, Path]) -> None:
    archive, identity, _ = sealed
    with dbcrate.open_archive(archive, keys=Keyring((str(identity),))) as opened:
        reader = opened.reader
        assert isinstance(reader, SealedReader)
        album = opened.table("Album")
        rows = sum(b.num_rows for c in album.chunks for b in opened.chunk_batches(album, c))
        assert rows == 347
    with pytest.raises(CannotDecrypt):
        dbcrate.open_archive(archive, keys=Keyring(ask=False))


def test_keygen_writes_a_private_identity_once(tmp_path: Path) -> None:
    path = tmp_path / "k.txt"
    code, out, err = run_cli("keygen", "-o", str(path))
    assert code == 0, err
    public = out.strip()
    assert public.startswith("age1") and oct(path.stat().st_mode & 0o777) == "0o600"
    assert "AGE-SECRET-KEY-1" in path.read_text() and "AGE-SECRET-KEY" not in out + err
    code, _, err = run_cli("keygen", "-o", str(path))
    assert code == 12 and "never replaces" in err
