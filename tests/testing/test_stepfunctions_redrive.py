"""RedriveExecution in the embedded AWS: real definitions rerun by moto's engine from the point of failure.

Side effects are observed in S3 with versioning on, so a Task that ran twice leaves two versions.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.testing.extensions import (
    stepfunctions_api,
    stepfunctions_map_runs,
    stepfunctions_redrive,
    stepfunctions_replay,
    stepfunctions_timeouts,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/states"
BUCKET = "mwaaops-redrive"
ACCOUNT, REGION = "123456789012", "us-east-1"


# -- helpers ---------------------------------------------------------------------------------------
def put_task(key_path: str | None = None, key: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Task that writes an S3 object: a side effect that must happen once."""
    params: dict[str, Any] = {"Bucket": BUCKET, "Body": "written"}
    params.update({"Key.$": key_path} if key_path else {"Key": key})
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": params,
        "ResultSelector": {"version.$": "$.VersionId"},
        **extra,
    }


def read_task(key_path: str | None = None, key: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Task that fails with s3.NoSuchKeyException until the object exists.

    getObjectTagging rather than getObject: moto's engine cannot copy getObject's streamed Body.
    """
    params: dict[str, Any] = {"Bucket": BUCKET}
    params.update({"Key.$": key_path} if key_path else {"Key": key})
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObjectTagging",
        "Parameters": params,
        "ResultSelector": {"read": True},
        **extra,
    }


def callback_task(queue_url: str, **extra: Any) -> dict[str, Any]:
    """A Task that waits until the test answers the task token it finds on an SQS queue."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
        **extra,
    }


def create_machine(sfn: Any, name: str, definition: dict[str, Any]) -> str:
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]


def start(sfn: Any, machine_arn: str, payload: dict[str, Any] | None = None, name: str = "run-1") -> str:
    return sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload or {}))[
        "executionArn"
    ]


