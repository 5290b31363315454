"""AwsPollingTrigger: connection settings reach the polling client; side work; kill; sensor checks."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import certifi
import pytest
from botocore.config import Config
from moto.core.exceptions import JsonRESTError
from moto.stepfunctions.responses import StepFunctionResponse

from airflow_provider_mwaaops.triggers.base import AwsPollingTrigger, botocore_config_dict
from airflow_provider_mwaaops.triggers.step_function import StepFunctionExecutionTrigger

ROLE_ARN = "arn:aws:iam::123456789012:role/states"
#: botocore options whose effect is visible on the client and, for the user agent, on the wire.
#: The https-only proxy is never used against the plain-http emulator, but it makes the pool keep
#: the configured ``verify`` (it drops it for plain http without a proxy, see client_pool).
PROOF_CONFIG = {
    "user_agent_extra": "mwaaops-proof/1",
    "read_timeout": 17,
    "proxies": {"https": "http://127.0.0.1:9"},
}


def _machine(sfn, seconds: int) -> str:
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": seconds, "End": True}}}
    return sfn.create_state_machine(
        name=f"base-waits-{seconds}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]


@pytest.fixture
def sfn(aws_emulator):
    return aws_emulator.client("stepfunctions")


@pytest.fixture
def user_agents(monkeypatch) -> list[str]:
    """The User-Agent of every DescribeExecution the emulator answers."""
    seen: list[str] = []
    real = StepFunctionResponse.describe_execution

    def describe_execution(self):
        seen.append(self.headers.get("User-Agent", ""))
        return real(self)

    monkeypatch.setattr(StepFunctionResponse, "describe_execution", describe_execution)
    return seen


def _rebuild(trigger: AwsPollingTrigger) -> Any:
    """What a triggerer does after a restart: the stored JSON back into a trigger."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


class RecordingTrigger(StepFunctionExecutionTrigger):
    """Remembers the client its checks used."""

    clients: list[Any] = []

    async def check(self, client: Any) -> dict[str, Any] | None:
        RecordingTrigger.clients.append(client)
        return await super().check(client)


def test_verify_and_botocore_config_survive_serialization():
    trigger = StepFunctionExecutionTrigger(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:e",
        verify="/etc/ssl/ca.pem",
        botocore_config=Config(read_timeout=17, user_agent_extra="x"),
    )
    rebuilt = _rebuild(trigger)
    assert rebuilt.verify == "/etc/ssl/ca.pem"
    assert rebuilt.botocore_config == {"read_timeout": 17, "user_agent_extra": "x"}
    assert rebuilt.serialize() == trigger.serialize()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"no_such_option": 1}, "no_such_option"),
        ({"read_timeout": object()}, "JSON"),
        ("read_timeout=5", "dict"),
    ],
    ids=["unknown-option", "not-json", "not-a-dict"],
)
def test_bad_botocore_config_is_named(value, message):
    with pytest.raises(ValueError, match="botocore_config") as info:
        botocore_config_dict(value)
    assert message in str(info.value)


def test_botocore_config_and_verify_reach_the_client_of_a_rebuilt_deferred_wait(sfn, user_agents):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 0), name="proof")["executionArn"]
    RecordingTrigger.clients = []
    trigger = RecordingTrigger(
        execution_arn=arn, waiter_delay=0.1, verify=certifi.where(), botocore_config=PROOF_CONFIG
    )

    payload = asyncio.run(_rebuild(trigger).wait())  # as after a triggerer restart

    assert payload["status"] == "success", payload
    client = RecordingTrigger.clients[0]
    assert client.meta.config.read_timeout == 17
    assert "mwaaops-proof/1" in client.meta.config.user_agent_extra
    assert client._endpoint.http_session._verify == certifi.where()
    assert user_agents
    assert all("mwaaops-proof/1" in agent for agent in user_agents)


def test_wait_without_botocore_config_uses_a_plain_client(sfn, user_agents):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 0), name="plain")["executionArn"]
    payload = asyncio.run(StepFunctionExecutionTrigger(execution_arn=arn, waiter_delay=0.1).wait())
    assert payload["status"] == "success"
    assert user_agents
    assert not any("mwaaops-proof" in agent for agent in user_agents)


