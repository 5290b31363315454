"""The scheduler-health sensor and its trigger: four outcomes that never blur into each other."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

SPEC: dict[str, Any] = {
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa",
    "SourceBucketArn": "arn:aws:s3:::dags",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
}


@pytest.fixture
def environment(aws_emulator: Any) -> Iterator[str]:
    """An environment that has been AVAILABLE for 30 minutes, its scheduler beating."""
    from moto.moto_api import state_manager

    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    aws_emulator.set_transition(mwaa_environments.MODEL_NAME, {"progression": "immediate"})
    aws_emulator.client("mwaa").create_environment(Name="prod", **SPEC)
    mwaa_environments.wait_for_status("prod")
    mwaa_environments.age_environment("prod", dt.timedelta(minutes=30))
    yield "prod"
    state_manager.unset_transition(mwaa_environments.MODEL_NAME)


def _trigger(name: str, **kwargs: Any) -> Any:
    from airflow_provider_mwaaops.triggers.mwaa import MwaaSchedulerHeartbeatTrigger

    options = {"waiter_delay": 0.1, "timeout_at": MwaaSchedulerHeartbeatTrigger.deadline_after(1.0), **kwargs}
    return MwaaSchedulerHeartbeatTrigger(environment_name=name, **options)


def _wait(trigger: Any) -> dict[str, Any]:
    return asyncio.run(trigger.wait())


def _kill(name: str, minutes_ago: int) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    mwaa_environments.stop_scheduler(name, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago))


def test_healthy(environment: str) -> None:
    event = _wait(_trigger(environment, wait_for="healthy"))
    assert event["status"] == "success"
    assert event["outcome"] == "healthy"
    assert max(event["heartbeats"]) == 12
    # Waiting for a failure of a healthy scheduler runs into the deadline, not into "unhealthy".
    assert _wait(_trigger(environment, wait_for="unhealthy"))["status"] == "timeout"


def test_unhealthy_after_the_scheduler_died(environment: str) -> None:
    _kill(environment, minutes_ago=10)
    event = _wait(_trigger(environment, wait_for="unhealthy"))
    assert (event["status"], event["outcome"], event["heartbeats"]) == ("success", "unhealthy", [])
    # A short outage inside the window is not a dead scheduler (one period still reached the threshold).
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    mwaa_environments.start_scheduler(environment)
    assert _wait(_trigger(environment, wait_for="healthy"))["outcome"] == "healthy"


def test_too_few_heartbeats_are_unhealthy(environment: str) -> None:
    event = _wait(_trigger(environment, wait_for="unhealthy", threshold=13))  # 12 a minute at most
    assert event["outcome"] == "unhealthy"
    assert event["heartbeats"]


def test_no_data_is_not_a_dead_scheduler(environment: str) -> None:
    event = _wait(_trigger("prd", wait_for="unhealthy"))  # a typo
    assert event["status"] == "timeout"
    failed = _wait(_trigger("prd", wait_for="unhealthy", on_no_data="fail"))
    assert failed["status"] == "failure"
    assert failed["outcome"] == "no_data"
    assert "not judged as a dead scheduler" in failed["message"]


def test_cloudwatch_errors_are_errors_and_throttling_only_slows_down(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.exceptions import ServiceException

    class Throttled(ServiceException):
        code = "Throttling"
        message = "Rate exceeded"

    class Denied(ServiceException):
        code = "AccessDenied"
        message = "User is not authorized to perform: cloudwatch:GetMetricData"

    _kill(environment, minutes_ago=10)
    original = CloudWatchBackend.get_metric_data
    answers: list[Exception | None] = [Throttled(), Throttled(), None]

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        error = answers.pop(0) if answers else None
        if error is not None:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CloudWatchBackend, "get_metric_data", flaky)
    trigger = _trigger(environment, wait_for="unhealthy", waiter_max_delay=0.2)
    trigger.timeout_at = trigger.deadline_after(30)
    assert _wait(trigger)["outcome"] == "unhealthy"  # after backing off twice

    def denied(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise Denied()

    monkeypatch.setattr(CloudWatchBackend, "get_metric_data", denied)
    event = _wait(_trigger(environment, wait_for="unhealthy"))
    assert event["status"] == "error"
    assert "AccessDenied" in event["message"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": dt.timedelta(seconds=30)}, "shorter than one period"),
        ({"period": 45}, "multiple of 60"),
        ({"threshold": 0}, "threshold must be a positive number"),
        ({"wait_for": "dead"}, "wait_for must be 'healthy' or 'unhealthy'"),
    ],
)
def test_bad_windows_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    from airflow_provider_mwaaops.sensors.mwaa import MwaaSchedulerHealthSensor

    with pytest.raises(ValueError, match=message):
        MwaaSchedulerHealthSensor(task_id="health", environment_name="prod", **kwargs)


def test_sensor_in_a_dag(dag_runner: Any, environment: str) -> None:
    """Deferred, in a real DAG run: the trigger's event becomes the task's XCom."""
    from airflow_provider_mwaaops.compat import DAG
    from airflow_provider_mwaaops.sensors.mwaa import MwaaSchedulerHealthSensor
    from airflow_provider_mwaaops.testing.dag_runner import task_return_values

    _kill(environment, minutes_ago=10)
    with DAG(
        "mwaa_health_sensor", schedule=None, start_date=dt.datetime(2026, 1, 1), params={"env": environment}
    ) as dag:
        MwaaSchedulerHealthSensor(
            task_id="primary_down",
            environment_name="{{ params.env }}",
            deferrable=True,
            poke_interval=1,
            timeout=60,
        )
    result = dag_runner(dag)
    assert result.succeeded, result
    assert task_return_values(dag.dag_id, result.run_id)["primary_down"]["outcome"] == "unhealthy"


def test_poke_mode_judges_alike(environment: str) -> None:
    """Without deferring, each poke runs the trigger's check once."""
    from airflow_provider_mwaaops.sensors.mwaa import MwaaSchedulerHealthSensor

    def sensor(wait_for: str) -> Any:
        return MwaaSchedulerHealthSensor(
            task_id=f"poke_{wait_for}", environment_name=environment, wait_for=wait_for, deferrable=False
        )

    assert sensor("unhealthy").poke({}) is False
    done = sensor("healthy").poke({})
    assert done.is_done
    assert done.xcom_value["outcome"] == "healthy"
