"""SnsRunStatusNotifier: FIFO topics, publish failures, templates, the async path and message limits."""

from __future__ import annotations

import asyncio
import datetime
import logging

import pytest

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, DAG, task
from airflow_provider_mwaaops.notifications.message import SNS_MAX_SUBJECT_CHARS, build_message
from airflow_provider_mwaaops.notifications.sns import SnsRunStatusNotifier, fifo_ids, send_sns_run_status

MISSING_TOPIC = "arn:aws:sns:us-east-1:123456789012:no-such-topic"


def test_fifo_topic_gets_group_per_dag_and_dedup_per_run_try_state(dag_runner, sns_inbox):
    inbox = sns_inbox("fifo-oncall", fifo=True)
    notifier = SnsRunStatusNotifier(target_arn=inbox.topic_arn)
    with DAG(
        "notifier_fifo",
        schedule=None,
        start_date=datetime.datetime(2026, 1, 1),
        on_success_callback=notifier,
    ) as dag:

        @task(on_execute_callback=notifier, on_success_callback=notifier)
        def first() -> None: ...

        @task(on_success_callback=notifier)
        def second() -> None: ...

        first() >> second()

    result = dag_runner(dag)
    assert result.succeeded
    messages = inbox.drain()
    assert len(messages) == 4
    assert {m.sqs_attributes["MessageGroupId"] for m in messages} == {"notifier_fifo"}
    dedup_ids = [m.sqs_attributes["MessageDeduplicationId"] for m in messages]
    assert len(set(dedup_ids)) == 4, "execute/success of one try and the DAG-level message must differ"
    # The deduplication id is a function of the message: the same callback delivered again is
    # dropped by SNS within the deduplication window.
    first_success = next(
        m for m in messages if m.attributes.get("task_id") == "first" and m.attributes["state"] == "success"
    )
    assert first_success.sqs_attributes["MessageDeduplicationId"] in dedup_ids


def test_fifo_ids_follow_run_try_and_state():
    base = {"dag": None, "run_id": "run-1"}
    message = build_message({**base, "reason": "success"}, environment_name="prod")
    group, dedup = fifo_ids(message)
    assert group == "airflow"  # no dag in this context
    assert fifo_ids(build_message({**base, "reason": "success"}, environment_name="prod"))[1] == dedup
    assert fifo_ids(build_message({**base, "reason": "task_failure"}, environment_name="prod"))[1] != dedup
    assert fifo_ids(build_message({"dag": None, "run_id": "run-2", "reason": "success"}))[1] != dedup
    assert fifo_ids(message, group_id="custom", deduplication_id="d" * 300) == (
        "custom",
        fifo_ids(message, "custom", "d" * 300)[1],
    )
    assert len(fifo_ids(message, deduplication_id="d" * 300)[1]) <= 128


def test_publish_failure_does_not_fail_the_task(dag_runner, sns_inbox):
    inbox = sns_inbox("still-delivered")
    broken = SnsRunStatusNotifier(target_arn=MISSING_TOPIC)
    working = SnsRunStatusNotifier(target_arn=inbox.topic_arn)
    with DAG("notifier_broken_topic", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task(on_execute_callback=broken, on_success_callback=[broken, working])
        def work() -> str:
            return "done"

        work()

    result = dag_runner(dag)
    assert result.succeeded
    assert result.task_states == {"work": "success"}
    # The callback after the broken one still ran.
    assert [m.attributes["state"] for m in inbox.drain()] == ["success"]


def test_publish_failure_is_logged_with_the_reason(aws_emulator, caplog):
    notifier = SnsRunStatusNotifier(target_arn=MISSING_TOPIC)
    with caplog.at_level(logging.ERROR):
        notifier({"dag": None, "run_id": "r", "reason": "success"})
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(MISSING_TOPIC in e and "NotFound" in e for e in errors), errors


def test_raise_on_failure(aws_emulator):
    from botocore.exceptions import ClientError

    notifier = SnsRunStatusNotifier(target_arn=MISSING_TOPIC, raise_on_failure=True)
    with pytest.raises(ClientError, match="NotFound"):
        notifier({"dag": None, "run_id": "r", "reason": "success"})


def test_unrenderable_template_is_a_logged_failure_not_a_crash(aws_emulator, caplog):
    notifier = SnsRunStatusNotifier(target_arn="{{ var.value.variable_nobody_set }}")
    with caplog.at_level(logging.ERROR):
        notifier({"dag": None, "run_id": "r", "reason": "success"})
    assert any("variable_nobody_set" in r.getMessage() for r in caplog.records)


def test_templates_render_per_call_so_a_shared_notifier_stays_reusable(aws_emulator, sns_inbox, monkeypatch):
    inbox = sns_inbox("templated")
    monkeypatch.setenv("AIRFLOW_VAR_TARGET_SNS_ARN", inbox.topic_arn)
    notifier = send_sns_run_status(
        target_arn="{{ var.value.target_sns_arn }}",
        subject="run {{ run_id }} " + "y" * 200,
        message="Run {{ run_id }} ended: {{ reason }}",
    )
    notifier({"dag": None, "run_id": "first", "reason": "success"})
    notifier({"dag": None, "run_id": "second", "reason": "task_failure"})
    assert notifier.target_arn == "{{ var.value.target_sns_arn }}"
    first, second = inbox.drain()
    assert first.subject.startswith("run first yyy")
    assert len(first.subject) == SNS_MAX_SUBJECT_CHARS
    assert second.document["body"] == "Run second ended: task_failure"
    assert second.attributes["state"] == "failed"


def test_filter_policy_routes_on_attributes(aws_emulator, sns_inbox):
    """A subscriber that only wants failures from production gets only those."""
    everything = sns_inbox("all-events")
    failures = aws_emulator.client("sqs").create_queue(QueueName="prod-failures")["QueueUrl"]
    sqs = aws_emulator.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=failures, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws_emulator.client("sns").subscribe(
        TopicArn=everything.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            "FilterPolicy": '{"state": ["failed"], "environment": ["prod"]}',
            "RawMessageDelivery": "true",
        },
    )
    for env, reason in [("prod", "success"), ("prod", "task_failure"), ("dev", "task_failure")]:
        SnsRunStatusNotifier(target_arn=everything.topic_arn, environment_name=env)(
            {"dag": None, "run_id": env, "reason": reason}
        )
    assert len(everything.drain()) == 3
    routed = sqs.receive_message(QueueUrl=failures, MaxNumberOfMessages=10)["Messages"]
    assert len(routed) == 1
    assert '"run_id": "prod"' in routed[0]["Body"]


