"""SnsRunStatusNotifier as Airflow really calls it: task- and DAG-level callbacks under dag.test(), on both
Airflow lines, read back from an SQS queue subscribed to the emulator's SNS topic.

One DAG run exercises every callback kind (its messages are collected once per module, since a
dag.test() run costs seconds): on_execute and on_success, on_retry then on_failure with a secret in
the exception, a mapped task failing with a 1 MB traceback, and the DAG's own on_failure_callback.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import pytest

from airflow_provider_mwaaops.compat import (
    AIRFLOW_V_3_0_PLUS,
    DAG,
    DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION,
    BaseHook,
    Variable,
    task,
)
from airflow_provider_mwaaops.notifications.message import SNS_MAX_MESSAGE_BYTES
from airflow_provider_mwaaops.notifications.sns import SnsRunStatusNotifier

from .conftest import Received, SnsInbox

SECRET = "hunter2-Very-Secret-Pa55"
CONNECTION_PASSWORD = "conn-Pa55w0rd-for-etl"
ONE_MB = 1024 * 1024
#: Where dag.test() hands task callbacks no exception (Airflow 3.0-3.2, see compat), no traceback can
#: reach the notifier, and those lines' dag.test() renders the task's exception with Rich, which
#: takes hours on one unbroken 1 MB line: the mapped task then fails with a short message.
FAILING_SIZE = ONE_MB if DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION else 64
needs_exception = pytest.mark.skipif(
    not DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION,
    reason="dag.test() of this Airflow passes task callbacks no exception (apache/airflow#64568)",
)
ENVIRONMENT = "h1-test-env"


def callbacks_dag() -> DAG:
    notifier = SnsRunStatusNotifier(
        target_arn="{{ var.value.target_sns_arn }}",
        message_attributes={"team": "data-platform", "run": "{{ run_id }}"},
    )
    with DAG(
        "notifier_callbacks",
        schedule=None,
        start_date=datetime.datetime(2026, 1, 1),
        catchup=False,
        on_failure_callback=notifier,
        on_success_callback=notifier,
        default_args={"retry_delay": datetime.timedelta(seconds=0)},
    ) as dag:

        @task(on_execute_callback=notifier, on_success_callback=notifier)
        def succeeds() -> int:
            return 1

        @task(retries=1, on_retry_callback=notifier, on_failure_callback=notifier)
        def retries_then_fails() -> None:
            # A sensitive Variable (its name says "password") is registered with the secrets masker
            # when read; a careless error message then carries it.
            password = Variable.get("warehouse_password")
            # A connection's password is registered with the masker when the connection is read.
            dsn = BaseHook.get_connection("warehouse").get_uri()
            raise ConnectionError(f"login refused for user etl with password {password} at {dsn}")

        @task(on_failure_callback=notifier)
        def mapped(size: int) -> None:
            if size:
                raise ValueError("x" * size)

        succeeds()
        retries_then_fails()
        mapped.expand(size=[0, FAILING_SIZE])
    return dag


@pytest.fixture(scope="module")
def delivered(mwaaops_airflow, _mwaaops_emulator_server) -> Iterator[tuple[list[Received], object]]:
    """Run the DAG once; every message the subscribed queue received, and the run's result."""
    from airflow_provider_mwaaops.testing.dag_runner import run_dag
    from airflow_provider_mwaaops.testing.emulator import patched_environ

    emulator = _mwaaops_emulator_server
    emulator.reset()
    with emulator.activated():
        inbox = SnsInbox(emulator, "callbacks")
        environ = {
            "AIRFLOW_VAR_TARGET_SNS_ARN": inbox.topic_arn,
            "AIRFLOW_VAR_WAREHOUSE_PASSWORD": SECRET,
            "AIRFLOW_CONN_WAREHOUSE": f"postgres://etl:{CONNECTION_PASSWORD}@warehouse.internal:5432/dw",
            "AIRFLOW__MWAAOPS__ENVIRONMENT_NAME": ENVIRONMENT,
        }
        with patched_environ(environ):
            result = run_dag(callbacks_dag())
        yield inbox.drain(), result


def pick(messages: list[Received], **attributes: str) -> list[Received]:
    return [m for m in messages if all(m.attributes.get(k) == v for k, v in attributes.items())]


def test_the_run_fails_as_designed(delivered):
    _, result = delivered
    assert result.state == "failed"
    assert result.task_states == {
        "succeeds": "success",
        "retries_then_fails": "failed",
        "mapped[0]": "success",
        "mapped[1]": "failed",
    }


def test_every_callback_published_one_message(delivered):
    messages, _ = delivered
    seen = sorted(
        (m.attributes["level"], m.attributes.get("task_id", ""), m.attributes["state"]) for m in messages
    )
    assert seen == [
        ("dag", "", "failed"),
        ("task", "mapped", "failed"),
        ("task", "retries_then_fails", "failed"),
        ("task", "retries_then_fails", "up_for_retry"),
        ("task", "succeeds", "running"),
        ("task", "succeeds", "success"),
    ]


