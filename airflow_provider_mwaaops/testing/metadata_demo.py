"""The demo's closing act: export the demo's own Airflow metadata and report on it.

After the example DAGs have run, their history is real rows in the demo's metadata database. This
exports them with the exporter (to the embedded AWS's S3, secrets excluded), reads the export back
like a user would (``mwaaops metadata report``), writes the HTML report, and returns the console
table and the Athena DDL for the summary. Finally the same rows are loaded into Snowflake (fakesnow,
when installed) as a warehouse would receive them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

DEMO_BUCKET = "mwaaops-demo-metadata"
DEMO_EXPORTS = f"s3://{DEMO_BUCKET}/airflow-metadata"
ATHENA_DATABASE = "airflow_metadata"


@dataclass(frozen=True)
class DemoReport:
    """What the demo prints and where it wrote things."""

    export_id: str
    manifest: str
    exported_rows: dict[str, int]
    html_path: Path
    html_s3: str
    console_table: str
    athena_ddl: str
    snowflake_rows: dict[str, int] | None = None

    def _snowflake_line(self) -> str:
        if self.snowflake_rows is None:
            return "Snowflake load: skipped (fakesnow is not installed)"
        loaded = ", ".join(f"{table} {rows}" for table, rows in self.snowflake_rows.items())
        return f"Snowflake load (fakesnow): {loaded}"

    def summary(self) -> str:
        rows = ", ".join(f"{table} {count}" for table, count in self.exported_rows.items() if count)
        return "\n".join(
            [
                f"Metadata export {self.export_id}: {self.manifest}",
                f"  rows: {rows}",
                f"HTML report: {self.html_path} (and {self.html_s3})",
                self._snowflake_line(),
                "",
                self.console_table,
                "",
                "Athena DDL for the same files (dag_run, task_instance):",
                "",
                self.athena_ddl,
            ]
        )


def _load_into_fake_snowflake(reader: ExportReader) -> dict[str, int] | None:
    """Rows per Snowflake table after loading the export into fakesnow; None without fakesnow."""
    try:
        import fakesnow  # noqa: F401  (only to know whether the load can run offline)
    except ImportError:
        return None
    from airflow_provider_mwaaops.metadata.analysis.snowflake import SnowflakeMetadataLoader
    from airflow_provider_mwaaops.testing.snowflake import SNOWFLAKE_CONN_ID, fake_snowflake

    with fake_snowflake():
        results = SnowflakeMetadataLoader(SNOWFLAKE_CONN_ID).load_export(reader)
    return {result.target: result.rows_in_target for result in results}


def export_and_report(emulator: AwsEmulator, html_path: Path) -> DemoReport:
    """Export this process's Airflow metadata to the emulator's S3 and analyse the export."""
    from airflow_provider_mwaaops.metadata.analysis.athena import athena_ddl, format_statements
    from airflow_provider_mwaaops.metadata.analysis.html import render, write_html
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.metadata.analysis.report import report_from_reader
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.manifest import manifest_path
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    with emulator.activated():
        emulator.client("s3").create_bucket(Bucket=DEMO_BUCKET)
        sink = open_sink(DEMO_EXPORTS, aws_conn_id=emulator.conn_id)
        source = DatabaseSource()
        try:
            manifest = run_export(source, sink)
        finally:
            source.close()
        reader = ExportReader.open(DEMO_EXPORTS, aws_conn_id=emulator.conn_id, verify_checksums=True)
        report = report_from_reader(reader)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render(report), encoding="utf-8")
        html_s3 = write_html(
            report, f"s3://{DEMO_BUCKET}/reports/metadata-report.html", aws_conn_id=emulator.conn_id
        )
        ddl = athena_ddl(reader, ATHENA_DATABASE, tables=["dag_run", "task_instance"])
        snowflake_rows = _load_into_fake_snowflake(reader)
    return DemoReport(
        export_id=manifest.export_id,
        manifest=sink.full_path(manifest_path(manifest.export_id)),
        exported_rows={name: table.rows for name, table in manifest.tables.items()},
        html_path=html_path,
        html_s3=html_s3,
        console_table=report.console_table(),
        athena_ddl=format_statements(ddl),
        snowflake_rows=snowflake_rows,
    )


def run_for_demo(emulator: AwsEmulator, html_path: Path) -> tuple[str, bool]:
    """The text the demo prints, and whether it worked; a failure is reported, never raised,
    so the DAG summary above it is still printed."""
    try:
        return export_and_report(emulator, html_path).summary(), True
    except Exception as exc:
        import traceback

        return f"Metadata export / report FAILED: {exc}\n{traceback.format_exc()}", False
