"""A Glue job run's output and error lines in the embedded AWS's CloudWatch Logs: where Glue puts
them, and that a follower sees them arrive over the run's life (boto3 and aiobotocore)."""

from __future__ import annotations

import asyncio
import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def glue(aws_emulator):
    return aws_emulator.client("glue")


@pytest.fixture
def logs(aws_emulator):
    return aws_emulator.client("logs")


def create_job(glue, name="etl", command="glueetl", **kwargs):
    glue.create_job(Name=name, Role="r", Command={"Name": command, "ScriptLocation": "s3://s/a.py"}, **kwargs)
    return name


def messages(logs, group, stream):
    return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]


def test_a_follower_sees_output_lines_arrive_over_the_run(aws_emulator, glue, logs):
    job = create_job(glue)
    lines = [f"processed batch {n}" for n in range(6)]
    aws_emulator.glue.script_job(job, starting_seconds=0.1, running_seconds=0.6, output_lines=lines)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]

    seen: list[str] = []
    batches: list[int] = []
    token = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        if not _stream_exists(logs, run_id):  # the stream appears once the run has started
            time.sleep(0.03)
            continue
        page = logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=run_id, **kwargs)
        new = [event["message"] for event in page["events"]]
        if new:
            batches.append(len(new))
        seen += new
        token = page["nextForwardToken"]
        state = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"]
        if state == "SUCCEEDED" and len(seen) == len(lines):
            break
        time.sleep(0.04)
    assert seen == lines
    assert len(batches) > 1, "all lines arrived at once"


def _stream_exists(logs, run_id):
    try:
        streams = logs.describe_log_streams(logGroupName="/aws-glue/jobs/output")["logStreams"]
    except ClientError:
        return False
    return run_id in {stream["logStreamName"] for stream in streams}


def test_error_lines_then_the_error_message_in_the_error_group(aws_emulator, glue, logs):
    job = create_job(glue)
    aws_emulator.glue.script_job(
        job,
        starting_seconds=0,
        running_seconds=0.2,
        outcome="FAILED",
        error_message="Py4JJavaError: An error occurred",
        error_lines=["WARN reading s3://in", "ERROR task 3 failed"],
        output_lines=["stdout line"],
    )
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    aws_emulator.glue.wait_for_job_run(job, run_id)
    errors = logs.get_log_events(logGroupName="/aws-glue/jobs/error", logStreamName=run_id)["events"]
    assert [e["message"] for e in errors] == [
        "WARN reading s3://in",
        "ERROR task 3 failed",
        "Py4JJavaError: An error occurred",
    ]
    assert [e["timestamp"] for e in errors] == sorted(e["timestamp"] for e in errors)
    run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    assert errors[-1]["timestamp"] == int(run["CompletedOn"].timestamp() * 1000)
    assert messages(logs, "/aws-glue/jobs/output", run_id) == ["stdout line"]


def test_a_stopped_run_writes_no_line_after_the_stop(aws_emulator, glue, logs):
    job = create_job(glue)
    aws_emulator.glue.script_job(
        job, starting_seconds=0, running_seconds=None, line_template="{job_name} row {n}", lines_per_second=20
    )
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    time.sleep(0.3)
    glue.batch_stop_job_run(JobName=job, JobRunIds=[run_id])
    stopped_at = time.time() * 1000
    aws_emulator.glue.wait_for_job_run(job, run_id)
    time.sleep(0.2)
    events = logs.filter_log_events(logGroupName="/aws-glue/jobs/output", logStreamNames=[run_id])["events"]
    assert 4 <= len(events) <= 10
    assert [e["message"] for e in events] == [f"{job} row {n}" for n in range(len(events))]
    assert max(e["timestamp"] for e in events) <= stopped_at


def test_continuous_logging_also_writes_the_driver_stream(aws_emulator, glue, logs):
    job = create_job(
        glue,
        DefaultArguments={
            "--enable-continuous-cloudwatch-log": "true",
            "--continuous-log-logGroup": "/custom/glue",
            "--continuous-log-logStreamPrefix": "nightly-",
        },
    )
    aws_emulator.glue.script_job(
        job, starting_seconds=0, running_seconds=0.1, output_lines=["o"], error_lines=["e"]
    )
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    aws_emulator.glue.wait_for_job_run(job, run_id)
    assert sorted(messages(logs, "/custom/glue", f"nightly-{run_id}")) == ["e", "o"]
    assert messages(logs, "/aws-glue/jobs/output", run_id) == ["o"]


def test_custom_log_group_prefix_and_python_shell_groups(aws_emulator, glue, logs):
    create_job(glue, "spark", DefaultArguments={"--custom-logGroup-prefix": "/team/etl"})
    create_job(glue, "shell", command="pythonshell")
    for job in ("spark", "shell"):
        aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=0.1, output_lines=[job])
    spark = glue.start_job_run(JobName="spark")["JobRunId"]
    shell = glue.start_job_run(JobName="shell")["JobRunId"]
    aws_emulator.glue.wait_for_job_run("spark", spark)
    aws_emulator.glue.wait_for_job_run("shell", shell)
    assert glue.get_job_run(JobName="spark", RunId=spark)["JobRun"]["LogGroupName"] == "/team/etl"
    assert messages(logs, "/team/etl/output", spark) == ["spark"]
    assert messages(logs, "/aws-glue/python-jobs/output", shell) == ["shell"]


def test_a_waiting_run_has_no_stream_yet(aws_emulator, glue, logs):
    job = create_job(glue, JobRunQueuingEnabled=True)
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=None)
    first = glue.start_job_run(JobName=job)["JobRunId"]
    waiting = glue.start_job_run(JobName=job)["JobRunId"]
    streams = logs.describe_log_streams(logGroupName="/aws-glue/jobs/output")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [first]
    glue.batch_stop_job_run(JobName=job, JobRunIds=[first, waiting])


async def test_aiobotocore_follows_the_lines_with_filter_log_events(aws_emulator, glue):
    job = create_job(glue)
    lines = [f"line {n}" for n in range(5)]
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=0.5, output_lines=lines)
    seen: list[str] = []
    async with aws_emulator.async_client("logs") as client:
        await client.describe_log_groups()  # the client's first call loads botocore's models
        run_id = glue.start_job_run(JobName=job)["JobRunId"]
        start_time = 0
        for _ in range(100):
            page = await client.filter_log_events(
                logGroupName="/aws-glue/jobs/output", logStreamNames=[run_id], startTime=start_time
            )
            seen += [e["message"] for e in page["events"]]
            if page["events"]:
                start_time = page["events"][-1]["timestamp"] + 1
            if len(seen) == len(lines):
                break
            await asyncio.sleep(0.05)
        first_events = await client.get_log_events(
            logGroupName="/aws-glue/jobs/output", logStreamName=run_id, startFromHead=True, limit=2
        )
    assert seen == lines
    assert [e["message"] for e in first_events["events"]] == lines[:2]
