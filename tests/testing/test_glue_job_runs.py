"""Glue job runs in the embedded AWS: AWS's lifecycle, fields, limits and errors, through boto3
and aiobotocore against the server, plus the timeline rules the emulator applies."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from airflow_provider_mwaaops.testing.extensions.glue_control import GlueControl
from airflow_provider_mwaaops.testing.extensions.glue_job_runs import RunLife
from airflow_provider_mwaaops.testing.extensions.glue_scripts import (
    DEFAULT_FAILURE_MESSAGE,
    SCRIPT_ARGUMENT,
    JobRunScript,
    ScriptError,
)

FAST = {"starting_seconds": 0.1, "running_seconds": 0.3, "stopping_seconds": 0.1}


@pytest.fixture
def glue(aws_emulator):
    return aws_emulator.client("glue")


def create_job(glue, name="etl", **kwargs):
    glue.create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://scripts/{name}.py"},
        **kwargs,
    )
    return name


def states_until_done(glue, job, run_id, timeout=10.0):
    """Every distinct JobRunState seen while polling, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED"):
            return seen
        time.sleep(0.03)
    raise AssertionError(f"{run_id} still {seen[-1]}")


def error_of(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]


# -- lifecycle and fields --------------------------------------------------------------------------------
def test_a_run_goes_starting_running_succeeded_with_aws_fields(aws_emulator, glue):
    job = create_job(glue)
    aws_emulator.glue.script_job(job, starting_seconds=0.3, running_seconds=0.3)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]

    starting = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    assert starting["JobRunState"] == "STARTING"
    assert "CompletedOn" not in starting
    assert starting["ExecutionTime"] == 0
    assert states_until_done(glue, job, run_id) == ["STARTING", "RUNNING", "SUCCEEDED"]

    done = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    assert done["Id"] == run_id
    assert done["Attempt"] == 0
    assert done["JobName"] == job
    assert done["CompletedOn"] - done["StartedOn"] >= timedelta(seconds=0.59)
    assert done["ExecutionTime"] == 1  # whole seconds, rounded up
    assert done["LastModifiedOn"] == done["CompletedOn"]
    assert done["LogGroupName"] == "/aws-glue/jobs"
    assert (done["GlueVersion"], done["Timeout"]) == ("5.1", 480)
    assert (done["MaxCapacity"], done["AllocatedCapacity"]) == (10.0, 10)
    assert "ErrorMessage" not in done
    assert "Arguments" not in done
    assert "DPUSeconds" not in done


def test_job_fields_shape_the_run(aws_emulator, glue):
    job = create_job(glue, GlueVersion="4.0", WorkerType="G.2X", NumberOfWorkers=4, ExecutionClass="FLEX")
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=0.2)
    run_id = glue.start_job_run(JobName=job)["JobRunId"]
    assert aws_emulator.glue.wait_for_job_run(job, run_id) == "SUCCEEDED"
    run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    assert run["Timeout"] == 2880  # Glue 4.0 and earlier
    assert (run["WorkerType"], run["NumberOfWorkers"], run["MaxCapacity"]) == ("G.2X", 4, 8.0)
    assert run["ExecutionClass"] == "FLEX"
    assert run["DPUSeconds"] == run["ExecutionTime"] * 8.0  # FLEX runs report DPUSeconds


def test_python_shell_runs_log_to_python_jobs_and_default_to_a_sixteenth_dpu(aws_emulator, glue):
    glue.create_job(Name="shell", Role="r", Command={"Name": "pythonshell", "ScriptLocation": "s3://s/a.py"})
    run = glue.get_job_run(JobName="shell", RunId=glue.start_job_run(JobName="shell")["JobRunId"])["JobRun"]
    assert (run["LogGroupName"], run["MaxCapacity"]) == ("/aws-glue/python-jobs", 0.0625)


def test_a_scripted_failure_then_the_next_run_follows_the_job_script(aws_emulator, glue):
    job = create_job(glue)
    aws_emulator.glue.script_job(job, **FAST)
    aws_emulator.glue.script_next_runs(
        job, {"outcome": "FAILED", "error_message": "AnalysisException: no table"}
    )
    first = glue.start_job_run(JobName=job)["JobRunId"]
    assert aws_emulator.glue.wait_for_job_run(job, first) == "FAILED"
    failed = glue.get_job_run(JobName=job, RunId=first)["JobRun"]
    assert failed["ErrorMessage"] == "AnalysisException: no table"

    second = glue.start_job_run(JobName=job, JobRunId=first)["JobRunId"]
    assert aws_emulator.glue.wait_for_job_run(job, second) == "SUCCEEDED"
    retry = glue.get_job_run(JobName=job, RunId=second)["JobRun"]
    assert retry["PreviousRunId"] == first
    assert "ErrorMessage" not in retry


