"""The Django integration, on a small real project (tests/django_project) with real media files:
``manage.py dbcrate_dump`` / ``dbcrate_ls`` / ``dbcrate_restore`` against SQLite and PostgreSQL,
compared row by row (tests/content.py) and file by file."""

from __future__ import annotations

import hashlib
import json
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


def test_encrypted_dump_and_restore(dbs: Databases, tmp_path: Path) -> None:
    """``dbcrate_dump -r``: the archive and its media sealed; ``dbcrate_ls`` and
    ``dbcrate_restore`` open it with ``-i`` (or DBCRATE_IDENTITY), refuse it without."""
    from dbcrate.crypto.keys import generate_identity

    secret, public = generate_identity()
    identity = tmp_path / "id.txt"
    identity.write_text(secret + "\n")
    env, url = seeded_project("sqlite", dbs, tmp_path / "media")
    archive = tmp_path / "sealed.crate"
    ok(manage(env, "dbcrate_dump", str(archive), "-r", public))
    assert b"django_migrations" not in archive.read_bytes()
    refused = manage(env, "dbcrate_ls", str(archive))
    assert refused.returncode == 18 and "no identity was given" in refused.stderr
    assert "django_migrations" in ok(manage(env, "dbcrate_ls", str(archive), "-i",
                                            str(identity))).stdout
    fresh, target = empty_project("sqlite", dbs, tmp_path / "media2")
    ok(manage({**fresh, "DBCRATE_IDENTITY": str(identity)}, "dbcrate_restore", str(archive)))
    assert snapshot(target) == snapshot(url)
    assert files(tmp_path / "media2") == files(tmp_path / "media")


# ------------------------------------------------------------------ storages: where they land
def seeded_project(kind: str, dbs: Databases, media: Path, **extra: str) -> tuple[dict[str, str], str]:
    """A migrated, seeded project whose MEDIA_ROOT is ``media``; (env, SQLAlchemy URL)."""
    db, url = new_db(kind, dbs)
    media.mkdir(parents=True)
    env = project_env(db, media, **extra)
    ok(manage(env, "migrate", "-v", "0"))
    ok(manage(env, "seed"))
    return env, url


def empty_project(kind: str, dbs: Databases, media: Path, **extra: str) -> tuple[dict[str, str], str]:
    db, url = new_db(kind, dbs)
    media.mkdir(parents=True)
    return project_env(db, media, **extra), url


@pytest.mark.parametrize(("kind", "src_name", "dst_name"), [
    ("sqlite", "media", "uploads"), ("sqlite", "uploads", "media"),
    ("postgresql", "media", "uploads")])
def test_media_lands_in_media_root_whatever_its_name(kind: str, src_name: str, dst_name: str,
                                                     dbs: Databases, tmp_path: Path) -> None:
    """The archive names the media storage after the source's MEDIA_ROOT; the restore puts it
    into the target's MEDIA_ROOT, not into parent(MEDIA_ROOT)/<archived name>."""
    require(kind)
    src_media = tmp_path / "src" / src_name
    env, src_url = seeded_project(kind, dbs, src_media)
    archive = tmp_path / "site.crate"
    ok(manage(env, "dbcrate_dump", str(archive)))
    with dbcrate.open_archive(archive) as a:
        assert a.manifest.storage is not None
        assert [r.name for r in a.manifest.storage.roots] == [src_name]

    dst_parent = tmp_path / "dst"
    dst_media = dst_parent / dst_name
    denv, dst_url = empty_project(kind, dbs, dst_media)
    res = ok(manage(denv, "dbcrate_restore", str(archive)))
    expected = {k: v for k, v in files(src_media).items() if not k.endswith(".tmp")}
    assert len(expected) == 21 and files(dst_media) == expected
    # nothing beside MEDIA_ROOT: no parent/<archived name>, no temp file or directory left
    assert sorted(p.name for p in dst_parent.iterdir()) == [dst_name]
    assert "storages: 21 files written" in res.stdout
    assert f"{src_name} -> {dst_media} (MEDIA_ROOT" in res.stdout
    assert snapshot(dst_url) == snapshot(src_url)
    res = ok(manage(denv, "shell", "-c",
                    "from blog.models import Post; p = Post.objects.get(title__startswith='Post 2 ');"
                    "print(p.attachment.path); print(p.attachment.read().decode().count('attachment'))"))
    path, count = res.stdout.strip().splitlines()[-2:]
    assert Path(path).parent.parent == dst_media and count == "2"


