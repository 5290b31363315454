"""StepFunctionExecutionOperator under dag.test(), against moto's executing Step Functions engine."""

from __future__ import annotations

import datetime
import json

import pytest

from airflow_provider_mwaaops.compat import DAG
from airflow_provider_mwaaops.operators.step_function import (
    StepFunctionExecutionOperator,
    execution_name_for,
    serialize_input,
)

ROLE_ARN = "arn:aws:iam::123456789012:role/states"
BUCKET = "sfn-operator-tests"

# Writes a marker (a side effect we can count through S3 object versions), then reads an object
# that a test may withhold to make the execution fail at the second state.
WRITE_THEN_READ = {
    "StartAt": "WriteMarker",
    "States": {
        "WriteMarker": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Key": "marker.txt", "Body.$": "$.value"},
            "ResultPath": None,
            "Next": "ReadConfig",
        },
        "ReadConfig": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:headObject",
            "Parameters": {"Bucket": BUCKET, "Key": "config.json"},
            "ResultSelector": {"config_bytes.$": "$.ContentLength"},
            "End": True,
        },
    },
}


@pytest.fixture
def s3(aws_emulator):
    client = aws_emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def sfn(aws_emulator):
    return aws_emulator.client("stepfunctions")


@pytest.fixture
def machine_arn(sfn, s3):
    return sfn.create_state_machine(
        name="write-then-read", definition=json.dumps(WRITE_THEN_READ), roleArn=ROLE_ARN
    )["stateMachineArn"]


def marker_writes(s3) -> int:
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="marker.txt").get("Versions", [])
    return len(versions)


def make_dag(dag_id: str, **operator_kwargs) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        StepFunctionExecutionOperator(
            task_id="run_machine", waiter_delay=0.2, input={"value": "v1"}, **operator_kwargs
        )
    return dag


# -- pure helpers -----------------------------------------------------------------------------
def test_execution_name_is_deterministic_valid_and_collision_safe():
    name = execution_name_for("dag", "task", "manual__2026-11-23T15:16:34.788110+00:00", -1)
    assert name == execution_name_for("dag", "task", "manual__2026-11-23T15:16:34.788110+00:00", -1)
    assert len(name) <= 80
    assert all(c.isalnum() or c in "_.-" for c in name)
    # Sanitising maps ':' and '_' alike; the hash keeps them apart.
    assert execution_name_for("d", "t", "a:b") != execution_name_for("d", "t", "a_b")
    assert execution_name_for("d", "t", "r", 0) != execution_name_for("d", "t", "r", 1)
    assert len(execution_name_for("d" * 250, "t" * 250, "r" * 250, 12345)) == 80


def test_serialize_input_rejects_what_step_functions_would():
    assert serialize_input(None) == "{}"
    assert json.loads(serialize_input({"a": [1, 2]})) == {"a": [1, 2]}
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        serialize_input({"when": datetime.datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match="non-JSON string"):
        serialize_input("{not json")
    with pytest.raises(ValueError, match="at most 262144 bytes"):
        serialize_input({"blob": "x" * 300_000})


def test_operator_rejects_bad_settings_at_parse_time():
    with pytest.raises(ValueError, match="if_not_redrivable"):
        StepFunctionExecutionOperator(task_id="x", state_machine_arn="a", if_not_redrivable="maybe")
    with pytest.raises(ValueError, match="waiter_delay"):
        StepFunctionExecutionOperator(task_id="x", state_machine_arn="a", waiter_delay=0)


# -- end to end ---------------------------------------------------------------------------------
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_first_try_succeeds_and_pushes_output(dag_runner, s3, sfn, machine_arn, deferrable):
    s3.put_object(Bucket=BUCKET, Key="config.json", Body=b'{"ok": true}')
    dag = make_dag(f"sfn_first_try_{deferrable}", state_machine_arn=machine_arn, deferrable=deferrable)

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    assert [e["status"] for e in executions] == ["SUCCEEDED"]
    assert marker_writes(s3) == 1


def test_bad_input_fails_before_any_aws_call(dag_runner, sfn, machine_arn):
    dag = make_dag("sfn_bad_arn", state_machine_arn="arn:aws:states:us-east-1:123:notAMachine:x")

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "failed"}
    assert sfn.list_executions(stateMachineArn=machine_arn)["executions"] == []


