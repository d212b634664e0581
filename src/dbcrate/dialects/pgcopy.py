"""``COPY ... TO STDOUT`` read straight from libpq, without holding Python's GIL while the
server is waited for.

psycopg's C binding calls libpq's blocking functions (``PQgetResult``, ``PQgetCopyData`` in
blocking mode) with the GIL held: while one connection waited for its server - a COPY still
producing rows, or waiting for a lock - every other thread of the process stood still (the
other readers, the encoders, a ``copy``'s restore, the progress). Here libpq is only
asked for what it has already received; when it has nothing, the socket is waited for with
``poll``, which releases the GIL, as psycopg's own cursors do.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

import psycopg.errors
from psycopg import pq

from dbcrate.dialects.pg_arrow import LOCK_REFUSED_HINT
from dbcrate.errors import DatabaseError


def copy_out_blocks(raw: Any, sql: str, block_bytes: int, rows: list[int] | None = None, *,
                    first: str | None = None) -> Iterator[list[bytes | bytearray]]:
    """The rows of ``COPY ... TO STDOUT`` in blocks of about ``block_bytes``, straight from
    libpq: one C call per row in a tight loop (psycopg's own Copy iterator costs several
    Python frames per row, which was a third of a dump's time).

    Each block comes in a one-element list that the caller empties (``pop()``): this
    generator keeps no reference to a block, nor to the last row, while it is suspended, so
    that a row of one 100 MB value is held once while it is parsed, not three times.
    ``rows``, if given, gets each block's row count appended before the block is yielded.
    ``first``, if given, is one statement sent in the same message before the COPY (a side
    session's table lock: one round trip per table instead of two, which was a fifth of a
    dump of 2,000 small tables); if it fails, its error is raised as psycopg's (a refused
    lock is then told apart as any other: ``Dialect.lock_refused``) and no COPY runs."""
    pgconn = raw.pgconn
    with raw.lock:
        pgconn.send_query((sql if first is None else f"{first}; {sql}").encode())
        if first is not None:
            _statement_done(pgconn, raw)
        res = _result(pgconn)
        if res is None or res.status != pq.ExecStatus.COPY_OUT:
            _drain(pgconn)
            raise _failed("COPY failed", res, "it did not start")
        finished = False
        get = pgconn.get_copy_data
        try:
            while not finished:
                # rows are appended to one bytearray: keeping millions of small bytes objects
                # alive costs 5x more (allocator and garbage collector) than the COPY itself
                block: bytes | bytearray = bytearray()
                count = 0
                while len(block) < block_bytes:
                    nbytes, data = get(1)  # what has arrived; 0: nothing yet
                    if nbytes == 0:
                        _wait_readable(pgconn)
                        continue
                    if nbytes < 0:
                        finished = True
                        break
                    count += 1
                    if not block and nbytes >= block_bytes:
                        block = data  # a row of a block or more: handed over, not copied
                    else:
                        block += data
                    del data
                if block:
                    if rows is not None:
                        rows.append(count)
                    handed = [block]
                    del block
                    yield handed
        finally:
            if not finished:  # abandoned: read the rest so the connection stays usable
                while (nbytes := get(1)[0]) >= 0:
                    if nbytes == 0:
                        _wait_readable(pgconn)
            final = _result(pgconn)
            _drain(pgconn)
        if final is not None and final.status != pq.ExecStatus.COMMAND_OK:
            raise _failed("COPY failed", final, "")


def _statement_done(pgconn: Any, raw: Any) -> None:
    """The result of a statement sent before another in one message: returns if it succeeded,
    else raises its error as psycopg does (the server skipped the rest of the message)."""
    res = _result(pgconn)
    if res is not None and res.status == pq.ExecStatus.COMMAND_OK:
        return
    _drain(pgconn)
    if res is None:
        raise DatabaseError("a statement sent before COPY gave no result")
    raise psycopg.errors.error_from_result(res, encoding=raw.info.encoding)


def _wait_readable(pgconn: Any) -> None:
    """Wait (GIL released) until the server sent something, and let libpq read it."""
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    poller.poll()
    pgconn.consume_input()


def _result(pgconn: Any) -> Any:
    """The next result, once it has arrived whole (waited for with the GIL released)."""
    while pgconn.is_busy():
        _wait_readable(pgconn)
    return pgconn.get_result()


def _drain(pgconn: Any) -> None:
    while _result(pgconn) is not None:
        pass


def run_query(raw: Any, sql: str, params: list[bytes | None],
              binary: bool = False) -> list[tuple[bytes | None, ...]]:
    """The rows of one query (``$1``... bound to ``params``, text format), each value as the
    server sent it: text, or with ``binary`` the type's binary form (a ``bytea``'s raw
    bytes). Waited for with the GIL released, as a COPY is."""
    pgconn = raw.pgconn
    with raw.lock:
        pgconn.send_query_params(sql.encode(), params, result_format=1 if binary else 0)
        res = _result(pgconn)
        _drain(pgconn)
    if res is None or res.status != pq.ExecStatus.TUPLES_OK:
        raise _failed("query failed", res, "no result")
    return [tuple(res.get_value(r, c) for c in range(res.nfields)) for r in range(res.ntuples)]


def _failed(what: str, res: Any, otherwise: str) -> DatabaseError:
    """The error of a failed result (``otherwise`` when it says nothing); a lock the session
    could not have at once (pg_arrow.SIDE_LOCK) says why and what to do."""
    message = res.error_message.decode(errors="replace").strip() if res is not None else ""
    sqlstate = res.error_field(pq.DiagnosticField.SQLSTATE) if res is not None else None
    return DatabaseError(f"{what}: {message or otherwise}",
                         hint=LOCK_REFUSED_HINT if sqlstate == b"55P03" else None)