def test_task_failure_message_carries_every_field(delivered):
    messages, result = delivered
    (failure,) = pick(messages, task_id="retries_then_fails", state="failed")
    doc = failure.document
    assert doc["level"] == "task"
    assert doc["environment"] == ENVIRONMENT
    assert doc["dag_id"] == "notifier_callbacks"
    assert doc["task_id"] == "retries_then_fails"
    assert doc["run_id"] == result.run_id
    assert doc["map_index"] is None
    assert (doc["try_number"], doc["max_tries"]) == (2, 1)
    assert doc["state"] == "failed"
    assert doc["logical_date"]
    if AIRFLOW_V_3_0_PLUS:
        assert isinstance(doc["duration_seconds"], float)
        assert doc["duration_seconds"] >= 0
    else:
        # Airflow 2.11's dag.test() never sets the try's start_date (a worker does, in
        # check_and_change_state_before_execution), so there is no duration to report here.
        assert doc["start_date"] is None
        assert doc["duration_seconds"] is None
    assert doc["end_date"]
    assert doc["hostname"]
    if DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION:
        assert doc["exception_type"] == "ConnectionError"
        assert doc["exception_message"].startswith("login refused for user etl with password")
        assert "Traceback" in doc["traceback"]
        assert "raise ConnectionError" in doc["traceback"]
    else:
        assert (doc["exception_type"], doc["exception_message"], doc["traceback"]) == (None, None, None)
    expected_link = (
        "http://localhost:8080/dags/notifier_callbacks/runs/"
        if AIRFLOW_V_3_0_PLUS
        else "http://localhost:8080/dags/notifier_callbacks/grid?"
    )
    assert doc["log_url"].startswith(expected_link)
    assert "retries_then_fails" in doc["log_url"]
    # Filter-policy attributes, the user's own (templated) ones included.
    assert failure.attributes == {
        "dag_id": "notifier_callbacks",
        "task_id": "retries_then_fails",
        "state": "failed",
        "environment": ENVIRONMENT,
        "level": "task",
        "team": "data-platform",
        "run": result.run_id,
    }
    assert failure.subject == f"[{ENVIRONMENT}] Airflow failed: notifier_callbacks.retries_then_fails"


def test_retry_message_counts_the_try(delivered):
    messages, _ = delivered
    (retry,) = pick(messages, task_id="retries_then_fails", state="up_for_retry")
    assert (retry.document["try_number"], retry.document["max_tries"]) == (1, 1)
    expected_type = "ConnectionError" if DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION else None
    assert retry.document["exception_type"] == expected_type


@needs_exception
def test_secret_in_the_exception_is_masked_everywhere(delivered):
    messages, _ = delivered
    for message in pick(messages, task_id="retries_then_fails"):
        envelope = message.body + json.dumps(message.attributes) + (message.subject or "")
        assert SECRET not in envelope
        assert CONNECTION_PASSWORD not in envelope
        assert "password ***" in message.document["exception_message"]
        assert "postgres://etl:***@warehouse.internal" in message.document["exception_message"]


@needs_exception
def test_one_megabyte_traceback_still_fits(delivered):
    messages, _ = delivered
    (mapped,) = pick(messages, task_id="mapped")
    doc = mapped.document
    assert doc["map_index"] == 1
    assert doc["exception_type"] == "ValueError"
    assert "characters trimmed to fit the SNS size limit" in doc["traceback"]
    # The frame that raised is kept (the end of the traceback), and so is its first line.
    assert doc["traceback"].startswith("Traceback (most recent call last)")
    assert doc["traceback"].rstrip().endswith("x")
    assert "/mapped/1" in doc["log_url"] if AIRFLOW_V_3_0_PLUS else "map_index=1" in doc["log_url"]
    assert len(mapped.body.encode()) < SNS_MAX_MESSAGE_BYTES


def test_dag_level_message(delivered):
    messages, result = delivered
    (dag_message,) = pick(messages, level="dag")
    doc = dag_message.document
    assert doc["dag_id"] == "notifier_callbacks"
    assert doc["run_id"] == result.run_id
    assert doc["task_id"] is None
    assert doc["state"] == "failed"
    assert doc["reason"] == "task_failure"
    assert doc["last_task_id"] in {"succeeds", "retries_then_fails", "mapped"}
    assert doc["logical_date"]
    assert doc["environment"] == ENVIRONMENT
    assert doc["log_url"].endswith(result.run_id.replace(":", "%3A").replace("+", "%2B")) or (
        "dag_run_id=" in doc["log_url"]
    )
    assert dag_message.attributes["run"] == result.run_id
    assert "task_id" not in dag_message.attributes
    assert dag_message.subject == f"[{ENVIRONMENT}] Airflow failed: notifier_callbacks"


def test_readable_body_for_people(delivered):
    """Email subscribers get text, not JSON: the 'email' body of the same publish."""
    messages, _ = delivered
    (success,) = pick(messages, task_id="succeeds", state="success")
    assert success.document["exception_type"] is None
    assert success.document["traceback"] is None
