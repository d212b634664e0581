"""Data formats: the compliance suite against every registered format, bounded memory, the
registry and its entry points, the text encodings themselves, and Chinook end to end in every
format."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

import dbcrate
from archive_tools import (
    data_members,
    manifest_of,
    read_members,
    tar_bytes,
    with_manifest,
    with_member,
)
from dbcrate.errors import ArchiveCorrupt, SourceValueError, UsageError
from dbcrate.formats import csv as csvformat
from dbcrate.formats import framing, textvalues
from dbcrate.formats import registry as formats_module
from dbcrate.formats import xml as xmlformat
from dbcrate.formats import yaml as yamlformat
from dbcrate.formats.registry import FORMATS, DataFormat, get_format, load_entry_points, register
from dbcrate.model import temporal
from dbcrate.testing.formats import (
    MEMORY_SCHEMA,
    check_bounded_memory,
    check_compressible_values,
    check_corrupt_input,
    check_edge_values,
    check_empty_members,
    check_format,
    check_large_values,
    check_many_rows,
    compressible_table,
    edge_table,
    read_member,
    write_member,
)

from conftest import CHINOOK

#: the formats written from Arrow batches (``pgcopy`` is written by PostgreSQL itself: its own
#: tests, tests/test_pgcopy.py, dump and decode it through a real server)
NAMES = sorted(name for name, fmt in FORMATS.items() if not fmt.native_rows)
TEXT = ["jsonl", "csv", "xml", "yaml"]


@pytest.mark.parametrize("name", NAMES)
def test_empty_members(name: str) -> None:
    check_empty_members(FORMATS[name])


@pytest.mark.parametrize("name", NAMES)
def test_edge_values(name: str) -> None:
    check_edge_values(FORMATS[name])


@pytest.mark.parametrize("name", NAMES)
def test_many_rows(name: str) -> None:
    check_many_rows(FORMATS[name])


@pytest.mark.parametrize("name", NAMES)
def test_large_values(name: str) -> None:
    check_large_values(FORMATS[name])


@pytest.mark.parametrize("name", NAMES)
def test_compressible_values(name: str) -> None:
    check_compressible_values(FORMATS[name])


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_input(name: str) -> None:
    check_corrupt_input(FORMATS[name])


@pytest.mark.parametrize("name", NAMES)
def test_bounded_memory(name: str) -> None:
    report = check_bounded_memory(FORMATS[name], rows=300_000, max_fraction=0.2)
    assert report.data_bytes > 30_000_000
    # a few batches' worth (a batch of 10,000 rows is ~1.2 MB), not the table's ~35 MB
    assert report.peak_pool < 6_000_000, report


def test_all_text_formats_registered() -> None:
    for name in TEXT:
        fmt = get_format(name)
        assert fmt.name == fmt.extension == name
        assert fmt.description


# --- the registry and entry points -----------------------------------------------------------


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch):
    before = dict(FORMATS)
    monkeypatch.setattr(formats_module, "_entry_points_loaded", False)
    yield
    FORMATS.clear()
    FORMATS.update(before)


class _PlainIpcWriter:
    """A third-party style format: uncompressed Arrow IPC."""

    def __init__(self, sink, schema: pa.Schema, level: int) -> None:
        self._writer = pa.ipc.new_stream(sink, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def _read_plain_ipc(source, schema: pa.Schema):
    yield from pa.ipc.open_stream(source)


DUMMY = DataFormat("dummy", "dmy", _PlainIpcWriter, _read_plain_ipc, "uncompressed Arrow IPC (test)")


def test_register_a_third_party_format(clean_registry, tmp_path: Path) -> None:
    register(DUMMY)
    assert get_format("dummy") is DUMMY
    with pytest.raises(ValueError, match="already registered"):
        register(DUMMY)
    check_format(DUMMY)
    archive = tmp_path / "dummy.crate"
    dbcrate.dump(f"sqlite:///{CHINOOK / 'Chinook_Sqlite.sqlite'}", archive, data_format="dummy")
    with dbcrate.open_archive(archive) as a:
        assert a.manifest.data_format == "dummy"
        assert a.tables[0].chunks[0].member.endswith(".dmy")
        a.verify()


@pytest.mark.parametrize("bad", ["", "Upper", "a.b", "x" * 17])
def test_register_refuses_bad_names(clean_registry, bad: str) -> None:
    with pytest.raises(ValueError):
        register(DataFormat(bad, "ok", _PlainIpcWriter, _read_plain_ipc))
    with pytest.raises(ValueError):
        register(DataFormat("ok", bad, _PlainIpcWriter, _read_plain_ipc))


class _EntryPoint:
    def __init__(self, name: str, obj: object) -> None:
        self.name = name
        self.value = f"plugin:{name}"
        self._obj = obj

    def load(self) -> object:
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_entry_points_are_loaded_lazily(clean_registry, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def entry_points(*, group: str):
        calls.append(group)
        return [
            _EntryPoint("dummy", lambda: DUMMY),
            _EntryPoint("broken", ImportError("no module named plugin")),
            _EntryPoint("notaformat", lambda: 42),
            _EntryPoint("shadow", lambda: DataFormat("csv", "csv", _PlainIpcWriter, _read_plain_ipc)),
        ]

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)
    assert get_format("parquet").name == "parquet"
    assert calls == []  # known names never scan the entry points
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert get_format("dummy") is DUMMY
    assert calls == ["dbcrate.formats"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken" in messages and "notaformat" in messages and "shadow" in messages
    assert FORMATS["csv"].read is csvformat.read_csv  # a plugin cannot replace a built-in
    with pytest.raises(UsageError, match="unknown data format"):
        get_format("nope")
    assert calls == ["dbcrate.formats"]  # scanned once per process
    with pytest.warns(RuntimeWarning):
        assert load_entry_points(force=True) == []  # dummy is already there


def test_entry_point_may_be_a_format_instance(clean_registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda *, group: [_EntryPoint("dummy", DUMMY)])
    assert load_entry_points() == ["dummy"]
    assert FORMATS["dummy"] is DUMMY


# --- the encodings (docs/FORMAT.md, "Text formats") -----------------------------------------

SMALL = pa.schema([("id", pa.int64()), ("name", pa.string()), ("f", pa.float64()),
                   ("b", pa.large_binary()), ("d", pa.date32()), ("t", pa.time64("us")),
                   ("ts", pa.timestamp("us", tz="UTC"))])


def _small_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([
        pa.array([1, None]),
        pa.array(["a\r\nb", ""]),
        pa.array([-0.0, float("nan")]),
        pa.array([b"\x00\xff", None], pa.large_binary()),
        pa.array([-719529, 2**31 - 1], pa.date32()),
        pa.array([86_400_000_000, 1], pa.time64("us")),
        pa.array([1_622_541_600_000_000, -(2**63)], pa.timestamp("us", tz="UTC")),
    ], schema=SMALL)


def _text(name: str, schema: pa.Schema = SMALL, batches=None) -> str:
    data = write_member(FORMATS[name], schema, [_small_batch()] if batches is None else batches)
    return zstandard.ZstdDecompressor().decompressobj().decompress(data.read()).decode("utf-8")


def test_jsonl_text() -> None:
    assert _text("jsonl").splitlines() == [
        '{"id":1,"name":"a\\r\\nb","f":-0.0,"b":"AP8=","d":"-0001-12-31","t":"24:00:00",'
        '"ts":"2021-06-01T10:00:00Z"}',
        '{"id":null,"name":"","f":"NaN","b":null,"d":"infinity","t":"00:00:00.000001",'
        '"ts":"-infinity"}',
    ]


def test_csv_text() -> None:
    assert _text("csv") == (
        '"id","name","f","b","d","t","ts"\n'
        '"1","a\r\nb","-0","\\x00ff","-0001-12-31","24:00:00","2021-06-01T10:00:00Z"\n'
        ',"","NaN",,"infinity","00:00:00.000001","-infinity"\n'
    )


def test_xml_text() -> None:
    assert _text("xml") == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rows xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        "<row><id>1</id><name>a&#13;\nb</name><f>-0</f><b>AP8=</b><d>-0001-12-31</d>"
        "<t>24:00:00</t><ts>2021-06-01T10:00:00Z</ts></row>\n"
        '<row><id xsi:nil="true"/><name></name><f>NaN</f><b xsi:nil="true"/><d>infinity</d>'
        "<t>00:00:00.000001</t><ts>-infinity</ts></row>\n"
        "</rows>\n"
    )


def test_yaml_text() -> None:
    assert _text("yaml") == (
        "---\n"
        'columns: ["id", "name", "f", "b", "d", "t", "ts"]\n'
        "rows:\n"
        '- [1, "a\\r\\nb", -0.0, !!binary "AP8=", "-0001-12-31", "24:00:00", "2021-06-01T10:00:00Z"]\n'
        '- [null, "", .nan, null, "infinity", "00:00:00.000001", "-infinity"]\n'
    )


def test_yaml_resolver_shortcuts_match_pyyaml() -> None:
    import random

    import yaml

    loader = yamlformat._YamlLoader("")
    reference = yaml.resolver.Resolver()
    rng = random.Random(0)
    words = ["null", "true", "false", "0", "-0", "00", "089", "1.", "1.0e+30", "1e+30", "-.inf",
             ".inf", ".nan", "-.nan", "+1", "1_0", "12:30", "Null", "TRUE", "~", ""]
    words += ["".join(rng.choice("-+0123456789.e_:") for _ in range(rng.randint(1, 8)))
              for _ in range(20_000)]
    for word in words:
        for implicit in ((True, False), (False, True)):
            assert loader.resolve(yaml.ScalarNode, word, implicit) == reference.resolve(
                yaml.ScalarNode, word, implicit), word
    loader.dispose()


def test_yaml_reads_with_the_pure_python_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml PyYAML's Python SafeLoader is used; it reads the same values."""
    import yaml

    class PurePython(yaml.SafeLoader):
        resolve = yamlformat._YamlLoader.resolve

    monkeypatch.setattr(yamlformat, "_YamlLoader", PurePython)
    check_edge_values(FORMATS["yaml"])


