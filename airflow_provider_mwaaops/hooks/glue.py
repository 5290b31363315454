"""Glue calls the resumable job-run and workflow operators need beyond the amazon provider's hooks.

Built on :class:`~airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook` (``client_type="glue"``),
so connections, assumed roles and endpoint overrides behave as users know them. What is added
here is the knowledge behind "find what an earlier try started": Glue's StartJobRun and
StartWorkflowRun take no idempotency token, so every run this package starts carries its try's
tag (:meth:`~airflow_provider_mwaaops.aws.resumable.Attempt.tag`) in the same call that starts it
(the job argument :data:`TAG_ARGUMENT`, the workflow run property :data:`TAG_RUN_PROPERTY`), and a
retry lists the runs (bounded, failing loudly) to find it. The listing helpers are ``async`` and
take pages from either the synchronous client (the operator) or aiobotocore (the trigger).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_provider_mwaaops.aws.resumable import (
    Attempt,
    Outcome,
    RunLookupError,
    RunSeen,
    bounded_scan,
)

__all__ = [
    "ACTIVE_JOB_RUN_STATES",
    "TAG_ARGUMENT",
    "TAG_RUN_PROPERTY",
    "GlueRunHook",
    "failed_nodes",
    "find_job_runs",
    "find_workflow_runs",
    "job_run_outcome",
    "node_states",
    "sync_pages",
    "validate_string_map",
]

#: The job argument that carries the tag of the try that started a run. Glue passes arguments
#: to the script, which ignores the ones it does not read (as the amazon provider's
#: ``--airflow_task_uuid``).
TAG_ARGUMENT = "--mwaaops-task-attempt"
#: The workflow run property that carries the tag (ResumeWorkflowRun keeps the run properties).
TAG_RUN_PROPERTY = "mwaaops_task_attempt"
#: Job run states that may still end SUCCEEDED (JobRunState). STOPPING ends STOPPED.
ACTIVE_JOB_RUN_STATES = frozenset({"STARTING", "RUNNING", "WAITING"})
#: Job run states that are not final yet (the trigger keeps polling).
WAITING_JOB_RUN_STATES = ACTIVE_JOB_RUN_STATES | {"STOPPING"}
#: GetJobRuns answers at most 200 runs per page.
JOB_RUNS_PAGE = 200
#: Workflow run statuses that are not final.
WAITING_WORKFLOW_STATUSES = frozenset({"RUNNING", "STOPPING"})


def validate_string_map(value: Any, name: str) -> dict[str, str]:
    """``value`` as Glue's string-to-string map (Arguments, RunProperties), or a ValueError naming
    the first bad key or value; checked before any AWS call."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict of strings to strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValueError(
                f"{name}: Glue takes strings only; {key!r} maps to {item!r} ({type(item).__name__}). "
                "Convert it with str() or json.dumps()"
            )
    return dict(value)


def job_run_outcome(state: str) -> Outcome:
    """What a JobRunState means for the retry decision."""
    if state in ACTIVE_JOB_RUN_STATES:
        return Outcome.ACTIVE
    return Outcome.SUCCEEDED if state == "SUCCEEDED" else Outcome.FAILED


async def sync_pages(pages: Iterable[Sequence[dict[str, Any]]]) -> AsyncIterator[Sequence[dict[str, Any]]]:
    """Pages of a synchronous paginator as the async iterator that
    :func:`~airflow_provider_mwaaops.aws.resumable.bounded_scan` reads."""
    for page in pages:
        yield page


async def find_job_runs(
    pages: AsyncIterator[Sequence[dict[str, Any]]], attempt: Attempt, max_runs_scanned: int
) -> list[RunSeen]:
    """The runs of ``attempt``'s task instance among GetJobRuns ``pages`` (newest first, as AWS
    documents), down to the attempt's lower bound.

    Raises :class:`~airflow_provider_mwaaops.aws.resumable.RunLookupError` when more than
    ``max_runs_scanned`` runs lie above the bound; read errors propagate (never a guess).
    """
    runs = await bounded_scan(
        pages,
        attempt=attempt,
        started_at=lambda run: run.get("StartedOn"),
        max_items=max_runs_scanned,
        what="job runs",
    )
    found = []
    for run in runs:
        try_number = attempt.try_of((run.get("Arguments") or {}).get(TAG_ARGUMENT))
        if try_number is None:
            continue
        state = run.get("JobRunState", "")
        found.append(
            RunSeen(run["Id"], try_number, job_run_outcome(state), state, _moment(run.get("StartedOn")))
        )
    return found