# -- side work next to the polls ------------------------------------------------------------------
class SideWorkTrigger(StepFunctionExecutionTrigger):
    """Side work that is slow, or fails, and records what it saw."""

    seen: list[dict[str, Any] | None] = []
    checks = 0
    side_seconds = 0.0
    fail = False

    async def check(self, client: Any) -> dict[str, Any] | None:
        SideWorkTrigger.checks += 1
        return await super().check(client)

    async def after_check(self, client: Any, result: dict[str, Any] | None) -> None:
        SideWorkTrigger.seen.append(result)
        if SideWorkTrigger.fail:
            raise RuntimeError("logs say no")
        await asyncio.sleep(SideWorkTrigger.side_seconds)


@pytest.fixture
def side_work():
    SideWorkTrigger.seen, SideWorkTrigger.checks = [], 0
    SideWorkTrigger.side_seconds, SideWorkTrigger.fail = 0.0, False
    return SideWorkTrigger


def test_slow_side_work_never_delays_the_polls_and_sees_the_final_state(sfn, side_work):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 2), name="side")["executionArn"]
    side_work.side_seconds = 0.8

    payload = asyncio.run(side_work(execution_arn=arn, waiter_delay=0.1).wait())

    assert payload["status"] == "success"
    # Polls every ~0.1 s for ~2 s; the side work (0.8 s a call) ran a few times, not once per poll.
    assert side_work.checks >= 8
    assert 2 <= len(side_work.seen) < side_work.checks
    assert side_work.seen[-1] == payload  # the last call saw the final payload, before the event
    assert all(result is None for result in side_work.seen[:-1])


def test_failing_side_work_warns_once_and_the_wait_succeeds(sfn, side_work, monkeypatch):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 1), name="side-fails")["executionArn"]
    side_work.fail = True
    trigger = side_work(execution_arn=arn, waiter_delay=0.1)
    warnings: list[str] = []
    monkeypatch.setattr(trigger.log, "warning", lambda message, *args: warnings.append(message % args))

    payload = asyncio.run(trigger.wait())

    assert payload["status"] == "success"
    assert len(side_work.seen) >= 2
    assert [w for w in warnings if "side work failed" in w] == [
        "execution side-fails: side work failed (the wait goes on): RuntimeError: logs say no"
    ]


class WaitingSideWorkTrigger(SideWorkTrigger):
    """Side work that waits on something (a rate budget) until told to stop, and whose final call
    needs longer than ``final_side_work_timeout`` but says so through ``final_side_work_bound``."""

    final_side_work_timeout = 0.05
    events: list[str] = []

    async def after_check(self, client: Any, result: dict[str, Any] | None) -> None:
        if result is None:
            self._waiting = asyncio.get_running_loop().create_future()
            try:
                await self._waiting
            except asyncio.CancelledError:
                WaitingSideWorkTrigger.events.append("dropped")
                return
        else:
            await asyncio.sleep(0.3)
            WaitingSideWorkTrigger.events.append("final")

    def side_work_ending(self) -> None:
        WaitingSideWorkTrigger.events.append("ending")
        self._waiting.cancel()

    def final_side_work_bound(self) -> float:
        return 30.0


def test_the_final_side_work_cuts_a_waiting_call_short_and_gets_its_own_bound(sfn):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 1), name="side-waits")["executionArn"]
    WaitingSideWorkTrigger.events = []

    payload = asyncio.run(WaitingSideWorkTrigger(execution_arn=arn, waiter_delay=0.1).wait())

    assert payload["status"] == "success"
    assert WaitingSideWorkTrigger.events == ["ending", "dropped", "final"]


def test_triggers_without_side_work_skip_the_machinery():
    trigger = StepFunctionExecutionTrigger(execution_arn="arn:aws:states:us-east-1:1:execution:m:e")
    assert not trigger._has_side_work()
    assert SideWorkTrigger(execution_arn="arn:aws:states:us-east-1:1:execution:m:e")._has_side_work()


