"""``mwaaops metadata athena-ddl``: query the exported files in place with Amazon Athena.

For each exported table it prints a ``CREATE EXTERNAL TABLE`` over *every* export under the base
location, typed from the export's explicit Arrow schemas, with partition projection so Athena
never needs ``MSCK REPAIR`` or a crawler:

* ``export_id`` (``enum`` projection: the complete exports that existed when the DDL was made;
  rerun the command after new exports, it prints an ``ALTER TABLE ... SET TBLPROPERTIES`` that
  refreshes the list), and
* ``dt`` (``date`` projection, ``yyyy-MM-dd``, from the first exported day to ``NOW``) for the
  date-partitioned analysis tables.

Only exports with a manifest are listed, so Athena, like restore and the report, never reads a
half-written export. A view per table keeps the latest export's copy of each row (as the report
does), and ``<table prefix>dag_run_monthly`` is the report's monthly query, word for word.

Rows whose partition timestamp is null are stored under ``dt=__HIVE_DEFAULT_PARTITION__``, which a
date projection cannot name: they are not visible in Athena (the report still counts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from airflow_provider_mwaaops.metadata.analysis import queries
from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader, natural_key
from airflow_provider_mwaaops.metadata.analysis.sql_types import sql_type
from airflow_provider_mwaaops.metadata.tables import NULL_PARTITION, PARTITION_COLUMN, get_table

#: Partition column naming the export a file belongs to (its folder under the base).
EXPORT_ID_COLUMN = "export_id"


class AthenaDdlError(ValueError):
    """The export cannot be described for Athena (not in S3, unknown table)."""


def athena_type(data_type: pa.DataType) -> str:
    """The Athena (Hive DDL) type that reads a Parquet column written with this Arrow type."""
    try:
        return sql_type(data_type, "athena")
    except ValueError as err:
        raise AthenaDdlError(str(err)) from None


@dataclass(frozen=True)
class AthenaTable:
    """What Athena needs to know about one exported table."""

    name: str
    schema: pa.Schema
    partitioned: bool
    first_day: str | None

    def external_name(self, prefix: str) -> str:
        """Every copy of every row, across exports."""
        return f"{prefix}{self.name}_exported"

    def view_name(self, prefix: str) -> str:
        """One row per natural key, the latest export's copy."""
        return f"{prefix}{self.name}"


def describe_tables(reader: ExportReader, tables: Sequence[str] | None = None) -> list[AthenaTable]:
    """The tables to declare: those named (default: every table some export holds)."""
    present = reader.tables()
    wanted = list(tables) if tables else present
    unknown = [name for name in wanted if name not in present]
    if unknown:
        raise AthenaDdlError(f"no export at {reader.uri} holds table(s) {unknown}; they hold {present}")
    described = []
    for name in wanted:
        days = sorted(
            entry.partition
            for export in reader.exports
            if name in export.manifest.tables
            for entry in export.manifest.tables[name].files
            if entry.partition and entry.partition != NULL_PARTITION
        )
        spec = get_table(name)
        described.append(AthenaTable(name, spec.arrow_schema, spec.partitioned, days[0] if days else None))
    return described


def _s3_base(reader: ExportReader, location: str | None) -> str:
    base = (location or reader.sink.url).rstrip("/")
    if not base.startswith("s3://"):
        raise AthenaDdlError(
            f"Athena reads S3, and {base} is not an s3:// location; pass the S3 URI the exports are "
            "copied to (--location s3://bucket/prefix)"
        )
    return base


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _export_order(export_ids: Sequence[str]) -> str:
    """How the views rank copies: by id when ids sort in export order (the default UTC-time ids),
    else an explicit CASE in the order the manifests were finished."""
    if list(export_ids) == sorted(export_ids):
        return f"{queries.quote(EXPORT_ID_COLUMN)} DESC"
    cases = " ".join(f"WHEN {_sql_string(export_id)} THEN {i}" for i, export_id in enumerate(export_ids))
    return f"CASE {queries.quote(EXPORT_ID_COLUMN)} {cases} END DESC"


