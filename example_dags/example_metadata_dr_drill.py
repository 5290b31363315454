"""
Disaster-recovery drill: back up Airflow's metadata, restore it into a fresh metadata database,
prove the copy is identical.

1. ``backup``: ``MetadataExportOperator`` writes a full export (Parquet + checksummed manifest) to
   ``s3://<bucket>/dr-drill/``;
2. ``fresh_metadata_db``: a brand-new metadata database, migrated by the real ``airflow db
   migrate`` (a SQLite file by default; set the Variable ``mwaaops_dr_drill_target_url`` to a
   PostgreSQL URL of an empty database to drill on MWAA's backend);
3. ``restore``: ``MetadataRestoreOperator`` verifies every checksum, then restores in dependency
   order with ``strict=True`` (the target must be empty), remapping surrogate ids and
   re-activating the DAGs that were active at backup;
4. ``compare``: exports the restored database with the same exporter and compares both exports row
   by row (secrets in plain text, see "Restore" in the docs for the exclusions), then runs the
   restore again as a dry run: it must find nothing to change.

On Airflow 3, point the export at the metadata database with ``db_conn_id`` (tasks may not use
Airflow's own session there). Set ``mwaaops_metadata_bucket`` for your bucket; offline, the embedded
AWS provides one.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, DAG, Variable, task
from airflow_provider_mwaaops.operators.metadata import MetadataExportOperator
from airflow_provider_mwaaops.operators.metadata_restore import MetadataRestoreOperator

#: Airflow 3 tasks may not use Airflow's own database session: there the export reads the metadata
#: database through this Airflow connection (create it; Airflow 2 tasks read the database directly).
METADATA_DB_CONN_ID = "mwaaops_metadata_db" if AIRFLOW_V_3_0_PLUS else None

DEFAULT_BUCKET = "mwaaops-example-metadata"

with DAG(
    dag_id="example_metadata_dr_drill",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "metadata", "disaster-recovery"],
    doc_md=__doc__,
) as dag:

    @task
    def backup_location() -> str:
        """The export base; creates the bucket when it is missing (an empty account or emulator)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket = Variable.get("mwaaops_metadata_bucket", DEFAULT_BUCKET)
        s3 = S3Hook()
        if not s3.check_for_bucket(bucket):
            s3.create_bucket(bucket_name=bucket)
        return f"s3://{bucket}/dr-drill"

    location = backup_location()

    backup = MetadataExportOperator(
        task_id="backup", export_uri=location, mode="full", db_conn_id=METADATA_DB_CONN_ID
    )

    @task
    def fresh_metadata_db() -> str:
        """An empty metadata database at this Airflow's schema: `airflow db migrate`, for real."""
        import os
        import subprocess
        import sys
        import tempfile

        home = tempfile.mkdtemp(prefix="mwaaops-dr-drill-")
        url = Variable.get("mwaaops_dr_drill_target_url", "") or f"sqlite:///{home}/airflow.db"
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=900,
        )
        return url

    target_url = fresh_metadata_db()

    restore = MetadataRestoreOperator(
        task_id="restore",
        export_uri=location,
        export_id="{{ ti.xcom_pull(task_ids='backup', key='export_id') }}",
        target_sql_alchemy_url=target_url,
        strict=True,
    )

    @task
    def compare(location: str, target_url: str, **context) -> dict:
        """Export the restored database and compare it with the backup, row by row."""
        from airflow_provider_mwaaops.compat import AirflowException, conf
        from airflow_provider_mwaaops.metadata.export import run_export
        from airflow_provider_mwaaops.metadata.restore import RestoreOptions, restore_metadata
        from airflow_provider_mwaaops.metadata.restore.compare import compare_exports
        from airflow_provider_mwaaops.metadata.sinks import open_sink
        from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

        export_id = context["ti"].xcom_pull(task_ids="backup", key="export_id")
        sink = open_sink(location, aws_conn_id="aws_default")
        source = DatabaseSource(target_url)
        try:
            check = run_export(source, sink, export_id=f"{export_id}-restored", mode="full")
        finally:
            source.close()
        key = conf.get("core", "fernet_key", fallback="")  # the drill restores with this Airflow's key
        result = compare_exports(sink, export_id, sink, check.export_id, fernet_key_a=key, fernet_key_b=key)
        print(result.describe())
        if not result.equal:
            raise AirflowException(f"restored database differs from the backup:\n{result.describe()}")
        again = restore_metadata(sink, export_id, target_url, RestoreOptions(dry_run=True))
        if again.changed_rows:
            raise AirflowException(f"a second restore would still change rows:\n{again.summary()}")
        return {name: table.rows_a for name, table in result.tables.items() if table.rows_a}

    backup >> restore
    restore >> compare(location, target_url)


if __name__ == "__main__":
    dag.test()
