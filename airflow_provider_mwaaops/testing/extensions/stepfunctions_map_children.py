"""The child workflow executions of a Distributed Map Run, as executions anyone can list and describe.

moto's engine runs a Distributed Map's items as iterations inside the parent's process, with no
execution behind them, so ``ListExecutions`` with ``mapRunArn`` (HTTP 500 in moto) had nothing to
list. AWS runs each item as a child workflow execution ("a Map Run refers to a set of child
workflow executions that a Distributed Map state starts", developer guide, *Examining Map Run*).
Here every item of a Map Run gets one, recorded on the Map Run as it runs:

- ARN ``arn:P:states:R:A:execution:MACHINE/LABEL:NAME`` (the Map Run's state machine ARN with
  ``execution``), a generated name, status RUNNING -> SUCCEEDED / FAILED / ABORTED / TIMED_OUT,
  input, output or error and cause, start and stop dates, and its own event history
  (ExecutionStarted ... ExecutionSucceeded/Failed, the states in between);
- ``ListExecutions(mapRunArn=...)`` lists them with ``itemCount`` and ``mapRunArn`` (API reference,
  *ExecutionListItem*: "returned only if mapRunArn was specified"); ``DescribeExecution`` and
  ``GetExecutionHistory`` serve them, with ``mapRunArn`` and, for an unsuccessful child of a
  redrivable parent, ``redriveStatus: REDRIVABLE_BY_MAP_RUN`` (API reference, *DescribeExecution*:
  for child workflows of type STANDARD, "redriveStatus indicates whether or not the Map Run can
  redrive child workflow executions");
- when the parent is redriven, the unsuccessful children are redriven with their Map Run (developer
  guide, *Redriving Map Runs*): same ARN, ``redriveCount`` + 1, an ``ExecutionRedriven`` event, and
  they continue from their own point of failure; children that succeeded are not run again.

Not served: ``DescribeStateMachineForExecution`` and ``RedriveExecution`` / ``StopExecution`` on a
child ARN (moto answers ExecutionDoesNotExist for them). moto has no ItemBatcher, so every child
processes one item (``itemCount`` 1).
"""

from __future__ import annotations

