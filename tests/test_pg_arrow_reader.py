"""The ADBC reader of PostgreSQL tables (dialects/pg_arrow.py) against the COPY CSV reader it
stands in for: the same archive batches for every value of every kind, the same refusals, in
the dump's snapshot, its connection closed when the dump ends (or fails), and the CSV path
where it cannot read a table exactly."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import Databases, engine_of, run_cli, run_sql

from dbcrate.dialects import dialect_for, pg_arrow
from dbcrate.dialects.postgresql import PostgreSQL
from dbcrate.dump.source import open_snapshot
from dbcrate.errors import SourceValueError
from dbcrate.model.schema import Table

pytestmark = pytest.mark.skipif(not pg_arrow.available(), reason="adbc-driver-postgresql")

#: every kind the reader takes, and the edges of each (as the server parses the text)
COLUMNS: list[tuple[str, str, list[str | None]]] = [
    ("b", "boolean", ["t", "f", None]),
    ("i2", "smallint", ["-32768", "32767", "0"]),
    ("i4", "integer", ["-2147483648", "2147483647", None]),
    ("i8", "bigint", ["-9223372036854775808", "9223372036854775807", "1"]),
    ("f4", "real", ["NaN", "-0", "1.17549435e-38"]),
    ("f8", "double precision", ["Infinity", "-Infinity", "0.1"]),
    ("n", "numeric", ["NaN", "1.500", "-123456789012345678901234567890.0000000001"]),
    ("t", "text", ["", None, "ünï\tcödé \"q\" ,\n\\N"]),
    ("vc", "varchar(20)", ["a", "", None]),
    ("ch", "char(5)", ["ab", "", None]),
    ("by", "bytea", ["\\x", "\\x00ff5c", None]),
    ("d", "date", ["infinity", "-infinity", "4713-01-01 BC"]),
    ("d2", "date", ["0001-01-01", "9999-12-31", "5874897-12-31"]),
    ("ts", "timestamp", ["infinity", "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"]),
    ("ts2", "timestamp", ["-infinity", "1201-02-29 12:00:00 BC", "2020-01-01 01:02:03.456789"]),
    ("tz", "timestamptz", ["infinity", "-infinity", "10000-01-01 00:00:00+00"]),
    ("tm", "time", ["24:00:00", "00:00:00", "12:34:56.789"]),
    ("j", "json", ['{"b": 1,  "a": [1, 2]}', "null", None]),
    ("jb", "jsonb", ['{"b": 1,  "a": [1, 2]}', "[]", None]),
    ("u", "uuid", [str(uuid.UUID(int=1)), None, str(uuid.UUID(int=2**128 - 1))]),
    ("a", "integer[]", ["{1,NULL,3}", "{}", None]),
    ("iv", "interval", ["1 year 2 mons 3 days 04:05:06.7", "-1 day", None]),
    ("e", "mood", ["happy", "sad", None]),
    ("ca", "char(3)[]", ["{a,b}", None, "{}"]),
    # types whose cast to text is not what COPY prints (their output function)
    ("ip", "inet", ["10.0.0.1", "::1", "10.0.0.1/24"]),
    ("cd", "cidr", ["10.0.0.0/8", None, "::/0"]),
    ("x", "xml", ["<a>x</a>", None, '<?xml version="1.0"?><b/>']),
    ("bp", "bpchar", ["ab  ", None, "x "]),
]


@pytest.fixture()
def pg(dbs: Databases) -> Iterator[sa.Engine]:
    url = dbs.new("postgresql")
    run_sql(url, "CREATE TYPE mood AS ENUM ('happy', 'sad')")
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _create(engine: sa.Engine, table: str, columns: list[tuple[str, str, list[str | None]]]) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        defs = ", ".join(f"{name} {typ}" for name, typ, _ in columns)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, {defs})")
        casts = ", ".join(f"%s::{typ}" for _, typ, _ in columns)
        names = ", ".join(name for name, _, _ in columns)
        for row in zip(*(texts for _, _, texts in columns)):
            conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({casts})", row)


def _read(engine: sa.Engine, name: str, min_bytes: int | None,
          expect_adbc: bool = True) -> pa.Table:
    """The table as a dump reads it, with the ADBC reader on (``min_bytes`` 0) or off."""
    dialect = dialect_for(engine)
    assert isinstance(dialect, PostgreSQL)
    dialect.arrow_reader_min_bytes = min_bytes  # on this instance only
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        dialect.begin_snapshot(conn)
        try:
            table = Table(name=name, columns=dialect.reflect(conn, name).columns)
            batches = list(dialect.read_table(conn, table, 1000))
            held = conn.info.get("dbcrate.pg_arrow")
            used = held is not None and not held.failed
            assert used == (min_bytes is not None and expect_adbc), (name, held)
        finally:
            dialect.end_snapshot(conn)
        assert "dbcrate.pg_arrow" not in conn.info  # closed with the snapshot
    schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
    return pa.Table.from_batches(batches, schema=schema).sort_by("id")


def _same(a: pa.Table, b: pa.Table) -> bool:
    """The same schema and values, floats compared bit for bit (-0.0, a NaN's sign and
    payload)."""
    if a.schema != b.schema:
        return False
    for x, y in zip(a.columns, b.columns):
        x, y = x.combine_chunks(), y.combine_chunks()
        if pa.types.is_floating(x.type):
            bits = pa.int32() if x.type == pa.float32() else pa.int64()
            x, y = x.view(bits), y.view(bits)
        if not x.equals(y):
            return False
    return True


def test_every_kind_and_edge_reads_as_the_csv_path_reads_it(pg: sa.Engine) -> None:
    finite = [c for c in COLUMNS if c[0] not in ("d2", "tz")]  # those two hold refused values
    _create(pg, "every_kind", finite)
    with pg.begin() as conn:  # NaNs with the sign bit set, as arithmetic leaves them
        conn.exec_driver_sql("INSERT INTO every_kind (f4, f8) VALUES (-('NaN'::real), "
                             "'Infinity'::float8 - 'Infinity'::float8)")
    adbc, csv = _read(pg, "every_kind", 0), _read(pg, "every_kind", None)
    assert adbc.num_rows == 4
    for name in adbc.column_names:
        assert _same(adbc.select([name]), csv.select([name])), (name, adbc.column(name),
                                                                 csv.column(name))
    # the values themselves, where a silent driver conversion would differ
    assert adbc.column("ch").to_pylist()[:2] == ["ab   ", "     "]  # padding kept
    assert adbc.column("tm").cast(pa.int64()).to_pylist()[0] == 86_400_000_000  # 24:00:00
    assert adbc.column("n").to_pylist()[:2] == ["NaN", "1.500"]
    assert adbc.column("by").to_pylist()[:2] == [b"", b"\x00\xff\\"]
    assert adbc.column("ip").to_pylist() == ["10.0.0.1", "::1", "10.0.0.1/24", None]
    assert adbc.column("bp").to_pylist()[:3] == ["ab  ", None, "x "]
    assert adbc.column("x").to_pylist()[0] == "<a>x</a>"


@pytest.mark.parametrize(("typ", "text"), [("timestamptz", "294276-12-31 23:59:59+00"),
                                           ("timestamp", "294247-01-10 04:00:54.775808")])
def test_a_value_past_the_archive_range_is_refused_as_by_the_csv_path(pg: sa.Engine, typ: str,
                                                                      text: str) -> None:
    _create(pg, "far", [("v", typ, ["2000-01-01 00:00:00", text])])
    messages = []
    for min_bytes in (0, None):
        with pytest.raises(SourceValueError) as caught:
            _read(pg, "far", min_bytes)
        messages.append(caught.value.message)
    assert messages[0] == messages[1] and "'v'" in messages[0]


def test_dates_past_9999_read_as_the_csv_path_reads_them(pg: sa.Engine) -> None:
    _create(pg, "dates", [("d", "date", ["5874897-12-31", "10000-01-01", "0001-01-01"])])
    assert _same(_read(pg, "dates", 0), _read(pg, "dates", None))


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
                max_size=30)
_ROWS = st.lists(st.tuples(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.floats(width=64)),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), st.binary(max_size=20)),
    st.one_of(st.none(), st.integers(-2_000_000, 3_000_000)),  # days around the bounds
    st.one_of(st.none(), st.integers(-(10**17), 10**17)),  # microseconds, 1200 BC .. 5100 AD
    st.one_of(st.none(), st.just(Decimal("NaN")),
              st.decimals(allow_nan=False, allow_infinity=False, places=4)),
), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_ROWS)
def test_any_values_read_as_the_csv_path_reads_them(pg: sa.Engine, rows: list[tuple]) -> None:
    """Values drawn at random, bound as parameters (so the server stores them as a client
    sends them), read by both readers: the same batches."""
    with pg.begin() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        conn.exec_driver_sql("DROP TABLE IF EXISTS r; CREATE TABLE r (id serial PRIMARY KEY, "
                             "i bigint, f double precision, t text, b bytea, d date, "
                             "ts timestamp, tz timestamptz, n numeric)")
        for i, f, t, b, d, us, n in rows:
            conn.exec_driver_sql(
                "INSERT INTO r (i, f, t, b, d, ts, tz, n) VALUES (%s, %s, %s, %s, "
                "'1970-01-01'::date + %s::int, 'epoch'::timestamp + %s * interval '1 microsecond', "
                "'epoch'::timestamptz + %s * interval '1 microsecond', %s)",
                (i, f, t, b, d, us, us, n))
    adbc, csv = _read(pg, "r", 0), _read(pg, "r", None)
    assert _same(adbc, csv), (adbc.to_pylist(), csv.to_pylist())


def test_kinds_it_cannot_read_exactly_take_the_csv_path(pg: sa.Engine) -> None:
    run_sql(pg.url.render_as_string(hide_password=False),
            "CREATE DOMAIN padded AS char(4)",
            "CREATE TABLE dom (id int PRIMARY KEY, p padded)",
            "INSERT INTO dom VALUES (1, 'ab'), (2, NULL)")
    table = _read(pg, "dom", 0, expect_adbc=False)  # a domain: its ::text would strip
    assert table.column("p").to_pylist() == ["ab  ", None]


def _sessions(engine: sa.Engine, settled: int | None = None) -> int:
    """Other sessions on the database; with ``settled``, waited for (up to 5 s) to be that
    many (a backend whose client hung up takes a moment to leave pg_stat_activity)."""
    deadline = time.monotonic() + 5
    while True:
        with engine.connect() as conn:
            count = int(conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()").scalar() or 0)
        if settled is None or count == settled or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
def test_it_reads_the_dump_snapshot_and_closes_after(pg: sa.Engine, workers: int) -> None:
    """A row committed after the snapshot began is not read, by the leader's reader nor by a
    worker's; the readers' sessions are gone when the snapshot ends, or fails."""
    url = pg.url.render_as_string(hide_password=False)
    _create(pg, "snap", [("v", "integer", ["1", "2"])])
    pg.dispose()
    with open_snapshot(url) as snap:
        assert isinstance(snap.dialect, PostgreSQL)
        snap.dialect.arrow_reader_min_bytes = 0
        # the snapshot is taken by the first query (the dump's reflection), as in a dump
        table = Table(name="snap", columns=snap.dialect.reflect(snap.conn, "snap").columns)
        snap.share(workers)
        run_sql(url, "INSERT INTO snap (v) VALUES (3)")  # after the snapshot
        for conn in [snap.conn, *snap.workers]:
            got = pa.Table.from_batches(list(snap.dialect.read_table(conn, table, 100)))
            assert sorted(got.column("v").to_pylist()) == [1, 2]
            assert conn.info["dbcrate.pg_arrow"].failed is False
        assert _sessions(pg) == 2 * workers  # each connection and its reader
        snap.end()
    assert _sessions(pg, settled=0) == 0
    with pytest.raises(RuntimeError), open_snapshot(url) as snap:
        snap.dialect.arrow_reader_min_bytes = 0  # type: ignore[attr-defined]
        snap.share(2)
        for conn in [snap.conn, *snap.workers]:
            list(snap.dialect.read_table(conn, table, 100))
        raise RuntimeError("the dump failed")
    assert _sessions(pg, settled=0) == 0


def test_a_dump_and_restore_through_it_gives_back_every_row(dbs: Databases, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end, the CLI with the reader on for every table: the restored database holds
    the same text of every value as the source."""
    src, dst = dbs.new("postgresql"), dbs.new("postgresql")
    run_sql(src, "CREATE TYPE mood AS ENUM ('happy', 'sad')")
    eng = engine_of(src)
    finite = [c for c in COLUMNS if c[0] not in ("d2", "tz")]
    _create(eng, "every_kind", finite)
    eng.dispose()
    monkeypatch.setattr(PostgreSQL, "arrow_reader_min_bytes", 0)
    read_by_adbc: list[str] = []
    real = pg_arrow.read_batches

    def spied(conn: sa.Connection, table: Table, *args: object) -> object:
        batches = real(conn, table, *args)  # type: ignore[arg-type]
        if batches is not None:
            read_by_adbc.append(table.name)
        return batches

    monkeypatch.setattr(pg_arrow, "read_batches", spied)
    archive = tmp_path / "a.dbcrate"
    code, _, err = run_cli("dump", src, str(archive))
    assert code == 0, err
    assert read_by_adbc == ["every_kind"]
    code, _, err = run_cli("restore", str(archive), dst)
    assert code == 0, err
    # each value as its type prints it (xml's cast to text keeps a declaration COPY drops)
    cols = ", ".join(f"CASE WHEN {name} IS NULL THEN NULL ELSE format('%%s', {name}) END"
                     for name, _, _ in finite)
    texts = []
    for url in (src, dst):
        with engine_of(url).connect() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            texts.append(conn.exec_driver_sql(f"SELECT {cols} FROM every_kind ORDER BY id").all())
    assert texts[0] == texts[1] and len(texts[0]) == 3


