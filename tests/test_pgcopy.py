"""The ``pgcopy`` data format (issue 19): a PostgreSQL dump that keeps the rows as the server
writes them (``COPY ... TO STDOUT``, as pg_dump does), loaded into PostgreSQL as they are and
decoded into Arrow for everything else.

The spine: Pagila (partitions, enums, arrays, domains, triggers) dumped in this format and
restored is the same database by ``pg_dump``, without one value parsed on the client; a table
of every awkward value decodes to exactly what the Parquet dump holds; a property over
arbitrary text and bytes through a real server; a copy between two PostgreSQL databases spools
in this format; bad members are refused by name."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate
from archive_tools import data_members, manifest_of, read_members, tar_bytes, with_chunk, with_member
from dbcrate.dialects.postgresql import PostgreSQL
from dbcrate.formats.framing import MemberDecodeError
from dbcrate.formats.pgcopy import TextPiece, decode_rows, read_pgcopy, text_pieces
from dbcrate.transfer import spool_format
from test_native_restore_pg import PAGILA, _psql, pg_dump, same_database

from conftest import Databases, require, rows, run_cli, run_sql

AWKWARD = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE t (id serial PRIMARY KEY, s text, b bytea, d date, ts timestamp, tz timestamptz,
  tm time, n numeric, f float8, r real, i1 smallint, bo boolean, j jsonb, a int[], m mood,
  iv interval, u uuid, e text, big bigint);
INSERT INTO t (s, b, d, ts, tz, tm, n, f, r, i1, bo, j, a, m, iv, u, e, big) VALUES
 (E'tab\\there\\nnew\\\\back \\\\N', '\\x00ff5c0a0d09'::bytea, '0002-12-31 BC', 'infinity',
  '2021-06-01 10:00+02', '24:00:00', 'NaN', 'Infinity', '-0', -32768, true,
  '{"a": "x\\ty\\\\"}', '{1,NULL,3}', 'sad', '1 day 02:00', gen_random_uuid(), '',
  -9223372036854775808),
 ('\\N', '', 'infinity', '0044-03-15 12:30:00.000001 BC', '-infinity', '00:00:01.5',
  '12345678901234567890.000001', '-Infinity', 1e30, 7, false, 'null', '{}', 'ok', '-1 mon',
  NULL, E'\\r\\b\\f\\v', 9223372036854775807),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL);
INSERT INTO t (s, b) SELECT repeat(chr(i % 1000 + 32), i % 50), decode(lpad(to_hex(i), 8, '0'),
  'hex') FROM generate_series(1, 3000) i;
"""


def _same_values(a: pa.Table, b: pa.Table) -> None:
    """Equal tables, NaN equal to NaN."""
    assert a.schema == b.schema
    for name in a.column_names:
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        if pa.types.is_floating(x.type):
            x = pc.if_else(pc.is_nan(x), pa.scalar(123.25, x.type), x)
            y = pc.if_else(pc.is_nan(y), pa.scalar(123.25, y.type), y)
        assert x.equals(y), name


@pytest.fixture
def awkward(dbs: Databases) -> str:
    url = dbs.new("postgresql")
    _psql(url, AWKWARD.encode())
    return url


