"""Record what each Step Functions execution completed, and replay it when the execution is redriven.

AWS redrives an execution "from the unsuccessful step": states that succeeded are not run again
(their side effects must not repeat), Parallel states rerun only failed branches, Map states only
unsuccessful iterations, and everything else keeps the results of the first attempt.

moto's engine (a port of LocalStack's ASL interpreter) can only run a program from its start. So a
redrive runs the real program again, from the start, with the original input, in *replay* mode: a
state whose position has a recorded success is short-circuited to its recorded output, next state
and variables, without events and without calling anything. Only the unsuccessful parts really run.

Positions are stable across attempts because the program and its input are the same: a state's key
is the path of enclosing states plus Parallel branch index and Map item index, and a visit counter
per state name, so loops through a Choice get one key per pass, e.g.
``("Fan#1", "branch:1", "Load#1")`` or ``("Items#1", "item:3", "Process#2")``.

Variables (``Assign``) set by a skipped state are restored from a snapshot of its scope; moto only
evaluates variable references through its JSONata bridge, so that part is best effort and untested.

Hook points, all patched from :func:`install`:

- ``Execution._get_start_execution_worker`` / ``ExecutionWorker._get_evaluation_environment``:
  attach the execution's :class:`ExecutionLedger` attempt to the root environment;
- ``Environment.as_inner_frame_of``: every frame (Task timeout frame, Parallel branch, Map
  iteration) inherits its parent's position;
- ``CommonStateField._eval_body``: short-circuit recorded states, record the ones that exit;
- ``CommonStateField._set_next`` (and overrides): the one place that only runs when a state
  completed, so an interrupted state (its parent ended or stopped it) is never taken for a success;
- ``BranchesDecl.__init__`` / ``BranchWorker.__init__``: branch index into the position;
- ``IterationWorker._eval_job`` (and overrides): item index into the position, and whole
  iterations that succeeded before are not run (no MapIteration events, no child run).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
    IterationWorker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import BranchesDecl
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramRunning

# Loads every state and Map worker class, so that install() finds their overrides.
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser  # noqa: F401
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from airflow_provider_mwaaops.testing.extensions._patching import subclasses_defining, wrap_method

Key = tuple[str, ...]

_LEDGER_ATTR = "_mwaaops_ledger"
_POSITION_ATTR = "_mwaaops_position"
_ATTEMPT_ATTR = "_mwaaops_attempt"
_BRANCH_INDEX_ATTR = "_mwaaops_branch_index"
_PATCH = "mwaaops.stepfunctions.replay"
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateRecord:
    """A state that exited: what the next state sees, where the program goes, the variables set."""

    output: Any
    next_state: str | None  # None: the state ended its program (End: true, Succeed)
    variables: dict[str, Any] | None


@dataclass(frozen=True)
class IterationRecord:
    """A Map iteration that succeeded, with the output the Map state collects for it."""

    output: Any


class Attempt:
    """One run of an execution: the original start or one redrive.

    ``replay`` is the ledger as it was when the attempt began; an entry is used at most once, so a
    Retry of a Parallel or Map state inside the redrive runs its branches again, as a retry does.
    Once a newer attempt starts, this one stops recording: threads of an aborted or timed-out run
    that are still winding down must not turn their late results into "succeeded" states.
    """

    def __init__(self, ledger: ExecutionLedger, number: int, replay: dict[Key, Any]):
        self.ledger = ledger
        self.number = number
        self.active = True
        self._replay = replay
        self._lock = threading.Lock()

    def take(self, key: Key) -> Any | None:
        with self._lock:
            return self._replay.pop(key, None)

    def record(self, key: Key, record: StateRecord | IterationRecord) -> None:
        if self.active:
            self.ledger.store(key, record)


class ExecutionLedger:
    """Everything one execution completed across its attempts, plus its redrive bookkeeping."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._records: dict[Key, StateRecord | IterationRecord] = {}
        self.attempts: list[Attempt] = []
        self.redrive_count = 0
        self.redrive_date: Any = None
        #: clientToken -> (redriveDate, first use, as time.monotonic())
        self.client_tokens: dict[str, tuple[Any, float]] = {}
        #: Map state key -> the Map Run it started, so a redrive reuses (redrives) that Map Run.
        self.map_runs: dict[Key, Any] = {}

    def store(self, key: Key, record: StateRecord | IterationRecord) -> None:
        with self.lock:
            self._records[key] = record

    def begin_attempt(self) -> Attempt:
        with self.lock:
            for previous in self.attempts:
                previous.active = False
            attempt = Attempt(self, number=len(self.attempts), replay=dict(self._records))
            self.attempts.append(attempt)
            return attempt


