"""EMR Serverless applications and job runs that move through AWS's states as time passes.

moto creates every job run in SUCCESS and every application STARTED, never moves them, keeps no
client tokens and lists runs unpaged. Here each run and application carries a clock, and every
read (GetJobRun, ListJobRuns, GetApplication, ..., and CloudWatch Logs reads) first brings it up
to the current time, so a run's state depends only on when it is looked at. What a run does is
scripted (:mod:`.emr_scripts`); timings default to :class:`.emr_scripts.EmrTimings`.

Rules, with the AWS page each follows:

- Job run states SUBMITTED -> PENDING -> SCHEDULED -> RUNNING -> SUCCESS or FAILED (stateDetails
  says why), and CANCELLING -> CANCELLED after CancelJobRun or when the run outlives
  ``executionTimeoutMinutes`` (EMR Serverless User Guide, "Job run states",
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/job-states.html). Runs start in
  RUNNING order of submission; QUEUED (application job concurrency) is not emulated.
- Application states CREATED, STARTING, STARTED, STOPPING, STOPPED; "the application only accepts
  jobs when it's in [STARTED]" (User Guide, "Application states",
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/applications.html). CREATING is
  not emulated: CreateApplication returns a CREATED application (moto made it STARTED).
- Auto-start: "an application by default is configured to auto-start on job submission" (User
  Guide, "Understanding application behavior",
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/app-behavior.html, and
  AutoStartConfig: "Defaults to true",
  https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_AutoStartConfig.html). So
  StartJobRun on a CREATED / STOPPED / STOPPING application with auto-start enabled starts it and
  the run waits in SUBMITTED until the application is STARTED; with auto-start disabled StartJobRun
  is refused (ValidationException) unless the application is STARTED. AWS documents the rule but
  not the error: the error code is the one StartJobRun lists for invalid input and the message is
  the emulator's. Auto-stop after idling is not emulated.
- StopApplication: "All scheduled and running jobs must be completed or cancelled before stopping
  an application" (API reference, StopApplication,
  https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_StopApplication.html): refused
  with a ValidationException (StopApplication's documented error for invalid input; the message is
  the emulator's) while a run is not finished.
- StartJobRun's ``clientToken`` is "the client idempotency token of the job run to start" (API
  reference, StartJobRun,
  https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_StartJobRun.html): the same
  token with the same request returns the run it started before, without starting another. AWS
  documents neither how long a token is remembered (here: until ``reset()`` or
  ``aws_emulator.emr.forget_client_tokens()``) nor what the same token with a different request
  does (here: ConflictException, "conflict in the current state of the resource"; the message is
  the emulator's).
- ListJobRuns (API reference, https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_ListJobRuns.html):
  ``createdAtAfter`` / ``createdAtBefore`` bounds, ``states`` filter ("if this filter contains
  multiple states, the resulting list will be grouped by the state": groups in the filter's order),
  ``maxResults`` 1-50 with ``nextToken``. AWS documents no default page size and no order: here 50
  and newest first; a lower bound is inclusive, an upper bound exclusive (also undocumented).
- Driver logs: with ``monitoringConfiguration.cloudWatchLoggingConfiguration.enabled`` the driver's
  stdout / stderr go to CloudWatch Logs, log group ``logGroupName`` (default ``/aws/emr-serverless``),
  stream ``<logStreamNamePrefix>/applications/<app>/jobs/<run>/SPARK_DRIVER/stdout`` (``stderr``;
  ``HIVE_DRIVER`` for Hive), only the ``logTypes`` asked for ("If you don't specify any log types,
  driver STDOUT and STDERR logs will be published", API reference, CloudWatchLoggingConfiguration,
  https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_CloudWatchLoggingConfiguration.html);
  with ``s3MonitoringConfiguration.logUri`` they are written gzip-compressed to
  ``<logUri>/applications/<app>/jobs/<run>/SPARK_DRIVER/stdout.gz`` (User Guide, "Storing logs",
  https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/logging.html). CloudWatch events
  appear while the run is RUNNING, S3 files when it ends (written when the run is next read: its
  GetJobRun, or a read of every run such as ListJobRuns or GetApplication). The application's own
  monitoringConfiguration applies where the run gives none. Attempts (retryPolicy) are not
  emulated: every run is attempt 1.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import InvalidToken, JsonRESTError
from moto.core.responses import ActionResult
from moto.emrserverless.exceptions import ResourceNotFoundException, ValidationException
from moto.emrserverless.models import Application, EMRServerlessBackend, JobRun, emrserverless_backends
from moto.emrserverless.responses import EMRServerlessResponse
from moto.logs.models import LogsBackend
from moto.utilities.paginator import paginate

from airflow_provider_mwaaops.testing.extensions import emr_logs, emr_scripts
from airflow_provider_mwaaops.testing.extensions._patching import replaced_by, wrap_method
from airflow_provider_mwaaops.testing.extensions.emr_scripts import (
    JOB_RUN_OUTCOMES,
    SIMULATION_LOCK,
    EmrTimings,
    RunScript,
    ScriptError,
    book_of,
    log_lines,
    script_from_settings,
    settings_from_properties,
    settings_from_tokens,
    split_submit_parameters,
    to_datetime,
)

_PATCH = "mwaaops.emr_serverless"
TERMINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
DEFAULT_LOG_GROUP = "/aws/emr-serverless"
MAX_PAGE_SIZE = 50
_PAGINATION = {
    "list_job_runs": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": MAX_PAGE_SIZE,
        "unique_attribute": "id",
    }
}


class ConflictException(JsonRESTError):
    code = 409

    def __init__(self, message: str):
        super().__init__("ConflictException", message)


# -- applications ---------------------------------------------------------------------------------
@dataclasses.dataclass
class _ApplicationClock:
    transitions: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    started_at: float | None = None  # when the application last became STARTED


def _app_clock(app: Application) -> _ApplicationClock:
    clock = app.__dict__.get("_mwaaops_clock")
    if clock is None:
        clock = app.__dict__["_mwaaops_clock"] = _ApplicationClock()
    return clock


def advance_application(app: Application, at: float) -> None:
    """Apply the application's scheduled transitions up to ``at``."""
    clock = _app_clock(app)
    while clock.transitions and clock.transitions[0][0] <= at:
        moment, state = clock.transitions.pop(0)
        app.state = state
        app.updated_at = to_datetime(moment)
        if state == "STARTED":
            clock.started_at = moment


