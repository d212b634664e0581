"""What the management commands take from Django's settings: the database URL, the storages,
the table selection and ``settings.DBCRATE`` defaults.

``settings.DBCRATE`` (every key optional)::

    DBCRATE = {
        "archive_dir": BASE_DIR / "backups",      # where an archive goes when no name is given
        "storages": [MEDIA_ROOT, BASE_DIR / "private"],   # default: [MEDIA_ROOT] if it exists
        "storages_basepath": BASE_DIR,            # default: the parent of the first storage
        "storage_exclude": ["*.tmp", "cache/**"],
        "format": "parquet",
        "chmod": 0o600,
        "applications": [                          # named table selections (diskette style)
            {"name": "content", "models": ["blog", "auth.User"]},
            {"name": "rest", "drain": True, "exclude_models": ["sessions.Session"]},
        ],
    }
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from django.apps import apps
from django.conf import settings
from django.db import models

from dbcrate.errors import UsageError
from dbcrate.storages.index import FileColumn

DRIVERS = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgresql+psycopg",
    "django.db.backends.postgresql_psycopg2": "postgresql+psycopg",
    "django.db.backends.mysql": "mysql+pymysql",
}


def database_url(alias: str) -> str:
    """A SQLAlchemy URL for ``DATABASES[alias]`` (with its password: it stays in-process)."""
    try:
        db = settings.DATABASES[alias]
    except KeyError:
        raise UsageError(f"no database {alias!r} in settings.DATABASES",
                         hint="databases: " + ", ".join(settings.DATABASES)) from None
    engine = db.get("ENGINE", "")
    driver = DRIVERS.get(engine)
    if driver is None:
        raise UsageError(f"the database engine {engine!r} is not supported",
                         hint="supported: " + ", ".join(sorted(DRIVERS)))
    if driver == "sqlite":
        return f"sqlite:///{Path(str(db['NAME'])).resolve()}"
    url = sa.URL.create(
        driver, username=db.get("USER") or None, password=db.get("PASSWORD") or None,
        host=db.get("HOST") or "localhost", port=int(db["PORT"]) if db.get("PORT") else None,
        database=str(db.get("NAME") or ""),
    )
    return url.render_as_string(hide_password=False)


def options() -> dict[str, Any]:
    value = getattr(settings, "DBCRATE", {}) or {}
    if not isinstance(value, dict):
        raise UsageError("settings.DBCRATE must be a dict")
    return value


def default_storages() -> list[str]:
    configured = options().get("storages")
    if configured is not None:
        return [str(p) for p in configured]
    media = getattr(settings, "MEDIA_ROOT", "")
    return [str(media)] if media and Path(media).is_dir() else []


def storages_basepath(storages: list[str]) -> str | None:
    base = options().get("storages_basepath")
    if base:
        return str(base)
    return str(Path(storages[0]).resolve().parent) if storages else None


def media_name(basepath: str | None) -> str | None:
    """The archive name of MEDIA_ROOT (where FileField paths are relative to)."""
    media = getattr(settings, "MEDIA_ROOT", "")
    if not media or basepath is None:
        return None
    try:
        return Path(media).resolve().relative_to(Path(basepath).resolve()).as_posix()
    except ValueError:
        return None


# ---------------------------------------------------------------------------------- selection
def concrete_models() -> list[type[models.Model]]:
    """The models that have a table of their own (managed, not proxies, not swapped out),
    auto-created many-to-many tables included."""
    return [m for m in apps.get_models(include_auto_created=True)
            if m._meta.managed and not m._meta.proxy and not m._meta.swapped]


def matches(model: type[models.Model], labels: list[str]) -> bool:
    """A model matches ``app_label`` or ``app_label.ModelName`` (case-insensitive, globs ok);
    an auto-created many-to-many table follows the model that declares it."""
    meta = model._meta
    owner = meta.auto_created._meta if meta.auto_created else meta  # type: ignore[union-attr]
    for label in labels:
        if "." in label:
            if fnmatch.fnmatchcase(f"{owner.app_label}.{owner.model_name}", label.lower()):
                return True
        elif fnmatch.fnmatchcase(owner.app_label, label):
            return True
    return False


@dataclass
class Selection:
    """The tables of the chosen models, and their file columns."""

    tables: list[str] = field(default_factory=list)
    file_fields: list[tuple[str, str]] = field(default_factory=list)  # (table, column)


def select(app_args: list[str], exclude_models: list[str]) -> Selection:
    """Tables for ``--app`` arguments (definition names, app labels or model labels; none =
    every definition, or every model) minus ``--exclude-model``.

    :raises UsageError: an argument that matches no definition and no model.
    """
    definitions = {str(d["name"]): d for d in options().get("applications", [])}
    every = concrete_models()
    claimed = [m for d in definitions.values() if not d.get("drain")
               for m in every if matches(m, list(d.get("models", [])))]
    chosen: list[type[models.Model]] = []
    wanted = app_args or (list(definitions) if definitions else ["*"])
    for arg in wanted:
        definition = definitions.get(arg)
        if definition is not None:
            if definition.get("drain"):
                found = [m for m in every if m not in claimed]
            else:
                found = [m for m in every if matches(m, list(definition.get("models", [])))]
            found = [m for m in found
                     if not matches(m, list(definition.get("exclude_models", [])))]
        else:
            found = [m for m in every if matches(m, [arg])]
            if not found:
                raise UsageError(f"--app {arg!r} names no definition, application or model",
                                 hint="definitions: " + (", ".join(definitions) or "none")
                                 + "; applications: "
                                 + ", ".join(sorted({a.label for a in apps.get_app_configs()})))
        chosen.extend(m for m in found if m not in chosen)
    chosen = [m for m in chosen if not matches(m, exclude_models)]
    selection = Selection()
    for model in chosen:
        table = model._meta.db_table
        if table not in selection.tables:
            selection.tables.append(table)
        for f in model._meta.concrete_fields:
            if isinstance(f, models.FileField):
                selection.file_fields.append((table, f.column))
    return selection


def file_columns(selection: Selection, root: str | None) -> list[FileColumn]:
    return [] if root is None else [FileColumn(t, c, root) for t, c in selection.file_fields]


def exact(name: str) -> str:
    """A table name as a glob pattern matching only itself."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)
