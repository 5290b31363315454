"""EMR (steps on a cluster) and EMR Serverless (job runs) calls the resuming operators need.

Built on the amazon provider's :class:`~airflow.providers.amazon.aws.hooks.emr.EmrHook` and
:class:`~airflow.providers.amazon.aws.hooks.emr.EmrServerlessHook`, so connections, assumed roles
and endpoint overrides behave as users know them. Added here: the paged listings a retry scans to
find what an earlier try started, the cluster / application states that decide whether work can be
submitted at all, and the readable parts of a failure (FailureDetails, the step's stderr tail).
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from airflow.providers.amazon.aws.hooks.emr import EmrHook, EmrServerlessHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from botocore.exceptions import ClientError

#: Cluster states in which AddJobFlowSteps accepts steps (API reference, AddJobFlowSteps).
CLUSTER_ACCEPTS_STEPS = frozenset({"STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"})
#: "You can have up to 256 PENDING and RUNNING steps in a cluster" (Management Guide).
MAX_ACTIVE_STEPS = 256
STEP_ACTIVE = frozenset({"PENDING", "RUNNING", "CANCEL_PENDING"})
STEP_BAD_END = frozenset({"FAILED", "CANCELLED", "INTERRUPTED"})
#: ListSteps takes at most ten StepIds per request.
LIST_STEPS_MAX_IDS = 10
#: CancelSteps takes at most 256 step ids per request.
CANCEL_STEPS_MAX_IDS = 256

#: EMR Serverless job run states (User Guide, "Job run states"); QUEUED with job concurrency.
JOB_RUN_ACTIVE = frozenset({"SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED"})
JOB_RUN_BAD_END = frozenset({"FAILED", "CANCELLED", "CANCELLING"})
#: "the application only accepts jobs when it's in [STARTED]" (User Guide, "Application states").
APPLICATION_CAN_START = frozenset({"CREATED", "STOPPED"})
APPLICATION_WILL_START = frozenset({"STARTING", "CREATING"})
APPLICATION_CANNOT_RUN = frozenset({"TERMINATED", "STOPPING"})
DEFAULT_SERVERLESS_LOG_GROUP = "/aws/emr-serverless"


class EmrStepsHook(EmrHook):
    """EMR on EC2: cluster state, paged ListSteps, AddJobFlowSteps, CancelSteps, failure details."""

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        return self.conn.describe_cluster(ClusterId=cluster_id)["Cluster"]

    def step_pages(self, cluster_id: str) -> Iterator[list[dict[str, Any]]]:
        """ListSteps pages (newest first, 50 a page), following ``Marker``."""
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"ClusterId": cluster_id}
            if marker:
                kwargs["Marker"] = marker
            page = self.conn.list_steps(**kwargs)
            yield list(page.get("Steps", []))
            marker = page.get("Marker")
            if not marker:
                return

    def add_steps(
        self, cluster_id: str, steps: list[dict[str, Any]], execution_role_arn: str | None
    ) -> list[str]:
        kwargs: dict[str, Any] = {"JobFlowId": cluster_id, "Steps": steps}
        if execution_role_arn:
            kwargs["ExecutionRoleArn"] = execution_role_arn
        return list(self.conn.add_job_flow_steps(**kwargs)["StepIds"])

    def cancel_steps(self, cluster_id: str, step_ids: list[str]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = []
        for start in range(0, len(step_ids), CANCEL_STEPS_MAX_IDS):
            chunk = step_ids[start : start + CANCEL_STEPS_MAX_IDS]
            answers += self.conn.cancel_steps(ClusterId=cluster_id, StepIds=chunk).get(
                "CancelStepsInfoList", []
            )
        return answers

    def cancel_active_steps(self, cluster_id: str, step_ids: list[str]) -> list[str]:
        """CancelSteps for those of ``step_ids`` that are PENDING or RUNNING; returns them."""
        active: list[str] = []
        for start in range(0, len(step_ids), LIST_STEPS_MAX_IDS):
            chunk = step_ids[start : start + LIST_STEPS_MAX_IDS]
            for step in self.conn.list_steps(ClusterId=cluster_id, StepIds=chunk).get("Steps", []):
                if step["Status"]["State"] in ("PENDING", "RUNNING"):
                    active.append(step["Id"])
        if active:
            self.cancel_steps(cluster_id, active)
        return active

    def describe_step(self, cluster_id: str, step_id: str) -> dict[str, Any]:
        return self.conn.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]

    def log_tail(self, log_uri: str, lines: int = 20) -> list[str] | None:
        """The last ``lines`` lines of a (gzip) log file in S3, or None when it cannot be read."""
        try:
            bucket, key = S3Hook.parse_s3_url(log_uri.replace("s3n://", "s3://").replace("s3a://", "s3://"))
            s3 = S3Hook(
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                config=self.config,
            )
            body = s3.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, ValueError) as exc:
            self.log.info("Could not read %s: %s", log_uri, exc)
            return None
        if key.endswith(".gz"):
            with contextlib.suppress(OSError):  # not compressed after all
                body = gzip.decompress(body)
        return body.decode(errors="replace").splitlines()[-lines:]


class EmrServerlessJobHook(EmrServerlessHook):
    """EMR Serverless: application state, paged ListJobRuns since a moment, start / cancel a run."""

    def application(self, application_id: str) -> dict[str, Any]:
        return self.conn.get_application(applicationId=application_id)["application"]

    def job_run(self, application_id: str, job_run_id: str) -> dict[str, Any]:
        return self.conn.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]

    def job_run_pages(
        self, application_id: str, created_after: datetime | None
    ) -> Iterator[list[dict[str, Any]]]:
        """ListJobRuns pages (50 a page, following ``nextToken``) created at or after a moment."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"applicationId": application_id, "maxResults": 50}
            if created_after is not None:
                kwargs["createdAtAfter"] = created_after
            if token:
                kwargs["nextToken"] = token
            page = self.conn.list_job_runs(**kwargs)
            yield list(page.get("jobRuns", []))
            token = page.get("nextToken")
            if not token:
                return

    def start_run(self, request: Mapping[str, Any]) -> str:
        return self.conn.start_job_run(**request)["jobRunId"]

    def cancel_run(self, application_id: str, job_run_id: str) -> None:
        self.conn.cancel_job_run(applicationId=application_id, jobRunId=job_run_id)


