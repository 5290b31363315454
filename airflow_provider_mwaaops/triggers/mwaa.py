"""Waits on Amazon MWAA: an environment's status, and its scheduler's heartbeat in CloudWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from airflow_provider_mwaaops.aws.errors import error_code
from airflow_provider_mwaaops.hooks.mwaa import (
    CREATE_FAILURE_STATUSES,
    READY_STATUSES,
    UPDATE_FAILURE_STATUSES,
    environment_failure,
)
from airflow_provider_mwaaops.triggers.base import STATUS_FAILURE, STATUS_SUCCESS, AwsPollingTrigger

__all__ = [
    "HEALTHY",
    "NO_DATA",
    "UNHEALTHY",
    "MwaaEnvironmentStatusTrigger",
    "MwaaSchedulerHeartbeatTrigger",
    "assess_heartbeats",
    "validate_heartbeat_check",
]

Operation = Literal["create", "update"]
_FAILURES: dict[str, frozenset[str]] = {"create": CREATE_FAILURE_STATUSES, "update": UPDATE_FAILURE_STATUSES}


class MwaaEnvironmentStatusTrigger(AwsPollingTrigger):
    """Polls GetEnvironment until a create or update is over.

    AVAILABLE is success. CREATE_FAILED / UPDATE_FAILED / UNAVAILABLE (and DELETING / DELETED, or
    the environment vanishing) are failures that carry the service's ``LastUpdate.Error``; every
    other status (CREATING, PENDING, UPDATING, CREATING_SNAPSHOT, ROLLING_BACK, MAINTENANCE) means
    wait.

    :param environment_name: the environment.
    :param operation: ``"create"`` or ``"update"``: which statuses count as failed.
    """

    service_name = "mwaa"

    def __init__(self, *, environment_name: str, operation: Operation = "create", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if operation not in _FAILURES:
            raise ValueError(f"operation must be 'create' or 'update', got {operation!r}")
        self.environment_name = environment_name
        self.operation: Operation = operation
        self._last_status: str | None = None

    def trigger_kwargs(self) -> dict[str, Any]:
        return {"environment_name": self.environment_name, "operation": self.operation}

    @property
    def what(self) -> str:
        return f"MWAA environment {self.environment_name}"

    async def check(self, client: Any) -> dict[str, Any] | None:
        try:
            environment = (await client.get_environment(Name=self.environment_name))["Environment"]
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return self._event(STATUS_FAILURE, "DELETED", "the environment does not exist (any more)")
        status = str(environment.get("Status"))
        if status != self._last_status:
            self.log.info("%s is %s", self.what, status)
            self._last_status = status
        if status in READY_STATUSES:
            return self._event(STATUS_SUCCESS, status, None, environment)
        if status in _FAILURES[self.operation]:
            return self._event(STATUS_FAILURE, status, environment_failure(environment), environment)
        return None

    def _event(
        self, outcome: str, status: str, reason: str | None, environment: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "status": outcome,
            **self.trigger_kwargs(),
            "environment_status": status,
            "reason": reason,
        }
        if environment is not None:
            event["arn"] = environment.get("Arn")
            event["webserver_url"] = environment.get("WebserverUrl")
        return event


# -- scheduler health ------------------------------------------------------------------------------
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
NO_DATA = "no_data"
#: GetMetricData's periods: high resolution 1, 5, 10 or 30 seconds, else a multiple of 60.
_HIGH_RESOLUTION_PERIODS = frozenset({1, 5, 10, 30})


def validate_heartbeat_check(
    wait_for: str, on_no_data: str, window_seconds: float, period_seconds: int, threshold: float
) -> None:
    """Refuse what a health check cannot mean (a window CloudWatch cannot answer), before any call."""
    if wait_for not in (HEALTHY, UNHEALTHY):
        raise ValueError(f"wait_for must be 'healthy' or 'unhealthy', got {wait_for!r}")
    if on_no_data not in ("wait", "fail"):
        raise ValueError(f"on_no_data must be 'wait' or 'fail', got {on_no_data!r}")
    if isinstance(period_seconds, bool) or not isinstance(period_seconds, int) or period_seconds <= 0:
        raise ValueError(f"period must be a positive number of seconds, got {period_seconds!r}")
    if period_seconds not in _HIGH_RESOLUTION_PERIODS and period_seconds % 60:
        raise ValueError(
            f"CloudWatch periods are 1, 5, 10, 30 or a multiple of 60 seconds, got {period_seconds}"
        )
    if window_seconds < period_seconds:
        raise ValueError(
            f"the metric window ({window_seconds:g}s) is shorter than one period ({period_seconds}s): "
            "it would never hold a complete datapoint"
        )
    if threshold <= 0:
        raise ValueError(f"threshold must be a positive number of heartbeats per period, got {threshold!r}")


def assess_heartbeats(values: list[float], metric_known: bool, threshold: float) -> str:
    """Healthy when at least one period of the window reached ``threshold`` heartbeats.

    No datapoint at all is a dead scheduler only if CloudWatch knows the metric for this
    environment (it heartbeated before); otherwise there is nothing to judge (``no_data``: a wrong
    name or Region, or an environment that never ran).
    """
    if any(value >= threshold for value in values):
        return HEALTHY
    if values or metric_known:
        return UNHEALTHY
    return NO_DATA


class MwaaSchedulerHeartbeatTrigger(AwsPollingTrigger):
    """Reads ``AmazonMWAA`` / ``SchedulerHeartbeat`` until the scheduler is as wanted.

    Each check sums the heartbeats per ``period_seconds`` over the last ``window_seconds``
    (GetMetricData, dimensions Environment and Function=Scheduler) and judges them with
    :func:`assess_heartbeats`. The wait ends with success when the outcome is ``wait_for``; with
    failure when there is no data and ``on_no_data="fail"``. Throttling slows the checks down
    (never "unhealthy"); any other CloudWatch error ends the wait with an error event.

    :param environment_name: the MWAA environment.
    :param wait_for: ``"healthy"`` or ``"unhealthy"``.
    :param window_seconds: how far back to look (default 300).
    :param period_seconds: CloudWatch period (default 60).
    :param threshold: heartbeats a period needs to count as alive (default 1).
    :param on_no_data: ``"wait"`` (keep checking) or ``"fail"``.
    """

    service_name = "cloudwatch"
    namespace = "AmazonMWAA"
    metric_name = "SchedulerHeartbeat"

    def __init__(
        self,
        *,
        environment_name: str,
        wait_for: Literal["healthy", "unhealthy"] = "unhealthy",
        window_seconds: float = 300.0,
        period_seconds: int = 60,
        threshold: float = 1.0,
        on_no_data: Literal["wait", "fail"] = "wait",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate_heartbeat_check(wait_for, on_no_data, window_seconds, period_seconds, threshold)
        self.environment_name = environment_name
        self.wait_for = wait_for
        self.window_seconds = float(window_seconds)
        self.period_seconds = int(period_seconds)
        self.threshold = float(threshold)
        self.on_no_data = on_no_data
        self._last_outcome: str | None = None

    def trigger_kwargs(self) -> dict[str, Any]:
        return {
            "environment_name": self.environment_name,
            "wait_for": self.wait_for,
            "window_seconds": self.window_seconds,
            "period_seconds": self.period_seconds,
            "threshold": self.threshold,
            "on_no_data": self.on_no_data,
        }

    @property
    def what(self) -> str:
        return f"scheduler of MWAA environment {self.environment_name}"

    @property
    def _dimensions(self) -> list[dict[str, str]]:
        return [
            {"Name": "Environment", "Value": self.environment_name},
            {"Name": "Function", "Value": "Scheduler"},
        ]

    async def check(self, client: Any) -> dict[str, Any] | None:
        end = datetime.now(UTC)
        start = end - timedelta(seconds=self.window_seconds)
        answer = await client.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "heartbeats",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": self.namespace,
                            "MetricName": self.metric_name,
                            "Dimensions": self._dimensions,
                        },
                        "Period": self.period_seconds,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
        )
        results = answer.get("MetricDataResults") or [{}]
        values = [float(v) for v in results[0].get("Values", [])]
        metric_known = bool(values) or await self._metric_known(client)
        outcome = assess_heartbeats(values, metric_known, self.threshold)
        if outcome != self._last_outcome:
            self.log.info(
                "%s: %s (heartbeats per %ss over the last %gs: %s; threshold %g)",
                self.what,
                outcome,
                self.period_seconds,
                self.window_seconds,
                values or "none",
                self.threshold,
            )
            self._last_outcome = outcome
        if outcome == self.wait_for:
            return self._event(STATUS_SUCCESS, outcome, values, start, end)
        if outcome == NO_DATA and self.on_no_data == "fail":
            event = self._event(STATUS_FAILURE, outcome, values, start, end)
            event["message"] = (
                f"CloudWatch has no {self.namespace}/{self.metric_name} data for environment "
                f"{self.environment_name!r} in this account and Region: check the name and Region "
                "(this is not judged as a dead scheduler)"
            )
            return event
        return None

    async def _metric_known(self, client: Any) -> bool:
        """Whether CloudWatch lists the metric for this environment (data within two weeks)."""
        listed = await client.list_metrics(
            Namespace=self.namespace,
            MetricName=self.metric_name,
            Dimensions=[{"Name": "Environment", "Value": self.environment_name}],
        )
        return bool(listed.get("Metrics"))

    def _event(
        self, status: str, outcome: str, values: list[float], start: datetime, end: datetime
    ) -> dict[str, Any]:
        return {
            "status": status,
            **self.trigger_kwargs(),
            "outcome": outcome,
            "heartbeats": values,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
        }