def test_retry_after_worker_crash_attaches_to_the_running_execution(
    dag_runner, s3, sfn, machine_arn, monkeypatch
):
    """The first try dies right after StartExecution; the retry finds that execution, starts none."""
    s3.put_object(Bucket=BUCKET, Key="config.json", Body=b"{}")
    real_defer = StepFunctionExecutionOperator.defer
    calls = []

    def die_once(self, **kwargs):
        calls.append(self.execution_arn)
        if len(calls) == 1:
            raise RuntimeError("worker died after StartExecution")
        return real_defer(self, **kwargs)

    monkeypatch.setattr(StepFunctionExecutionOperator, "defer", die_once)
    dag = make_dag(
        "sfn_worker_crash",
        state_machine_arn=machine_arn,
        deferrable=True,
        retries=1,
        retry_delay=datetime.timedelta(0),
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    assert len(calls) == 2
    assert calls[0] == calls[1]
    assert len(sfn.list_executions(stateMachineArn=machine_arn)["executions"]) == 1
    assert marker_writes(s3) == 1


def test_succeeded_execution_is_not_run_again(dag_runner, s3, sfn, machine_arn, monkeypatch):
    """A try whose execution already SUCCEEDED (e.g. worker lost after the end) returns its output."""
    s3.put_object(Bucket=BUCKET, Key="config.json", Body=b'{"n": 1}')
    real_complete = StepFunctionExecutionOperator.execute_complete
    calls = []

    def lose_result_once(self, context, event=None):
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("worker lost before recording success")
        return real_complete(self, context, event)

    monkeypatch.setattr(StepFunctionExecutionOperator, "execute_complete", lose_result_once)
    dag = make_dag(
        "sfn_no_rerun", state_machine_arn=machine_arn, retries=1, retry_delay=datetime.timedelta(0)
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    assert len(sfn.list_executions(stateMachineArn=machine_arn)["executions"]) == 1
    assert marker_writes(s3) == 1


def test_failure_names_the_state_error_and_cause(dag_runner, s3, sfn, machine_arn):
    from airflow_provider_mwaaops.hooks.step_function import StepFunctionRedriveHook

    dag = make_dag("sfn_explains_failure", state_machine_arn=machine_arn)

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "failed"}
    [execution] = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    assert execution["status"] == "FAILED"
    failure = StepFunctionRedriveHook().explain_failure(execution["executionArn"])
    assert failure.state_name == "ReadConfig"
    assert failure.error
    assert failure.error.lower().startswith("s3.")
    assert failure.cause
    assert "FAILED in state 'ReadConfig'" in failure.describe()


def test_sync_on_kill_stops_the_execution(aws_emulator, sfn, machine_arn):
    waits = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    arn = sfn.create_state_machine(name="waits", definition=json.dumps(waits), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    operator = StepFunctionExecutionOperator(task_id="k", state_machine_arn=arn)
    operator.execution_arn = operator.hook.start(arn, "to-be-killed", "{}")

    operator.on_kill()

    assert aws_emulator.wait_for_execution(operator.execution_arn, timeout=10)["status"] == "ABORTED"


# -- retries that redrive -------------------------------------------------------------------------
def _history(sfn, execution_arn: str) -> list[dict]:
    events: list[dict] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def _entered(events: list[dict], state: str) -> int:
    return sum(1 for e in events if e.get("stateEnteredEventDetails", {}).get("name") == state)


def _xcom(result, key: str):
    from airflow_provider_mwaaops.testing.dag_runner import task_return_values

    return task_return_values(result.dag_id, result.run_id, key=key)["run_machine"]


def _provide_config(context):
    """The fix an engineer applies between tries: the missing object appears."""
    import boto3

    boto3.client("s3").put_object(Bucket=BUCKET, Key="config.json", Body=b'{"fixed": true}')


def _age_executions(context):
    """Make the failed executions older than the 14-day redrive window (and provide the fix)."""
    import boto3
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _provide_config(context)
    backend = stepfunctions_parser_backends["123456789012"]["us-east-1"]
    sfn = boto3.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        for listed in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            record = backend.describe_execution(listed["executionArn"])
            if record.stop_date is not None:
                record.stop_date -= datetime.timedelta(days=15)


def test_retry_redrives_and_succeeded_states_do_not_run_again(dag_runner, s3, sfn, machine_arn):
    dag = make_dag(
        "sfn_redrive_on_retry",
        state_machine_arn=machine_arn,
        retries=1,
        retry_delay=datetime.timedelta(0),
        on_retry_callback=_provide_config,
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    [execution] = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert described["redriveCount"] == 1
    events = _history(sfn, execution["executionArn"])
    assert [e["type"] for e in events].count("ExecutionRedriven") == 1
    assert _entered(events, "WriteMarker") == 1  # the succeeded state was not executed again
    assert marker_writes(s3) == 1  # ... and its side effect happened once
    assert _entered(events, "ReadConfig") == 2
    assert _xcom(result, "redrive_count") == 1


def test_not_redrivable_fails_the_task_with_the_reason(dag_runner, s3, sfn, machine_arn):
    dag = make_dag(
        "sfn_not_redrivable_fail",
        state_machine_arn=machine_arn,
        retries=1,
        retry_delay=datetime.timedelta(0),
        on_retry_callback=_age_executions,
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "failed"}
    executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    assert [e["status"] for e in executions] == ["FAILED"]  # no second execution was started
    assert marker_writes(s3) == 1


def test_not_redrivable_starts_a_fresh_execution_when_asked(dag_runner, s3, sfn, machine_arn):
    dag = make_dag(
        "sfn_not_redrivable_new",
        state_machine_arn=machine_arn,
        retries=1,
        retry_delay=datetime.timedelta(0),
        on_retry_callback=_age_executions,
        if_not_redrivable="start_new",
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    executions = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    by_status = sorted((e["status"], e["name"][-3:]) for e in executions)
    assert [status for status, _ in by_status] == ["FAILED", "SUCCEEDED"]
    assert any(e["name"].endswith("-n1") and e["status"] == "SUCCEEDED" for e in executions)


def test_timed_out_execution_fails_the_try_and_the_retry_redrives_it(dag_runner, sfn, s3):
    slow = {
        "TimeoutSeconds": 1,
        "StartAt": "Slow",
        "States": {"Slow": {"Type": "Wait", "Seconds": 5, "End": True}},
    }
    arn = sfn.create_state_machine(name="times-out", definition=json.dumps(slow), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    dag = make_dag("sfn_timed_out", state_machine_arn=arn, retries=1, retry_delay=datetime.timedelta(0))

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "failed"}
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert described["status"] == "TIMED_OUT"
    assert described["redriveCount"] == 1  # the retry redrove it, and it timed out again
    assert _xcom(result, "execution_status") == "TIMED_OUT"


DISTRIBUTED_MAP = {
    "StartAt": "Items",
    "States": {
        "Items": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 4,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Read",
                "States": {
                    "Read": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::aws-sdk:s3:headObject",
                        "Parameters": {"Bucket": BUCKET, "Key.$": "States.Format('in/{}', $.key)"},
                        "ResultSelector": {"bytes.$": "$.ContentLength"},
                        "End": True,
                    }
                },
            },
            "End": True,
        }
    },
}


def test_map_run_update_is_applied_once_the_redriven_map_run_runs(dag_runner, s3, sfn):
    """Two of four items fail; once the retry's redrive has the Map Run running again, it is told to
    tolerate two failures (UpdateMapRun acts on a Map Run in progress only)."""
    for key in ("k0", "k2"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    slow = json.loads(json.dumps(DISTRIBUTED_MAP))
    # A failing read is retried once after 2 s, in the redrive too: the redriven Map Run runs long
    # enough to be seen running and updated.
    slow["States"]["Items"]["ItemProcessor"]["States"]["Read"]["Retry"] = [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 1}
    ]
    arn = sfn.create_state_machine(name="dmap", definition=json.dumps(slow), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    dag = make_dag(
        "sfn_map_run_update",
        state_machine_arn=arn,
        retries=1,
        retry_delay=datetime.timedelta(0),
        map_run_update={"tolerated_failure_count": 2, "max_concurrency": 2},
    )
    dag.get_task("run_machine").input = {"items": [{"key": f"k{i}"} for i in range(4)]}

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    [map_run] = sfn.list_map_runs(executionArn=execution["executionArn"])["mapRuns"]
    described = sfn.describe_map_run(mapRunArn=map_run["mapRunArn"])
    assert described["toleratedFailureCount"] == 2
    assert described["maxConcurrency"] == 2
    assert described["redriveCount"] == 1
    assert described["status"] == "SUCCEEDED"


def test_failure_report_counts_the_distributed_map_items(aws_emulator, s3, sfn):
    from airflow_provider_mwaaops.hooks.step_function import StepFunctionRedriveHook

    s3.put_object(Bucket=BUCKET, Key="in/k0", Body=b"x")
    arn = sfn.create_state_machine(name="dmap2", definition=json.dumps(DISTRIBUTED_MAP), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    items = {"items": [{"key": f"k{i}"} for i in range(3)]}
    execution = sfn.start_execution(stateMachineArn=arn, name="e", input=json.dumps(items))["executionArn"]
    aws_emulator.wait_for_execution(execution)

    failure = StepFunctionRedriveHook().explain_failure(execution)

    assert failure.status == "FAILED"
    assert failure.error == "States.ExceedToleratedFailureThreshold"
    [report] = failure.map_runs
    assert report.item_counts["failed"] == 2
    assert report.item_counts["succeeded"] == 1
    assert "failed 2, succeeded 1" in failure.describe()
    # The first failed children are named with their error (the emulator's Map Run children).
    assert len(report.failed_children) == 2
    assert all("s3." in child.lower() for child in report.failed_children)
    assert "child " in failure.describe()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state_machine_arn": "arn:aws:states:us-east-1:123:notAMachine:x"}, "stateMachine"),
        ({"name": "has spaces"}, "execution name"),
        ({"input": {"blob": "x" * 300_000}}, "262144"),
        ({"map_run_update": {"concurrency": 3}}, "map_run_update"),
    ],
    ids=["arn", "name", "input-size", "map-run-setting"],
)
def test_each_bad_input_is_named_before_any_aws_call(kwargs, message, monkeypatch):
    from airflow_provider_mwaaops.hooks.step_function import StepFunctionRedriveHook

    def no_aws(*args, **kwargs):
        raise AssertionError("AWS was called")

    monkeypatch.setattr(StepFunctionRedriveHook, "get_execution", no_aws)
    params = {"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m", **kwargs}
    operator = StepFunctionExecutionOperator(task_id="t", **params)
    ti = type("TI", (), {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 1})()

    with pytest.raises(ValueError, match=message):
        operator.execute({"ti": ti})


def test_access_denied_names_the_iam_action():
    from botocore.exceptions import ClientError

    denied = ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/mwaa/x is not authorized to "
                "perform: "
                "states:StartExecution on resource: arn:aws:states:us-east-1:123456789012:stateMachine:m",
            }
        },
        "StartExecution",
    )
    error = StepFunctionExecutionOperator(task_id="t", state_machine_arn="x")._aws_error(denied)
    assert "states:StartExecution" in str(error)
    assert "aws_default" in str(error)


def test_large_output_is_kept_out_of_xcom(dag_runner, s3, sfn, machine_arn):
    s3.put_object(Bucket=BUCKET, Key="config.json", Body=b"{}")
    dag = make_dag("sfn_large_output", state_machine_arn=machine_arn, max_output_xcom_bytes=5)

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    pointer = _xcom(result, "return_value")
    assert pointer["output_in_xcom"] is False
    assert pointer["output_bytes"] > 5
    assert pointer["execution_arn"] == _xcom(result, "execution_arn")


def test_express_state_machine_is_refused_before_an_execution_starts(dag_runner, sfn, s3):
    arn = sfn.create_state_machine(
        name="express", definition=json.dumps(WRITE_THEN_READ), roleArn=ROLE_ARN, type="EXPRESS"
    )["stateMachineArn"]

    result = dag_runner(make_dag("sfn_express", state_machine_arn=arn))

    assert result.task_states == {"run_machine": "failed"}
    assert marker_writes(s3) == 0