def create_table_ddl(
    table: AthenaTable, database: str, base: str, export_ids: Sequence[str], prefix: str
) -> str:
    """``CREATE EXTERNAL TABLE`` with partition projection over every export's files of ``table``."""
    columns = ",\n".join(f"  `{field.name}` {athena_type(field.type)}" for field in table.schema)
    partitions = [f"`{EXPORT_ID_COLUMN}` string"]
    template = f"{base}/${{{EXPORT_ID_COLUMN}}}/{table.name}/"
    properties = {
        "parquet.compression": "ZSTD",
        "projection.enabled": "true",
        f"projection.{EXPORT_ID_COLUMN}.type": "enum",
        f"projection.{EXPORT_ID_COLUMN}.values": ",".join(export_ids),
    }
    if table.partitioned:
        partitions.append(f"`{PARTITION_COLUMN}` string")
        template += f"{PARTITION_COLUMN}=${{{PARTITION_COLUMN}}}/"
        properties |= {
            f"projection.{PARTITION_COLUMN}.type": "date",
            f"projection.{PARTITION_COLUMN}.format": "yyyy-MM-dd",
            f"projection.{PARTITION_COLUMN}.range": f"{table.first_day or 'NOW-1DAYS'},NOW",
            f"projection.{PARTITION_COLUMN}.interval": "1",
            f"projection.{PARTITION_COLUMN}.interval.unit": "DAYS",
        }
    properties["storage.location.template"] = template
    props = ",\n".join(f"  {_sql_string(k)}={_sql_string(v)}" for k, v in properties.items())
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table.external_name(prefix)}` (\n{columns}\n)\n"
        f"PARTITIONED BY ({', '.join(partitions)})\n"
        "STORED AS PARQUET\n"
        f"LOCATION {_sql_string(base + '/')}\n"
        f"TBLPROPERTIES (\n{props}\n);"
    )


def refresh_exports_ddl(table: AthenaTable, database: str, export_ids: Sequence[str], prefix: str) -> str:
    """Point an existing table's projection at the current list of exports."""
    return (
        f"ALTER TABLE `{database}`.`{table.external_name(prefix)}` SET TBLPROPERTIES "
        f"({_sql_string(f'projection.{EXPORT_ID_COLUMN}.values')}={_sql_string(','.join(export_ids))});"
    )


def latest_view_sql(table: AthenaTable, database: str, export_ids: Sequence[str], prefix: str) -> str:
    """The view that keeps the latest export's copy of each row, as the report counts them."""
    columns = [field.name for field in table.schema]
    columns += [PARTITION_COLUMN, EXPORT_ID_COLUMN] if table.partitioned else [EXPORT_ID_COLUMN]
    source = f"{queries.quote(database)}.{queries.quote(table.external_name(prefix))}"
    select = queries.dedupe_sql(source, columns, natural_key(table.name), order_by=_export_order(export_ids))
    view = f"{queries.quote(database)}.{queries.quote(table.view_name(prefix))}"
    return f"CREATE OR REPLACE VIEW {view} AS\n{select};"


def monthly_view_sql(database: str, prefix: str = "") -> str:
    """The report's monthly query as a view over the deduplicated ``dag_run`` view."""
    dag_run = f"{queries.quote(database)}.{queries.quote(prefix + 'dag_run')}"
    return (
        f"CREATE OR REPLACE VIEW {queries.quote(database)}.{queries.quote(prefix + 'dag_run_monthly')} AS\n"
        f"{queries.monthly_sql(dag_run)};"
    )


def athena_ddl(
    reader: ExportReader,
    database: str,
    *,
    tables: Sequence[str] | None = None,
    location: str | None = None,
    table_prefix: str = "",
) -> list[str]:
    """Every statement to run in Athena, in order (one statement per string, ``;`` included).

    ``location`` overrides the S3 base the tables point at (for exports written locally and
    copied to S3 afterwards); ``table_prefix`` keeps several environments apart in one database.
    """
    base = _s3_base(reader, location)
    export_ids = [export.export_id for export in reader.exports]
    described = describe_tables(reader, tables)
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}`;"]
    for table in described:
        statements.append(create_table_ddl(table, database, base, export_ids, table_prefix))
        statements.append(refresh_exports_ddl(table, database, export_ids, table_prefix))
        statements.append(latest_view_sql(table, database, export_ids, table_prefix))
    if any(table.name == "dag_run" for table in described):
        statements.append(monthly_view_sql(database, table_prefix))
    return statements


def format_statements(statements: Sequence[str]) -> str:
    """Statements separated by blank lines, ready to paste into the Athena console or a script."""
    return "\n\n".join(statements) + "\n"
