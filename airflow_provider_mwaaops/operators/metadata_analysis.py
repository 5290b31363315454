"""Operators that read metadata exports: the HTML/console report, Athena DDL, a Snowflake load.

They read the export files only (never the metadata database), so they run the same way on
Airflow 2.11 and 3.x, in any worker that can reach the export location.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.compat import BaseOperator

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context


class MetadataReportOperator(BaseOperator):
    """Analyse the complete exports under ``export_uri`` and write the HTML report.

    The console table (per DAG and month: runs, success rate, durations and the change against
    the previous month; slowest tasks; retry hot spots) goes to the task log; the self-contained
    HTML page to ``html_uri`` if given. Returns a small summary (for XCom): the HTML location, the
    exports read and the unique row counts.

    :param export_uri: one export's folder or the base of many (``s3://bucket/prefix`` or a
        path). (templated)
    :param html_uri: where to write the HTML report (``s3://...`` or a path). (templated)
    :param athena_ddl_uri: also write the Athena DDL for the same files here. (templated)
    :param athena_database: the Athena database the DDL creates its tables in.
    :param top: how many tasks the slowest / retry sections list.
    :param verify_checksums: check every listed file's sha256 first (reads every byte once).
    :param aws_conn_id: AWS connection for ``s3://`` locations. (templated)
    :param region_name: AWS region. (templated)
    """

    template_fields: Sequence[str] = (
        "export_uri",
        "html_uri",
        "athena_ddl_uri",
        "aws_conn_id",
        "region_name",
    )
    ui_color = "#e8f1d4"

    def __init__(
        self,
        *,
        export_uri: str,
        html_uri: str | None = None,
        athena_ddl_uri: str | None = None,
        athena_database: str = "airflow_metadata",
        top: int = 10,
        verify_checksums: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if top < 1:
            raise ValueError("top must be at least 1")
        self.export_uri = export_uri
        self.html_uri = html_uri
        self.athena_ddl_uri = athena_ddl_uri
        self.athena_database = athena_database
        self.top = top
        self.verify_checksums = verify_checksums
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_mwaaops.metadata.analysis.html import write_html
        from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
        from airflow_provider_mwaaops.metadata.analysis.report import report_from_reader

        s3_conn = self.aws_conn_id if self.export_uri.startswith("s3://") else None
        reader = ExportReader.open(
            self.export_uri,
            aws_conn_id=s3_conn,
            region_name=self.region_name,
            verify_checksums=self.verify_checksums,
        )
        report = report_from_reader(reader, top=self.top)
        self.log.info("Metadata report\n%s", report.console_table())
        summary: dict[str, Any] = {
            "export_ids": report.export_ids,
            "rows_unique": report.rows_unique,
            "dags": len({row.dag_id for row in report.monthly}),
            "html": None,
            "athena_ddl": None,
        }
        if self.html_uri:
            summary["html"] = write_html(
                report, self.html_uri, aws_conn_id=self.aws_conn_id, region_name=self.region_name
            )
            self.log.info("HTML report written to %s", summary["html"])
        if self.athena_ddl_uri:
            summary["athena_ddl"] = self._write_athena_ddl(reader)
        return summary

    def _write_athena_ddl(self, reader: Any) -> str:
        from airflow_provider_mwaaops.metadata.analysis.athena import athena_ddl, format_statements
        from airflow_provider_mwaaops.metadata.sinks import write_file

        text = format_statements(athena_ddl(reader, self.athena_database))
        path = write_file(
            str(self.athena_ddl_uri),
            text.encode(),
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
        )
        self.log.info("Athena DDL written to %s:\n%s", path, text)
        return path


class MetadataSnowflakeLoadOperator(BaseOperator):
    """Upsert exported tables into Snowflake (one row per natural key, latest export winning).

    Returns ``{table: rows in the Snowflake table}``. See
    :class:`~airflow_provider_mwaaops.metadata.analysis.snowflake.SnowflakeMetadataLoader`.

    :param export_uri: one export's folder or the base of many. (templated)
    :param snowflake_conn_id: the Snowflake connection.
    :param tables: exported tables to load (default: ``dag_run`` and ``task_instance``).
    :param database: Snowflake database (default: the connection's). (templated)
    :param schema: Snowflake schema (default: the connection's). (templated)
    :param table_prefix: target table = prefix + table name, upper-cased.
    :param aws_conn_id: AWS connection for ``s3://`` locations. (templated)
    :param region_name: AWS region. (templated)
    """

    template_fields: Sequence[str] = ("export_uri", "database", "schema", "aws_conn_id", "region_name")
    ui_color = "#d4ecf7"

    def __init__(
        self,
        *,
        export_uri: str,
        snowflake_conn_id: str = "snowflake_default",
        tables: Sequence[str] | None = None,
        database: str | None = None,
        schema: str | None = None,
        table_prefix: str = "AIRFLOW_",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.export_uri = export_uri
        self.snowflake_conn_id = snowflake_conn_id
        self.tables = tables
        self.database = database
        self.schema = schema
        self.table_prefix = table_prefix
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context: Context) -> dict[str, int]:
        from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
        from airflow_provider_mwaaops.metadata.analysis.snowflake import (
            DEFAULT_TABLES,
            SnowflakeMetadataLoader,
        )

        s3_conn = self.aws_conn_id if self.export_uri.startswith("s3://") else None
        reader = ExportReader.open(self.export_uri, aws_conn_id=s3_conn, region_name=self.region_name)
        loader = SnowflakeMetadataLoader(
            self.snowflake_conn_id, database=self.database, schema=self.schema, table_prefix=self.table_prefix
        )
        results = loader.load_export(reader, tables=self.tables or DEFAULT_TABLES)
        for result in results:
            self.log.info(
                "%s -> %s: %d rows merged, %d in the table",
                result.table,
                result.target,
                result.rows_loaded,
                result.rows_in_target,
            )
        return {result.table: result.rows_in_target for result in results}
