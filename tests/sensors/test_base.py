"""AwsBaseSensor: one trigger check judges the condition in poke, reschedule and deferred modes."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

from airflow_provider_mwaaops.compat import DAG
from airflow_provider_mwaaops.sensors.base import AwsBaseSensor
from airflow_provider_mwaaops.triggers.base import AwsPollingTrigger
from airflow_provider_mwaaops.triggers.step_function import StepFunctionExecutionTrigger

ROLE_ARN = "arn:aws:iam::123456789012:role/states"


class ExecutionSensor(AwsBaseSensor):
    """Waits until an execution it did not start has ended (a sensor as the MWAA one will be)."""

    aws_hook_class = StepFunctionHook
    template_fields = (*AwsBaseSensor.template_fields, "execution_arn")

    def __init__(self, *, execution_arn: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.execution_arn = execution_arn

    def trigger(self, context: Any) -> AwsPollingTrigger:
        return StepFunctionExecutionTrigger(
            execution_arn=self.execution_arn, stop_on_kill=False, **self.trigger_kwargs()
        )


def _execution(sfn, name: str, definition: dict) -> str:
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
    return sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name)["executionArn"]


WAIT_1S = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1, "End": True}}}
FAILS = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom", "Cause": "scripted"}}}


@pytest.fixture
def sfn(aws_emulator):
    return aws_emulator.client("stepfunctions")


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_sensor_waits_for_the_condition(dag_runner, sfn, mode):
    arn = _execution(sfn, f"sensed-{mode}", WAIT_1S)
    with DAG(f"sensor_{mode}", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        ExecutionSensor(
            task_id="sense",
            execution_arn=arn,
            poke_interval=0.2,
            timeout=60,
            deferrable=mode == "deferred",
        )

    result = dag_runner(dag)

    assert result.task_states == {"sense": "success"}
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"


def test_a_condition_that_never_holds_fails_the_sensor(dag_runner, sfn):
    arn = _execution(sfn, "sensed-fails", FAILS)
    with DAG("sensor_fails", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        ExecutionSensor(task_id="sense", execution_arn=arn, poke_interval=0.2, timeout=60)

    assert dag_runner(dag).task_states == {"sense": "failed"}


def test_sensor_trigger_follows_poke_interval_and_timeout():
    sensor = ExecutionSensor(
        task_id="s", execution_arn="arn", poke_interval=7, timeout=70, botocore_config={"read_timeout": 3}
    )
    before = datetime.datetime.now().timestamp()
    kwargs = sensor.trigger_kwargs()
    assert kwargs["waiter_delay"] == 7
    assert kwargs["timeout_at"] == pytest.approx(before + 70, abs=5)
    assert kwargs["botocore_config"] == {"read_timeout": 3}
    assert {"aws_conn_id", "region_name", "verify", "execution_arn"} <= set(ExecutionSensor.template_fields)
