"""Load the exported analysis tables into Snowflake, to join Airflow's history with business data.

Reads the complete exports at a location (one row per natural key, the latest export's copy, as
the report counts them) and upserts them into one Snowflake table per exported table through the
Snowflake provider's :class:`~airflow.providers.snowflake.hooks.snowflake.SnowflakeHook`:

* the target table is created from the export's explicit Arrow schema when it does not exist
  (upper-case names, so ``SELECT dag_id FROM airflow_dag_run`` works unquoted);
* rows go to a temporary stage table with the connector's ``write_pandas`` (Parquet files PUT to
  the table stage and ``COPY INTO``: bulk, no row-by-row ``INSERT``), in batches;
* one ``MERGE`` on the natural key moves them into the target, so loading the same exports again
  changes nothing and a later export's copy of a row (a run that finished since) replaces the
  earlier one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader, natural_key
from airflow_provider_mwaaops.metadata.analysis.sql_types import sql_type

if TYPE_CHECKING:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

log = logging.getLogger(__name__)

#: Tables loaded when the caller names none (what the report reads).
DEFAULT_TABLES: tuple[str, ...] = ("dag_run", "task_instance")
#: Rows per ``write_pandas`` call: bounds memory (Arrow -> pandas copies a batch) on big tables.
DEFAULT_BATCH_ROWS = 100_000


def snowflake_type(data_type: pa.DataType) -> str:
    """The Snowflake column type for an exported Arrow type."""
    return sql_type(data_type, "snowflake")


def _ident(name: str) -> str:
    return '"' + name.upper().replace('"', '""') + '"'


@dataclass(frozen=True)
class LoadResult:
    """What one table's load did: rows sent (unique across exports) and rows the target now holds."""

    table: str
    target: str
    rows_loaded: int
    rows_in_target: int


class SnowflakeMetadataLoader:
    """Upsert exported metadata tables into Snowflake.

    :param snowflake_conn_id: the Snowflake connection (account, credentials, warehouse...).
    :param database: database of the target tables (default: the connection's).
    :param schema: schema of the target tables (default: the connection's).
    :param table_prefix: target table name = prefix + exported table name, upper-cased.
    :param batch_rows: rows staged per ``write_pandas`` call.
    """

    def __init__(
        self,
        snowflake_conn_id: str = "snowflake_default",
        *,
        database: str | None = None,
        schema: str | None = None,
        table_prefix: str = "AIRFLOW_",
        batch_rows: int = DEFAULT_BATCH_ROWS,
        hook: SnowflakeHook | None = None,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be positive")
        self.snowflake_conn_id = snowflake_conn_id
        self.database = database
        self.schema = schema
        self.table_prefix = table_prefix
        self.batch_rows = batch_rows
        self._hook = hook

    @property
    def hook(self) -> SnowflakeHook:
        if self._hook is None:
            from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

            self._hook = SnowflakeHook(
                snowflake_conn_id=self.snowflake_conn_id, database=self.database, schema=self.schema
            )
        return self._hook

    def target_name(self, table: str) -> str:
        return f"{self.table_prefix}{table}".upper()

    def load_export(self, reader: ExportReader, tables: Sequence[str] = DEFAULT_TABLES) -> list[LoadResult]:
        """Load each table of the exports behind ``reader``; one connection, one MERGE per table."""
        results = []
        connection = self.hook.get_conn()
        try:
            for table in tables:
                rows = reader.unique_rows(table)
                results.append(self.load_table(connection, table, rows, natural_key(table)))
        finally:
            connection.close()
        return results

    def load_table(self, connection: Any, table: str, rows: pa.Table, key: Sequence[str]) -> LoadResult:
        """Create ``table``'s target if needed, stage ``rows`` and MERGE them in on ``key``."""
        from snowflake.connector.pandas_tools import write_pandas

        target = self.target_name(table)
        stage = f"{target}__MWAAOPS_STAGE"
        columns = [field.name for field in rows.schema]
        cursor = connection.cursor()
        try:
            definition = ", ".join(f"{_ident(f.name)} {snowflake_type(f.type)}" for f in rows.schema)
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {_ident(target)} ({definition})")
            # Names are quoted and derived from the export catalog: no user text reaches the SQL.
            empty_copy = f"SELECT * FROM {_ident(target)} WHERE 1 = 0"  # noqa: S608
            cursor.execute(f"CREATE OR REPLACE TEMPORARY TABLE {_ident(stage)} AS {empty_copy}")
            renamed = rows.rename_columns([name.upper() for name in columns])
            for batch in renamed.to_batches(max_chunksize=self.batch_rows):
                frame = pa.Table.from_batches([batch], schema=renamed.schema).to_pandas()
                write_pandas(connection, frame, stage, quote_identifiers=True, use_logical_type=True)
            cursor.execute(self._merge_sql(target, stage, columns, key))
            cursor.execute(f"DROP TABLE IF EXISTS {_ident(stage)}")
            cursor.execute(f"SELECT COUNT(*) FROM {_ident(target)}")  # noqa: S608
            in_target = int(cursor.fetchall()[0][0])
        finally:
            cursor.close()
        log.info("Snowflake %s: %d rows merged, %d rows in the table", target, rows.num_rows, in_target)
        return LoadResult(table, target, rows.num_rows, in_target)

    @staticmethod
    def _merge_sql(target: str, stage: str, columns: Sequence[str], key: Sequence[str]) -> str:
        on = " AND ".join(f"t.{_ident(c)} = s.{_ident(c)}" for c in key)
        update = ", ".join(f"{_ident(c)} = s.{_ident(c)}" for c in columns if c not in key)
        names = ", ".join(_ident(c) for c in columns)
        values = ", ".join(f"s.{_ident(c)}" for c in columns)
        return (
            f"MERGE INTO {_ident(target)} AS t USING {_ident(stage)} AS s ON {on} "  # noqa: S608
            f"WHEN MATCHED THEN UPDATE SET {update} "
            f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
        )
