"""Waits for a Step Functions execution, including one that is being redriven."""

from __future__ import annotations

from typing import Any

from airflow_provider_mwaaops.triggers.base import STATUS_FAILURE, STATUS_SUCCESS, AwsPollingTrigger

#: Statuses that are not final (PENDING_REDRIVE lies between a redrive call and the rerun).
WAITING_STATUSES = frozenset({"RUNNING", "PENDING_REDRIVE"})


class StepFunctionExecutionTrigger(AwsPollingTrigger):
    """Polls DescribeExecution until the execution is SUCCEEDED, FAILED, TIMED_OUT or ABORTED.

    The event carries the final status and redrive count but not the output (up to 256 KB, which
    does not belong in the trigger table); the operator reads the output when it resumes.

    :param execution_arn: the execution to wait for.
    :param stop_on_kill: on Airflow 3.3+, stop the execution when a user kills the deferred task.
    """

    service_name = "stepfunctions"

    def __init__(self, *, execution_arn: str, stop_on_kill: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.execution_arn = execution_arn
        self.stop_on_kill = stop_on_kill

    def trigger_kwargs(self) -> dict[str, Any]:
        return {"execution_arn": self.execution_arn, "stop_on_kill": self.stop_on_kill}

    @property
    def what(self) -> str:
        return f"execution {self.execution_arn.rsplit(':', 1)[-1]}"

    async def check(self, client: Any) -> dict[str, Any] | None:
        described = await client.describe_execution(executionArn=self.execution_arn)
        status = described["status"]
        if status in WAITING_STATUSES:
            return None
        return {
            "status": STATUS_SUCCESS if status == "SUCCEEDED" else STATUS_FAILURE,
            "execution_arn": self.execution_arn,
            "execution_status": status,
            "redrive_count": int(described.get("redriveCount", 0)),
        }

    async def stop(self, client: Any) -> None:
        await client.stop_execution(
            executionArn=self.execution_arn,
            error="Airflow.TaskKilled",
            cause="The Airflow task waiting for this execution was killed.",
        )
