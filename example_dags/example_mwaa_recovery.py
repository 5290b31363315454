"""
Disaster recovery of an MWAA environment into a second Region, answered back to Step Functions.

1. ``primary_unhealthy``: waits (deferred) until the primary environment's scheduler stops
   heartbeating (CloudWatch ``AmazonMWAA`` / ``SchedulerHeartbeat``); "no data" is never taken for
   a dead scheduler;
2. ``recreate``: replays the newest snapshot of the primary (``example_mwaa_backup``) into the
   secondary Region with that Region's network, bucket and role, and waits until AVAILABLE (a
   retry attaches to the environment the first try created);
3. ``restore``: restores the newest metadata backup into the new environment's metadata database
   and re-enables the DAGs that were active (on MWAA 3.x use ``target="api"`` with
   ``mwaa_environment_name``: pools, variables, connections and DAG states);
4. ``answer_workflow``: answers the Step Functions task that started this run
   (``mwaa_recovery_workflow.asl.json``, a ``.waitForTaskToken`` state) with a run summary, or with
   the failed tasks; the DAG's failure callback does the same if the run dies earlier, and the
   two never answer twice;
5. ``workflow_continued``: shows that the workflow went on.

Everything comes from the run's conf (the workflow's message) with the defaults below as params.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow_provider_mwaaops.compat import DAG, task
from airflow_provider_mwaaops.notifications.task_token import TaskTokenNotifier
from airflow_provider_mwaaops.operators.metadata_restore import MetadataRestoreOperator
from airflow_provider_mwaaops.operators.mwaa import MwaaCreateEnvironmentFromSnapshotOperator
from airflow_provider_mwaaops.operators.task_token import TaskTokenOperator
from airflow_provider_mwaaops.sensors.mwaa import MwaaSchedulerHealthSensor

DR_BUCKET = "mwaaops-example-dr"
PARAMS = {
    "primary_environment": "mwaaops-primary",
    "primary_region": "us-east-1",
    "secondary_environment": "mwaaops-secondary",
    "secondary_region": "us-west-2",
    "snapshots": f"s3://{DR_BUCKET}/mwaa-snapshots/mwaaops-primary/",
    "backups": f"s3://{DR_BUCKET}/airflow-metadata",
    "network_configuration": {
        "SubnetIds": ["subnet-0west2a0000000001", "subnet-0west2b0000000002"],
        "SecurityGroupIds": ["sg-0west20000000001"],
    },
    "source_bucket_arn": "arn:aws:s3:::mwaaops-example-dags-us-west-2",
    "execution_role_arn": "arn:aws:iam::123456789012:role/mwaaops-example-mwaa-us-west-2",
    # The new environment's metadata database (self-managed or standby); on MWAA 3.x restore
    # through the REST API instead (see the module docstring).
    "target_sql_alchemy_url": "",
    "task_token": "",
    "execution_arn": "",
}
#: Seconds between status checks; an environment takes 20-30 minutes to create on AWS.
POLL_SECONDS = 15

with DAG(
    dag_id="example_mwaa_recovery",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=PARAMS,
    render_template_as_native_obj=True,
    on_failure_callback=TaskTokenNotifier(error="RecoveryFailed"),
    tags=["example", "mwaa", "disaster-recovery"],
    doc_md=__doc__,
) as dag:
    primary_unhealthy = MwaaSchedulerHealthSensor(
        task_id="primary_unhealthy",
        environment_name="{{ params.primary_environment }}",
        region_name="{{ params.primary_region }}",
        wait_for="unhealthy",
        window=timedelta(minutes=5),
        deferrable=True,
        poke_interval=60,
        timeout=3600,
    )

    recreate = MwaaCreateEnvironmentFromSnapshotOperator(
        task_id="recreate",
        snapshot="{{ params.snapshots }}",
        environment_name="{{ params.secondary_environment }}",
        region_name="{{ params.secondary_region }}",
        network_configuration="{{ params.network_configuration }}",  # type: ignore[arg-type]
        source_bucket_arn="{{ params.source_bucket_arn }}",
        execution_role_arn="{{ params.execution_role_arn }}",
        allow_missing_secrets=True,
        deferrable=True,
        waiter_delay=POLL_SECONDS,
        wait_timeout=timedelta(hours=1),
        retries=2,
        retry_delay=timedelta(seconds=30),
    )

    restore = MetadataRestoreOperator(
        task_id="restore",
        export_uri="{{ params.backups }}",
        target_sql_alchemy_url="{{ params.target_sql_alchemy_url }}",
        strict=True,
    )

    answer_workflow = TaskTokenOperator(
        task_id="answer_workflow",
        summary={
            "environment": "{{ ti.xcom_pull(task_ids='recreate') }}",
            "reactivated_dags": "{{ (ti.xcom_pull(task_ids='restore') or {}).get('reactivated_dags') }}",
        },
        error="RecoveryFailed",
    )

    @task
    def workflow_continued(**context) -> str:
        """The workflow's status once it got the answer (it waited for it until now)."""
        import time

        from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

        execution_arn = context["params"].get("execution_arn")
        if not execution_arn:
            return "no workflow waits for this run"
        sfn = StepFunctionHook().conn
        deadline = time.monotonic() + 60
        while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return f"workflow {execution_arn.rsplit(':', 1)[-1]}: {status}"

    primary_unhealthy >> recreate >> restore >> answer_workflow >> workflow_continued()


if __name__ == "__main__":
    dag.test()
