"""
An EMR Serverless Spark job whose driver output appears in the task log while it runs.

The application may be stopped (it is, in the demo): the operator starts it and waits until it is
STARTED before submitting. The run is named after the task instance and gets a client token per
try, so a retry after a lost worker re-attaches to the same run instead of starting a second one.
The run's monitoring configuration sends the driver's stdout and stderr to CloudWatch Logs; the
deferred wait forwards the new lines into the task log (``[driver stdout] ...``), once each, also
across triggerer restarts. Killing the task cancels the run.

The application id comes from the Variable ``mwaaops_example_emr_serverless_application_id``.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_mwaaops.compat import DAG
from airflow_provider_mwaaops.operators.emr import EmrServerlessJobOperator

with DAG(
    "example_emr_serverless_spark",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "emr"],
    doc_md=__doc__,
) as dag:
    EmrServerlessJobOperator(
        task_id="daily_sales",
        application_id="{{ var.value.mwaaops_example_emr_serverless_application_id }}",
        execution_role_arn="arn:aws:iam::123456789012:role/mwaaops-example-emr-serverless-job",
        name="daily-sales",
        job_driver={
            "sparkSubmit": {
                "entryPoint": "s3://mwaaops-example-code/daily_sales.py",
                "entryPointArguments": ["--run-id", "{{ run_id }}"],
                "sparkSubmitParameters": "--conf spark.executor.cores=2 --conf spark.executor.memory=4g",
            }
        },
        configuration_overrides={
            "monitoringConfiguration": {
                "cloudWatchLoggingConfiguration": {"enabled": True, "logStreamNamePrefix": "daily-sales"}
            }
        },
        deferrable=True,
        waiter_delay=1,
        retries=1,
    )
