"""Rows straight from the metadata database, by SQLAlchemy Core (1.4 in Airflow 2.11, 2.0 in 3.x).

No Airflow ORM: the source works from a SQLAlchemy URL or an Airflow connection id, so it also
runs in an Airflow 3 task (where the ORM is blocked but a database connection is not) and in a
command outside Airflow. Tables and columns are reflected from the database, so one export code
path serves both Airflow lines (``database_schema``).

This module decides what to read (columns, keyset, the incremental window); one of two strategies
reads it. On PostgreSQL (MWAA's backend) ``pg_copy_reader`` streams ``COPY (SELECT ...) TO
STDOUT`` into Arrow's CSV reader, so rows never become Python objects; elsewhere (SQLite)
``cursor_reader`` reads a chunk per query through a server-side cursor into Arrow, column by
column. Both write the same chunks, so the files and checksums do not depend on the strategy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from airflow_provider_mwaaops.metadata.secrets import ENCRYPTED_FLAGS, decrypt_stored_values
from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow
from airflow_provider_mwaaops.metadata.sources.cursor_reader import CursorReader
from airflow_provider_mwaaops.metadata.sources.database_schema import (
    DatabaseSchema,
    DatabaseSourceError,
    ReadRequest,
)
from airflow_provider_mwaaops.metadata.sources.pg_copy_reader import CopyReader
from airflow_provider_mwaaops.metadata.sources.snapshot import postgres_snapshot, sqlite_copy
from airflow_provider_mwaaops.metadata.tables import TableSpec

log = logging.getLogger(__name__)

__all__ = ["DatabaseSource", "DatabaseSourceError", "normalize_url", "url_from_conn_id"]


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


def _own_database_url(url: str) -> str:
    """This Airflow's ``[database] sql_alchemy_conn``, or an error that says what to give instead.

    Airflow 3 replaces it in task processes with a placeholder that is no database URL, so the
    error names the inputs that work there rather than SQLAlchemy's parse failure.
    """
    try:
        sa.engine.make_url(normalize_url(url))
    except sa.exc.ArgumentError:
        raise DatabaseSourceError(
            f"this process's [database] sql_alchemy_conn ({url!r}) is not a database URL (Airflow 3 "
            "hides the metadata database from task processes): give db_conn_id or sql_alchemy_url, "
            "or read through the REST API (read_from='rest')"
        ) from None
    return url


class DatabaseSource(MetadataSource):
    """An Airflow metadata database reached by SQLAlchemy URL or Airflow connection id.

    ``chunk_timeout`` (seconds) bounds each chunk query on PostgreSQL. ``fast_path=False``
    forces the portable cursor strategy on PostgreSQL too (for comparison and as a fallback).
    ``engine``: one the source may own while it reads; during an export every connection it hands
    out reads the export's snapshot, read-only (so never Airflow's own engine).
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

                url = _own_database_url(conf.get("database", "sql_alchemy_conn"))
            engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
        self.dialect = engine.dialect.name
        self.chunk_timeout = chunk_timeout
        self.fast_path = fast_path and self.dialect == "postgresql"
        self._conn_id = conn_id
        self._database_name = engine.url.database and str(engine.url.database).rsplit("/", 1)[-1]
        self._snapshot: str | None = None
        self._read_from(engine)

    def _read_from(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self.schema = DatabaseSchema(engine)
        self.reader: CopyReader | CursorReader = (
            CopyReader(self.schema, self.chunk_timeout) if self.fast_path else CursorReader(self.schema)
        )

    @contextlib.contextmanager
    def consistent_read(self) -> Iterator[None]:
        """Every read in the block sees one moment of the database (see ``snapshot``)."""
        try:
            if self.dialect == "postgresql":
                with postgres_snapshot(self.engine) as self._snapshot:
                    yield
            elif self.dialect == "sqlite":
                with sqlite_copy(self.engine) as copy:
                    yield from self._reading_copy(copy)
            else:
                log.warning(
                    "The export reads each table of this %s database at its own moment (no shared "
                    "snapshot): rows written during the export may reference rows it does not hold",
                    self.dialect,
                )
                yield
        finally:
            self._snapshot = None

    def _reading_copy(self, copy: sa.engine.Engine | None) -> Iterator[None]:
        if copy is None:
            yield
            return
        live = (self.engine, self.schema, self.reader)
        self._snapshot = "sqlite backup copy"
        self._read_from(copy)
        try:
            yield
        finally:
            self.engine, self.schema, self.reader = live  # as reflected before: no second look

    # -- description --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "dialect": self.dialect, "fast_path": self.fast_path}
        if self._conn_id:
            info["conn_id"] = self._conn_id
        info["database"] = self._database_name
        info["snapshot"] = self._snapshot
        if "alembic_version" in self.schema.table_names:
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
    def columns(self, spec: TableSpec) -> list[str] | None:
        if spec.name not in self.schema.table_names:
            return None
        have = set(self.schema.table(spec.name).columns.keys())
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
        if (order := self.schema.parent_order(spec)) is not None:
            return [f"{order.parent}.{order.parent_key}", *order.then_by]
        pk = [c.name for c in self.schema.table(spec.name).primary_key.columns]
        if not pk:
            raise DatabaseSourceError(f"table {spec.name} has no primary key to paginate on")
        return pk

    def watermark_high(self, spec: TableSpec) -> datetime | None:
        if spec.watermark is None:
            return None
        table = self.schema.table(spec.name)
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(table.c[spec.watermark]))).scalar()
        return self.schema.as_datetime(value)

    # -- reading ------------------------------------------------------------------------------
    def secret_rows(self, spec: TableSpec, chunk_rows: int) -> Iterator[dict[str, Any]]:
        """One plain query for the secret columns and their encryption flags, without reflecting
        the table: the masker asks for them before every export, even one of a single small table,
        and reflection costs a connection and several catalog queries per table (reading
        ``connection`` and ``variable`` that way was ~10 % of exporting 100k dag runs).

        The columns queried (``ENCRYPTED_FLAGS``) are in every Airflow schema since 1.10; a
        database without one of them is read the general way.
        """
        if spec.name not in self.schema.table_names:
            return
        flags = ENCRYPTED_FLAGS.get(spec.name, {})
        names = [*spec.secret_columns, *dict.fromkeys(flags.values())]
        query = sa.select(*(sa.column(name) for name in names)).select_from(sa.table(spec.name))
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
        except sa.exc.DBAPIError as err:
            log.debug("Secrets of %s read through reflection: %s", spec.name, err)
            yield from super().secret_rows(spec, chunk_rows)
            return
        plain = {
            name: decrypt_stored_values(
                spec.name,
                name,
                [row[name] for row in rows],
                [row[flags[name]] if name in flags else False for row in rows],
            )
            for name in spec.secret_columns
        }
        for i in range(len(rows)):
            yield {name: plain[name][i] for name in spec.secret_columns}

    def _segments(self, spec: TableSpec, keys: list[str]) -> list[tuple[list[Any], list[str]]]:
        """Keyset passes: a nullable leading key column (log.dttm) gets a second pass for NULLs."""
        first = self.schema.key_column(spec, keys[0])
        if len(keys) > 1 and first.nullable:
            return [([first.isnot(None)], keys), ([first.is_(None)], keys[1:])]
        return [([], keys)]

    def _window_filter(self, spec: TableSpec, window: ReadWindow) -> list[Any]:
        table = self.schema.table(spec.name)
        if spec.watermark is None or spec.watermark not in table.c:
            return []
        col = table.c[spec.watermark]
        bind_ts = self.schema.bind_ts
        clauses: list[Any] = []
        if window.low is not None:
            clauses.append(col > bind_ts(window.low))
            if window.high is not None:
                clauses.append(col <= bind_ts(window.high))
        elif window.high is not None:
            clauses.append(sa.or_(col <= bind_ts(window.high), col.is_(None)))
        return clauses

    def read(
        self, spec: TableSpec, window: ReadWindow, chunk_rows: int, include_secrets: bool = False
    ) -> Iterator[pa.Table]:
        columns = self.columns(spec)
        if columns is None:
            return
        keys = self.keyset(spec)
        request = ReadRequest(
            spec, columns, self._window_filter(spec, window), keys, chunk_rows, include_secrets
        )
        # An incremental window holds few rows: sorting them costs the server less than walking
        # every run for them, so only whole-table reads go by ranges of parents.
        if self.schema.parent_order(spec) is not None and window.low is None:
            yield from self.reader.read_by_parent(request)
            return
        for seg_filter, seg_keys in self._segments(spec, keys):
            yield from self.reader.read_segment(
                replace(request, filters=request.filters + seg_filter, keys=seg_keys)
            )
