"""Bounded slices of record batches, for the loaders that encode rows (binary COPY, LOAD DATA
text): what a loader builds from one slice stays small whatever the batch's size."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa


def batch_pieces(batch: pa.RecordBatch, max_bytes: int) -> Iterator[pa.RecordBatch]:
    """``batch`` in zero-copy slices of about ``max_bytes`` of Arrow data, so that what a
    loader builds from each (encoded rows, a text block) stays small, and its offsets far
    from any limit, whatever the batch's size."""
    if batch.num_rows == 0:
        return
    per_row = max(1, batch.nbytes // batch.num_rows)
    step = max(1, max_bytes // per_row)
    for start in range(0, batch.num_rows, step):
        yield batch.slice(start, step)
