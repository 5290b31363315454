"""EMR triggers: what they serialize (a restarted triggerer rebuilds them from it) and read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_mwaaops.testing.triggerer import rebuild
from airflow_provider_mwaaops.triggers.emr import EmrServerlessJobRunTrigger, EmrStepsTrigger

CONNECTION = {
    "aws_conn_id": "aws_default",
    "region_name": "eu-west-1",
    "verify": "/etc/ssl/ca.pem",
    "botocore_config": {"read_timeout": 42},
    "waiter_delay": 3.0,
    "waiter_max_delay": 60.0,
    "timeout_at": 1234.5,
}


def test_serverless_trigger_round_trips_every_argument():
    trigger = EmrServerlessJobRunTrigger(
        application_id="app",
        job_run_id="run",
        cancel_on_kill=False,
        log_sources=[{"log_group": "/aws/emr-serverless", "log_streams": ["s/stdout"], "label": "driver"}],
        log_limits={"max_lines_per_poll": 10, "max_bytes_per_poll": 1000},
        task_instance={"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": 2},
        **CONNECTION,
    )
    again = rebuild(trigger)
    assert again.serialize() == trigger.serialize()
    _, kwargs = again.serialize()
    assert {key: kwargs[key] for key in CONNECTION} == CONNECTION
    assert again.stop_on_kill is False
    assert again.forward_logs is True
    assert [source.log_streams for source in again.log_sources()] == [("s/stdout",)]


def test_serverless_trigger_without_log_sources_forwards_nothing():
    trigger = EmrServerlessJobRunTrigger(application_id="app", job_run_id="run")
    assert trigger.forward_logs is False
    assert trigger.log_sources() is None


def test_steps_trigger_round_trips_every_argument():
    trigger = EmrStepsTrigger(cluster_id="j-1", step_ids=["s-1", "s-2"], cancel_on_kill=False, **CONNECTION)
    again = rebuild(trigger)
    assert again.serialize() == trigger.serialize()
    assert again.step_ids == ["s-1", "s-2"]
    assert again.stop_on_kill is False


def _step(name: str, action: str = "CONTINUE") -> dict[str, Any]:
    return {
        "Name": name,
        "ActionOnFailure": action,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", f"s3://code/{name}.py"]},
    }


@pytest.fixture
def cluster(aws_emulator: Any) -> tuple[Any, str]:
    emr = aws_emulator.client("emr")
    cluster_id = emr.run_job_flow(
        Name="t",
        ReleaseLabel="emr-6.15.0",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    return emr, cluster_id


def test_steps_trigger_waits_for_every_step_after_a_failure_with_continue(aws_emulator, cluster):
    """With ActionOnFailure=CONTINUE the steps after a failed one still run: the event waits for
    them, so a retry never resubmits a step that is still running."""
    emr, cluster_id = cluster
    aws_emulator.emr.script_step("A", outcome="FAILED", message="boom")
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[_step("A"), _step("B")])["StepIds"]

    event = asyncio.run(EmrStepsTrigger(cluster_id=cluster_id, step_ids=ids, waiter_delay=0.1).wait())

    assert event["status"] == "failure"
    assert event["step_states"] == ["FAILED", "COMPLETED"]
    assert event["failed_step_id"] == ids[0]


def test_steps_trigger_reads_more_than_ten_steps(aws_emulator, cluster):
    """ListSteps takes at most ten StepIds: the trigger asks in chunks."""
    emr, cluster_id = cluster
    aws_emulator.emr.set_timings(step_running=0.01)
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[_step(f"s{n}") for n in range(12)])["StepIds"]

    event = asyncio.run(EmrStepsTrigger(cluster_id=cluster_id, step_ids=ids, waiter_delay=0.1).wait())

    assert event["status"] == "success"
    assert event["step_states"] == ["COMPLETED"] * 12