def ledger_of(execution: Any) -> ExecutionLedger:
    """The ledger kept on a moto execution object, created on first use."""
    ledger = execution.__dict__.get(_LEDGER_ATTR)
    if ledger is None:
        ledger = execution.__dict__.setdefault(_LEDGER_ATTR, ExecutionLedger())
    return ledger


def find_ledger(execution: Any) -> ExecutionLedger | None:
    return execution.__dict__.get(_LEDGER_ATTR)


@dataclass
class Position:
    """Where an environment (root or frame) sits in the program, for one attempt."""

    attempt: Attempt
    scope: Key
    current_key: Key | None = None
    #: (key, next state or None for "ended its program") of the last state that exited here.
    exited: tuple[Key, str | None] | None = None
    ended_by_state: bool = False
    visits: Counter[str] = field(default_factory=Counter)

    def child(self) -> Position:
        return Position(attempt=self.attempt, scope=self.current_key or self.scope)


def position_of(env: Any) -> Position | None:
    return getattr(env, _POSITION_ATTR, None)


def attach_attempt(env: Any, attempt: Attempt) -> None:
    """Make ``env`` the root of ``attempt``: its states record into, and replay from, the ledger."""
    setattr(env, _POSITION_ATTR, Position(attempt=attempt, scope=()))


# -- variables ------------------------------------------------------------------------------------
def _snapshot_variables(env: Any) -> dict[str, Any] | None:
    inner = getattr(env.variable_store, "_inner_scope", None)
    return copy.deepcopy(inner) if isinstance(inner, dict) else None


def _restore_variables(env: Any, variables: dict[str, Any] | None) -> None:
    store = env.variable_store
    inner = getattr(store, "_inner_scope", None)
    if variables is None or not isinstance(inner, dict):
        return
    inner.clear()
    inner.update(copy.deepcopy(variables))
    if hasattr(store, "_variable_declarations_cache"):
        store._variable_declarations_cache = None


# -- hooks ----------------------------------------------------------------------------------------
def _frame_factory(original: Callable[..., Any]) -> Callable[..., Any]:
    def as_inner_frame_of(cls: type, env: Any, *args: Any, **kwargs: Any) -> Any:
        frame = original(cls, env, *args, **kwargs)
        parent = position_of(env)
        if parent is not None:
            setattr(frame, _POSITION_ATTR, parent.child())
        return frame

    return as_inner_frame_of


def _state_eval_body(original: Callable[..., Any]) -> Callable[..., Any]:
    def _eval_body(self: Any, env: Any) -> None:
        position = position_of(env)
        if position is None:
            return original(self, env)
        position.visits[self.name] += 1
        key = (*position.scope, f"{self.name}#{position.visits[self.name]}")
        recorded = position.attempt.take(key)
        if isinstance(recorded, StateRecord):
            _replay_state(env, position, recorded)
            return None
        position.current_key = key
        try:
            original(self, env)
        finally:
            position.current_key = None
        if position.exited is not None and position.exited[0] == key:
            _record_state(env, position, key, next_state=position.exited[1])
        return None

    return _eval_body


def _record_state(env: Any, position: Position, key: Key, next_state: str | None) -> None:
    try:
        record = StateRecord(
            output=copy.deepcopy(env.states.get_input()),
            next_state=next_state,
            variables=_snapshot_variables(env),
        )
    except Exception:  # a value moto cannot copy: the state just runs again on a redrive
        LOG.debug("Not recording state %s: its output cannot be copied", key, exc_info=True)
        return
    position.attempt.record(key, record)


def _replay_state(env: Any, position: Position, record: StateRecord) -> None:
    """Put ``env`` where the recorded state left it, as if it had just run (minus its events)."""
    env.states.reset(input_value=copy.deepcopy(record.output))
    _restore_variables(env, record.variables)
    if record.next_state is None:
        position.ended_by_state = True
        env.set_ended()
    else:
        env.next_state_name = record.next_state