@pytest.mark.parametrize(
    ("outcome", "message"),
    [("ERROR", DEFAULT_FAILURE_MESSAGE), ("TIMEOUT", None), ("FAILED", DEFAULT_FAILURE_MESSAGE)],
)
def test_outcomes_scripted_through_default_arguments(aws_emulator, glue, outcome, message):
    script = GlueControl.run_arguments(outcome=outcome, starting_seconds=0, running_seconds=0.1)
    job = create_job(glue, DefaultArguments={"--table": "orders", **script})
    run_id = glue.start_job_run(JobName=job, Arguments={"--day": "2026-01-01"})["JobRunId"]
    assert aws_emulator.glue.wait_for_job_run(job, run_id) == outcome
    run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
    assert run.get("ErrorMessage") == message
    # GetJobRun lists the run's own Arguments, not the job's DefaultArguments
    assert run["Arguments"] == {"--day": "2026-01-01"}


def test_run_arguments_override_the_queued_and_job_scripts(aws_emulator, glue):
    job = create_job(glue)
    aws_emulator.glue.script_job(job, running_seconds=30)
    aws_emulator.glue.script_next_runs(job, {"outcome": "FAILED"})
    arguments = {SCRIPT_ARGUMENT: json.dumps({"running_seconds": 0.1, "starting_seconds": 0})}
    run_id = glue.start_job_run(JobName=job, Arguments=arguments)["JobRunId"]
    assert aws_emulator.glue.wait_for_job_run(job, run_id, timeout=5) == "FAILED"


def test_get_job_runs_lists_newest_first(aws_emulator, glue):
    job = create_job(glue, ExecutionProperty={"MaxConcurrentRuns": 3})
    ids = [glue.start_job_run(JobName=job)["JobRunId"] for _ in range(3)]
    assert [run["Id"] for run in glue.get_job_runs(JobName=job)["JobRuns"]] == ids[::-1]


# -- concurrency -----------------------------------------------------------------------------------------
def test_max_concurrent_runs_defaults_to_one(aws_emulator, glue):
    job = create_job(glue)
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=0.3)
    first = glue.start_job_run(JobName=job)["JobRunId"]
    error = error_of(lambda: glue.start_job_run(JobName=job))
    assert error == {
        "Code": "ConcurrentRunsExceededException",
        "Message": f"Concurrent runs exceeded for {job}",
    }
    aws_emulator.glue.wait_for_job_run(job, first)
    glue.start_job_run(JobName=job)  # the slot is free again


def test_max_concurrent_runs_from_the_job(aws_emulator, glue):
    job = create_job(glue, ExecutionProperty={"MaxConcurrentRuns": 2})
    glue.start_job_run(JobName=job)
    glue.start_job_run(JobName=job)
    assert error_of(lambda: glue.start_job_run(JobName=job))["Code"] == "ConcurrentRunsExceededException"


@pytest.mark.parametrize("where", ["job", "run"])
def test_queued_runs_wait_and_start_in_order_when_a_slot_frees(aws_emulator, glue, where):
    job = create_job(glue, **({"JobRunQueuingEnabled": True} if where == "job" else {}))
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=0.25)
    queued = {"JobRunQueuingEnabled": True} if where == "run" else {}
    ids = [glue.start_job_run(JobName=job, **queued)["JobRunId"] for _ in range(3)]
    states = [glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] for run_id in ids]
    assert states == ["RUNNING", "WAITING", "WAITING"]
    if where == "job":
        assert glue.get_job(JobName=job)["Job"]["JobRunQueuingEnabled"] is True
    for run_id in ids:
        assert aws_emulator.glue.wait_for_job_run(job, run_id) == "SUCCEEDED"
    runs = {run["Id"]: run for run in glue.get_job_runs(JobName=job)["JobRuns"]}
    # one at a time, first come first served: each started when the one before it ended
    for earlier, later in itertools.pairwise(ids):
        assert runs[later]["CompletedOn"] - runs[earlier]["CompletedOn"] >= timedelta(seconds=0.24)
    assert all(runs[run_id]["JobRunQueuingEnabled"] is True for run_id in ids)


