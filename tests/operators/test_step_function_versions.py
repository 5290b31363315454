"""StepFunctionExecutionOperator with versions and aliases, a definition that changed between tries,
and the Map Run redrive limit, under dag.test() against the embedded AWS."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from airflow_provider_mwaaops.compat import DAG, AirflowException
from airflow_provider_mwaaops.operators.step_function import StepFunctionExecutionOperator, execution_name_for

ROLE_ARN = "arn:aws:iam::123456789012:role/states"
BUCKET = "sfn-operator-versions"
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
    """Fails until the object exists."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObjectTagging",
        "Parameters": {"Bucket": BUCKET, "Key.$": key_path},
        "ResultSelector": {"tagged": True},
        "ResultPath": "$.read",
        **extra,
    }


#: A Parallel holding a Distributed Map whose iterations hold a Parallel.
NESTED = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Parallel",
            "End": True,
            "Branches": [
                {
                    "StartAt": "Export",
                    "States": {"Export": write("States.Format('export/{}', 'x')", End=True)},
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


@pytest.fixture
def s3(aws_emulator: Any) -> Any:
    client = aws_emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def sfn(aws_emulator: Any) -> Any:
    return aws_emulator.client("stepfunctions")


def writes(s3: Any, key: str) -> int:
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
    return sum(1 for version in listed if version["Key"] == key)


def make_dag(dag_id: str, **operator_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        StepFunctionExecutionOperator(
            task_id="run_machine",
            waiter_delay=0.2,
            retries=1,
            retry_delay=datetime.timedelta(0),
            **operator_kwargs,
        )
    return dag


def _provide_k1(context: Any) -> None:
    """The fix between tries: the missing input appears."""
    import boto3

    boto3.client("s3").put_object(Bucket=BUCKET, Key="in/k1", Body=b"x")


# -- Must show 1: versions and aliases --------------------------------------------------------------
@pytest.mark.parametrize("through", ["alias", "version"])
def test_nested_run_through_an_alias_or_a_version_is_redriven_by_the_retry(dag_runner, s3, sfn, through):
    for key in ("k0", "k2"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    created = sfn.create_state_machine(
        name="nested", definition=json.dumps(NESTED), roleArn=ROLE_ARN, publish=True
    )
    machine, version = created["stateMachineArn"], created["stateMachineVersionArn"]
    target = version
    if through == "alias":
        target = sfn.create_state_machine_alias(
            name="prod", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 100}]
        )["stateMachineAliasArn"]
    dag = make_dag(
        f"sfn_nested_{through}", state_machine_arn=target, input={"keys": KEYS}, on_retry_callback=_provide_k1
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": "success"}
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]  # exactly one
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 1)
    assert described["stateMachineVersionArn"] == version
    assert described.get("stateMachineAliasArn") == (target if through == "alias" else None)
    assert writes(s3, "export/x") == 1  # completed states did not run again
    assert all(writes(s3, f"out/{key}") == 1 for key in KEYS)
    [map_run] = sfn.list_map_runs(executionArn=execution["executionArn"])["mapRuns"]
    children = sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]
    assert sorted(child["redriveCount"] for child in children) == [0, 0, 1]


def test_a_retry_finds_the_execution_started_through_an_alias(aws_emulator, s3, sfn, mwaaops_airflow):
    """The execution ARN is the state machine's: the retry's lookup finds what the alias started."""
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    created = sfn.create_state_machine(
        name="m", definition=json.dumps(definition), roleArn=ROLE_ARN, publish=True
    )
    alias = sfn.create_state_machine_alias(
        name="live",
        routingConfiguration=[{"stateMachineVersionArn": created["stateMachineVersionArn"], "weight": 100}],
    )["stateMachineAliasArn"]
    name = execution_name_for("d", "t", "r")
    started = sfn.start_execution(stateMachineArn=alias, name=name)["executionArn"]
    aws_emulator.wait_for_execution(started)
    operator = StepFunctionExecutionOperator(task_id="t", state_machine_arn=alias)

    arn, action = operator._start_or_resume(operator.hook, _machine(alias), name, "{}", {}, try_number=2)

    assert arn == started
    assert action == "already SUCCEEDED, nothing to run"


def _machine(arn: str) -> Any:
    from airflow_provider_mwaaops.aws.arn import StateMachineArn

    return StateMachineArn.parse(arn)