def _state_set_next(original: Callable[..., Any]) -> Callable[..., Any]:
    def _set_next(self: Any, env: Any) -> None:
        original(self, env)
        position = position_of(env)
        if position is None or position.current_key is None:
            return
        # Reached only when the state completed; a state cut short by its parent returns before.
        program_state = env.program_state()
        if isinstance(program_state, ProgramRunning):
            position.exited = (position.current_key, program_state.next_state_name)
        elif isinstance(program_state, ProgramEnded):
            position.exited = (position.current_key, None)
            position.ended_by_state = True

    return _set_next


def _branches_init(original: Callable[..., Any]) -> Callable[..., Any]:
    def __init__(self: Any, programs: list[Any], *args: Any, **kwargs: Any) -> None:
        original(self, programs, *args, **kwargs)
        for index, program in enumerate(programs):
            setattr(program, _BRANCH_INDEX_ATTR, index)

    return __init__


def _branch_worker_init(original: Callable[..., Any]) -> Callable[..., Any]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        position = position_of(self.env)
        index = getattr(self._program, _BRANCH_INDEX_ATTR, None)
        if position is not None and index is not None:
            position.scope = (*position.scope, f"branch:{index}")

    return __init__


def iteration_succeeded(env: Any) -> bool:
    """Whether a Map iteration's program ran to its end (not ended or stopped from outside)."""
    position = position_of(env)
    if position is not None:
        return position.ended_by_state
    return isinstance(env.program_state(), ProgramEnded)


def _iteration_eval_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def _eval_job(self: Any, env: Any, job: Any) -> None:
        position = position_of(env)
        if position is None or getattr(job, "_mwaaops_replay_seen", False):
            return original(self, env, job)
        job._mwaaops_replay_seen = True  # an override calling super() must not replay twice
        key = (*position.scope, f"item:{job.job_index}")
        position.scope = key
        recorded = position.attempt.take(key)
        if isinstance(recorded, IterationRecord):
            job._mwaaops_replayed = True
            job.job_output = copy.deepcopy(recorded.output)
            return None
        original(self, env, job)
        if iteration_succeeded(env) and not isinstance(job.job_output, BaseException):
            try:
                position.attempt.record(key, IterationRecord(output=copy.deepcopy(job.job_output)))
            except Exception:  # a value moto cannot copy: the iteration just runs again on a redrive
                LOG.debug("Not recording iteration %s: its output cannot be copied", key, exc_info=True)
        return None

    return _eval_job


def bind_attempt(worker: Any, attempt: Attempt) -> None:
    """Have ``worker``'s root environment record into, and replay from, ``attempt``."""
    setattr(worker, _ATTEMPT_ATTR, attempt)


def _worker_evaluation_environment(original: Callable[..., Any]) -> Callable[..., Any]:
    def _get_evaluation_environment(self: Any) -> Any:
        env = original(self)
        attempt = getattr(self, _ATTEMPT_ATTR, None)
        if attempt is not None:
            attach_attempt(env, attempt)
        return env

    return _get_evaluation_environment


def _execution_start_worker(original: Callable[..., Any]) -> Callable[..., Any]:
    def _get_start_execution_worker(self: Any) -> Any:
        worker = original(self)
        bind_attempt(worker, ledger_of(self).begin_attempt())
        return worker

    return _get_start_execution_worker


def install() -> None:
    """Patch moto's interpreter so every execution records its progress and redrives can replay it."""
    wrap_method(Execution, "_get_start_execution_worker", _PATCH, _execution_start_worker)
    wrap_method(ExecutionWorker, "_get_evaluation_environment", _PATCH, _worker_evaluation_environment)
    wrap_method(Environment, "as_inner_frame_of", _PATCH, _frame_factory)
    wrap_method(CommonStateField, "_eval_body", _PATCH, _state_eval_body)
    for cls in subclasses_defining(CommonStateField, "_set_next"):
        wrap_method(cls, "_set_next", _PATCH, _state_set_next)
    wrap_method(BranchesDecl, "__init__", _PATCH, _branches_init)
    wrap_method(BranchWorker, "__init__", _PATCH, _branch_worker_init)
    for cls in subclasses_defining(IterationWorker, "_eval_job"):
        wrap_method(cls, "_eval_job", _PATCH, _iteration_eval_job)
