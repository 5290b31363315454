"""Distributed Map runs that fail like AWS's, and that a parent redrive redrives.

moto's engine starts a Map Run per Distributed Map state but never applies its tolerated failure
threshold: a child that fails leaves ``null`` in the results and the Map succeeds anyway. AWS fails
the Map Run (``States.ExceedToleratedFailureThreshold``) once more children failed than
``ToleratedFailureCount`` / ``ToleratedFailurePercentage`` allow (both 0 unless set), which is what
makes a parent workflow fail and need a redrive. Here:

- the threshold is checked when the Map Run's children are done, against the Map Run's current
  settings, so an ``UpdateMapRun`` made while the Map Run runs takes effect;
- ``UpdateMapRun`` acts on a Map Run in progress only. The API reference (API_UpdateMapRun)
  describes it as "Updates an in-progress Map Run's configuration" and documents neither an error
  nor any effect for a Map Run that has ended; no public report of the service's answer was found
  (AWS docs, boto3/SDK references, GitHub issues, LocalStack's AWS-recorded snapshots). So the
  emulator neither invents an error text nor lets a setting given to an ended Map Run reach its
  next redrive: the call succeeds and changes nothing. To change a redriven Map Run, update it once
  it is RUNNING again (DescribeMapRun ``redriveCount`` up, ``status`` RUNNING);
- a redrive of the parent reuses the Map State's previous Map Run (same ARN) instead of starting
  another: ``MapRunRedriven`` replaces ``MapRunStarted`` in the history, ``DescribeMapRun`` shows
  ``redriveCount``/``redriveDate``, counts restart from the children that already succeeded, and
  only the unsuccessful children run (see :mod:`.stepfunctions_replay`);
- a Map Run is redriven at most 1000 times: "You haven't exceeded the hard limit of 1000 redrives of
  a given Map Run. If you've exceeded this limit, you'll receive the States.Runtime error"
  (developer guide, *Redriving Map Runs*). The Map state then fails with ``States.Runtime``; AWS
  documents no cause, so none is given;
- a child that fails no longer stays counted as running in ``executionCounts``.

Children run to completion before the threshold is checked (AWS "may continue to run child
workflows ... after the tolerated failure threshold is exceeded", and then stops), so a failed Map
Run here has run every item once. moto starts a Map Run's workers once, from the ``maxConcurrency``
it has then: a ``maxConcurrency`` updated while it runs is recorded (DescribeMapRun shows it) but
the number of children running at once stays as it started. moto only accepts
``ExecutionType: STANDARD`` children, which a redrive resumes from their own point of failure;
EXPRESS children (rerun whole on AWS) do not parse.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any, cast

from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType, MapRunStatus
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (  # noqa: E501
    DistributedIterationComponent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (  # noqa: E501
    MapRunRecord,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator.distributed_iterator_worker import (  # noqa: E501
    DistributedIteratorWorker,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from airflow_provider_mwaaops.testing.extensions._patching import subclasses_defining, wrap_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_replay import (
    iteration_succeeded,
    position_of,
)

_PATCH = "mwaaops.stepfunctions.map_runs"
_FAILURES_ATTR = "_mwaaops_failures"
_ATTEMPT_ATTR = "_mwaaops_attempt_number"
_LOCK = threading.Lock()
THRESHOLD_ERROR = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"
#: "the hard limit of 1000 redrives of a given Map Run" (developer guide, Redriving Map Runs).
MAX_MAP_RUN_REDRIVES = 1000


def exceeds_tolerance(failed: int, total: int, tolerated_count: float, tolerated_percentage: float) -> bool:
    """AWS's rule: a threshold left at 0 tolerates nothing only if the other one is 0 as well."""
    if failed == 0:
        return False
    if not tolerated_count and not tolerated_percentage:
        return True
    if tolerated_count and failed > tolerated_count:
        return True
    return bool(tolerated_percentage) and total > 0 and failed * 100.0 / total > tolerated_percentage


def _reset_counters(record: Any) -> None:
    """Counts of a redriven Map Run start again from the children that already succeeded."""
    for counter in (record.item_counter, record.execution_counter):
        for name in ("aborted", "failed", "pending", "running", "timed_out"):
            part = getattr(counter, name)
            part.offset(-part.get())
        counter.total.offset(counter.succeeded.get() - counter.total.get())


def map_run_redrive_count(record: Any) -> int:
    return int(getattr(record, "_mwaaops_redrive_count", 0))


def _redrive_map_run(record: Any) -> None:
    record._mwaaops_redrive_count = map_run_redrive_count(record) + 1
    record._mwaaops_redrive_date = datetime.datetime.now(tz=datetime.UTC)
    record.status = MapRunStatus.RUNNING
    record.stop_date = None
    _reset_counters(record)


