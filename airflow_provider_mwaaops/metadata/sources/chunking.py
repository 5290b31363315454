"""Cutting a stream of Arrow record batches into the export's chunks.

Chunk boundaries decide which rows share a Parquet file, so they must depend on the data only,
never on how the rows arrived (block sizes, statements, retries): that is what makes a rerun
write byte-identical files. Both cutters here are zero-copy (slices of the received batches).
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc


def cut_rows(batches: Iterable[pa.RecordBatch], schema: pa.Schema, chunk_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``chunk_rows`` rows, then the remainder as a shorter table.

    The remainder is yielded only once ``batches`` is exhausted, so a source that raises at its
    end (a failed statement) never has its last rows passed on as if the result ended there.
    """
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


def cut_groups(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    chunk_rows: int,
    key: str,
    order_by: Sequence[str],
) -> Iterator[pa.Table]:
    """Tables of whole groups (runs of one ``key`` value; ``key`` never decreases in the stream),
    each in ``order_by`` order (see :func:`sort_table`).

    Each table holds as many whole groups as fit in ``chunk_rows`` rows, or a single group that
    is larger on its own. Rows within a group may arrive in any order.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count > chunk_rows:
            table = pa.Table.from_batches(held, schema)
            column = table.column(key)
            # The first group that does not fit starts at the first row of its key value.
            end = _rows_below(column, column[chunk_rows])
            if end == 0:  # one group longer than a chunk: it ends where the next key begins
                end = _rows_below_or_at(column, column[0])
                if end == count:
                    break  # the group may go on in the next batch
            box, rest = [table.slice(0, end)], table.slice(end)
            del table, column  # the chunk's buffers are referenced from the box only
            held, count = rest.to_batches(), rest.num_rows
            del rest
            yield sort_table(box, order_by)
    if count:
        yield sort_table([pa.Table.from_batches(held, schema)], order_by)


def _rows_below(column: pa.ChunkedArray, value: pa.Scalar) -> int:
    return int(pc.sum(pc.less(column, value)).as_py() or 0)


def _rows_below_or_at(column: pa.ChunkedArray, value: pa.Scalar) -> int:
    return int(pc.sum(pc.less_equal(column, value)).as_py() or 0)


def sort_table(box: list[pa.Table], keys: Sequence[str]) -> pa.Table:
    """The table taken out of ``box``, in ascending ``keys`` order (stable; strings by their
    UTF-8 bytes).

    No copy when it is in that order already. Otherwise the columns are copied one by one and
    each original is dropped once copied, so sorting needs a column of extra memory rather than
    a chunk's: hence the box, which hands over the caller's reference.
    """
    table = box.pop()
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    if order.equals(_identity(len(order))):
        return table
    schema, columns = table.schema, table.columns
    del table
    for i, column in enumerate(columns):
        columns[i] = column.take(order)
        del column
    return pa.Table.from_arrays(columns, schema=schema)


def _identity(n: int) -> pa.Array:
    """``0, 1, ..., n-1`` as the ``uint64`` indices ``sort_indices`` returns, built from a buffer
    (``pa.array`` of Python ints would import pandas)."""
    return pa.Array.from_buffers(pa.uint64(), n, [None, pa.py_buffer(array.array("Q", range(n)))])
