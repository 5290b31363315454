"""
An ETL state machine fails part-way; the retry fixes the cause and redrives only what failed.

The state machine mirrors a common MWAA pipeline: a Parallel state exports a snapshot (branch 1)
while a Map starts one Glue job run per table (branch 2), then a final state publishes the report.
Glue allows 3 concurrent runs of the job but the Map starts 6, so three iterations fail with
Glue.ConcurrentRunsExceededException and the whole execution fails. The task's
``on_retry_callback`` raises the job's concurrency (the fix); the retry then *redrives* the
execution: only the three failed iterations run again, the export branch is not repeated, and the
report state runs. ``verify_redrive`` reads the execution history to show it. (If the export is
still in flight when the Map fails, Step Functions stops it and the redrive runs it again, as AWS
does: what never runs twice is a state that completed.)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow_provider_mwaaops.compat import DAG, Variable, task
from airflow_provider_mwaaops.operators.step_function import StepFunctionExecutionOperator

BUCKET = "mwaaops-example-etl"
GLUE_JOB = "mwaaops_example_export_table"
STATE_MACHINE = "mwaaops-example-etl"
TABLES = ["customers", "orders", "order_items", "products", "payments", "shipments"]
DEFINITION = {
    "Comment": "Export a snapshot and run one Glue job per table, then publish a report",
    "StartAt": "ExportAndLoad",
    "States": {
        "ExportAndLoad": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "ExportSnapshot",
                    "States": {
                        "ExportSnapshot": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
                            "Parameters": {
                                "Bucket": BUCKET,
                                "Key": "snapshot/export.json",
                                "Body.$": "States.JsonToString($)",
                            },
                            "ResultPath": None,
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "LoadTables",
                    "States": {
                        "LoadTables": {
                            "Type": "Map",
                            "ItemsPath": "$.tables",
                            "MaxConcurrency": 0,
                            "ItemProcessor": {
                                "ProcessorConfig": {"Mode": "INLINE"},
                                "StartAt": "StartGlueJob",
                                "States": {
                                    "StartGlueJob": {
                                        "Type": "Task",
                                        "Resource": "arn:aws:states:::aws-sdk:glue:startJobRun",
                                        "Parameters": {"JobName": GLUE_JOB, "Arguments": {"--table.$": "$"}},
                                        "End": True,
                                    }
                                },
                            },
                            "End": True,
                        }
                    },
                },
            ],
            "ResultPath": None,
            "Next": "PublishReport",
        },
        "PublishReport": {"Type": "Pass", "Result": {"report": "ready"}, "End": True},
    },
}


def _glue():
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(client_type="glue").conn


def _set_glue_concurrency(max_runs: int) -> None:
    glue = _glue()
    job = glue.get_job(JobName=GLUE_JOB)["Job"]
    glue.update_job(
        JobName=GLUE_JOB,
        JobUpdate={
            "Role": job["Role"],
            "Command": job["Command"],
            "ExecutionProperty": {"MaxConcurrentRuns": max_runs},
        },
    )


def raise_glue_concurrency(context) -> None:
    """The fix an on-call engineer would apply: room for every table the Map starts, twice over
    (runs of the failed attempt may still be finishing while the redrive starts new ones)."""
    _set_glue_concurrency(2 * len(TABLES))


with DAG(
    dag_id="example_step_functions_redrive",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "step-functions", "redrive"],
    doc_md=__doc__,
) as dag:

    @task
    def create_resources() -> str:
        """Idempotent setup: bucket, Glue job limited to 3 concurrent runs, state machine."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

        s3 = S3Hook()
        if not s3.check_for_bucket(BUCKET):
            s3.create_bucket(bucket_name=BUCKET)
            s3.conn.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        role_arn = Variable.get("mwaaops_example_role_arn", "arn:aws:iam::123456789012:role/etl")
        glue = _glue()
        if GLUE_JOB not in glue.list_jobs()["JobNames"]:
            glue.create_job(
                Name=GLUE_JOB,
                Role=role_arn,
                Command={"Name": "glueetl", "ScriptLocation": f"s3://{BUCKET}/scripts/export_table.py"},
                ExecutionProperty={"MaxConcurrentRuns": 3},
            )
        else:
            _set_glue_concurrency(3)
        sfn = StepFunctionHook().conn
        existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
        if STATE_MACHINE in existing:
            return existing[STATE_MACHINE]
        return sfn.create_state_machine(
            name=STATE_MACHINE, definition=json.dumps(DEFINITION), roleArn=role_arn
        )["stateMachineArn"]

    run_etl = StepFunctionExecutionOperator(
        task_id="run_etl",
        state_machine_arn=create_resources(),
        input={"tables": TABLES},
        retries=1,
        retry_delay=timedelta(seconds=1),
        on_retry_callback=raise_glue_concurrency,
        deferrable=True,
        # Not less: Airflow 3.3 can fail a deferred task whose trigger fires before the scheduler
        # has processed the deferring process's exit (apache/airflow#72716, open), which a
        # loaded scheduler can take seconds to do.
        waiter_delay=10,
    )

    @task
    def verify_redrive(execution_arn: str, redrive_count: str) -> dict:
        """Read the history: every state completed once; only failed Glue starts were repeated."""
        from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

        sfn = StepFunctionHook().conn
        events = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
        exited = [e["stateExitedEventDetails"]["name"] for e in events if "stateExitedEventDetails" in e]
        summary = {
            "status": sfn.describe_execution(executionArn=execution_arn)["status"],
            "redrive_count": int(redrive_count),
            "export_completed": exited.count("ExportSnapshot"),
            "glue_starts_attempted": entered.count("StartGlueJob"),
            "glue_starts_completed": exited.count("StartGlueJob"),
            "report_published": "PublishReport" in exited,
        }
        # A state that completed is never run again by a redrive: each completes exactly once.
        if summary["export_completed"] != 1 or summary["glue_starts_completed"] != len(TABLES):
            raise ValueError(f"a completed state ran again: {summary}")
        return summary

    run_etl >> verify_redrive(
        execution_arn="{{ ti.xcom_pull(task_ids='run_etl', key='execution_arn') }}",
        redrive_count="{{ ti.xcom_pull(task_ids='run_etl', key='redrive_count') }}",
    )


if __name__ == "__main__":
    dag.test()
