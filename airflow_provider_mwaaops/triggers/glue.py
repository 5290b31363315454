"""Waits for a Glue job run (starting it when a slot frees) and for a Glue workflow run.

:class:`GlueJobRunTrigger` either waits for a known run, or, when StartJobRun answered
ConcurrentRunsExceededException, keeps asking for a slot while deferred (no worker slot held):
every check first looks for a run of *this* try (a triggerer restart may have interrupted a
start that succeeded), then calls StartJobRun again, with a growing gap between calls, until a
slot frees or ``slot_wait_timeout_at`` passes. Meanwhile it forwards the run's output and error
log lines into the task log (:class:`~airflow_provider_mwaaops.log.cloudwatch.ForwardsCloudWatchLogs`:
two GetLogEvents calls per status check, one per stream, within the process's read budget
``[mwaaops] log_reads_per_second``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow_provider_mwaaops.aws.errors import error_code
from airflow_provider_mwaaops.aws.resumable import Attempt
from airflow_provider_mwaaops.hooks.glue import (
    JOB_RUNS_PAGE,
    WAITING_JOB_RUN_STATES,
    WAITING_WORKFLOW_STATUSES,
    failed_nodes,
    find_job_runs,
    node_states,
)
from airflow_provider_mwaaops.log.cloudwatch import ForwardsCloudWatchLogs, LogSource
from airflow_provider_mwaaops.triggers.base import (
    STATUS_ERROR,
    STATUS_FAILURE,
    STATUS_SUCCESS,
    AwsPollingTrigger,
)

__all__ = ["GlueJobRunTrigger", "GlueWorkflowRunTrigger", "job_run_payload"]

#: The most status checks skipped between two StartJobRun calls while waiting for a slot.
MAX_SLOT_SKIP = 8
#: How many runs the trigger's own-run lookup reads at most (its own try's run is among the newest).
OWN_RUN_SCAN = 400


def job_run_payload(run: Mapping[str, Any]) -> dict[str, Any]:
    """The event fields of a final job run (what the operator pushes to XCom and reports)."""
    state = run.get("JobRunState", "")
    return {
        "status": STATUS_SUCCESS if state == "SUCCEEDED" else STATUS_FAILURE,
        "job_run_id": run.get("Id"),
        "job_run_state": state,
        "error_message": run.get("ErrorMessage"),
        "execution_time": run.get("ExecutionTime"),
        "dpu_seconds": run.get("DPUSeconds"),
        "previous_run_id": run.get("PreviousRunId"),
    }


class GlueJobRunTrigger(ForwardsCloudWatchLogs, AwsPollingTrigger):
    """Polls GetJobRun until the run is final; see the module documentation.

    :param job_name: the Glue job.
    :param job_run_id: the run to wait for; None: start it from ``start_request`` when a slot frees.
    :param start_request: StartJobRun's arguments (its ``Arguments`` carry the try's tag).
    :param attempt: the try (``Attempt.as_dict()``), to find its own run after a restart.
    :param slot_wait_timeout_at: absolute time after which waiting for a free slot fails.
    :param stop_on_kill: BatchStopJobRun when a user kills the deferred task (Airflow 3.3+).
    :param forward_logs: forward the run's output and error lines into the task log.
    :param log_limits: ``LogLimits`` fields (lines and bytes per check).
    :param task_instance: ``TaskInstanceRef.as_dict()``; its XCom keeps the log cursor.
    """

    service_name = "glue"

    def __init__(
        self,
        *,
        job_name: str,
        job_run_id: str | None = None,
        start_request: dict[str, Any] | None = None,
        attempt: dict[str, Any] | None = None,
        slot_wait_timeout_at: float | None = None,
        stop_on_kill: bool = True,
        forward_logs: bool = True,
        log_limits: Mapping[str, Any] | None = None,
        task_instance: Mapping[str, Any] | None = None,
        log_group: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if job_run_id is None and not start_request:
            raise ValueError("GlueJobRunTrigger needs a job_run_id or a start_request")
        self.job_name = job_name
        self.job_run_id = job_run_id
        self.start_request = start_request
        self.attempt = attempt
        self.slot_wait_timeout_at = slot_wait_timeout_at
        self.stop_on_kill = stop_on_kill
        self.log_group = log_group
        self.init_log_forwarding(forward_logs, log_limits, task_instance)
        self._looked_for_own_run = False
        self._slot_calls = 0
        self._slot_skip = 0

    def trigger_kwargs(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "job_run_id": self.job_run_id,
            "start_request": self.start_request,
            "attempt": self.attempt,
            "slot_wait_timeout_at": self.slot_wait_timeout_at,
            "stop_on_kill": self.stop_on_kill,
            "log_group": self.log_group,
            **self.log_forwarding_kwargs(),
        }

    @property
    def what(self) -> str:
        return f"Glue job run {self.job_run_id or '(waiting for a slot)'} of {self.job_name}"

    def log_sources(self) -> Sequence[LogSource] | None:
        if not self.job_run_id or not self.log_group:
            return None
        return [
            LogSource(f"{self.log_group}/output", (self.job_run_id,), "glue output"),
            LogSource(f"{self.log_group}/error", (self.job_run_id,), "glue error"),
        ]

    async def check(self, client: Any) -> dict[str, Any] | None:
        if self.job_run_id is None:
            started = await self._start_when_free(client)
            if started is not None:
                return started  # an error payload: no slot within the limit
            if self.job_run_id is None:
                return None
        run = (
            await client.get_job_run(JobName=self.job_name, RunId=self.job_run_id, PredecessorsIncluded=False)
        )["JobRun"]
        self.log_group = self.log_group or run.get("LogGroupName") or "/aws-glue/jobs"
        if run.get("JobRunState") in WAITING_JOB_RUN_STATES:
            return None
        return {"job_name": self.job_name, **job_run_payload(run)}

    async def _start_when_free(self, client: Any) -> dict[str, Any] | None:
        """Find or start this try's run; sets ``job_run_id``. Returns an error payload once the
        slot wait is over, else None."""
        if not self._looked_for_own_run and self.attempt:
            self._looked_for_own_run = True
            own = await self._own_run(client)
            if own:
                self.job_run_id = own
                self.log.info("Found job run %s started by this try before the triggerer restarted", own)
                return None
        if self.slot_wait_timeout_at is not None and time.time() > self.slot_wait_timeout_at:
            return {
                **self.trigger_kwargs(),
                "status": STATUS_ERROR,
                "error_type": "ConcurrentRunsExceededException",
                "message": (
                    f"no free run slot of Glue job {self.job_name} (MaxConcurrentRuns reached) after "
                    f"{self._slot_calls} StartJobRun call(s); raise the job's MaxConcurrentRuns, enable "
                    "JobRunQueuingEnabled, or a longer concurrent_runs_wait"
                ),
            }
        if self._slot_skip:
            self._slot_skip -= 1
            return None
        assert self.start_request is not None
        self._slot_calls += 1
        try:
            answer = await client.start_job_run(**self.start_request)
        except Exception as exc:
            if error_code(exc) != "ConcurrentRunsExceededException":
                raise
            self._slot_skip = min(MAX_SLOT_SKIP, 2 ** max(0, self._slot_calls - 2))
            if self._slot_calls == 1:
                self.log.info("Glue job %s has no free run slot; waiting for one (deferred)", self.job_name)
            return None
        self.job_run_id = answer["JobRunId"]
        self.log.info("A run slot of %s freed: started job run %s", self.job_name, self.job_run_id)
        return None

    async def _own_run(self, client: Any) -> str | None:
        assert self.attempt is not None
        attempt = Attempt.from_dict(self.attempt)

        async def pages() -> AsyncIterator[Sequence[dict[str, Any]]]:
            token = None
            while True:
                request: dict[str, Any] = {"JobName": self.job_name, "MaxResults": JOB_RUNS_PAGE}
                if token:
                    request["NextToken"] = token
                answer = await client.get_job_runs(**request)
                yield answer.get("JobRuns", [])
                token = answer.get("NextToken")
                if not token:
                    return

        runs = await find_job_runs(pages(), attempt, OWN_RUN_SCAN)
        own = [run for run in runs if run.try_number == attempt.try_number]
        return own[0].run_id if own else None

    async def stop(self, client: Any) -> None:
        if self.job_run_id:
            await client.batch_stop_job_run(JobName=self.job_name, JobRunIds=[self.job_run_id])


class GlueWorkflowRunTrigger(AwsPollingTrigger):
    """Polls GetWorkflowRun (with its graph) until the run is final; judges it by its nodes.

    :param workflow_name: the workflow.
    :param run_id: the workflow run.
    :param stop_on_kill: StopWorkflowRun when a user kills the deferred task (Airflow 3.3+).
    """

    service_name = "glue"

    def __init__(self, *, workflow_name: str, run_id: str, stop_on_kill: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_name = workflow_name
        self.run_id = run_id
        self.stop_on_kill = stop_on_kill

    def trigger_kwargs(self) -> dict[str, Any]:
        return {"workflow_name": self.workflow_name, "run_id": self.run_id, "stop_on_kill": self.stop_on_kill}

    @property
    def what(self) -> str:
        return f"Glue workflow run {self.run_id} of {self.workflow_name}"

    async def check(self, client: Any) -> dict[str, Any] | None:
        run = (await client.get_workflow_run(Name=self.workflow_name, RunId=self.run_id, IncludeGraph=True))[
            "Run"
        ]
        status = run.get("Status", "")
        if status in WAITING_WORKFLOW_STATUSES:
            return None
        graph = run.get("Graph")
        failed = failed_nodes(graph)
        ok = status == "COMPLETED" and not failed
        return {
            "status": STATUS_SUCCESS if ok else STATUS_FAILURE,
            "workflow_name": self.workflow_name,
            "run_id": self.run_id,
            "workflow_run_status": status,
            "error_message": run.get("ErrorMessage"),
            "previous_run_id": run.get("PreviousRunId"),
            "nodes": node_states(graph),
            "failed_node_ids": [node["unique_id"] for node in failed],
        }

    async def stop(self, client: Any) -> None:
        await client.stop_workflow_run(Name=self.workflow_name, RunId=self.run_id)
