"""Waits for EMR Serverless job runs and for the EMR steps one task submitted.

Both triggers only read one status answer (``check``) and say how to stop their work (``stop``);
the loop, the shared client, the deadline and the kill handling live in
:class:`~airflow_provider_mwaaops.triggers.base.AwsPollingTrigger`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mwaaops.hooks.emr import (
    JOB_RUN_ACTIVE,
    LIST_STEPS_MAX_IDS,
    STEP_ACTIVE,
    STEP_BAD_END,
)
from airflow_provider_mwaaops.log.cloudwatch import ForwardsCloudWatchLogs, LogSource
from airflow_provider_mwaaops.triggers.base import STATUS_FAILURE, STATUS_SUCCESS, AwsPollingTrigger

__all__ = ["EmrServerlessJobRunTrigger", "EmrStepsTrigger"]


class EmrServerlessJobRunTrigger(ForwardsCloudWatchLogs, AwsPollingTrigger):
    """Polls GetJobRun until the run is SUCCESS, FAILED or CANCELLED; forwards its driver's lines.

    :param application_id: the EMR Serverless application.
    :param job_run_id: the job run.
    :param cancel_on_kill: on Airflow 3.3+, CancelJobRun when a user kills the deferred task.
    :param log_sources: CloudWatch sources of the driver's stdout / stderr (``LogSource`` dicts),
        forwarded into the task log while the run goes on; empty: nothing forwarded.
    :param forward_logs: / :param log_limits: / :param task_instance: see ``ForwardsCloudWatchLogs``.
    """

    service_name = "emr-serverless"

    def __init__(
        self,
        *,
        application_id: str,
        job_run_id: str,
        cancel_on_kill: bool = True,
        log_sources: Sequence[Mapping[str, Any]] = (),
        forward_logs: bool = True,
        log_limits: Mapping[str, Any] | None = None,
        task_instance: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.application_id = application_id
        self.job_run_id = job_run_id
        self.stop_on_kill = bool(cancel_on_kill)
        self.sources = [LogSource.from_dict(source) for source in log_sources]
        self.init_log_forwarding(forward_logs and bool(self.sources), log_limits, task_instance)

    def trigger_kwargs(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id,
            "job_run_id": self.job_run_id,
            "cancel_on_kill": self.stop_on_kill,
            "log_sources": [source.as_dict() for source in self.sources],
            **self.log_forwarding_kwargs(),
        }

    @property
    def what(self) -> str:
        return f"EMR Serverless job run {self.job_run_id}"

    def log_sources(self) -> Sequence[LogSource] | None:
        return self.sources or None

    async def check(self, client: Any) -> dict[str, Any] | None:
        run = (await client.get_job_run(applicationId=self.application_id, jobRunId=self.job_run_id))[
            "jobRun"
        ]
        state = run["state"]
        if state in JOB_RUN_ACTIVE or state == "CANCELLING":
            return None
        return {
            "status": STATUS_SUCCESS if state == "SUCCESS" else STATUS_FAILURE,
            "application_id": self.application_id,
            "job_run_id": self.job_run_id,
            "job_run_state": state,
            "state_details": run.get("stateDetails") or "",
        }

    async def stop(self, client: Any) -> None:
        await client.cancel_job_run(applicationId=self.application_id, jobRunId=self.job_run_id)


class EmrStepsTrigger(AwsPollingTrigger):
    """Polls the steps one task submitted until none of them is PENDING, RUNNING or CANCEL_PENDING.

    Success when every step is COMPLETED; otherwise a failure naming the first step (in submission
    order) that ended FAILED, CANCELLED or INTERRUPTED. Waiting for the later steps too (rather
    than failing at the first bad one) matters for ``ActionOnFailure=CONTINUE``: a retry must not
    resubmit a step that is still running.

    :param cluster_id: the cluster (job flow).
    :param step_ids: the task's steps, in submission order.
    :param cancel_on_kill: on Airflow 3.3+, CancelSteps for these steps when the task is killed.
    """

    service_name = "emr"

    def __init__(
        self, *, cluster_id: str, step_ids: Sequence[str], cancel_on_kill: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_id = cluster_id
        self.step_ids = list(step_ids)
        self.stop_on_kill = bool(cancel_on_kill)

    def trigger_kwargs(self) -> dict[str, Any]:
        return {"cluster_id": self.cluster_id, "step_ids": self.step_ids, "cancel_on_kill": self.stop_on_kill}

    @property
    def what(self) -> str:
        return f"{len(self.step_ids)} EMR step(s) on {self.cluster_id}"

    async def states(self, client: Any) -> dict[str, str]:
        """Each step's state (ListSteps, ten step ids a request)."""
        states: dict[str, str] = {}
        for start in range(0, len(self.step_ids), LIST_STEPS_MAX_IDS):
            chunk = self.step_ids[start : start + LIST_STEPS_MAX_IDS]
            page = await client.list_steps(ClusterId=self.cluster_id, StepIds=chunk)
            for step in page.get("Steps", []):
                states[step["Id"]] = step["Status"]["State"]
        return states

    async def check(self, client: Any) -> dict[str, Any] | None:
        states = await self.states(client)
        ordered = [states.get(step_id, "UNKNOWN") for step_id in self.step_ids]
        if any(state in STEP_ACTIVE for state in ordered):
            return None
        failed = [
            step_id for step_id, state in zip(self.step_ids, ordered, strict=True) if state != "COMPLETED"
        ]
        bad = [step_id for step_id in failed if states.get(step_id) in STEP_BAD_END] or failed
        return {
            "status": STATUS_FAILURE if failed else STATUS_SUCCESS,
            "cluster_id": self.cluster_id,
            "step_ids": self.step_ids,
            "step_states": ordered,
            "failed_step_id": bad[0] if bad else None,
        }

    async def stop(self, client: Any) -> None:
        states = await self.states(client)
        active = [step_id for step_id in self.step_ids if states.get(step_id) in ("PENDING", "RUNNING")]
        if active:
            await client.cancel_steps(ClusterId=self.cluster_id, StepIds=active)
