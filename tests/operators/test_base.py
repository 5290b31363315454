"""AwsBaseOperator: parameters checked before any AWS call, wait limits, templating, errors, waits."""

from __future__ import annotations

import datetime
import json
from typing import Any

import certifi
import jinja2
import pytest
from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook
from botocore.exceptions import ClientError
from moto.stepfunctions.responses import StepFunctionResponse

from airflow_provider_mwaaops.compat import DAG, AirflowException
from airflow_provider_mwaaops.operators.base import AwsBaseOperator, aws_template_fields
from airflow_provider_mwaaops.operators.step_function import StepFunctionExecutionOperator
from airflow_provider_mwaaops.triggers.step_function import StepFunctionExecutionTrigger

ROLE_ARN = "arn:aws:iam::123456789012:role/states"


class WaitOperator(AwsBaseOperator):
    """The smallest operator on the base: waits for an execution it is given."""

    aws_hook_class = StepFunctionHook
    aws_service_label = "Test service"
    template_fields = aws_template_fields("execution_arn")

    def __init__(self, *, execution_arn: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.execution_arn = execution_arn

    def execute(self, context: Any) -> Any:
        return self.wait_for(
            StepFunctionExecutionTrigger(execution_arn=self.execution_arn, **self.trigger_kwargs()), context
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        self.raise_for_event(event, f"execution {self.execution_arn}", self.wait_timeout)
        return event


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"waiter_delay": 0}, "waiter_delay"),
        ({"waiter_delay": "5"}, "waiter_delay"),
        ({"waiter_max_delay": -1}, "waiter_max_delay"),
        ({"wait_timeout": -5}, "wait_timeout"),
        ({"wait_timeout": "an hour"}, "wait_timeout"),
        ({"waiter_max_attempts": 0}, "waiter_max_attempts"),
        ({"waiter_max_attempts": 2.5}, "waiter_max_attempts"),
        ({"verify": 3}, "verify"),
        ({"botocore_config": {"no_such_option": 1}}, "botocore_config"),
        ({"botocore_config": {"read_timeout": datetime.timedelta(seconds=5)}}, "botocore_config"),
    ],
)
def test_bad_parameters_are_named_when_the_operator_is_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaitOperator(task_id="t", execution_arn="arn", **kwargs)


def test_waiter_max_attempts_is_an_alternative_to_wait_timeout():
    by_attempts = WaitOperator(task_id="a", execution_arn="x", waiter_delay=6, waiter_max_attempts=10)
    assert by_attempts.wait_timeout == 60
    both = WaitOperator(
        task_id="b",
        execution_arn="x",
        waiter_delay=6,
        waiter_max_attempts=10,
        wait_timeout=datetime.timedelta(minutes=1),
    )
    assert both.wait_timeout == 60
    assert WaitOperator(task_id="c", execution_arn="x").wait_timeout is None
    assert (
        WaitOperator(task_id="d", execution_arn="x", wait_timeout=datetime.timedelta(hours=1)).wait_timeout
        == 3600
    )


def test_conflicting_waiter_max_attempts_and_wait_timeout_are_refused():
    with pytest.raises(ValueError, match=r"wait_timeout=30s and waiter_max_attempts=10 .* = 60s"):
        WaitOperator(task_id="t", execution_arn="x", waiter_delay=6, waiter_max_attempts=10, wait_timeout=30)


def test_trigger_gets_connection_settings_delays_and_an_absolute_deadline():
    operator = WaitOperator(
        task_id="t",
        execution_arn="x",
        aws_conn_id="conn",
        region_name="eu-west-1",
        verify="/ca.pem",
        botocore_config={"read_timeout": 5},
        waiter_delay=2,
        waiter_max_delay=20,
        wait_timeout=100,
    )
    before = datetime.datetime.now().timestamp()
    kwargs = operator.trigger_kwargs()
    assert kwargs.pop("timeout_at") == pytest.approx(before + 100, abs=5)
    assert kwargs == {
        "aws_conn_id": "conn",
        "region_name": "eu-west-1",
        "verify": "/ca.pem",
        "botocore_config": {"read_timeout": 5},
        "waiter_delay": 2,
        "waiter_max_delay": 20,
    }
    assert operator.hook_params() == {
        "aws_conn_id": "conn",
        "region_name": "eu-west-1",
        "verify": "/ca.pem",
        "config": {"read_timeout": 5},
    }


