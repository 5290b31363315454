"""TaskTokenReporter against a real waitForTaskToken state machine in the embedded Step Functions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from airflow_provider_mwaaops.aws.task_token import TaskTokenError, TaskTokenReporter

ROLE_ARN = "arn:aws:iam::123456789012:role/states"


def waiting_machine(aws: Any) -> tuple[str, str]:
    """A state machine whose only task waits for a callback; the token goes to an SQS queue."""
    queue_url = aws.client("sqs").create_queue(QueueName="restore-tokens")["QueueUrl"]
    definition = {
        "StartAt": "WaitForRestore",
        "States": {
            "WaitForRestore": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    arn = aws.client("stepfunctions").create_state_machine(
        name="dr-restore", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    return arn, queue_url


def start_and_get_token(aws: Any, machine: str, queue_url: str, name: str) -> tuple[str, str]:
    sfn, sqs = aws.client("stepfunctions"), aws.client("sqs")
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            return execution, json.loads(message["Body"])["token"]
    raise AssertionError("no task token arrived")


def callback_events(aws: Any, execution: str) -> list[str]:
    events = aws.client("stepfunctions").get_execution_history(executionArn=execution)["events"]
    return [e["type"] for e in events if e["type"] in ("TaskSucceeded", "TaskFailed")]


@pytest.fixture
def machine(aws_emulator):
    return waiting_machine(aws_emulator)


def test_success_is_sent_once_and_ends_the_waiting_task(aws_emulator, machine):
    execution, token = start_and_get_token(aws_emulator, *machine, name="restore-ok")
    reporter = TaskTokenReporter(token, client=aws_emulator.client("stepfunctions"))
    reporter.succeed({"changed_rows": 42, "tables": {"dag_run": {"inserted": 3}}})
    reporter.succeed({"changed_rows": 0})  # ignored: already answered
    reporter.fail("Late", "ignored too")
    described = aws_emulator.wait_for_execution(execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["changed_rows"] == 42
    assert callback_events(aws_emulator, execution) == ["TaskSucceeded"]
    assert reporter.sent == "success"


def test_failure_is_sent_once_with_error_and_cause(aws_emulator, machine):
    execution, token = start_and_get_token(aws_emulator, *machine, name="restore-bad")
    reporter = TaskTokenReporter(token, client=aws_emulator.client("stepfunctions"))
    reporter.fail("MetadataRestoreFailed", "checksum mismatch in xcom/part-00001.parquet" + "x" * 40000)
    reporter.succeed({"too": "late"})
    described = aws_emulator.wait_for_execution(execution)
    assert described["status"] == "FAILED"
    assert callback_events(aws_emulator, execution) == ["TaskFailed"]
    history = aws_emulator.client("stepfunctions").get_execution_history(executionArn=execution)["events"]
    failed = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed["error"] == "MetadataRestoreFailed"
    assert failed["cause"].startswith("checksum mismatch in xcom/part-00001.parquet")


def test_output_too_large_for_step_functions_is_summarised(aws_emulator, machine):
    execution, token = start_and_get_token(aws_emulator, *machine, name="restore-big")
    TaskTokenReporter(token, client=aws_emulator.client("stepfunctions")).succeed(
        {"tables": {"t": "x" * 300_000}, "changed_rows": 1}
    )
    output = json.loads(aws_emulator.wait_for_execution(execution)["output"])
    assert output == {"truncated": True, "keys": ["changed_rows", "tables"]}


def test_an_undeliverable_answer_raises_and_is_not_followed_by_another(aws_emulator):
    reporter = TaskTokenReporter("not-a-real-token", client=aws_emulator.client("stepfunctions"))
    with pytest.raises(TaskTokenError, match="could not send task success"):
        reporter.succeed({})
    reporter.fail("X", "y")  # the token is considered answered: no second call
    assert reporter.sent == "success"


def test_the_airflow_connection_is_used_when_no_client_is_given(aws_emulator, machine):
    execution, token = start_and_get_token(aws_emulator, *machine, name="restore-conn")
    TaskTokenReporter(token, aws_conn_id="aws_default").succeed({"ok": True})
    assert aws_emulator.wait_for_execution(execution)["status"] == "SUCCEEDED"


def test_empty_token_is_refused():
    with pytest.raises(ValueError, match="empty"):
        TaskTokenReporter("  ")
