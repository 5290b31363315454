"""Rows straight from the metadata database, by SQLAlchemy Core (1.4 in Airflow 2.11, 2.0 in 3.x).

No Airflow ORM: the source works from a SQLAlchemy URL or an Airflow connection id, so it also
runs in an Airflow 3 task (where the ORM is blocked but a database connection is not) and in a
command outside Airflow. Tables and columns are reflected from the database, so one export code
path serves both Airflow lines.

Reading is keyset-paginated (``WHERE key > last ORDER BY key LIMIT chunk_rows``) in short
transactions, never ``OFFSET``; a chunk is bounded in time by ``statement_timeout`` on
PostgreSQL. On PostgreSQL (MWAA's backend) each chunk is fetched with ``COPY (SELECT ...) TO
STDOUT`` as CSV and parsed by Arrow's C++ CSV reader, so rows never become Python objects: that
is where a row-by-row exporter spends its time and memory. Other databases (SQLite) go through
a server-side cursor into Arrow, column by column.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow
from airflow_provider_mwaaops.metadata.tables import TableSpec

log = logging.getLogger(__name__)

#: Arrow CSV block size: a row may not span more than one block, and these tables hold big rows
#: (serialized DAGs, DAG source code, XCom values, trigger kwargs).
_BLOCK = 16 << 20
_BIG_BLOCK = 512 << 20
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
        return pa.array([], out_type)
    decoded = pa.array([None if v is None else decode(v) for v in encoded.dictionary.to_pylist()], out_type)
    return decoded.take(encoded.indices)


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
        pk = [c.name for c in self._table(spec.name).primary_key.columns]
        if not pk:
            raise DatabaseSourceError(f"table {spec.name} has no primary key to paginate on")
        return pk

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
        table = self._table(spec.name)
        first = table.c[keys[0]]
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
        for seg_filter, seg_keys in self._segments(spec, keys):
            last: Sequence[Any] | None = None
            while True:
                if self.fast_path:
                    chunk, last_key = self._pg_chunk(
                        spec, columns, base_filter + seg_filter, seg_keys, last, chunk_rows, include_secrets
                    )
                else:
                    chunk, last_key = self._generic_chunk(
                        spec, columns, base_filter + seg_filter, seg_keys, last, chunk_rows, include_secrets
                    )
                if chunk.num_rows:
                    yield chunk
                if chunk.num_rows < chunk_rows:
                    break
                last = last_key

    def _keyset_clause(self, table: sa.Table, keys: list[str], last: Sequence[Any] | None) -> list[Any]:
        if last is None:
            return []
        cols = [table.c[k] for k in keys]
        values = [self._bind_ts(v) if isinstance(v, datetime) else v for v in last]
        if len(cols) == 1:
            return [cols[0] > values[0]]
        return [
            sa.tuple_(*cols)
            > sa.tuple_(*[sa.literal(v, type_=c.type) for c, v in zip(cols, values, strict=True)])
        ]

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
    def _pg_chunk(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        last: Sequence[Any] | None,
        chunk_rows: int,
        include_secrets: bool,
    ) -> tuple[pa.Table, list[Any] | None]:
        table = self._table(spec.name)
        query = (
            sa.select(*self._select(spec, columns, include_secrets, pg=True))
            .select_from(table)
            .where(*filters, *self._keyset_clause(table, keys, last))
            .order_by(*[table.c[k] for k in keys])
            .limit(chunk_rows)
        )
        compiled = query.compile(dialect=self.engine.dialect)
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("SET statement_timeout = %s", (int(self.chunk_timeout * 1000),))
            # Timestamps come out as "2024-01-01 00:00:00.123456+00", which Arrow parses as UTC.
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("SET DateStyle = 'ISO, YMD'")
            sql = cur.mogrify(str(compiled), compiled.params).decode()
            arrow = self._copy_to_arrow(
                cur, f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", spec, table, columns
            )
            raw.commit()
        except Exception as err:
            raw.rollback()
            if "statement timeout" in str(err):
                raise DatabaseSourceError(
                    f"table {spec.name}: a chunk of {chunk_rows} rows took over {self.chunk_timeout:g} s "
                    "(chunk_timeout); use a smaller chunk_rows or a larger chunk_timeout"
                ) from err
            raise
        finally:
            raw.close()
        if arrow.num_rows == 0:
            return arrow, None
        return arrow, self._last_key(spec, arrow, keys)

    def _copy_to_arrow(
        self, cur: Any, copy_sql: str, spec: TableSpec, table: sa.Table, columns: list[str]
    ) -> pa.Table:
        """Stream COPY's CSV through a pipe into Arrow while the server is still sending it.

        A thread feeds the pipe (psycopg2 releases the GIL while it waits for the server), so the
        database and the parser work at the same time and the CSV text is never held whole.
        """
        read_fd, write_fd = os.pipe()
        reader = os.fdopen(read_fd, "rb")
        writer = os.fdopen(write_fd, "wb")
        failure: list[BaseException] = []

        def pump() -> None:
            try:
                cur.copy_expert(copy_sql, writer, size=1 << 20)
            except BaseException as err:  # reported by the reading side
                failure.append(err)
            finally:
                with contextlib.suppress(OSError):  # the reader gave up first (BrokenPipe)
                    writer.close()

        thread = threading.Thread(target=pump, name=f"mwaaops-copy-{spec.name}", daemon=True)
        thread.start()
        try:
            parsed = self._read_pg_csv(spec, table, columns, reader)
        finally:
            reader.close()
            thread.join()
        if failure:
            raise failure[0]
        return parsed

    def _read_pg_csv(self, spec: TableSpec, table: sa.Table, columns: list[str], source: Any) -> pa.Table:
        names = spec.column_names
        types: dict[str, pa.DataType] = {}
        for col in spec.columns:
            binary = col.name in columns and self._is_binary(table, col.name)
            types[col.name] = pa.string() if binary else col.arrow_type
        try:
            parsed = pacsv.read_csv(
                source,
                read_options=pacsv.ReadOptions(
                    column_names=names, block_size=_BIG_BLOCK if spec.name in _BIG_ROW_TABLES else _BLOCK
                ),
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
        except pa.ArrowInvalid as err:
            if "Empty CSV file" in str(err):
                return spec.arrow_schema.empty_table()
            raise
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
        return self._decrypt_secrets(spec, out) if any(n in columns for n in spec.secret_columns) else out

    @staticmethod
    def _last_key(spec: TableSpec, chunk: pa.Table, keys: list[str]) -> list[Any]:
        values = []
        for k in keys:
            v = chunk.column(k)[chunk.num_rows - 1].as_py()
            values.append(v)
        return values

    # Portable path: server-side cursor, column lists, one Arrow table per chunk.
    def _generic_chunk(
        self,
        spec: TableSpec,
        columns: list[str],
        filters: list[Any],
        keys: list[str],
        last: Sequence[Any] | None,
        chunk_rows: int,
        include_secrets: bool,
    ) -> tuple[pa.Table, list[Any] | None]:
        table = self._table(spec.name)
        selected = self._select(spec, columns, include_secrets, pg=False)
        key_labels = [f"__key_{i}" for i in range(len(keys))]
        query = (
            sa.select(*selected, *[table.c[k].label(lbl) for k, lbl in zip(keys, key_labels, strict=True)])
            .select_from(table)
            .where(*filters, *self._keyset_clause(table, keys, last))
            .order_by(*[table.c[k] for k in keys])
            .limit(chunk_rows)
        )
        n = len(spec.columns)
        values: list[list[Any]] = [[] for _ in range(n)]
        last_row: Any = None
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            for batch in result.partitions(10_000):
                for row in batch:
                    for i in range(n):
                        values[i].append(row[i])
                    last_row = row
        arrays = [
            self._to_arrow(spec, table, col.name, col.kind, values[i], columns)
            for i, col in enumerate(spec.columns)
        ]
        out = pa.Table.from_arrays(arrays, schema=spec.arrow_schema)
        if any(n in columns for n in spec.secret_columns) and include_secrets:
            out = self._decrypt_secrets(spec, out)
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