def serverless_log_streams(
    application_id: str, job_run_id: str, monitoring: Mapping[str, Any], driver: str = "SPARK_DRIVER"
) -> tuple[str, list[str]] | None:
    """(log group, driver streams) where a run's CloudWatch logging sends its driver's output.

    Stream names follow the EMR Serverless User Guide ("Storing logs"):
    ``<logStreamNamePrefix>/applications/<app>/jobs/<run>/<DRIVER>/stdout|stderr``; only the log
    types asked for ("If you don't specify any log types, driver STDOUT and STDERR logs will be
    published"). None when CloudWatch logging is off.
    """
    cloudwatch = monitoring.get("cloudWatchLoggingConfiguration") or {}
    if not cloudwatch.get("enabled"):
        return None
    wanted = (cloudwatch.get("logTypes") or {driver: ["STDOUT", "STDERR"]}).get(driver, [])
    group = cloudwatch.get("logGroupName") or DEFAULT_SERVERLESS_LOG_GROUP
    prefix = cloudwatch.get("logStreamNamePrefix") or ""
    streams = [
        f"{prefix}/applications/{application_id}/jobs/{job_run_id}/{driver}/{kind}"
        for kind in ("stdout", "stderr")
        if kind.upper() in wanted
    ]
    return (group, streams) if streams else None


def serverless_s3_log_location(
    application_id: str, job_run_id: str, monitoring: Mapping[str, Any]
) -> str | None:
    """``<logUri>/applications/<app>/jobs/<run>/`` when the run's logs go to S3, else None."""
    log_uri = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
    if not log_uri:
        return None
    return f"{log_uri.rstrip('/')}/applications/{application_id}/jobs/{job_run_id}/"
