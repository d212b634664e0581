"""Archives in object storage (issue 18): ``s3://bucket/key`` for dump, ls, verify, restore and
copy's neighbours, against a real S3 protocol server (moto's, started on 127.0.0.1 by these
tests). A dump becomes the object only when complete: a failed dump aborts its multipart
upload, a killed one leaves no object; an existing object is never replaced; a corrupted
object is caught by verify; no credential reaches an output or the archive."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dbcrate
from dbcrate.errors import (
    ArchiveCorrupt,
    NotAnArchive,
    OutputError,
    SourceValueError,
    UsageError,
)
from store_tools import count_ranged_reads, serving

from conftest import Databases, run_cli, run_sql
from content import snapshot

SECRET = "dbcrate-test-secret-value-42"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, for this module."""
    if os.environ.get("CI") != "true":
        pytest.importorskip("moto")
        pytest.importorskip("obstore")
    with serving(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], "moto's server", 10) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh bucket and the environment that points dbcrate (obstore) at the server; yields
    a boto3 client to look at the bucket with."""
    import uuid

    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET,
                        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server,
                        "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_server)
    name = f"b{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    client.bucket_name = name
    yield client


def _keys(client: Any) -> list[str]:
    listed = client.list_objects_v2(Bucket=client.bucket_name).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def _uploads(client: Any) -> list[Any]:
    return client.list_multipart_uploads(Bucket=client.bucket_name).get("Uploads") or []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_round_trip_through_a_bucket(kind: str, bucket: Any, chinook_sources,
                                     dbs: Databases) -> None:
    source = chinook_sources(kind)
    url = f"s3://{bucket.bucket_name}/backups/{kind}.crate"
    code, out, err = run_cli("dump", source, url, "--no-progress")
    assert code == 0, err
    assert url in out and SECRET not in out + err
    assert _keys(bucket) == [f"backups/{kind}.crate"] and _uploads(bucket) == []
    body = bucket.get_object(Bucket=bucket.bucket_name, Key=f"backups/{kind}.crate")["Body"].read()
    assert SECRET.encode() not in body and b"testing" not in body

    code, out, err = run_cli("ls", url)
    assert code == 0, err
    assert "11 tables" in out
    code, _, err = run_cli("verify", url)
    assert code == 0, err

    target = dbs.new(kind)
    code, _, err = run_cli("restore", url, target, "--no-progress")
    assert code == 0, err
    assert snapshot(source) == snapshot(target)


def test_an_existing_object_is_replaced_only_by_a_complete_archive(bucket: Any, dbs: Databases,
                                                                   chinook_sources) -> None:
    """As a local archive file: a dump replaces it when complete, a failed one leaves it."""
    bucket.put_object(Bucket=bucket.bucket_name, Key="x.crate", Body=b"mine")
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE zz (id int PRIMARY KEY, at timestamp)",
            "INSERT INTO zz VALUES (1, '294270-01-01')")
    code, _, err = run_cli("dump", source, f"s3://{bucket.bucket_name}/x.crate", "--no-progress")
    assert code == 11, err
    assert bucket.get_object(Bucket=bucket.bucket_name, Key="x.crate")["Body"].read() == b"mine"
    code, _, err = run_cli("dump", chinook_sources("sqlite"), f"s3://{bucket.bucket_name}/x.crate",
                           "--no-progress")
    assert code == 0, err
    with dbcrate.open_archive(f"s3://{bucket.bucket_name}/x.crate") as archive:
        assert len(archive.tables) == 11


def test_a_failed_dump_aborts_its_upload(bucket: Any, dbs: Databases) -> None:
    """Over 8 MiB of parts are uploaded, then a value the archive cannot hold ends the dump:
    no object, no multipart upload left open."""
    source = dbs.new("postgresql")
    run_sql(source,
            "CREATE TABLE aa (id int PRIMARY KEY, v text)",
            "INSERT INTO aa SELECT i, md5(random()::text) || md5(random()::text) "
            "FROM generate_series(1, 400000) i",
            "CREATE TABLE zz (id int PRIMARY KEY, at timestamp)",
            "INSERT INTO zz VALUES (1, '294270-01-01')")
    url = f"s3://{bucket.bucket_name}/failed.crate"
    with pytest.raises(SourceValueError):
        dbcrate.dump(source, url, jobs=1)
    assert _keys(bucket) == [] and _uploads(bucket) == []


def test_a_killed_dump_leaves_no_object(bucket: Any, dbs: Databases, tmp_path: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE big (id int PRIMARY KEY, v text)",
            "INSERT INTO big SELECT i, md5(random()::text) || md5(random()::text) "
            "FROM generate_series(1, 1500000) i")
    url = f"s3://{bucket.bucket_name}/killed.crate"
    proc = subprocess.Popen([sys.executable, "-m", "dbcrate", "dump", source, url,
                             "--no-progress", "-j", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _uploads(bucket) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until its first part is on its way
    assert proc.poll() is None, "the dump ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "killed.crate" not in _keys(bucket)


def test_a_corrupted_object_is_caught(bucket: Any, chinook_sources) -> None:
    url = f"s3://{bucket.bucket_name}/c.crate"
    dbcrate.dump(chinook_sources("sqlite"), url, include=["Track"])
    body = bytearray(bucket.get_object(Bucket=bucket.bucket_name, Key="c.crate")["Body"].read())
    body[len(body) // 3] ^= 0xFF  # inside the Track data, before the manifest
    bucket.put_object(Bucket=bucket.bucket_name, Key="bad.crate", Body=bytes(body))
    code, _, err = run_cli("verify", f"s3://{bucket.bucket_name}/bad.crate")
    assert code == 6, err
    with pytest.raises(ArchiveCorrupt), dbcrate.open_archive(
            f"s3://{bucket.bucket_name}/bad.crate") as archive:
        archive.verify()


def test_what_cannot_be_read_or_written_is_said(bucket: Any, chinook_sources) -> None:
    code, _, err = run_cli("ls", f"s3://{bucket.bucket_name}/nothing.crate")
    assert code == 4 and "does not exist" in err
    with pytest.raises(NotAnArchive):
        dbcrate.open_archive(f"s3://{bucket.bucket_name}/nothing.crate")
    code, _, err = run_cli("ls", "gs://bucket/x.crate")
    assert code == 2 and "not supported yet" in err
    for bad in ("backups//x.crate", "a/../x.crate", "x\n.crate"):
        code, _, err = run_cli("dump", chinook_sources("sqlite"),
                               f"s3://{bucket.bucket_name}/{bad}", "--no-progress")
        assert code == 2 and "is not taken" in " ".join(err.split()), (bad, err)
    with pytest.raises(UsageError, match="names no object"):
        dbcrate.dump(chinook_sources("sqlite"), f"s3://{bucket.bucket_name}/d/")
    code, _, err = run_cli("dump", chinook_sources("sqlite"), f"s3://{bucket.bucket_name}/d",
                           "--as", "directory", "--no-progress")
    assert code == 2 and "a prefix ending with /" in " ".join(err.split())
    code, _, err = run_cli("dump", chinook_sources("sqlite"), f"s3://{bucket.bucket_name}/d",
                           "--as", "sqlite", "--no-progress")
    assert code == 2 and "object storage" in err
    with pytest.raises(OutputError):
        dbcrate.dump(chinook_sources("sqlite"), "s3://no-such-bucket-dbcrate/x.crate")
    with pytest.raises(UsageError, match="convert writes a local archive"):
        dbcrate.convert(f"s3://{bucket.bucket_name}/x.crate", f"s3://{bucket.bucket_name}/y")
    assert _keys(bucket) == []


def test_prune_a_bucket_prefix(bucket: Any, chinook_sources) -> None:
    """Three archives under backups/ (a second apart), one under backups/old/ and an object
    named like an archive that is not one: --keep-last 1 removes the two older archives."""
    for name in ("a", "b", "c"):
        dbcrate.dump(chinook_sources("sqlite"), f"s3://{bucket.bucket_name}/backups/{name}.crate",
                     include=["Genre"])
        time.sleep(1.1)  # S3 times have one-second resolution
    dbcrate.dump(chinook_sources("sqlite"), f"s3://{bucket.bucket_name}/backups/old/x.crate",
                 include=["Genre"])
    bucket.put_object(Bucket=bucket.bucket_name, Key="backups/notes.crate", Body=b"x" * 2000)
    code, out, err = run_cli("prune", f"s3://{bucket.bucket_name}/backups/", "--keep-last", "1",
                             "--dry-run")
    assert code == 0, err
    assert "would remove  a.crate" in out and "would remove  b.crate" in out
    assert len(_keys(bucket)) == 5
    code, out, err = run_cli("prune", f"s3://{bucket.bucket_name}/backups", "--keep-last", "1")
    assert code == 0, err
    assert _keys(bucket) == ["backups/c.crate", "backups/notes.crate", "backups/old/x.crate"]
    assert "left alone (not a dbcrate archive)  notes.crate" in out


def test_ls_reads_the_ends_of_the_object(bucket: Any, chinook_sources, tmp_path: Path) -> None:
    """``ls`` of an object reads the marker and the manifest by ranged requests: it lists the
    same as ``ls`` of the file, does not notice a damaged data member (verify does), and
    refuses an object that is cut short or is no archive."""
    local = tmp_path / "c.crate"
    dbcrate.dump(chinook_sources("sqlite"), local)
    body = local.read_bytes()
    bucket.put_object(Bucket=bucket.bucket_name, Key="c.crate", Body=body)
    url = f"s3://{bucket.bucket_name}/c.crate"
    code, remote, err = run_cli("ls", url, "--json")
    assert code == 0, err
    code, here, err = run_cli("ls", str(local), "--json")
    assert code == 0, err
    assert json.loads(remote) | {"archive": ""} == json.loads(here) | {"archive": ""}

    damaged = bytearray(body)
    damaged[len(body) // 2] ^= 0xFF
    bucket.put_object(Bucket=bucket.bucket_name, Key="d.crate", Body=bytes(damaged))
    assert run_cli("ls", f"s3://{bucket.bucket_name}/d.crate")[0] == 0
    assert run_cli("verify", f"s3://{bucket.bucket_name}/d.crate")[0] == 6

    bucket.put_object(Bucket=bucket.bucket_name, Key="cut.crate", Body=body[: len(body) // 2])
    code, _, err = run_cli("ls", f"s3://{bucket.bucket_name}/cut.crate")
    assert code == 4 and "no manifest" in err
    bucket.put_object(Bucket=bucket.bucket_name, Key="junk.crate", Body=b"\0" * 4096)
    code, _, err = run_cli("ls", f"s3://{bucket.bucket_name}/junk.crate")
    assert code == 4 and "not a dbcrate archive" in err
    manifest = body.rfind(b"manifest.json\0")  # its digest no longer matches
    tampered = bytearray(body)
    tampered[manifest + 1024] ^= 0x01
    bucket.put_object(Bucket=bucket.bucket_name, Key="t.crate", Body=bytes(tampered))
    assert run_cli("ls", f"s3://{bucket.bucket_name}/t.crate")[0] == 6


def test_a_one_table_restore_reads_only_that_table(bucket: Any, dbs: Databases,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A dump to a bucket records each chunk's offset (format 5); restoring one small table of
    a 10 MB archive fetches the marker, the manifest and that table's member by ranged
    requests, never the whole object (the requests are counted where dbcrate makes them)."""

    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE big (id int PRIMARY KEY, v text)",
            "INSERT INTO big SELECT i, md5(random()::text) || md5(random()::text) "
            "FROM generate_series(1, 250000) i",
            "CREATE TABLE small (id int PRIMARY KEY, name text)",
            "INSERT INTO small SELECT i, 'n' || i FROM generate_series(1, 10) i")
    url = f"s3://{bucket.bucket_name}/two.crate"
    dbcrate.dump(source, url)
    size = bucket.head_object(Bucket=bucket.bucket_name, Key="two.crate")["ContentLength"]
    assert size > 5 * 1024 * 1024
    with dbcrate.open_archive(url) as archive:
        assert archive.manifest.format_version == 5
        small = archive.table("small")
        assert all(c.offset is not None for c in small.chunks)

    fetched = count_ranged_reads(monkeypatch)
    target = dbs.new("postgresql")
    report = dbcrate.restore(url, target, include=["small"])
    assert report.ok and [t.name for t in report.tables] == ["small"]
    assert snapshot(source, ["small"]) == snapshot(target, ["small"])
    # the marker, one tail of 1 MiB holding the manifest, and small's one member
    assert sorted(fetched)[-1] == 1024 * 1024 and sum(c.size for c in small.chunks) in fetched
    assert sum(fetched) < 1024 * 1024 + 64 * 1024 < size / 5


