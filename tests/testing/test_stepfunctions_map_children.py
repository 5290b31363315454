"""Distributed Map children, Map Run updates and the Map Run redrive limit in the embedded AWS."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/states"
BUCKET = "mwaaops-map-children"
KEYS = ["k0", "k1", "k2"]


def write(key_path: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": {"Bucket": BUCKET, "Key.$": key_path, "Body": "x"},
        "ResultPath": None,
        **extra,
    }


def read(key_path: str, **extra: Any) -> dict[str, Any]:
    """Fails with S3.NoSuchKeyException until the object exists."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObjectTagging",
        "Parameters": {"Bucket": BUCKET, "Key.$": key_path},
        "ResultSelector": {"tagged": True},
        "ResultPath": "$.read",
        **extra,
    }


#: A Parallel holding a Distributed Map whose iterations hold a Parallel: the export branch and
#: each iteration's write are side effects that must happen once.
NESTED = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "End": True,
            "Branches": [
                {
                    "StartAt": "Export",
                    "States": {"Export": write("States.Format('export/{}', 'all')", End=True)},
                },
                {
                    "StartAt": "Tables",
                    "States": {
                        "Tables": {
                            "Type": "Map",
                            "ItemsPath": "$.keys",
                            "ItemSelector": {"key.$": "$$.Map.Item.Value"},
                            "Label": "Tables",
                            "End": True,
                            "ItemProcessor": {
                                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                "StartAt": "Both",
                                "States": {
                                    "Both": {
                                        "Type": "Parallel",
                                        "End": True,
                                        "Branches": [
                                            {
                                                "StartAt": "Write",
                                                "States": {
                                                    "Write": write("States.Format('out/{}', $.key)", End=True)
                                                },
                                            },
                                            {
                                                # The write completes before the read can fail.
                                                "StartAt": "Settle",
                                                "States": {
                                                    "Settle": {"Type": "Wait", "Seconds": 1, "Next": "Read"},
                                                    "Read": read("States.Format('in/{}', $.key)", End=True),
                                                },
                                            },
                                        ],
                                    }
                                },
                            },
                        }
                    },
                },
            ],
        }
    },
}


def writes(s3: Any, key: str) -> int:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    return sum(1 for version in listed if version["Key"] == key)


@pytest.fixture
def s3(aws_emulator: Any) -> Any:
    client = aws_emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key in ("k0", "k2"):  # k1's input is missing: its iteration fails
        client.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    return client


@pytest.fixture
def sfn(aws_emulator: Any) -> Any:
    return aws_emulator.client("stepfunctions")


@pytest.fixture
def wait_for(aws_emulator: Any) -> Any:
    """DescribeExecution once the execution has left RUNNING."""
    return aws_emulator.wait_for_execution