def test_deferrable_defaults_to_the_airflow_setting(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert WaitOperator(task_id="a", execution_arn="x").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert WaitOperator(task_id="b", execution_arn="x").deferrable is False
    assert WaitOperator(task_id="c", execution_arn="x", deferrable=True).deferrable is True


def test_connection_fields_are_templated_as_the_amazon_provider_templates_them():
    assert {"aws_conn_id", "region_name", "verify", "execution_arn"} <= set(WaitOperator.template_fields)
    assert "botocore_config" not in WaitOperator.template_fields  # as in the amazon provider
    assert {"aws_conn_id", "region_name", "verify", "state_machine_arn"} <= set(
        StepFunctionExecutionOperator.template_fields
    )
    operator = WaitOperator(
        task_id="t",
        execution_arn="arn-{{ params.n }}",
        aws_conn_id="{{ params.conn }}",
        region_name="{{ params.region }}",
        verify="{{ params.ca }}",
    )
    context = {"params": {"n": 1, "conn": "c2", "region": "eu-west-3", "ca": "/ca.pem"}}
    operator.render_template_fields(context, jinja_env=jinja2.Environment())
    assert (operator.execution_arn, operator.aws_conn_id, operator.region_name, operator.verify) == (
        "arn-1",
        "c2",
        "eu-west-3",
        "/ca.pem",
    )
    assert operator.hook.region_name == "eu-west-3"  # the hook is built after rendering


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "StartJobRun")


def test_access_denied_names_the_iam_action_and_the_connection():
    operator = WaitOperator(task_id="t", execution_arn="x", aws_conn_id="etl_role")
    denied = _client_error(
        "AccessDeniedException",
        "User: arn:aws:sts::1:assumed-role/r/x is not authorized to perform: glue:StartJobRun",
    )
    with (
        pytest.raises(AirflowException, match=r"AWS denied glue:StartJobRun \(IAM\).*'etl_role'"),
        operator.aws_errors(),
    ):
        raise denied
    with (
        pytest.raises(AirflowException, match="Test service call failed: EntityNotFoundException: no job"),
        operator.aws_errors(),
    ):
        raise _client_error("EntityNotFoundException", "no job")


def test_error_and_timeout_events_raise_with_what_was_awaited():
    operator = WaitOperator(task_id="t", execution_arn="x", aws_conn_id="etl_role", wait_timeout=60)
    with pytest.raises(AirflowException, match=r"job run jr_1 still running after wait_timeout=60.0s"):
        operator.raise_for_event({"status": "timeout"}, "job run jr_1", operator.wait_timeout)
    with pytest.raises(
        AirflowException, match=r"AWS denied glue:GetJobRun \(IAM\).*'etl_role'.*could not wait"
    ):
        operator.raise_for_event(
            {"status": "error", "message": "AccessDeniedException: ...", "iam_action": "glue:GetJobRun"},
            "job run jr_1",
            None,
        )
    with pytest.raises(AirflowException, match="could not wait for job run jr_1: None"):
        operator.raise_for_event(None, "job run jr_1", None)
    operator.raise_for_event({"status": "failure"}, "job run jr_1", None)  # the subclass explains those


@pytest.fixture
def sfn(aws_emulator):
    return aws_emulator.client("stepfunctions")


def _quick_execution(sfn, name: str) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    machine = sfn.create_state_machine(name=f"m-{name}", definition=json.dumps(definition), roleArn=ROLE_ARN)
    return sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name)["executionArn"]


class Deferred(Exception):
    """Stands for Airflow's TaskDeferred, which lives in different modules per line."""


def test_wait_for_defers_to_the_trigger(sfn, monkeypatch):
    arn = _quick_execution(sfn, "deferred")
    operator = WaitOperator(
        task_id="t", execution_arn=arn, deferrable=True, botocore_config={"read_timeout": 9}
    )
    deferred: dict[str, Any] = {}

    def defer(**kwargs: Any) -> None:
        deferred.update(kwargs)
        raise Deferred

    monkeypatch.setattr(WaitOperator, "defer", lambda self, **kwargs: defer(**kwargs))
    with pytest.raises(Deferred):
        operator.execute({})
    trigger = deferred["trigger"]
    assert deferred["method_name"] == "execute_complete"
    assert isinstance(trigger, StepFunctionExecutionTrigger)
    assert (trigger.execution_arn, trigger.botocore_config) == (arn, {"read_timeout": 9})


def test_wait_for_runs_the_same_trigger_synchronously(sfn):
    arn = _quick_execution(sfn, "sync")
    event = WaitOperator(task_id="t", execution_arn=arn, deferrable=False, waiter_delay=0.1).execute({})
    assert event["status"] == "success"
    assert event["execution_arn"] == arn