def test_xml_names_follow_sql_xml_mapping() -> None:
    assert xmlformat.xml_name("Title") == "Title"
    assert xmlformat.xml_name("a b") == "a_x0020_b"
    assert xmlformat.xml_name("1st") == "_x0031_st"
    assert xmlformat.xml_name("xmlData") == "_x0078_mlData"
    assert xmlformat.xml_name("a_xb") == "a_x005F_xb"
    assert xmlformat.xml_name("é😀") == "_x00E9__x1F600_"
    assert xmlformat.xml_name("") == "_x_"


def test_xml_text_with_illegal_characters_is_base64() -> None:
    schema = pa.schema([("s", pa.string())])
    batch = pa.RecordBatch.from_arrays([pa.array(["a\x00b", "\ufffe"])], schema=schema)
    text = _text("xml", schema, [batch])
    assert '<s encoding="base64">YQBi</s>' in text and '<s encoding="base64">77++</s>' in text


@pytest.mark.parametrize(("days", "text"), [
    (0, "1970-01-01"), (-719162, "0001-01-01"), (-719528, "0000-01-01"), (-719529, "-0001-12-31"),
    (2932896, "9999-12-31"), (2932897, "+10000-01-01"), (2**31 - 1, "infinity"),
    (-(2**31), "-infinity"), (-(2**31) + 1, "-5877641-06-24"), (2**31 - 2, "+5881580-07-10"),
])
def test_dates(days: int, text: str) -> None:
    assert temporal.format_date(days) == text
    assert temporal.parse_date(text) == days


