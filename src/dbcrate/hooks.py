"""User hooks: a Python module of optional functions that dump and restore call.

The module is the *user's* code (given with ``--hooks path/to/hooks.py`` or as a module object by
library users), never anything from an archive. Every function is optional:

``dump_table_filter(table) -> bool``
    Called with each source :class:`~dbcrate.model.schema.Table` before dumping; False leaves it out.
``restore_table_filter(table) -> bool``
    Called with each archive table before restoring; False skips it (schema-version tables...).
``prepare_schema_for_restore(connection, manifest)``
    Called before anything is restored, with a SQLAlchemy connection in its own transaction
    (committed when it returns): bring the target schema to the archive's revision.
``update_schema_after_restore(connection, manifest)``
    Called after everything, likewise: bring the schema to the revision the application expects.
``transform(table, batch) -> batch``
    Called with the table name and every Arrow record batch on its way into the target; returns
    the batch to load (data migration: rename, compute, drop columns...).
``empty_table(connection, table)``
    Called instead of ``DELETE FROM table`` when ``--mode into-existing --clean`` empties a
    target table (Camelot's ``delete_table_data``), inside the transaction that then loads it:
    e.g. to turn checks off around the delete, or to keep some rows.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from dbcrate.errors import UsageError

HOOK_NAMES = (
    "dump_table_filter",
    "restore_table_filter",
    "prepare_schema_for_restore",
    "update_schema_after_restore",
    "transform",
    "empty_table",
)


@dataclass(frozen=True)
class Hooks:
    """The hook functions found in a module (``None`` for the ones it does not define)."""

    dump_table_filter: Callable[..., bool] | None = None
    restore_table_filter: Callable[..., bool] | None = None
    prepare_schema_for_restore: Callable[..., Any] | None = None
    update_schema_after_restore: Callable[..., Any] | None = None
    transform: Callable[..., Any] | None = None
    empty_table: Callable[..., Any] | None = None


NO_HOOKS = Hooks()


def load_hooks(source: str | os.PathLike[str] | ModuleType | Hooks | None) -> Hooks:
    """Hooks from a module, a module name, or the path of a ``.py`` file."""
    if source is None:
        return NO_HOOKS
    if isinstance(source, Hooks):
        return source
    module: ModuleType
    if isinstance(source, ModuleType):
        module = source
    else:
        text = os.fspath(source)
        if text.endswith(".py") or os.sep in text:
            if not os.path.isfile(text):
                raise UsageError(f"hooks file {text} does not exist")
            spec = importlib.util.spec_from_file_location("dbcrate_user_hooks", text)
            if spec is None or spec.loader is None:
                raise UsageError(f"cannot load hooks from {text}")
            module = importlib.util.module_from_spec(spec)
            sys.modules["dbcrate_user_hooks"] = module
            spec.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(text)
            except ImportError as exc:
                raise UsageError(f"cannot import hooks module {text!r}: {exc}") from None
    found = {name: getattr(module, name) for name in HOOK_NAMES if callable(getattr(module, name, None))}
    if not found:
        raise UsageError(
            f"the hooks module {getattr(module, '__name__', source)!r} defines none of the hooks",
            hint="define one of: " + ", ".join(HOOK_NAMES),
        )
    return Hooks(**found)
