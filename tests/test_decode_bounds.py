"""Decoding a data member is bounded whatever the archive claims (Parquet and Arrow IPC).

A few kilobytes of Parquet or Arrow can declare gigabytes: a binary column dictionary-encoded
with one 1 MiB value that 2,000 rows index (a 20 KB archive that took 14 s and 4.2 GB RSS to
verify), a zstd page of one repeated byte, an IPC buffer whose compressed bytes expand a
million-fold. The readers (src/dbcrate/formats.py) check what a member declares - every Parquet
page header, the dictionary indexes, every IPC buffer's uncompressed length - against
``64 MiB + 1000 x the member's size`` (``DBCRATE_DATA_MAX_RATIO``) before decoding it, and
expand dictionaries in pieces of at most 16 MiB; dbcrate's writers pad a member whose data
compresses better than that, so that no member dbcrate writes is refused.

Each bomb is put into a real archive (size, SHA-256, rows and manifest digest consistent, so
that it reaches the decoder), and ``dbcrate verify`` and ``dbcrate restore`` into SQLite run as
subprocesses whose peak RSS is measured (``getrusage(RUSAGE_CHILDREN)`` in a fresh parent):
refused with exit 6 naming the member and the setting, no traceback, no table created, in
bounded time and under 400 MB. With the limit lifted, the dictionary bomb decodes in bounded
pieces: verify and restore succeed, still under 400 MB.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import dbcrate
from archive_tools import data_members, read_members, tar_bytes, with_chunk
from dbcrate.errors import ArchiveCorrupt
from dbcrate.formats.budget import DECODE_FLOOR, DECODE_RATIO, DECODE_RATIO_ENV, check_parquet
from dbcrate.formats.registry import FORMATS

ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)
ENV.pop(DECODE_RATIO_ENV, None)
MIB = 1 << 20
#: the target: any archive, good or hostile, is verified and restored in less than this
PEAK_LIMIT_KB = 400 * 1024
PEAK_RSS = ("import resource, subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-m', 'dbcrate', *sys.argv[1:]], "
            "capture_output=True, text=True)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.stderr.write(r.stderr)\n")


def peak_rss(*args: str, env: dict[str, str] | None = None) -> tuple[int, int, str]:
    """(exit code, peak RSS in KB, stderr) of one ``dbcrate`` run, in a fresh parent process
    so that ru_maxrss is that run's."""
    res = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], env=env or ENV,
                         capture_output=True, text=True, timeout=600)
    rc, kb = res.stdout.split()
    return int(rc), int(kb), res.stderr


def sqlite_tables(path: Path) -> list[str]:
    if not path.exists():
        return []
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    finally:
        con.close()


# ------------------------------------------------------------------------------- the bombs
def dense_schema(binaries: int, strings: int) -> pa.Schema:
    """The table's Arrow schema: an id, ``binaries`` large_binary and ``strings`` string
    columns (what dbcrate makes of SQLite INTEGER, BLOB and TEXT columns)."""
    return pa.schema([("id", pa.int64())]
                     + [(f"b{i}", pa.large_binary()) for i in range(binaries)]
                     + [(f"s{i}", pa.string()) for i in range(strings)])


def parquet_dictionary_bomb(rows: int, binaries: int = 1, strings: int = 0) -> bytes:
    """One row group; every binary/string column dictionary-encoded with one 1 MiB value that
    every row indexes. Written from dictionary arrays (nothing dense is ever built here) with
    the dense Arrow schema stored, as a writer of dense columns would have."""
    dense = dense_schema(binaries, strings)
    zeros = pa.array(np.zeros(rows, dtype=np.int32))
    columns: list[pa.Array] = [pa.array(np.arange(rows, dtype=np.int64))]
    for field in list(dense)[1:]:
        value = b"\x01" * MIB if field.type == pa.large_binary() else "a" * MIB
        columns.append(pa.DictionaryArray.from_arrays(zeros, pa.array([value], field.type)))
    table = pa.table(columns, names=dense.names)
    buf = io.BytesIO()
    writer = pq.ParquetWriter(buf, table.schema, compression="zstd", use_dictionary=True,
                              store_schema=False, dictionary_pagesize_limit=4 * MIB)
    writer.add_key_value_metadata(
        {"ARROW:schema": base64.b64encode(dense.serialize().to_pybytes()).decode()})
    writer.write_table(table, row_group_size=rows)
    writer.close()
    return buf.getvalue()


