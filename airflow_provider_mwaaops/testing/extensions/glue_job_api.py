"""The Glue job-run API over :mod:`.glue_job_runs`: StartJobRun, GetJobRun(s), BatchStopJobRun.

What callers see, and the AWS page each rule follows (AWS Glue API reference, "Job runs"):

- StartJobRun takes ``JobRunQueuingEnabled`` and ``ExecutionClass`` besides moto's parameters; an
  unknown job is EntityNotFoundException "Failed to start job run due to missing metadata." (the
  text AWS returns, as quoted by users of the real service); ``Arguments`` must map strings to
  strings ("GenericMap"; boto3 checks this before sending, other clients may not). AWS documents
  no message for a malformed map: the one here is the emulator's. A malformed
  ``--mwaaops-emulator`` script is rejected the same way, naming the problem.
- CreateJob / UpdateJob keep ``JobRunQueuingEnabled``; GetJob returns it (Job structure).
- GetJobRuns returns "the job runs in chronological order, with the newest jobs returned first".
- BatchStopJobRun (``JobName``, ``JobRunIds``: 1 to 25) answers ``SuccessfulSubmissions``
  ``[{JobName, JobRunId}]`` and ``Errors`` ``[{JobName, JobRunId, ErrorDetail: {ErrorCode,
  ErrorMessage}}]``; its documented errors do not include EntityNotFoundException, so an unknown
  job or run is reported per run in ``Errors``. AWS documents neither the codes nor the messages
  of those entries: here an unknown job or run is ``EntityNotFoundException`` and a run that has
  already ended ``InvalidInputException``, with the emulator's own short messages. A run that is
  already STOPPING counts as submitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.glue.exceptions import EntityNotFoundException, InvalidInputException
from moto.glue.models import FakeJob, GlueBackend
from moto.glue.responses import GlueResponse

from airflow_provider_mwaaops.testing.extensions._moto_requests import request_member
from airflow_provider_mwaaops.testing.extensions._patching import add_method, wrap_method
from airflow_provider_mwaaops.testing.extensions.glue_job_runs import (
    GLUE_LOCK,
    RunRequest,
    life_of,
    new_run,
    request_stop,
    settle,
)
from airflow_provider_mwaaops.testing.extensions.glue_scripts import ScriptError

_PATCH = "mwaaops.glue.job_api"
#: StartJobRun for a job that does not exist, in AWS's words.
MISSING_JOB_MESSAGE = "Failed to start job run due to missing metadata."
MAX_STOP_IDS = 25


def check_string_map(operation: str, name: str, value: Any) -> dict[str, str] | None:
    """``value`` if it is a string-to-string map (or absent); InvalidInputException otherwise."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputException(operation, f"{name} must be a map of strings to strings")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidInputException(
                operation, f"{name} must map strings to strings; {key!r} maps to {type(item).__name__}"
            )
    return value


def start_job_run(response: GlueResponse) -> ActionResult:
    backend = response.glue_backend
    name = response._get_param("JobName")
    arguments = check_string_map("StartJobRun", "Arguments", request_member(response, "Arguments"))
    allocated = response._get_int_param("AllocatedCapacity")
    max_capacity = response._get_float_param("MaxCapacity")
    if allocated and max_capacity:
        # moto's message for this case, kept as it was
        raise InvalidInputException("StartJobRun", "Please set only Allocated Capacity or Max Capacity")
    request = RunRequest(
        arguments=arguments,
        previous_run_id=response._get_param("JobRunId"),
        allocated_capacity=allocated,
        max_capacity=max_capacity,
        timeout=response._get_int_param("Timeout"),
        worker_type=response._get_param("WorkerType"),
        number_of_workers=response._get_int_param("NumberOfWorkers"),
        security_configuration=response._get_param("SecurityConfiguration"),
        notification_property=response._get_param("NotificationProperty"),
        queuing=response._get_bool_param("JobRunQueuingEnabled"),
        execution_class=response._get_param("ExecutionClass"),
    )
    with GLUE_LOCK:
        job = backend.jobs.get(name)
        if job is None:
            raise EntityNotFoundException(MISSING_JOB_MESSAGE)
        now = settle(backend)
        try:
            run = new_run(backend, job, request, now)
        except ScriptError as err:
            raise InvalidInputException("StartJobRun", str(err)) from None
    return ActionResult({"JobRunId": run.job_run_id})


