"""Why Airflow itself ended a task's try, read back from Airflow's event log.

When the scheduler fails a task whose heartbeat stopped, requeues one that sat in queued too long,
or fails one its executor reported finished while Airflow still had it queued, it writes a row to
the event log (the ``log`` table) and nothing to the task's own log: someone reading the log of the
next try sees it start with no hint of why the previous one ended. This module turns those rows
into :class:`EndReason` objects, and finds the ones that concern a given try.

The rows come from one of two sources, chosen by Airflow line: the metadata database on Airflow 2
(tasks may use the ORM there) and the REST API's ``GET /eventLogs`` on Airflow 3 (tasks cannot
reach the database). Every lookup is fail-safe: errors are logged once per process and the lookup
returns nothing, because a missing explanation must never cost a task its run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from airflow_provider_mwaaops.task_instance import TaskInstanceRef

log = logging.getLogger(__name__)


class EndReasonKind(StrEnum):
    """How Airflow ended (or restarted) a try; values are stable, for machines and filters."""

    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    STUCK_IN_QUEUED_REQUEUED = "stuck_in_queued_requeued"
    STUCK_IN_QUEUED_FAILED = "stuck_in_queued_failed"
    KILLED_EXTERNALLY = "killed_externally"
    EXECUTOR_LAUNCH_FAILURE = "executor_launch_failure"
    FAIL_FAST = "fail_fast"


@dataclass(frozen=True)
class _KindInfo:
    title: str
    decided_by: str


_KINDS: dict[EndReasonKind, _KindInfo] = {
    EndReasonKind.HEARTBEAT_TIMEOUT: _KindInfo(
        "heartbeat timeout (zombie): the task's process stopped reporting and was declared dead",
        "scheduler (task instance heartbeat check)",
    ),
    EndReasonKind.STUCK_IN_QUEUED_REQUEUED: _KindInfo(
        "stuck in queued: the executor never started it, so it was put back to scheduled",
        "scheduler (task_queued_timeout check)",
    ),
    EndReasonKind.STUCK_IN_QUEUED_FAILED: _KindInfo(
        "stuck in queued too many times: it was failed without running",
        "scheduler (task_queued_timeout check)",
    ),
    EndReasonKind.KILLED_EXTERNALLY: _KindInfo(
        "killed externally (state mismatch): the executor reported it finished while Airflow still "
        "had it queued or running",
        "scheduler (executor event processing)",
    ),
    EndReasonKind.EXECUTOR_LAUNCH_FAILURE: _KindInfo(
        "the executor could not launch it", "executor (in the scheduler)"
    ),
    EndReasonKind.FAIL_FAST: _KindInfo(
        "failed by the DAG's fail_fast after another task failed", "fail_fast (the failing task's run)"
    ),
}

#: Event names Airflow's scheduler writes (same text on 2.11 and 3.x; see SchedulerJobRunner).
_EVENT_KINDS: dict[str, EndReasonKind] = {
    "heartbeat timeout": EndReasonKind.HEARTBEAT_TIMEOUT,
    "stuck in queued reschedule": EndReasonKind.STUCK_IN_QUEUED_REQUEUED,
    "stuck in queued tries exceeded": EndReasonKind.STUCK_IN_QUEUED_FAILED,
    "state mismatch": EndReasonKind.KILLED_EXTERNALLY,
    # BaseExecutor.log_task_event callers: the LocalExecutor's base class and the amazon executors.
    "task launch failure": EndReasonKind.EXECUTOR_LAUNCH_FAILURE,
    "ecs task submit failure": EndReasonKind.EXECUTOR_LAUNCH_FAILURE,
    "batch job submit failure": EndReasonKind.EXECUTOR_LAUNCH_FAILURE,
    "lambda invoke failure": EndReasonKind.EXECUTOR_LAUNCH_FAILURE,
    # _stop_remaining_tasks when the DAG has fail_fast=True.
    "fail task": EndReasonKind.FAIL_FAST,
}

#: Every event name worth asking a source for.
REASON_EVENTS: frozenset[str] = frozenset(_EVENT_KINDS)
#: Kinds that restart the same try (Airflow does not count a requeue as a try).
_SAME_TRY_KINDS = frozenset({EndReasonKind.STUCK_IN_QUEUED_REQUEUED})


@dataclass(frozen=True)
class EventLogRow:
    """The fields of one event-log row the classification needs, whatever the source."""

    event: str
    when: datetime | None
    try_number: int | None
    extra: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class EndReason:
    """Airflow's own explanation of why a try ended (or was sent back to scheduled)."""

    kind: EndReasonKind
    #: Airflow's text from the event log (the row's ``extra``), or the title when it had none.
    message: str
    when: datetime | None
    #: The component that made the decision.
    decided_by: str
    #: The try the decision was about.
    try_number: int | None
    #: The event log's own name for it ("heartbeat timeout", ...).
    event: str

    @property
    def title(self) -> str:
        return _KINDS[self.kind].title

    @property
    def ended_try(self) -> bool:
        """False for a requeue, which sends the same try back to scheduled instead of ending it."""
        return self.kind not in _SAME_TRY_KINDS

    def as_text(self) -> str:
        """One line a person reading a task log understands without knowing the event log."""
        when = self.when.isoformat(timespec="seconds") if self.when else "an unknown time"
        which = f"Try {self.try_number}" if self.try_number is not None else "The previous try"
        verb = "was ended by Airflow" if self.ended_try else "was requeued by Airflow before it ran"
        text = f"{which} {verb}: {self.title}. Decided by the {self.decided_by} at {when}."
        if self.message and self.message != self.title:
            text += f" Airflow's event log says: {self.message}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for notifications."""
        return {
            "kind": self.kind.value,
            "event": self.event,
            "message": self.message,
            "when": self.when.isoformat() if self.when else None,
            "decided_by": self.decided_by,
            "try_number": self.try_number,
            "text": self.as_text(),
        }


