"""TaskTokenNotifier against a real waiting execution in the emulator's Step Functions engine."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _forget_answers(mwaaops_airflow: Any) -> Iterator[None]:
    """The answers' records are Variables in the session's shared metadata DB: remove ours."""
    from airflow_provider_mwaaops.testing.task_tokens import forget_answers

    yield
    forget_answers()


def _events(aws_emulator: Any, execution_arn: str, kind: str) -> list[dict[str, Any]]:
    history = aws_emulator.client("stepfunctions").get_execution_history(executionArn=execution_arn)
    return [event for event in history["events"] if event["type"] == kind]


def _dag(dag_id: str, notifier: Any, fail: bool = False, retries: int = 0) -> Any:
    from airflow_provider_mwaaops.compat import DAG, task

    with DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        on_success_callback=notifier,
        on_failure_callback=notifier,
    ) as dag:

        @task(retries=retries, retry_delay=0, on_failure_callback=notifier, on_retry_callback=notifier)
        def work() -> str:
            if fail:
                raise RuntimeError("the restore broke")
            return "restored"

        work()
    return dag


def test_success_reaches_the_waiting_execution_once(dag_runner: Any, aws_emulator: Any, caplog: Any) -> None:
    from airflow_provider_mwaaops.notifications.task_token import (
        ALREADY_ANSWERED,
        TaskTokenNotifier,
        answer_task_token,
    )
    from airflow_provider_mwaaops.testing.task_tokens import start_waiting_execution

    waiting = start_waiting_execution(aws_emulator, "notifier-success")
    notifier = TaskTokenNotifier(summary={"restored_tables": 3})
    result = dag_runner(_dag("task_token_success", notifier), conf={"task_token": waiting.task_token})
    assert result.succeeded, result

    described = aws_emulator.wait_for_execution(waiting.execution_arn)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["dag_id"] == "task_token_success"
    assert output["run_id"] == result.run_id
    assert output["restored_tables"] == 3
    assert output.get("tasks", {"work": "success"}) == {"work": "success"}

    # The same run's callback again (a re-run, a second callback): nothing is sent.
    context = {"dag_run": _FakeRun("task_token_success", result.run_id, "success")}
    with caplog.at_level(logging.INFO):
        assert answer_task_token(context, waiting.task_token) == ALREADY_ANSWERED
    assert "already answered (success" in caplog.text
    assert len(_events(aws_emulator, waiting.execution_arn, "TaskSucceeded")) == 1


def test_failure_only_after_the_last_try(dag_runner: Any, aws_emulator: Any) -> None:
    from airflow_provider_mwaaops.notifications.task_token import TaskTokenNotifier
    from airflow_provider_mwaaops.testing.task_tokens import start_waiting_execution

    waiting = start_waiting_execution(aws_emulator, "notifier-failure")
    notifier = TaskTokenNotifier(error="RecoveryFailed")
    dag = _dag("task_token_failure", notifier, fail=True, retries=1)
    result = dag_runner(dag, conf={"task_token": waiting.task_token})
    assert not result.succeeded

    described = aws_emulator.wait_for_execution(waiting.execution_arn)
    assert described["status"] == "FAILED"
    (failed,) = _events(aws_emulator, waiting.execution_arn, "TaskFailed")
    details = failed["taskFailedEventDetails"]
    assert details["error"] == "RecoveryFailed"
    from airflow_provider_mwaaops.compat import DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION

    if DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION:
        assert "RuntimeError: the restore broke" in details["cause"]
    else:
        # dag.test() of Airflow 3.0-3.2 gives the task's failure callback no exception (compat): the
        # cause then says that the run failed, never the exception text it cannot know.
        assert details["cause"]
        assert "the restore broke" not in details["cause"]


def test_an_expired_token_is_logged_clearly(mwaaops_airflow: Any, aws_emulator: Any, caplog: Any) -> None:
    from airflow_provider_mwaaops.notifications.task_token import TOKEN_GONE, TOKEN_INVALID, answer_task_token
    from airflow_provider_mwaaops.testing.task_tokens import start_waiting_execution, waiting_state_machine

    machine = waiting_state_machine(aws_emulator, "times-out", timeout_seconds=1)
    waiting = start_waiting_execution(aws_emulator, "notifier-expired", machine=machine)
    assert aws_emulator.wait_for_execution(waiting.execution_arn)["status"] == "FAILED"  # States.Timeout
    context = {"dag_run": _FakeRun("d", "expired-run", "success")}
    with caplog.at_level(logging.ERROR):
        outcome = answer_task_token(context, waiting.task_token)
    # AWS answers an expired token with TaskTimedOut; moto's engine with InvalidToken.
    assert outcome in (TOKEN_GONE, TOKEN_INVALID)
    assert "Step Functions" in caplog.text
    assert "task token" in caplog.text
    assert answer_task_token(context, waiting.task_token) == "already_answered"  # not tried twice

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert answer_task_token({"dag_run": _FakeRun("d", "bad", "success")}, "not-a-token") == TOKEN_INVALID
    assert "rejected the task token as invalid (InvalidToken)" in caplog.text


def test_no_token_and_retrying_tries_send_nothing(aws_emulator: Any) -> None:
    from airflow_provider_mwaaops.notifications.task_token import NO_TOKEN, NOT_YET, answer_task_token

    assert answer_task_token({}, None) == NO_TOKEN
    retrying = {"ti": _FakeRun("d", "r", "up_for_retry"), "exception": RuntimeError("x")}
    assert answer_task_token(retrying, "token-would-be-invalid") == NOT_YET


def test_outcome_is_checked() -> None:
    from airflow_provider_mwaaops.notifications.task_token import TaskTokenNotifier

    with pytest.raises(ValueError, match="outcome must be"):
        TaskTokenNotifier(outcome="maybe")  # type: ignore[arg-type]


class _FakeRun:
    """Just enough of a DagRun / TaskInstance for a context built by hand."""

    def __init__(self, dag_id: str, run_id: str, state: str) -> None:
        self.dag_id, self.run_id, self.state, self.conf = dag_id, run_id, state, {}