@pytest.fixture
def limited(dbs: Databases) -> Iterator[tuple[str, str]]:
    """A source (as a superuser, and as a role row-level security applies to) whose table
    ``t`` fails after its first 150,000 rows are read (``u`` reads), made for the reader."""
    src = dbs.new("postgresql")
    role = f"dbcrate_r_{uuid.uuid4().hex[:8]}"
    run_sql(src, f'CREATE ROLE "{role}" LOGIN',
            "CREATE TABLE t (id integer PRIMARY KEY, v text)",
            "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200000) g",
            "CREATE TABLE u (id integer PRIMARY KEY, v text)",
            "INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 1000) g",
            "CREATE FUNCTION gate(i integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
            "IF i > 150000 THEN RAISE EXCEPTION 'the disk under t failed'; END IF; "
            "RETURN true; END $$",
            "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY gated ON t FOR SELECT USING (gate(id))",
            f'GRANT SELECT ON t, u TO "{role}"')
    as_role = sa.engine.make_url(src).set(username=role).render_as_string(hide_password=False)
    yield src, as_role
    dbs.drop_all()  # (the grants go with the databases)
    dbs.created.clear()
    run_sql(src.rsplit("/", 1)[0] + "/postgres", f'DROP ROLE IF EXISTS "{role}"')