def parquet_page_bomb(rows: int) -> bytes:
    """Plain encoding, but one zstd data page holding ``rows`` values of 1 MiB."""
    dense = dense_schema(1, 0)
    value = b"\x01" * MIB
    table = pa.table([pa.array(np.arange(rows, dtype=np.int64)),
                      pa.array([value] * rows, pa.large_binary())], schema=dense)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=False, store_schema=True,
                   data_page_size=1 << 31, write_batch_size=rows, row_group_size=rows)
    return buf.getvalue()


def arrow_buffer_bomb(rows: int) -> bytes:
    """An Arrow IPC stream: one record batch whose zstd-compressed data buffer holds ``rows``
    values of 1 MiB."""
    dense = dense_schema(1, 0)
    batch = pa.record_batch([pa.array(np.arange(rows, dtype=np.int64)),
                             pa.array([b"\x01" * MIB] * rows, pa.large_binary())], schema=dense)
    buf = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=9))
    with ipc.new_stream(buf, dense, options=options) as writer:
        writer.write_batch(batch)
    return buf.getvalue()


def bomb_archive(tmp: Path, fmt: str, binaries: int, strings: int, member: bytes,
                 rows: int) -> Path:
    """A real archive of a table with the bomb's columns, its one member replaced by
    ``member`` (manifest and digest consistent)."""
    src = tmp / f"src_{fmt}_{binaries}_{strings}.db"
    con = sqlite3.connect(src)
    cols = ", ".join(["id INTEGER"] + [f"b{i} BLOB" for i in range(binaries)]
                     + [f"s{i} TEXT" for i in range(strings)])
    con.execute(f"CREATE TABLE t ({cols})")
    con.execute(f"INSERT INTO t VALUES ({', '.join(['1'] + ['NULL'] * (binaries + strings))})")
    con.commit()
    con.close()
    good = tmp / f"good_{fmt}.crate"
    dbcrate.dump(f"sqlite:///{src}", good, data_format=fmt)
    members = read_members(good)
    (name,) = data_members(members)
    path = tmp / f"bomb_{fmt}.crate"
    path.write_bytes(tar_bytes(with_chunk(members, name, member, rows)))
    return path


