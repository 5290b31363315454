"""A Step Functions execution that waits for a task token, for testing callbacks against it.

``.waitForTaskToken`` states hand their token to something outside Step Functions; here an SQS
message carries it, as in the recovery workflow example. The execution really waits in the
emulator's engine and continues (or fails) when the token is answered.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

ROLE_ARN = "arn:aws:iam::123456789012:role/mwaaops-task-token-test"


@dataclass(frozen=True)
class WaitingExecution:
    """An execution parked on a ``.waitForTaskToken`` state, and the token that releases it."""

    execution_arn: str
    task_token: str


def waiting_state_machine(
    emulator: AwsEmulator, name: str = "mwaaops-waits-for-airflow", timeout_seconds: int | None = None
) -> tuple[str, str]:
    """A state machine whose one state waits for a callback (at most ``timeout_seconds``);
    returns (its ARN, the token queue URL)."""
    queue_url = emulator.client("sqs").create_queue(QueueName=f"{name}-tokens")["QueueUrl"]
    definition = {
        "StartAt": "WaitForAirflow",
        "States": {
            "WaitForAirflow": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"task_token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    if timeout_seconds is not None:
        definition["States"]["WaitForAirflow"]["TimeoutSeconds"] = timeout_seconds  # type: ignore[index]
    arn = emulator.client("stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    return arn, queue_url


def receive_task_token(emulator: AwsEmulator, queue_url: str, timeout: float = 15.0) -> dict[str, Any]:
    """The next message a ``.waitForTaskToken`` state sent to ``queue_url`` (its JSON body)."""
    sqs = emulator.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return dict(json.loads(message["Body"]))
    raise TimeoutError(f"no task token arrived on {queue_url} within {timeout}s")


def start_waiting_execution(
    emulator: AwsEmulator, name: str = "waiting", machine: tuple[str, str] | None = None
) -> WaitingExecution:
    """Start an execution of :func:`waiting_state_machine` and return it with its task token."""
    machine_arn, queue_url = machine or waiting_state_machine(emulator)
    execution_arn = emulator.client("stepfunctions").start_execution(
        stateMachineArn=machine_arn, name=name, input="{}"
    )["executionArn"]
    body = receive_task_token(emulator, queue_url)
    return WaitingExecution(execution_arn, str(body["task_token"]))


def forget_answers() -> int:
    """Delete the once-per-run records of task-token answers (``mwaaops_task_token_*`` Variables)
    from this process's metadata database, so that tests sharing it start clean; returns how many."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        return int(
            session.query(Variable)
            .filter(Variable.key.like("mwaaops_task_token_%"))
            .delete(synchronize_session=False)
        )


__all__ = [
    "WaitingExecution",
    "forget_answers",
    "receive_task_token",
    "start_waiting_execution",
    "waiting_state_machine",
]