def test_raising_max_concurrent_runs_lets_waiting_runs_start(aws_emulator, glue):
    job = create_job(glue, JobRunQueuingEnabled=True)
    aws_emulator.glue.script_job(job, running_seconds=None)
    first = glue.start_job_run(JobName=job)["JobRunId"]
    second = glue.start_job_run(JobName=job)["JobRunId"]
    assert glue.get_job_run(JobName=job, RunId=second)["JobRun"]["JobRunState"] == "WAITING"
    described = glue.get_job(JobName=job)["Job"]
    glue.update_job(
        JobName=job,
        JobUpdate={
            "Role": described["Role"],
            "Command": described["Command"],
            "ExecutionProperty": {"MaxConcurrentRuns": 2},
            "JobRunQueuingEnabled": True,
        },
    )
    assert glue.get_job_run(JobName=job, RunId=second)["JobRun"]["JobRunState"] == "STARTING"
    glue.batch_stop_job_run(JobName=job, JobRunIds=[first, second])


# -- stopping --------------------------------------------------------------------------------------------
def test_batch_stop_job_run_stops_a_run_that_would_run_forever(aws_emulator, glue):
    job = create_job(glue, ExecutionProperty={"MaxConcurrentRuns": 3})
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=None, stopping_seconds=0.2)
    hanging = glue.start_job_run(JobName=job)["JobRunId"]
    aws_emulator.glue.script_next_runs(job, {"running_seconds": 0})
    finished = glue.start_job_run(JobName=job)["JobRunId"]
    time.sleep(0.1)
    assert glue.get_job_run(JobName=job, RunId=hanging)["JobRun"]["JobRunState"] == "RUNNING"

    answer = glue.batch_stop_job_run(JobName=job, JobRunIds=[hanging, finished, "jr_unknown"])
    assert answer["SuccessfulSubmissions"] == [{"JobName": job, "JobRunId": hanging}]
    assert [(e["JobRunId"], e["ErrorDetail"]["ErrorCode"]) for e in answer["Errors"]] == [
        (finished, "InvalidInputException"),
        ("jr_unknown", "EntityNotFoundException"),
    ]
    assert states_until_done(glue, job, hanging) == ["STOPPING", "STOPPED"]
    stopped = glue.get_job_run(JobName=job, RunId=hanging)["JobRun"]
    assert "ErrorMessage" not in stopped
    assert stopped["ExecutionTime"] >= 1


def test_batch_stop_job_run_of_an_unknown_job_reports_each_run(glue):
    answer = glue.batch_stop_job_run(JobName="missing", JobRunIds=["jr_1"])
    assert answer["SuccessfulSubmissions"] == []
    assert answer["Errors"][0]["ErrorDetail"]["ErrorCode"] == "EntityNotFoundException"


def test_a_waiting_run_can_be_stopped(aws_emulator, glue):
    job = create_job(glue, JobRunQueuingEnabled=True)
    aws_emulator.glue.script_job(job, running_seconds=None, stopping_seconds=0)
    first = glue.start_job_run(JobName=job)["JobRunId"]
    waiting = glue.start_job_run(JobName=job)["JobRunId"]
    glue.batch_stop_job_run(JobName=job, JobRunIds=[waiting, first])
    assert aws_emulator.glue.wait_for_job_run(job, waiting) == "STOPPED"
    assert aws_emulator.glue.wait_for_job_run(job, first) == "STOPPED"


# -- bad input -------------------------------------------------------------------------------------------
def test_unknown_job_is_entity_not_found_with_aws_message(glue):
    error = error_of(lambda: glue.start_job_run(JobName="missing"))
    assert error == {
        "Code": "EntityNotFoundException",
        "Message": "Failed to start job run due to missing metadata.",
    }
    assert error_of(lambda: glue.get_job_runs(JobName="missing"))["Code"] == "EntityNotFoundException"


def test_arguments_must_map_strings_to_strings_on_the_server_too(aws_emulator, glue):
    job = create_job(glue)
    with pytest.raises(ParamValidationError):
        glue.start_job_run(JobName=job, Arguments={"--n": 1})  # boto3 checks before sending
    unchecked = boto3.client(
        "glue",
        region_name=aws_emulator.region_name,
        endpoint_url=aws_emulator.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(parameter_validation=False),
    )
    error = error_of(lambda: unchecked.start_job_run(JobName=job, Arguments={"--n": 1}))
    assert error["Code"] == "InvalidInputException"
    assert "'--n'" in error["Message"]
    assert glue.get_job_runs(JobName=job)["JobRuns"] == []


