"""The world the MWAA recovery examples expect, built on the embedded AWS for the demo and tests.

``example_mwaa_backup`` needs a running primary environment and the DR bucket.
``example_mwaa_recovery`` needs the disaster: a primary environment that has run for half an hour
and whose scheduler died ten minutes ago, its snapshot and a metadata backup in the DR bucket, an
empty metadata database for the new environment, and the Step Functions recovery workflow
(``mwaa_recovery_workflow.asl.json``) waiting for the DAG's answer. The workflow's message is what
a dispatcher would pass as the run's conf; :func:`prepare_mwaa_example` returns it.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

BACKUP_DAG_ID = "example_mwaa_backup"
RECOVERY_DAG_ID = "example_mwaa_recovery"
WORKFLOW_FILE = "mwaa_recovery_workflow.asl.json"
DR_BUCKET = "mwaaops-example-dr"
PRIMARY = "mwaaops-primary"
RECOVERY_QUEUE = "mwaaops-example-recovery-requests"
PRIMARY_SPEC: dict[str, Any] = {
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaaops-example-mwaa-us-east-1",
    "SourceBucketArn": "arn:aws:s3:::mwaaops-example-dags-us-east-1",
    "DagS3Path": "dags",
    "RequirementsS3Path": "requirements.txt",
    "RequirementsS3ObjectVersion": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    "NetworkConfiguration": {
        "SubnetIds": ["subnet-0east1a000000001", "subnet-0east1b000000002"],
        "SecurityGroupIds": ["sg-0east10000000001"],
    },
    "AirflowVersion": "2.11.0",
    "EnvironmentClass": "mw1.medium",
    "MaxWorkers": 10,
    "AirflowConfigurationOptions": {
        "core.default_task_retries": "2",
        "smtp.smtp_password": "not-in-the-snapshot",
    },
    "Tags": {"team": "data-platform"},
}


def create_primary(emulator: AwsEmulator) -> None:
    """The DR bucket and a running primary environment in the emulator's Region."""
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    emulator.client("s3").create_bucket(Bucket=DR_BUCKET)
    emulator.client("mwaa").create_environment(Name=PRIMARY, **PRIMARY_SPEC)
    mwaa_environments.wait_for_status(PRIMARY, region_name=emulator.region_name)


def _disaster(emulator: AwsEmulator) -> None:
    """Half an hour of history, then a scheduler that stopped heartbeating ten minutes ago."""
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    mwaa_environments.age_environment(PRIMARY, dt.timedelta(minutes=30), region_name=emulator.region_name)
    died = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    mwaa_environments.stop_scheduler(PRIMARY, at=died, region_name=emulator.region_name)


def _backups(emulator: AwsEmulator) -> None:
    """A snapshot of the primary and an export of this Airflow's metadata, as the backup DAG leaves them."""
    from airflow_provider_mwaaops.hooks.mwaa import MwaaEnvironmentHook
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    snapshot = MwaaEnvironmentHook(aws_conn_id=emulator.conn_id).snapshot(PRIMARY)
    emulator.client("s3").put_object(
        Bucket=DR_BUCKET, Key=snapshot.key("mwaa-snapshots"), Body=snapshot.to_json().encode()
    )
    source = DatabaseSource()
    try:
        run_export(source, open_sink(f"s3://{DR_BUCKET}/airflow-metadata", aws_conn_id=emulator.conn_id))
    finally:
        source.close()


def _new_metadata_db() -> str:
    """An empty, migrated metadata database for the recreated environment (SQLite)."""
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

    target = IsolatedAirflow(Path(tempfile.mkdtemp(prefix="mwaaops-recovered-"))).migrate()
    return target.sql_alchemy_conn


def start_recovery_workflow(emulator: AwsEmulator, workflow: Path) -> dict[str, Any]:
    """Deploy the recovery state machine, start it, and return the message it waits on."""
    from airflow_provider_mwaaops.testing.task_tokens import ROLE_ARN, receive_task_token

    queue_url = emulator.client("sqs").create_queue(QueueName=RECOVERY_QUEUE)["QueueUrl"]
    sfn = emulator.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="mwaaops-recovery", definition=workflow.read_text(), roleArn=ROLE_ARN
    )["stateMachineArn"]
    sfn.start_execution(
        stateMachineArn=machine,
        name=f"recovery-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}",
        input=json.dumps(
            {
                "recovery_queue_url": queue_url,
                "primary_environment": PRIMARY,
                "secondary_environment": "mwaaops-secondary",
                "secondary_region": "us-west-2",
            }
        ),
    )
    return receive_task_token(emulator, queue_url)


def prepare_disaster(emulator: AwsEmulator, workflow: Path) -> dict[str, Any]:
    """The primary, its disaster, its backups and the waiting workflow; returns the recovery run's conf.

    The primary is also what ``example_mwaa_backup`` snapshots, so one call serves both examples.
    """
    create_primary(emulator)
    _disaster(emulator)
    _backups(emulator)
    message = start_recovery_workflow(emulator, workflow)
    return {**message, "target_sql_alchemy_url": _new_metadata_db()}


def prepare_mwaa_example(dag: Any, emulator: AwsEmulator) -> dict[str, Any] | None:
    """Build what an MWAA example needs before ``dag.test()``; returns the run conf (or None)."""
    if dag.dag_id == BACKUP_DAG_ID:
        create_primary(emulator)
        return None
    if dag.dag_id != RECOVERY_DAG_ID:
        return None
    return prepare_disaster(emulator, Path(dag.fileloc).with_name(WORKFLOW_FILE))


def prepare_mwaa_deployment(emulator: AwsEmulator, example_dags: Path) -> dict[str, dict[str, Any]]:
    """Both MWAA examples in one running deployment: dag_id -> the conf to trigger it with."""
    return {
        BACKUP_DAG_ID: {},
        RECOVERY_DAG_ID: prepare_disaster(emulator, example_dags / WORKFLOW_FILE),
    }


__all__ = ["prepare_disaster", "prepare_mwaa_deployment", "prepare_mwaa_example", "start_recovery_workflow"]