@pytest.mark.parametrize("bad", ["2021-02-29", "2021-13-01", "21-01-01", "2021-1-01", "+2021-01-1",
                                 "2021-01-01 ", "\uff12\uff10\uff12\uff11-01-01", "+5881580-07-11", "-5877641-06-23"])
def test_bad_dates(bad: str) -> None:
    with pytest.raises(ValueError):
        temporal.parse_date(bad)


def test_timestamps_and_times() -> None:
    cases = [(0, "1970-01-01T00:00:00"), (-1, "1969-12-31T23:59:59.999999"),
             (2**63 - 2, "+294247-01-10T04:00:54.775806"),
             (-(2**63) + 1, "-290308-12-21T19:59:05.224193")]
    for us, text in cases:
        assert temporal.format_timestamp(us, utc=False) == text
        assert temporal.parse_timestamp(text, utc=False) == us
        assert temporal.parse_timestamp(text + "Z", utc=True) == us
    for bad in ["1970-01-01 00:00:00", "1970-01-01T00:00:00+00:00", "1970-01-01T24:00:00",
                "1970-01-01T00:00:00.1234567", "+294247-01-10T04:00:54.775807"]:
        with pytest.raises(ValueError):
            temporal.parse_timestamp(bad, utc=False)
    with pytest.raises(ValueError):
        temporal.parse_timestamp("1970-01-01T00:00:00", utc=True)
    assert temporal.parse_time("12:30:00.5") == 45_000_500_000
    assert temporal.format_time(45_000_500_000) == "12:30:00.500000"
    for bad in ["24:00:00.000001", "24:00:01", "12:60:00", "1:00:00"]:
        with pytest.raises(ValueError):
            temporal.parse_time(bad)
    with pytest.raises(ValueError):
        temporal.format_time(86_400_000_001)


