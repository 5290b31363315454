"""
A Step Functions state machine writes a report to S3; Airflow starts it, waits, and reads the result.

The state machine shapes a small order summary and stores it with the ``aws-sdk:s3:putObject``
integration; Airflow checks the object the execution wrote. On the embedded AWS every state
really runs (moto's Step Functions engine), so this DAG works offline with ``dag.test()``.

Set the Airflow Variable ``mwaaops_example_role_arn`` to run it against a real account.
"""

from __future__ import annotations

import json
from datetime import datetime

from airflow.providers.amazon.aws.operators.step_function import StepFunctionStartExecutionOperator
from airflow.providers.amazon.aws.sensors.step_function import StepFunctionExecutionSensor

from airflow_provider_mwaaops.compat import DAG, Variable, task

BUCKET = "mwaaops-example-reports"
REPORT_KEY = "reports/orders.json"
STATE_MACHINE_NAME = "mwaaops-example-report"
DEFINITION = {
    "Comment": "Summarise orders and store the summary in S3",
    "StartAt": "Summarise",
    "States": {
        "Summarise": {
            "Type": "Pass",
            "Parameters": {"orders.$": "$.orders", "count.$": "States.ArrayLength($.orders)"},
            "Next": "StoreReport",
        },
        "StoreReport": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Key": REPORT_KEY, "Body.$": "States.JsonToString($)"},
            "ResultPath": None,
            "End": True,
        },
    },
}

with DAG(
    dag_id="example_step_functions_s3_report",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "step-functions"],
    doc_md=__doc__,
) as dag:

    @task
    def create_state_machine() -> str:
        """Idempotent setup so the example runs on an empty account or emulator."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

        s3 = S3Hook()
        if not s3.check_for_bucket(BUCKET):
            s3.create_bucket(bucket_name=BUCKET)
        sfn = StepFunctionHook().conn
        existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
        if STATE_MACHINE_NAME in existing:
            return existing[STATE_MACHINE_NAME]
        role_arn = Variable.get("mwaaops_example_role_arn", "arn:aws:iam::123456789012:role/mwaaops-example")
        created = sfn.create_state_machine(
            name=STATE_MACHINE_NAME, definition=json.dumps(DEFINITION), roleArn=role_arn
        )
        return created["stateMachineArn"]

    state_machine_arn = create_state_machine()

    start = StepFunctionStartExecutionOperator(
        task_id="start_execution",
        state_machine_arn=state_machine_arn,
        # run_id exists for every run; logical-date fields (ds, ts_nodash) do not on Airflow 3 runs
        # triggered through the REST API or by an asset. ':' and '+' are not allowed in a name.
        name="report-{{ run_id | replace(':', '') | replace('+', '') }}",
        state_machine_input={"orders": [{"id": 1}, {"id": 2}, {"id": 3}]},
    )

    wait = StepFunctionExecutionSensor(
        task_id="wait_for_execution",
        execution_arn=start.output,
        poke_interval=1,
        timeout=120,
    )

    @task
    def read_report() -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        report = json.loads(S3Hook().read_key(REPORT_KEY, bucket_name=BUCKET))
        if report["count"] != len(report["orders"]):
            raise ValueError(f"inconsistent report: {report}")
        return {"orders_in_report": report["count"]}

    start >> wait >> read_report()


if __name__ == "__main__":
    dag.test()
