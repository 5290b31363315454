"""Step Functions ``RedriveExecution`` for moto's executing engine, with AWS's rules and fields.

What AWS documents, and what this module does about it:

- Only Standard executions that ended FAILED, ABORTED or TIMED_OUT can be redriven, within 14 days
  of their stop date, within a year of their start, and while their history has room for the
  ``ExecutionRedriven`` event (< 24,999 events); otherwise ``ExecutionNotRedrivable`` and, in
  DescribeExecution, ``redriveStatus: NOT_REDRIVABLE`` with AWS's ``redriveStatusReason``.
- A redrive runs the *original* definition (the snapshot the execution started with), with the
  same input and the same execution ARN, even if the state machine was updated since: AWS says
  "you must start a new execution if you update your state machine definition".
- It continues from the point of failure (see :mod:`.stepfunctions_replay`), appends an
  ``ExecutionRedriven`` event and the rerun's events to the same history, and restarts the state
  machine's own ``TimeoutSeconds``.
- ``clientToken``: the last 10 tokens that redrove the execution stay idempotent for 15 minutes; a
  repeated call returns the first call's ``redriveDate`` and starts nothing.

The HTTP side (RedriveExecution, and the redrive members of DescribeExecution / ListExecutions)
is in :mod:`.stepfunctions_api`.
"""

from __future__ import annotations

import datetime
import time
from typing import Any, cast

from moto.core.exceptions import ServiceException
from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from airflow_provider_mwaaops.testing.extensions._patching import add_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_replay import (
    ExecutionLedger,
    bind_attempt,
    find_ledger,
    ledger_of,
)
from airflow_provider_mwaaops.testing.extensions.stepfunctions_timeouts import guard_terminal_events

REDRIVABLE = "REDRIVABLE"
NOT_REDRIVABLE = "NOT_REDRIVABLE"
REDRIVABLE_STATUSES = frozenset({"FAILED", "ABORTED", "TIMED_OUT"})
STOPPED_STATUSES = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})
REDRIVE_PERIOD = datetime.timedelta(days=14)
MAX_OPEN_TIME = datetime.timedelta(days=365)
#: A redrive needs room for ExecutionRedriven and at least one more event under the 25,000 cap.
MAX_HISTORY_EVENTS_FOR_REDRIVE = 24_999
REDRIVE_LAUNCH = datetime.datetime(2023, 11, 15, tzinfo=datetime.UTC)
CLIENT_TOKENS_KEPT = 10
CLIENT_TOKEN_TTL_SECONDS = 15 * 60

#: redriveStatusReason values, in AWS's words.
REASON_RUNNING = "Execution is RUNNING and cannot be redriven"
REASON_SUCCEEDED = "Execution is SUCCEEDED and cannot be redriven"
REASON_BEFORE_LAUNCH = "Execution was started before the launch of RedriveExecution"
REASON_HISTORY_LIMIT = "Execution history event limit exceeded"
REASON_MAX_TIME = "Execution has exceeded the max execution time"
REASON_PERIOD = "Execution redrivable period exceeded"
#: Not an AWS string: AWS's DescribeExecution does not serve EXPRESS executions at all.
REASON_EXPRESS = "Executions of EXPRESS state machines cannot be redriven"


class ExecutionNotRedrivable(ServiceException):
    """The error code moto answers with; the HTTP status comes from the botocore model."""

    code = "ExecutionNotRedrivable"


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _aware(moment: datetime.datetime | None) -> datetime.datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment


def _machine_type(execution: Any) -> str:
    # moto's StateMachineInstance.sm_type is always "STANDARD"; ``type`` holds the real one.
    machine = getattr(execution, "state_machine", None)
    return str(getattr(machine, "type", None) or "STANDARD")


def _history_length(execution: Any) -> int:
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    return len(env.event_manager.get_event_history()) if env is not None else 0


def redrive_status(execution: Any, now: datetime.datetime | None = None) -> tuple[str, str | None]:
    """``(redriveStatus, redriveStatusReason)`` for a Standard execution, as DescribeExecution has them.

    REDRIVABLE_BY_MAP_RUN belongs to child workflow executions of a Distributed Map, which moto's
    engine runs as iterations, not as executions anyone can describe; it is never reported here.
    """
    now = now or _now()
    status = str(execution.status)
    if _machine_type(execution) == "EXPRESS":
        return NOT_REDRIVABLE, REASON_EXPRESS
    if status == "RUNNING":
        return NOT_REDRIVABLE, REASON_RUNNING
    if status == "SUCCEEDED":
        return NOT_REDRIVABLE, REASON_SUCCEEDED
    if status not in REDRIVABLE_STATUSES:
        return NOT_REDRIVABLE, f"Execution is {status} and cannot be redriven"
    start = _aware(execution.start_date)
    stop = _aware(execution.stop_date) or now
    if start is not None and start < REDRIVE_LAUNCH:
        return NOT_REDRIVABLE, REASON_BEFORE_LAUNCH
    if start is not None and now - start > MAX_OPEN_TIME:
        return NOT_REDRIVABLE, REASON_MAX_TIME
    if now - stop > REDRIVE_PERIOD:
        return NOT_REDRIVABLE, REASON_PERIOD
    if _history_length(execution) >= MAX_HISTORY_EVENTS_FOR_REDRIVE:
        return NOT_REDRIVABLE, REASON_HISTORY_LIMIT
    return REDRIVABLE, None


