"""A state machine's ``TimeoutSeconds`` always leaves an ``ExecutionTimedOut`` event, exactly once.

moto's engine does time executions out: ``Program.eval`` stops waiting for the program thread after
``TimeoutSeconds`` and the execution becomes TIMED_OUT. But the ``ExecutionTimedOut`` event is
written by that program thread, when the state it is in returns; a Task waiting for a task token
never returns, so the history never ends. AWS writes the event when the execution times out.

Here the event is written when the execution is marked TIMED_OUT, and every root event manager
drops a second execution-terminal event, so the program thread's own (late) one cannot duplicate it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from airflow_provider_mwaaops.testing.extensions._patching import wrap_method

_PATCH = "mwaaops.stepfunctions.timeouts"
TERMINAL_EVENTS = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)


def _event_name(event_type: Any) -> str:
    return str(getattr(event_type, "value", event_type))


class TerminalOnceEvents:
    """An execution's EventManager that accepts one execution-terminal event per attempt."""

    def __init__(self, inner: Any):
        self._inner = inner
        self._lock = threading.Lock()
        self.terminal_written = False

    def add_event(self, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int | None:
        if _event_name(event_type) in TERMINAL_EVENTS:
            with self._lock:
                if self.terminal_written:
                    return None
                self.terminal_written = True
        return self._inner.add_event(context, event_type, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def guard_terminal_events(env: Any) -> None:
    """Wrap ``env``'s EventManager (before any frame copies it) in :class:`TerminalOnceEvents`."""
    if not isinstance(env.event_manager, TerminalOnceEvents):
        env.event_manager = TerminalOnceEvents(env.event_manager)


def _worker_evaluation_environment(original: Callable[..., Any]) -> Callable[..., Any]:
    def _get_evaluation_environment(self: Any) -> Any:
        env = original(self)
        guard_terminal_events(env)
        return env

    return _get_evaluation_environment


def _reflect_execution_status(original: Callable[..., Any]) -> Callable[..., Any]:
    def _reflect(self: Any) -> None:
        original(self)
        execution = self.execution
        if str(execution.status) != "TIMED_OUT":
            return
        env = execution.exec_worker.env
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionTimedOut,
            event_details=cast(EventDetails, {"executionTimedOutEventDetails": {}}),
        )

    return _reflect


def install() -> None:
    """Write ExecutionTimedOut when an execution times out, and never twice."""
    wrap_method(ExecutionWorker, "_get_evaluation_environment", _PATCH, _worker_evaluation_environment)
    wrap_method(
        BaseExecutionWorkerCommunication, "_reflect_execution_status", _PATCH, _reflect_execution_status
    )
