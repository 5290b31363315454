"""Glue UpdateJob, which moto lacks: raising a job's MaxConcurrentRuns is the usual fix when a
workflow fails with Glue.ConcurrentRunsExceededException, so the emulator must allow it.

Follows the API: ``UpdateJob(JobName, JobUpdate)`` overwrites the job definition with the fields
given (AWS: "the previous job definition is completely overwritten"), keeps the job's runs and
tags, and returns ``{"JobName": ...}``; an unknown job is EntityNotFoundException.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.glue.models import FakeJob, GlueBackend
from moto.glue.responses import GlueResponse

from airflow_provider_mwaaops.testing.extensions._patching import add_method

#: JobUpdate field -> FakeJob attribute, and the value a field takes when JobUpdate omits it.
_FIELDS: dict[str, tuple[str, Any]] = {
    "Description": ("description", None),
    "LogUri": ("log_uri", None),
    "Role": ("role", None),
    "ExecutionProperty": ("execution_property", {}),
    "Command": ("command", None),
    "DefaultArguments": ("default_arguments", {}),
    "NonOverridableArguments": ("non_overridable_arguments", None),
    "Connections": ("connections", None),
    "MaxRetries": ("max_retries", None),
    "AllocatedCapacity": ("allocated_capacity", None),
    "Timeout": ("timeout", None),
    "MaxCapacity": ("max_capacity", None),
    "SecurityConfiguration": ("security_configuration", None),
    "NotificationProperty": ("notification_property", None),
    "GlueVersion": ("glue_version", None),
    "NumberOfWorkers": ("number_of_workers", None),
    "WorkerType": ("worker_type", None),
    "ExecutionClass": ("execution_class", "STANDARD"),
    "JobRunQueuingEnabled": ("job_run_queuing_enabled", None),  # kept by glue_job_api
}


def _backend_update_job(self: GlueBackend, job_name: str, job_update: dict[str, Any]) -> str:
    job: FakeJob = self.get_job(job_name)
    for field, (attribute, default) in _FIELDS.items():
        setattr(job, attribute, job_update.get(field, default))
    job.last_modified_on = utcnow()
    return job_name


def _response_update_job(self: GlueResponse) -> ActionResult:
    name = self._get_param("JobName")
    self.glue_backend.update_job(name, self._get_param("JobUpdate") or {})  # type: ignore[attr-defined]
    return ActionResult({"JobName": name})


def install() -> None:
    add_method(GlueBackend, "update_job", _backend_update_job)
    add_method(GlueResponse, "update_job", _response_update_job)
