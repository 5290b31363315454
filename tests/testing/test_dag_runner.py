"""run_dag runs a DAG defined in a test module end to end, on both Airflow lines."""

from __future__ import annotations

import datetime

from airflow_provider_mwaaops.compat import DAG, task


def _dag(dag_id: str) -> DAG:
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:

        @task
        def echo_conf(**context):
            return context["dag_run"].conf["greeting"]

        @task
        def put_object(greeting: str):
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            S3Hook().load_string(greeting, key="greeting.txt", bucket_name="run-dag-test", replace=True)

        @task
        def explode():
            raise ValueError("boom")

        put_object(echo_conf()) >> explode()
    return dag


def test_run_dag_reports_run_and_task_states(dag_runner, aws_emulator):
    aws_emulator.client("s3").create_bucket(Bucket="run-dag-test")

    result = dag_runner(_dag("mwaaops_run_dag_states"), conf={"greeting": "hello"})

    assert result.state == "failed"
    assert not result.succeeded
    assert result.task_states == {"echo_conf": "success", "put_object": "success", "explode": "failed"}
    body = aws_emulator.client("s3").get_object(Bucket="run-dag-test", Key="greeting.txt")["Body"].read()
    assert body == b"hello"


def test_run_dag_twice_gives_two_runs(dag_runner, aws_emulator):
    aws_emulator.client("s3").create_bucket(Bucket="run-dag-test")
    dag = _dag("mwaaops_run_dag_twice")

    first = dag_runner(dag, conf={"greeting": "one"})
    second = dag_runner(dag, conf={"greeting": "two"})

    assert first.run_id != second.run_id
    assert second.task_states["put_object"] == "success"