def test_dump_to_a_prefix_names_the_archive_and_prune_rotates(bucket: Any, chinook_sources) -> None:
    """``dump URL s3://bucket/backups/`` names the archive as in a local directory, never
    replacing one (a second dump in the same second gets ``-2``); with prune, a rotation."""
    source = chinook_sources("sqlite")
    names = []
    for _ in range(3):
        code, out, err = run_cli("dump", source, f"s3://{bucket.bucket_name}/backups/", "-t",
                                 "Genre", "--json")
        assert code == 0, err
        names.append(json.loads(out)["archive"])
    keys = _keys(bucket)
    assert len(set(names)) == 3 and len(keys) == 3
    assert all(re.fullmatch(r"backups/\w+_\d{8}T\d{6}Z_data(-\d)?\.crate", k)
               for k in keys), keys
    time.sleep(1.1)
    code, out, err = run_cli("dump", source, f"s3://{bucket.bucket_name}/backups/", "-t", "Genre",
                             "--json")
    newest = json.loads(out)["archive"]
    code, out, err = run_cli("prune", f"s3://{bucket.bucket_name}/backups/", "--keep-last", "1")
    assert code == 0, err
    assert _keys(bucket) == [newest.removeprefix(f"s3://{bucket.bucket_name}/")]


def test_a_chunk_offset_needs_format_version_5() -> None:
    """Format 5 adds ``offset`` to a chunk: a manifest of an older version with one is refused,
    and an offset must be a non-negative integer."""
    from dbcrate.model.manifest import Manifest

    chunk = {"member": "data/t0000/c000000.parquet", "rows": 1, "size": 10,
             "sha256": "0" * 64, "offset": 1536}
    table = {"name": "t", "columns": [
        {"name": "id", "type": {"kind": "int32"}, "engine_type": "integer"}]}
    manifest = {"format": "dbcrate-archive", "format_version": 4, "tables": [
        {"name": "t", "schema": table, "chunks": [chunk]}]}
    with pytest.raises(NotAnArchive, match="needs format version 5"):
        Manifest.from_json(json.dumps(manifest).encode())
    manifest["format_version"] = 5
    assert Manifest.from_json(json.dumps(manifest).encode()).tables[0].chunks[0].offset == 1536
    chunk["offset"] = -1
    with pytest.raises(NotAnArchive):
        Manifest.from_json(json.dumps(manifest).encode())