BOMBS: dict[str, tuple[str, int, int, int, Callable[[], bytes]]] = {
    # id: (format, binary columns, string columns, rows, member)
    "dictionary-2000-rows": ("parquet", 1, 0, 2_000, lambda: parquet_dictionary_bomb(2_000)),
    "dictionary-20000-rows": ("parquet", 1, 0, 20_000, lambda: parquet_dictionary_bomb(20_000)),
    "dictionary-200000-rows": ("parquet", 1, 0, 200_000,
                               lambda: parquet_dictionary_bomb(200_000)),
    "dictionary-4-columns": ("parquet", 2, 2, 20_000, lambda: parquet_dictionary_bomb(20_000, 2, 2)),
    "parquet-zstd-page": ("parquet", 1, 0, 300, lambda: parquet_page_bomb(300)),
    "arrow-zstd-buffer": ("arrow", 1, 0, 300, lambda: arrow_buffer_bomb(300)),
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_bomb_is_refused_with_bounded_memory_and_time(bomb: str, tmp_path: Path) -> None:
    """``dbcrate verify`` and ``dbcrate restore`` into SQLite: exit 6 naming the member, the
    refusal and the setting; no traceback; nothing created in the target; under 400 MB peak
    RSS and in seconds, whatever the row count the bomb declares."""
    fmt, binaries, strings, rows, make = BOMBS[bomb]
    member = make()
    assert len(member) < 700_000
    path = bomb_archive(tmp_path, fmt, binaries, strings, member, rows)
    assert path.stat().st_size < 720_000
    declared = rows * MIB * (binaries + strings)
    assert declared > DECODE_FLOOR + DECODE_RATIO * len(member)  # a bomb by the documented rule
    target = tmp_path / "target.db"
    for args in (["verify", str(path)], ["restore", str(path), f"sqlite:///{target}"]):
        started = time.monotonic()
        rc, peak, err = peak_rss(*args)
        elapsed = time.monotonic() - started
        flat = " ".join(err.split())
        assert rc == ArchiveCorrupt.exit_code, flat
        assert "Traceback" not in err and "internal error" not in err, err
        assert "data/t0001/c000000" in flat and "refused as a decompression bomb" in flat, flat
        assert DECODE_RATIO_ENV in flat, flat
        assert peak < PEAK_LIMIT_KB, f"{args[0]}: peak RSS {peak // 1024} MB"
        assert elapsed < 60, f"{args[0]}: {elapsed:.1f} s"
    # refused by the restore's preflight, before any table is created
    assert sqlite_tables(target) == []


def test_refusal_happens_before_decoding(tmp_path: Path) -> None:
    """The library refuses the 2,000-row dictionary bomb from the member's declared sizes:
    ``check_parquet`` (page headers and indexes only) raises, and ``verify`` raises
    ArchiveCorrupt naming the member, with the setting as the hint."""
    member = parquet_dictionary_bomb(2_000)
    with pytest.raises(ValueError, match="dictionary-encoded values of 2,09"):
        check_parquet(io.BytesIO(member))
    path = bomb_archive(tmp_path, "parquet", 1, 0, member, 2_000)
    with dbcrate.open_archive(path) as archive, pytest.raises(ArchiveCorrupt) as caught:
        archive.verify()
    assert caught.value.member == "data/t0001/c000000.parquet"
    assert caught.value.hint is not None and DECODE_RATIO_ENV in caught.value.hint


def test_lifted_limit_decodes_the_dictionary_bomb_in_bounded_pieces(tmp_path: Path) -> None:
    """With the ratio lifted (a trusted archive), the 2,000 x 1 MiB dictionary bomb is verified
    - 2 GB of values expanded 16 MiB at a time - and a 300 x 1 MiB one is restored into SQLite
    with every value, both under 400 MB peak RSS."""
    env = {**ENV, DECODE_RATIO_ENV: "100000000"}
    big = bomb_archive(tmp_path, "parquet", 1, 0, parquet_dictionary_bomb(2_000), 2_000)
    rc, peak, err = peak_rss("verify", str(big), env=env)
    assert rc == 0, err
    assert peak < PEAK_LIMIT_KB, f"peak RSS {peak // 1024} MB"
    small = tmp_path / "small"
    small.mkdir()
    path = bomb_archive(small, "parquet", 1, 0, parquet_dictionary_bomb(300), 300)
    target = tmp_path / "restored.db"
    rc, peak, err = peak_rss("restore", str(path), f"sqlite:///{target}", env=env)
    assert rc == 0, err
    assert peak < PEAK_LIMIT_KB, f"peak RSS {peak // 1024} MB"
    con = sqlite3.connect(target)
    try:
        assert con.execute("SELECT count(*), sum(length(b0)), count(DISTINCT b0) FROM t"
                           ).fetchone() == (300, 300 * MIB, 1)
    finally:
        con.close()


# --------------------------------------------------------------------------- no false refusal
def test_legacy_dictionary_encoded_members_read_exactly() -> None:
    """Dictionary encoding is legal (dbcrate before 0.3.0 wrote it; pyarrow's defaults): such
    members, with statistics, page index, data page v2 or small pages, read back exactly - the
    page-header walk parses every variant Arrow writes."""
    rows = 60_000
    schema = pa.schema([("id", pa.int64()), ("country", pa.string()), ("blob", pa.large_binary()),
                        ("flag", pa.bool_()), ("note", pa.string())])
    table = pa.table([
        pa.array(np.arange(rows, dtype=np.int64)),
        pa.array([("Germany", "France", None, "\u00d6sterreich")[i % 4] for i in range(rows)]),
        pa.array([(b"\x00\x01", b"x" * 3000, None)[i % 3] for i in range(rows)], pa.large_binary()),
        pa.array([i % 3 == 0 for i in range(rows)]),
        pa.array([f"note {i}" * (i % 4) for i in range(rows)]),
    ], schema=schema)
    variants: list[dict[str, object]] = [
        {}, {"data_page_version": "2.0"}, {"write_page_index": True, "write_statistics": True},
        {"row_group_size": 7_000, "data_page_size": 4096}, {"compression": "zstd"},
    ]
    for options in variants:
        buf = io.BytesIO()
        pq.write_table(table, buf, store_schema=True, **options)  # type: ignore[arg-type]
        buf.seek(0)
        got = pa.Table.from_batches(list(FORMATS["parquet"].read(buf, schema)), schema=schema)
        assert got.equals(table), options


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_degenerate_data_written_by_dbcrate_is_padded_and_read(fmt: str, tmp_path: Path) -> None:
    """A 96 MiB value of zeros compresses to a few kilobytes, past the reader's budget: the
    writer pads the member (Parquet: file metadata; Arrow: an empty batch's metadata) so that
    it is at least (decoded - 64 MiB) / 1000 bytes, and it verifies and restores with the
    default limit."""
    src = tmp_path / "zeros.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE z (id INTEGER PRIMARY KEY, b BLOB)")
    con.execute("INSERT INTO z VALUES (1, zeroblob(?))", (96 * MIB,))
    con.commit()
    con.close()
    path = tmp_path / "zeros.crate"
    dbcrate.dump(f"sqlite:///{src}", path, data_format=fmt)
    members = read_members(path)
    (name,) = data_members(members)
    size = len(next(m for m in members if m.name == name).data)
    assert size >= (96 * MIB - DECODE_FLOOR) // DECODE_RATIO > 30_000
    rc, _, err = peak_rss("verify", str(path))
    assert rc == 0, err
    report = dbcrate.restore(path, f"sqlite:///{tmp_path / 'copy.db'}")
    assert report.ok
    con = sqlite3.connect(tmp_path / "copy.db")
    try:
        assert con.execute("SELECT length(b), b = zeroblob(?) FROM z", (96 * MIB,)).fetchall() == [
            (96 * MIB, 1)]
    finally:
        con.close()


