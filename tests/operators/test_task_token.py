"""TaskTokenOperator at the end of a DAG, against a real waiting execution."""

from __future__ import annotations

import json
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


def _dag(dag_id: str, fail: bool) -> Any:
    from airflow_provider_mwaaops.compat import DAG, task
    from airflow_provider_mwaaops.notifications.task_token import TaskTokenNotifier
    from airflow_provider_mwaaops.operators.task_token import TaskTokenOperator

    with DAG(
        dag_id, schedule=None, start_date=datetime(2026, 1, 1), on_failure_callback=TaskTokenNotifier()
    ) as dag:

        @task
        def restore() -> dict[str, int]:
            if fail:
                raise RuntimeError("restore failed")
            return {"task_instance": 42}

        restored = restore()
        restored >> TaskTokenOperator(
            task_id="answer",
            summary={"restored": "{{ ti.xcom_pull(task_ids='restore') }}"},
            error="RecoveryFailed",
        )
    return dag


def test_success_answers_with_the_summary_once(dag_runner: Any, aws_emulator: Any) -> None:
    from airflow_provider_mwaaops.notifications.task_token import ALREADY_ANSWERED, answer_task_token
    from airflow_provider_mwaaops.testing.dag_runner import task_return_values
    from airflow_provider_mwaaops.testing.task_tokens import start_waiting_execution

    waiting = start_waiting_execution(aws_emulator, "operator-success")
    result = dag_runner(_dag("task_token_operator_ok", fail=False), conf={"task_token": waiting.task_token})
    assert result.succeeded, result
    assert task_return_values("task_token_operator_ok", result.run_id)["answer"]["answer"] == "sent_success"

    described = aws_emulator.wait_for_execution(waiting.execution_arn)
    assert described["status"] == "SUCCEEDED"  # the execution continued after SendTaskSuccess
    output = json.loads(described["output"])
    assert output["run_id"] == result.run_id
    assert "task_instance" in str(output["restored"])

    again = answer_task_token({"dag_run": result}, waiting.task_token, outcome="success")
    assert again == ALREADY_ANSWERED
    history = aws_emulator.client("stepfunctions").get_execution_history(executionArn=waiting.execution_arn)
    assert [e["type"] for e in history["events"]].count("TaskSucceeded") == 1


def test_failed_upstream_answers_failure_once(dag_runner: Any, aws_emulator: Any) -> None:
    from airflow_provider_mwaaops.testing.task_tokens import start_waiting_execution

    waiting = start_waiting_execution(aws_emulator, "operator-failure")
    result = dag_runner(
        _dag("task_token_operator_failed", fail=True), conf={"task_token": waiting.task_token}
    )
    assert result.task_states["answer"] == "success"  # it ran (all_done) and answered

    described = aws_emulator.wait_for_execution(waiting.execution_arn)
    assert described["status"] == "FAILED"
    events = aws_emulator.client("stepfunctions").get_execution_history(executionArn=waiting.execution_arn)[
        "events"
    ]
    failures = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    # One answer although the DAG's failure callback ran too.
    assert len(failures) == 1
    assert failures[0]["error"] == "RecoveryFailed"
    assert failures[0]["cause"] == "failed tasks: restore"
