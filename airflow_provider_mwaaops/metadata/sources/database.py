"""Rows straight from the metadata database, by SQLAlchemy Core (1.4 in Airflow 2.11, 2.0 in 3.x).

No Airflow ORM: the source works from a SQLAlchemy URL or an Airflow connection id, so it also
runs in an Airflow 3 task (where the ORM is blocked but a database connection is not) and in a
command outside Airflow. Tables and columns are reflected from the database, so one export code
path serves both Airflow lines.

Reading is keyset-paginated (``WHERE key > last ORDER BY key LIMIT n``) in short transactions,
never ``OFFSET``. On PostgreSQL (MWAA's backend) one ``COPY (SELECT ...) TO STDOUT`` statement
streams :data:`CHUNKS_PER_COPY` chunks as CSV into Arrow's C++ CSV reader (``pg_copy``), so
rows never become Python objects (where a row-by-row exporter spends its time and memory) and
the server and the parser work at the same time; ``statement_timeout`` bounds each statement
at ``chunk_timeout`` per chunk. Other databases (SQLite) read a chunk per query through a
server-side cursor into Arrow, column by column.
"""

from __future__ import annotations

import json
import logging
import pickle
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.arrays import variable_width_array
from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow
from airflow_provider_mwaaops.metadata.sources.chunking import cut_groups
from airflow_provider_mwaaops.metadata.sources.pg_copy import (
    BIG_BLOCK_BYTES,
    BLOCK_BYTES,
    CopyFailed,
    RowTooLong,
    copy_batches,
    stream_copy,
)
from airflow_provider_mwaaops.metadata.tables import ParentOrder, TableSpec

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: How many chunks one COPY statement streams (see pg_copy), so the server and the parser overlap.
CHUNKS_PER_COPY = 10

#: Tables whose rows are big (serialized DAGs, DAG source code, XCom values, trigger kwargs): read
#: in big CSV blocks from the start (a row may not span two blocks; other tables switch on demand).
_BIG_ROW_TABLES = frozenset(
    {"serialized_dag", "dag_code", "xcom", "trigger", "rendered_task_instance_fields"}
)
#: Secret column -> the column saying whether Airflow stored it encrypted with its Fernet key.
_ENCRYPTED_FLAG = {"val": "is_encrypted", "password": "is_encrypted", "extra": "is_extra_encrypted"}


class DatabaseSourceError(Exception):
    """The database cannot be read as an Airflow metadata database; the message says why."""


def normalize_url(url: str) -> str:
    """Airflow connection URIs say ``postgres://``; SQLAlchemy wants ``postgresql://``."""
    if url.startswith("postgres://"):
        return "postgresql://" + url.removeprefix("postgres://")
    return url


def url_from_conn_id(conn_id: str) -> str:
    """SQLAlchemy URL of an Airflow connection (a Postgres or SQLite connection to the metadata DB)."""
    from airflow_provider_mwaaops.compat import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    return normalize_url(conn.get_uri())


def _json_from_bytes(value: bytes) -> str:
    """Airflow 2 keeps ``dag_run.conf`` pickled and ``xcom.value`` as JSON bytes: JSON text out."""
    if value[:1] == b"\x80":  # pickle protocol >= 2
        try:
            return json.dumps(pickle.loads(value), default=str)  # noqa: S301  (Airflow's own column)
        except Exception as err:  # a pickled class that is not importable here
            return json.dumps({"__mwaaops_undecodable__": f"{type(err).__name__}: {err}"})
    try:
        text = value.decode()
        json.loads(text)
        return text
    except (UnicodeDecodeError, json.JSONDecodeError):
        return json.dumps(value.decode("utf-8", "replace"))


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


def _fernet() -> Any:
    """Airflow's own Fernet (the source Airflow's key), to turn stored secrets into plain text."""
    from airflow.models.crypto import get_fernet

    return get_fernet()