def classify(row: EventLogRow) -> EndReason | None:
    """The :class:`EndReason` an event-log row stands for, or None for ordinary events."""
    kind = _EVENT_KINDS.get((row.event or "").strip().lower())
    if kind is None:
        return None
    info = _KINDS[kind]
    return EndReason(
        kind=kind,
        message=(row.extra or "").strip() or info.title,
        when=row.when,
        decided_by=info.decided_by,
        try_number=row.try_number,
        event=row.event,
    )


def reasons_before_try(rows: Iterable[EventLogRow], try_number: int) -> list[EndReason]:
    """What a person reading try ``try_number``'s log should be told, oldest first.

    That is why the previous try ended (its reason rows) and whether this very try was requeued
    before it got to run: a stuck-in-queued requeue keeps the try number, so its row carries the
    current one.
    """
    reasons = []
    for row in rows:
        reason = classify(row)
        if reason is None or row.try_number is None:
            continue
        if (row.try_number == try_number - 1 and reason.ended_try) or (
            row.try_number == try_number and not reason.ended_try
        ):
            reasons.append(reason)
    return _oldest_first(reasons)


def reasons_for_try(rows: Iterable[EventLogRow], try_number: int) -> list[EndReason]:
    """Reasons Airflow recorded about try ``try_number`` itself, oldest first (for its callbacks)."""
    reasons = [
        reason for row in rows if row.try_number == try_number and (reason := classify(row)) is not None
    ]
    return _oldest_first(reasons)


def _oldest_first(reasons: list[EndReason]) -> list[EndReason]:
    ordered = sorted(reasons, key=lambda r: (r.when is None, r.when.timestamp() if r.when else 0.0))
    return _without_consequences(ordered)


def _without_consequences(reasons: list[EndReason]) -> list[EndReason]:
    """Drop the state mismatch that Airflow 3's scheduler logs right after its own heartbeat timeout.

    Having declared the try dead, the scheduler tells the executor it failed and then reads that
    back as an executor event for a task it still has as running: a second row for the same try
    that would wrongly suggest something outside Airflow killed the task.
    """
    timed_out = {r.try_number for r in reasons if r.kind is EndReasonKind.HEARTBEAT_TIMEOUT}
    return [
        r for r in reasons if not (r.kind is EndReasonKind.KILLED_EXTERNALLY and r.try_number in timed_out)
    ]


# -- sources ------------------------------------------------------------------------------------


class EventLogSource(Protocol):
    """Reads the event-log rows of one task instance that :data:`REASON_EVENTS` names."""

    name: str

    def rows(self, ti: TaskInstanceRef, try_numbers: Sequence[int]) -> list[EventLogRow]: ...


class DatabaseEventLogSource:
    """The ``log`` table through Airflow's ORM, where ORM access is allowed: Airflow 2 tasks, and
    Airflow 3 server-side processes (API server, scheduler).

    A separate, short session keeps the caller's transaction (a task's own session on Airflow 2)
    untouched.
    """

    name = "metadata database"

    def rows(self, ti: TaskInstanceRef, try_numbers: Sequence[int]) -> list[EventLogRow]:
        from airflow.models.log import Log
        from airflow.utils.session import create_session
        from sqlalchemy import select

        query = (
            select(Log.event, Log.dttm, Log.try_number, Log.extra)
            .where(
                Log.dag_id == ti.dag_id,
                Log.task_id == ti.task_id,
                Log.run_id == ti.run_id,
                Log.map_index == ti.map_index,
                Log.try_number.in_(list(try_numbers)),
                Log.event.in_(sorted(REASON_EVENTS)),
            )
            .order_by(Log.dttm)
        )
        with create_session() as session:
            return [
                EventLogRow(event=event, when=when, try_number=try_number, extra=extra)
                for event, when, try_number, extra in session.execute(query)
            ]