def test_a_malformed_script_is_rejected_naming_the_problem(aws_emulator, glue):
    job = create_job(glue)
    bad = {SCRIPT_ARGUMENT: json.dumps({"runing_seconds": 1})}
    error = error_of(lambda: glue.start_job_run(JobName=job, Arguments=bad))
    assert error["Code"] == "InvalidInputException"
    assert "runing_seconds" in error["Message"]
    with pytest.raises(ScriptError, match="outcome"):
        aws_emulator.glue.script_job(job, outcome="MAYBE")
    with pytest.raises(ScriptError, match="unknown"):
        aws_emulator.glue.script_next_runs(job, {"duration": 1})


# -- the reads a trigger makes, through aiobotocore ------------------------------------------------------
async def test_aiobotocore_reads_the_run_as_it_progresses(aws_emulator, glue):
    job = create_job(glue)
    aws_emulator.glue.script_job(
        job, starting_seconds=0.2, running_seconds=0.2, outcome="FAILED", error_message="x"
    )
    seen = []
    async with aws_emulator.async_client("glue") as client:
        await client.get_job(JobName=job)  # the client's first call loads botocore's models
        run_id = glue.start_job_run(JobName=job)["JobRunId"]
        for _ in range(200):
            run = (await client.get_job_run(JobName=job, RunId=run_id))["JobRun"]
            if not seen or seen[-1] != run["JobRunState"]:
                seen.append(run["JobRunState"])
            if run["JobRunState"] == "FAILED":
                break
            await _sleep(0.03)
        runs = (await client.get_job_runs(JobName=job, MaxResults=10))["JobRuns"]
    assert seen == ["STARTING", "RUNNING", "FAILED"]
    assert run["ErrorMessage"] == "x"
    assert runs[0]["Id"] == run_id


async def _sleep(seconds):
    import asyncio

    await asyncio.sleep(seconds)


# -- the timeline, without waiting for the clock ---------------------------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def life(script: JobRunScript, timeout_minutes: float = 480.0, started: bool = True) -> RunLife:
    return RunLife(
        script=script,
        job=None,
        created_at=T0,
        started_at=T0 if started else None,
        timeout_minutes=timeout_minutes,
        arguments={},
        effective_arguments={},
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_run_timeout_ends_a_run_that_would_run_on():
    hanging = life(JobRunScript(starting_seconds=1, running_seconds=None), timeout_minutes=1)
    assert [hanging.state_at(at(s)) for s in (0, 30, 59.9, 60)] == [
        "STARTING",
        "RUNNING",
        "RUNNING",
        "TIMEOUT",
    ]
    assert hanging.error_message(at(60)) is None  # AWS documents no ErrorMessage for TIMEOUT
    assert hanging.execution_seconds(at(61)) == 60
    too_long = life(JobRunScript(starting_seconds=0, running_seconds=120), timeout_minutes=1)
    assert too_long.state_at(at(90)) == "TIMEOUT"


def test_a_stop_during_starting_skips_running():
    run = life(JobRunScript(starting_seconds=2, stopping_seconds=1))
    run.stop_at = at(1)
    assert [run.state_at(at(s)) for s in (0.5, 1, 1.9, 2)] == ["STARTING", "STOPPING", "STOPPING", "STOPPED"]
    assert run.running_window() is None


def test_a_waiting_run_starts_where_its_timeline_says():
    run = life(JobRunScript(starting_seconds=1, running_seconds=1), started=False)
    assert run.state_at(at(100)) == "WAITING"
    run.started_at = at(10)
    assert [run.state_at(at(s)) for s in (9, 10, 11, 12)] == ["WAITING", "STARTING", "RUNNING", "SUCCEEDED"]


def test_runs_started_in_process_through_moto_follow_scripts_too(aws_emulator, glue):
    job = create_job(glue)
    aws_emulator.glue.script_job(job, starting_seconds=0, running_seconds=0.1, outcome="FAILED")
    backend = aws_emulator.glue.backend()
    run_id = backend.start_job_run(job, None, None, None, None, None, None, None, None, None)
    assert aws_emulator.glue.wait_for_job_run(job, run_id) == "FAILED"
