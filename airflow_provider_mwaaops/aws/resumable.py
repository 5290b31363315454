"""Exactly one external run per task instance, across retries, dead workers and triggerer restarts.

Services such as Glue (StartJobRun) or EMR (AddJobFlowSteps) take no idempotency token, so a retry
cannot simply ask again: it has to *find* what an earlier try started and decide what to do with
it. This module is the service-independent half of that, shared by the operators of every service:

* :class:`TaskInstanceRef` names the task instance (dag, task, run, map index) with a stable,
  readable :meth:`~TaskInstanceRef.key`.
* :class:`Attempt` is one try of it: the try number, the first try since the task instance was last
  cleared, and the lower time bound of a lookup. Each run a try starts carries its
  :meth:`~Attempt.tag` (``<key>#<try>``), written into the run itself (a job argument, a run
  property...) *in the same call that starts it*: a worker that dies right after the call leaves a
  run that the next try still finds, which a record written after the call cannot promise.
* :func:`bounded_scan` walks a service's run list (newest first) down to the lower bound and fails
  loudly, never silently, when it cannot finish: starting a duplicate "to be safe" is what the
  operators here exist to prevent.
* :func:`decide` turns the runs found into one :class:`Attach`, :class:`Start` or :class:`Refuse`,
  by the rules below.
* :class:`RunMemo` is a fast path on Airflow 3.3+ (the task state store): the run a try chose is
  remembered, and the next try can skip the scan when that run is still active or succeeded. It is
  never the only mechanism: a run the memo does not know of is still found by the scan.

Rules of :func:`decide` (runs of this task instance only; newest first):

1. a run started by *this* try (a triggerer restart, a re-entered wait): attach to it;
2. an active run of an earlier try: attach to it (``on_retry="restart"``: stop it, start anew);
3. otherwise the newest run of an earlier try *since the last clear*: SUCCEEDED -> attach (nothing
   runs again); ended badly -> start a new run linked to it, or refuse when ``rerun_failed`` is
   off;
4. otherwise (nothing since the last clear): start a new run. Clearing a task instance therefore
   always runs the job again, whatever the earlier runs did; runs from before the clear are only
   used to link a new run to a failed one.

"Since the last clear" is Airflow's own notion (``TaskInstance.get_first_reschedule_date`` uses
it): clearing sets ``max_tries = try_number + retries``, so the first try after the clear is
``max_tries - retries + 1``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.task_instance import TaskInstanceRef

__all__ = [
    "LOOKUP_CLOCK_SKEW",
    "Attach",
    "Attempt",
    "Decision",
    "Outcome",
    "Refuse",
    "RetryPolicy",
    "RunLookupError",
    "RunMemo",
    "RunSeen",
    "Start",
    "TaskInstanceRef",
    "bounded_scan",
    "decide",
    "parse_tag",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How much earlier than the DAG run's start a run of its tasks may look (clock skew between the
#: Airflow hosts and AWS, plus a margin): lookups reach back this far beyond the bound.
LOOKUP_CLOCK_SKEW = timedelta(minutes=10)

_TAG_SEPARATOR = "#"


@dataclass(frozen=True)
class Attempt:
    """One try of a task instance, with what its lookup needs to know (JSON round-trip for triggers).

    :param task_instance: the task instance.
    :param try_number: this try (1-based).
    :param first_try: the first try since the task instance was last cleared (1 if never).
    :param since: runs started before this moment cannot belong to this task instance since its
        last clear (the DAG run's start, minus :data:`LOOKUP_CLOCK_SKEW`); None: no time bound.
    """

    task_instance: TaskInstanceRef
    try_number: int
    first_try: int = 1
    since: datetime | None = None

    #: Length of the task-instance key inside :meth:`tag`.
    KEY_LENGTH: ClassVar[int] = 120

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Attempt:
        ti = context["ti"]
        try_number = max(1, int(getattr(ti, "try_number", 1) or 1))
        task = context.get("task") or getattr(ti, "task", None)
        retries = int(getattr(task, "retries", 0) or 0)
        max_tries = getattr(ti, "max_tries", None)
        first_try = try_number if max_tries is None else int(max_tries) - retries + 1
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) if dag_run is not None else None
        return cls(
            task_instance=TaskInstanceRef.from_context(context),
            try_number=try_number,
            first_try=min(max(1, first_try), try_number),
            since=_aware(started) - LOOKUP_CLOCK_SKEW if started is not None else None,
        )

    def tag(self) -> str:
        """The value a run started by this try carries: ``<task-instance key>#<try>``."""
        return f"{self.task_instance.key(self.KEY_LENGTH)}{_TAG_SEPARATOR}{self.try_number}"

    def try_of(self, tag: str | None) -> int | None:
        """The try number in ``tag`` if it is a tag of this task instance, else None."""
        parsed = parse_tag(tag)
        if parsed is None or parsed[0] != self.task_instance.key(self.KEY_LENGTH):
            return None
        return parsed[1]

    def older_than_bound(self, started_at: datetime | None) -> bool:
        """Whether a run started at ``started_at`` is older than any this task instance can own."""
        return self.since is not None and started_at is not None and _aware(started_at) < self.since

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_instance": self.task_instance.as_dict(),
            "try_number": self.try_number,
            "first_try": self.first_try,
            "since": self.since.isoformat() if self.since else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        since = data.get("since")
        return cls(
            task_instance=TaskInstanceRef.from_dict(data["task_instance"]),
            try_number=int(data["try_number"]),
            first_try=int(data.get("first_try", 1)),
            since=datetime.fromisoformat(since) if since else None,
        )


def parse_tag(tag: str | None) -> tuple[str, int] | None:
    """``(task-instance key, try number)`` of a tag written by :meth:`Attempt.tag`, else None."""
    if not tag or _TAG_SEPARATOR not in tag:
        return None
    key, _, try_text = tag.rpartition(_TAG_SEPARATOR)
    return (key, int(try_text)) if try_text.isdigit() else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- runs found, and what to do with them ----------------------------------------------------------
class Outcome(StrEnum):
    """A run's state, as far as the decision is concerned."""

    ACTIVE = "active"  # may still succeed: waiting, starting, running
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # ended (or is ending) any other way: failed, stopped, timed out...


@dataclass(frozen=True)
class RunSeen:
    """A run of this task instance found by a lookup.

    :param run_id: the service's id of the run.
    :param try_number: the try that started it (from its tag).
    :param outcome: what its state means here.
    :param state: the service's own state name, for messages.
    :param started_at: when it started, if the service says.
    """

    run_id: str
    try_number: int
    outcome: Outcome
    state: str = ""
    started_at: datetime | None = None

    def describe(self) -> str:
        return f"run {self.run_id} (try {self.try_number}, {self.state or self.outcome.value})"


@dataclass(frozen=True)
class Attach:
    """Wait for ``run`` (it may already be final: then the wait ends at its first look)."""

    run: RunSeen
    reason: str


@dataclass(frozen=True)
class Start:
    """Start a new run, linked to ``previous`` if the service can link runs; stop ``stop_first``."""

    previous: RunSeen | None
    reason: str
    stop_first: tuple[RunSeen, ...] = ()


@dataclass(frozen=True)
class Refuse:
    """Start nothing and fail the try: ``run`` ended badly and the user does not want a rerun."""

    run: RunSeen
    reason: str


Decision = Attach | Start | Refuse


@dataclass(frozen=True)
class RetryPolicy:
    """What a retry does with the runs of earlier tries (see the module docs).

    :param on_retry: ``"resume"``: attach to an earlier try's run that is active or succeeded, and
        start a new run (linked to it) after one that ended badly; ``"restart"``: every try starts
        a new run, stopping an earlier try's run that is still active first.
    :param rerun_failed: with ``"resume"``, whether a try that finds the earlier try's run ended
        badly starts a new run (True) or fails with that run's outcome (False).
    """

    on_retry: Literal["resume", "restart"] = "resume"
    rerun_failed: bool = True

    def __post_init__(self) -> None:
        if self.on_retry not in ("resume", "restart"):
            raise ValueError(f"on_retry must be 'resume' or 'restart', got {self.on_retry!r}")
        if not isinstance(self.rerun_failed, bool):
            raise ValueError(f"rerun_failed must be True or False, got {self.rerun_failed!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"on_retry": self.on_retry, "rerun_failed": self.rerun_failed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RetryPolicy:
        return cls(**(data or {}))


def decide(runs: Iterable[RunSeen], attempt: Attempt, policy: RetryPolicy = RetryPolicy()) -> Decision:
    """What this try does, given every run of its task instance a lookup found (any order)."""
    ordered = sorted(runs, key=_newest_first, reverse=True)
    own = [run for run in ordered if run.try_number == attempt.try_number]
    if own:
        return Attach(own[0], f"{own[0].describe()} was started by this try")
    earlier = [run for run in ordered if run.try_number < attempt.try_number]
    active = [run for run in earlier if run.outcome is Outcome.ACTIVE]
    failed = earlier[0] if earlier and earlier[0].outcome is Outcome.FAILED else None
    if policy.on_retry == "restart":
        previous = active[0] if active else failed
        return Start(previous, "on_retry='restart': every try starts a new run", stop_first=tuple(active))
    if active:
        return Attach(
            active[0], f"{active[0].describe()} is still active: attaching instead of starting another"
        )
    since_clear = [run for run in earlier if run.try_number >= attempt.first_try]
    if since_clear:
        newest = since_clear[0]
        if newest.outcome is Outcome.SUCCEEDED:
            return Attach(newest, f"{newest.describe()} already succeeded: nothing runs again")
        if not policy.rerun_failed:
            return Refuse(newest, f"{newest.describe()} ended badly and rerun_failed=False")
        return Start(newest, f"{newest.describe()} ended badly: starting a new run linked to it")
    if earlier:
        return Start(
            failed, f"the task instance was cleared after {earlier[0].describe()}: starting a new run"
        )
    return Start(None, "no run of this task instance yet")


def _newest_first(run: RunSeen) -> tuple[int, float]:
    started = _aware(run.started_at).timestamp() if run.started_at else 0.0
    return run.try_number, started


class RunLookupError(RuntimeError):
    """A lookup could not finish: the caller fails instead of risking a duplicate run."""


async def bounded_scan(
    pages: AsyncIterator[Sequence[T]],
    *,
    attempt: Attempt,
    started_at: Callable[[T], datetime | None],
    max_items: int,
    what: str,
) -> list[T]:
    """Every item of newest-first ``pages`` down to the attempt's lower bound (``Attempt.since``).

    Stops at the first item older than the bound. Raises :class:`RunLookupError` when more than
    ``max_items`` items lie above it: the caller cannot be sure it saw every run of its task
    instance, and must not start another. Errors while reading pages propagate unchanged.
    """
    seen: list[T] = []
    async for page in pages:
        for item in page:
            if attempt.older_than_bound(started_at(item)):
                return seen
            seen.append(item)
            if len(seen) > max_items:
                bound = attempt.since.isoformat() if attempt.since else "the start of the history"
                raise RunLookupError(
                    f"more than {max_items} {what} since {bound}: cannot be sure that no run of "
                    f"{attempt.task_instance.key()} is among them, so nothing was started (raise "
                    "max_runs_scanned to look further)"
                )
    return seen


# -- the task state store as a fast path (Airflow 3.3+) ---------------------------------------------
class RunMemo:
    """The run a try chose, kept in the task state store where Airflow has one (3.3+).

    :meth:`recall` returns ``{"run_id": ..., "try": ...}`` or None (always None on older Airflow, or
    after any error: the memo only ever saves a lookup, so failing to read it costs nothing but
    that); :meth:`remember` never raises.
    """

    def __init__(self, context: Mapping[str, Any], key: str) -> None:
        self.store = compat.task_state_store(context)
        self.key = key

    @property
    def available(self) -> bool:
        return self.store is not None

    def recall(self) -> dict[str, Any] | None:
        """``{"run_id": ..., "try": ...}`` of the run an earlier try chose, or None."""
        if self.store is None:
            return None
        try:
            value = self.store.get(self.key)
        except Exception as exc:
            log.warning(
                "Could not read %r from the task state store (looking the run up instead): %s", self.key, exc
            )
            return None
        if not isinstance(value, dict) or not isinstance(value.get("run_id"), str):
            return None
        if not isinstance(value.get("try"), int):
            return None
        return value

    def remember(self, run_id: str, try_number: int) -> None:
        """Keep the run this try chose for the next try (no-op without a store; never raises)."""
        if self.store is None:
            return
        try:
            self.store.set(self.key, {"run_id": run_id, "try": try_number})
        except Exception as exc:
            log.warning(
                "Could not keep run %s in the task state store (a retry will look it up): %s", run_id, exc
            )
