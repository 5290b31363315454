"""Read a location holding metadata exports into DuckDB, one row per natural key.

DuckDB's own S3 support (httpfs) downloads an extension on first use, which an offline laptop,
a CI runner or an MWAA worker without internet cannot do. The files are therefore opened through
pyarrow datasets (over s3fs for ``s3://``) and handed to DuckDB, which scans them lazily and reads
only the columns a query names.

Only *complete* exports count, i.e. those whose ``manifest.json`` exists, and only the files their
manifest lists: a half-written export (killed before its manifest) is invisible here, exactly as it
is to restore. Exports are ordered by when they were taken; when the same row (same natural key)
appears in several, the latest copy wins.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.metadata.analysis import queries
from airflow_provider_mwaaops.metadata.manifest import (
    MANIFEST_NAME,
    ExportError,
    Manifest,
    list_exports,
    load_manifest,
    verify_export,
)
from airflow_provider_mwaaops.metadata.sinks import Sink, open_sink
from airflow_provider_mwaaops.metadata.tables import get_table

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs


class ExportReadError(Exception):
    """The location holds no complete export, or an export cannot be analysed (names the file)."""


@dataclass(frozen=True)
class ExportEntry:
    """One complete export: its manifest and where its files are for pyarrow."""

    manifest: Manifest
    files: dict[str, list[str]]

    @property
    def export_id(self) -> str:
        return self.manifest.export_id

    @property
    def sort_key(self) -> tuple[str, str]:
        """Exports are ordered as the exporter orders them (by finish time, then id)."""
        return (self.manifest.finished_at or "", self.manifest.export_id)


@dataclass
class LoadedTables:
    """A DuckDB connection holding the deduplicated tables, with row counts before and after."""

    #: ``duckdb.DuckDBPyConnection`` (DuckDB is an optional dependency, imported when used).
    connection: Any
    rows_read: dict[str, int]
    rows_unique: dict[str, int]


class ExportReader:
    """The complete exports found at one location, ready to be stacked table by table."""

    def __init__(
        self, uri: str, sink: Sink, filesystem: pafs.FileSystem, exports: Sequence[ExportEntry]
    ) -> None:
        self.uri = uri
        self.sink = sink
        self.filesystem = filesystem
        self.exports = sorted(exports, key=lambda export: export.sort_key)

    @classmethod
    def open(
        cls,
        uri: str,
        storage_options: dict[str, Any] | None = None,
        aws_conn_id: str | None = None,
        region_name: str | None = None,
        verify_checksums: bool = False,
    ) -> ExportReader:
        """Find the complete exports at ``uri``: one export's folder, or the base of many.

        ``verify_checksums`` checks every listed file's size and sha256 first (reads every byte once);
        without it only the columns the analysis needs are read.
        """
        sink = _open_sink(uri, storage_options, aws_conn_id, region_name)
        try:
            if sink.exists(MANIFEST_NAME):  # the folder of one export: read it from its base
                base, _, export_id = uri.rstrip("/").rpartition("/")
                sink = _open_sink(base or ".", storage_options, aws_conn_id, region_name)
                export_ids = [export_id]
            else:
                export_ids = list_exports(sink)
            if not export_ids:
                raise ExportReadError(
                    f"no complete export at {uri}: no {MANIFEST_NAME} there nor in any folder directly "
                    "below it (an export without its manifest was interrupted and is ignored)"
                )
            manifests = [load_manifest(sink, export_id) for export_id in export_ids]
            if verify_checksums:
                for manifest in manifests:
                    verify_export(sink, manifest)
        except ExportError as exc:
            raise ExportReadError(str(exc)) from exc
        filesystem, locate = _arrow_filesystem(sink)
        exports = [
            ExportEntry(
                manifest,
                {
                    name: [locate(f"{manifest.export_id}/{path}") for path in manifest.file_paths(name)]
                    for name in manifest.tables
                },
            )
            for manifest in manifests
        ]
        return cls(uri, sink, filesystem, exports)

    def tables(self) -> list[str]:
        """Every table that at least one export holds files for."""
        return sorted({table for export in self.exports for table in export.files})

    def dataset(self, table: str) -> ds.Dataset | None:
        """All exports' files of ``table`` as one lazy dataset with the export order as a column."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        paths, orders = [], []
        for order, export in enumerate(self.exports):
            for path in export.files.get(table, []):
                paths.append(path)
                orders.append(order)
        if not paths:
            return None
        # Every file is written in the catalog schema; files of an older format version lack
        # columns added since, which the dataset fills with nulls.
        schema = get_table(table).arrow_schema.append(pa.field(queries.EXPORT_ORDER_COLUMN, pa.int32()))
        order_field = pc.field(queries.EXPORT_ORDER_COLUMN)
        return ds.FileSystemDataset.from_paths(
            paths,
            schema=schema,
            format=ds.ParquetFileFormat(),
            filesystem=self.filesystem,
            partitions=[order_field == pa.scalar(order, pa.int32()) for order in orders],
        )

    @contextlib.contextmanager
    def connect(
        self, tables: Sequence[str] = tuple(queries.NATURAL_KEYS), all_columns: bool = False
    ) -> Iterator[LoadedTables]:
        """An in-memory DuckDB with each table deduplicated across exports.

        Only the columns the analysis queries need are kept unless ``all_columns`` (a load into a
        warehouse wants every column). A table no export holds is created empty, so the report
        still renders (an export of dag runs only has no task sections).
        """
        import duckdb

        connection = duckdb.connect(":memory:")
        try:
            # Month boundaries are UTC, as in Athena; a laptop's time zone must not move runs.
            connection.execute("SET TimeZone = 'UTC'").fetchall()
            # Row order of the loaded tables is irrelevant; not keeping it saves memory.
            connection.execute("SET preserve_insertion_order = false").fetchall()
            rows_read, rows_unique = {}, {}
            for table in tables:
                rows_read[table] = self._load(connection, table, all_columns)
                # fetchall, not fetchone: DuckDB refuses new work while a result is unfinished.
                count = f'SELECT count(*) FROM "{table}"'  # noqa: S608 (a catalog table name)
                rows_unique[table] = connection.execute(count).fetchall()[0][0]
            yield LoadedTables(connection, rows_read, rows_unique)
        finally:
            connection.close()

    def _load(self, connection: duckdb.DuckDBPyConnection, table: str, all_columns: bool) -> int:
        import pyarrow as pa

        dataset = self.dataset(table)
        stacked: Any = dataset
        if dataset is None:
            stacked = (
                get_table(table)
                .arrow_schema.append(pa.field(queries.EXPORT_ORDER_COLUMN, pa.int32()))
                .empty_table()
            )
        names = [name for name in stacked.schema.names if name != queries.EXPORT_ORDER_COLUMN]
        columns = names if all_columns else list(queries.REQUIRED_COLUMNS.get(table, names))
        view = f"{table}__stacked"
        exports_with_table = sum(1 for export in self.exports if export.files.get(table))
        if exports_with_table > 1:
            select = queries.dedupe_sql(f'"{view}"', columns, natural_key(table))
        else:  # one export is one snapshot: each natural key is there once, no window needed
            select = f'SELECT {", ".join(queries.quote(c) for c in columns)} FROM "{view}"'  # noqa: S608
        connection.register(view, stacked)
        try:
            connection.execute(f'CREATE TABLE "{table}" AS {select}').fetchall()
        finally:
            connection.unregister(view)
        # Parquet footers carry row counts: no data page is read for this.
        return 0 if dataset is None else int(dataset.count_rows())

    def unique_rows(self, table: str) -> pa.Table:
        """Every column of ``table``, one row per natural key, as Arrow (for a warehouse load)."""
        with self.connect(tables=(table,), all_columns=True) as loaded:
            return loaded.connection.sql(f'SELECT * FROM "{table}"').to_arrow_table()  # noqa: S608


