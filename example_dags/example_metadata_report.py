"""
Daily report on Airflow's own history: export the metadata, then analyse every export with DuckDB.

``MetadataExportOperator`` adds an incremental export of ``dag_run`` and ``task_instance`` under
``s3://<bucket>/airflow-metadata/``; ``MetadataReportOperator`` then reads *all* complete exports
there (a row exported twice counts once, the latest copy winning) and writes a self-contained HTML
report (per DAG and month: runs, success rate, min/max/avg duration and the change against the
previous month; slowest tasks; retry hot spots) plus the Athena DDL for the same files. The console
table is in the report task's log.

On Airflow 3, give the export operator ``db_conn_id`` (tasks may not use Airflow's own database
session there). Set the Variable ``mwaaops_metadata_bucket`` to use your bucket; offline, the
embedded AWS provides one.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, DAG, Variable, task
from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator
from airflow_provider_mwaaops.operators.metadata_analysis import MetadataReportOperator

#: Airflow 3 tasks may not use Airflow's own database session: there the export reads the metadata
#: database through this Airflow connection (create it; Airflow 2 tasks read the database directly).
METADATA_DB_CONN_ID = "mwaaops_metadata_db" if AIRFLOW_V_3_0_PLUS else None

DEFAULT_BUCKET = "mwaaops-example-metadata"

with DAG(
    dag_id="example_metadata_report",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "metadata", "analysis"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def locations() -> dict[str, str]:
        """Where exports and reports go; creates the bucket on an empty account or emulator."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket = Variable.get("mwaaops_metadata_bucket", DEFAULT_BUCKET)
        s3 = S3Hook()
        if not s3.check_for_bucket(bucket):
            s3.create_bucket(bucket_name=bucket)
        return {"exports": f"s3://{bucket}/airflow-metadata", "reports": f"s3://{bucket}/airflow-reports"}

    where = locations()

    export = MetadataExportOperator(
        task_id="export_metadata",
        export_uri=where["exports"],
        mode="incremental",
        tables=["dag_run", "task_instance"],
        db_conn_id=METADATA_DB_CONN_ID,
    )

    report = MetadataReportOperator(
        task_id="write_report",
        export_uri=where["exports"],
        html_uri="{{ ti.xcom_pull(task_ids='locations', key='reports') }}/metadata-report.html",
        athena_ddl_uri="{{ ti.xcom_pull(task_ids='locations', key='reports') }}/athena.sql",
        athena_database="airflow_metadata",
    )

    @task
    def check_report(summary: dict) -> dict:
        """Fail loudly if the report saw no run at all: the export or the report is broken."""
        if not summary["rows_unique"].get("dag_run"):
            raise ValueError(f"the report found no DAG run in {summary['export_ids']}")
        return {"html": summary["html"], "dags": summary["dags"], "exports": len(summary["export_ids"])}

    export >> report
    check_report(report.output)


if __name__ == "__main__":
    dag.test()
