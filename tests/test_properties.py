"""Property tests (hypothesis): any value of a type survives dump -> restore on each engine."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate

from conftest import ENGINES, Databases, engine_of, require

# column DDL per engine, and the strategy of values that engine can store
TYPES: dict[str, dict[str, str]] = {
    "text": {"postgresql": "text", "mysql": "longtext", "sqlite": "TEXT"},
    "blob": {"postgresql": "bytea", "mysql": "longblob", "sqlite": "BLOB"},
    "int64": {"postgresql": "bigint", "mysql": "bigint", "sqlite": "INTEGER"},
    "float64": {"postgresql": "double precision", "mysql": "double", "sqlite": "REAL"},
    "decimal": {"postgresql": "numeric(30,10)", "mysql": "decimal(30,10)", "sqlite": "NUMERIC(30,10)"},
    "timestamp": {"postgresql": "timestamp(6)", "mysql": "datetime(6)", "sqlite": "DATETIME"},
    "date": {"postgresql": "date", "mysql": "date", "sqlite": "DATE"},
}


def text_strategy(kind: str) -> st.SearchStrategy[str]:
    exclude = ["Cs"] + (["Cc"] if kind == "postgresql" else [])
    chars = st.characters(exclude_categories=exclude)
    if kind == "postgresql":
        return st.text(chars.filter(lambda c: c != "\x00"), max_size=40) | st.sampled_from(
            ["", "\\N", "NULL", "\\.", '"', "\r\n"])
    return st.text(chars, max_size=40) | st.just("a\x00b")


def strategy(type_name: str, kind: str) -> st.SearchStrategy[Any]:
    if type_name == "text":
        return text_strategy(kind)
    if type_name == "blob":
        return st.binary(max_size=64)
    if type_name == "int64":
        return st.integers(-(2**63), 2**63 - 1)
    if type_name == "float64":
        allow_special = kind == "postgresql"
        floats = st.floats(allow_nan=allow_special, allow_infinity=kind != "mysql")
        if kind != "postgresql":
            floats = floats.filter(lambda f: not (f == 0 and math.copysign(1, f) < 0))
        return floats
    if type_name == "decimal":
        return st.decimals(min_value=Decimal("-99999999999999999999"),
                           max_value=Decimal("99999999999999999999"), places=10,
                           allow_nan=False, allow_infinity=False)
    if type_name == "timestamp":
        lo = dt.datetime(1000, 1, 1) if kind == "mysql" else dt.datetime(1, 1, 1)
        return st.datetimes(min_value=lo, max_value=dt.datetime(9999, 12, 31, 23, 59, 59))
    return st.dates(min_value=dt.date(1000 if kind == "mysql" else 1, 1, 1))


def bind(value: Any, kind: str) -> Any:
    if kind == "sqlite" and isinstance(value, Decimal):
        return str(value)
    if kind == "sqlite" and isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if kind == "sqlite" and isinstance(value, dt.date):
        return value.isoformat()
    return value


def normal(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float):
        return (value, math.copysign(1, value))
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value).normalize()
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            if len(value) >= 10 and value[4] == "-":
                parsed = dt.datetime.fromisoformat(value)
                return parsed.date() if len(value) == 10 else parsed
        except ValueError:
            pass
    return value


def read_back(url: str) -> list[Any]:
    eng = engine_of(url)
    try:
        with eng.connect() as c:
            return [r[0] for r in c.exec_driver_sql("SELECT x FROM v ORDER BY id")]
    finally:
        eng.dispose()


@pytest.mark.parametrize("type_name", sorted(TYPES))
@pytest.mark.parametrize("kind", ENGINES)
def test_values_round_trip(kind: str, type_name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    require(kind)
    dbs = Databases(tmp_path_factory.mktemp("prop"))
    src, dst = dbs.new(kind), dbs.new(kind)
    q = sa.create_engine(src).dialect.identifier_preparer.quote
    run = 0
    try:
        @settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(values=st.lists(strategy(type_name, kind), min_size=1, max_size=8))
        def check(values: list[Any]) -> None:
            nonlocal run
            run += 1
            eng = engine_of(src)
            with eng.connect() as c:
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {q('v')}")
                c.exec_driver_sql(f"CREATE TABLE {q('v')} (id INTEGER PRIMARY KEY, x {TYPES[type_name][kind]})")
                marks = "?" if kind == "sqlite" else "%s"
                raw = c.connection.driver_connection
                cur = raw.cursor()
                cur.executemany(f"INSERT INTO v (id, x) VALUES ({marks}, {marks})",
                                [(i, bind(v, kind)) for i, v in enumerate(values)])
                if kind == "sqlite":
                    raw.commit()
            eng.dispose()
            archive = tmp_path_factory.getbasetemp() / f"p{uuid.uuid4().hex}.crate"
            dbcrate.dump(src, archive)
            report = dbcrate.restore(archive, dst, clean=True)
            assert report.ok, report.to_dict()
            stored, got = read_back(src), read_back(dst)
            assert len(stored) == len(values)
            assert [normal(v) for v in got] == [normal(v) for v in stored]
            Path(archive).unlink()

        check()
    finally:
        dbs.drop_all()
