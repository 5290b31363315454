"""Glue job runs with AWS's lifecycle, driven by wall-clock time and evaluated when read.

moto's runs only go STARTING -> RUNNING -> SUCCEEDED, one step per read. Here each run gets a
timeline when it starts (its :class:`~.glue_scripts.JobRunScript`), and its state at any moment
is read off that timeline: no thread moves it. Rules, with the AWS page each follows:

- States STARTING, RUNNING, STOPPING, STOPPED, SUCCEEDED, FAILED, TIMEOUT, ERROR, WAITING
  (AWS Glue API, JobRun / JobRunState; "AWS Glue job run statuses",
  https://docs.aws.amazon.com/glue/latest/dg/job-run-statuses.html). EXPIRED is not emulated.
- MaxConcurrentRuns defaults to 1; StartJobRun over it fails with
  ConcurrentRunsExceededException (ExecutionProperty, StartJobRun Errors). The message
  "Concurrent runs exceeded for <job>" is the one AWS returns (quoted in
  aws-solutions/amazon-marketing-cloud-uploader-from-aws#51). Runs holding a slot: STARTING,
  RUNNING, STOPPING (AWS does not say whether STOPPING holds one; here it does).
- JobRunQueuingEnabled (on the run, else on the job: "the value from the job run field will be
  used") puts a run over the limit in WAITING; it starts, first in first out, when a slot frees
  (StartJobRun / Job JobRunQueuingEnabled; job-run-statuses "WAITING"). StateDetail, whose text
  AWS does not document, is left out.
- A run started by a workflow trigger over the limit, without queuing, ends FAILED ("The job
  exceeded its maximum allowed concurrent runs", job-run-statuses); a trigger that names a
  deleted job makes an ERROR run (same page). AWS documents neither ErrorMessage: the first reuses
  the StartJobRun text above, the second has none.
- Timeout (minutes; the run's, else the job's, else 2,880 for Glue 4.0 and earlier and 480 for
  Glue 5.0 and later, the default version being 5.1) ends a run that is still going in TIMEOUT
  (StartJobRun Timeout, Job GlueVersion).
- BatchStopJobRun: STARTING / RUNNING / WAITING -> STOPPING -> STOPPED (JobRunState; see
  :mod:`.glue_job_api` for the response).
- Fields (JobRun): StartedOn (when StartJobRun was called), LastModifiedOn (last state change),
  CompletedOn (only once the run has ended), ExecutionTime (whole seconds from STARTING to the
  end, rounded up; 0 until the run ends: AWS defines it as "the amount of time that the job run
  consumed resources"), Attempt 0, PreviousRunId (StartJobRun's JobRunId), TriggerName,
  PredecessorRuns, Arguments (the run's own, not the job's DefaultArguments: GetJobRun has no
  Arguments when the run was started without any, boto/boto3#3506), AllocatedCapacity and
  MaxCapacity in DPUs (NumberOfWorkers x the worker type's DPUs, else the capacity given, else
  AWS's defaults: 0.0625 for Python shell, 10 otherwise), DPUSeconds only for FLEX runs or with
  ``--enable-auto-scaling`` (DPUSeconds: "can be set for either job runs with execution class FLEX
  or when Auto Scaling is enabled"), LogGroupName (see :mod:`.glue_job_logs`).
- Glue's automatic retries of failed runs (the job's MaxRetries) are not emulated.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.glue.exceptions import ConcurrentRunsExceededException
from moto.glue.models import FakeJob, FakeJobRun, GlueBackend
from moto.moto_api._internal.managed_state_model import ManagedState

from airflow_provider_mwaaops.testing.extensions.glue_scripts import JobRunScript

DEFAULT_LOG_GROUP = "/aws-glue/jobs"
PYTHON_SHELL_LOG_GROUP = "/aws-glue/python-jobs"


#: One lock for every emulated Glue object: moto's server answers requests on several threads.
GLUE_LOCK = threading.RLock()
#: States in which a run holds one of its job's MaxConcurrentRuns slots.
SLOT_STATES = frozenset({"STARTING", "RUNNING", "STOPPING"})
#: States a run never leaves.
TERMINAL_STATES = frozenset({"STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED"})
ACTIVE_STATES = SLOT_STATES | {"WAITING"}
#: The version a job created without GlueVersion gets (Job GlueVersion).
DEFAULT_GLUE_VERSION = "5.1"
#: DPUs per worker, from the WorkerType documentation (R workers: memory-optimized M-DPUs).
WORKER_DPUS = {
    "G.025X": 0.25,
    "G.1X": 1.0,
    "G.2X": 2.0,
    "G.4X": 4.0,
    "G.8X": 8.0,
    "G.12X": 12.0,
    "G.16X": 16.0,
    "R.1X": 1.0,
    "R.2X": 2.0,
    "R.4X": 4.0,
    "R.8X": 8.0,
    "Z.2X": 2.0,
}
#: Not an AWS default: "Standard" workers are described as 4 vCPUs / 16 GB, i.e. one DPU.
STANDARD_WORKER_DPUS = 1.0
PYTHON_SHELL_DEFAULT_DPUS = 0.0625
SPARK_DEFAULT_DPUS = 10.0


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


@dataclasses.dataclass
class RunLife:
    """The timeline of one emulated job run (kept on moto's FakeJobRun as ``_mwaaops_life``)."""

    script: JobRunScript
    #: the moto FakeJob the run belongs to (None for the ERROR run of a deleted job)
    job: FakeJob | None
    created_at: datetime
    started_at: datetime | None
    timeout_minutes: float
    arguments: dict[str, str]
    effective_arguments: dict[str, str]
    queuing: bool | None = None
    execution_class: str | None = None
    stop_at: datetime | None = None
    #: (state, ErrorMessage) of a run that ended when it was created (workflow-started runs).
    forced: tuple[str, str | None] | None = None
    trigger_name: str | None = None
    predecessors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    #: what glue_job_logs has written: lines per kind, and when the next one is due
    log_cursor: dict[str, int] = dataclasses.field(default_factory=dict)
    log_next_at: datetime | None = None
    log_done: bool = False
    _phases: tuple[tuple[Any, ...], list[tuple[str, datetime]]] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    # -- the timeline ------------------------------------------------------------------------
    def phases(self) -> list[tuple[str, datetime]]:
        """``(state, since)`` in order; the last one holds from its time on."""
        key = (self.started_at, self.stop_at, self.forced, self.script, self.timeout_minutes)
        if self._phases is None or self._phases[0] != key:
            self._phases = (key, self._compute_phases())
        return self._phases[1]

    def _compute_phases(self) -> list[tuple[str, datetime]]:
        created = self.created_at
        if self.forced is not None:
            return [(self.forced[0], created)]
        script = self.script
        if self.started_at is None:
            phases = [("WAITING", created)]
            if self.stop_at is not None:
                phases += [
                    ("STOPPING", self.stop_at),
                    ("STOPPED", self.stop_at + _seconds(script.stopping_seconds)),
                ]
            return phases
        phases = [] if self.started_at <= created else [("WAITING", created)]
        start = self.started_at
        running_from = start + _seconds(script.starting_seconds)
        end, final = self.natural_end()
        if self.stop_at is not None and (end is None or self.stop_at < end):
            phases.append(("STARTING", start))
            if running_from < self.stop_at:
                phases.append(("RUNNING", running_from))
            return [
                *phases,
                ("STOPPING", self.stop_at),
                ("STOPPED", self.stop_at + _seconds(script.stopping_seconds)),
            ]
        phases.append(("STARTING", start))
        if end is None or running_from < end:
            phases.append(("RUNNING", running_from))
        if end is not None:
            phases.append((final, end))
        return phases

    def natural_end(self) -> tuple[datetime | None, str]:
        """When and how the started run ends if nobody stops it (its script or its Timeout)."""
        assert self.started_at is not None
        timeout_end = self.started_at + timedelta(minutes=self.timeout_minutes)
        if self.script.running_seconds is None:
            return timeout_end, "TIMEOUT"
        end = self.started_at + _seconds(self.script.starting_seconds + self.script.running_seconds)
        return (end, self.script.outcome) if end <= timeout_end else (timeout_end, "TIMEOUT")

    def state_at(self, moment: datetime) -> str:
        return self.phase_at(moment)[0]

    def phase_at(self, moment: datetime) -> tuple[str, datetime]:
        phases = self.phases()
        current = phases[0]
        for phase in phases[1:]:
            if phase[1] <= moment:
                current = phase
        return current

    def ended_at(self, moment: datetime) -> datetime | None:
        """When the run reached its terminal state, if it had by ``moment``."""
        state, since = self.phase_at(moment)
        return since if state in TERMINAL_STATES else None

    def running_window(self) -> tuple[datetime, datetime | None] | None:
        """``(from, until)`` of the RUNNING phase (``until`` None while open-ended)."""
        phases = self.phases()
        for index, (state, since) in enumerate(phases):
            if state == "RUNNING":
                following = phases[index + 1][1] if index + 1 < len(phases) else None
                return since, following
        return None

    def error_message(self, moment: datetime) -> str | None:
        state = self.state_at(moment)
        if self.forced is not None:
            return self.forced[1]
        if state in ("FAILED", "ERROR") or (state == "TIMEOUT" and self.script.running_seconds is not None):
            return self.script.failure_message
        return None

    def execution_seconds(self, moment: datetime) -> int:
        ended = self.ended_at(moment)
        if ended is None or self.started_at is None or self.forced is not None:
            return 0
        return math.ceil((ended - self.started_at).total_seconds())


def life_of(run: Any) -> RunLife | None:
    return getattr(run, "_mwaaops_life", None)


# -- job-level rules ----------------------------------------------------------------------------
def max_concurrent_runs(job: FakeJob) -> int:
    value = (job.execution_property or {}).get("MaxConcurrentRuns")
    return 1 if value is None else int(value)


def job_queuing_enabled(job: FakeJob) -> bool | None:
    return getattr(job, "job_run_queuing_enabled", None)


def timeout_minutes(job: FakeJob, run_timeout: int | None) -> float:
    if run_timeout:
        return float(run_timeout)
    if job.timeout:
        return float(job.timeout)
    return 480.0 if _version(glue_version(job)) >= (5, 0) else 2880.0


def glue_version(job: FakeJob) -> str:
    return job.glue_version or DEFAULT_GLUE_VERSION


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)