def node_states(graph: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``[{"name", "type", "unique_id", "state", "error_message"}]`` of a workflow run graph's job
    and crawler nodes; ``state`` is the last run's (``NOT_RUN`` when the node did not run)."""
    result = []
    for node in (graph or {}).get("Nodes", []):
        kind = node.get("Type")
        if kind == "JOB":
            runs = (node.get("JobDetails") or {}).get("JobRuns") or []
            last = runs[-1] if runs else {}
            state, message = last.get("JobRunState", "NOT_RUN"), last.get("ErrorMessage")
        elif kind == "CRAWLER":
            crawls = (node.get("CrawlerDetails") or {}).get("Crawls") or []
            last = crawls[-1] if crawls else {}
            state, message = last.get("State", "NOT_RUN"), last.get("ErrorMessage")
        else:
            continue
        result.append(
            {
                "name": node.get("Name", ""),
                "type": kind,
                "unique_id": node["UniqueId"],
                "state": state,
                "error_message": message,
            }
        )
    return result


def failed_nodes(graph: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The job and crawler nodes whose last run in this workflow run did not succeed."""
    return [node for node in node_states(graph) if node["state"] not in ("SUCCEEDED", "NOT_RUN")]


def workflow_run_outcome(run: Mapping[str, Any]) -> Outcome:
    """A workflow run is a success only when it COMPLETED with no failed job or crawler node:
    AWS calls a run COMPLETED "even if one or more nodes ... don't complete"."""
    status = run.get("Status", "")
    if status == "RUNNING":
        return Outcome.ACTIVE
    if status == "COMPLETED" and not failed_nodes(run.get("Graph")):
        return Outcome.SUCCEEDED
    return Outcome.FAILED


async def find_workflow_runs(
    pages: AsyncIterator[Sequence[dict[str, Any]]], attempt: Attempt, max_runs_scanned: int
) -> list[RunSeen]:
    """The runs of ``attempt``'s task instance among GetWorkflowRuns ``pages``. AWS documents no
    order for GetWorkflowRuns, so every page is read, up to ``max_runs_scanned`` runs newer than
    the attempt's bound (more: :class:`~airflow_provider_mwaaops.aws.resumable.RunLookupError`)."""
    found = []
    newer = 0
    async for page in pages:
        for run in page:
            if attempt.older_than_bound(run.get("StartedOn")):
                continue
            newer += 1
            if newer > max_runs_scanned:
                raise RunLookupError(
                    f"more than {max_runs_scanned} workflow runs since {attempt.since}: cannot be sure "
                    f"that no run of {attempt.task_instance.key()} is among them, so nothing was "
                    "started (raise max_runs_scanned to look further)"
                )
            tag = (run.get("WorkflowRunProperties") or {}).get(TAG_RUN_PROPERTY)
            try_number = attempt.try_of(tag)
            if try_number is None:
                continue
            found.append(
                RunSeen(
                    run["WorkflowRunId"],
                    try_number,
                    workflow_run_outcome(run),
                    run.get("Status", ""),
                    _moment(run.get("StartedOn")),
                )
            )
    return found


def _moment(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


class GlueRunHook(AwsBaseHook):
    """Glue job runs and workflow runs: start tagged, find, stop (a synchronous boto3 client)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "glue"
        super().__init__(*args, **kwargs)

    # -- job runs ---------------------------------------------------------------------------------
    def job_run_pages(self, job_name: str) -> Iterable[Sequence[dict[str, Any]]]:
        """GetJobRuns pages of ``job_name``, newest first."""
        token: str | None = None
        while True:
            request: dict[str, Any] = {"JobName": job_name, "MaxResults": JOB_RUNS_PAGE}
            if token:
                request["NextToken"] = token
            answer = self.conn.get_job_runs(**request)
            yield answer.get("JobRuns", [])
            token = answer.get("NextToken")
            if not token:
                return

    def get_job_run(self, job_name: str, run_id: str) -> dict[str, Any]:
        return self.conn.get_job_run(JobName=job_name, RunId=run_id, PredecessorsIncluded=False)["JobRun"]

    def stop_job_runs(self, job_name: str, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """BatchStopJobRun; returns its per-run ``Errors`` (a run that already ended is one)."""
        answer = self.conn.batch_stop_job_run(JobName=job_name, JobRunIds=list(run_ids))
        return list(answer.get("Errors", []))

    # -- workflow runs ----------------------------------------------------------------------------
    def workflow_run_pages(self, workflow_name: str) -> Iterable[Sequence[dict[str, Any]]]:
        """GetWorkflowRuns pages with their graphs (needed to judge a COMPLETED run)."""
        token: str | None = None
        while True:
            request: dict[str, Any] = {"Name": workflow_name, "IncludeGraph": True, "MaxResults": 100}
            if token:
                request["NextToken"] = token
            answer = self.conn.get_workflow_runs(**request)
            yield answer.get("Runs", [])
            token = answer.get("NextToken")
            if not token:
                return

    def get_workflow_run(self, workflow_name: str, run_id: str) -> dict[str, Any]:
        return self.conn.get_workflow_run(Name=workflow_name, RunId=run_id, IncludeGraph=True)["Run"]