class _MapRunRedrivenEvents:
    """The parent's EventManager, writing the redriven Map Run's start as ``MapRunRedriven``."""

    def __init__(self, inner: Any, map_run_arn: str, redrive_count: int):
        self._inner = inner
        self._details = {"mapRunArn": map_run_arn, "redriveCount": redrive_count}
        self._rewritten = False

    def add_event(self, context: Any, event_type: Any, event_details: Any = None, **kwargs: Any) -> int:
        if not self._rewritten and str(getattr(event_type, "value", event_type)) == "MapRunStarted":
            self._rewritten = True
            event_type = "MapRunRedriven"
            event_details = {"mapRunRedrivenEventDetails": dict(self._details)}
        return self._inner.add_event(
            context=context, event_type=event_type, event_details=event_details, **kwargs
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _component_eval_body(original: Callable[..., Any]) -> Callable[..., Any]:
    def _eval_body(self: Any, env: Any) -> None:
        eval_input = env.stack[-1]
        record = eval_input.map_run_record
        setattr(record, _FAILURES_ATTR, 0)
        position = position_of(env)
        if position is None:
            return original(self, env)
        attempt = position.attempt
        key = position.scope  # the Map state's own key: env is the state's evaluation frame
        previous = attempt.ledger.map_runs.get(key)
        # A Retry of the Map state inside one attempt starts a new Map Run, as on AWS.
        if previous is None or getattr(previous, _ATTEMPT_ATTR, None) == attempt.number:
            setattr(record, _ATTEMPT_ATTR, attempt.number)
            attempt.ledger.map_runs[key] = record
            return original(self, env)
        # Redrive: the same Map Run carries on; the one moto just created never existed.
        pool = env.map_run_record_pool_manager
        getattr(pool, "_pool", {}).pop(record.map_run_arn, None)
        eval_input.map_run_record = previous
        if map_run_redrive_count(previous) >= MAX_MAP_RUN_REDRIVES:
            raise _failure(env, StatesErrorNameType.StatesRuntime, error="States.Runtime", cause=None)
        setattr(previous, _FAILURES_ATTR, 0)
        setattr(previous, _ATTEMPT_ATTR, attempt.number)
        _redrive_map_run(previous)
        parent_events = env.event_manager
        env.event_manager = _MapRunRedrivenEvents(
            parent_events, previous.map_run_arn, previous._mwaaops_redrive_count
        )
        try:
            return original(self, env)
        finally:
            env.event_manager = parent_events

    return _eval_body


def _map_run(original: Callable[..., Any]) -> Callable[..., Any]:
    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        failed = getattr(record, _FAILURES_ATTR, 0)
        total = len(env.stack[-1]) if env.stack and isinstance(env.stack[-1], list) else 0
        if exceeds_tolerance(
            failed, total, record.tolerated_failure_count or 0, record.tolerated_failure_percentage or 0
        ):
            env.stack.pop()
            raise _failure(
                env,
                StatesErrorNameType.StatesExceedToleratedFailureThreshold,
                error=THRESHOLD_ERROR,
                cause=THRESHOLD_CAUSE,
            )

    return _map_run


def _failure(env: Any, error_type: StatesErrorNameType, error: str, cause: str | None) -> Exception:
    details = ExecutionFailedEventDetails(error=error)
    if cause is not None:
        details["cause"] = cause
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error_type),
            event_type=HistoryEventType.MapRunFailed,
            event_details=cast(EventDetails, {"executionFailedEventDetails": details}),
        )
    )


def _distributed_eval_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def _eval_job(self: Any, env: Any, job: Any) -> None:
        original(self, env, job)
        record = getattr(self, "_map_run_record", None)
        if record is None or getattr(job, "_mwaaops_replayed", False) or iteration_succeeded(env):
            return
        with _LOCK:
            setattr(record, _FAILURES_ATTR, getattr(record, _FAILURES_ATTR, 0) + 1)
        # moto takes a child off "running" only when it succeeds.
        record.execution_counter.running.offset(-1)

    return _eval_job


def _update(original: Callable[..., Any]) -> Callable[..., Any]:
    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.status != MapRunStatus.RUNNING:
            return  # only an in-progress Map Run is updated (see the module docstring)
        original(self, *args, **kwargs)

    return update


def _describe(original: Callable[..., Any]) -> Callable[..., Any]:
    def describe(self: Any) -> Any:
        output = original(self)
        output["redriveCount"] = map_run_redrive_count(self)
        redrive_date = getattr(self, "_mwaaops_redrive_date", None)
        if redrive_date is not None:
            output["redriveDate"] = iso_8601_datetime_with_milliseconds(redrive_date)
        return output

    return describe


def install() -> None:
    """Patch moto's Distributed Map: failure threshold, Map Run redrive, DescribeMapRun fields."""
    wrap_method(DistributedIterationComponent, "_eval_body", _PATCH, _component_eval_body)
    wrap_method(DistributedIterationComponent, "_map_run", _PATCH, _map_run)
    for root in (DistributedItemProcessorWorker, DistributedIteratorWorker):
        for cls in subclasses_defining(root, "_eval_job"):
            wrap_method(cls, "_eval_job", _PATCH, _distributed_eval_job)
    wrap_method(MapRunRecord, "describe", _PATCH, _describe)
    wrap_method(MapRunRecord, "update", _PATCH, _update)
