"""Archives in Azure Blob Storage (``az://container/blob``, issue 18) against Azurite, the
Azure Storage emulator, started by these tests on 127.0.0.1 (``npm install azurite`` into a
cache directory when it is not there; scripts/test.sh has Node.js). The same guarantees as
``s3://``: an archive appears only when complete, ``ls`` and a one-table restore read by
ranges, encryption, prune."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store_tools import count_ranged_reads, serving

from conftest import Databases, run_cli, run_sql
from content import snapshot

ACCOUNT = "devstoreaccount1"
#: Azurite's documented well-known development key (public: no secret)
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CACHE = Path(os.environ.get("DBCRATE_TEST_CACHE", Path.home() / ".cache" / "dbcrate-tests"))


def _azurite() -> Path | None:
    """The azurite-blob program, installed with npm into the cache when missing."""
    program = CACHE / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if program.exists():
        return program
    if shutil.which("npm") is None:
        return None
    (CACHE / "azurite").mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                           "azurite@3"], cwd=CACHE / "azurite", capture_output=True,
                          timeout=600)
    return program if done.returncode == 0 and program.exists() else None


@pytest.fixture(scope="module")
def azure_endpoint() -> Iterator[str]:
    program = _azurite()
    if program is None or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Azurite cannot be installed (npm, Node.js)")
        pytest.skip("Azurite (npm install azurite) is not available")
    with serving(lambda port: [str(program), "--silent", "--inMemoryPersistence", "--blobHost",
                               "127.0.0.1", "--blobPort", str(port), "--skipApiVersionCheck"],
                 "Azurite", 15) as port:
        yield f"http://127.0.0.1:{port}/{ACCOUNT}"


@pytest.fixture
def container(azure_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh container, the environment that points dbcrate at it; yields its client."""
    from azure.storage.blob import BlobServiceClient

    for name, value in {"AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": KEY,
                        "AZURE_ENDPOINT": azure_endpoint, "AZURE_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(name, value)
    service = BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint={azure_endpoint};")
    name = f"c{uuid.uuid4().hex[:12]}"
    client = service.create_container(name)
    yield client


def _names(client: Any) -> list[str]:
    return sorted(b.name for b in client.list_blobs())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_round_trip_through_a_container(kind: str, container: Any, chinook_sources,
                                        dbs: Databases) -> None:
    source = chinook_sources(kind)
    url = f"az://{container.container_name}/backups/{kind}.crate"
    code, out, err = run_cli("dump", source, url, "--no-progress")
    assert code == 0, err
    assert _names(container) == [f"backups/{kind}.crate"] and KEY not in out + err
    body = container.download_blob(f"backups/{kind}.crate").readall()
    assert KEY.encode() not in body
    code, out, err = run_cli("ls", url)
    assert code == 0 and "11 tables" in out, err
    assert run_cli("verify", url)[0] == 0
    target = dbs.new(kind)
    code, _, err = run_cli("restore", url, target, "--no-progress")
    assert code == 0, err
    assert snapshot(source) == snapshot(target)


def test_a_failed_dump_leaves_the_blob_as_it_was(container: Any, dbs: Databases) -> None:
    """More than one block uploaded, then a value the archive cannot hold: no blob appears,
    and an existing one keeps its content."""
    container.upload_blob("x.crate", b"mine")
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE big (id int PRIMARY KEY, v text)",
            "INSERT INTO big SELECT i, md5(i::text) || md5((i+1)::text) "
            "FROM generate_series(1, 300000) i",
            "CREATE TABLE zz (id int PRIMARY KEY, at timestamp)",
            "INSERT INTO zz VALUES (1, '294270-01-01')")
    for name in ("x.crate", "new.crate"):
        code, _, err = run_cli("dump", source, f"az://{container.container_name}/{name}",
                               "--no-progress", "-j", "1")
        assert code == 11, err
    assert _names(container) == ["x.crate"]
    assert container.download_blob("x.crate").readall() == b"mine"


def test_ranged_reads_encryption_and_prune(container: Any, dbs: Databases, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from dbcrate.crypto.keys import generate_identity

    secret, public = generate_identity()
    identity = tmp_path / "id.txt"
    identity.write_text(secret + "\n")
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE big (id int PRIMARY KEY, v text)",
            "INSERT INTO big SELECT i, md5(random()::text) || md5(i::text) "
            "FROM generate_series(1, 200000) i",
            "CREATE TABLE small (id int PRIMARY KEY, name text)",
            "INSERT INTO small SELECT i, 'private-' || i FROM generate_series(1, 10) i")
    prefix = f"az://{container.container_name}/nightly/"
    names: list[str] = []  # in the order they were written
    for _ in range(3):  # automatic names under a prefix: never replacing one
        code, _, err = run_cli("dump", source, prefix, "-r", public, "--no-progress")
        assert code == 0, err
        names += sorted(set(_names(container)) - set(names))
        time.sleep(1.1)  # Azurite's last-modified has whole seconds: prune orders by it
    assert len(names) == 3 and all(n.startswith("nightly/") for n in names)
    body = container.download_blob(names[0]).readall()
    assert b"private-" not in body and b"small" not in body
    url = f"az://{container.container_name}/{names[0]}"

    target = dbs.new("postgresql")
    with monkeypatch.context() as patched:
        fetched = count_ranged_reads(patched)
        code, _, err = run_cli("restore", url, target, "-t", "small", "-i", str(identity),
                               "--no-progress")
        assert code == 0, err
    assert sum(fetched) < 2 * 1024 * 1024 < len(body) / 2
    assert snapshot(source, ["small"]) == snapshot(target, ["small"])
    code, _, err = run_cli("prune", prefix, "--keep-last", "1")
    assert code == 0, err
    assert _names(container) == names[-1:]  # the newest
