"""Checking ``settings.DBCRATE`` before anything runs (in the spirit of diskette's
``validate()``): the options, the storage paths and every table definition.

Every problem is collected, then raised at once as one :class:`~dbcrate.errors.UsageError`
(exit 2) whose message names, for each problem, the setting, the definition and the key; the
hint says what to write instead (the closest existing label, by :mod:`difflib`). A definition::

    {"name": "content", "models": ["blog", "auth.User"], "exclude_models": ["blog.Comment"]}
    {"name": "rest", "drain": True, "exclude_models": ["sessions.Session"]}

``name`` (required, unique), ``models`` (required unless ``drain``; a drain takes every model
no other definition claims, so it lists none), ``exclude_models`` and ``drain``; nothing else.
A label is ``app_label`` or ``app_label.ModelName`` (globs allowed) and must select at least
one model that has a table of its own.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models

from dbcrate.contrib.django import config
from dbcrate.errors import UsageError
from dbcrate.formats.registry import get_format

#: the keys of settings.DBCRATE
OPTION_KEYS = ("applications", "archive_dir", "chmod", "format", "storage_exclude", "storages",
               "storages_basepath")
#: the keys of one definition
DEFINITION_KEYS = ("drain", "exclude_models", "models", "name")
SETTING = "settings.DBCRATE"


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (setting and definition), which key, what, and what to do."""

    where: str
    key: str | None
    text: str
    hint: str | None = None
    item: int | None = None  # the position in a list-valued key

    def describe(self) -> str:
        key = f", key {self.key!r}" if self.key else ""
        item = f" (item {self.item})" if self.item is not None else ""
        return f"{self.where}{key}{item}: {self.text}"


def validate(*, dump: bool) -> None:
    """Check ``settings.DBCRATE``. ``dump``: the configured storages are about to be read, so
    they (and ``storages_basepath``) must exist now; a restore creates them, and a dump given
    ``--storage`` or ``--no-storages`` does not read them.

    :raises UsageError: naming every problem (setting, definition, key) with hints.
    """
    found = problems(dump=dump)
    if not found:
        return
    if len(found) == 1:
        raise UsageError(found[0].describe(), hint=found[0].hint)
    lines = "\n".join(f"  - {p.describe()}" + (f" ({p.hint})" if p.hint else "") for p in found)
    raise UsageError(f"{len(found)} problems in {SETTING}:\n{lines}",
                     hint=f"fix them in settings.py; 'manage.py dbcrate_dump --check' checks "
                     f"{SETTING} again without writing anything")


def problems(*, dump: bool) -> list[Problem]:
    """Every problem of ``settings.DBCRATE`` (``[]``: valid)."""
    value = getattr(settings, "DBCRATE", None)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Problem(SETTING, None, f"must be a dict, not {type(value).__name__}",
                        hint="DBCRATE = {'applications': [...], 'storages': [...]}")]
    found = [_unknown_key(SETTING, key, OPTION_KEYS) for key in value if key not in OPTION_KEYS]
    found.extend(_options(value))
    found.extend(_storages(value, dump))
    found.extend(definition_problems(value.get("applications")))
    return found


def _unknown_key(where: str, key: object, known: tuple[str, ...]) -> Problem:
    close = difflib.get_close_matches(str(key), known, n=1)
    return Problem(where, str(key), "unknown key",
                   hint=(f"did you mean {close[0]!r}? " if close else "")
                   + "known keys: " + ", ".join(known))


def _is_path(value: object) -> bool:
    return isinstance(value, str | os.PathLike) and str(value) != ""


def _options(value: dict[str, Any]) -> list[Problem]:
    """``archive_dir``, ``format``, ``chmod``, ``storage_exclude``."""
    found = []
    archive_dir = value.get("archive_dir")
    if archive_dir is not None:
        if not _is_path(archive_dir):
            found.append(Problem(SETTING, "archive_dir", "must be a path"))
        elif Path(str(archive_dir)).exists() and not Path(str(archive_dir)).is_dir():
            found.append(Problem(SETTING, "archive_dir", f"{archive_dir} is not a directory"))
    fmt = value.get("format")
    if fmt is not None:
        try:
            get_format(str(fmt))
        except UsageError as exc:
            found.append(Problem(SETTING, "format", f"unknown data format {fmt!r}", exc.hint))
    chmod = value.get("chmod")
    if chmod is not None and _mode(chmod) is None:
        found.append(Problem(SETTING, "chmod", f"{chmod!r} is not a permission mode",
                             hint="an int such as 0o640, or an octal string such as '640'"))
    exclude = value.get("storage_exclude")
    if exclude is not None and not _str_list(exclude):
        found.append(Problem(SETTING, "storage_exclude", "must be a list of patterns",
                             hint="['*.tmp', 'cache/**']"))
    return found