def _scheduled_state(app: Application) -> str:
    clock = _app_clock(app)
    return clock.transitions[-1][1] if clock.transitions else app.state


def request_start(app: Application, at: float, timings: EmrTimings) -> None:
    """STARTING now (or once a stop in progress has ended), then STARTED."""
    if _scheduled_state(app) in ("STARTING", "STARTED"):
        return
    clock = _app_clock(app)
    begin = max([at] + [moment for moment, _ in clock.transitions])
    clock.transitions += [(begin, "STARTING"), (begin + timings.application_starting, "STARTED")]
    advance_application(app, at)


def request_stop(app: Application, at: float, timings: EmrTimings) -> None:
    if _scheduled_state(app) not in ("STARTING", "STARTED"):
        return
    clock = _app_clock(app)
    clock.transitions = [(at, "STOPPING"), (at + timings.application_stopping, "STOPPED")]
    advance_application(app, at)


def _auto_start_enabled(app: Application) -> bool:
    config = app.auto_start_configuration or {}
    return bool(config.get("enabled", True)) if isinstance(config, dict) else True


# -- job runs -------------------------------------------------------------------------------------
@dataclasses.dataclass
class _RunClock:
    submitted_at: float
    timings: EmrTimings
    outcome: str
    duration: float
    message: str | None
    stdout: list[str]
    stderr: list[str]
    log_interval: float
    timeout_seconds: float
    ready_at: float | None = None  # when the application was STARTED for this run
    cancel_at: float | None = None
    emitted: dict[str, int] = dataclasses.field(default_factory=dict)
    settled: bool = False  # finished, logs written: nothing will change any more


