"""The world the EMR examples expect, built on the embedded AWS for the demo and the tests.

``example_emr_steps_redrive`` needs a running cluster (with a LogUri bucket) whose ``transform``
step fails once, as a missing input table would on the first run; ``example_emr_serverless_spark``
needs a Spark application (left CREATED, so the operator starts it) whose job writes a few driver
lines. The examples read the resources' ids from Airflow Variables; :func:`prepare_emr_example`
returns them as ``AIRFLOW_VAR_*`` environment variables for the processes that run the DAG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

STEPS_DAG_ID = "example_emr_steps_redrive"
SERVERLESS_DAG_ID = "example_emr_serverless_spark"
CLUSTER_VARIABLE = "mwaaops_example_emr_cluster_id"
APPLICATION_VARIABLE = "mwaaops_example_emr_serverless_application_id"
LOG_BUCKET = "mwaaops-example-emr-logs"


def create_cluster(emulator: AwsEmulator) -> str:
    """A long-running cluster with its logs in S3; ``transform`` fails once (then succeeds)."""
    emulator.client("s3").create_bucket(Bucket=LOG_BUCKET)
    cluster_id = emulator.client("emr").run_job_flow(
        Name="mwaaops-example-etl",
        ReleaseLabel="emr-7.1.0",
        LogUri=f"s3://{LOG_BUCKET}/clusters/",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceCount": 3,
            "MasterInstanceType": "m5.xlarge",
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    emulator.emr.script_step(
        "transform*",
        outcome="FAILED",
        reason="Spark application failed",
        message="org.apache.spark.sql.AnalysisException: Table or view not found: staging.orders",
        stderr=["Exception in thread main: Table or view not found: staging.orders"],
        times=1,
    )
    return str(cluster_id)


def create_application(emulator: AwsEmulator) -> str:
    """A Spark application that is not started (the operator starts it) and a chatty driver."""
    application_id = emulator.client("emr-serverless").create_application(
        name="mwaaops-example-spark",
        releaseLabel="emr-7.1.0",
        type="SPARK",
        autoStartConfiguration={"enabled": False},
    )["applicationId"]
    emulator.emr.script_job_run(
        "daily-sales*",
        duration=1.5,
        log_interval=0.2,
        stdout=["Reading s3://mwaaops-example-sales/raw/", "Aggregated 1204 orders", "Wrote 17 partitions"],
        stderr=["WARN TaskSetManager: Stage 3 contains a task of very large size (1042 KiB)"],
    )
    return str(application_id)


def prepare_emr_example(dag_id: str, emulator: AwsEmulator) -> dict[str, str]:
    """Build what the EMR example ``dag_id`` needs; returns its ``AIRFLOW_VAR_*`` environment."""
    if dag_id == STEPS_DAG_ID:
        return {f"AIRFLOW_VAR_{CLUSTER_VARIABLE.upper()}": create_cluster(emulator)}
    if dag_id == SERVERLESS_DAG_ID:
        return {f"AIRFLOW_VAR_{APPLICATION_VARIABLE.upper()}": create_application(emulator)}
    return {}


__all__ = ["prepare_emr_example"]