# -- Must show 2: a definition that changed between tries ----------------------------------------------
def _definition(key: str) -> str:
    states = {
        "Write": write("States.Format('marker/{}', 'x')", Next="Read"),
        "Read": read(f"States.Format('{key}')", End=True),
    }
    return json.dumps({"StartAt": "Write", "States": states})


def _fix_the_definition(context: Any) -> None:
    """The team fixes the bug (a wrong key) in the definition between the tries."""
    import boto3

    sfn = boto3.client("stepfunctions")
    [machine] = sfn.list_state_machines()["stateMachines"]
    sfn.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=_definition("input.txt"))


@pytest.mark.parametrize(
    ("policy", "state", "executions", "marker_writes"),
    [
        ("redrive", "failed", [("FAILED", 1)], 1),  # the original definition runs again and fails again
        ("start_new", "success", [("FAILED", 0), ("SUCCEEDED", 0)], 2),
        ("fail", "failed", [("FAILED", 0)], 1),  # no redrive, no new execution
    ],
)
def test_changed_definition_under_each_policy(dag_runner, s3, sfn, policy, state, executions, marker_writes):
    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    machine = sfn.create_state_machine(name="fixable", definition=_definition("inptu.txt"), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    dag = make_dag(
        f"sfn_definition_{policy}",
        state_machine_arn=machine,
        if_definition_changed=policy,
        on_retry_callback=_fix_the_definition,
    )

    result = dag_runner(dag)

    assert result.task_states == {"run_machine": state}
    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert sorted((e["status"], e["redriveCount"]) for e in listed) == executions
    assert writes(s3, "marker/x") == marker_writes


def test_changed_definition_is_named_in_the_error(aws_emulator, s3, sfn, mwaaops_airflow):
    machine = sfn.create_state_machine(name="fixable", definition=_definition("inptu.txt"), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    name = execution_name_for("d", "t", "r")
    execution = sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"]
    aws_emulator.wait_for_execution(execution)
    sfn.update_state_machine(stateMachineArn=machine, definition=_definition("input.txt"))
    failing = StepFunctionExecutionOperator(
        task_id="t", state_machine_arn=machine, if_definition_changed="fail"
    )

    with pytest.raises(AirflowException, match="definition changed since execution") as raised:
        failing._start_or_resume(failing.hook, _machine(machine), name, "{}", {}, try_number=2)
    assert "if_definition_changed='fail'" in str(raised.value)
    assert sfn.describe_execution(executionArn=execution)["redriveCount"] == 0

    redriving = StepFunctionExecutionOperator(task_id="t", state_machine_arn=machine)
    redriving.execution_arn = execution
    assert "if_definition_changed='start_new'" in redriving._definition_note()
    unchanged = StepFunctionExecutionOperator(task_id="t", state_machine_arn=machine)
    unchanged.execution_arn = sfn.start_execution(stateMachineArn=machine, name="new")["executionArn"]
    assert unchanged._definition_note() == ""


# -- the Map Run redrive limit ---------------------------------------------------------------------------
def test_a_map_run_at_the_redrive_limit_is_not_redriven(aws_emulator, s3, sfn, mwaaops_airflow):
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    for key in ("k0", "k2"):
        s3.put_object(Bucket=BUCKET, Key=f"in/{key}", Body=b"x")
    machine = sfn.create_state_machine(name="nested", definition=json.dumps(NESTED), roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    name = execution_name_for("d", "t", "r")
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"keys": KEYS}))[
        "executionArn"
    ]
    aws_emulator.wait_for_execution(execution)
    backend = stepfunctions_parser_backends["123456789012"]["us-east-1"]
    for record in backend.describe_execution(execution).exec_worker.env.map_run_record_pool_manager.get_all():
        record._mwaaops_redrive_count = 1000
    operator = StepFunctionExecutionOperator(task_id="t", state_machine_arn=machine)

    with pytest.raises(AirflowException, match="redriven 1000 times, AWS's hard limit of 1000") as raised:
        operator._start_or_resume(operator.hook, _machine(machine), name, "{}", {}, try_number=2)
    assert "States.Runtime" in str(raised.value)
    assert sfn.describe_execution(executionArn=execution)["redriveCount"] == 0
    report = operator.hook.explain_failure(execution).describe()
    assert "AWS's hard limit of 1000" in report