def _new_run_clock(script: RunScript, timings: EmrTimings, at: float, timeout_minutes: int) -> _RunClock:
    outcome = script.outcome or "SUCCESS"
    stdout, stderr = log_lines(script, outcome == "FAILED", script.message)
    return _RunClock(
        submitted_at=at,
        timings=dataclasses.replace(timings),
        outcome=outcome,
        duration=timings.job_running if script.duration is None else script.duration,
        message=script.message,
        stdout=stdout,
        stderr=stderr,
        log_interval=timings.log_interval if script.log_interval is None else script.log_interval,
        timeout_seconds=timeout_minutes * 60.0,
    )


@dataclasses.dataclass(frozen=True)
class _Timeline:
    segments: list[tuple[float, str]]
    running_at: float | None
    left_running_at: float | None  # end of RUNNING: its outcome, or the cancellation
    timed_out: bool

    def state_at(self, at: float) -> tuple[float, str]:
        current = self.segments[0]
        for segment in self.segments:
            if segment[0] <= at:
                current = segment
        return current


def _timeline(clock: _RunClock) -> _Timeline:
    timings = clock.timings
    segments = [(clock.submitted_at, "SUBMITTED")]
    running_at = finished_at = None
    timed_out = False
    cancel_at = clock.cancel_at
    if clock.ready_at is not None:
        moment = max(clock.submitted_at + timings.job_submitted, clock.ready_at)
        segments.append((moment, "PENDING"))
        moment += timings.job_pending
        segments.append((moment, "SCHEDULED"))
        moment += timings.job_scheduled
        segments.append((moment, "RUNNING"))
        running_at = moment
        end = moment + clock.duration
        timeout_at = moment + clock.timeout_seconds
        if timeout_at < end and (cancel_at is None or timeout_at < cancel_at):
            cancel_at, timed_out = timeout_at, True
        elif math.isfinite(end):
            segments.append((end, clock.outcome))
            finished_at = end
    if cancel_at is not None:
        segments = [segment for segment in segments if segment[0] <= cancel_at]
        if segments[-1][1] not in TERMINAL_STATES:
            segments += [(cancel_at, "CANCELLING"), (cancel_at + timings.job_cancelling, "CANCELLED")]
            finished_at = cancel_at if running_at is not None and running_at <= cancel_at else None
            if running_at is not None and running_at > cancel_at:
                running_at = None
    return _Timeline(segments, running_at, finished_at, timed_out)


def _run_clock(run: JobRun) -> _RunClock | None:
    return run.__dict__.get("_mwaaops_clock")


def advance_run(backend: EMRServerlessBackend, run: Any, at: float) -> None:
    """Bring ``run`` (a moto JobRun; and its application) to time ``at``: state, timestamps, logs."""
    clock = _run_clock(run)
    if clock is None or clock.settled:  # created before the extension was installed / done
        return
    app = backend.applications.get(run.application_id)
    if clock.ready_at is None and app is not None:
        advance_application(app, at)
        started_at = _app_clock(app).started_at
        if app.state == "STARTED" and started_at is not None:
            clock.ready_at = max(clock.submitted_at, started_at)
    timeline = _timeline(clock)
    since, state = timeline.state_at(at)
    run.state = state
    run.updated_at = run.attempt_updated_at = to_datetime(since)
    if timeline.running_at is not None and timeline.running_at <= at:
        run.started_at = to_datetime(timeline.running_at)
    if state in TERMINAL_STATES:
        run.ended_at = to_datetime(since)
        if timeline.running_at is not None:
            run.total_execution_duration_seconds = math.ceil(since - timeline.running_at)
    run.state_details = _state_details(clock, state, timeline)
    if app is not None:
        _write_logs(backend, app, run, clock, timeline, at)
    clock.settled = state in TERMINAL_STATES