def test_arrow_buffer_of_negative_length_is_refused() -> None:
    """An IPC buffer declaring a negative uncompressed length (other than -1, "stored as is")
    is refused: it must not offset a huge one in the sum the budget checks."""
    schema = pa.schema([("id", pa.int64())])
    buf = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=pa.Codec("zstd"))
    with ipc.new_stream(buf, schema, options=options) as writer:
        writer.write_batch(pa.record_batch([pa.array(np.arange(1000, dtype=np.int64))],
                                           schema=schema))
    data = buf.getvalue()
    prefix = struct.pack("<q", 8000)  # the values buffer: 1,000 int64
    assert data.count(prefix) == 1
    crafted = data.replace(prefix, struct.pack("<q", -(2**40)))
    with pytest.raises(ValueError, match="negative length"):
        list(FORMATS["arrow"].read(io.BytesIO(crafted), schema))


FLIP_EVERY_BIT = '''
import io, json, struct, sys
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq
from dbcrate.formats.budget import check_parquet
from dbcrate.formats.registry import FORMATS
from dbcrate.testing.formats import DECODE_ERRORS
t = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "s": pa.array(["ab", None, "cde"]),
              "f": pa.array([1.5, 2.5, None], pa.float32())})
buf = io.BytesIO()
pq.write_table(t, buf, write_statistics=True, store_schema=False, compression="zstd")
parquet = buf.getvalue()
footer = len(parquet) - 8 - struct.unpack("<I", parquet[-8:-4])[0]
buf = io.BytesIO()
with ipc.new_stream(buf, t.schema, options=ipc.IpcWriteOptions(compression="zstd")) as w:
    w.write_table(t)
arrow = buf.getvalue()
seen = {}
for fmt, data, start in (("parquet", parquet, footer), ("arrow", arrow, 0)):
    for pos in range(start, len(data)):
        for bit in range(8):
            b = bytearray(data)
            b[pos] ^= 1 << bit
            try:
                if fmt == "parquet":
                    check_parquet(io.BytesIO(bytes(b)))
                for _ in FORMATS[fmt].read(io.BytesIO(bytes(b)), t.schema):
                    pass
                key = fmt + " read"
            except DECODE_ERRORS:
                key = fmt + " refused"
            seen[key] = seen.get(key, 0) + 1
print(json.dumps(seen))
'''


def test_every_bit_flip_in_the_metadata_is_refused_or_read_never_aborts() -> None:
    """Every single-bit flip of a Parquet footer (with statistics, which pyarrow's own metadata
    objects abort the process on when they are malformed - hence the readers parse the footer
    themselves) and of a whole compressed Arrow IPC stream: the readers and ``check_parquet``
    read the member or raise a decoding error. Run in a subprocess, so that an abort fails the
    test instead of killing the test run."""
    res = subprocess.run([sys.executable, "-c", FLIP_EVERY_BIT], env=ENV, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen["parquet refused"] > 500 and seen["arrow refused"] > 500, seen