def command_name(job: FakeJob) -> str:
    command = job.command if isinstance(job.command, Mapping) else {}
    return str(command.get("Name") or "glueetl")


def runs_holding_slots(job: FakeJob, moment: datetime, exclude: Any = None) -> int:
    count = 0
    for run in job.job_runs:
        life = life_of(run)
        if run is exclude or life is None or life.created_at > moment:
            continue
        if life.state_at(moment) in SLOT_STATES:
            count += 1
    return count


def _slot_free_at(job: FakeJob, run: Any, now: datetime) -> datetime | None:
    """The first moment, from the run's creation up to ``now``, at which the job had a free slot."""
    life = life_of(run)
    assert life is not None
    limit = max_concurrent_runs(job)
    candidates = {life.created_at}
    for other in job.job_runs:
        other_life = life_of(other)
        if other is run or other_life is None:
            continue
        ended = other_life.ended_at(now)
        if ended is not None:
            candidates.add(ended)
    for moment in sorted(c for c in candidates if life.created_at <= c <= now):
        if runs_holding_slots(job, moment, exclude=run) < limit:
            return moment
    return None


#: FakeJob attribute: False once a settle found no WAITING run left; new_run sets it when it queues one.
_MAY_HAVE_WAITING = "_mwaaops_may_have_waiting"


