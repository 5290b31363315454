"""The database source's PostgreSQL strategy: ``COPY (SELECT ...) TO STDOUT`` into Arrow.

One statement streams :data:`CHUNKS_PER_COPY` chunks as CSV into Arrow's C++ CSV reader
(:mod:`.pg_copy`), so rows never become Python objects (where a row-by-row exporter spends its
time and memory) and the server and the parser work at the same time; ``statement_timeout``
bounds each statement at ``chunk_timeout`` per chunk. PostgreSQL formats every value itself:
timestamps in UTC, binary columns as hex, JSON and UUIDs as text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.arrays import variable_width_array
from airflow_provider_mwaaops.metadata.secrets import decrypt_stored_secrets
from airflow_provider_mwaaops.metadata.sources.chunking import cut_groups
from airflow_provider_mwaaops.metadata.sources.database_schema import (
    DatabaseSchema,
    DatabaseSourceError,
    ReadRequest,
    json_from_bytes,
)
from airflow_provider_mwaaops.metadata.sources.pg_copy import (
    BIG_BLOCK_BYTES,
    BLOCK_BYTES,
    CopyFailed,
    RowTooLong,
    copy_batches,
    stream_copy,
)
from airflow_provider_mwaaops.metadata.tables import Column, TableSpec

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: How many chunks one COPY statement streams (see pg_copy), so the server and the parser overlap.
CHUNKS_PER_COPY = 10

#: Tables whose rows are big (serialized DAGs, DAG source code, XCom values, trigger kwargs): read
#: in big CSV blocks from the start (a row may not span two blocks; other tables switch on demand).
_BIG_ROW_TABLES = frozenset(
    {"serialized_dag", "dag_code", "xcom", "trigger", "rendered_task_instance_fields"}
)


def _from_pg_hex(text: str) -> bytes:
    """``encode(col, 'hex')`` text -> bytes."""
    return bytes.fromhex(text)


def _decode_unique(values: pa.Array, decode: Any, out_type: pa.DataType) -> pa.Array:
    """Apply a Python ``decode`` to each *distinct* value only (most rows repeat a few values)."""
    encoded = pc.dictionary_encode(values) if len(values) else values
    if not isinstance(encoded, pa.DictionaryArray):
        return pa.nulls(0, out_type)
    decoded = variable_width_array([decode(v) for v in encoded.dictionary.to_pylist()], out_type)
    return decoded.take(encoded.indices)


def _last_value(column: pa.ChunkedArray) -> Any:
    """The column's last value as Python; timestamps by hand (``as_py`` would import pandas)."""
    scalar = column[len(column) - 1]
    if isinstance(scalar, pa.TimestampScalar) and scalar.is_valid:
        unit = column.type.unit
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
        return _EPOCH + timedelta(microseconds=scalar.value * 1_000_000 // per_second)
    return scalar.as_py()


def _pg_expression(col: Column, column: sa.Column, binary: bool) -> Any:
    """What COPY selects for a column: text Arrow's CSV reader parses into the catalog's type."""
    if col.kind == "ts":
        naive = not getattr(column.type, "timezone", False)
        return sa.func.timezone("UTC", column) if naive else column
    if binary:
        return sa.func.encode(column, "hex")
    if col.kind in ("json", "uuid"):
        return sa.cast(column, sa.Text)
    return column


class CopyReader:
    """Reads a PostgreSQL metadata database through ``COPY ... TO STDOUT`` (``chunk_timeout``:
    seconds each chunk may take)."""

    def __init__(self, schema: DatabaseSchema, chunk_timeout: float) -> None:
        self.schema = schema
        self.chunk_timeout = chunk_timeout

    def read_segment(self, request: ReadRequest) -> Iterator[pa.Table]:
        """One keyset segment as chunks; each COPY statement streams up to CHUNKS_PER_COPY of them."""
        spec, keys = request.spec, request.keys
        hidden = self.schema.hidden_keys(spec, keys)
        selected = self._select(request, hidden)
        types = self._types(request, hidden)
        limit = request.chunk_rows * CHUNKS_PER_COPY
        block = BIG_BLOCK_BYTES if spec.name in _BIG_ROW_TABLES else BLOCK_BYTES
        last: list[Any] | None = None
        while True:
            compiled = self.schema.chunk_query(request, selected, last, limit).compile(
                dialect=self.schema.engine.dialect
            )
            rows = 0
            try:
                for parsed in stream_copy(
                    self.schema.engine.raw_connection(),
                    str(compiled),
                    compiled.params,
                    types,
                    chunk_rows=request.chunk_rows,
                    block_size=block,
                    timeout_s=self.chunk_timeout * CHUNKS_PER_COPY,
                    name=spec.name,
                ):
                    rows += parsed.num_rows
                    last = [_last_value(parsed.column(hidden.get(k, k))) for k in keys]
                    yield self._from_csv(request, parsed)
            except RowTooLong as err:
                block = self._row_too_long(spec, block, err)
                continue  # from the last chunk passed on: chunk boundaries are unchanged
            except CopyFailed as err:
                self._raise_copy_error(spec, request.chunk_rows, err)
            if rows < limit:
                return

    def read_by_parent(self, request: ReadRequest) -> Iterator[pa.Table]:
        """Chunks of whole parent groups (a run's task instances), rows in ``keys`` order.

        Why not the row keyset: ``ORDER BY run, task, map_index`` over the join makes PostgreSQL
        sort every row (an Incremental Sort: a third of its time per row, and the database is
        the bottleneck). Ordered by the parent key alone, the join needs no sort. So statements
        read ranges of parents (no group is ever split between statements), chunks hold whole
        groups, and each chunk is sorted into ``keys`` order here: the files depend on the data
        only, not on the plan or the physical order of the rows.
        """
        spec, keys = request.spec, request.keys
        hidden = self.schema.hidden_keys(spec, keys)
        group = hidden[keys[0]]
        selected = self._select(request, hidden)
        types = self._types(request, hidden)
        schema = pa.schema(list(types.items()))
        block = BIG_BLOCK_BYTES if spec.name in _BIG_ROW_TABLES else BLOCK_BYTES
        after: Any = None
        while True:
            batches = self._parent_batches(request, selected, types, after, block)
            try:
                for chunk in cut_groups(batches, schema, request.chunk_rows, group, [group, *keys[1:]]):
                    after = _last_value(chunk.column(group))
                    yield self._from_csv(request, chunk)
                return
            except RowTooLong as err:
                block = self._row_too_long(spec, block, err)  # and on from the last chunk passed on
            except CopyFailed as err:
                self._raise_copy_error(spec, request.chunk_rows, err)

    def _select(self, request: ReadRequest, hidden: dict[str, str]) -> list[Any]:
        selected = self.schema.select_list(request, _pg_expression)
        return selected + [self.schema.key_column(request.spec, k).label(lbl) for k, lbl in hidden.items()]

    def _raise_copy_error(self, spec: TableSpec, chunk_rows: int, err: CopyFailed) -> NoReturn:
        """A timed-out statement as advice on the settings; any other failure as the driver's."""
        if "statement timeout" in str(err):
            raise DatabaseSourceError(
                f"table {spec.name}: {CHUNKS_PER_COPY} chunks of {chunk_rows} rows took over "
                f"{self.chunk_timeout * CHUNKS_PER_COPY:g} s ({self.chunk_timeout:g} s each, "
                "chunk_timeout); use a smaller chunk_rows or a larger chunk_timeout"
            ) from err
        raise err.__cause__ or err from None

    def _row_too_long(self, spec: TableSpec, block: int, err: RowTooLong) -> int:
        """The block size to read on with after ``err``; raises if blocks are already big."""
        if block >= BIG_BLOCK_BYTES:
            raise DatabaseSourceError(
                f"table {spec.name}: a row is larger than {BIG_BLOCK_BYTES >> 20} MB of CSV"
            ) from err
        log.info("Table %s has rows over %d KB: reading on in larger blocks", spec.name, block >> 10)
        return BIG_BLOCK_BYTES

    def _parent_batches(
        self,
        request: ReadRequest,
        selected: list[Any],
        types: dict[str, pa.DataType],
        after: Any,
        block: int,
    ) -> Iterator[pa.RecordBatch]:
        """The rows of the parents after ``after``, by parent key, a COPY per range of parents.

        A range holds about :data:`CHUNKS_PER_COPY` chunks of rows: its number of parents
        follows the rows per parent seen so far (at most eight times more at each step).
        """
        spec = request.spec
        parent_key = self.schema.key_column(spec, request.keys[0])
        target = request.chunk_rows * CHUNKS_PER_COPY
        span = max(1, target // 64)
        while True:
            upper = self._parent_bound(parent_key, after, span)
            bounds = [] if after is None else [parent_key > after]
            if upper is not None:
                bounds.append(parent_key <= upper)
            query = (
                sa.select(*selected)
                .select_from(self.schema.from_clause(spec))
                .where(*request.filters, *bounds)
                .order_by(parent_key)
            )
            compiled = query.compile(dialect=self.schema.engine.dialect)
            rows = 0
            for batch in copy_batches(
                self.schema.engine.raw_connection(),
                str(compiled),
                compiled.params,
                types,
                block_size=block,
                timeout_s=self.chunk_timeout * CHUNKS_PER_COPY,
                name=spec.name,
            ):
                rows += batch.num_rows
                yield batch
            if upper is None:
                return
            after = upper
            span = max(1, min(span * 8, span * target // max(rows, 1)))

    def _parent_bound(self, parent_key: sa.Column, after: Any, span: int) -> Any:
        """The ``span``-th parent key after ``after``, or None if fewer remain."""
        query = sa.select(parent_key).order_by(parent_key).offset(span - 1).limit(1)
        if after is not None:
            query = query.where(parent_key > after)
        with self.schema.engine.connect() as conn:
            return conn.execute(query).scalar()

    def _types(self, request: ReadRequest, hidden: dict[str, str]) -> dict[str, pa.DataType]:
        """COPY's output columns and their Arrow types: the spec's (binary ones as hex text), then
        ``hidden`` keys."""
        spec = request.spec
        types: dict[str, pa.DataType] = {}
        for col in spec.columns:
            binary = col.name in request.columns and self.schema.is_binary(spec, col.name)
            types[col.name] = pa.string() if binary else col.arrow_type
        for key, label in hidden.items():
            integer = isinstance(self.schema.key_column(spec, key).type, sa.Integer)
            types[label] = pa.int64() if integer else pa.string()
        return types

    def _from_csv(self, request: ReadRequest, parsed: pa.Table) -> pa.Table:
        """The parsed CSV in the spec's schema: hex decoded, hidden keys dropped, secrets decrypted."""
        spec = request.spec
        arrays: list[Any] = []
        for col in spec.columns:
            arr = parsed.column(col.name)
            if col.name in request.columns and self.schema.is_binary(spec, col.name):
                out_type = col.arrow_type
                pieces = []
                for piece in arr.chunks:
                    raw = _decode_unique(piece, _from_pg_hex, pa.binary())
                    pieces.append(
                        raw if col.kind == "bin" else _decode_unique(raw, json_from_bytes, pa.string())
                    )
                arr = pa.chunked_array(pieces, out_type)
            arrays.append(arr)
        out = pa.Table.from_arrays(arrays, schema=spec.arrow_schema)
        if request.has_secrets:
            out = decrypt_stored_secrets(spec.name, out, spec.secret_columns)
        return out