def wait_for(sfn: Any, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until the execution leaves RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"{execution_arn} still RUNNING after {timeout}s")


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def state_of(event: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> str | None:
    """The name of the state an event belongs to: follow previousEventId back to its Entered event."""
    while event is not None:
        if "stateEnteredEventDetails" in event:
            return event["stateEnteredEventDetails"]["name"]
        event = by_id.get(event["previousEventId"])
    return None


def scheduled(events: list[dict[str, Any]], state_name: str) -> int:
    """How many times the Task state called its service, across the whole history."""
    by_id = {event["id"]: event for event in events}
    return sum(1 for e in events if e["type"] == "TaskScheduled" and state_of(e, by_id) == state_name)


def versions(s3: Any, key: str) -> int:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    return sum(1 for version in listed if version["Key"] == key)


def after_redrive(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the first redrive onwards, after its ExecutionRedriven event."""
    first = next(e["id"] for e in events if e["type"] == "ExecutionRedriven")
    return [e for e in events if e["id"] > first]


def token_from(sqs: Any, queue_url: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return json.loads(message["Body"])["token"]
    raise AssertionError("no task token arrived")


@pytest.fixture
def s3(aws_emulator: Any) -> Any:
    client = aws_emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def sfn(aws_emulator: Any) -> Any:
    return aws_emulator.client("stepfunctions")


@pytest.fixture
def queue_url(aws_emulator: Any) -> str:
    return aws_emulator.client("sqs").create_queue(QueueName="task-tokens")["QueueUrl"]


WRITE_THEN_READ = {
    "StartAt": "Write",
    "States": {
        "Write": put_task(key="written.txt", ResultPath="$.write", Next="Read"),
        "Read": read_task(key="input.txt", ResultPath="$.read", End=True),
    },
}


# -- the redrive ------------------------------------------------------------------------------------
def test_redrive_continues_from_the_failed_task_without_repeating_side_effects(s3, sfn):
    execution = start(sfn, create_machine(sfn, "write-then-read", WRITE_THEN_READ), {"day": "2026-11-01"})
    failed = wait_for(sfn, execution)
    assert failed["status"] == "FAILED"
    assert failed["error"].lower() == "s3.nosuchkeyexception"
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    before = history(sfn, execution)

    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"now it exists")
    redriven = sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    assert done["redriveCount"] == 1
    assert done["redriveDate"] == redriven["redriveDate"]
    assert (done["redriveStatus"], done["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is SUCCEEDED and cannot be redriven",
    )
    output = json.loads(done["output"])
    assert output["day"] == "2026-11-01"  # the same input
    assert output["write"]["version"]  # the first attempt's result, kept
    assert output["read"] == {"read": True}
    events = history(sfn, execution)
    assert events[: len(before)] == before  # the first attempt's history is kept as it was
    redrive_event = events[len(before)]
    assert redrive_event["type"] == "ExecutionRedriven"
    assert redrive_event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert redrive_event["id"] == before[-1]["id"] + 1
    assert redrive_event["previousEventId"] == before[-1]["id"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert after_redrive(events)[0]["type"] == "TaskStateEntered"
    assert events[-1]["type"] == "ExecutionSucceeded"
    assert scheduled(events, "Write") == 1
    assert scheduled(events, "Read") == 2
    assert versions(s3, "written.txt") == 1


def test_parallel_redrive_reruns_only_the_failed_branch(s3, sfn):
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {"StartAt": "WriteA", "States": {"WriteA": put_task(key="a.txt", End=True)}},
                    {
                        "StartAt": "WriteB",
                        "States": {
                            "WriteB": put_task(key="b.txt", Next="Settle"),
                            # Branch A is long done when branch B fails, so A is not cut short.
                            "Settle": {"Type": "Wait", "Seconds": 1, "Next": "ReadB"},
                            "ReadB": read_task(key="b-input.txt", End=True),
                        },
                    },
                ],
            }
        },
    }
    execution = start(sfn, create_machine(sfn, "parallel", definition))
    assert wait_for(sfn, execution)["status"] == "FAILED"

    s3.put_object(Bucket=BUCKET, Key="b-input.txt", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    branch_a, branch_b = json.loads(done["output"])
    assert branch_a["version"]  # branch A's recorded result
    assert branch_b == {"read": True}
    events = history(sfn, execution)
    rerun = after_redrive(events)
    rerun_states = {e["stateEnteredEventDetails"]["name"] for e in rerun if "stateEnteredEventDetails" in e}
    assert rerun_states == {"Fan", "ReadB"}  # Settle had finished: the branch resumes at ReadB
    assert (scheduled(events, "WriteA"), scheduled(events, "WriteB"), scheduled(events, "ReadB")) == (1, 1, 2)
    assert versions(s3, "a.txt") == versions(s3, "b.txt") == 1


ITEMS = [{"key": f"k{i}", "delay": i % 2} for i in range(4)]  # k1 and k3 wait, then fail


def _map_definition(mode: str, **map_fields: Any) -> dict[str, Any]:
    processor: dict[str, Any] = {
        "ProcessorConfig": {"Mode": mode},
        "StartAt": "Write",
        "States": {
            "Write": put_task(key_path="States.Format('out/{}', $.key)", ResultPath="$.write", Next="Settle"),
            "Settle": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Read"},
            "Read": read_task(
                key_path="States.Format('in/{}', $.key)",
                ResultSelector={"key.$": "$$.Map.Item.Value.key"},
                End=True,
            ),
        },
    }
    if mode == "DISTRIBUTED":
        processor["ProcessorConfig"]["ExecutionType"] = "STANDARD"
    return {
        "StartAt": "Items",
        "States": {
            "Items": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": processor,
                "End": True,
                **map_fields,
            }
        },
    }


def _map_iterations_started(events: list[dict[str, Any]]) -> list[int]:
    return sorted(
        e["mapIterationStartedEventDetails"]["index"] for e in events if e["type"] == "MapIterationStarted"
    )


def test_inline_map_redrive_reruns_only_the_unsuccessful_iterations(s3, sfn):
    for key in ("k0", "k2"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    execution = start(sfn, create_machine(sfn, "inline-map", _map_definition("INLINE")), {"items": ITEMS})
    assert wait_for(sfn, execution)["status"] == "FAILED"
    assert _map_iterations_started(history(sfn, execution)) == [0, 1, 2, 3]

    for key in ("k1", "k3"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == [{"key": f"k{i}"} for i in range(4)]
    events = history(sfn, execution)
    assert _map_iterations_started(after_redrive(events)) == [1, 3]
    assert scheduled(events, "Write") == 4  # once per item: k1 and k3 resume after their write
    assert scheduled(after_redrive(events), "Read") == 2
    assert all(versions(s3, f"out/k{i}") == 1 for i in range(4))


def test_distributed_map_run_fails_over_its_threshold_and_is_redriven_with_the_parent(s3, sfn):
    for key in ("k0", "k2"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    machine = create_machine(sfn, "distributed-map", _map_definition("DISTRIBUTED", MaxConcurrency=4))
    execution = start(sfn, machine, {"items": ITEMS})

    failed = wait_for(sfn, execution)
    assert (failed["status"], failed["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    (map_run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert described["status"] == "FAILED"
    assert (described["itemCounts"]["succeeded"], described["itemCounts"]["failed"]) == (2, 2)
    assert described["executionCounts"]["running"] == 0
    assert described["redriveCount"] == 0
    sfn.update_map_run(mapRunArn=map_run["mapRunArn"], maxConcurrency=1)  # ended: changes nothing

    for key in ("k1", "k3"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    redriven = sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == [{"key": f"k{i}"} for i in range(4)]
    (listed,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    assert listed["mapRunArn"] == map_run["mapRunArn"]  # the same Map Run, redriven
    described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert (described["status"], described["redriveCount"], described["maxConcurrency"]) == (
        "SUCCEEDED",
        1,
        4,
    )
    assert described["redriveDate"] >= redriven["redriveDate"] - datetime.timedelta(seconds=1)
    assert described["itemCounts"]["succeeded"] == described["itemCounts"]["total"] == 4
    assert described["itemCounts"]["failed"] == 0
    rerun = after_redrive(history(sfn, execution))
    map_run_events = [e for e in rerun if e["type"].startswith("MapRun")]
    assert [e["type"] for e in map_run_events] == ["MapRunRedriven", "MapRunSucceeded"]
    assert map_run_events[0]["mapRunRedrivenEventDetails"] == {
        "mapRunArn": map_run["mapRunArn"],
        "redriveCount": 1,
    }
    # Failed children resumed after their write: every item wrote exactly once.
    assert all(versions(s3, f"out/k{i}") == 1 for i in range(4))


def test_update_map_run_once_the_redriven_map_run_runs_lets_it_succeed(s3, sfn):
    for key in ("k0", "k2"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    definition = _map_definition("DISTRIBUTED", ToleratedFailureCount=1)
    # A failing read is retried after 2 s, in the redrive too (a completed Wait is not run again):
    # the redriven Map Run runs long enough to be updated.
    definition["States"]["Items"]["ItemProcessor"]["States"]["Read"]["Retry"] = [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 1}
    ]
    execution = start(sfn, create_machine(sfn, "tolerant-map", definition), {"items": ITEMS})
    assert wait_for(sfn, execution)["error"] == "States.ExceedToleratedFailureThreshold"  # 2 > 1
    (map_run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]

    sfn.redrive_execution(executionArn=execution)  # the items still fail (after a 2 s retry)
    deadline = time.monotonic() + 10
    while (described := sfn.describe_map_run(mapRunArn=map_run["mapRunArn"]))["redriveCount"] == 0:
        assert time.monotonic() < deadline, "the Map Run was not redriven"
        time.sleep(0.05)
    assert described["status"] == "RUNNING"
    sfn.update_map_run(mapRunArn=map_run["mapRunArn"], toleratedFailureCount=2)  # in progress: applies
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert (described["status"], described["toleratedFailureCount"], described["redriveCount"]) == (
        "SUCCEEDED",
        2,
        1,
    )
    assert (described["itemCounts"]["succeeded"], described["itemCounts"]["failed"]) == (2, 2)


# -- what cannot be redriven ------------------------------------------------------------------------
def _not_redrivable(sfn: Any, execution: str) -> str:
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=execution)
    assert raised.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    return raised.value.response["Error"]["Message"]


def test_running_and_succeeded_executions_are_not_redrivable(s3, sfn):
    waiting = create_machine(
        sfn, "waits", {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}
    )
    running = start(sfn, waiting)
    described = sfn.describe_execution(executionArn=running)
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is RUNNING and cannot be redriven",
    )
    assert _not_redrivable(sfn, running) == "Execution is RUNNING and cannot be redriven"
    sfn.stop_execution(executionArn=running)

    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    succeeded = start(sfn, create_machine(sfn, "succeeds", WRITE_THEN_READ))
    assert wait_for(sfn, succeeded)["status"] == "SUCCEEDED"
    assert _not_redrivable(sfn, succeeded) == "Execution is SUCCEEDED and cannot be redriven"
    assert sfn.describe_execution(executionArn=succeeded)["redriveCount"] == 0


def test_redrivable_period_is_14_days_from_the_stop_date(s3, sfn):
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    execution = start(sfn, create_machine(sfn, "old", WRITE_THEN_READ))
    assert wait_for(sfn, execution)["status"] == "FAILED"
    record = stepfunctions_parser_backends[ACCOUNT][REGION].describe_execution(execution)
    record.stop_date -= datetime.timedelta(days=15)

    described = sfn.describe_execution(executionArn=execution)
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution redrivable period exceeded",
    )
    assert _not_redrivable(sfn, execution) == "Execution redrivable period exceeded"


def test_redrive_after_a_definition_update_reruns_the_original_definition(s3, sfn):
    """AWS: redriven executions use the definition they started with; updates need a new execution."""
    machine = create_machine(sfn, "updated", WRITE_THEN_READ)
    execution = start(sfn, machine)
    assert wait_for(sfn, execution)["status"] == "FAILED"
    fixed = {
        **WRITE_THEN_READ,
        "States": {**WRITE_THEN_READ["States"], "Read": read_task(key="other.txt", End=True)},
    }
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(fixed))
    s3.put_object(Bucket=BUCKET, Key="other.txt", Body=b"x")
    assert sfn.describe_execution(executionArn=execution)["redriveStatus"] == "REDRIVABLE"

    sfn.redrive_execution(executionArn=execution)
    still_failed = wait_for(sfn, execution)

    assert still_failed["status"] == "FAILED"  # it read input.txt again, as originally defined
    assert still_failed["redriveCount"] == 1
    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    assert wait_for(sfn, execution)["status"] == "SUCCEEDED"
    assert scheduled(history(sfn, execution), "Write") == 1


def test_client_token_makes_a_repeated_redrive_idempotent(s3, sfn):
    execution = start(sfn, create_machine(sfn, "idempotent", WRITE_THEN_READ))
    wait_for(sfn, execution)

    first = sfn.redrive_execution(executionArn=execution, clientToken="retry-1")
    again = sfn.redrive_execution(executionArn=execution, clientToken="retry-1")
    assert again["redriveDate"] == first["redriveDate"]
    assert wait_for(sfn, execution)["status"] == "FAILED"  # input.txt still missing
    again_later = sfn.redrive_execution(executionArn=execution, clientToken="retry-1")
    assert again_later["redriveDate"] == first["redriveDate"]  # the token still answers; nothing started
    events = history(sfn, execution)
    assert [e["executionRedrivenEventDetails"] for e in events if e["type"] == "ExecutionRedriven"] == [
        {"redriveCount": 1}
    ]

    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    second = sfn.redrive_execution(executionArn=execution, clientToken="retry-2")
    assert second["redriveDate"] > first["redriveDate"]
    done = wait_for(sfn, execution)
    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 2)
    assert scheduled(history(sfn, execution), "Write") == 1


def test_list_executions_filters_on_redrive(s3, sfn):
    machine = create_machine(sfn, "listed", WRITE_THEN_READ)
    redriven, untouched = start(sfn, machine, name="redriven"), start(sfn, machine, name="untouched")
    wait_for(sfn, redriven), wait_for(sfn, untouched)
    sfn.redrive_execution(executionArn=redriven)
    wait_for(sfn, redriven)

    listed = sfn.list_executions(stateMachineArn=machine, redriveFilter="REDRIVEN")["executions"]
    assert [(e["name"], e["redriveCount"], "redriveDate" in e) for e in listed] == [("redriven", 1, True)]
    listed = sfn.list_executions(stateMachineArn=machine, redriveFilter="NOT_REDRIVEN")["executions"]
    assert [(e["name"], e["redriveCount"]) for e in listed] == [("untouched", 0)]
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 2


# -- aborted and timed out executions ---------------------------------------------------------------
def _write_then_wait(queue_url: str, **machine_fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Write",
        "States": {
            "Write": put_task(key="written.txt", ResultPath="$.write", Next="Wait"),
            "Wait": callback_task(queue_url, ResultPath="$.answer", End=True),
        },
        **machine_fields,
    }


def test_aborted_execution_is_redriven(s3, sfn):
    definition = {
        "StartAt": "Write",
        "States": {
            "Write": put_task(key="written.txt", ResultPath="$.write", Next="Settle"),
            "Settle": {"Type": "Wait", "SecondsPath": "$.settle", "Next": "Read"},
            "Read": read_task(key="input.txt", ResultPath="$.read", End=True),
        },
    }
    execution = start(sfn, create_machine(sfn, "aborted", definition), {"settle": 2})
    deadline = time.monotonic() + 10
    while "WaitStateEntered" not in [e["type"] for e in history(sfn, execution)]:
        assert time.monotonic() < deadline, "the execution never reached its Wait state"
        time.sleep(0.05)
    sfn.stop_execution(executionArn=execution)
    aborted = wait_for(sfn, execution)
    assert (aborted["status"], aborted["redriveStatus"]) == ("ABORTED", "REDRIVABLE")

    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    events = history(sfn, execution)
    types = [e["type"] for e in events]
    assert types.index("ExecutionAborted") < types.index("ExecutionRedriven")
    rerun = after_redrive(events)
    assert [e["stateEnteredEventDetails"]["name"] for e in rerun if "stateEnteredEventDetails" in e] == [
        "Settle",  # interrupted by the abort: it runs again
        "Read",
    ]
    assert scheduled(events, "Write") == 1
    assert versions(s3, "written.txt") == 1


def test_execution_timeout_ends_timed_out_and_is_redriven_with_a_fresh_timeout(
    aws_emulator, s3, sfn, queue_url
):
    sqs = aws_emulator.client("sqs")
    execution = start(sfn, create_machine(sfn, "times-out", _write_then_wait(queue_url, TimeoutSeconds=2)))
    token_from(sqs, queue_url)  # nobody answers: the state machine's TimeoutSeconds ends it

    timed_out = wait_for(sfn, execution)
    assert timed_out["status"] == "TIMED_OUT"
    assert history(sfn, execution)[-1]["type"] == "ExecutionTimedOut"  # although the Task still waits
    assert timed_out["stopDate"] >= timed_out["startDate"]
    assert timed_out["redriveStatus"] == "REDRIVABLE"

    sfn.redrive_execution(executionArn=execution)
    sfn.send_task_success(taskToken=token_from(sqs, queue_url), output="{}")
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    types = [e["type"] for e in history(sfn, execution)]
    assert types.count("ExecutionTimedOut") == 1
    assert types.index("ExecutionTimedOut") < types.index("ExecutionRedriven")
    assert scheduled(history(sfn, execution), "Write") == 1


def test_task_timeout_fails_with_states_timeout_and_the_task_reruns_on_redrive(
    aws_emulator, s3, sfn, queue_url
):
    sqs = aws_emulator.client("sqs")
    definition = _write_then_wait(queue_url)
    definition["States"]["Wait"]["TimeoutSeconds"] = 2
    execution = start(sfn, create_machine(sfn, "task-timeout", definition))
    token_from(sqs, queue_url)

    failed = wait_for(sfn, execution)
    assert (failed["status"], failed["error"]) == ("FAILED", "States.Timeout")
    assert "TaskTimedOut" in [e["type"] for e in history(sfn, execution)]

    sfn.redrive_execution(executionArn=execution)
    sfn.send_task_success(taskToken=token_from(sqs, queue_url), output="{}")
    assert wait_for(sfn, execution)["status"] == "SUCCEEDED"
    events = history(sfn, execution)
    assert (scheduled(events, "Write"), scheduled(events, "Wait")) == (1, 2)


def test_redrive_follows_the_recorded_path_through_passes_and_choices(s3, sfn):
    definition = {
        "StartAt": "Setup",
        "States": {
            "Setup": {
                "Type": "Pass",
                "Parameters": {"target.$": "States.Format('in/{}', $.name)"},
                "ResultPath": "$.setup",
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.mode", "StringEquals": "copy", "Next": "Write"}],
                "Default": "Nothing",
            },
            "Nothing": {"Type": "Succeed"},
            "Write": put_task(key="written.txt", ResultPath="$.write", Next="Read"),
            "Read": read_task(key_path="$.setup.target", ResultPath="$.read", End=True),
        },
    }
    execution = start(sfn, create_machine(sfn, "choices", definition), {"name": "data.csv", "mode": "copy"})
    assert wait_for(sfn, execution)["status"] == "FAILED"

    s3.put_object(Bucket=BUCKET, Key="in/data.csv", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    output = json.loads(done["output"])
    assert (output["setup"], output["read"]) == ({"target": "in/data.csv"}, {"read": True})
    rerun = after_redrive(history(sfn, execution))
    assert [e["stateEnteredEventDetails"]["name"] for e in rerun if "stateEnteredEventDetails" in e] == [
        "Read"
    ]


def test_redrive_skips_every_completed_pass_of_a_loop(s3, sfn):
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": {"i": 0}, "ResultPath": "$.counter", "Next": "Write"},
            "Write": put_task(
                key_path="States.Format('out/{}', $.counter.i)", ResultPath=None, Next="Increment"
            ),
            "Increment": {
                "Type": "Pass",
                "Parameters": {"i.$": "States.MathAdd($.counter.i, 1)"},
                "ResultPath": "$.counter",
                "Next": "Again",
            },
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.counter.i", "NumericLessThan": 3, "Next": "Write"}],
                "Default": "Read",
            },
            "Read": read_task(key="input.txt", ResultPath="$.read", End=True),
        },
    }
    execution = start(sfn, create_machine(sfn, "loop", definition))
    assert wait_for(sfn, execution)["status"] == "FAILED"

    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(sfn, execution)

    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["counter"] == {"i": 3}
    events = history(sfn, execution)
    assert scheduled(events, "Write") == 3  # three passes through the loop, none of them repeated
    assert [versions(s3, f"out/{i}") for i in range(3)] == [1, 1, 1]


def test_installing_the_extensions_again_changes_nothing(aws_emulator):
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    from moto.stepfunctions.responses import StepFunctionResponse

    patched = (StepFunctionResponse.describe_execution, CommonStateField._eval_body)
    for module in (
        stepfunctions_replay,
        stepfunctions_map_runs,
        stepfunctions_timeouts,
        stepfunctions_redrive,
        stepfunctions_api,
    ):
        module.install()
    assert (StepFunctionResponse.describe_execution, CommonStateField._eval_body) == patched