def natural_key(table: str) -> tuple[str, ...]:
    """What identifies a row across exports: the analysis keys, else the catalog's first candidate."""
    if table in queries.NATURAL_KEYS:
        return queries.NATURAL_KEYS[table]
    spec = get_table(table)
    if not spec.natural_keys:
        raise ExportReadError(f"table {table} has no natural key, so copies across exports cannot be merged")
    return spec.natural_keys[0]


def _open_sink(
    uri: str, storage_options: dict[str, Any] | None, aws_conn_id: str | None, region_name: str | None
) -> Sink:
    if uri.startswith(("s3://", "s3a://")):
        return open_sink(
            uri, aws_conn_id=aws_conn_id, region_name=region_name, storage_options=storage_options
        )
    return open_sink(uri)


def _arrow_filesystem(sink: Sink) -> tuple[pafs.FileSystem, Callable[[str], str]]:
    """The sink's storage as a pyarrow filesystem, and how to name a sink path inside it."""
    import pyarrow.fs as pafs

    from airflow_provider_mwaaops.metadata.sinks.s3 import S3Sink

    if isinstance(sink, S3Sink):
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(sink.fs))
        return filesystem, lambda path: sink.full_path(path).removeprefix("s3://")
    return pafs.LocalFileSystem(), sink.full_path