def test_media_root_policies_when_names_differ(dbs: Databases, tmp_path: Path) -> None:
    """A storages-only archive (no file columns: the only storage is the media one) into a
    MEDIA_ROOT of another name: refuse leaves a differing file alone and writes nothing, merge
    overwrites it and keeps other files, replace makes MEDIA_ROOT exactly the archive's."""
    src_media = tmp_path / "src" / "media"
    env, _ = seeded_project("sqlite", dbs, src_media)
    archive = tmp_path / "files.crate"
    ok(manage(env, "dbcrate_dump", str(archive), "--no-data"))
    with dbcrate.open_archive(archive) as a:
        assert a.manifest.storage is not None and a.manifest.storage.file_columns == []
    expected = files(src_media)

    dst_media = tmp_path / "dst" / "uploads"
    denv, _ = empty_project("sqlite", dbs, dst_media)
    (dst_media / "attachments").mkdir()
    (dst_media / "attachments" / "file1.txt").write_text("changed here")
    (dst_media / "local.txt").write_text("only in the target")

    before = files(dst_media)
    res = ok(manage(denv, "dbcrate_restore", str(archive), "--no-data", "--storages", "merge",
                    "--dry-run"))
    assert "storages: 0 files written" in res.stdout and files(dst_media) == before
    res = manage(denv, "dbcrate_restore", str(archive), "--no-data")
    assert res.returncode == 14 and "differ" in res.stderr and "Traceback" not in res.stderr
    assert files(dst_media) == {"attachments/file1.txt": sha("changed here"),
                                "local.txt": sha("only in the target")}

    res = ok(manage(denv, "dbcrate_restore", str(archive), "--no-data", "--storages", "merge"))
    assert "media -> " + str(dst_media) + " (MEDIA_ROOT (the only storage))" in res.stdout
    assert files(dst_media) == {**expected, "local.txt": sha("only in the target")}

    ok(manage(denv, "dbcrate_restore", str(archive), "--no-data", "--storages", "replace"))
    assert files(dst_media) == expected
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["uploads"]


def test_configured_storages_land_in_their_paths(dbs: Databases, tmp_path: Path) -> None:
    """DBCRATE['storages']: the media storage goes to MEDIA_ROOT, another configured storage to
    the target's directory of the same name; a storage the target does not know refuses the
    restore before anything (tables included) is written."""
    src = tmp_path / "src"
    (src / "private" / "docs").mkdir(parents=True)
    (src / "private" / "docs" / "contract.pdf").write_bytes(b"%PDF secret " * 100)
    env, src_url = seeded_project("sqlite", dbs, src / "media", TEST_DBCRATE=json.dumps(
        {"storages": [str(src / "media"), str(src / "private")]}))
    archive = tmp_path / "site.crate"
    ok(manage(env, "dbcrate_dump", str(archive)))
    with dbcrate.open_archive(archive) as a:
        assert a.manifest.storage is not None
        assert sorted(r.name for r in a.manifest.storage.roots) == ["media", "private"]

    dst = tmp_path / "dst"
    denv, dst_url = empty_project("sqlite", dbs, dst / "uploads", TEST_DBCRATE=json.dumps(
        {"storages": [str(dst / "uploads"), str(dst / "private")]}))
    ok(manage(denv, "dbcrate_restore", str(archive)))
    assert files(dst / "private") == files(src / "private")
    assert files(dst / "uploads") == {k: v for k, v in files(src / "media").items()
                                      if not k.endswith(".tmp")}
    assert sorted(p.name for p in dst.iterdir()) == ["private", "uploads"]
    assert snapshot(dst_url) == snapshot(src_url)

    other = tmp_path / "other"
    oenv, other_url = empty_project("sqlite", dbs, other / "uploads")  # storages: [MEDIA_ROOT]
    res = manage(oenv, "dbcrate_restore", str(archive))
    assert res.returncode == 2 and "'private' have no place" in res.stderr
    assert "Traceback" not in res.stderr
    assert files(other) == {} and sorted(p.name for p in other.iterdir()) == ["uploads"]
    assert snapshot(other_url) == {}  # no table was written either


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------- settings.DBCRATE checked
def refused(res: subprocess.CompletedProcess[str]) -> str:
    """The command failed as a usage error (exit 2), printed cleanly; returns stderr."""
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and res.stderr.startswith("CommandError: ")
    return res.stderr


def test_bad_definitions_are_refused_before_anything_runs(dbs: Databases, tmp_path: Path) -> None:
    """A typo'd model label or a definition without a name stops dbcrate_dump, its --check and
    dbcrate_restore with exit 2, the definition and the key named and the closest label hinted;
    no archive is written and the (here nonexistent) archive to restore is not even opened."""
    db, _ = new_db("sqlite", dbs)
    media = tmp_path / "media"
    media.mkdir()
    archive = tmp_path / "x.crate"
    typo = project_env(db, media, TEST_DBCRATE=json.dumps({"applications": [
        {"name": "content", "models": ["blog", "blog.Pots"]}]}))
    for args in (["dbcrate_dump", str(archive)], ["dbcrate_dump", "--check"],
                 ["dbcrate_restore", str(tmp_path / "missing.crate")]):
        err = refused(manage(typo, *args))
        assert ("settings.DBCRATE['applications'][0] (definition 'content'), key 'models' "
                "(item 1): 'blog.Pots' is not a model") in err
        assert "hint: did you mean 'blog.Post'?" in err
    assert not archive.exists()

    nameless = project_env(db, media, TEST_DBCRATE=json.dumps({"applications": [
        {"models": ["blog"]}, {"name": "rest", "drain": True}]}))
    err = refused(manage(nameless, "dbcrate_dump", str(archive)))
    assert "settings.DBCRATE['applications'][0], key 'name': missing" in err
    assert "KeyError" not in err and not archive.exists()