import copy
import datetime
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (  # noqa: E501
    DistributedItemProcessorWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
    IterationWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator.distributed_iterator_worker import (  # noqa: E501
    DistributedIteratorWorker,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped, ProgramTimedOut
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from airflow_provider_mwaaops.testing.extensions._patching import subclasses_defining, wrap_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_replay import iteration_succeeded

_PATCH = "mwaaops.stepfunctions.map_children"
_CHILDREN_ATTR = "_mwaaops_children"
_PENDING_ATTR = "_mwaaops_pending_child"
_LOCK = threading.Lock()


@dataclass
class ChildExecution:
    """One child workflow execution of a Map Run (one item)."""

    map_run_arn: str
    state_machine_arn: str
    execution_arn: str
    name: str
    index: int
    input: Any
    role_arn: str | None
    start_date: datetime.datetime
    status: str = "RUNNING"
    stop_date: datetime.datetime | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    redrive_count: int = 0
    redrive_date: datetime.datetime | None = None
    item_count: int = 1
    events: EventManager = field(default_factory=EventManager)

    def history(self) -> list[dict[str, Any]]:
        return [dict(event) for event in self.events.get_event_history()]


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def children_of(record: Any) -> list[ChildExecution]:
    """A Map Run's child executions, in item order."""
    children: dict[int, ChildExecution] = getattr(record, _CHILDREN_ATTR, {})
    return [children[index] for index in sorted(children)]


def _execution_arn(record: Any, name: str) -> str:
    # MapRunRecord.map_state_machine_arn is ``arn:...:stateMachine:MACHINE/LABEL``.
    return f"{record.map_state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def _child_for(record: Any, job: Any, role_arn: str | None) -> ChildExecution:
    with _LOCK:
        children: dict[int, ChildExecution] = record.__dict__.setdefault(_CHILDREN_ATTR, {})
        child = children.get(job.job_index)
        if child is None:
            name = str(uuid.uuid4())
            child = ChildExecution(
                map_run_arn=record.map_run_arn,
                state_machine_arn=record.map_state_machine_arn,
                execution_arn=_execution_arn(record, name),
                name=name,
                index=job.job_index,
                input=job.job_input,
                role_arn=role_arn,
                start_date=_now(),
            )
            children[job.job_index] = child
        return child


def _add_event(child: ChildExecution, context: Any, event_type: Any, details: dict[str, Any] | None) -> int:
    return child.events.add_event(
        context=context, event_type=event_type, event_details=cast(EventDetails, details)
    )


def _begin(child: ChildExecution, env: Any) -> None:
    """Start (or redrive) the child and point the job's frame at the child's own history."""
    history = child.history()
    if not history:
        details: dict[str, Any] = {
            "input": to_json_str(child.input, separators=(",", ":")),
            "inputDetails": {"truncated": False},
        }
        if child.role_arn:
            details["roleArn"] = child.role_arn
        started = {"executionStartedEventDetails": details}
        _add_event(
            child, EventHistoryContext(previous_event_id=0), HistoryEventType.ExecutionStarted, started
        )
    else:
        child.redrive_count += 1
        child.redrive_date = _now()
        child.status, child.stop_date = "RUNNING", None
        child.output = child.error = child.cause = None
        _add_event(
            child,
            EventHistoryContext(previous_event_id=history[-1]["id"]),
            HistoryEventType.ExecutionRedriven,
            {"executionRedrivenEventDetails": {"redriveCount": child.redrive_count}},
        )
    env.event_manager = child.events
    env.event_history_context = EventHistoryContext(previous_event_id=child.history()[-1]["id"])


def _finish(child: ChildExecution, env: Any, job: Any) -> None:
    context = env.event_history_context
    child.stop_date = _now()
    if iteration_succeeded(env) and not isinstance(job.job_output, BaseException):
        child.status, child.output = "SUCCEEDED", job.job_output
        details = {"output": to_json_str(job.job_output, separators=(",", ":"))}
        _add_event(
            child, context, HistoryEventType.ExecutionSucceeded, {"executionSucceededEventDetails": details}
        )
        return
    state = env.program_state()
    if isinstance(state, ProgramStopped):
        child.status = "ABORTED"
        _add_event(child, context, HistoryEventType.ExecutionAborted, {"executionAbortedEventDetails": {}})
        return
    if isinstance(state, ProgramTimedOut):
        child.status = "TIMED_OUT"
        _add_event(child, context, HistoryEventType.ExecutionTimedOut, {"executionTimedOutEventDetails": {}})
        return
    error: dict[str, Any] = dict(state.error or {}) if isinstance(state, ProgramError) else {}
    child.status = "FAILED"
    child.error, child.cause = error.get("error"), error.get("cause")
    failed = {
        key: value for key, value in (("error", child.error), ("cause", child.cause)) if value is not None
    }
    _add_event(child, context, HistoryEventType.ExecutionFailed, {"executionFailedEventDetails": failed})


def _eval_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def eval_job(self: Any, env: Any, job: Any) -> None:
        record = getattr(self, "_map_run_record", None)
        if record is None or getattr(job, "_mwaaops_child_seen", False):
            return original(self, env, job)
        job._mwaaops_child_seen = True  # an override calling super() must not start a second child
        child = _child_for(
            record, job, getattr(getattr(env, "aws_execution_details", None), "role_arn", None)
        )
        if child.status == "SUCCEEDED":
            return original(self, env, job)  # replayed from the parent's ledger: nothing runs
        setattr(env, _PENDING_ATTR, child)
        try:
            original(self, env, job)
        finally:
            if not getattr(job, "_mwaaops_replayed", False) and child.history():
                _finish(child, env, job)
        return None

    return eval_job


def _eval_input(original: Callable[..., Any]) -> Callable[..., Any]:
    def eval_input(self: Any, env_frame: Any) -> None:
        original(self, env_frame)
        child = env_frame.__dict__.pop(_PENDING_ATTR, None)
        if child is not None:
            # The child's input is the item after ItemSelector / Parameters, as on AWS.
            child.input = copy.deepcopy(env_frame.states.get_input())
            _begin(child, env_frame)

    return eval_input


# -- lookups for the HTTP layer ------------------------------------------------------------------
def _map_run_records(backend: Any) -> Iterator[Any]:
    for machine in getattr(backend, "state_machines", []):
        for execution in machine.executions:
            env = getattr(getattr(execution, "exec_worker", None), "env", None)
            if env is not None:
                yield from env.map_run_record_pool_manager.get_all()


def map_run_record(backend: Any, map_run_arn: str) -> Any | None:
    return next((r for r in _map_run_records(backend) if r.map_run_arn == map_run_arn), None)


def is_child_arn(execution_arn: str) -> bool:
    """A Distributed Map child: ``...:execution:MACHINE/LABEL:NAME``."""
    parts = execution_arn.split(":")
    return len(parts) > 6 and parts[5] == "execution" and "/" in parts[6]


def find_child(backend: Any, execution_arn: str) -> tuple[ChildExecution, Any] | None:
    """The child execution with this ARN and its Map Run record, if any."""
    for record in _map_run_records(backend):
        for child in children_of(record):
            if child.execution_arn == execution_arn:
                return child, record
    return None


def parent_execution(backend: Any, record: Any) -> Any | None:
    for machine in getattr(backend, "state_machines", []):
        for execution in machine.executions:
            if execution.execution_arn == record.execution_arn:
                return execution
    return None


def install() -> None:
    """Record a child execution for every item a Distributed Map Run processes."""
    for root in (DistributedItemProcessorWorker, DistributedIteratorWorker):
        for cls in subclasses_defining(root, "_eval_job"):
            wrap_method(cls, "_eval_job", _PATCH, _eval_job)
    for cls in subclasses_defining(IterationWorker, "_eval_input"):
        wrap_method(cls, "_eval_input", _PATCH, _eval_input)
