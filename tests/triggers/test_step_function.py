"""StepFunctionExecutionTrigger: serialisation, triggerer restarts, and an unhealthy API."""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import pytest
from moto.core.exceptions import JsonRESTError
from moto.stepfunctions.responses import StepFunctionResponse

from airflow_provider_mwaaops.triggers.step_function import StepFunctionExecutionTrigger

ROLE_ARN = "arn:aws:iam::123456789012:role/states"


def _machine(sfn, seconds: int) -> str:
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": seconds, "End": True}}}
    return sfn.create_state_machine(
        name=f"waits-{seconds}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]


@pytest.fixture
def sfn(aws_emulator):
    return aws_emulator.client("stepfunctions")


def _trigger(execution_arn: str, **kwargs) -> StepFunctionExecutionTrigger:
    return StepFunctionExecutionTrigger(execution_arn=execution_arn, waiter_delay=0.1, **kwargs)


async def _first_event(trigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("trigger ended without an event")


def _rebuild(trigger) -> StepFunctionExecutionTrigger:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    json.dumps(kwargs)  # what the triggerer stores must be plain JSON
    return getattr(importlib.import_module(module), name)(**kwargs)


def test_serialize_round_trips_every_argument():
    trigger = StepFunctionExecutionTrigger(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:e",
        stop_on_kill=False,
        aws_conn_id="other",
        region_name="eu-west-1",
        waiter_delay=7,
        waiter_max_delay=70,
        timeout_at=1_900_000_000.0,
    )
    rebuilt = _rebuild(trigger)
    assert rebuilt.serialize() == trigger.serialize()
    assert (
        rebuilt.serialize()[0]
        == "airflow_provider_mwaaops.triggers.step_function.StepFunctionExecutionTrigger"
    )


def test_success_event_carries_status_and_redrive_count(sfn):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 0), name="quick")["executionArn"]
    payload = asyncio.run(_first_event(_trigger(arn)))
    assert payload["status"] == "success"
    assert payload["execution_status"] == "SUCCEEDED"
    assert payload["execution_arn"] == arn
    assert payload["redrive_count"] == 0


def test_resumes_after_a_triggerer_restart_in_a_new_event_loop(sfn):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 2), name="slow")["executionArn"]
    trigger = _trigger(arn)

    async def run_until_shutdown():
        task = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(0.5)
        assert not task.done(), "the execution should still be running"
        task.cancel()  # the triggerer stops: the trigger is cancelled, its row stays
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_until_shutdown())
    payload = asyncio.run(_first_event(_rebuild(trigger)))  # another triggerer, another loop

    assert payload["status"] == "success"
    assert payload["execution_status"] == "SUCCEEDED"


@pytest.fixture
def failing_describe(monkeypatch):
    """Make the emulator answer DescribeExecution with the given errors before answering normally."""
    errors: list[tuple[int, str]] = []
    calls = {"n": 0}
    real = StepFunctionResponse.describe_execution

    def describe_execution(self):
        calls["n"] += 1
        if errors:
            status, code = errors.pop(0)
            error = JsonRESTError(code, f"injected {code}")
            error.code = status
            raise error
        return real(self)

    monkeypatch.setattr(StepFunctionResponse, "describe_execution", describe_execution)
    return errors, calls


def test_survives_throttling_and_server_errors(sfn, failing_describe):
    errors, calls = failing_describe
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 0), name="flaky")["executionArn"]
    errors.extend([(400, "ThrottlingException")] * 6 + [(500, "InternalFailure")] * 6)

    payload = asyncio.run(_first_event(_trigger(arn, waiter_max_delay=0.4)))

    assert payload["status"] == "success", payload
    assert not errors, "every injected error was consumed"
    assert calls["n"] >= 13


def test_access_denied_yields_an_error_event_naming_the_action(sfn, monkeypatch):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 0), name="denied")["executionArn"]
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/mwaa/x is not authorized to perform: "
        f"states:DescribeExecution on resource: {arn}"
    )

    def denied(self):
        raise JsonRESTError("AccessDeniedException", message)

    monkeypatch.setattr(StepFunctionResponse, "describe_execution", denied)
    payload = asyncio.run(_first_event(_trigger(arn)))

    assert payload["status"] == "error"
    assert "states:DescribeExecution" in payload["message"]


def test_deadline_yields_a_timeout_event(sfn):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 30), name="too-slow")["executionArn"]
    payload = asyncio.run(_first_event(_trigger(arn, timeout_at=time.time() + 0.5)))
    assert payload["status"] == "timeout"
    assert payload["execution_arn"] == arn


def _status_soon(sfn, arn: str, expected: str, timeout: float = 10.0) -> str:
    """The engine applies a stop asynchronously; give it a moment before reading the status."""
    deadline = time.monotonic() + timeout
    status = sfn.describe_execution(executionArn=arn)["status"]
    while status != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        status = sfn.describe_execution(executionArn=arn)["status"]
    return status


def test_on_kill_stops_the_execution(sfn):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 30), name="killed")["executionArn"]
    asyncio.run(_trigger(arn).on_kill())
    assert _status_soon(sfn, arn, "ABORTED") == "ABORTED"


def test_on_kill_respects_the_opt_out(sfn):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 30), name="kept")["executionArn"]
    asyncio.run(_trigger(arn, stop_on_kill=False).on_kill())
    assert _status_soon(sfn, arn, "ABORTED", timeout=1.0) == "RUNNING"