def test_pagila_in_pgcopy_gives_back_the_same_database_loaded_as_it_is(
        dbs: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("postgresql")
    source = dbs.new("postgresql")
    _psql(source, (PAGILA / "pagila-schema.sql").read_bytes())
    _psql(source, gzip.decompress((PAGILA / "pagila-data.sql.gz").read_bytes()))
    archive = tmp_path / "pagila.crate"
    code, _, err = run_cli("dump", source, str(archive), "--format", "pgcopy", "-j", "2",
                           "--no-progress")
    assert code == 0, err
    manifest = dbcrate.open_archive(archive).manifest
    assert manifest.data_format == "pgcopy"
    assert all(c.member.endswith(".pgcopy") for e in manifest.tables for c in e.chunks)
    # every table goes in through COPY's text as stored: the Arrow path is not taken
    def no_arrow(*args: object, **kwargs: object) -> int:
        raise AssertionError("a pgcopy table was loaded through Arrow")

    monkeypatch.setattr(PostgreSQL, "load", no_arrow)
    target = dbs.new("postgresql")
    code, out, err = run_cli("restore", str(archive), target, "--json")
    assert code == 0, err
    assert json.loads(out)["warnings"] == []
    same_database(source, target)
    code, out, err = run_cli("verify", str(archive))
    assert code == 0 and "every chunk decodes" in out, err


def test_every_awkward_value_decodes_as_the_parquet_dump_holds_it(awkward: str, dbs: Databases,
                                                                  tmp_path: Path) -> None:
    native, parquet = tmp_path / "native.crate", tmp_path / "parquet.crate"
    dbcrate.dump(awkward, native, data_format="pgcopy", chunk_rows=1000)
    dbcrate.dump(awkward, parquet)
    with dbcrate.open_archive(native) as a, dbcrate.open_archive(parquet) as b:
        assert len(a.table("t").chunks) == 4  # rows split at the chunk limit, whole rows
        _same_values(a.read_table("t"), b.read_table("t"))
    # into PostgreSQL as stored, and equal to the source by pg_dump
    target = dbs.new("postgresql")
    dbcrate.restore(native, target)
    assert sorted(pg_dump(awkward, "--data-only")) == sorted(pg_dump(target, "--data-only"))
    # into another engine through the decoded values: the same refusals as from Parquet
    refusals = []
    for archive in (native, parquet):
        code, _, err = run_cli("restore", str(archive), f"sqlite:///{tmp_path / 'x.db'}")
        refusals.append((code, " ".join(err.split())))
    assert refusals[0] == refusals[1] and refusals[0][0] != 0
    assert "t.ts: infinite timestamp at row id=1" in refusals[0][1]


def test_a_pgcopy_archive_of_portable_values_restores_into_sqlite(dbs: Databases,
                                                                  tmp_path: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE p (id int PRIMARY KEY, s text, b bytea, d date, x numeric)",
            "INSERT INTO p VALUES (1, E'a\\tb\\\\c\\nd', '\\x00ff', '2020-02-29', 1.50), "
            "(2, '\\N', '', NULL, NULL), (3, '', NULL, '0001-01-01', -0.001)")
    got = []
    for fmt in ("pgcopy", "parquet"):
        archive = tmp_path / f"p-{fmt}.crate"
        dbcrate.dump(source, archive, data_format=fmt)
        target = f"sqlite:///{tmp_path / (fmt + '.db')}"
        assert dbcrate.restore(archive, target).ok
        got.append(rows(target, "SELECT id, s, hex(b), d, x FROM p ORDER BY id"))
    assert got[0] == got[1]
    assert [r[:4] for r in got[0]] == [(1, "a\tb\\c\nd", "00FF", "2020-02-29"),
                                       (2, "\\N", "", None), (3, "", "", "0001-01-01")]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.none() | st.text(st.characters(blacklist_categories=("Cs",),
                                                                 blacklist_characters="\0")),
                          st.none() | st.binary()), max_size=12))
def test_any_text_and_bytes_survive_pgcopy(pg_scratch: tuple[str, Path],
                                           values: list[tuple[str | None, bytes | None]]) -> None:
    """What PostgreSQL writes for any text and bytes decodes to the values inserted, and loads
    back into PostgreSQL as the same values."""
    url, tmp = pg_scratch
    run_sql(url, "TRUNCATE v")
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.begin() as conn:
        for i, (s, b) in enumerate(values):
            conn.execute(sa.text("INSERT INTO v VALUES (:i, :s, :b)"), {"i": i, "s": s, "b": b})
    eng.dispose()
    archive = tmp / "v.crate"
    archive.unlink(missing_ok=True)
    dbcrate.dump(url, archive, data_format="pgcopy", include=["v"])
    with dbcrate.open_archive(archive) as arch:
        got = arch.read_table("v").sort_by("id")
    assert got.column("s").to_pylist() == [s for s, _ in values]
    assert got.column("b").to_pylist() == [b for _, b in values]
    run_sql(url, "TRUNCATE v")
    dbcrate.restore(archive, url, mode="into-existing")
    assert rows(url, "SELECT s, b FROM v ORDER BY id") == [
        (s, None if b is None else b) for s, b in values]