# --- readers refuse what they must -----------------------------------------------------------


def _member(text: str | bytes) -> io.BytesIO:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return io.BytesIO(zstandard.ZstdCompressor().compress(data))


ONE = pa.schema([("a", pa.int64())])


@pytest.mark.parametrize(("name", "text"), [
    ("jsonl", '{"a": "1"}\n'),  # a string where a number belongs
    ("jsonl", '{"a": 1, "a": 2}\n'),  # duplicate key
    ("jsonl", '{"b": 1}\n'),
    ("jsonl", '{"a": NaN}\n'),
    ("jsonl", '{"a": 1.5}\n'),
    ("jsonl", '[1]\n'),
    ("jsonl", '{"a": 99999999999999999999}\n'),
    ("csv", '"b"\n"1"\n'),
    ("csv", '"a"\n"x"\n'),
    ("csv", '"a"\n"1","2"\n'),
    ("xml", '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><rows><row><a>&x;</a></row></rows>'),
    ("xml", '<?xml version="1.0" encoding="UTF-16"?><rows/>'),
    ("xml", '<rows><row><b>1</b></row></rows>'),
    ("xml", '<rows><row><a>1</a><a>2</a></row></rows>'),
    ("xml", '<rows><row><a><i>1</i></a></row></rows>'),
    ("xml", '<rows><row><a unknown="1">1</a></row></rows>'),
    ("xml", '<rows><row><a>1</a></row>'),
    ("yaml", "---\ncolumns: [b]\nrows:\n- [1]\n"),
    ("yaml", "---\ncolumns: [a]\nrows:\n- ['1']\n"),
    ("yaml", "---\ncolumns: [a]\nrows:\n- [true]\n"),
    ("yaml", "---\ncolumns: [a]\nrows:\n- [1, 2]\n"),
    ("yaml", "---\n- {a: 1}\n"),
    ("yaml", "--- !!python/object:os.system\ncolumns: [a]\n"),
    ("yaml", "--- !!python/object:os.system\ncolumns: [a]\nrows: [[1]]\n"),
    ("yaml", "---\ncolumns: [a]\nrows: [!!python/tuple [1]]\n"),
    ("yaml", "---\ncolumns: [a]\nrows: [[!!python/name:os.system 1]]\n"),
    ("yaml", "---\ncolumns: [a]\nrows: [[[1]]]\n"),
    ("yaml", "---\ncolumns: [a]\nrows: [[1.0]]\n"),
    ("yaml", "---\ncolumns: [a]\nrows:\n- [1]\ncolumns: [a]\n"),
])
def test_readers_refuse(name: str, text: str) -> None:
    with pytest.raises(ValueError):
        read_member(FORMATS[name], _member(text), ONE)


@pytest.mark.parametrize("name", TEXT)
def test_truncated_zstd_frame_is_refused(name: str) -> None:
    data = write_member(FORMATS[name], SMALL, [_small_batch()] * 3000).read()
    with pytest.raises(ValueError, match="truncated"):
        read_member(FORMATS[name], io.BytesIO(data[:-3]), SMALL)


@pytest.mark.parametrize("name", TEXT)
def test_concatenated_frames_are_one_member(name: str) -> None:
    if name in ("csv", "xml"):
        pytest.skip("a header/root element cannot be repeated")
    a = write_member(FORMATS[name], SMALL, [_small_batch()]).read()
    rows = read_member(FORMATS[name], io.BytesIO(a + a), SMALL)
    assert sum(b.num_rows for b in rows) == 4