def _mode(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        mode = int(value, 8) if isinstance(value, str) else value
    except ValueError:
        return None
    return mode if isinstance(mode, int) and 0 <= mode <= 0o777 else None


def _str_list(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


# ----------------------------------------------------------------------------------- storages
def _storages(value: dict[str, Any], dump: bool) -> list[Problem]:
    """``storages`` (directories - existing ones when dumping -, each with its own name in the
    archive, inside the base path) and ``storages_basepath``."""
    found = []
    base = value.get("storages_basepath")
    if base is not None and not _is_path(base):
        return [Problem(SETTING, "storages_basepath", "must be a path")]
    if base is not None and dump and not Path(str(base)).is_dir():
        found.append(Problem(SETTING, "storages_basepath", f"{base} is not a directory"))
    storages = value.get("storages")
    if storages is None:
        return found
    if not isinstance(storages, list | tuple) or not all(_is_path(s) for s in storages):
        return [*found, Problem(SETTING, "storages", "must be a list of directories",
                                hint="['/srv/site/media', BASE_DIR / 'private']")]
    paths = [Path(str(s)).resolve() for s in storages]
    base_path = Path(str(base)).resolve() if base is not None else (
        paths[0].parent if paths else None)
    names: dict[str, int] = {}
    for i, path in enumerate(paths):
        if path.exists() and not path.is_dir():
            found.append(Problem(SETTING, "storages", f"{path} is not a directory", item=i))
        elif dump and not path.exists():
            found.append(Problem(SETTING, "storages", f"{path} does not exist",
                                 hint="create it, or remove it from DBCRATE['storages']", item=i))
        assert base_path is not None
        try:
            name = path.relative_to(base_path).as_posix()
        except ValueError:
            found.append(Problem(
                SETTING, "storages", f"{path} lies outside the base path {base_path}"
                + ("" if base is not None else " (the parent of the first storage)"),
                hint="set DBCRATE['storages_basepath'] to a directory that holds every storage",
                item=i))
            continue
        if name == ".":
            found.append(Problem(SETTING, "storages", f"{path} is the base path itself",
                                 hint="a storage must lie inside DBCRATE['storages_basepath']",
                                 item=i))
            continue
        for other, j in names.items():
            a, b = tuple(name.split("/")), tuple(other.split("/"))
            if a[: len(b)] == b or b[: len(a)] == a:
                found.append(Problem(SETTING, "storages", f"{path} is the same as, lies inside "
                                     f"or holds item {j} ({paths[j]})",
                                     hint="each storage needs its own directory", item=i))
        names[name] = i
    return found


# -------------------------------------------------------------------------------- definitions
def definition_problems(definitions: object) -> list[Problem]:
    """Problems of ``DBCRATE["applications"]`` (``None``: none defined)."""
    where = f"{SETTING}['applications']"
    if definitions is None:
        return []
    if not isinstance(definitions, list | tuple):
        return [Problem(where, None, "must be a list of definitions (dicts)",
                        hint="[{'name': 'content', 'models': ['blog', 'auth.User']}]")]
    found: list[Problem] = []
    names: dict[str, str] = {}
    drains: list[str] = []
    for i, definition in enumerate(definitions):
        at = f"{where}[{i}]"
        if not isinstance(definition, dict):
            found.append(Problem(at, None, f"must be a dict, not {type(definition).__name__}",
                                 hint="{'name': 'content', 'models': ['blog']}"))
            continue
        name = definition.get("name")
        if isinstance(name, str) and name.strip():
            at = f"{at} (definition {name!r})"
            if name in names:
                found.append(Problem(at, "name", f"{name!r} is also the name of {names[name]}",
                                     hint="give each definition its own name"))
            names.setdefault(name, at)
        found.extend(_definition(at, definition))
        if definition.get("drain") is True:
            drains.append(at)
    if len(drains) > 1:
        found.append(Problem(drains[1], "drain", f"a second drain ({drains[0]} is one)",
                             hint="a drain takes every model no other definition claims; "
                             "keep one"))
    return found


def _definition(at: str, definition: dict[str, Any]) -> list[Problem]:
    """The problems of one definition (a dict): keys, name, drain and models, labels."""
    found = [_unknown_key(at, key, DEFINITION_KEYS) for key in definition
             if key not in DEFINITION_KEYS]
    name = definition.get("name")
    if "name" not in definition:
        found.append(Problem(at, "name", "missing: every definition needs a name",
                             hint="the name is what 'manage.py dbcrate_dump --app NAME' takes"))
    elif not isinstance(name, str) or not name.strip():
        found.append(Problem(at, "name", f"must be a non-empty string, not {name!r}"))
    drain = definition.get("drain", False)
    found.extend(_drain(at, drain, "models" in definition))
    for key in ("models", "exclude_models"):
        if key in definition:
            found.extend(_labels(at, key, definition[key], allow_empty=key != "models"))
    if not found and not drain and not _selects(definition):
        found.append(Problem(at, "exclude_models", "the definition selects no table: "
                             "exclude_models leaves out every model of 'models'"))
    return found


def _drain(at: str, drain: object, has_models: bool) -> list[Problem]:
    """A drain takes every model no other definition claims, so it lists none; any other
    definition lists its models."""
    if not isinstance(drain, bool):
        return [Problem(at, "drain", f"must be True or False, not {drain!r}")]
    if drain and has_models:
        return [Problem(at, "models", "a drain lists no models: it takes every model no other "
                        "definition claims", hint="remove 'models' or 'drain'")]
    if not drain and not has_models:
        return [Problem(at, "models", "missing: a definition that is not a drain needs its "
                        "models", hint="'models': ['blog', 'auth.User'], or 'drain': True")]
    return []


def _labels(at: str, key: str, labels: object, *, allow_empty: bool) -> list[Problem]:
    if isinstance(labels, str):
        return [Problem(at, key, f"must be a list of labels, not the string {labels!r}",
                        hint=f"'{key}': [{labels!r}]")]
    if not isinstance(labels, list | tuple):
        return [Problem(at, key, f"must be a list of labels, not {type(labels).__name__}")]
    if not labels and not allow_empty:
        return [Problem(at, key, "is empty: the definition selects nothing",
                        hint="list apps or models, e.g. ['blog', 'auth.User']")]
    found = []
    for i, label in enumerate(labels):
        problem = label_problem(label)
        if problem is not None:
            found.append(Problem(at, key, problem[0], problem[1], item=i))
    return found


def _selects(definition: dict[str, Any]) -> bool:
    excluded = list(definition.get("exclude_models", []))
    return any(config.matches(m, list(definition["models"])) and not config.matches(m, excluded)
               for m in config.concrete_models())


# ------------------------------------------------------------------------------------- labels
def label_problem(label: object) -> tuple[str, str | None] | None:
    """Why ``label`` selects no model with a table (and what to write instead), or ``None``
    when it selects one. The same matching as the selection (:func:`config.matches`)."""
    if not isinstance(label, str) or not label:
        return f"{label!r} is not a label", "labels are 'app_label' or 'app_label.ModelName'"
    if label.count(".") > 1:  # a module path ("django.contrib.auth.User")?
        close = _suggest(".".join(label.rsplit(".", 2)[-2:]))
        return (f"{label!r} is not a label",
                (f"{close} " if close else "")
                + "labels are 'app_label' or 'app_label.ModelName', not module paths")
    every = config.concrete_models()
    if any(config.matches(m, [label]) for m in every):
        return None
    if any(c in label for c in "*?["):
        return f"{label!r} matches no model", "applications: " + ", ".join(_app_labels())
    app_label, _, model_name = label.partition(".")
    if model_name:
        reason = _no_table(app_label, model_name)
        if reason is not None:
            return reason
        return f"{label!r} is not a model", _suggest(label)
    if app_label in _app_labels():
        return f"the application {label!r} has no model with a table of its own", None
    return f"{label!r} is neither an application nor a model", _suggest(label)


def _no_table(app_label: str, model_name: str) -> tuple[str, str | None] | None:
    """A registered model that has no table of its own (proxy, unmanaged, swapped)."""
    try:
        model: type[models.Model] = apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None
    meta = model._meta
    label = f"{meta.app_label}.{meta.object_name}"
    if meta.swapped:
        return (f"{label!r} is swapped out (settings.{meta.swappable})",
                f"name {getattr(settings, str(meta.swappable))!r} instead")
    if meta.proxy:
        concrete = meta.concrete_model._meta  # type: ignore[union-attr]
        return (f"{label!r} is a proxy model: its rows are in its concrete model's table",
                f"name {concrete.app_label + '.' + str(concrete.object_name)!r} instead")
    if not meta.managed:
        return f"{label!r} is not managed by Django (managed = False): dbcrate leaves it out", \
            None
    return None


def _app_labels() -> list[str]:
    return sorted({a.label for a in apps.get_app_configs()})


def _suggest(label: str) -> str | None:
    """``"did you mean 'blog.Post'?"`` for the closest app or model label, else ``None``."""
    candidates: dict[str, str] = {a.lower(): a for a in _app_labels()}
    for model in config.concrete_models():
        meta = model._meta
        if not meta.auto_created:
            proper = f"{meta.app_label}.{meta.object_name}"
            candidates[proper.lower()] = proper
    close = difflib.get_close_matches(label.lower(), list(candidates), n=1, cutoff=0.6)
    return f"did you mean {candidates[close[0]]!r}?" if close else None


def check_arguments(app_args: list[str], exclude_models: list[str]) -> None:
    """``--app`` (a definition name, or a label) and ``--exclude-model`` (a label) arguments,
    checked as a definition's labels are, before anything runs.

    :raises UsageError: naming the option and the argument, with the closest label.
    """
    definitions = config.options().get("applications") or []
    names = [str(d.get("name")) for d in definitions if isinstance(d, dict)]
    for arg in app_args:
        if arg in names:
            continue
        found = label_problem(arg)
        if found is not None:
            close = difflib.get_close_matches(arg, names, n=1)
            hint = f"did you mean the definition {close[0]!r}?" if close else found[1]
            raise UsageError(f"--app {arg!r} names no definition, application or model: "
                             f"{found[0]}",
                             hint=(hint + "; " if hint else "") + "definitions: "
                             + (", ".join(names) or "none") + "; applications: "
                             + ", ".join(_app_labels()))
    for label in exclude_models:
        found = label_problem(label)
        if found is not None:
            raise UsageError(f"--exclude-model {label!r}: {found[0]}", hint=found[1])