@pytest.fixture(scope="module")
def pg_scratch(tmp_path_factory: pytest.TempPathFactory) -> object:
    require("postgresql")
    tmp = tmp_path_factory.mktemp("pgcopy")
    holder = Databases(tmp)
    url = holder.new("postgresql")
    run_sql(url, "CREATE TABLE v (id int PRIMARY KEY, s text, b bytea)")
    yield url, tmp
    holder.drop_all()


def test_pgcopy_is_refused_for_a_source_of_another_engine(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 's.db'}"
    run_sql(source, "CREATE TABLE a (id integer PRIMARY KEY)")
    archive = tmp_path / "a.crate"
    code, _, err = run_cli("dump", source, str(archive), "--format", "pgcopy")
    assert code == 2, err
    assert "pgcopy" in err and "sqlite" in err and "leave out --format" in " ".join(err.split())
    assert "Traceback" not in err and not archive.exists()


def test_a_copy_between_postgresql_databases_spools_pgcopy(dbs: Databases,
                                                         tmp_path: Path) -> None:
    pg = "postgresql://postgres@127.0.0.1/x"
    assert spool_format(pg, pg) == "pgcopy"
    assert spool_format(pg, "sqlite:///x.db") == "arrow"
    assert spool_format("sqlite:///x.db", pg) == "arrow"
    source = dbs.new("postgresql")
    _psql(source, AWKWARD.encode())
    target = dbs.new("postgresql")
    spool = tmp_path / "spool"
    result = dbcrate.copy(source, target, spool=str(spool))
    assert result.report.ok
    assert dbcrate.open_archive(spool / "archive").manifest.data_format == "pgcopy"
    assert sorted(pg_dump(source, "--data-only")) == sorted(pg_dump(target, "--data-only"))


# ------------------------------------------------------------------ bad members, no server
SCHEMA = pa.schema([("id", pa.int32()), ("s", pa.string()), ("b", pa.large_binary())])


def _member(text: bytes) -> io.BytesIO:
    return io.BytesIO(zstandard.ZstdCompressor().compress(text))


def test_the_decoder_reads_copy_text() -> None:
    text = b"1\tA\\tB\\\\N\\n\t\\\\x00ff\n2\t\\N\t\\N\n3\t\t\\\\x\n"
    batch = pa.Table.from_batches(list(read_pgcopy(_member(text), SCHEMA)))
    assert batch.to_pylist() == [{"id": 1, "s": "A\tB\\N\n", "b": b"\x00\xff"},
                                 {"id": 2, "s": None, "b": None},
                                 {"id": 3, "s": "", "b": b""}]


@pytest.mark.parametrize(("text", "says"), [
    (b"1\ta\\x41\t\\N\n", "an escape COPY does not write"),
    (b"1\ta\0b\t\\N\n", "NUL"),
    (b"1\ta\n", "columns"),
    (b"1\ta\t\\N\t4\n", "columns"),
    (b"x\ta\t\\N\n", "int"),
    (b"1\ta\t\\N", "does not end with a line feed"),
])
def test_the_decoder_refuses_what_copy_never_writes(text: bytes, says: str) -> None:
    with pytest.raises((MemberDecodeError, pa.ArrowInvalid)) as info:
        list(read_pgcopy(_member(text), SCHEMA))
    assert says in str(info.value)


