"""The cross-environment asset-events examples on the embedded AWS.

``example_asset_events_consumer`` waits for a message that another environment's listener
published (on Airflow 2.11 its first task is an SQS sensor). Run on its own with ``dag.test()`` it
would wait forever, so the demo and the example tests call :func:`prepare_example` first: it builds
what the two environments share (the SNS topic and the consumer's subscribed SQS queue) and runs
``example_asset_events_producer`` with the listener configured as the producer environment would
be, so that the consumer receives a real event from the real listener.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.testing.emulator import patched_environ

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

EXAMPLE_TOPIC_NAME = "mwaaops-example-asset-events"
EXAMPLE_QUEUE_NAME = "mwaaops-example-asset-events-consumer"  # QUEUE_URL of the consumer example
PRODUCER_DAG_ID = "example_asset_events_producer"
CONSUMER_DAG_ID = "example_asset_events_consumer"
PRODUCER_ENVIRONMENT = "producer-env"
PRODUCER_INCLUDE = "s3://mwaaops-example-lake/curated/*"


def create_example_targets(emulator: AwsEmulator) -> tuple[str, str]:
    """The producer's topic and the consumer's queue, subscribed with raw message delivery.

    Raw delivery puts the listener's JSON payload itself in the SQS message body (not wrapped in
    an SNS envelope), which is what the consumer example parses; the filter policy matches the
    message attributes the listener sets. Returns (topic ARN, queue URL).
    """
    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic_arn = sns.create_topic(Name=EXAMPLE_TOPIC_NAME)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=EXAMPLE_QUEUE_NAME)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        # Only changes start the consumer; the listener also publishes "created" events.
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"event_type": ["changed"]})},
    )
    return topic_arn, queue_url


def producer_listener_environ(topic_arn: str) -> dict[str, str]:
    """``[mwaaops]`` settings of the producer environment (as AIRFLOW__MWAAOPS__* variables)."""
    return {
        "AIRFLOW__MWAAOPS__ASSET_EVENTS_SNS_TOPIC_ARN": topic_arn,
        "AIRFLOW__MWAAOPS__ENVIRONMENT_NAME": PRODUCER_ENVIRONMENT,
        "AIRFLOW__MWAAOPS__ASSET_EVENTS_INCLUDE": PRODUCER_INCLUDE,
    }


def prepare_example(dag: Any, emulator: AwsEmulator) -> None:
    """Before running ``dag`` with ``dag.test()``: give the consumer example its producer's event.

    A no-op for every other DAG. The producer example is loaded from the consumer's folder and run
    with the listener configured; the call returns once the listener has published.
    """
    if dag.dag_id != CONSUMER_DAG_ID:
        return
    from airflow_provider_mwaaops.listeners.asset_events import asset_events_listener
    from airflow_provider_mwaaops.testing.dag_runner import load_dags, run_dag

    producer_file = Path(dag.fileloc).with_name(f"{PRODUCER_DAG_ID}.py")
    dags, errors = load_dags(str(producer_file))
    if errors or PRODUCER_DAG_ID not in dags:
        raise RuntimeError(f"cannot load {producer_file} for the consumer example: {errors}")
    topic_arn, _ = create_example_targets(emulator)
    with patched_environ(producer_listener_environ(topic_arn)):
        result = run_dag(dags[PRODUCER_DAG_ID])
        if not result.succeeded:
            raise RuntimeError(f"the producer example failed: {result}")
        asset_events_listener.publisher.flush(30)
