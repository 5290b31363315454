"""An SNS topic with an SQS queue subscribed to it on the embedded AWS: what subscribers receive."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Received:
    """One SNS delivery as an SQS subscriber sees it (non-raw delivery: the SNS envelope)."""

    subject: str | None
    attributes: dict[str, str]
    body: str
    sqs_attributes: dict[str, str] = field(default_factory=dict)

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)


class SnsInbox:
    """A topic and the queue subscribed to it; ``drain()`` returns everything delivered so far."""

    def __init__(self, emulator: Any, name: str, fifo: bool = False, filter_policy: dict | None = None):
        self.sns = emulator.client("sns")
        self.sqs = emulator.client("sqs")
        suffix = ".fifo" if fifo else ""
        topic_attributes = {"FifoTopic": "true"} if fifo else {}
        topic = self.sns.create_topic(Name=f"{name}{suffix}", Attributes=topic_attributes)
        self.topic_arn = topic["TopicArn"]
        queue_attributes = {"FifoQueue": "true"} if fifo else {}
        queue = self.sqs.create_queue(QueueName=f"{name}-inbox{suffix}", Attributes=queue_attributes)
        self.queue_url = queue["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        subscription_attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=subscription_attributes
        )

    def drain(self) -> list[Received]:
        received: list[Received] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                envelope = json.loads(message["Body"])
                received.append(
                    Received(
                        subject=envelope.get("Subject"),
                        attributes={k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
                        body=envelope["Message"],
                        sqs_attributes=message.get("Attributes", {}),
                    )
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def sns_inbox(aws_emulator):
    """Factory: ``sns_inbox("name", fifo=False, filter_policy=None)`` -> :class:`SnsInbox`."""

    def make(name: str = "oncall", **kwargs: Any) -> SnsInbox:
        return SnsInbox(aws_emulator, name, **kwargs)

    return make