def _state_details(clock: _RunClock, state: str, timeline: _Timeline) -> str | None:
    if state == "FAILED":
        return clock.message or "Job run failed (scripted outcome FAILED; the script gave no message)."
    if state in ("CANCELLING", "CANCELLED") and timeline.timed_out:
        minutes = int(clock.timeout_seconds // 60)
        return f"Job run exceeded executionTimeoutMinutes ({minutes}) and is cancelled."
    return None


# -- logs -----------------------------------------------------------------------------------------
def _monitoring(run: JobRun, app: Application, key: str) -> dict[str, Any]:
    """The run's monitoring block ``key``, else the application's (runs override applications)."""
    overrides: Any = run.configuration_overrides or {}
    for monitoring in (overrides.get("monitoringConfiguration") or {}, _app_monitoring(app)):
        block = monitoring.get(key)
        if block:
            return dict(block)
    return {}


def _app_monitoring(app: Application) -> dict[str, Any]:
    return app.__dict__.get("_mwaaops_monitoring") or {}


def _driver(app: Application) -> str:
    return "HIVE_DRIVER" if str(app.type).upper() == "HIVE" else "SPARK_DRIVER"


def _line_times(lines: list[str], clock: _RunClock, timeline: _Timeline) -> list[float]:
    """When each line is written: ``log_interval`` apart from RUNNING; all by a normal end."""
    start = timeline.running_at
    if start is None:
        return []
    times = [start + clock.log_interval * (index + 1) for index in range(len(lines))]
    end = timeline.left_running_at
    if end is None:
        return times
    cancelled = timeline.segments[-1][1] == "CANCELLED"
    return [t for t in times if t <= end] if cancelled else [min(t, end) for t in times]


def _write_logs(
    backend: EMRServerlessBackend,
    app: Application,
    run: JobRun,
    clock: _RunClock,
    timeline: _Timeline,
    at: float,
) -> None:
    driver = _driver(app)
    cloudwatch = _monitoring(run, app, "cloudWatchLoggingConfiguration")
    kinds = {"stdout": clock.stdout, "stderr": clock.stderr}
    if cloudwatch.get("enabled"):
        wanted = (cloudwatch.get("logTypes") or {driver: ["STDOUT", "STDERR"]}).get(driver, [])
        group = cloudwatch.get("logGroupName") or DEFAULT_LOG_GROUP
        prefix = cloudwatch.get("logStreamNamePrefix") or ""
        for kind, lines in kinds.items():
            if kind.upper() not in wanted:
                continue
            stream = f"{prefix}/applications/{app.id}/jobs/{run.id}/{driver}/{kind}"
            times = _line_times(lines, clock, timeline)
            done = clock.emitted.get(kind, 0)
            while done < len(times) and times[done] <= at:
                timestamp = int(times[done] * 1000)
                emr_logs.put_log_event(
                    backend.account_id, backend.region_name, group, stream, timestamp, lines[done]
                )
                done += 1
            clock.emitted[kind] = done
    log_uri = _monitoring(run, app, "s3MonitoringConfiguration").get("logUri")
    if log_uri and run.state in TERMINAL_STATES:
        for kind, lines in kinds.items():
            written = lines[: len(_line_times(lines, clock, timeline))]
            uri = emr_logs.join_s3(log_uri, "applications", app.id, "jobs", run.id, driver, f"{kind}.gz")
            emr_logs.put_gzip_lines(backend.account_id, uri, written)


# -- scripts --------------------------------------------------------------------------------------
def _submission_settings(job_driver: Any, overrides: Any) -> list[tuple[str, str]]:
    driver = job_driver or {}
    spark = driver.get("sparkSubmit") or {}
    tokens = split_submit_parameters(spark.get("sparkSubmitParameters"))
    tokens += list(spark.get("entryPointArguments") or [])
    tokens += split_submit_parameters((driver.get("hive") or {}).get("parameters"))
    settings = settings_from_tokens(tokens)
    for config in (overrides or {}).get("applicationConfiguration") or []:
        if config.get("classification") == "spark-defaults":
            settings += settings_from_properties(config.get("properties") or {})
    return settings


def _run_key(name: str | None, job_driver: dict[str, Any] | None) -> str:
    return name or ((job_driver or {}).get("sparkSubmit") or {}).get("entryPoint") or ""


def _emulator_error(err: ScriptError) -> ValidationException:
    return ValidationException(f"mwaaops emulator: {err}")


# -- backend patches ------------------------------------------------------------------------------
def _tokens(backend: EMRServerlessBackend) -> dict[tuple[str, str, int], tuple[str, JobRun]]:
    return backend.__dict__.setdefault("_mwaaops_client_tokens", {})


def _start_job_run(original: Callable[..., JobRun]) -> Callable[..., JobRun]:
    def start_job_run(
        self: EMRServerlessBackend, application_id: str, client_token: str, **kwargs: Any
    ) -> JobRun:
        with SIMULATION_LOCK:
            at = emr_scripts.now()
            app = self.get_application(application_id)
            book = book_of(self)
            token_key = (application_id, client_token, book.token_generation)
            fingerprint = json.dumps(kwargs, sort_keys=True, default=str)
            if token_key in _tokens(self):
                seen_fingerprint, seen_run = _tokens(self)[token_key]
                if seen_fingerprint != fingerprint:
                    raise ConflictException(
                        f"clientToken {client_token} was already used to start job run {seen_run.id} "
                        "with a different request."
                    )
                advance_run(self, seen_run, at)
                return seen_run
            advance_application(app, at)
            if app.state == "TERMINATED":
                return original(self, application_id, client_token, **kwargs)  # moto's own error
            if app.state != "STARTED" and not _auto_start_enabled(app):
                raise ValidationException(
                    f"Application {application_id} is {app.state} and its autoStartConfiguration "
                    "is disabled; the application only accepts jobs when it is STARTED."
                )
            job_driver, overrides = kwargs.get("job_driver"), kwargs.get("configuration_overrides")
            try:
                settings = _submission_settings(job_driver, overrides)
                scripted, times = script_from_settings(settings, JOB_RUN_OUTCOMES)
            except ScriptError as err:
                raise _emulator_error(err) from None
            run: Any = original(self, application_id, client_token, **kwargs)
            run.created_at = run.attempt_created_at = to_datetime(at)
            run.attempt = 1
            run.mode = "BATCH"
            key = _run_key(run.name, job_driver)
            if scripted is not None:
                earlier = sum(
                    1
                    for other in self.job_runs[application_id]
                    if other is not run and _run_key(other.name, other.job_driver) == key
                )
                script = scripted if times is None or earlier < times else RunScript()
            else:
                script = book.take(run.name, application_id) or RunScript()
            run._mwaaops_clock = _new_run_clock(script, book.timings, at, run.execution_timeout_minutes)
            if app.state != "STARTED":
                request_start(app, at, book.timings)
            _tokens(self)[token_key] = (fingerprint, run)
            advance_run(self, run, at)
            return run

    return start_job_run


def _application(backend: EMRServerlessBackend, application_id: str, at: float) -> Application:
    """The application (moto's lookup and its not-found error) brought up to ``at``, alone.

    Not through ``backend.get_application``: as GetApplication, that brings every run of the
    backend up to now, which made each GetJobRun cost a step of every other run's clock (O(runs)
    per request: 28 ms with 1000 runs held, so a fleet of 1000 waits could not be served). A
    run's state depends only on its own clock and its application's, so nothing a request
    answers changes.
    """
    app = inspect.unwrap(EMRServerlessBackend.get_application)(backend, application_id)
    advance_application(app, at)
    return app


def _find_run(backend: EMRServerlessBackend, application_id: str, job_run_id: str, at: float) -> JobRun:
    _application(backend, application_id, at)
    for run in backend.job_runs.get(application_id, []):
        if run.id == job_run_id:
            return run
    raise ResourceNotFoundException(job_run_id, "JobRun")


def _get_job_run(_original: Callable[..., JobRun]) -> Callable[..., JobRun]:
    def get_job_run(self: EMRServerlessBackend, application_id: str, job_run_id: str) -> JobRun:
        with SIMULATION_LOCK:
            at = emr_scripts.now()
            run = _find_run(self, application_id, job_run_id, at)
            advance_run(self, run, at)
            return run

    return get_job_run


def _cancel_job_run(_original: Callable[..., Any]) -> Callable[..., tuple[str, str]]:
    def cancel_job_run(self: EMRServerlessBackend, application_id: str, job_run_id: str) -> tuple[str, str]:
        # AWS documents no error for cancelling a finished run; here it is accepted and changes nothing.
        with SIMULATION_LOCK:
            at = emr_scripts.now()
            run = _find_run(self, application_id, job_run_id, at)
            advance_run(self, run, at)
            clock = _run_clock(run)
            if clock is not None and clock.cancel_at is None and run.state not in TERMINAL_STATES:
                clock.cancel_at = at
                advance_run(self, run, at)
            return application_id, job_run_id

    return cancel_job_run


def advance_all(backend: EMRServerlessBackend, at: float | None = None) -> None:
    """Bring every application and unfinished run of ``backend`` up to ``at`` (default: now)."""
    with SIMULATION_LOCK:
        moment = emr_scripts.now() if at is None else at
        for app in backend.applications.values():
            advance_application(app, moment)
        for runs in backend.job_runs.values():
            for run in runs:
                advance_run(backend, run, moment)


def _advancing(original: Callable[..., Any]) -> Callable[..., Any]:
    """A backend read that first brings the backend's applications and runs up to now."""

    def read(self: EMRServerlessBackend, *args: Any, **kwargs: Any) -> Any:
        with SIMULATION_LOCK:
            advance_all(self)
            return original(self, *args, **kwargs)

    return read


def _start_application(_original: Callable[..., None]) -> Callable[..., None]:
    def start_application(self: EMRServerlessBackend, application_id: str) -> None:
        with SIMULATION_LOCK:
            app = self.get_application(application_id)
            at = emr_scripts.now()
            advance_application(app, at)
            if app.state == "TERMINATED":
                raise ValidationException(
                    f"Application {application_id} is TERMINATED and cannot be started."
                )
            request_start(app, at, book_of(self).timings)

    return start_application


def _stop_application(_original: Callable[..., None]) -> Callable[..., None]:
    def stop_application(self: EMRServerlessBackend, application_id: str) -> None:
        with SIMULATION_LOCK:
            app = self.get_application(application_id)
            at = emr_scripts.now()
            advance_all(self, at)
            runs = self.job_runs.get(application_id, [])
            active = [run.id for run in runs if run.state not in TERMINAL_STATES]
            if active:
                raise ValidationException(
                    f"Application {application_id} has job runs that are not finished "
                    f"({', '.join(active)}); all scheduled and running jobs must be completed or "
                    "cancelled before stopping an application."
                )
            request_stop(app, at, book_of(self).timings)

    return stop_application


def _application_init(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Application, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.state = "CREATED"
        self.created_at = self.updated_at = to_datetime(emr_scripts.now())

    return __init__


def _list_job_runs_page(backend: EMRServerlessBackend, **kwargs: Any) -> tuple[list[JobRun], str | None]:
    @paginate(pagination_model=_PAGINATION)
    def list_job_runs(
        application_id: str,
        created_at_after: datetime | None = None,
        created_at_before: datetime | None = None,
        states: list[str] | None = None,
    ) -> list[JobRun]:
        submitted = backend.job_runs.get(application_id, [])
        position = {run.id: index for index, run in enumerate(submitted)}
        runs = list(submitted)
        if created_at_after is not None:
            runs = [run for run in runs if run.created_at >= created_at_after]
        if created_at_before is not None:
            runs = [run for run in runs if run.created_at < created_at_before]
        order = {state: index for index, state in enumerate(states or [])}
        if order:
            runs = [run for run in runs if run.state in order]
        runs.sort(key=lambda run: (run.created_at, position[run.id]), reverse=True)
        return sorted(runs, key=lambda run: order.get(run.state, 0))

    return list_job_runs(**kwargs)


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _summary(run: JobRun) -> dict[str, Any]:
    return {
        "applicationId": run.application_id,
        "id": run.id,
        "name": run.name,
        "mode": getattr(run, "mode", "BATCH"),
        "arn": run.arn,
        "createdBy": run.created_by,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
        "executionRole": run.execution_role_arn,
        "state": run.state,
        "stateDetails": run.state_details,
        "releaseLabel": run.release_label,
        "type": run.application_type,
        "attempt": getattr(run, "attempt", 1),
        "attemptCreatedAt": getattr(run, "attempt_created_at", run.created_at),
        "attemptUpdatedAt": getattr(run, "attempt_updated_at", run.updated_at),
    }


def response_list_job_runs(self: EMRServerlessResponse) -> ActionResult:
    """ListJobRuns with its filters applied before the page is cut, and pages of at most 50."""
    application_id = self._get_param("applicationId")
    max_results = self._get_int_param("maxResults")
    if max_results is not None and not 1 <= max_results <= MAX_PAGE_SIZE:
        raise ValidationException(f"maxResults must be between 1 and {MAX_PAGE_SIZE}, got {max_results}.")
    backend = self.emrserverless_backend
    with SIMULATION_LOCK:
        backend.get_application(application_id)
        advance_all(backend)
        try:
            runs, next_token = _list_job_runs_page(
                backend,
                application_id=application_id,
                created_at_after=_naive_utc(self._get_param("createdAtAfter")),
                created_at_before=_naive_utc(self._get_param("createdAtBefore")),
                states=self._get_param("states") or None,
                max_results=max_results,
                next_token=self._get_param("nextToken"),
            )
        except InvalidToken:
            raise ValidationException("The nextToken is not valid for this request.") from None
        return ActionResult({"jobRuns": [_summary(run) for run in runs], "nextToken": next_token})


def _create_application_response(original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
    """CreateApplication keeps the application's monitoringConfiguration (moto drops it)."""

    def create_application(self: EMRServerlessResponse) -> ActionResult:
        result = original(self)
        payload = getattr(result, "result", None)
        monitoring = self._get_param("monitoringConfiguration")
        if isinstance(payload, dict) and monitoring:
            app = self.emrserverless_backend.applications[payload["applicationId"]]
            app.__dict__["_mwaaops_monitoring"] = monitoring
        return result

    return create_application


_RUN_STREAM = re.compile(r"/applications/([0-9a-z]+)/jobs/([0-9a-z]+)/")


def _streams_read(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    """The stream names (or prefix) a Logs read names; FilterLogEvents passes them positionally."""
    names = [kwargs.get("log_stream_name"), kwargs.get("log_stream_name_prefix")]
    listed = kwargs.get("log_stream_names", args[1] if len(args) > 1 else None)
    names += listed if isinstance(listed, list) else []
    return [name for name in names if isinstance(name, str)]


def _logs_read(original: Callable[..., Any]) -> Callable[..., Any]:
    """CloudWatch Logs reads see what job runs have written by now (only the runs read, if named)."""

    def read(self: LogsBackend, *args: Any, **kwargs: Any) -> Any:
        backends = emrserverless_backends.get(self.account_id)
        if backends is not None and self.region_name in backends:
            backend = backends[self.region_name]
            named = [
                match.groups() for name in _streams_read(args, kwargs) if (match := _RUN_STREAM.search(name))
            ]
            with SIMULATION_LOCK:
                if not named:
                    advance_all(backend)
                for application_id, job_run_id in named:
                    for run in backend.job_runs.get(application_id, []):
                        if run.id == job_run_id:
                            advance_run(backend, run, emr_scripts.now())
        return original(self, *args, **kwargs)

    return read


def install() -> None:
    """Job run and application lifecycles, client tokens, paged ListJobRuns and driver logs."""
    wrap_method(Application, "__init__", _PATCH, _application_init)
    wrap_method(EMRServerlessBackend, "start_job_run", _PATCH, _start_job_run)
    wrap_method(EMRServerlessBackend, "get_job_run", _PATCH, _get_job_run)
    wrap_method(EMRServerlessBackend, "cancel_job_run", _PATCH, _cancel_job_run)
    wrap_method(EMRServerlessBackend, "start_application", _PATCH, _start_application)
    wrap_method(EMRServerlessBackend, "stop_application", _PATCH, _stop_application)
    for read in ("get_application", "list_applications", "update_application", "delete_application"):
        wrap_method(EMRServerlessBackend, read, _PATCH, _advancing)
    wrap_method(EMRServerlessResponse, "list_job_runs", _PATCH, replaced_by(response_list_job_runs))
    wrap_method(EMRServerlessResponse, "create_application", _PATCH, _create_application_response)
    for read in ("get_log_events", "filter_log_events", "describe_log_streams"):
        wrap_method(LogsBackend, read, _PATCH, _logs_read)
