"""The message builder on its own: limits, masking, optional fields, contexts Airflow may hand over."""

from __future__ import annotations

import datetime
import json
import sys
import types
from types import SimpleNamespace

import pytest

from airflow_provider_mwaaops.notifications import message as message_module
from airflow_provider_mwaaops.notifications.message import (
    SNS_MAX_MESSAGE_BYTES,
    SNS_MAX_SUBJECT_CHARS,
    build_message,
    collect_fields,
)

UTC = datetime.UTC


def task_context(**ti_overrides) -> dict:
    ti = SimpleNamespace(
        dag_id="orders",
        task_id="load",
        run_id="scheduled__2026-01-01T00:00:00+00:00",
        map_index=-1,
        try_number=2,
        max_tries=3,
        state="failed",
        hostname="worker-7",
        start_date=datetime.datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        end_date=datetime.datetime(2026, 1, 1, 0, 7, 30, tzinfo=UTC),
        duration=None,
    )
    for key, value in ti_overrides.items():
        setattr(ti, key, value)
    return {
        "ti": ti,
        "dag": SimpleNamespace(dag_id="orders"),
        "run_id": ti.run_id,
        "logical_date": datetime.datetime(2026, 1, 1, tzinfo=UTC),
    }


def failing(text: str) -> BaseException:
    try:
        raise RuntimeError(text)
    except RuntimeError as error:
        return error


def test_task_fields_and_readable_text(mwaaops_airflow):
    context = task_context()
    context["exception"] = failing("disk full")
    notification = build_message(context, environment_name="prod")
    fields = notification.document
    assert fields["duration_seconds"] == 150.0
    assert (fields["try_number"], fields["max_tries"]) == (2, 3)
    assert fields["exception_type"] == "RuntimeError"
    assert fields["hostname"] == "worker-7"
    assert "Try:" in notification.text
    assert "2 of 4" in notification.text
    assert "Duration:         150.0 s" in notification.text
    assert notification.subject == "[prod] Airflow failed: orders.load"


def test_running_try_reports_duration_so_far(mwaaops_airflow):
    start = datetime.datetime.now(UTC) - datetime.timedelta(seconds=30)
    fields = collect_fields(task_context(state="running", start_date=start, end_date=None), "e")
    assert fields["state"] == "running"
    assert 29 <= fields["duration_seconds"] < 3600


def test_dag_level_context_without_task_instance(mwaaops_airflow):
    """What Airflow 3 hands a DAG callback when it has no task instance to attach."""
    fields = collect_fields(
        {"dag": SimpleNamespace(dag_id="orders"), "run_id": "r1", "reason": "task_failure"}, "e"
    )
    assert fields["level"] == "dag"
    assert fields["state"] == "failed"
    assert fields["task_id"] is None
    assert fields["log_url"].endswith("r1")


def test_subject_is_ascii_single_line_and_short(mwaaops_airflow):
    notification = build_message(task_context(), subject="Échec\nde la tâche " + "z" * 300)
    assert len(notification.subject) == SNS_MAX_SUBJECT_CHARS
    assert notification.subject.isascii()
    assert "\n" not in notification.subject


@pytest.mark.parametrize("size", [300_000, 1_048_576, 5 * 1_048_576])
def test_huge_traceback_is_trimmed_under_the_limit(mwaaops_airflow, size):
    context = task_context()
    context["exception"] = failing("\N{SNOWMAN}" * size)  # 3 bytes per character in UTF-8
    notification = build_message(context)
    assert notification.size_bytes() < SNS_MAX_MESSAGE_BYTES
    assert len(notification.sns_message().encode()) < SNS_MAX_MESSAGE_BYTES
    assert "characters trimmed" in notification.document["traceback"]
    assert notification.document["traceback"].startswith("Traceback")


def test_long_body_and_long_traceback_share_the_budget(mwaaops_airflow):
    context = task_context()
    context["exception"] = failing("t" * 1_000_000)
    notification = build_message(context, body="b" * 1_000_000)
    assert notification.size_bytes() < SNS_MAX_MESSAGE_BYTES
    assert len(notification.document["traceback"]) > 1000
    assert len(notification.document["body"]) > 1000


def test_registered_secret_is_masked(mwaaops_airflow):
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.log import mask_secret
    else:
        from airflow.utils.log.secrets_masker import mask_secret
    secret = "Tr0ub4dor&3-unit-test"
    mask_secret(secret)
    context = task_context()
    context["exception"] = failing(f"auth failed: {secret}")
    notification = build_message(context, body=f"password was {secret}", result={"token": secret})
    assert secret not in notification.sns_message()
    assert "auth failed: ***" in notification.document["exception_message"]


def test_masker_failure_withholds_free_text(mwaaops_airflow, monkeypatch):
    def broken(value):
        raise RuntimeError("masker down")

    monkeypatch.setattr(message_module.secrets_masking, "redact", broken)
    context = task_context()
    context["exception"] = failing("secret-in-here")
    notification = build_message(context)
    assert "secret-in-here" not in notification.sns_message()
    assert notification.document["dag_id"] == "orders"


def test_end_reason_from_the_log_forwarder_is_included(mwaaops_airflow, monkeypatch):
    fake = types.ModuleType("airflow_provider_mwaaops.log.reasons")
    fake.end_reason_from_context = lambda context: SimpleNamespace(
        as_text=lambda: "heartbeat timeout at 10:02"
    )
    monkeypatch.setitem(sys.modules, "airflow_provider_mwaaops.log.reasons", fake)
    notification = build_message(task_context())
    assert notification.document["end_reason"] == "heartbeat timeout at 10:02"
    assert "Ended by Airflow: heartbeat timeout at 10:02" in notification.text


def test_end_reason_errors_leave_the_field_out(mwaaops_airflow, monkeypatch):
    fake = types.ModuleType("airflow_provider_mwaaops.log.reasons")

    def explode(context):
        raise RuntimeError("API down")

    fake.end_reason_from_context = explode
    monkeypatch.setitem(sys.modules, "airflow_provider_mwaaops.log.reasons", fake)
    assert build_message(task_context()).document["end_reason"] is None


def test_user_attributes_and_attribute_limit(mwaaops_airflow):
    extra = {f"k{i}": f"v{i}" for i in range(12)}
    notification = build_message(task_context(), environment_name="prod", extra_attributes=extra)
    assert len(notification.attributes) == 10
    assert notification.attributes["dag_id"] == "orders"
    assert notification.attributes["environment"] == "prod"
    publish = notification.publish_kwargs("arn:aws:sns:us-east-1:1:t")
    assert publish["MessageStructure"] == "json"
    assert json.loads(publish["Message"])["default"] == notification.text