def failed_nested_run(sfn: Any, wait_for: Any, through: str) -> tuple[str, str, str]:
    """(state machine ARN, execution ARN, Map Run ARN) of a nested run that failed at item k1."""
    created = sfn.create_state_machine(
        name="nested", definition=json.dumps(NESTED), roleArn=ROLE_ARN, publish=True
    )
    machine, version = created["stateMachineArn"], created["stateMachineVersionArn"]
    target = version
    if through == "alias":
        target = sfn.create_state_machine_alias(
            name="prod", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 100}]
        )["stateMachineAliasArn"]
    execution = sfn.start_execution(stateMachineArn=target, name="run", input=json.dumps({"keys": KEYS}))[
        "executionArn"
    ]
    failed = wait_for(execution)
    assert (failed["status"], failed["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    (map_run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    return machine, execution, map_run["mapRunArn"]


# -- children --------------------------------------------------------------------------------------
def test_list_executions_by_map_run_lists_its_children_with_their_status(sfn, s3, wait_for):
    _, execution, map_run = failed_nested_run(sfn, wait_for, "version")

    children = sfn.list_executions(mapRunArn=map_run)["executions"]
    assert len(children) == 3
    by_status = {c["status"]: c for c in children if c["status"] == "FAILED"}
    assert [c["status"] for c in children].count("SUCCEEDED") == 2
    failed = by_status["FAILED"]
    assert (failed["mapRunArn"], failed["itemCount"], failed["redriveCount"]) == (map_run, 1, 0)
    assert failed["stateMachineArn"].endswith(":stateMachine:nested/Tables")
    assert (
        failed["executionArn"]
        == f"{failed['stateMachineArn'].replace(':stateMachine:', ':execution:')}:" + (failed["name"])
    )
    only_failed = sfn.list_executions(mapRunArn=map_run, statusFilter="FAILED")["executions"]
    assert [c["executionArn"] for c in only_failed] == [failed["executionArn"]]

    described = sfn.describe_execution(executionArn=failed["executionArn"])
    assert described["error"].lower() == "s3.nosuchkeyexception"
    assert "does not exist" in described["cause"]
    assert json.loads(described["input"]) == {"key": "k1"}
    assert (described["mapRunArn"], described["redriveStatus"]) == (map_run, "REDRIVABLE_BY_MAP_RUN")
    events = sfn.get_execution_history(executionArn=failed["executionArn"])["events"]
    assert [events[0]["type"], events[-1]["type"]] == ["ExecutionStarted", "ExecutionFailed"]
    assert "TaskFailed" in {e["type"] for e in events}
    # Children are not executions of the state machine itself, and the parent history holds none of theirs.
    parent_events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    assert "TaskFailed" not in {e["type"] for e in parent_events}

    with pytest.raises(ClientError) as raised:
        sfn.list_executions(mapRunArn=map_run, stateMachineArn=failed["stateMachineArn"])
    assert raised.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize("through", ["alias", "version"])
def test_nested_run_through_alias_or_version_is_redriven_without_repeating_completed_states(
    sfn, s3, through, wait_for
):
    machine, execution, map_run = failed_nested_run(sfn, wait_for, through)
    failed_child = sfn.list_executions(mapRunArn=map_run, statusFilter="FAILED")["executions"][0]

    s3.put_object(Bucket=BUCKET, Key="in/k1", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(execution)

    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1)
    _, tables = json.loads(done["output"])
    assert [branch[1] for branch in tables] == [{"key": key, "read": {"tagged": True}} for key in KEYS]
    assert [e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]] == [
        execution
    ]
    assert writes(s3, "export/all") == 1  # the export branch completed in the first attempt
    assert all(writes(s3, f"out/{key}") == 1 for key in KEYS)  # k1's write completed too
    children = {c["executionArn"]: c for c in sfn.list_executions(mapRunArn=map_run)["executions"]}
    assert len(children) == 3  # the failed child was redriven, not replaced
    assert {c["status"] for c in children.values()} == {"SUCCEEDED"}
    assert children[failed_child["executionArn"]]["redriveCount"] == 1
    assert sum(c["redriveCount"] for c in children.values()) == 1
    child_events = sfn.get_execution_history(executionArn=failed_child["executionArn"])["events"]
    assert [e["type"] for e in child_events].count("ExecutionRedriven") == 1
    scheduled_writes = [e for e in child_events if e["type"] == "TaskScheduled"]
    assert [json.loads(e["taskScheduledEventDetails"]["parameters"])["Key"] for e in scheduled_writes] == [
        "out/k1",
        "in/k1",
        "in/k1",  # only the read ran again
    ]


# -- UpdateMapRun and the redrive limit ----------------------------------------------------------------
def test_update_map_run_changes_nothing_once_the_map_run_has_ended(sfn, s3, wait_for):
    _, execution, map_run = failed_nested_run(sfn, wait_for, "version")
    sfn.update_map_run(mapRunArn=map_run, toleratedFailureCount=5, maxConcurrency=1)

    described = sfn.describe_map_run(mapRunArn=map_run)
    assert (described["status"], described["toleratedFailureCount"], described["maxConcurrency"]) == (
        "FAILED",
        0,
        0,
    )
    sfn.redrive_execution(executionArn=execution)  # k1 still fails: nothing tolerates it
    assert wait_for(execution)["error"] == "States.ExceedToleratedFailureThreshold"


def test_update_map_run_while_it_runs_takes_effect(sfn, s3, wait_for):
    definition = json.loads(json.dumps(NESTED))
    tables = definition["States"]["Fan"]["Branches"][1]["States"]["Tables"]
    both = tables["ItemProcessor"]["States"]["Both"]
    tables["ItemProcessor"]["StartAt"] = "Settle"
    tables["ItemProcessor"]["States"]["Settle"] = {"Type": "Wait", "Seconds": 1, "Next": "Both"}
    both["End"] = True
    machine = sfn.create_state_machine(name="slow", definition=json.dumps(definition), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    execution = sfn.start_execution(stateMachineArn=machine, name="run", input=json.dumps({"keys": KEYS}))[
        "executionArn"
    ]
    deadline = time.monotonic() + 10
    while not sfn.list_map_runs(executionArn=execution)["mapRuns"]:
        assert time.monotonic() < deadline, "the Map Run never started"
        time.sleep(0.05)
    (map_run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    assert sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])["status"] == "RUNNING"
    sfn.update_map_run(mapRunArn=map_run["mapRunArn"], toleratedFailureCount=1)

    assert wait_for(execution)["status"] == "SUCCEEDED"  # k1 failed, and one failure is tolerated
    assert sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])["toleratedFailureCount"] == 1


def test_a_map_run_redriven_1000_times_fails_the_redrive_with_states_runtime(aws_emulator, sfn, s3, wait_for):
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _, execution, map_run = failed_nested_run(sfn, wait_for, "version")
    backend = stepfunctions_parser_backends["123456789012"]["us-east-1"]
    (record,) = [
        r
        for m in backend.state_machines
        for e in m.executions
        for r in e.exec_worker.env.map_run_record_pool_manager.get_all()
        if r.map_run_arn == map_run
    ]
    record._mwaaops_redrive_count = 1000  # as if redriven 1000 times already

    s3.put_object(Bucket=BUCKET, Key="in/k1", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    failed = wait_for(execution)

    assert (failed["status"], failed["error"], failed["redriveCount"]) == ("FAILED", "States.Runtime", 1)
    assert sfn.describe_map_run(mapRunArn=map_run)["redriveCount"] == 1000
    assert sfn.list_executions(mapRunArn=map_run, statusFilter="FAILED")["executions"][0]["redriveCount"] == 0


# -- the failure report ----------------------------------------------------------------------------
def test_failure_report_names_the_failed_childs_error(mwaaops_airflow, sfn, s3, wait_for):
    from airflow_provider_mwaaops.hooks.step_function import StepFunctionRedriveHook

    _, execution, map_run = failed_nested_run(sfn, wait_for, "version")
    failure = StepFunctionRedriveHook(aws_conn_id="aws_default").explain_failure(execution)

    (report,) = failure.map_runs
    assert report.map_run_arn == map_run
    assert (report.item_counts["failed"], report.item_counts["succeeded"]) == (1, 2)
    (child,) = report.failed_children
    assert "s3.nosuchkeyexception" in child.lower()
    assert "s3.nosuchkeyexception" in failure.describe().lower()
