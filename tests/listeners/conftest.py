"""Targets for the asset events listener: an SNS topic and an EventBridge bus, each read back
through an SQS queue in the emulator (an SQS subscription, and a rule whose target is a queue)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

TOPIC_NAME = "airflow-asset-events"
BUS_NAME = "airflow-asset-events"


@dataclass
class Targets:
    topic_arn: str
    bus_name: str
    sns_queue_url: str
    bus_queue_url: str
    sqs: Any

    def environ(self) -> dict[str, str]:
        """The ``[mwaaops]`` settings that send the listener's events to both targets."""
        return {
            "AIRFLOW__MWAAOPS__ASSET_EVENTS_SNS_TOPIC_ARN": self.topic_arn,
            "AIRFLOW__MWAAOPS__ASSET_EVENTS_EVENT_BUS_NAME": self.bus_name,
            "AIRFLOW__MWAAOPS__ENVIRONMENT_NAME": "test-env",
        }

    def sns_messages(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        return receive_json(self.sqs, self.sns_queue_url, count, timeout)

    def bus_messages(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The ``detail`` of each EventBridge event delivered to the rule's queue."""
        events = receive_json(self.sqs, self.bus_queue_url, count, timeout)
        return [event["detail"] for event in events]


def receive_json(sqs: Any, queue_url: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Up to ``count`` messages' JSON bodies; returns early with what arrived when time is up."""
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Whatever is in the queue right now (one short poll)."""
    return receive_json(sqs, queue_url, count=10_000, timeout=1.5)


def make_targets(aws: Any, suffix: str = "") -> Targets:
    sns, sqs, events = aws.client("sns"), aws.client("sqs"), aws.client("events")
    topic_arn = sns.create_topic(Name=TOPIC_NAME + suffix)["TopicArn"]
    sns_queue_url = sqs.create_queue(QueueName=f"asset-events-sns{suffix}")["QueueUrl"]
    sns_queue_arn = sqs.get_queue_attributes(QueueUrl=sns_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=sns_queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    bus_name = BUS_NAME + suffix
    events.create_event_bus(Name=bus_name)
    bus_queue_url = sqs.create_queue(QueueName=f"asset-events-bus{suffix}")["QueueUrl"]
    bus_queue_arn = sqs.get_queue_attributes(QueueUrl=bus_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="asset-events-to-sqs",
        EventBusName=bus_name,
        EventPattern=json.dumps({"source": ["mwaaops.airflow"]}),
    )
    events.put_targets(
        Rule="asset-events-to-sqs", EventBusName=bus_name, Targets=[{"Id": "sqs", "Arn": bus_queue_arn}]
    )
    return Targets(topic_arn, bus_name, sns_queue_url, bus_queue_url, sqs)


@pytest.fixture
def targets(aws_emulator, monkeypatch) -> Targets:
    """Both targets created, and the listener configured (through the environment) to use them."""
    made = make_targets(aws_emulator)
    for key, value in made.environ().items():
        monkeypatch.setenv(key, value)
    return made


@pytest.fixture
def unique_uri() -> Callable[[str], str]:
    """Asset URIs never seen before, so that Airflow really *creates* the asset in each test."""
    run = uuid.uuid4().hex[:8]
    return lambda name: f"s3://lake-{run}/{name}"


@pytest.fixture
def registered_listener():
    """The listener instance Airflow loaded through the plugin entry point, drained after the test."""
    from airflow_provider_mwaaops.listeners.asset_events import asset_events_listener

    yield asset_events_listener
    if asset_events_listener._publisher is not None:
        asset_events_listener._publisher.flush(60)


class HangingEndpoint:
    """A TCP server on loopback that accepts connections and never answers a byte."""

    def __init__(self) -> None:
        import socket
        import threading

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.first_accept: Any = None
        self.accepted = 0
        self._held: list[Any] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from datetime import UTC, datetime

        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self.first_accept is None:
                self.first_accept = datetime.now(UTC)
            self.accepted += 1
            self._held.append(conn)  # kept open, never read from or written to

    def wait_for_accept(self, timeout: float) -> Any:
        """When the first connection arrived (waiting for it up to ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.first_accept is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.first_accept

    def connection_json(self) -> str:
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"region_name": "us-east-1", "endpoint_url": f"http://127.0.0.1:{self.port}"},
            }
        )

    def close(self) -> None:
        self._stopped = True
        self._sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def hanging_endpoint():
    endpoint = HangingEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def targets_named(aws_emulator) -> Callable[[str], Targets]:
    """``targets_named(suffix)``: both targets under names ending in ``suffix``, not configured here."""
    return lambda suffix: make_targets(aws_emulator, suffix)


def listener_environ(suffix: str, environment: str) -> dict[str, str]:
    """``[mwaaops]`` settings for another process, naming targets that ``make_targets`` creates."""
    topic_arn = f"arn:aws:sns:us-east-1:123456789012:{TOPIC_NAME}{suffix}"
    return {
        "AIRFLOW__MWAAOPS__ASSET_EVENTS_SNS_TOPIC_ARN": topic_arn,
        "AIRFLOW__MWAAOPS__ASSET_EVENTS_EVENT_BUS_NAME": BUS_NAME + suffix,
        "AIRFLOW__MWAAOPS__ENVIRONMENT_NAME": environment,
    }


@pytest.fixture(scope="session")
def listener_environ_for():
    return listener_environ
