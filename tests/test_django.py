"""The Django integration, on a small real project (tests/django_project) with real media files:
``manage.py dbcrate_dump`` / ``dbcrate_ls`` / ``dbcrate_restore`` against SQLite and PostgreSQL,
compared row by row (tests/content.py) and file by file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dbcrate

from conftest import Databases, require
from content import snapshot

PROJECT = Path(__file__).parent / "django_project"


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=300)


def project_env(db: str, media: Path, **extra: str) -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "TEST_DB": db, "TEST_MEDIA_ROOT": str(media), "PYTHONPATH": pythonpath,
            **extra}


def new_db(kind: str, dbs: Databases) -> tuple[str, str]:
    """(TEST_DB value, SQLAlchemy URL) of a new empty database."""
    url = dbs.new(kind)
    if kind == "sqlite":
        path = url.removeprefix("sqlite:///")
        return f"sqlite:{path}", url
    name = url.rsplit("/", 1)[1]
    return f"postgresql:{name}", url


def files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def ok(res: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert res.returncode == 0, res.stdout + res.stderr
    return res


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_dump_with_media_and_restore_into_a_fresh_project(kind: str, dbs: Databases,
                                                         tmp_path: Path) -> None:
    require(kind)
    src_db, src_url = new_db(kind, dbs)
    src_media = tmp_path / "src" / "media"
    src_media.mkdir(parents=True)
    env = project_env(src_db, src_media)
    ok(manage(env, "migrate", "-v", "0"))
    ok(manage(env, "seed"))
    (src_media / "upload.tmp").write_text("excluded by DBCRATE['storage_exclude']")

    archive = tmp_path / "site.crate"
    res = ok(manage(env, "dbcrate_dump", str(archive)))
    assert "and 21 files" in res.stdout  # 20 attachments + the stray file
    assert "1 referenced file(s) missing" in res.stderr and "attachments/gone.txt" in res.stderr
    assert "orphans" in res.stderr and "stray.txt" in res.stderr
    with dbcrate.open_archive(archive) as a:
        names = {t.name for t in a.tables}
        assert {"blog_post", "blog_post_tags", "blog_comment", "auth_user",
                "django_migrations"} <= names
        assert a.manifest.storage is not None and a.manifest.storage.files == 21
        assert [(c.table, c.column) for c in a.manifest.storage.file_columns] == [
            ("blog_post", "attachment")]
    res = ok(manage(env, "dbcrate_ls", str(archive)))
    assert "blog_post: 30 rows" in res.stdout and "media/attachments" in res.stdout

    dst_db, dst_url = new_db(kind, dbs)
    dst_media = tmp_path / "dst" / "media"
    dst_media.mkdir(parents=True)
    denv = project_env(dst_db, dst_media)
    res = ok(manage(denv, "dbcrate_restore", str(archive)))
    assert "storages: 21 files written" in res.stdout
    assert snapshot(dst_url) == snapshot(src_url)
    expected = {k: v for k, v in files(src_media).items() if not k.endswith(".tmp")}
    assert files(dst_media) == expected
    # the restored project is complete: its migrations are recorded and its ORM works
    ok(manage(denv, "migrate", "--check"))
    res = ok(manage(denv, "shell", "-c",
                    "from blog.models import Post; p = Post.objects.get(title__startswith='Post 2 ');"
                    "print(p.attachment.read().decode().count('attachment'))"))
    assert res.stdout.strip().splitlines()[-1] == "2"

    # a second restore refuses to overwrite (tables exist), with dbcrate's exit code
    res = manage(denv, "dbcrate_restore", str(archive))
    assert res.returncode == 8 and "already has" in res.stderr and "Traceback" not in res.stderr


def test_apps_models_drain_and_into_existing(dbs: Databases, tmp_path: Path) -> None:
    src_db, src_url = new_db("sqlite", dbs)
    media = tmp_path / "src" / "media"
    media.mkdir(parents=True)
    env = project_env(src_db, media, TEST_DEFINITIONS="1")
    ok(manage(env, "migrate", "-v", "0"))
    ok(manage(env, "seed"))

    def tables(archive: Path) -> set[str]:
        with dbcrate.open_archive(archive) as a:
            return {t.name for t in a.tables}

    ok(manage(env, "dbcrate_dump", str(tmp_path / "content.crate"), "--app", "content",
              "--no-storages"))
    assert tables(tmp_path / "content.crate") == {  # a model brings its many-to-many tables
        "blog_post", "blog_post_tags", "blog_tag", "blog_comment", "auth_user",
        "auth_user_groups", "auth_user_user_permissions"}
    ok(manage(env, "dbcrate_dump", str(tmp_path / "rest.crate"), "--app", "rest",
              "--no-storages"))
    rest = tables(tmp_path / "rest.crate")
    assert "auth_permission" in rest and "django_content_type" in rest
    assert not rest & {"blog_post", "auth_user", "django_session"}
    ok(manage(env, "dbcrate_dump", str(tmp_path / "blog.crate"), "--app", "blog",
              "--exclude-model", "blog.Comment", "--no-storages"))
    assert tables(tmp_path / "blog.crate") == {"blog_post", "blog_post_tags", "blog_tag"}
    res = manage(env, "dbcrate_dump", str(tmp_path / "x.crate"), "--app", "nosuchapp")
    assert res.returncode == 2 and "nosuchapp" in res.stderr

    # the target's schema is master: migrate a fresh project, then load the content into it
    dst_db, dst_url = new_db("sqlite", dbs)
    dst_media = tmp_path / "dst" / "media"
    dst_media.mkdir(parents=True)
    denv = project_env(dst_db, dst_media, TEST_DEFINITIONS="1")
    ok(manage(denv, "migrate", "-v", "0"))
    ok(manage(denv, "dbcrate_restore", str(tmp_path / "content.crate"), "--mode",
              "into-existing"))
    names = ["blog_post", "blog_post_tags", "blog_tag", "blog_comment", "auth_user"]
    assert snapshot(dst_url, names) == snapshot(src_url, names)

    res = ok(manage(env, "dbcrate_dump", str(tmp_path / "p.crate"), "--check"))
    assert "would dump blog_post" in res.stdout and "would store media" in res.stdout
    assert not (tmp_path / "p.crate").exists()


def test_password_stays_out_of_archive_and_output(dbs: Databases, tmp_path: Path) -> None:
    """DATABASES' password reaches the driver, never the archive or the command's output."""
    require("postgresql")
    src_db, _ = new_db("postgresql", dbs)
    media = tmp_path / "media"
    media.mkdir()
    env = project_env(src_db, media, TEST_DB_PASSWORD="pw-Sekr1t")  # trust auth ignores it
    ok(manage(env, "migrate", "-v", "0"))
    archive = tmp_path / "a.crate"
    res = ok(manage(env, "dbcrate_dump", str(archive)))
    assert "pw-Sekr1t" not in res.stdout + res.stderr
    assert b"pw-Sekr1t" not in archive.read_bytes()
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