class DatabaseSource(MetadataSource):
    """An Airflow metadata database reached by SQLAlchemy URL or Airflow connection id.

    ``chunk_timeout`` (seconds) bounds each chunk query on PostgreSQL. ``fast_path=False``
    forces the portable cursor path on PostgreSQL too (for comparison and as a fallback).
    """

    kind = "database"

    def __init__(
        self,
        url: str | None = None,
        conn_id: str | None = None,
        *,
        chunk_timeout: float = 300.0,
        fast_path: bool = True,
        engine: sa.engine.Engine | None = None,
    ) -> None:
        if engine is None:
            if url is None and conn_id is not None:
                url = url_from_conn_id(conn_id)
            if url is None:
                from airflow_provider_mwaaops.compat import conf

                url = conf.get("database", "sql_alchemy_conn")
            engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
        self.engine = engine
        self.dialect = engine.dialect.name
        self.chunk_timeout = chunk_timeout
        self.fast_path = fast_path and self.dialect == "postgresql"
        self._quote = engine.dialect.identifier_preparer.quote
        self._inspector = sa.inspect(engine)
        self._table_names = set(self._inspector.get_table_names())
        self._tables: dict[str, sa.Table] = {}
        self._parent_orders: dict[str, ParentOrder | None] = {}
        self._conn_id = conn_id

    # -- description --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "dialect": self.dialect, "fast_path": self.fast_path}
        if self._conn_id:
            info["conn_id"] = self._conn_id
        info["database"] = self.engine.url.database and str(self.engine.url.database).rsplit("/", 1)[-1]
        if "alembic_version" in self._table_names:
            with self.engine.connect() as conn:
                info["alembic_revision"] = conn.execute(
                    sa.text("SELECT version_num FROM alembic_version")
                ).scalar()
        return info

    def airflow_version(self) -> str:
        # The installed distribution's version, without importing Airflow (the CLI stays light).
        import importlib.metadata

        return importlib.metadata.version("apache-airflow")

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------------
    def _table(self, name: str) -> sa.Table:
        if name not in self._tables:
            self._tables[name] = sa.Table(name, sa.MetaData(), autoload_with=self.engine, resolve_fks=False)
        return self._tables[name]

    def columns(self, spec: TableSpec) -> list[str] | None:
        if spec.name not in self._table_names:
            return None
        have = set(self._table(spec.name).columns.keys())
        unknown = have - set(spec.column_names)
        if unknown:
            log.warning(
                "Table %s has columns the export format does not know (skipped): %s",
                spec.name,
                sorted(unknown),
            )
        return [c for c in spec.column_names if c in have]

    def keyset(self, spec: TableSpec) -> list[str]:
        if spec.keyset:
            return list(spec.keyset)
        if (order := self._parent_order(spec)) is not None:
            return [f"{order.parent}.{order.parent_key}", *order.then_by]
        pk = [c.name for c in self._table(spec.name).primary_key.columns]
        if not pk:
            raise DatabaseSourceError(f"table {spec.name} has no primary key to paginate on")
        return pk

    def _parent_order(self, spec: TableSpec) -> ParentOrder | None:
        """``spec.parent_order`` where it applies: no ``id`` key of its own, and a foreign key to
        the parent, so that the join loses no row."""
        if spec.name not in self._parent_orders:
            self._parent_orders[spec.name] = self._find_parent_order(spec)
        return self._parent_orders[spec.name]

    def _find_parent_order(self, spec: TableSpec) -> ParentOrder | None:
        order = spec.parent_order
        if order is None or "id" in self._table(spec.name).c or order.parent not in self._table_names:
            return None
        for fk in self._inspector.get_foreign_keys(spec.name):
            if fk["referred_table"] == order.parent and set(fk["constrained_columns"]) == set(order.join_on):
                return order
        return None

    def _key_column(self, spec: TableSpec, key: str) -> sa.Column:
        """A keyset column: ``name`` of the table itself, or ``parent.name`` (see ParentOrder)."""
        table_name, _, column = key.rpartition(".")
        return self._table(table_name or spec.name).c[column]

    def _from(self, spec: TableSpec) -> sa.FromClause:
        table = self._table(spec.name)
        order = self._parent_order(spec)
        if order is None:
            return table
        parent = self._table(order.parent)
        return table.join(parent, sa.and_(*[table.c[c] == parent.c[c] for c in order.join_on]))

    def _chunk_query(
        self,
        spec: TableSpec,
        selected: list[Any],
        filters: list[Any],
        keys: list[str],
        last: Sequence[Any] | None,
        chunk_rows: int,
    ) -> sa.Select:
        return (
            sa.select(*selected)
            .select_from(self._from(spec))
            .where(*filters, *self._keyset_clause(spec, keys, last))
            .order_by(*[self._key_column(spec, k) for k in keys])
            .limit(chunk_rows)
        )

    def _is_binary(self, table: sa.Table, name: str) -> bool:
        return isinstance(table.c[name].type, sa.LargeBinary)

    def watermark_high(self, spec: TableSpec) -> datetime | None:
        if spec.watermark is None:
            return None
        table = self._table(spec.name)
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(table.c[spec.watermark]))).scalar()
        return self._as_datetime(value)

    @staticmethod
    def _as_datetime(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def _bind_ts(self, value: datetime) -> datetime:
        value = value.astimezone(UTC)
        # SQLite keeps naive UTC text; binding an aware value would compare with "+00:00" appended.
        return value.replace(tzinfo=None) if self.dialect == "sqlite" else value

    # -- reading ------------------------------------------------------------------------------
    def _segments(self, spec: TableSpec, keys: list[str]) -> list[tuple[list[Any], list[str]]]:
        """Keyset passes: a nullable leading key column (log.dttm) gets a second pass for NULLs."""
        first = self._key_column(spec, keys[0])
        if len(keys) > 1 and first.nullable:
            return [([first.isnot(None)], keys), ([first.is_(None)], keys[1:])]
        return [([], keys)]

    def _window_filter(self, spec: TableSpec, window: ReadWindow) -> list[Any]:
        if spec.watermark is None or spec.watermark not in self._table(spec.name).c:
            return []
        col = self._table(spec.name).c[spec.watermark]
        clauses: list[Any] = []
        if window.low is not None:
            clauses.append(col > self._bind_ts(window.low))
            if window.high is not None:
                clauses.append(col <= self._bind_ts(window.high))
        elif window.high is not None:
            clauses.append(sa.or_(col <= self._bind_ts(window.high), col.is_(None)))
        return clauses

    def read(
        self, spec: TableSpec, window: ReadWindow, chunk_rows: int, include_secrets: bool = False
    ) -> Iterator[pa.Table]:
        columns = self.columns(spec)
        if columns is None:
            return
        keys = self.keyset(spec)
        base_filter = self._window_filter(spec, window)
        # An incremental window holds few rows: sorting them costs the server less than walking
        # every run for them, so only whole-table reads go by ranges of parents.
        if self._parent_order(spec) is not None and window.low is None:
            yield from self._read_by_parent(spec, columns, base_filter, keys, chunk_rows, include_secrets)
            return
        for seg_filter, seg_keys in self._segments(spec, keys):
            filters = base_filter + seg_filter
            if self.fast_path:
                yield from self._pg_read(spec, columns, filters, seg_keys, chunk_rows, include_secrets)
            else:
                yield from self._generic_read(spec, columns, filters, seg_keys, chunk_rows, include_secrets)

    def _keyset_clause(self, spec: TableSpec, keys: list[str], last: Sequence[Any] | None) -> list[Any]:
        if last is None:
            return []
        cols = [self._key_column(spec, k) for k in keys]
        values = [self._bind_ts(v) if isinstance(v, datetime) else v for v in last]
        if len(cols) == 1:
            return [cols[0] > values[0]]
        # The row comparison is the keyset; the redundant bound on its first column lets the
        # planner start an index scan there when the columns span a join (ParentOrder).
        return [
            cols[0] >= sa.literal(values[0], type_=cols[0].type),
            sa.tuple_(*cols)
            > sa.tuple_(*[sa.literal(v, type_=c.type) for c, v in zip(cols, values, strict=True)]),
        ]

    def _hidden_keys(self, spec: TableSpec, keys: list[str]) -> dict[str, str]:
        """Keyset columns that are not exported columns (a parent's key) -> their result label."""
        return {k: f"__key_{i}" for i, k in enumerate(keys) if k not in spec.column_index}

    def _select(self, spec: TableSpec, columns: list[str], include_secrets: bool, pg: bool) -> list[Any]:
        """SELECT list in catalog order; absent columns and excluded secrets are typed NULLs."""
        table = self._table(spec.name)
        out: list[Any] = []
        for col in spec.columns:
            if col.name not in columns or (col.name in spec.secret_columns and not include_secrets):
                out.append(sa.null().label(col.name))
                continue
            c = table.c[col.name]
            binary = self._is_binary(table, col.name)
            if pg:
                if col.kind == "ts":
                    naive = not getattr(c.type, "timezone", False)
                    expr: Any = sa.func.timezone("UTC", c) if naive else c
                elif binary:
                    expr = sa.func.encode(c, "hex")
                elif col.kind in ("json", "uuid"):
                    expr = sa.cast(c, sa.Text)
                else:
                    expr = c
            else:
                expr = sa.cast(c, sa.Text) if col.kind == "json" and not binary else c
            out.append(expr.label(col.name))
        return out

    # PostgreSQL: COPY ... TO STDOUT (CSV) -> pipe -> Arrow's CSV reader, no Python row objects.
    def _pg_read(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        chunk_rows: int,
        include_secrets: bool,
    ) -> Iterator[pa.Table]:
        """One keyset segment as chunks; each COPY statement streams up to CHUNKS_PER_COPY of them."""
        table = self._table(spec.name)
        hidden = self._hidden_keys(spec, keys)
        selected = self._select(spec, columns, include_secrets, pg=True)
        selected += [self._key_column(spec, k).label(label) for k, label in hidden.items()]
        types = self._pg_types(spec, table, columns, hidden)
        limit = chunk_rows * CHUNKS_PER_COPY
        block = BIG_BLOCK_BYTES if spec.name in _BIG_ROW_TABLES else BLOCK_BYTES
        last: list[Any] | None = None
        while True:
            compiled = self._chunk_query(spec, selected, filters, keys, last, limit).compile(
                dialect=self.engine.dialect
            )
            rows = 0
            try:
                for parsed in stream_copy(
                    self.engine.raw_connection(),
                    str(compiled),
                    compiled.params,
                    types,
                    chunk_rows=chunk_rows,
                    block_size=block,
                    timeout_s=self.chunk_timeout * CHUNKS_PER_COPY,
                    name=spec.name,
                ):
                    rows += parsed.num_rows
                    last = [_last_value(parsed.column(hidden.get(k, k))) for k in keys]
                    yield self._from_pg_csv(spec, table, columns, parsed, include_secrets)
            except RowTooLong as err:
                block = self._row_too_long(spec, block, err)
                continue  # from the last chunk passed on: chunk boundaries are unchanged
            except CopyFailed as err:
                self._raise_copy_error(spec, chunk_rows, err)
            if rows < limit:
                return

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

    # Tables paged by their parent (ParentOrder): chunks of whole groups, in keyset order.
    def _read_by_parent(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        chunk_rows: int,
        include_secrets: bool,
    ) -> Iterator[pa.Table]:
        """Chunks of whole parent groups (a run's task instances), rows in ``keys`` order.

        Why not the row keyset: ``ORDER BY run, task, map_index`` over the join makes PostgreSQL
        sort every row (an Incremental Sort: a third of its time per row, and the database is
        the bottleneck). Ordered by the parent key alone, the join needs no sort. So statements
        read ranges of parents (no group is ever split between statements), chunks hold whole
        groups, and each chunk is sorted into ``keys`` order here: the files depend on the data
        only, not on the plan or the physical order of the rows.
        """
        table = self._table(spec.name)
        hidden = self._hidden_keys(spec, keys)
        group = hidden[keys[0]]
        if self.fast_path:
            selected = self._select(spec, columns, include_secrets, pg=True)
            selected += [self._key_column(spec, k).label(label) for k, label in hidden.items()]
            types = self._pg_types(spec, table, columns, hidden)
        else:
            types = {**{c.name: c.arrow_type for c in spec.columns}, group: pa.int64()}
        schema = pa.schema(list(types.items()))
        block = BIG_BLOCK_BYTES if spec.name in _BIG_ROW_TABLES else BLOCK_BYTES
        after: Any = None
        while True:
            if self.fast_path:
                batches = self._pg_parent_batches(
                    spec, selected, types, filters, keys, after, chunk_rows, block
                )
            else:
                batches = self._generic_parent_batches(
                    spec, columns, filters, keys, after, chunk_rows, include_secrets, group
                )
            try:
                for chunk in cut_groups(batches, schema, chunk_rows, group, [group, *keys[1:]]):
                    after = _last_value(chunk.column(group))
                    if self.fast_path:
                        yield self._from_pg_csv(spec, table, columns, chunk, include_secrets)
                    else:
                        yield pa.Table.from_arrays(
                            chunk.select(spec.column_names).columns, schema=spec.arrow_schema
                        )
                return
            except RowTooLong as err:
                block = self._row_too_long(spec, block, err)  # and on from the last chunk passed on
            except CopyFailed as err:
                self._raise_copy_error(spec, chunk_rows, err)

    def _pg_parent_batches(
        self,
        spec: TableSpec,
        selected: list[Any],
        types: dict[str, pa.DataType],
        filters: list[Any],
        keys: list[str],
        after: Any,
        chunk_rows: int,
        block: int,
    ) -> Iterator[pa.RecordBatch]:
        """The rows of the parents after ``after``, by parent key, a COPY per range of parents.

        A range holds about :data:`CHUNKS_PER_COPY` chunks of rows: its number of parents
        follows the rows per parent seen so far (at most eight times more at each step).
        """
        parent_key = self._key_column(spec, keys[0])
        target = chunk_rows * CHUNKS_PER_COPY
        span = max(1, target // 64)
        while True:
            upper = self._parent_bound(parent_key, after, span)
            bounds = [] if after is None else [parent_key > after]
            if upper is not None:
                bounds.append(parent_key <= upper)
            query = (
                sa.select(*selected)
                .select_from(self._from(spec))
                .where(*filters, *bounds)
                .order_by(parent_key)
            )
            compiled = query.compile(dialect=self.engine.dialect)
            rows = 0
            for batch in copy_batches(
                self.engine.raw_connection(),
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
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def _generic_parent_batches(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        after: Any,
        chunk_rows: int,
        include_secrets: bool,
        group: str,
    ) -> Iterator[pa.RecordBatch]:
        """The portable path's rows after parent ``after`` (in full keyset order), carrying the
        parent key as column ``group`` so that they are cut into the same chunks."""
        last: list[Any] | None = None
        if after is not None:
            filters = [*filters, self._key_column(spec, keys[0]) > after]
        while True:
            chunk, last = self._generic_chunk(
                spec, columns, filters, keys, last, chunk_rows, include_secrets, group
            )
            yield from chunk.to_batches()
            if chunk.num_rows < chunk_rows:
                return

    def _pg_types(
        self, spec: TableSpec, table: sa.Table, columns: list[str], hidden: dict[str, str]
    ) -> dict[str, pa.DataType]:
        """COPY's output columns and their Arrow types: the spec's (binary ones as hex text), then
        ``hidden`` keys."""
        types: dict[str, pa.DataType] = {}
        for col in spec.columns:
            binary = col.name in columns and self._is_binary(table, col.name)
            types[col.name] = pa.string() if binary else col.arrow_type
        for key, label in hidden.items():
            integer = isinstance(self._key_column(spec, key).type, sa.Integer)
            types[label] = pa.int64() if integer else pa.string()
        return types

    def _from_pg_csv(
        self, spec: TableSpec, table: sa.Table, columns: list[str], parsed: pa.Table, include_secrets: bool
    ) -> pa.Table:
        """The parsed CSV in the spec's schema: hex decoded, hidden keys dropped, secrets decrypted."""
        arrays: list[Any] = []
        for col in spec.columns:
            arr = parsed.column(col.name)
            if col.name in columns and self._is_binary(table, col.name):
                out_type = col.arrow_type
                pieces = []
                for piece in arr.chunks:
                    raw = _decode_unique(piece, _from_pg_hex, pa.binary())
                    pieces.append(
                        raw if col.kind == "bin" else _decode_unique(raw, _json_from_bytes, pa.string())
                    )
                arr = pa.chunked_array(pieces, out_type)
            arrays.append(arr)
        out = pa.Table.from_arrays(arrays, schema=spec.arrow_schema)
        if include_secrets and any(n in columns for n in spec.secret_columns):
            out = self._decrypt_secrets(spec, out)
        return out

    # Portable path: server-side cursor, column lists, one Arrow table per chunk.
    def _generic_read(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        chunk_rows: int,
        include_secrets: bool,
    ) -> Iterator[pa.Table]:
        last: Sequence[Any] | None = None
        while True:
            chunk, last = self._generic_chunk(spec, columns, filters, keys, last, chunk_rows, include_secrets)
            if chunk.num_rows:
                yield chunk
            if chunk.num_rows < chunk_rows:
                return

    def _generic_chunk(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        last: Sequence[Any] | None,
        chunk_rows: int,
        include_secrets: bool,
        group: str | None = None,
    ) -> tuple[pa.Table, list[Any] | None]:
        """One chunk in the spec's schema (plus the first key as column ``group`` if given), and
        the last row's key."""
        table = self._table(spec.name)
        selected = self._select(spec, columns, include_secrets, pg=False)
        key_labels = [f"__key_{i}" for i in range(len(keys))]
        selected += [self._key_column(spec, k).label(lbl) for k, lbl in zip(keys, key_labels, strict=True)]
        query = self._chunk_query(spec, selected, filters, keys, last, chunk_rows)
        n = len(spec.columns)
        values: list[list[Any]] = [[] for _ in range(n + 1)]
        last_row: Any = None
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            for batch in result.partitions(10_000):
                for row in batch:
                    for i in range(n + 1):  # the columns, then the first key
                        values[i].append(row[i])
                    last_row = row
        arrays = [
            self._to_arrow(spec, table, col.name, col.kind, values[i], columns)
            for i, col in enumerate(spec.columns)
        ]
        out = pa.Table.from_arrays(arrays, schema=spec.arrow_schema)
        if any(n in columns for n in spec.secret_columns) and include_secrets:
            out = self._decrypt_secrets(spec, out)
        if group is not None:
            out = out.append_column(group, pa.array(values[n], pa.int64()))
        if last_row is None:
            return out, None
        return out, [last_row[n + i] for i in range(len(keys))]

    def _to_arrow(
        self, spec: TableSpec, table: sa.Table, name: str, kind: str, values: list[Any], columns: list[str]
    ) -> pa.Array:
        binary = name in columns and self._is_binary(table, name)
        typ = spec.column_index[name].arrow_type
        if kind == "ts":
            return pa.array([self._as_datetime(v) for v in values], typ)
        if kind == "uuid":
            return pa.array([None if v is None else str(uuid.UUID(str(v))) for v in values], typ)
        if kind == "json" and binary:
            return pa.array([None if v is None else _json_from_bytes(bytes(v)) for v in values], typ)
        if kind == "bin":
            return pa.array([None if v is None else bytes(v) for v in values], typ)
        if kind == "str":
            return pa.array([None if v is None else str(v) for v in values], typ)
        if kind == "bool":
            return pa.array([None if v is None else bool(v) for v in values], typ)
        return pa.array(values, typ)

    # -- secrets ------------------------------------------------------------------------------
    def _decrypt_secrets(self, spec: TableSpec, chunk: pa.Table) -> pa.Table:
        """Stored secrets -> plain text (the writer encrypts them with the export key next)."""
        fernet = None
        for name in spec.secret_columns:
            flag = _ENCRYPTED_FLAG.get(name)
            values = chunk.column(name).to_pylist()
            flags = chunk.column(flag).to_pylist() if flag else [False] * len(values)
            out = []
            for value, encrypted in zip(values, flags, strict=True):
                if value is not None and encrypted:
                    fernet = fernet or _fernet()
                    try:
                        value = fernet.decrypt(value.encode()).decode()
                    except Exception as err:
                        raise DatabaseSourceError(
                            f"table {spec.name}: cannot decrypt column {name} with this Airflow's Fernet key "
                            f"([core] fernet_key must be the source environment's) ({type(err).__name__})"
                        ) from err
                out.append(value)
            chunk = chunk.set_column(chunk.schema.get_field_index(name), name, pa.array(out, pa.string()))
        return chunk