# -- errors, kill and sensor checks ----------------------------------------------------------------
def test_access_denied_event_names_the_iam_action(sfn, monkeypatch):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 0), name="denied-base")["executionArn"]
    message = f"User: x is not authorized to perform: states:DescribeExecution on resource: {arn}"

    def denied(self):
        raise JsonRESTError("AccessDeniedException", message)

    monkeypatch.setattr(StepFunctionResponse, "describe_execution", denied)
    payload = asyncio.run(StepFunctionExecutionTrigger(execution_arn=arn, waiter_delay=0.1).wait())

    assert payload["status"] == "error"
    assert payload["iam_action"] == "states:DescribeExecution"
    assert payload["execution_arn"] == arn


def test_check_once_keeps_waiting_through_throttling_and_raises_the_rest(sfn, monkeypatch):
    arn = sfn.start_execution(stateMachineArn=_machine(sfn, 30), name="poked")["executionArn"]
    trigger = StepFunctionExecutionTrigger(execution_arn=arn)
    assert asyncio.run(trigger.check_once()) is None  # still running

    codes = ["ThrottlingException"] * 3 + ["ValidationException"]  # botocore itself tries 3 times

    def failing(self):
        error = JsonRESTError(codes.pop(0), "injected")
        raise error

    monkeypatch.setattr(StepFunctionResponse, "describe_execution", failing)
    assert asyncio.run(trigger.check_once()) is None
    with pytest.raises(Exception, match="ValidationException"):
        asyncio.run(trigger.check_once())


class CannotStop(StepFunctionExecutionTrigger):
    async def stop(self, client: Any) -> None:
        await AwsPollingTrigger.stop(self, client)


def test_on_kill_calls_stop_only_when_asked():
    arn = "arn:aws:states:us-east-1:123456789012:execution:m:e"
    asyncio.run(CannotStop(execution_arn=arn, stop_on_kill=False).on_kill())  # no call at all
    with pytest.raises(NotImplementedError, match="cannot stop"):
        asyncio.run(AwsPollingTrigger.stop(CannotStop(execution_arn=arn), client=None))


# -- a final event within seconds of the deferral waits until the scheduler has seen the deferral --
class FinalAtOnce(StepFunctionExecutionTrigger):
    """A job already finished when the task deferred: the first check is final."""

    async def client(self, service_name: str | None = None) -> Any:
        return None

    async def check(self, client: Any) -> dict[str, Any] | None:
        return {"status": "success", "execution_arn": self.execution_arn}


def _held_seconds(monkeypatch, in_triggerer: bool, flagged: bool = True) -> list[float]:
    """Run FinalAtOnce to its event and return what it slept for before yielding it."""
    import airflow_provider_mwaaops.triggers.base as base

    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float, *args: Any) -> None:
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(base, "STALE_DEFERRAL_EVENT_MAY_FAIL_RESUMED_TASK", flagged)
    monkeypatch.setattr(base, "runs_in_triggerer", lambda: in_triggerer)
    monkeypatch.setattr(base.asyncio, "sleep", sleep)
    trigger = FinalAtOnce(execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:e")

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    return slept


def test_an_event_final_at_once_is_held_in_a_triggerer_where_airflow_may_fail_the_resumption(monkeypatch):
    import airflow_provider_mwaaops.triggers.base as base

    (held,) = _held_seconds(monkeypatch, in_triggerer=True)
    assert base.SETTLE_AFTER_DEFERRAL_SECONDS - 1 < held <= base.SETTLE_AFTER_DEFERRAL_SECONDS


@pytest.mark.parametrize(("in_triggerer", "flagged"), [(False, True), (True, False)])
def test_no_hold_in_dag_test_or_where_airflow_spares_the_resumption(monkeypatch, in_triggerer, flagged):
    assert _held_seconds(monkeypatch, in_triggerer=in_triggerer, flagged=flagged) == []


def test_this_process_is_not_a_triggerer():
    """dag.test() and plain code run triggers inline: no scheduler acts on their events."""
    from airflow_provider_mwaaops.compat import runs_in_triggerer

    assert runs_in_triggerer() is False
