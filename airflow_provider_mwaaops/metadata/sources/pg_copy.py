"""PostgreSQL ``COPY (SELECT ...) TO STDOUT`` streamed into Arrow, cut into fixed-size chunks.

Why a stream rather than one COPY per chunk: the server formats rows on one core while Arrow
parses them on the other only if both run at the same time. One statement per chunk serialises
them (the server waits while the client parses, and the other way round) and costs a statement
per chunk; one statement for several chunks, read through a pipe by Arrow's streaming CSV
reader, keeps both busy. Chunks are cut client-side every ``chunk_rows`` rows, so the chunk
boundaries are the same as with a statement per chunk (they depend on the keyset order only).

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

#: Arrow CSV block sizes. A row may not span two blocks: a stream starts in small blocks (parsing
#: starts early, little is buffered) and is read again in big ones if a row does not fit.
BLOCK_BYTES = 1 << 20
BIG_BLOCK_BYTES = 512 << 20
#: Bytes the kernel pipe may hold between the COPY thread and the parser (Linux F_SETPIPE_SZ).
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class CopyFailed(Exception):
    """The COPY statement failed; ``__cause__`` is the driver's error."""


class RowTooLong(Exception):
    """A row did not fit in one CSV block; read again with a larger ``block_size``."""


def _session(cur: Any, timeout_s: float) -> None:
    cur.execute("SET statement_timeout = %s", (int(timeout_s * 1000),))
    # Timestamps come out as "2024-01-01 00:00:00.123456+00", which Arrow parses as UTC.
    cur.execute("SET TIME ZONE 'UTC'")
    cur.execute("SET DateStyle = 'ISO, YMD'")


def _open_pipe() -> tuple[Any, Any]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a smaller pipe only means less read-ahead
        fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _PIPE_BYTES)
    return os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")


def _csv_reader(source: Any, types: dict[str, pa.DataType], block_size: int) -> Any:
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
        ),
    )


def _cut(batches: Iterator[pa.RecordBatch], schema: pa.Schema, chunk_rows: int) -> Iterator[pa.Table]:
    """Record batches of any size -> tables of exactly ``chunk_rows`` rows (zero-copy slices),
    then the remainder as a shorter table."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= chunk_rows:
            table = pa.Table.from_batches(held, schema)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema)


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
    """Chunks of ``chunk_rows`` rows (the last may be shorter) of ``select_sql``'s result.

    ``select_sql`` is in the driver's paramstyle with ``params`` bound by the driver.

    ``types`` names every output column, in order, with its Arrow type. ``raw_connection`` is a
    DBAPI (psycopg2) connection; it is committed at the end and closed in every case. Full chunks
    are yielded as they arrive; a failure of the statement surfaces as :class:`CopyFailed` before
    the shorter last chunk, so a stream cut short never ends as if the table had ended there.
    """
    schema = pa.schema(list(types.items()))
    cur = raw_connection.cursor()
    failure: list[BaseException] = []
    thread: threading.Thread | None = None
    reader, writer = _open_pipe()
    try:
        _session(cur, timeout_s)
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
        last: pa.Table | None = None
        for chunk in _cut(_batches(reader, types, block_size), schema, chunk_rows):
            if chunk.num_rows < chunk_rows:
                last = chunk  # the end of the stream: yielded once the statement is known to be done
            else:
                yield chunk
        reader.close()
        thread.join()
        if failure:
            raise CopyFailed(str(failure[0])) from failure[0]
        raw_connection.commit()
        if last is not None:
            yield last
    finally:
        reader.close()
        if thread is not None:
            thread.join()
        with contextlib.suppress(Exception):
            raw_connection.close()


def _batches(source: Any, types: dict[str, pa.DataType], block_size: int) -> Iterator[pa.RecordBatch]:
    try:
        yield from _csv_reader(source, types, block_size)
    except pa.ArrowInvalid as err:
        if "straddl" in str(err):
            raise RowTooLong(str(err)) from err
        if "Empty CSV file" not in str(err):
            raise
