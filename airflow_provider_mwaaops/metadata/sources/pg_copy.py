"""PostgreSQL ``COPY (SELECT ...) TO STDOUT`` streamed into Arrow, cut into fixed-size chunks.

Why a stream rather than one COPY per chunk: the server formats rows on one core while Arrow
parses them on the other only if both run at the same time. One statement per chunk serialises
them (the server waits while the client parses, and the other way round) and costs a statement
per chunk; one statement for several chunks, read through a pipe by Arrow's streaming CSV
reader, keeps both busy. :func:`stream_copy` cuts chunks client-side every ``chunk_rows`` rows,
so the chunk boundaries are the same as with a statement per chunk (they depend on the keyset
order only); :func:`copy_batches` hands the batches to callers that cut otherwise (by group,
across statements: see ``chunking``).

A thread feeds the pipe from psycopg2's ``copy_expert`` (which releases the GIL while it waits
for the server); the reading side yields chunks while the server is still sending. The pipe and
Arrow's read-ahead bound what is buffered, so memory does not grow with the table.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from airflow_provider_mwaaops.metadata.sources.chunking import cut_rows

#: Arrow CSV block sizes. A row may not span two blocks: a stream starts in small blocks (parsing
#: starts early, little is buffered) and is read again in big ones if a row does not fit.
BLOCK_BYTES = 1 << 20
BIG_BLOCK_BYTES = 512 << 20
#: Bytes the kernel pipe may hold between the COPY thread and the parser (Linux F_SETPIPE_SZ).
_PIPE_BYTES = 1 << 20
#: Bytes gathered from psycopg2's per-row writes before each write into the pipe (one system
#: call per row would cost more than the row).
_WRITE_BUFFER = 256 << 10
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class CopyFailed(Exception):
    """The COPY statement failed; ``__cause__`` is the driver's error."""


class RowTooLong(Exception):
    """A row did not fit in one CSV block; read again with a larger ``block_size``."""


def _session(cur: Any, timeout_s: float) -> bool:
    """Set up the statement's session; True if its text is known to be valid UTF-8 already."""
    cur.execute("SET statement_timeout = %s", (int(timeout_s * 1000),))
    cur.execute("SET client_encoding = 'UTF8'")
    # One backend per export: a parallel plan for a streamed COPY only moves each row through
    # a worker queue, and takes a core from the database's other users (and from the parser).
    cur.execute("SET max_parallel_workers_per_gather = 0")
    cur.execute("SET jit = off")  # compiling costs more than a plain scan of a chunk saves
    # Timestamps come out as "2024-01-01 00:00:00.123456+00", which Arrow parses as UTC.
    cur.execute("SET TIME ZONE 'UTC'")
    cur.execute("SET DateStyle = 'ISO, YMD'")
    # A UTF8 database validates text as it is stored, so Arrow need not check it again (a
    # tenth of the parse); SQL_ASCII stores any bytes, which Arrow must then refuse.
    cur.execute("SHOW server_encoding")
    return bool(cur.fetchone()[0] == "UTF8")


def _open_pipe() -> tuple[Any, Any]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a smaller pipe only means less read-ahead
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    return os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb", buffering=_WRITE_BUFFER)


def _csv_reader(source: Any, types: dict[str, pa.DataType], block_size: int, check_utf8: bool) -> Any:
    return pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=list(types), block_size=block_size, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
            check_utf8=check_utf8,
        ),
    )


def copy_batches(
    raw_connection: Any,
    select_sql: str,
    params: Any,
    types: dict[str, pa.DataType],
    *,
    block_size: int,
    timeout_s: float,
    name: str,
) -> Iterator[pa.RecordBatch]:
    """``select_sql``'s result as record batches, while the server is still sending.

    ``select_sql`` is in the driver's paramstyle with ``params`` bound by the driver. ``types``
    names every output column, in order, with its Arrow type. ``raw_connection`` is a DBAPI
    (psycopg2) connection; it is committed at the end and closed in every case. A failure of the
    statement raises :class:`CopyFailed` after the rows that arrived before it, never a clean end.
    """
    cur = raw_connection.cursor()
    failure: list[BaseException] = []
    thread: threading.Thread | None = None
    reader, writer = _open_pipe()
    try:
        valid_utf8 = _session(cur, timeout_s)
        copy_sql = f"COPY ({cur.mogrify(select_sql, params).decode()}) TO STDOUT WITH (FORMAT csv)"

        def pump() -> None:
            try:
                cur.copy_expert(copy_sql, writer, size=1 << 20)
            except BaseException as err:  # reported by the reading side
                failure.append(err)
            finally:
                with contextlib.suppress(OSError):  # the reader gave up first (BrokenPipe)
                    writer.close()

        thread = threading.Thread(target=pump, name=f"mwaaops-copy-{name}", daemon=True)
        thread.start()
        yield from _batches(reader, types, block_size, check_utf8=not valid_utf8)
        reader.close()
        thread.join()
        if failure:
            raise CopyFailed(str(failure[0])) from failure[0]
        raw_connection.commit()
    finally:
        reader.close()
        if thread is not None:
            thread.join()
        with contextlib.suppress(Exception):
            raw_connection.close()


def stream_copy(
    raw_connection: Any,
    select_sql: str,
    params: Any,
    types: dict[str, pa.DataType],
    *,
    chunk_rows: int,
    block_size: int,
    timeout_s: float,
    name: str,
) -> Iterator[pa.Table]:
    """Chunks of ``chunk_rows`` rows (the last may be shorter) of ``select_sql``'s result (see
    :func:`copy_batches`). Full chunks are yielded as they arrive; a failed statement raises
    before the shorter last chunk, so a stream cut short never ends as if the table ended there.
    """
    batches = copy_batches(
        raw_connection, select_sql, params, types, block_size=block_size, timeout_s=timeout_s, name=name
    )
    yield from cut_rows(batches, pa.schema(list(types.items())), chunk_rows)


def _batches(
    source: Any, types: dict[str, pa.DataType], block_size: int, check_utf8: bool
) -> Iterator[pa.RecordBatch]:
    try:
        yield from _csv_reader(source, types, block_size, check_utf8)
    except pa.ArrowInvalid as err:
        if "straddl" in str(err):
            raise RowTooLong(str(err)) from err
        if "Empty CSV file" not in str(err):
            raise