def test_protocol_bodies(aws_emulator):
    message = build_message({"dag": None, "run_id": "r", "reason": "task_failure"}, environment_name="prod")
    import json

    bodies = json.loads(message.sns_message())
    assert set(bodies) == {
        "default",
        "email",
        "email-json",
        "sqs",
        "lambda",
        "http",
        "https",
        "firehose",
        "sms",
    }
    assert bodies["default"] == bodies["email"] == message.text
    assert bodies["email"].startswith("[prod] Airflow failed")
    for machine in ("sqs", "lambda", "http", "https", "firehose", "email-json"):
        assert json.loads(bodies[machine])["reason"] == "task_failure"
    assert len(bodies["sms"]) <= 140


@pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="async notifiers exist from Airflow 3.1")
def test_async_notify_publishes_through_the_shared_client(aws_emulator, sns_inbox, monkeypatch):
    inbox = sns_inbox("async")
    monkeypatch.setenv("AIRFLOW_VAR_TARGET_SNS_ARN", inbox.topic_arn)
    notifier = SnsRunStatusNotifier(target_arn="{{ var.value.target_sns_arn }}")
    notifier.context = {"dag": None, "run_id": "deadline-run", "reason": "task_failure"}

    async def main() -> None:
        await notifier

    asyncio.run(main())
    (received,) = inbox.drain()
    assert received.document["run_id"] == "deadline-run"


@pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="deadline alerts exist from Airflow 3.1")
def test_deadline_alert_through_airflows_callback_trigger(aws_emulator, sns_inbox):
    """What the triggerer does for a DeadlineAlert with SnsRunStatusNotifier as its callback: Airflow's own
    CallbackTrigger constructs the notifier with the scheduler's simple context and awaits it."""
    from airflow.triggers.callback import CallbackTrigger

    inbox = sns_inbox("deadlines")
    context = {  # the shape of Deadline.handle_miss's get_simple_context() (DAGRunResponse as JSON)
        "dag_run": {
            "dag_id": "orders",
            "dag_run_id": "scheduled__2026-01-01T00:00:00+00:00",
            "logical_date": "2026-01-01T00:00:00Z",
            "start_date": "2026-01-01T00:00:05Z",
            "end_date": None,
            "state": "running",
        },
        "deadline": {"id": "0199", "deadline_time": "2026-01-01T01:00:00Z"},
    }
    trigger = CallbackTrigger(
        callback_path="airflow_provider_mwaaops.notifications.sns.SnsRunStatusNotifier",
        callback_kwargs={"target_arn": inbox.topic_arn, "context": context},
    )

    async def run() -> list:
        return [event async for event in trigger.run()]

    events = asyncio.run(run())
    assert events[-1].payload["state"] == "success", events
    (received,) = inbox.drain()
    doc = received.document
    assert (doc["level"], doc["dag_id"], doc["run_id"]) == (
        "dag",
        "orders",
        "scheduled__2026-01-01T00:00:00+00:00",
    )
    assert doc["reason"] == "deadline missed (deadline 2026-01-01T01:00:00Z)"
    assert doc["state"] == "running"
    assert doc["duration_seconds"] > 0


@pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="async notifiers exist from Airflow 3.1")
def test_async_publish_failure_is_logged_not_raised(aws_emulator, caplog):
    notifier = SnsRunStatusNotifier(target_arn=MISSING_TOPIC)
    notifier.context = {"dag": None, "run_id": "r", "reason": "success"}

    async def main() -> None:
        await notifier

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    assert any(MISSING_TOPIC in r.getMessage() for r in caplog.records)


def test_airflow_lists_the_notifier(mwaaops_airflow):
    """Registered through get_provider_info: ``airflow providers notifications`` shows it."""
    import os
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "notifications", "-o", "json"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "airflow_provider_mwaaops.notifications.sns.SnsRunStatusNotifier" in listed


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 3 reads the event log over the REST API (log tests)")
def test_reason_airflow_ended_the_try_reaches_the_message(dag_runner, sns_inbox):
    """The log forwarder's lookup, for real on Airflow 2.11: a 'heartbeat timeout' row in the event
    log for the failing try (written as the scheduler would) appears in the failure notification."""
    inbox = sns_inbox("end-reasons")
    notifier = SnsRunStatusNotifier(target_arn=inbox.topic_arn)
    with DAG("notifier_end_reason", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task(on_failure_callback=notifier)
        def zombie(ti=None) -> None:
            from airflow.models.log import Log
            from airflow.utils.session import create_session

            with create_session() as session:
                session.add(Log(event="heartbeat timeout", task_instance=ti, extra="Detected zombie"))
            raise RuntimeError("killed")

        zombie()

    result = dag_runner(dag)
    assert result.task_states == {"zombie": "failed"}
    (message,) = inbox.drain()
    assert "heartbeat timeout" in message.document["end_reason"]
    assert message.document["exception_message"] == "killed"
