"""The library speaks of its options by their Python names (``clean=True``,
``on_conflict='update'``, ``exclude=[...]``, ``storages_to=DIR``): its errors and report notes
are read by Python callers too. The command line says the same with its flags; this module
translates, from the commands' own declarations (:func:`learn`, called by
:mod:`dbcrate.cli.app` once the commands are registered), so that a flag is named once.

Only the spellings above are translated, and only for names that are options of a command:
other ``name=value`` text (a row key such as ``id=3`` in a report) is left as it is.
"""

from __future__ import annotations

import re

import click

#: ``name=True``, ``name='word'``, ``name=[...]``, ``name=METAVAR`` (upper case)
_PYTHON_SPELLING = re.compile(r"\b([a-z][a-z0-9_]*)=(True|'[^'\s]*'|\[\.\.\.\]|[A-Z][A-Z_]*\b)")

#: option name (the click parameter's name) -> (its long flag, its metavar)
_FLAGS: dict[str, tuple[str, str]] = {}


def learn(group: click.Group) -> None:
    """Record the flag of every option of the commands of ``group`` (the first command that
    declares a name wins; the commands agree where they share one)."""
    for command in group.commands.values():
        for param in command.params:
            if not isinstance(param, click.Option) or not param.name:
                continue
            longs = [o for o in param.opts if o.startswith("--")]
            if longs and param.name not in _FLAGS:
                _FLAGS[param.name] = (longs[0], param.metavar or "VALUE")


def flag_of(name: str) -> str | None:
    """The long flag of the option named ``name`` (``clean`` -> ``--clean``), if any."""
    found = _FLAGS.get(name)
    return found[0] if found else None


def _flag(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    found = _FLAGS.get(name)
    if found is None:
        return match.group(0)
    flag, metavar = found
    if value == "True":
        return flag
    if value.startswith("'"):
        return f"{flag} {value.strip(chr(39))}"
    return f"{flag} {metavar if value == '[...]' else value}"


def as_flags(text: str | None) -> str | None:
    """``text`` with the Python spellings of options in their command-line spelling:
    ``add clean=True`` -> ``add --clean``, ``on_conflict='update'`` -> ``--on-conflict update``,
    ``exclude=[...]`` -> ``--exclude-table PATTERN``."""
    if not text:
        return text
    return _PYTHON_SPELLING.sub(_flag, text)
