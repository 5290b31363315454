"""Event-log rows become end reasons; lookups pick the rows that concern a try and never raise."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mwaaops.log.reasons import (
    ApiEventLogSource,
    DatabaseEventLogSource,
    EndReasonKind,
    EventLogRow,
    TaskInstanceRef,
    classify,
    end_reason_from_context,
    lookup_reasons_before_try,
    reasons_before_try,
    reasons_for_try,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# The texts Airflow's scheduler writes (SchedulerJobRunner, 2.11 and 3.3).
HEARTBEAT_EXTRA = (
    "Task did not emit heartbeat within time limit (300 seconds) and will be terminated. See "
    "https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/tasks.html#task-instance-heartbeat-timeout"
)
REQUEUE_EXTRA = (
    "Task was in queued state for longer than 600.0 seconds; task state will be set back to scheduled."
)


def row(event: str, try_number: int, seconds: int = 0, extra: str | None = None) -> EventLogRow:
    return EventLogRow(event=event, when=T0 + timedelta(seconds=seconds), try_number=try_number, extra=extra)


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("heartbeat timeout", EndReasonKind.HEARTBEAT_TIMEOUT),
        ("stuck in queued reschedule", EndReasonKind.STUCK_IN_QUEUED_REQUEUED),
        ("stuck in queued tries exceeded", EndReasonKind.STUCK_IN_QUEUED_FAILED),
        ("state mismatch", EndReasonKind.KILLED_EXTERNALLY),
        ("task launch failure", EndReasonKind.EXECUTOR_LAUNCH_FAILURE),
        ("ecs task submit failure", EndReasonKind.EXECUTOR_LAUNCH_FAILURE),
        ("fail task", EndReasonKind.FAIL_FAST),
    ],
)
def test_airflow_event_names_are_classified(event: str, kind: EndReasonKind) -> None:
    reason = classify(row(event, 3, extra="why"))

    assert reason is not None
    assert reason.kind is kind
    assert (reason.event, reason.try_number, reason.message, reason.when) == (event, 3, "why", T0)


@pytest.mark.parametrize("event", ["running", "success", "failed", "up_for_retry", "cli_task_run", "trigger"])
def test_ordinary_events_are_not_reasons(event: str) -> None:
    assert classify(row(event, 1)) is None


def test_text_names_the_try_the_kind_the_component_the_time_and_airflows_words() -> None:
    reason = classify(row("heartbeat timeout", 1, extra=HEARTBEAT_EXTRA))
    assert reason is not None

    text = reason.as_text()

    assert text.startswith("Try 1 was ended by Airflow: heartbeat timeout")
    assert "Decided by the scheduler" in text
    assert "2026-11-23T12:00:00+00:00" in text
    assert text.endswith(HEARTBEAT_EXTRA)
    assert reason.as_dict()["kind"] == "heartbeat_timeout"


def test_a_requeue_says_the_same_try_was_requeued() -> None:
    reason = classify(row("stuck in queued reschedule", 1, extra=REQUEUE_EXTRA))
    assert reason is not None

    assert not reason.ended_try
    assert reason.as_text().startswith("Try 1 was requeued by Airflow before it ran: stuck in queued")


def test_reasons_before_a_try_are_the_previous_end_and_this_trys_requeues_oldest_first() -> None:
    rows = [
        row("running", 1, 0),
        row("stuck in queued reschedule", 1, 1),  # requeue of try 1: history, not news for try 2
        row("heartbeat timeout", 1, 30, HEARTBEAT_EXTRA),
        row("up_for_retry", 1, 31),
        row("stuck in queued reschedule", 2, 90, REQUEUE_EXTRA),
        row("heartbeat timeout", 0, 5),  # another try altogether
    ]

    reasons = reasons_before_try(rows, 2)

    assert [(r.kind, r.try_number) for r in reasons] == [
        (EndReasonKind.HEARTBEAT_TIMEOUT, 1),
        (EndReasonKind.STUCK_IN_QUEUED_REQUEUED, 2),
    ]


def test_the_state_mismatch_following_a_heartbeat_timeout_is_not_reported_twice() -> None:
    rows = [
        row("state mismatch", 1, 2, "Executor ... finished with state failed"),
        row("heartbeat timeout", 1, 1),
    ]

    assert [r.kind for r in reasons_before_try(rows, 2)] == [EndReasonKind.HEARTBEAT_TIMEOUT]
    # Alone, a state mismatch is what it says: something outside Airflow ended the task.
    assert [r.kind for r in reasons_for_try(rows[:1], 1)] == [EndReasonKind.KILLED_EXTERNALLY]


class BrokenSource:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def rows(self, ti: TaskInstanceRef, try_numbers: Any) -> list[EventLogRow]:
        self.calls += 1
        raise ConnectionError("event log unreachable")


def _ti(try_number: int, dag_id: str = "dag", run_id: str = "run") -> SimpleNamespace:
    return SimpleNamespace(dag_id=dag_id, task_id="task", run_id=run_id, map_index=-1, try_number=try_number)


def test_lookups_swallow_errors_and_report_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    from airflow_provider_mwaaops.log import reasons

    reasons._reported_failures.clear()
    source = BrokenSource()

    with caplog.at_level(logging.WARNING, logger="airflow_provider_mwaaops.log.reasons"):
        first = lookup_reasons_before_try(_ti(2), source=source)
        second = lookup_reasons_before_try(_ti(3), source=source)
        from_context = end_reason_from_context({"ti": _ti(2)}, source=source)

    assert (first, second, from_context) == ([], [], None)
    assert source.calls == 3
    reported = [r.getMessage() for r in caplog.records if "event log unreachable" in r.getMessage()]
    # Three failures, two kinds of lookup (before a try, for a try): two warnings.
    assert len(reported) == 2, reported
    assert all("ConnectionError: event log unreachable" in message for message in reported)


def test_an_unreachable_api_costs_one_short_timeout_and_no_error() -> None:
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AirflowApiClient.from_url(f"http://127.0.0.1:{port}", "admin", "pw", timeout=1.0, attempts=1)
    started = time.monotonic()

    reasons = lookup_reasons_before_try(_ti(2), source=ApiEventLogSource(client))

    assert reasons == []
    print(f"unreachable API lookup took {time.monotonic() - started:.3f} s")


def test_the_metadata_database_source_reads_what_the_scheduler_writes(mwaaops_airflow: Any) -> None:
    """Rows written with the scheduler's own ``Log(event, task_instance=key, extra)`` call."""
    from airflow.models.log import Log
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.utils.session import create_session

    def key(try_number: int, map_index: int = -1) -> TaskInstanceKey:
        return TaskInstanceKey("db_dag", "task", "db_run", try_number, map_index)

    with create_session() as session:
        session.add(Log(event="running", task_instance=key(1)))
        session.add(Log(event="heartbeat timeout", task_instance=key(1), extra=HEARTBEAT_EXTRA))
        session.add(Log(event="heartbeat timeout", task_instance=key(1, map_index=4), extra="other index"))
        session.add(Log(event="stuck in queued reschedule", task_instance=key(2), extra=REQUEUE_EXTRA))

    reasons = lookup_reasons_before_try(_ti(2, "db_dag", "db_run"), source=DatabaseEventLogSource())
    ended = end_reason_from_context({"ti": _ti(1, "db_dag", "db_run")}, source=DatabaseEventLogSource())
    mapped = end_reason_from_context(
        {"task_instance": SimpleNamespace(**{**vars(_ti(1, "db_dag", "db_run")), "map_index": 4})},
        source=DatabaseEventLogSource(),
    )

    assert [(r.kind, r.try_number, r.message) for r in reasons] == [
        (EndReasonKind.HEARTBEAT_TIMEOUT, 1, HEARTBEAT_EXTRA),
        (EndReasonKind.STUCK_IN_QUEUED_REQUEUED, 2, REQUEUE_EXTRA),
    ]
    assert reasons[0].when is not None
    assert ended is not None
    assert ended.kind is EndReasonKind.HEARTBEAT_TIMEOUT
    assert mapped is not None
    assert mapped.message == "other index"
    succeeded = end_reason_from_context({"ti": _ti(2, "db_dag", "db_run")}, source=DatabaseEventLogSource())
    assert succeeded is None
