"""
Hourly incremental export of Airflow's metadata to S3: the disaster-recovery RPO.

Every hour ``MetadataExportOperator`` writes the rows changed since the previous complete export
(the first run writes everything) as Parquet plus a checksummed ``manifest.json`` under
``s3://<bucket>/airflow-metadata/<export id>/``. A retry rewrites the same export; an export
without a manifest was interrupted and is never read. The last task verifies every file's
checksum, as a restore would.

On Airflow 3, give the operator ``db_conn_id`` (an Airflow connection to the metadata database),
since tasks may not use Airflow's own database session there. Set the Variable
``mwaaops_metadata_bucket`` to export to your bucket; offline, the embedded AWS provides one.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, DAG, Variable, task
from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator

#: Airflow 3 tasks may not use Airflow's own database session: there the export reads the metadata
#: database through this Airflow connection (create it; Airflow 2 tasks read the database directly).
METADATA_DB_CONN_ID = "mwaaops_metadata_db" if AIRFLOW_V_3_0_PLUS else None

DEFAULT_BUCKET = "mwaaops-example-metadata"

with DAG(
    dag_id="example_metadata_export_hourly",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # an incremental export continues the previous one: never two at once
    tags=["example", "metadata", "disaster-recovery"],
    doc_md=__doc__,
) as dag:

    @task
    def export_location() -> str:
        """The export base; creates the bucket when it is missing (an empty account or emulator)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket = Variable.get("mwaaops_metadata_bucket", DEFAULT_BUCKET)
        s3 = S3Hook()
        if not s3.check_for_bucket(bucket):
            s3.create_bucket(bucket_name=bucket)
        return f"s3://{bucket}/airflow-metadata"

    base = export_location()

    export = MetadataExportOperator(
        task_id="export_metadata",
        export_uri=base,
        mode="incremental",
        db_conn_id=METADATA_DB_CONN_ID,
        secrets="exclude",  # connection passwords/extras and variable values stay out
        retries=2,
    )

    @task
    def verify_export(manifest_path: str) -> dict:
        """Re-read the manifest and every file's sha256, as a restore would before using it."""
        from airflow_provider_mwaaops.metadata.manifest import load_manifest, verify_export
        from airflow_provider_mwaaops.metadata.sinks import open_sink

        base_url, export_id, _ = manifest_path.rsplit("/", 2)
        sink = open_sink(base_url, aws_conn_id="aws_default")
        manifest = load_manifest(sink, export_id)
        rows = verify_export(sink, manifest)
        return {"export_id": export_id, "mode": manifest.mode, "rows": rows}

    base >> export
    verify_export(export.output)


if __name__ == "__main__":
    dag.test()