def test_botocore_config_and_verify_reach_the_client_of_a_synchronous_wait(dag_runner, sfn, monkeypatch):
    """Sync mode: the operator's own wait polls with the configured client (user agent on the wire)."""
    agents: list[str] = []
    real = StepFunctionResponse.describe_execution

    def describe_execution(self):
        agents.append(self.headers.get("User-Agent", ""))
        return real(self)

    monkeypatch.setattr(StepFunctionResponse, "describe_execution", describe_execution)
    captured: list[StepFunctionExecutionTrigger] = []
    real_wait = StepFunctionExecutionTrigger.wait

    async def wait(self):
        captured.append(self)
        return await real_wait(self)

    monkeypatch.setattr(StepFunctionExecutionTrigger, "wait", wait)
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1, "End": True}}}
    machine = sfn.create_state_machine(name="sync-proof", definition=json.dumps(definition), roleArn=ROLE_ARN)
    config = {"user_agent_extra": "mwaaops-sync-proof/1", "proxies": {"https": "http://127.0.0.1:9"}}
    with DAG(
        "base_sync_proof", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
    ) as dag:
        StepFunctionExecutionOperator(
            task_id="run",
            state_machine_arn=machine["stateMachineArn"],
            deferrable=False,
            waiter_delay=0.2,
            verify=certifi.where(),
            botocore_config=config,
        )

    result = dag_runner(dag)

    assert result.task_states == {"run": "success"}
    assert [(t.verify, t.botocore_config) for t in captured] == [(certifi.where(), config)]
    polled_by_trigger = [agent for agent in agents if "aiobotocore" in agent.lower()]
    assert polled_by_trigger, agents
    assert all("mwaaops-sync-proof/1" in agent for agent in polled_by_trigger)


# -- a retry that Airflow starts in the earlier try's resumption (Airflow 3.0 and 3.1.0) -------------
class FakeTaskInstance:
    """What resumption needs of a task instance: its try, Airflow's resumption point, its XComs."""

    def __init__(self, try_number: int, next_method: str | None = None) -> None:
        self.task_id, self.map_index, self.try_number = "t", -1, try_number
        self.next_method = next_method  # Airflow 2 keeps it on the task instance...
        self._ti_context_from_server = type("RunContext", (), {"next_method": next_method})()  # ...3 here
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcoms.get(key)


def _deferring_operator(monkeypatch) -> WaitOperator:
    monkeypatch.setattr(WaitOperator, "defer", lambda self, **kwargs: (_ for _ in ()).throw(Deferred()))
    arn = "arn:aws:states:us-east-1:1:execution:m:e"
    return WaitOperator(task_id="t", execution_arn=arn, deferrable=True)


def test_a_retry_started_in_the_failed_trys_resumption_runs_execute(monkeypatch):
    """Airflow 3.0/3.1.0 keep next_method when a resumed try fails into a retry (apache/airflow#56704):
    the retry must not re-read the failed try's event but start from execute (and defer anew)."""
    from airflow_provider_mwaaops import compat

    monkeypatch.setattr(compat, "RETRY_MAY_RESUME_EARLIER_TRY", True)
    operator = _deferring_operator(monkeypatch)
    ti = FakeTaskInstance(try_number=1)
    with pytest.raises(Deferred):
        operator.execute({"ti": ti})
    assert ti.xcoms[compat.DEFERRED_TRY_XCOM_KEY] == 1

    ti.next_method = ti._ti_context_from_server.next_method = "execute_complete"
    failure = {"status": "failure", "execution_arn": operator.execution_arn}
    assert operator.resume_execution("execute_complete", {"event": failure}, {"ti": ti}) == failure
    assert compat.task_instance_resumed(ti)

    ti.try_number = 2  # the failed try's resumption point, kept for the retry
    assert compat.resumes_earlier_try(ti)
    assert not compat.task_instance_resumed(ti)
    with pytest.raises(Deferred):  # execute ran: the retry waits on a fresh trigger
        operator.resume_execution("execute_complete", {"event": failure}, {"ti": ti})
    assert ti.xcoms[compat.DEFERRED_TRY_XCOM_KEY] == 2


@pytest.mark.parametrize("affected_line", [True, False])
def test_resumptions_airflow_did_not_keep_from_an_earlier_try_resume(monkeypatch, affected_line):
    """Where Airflow clears the resumption point, or no try was recorded, a resumption is taken as is."""
    from airflow_provider_mwaaops import compat

    monkeypatch.setattr(compat, "RETRY_MAY_RESUME_EARLIER_TRY", affected_line)
    operator = _deferring_operator(monkeypatch)
    ti = FakeTaskInstance(try_number=3, next_method="execute_complete")  # no try recorded
    if not affected_line:
        ti.xcoms[compat.DEFERRED_TRY_XCOM_KEY] = 1  # would be stale, but this line never keeps one
    event = {"status": "success", "execution_arn": operator.execution_arn}
    assert operator.resume_execution("execute_complete", {"event": event}, {"ti": ti}) == event
    assert compat.task_instance_resumed(ti)