def test_definition_problems_one_by_one(dbs: Databases, tmp_path: Path) -> None:
    """Every kind of bad definition, through validation.definition_problems in the project."""
    db, _ = new_db("sqlite", dbs)
    media = tmp_path / "media"
    media.mkdir()
    cases = {
        "unknown key": [{"name": "a", "models": ["blog"], "exclude_model": ["blog.Tag"]}],
        "models as a string": [{"name": "a", "models": "blog"}],
        "empty models": [{"name": "a", "models": []}],
        "no models": [{"name": "a"}],
        "drain with models": [{"name": "a", "drain": True, "models": ["blog"]}],
        "drain not a bool": [{"name": "a", "drain": "yes", "exclude_models": []}],
        "two drains": [{"name": "a", "drain": True}, {"name": "b", "drain": True}],
        "duplicate names": [{"name": "a", "models": ["blog"]}, {"name": "a", "models": ["auth"]}],
        "empty name": [{"name": "", "models": ["blog"]}],
        "not a dict": ["blog"],
        "unknown app": [{"name": "a", "models": ["blgo"]}],
        "module path": [{"name": "a", "models": ["django.contrib.auth.User"]}],
        "glob matching nothing": [{"name": "a", "models": ["nope*"]}],
        "app without tables": [{"name": "a", "models": ["dbcrate"]}],
        "excludes everything": [{"name": "a", "models": ["blog.Tag"], "exclude_models": ["blog"]}],
        "bad exclude": [{"name": "a", "drain": True, "exclude_models": ["sessions.Sesion"]}],
        "proxy": [{"name": "a", "models": ["blog.pinnedpost"]}],
        "unmanaged": [{"name": "a", "models": ["blog.LegacyCode"]}],
        "valid": [{"name": "a", "models": ["blog", "auth.User", "auth.*"]},
                  {"name": "b", "drain": True, "exclude_models": ["sessions.Session"]}],
    }
    code = ("import json, sys; from dbcrate.contrib.django.validation import definition_problems;"
            f"cases = json.loads({json.dumps(json.dumps(cases))});"
            "print(json.dumps({k: [[p.describe(), p.hint] for p in definition_problems(v)]"
            " for k, v in cases.items()}))")
    res = ok(manage(project_env(db, media), "shell", "-c", code))
    found = json.loads(res.stdout.strip().splitlines()[-1])
    where = "settings.DBCRATE['applications'][0] (definition 'a')"

    def only(case: str) -> tuple[str, str | None]:
        assert len(found[case]) == 1, found[case]
        text, hint = found[case][0]
        return text, hint

    assert only("unknown key") == (f"{where}, key 'exclude_model': unknown key",
                                   "did you mean 'exclude_models'? known keys: drain, "
                                   "exclude_models, models, name")
    assert only("models as a string") == (
        f"{where}, key 'models': must be a list of labels, not the string 'blog'",
        "'models': ['blog']")
    assert only("empty models")[0] == f"{where}, key 'models': is empty: the definition selects nothing"
    assert only("no models")[0].startswith(f"{where}, key 'models': missing")
    assert only("drain with models")[0].startswith(f"{where}, key 'models': a drain lists no models")
    assert only("drain not a bool")[0] == f"{where}, key 'drain': must be True or False, not 'yes'"
    assert only("two drains")[0] == ("settings.DBCRATE['applications'][1] (definition 'b'), key "
                                     "'drain': a second drain (settings.DBCRATE['applications'][0] "
                                     "(definition 'a') is one)")
    assert only("duplicate names")[0] == (
        "settings.DBCRATE['applications'][1] (definition 'a'), key 'name': 'a' is also the name "
        f"of {where}")
    assert only("empty name")[0] == ("settings.DBCRATE['applications'][0], key 'name': must be a "
                                     "non-empty string, not ''")
    assert only("not a dict")[0] == "settings.DBCRATE['applications'][0]: must be a dict, not str"
    assert only("unknown app") == (
        f"{where}, key 'models' (item 0): 'blgo' is neither an application nor a model",
        "did you mean 'blog'?")
    text, hint = only("module path")
    assert text.endswith("'django.contrib.auth.User' is not a label")
    assert hint is not None and hint.startswith("did you mean 'auth.User'?")
    assert only("glob matching nothing")[0].endswith("'nope*' matches no model")
    assert only("app without tables")[0].endswith(
        "the application 'dbcrate' has no model with a table of its own")
    assert only("excludes everything")[0] == (
        f"{where}, key 'exclude_models': the definition selects no table: exclude_models leaves "
        "out every model of 'models'")
    assert only("bad exclude") == (
        f"{where}, key 'exclude_models' (item 0): 'sessions.Sesion' is not a model",
        "did you mean 'sessions.Session'?")
    assert only("proxy") == (
        f"{where}, key 'models' (item 0): 'blog.PinnedPost' is a proxy model: its rows are in "
        "its concrete model's table", "name 'blog.Post' instead")
    assert only("unmanaged")[0] == (
        f"{where}, key 'models' (item 0): 'blog.LegacyCode' is not managed by Django "
        "(managed = False): dbcrate leaves it out")
    assert found["valid"] == []