def redrive_count(execution: Any) -> int:
    ledger = find_ledger(execution)
    return ledger.redrive_count if ledger else 0


def redrive_date(execution: Any) -> datetime.datetime | None:
    ledger = find_ledger(execution)
    return ledger.redrive_date if ledger else None


def redrive_fields(execution: Any) -> dict[str, Any]:
    """The redrive members of DescribeExecution for ``execution``."""
    fields: dict[str, Any] = {"redriveCount": redrive_count(execution)}
    if redrive_date(execution) is not None:
        fields["redriveDate"] = redrive_date(execution)
    status, reason = redrive_status(execution)
    fields["redriveStatus"] = status
    if reason is not None:
        fields["redriveStatusReason"] = reason
    return fields


# -- the redrive itself ---------------------------------------------------------------------------
def _idempotent_redrive_date(ledger: ExecutionLedger, client_token: str | None) -> Any | None:
    if not client_token:
        return None
    remembered = ledger.client_tokens.get(client_token)
    if remembered is None:
        return None
    redrive_date, first_used = remembered
    if time.monotonic() - first_used > CLIENT_TOKEN_TTL_SECONDS:
        return None
    return redrive_date


def _remember_client_token(ledger: ExecutionLedger, client_token: str | None, redrive_date: Any) -> None:
    if not client_token:
        return
    ledger.client_tokens[client_token] = (redrive_date, time.monotonic())
    while len(ledger.client_tokens) > CLIENT_TOKENS_KEPT:
        ledger.client_tokens.pop(next(iter(ledger.client_tokens)))


def _continued_event_manager(previous_env: Any) -> Any:
    """A fresh EventManager that starts with the previous attempt's history and continues its ids.

    Threads of the previous attempt that are still winding down (a Task call in flight when the
    execution timed out) keep writing to the old manager, so nothing of theirs lands after
    ``ExecutionRedriven``.
    """
    old = previous_env.event_manager
    manager = EventManager(cloud_watch_logging_session=getattr(old, "_cloud_watch_logging_session", None))
    if not hasattr(manager, "_history_event_list") or not hasattr(manager, "_event_id_gen"):
        raise RuntimeError("moto's EventManager changed shape; cannot continue an execution history")
    history = old.get_event_history()
    manager._history_event_list.extend(history)
    manager._event_id_gen._next_id = (history[-1]["id"] + 1) if history else 1
    return manager


class RedriveExecutionWorker(ExecutionWorker):
    """Runs the execution's program again, appending to its history instead of starting a new one.

    The environment is built synchronously in :meth:`prepare`, before the API call returns, so
    DescribeExecution, GetExecutionHistory and DescribeMapRun never see a half-started redrive.
    """

    def prepare(self, previous_env: Any, redrive_count: int) -> None:
        env: Any = self._get_evaluation_environment()
        env.event_manager = _continued_event_manager(previous_env)
        guard_terminal_events(env)
        # Map Runs of earlier attempts stay listed, describable and updatable (and get redriven).
        env.map_run_record_pool_manager = previous_env.map_run_record_pool_manager
        history = env.event_manager.get_event_history()
        env.event_history_context = EventHistoryContext(previous_event_id=history[-1]["id"] if history else 0)
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=cast(
                EventDetails, {"executionRedrivenEventDetails": {"redriveCount": redrive_count}}
            ),
        )
        self.env = env

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        program.eval(cast(Environment, self.env))
        self._execution_communication.terminated()


def _new_redrive_worker(execution: Any) -> RedriveExecutionWorker:
    return RedriveExecutionWorker(
        evaluation_details=EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            # The state machine snapshot taken at StartExecution: the original definition.
            state_machine_details=execution.get_start_state_machine_details(),
        ),
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
    )


def start_redrive(execution: Any, when: datetime.datetime) -> None:
    """Flip a FAILED/ABORTED/TIMED_OUT execution back to RUNNING and rerun it from its failure."""
    ledger = ledger_of(execution)
    previous_env = execution.exec_worker.env
    worker = _new_redrive_worker(execution)
    bind_attempt(worker, ledger.begin_attempt())
    ledger.redrive_count += 1
    ledger.redrive_date = when
    worker.prepare(previous_env, ledger.redrive_count)
    execution.exec_worker = worker
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.output = None
    execution.error = None
    execution.cause = None
    worker.start()


def backend_redrive_execution(backend: Any, execution_arn: str, client_token: str | None = None) -> Any:
    """``StepFunctionsParserBackend.redrive_execution``: checks, idempotency, then the rerun."""
    execution = backend.describe_execution(execution_arn)
    ledger = ledger_of(execution)
    with ledger.lock:
        remembered = _idempotent_redrive_date(ledger, client_token)
        if remembered is not None:
            return remembered
        status, reason = redrive_status(execution)
        if status != REDRIVABLE or getattr(getattr(execution, "exec_worker", None), "env", None) is None:
            raise ExecutionNotRedrivable(reason or f"Execution '{execution_arn}' has not started yet")
        when = _now()
        start_redrive(execution, when)
        _remember_client_token(ledger, client_token, when)
        return when


def install() -> None:
    """Give moto's executing Step Functions backend a ``redrive_execution``."""
    add_method(StepFunctionsParserBackend, "redrive_execution", backend_redrive_execution)
