"""The Glue workflow API over :mod:`.glue_workflow_runs`, as boto3 and aiobotocore callers see it.

- StartWorkflowRun (``Name``, ``RunProperties``) -> ``{"RunId"}``; StopWorkflowRun (``Name``,
  ``RunId``) -> ``{}``; ResumeWorkflowRun (``Name``, ``RunId``, ``NodeIds``) -> ``{"RunId",
  "NodeIds"}`` (the action moto lacks).
- GetWorkflowRun / GetWorkflowRuns take ``IncludeGraph`` and answer WorkflowRun structures with
  Status, Statistics, CompletedOn, ErrorMessage and, when asked, the Graph whose job nodes carry
  ``JobDetails.JobRuns`` (AWS Glue API, "Workflows"). GetWorkflowRuns pages with ``MaxResults`` /
  ``NextToken`` and lists runs in the order they started (AWS documents no order).
- GetWorkflow / BatchGetWorkflows take ``IncludeGraph`` (the workflow's graph as its triggers are
  now, without run details) and report ``LastRun`` the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.glue.models import FakeWorkflow, FakeWorkflowRun, GlueBackend
from moto.glue.responses import GlueResponse
from moto.utilities.paginator import paginate

from airflow_provider_mwaaops.testing.extensions._moto_requests import request_member
from airflow_provider_mwaaops.testing.extensions._patching import add_method, wrap_method
from airflow_provider_mwaaops.testing.extensions.glue_job_runs import GLUE_LOCK, settle
from airflow_provider_mwaaops.testing.extensions.glue_workflow_graph import build_graph
from airflow_provider_mwaaops.testing.extensions.glue_workflow_runs import (
    describe_run,
    get_run,
    get_workflow,
    resume_workflow_run,
    start_workflow_run,
    state_of,
    stop_workflow_run,
)

_PATCH = "mwaaops.glue.workflows_api"
_PAGINATION = {
    "workflow_runs_page": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": 100,
        "unique_attribute": "run_id",
    }
}


@paginate(pagination_model=_PAGINATION)
def workflow_runs_page(workflow: FakeWorkflow) -> list[FakeWorkflowRun]:
    return [run for run in workflow.runs.values() if state_of(run) is not None]


def _include_graph(response: GlueResponse) -> bool:
    return bool(response._get_bool_param("IncludeGraph", False))


def _get_workflow_run(self: GlueResponse) -> ActionResult:
    backend = self.glue_backend
    with GLUE_LOCK:
        workflow = get_workflow(backend, self._get_param("Name"))
        now = settle(backend)
        run, _state = get_run(workflow, self._get_param("RunId"))
        return ActionResult({"Run": describe_run(run, _include_graph(self), now)})


def _get_workflow_runs(self: GlueResponse) -> ActionResult:
    backend = self.glue_backend
    with GLUE_LOCK:
        workflow = get_workflow(backend, self._get_param("Name"))
        now = settle(backend)
        runs, next_token = workflow_runs_page(
            workflow, next_token=self._get_param("NextToken"), max_results=self._get_int_param("MaxResults")
        )
        include_graph = _include_graph(self)
        body: dict[str, Any] = {"Runs": [describe_run(run, include_graph, now) for run in runs]}
    if next_token:
        body["NextToken"] = next_token
    return ActionResult(body)


def _start_workflow_run(self: GlueResponse) -> ActionResult:
    run_id = start_workflow_run(self.glue_backend, self._get_param("Name"), self._get_param("RunProperties"))
    return ActionResult({"RunId": run_id})


def _stop_workflow_run(self: GlueResponse) -> EmptyResult:
    stop_workflow_run(self.glue_backend, self._get_param("Name"), self._get_param("RunId"))
    return EmptyResult()


def _resume_workflow_run(self: GlueResponse) -> ActionResult:
    run_id, node_ids = resume_workflow_run(
        self.glue_backend, self._get_param("Name"), self._get_param("RunId"), request_member(self, "NodeIds")
    )
    return ActionResult({"RunId": run_id, "NodeIds": node_ids})


def _workflow_graph(backend: GlueBackend, name: str) -> dict[str, Any]:
    return build_graph(backend, name).describe()


def _get_workflow(self: GlueResponse) -> ActionResult:
    backend = self.glue_backend
    name = self._get_param("Name")
    with GLUE_LOCK:
        settle(backend)
        described = backend.get_workflow(name)
        if _include_graph(self):
            described["Graph"] = _workflow_graph(backend, name)
    return ActionResult({"Workflow": described})


def _batch_get_workflows(original: Callable[..., Any]) -> Callable[..., Any]:
    def batch_get_workflows(self: GlueResponse) -> Any:
        backend = self.glue_backend
        with GLUE_LOCK:
            settle(backend)
            result = original(self)
            if _include_graph(self):
                for described in result.result.get("Workflows", []):
                    described["Graph"] = _workflow_graph(backend, described["Name"])
        return result

    return batch_get_workflows


def _run_as_dict(original: Callable[..., Any]) -> Callable[..., Any]:
    """A workflow's LastRun (GetWorkflow) reads like GetWorkflowRun."""

    def as_dict(self: FakeWorkflowRun) -> Any:
        return original(self) if state_of(self) is None else describe_run(self)

    return as_dict


def _replacing(handler: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def make(_original: Callable[..., Any]) -> Callable[..., Any]:
        def replaced(self: GlueResponse) -> Any:
            return handler(self)

        return replaced

    return make


def install() -> None:
    wrap_method(GlueResponse, "get_workflow_run", _PATCH, _replacing(_get_workflow_run))
    wrap_method(GlueResponse, "get_workflow_runs", _PATCH, _replacing(_get_workflow_runs))
    wrap_method(GlueResponse, "start_workflow_run", _PATCH, _replacing(_start_workflow_run))
    wrap_method(GlueResponse, "stop_workflow_run", _PATCH, _replacing(_stop_workflow_run))
    wrap_method(GlueResponse, "get_workflow", _PATCH, _replacing(_get_workflow))
    wrap_method(GlueResponse, "batch_get_workflows", _PATCH, _batch_get_workflows)
    add_method(GlueResponse, "resume_workflow_run", _resume_workflow_run)
    wrap_method(FakeWorkflowRun, "as_dict", _PATCH, _run_as_dict)
