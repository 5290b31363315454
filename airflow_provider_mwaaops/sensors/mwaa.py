"""Amazon MWAA sensors: is an environment's scheduler alive (CloudWatch ``SchedulerHeartbeat``)?"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_provider_mwaaops.hooks.mwaa import validate_environment_name
from airflow_provider_mwaaops.operators.base import aws_template_fields
from airflow_provider_mwaaops.sensors.base import AwsBaseSensor
from airflow_provider_mwaaops.triggers.mwaa import MwaaSchedulerHeartbeatTrigger, validate_heartbeat_check

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = ["MwaaSchedulerHealthSensor"]


class MwaaSchedulerHealthSensor(AwsBaseSensor):
    """Wait until an MWAA environment's scheduler is healthy, or until it is not.

    Each check sums the ``AmazonMWAA`` / ``SchedulerHeartbeat`` datapoints (dimensions Environment
    and Function=Scheduler) per ``period`` over the last ``window``. Four outcomes stay apart:

    * **healthy**: at least one period reached ``threshold`` heartbeats;
    * **unhealthy**: CloudWatch knows the metric for the environment, and no period reached it;
    * **no data**: CloudWatch has never seen the metric for that name in this account and Region
      (a typo, the wrong Region): never taken for a dead scheduler; keep waiting, or fail with
      ``on_no_data="fail"``;
    * **CloudWatch API error**: the task fails with the error (AccessDenied names the IAM action);
      throttling only slows the checks down.

    :param environment_name: the MWAA environment. (templated)
    :param wait_for: ``"unhealthy"`` (a recovery DAG waiting for a failure) or ``"healthy"`` (a
        new environment coming up).
    :param window: how far back each check looks (default 5 minutes).
    :param period: CloudWatch period in seconds (default 60).
    :param threshold: heartbeats a period needs to count as alive (default 1; MWAA's scheduler
        beats every 5 seconds, 12 a minute).
    :param on_no_data: ``"wait"`` or ``"fail"``.

    Plus the base's ``aws_conn_id``, ``region_name``, ``verify``, ``botocore_config``,
    ``deferrable`` and Airflow's ``poke_interval`` / ``timeout`` / ``mode``. Returns (XCom) the
    final check: ``outcome``, the ``heartbeats`` per period and the window.
    """

    template_fields: Sequence[str] = aws_template_fields("environment_name")
    aws_hook_class = AwsBaseHook
    aws_service_label = "CloudWatch"
    ui_color = "#e6f0fa"

    def __init__(
        self,
        *,
        environment_name: str,
        wait_for: Literal["healthy", "unhealthy"] = "unhealthy",
        window: timedelta | float = timedelta(minutes=5),
        period: int = 60,
        threshold: float = 1,
        on_no_data: Literal["wait", "fail"] = "wait",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.window_seconds = window.total_seconds() if isinstance(window, timedelta) else float(window)
        validate_heartbeat_check(wait_for, on_no_data, self.window_seconds, period, threshold)
        self.environment_name = environment_name
        self.wait_for: Literal["healthy", "unhealthy"] = wait_for
        self.period = period
        self.threshold = threshold
        self.on_no_data: Literal["wait", "fail"] = on_no_data

    def hook_params(self) -> dict[str, Any]:
        return {**super().hook_params(), "client_type": "cloudwatch"}

    def trigger(self, context: Context) -> MwaaSchedulerHeartbeatTrigger:
        validate_environment_name(self.environment_name)
        return MwaaSchedulerHeartbeatTrigger(
            environment_name=self.environment_name,
            wait_for=self.wait_for,
            window_seconds=self.window_seconds,
            period_seconds=self.period,
            threshold=self.threshold,
            on_no_data=self.on_no_data,
            **self.trigger_kwargs(),
        )