def test_encrypted_archive_in_a_bucket(bucket: Any, dbs: Databases, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A sealed dump to a bucket (formats 5 and 6): no name or value in the object; ``ls`` and
    a one-table restore fetch the ends and that table's sealed member only, decrypting those;
    a wrong key is exit 18 with nothing written; verify without a key checks the ciphertext."""
    from dbcrate.crypto.keys import generate_identity

    secret, public = generate_identity()
    identity = tmp_path / "id.txt"
    identity.write_text(secret + "\n")
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE big_secret_table (id int PRIMARY KEY, v text)",
            "INSERT INTO big_secret_table SELECT i, md5(random()::text) || md5(i::text) "
            "FROM generate_series(1, 200000) i",
            "CREATE TABLE small (id int PRIMARY KEY, name text)",
            "INSERT INTO small SELECT i, 'confidential-' || i FROM generate_series(1, 10) i")
    url = f"s3://{bucket.bucket_name}/sealed.crate"
    code, _, err = run_cli("dump", source, url, "-r", public, "--no-progress")
    assert code == 0, err
    body = bucket.get_object(Bucket=bucket.bucket_name, Key="sealed.crate")["Body"].read()
    assert b"big_secret_table" not in body and b"confidential" not in body
    assert b"manifest.json" not in body and b"small" not in body


    target = dbs.new("postgresql")
    with monkeypatch.context() as patched:
        fetched = count_ranged_reads(patched)
        code, out, err = run_cli("ls", url, "-i", str(identity))
        assert code == 0, err
        assert "big_secret_table" in out and "encrypted: 1 X25519 recipient" in out
        assert sum(fetched) < 2 * 1024 * 1024 < len(body) / 2
        fetched.clear()
        code, _, err = run_cli("restore", url, target, "-t", "small", "-i", str(identity),
                               "--no-progress")
        assert code == 0, err
        assert sum(fetched) < 2 * 1024 * 1024 < len(body) / 2
    assert snapshot(source, ["small"]) == snapshot(target, ["small"])

    other = tmp_path / "other.txt"
    other.write_text(generate_identity()[0] + "\n")
    fresh = dbs.new("postgresql")
    code, _, err = run_cli("restore", url, fresh, "-i", str(other), "--no-progress")
    assert code == 18, err
    from conftest import tables
    assert tables(fresh) == set()
    code, out, err = run_cli("verify", url, "--json")
    assert code == 0, err
    assert json.loads(out)["decrypted"] is False
    code, out, err = run_cli("verify", url, "-i", str(identity), "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 200010
    # what a ranged read keeps on disk while the archive is open is still encrypted
    from dbcrate.crypto.keys import Keyring

    with dbcrate.open_archive(url, keys=Keyring((str(identity),))) as opened:
        entry = opened.table("small")
        assert sum(b.num_rows for c in entry.chunks for b in opened.chunk_batches(entry, c)) == 10
        kept = [Path(p).read_bytes() for p in opened.reader._fetched.values()]
        assert kept and not any(b"PAR1" in k or b"confidential" in k for k in kept)
    # a sealed archive made locally and uploaded (no offsets) is read whole, opened once
    local = tmp_path / "local.crate"
    code, _, err = run_cli("dump", source, str(local), "-t", "small", "-r", public,
                           "--no-progress")
    assert code == 0, err
    bucket.put_object(Bucket=bucket.bucket_name, Key="up.crate", Body=local.read_bytes())
    code, out, err = run_cli("ls", f"s3://{bucket.bucket_name}/up.crate", "-i", str(identity))
    assert code == 0 and "small" in out, err


def test_a_dump_directory_on_a_bucket_prefix(bucket: Any, chinook_sources, dbs: Databases,
                                             tmp_path: Path) -> None:
    """``dump --as directory s3://bucket/prefix/``: one object per member, named as the files
    of a dump directory, the manifest last; read back (ls, verify, restore) from the prefix and
    checked as a directory is: a changed, an extra or a missing object is refused; a prefix
    holding objects is refused for a dump, and a failed dump deletes what it wrote."""
    source = chinook_sources("postgresql")
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.txt").write_text("first file")
    url = f"s3://{bucket.bucket_name}/dumps/one/"
    code, _, err = run_cli("dump", source, url, "--as", "directory", "--storage", str(media),
                           "--storages-basepath", str(tmp_path), "--no-progress")
    assert code == 0, err
    names = [k.removeprefix("dumps/one/") for k in _keys(bucket)]
    assert "dbcrate-archive.json" in names and "manifest.json" in names
    assert sum(n.startswith("data/") for n in names) == 11
    local = tmp_path / "local"
    dbcrate.dump(source, local, container="directory", storages=[str(media)],
                 storages_basepath=str(tmp_path))
    assert sorted(names) == sorted(p.relative_to(local).as_posix()
                                   for p in local.rglob("*") if p.is_file())
    code, out, err = run_cli("ls", url)
    assert code == 0 and "11 tables" in out, err
    code, _, err = run_cli("verify", url)
    assert code == 0, err
    target = dbs.new("postgresql")
    code, _, err = run_cli("restore", url, target, "--storages-to", str(tmp_path / "out"),
                           "--no-progress")
    assert code == 0, err
    assert snapshot(source) == snapshot(target)
    assert (tmp_path / "out" / "media" / "a.txt").read_text() == "first file"

    # a prefix that holds objects is not written into
    code, _, err = run_cli("dump", source, url, "--as", "directory", "--no-progress")
    assert code == 12 and "already holds" in err
    # damaged, extra, missing objects
    first = next(k for k in _keys(bucket) if "/data/" in k)
    body = bucket.get_object(Bucket=bucket.bucket_name, Key=first)["Body"].read()
    bucket.put_object(Bucket=bucket.bucket_name, Key=first, Body=body[:-1] + bytes([body[-1] ^ 1]))
    assert run_cli("verify", url)[0] == 6
    bucket.put_object(Bucket=bucket.bucket_name, Key=first, Body=body)
    bucket.put_object(Bucket=bucket.bucket_name, Key="dumps/one/data/stray.parquet", Body=b"x")
    code, _, err = run_cli("ls", url)
    assert code == 6 and "not listed in the manifest" in err
    bucket.delete_object(Bucket=bucket.bucket_name, Key="dumps/one/data/stray.parquet")
    bucket.delete_object(Bucket=bucket.bucket_name, Key="dumps/one/manifest.json")
    code, _, err = run_cli("ls", url)
    assert code == 6 and "incomplete" in err

    # a dump that fails (a value the archive cannot hold) leaves nothing under its prefix
    bad = dbs.new("postgresql")
    run_sql(bad, "CREATE TABLE a (id int PRIMARY KEY)", "INSERT INTO a VALUES (1)",
            "CREATE TABLE zz (id int PRIMARY KEY, at timestamp)",
            "INSERT INTO zz VALUES (1, '294270-01-01')")
    code, _, err = run_cli("dump", bad, f"s3://{bucket.bucket_name}/dumps/two/", "--as",
                           "directory", "--no-progress", "-j", "1")
    assert code == 11, err
    assert not [k for k in _keys(bucket) if k.startswith("dumps/two/")]


@pytest.mark.parametrize("sealed", [False, True])
def test_an_archive_with_storages_in_a_bucket_is_read_by_ranges(
        bucket: Any, dbs: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sealed: bool) -> None:
    """A dump with storages to a bucket records where the storage index and packs start: a
    restore of the tables alone fetches none of the files' bytes, ``ls`` the ends only, and a
    restore of the storages fetches the packs by ranges (a file larger than a range too) and
    gives back every file; verify reads by ranges too."""
    from dbcrate.crypto.keys import generate_identity
    from dbcrate.stores.ranged import FETCH_BYTES

    secret, public = generate_identity()
    identity = tmp_path / "id.txt"
    identity.write_text(secret + "\n")
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE small (id int PRIMARY KEY, name text)",
            "INSERT INTO small SELECT i, 'n' || i FROM generate_series(1, 10) i")
    media = tmp_path / "media"
    (media / "docs").mkdir(parents=True)
    files = {"a.txt": b"first file", "docs/b.bin": os.urandom(3 * 1024 * 1024),
             "docs/large.bin": os.urandom(FETCH_BYTES + 3 * 1024 * 1024)}
    for name, data in files.items():
        (media / name).write_bytes(data)
    url = f"s3://{bucket.bucket_name}/with-media.crate"
    keys = ["-r", public] if sealed else []
    code, _, err = run_cli("dump", source, url, "--storage", str(media), "--storages-basepath",
                           str(tmp_path), "--no-progress", *keys)
    assert code == 0, err
    size = len(bucket.get_object(Bucket=bucket.bucket_name, Key="with-media.crate")["Body"].read())
    identity_args = ["-i", str(identity)] if sealed else []

    with monkeypatch.context() as patched:
        fetched = count_ranged_reads(patched)  # (reading the object whole fails the test)
        code, out, err = run_cli("ls", url, *identity_args)
        assert code == 0 and "small" in out, err
        assert sum(fetched) < 3 * 1024 * 1024 < size / 4  # the ends (read twice by ls)
        fetched.clear()
        target = dbs.new("postgresql")
        code, _, err = run_cli("restore", url, target, "--no-progress", *identity_args)
        assert code == 0, err
        assert sum(fetched) < 2 * 1024 * 1024  # the tables alone: no pack fetched
        assert snapshot(source) == snapshot(target)
        fetched.clear()
        out_dir = tmp_path / "out"
        code, _, err = run_cli("restore", url, dbs.new("postgresql"), "--storages-to",
                               str(out_dir), "--no-progress", *identity_args)
        assert code == 0, err
        assert max(fetched) <= FETCH_BYTES + 64 * 1024  # (a sealed range: its overhead)
        for name, data in files.items():
            assert (out_dir / "media" / name).read_bytes() == data
        code, out, err = run_cli("verify", url, *identity_args)
        assert code == 0, err


def test_storage_offsets_are_optional_and_checked() -> None:
    from dbcrate.storages.index import StorageManifest

    section = {"roots": [{"name": "media", "files": 1, "bytes": 3}],
               "index": {"member": "storage/index.jsonl.zst", "size": 10, "sha256": "a" * 64},
               "packs": [{"member": "storage/p000000.pack", "size": 3, "sha256": "b" * 64}]}
    plain = StorageManifest.from_dict(section)
    assert not plain.placed() and "offset" not in json.dumps(plain.to_dict())
    section["index"]["offset"] = 512  # type: ignore[index]
    section["packs"][0]["offset"] = 2048  # type: ignore[index]
    placed = StorageManifest.from_dict(section)
    assert placed.placed() and [m[3] for m in placed.placed_members()] == [512, 2048]
    assert StorageManifest.from_dict(placed.to_dict()) == placed
    for bad in (-1, "12", 1.5, True):
        section["packs"][0]["offset"] = bad  # type: ignore[index]
        with pytest.raises(ValueError, match="offset"):
            StorageManifest.from_dict(section)