def settle_job(job: FakeJob, now: datetime) -> bool:
    """Start the job's WAITING runs whose slot has freed by ``now``, first come first served.

    Every read of the backend settles every job, so a job whose runs are all started skips the
    walk over its runs: with a thousand runs held, that walk was a quarter of the emulator's CPU
    per GetJobRun. Only :func:`new_run` makes WAITING runs and it marks the job.
    """
    if not job.__dict__.get(_MAY_HAVE_WAITING, True):
        return False
    changed = False
    for run in job.job_runs:
        life = life_of(run)
        if life is None or life.forced is not None or life.started_at is not None or life.stop_at is not None:
            continue
        started = _slot_free_at(job, run, now)
        if started is None:
            break
        life.started_at = started
        changed = True
    else:  # no WAITING run is left (each one just started, or there was none)
        job.__dict__[_MAY_HAVE_WAITING] = False
    return changed


#: Called by settle() after the jobs, until nothing changes; workflows register here.
SETTLERS: list[Callable[[GlueBackend, datetime], bool]] = []


def settle(backend: GlueBackend, now: datetime | None = None) -> datetime:
    """Bring every emulated run of ``backend`` (jobs, then workflows) up to ``now``."""
    now = now or utcnow()
    with GLUE_LOCK:
        for _ in range(1000):
            changed = False
            for job in list(backend.jobs.values()):
                changed |= settle_job(job, now)
            for settler in SETTLERS:
                changed |= settler(backend, now)
            if not changed:
                break
    return now