def test_a_member_cut_short_or_a_bomb_is_refused() -> None:
    whole = zstandard.ZstdCompressor().compress(
        "".join(f"{i}\ta\t\\N\n" for i in range(9000)).encode())
    for cut in (5, len(whole) // 2):  # mid-row is refused; else the rows are fewer (the
        try:                          # archive compares them with the manifest's)
            pieces = list(text_pieces(io.BytesIO(whole[:-cut]), len(whole) - cut))
        except MemberDecodeError as exc:
            assert "cut short" in str(exc)
        else:
            assert sum(p.num_rows for p in pieces) < 9000
    bomb = zstandard.ZstdCompressor(level=19).compress(b"1\ta\t\\N\n" * 2_000_000)
    with pytest.raises(MemberDecodeError, match="decompression bomb"):
        list(text_pieces(io.BytesIO(bomb), len(bomb)))
    assert decode_rows(TextPiece(b"", 0), SCHEMA).num_rows == 0


@pytest.mark.parametrize("edit", ["one row less", "an end-of-data line"])
def test_a_member_holding_other_rows_than_its_manifest_is_refused(edit: str, awkward: str,
                                                                  dbs: Databases,
                                                                  tmp_path: Path) -> None:
    """A member rewritten (its size and hash in the manifest fixed, as an attacker would):
    with a row less, ``verify`` names it; with COPY's end-of-data line ``\\.`` in the middle
    (the server would stop reading there), the rows the server read are not the manifest's.
    Either way a restore into PostgreSQL leaves the table empty and says why."""
    archive = tmp_path / "a.crate"
    dbcrate.dump(awkward, archive, data_format="pgcopy")
    members = read_members(archive)
    name = data_members(members)[0]
    text = zstandard.ZstdDecompressor().decompress(
        next(m.data for m in members if m.name == name), max_output_size=1 << 26)
    cut = text.index(b"\n") + 1
    text = text[cut:] if edit == "one row less" else text[:cut] + b"\\.\n" + text[cut:]
    if edit != "one row less":  # the manifest counts the line as a row
        members = with_chunk(members, name, zstandard.ZstdCompressor().compress(text),
                             manifest_of(members)["tables"][0]["rows"] + 1)
    else:
        members = with_member(members, name, zstandard.ZstdCompressor().compress(text))
    archive.write_bytes(tar_bytes(members))
    code, _, err = run_cli("verify", str(archive))
    assert code != 0 and name in err and "Traceback" not in err
    target = dbs.new("postgresql")
    # (the library's verify=False: past the checks a restore makes before writing)
    report = dbcrate.restore(archive, target, verify=False)
    failed = [t for t in report.tables if t.status == "failed"]
    assert [t.name for t in failed] == ["t"] and "rows" in (failed[0].error or "")
    assert rows(target, "SELECT count(*) FROM t") == [(0,)]


def test_a_row_longer_than_a_read_decodes_and_loads(dbs: Databases, tmp_path: Path) -> None:
    """A 16 MB row (twice what the decoder reads at once; tabs escaped) is one piece to
    decode, and reaches COPY FROM in pieces of a read (never held whole)."""
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE big (id int PRIMARY KEY, v text)",
            "INSERT INTO big VALUES (1, repeat('ab' || chr(9), 4000000)), (2, 'x')")
    archive = tmp_path / "big.crate"
    dbcrate.dump(source, archive, data_format="pgcopy")
    with dbcrate.open_archive(archive) as arch:
        values = arch.read_table("big").sort_by("id").column("v").to_pylist()
    assert values == ["ab\t" * 4_000_000, "x"]
    with dbcrate.open_archive(archive) as arch:
        entry = arch.table("big")
        pieces = [(len(p.data), p.num_rows) for c in entry.chunks
                  for p in arch.chunk_text(entry, c)]
    assert len(pieces) >= 2 and max(size for size, _ in pieces) <= 8 << 20
    assert sum(rows for _, rows in pieces) == 2
    target = dbs.new("postgresql")
    assert dbcrate.restore(archive, target).ok
    query = "SELECT id, md5(v) FROM big ORDER BY id"
    assert rows(target, query) == rows(source, query)
