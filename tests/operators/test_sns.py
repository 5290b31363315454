"""SnsPublishResultOperator under dag.test(): an upstream result published, read back from SQS."""

from __future__ import annotations

import datetime
import json

import pytest

from airflow_provider_mwaaops.compat import DAG, task
from airflow_provider_mwaaops.notifications.message import SNS_MAX_MESSAGE_BYTES
from airflow_provider_mwaaops.operators.sns import SnsPublishResultOperator


@pytest.fixture
def topic_with_queue(aws_emulator):
    """(topic ARN, function returning the SNS envelopes the subscribed queue received)."""

    def make(name: str, fifo: bool = False):
        sns, sqs = aws_emulator.client("sns"), aws_emulator.client("sqs")
        suffix = ".fifo" if fifo else ""
        topic = sns.create_topic(Name=name + suffix, Attributes={"FifoTopic": "true"} if fifo else {})
        queue_url = sqs.create_queue(
            QueueName=f"{name}-q{suffix}", Attributes={"FifoQueue": "true"} if fifo else {}
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=arn)

        def received():
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
            return [(json.loads(m["Body"]), m["Attributes"]) for m in got.get("Messages", [])]

        return topic["TopicArn"], received

    return make


def result_dag(dag_id: str, rows: list, **operator_kwargs) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:

        @task
        def query() -> list:
            return rows

        SnsPublishResultOperator(task_id="publish", result=query(), **operator_kwargs)
    return dag


def test_publishes_the_upstream_result_with_templated_topic(dag_runner, topic_with_queue, monkeypatch):
    topic_arn, received = topic_with_queue("results")
    monkeypatch.setenv("AIRFLOW_VAR_TARGET_SNS_ARN", topic_arn)
    monkeypatch.setenv("AIRFLOW_VAR_SNS_REGION", "us-east-1")
    rows = [{"region": "EU", "orders": 3}, {"region": "US", "orders": 5}]
    dag = result_dag(
        "sns_result",
        rows,
        target_arn="{{ var.value.target_sns_arn }}",
        aws_conn_id="{{ 'aws_default' }}",  # connection and region are templated too
        region_name="{{ var.value.sns_region }}",
        message="Orders per region for {{ ds }}",
        message_attributes={"report": "orders"},
    )
    result = dag_runner(dag)
    assert result.succeeded, result
    ((envelope, _),) = received()
    document = json.loads(envelope["Message"])
    assert document["result"] == rows
    assert document["task_id"] == "publish"
    assert document["state"] == "result"
    assert document["run_id"] == result.run_id
    assert document["body"].startswith("Orders per region for 20")
    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attributes["state"] == "result"
    assert attributes["report"] == "orders"
    assert envelope["Subject"] == "Airflow result: sns_result.publish"


def test_large_result_is_cut_to_fit_and_fifo_ids_are_set(dag_runner, topic_with_queue):
    topic_arn, received = topic_with_queue("big-results", fifo=True)
    rows = [{"id": i, "payload": "p" * 100} for i in range(5000)]  # ~600 KB as JSON
    result = dag_runner(result_dag("sns_big_result", rows, target_arn=topic_arn))
    assert result.succeeded, result
    ((envelope, sqs_attributes),) = received()
    assert len(envelope["Message"].encode()) < SNS_MAX_MESSAGE_BYTES
    document = json.loads(envelope["Message"])
    assert isinstance(document["result"], str)
    assert "characters trimmed" in document["result"]
    assert sqs_attributes["MessageGroupId"] == "sns_big_result"
    assert sqs_attributes["MessageDeduplicationId"]


def test_publish_error_fails_the_task(dag_runner):
    dag = result_dag("sns_result_missing_topic", [1], target_arn="arn:aws:sns:us-east-1:123456789012:missing")
    result = dag_runner(dag)
    assert result.task_states["publish"] == "failed"