def test_readers_accept_other_writers_spellings() -> None:
    """Readers follow the grammar, not just dbcrate's own output."""
    schema = pa.schema([("f", pa.float32()), ("s", pa.string())])
    jsonl = '{"s": "x", "f": 1e3}\n{"f": "Infinity", "s": null}\n'
    got = pa.Table.from_batches(read_member(FORMATS["jsonl"], _member(jsonl), schema))
    assert got.column("f").to_pylist()[0] == 1000.0 and got.column("s").to_pylist() == ["x", None]
    yaml_text = ("---\ncolumns: [f, s]\nrows:\n- [3, x]\n- [.NaN, '']\n- [1_000.5, ~]\n"
                 "- [0x10, &a \"yes\"]\n- [-.inf, *a]\n")
    got = pa.Table.from_batches(read_member(FORMATS["yaml"], _member(yaml_text), schema))
    assert got.column("f").to_pylist()[2:] == [1000.5, 16.0, float("-inf")]
    assert got.column("s").to_pylist() == ["x", "", None, "yes", "yes"]
    dates = pa.schema([("d", pa.date32()), ("b", pa.large_binary()), ("ok", pa.bool_())])
    yaml_text = "---\ncolumns: [d, b, ok]\nrows:\n- - 2021-06-01\n  - !!binary |\n    AP8=\n  - yes\n"
    got = pa.Table.from_batches(read_member(FORMATS["yaml"], _member(yaml_text), dates))
    assert got.to_pylist() == [{"d": __import__("datetime").date(2021, 6, 1), "b": b"\x00\xff",
                                "ok": True}]
    xml = ("<?xml version='1.0' encoding='utf-8'?>\n<rows xmlns:n='http://www.w3.org/2001/"
           "XMLSchema-instance'>\n  <row>\n    <f>INF</f>\n    <s n:nil='1'/>\n  </row>\n</rows>")
    got = pa.Table.from_batches(read_member(FORMATS["xml"], _member(xml), schema))
    assert got.column("f").to_pylist() == [float("inf")] and got.column("s").to_pylist() == [None]


def test_float32_is_rounded_once() -> None:
    """A decimal text between two float32 values, closer to the upper one by less than a
    float64 can tell, must not be rounded twice (text -> float64 -> float32)."""
    schema = pa.schema([("f", pa.float32())])
    text = "1.00000005960464477539062500000000001"  # just above the midpoint of 1 and 1+2^-23
    for name, member in [("jsonl", f'{{"f": {text}}}\n'), ("csv", f'"f"\n"{text}"\n'),
                         ("yaml", f"---\ncolumns: [f]\nrows:\n- [{text}]\n")]:
        got = pa.Table.from_batches(read_member(FORMATS[name], _member(member), schema))
        assert got.column("f").to_pylist() == [1 + 2**-23], name


# --- end to end: Chinook in every format -----------------------------------------------------


