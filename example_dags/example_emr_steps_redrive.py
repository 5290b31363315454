"""
EMR steps extract -> transform -> load; ``transform`` fails, and the retry redrives from there.

The first try submits the three steps (each named after the task instance, so a retry can find
them: EMR has no idempotency token). ``transform`` fails (here: its input table is missing the
first time) and, with ``ActionOnFailure=CANCEL_AND_WAIT``, EMR cancels ``load``. The error carries
EMR's FailureDetails and the tail of the step's stderr from the cluster's LogUri. The retry finds
the steps by ListSteps: ``extract`` COMPLETED is kept, ``transform`` and ``load`` are submitted
again, in order. ``verify_no_step_completed_twice`` reads ListSteps to show it.

The cluster id comes from the Variable ``mwaaops_example_emr_cluster_id``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from airflow_provider_mwaaops.compat import DAG, task
from airflow_provider_mwaaops.operators.emr import EmrStepsOperator

CLUSTER_ID = "{{ var.value.mwaaops_example_emr_cluster_id }}"


def spark_step(name: str, script: str) -> dict:
    return {
        "Name": name,
        "ActionOnFailure": "CANCEL_AND_WAIT",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": ["spark-submit", "--deploy-mode", "cluster", f"s3://mwaaops-example-code/{script}"],
        },
    }


with DAG(
    "example_emr_steps_redrive",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "emr"],
    doc_md=__doc__,
) as dag:
    steps = EmrStepsOperator(
        task_id="etl_steps",
        job_flow_id=CLUSTER_ID,
        steps=[
            spark_step("extract", "extract.py"),
            spark_step("transform", "transform.py"),
            spark_step("load", "load.py"),
        ],
        waiter_delay=1,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )

    @task
    def verify_no_step_completed_twice(cluster_id: str, step_ids: list[str]) -> dict[str, int]:
        """Every step of this task instance COMPLETED exactly once (ListSteps, all pages)."""
        from airflow.providers.amazon.aws.hooks.emr import EmrHook

        client = EmrHook().conn
        first = client.describe_step(ClusterId=cluster_id, StepId=step_ids[0])["Step"]["Name"]
        mark = first.rsplit(" @", 1)[1].rsplit("#", 1)[0]  # this task instance's key
        completed: Counter[str] = Counter()
        submitted: Counter[str] = Counter()
        for page in client.get_paginator("list_steps").paginate(ClusterId=cluster_id):
            for step in page["Steps"]:
                name, _, step_mark = step["Name"].rpartition(" @")
                if step_mark.rsplit("#", 1)[0] != mark:
                    continue
                submitted[name] += 1
                if step["Status"]["State"] == "COMPLETED":
                    completed[name] += 1
        assert set(completed) == {"extract", "transform", "load"}, completed
        assert all(count == 1 for count in completed.values()), f"a step completed twice: {completed}"
        return dict(submitted)

    verify_no_step_completed_twice(CLUSTER_ID, steps.output)