class ApiEventLogSource:
    """``GET /eventLogs`` of Airflow 3's REST API, through an ``AirflowApiClient``.

    One request, filtered by the server on the task instance's keys and newest first, so the
    tries that matter are on the first page however many tries came before. Event names and try
    numbers are filtered here rather than with ``included_events``, which older 3.0 servers lack.
    """

    name = "Airflow REST API"

    def __init__(self, client: Any, page_size: int = 100):
        self.client = client
        self.page_size = page_size

    def rows(self, ti: TaskInstanceRef, try_numbers: Sequence[int]) -> list[EventLogRow]:
        wanted = set(try_numbers)
        params: dict[str, Any] = {
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "run_id": ti.run_id,
            "map_index": ti.map_index,
            "order_by": "-id",
            "limit": self.page_size,
        }
        if len(wanted) == 1:
            params["try_number"] = next(iter(wanted))
        page = self.client.get("/eventLogs", params=params)
        rows = []
        for item in (page or {}).get("event_logs", []):
            if (
                item.get("try_number") in wanted
                and str(item.get("event", "")).strip().lower() in REASON_EVENTS
            ):
                rows.append(_row_from_api(item))
        return rows


def _row_from_api(item: Mapping[str, Any]) -> EventLogRow:
    return EventLogRow(
        event=str(item.get("event", "")),
        when=_parse_when(item.get("when")),
        try_number=item.get("try_number"),
        extra=item.get("extra"),
        owner=item.get("owner"),
    )


def _parse_when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class UnconfiguredEventLogSource:
    """Airflow 3 with no ``[mwaaops]`` API settings: nothing to read, and nothing to wait for.

    Calling ``[api] base_url`` without credentials could only be refused (or hang on a URL that
    is not reachable from workers), costing every task start a round trip for nothing.
    """

    name = "nothing (set [mwaaops] api_url/api_username/api_password or mwaa_environment_name)"

    def rows(self, ti: TaskInstanceRef, try_numbers: Sequence[int]) -> list[EventLogRow]:
        return []


def default_source() -> EventLogSource:
    """The event log a task can read on the installed Airflow line.

    Through the API, one attempt within ``[mwaaops] api_timeout``: a slow or absent API must cost
    a task's start-up at most one timeout, never a retry ladder.
    """
    from airflow_provider_mwaaops import config
    from airflow_provider_mwaaops.compat import TASKS_MAY_USE_METADATA_DB

    if TASKS_MAY_USE_METADATA_DB:
        return DatabaseEventLogSource()
    if not config.api_configured():
        return UnconfiguredEventLogSource()
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient

    return ApiEventLogSource(AirflowApiClient.from_config(attempts=1))


# -- fail-safe lookups --------------------------------------------------------------------------

_reported_failures: set[str] = set()
#: Final states no scheduler decision leads to (``TaskInstanceState.SUCCESS`` renders as "success"
#: or "TaskInstanceState.SUCCESS" depending on the line).
_NOT_ENDED_BY_AIRFLOW = ("success", "skipped")


def _report_once(what: str, err: BaseException) -> None:
    """Log a lookup failure once per process and kind of error: a broken API must not flood logs."""
    key = f"{what}:{type(err).__name__}"
    if key in _reported_failures:
        return
    _reported_failures.add(key)
    log.warning("mwaaops: could not read Airflow's event log (%s): %s: %s", what, type(err).__name__, err)


def lookup_reasons_before_try(
    ti: Any, try_number: int | None = None, source: EventLogSource | None = None
) -> list[EndReason]:
    """Fail-safe :func:`reasons_before_try` for a task instance, read from ``source``."""
    try:
        ref = TaskInstanceRef.of(ti)
        number = int(try_number if try_number is not None else ti.try_number)
        if number < 1:
            return []
        src = source or default_source()
        started = time.monotonic()
        rows = src.rows(ref, [number - 1, number] if number > 1 else [number])
        log.debug("mwaaops: event log read from %s in %.3f s", src.name, time.monotonic() - started)
        return reasons_before_try(rows, number)
    except Exception as err:
        _report_once("reasons before a try", err)
        return []


def lookup_reasons_for_try(
    ti: Any, try_number: int | None = None, source: EventLogSource | None = None
) -> list[EndReason]:
    """Fail-safe :func:`reasons_for_try` for a task instance, read from ``source``."""
    try:
        ref = TaskInstanceRef.of(ti)
        number = int(try_number if try_number is not None else ti.try_number)
        return reasons_for_try((source or default_source()).rows(ref, [number]), number)
    except Exception as err:
        _report_once("reasons for a try", err)
        return []


def end_reason_from_context(
    context: Mapping[str, Any], source: EventLogSource | None = None
) -> EndReason | None:
    """Why Airflow ended the try a callback is about, or None (also on any error).

    For failure and retry callbacks: when the scheduler failed the try (heartbeat timeout, stuck
    in queued, state mismatch), the notification can say so instead of showing no exception. A
    try that failed by itself has no such row and gets None. The most recent reason that ended the
    try wins; a requeue alone did not end it.
    """
    try:
        ti = context.get("task_instance") or context.get("ti")
        if ti is None or str(getattr(ti, "state", "") or "").lower().endswith(_NOT_ENDED_BY_AIRFLOW):
            return None  # a success callback costs no lookup
        ended = [r for r in lookup_reasons_for_try(ti, source=source) if r.ended_try]
        return ended[-1] if ended else None
    except Exception as err:
        _report_once("end reason from a callback context", err)
        return None
