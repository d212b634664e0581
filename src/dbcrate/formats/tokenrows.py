"""The chunk writer the token formats share (JSON Lines, YAML): a row is one line, the
columns' tokens (:func:`~dbcrate.formats.textvalues.value_tokens`) put into the format's line
template; each slice of rows is checked against the record limit and framed by the format,
all in one zstd frame."""

from __future__ import annotations

from typing import IO, ClassVar

import pyarrow as pa

from dbcrate.formats.framing import ZstdSink, check_rows, max_record
from dbcrate.formats.textvalues import TokenSpelling, check_schema, row_slices, value_tokens


class TokenRowsWriter:
    """A token format's writer. Subclasses set :attr:`format_name` and :attr:`spelling`, build
    :attr:`template` (``%s`` per column) in ``__init__`` and may frame a slice
    (:meth:`frame`)."""

    #: the format's name in a too-long-row message
    format_name: ClassVar[str] = ""
    spelling: ClassVar[TokenSpelling]
    #: one row: ``template % tokens``
    template: str

    def __init__(self, sink: IO[bytes], schema: pa.Schema, level: int) -> None:
        self._codecs = check_schema(schema)
        self._schema = schema
        self._out = ZstdSink(sink, level)

    def frame(self, rows: list[str], limit: int) -> bytes | None:
        """The bytes of a slice of rows (None: nothing to write); by default the rows."""
        return check_rows(rows, self.format_name, limit)

    def write(self, batch: pa.RecordBatch) -> None:
        limit = max_record()
        for part in row_slices(batch, self._schema):
            columns = [value_tokens(c, k, self.spelling)
                       for c, k in zip(part.columns, self._codecs)]
            data = self.frame([self.template % row for row in zip(*columns)], limit)
            if data is not None:
                self._out.write(data)

    def close(self) -> None:
        self._out.close()