def test_options_storages_and_arguments_are_checked(dbs: Databases, tmp_path: Path) -> None:
    """Unknown DBCRATE keys, bad storage paths and bad --app/--exclude-model arguments: exit 2,
    named, with a hint; several problems are listed together."""
    db, _ = new_db("sqlite", dbs)
    media = tmp_path / "site" / "media"
    (media / "sub").mkdir(parents=True)
    (tmp_path / "site" / "file").write_text("not a directory")
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    def env(**dbcrate_settings: object) -> dict[str, str]:
        return project_env(db, media, TEST_DBCRATE=json.dumps(dbcrate_settings))

    err = refused(manage(env(storage=[str(media)]), "dbcrate_dump", "--check"))
    assert "settings.DBCRATE, key 'storage': unknown key" in err
    assert "hint: did you mean 'storages'?" in err

    missing = tmp_path / "site" / "private"
    err = refused(manage(env(storages=[str(media), str(missing), str(tmp_path / "site" / "file"),
                                       str(outside), str(media / "sub")], chmod="999"),
                         "dbcrate_dump", str(tmp_path / "a.crate")))
    assert "5 problems in settings.DBCRATE:" in err
    assert "settings.DBCRATE, key 'chmod': '999' is not a permission mode" in err
    assert f"key 'storages' (item 1): {missing} does not exist" in err
    assert f"key 'storages' (item 2): {tmp_path / 'site' / 'file'} is not a directory" in err
    assert (f"key 'storages' (item 3): {outside} lies outside the base path {tmp_path / 'site'} "
            "(the parent of the first storage)") in err
    assert f"key 'storages' (item 4): {media / 'sub'} is the same as, lies inside or holds item 0" in err
    assert not (tmp_path / "a.crate").exists() and not missing.exists()
    # a restore creates missing storage directories: only the other problems count there
    res = manage(env(storages=[str(media), str(missing)]), "dbcrate_restore",
                 str(tmp_path / "nothing.crate"))
    assert res.returncode == 4 and "does not exist" in res.stderr  # the archive, not the setting

    err = refused(manage(env(), "dbcrate_dump", "--check", "--exclude-model", "blog.Coment"))
    assert "--exclude-model 'blog.Coment': 'blog.Coment' is not a model" in err
    assert "hint: did you mean 'blog.Comment'?" in err
    err = refused(manage(project_env(db, media, TEST_DEFINITIONS="1"), "dbcrate_dump", "--check",
                         "--app", "contnet"))
    assert "--app 'contnet' names no definition, application or model" in err
    assert "hint: did you mean the definition 'content'?" in err


def test_check_prints_what_each_definition_selects(dbs: Databases, tmp_path: Path) -> None:
    """dbcrate_dump --check (diskette's --check): the settings are valid, each definition's
    tables, then the plan; nothing is written."""
    db, _ = new_db("sqlite", dbs)
    media = tmp_path / "media"
    media.mkdir()
    env = project_env(db, media, TEST_DEFINITIONS="1")
    ok(manage(env, "migrate", "-v", "0"))
    res = ok(manage(env, "dbcrate_dump", str(tmp_path / "p.crate"), "--check"))
    lines = res.stdout.splitlines()
    assert lines[0] == "settings.DBCRATE is valid (2 definitions)"
    assert lines[1] == ("definition 'content' (7 tables): auth_user, auth_user_groups, "
                        "auth_user_user_permissions, blog_comment, blog_post, blog_post_tags, "
                        "blog_tag")
    assert lines[2].startswith("definition 'rest' (drain, ") and "django_session" not in lines[2]
    assert "would dump blog_post" in res.stdout
    assert not (tmp_path / "p.crate").exists()