def batch_stop_job_run(backend: GlueBackend, job_name: str, run_ids: list[str]) -> dict[str, Any]:
    """Stop the listed runs of ``job_name``: ``{"SuccessfulSubmissions": [...], "Errors": [...]}``."""
    submitted: list[dict[str, str]] = []
    errors: list[dict[str, Any]] = []

    def error(run_id: str, code: str, message: str) -> None:
        detail = {"ErrorCode": code, "ErrorMessage": message}
        errors.append({"JobName": job_name, "JobRunId": run_id, "ErrorDetail": detail})

    with GLUE_LOCK:
        now = settle(backend)
        job = backend.jobs.get(job_name)
        runs = {run.job_run_id: run for run in job.job_runs} if job is not None else {}
        for run_id in run_ids:
            run = runs.get(run_id)
            if job is None:
                error(run_id, "EntityNotFoundException", f"Job {job_name} not found")
            elif run is None or life_of(run) is None:
                error(run_id, "EntityNotFoundException", f"Job run {run_id} not found")
            elif request_stop(run, now):
                submitted.append({"JobName": job_name, "JobRunId": run_id})
            else:
                state = life_of(run).state_at(now)  # type: ignore[union-attr]
                error(run_id, "InvalidInputException", f"Job run {run_id} is {state}")
    return {"SuccessfulSubmissions": submitted, "Errors": errors}


def _batch_stop_job_run_response(self: GlueResponse) -> ActionResult:
    run_ids = request_member(self, "JobRunIds")
    if not isinstance(run_ids, list) or not 1 <= len(run_ids) <= MAX_STOP_IDS:
        raise InvalidInputException("BatchStopJobRun", f"JobRunIds must list 1 to {MAX_STOP_IDS} job run ids")
    return ActionResult(batch_stop_job_run(self.glue_backend, self._get_param("JobName"), run_ids))


# -- patches -------------------------------------------------------------------------------------------
def _replace_start_job_run(_original: Callable[..., Any]) -> Callable[..., Any]:
    def start(self: GlueResponse) -> ActionResult:
        return start_job_run(self)

    return start


def _backend_start_job_run(_original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's in-process StartJobRun (``backend.start_job_run``) starts emulated runs too."""

    def start(
        self: GlueBackend,
        name: str,
        arguments: dict[str, str] | None,
        allocated_capacity: int | None,
        max_capacity: float | None,
        timeout: int | None,
        worker_type: str | None,
        security_configuration: str | None,
        number_of_workers: int | None,
        notification_property: dict[str, int] | None,
        previous_run_id: str | None,
    ) -> str:
        request = RunRequest(
            arguments=arguments,
            previous_run_id=previous_run_id,
            allocated_capacity=allocated_capacity,
            max_capacity=max_capacity,
            timeout=timeout,
            worker_type=worker_type,
            number_of_workers=number_of_workers,
            security_configuration=security_configuration,
            notification_property=notification_property,
        )
        with GLUE_LOCK:
            job = self.get_job(name)
            try:
                return new_run(self, job, request, settle(self)).job_run_id
            except ScriptError as err:
                raise InvalidInputException("StartJobRun", str(err)) from None

    return start


def _settled(original: Callable[..., Any]) -> Callable[..., Any]:
    """A backend read that first brings the backend's runs up to now."""

    def read(self: GlueBackend, *args: Any, **kwargs: Any) -> Any:
        with GLUE_LOCK:
            settle(self)
            return original(self, *args, **kwargs)

    return read


def _newest_first(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_job_runs(self: FakeJob) -> list[Any]:
        return list(reversed(original(self)))

    return get_job_runs


def _create_job(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_job(self: GlueResponse) -> Any:
        result = original(self)
        queuing = self._get_bool_param("JobRunQueuingEnabled")
        if queuing is not None:
            job = self.glue_backend.get_job(self._get_param("Name"))
            job.job_run_queuing_enabled = queuing  # type: ignore[attr-defined]
        return result

    return create_job


def _job_as_dict(original: Callable[..., Any]) -> Callable[..., Any]:
    def as_dict(self: FakeJob) -> dict[str, Any]:
        described = original(self)
        queuing = getattr(self, "job_run_queuing_enabled", None)
        if queuing is not None:
            described["JobRunQueuingEnabled"] = queuing
        return described

    return as_dict


def install() -> None:
    wrap_method(GlueResponse, "start_job_run", _PATCH, _replace_start_job_run)
    wrap_method(GlueBackend, "start_job_run", _PATCH, _backend_start_job_run)
    add_method(GlueResponse, "batch_stop_job_run", _batch_stop_job_run_response)
    wrap_method(GlueBackend, "get_job_run", _PATCH, _settled)
    wrap_method(GlueBackend, "get_job_runs", _PATCH, _settled)
    wrap_method(FakeJob, "get_job_runs", _PATCH, _newest_first)
    wrap_method(GlueResponse, "create_job", _PATCH, _create_job)
    wrap_method(FakeJob, "as_dict", _PATCH, _job_as_dict)
