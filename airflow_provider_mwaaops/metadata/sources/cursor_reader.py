"""The database source's portable strategy: a query per chunk, through a server-side cursor.

Works on any database SQLAlchemy reaches (SQLite in tests and small deployments; PostgreSQL
too when the COPY strategy is turned off for comparison). Rows arrive as Python values and are
gathered column by column into Arrow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.secrets import decrypt_stored_secrets
from airflow_provider_mwaaops.metadata.sources.chunking import cut_groups
from airflow_provider_mwaaops.metadata.sources.database_schema import (
    DatabaseSchema,
    ReadRequest,
    json_from_bytes,
)
from airflow_provider_mwaaops.metadata.tables import Column


def _cursor_expression(col: Column, column: sa.Column, binary: bool) -> Any:
    """JSON stored as text is cast so every dialect returns text; everything else as stored."""
    return sa.cast(column, sa.Text) if col.kind == "json" and not binary else column


class CursorReader:
    """Reads the metadata database a chunk per query (``LIMIT chunk_rows`` after the last key)."""

    def __init__(self, schema: DatabaseSchema) -> None:
        self.schema = schema

    def read_segment(self, request: ReadRequest) -> Iterator[pa.Table]:
        last: Sequence[Any] | None = None
        while True:
            chunk, last = self._chunk(request, last)
            if chunk.num_rows:
                yield chunk
            if chunk.num_rows < request.chunk_rows:
                return

    def read_by_parent(self, request: ReadRequest) -> Iterator[pa.Table]:
        """Chunks of whole parent groups (a run's task instances), rows in ``keys`` order: the same
        chunks as the COPY strategy's, from the row keyset (see ``CopyReader.read_by_parent``)."""
        spec, keys = request.spec, request.keys
        group = self.schema.hidden_keys(spec, keys)[keys[0]]
        schema = pa.schema([*[(c.name, c.arrow_type) for c in spec.columns], (group, pa.int64())])
        batches = self._parent_batches(request, group)
        for chunk in cut_groups(batches, schema, request.chunk_rows, group, [group, *keys[1:]]):
            yield pa.Table.from_arrays(chunk.select(spec.column_names).columns, schema=spec.arrow_schema)

    def _parent_batches(self, request: ReadRequest, group: str) -> Iterator[pa.RecordBatch]:
        """Every row in full keyset order, carrying the parent key as column ``group`` so that
        they are cut into the same chunks."""
        last: list[Any] | None = None
        while True:
            chunk, last = self._chunk(request, last, group)
            yield from chunk.to_batches()
            if chunk.num_rows < request.chunk_rows:
                return

    def _chunk(
        self, request: ReadRequest, last: Sequence[Any] | None, group: str | None = None
    ) -> tuple[pa.Table, list[Any] | None]:
        """One chunk in the spec's schema (plus the first key as column ``group`` if given), and
        the last row's key."""
        spec, keys = request.spec, request.keys
        selected = self.schema.select_list(request, _cursor_expression)
        key_labels = [f"__key_{i}" for i in range(len(keys))]
        selected += [
            self.schema.key_column(spec, k).label(lbl) for k, lbl in zip(keys, key_labels, strict=True)
        ]
        query = self.schema.chunk_query(request, selected, last, request.chunk_rows)
        n = len(spec.columns)
        values: list[list[Any]] = [[] for _ in range(n + 1)]
        last_row: Any = None
        with self.schema.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            for batch in result.partitions(10_000):
                for row in batch:
                    for i in range(n + 1):  # the columns, then the first key
                        values[i].append(row[i])
                    last_row = row
        arrays = [self._to_arrow(request, col, values[i]) for i, col in enumerate(spec.columns)]
        out = pa.Table.from_arrays(arrays, schema=spec.arrow_schema)
        if request.has_secrets:
            out = decrypt_stored_secrets(spec.name, out, spec.secret_columns)
        if group is not None:
            out = out.append_column(group, pa.array(values[n], pa.int64()))
        if last_row is None:
            return out, None
        return out, [last_row[n + i] for i in range(len(keys))]

    def _to_arrow(self, request: ReadRequest, col: Column, values: list[Any]) -> pa.Array:
        binary = col.name in request.columns and self.schema.is_binary(request.spec, col.name)
        typ = col.arrow_type
        if col.kind == "ts":
            return pa.array([self.schema.as_datetime(v) for v in values], typ)
        if col.kind == "uuid":
            return pa.array([None if v is None else str(uuid.UUID(str(v))) for v in values], typ)
        if col.kind == "json" and binary:
            return pa.array([None if v is None else json_from_bytes(bytes(v)) for v in values], typ)
        if col.kind == "bin":
            return pa.array([None if v is None else bytes(v) for v in values], typ)
        if col.kind == "str":
            return pa.array([None if v is None else str(v) for v in values], typ)
        if col.kind == "bool":
            return pa.array([None if v is None else bool(v) for v in values], typ)
        return pa.array(values, typ)