# -- starting and stopping ----------------------------------------------------------------------
@dataclasses.dataclass
class RunRequest:
    """What StartJobRun (or a trigger's action) asks for."""

    arguments: dict[str, str] | None = None
    previous_run_id: str | None = None
    allocated_capacity: int | None = None
    max_capacity: float | None = None
    timeout: int | None = None
    worker_type: str | None = None
    number_of_workers: int | None = None
    security_configuration: str | None = None
    notification_property: dict[str, Any] | None = None
    queuing: bool | None = None
    execution_class: str | None = None


def effective_arguments(job: FakeJob, arguments: Mapping[str, str] | None) -> dict[str, str]:
    """Job defaults, then the run's arguments, then the non-overridable ones (Job, StartJobRun)."""
    return {**(job.default_arguments or {}), **(arguments or {}), **(job.non_overridable_arguments or {})}


def new_run(
    backend: GlueBackend,
    job: FakeJob,
    request: RunRequest,
    at: datetime,
    *,
    from_trigger: bool = False,
    extra_arguments: Mapping[str, str] | None = None,
) -> FakeJobRun:
    """A run of ``job`` created at ``at``: started, WAITING, or (trigger-started) FAILED.

    StartJobRun over the limit without queuing raises ConcurrentRunsExceededException instead.
    ``extra_arguments`` reach the run's script but are not its Arguments (a workflow's
    ``--WORKFLOW_NAME`` / ``--WORKFLOW_RUN_ID``).
    """
    from airflow_provider_mwaaops.testing.extensions.glue_scripts import script_book

    arguments = {**effective_arguments(job, request.arguments), **(extra_arguments or {})}
    queuing = request.queuing if request.queuing is not None else job_queuing_enabled(job)
    has_slot = runs_holding_slots(job, at) < max_concurrent_runs(job) and not _anyone_waiting(job)
    forced: tuple[str, str | None] | None = None
    if not has_slot and not queuing:
        message = f"Concurrent runs exceeded for {job.name}"
        if not from_trigger:
            raise ConcurrentRunsExceededException(message)
        forced = ("FAILED", message)
    script = script_book(backend).script_for_run(job.name, arguments)
    run = FakeJobRun(
        job_name=job.name,
        job_run_id=request.previous_run_id,
        arguments=dict(request.arguments or {}),
        allocated_capacity=request.allocated_capacity or job.allocated_capacity,
        max_capacity=request.max_capacity or job.max_capacity,
        timeout=request.timeout or job.timeout,
        worker_type=request.worker_type or job.worker_type,
        notification_property=request.notification_property or job.notification_property,
        security_configuration=request.security_configuration or job.security_configuration,
        number_of_workers=request.number_of_workers or job.number_of_workers,
    )
    run._mwaaops_life = RunLife(  # type: ignore[attr-defined]
        script=script,
        job=job,
        created_at=at,
        started_at=at if has_slot and forced is None else None,
        timeout_minutes=timeout_minutes(job, request.timeout),
        arguments=dict(request.arguments or {}),
        effective_arguments=arguments,
        queuing=request.queuing,
        execution_class=request.execution_class or job.execution_class,
        forced=forced,
    )
    job.job_runs.append(run)
    if run._mwaaops_life.started_at is None and forced is None:  # type: ignore[attr-defined]
        job.__dict__[_MAY_HAVE_WAITING] = True
    return run


def _anyone_waiting(job: FakeJob) -> bool:
    for run in job.job_runs:
        life = life_of(run)
        if life is not None and life.forced is None and life.started_at is None and life.stop_at is None:
            return True
    return False


def error_run(job_name: str, at: datetime, arguments: Mapping[str, str] | None) -> FakeJobRun:
    """The ERROR run a trigger makes when its job no longer exists (attached to no job)."""
    run = FakeJobRun(job_name=job_name, arguments=dict(arguments or {}))
    run._mwaaops_life = RunLife(  # type: ignore[attr-defined]
        script=JobRunScript(),
        job=None,
        created_at=at,
        started_at=None,
        timeout_minutes=0,
        arguments=dict(arguments or {}),
        effective_arguments=dict(arguments or {}),
        forced=("ERROR", None),
    )
    return run