def test_a_read_that_fails_midway_fails_its_table_as_the_csv_path_does(
        limited: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server breaks the read off after batches were read: the dump ends naming the table
    and the server's message, with no archive; under --tolerate the table is recorded as
    failed and the next table is read (through COPY CSV: the reader's transaction is gone)."""
    _, as_role = limited
    monkeypatch.setattr(PostgreSQL, "arrow_reader_min_bytes", 0)
    yielded: dict[str, int] = {}
    real = pg_arrow._converted

    def counted(reader: object, cur: object, stream: object, table: Table) -> Iterator[pa.RecordBatch]:
        for batch in real(reader, cur, stream, table):  # type: ignore[arg-type]
            yielded[table.name] = yielded.get(table.name, 0) + batch.num_rows
            yield batch

    monkeypatch.setattr(pg_arrow, "_converted", counted)
    archive = tmp_path / "a.dbcrate"
    code, _, err = run_cli("dump", as_role, str(archive), "-j", "1", "--no-progress")
    assert code == 13, err
    message = " ".join(err.split())
    assert "reading table 't'" in message and "the disk under t failed" in message, err
    assert "Traceback" not in err and not archive.exists()
    assert 0 < yielded["t"] <= 150_000  # batches came before the failure

    yielded.clear()
    code, out, err = run_cli("dump", as_role, str(archive), "-j", "1", "--tolerate", "--json")
    assert code == 15, err
    payload = json.loads(out)
    assert payload["failed"] == ["t"] and "the disk under t failed" in out
    assert "u" not in yielded  # read by COPY CSV after the reader's transaction failed
    target = f"sqlite:///{tmp_path / 'back.db'}"
    code, _, err = run_cli("restore", str(archive), target, "-T", "t")
    assert code == 0, err
    with engine_of(target).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM u").scalar() == 1000


def test_the_leader_idles_while_its_reader_reads_without_being_timed_out(
        limited: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that ends sessions idle in a transaction for 1 s: the dump's own connection
    idles while its ADBC reader reads a slow table (2 s), then reads the next table itself."""
    src, as_role = limited
    run_sql(src, "DROP POLICY gated ON t",
            "CREATE POLICY slow ON t FOR SELECT USING (id <> 1 OR pg_sleep(2) IS NOT NULL)",
            f"ALTER DATABASE {sa.engine.make_url(src).database} "
            "SET idle_in_transaction_session_timeout = '1s'")
    monkeypatch.setattr(PostgreSQL, "arrow_reader_min_bytes", 1024)  # t by ADBC, u by COPY
    archive = tmp_path / "a.dbcrate"
    code, _, err = run_cli("dump", as_role, str(archive), "-j", "1", "--no-progress")
    assert code == 0, err
    target = f"sqlite:///{tmp_path / 'back.db'}"
    code, _, err = run_cli("restore", str(archive), target)
    assert code == 0, err
    with engine_of(target).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 200_000
        assert conn.exec_driver_sql("SELECT count(*) FROM u").scalar() == 1000


def test_a_table_wider_than_a_select_list_takes_the_csv_path(pg: sa.Engine) -> None:
    """840 timestamps would be 1680 select entries (two each): past PostgreSQL's 1664."""
    cols = [(f"c{i}", "timestamp", ["2020-01-01 00:00:00", None, "infinity"]) for i in range(840)]
    _create(pg, "wide", cols)
    assert _same(_read(pg, "wide", 0, expect_adbc=False), _read(pg, "wide", None))
