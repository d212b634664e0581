"""dbcrate: dump, list, verify and restore SQL databases through one portable archive.

The library API (the CLI is a thin layer over it)::

    import dbcrate
    dbcrate.dump("sqlite:///app.db", "app.crate")
    with dbcrate.open_archive("app.crate") as archive:
        print([t.name for t in archive.tables])
    report = dbcrate.restore("app.crate", "postgresql+psycopg://postgres@127.0.0.1/app")
    report.raise_for_failures()

The names of ``__all__`` are imported when first used (PEP 562): ``import dbcrate`` loads
neither SQLAlchemy nor pyarrow, so that a command that needs neither (``dbcrate --help``) starts
at once (docs/PERFORMANCE.md, "Start-up"). ``from dbcrate import dump`` works as before.

``dbcrate.dump`` and ``dbcrate.restore`` are the functions, although ``dbcrate.dump`` and
``dbcrate.restore`` are subpackages too: importing a subpackage binds it on its parent package,
and this module refuses that binding for its public names (:class:`_Package`); the
subpackages are reached with ``from dbcrate.dump.run import ...`` (as they always were).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.4.0"

#: public name -> the module that defines it (imported on first use, by :func:`_module`)
_LAZY: dict[str, str] = {
    "Archive": "containers.archive",
    "open_archive": "containers.archive",
    "ConvertResult": "containers.convert",
    "convert": "containers.convert",
    "dump_as": "containers.convert",
    "iter_convert": "containers.convert",
    "iter_dump_as": "containers.convert",
    "CONTAINER_KINDS": "containers.kinds",
    "CopyResult": "transfer",
    "Encryption": "crypto.keys",
    "Keyring": "crypto.keys",
    "copy": "transfer",
    "iter_copy": "transfer",
    "DumpResult": "dump.run",
    "dump": "dump.run",
    "iter_dump": "dump.run",
    "DbcrateError": "errors",
    "DumpOptions": "options",
    "RestoreOptions": "options",
    "Event": "progress",
    "RestoreReport": "restore.run",
    "iter_restore": "restore.run",
    "restore": "restore.run",
}

if TYPE_CHECKING:  # the names as mypy and editors see them
    from dbcrate.containers.archive import Archive as Archive
    from dbcrate.containers.archive import open_archive as open_archive
    from dbcrate.containers.convert import ConvertResult as ConvertResult
    from dbcrate.containers.convert import convert as convert
    from dbcrate.containers.convert import dump_as as dump_as
    from dbcrate.containers.convert import iter_convert as iter_convert
    from dbcrate.containers.convert import iter_dump_as as iter_dump_as
    from dbcrate.containers.kinds import CONTAINER_KINDS as CONTAINER_KINDS
    from dbcrate.crypto.keys import Encryption as Encryption
    from dbcrate.crypto.keys import Keyring as Keyring
    from dbcrate.dump.run import DumpResult as DumpResult
    from dbcrate.dump.run import dump as dump
    from dbcrate.dump.run import iter_dump as iter_dump
    from dbcrate.errors import DbcrateError as DbcrateError
    from dbcrate.options import DumpOptions as DumpOptions
    from dbcrate.options import RestoreOptions as RestoreOptions
    from dbcrate.progress import Event as Event
    from dbcrate.restore.run import RestoreReport as RestoreReport
    from dbcrate.restore.run import iter_restore as iter_restore
    from dbcrate.restore.run import restore as restore
    from dbcrate.transfer import CopyResult as CopyResult
    from dbcrate.transfer import copy as copy
    from dbcrate.transfer import iter_copy as iter_copy

__all__ = [
    "CONTAINER_KINDS",
    "Archive",
    "ConvertResult",
    "CopyResult",
    "DbcrateError",
    "DumpOptions",
    "DumpResult",
    "Encryption",
    "Event",
    "Keyring",
    "RestoreOptions",
    "RestoreReport",
    "__version__",
    "convert",
    "copy",
    "dump",
    "dump_as",
    "iter_convert",
    "iter_copy",
    "iter_dump",
    "iter_dump_as",
    "iter_restore",
    "open_archive",
    "restore",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_module(module), name)
    globals()[name] = value  # the next lookup finds it without this function
    return value


def _module(name: str) -> types.ModuleType:
    """The module ``dbcrate.<name>`` of :data:`_LAZY`, imported by a plain import statement
    (dbcrate imports no module by a computed name: tests/test_security.py, SE-07)."""
    if name == "containers.archive":
        from dbcrate.containers import archive
        return archive
    if name == "containers.convert":
        from dbcrate.containers import convert
        return convert
    if name == "containers.kinds":
        from dbcrate.containers import kinds
        return kinds
    if name == "dump.run":
        from dbcrate.dump import run as dump_run
        return dump_run
    if name == "restore.run":
        from dbcrate.restore import run as restore_run
        return restore_run
    if name == "transfer":
        from dbcrate import transfer
        return transfer
    if name == "crypto.keys":
        from dbcrate.crypto import keys
        return keys
    if name == "errors":
        from dbcrate import errors
        return errors
    if name == "options":
        from dbcrate import options
        return options
    if name == "progress":
        from dbcrate import progress
        return progress
    raise AssertionError(f"_LAZY names no module dbcrate.{name}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """This package's module type: importing the subpackage ``dbcrate.dump`` (or
    ``dbcrate.restore``) binds it as the attribute ``dump`` of this package, which would hide
    the function of that name; such a binding of a public name to a module is ignored (the
    subpackage stays in ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