def request_stop(run: Any, at: datetime) -> bool:
    """Stop a run that is STARTING, RUNNING or WAITING; True if the run is (now) stopping."""
    life = life_of(run)
    if life is None:
        return False
    state = life.state_at(at)
    if state == "STOPPING":
        return True
    if state not in ("STARTING", "RUNNING", "WAITING"):
        return False
    life.stop_at = at
    return True


# -- what GetJobRun answers -------------------------------------------------------------------------
def dpus(job: FakeJob | None, run: FakeJobRun) -> float:
    if run.worker_type and run.number_of_workers:
        return WORKER_DPUS.get(run.worker_type, STANDARD_WORKER_DPUS) * float(run.number_of_workers)
    if run.max_capacity:
        return float(run.max_capacity)
    if run.allocated_capacity:
        return float(run.allocated_capacity)
    if job is not None and command_name(job) == "pythonshell":
        return PYTHON_SHELL_DEFAULT_DPUS
    return SPARK_DEFAULT_DPUS


def log_group_name(job: FakeJob | None, arguments: Mapping[str, str]) -> str:
    """The run's LogGroupName: the prefix of its output and error groups."""
    prefix = arguments.get("--custom-logGroup-prefix")
    if prefix:
        return prefix.rstrip("/")
    if job is not None and command_name(job) == "pythonshell":
        return PYTHON_SHELL_LOG_GROUP
    return DEFAULT_LOG_GROUP


def run_fields(run: FakeJobRun, now: datetime) -> dict[str, Any]:
    """The JobRun structure of an emulated run at ``now``."""
    life = life_of(run)
    assert life is not None
    job = life.job
    state, since = life.phase_at(now)
    capacity = dpus(job, run)
    fields: dict[str, Any] = {
        "Id": run.job_run_id,
        "Attempt": 0,
        "JobName": run.job_name,
        "StartedOn": life.created_at,
        "LastModifiedOn": since,
        "JobRunState": state,
        "PredecessorRuns": list(life.predecessors),
        "AllocatedCapacity": int(capacity),
        "ExecutionTime": life.execution_seconds(now),
        "Timeout": int(life.timeout_minutes),
        "MaxCapacity": capacity,
        "LogGroupName": log_group_name(job, life.effective_arguments),
        "GlueVersion": glue_version(job) if job is not None else DEFAULT_GLUE_VERSION,
    }
    optional = {
        "PreviousRunId": run.previous_run_id,
        "TriggerName": life.trigger_name,
        "JobRunQueuingEnabled": life.queuing
        if life.queuing is not None
        else (job_queuing_enabled(job) if job else None),
        "CompletedOn": since if state in TERMINAL_STATES else None,
        "Arguments": dict(life.arguments) or None,
        "ErrorMessage": life.error_message(now),
        "WorkerType": run.worker_type,
        "NumberOfWorkers": run.number_of_workers,
        "SecurityConfiguration": run.security_configuration,
        "NotificationProperty": run.notification_property,
        "ExecutionClass": life.execution_class,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    if life.execution_class == "FLEX" or life.effective_arguments.get("--enable-auto-scaling") == "true":
        fields["DPUSeconds"] = float(fields["ExecutionTime"]) * capacity
    return fields


# -- patches of moto's classes ------------------------------------------------------------------------
def _status_get(self: Any) -> str | None:
    life = life_of(self)
    if life is None:
        return ManagedState.status.fget(self)  # type: ignore[attr-defined]
    return life.state_at(utcnow())


def _status_set(self: Any, value: str) -> None:
    ManagedState.status.fset(self, value)  # type: ignore[attr-defined]


def _as_dict(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def as_dict(self: FakeJobRun) -> dict[str, Any]:
        return original(self) if life_of(self) is None else run_fields(self, utcnow())

    return as_dict


def install() -> None:
    """Job runs follow their timelines; the status of a run is read off its timeline."""
    from airflow_provider_mwaaops.testing.extensions._patching import add_method, wrap_method

    add_method(FakeJobRun, "status", property(_status_get, _status_set))  # type: ignore[arg-type]
    wrap_method(FakeJobRun, "as_dict", "mwaaops.glue.job_runs", _as_dict)
