"""The text of temporal values: ISO dates, times of day and timestamps, with the ±infinity
sentinels and years outside 1..9999.

One spelling, shared by every place that stores a temporal value as text: the text data
formats (:mod:`dbcrate.formats.textvalues`) and the SQLite and Python container kinds. Values
are the integers of :mod:`dbcrate.model.logical` (days since 1970-01-01 for a date, microseconds
for a time or a timestamp), never ``datetime`` objects, which cannot hold the whole range.

* date ``YYYY-MM-DD``; years 0..9999 with 4 digits, later years ``+YYYYY``, years before 0
  ``-YYYY`` (astronomical numbering: ``0000`` = 1 BC); sentinels ``infinity`` / ``-infinity``;
* time ``HH:MM:SS`` plus ``.ffffff`` (6 digits) when the microseconds are not 0; ``24:00:00``;
* timestamp ``<date>THH:MM:SS[.ffffff]``; with a time zone the same in UTC with a ``Z`` suffix;
  sentinels ``infinity`` / ``-infinity``.

Parsing refuses anything else with :class:`MemberDecodeError`.
"""

from __future__ import annotations

import datetime as dt
import re

from dbcrate.model.logical import DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY
from dbcrate.model.values import civil_from_days, days_from_civil


class MemberDecodeError(ValueError):
    """A text member does not decode to the expected schema (a ``ValueError``: the archive
    reader reports it as a corrupt member). ``hint`` says what the user can do, if anything.

    (Defined here, with the parsers of temporal text that raise it, so that the container kinds
    and the text formats share it without one importing the other.)"""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_FAST_MIN_DAY = dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL
_FAST_MAX_DAY = dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL
_EPOCH = dt.datetime(1970, 1, 1)
_FAST_MIN_US = _FAST_MIN_DAY * _DAY_US
_FAST_MAX_US = (_FAST_MAX_DAY + 1) * _DAY_US - 1

_YEAR = r"([+-]?)([0-9]{4,7})-([0-9]{2})-([0-9]{2})"
_CLOCK = r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
_DATE_RE = re.compile(_YEAR, re.ASCII)
_TIME_RE = re.compile(_CLOCK, re.ASCII)
_TS_RE = re.compile(_YEAR + "T" + _CLOCK, re.ASCII)
_TSZ_RE = re.compile(_YEAR + "T" + _CLOCK + "Z", re.ASCII)


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _date_text(days: int) -> str:
    if _FAST_MIN_DAY <= days <= _FAST_MAX_DAY:
        return dt.date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
    year, month, day = civil_from_days(days)
    if year > 9999:
        text = f"+{year}"
    elif year < 0:
        text = f"-{-year:04d}"
    else:
        text = f"{year:04d}"
    return f"{text}-{month:02d}-{day:02d}"


def _clock_text(us: int) -> str:
    seconds, fraction = divmod(us, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def format_date(days: int) -> str:
    """``YYYY-MM-DD`` (``+YYYYY`` after 9999, ``-YYYY`` before year 0), or ``infinity`` /
    ``-infinity`` for the sentinels."""
    if days == DATE_POS_INFINITY:
        return "infinity"
    if days == DATE_NEG_INFINITY:
        return "-infinity"
    return _date_text(days)


def format_time(us: int) -> str:
    """``HH:MM:SS[.ffffff]``; 86400000000 is ``24:00:00``; anything outside that range is refused."""
    if not 0 <= us <= _DAY_US:
        raise ValueError(f"time value {us} us is outside 00:00:00..24:00:00")
    return "24:00:00" if us == _DAY_US else _clock_text(us)


def format_timestamp(us: int, utc: bool) -> str:
    """``<date>THH:MM:SS[.ffffff]`` (``Z`` appended when ``utc``), or ``infinity`` / ``-infinity``."""
    if us == TS_POS_INFINITY:
        return "infinity"
    if us == TS_NEG_INFINITY:
        return "-infinity"
    if _FAST_MIN_US <= us <= _FAST_MAX_US:
        text = (_EPOCH + dt.timedelta(microseconds=us)).isoformat()
    else:
        days, rest = divmod(us, _DAY_US)
        text = f"{_date_text(days)}T{_clock_text(rest)}"
    return text + "Z" if utc else text


def _days_of(sign: str, year_text: str, month_text: str, day_text: str) -> int:
    year = -int(year_text) if sign == "-" else int(year_text)
    month, day = int(month_text), int(day_text)
    if not 1 <= month <= 12 or not 1 <= day <= _month_days(year, month):
        raise ValueError("no such day")
    return days_from_civil(year, month, day)


def _clock_of(hours: str, minutes: str, seconds: str, fraction: str | None) -> int:
    h, m, s = int(hours), int(minutes), int(seconds)
    if h > 23 or m > 59 or s > 59:
        raise ValueError("no such time of day")
    return ((h * 60 + m) * 60 + s) * 1_000_000 + (int(fraction.ljust(6, "0")) if fraction else 0)


def parse_date(text: str) -> int:
    """Inverse of :func:`format_date`."""
    if text == "infinity":
        return DATE_POS_INFINITY
    if text == "-infinity":
        return DATE_NEG_INFINITY
    match = _DATE_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError("not a date")
        days = _days_of(*match.groups())
        if not DATE_NEG_INFINITY < days < DATE_POS_INFINITY:
            raise ValueError("out of range")
    except ValueError as exc:
        raise MemberDecodeError(f"invalid date {text[:40]!r}: {exc}") from None
    return days


def parse_time(text: str) -> int:
    """Inverse of :func:`format_time`."""
    if text == "24:00:00":
        return _DAY_US
    match = _TIME_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError("not a time")
        return _clock_of(*match.groups())
    except ValueError as exc:
        raise MemberDecodeError(f"invalid time {text[:40]!r}: {exc}") from None


def parse_timestamp(text: str, utc: bool) -> int:
    """Inverse of :func:`format_timestamp`."""
    if text == "infinity":
        return TS_POS_INFINITY
    if text == "-infinity":
        return TS_NEG_INFINITY
    match = (_TSZ_RE if utc else _TS_RE).fullmatch(text)
    try:
        if match is None:
            raise ValueError("not an ISO timestamp" + (" ending in Z" if utc else " without zone"))
        parts = match.groups()
        us = _days_of(*parts[:4]) * _DAY_US + _clock_of(*parts[4:])
        if not TS_NEG_INFINITY < us < TS_POS_INFINITY:
            raise ValueError("out of range")
    except ValueError as exc:
        raise MemberDecodeError(f"invalid timestamp {text[:40]!r}: {exc}") from None
    return us