def _sqlite_content(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.mark.parametrize("name", NAMES)
def test_chinook_in_every_format(name: str, tmp_path: Path) -> None:
    source = CHINOOK / "Chinook_Sqlite.sqlite"
    archive = tmp_path / f"chinook-{name}.crate"
    result = dbcrate.dump(f"sqlite:///{source}", archive, data_format=name, chunk_rows=2000)
    assert result.manifest.data_format == name
    with dbcrate.open_archive(archive) as a:
        report = a.verify()
        assert report.rows > 15000
        members = [c.member for t in a.tables for c in t.chunks]
        assert all(m.endswith("." + FORMATS[name].extension) for m in members)
        assert len(members) > len(a.tables)  # several chunks for the big tables
    target = tmp_path / "restored.db"
    restored = dbcrate.restore(archive, f"sqlite:///{target}")
    assert restored.ok, restored.to_dict()
    original, copy = _sqlite_content(source), _sqlite_content(target)
    assert sorted(original) == sorted(copy)
    for table in original:
        assert len(copy[table]) == len(original[table]), table
        assert copy[table] == original[table], table


def test_memory_schema_has_every_codec() -> None:
    """The bounded-memory table covers every value codec of the text formats."""
    codecs = {textvalues.codec_of(f.type) for f in MEMORY_SCHEMA}
    assert codecs >= {"int", "text", "float", "bool", "timestamptz", "date", "binary"}
    assert edge_table().num_rows > 50


# --- limits of the text formats (docs/FORMAT.md, "Limits of the text formats") ---------------


def _zstd_cli(data: bytes) -> bytes:
    """The reference decoder's view of a member (it must skip the padding frames)."""
    return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")
@pytest.mark.parametrize("name", TEXT)
def test_compressible_member_is_padded_within_the_ratio(name: str) -> None:
    table = compressible_table()
    data = write_member(FORMATS[name], table.schema, table.to_batches(10_000)).read()
    text = _zstd_cli(data)
    assert len(text) > 5_000_000 + 1_000_000
    # the text alone compresses ~10,000-fold; the member is padded to the readers' bound
    frame = zstandard.ZstdCompressor(level=3).compress(text)
    assert len(text) > framing.MAX_RATIO * len(frame)
    assert len(text) <= framing.RATIO_FLOOR + framing.MAX_RATIO * len(data)
    assert len(data) * framing.MAX_RATIO < len(text) + 2 * framing.MAX_RATIO  # no more
    rows = read_member(FORMATS[name], io.BytesIO(data), table.schema)
    assert sum(b.num_rows for b in rows) == table.num_rows
    # without the padding, the same frame is refused as a bomb, early and naming the limit
    with pytest.raises(ValueError, match=r"decompression bomb.*DBCRATE_TEXT_MAX_RATIO"):
        read_member(FORMATS[name], io.BytesIO(frame), table.schema)


@pytest.mark.parametrize("name", TEXT)
def test_ordinary_members_are_not_padded(name: str) -> None:
    table = edge_table()
    data = write_member(FORMATS[name], table.schema, table.to_batches()).read()
    obj = zstandard.ZstdDecompressor().decompressobj()
    obj.decompress(data)
    assert obj.eof and obj.unused_data == b""


def test_padding_arithmetic() -> None:
    floor, ratio = framing.RATIO_FLOOR, 1000
    assert framing._padding(floor, 10, ratio) == 0
    for text, written in [(floor + 1, 0), (floor + 10**9, 17), (floor + 999_999, 999),
                          (floor + 1_000_001, 1000), (10**13, 5)]:
        pad = framing._padding(text, written, ratio)
        assert pad >= 8 and text <= floor + ratio * (written + pad) < text + ratio * 8 + ratio


@pytest.mark.parametrize("name", TEXT)
def test_row_longer_than_the_record_limit(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers refuse a row readers would refuse; readers refuse it before holding it whole;
    both honour DBCRATE_TEXT_MAX_RECORD."""
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    # 3 MB: Arrow's CSV reader, bounded by blocks of the limit, takes records of up to twice that
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2]), pa.array(["small", "b" * 3_000_000])],
                                       schema=schema)
    monkeypatch.setenv("DBCRATE_TEXT_MAX_RECORD", "1M")
    with pytest.raises(SourceValueError, match="limit of 1,048,576 bytes per row") as caught:
        write_member(FORMATS[name], schema, [batch])
    assert "DBCRATE_TEXT_MAX_RECORD" in (caught.value.hint or "")
    monkeypatch.setenv("DBCRATE_TEXT_MAX_RECORD", "4M")
    data = write_member(FORMATS[name], schema, [batch]).read()
    assert sum(b.num_rows for b in read_member(FORMATS[name], io.BytesIO(data), schema)) == 2
    monkeypatch.setenv("DBCRATE_TEXT_MAX_RECORD", "1M")
    with pytest.raises(ValueError, match=r"longer than 1,048,576 bytes.*DBCRATE_TEXT_MAX_RECORD"):
        read_member(FORMATS[name], io.BytesIO(data), schema)


@pytest.mark.parametrize("value", ["0", "-1", "x", "1T", "1.5M"])
def test_bad_limit_settings_are_usage_errors(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBCRATE_TEXT_MAX_RATIO", value)
    with pytest.raises(UsageError, match="DBCRATE_TEXT_MAX_RATIO"):
        read_member(FORMATS["jsonl"], _member('{"a": 1}\n'), ONE)


def test_limit_settings_accept_binary_suffixes(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("", framing.MAX_RECORD), ("123", 123), ("2k", 2048),
                            ("256M", 256 << 20), ("1GiB", 1 << 30)]:
        monkeypatch.setenv("DBCRATE_TEXT_MAX_RECORD", value)
        assert framing.max_record() == expected


def test_yaml_aliases_count_against_the_budget() -> None:
    """An alias repeats its anchor's text for a few bytes: it is counted as decompressed text."""
    schema = pa.schema([("s", pa.string())])
    big = "a" * 500_000
    rows = "".join("- [*v]\n" for _ in range(3000))
    member = _member(f"---\ncolumns: [s]\nrows:\n- [&v {big}]\n{rows}")
    with pytest.raises(ValueError, match="decompression bomb"):
        read_member(FORMATS["yaml"], member, schema)
    few = _member("---\ncolumns: [s]\nrows:\n- [&v x]\n- [*v]\n- &r [y]\n- *r\n")
    got = pa.Table.from_batches(read_member(FORMATS["yaml"], few, schema))
    assert got.column("s").to_pylist() == ["x", "x", "y", "y"]


def test_batches_are_bounded_in_bytes() -> None:
    """10,000 rows of 2 MB each would be 20 GB in one batch; readers cut batches by size too."""
    schema = pa.schema([("s", pa.string())])
    rows = 40
    table = pa.table([pa.array(["c" * 1_000_000] * rows)], schema=schema)
    for name in TEXT:
        data = write_member(FORMATS[name], schema, table.to_batches()).read()
        sizes = [b.num_rows for b in read_member(FORMATS[name], io.BytesIO(data), schema)]
        assert sum(sizes) == rows and max(sizes) <= 16, (name, sizes)


@pytest.mark.parametrize("name", TEXT)
def test_compressible_table_dumps_verifies_and_restores(name: str, tmp_path: Path) -> None:
    """A 5 MB value of one repeated character and 100,000 identical rows: a member that
    compresses ~10,000-fold, which dbcrate writes and must read back."""
    source = tmp_path / "same.db"
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE t (v TEXT, n INTEGER, b BLOB)")
    conn.execute("INSERT INTO t VALUES (?, 1, NULL)", ("z" * 5_000_000,))
    conn.executemany("INSERT INTO t VALUES ('identical', 42, x'00ff')", [()] * 100_000)
    conn.commit()
    conn.close()
    archive = tmp_path / "same.crate"
    dbcrate.dump(f"sqlite:///{source}", archive, data_format=name)
    with dbcrate.open_archive(archive) as a:
        (chunk,) = a.tables[0].chunks
        assert chunk.rows == 100_001
        a.verify()
    (data,) = [m.data for m in read_members(archive) if m.name == chunk.member]
    obj = zstandard.ZstdDecompressor().decompressobj()
    text = obj.decompress(data)
    assert obj.unused_data[:4] == b"\x50\x2a\x4d\x18"  # padded with a skippable frame
    assert len(text) > framing.MAX_RATIO * (len(data) - len(obj.unused_data))
    target = tmp_path / "copy.db"
    report = dbcrate.restore(archive, f"sqlite:///{target}")
    assert report.ok, report.to_dict()
    assert _sqlite_content(target) == _sqlite_content(source)


def test_bomb_is_refused_through_the_archive_naming_the_member(tmp_path: Path) -> None:
    source = tmp_path / "one.db"
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE t (a INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    archive = tmp_path / "one.crate"
    dbcrate.dump(f"sqlite:///{source}", archive, data_format="jsonl")
    members = read_members(archive)
    (member,) = data_members(members)
    rows = 5_000_000  # 45 MB of valid rows in ~5 KB, and a manifest that agrees
    bomb = zstandard.ZstdCompressor(level=3).compress(b'{"a": 1}\n' * rows)
    members = with_member(members, member, bomb)
    doc = manifest_of(members)
    doc["tables"][0]["chunks"][0]["rows"] = doc["tables"][0]["rows"] = rows
    crafted = tmp_path / "bomb.crate"
    crafted.write_bytes(tar_bytes(with_manifest(members, doc)))
    with dbcrate.open_archive(crafted) as a, pytest.raises(ArchiveCorrupt) as caught:
        a.verify()
    assert caught.value.member == member
    assert member in caught.value.message and "decompression bomb" in caught.value.message
