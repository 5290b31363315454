"""EMR Serverless in the embedded AWS: job runs and applications that move as AWS documents.

Most tests drive the emulator's clock by hand (``clock``), so every state is observed exactly and
nothing sleeps; the aiobotocore tests let real time pass, as a trigger does.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.testing.extensions import emr_scripts
from airflow_provider_mwaaops.testing.extensions.emr_scripts import ManualClock, ScriptError

ROLE_ARN = "arn:aws:iam::123456789012:role/emr-serverless-job"
TIMINGS = emr_scripts.EmrTimings()  # the defaults the clock-driven tests step through


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with emr_scripts.manual_clock() as manual:
        yield manual


@pytest.fixture
def serverless(aws_emulator: Any) -> Any:
    return aws_emulator.client("emr-serverless")


def create_app(serverless: Any, **kwargs: Any) -> str:
    return serverless.create_application(name="app", releaseLabel="emr-7.1.0", type="SPARK", **kwargs)[
        "applicationId"
    ]


def start_run(serverless: Any, app_id: str, token: str = "token-1", **kwargs: Any) -> str:
    request: dict[str, Any] = {
        "applicationId": app_id,
        "clientToken": token,
        "executionRoleArn": ROLE_ARN,
        "jobDriver": {"sparkSubmit": {"entryPoint": "s3://code/job.py"}},
        **kwargs,
    }
    return serverless.start_job_run(**request)["jobRunId"]


def run_of(serverless: Any, app_id: str, run_id: str) -> dict[str, Any]:
    return serverless.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]


def app_state(serverless: Any, app_id: str) -> str:
    return serverless.get_application(applicationId=app_id)["application"]["state"]


def started_app(serverless: Any, clock: ManualClock, **kwargs: Any) -> str:
    app_id = create_app(serverless, **kwargs)
    serverless.start_application(applicationId=app_id)
    clock.advance(TIMINGS.application_starting)
    assert app_state(serverless, app_id) == "STARTED"
    return app_id


def all_runs(serverless: Any, app_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    runs, token = [], None
    while True:
        page = serverless.list_job_runs(
            applicationId=app_id, **kwargs, **({"nextToken": token} if token else {})
        )
        runs += page["jobRuns"]
        token = page.get("nextToken")
        if not token:
            return runs


# -- job run states ------------------------------------------------------------------------------
def test_run_passes_every_documented_state_to_success(serverless: Any, clock: ManualClock) -> None:
    app_id = started_app(serverless, clock)
    run_id = start_run(serverless, app_id)
    seen = [run_of(serverless, app_id, run_id)["state"]]
    for phase in ("job_submitted", "job_pending", "job_scheduled", "job_running"):
        clock.advance(getattr(TIMINGS, phase))
        seen.append(run_of(serverless, app_id, run_id)["state"])

    assert seen == ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "SUCCESS"]
    run = run_of(serverless, app_id, run_id)
    assert "stateDetails" not in run
    assert run["startedAt"] < run["endedAt"]
    assert run["totalExecutionDurationSeconds"] == 1  # 0.5 s RUNNING, rounded up
    assert run["attempt"] == 1


def test_scripted_failure_carries_its_message_in_state_details(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_job_run("nightly-*", outcome="FAILED", message="AnalysisException: no table x")
    app_id = started_app(serverless, clock)
    failing = start_run(serverless, app_id, "t1", name="nightly-2025-01-01")
    other = start_run(serverless, app_id, "t2", name="adhoc")
    clock.advance(10)

    assert run_of(serverless, app_id, failing)["state"] == "FAILED"
    assert run_of(serverless, app_id, failing)["stateDetails"] == "AnalysisException: no table x"
    assert run_of(serverless, app_id, other)["state"] == "SUCCESS"


def test_times_fails_only_the_next_runs_then_defaults_apply(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_job_run("etl", outcome="FAILED", message="first try breaks", times=1)
    app_id = started_app(serverless, clock)
    first = start_run(serverless, app_id, "try-1", name="etl")
    second = start_run(serverless, app_id, "try-2", name="etl")
    clock.advance(10)

    assert [run_of(serverless, app_id, run)["state"] for run in (first, second)] == ["FAILED", "SUCCESS"]


def test_spark_settings_in_the_submission_script_the_run(serverless: Any, clock: ManualClock) -> None:
    app_id = started_app(serverless, clock)
    parameters = (
        "--conf spark.executor.cores=1 --conf spark.mwaaops.emulator.outcome=FAILED "
        "--conf 'spark.mwaaops.emulator.message=Job aborted: disk full' "
        "--conf spark.mwaaops.emulator.duration=2"
    )
    run_id = start_run(
        serverless,
        app_id,
        jobDriver={"sparkSubmit": {"entryPoint": "s3://code/job.py", "sparkSubmitParameters": parameters}},
    )
    clock.advance(sum((TIMINGS.job_submitted, TIMINGS.job_pending, TIMINGS.job_scheduled, 1.9)))
    assert run_of(serverless, app_id, run_id)["state"] == "RUNNING"  # duration 2 s, not the default
    clock.advance(0.2)
    run = run_of(serverless, app_id, run_id)
    assert (run["state"], run["stateDetails"]) == ("FAILED", "Job aborted: disk full")


def test_a_bad_setting_is_refused_with_the_emulator_named(serverless: Any, clock: ManualClock) -> None:
    app_id = started_app(serverless, clock)
    with pytest.raises(ClientError) as raised:
        start_run(
            serverless,
            app_id,
            jobDriver={
                "sparkSubmit": {
                    "entryPoint": "x.py",
                    "entryPointArguments": ["spark.mwaaops.emulator.outcome=OK"],
                }
            },
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "mwaaops emulator" in raised.value.response["Error"]["Message"]
    with pytest.raises(ScriptError, match="SUCCESS, FAILED"):
        emr_scripts.EmrControls("us-east-1").script_job_run(outcome="COMPLETED")


def test_cancel_goes_through_cancelling_to_cancelled(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_job_run(duration=float("inf"))  # hangs until cancelled
    app_id = started_app(serverless, clock)
    run_id = start_run(serverless, app_id)
    clock.advance(3600)
    assert run_of(serverless, app_id, run_id)["state"] == "RUNNING"

    serverless.cancel_job_run(applicationId=app_id, jobRunId=run_id)
    assert run_of(serverless, app_id, run_id)["state"] == "CANCELLING"
    clock.advance(TIMINGS.job_cancelling)
    assert run_of(serverless, app_id, run_id)["state"] == "CANCELLED"
    serverless.cancel_job_run(applicationId=app_id, jobRunId=run_id)  # a finished run: nothing changes
    assert run_of(serverless, app_id, run_id)["state"] == "CANCELLED"


def test_a_run_past_execution_timeout_is_cancelled(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_job_run(duration=float("inf"))
    app_id = started_app(serverless, clock)
    run_id = start_run(serverless, app_id, executionTimeoutMinutes=5)
    clock.advance(TIMINGS.job_submitted + TIMINGS.job_pending + TIMINGS.job_scheduled + 5 * 60 - 0.01)
    assert run_of(serverless, app_id, run_id)["state"] == "RUNNING"
    clock.advance(0.02)
    run = run_of(serverless, app_id, run_id)
    assert run["state"] == "CANCELLING"
    assert "executionTimeoutMinutes (5)" in run["stateDetails"]
    clock.advance(TIMINGS.job_cancelling)
    assert run_of(serverless, app_id, run_id)["state"] == "CANCELLED"


def test_unknown_run_and_application_are_not_found(serverless: Any, clock: ManualClock) -> None:
    app_id = started_app(serverless, clock)
    for call in (
        lambda: serverless.get_job_run(applicationId=app_id, jobRunId="nosuchrun"),
        lambda: serverless.get_job_run(applicationId="nosuchapp", jobRunId="nosuchrun"),
        lambda: start_run(serverless, "nosuchapp"),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# -- client tokens -------------------------------------------------------------------------------
def test_same_token_and_request_returns_the_same_run(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    app_id = started_app(serverless, clock)
    first = start_run(serverless, app_id, "ti-abc-1", name="etl")
    clock.advance(60)
    again = start_run(serverless, app_id, "ti-abc-1", name="etl")

    assert again == first
    assert [run["id"] for run in all_runs(serverless, app_id)] == [first]

    with pytest.raises(ClientError) as raised:
        start_run(serverless, app_id, "ti-abc-1", name="another request")
    assert raised.value.response["Error"]["Code"] == "ConflictException"

    aws_emulator.emr.forget_client_tokens()  # AWS does not say how long it remembers one
    assert start_run(serverless, app_id, "ti-abc-1", name="etl") != first
    assert len(all_runs(serverless, app_id)) == 2


# -- ListJobRuns ---------------------------------------------------------------------------------
def test_list_job_runs_filters_then_pages_newest_first(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_job_run("slow", duration=float("inf"))
    app_id = started_app(serverless, clock)
    old = [start_run(serverless, app_id, f"old-{index}") for index in range(2)]
    clock.advance(10)
    boundary = datetime.datetime.fromtimestamp(clock.now, tz=datetime.UTC)
    clock.advance(1)
    new = []
    for index in range(5):
        new.append(start_run(serverless, app_id, f"new-{index}", name="slow" if index % 2 else "quick"))
        clock.advance(0.01)
    clock.advance(5)  # the quick ones succeed, the slow ones keep running

    runs = all_runs(serverless, app_id, createdAtAfter=boundary, maxResults=2)
    assert [run["id"] for run in runs] == new[::-1]
    assert [run["id"] for run in all_runs(serverless, app_id, createdAtBefore=boundary)] == old[::-1]
    grouped = all_runs(serverless, app_id, createdAtAfter=boundary, states=["RUNNING", "SUCCESS"])
    assert [run["state"] for run in grouped] == ["RUNNING"] * 2 + ["SUCCESS"] * 3
    assert [run["id"] for run in grouped] == [new[3], new[1], new[4], new[2], new[0]]

    first_page = serverless.list_job_runs(applicationId=app_id)
    assert len(first_page["jobRuns"]) == 7
    assert "nextToken" not in first_page
    with pytest.raises(ClientError) as raised:
        serverless.list_job_runs(applicationId=app_id, maxResults=51)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


# -- applications --------------------------------------------------------------------------------
def test_a_new_application_is_created_and_auto_starts_for_a_job(serverless: Any, clock: ManualClock) -> None:
    app_id = create_app(serverless)
    assert app_state(serverless, app_id) == "CREATED"

    run_id = start_run(serverless, app_id)
    assert app_state(serverless, app_id) == "STARTING"
    clock.advance(TIMINGS.application_starting / 2)
    assert run_of(serverless, app_id, run_id)["state"] == "SUBMITTED"  # waits for the application
    clock.advance(TIMINGS.application_starting / 2)
    assert app_state(serverless, app_id) == "STARTED"
    clock.advance(TIMINGS.job_submitted + TIMINGS.job_pending + TIMINGS.job_scheduled + TIMINGS.job_running)
    assert run_of(serverless, app_id, run_id)["state"] == "SUCCESS"


def test_a_stopped_application_is_started_again_and_runs_the_job(serverless: Any, clock: ManualClock) -> None:
    app_id = started_app(serverless, clock, autoStartConfiguration={"enabled": False})
    serverless.stop_application(applicationId=app_id)
    assert app_state(serverless, app_id) == "STOPPING"
    clock.advance(TIMINGS.application_stopping)
    assert app_state(serverless, app_id) == "STOPPED"

    with pytest.raises(ClientError) as refused:  # auto-start is off: STARTED only
        start_run(serverless, app_id)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "STOPPED" in refused.value.response["Error"]["Message"]

    serverless.start_application(applicationId=app_id)
    assert app_state(serverless, app_id) == "STARTING"
    clock.advance(TIMINGS.application_starting)
    assert app_state(serverless, app_id) == "STARTED"
    run_id = start_run(serverless, app_id)
    clock.advance(5)
    assert run_of(serverless, app_id, run_id)["state"] == "SUCCESS"


def test_an_application_with_unfinished_runs_cannot_stop(serverless: Any, clock: ManualClock) -> None:
    app_id = started_app(serverless, clock)
    run_id = start_run(serverless, app_id)
    with pytest.raises(ClientError) as refused:
        serverless.stop_application(applicationId=app_id)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert run_id in refused.value.response["Error"]["Message"]
    clock.advance(5)
    serverless.stop_application(applicationId=app_id)
    assert app_state(serverless, app_id) == "STOPPING"


# -- logs ----------------------------------------------------------------------------------------
def stream_messages(aws_emulator: Any, group: str, stream: str) -> list[str]:
    events = aws_emulator.client("logs").get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True
    )
    return [event["message"] for event in events["events"]]


def test_driver_logs_reach_cloudwatch_while_running_and_s3_at_the_end(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.client("s3").create_bucket(Bucket="job-logs")
    lines = [f"row batch {index}" for index in range(10)]
    aws_emulator.emr.script_job_run(outcome="FAILED", message="boom", stdout=lines, stderr=["WARN slow"])
    app_id = started_app(serverless, clock)
    monitoring = {
        "cloudWatchLoggingConfiguration": {"enabled": True},
        "s3MonitoringConfiguration": {"logUri": "s3://job-logs/emr/"},
    }
    run_id = start_run(serverless, app_id, configurationOverrides={"monitoringConfiguration": monitoring})
    stream = f"/applications/{app_id}/jobs/{run_id}/SPARK_DRIVER"
    clock.advance(
        TIMINGS.job_submitted + TIMINGS.job_pending + TIMINGS.job_scheduled + 3 * TIMINGS.log_interval
    )

    assert stream_messages(aws_emulator, "/aws/emr-serverless", f"{stream}/stdout") == lines[:3]
    clock.advance(TIMINGS.job_running)
    assert run_of(serverless, app_id, run_id)["state"] == "FAILED"
    assert stream_messages(aws_emulator, "/aws/emr-serverless", f"{stream}/stdout") == lines
    assert stream_messages(aws_emulator, "/aws/emr-serverless", f"{stream}/stderr") == ["WARN slow", "boom"]

    s3 = aws_emulator.client("s3")
    prefix = f"emr/applications/{app_id}/jobs/{run_id}/SPARK_DRIVER"
    stdout = gzip.decompress(s3.get_object(Bucket="job-logs", Key=f"{prefix}/stdout.gz")["Body"].read())
    assert stdout.decode().splitlines() == lines
    stderr = gzip.decompress(s3.get_object(Bucket="job-logs", Key=f"{prefix}/stderr.gz")["Body"].read())
    assert stderr.decode().splitlines() == ["WARN slow", "boom"]


def test_cloudwatch_group_prefix_and_log_types_are_honoured(
    aws_emulator: Any, serverless: Any, clock: ManualClock
) -> None:
    aws_emulator.emr.script_job_run(stdout=["out"], stderr=["err"])
    app_monitoring = {"cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": "/app/level"}}
    app_id = started_app(serverless, clock, monitoringConfiguration=app_monitoring)
    by_app = start_run(serverless, app_id, "t1")
    cloudwatch = {
        "enabled": True,
        "logGroupName": "/teams/etl",
        "logStreamNamePrefix": "nightly",
        "logTypes": {"SPARK_DRIVER": ["STDERR"]},
    }
    by_run = start_run(
        serverless,
        app_id,
        "t2",
        configurationOverrides={"monitoringConfiguration": {"cloudWatchLoggingConfiguration": cloudwatch}},
    )
    clock.advance(5)
    run_of(serverless, app_id, by_run)

    logs = aws_emulator.client("logs")
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/teams/etl")["logStreams"]]
    assert streams == [f"nightly/applications/{app_id}/jobs/{by_run}/SPARK_DRIVER/stderr"]
    assert stream_messages(aws_emulator, "/teams/etl", streams[0]) == ["err"]
    app_stream = f"/applications/{app_id}/jobs/{by_app}/SPARK_DRIVER/stdout"
    assert stream_messages(aws_emulator, "/app/level", app_stream) == ["out"]


def test_reset_drops_scripts_and_timings(aws_emulator: Any, serverless: Any, clock: ManualClock) -> None:
    aws_emulator.emr.script_job_run(outcome="FAILED")
    aws_emulator.emr.set_timings(job_running=100)
    aws_emulator.reset()
    app_id = started_app(serverless, clock)
    run_id = start_run(serverless, app_id)
    clock.advance(5)
    assert run_of(serverless, app_id, run_id)["state"] == "SUCCESS"


# -- what a trigger reads, through aiobotocore ---------------------------------------------------
@pytest.fixture
def quick(aws_emulator: Any) -> None:
    aws_emulator.emr.set_timings(
        job_submitted=0.02, job_pending=0.02, job_scheduled=0.02, job_running=0.3, application_starting=0.05
    )


async def test_a_trigger_sees_the_run_progress_and_its_logs(
    aws_emulator: Any, serverless: Any, quick: None
) -> None:
    aws_emulator.emr.script_job_run(
        outcome="FAILED", message="boom", stdout=["one", "two"], log_interval=0.05
    )
    app_id = create_app(serverless)  # CREATED: auto-started by the submission
    states: list[str] = []
    async with (
        aws_emulator.async_client("emr-serverless") as client,
        aws_emulator.async_client("logs") as logs,
    ):
        monitoring = {"cloudWatchLoggingConfiguration": {"enabled": True}}
        submitted = await client.start_job_run(
            applicationId=app_id,
            clientToken="trigger-test",
            executionRoleArn=ROLE_ARN,
            jobDriver={"sparkSubmit": {"entryPoint": "s3://code/job.py"}},
            configurationOverrides={"monitoringConfiguration": monitoring},
        )
        run_id = submitted["jobRunId"]
        for _ in range(200):
            run = (await client.get_job_run(applicationId=app_id, jobRunId=run_id))["jobRun"]
            if not states or states[-1] != run["state"]:
                states.append(run["state"])
            if run["state"] in ("SUCCESS", "FAILED", "CANCELLED"):
                break
            await asyncio.sleep(0.01)
        events = await logs.get_log_events(
            logGroupName="/aws/emr-serverless",
            logStreamName=f"/applications/{app_id}/jobs/{run_id}/SPARK_DRIVER/stdout",
            startFromHead=True,
        )
        listed = await client.list_job_runs(applicationId=app_id, states=["FAILED"])

    # Real time passes here, so which states a poll catches depends on the machine's load; the
    # exact sequence is asserted by the clock-driven tests above.
    order = ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "FAILED"]
    assert states == sorted(states, key=order.index)
    assert len(states) > 1
    assert states[-1] == "FAILED"
    assert run["stateDetails"] == "boom"
    assert [event["message"] for event in events["events"]] == ["one", "two"]
    assert [summary["id"] for summary in listed["jobRuns"]] == [run_id]
