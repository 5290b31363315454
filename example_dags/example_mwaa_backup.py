"""
The backup half of MWAA disaster recovery, on the RPO interval: a snapshot of the environment's
configuration (GetEnvironment, replayable into another Region) and an incremental export of its
Airflow metadata, both to an S3 bucket you replicate to the recovery Region.
``example_mwaa_recovery`` replays both.

On Airflow 3, tasks may not use Airflow's own database session: the export reads the metadata
database through the ``mwaaops_metadata_db`` connection (on MWAA 3.x, where no task reaches the
database, use ``read_from="rest"`` with ``mwaa_environment_name`` instead).
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, DAG
from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator
from airflow_provider_mwaaops.operators.mwaa import MwaaEnvironmentSnapshotOperator

DR_BUCKET = "mwaaops-example-dr"
ENVIRONMENT = "mwaaops-primary"
METADATA_DB_CONN_ID = "mwaaops_metadata_db" if AIRFLOW_V_3_0_PLUS else None

with DAG(
    dag_id="example_mwaa_backup",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "mwaa", "disaster-recovery"],
    doc_md=__doc__,
) as dag:
    snapshot = MwaaEnvironmentSnapshotOperator(
        task_id="snapshot_environment",
        environment_name=ENVIRONMENT,
        bucket=DR_BUCKET,
        prefix="mwaa-snapshots",
    )

    export = MetadataExportOperator(
        task_id="export_metadata",
        export_uri=f"s3://{DR_BUCKET}/airflow-metadata",
        mode="incremental",
        db_conn_id=METADATA_DB_CONN_ID,
    )

    snapshot >> export


if __name__ == "__main__":
    dag.test()
