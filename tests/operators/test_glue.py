"""ResumableGlueJobOperator under dag.test() against the emulator's Glue job runs: exactly one run
per task instance, linked reruns, waiting for a run slot while deferred, stop on kill, errors."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from airflow_provider_mwaaops.compat import DAG, task
from airflow_provider_mwaaops.hooks.glue import TAG_ARGUMENT
from airflow_provider_mwaaops.operators.glue import ResumableGlueJobOperator
from airflow_provider_mwaaops.testing.dag_runner import task_return_values
from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger

JOB = "nightly-etl"
QUICK = {"starting_seconds": 0.1, "running_seconds": 0.6}


@pytest.fixture
def glue(aws_emulator):
    client = aws_emulator.client("glue")
    client.create_job(Name=JOB, Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://s/etl.py"})
    aws_emulator.glue.script_job(JOB, **QUICK)
    return client


def job_runs(glue, job: str = JOB) -> list[dict[str, Any]]:
    """Every run of the job, newest first, as GetJobRuns lists them."""
    return glue.get_job_runs(JobName=job)["JobRuns"]


def make_dag(dag_id: str, **operator_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        ResumableGlueJobOperator(
            task_id="etl",
            job_name=operator_kwargs.pop("job_name", JOB),
            waiter_delay=0.2,
            retry_delay=datetime.timedelta(0),
            **operator_kwargs,
        )
    return dag


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    """The text of every exception execute / execute_complete raised."""
    seen: list[str] = []
    for name in ("execute", "execute_complete"):
        real = getattr(ResumableGlueJobOperator, name)

        def recorded(self, *args, _real=real, **kwargs):
            try:
                return _real(self, *args, **kwargs)
            except Exception as exc:
                if type(exc).__name__ not in ("TaskDeferred",):
                    seen.append(str(exc))
                raise

        monkeypatch.setattr(ResumableGlueJobOperator, name, recorded)
    return seen


# -- success --------------------------------------------------------------------------------------
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_success_runs_the_job_once_and_pushes_the_run(dag_runner, glue, deferrable):
    dag = make_dag(f"glue_ok_{deferrable}", deferrable=deferrable, script_args={"--day": "2026-01-02"})

    result = dag_runner(dag)

    assert result.task_states == {"etl": "success"}
    [run] = job_runs(glue)
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["Arguments"]["--day"] == "2026-01-02"
    assert run["Arguments"][TAG_ARGUMENT].endswith("#1")
    assert task_return_values(result.dag_id, result.run_id)["etl"] == run["Id"]
    assert task_return_values(result.dag_id, result.run_id, key="job_run_state")["etl"] == "SUCCEEDED"
    assert task_return_values(result.dag_id, result.run_id, key="execution_time")["etl"] >= 1


# -- exactly one run --------------------------------------------------------------------------------
def test_worker_crash_right_after_start_job_run_then_retry_leaves_one_run(dag_runner, glue, monkeypatch):
    """The first try dies right after StartJobRun returned (nothing recorded anywhere); the retry
    finds that run through its tag and attaches to it."""
    real_start = ResumableGlueJobOperator._start
    started: list[str | None] = []

    def die_after_start(self, hook, request, decision):
        run_id = real_start(self, hook, request, decision)
        started.append(run_id)
        if len(started) == 1:
            raise RuntimeError("worker died right after StartJobRun")
        return run_id

    monkeypatch.setattr(ResumableGlueJobOperator, "_start", die_after_start)
    dag = make_dag("glue_worker_crash", deferrable=True, retries=1)

    result = dag_runner(dag)

    assert result.task_states == {"etl": "success"}
    assert len(started) == 1  # the retry never called StartJobRun
    [run] = job_runs(glue)
    assert run["Id"] == started[0]
    assert run["JobRunState"] == "SUCCEEDED"
    assert task_return_values(result.dag_id, result.run_id)["etl"] == run["Id"]


def test_failed_run_then_retry_starts_a_new_run_linked_by_job_run_id(dag_runner, aws_emulator, glue, errors):
    aws_emulator.glue.script_next_runs(JOB, {"outcome": "FAILED", "error_message": "Column 'amount' missing"})
    dag = make_dag("glue_failed_then_retry", deferrable=True, retries=1)

    result = dag_runner(dag)

    assert result.task_states == {"etl": "success"}
    second, first = job_runs(glue)
    assert first["JobRunState"] == "FAILED"
    assert second["JobRunState"] == "SUCCEEDED"
    assert second["PreviousRunId"] == first["Id"]
    assert second["Arguments"][TAG_ARGUMENT].endswith("#2")
    assert any("Column 'amount' missing" in text and first["Id"] in text for text in errors)


def test_rerun_failed_false_fails_the_retry_without_a_new_run(dag_runner, aws_emulator, glue, errors):
    aws_emulator.glue.script_next_runs(JOB, {"outcome": "FAILED", "error_message": "bad input"})
    dag = make_dag("glue_no_rerun", deferrable=True, retries=1, rerun_failed=False)

    result = dag_runner(dag)

    assert result.task_states == {"etl": "failed"}
    assert len(job_runs(glue)) == 1
    assert "bad input" in errors[-1]


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_error_carries_glue_error_message_run_id_and_console_link(
    dag_runner, aws_emulator, glue, errors, deferrable
):
    aws_emulator.glue.script_job(
        JOB, outcome="FAILED", error_message="AnalysisException: table t not found", **QUICK
    )
    dag = make_dag(f"glue_error_{deferrable}", deferrable=deferrable)

    result = dag_runner(dag)

    assert result.task_states == {"etl": "failed"}
    [run] = job_runs(glue)
    text = errors[-1]
    assert "AnalysisException: table t not found" in text
    assert run["Id"] in text
    assert "ended FAILED" in text
    assert f"#/job/{JOB}/run/{run['Id']}" in text
    assert "Trigger failure" not in text


# -- MaxConcurrentRuns ------------------------------------------------------------------------------
@task
def hold_slot() -> None:
    """Another team's run of the same job (MaxConcurrentRuns 1) that is still running."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    AwsBaseHook(client_type="glue").conn.start_job_run(JobName=JOB)


def test_concurrent_runs_exceeded_is_waited_out_while_deferred(dag_runner, aws_emulator, glue, monkeypatch):
    aws_emulator.glue.script_next_runs(JOB, {"starting_seconds": 0.1, "running_seconds": 2.0})
    start_calls: list[bool] = []
    real = GlueJobRunTrigger._start_when_free

    async def counted(self, client):
        start_calls.append(self.start_request is not None)
        return await real(self, client)

    monkeypatch.setattr(GlueJobRunTrigger, "_start_when_free", counted)
    with DAG("glue_slot_wait", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        hold = hold_slot()
        etl = ResumableGlueJobOperator(task_id="etl", job_name=JOB, deferrable=True, waiter_delay=0.2)
        hold >> etl

    result = dag_runner(dag)

    assert result.task_states == {"hold_slot": "success", "etl": "success"}
    ours, theirs = job_runs(glue)
    assert ours["Arguments"][TAG_ARGUMENT].endswith("#1")
    assert ours["StartedOn"] >= theirs["CompletedOn"]  # started by the trigger once the slot freed
    assert len(start_calls) >= 2


def test_no_free_slot_within_the_bound_fails_clearly(dag_runner, aws_emulator, glue, errors):
    aws_emulator.glue.script_next_runs(JOB, {"starting_seconds": 0, "running_seconds": None})
    glue.start_job_run(JobName=JOB)
    dag = make_dag("glue_slot_bound", deferrable=True, concurrent_runs_wait=1.0)

    result = dag_runner(dag)

    assert result.task_states == {"etl": "failed"}
    assert len(job_runs(glue)) == 1
    assert "no free run slot" in errors[-1]
    assert "MaxConcurrentRuns" in errors[-1]


# -- kill -------------------------------------------------------------------------------------------
def test_sync_on_kill_stops_the_run(aws_emulator, glue):
    run_id = glue.start_job_run(JobName=JOB, Arguments=aws_emulator.glue.run_arguments(running_seconds=None))[
        "JobRunId"
    ]
    operator = ResumableGlueJobOperator(task_id="k", job_name=JOB)
    operator.job_run_id = run_id

    operator.on_kill()

    assert aws_emulator.glue.wait_for_job_run(JOB, run_id) == "STOPPED"


def test_trigger_on_kill_stops_the_run_and_can_be_switched_off(aws_emulator, glue):
    runs = [
        glue.start_job_run(JobName=JOB, Arguments=aws_emulator.glue.run_arguments(running_seconds=None))[
            "JobRunId"
        ]
        for _ in range(1)
    ]
    glue.update_job(
        JobName=JOB,
        JobUpdate={
            "Role": "r",
            "Command": {"Name": "glueetl"},
            "ExecutionProperty": {"MaxConcurrentRuns": 2},
        },
    )
    runs.append(
        glue.start_job_run(JobName=JOB, Arguments=aws_emulator.glue.run_arguments(running_seconds=None))[
            "JobRunId"
        ]
    )

    asyncio.run(GlueJobRunTrigger(job_name=JOB, job_run_id=runs[0], stop_on_kill=True).on_kill())
    asyncio.run(GlueJobRunTrigger(job_name=JOB, job_run_id=runs[1], stop_on_kill=False).on_kill())

    assert aws_emulator.glue.wait_for_job_run(JOB, runs[0]) == "STOPPED"
    assert glue.get_job_run(JobName=JOB, RunId=runs[1])["JobRun"]["JobRunState"] == "RUNNING"


# -- bad input --------------------------------------------------------------------------------------
def test_non_string_script_args_fail_before_any_aws_call(dag_runner, glue, errors):
    dag = make_dag("glue_bad_args", script_args={"--rows": 5})

    result = dag_runner(dag)

    assert result.task_states == {"etl": "failed"}
    assert job_runs(glue) == []
    assert "'--rows'" in errors[-1]
    assert "strings" in errors[-1]


def test_unknown_job_is_named(dag_runner, glue, errors):
    dag = make_dag("glue_unknown_job", job_name="no-such-job")

    result = dag_runner(dag)

    assert result.task_states == {"etl": "failed"}
    assert "EntityNotFoundException" in errors[-1]


def test_a_job_with_run_queuing_waits_in_waiting_and_is_simply_waited_on(dag_runner, aws_emulator, glue):
    glue.update_job(
        JobName=JOB,
        JobUpdate={"Role": "r", "Command": {"Name": "glueetl"}, "JobRunQueuingEnabled": True},
    )
    aws_emulator.glue.script_next_runs(JOB, {"starting_seconds": 0, "running_seconds": 3.0})
    with DAG("glue_queued", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        etl = ResumableGlueJobOperator(task_id="etl", job_name=JOB, deferrable=True, waiter_delay=0.2)
        hold_slot() >> etl

    result = dag_runner(dag)

    assert result.task_states == {"hold_slot": "success", "etl": "success"}
    ours, theirs = job_runs(glue)
    assert ours["Arguments"][TAG_ARGUMENT].endswith("#1")
    assert ours["JobRunState"] == "SUCCEEDED"
    assert ours["StartedOn"] < theirs["CompletedOn"]  # accepted (WAITING) while the slot was taken


def test_on_retry_restart_stops_the_active_run_and_starts_a_new_one(
    dag_runner, aws_emulator, glue, monkeypatch
):
    aws_emulator.glue.script_next_runs(JOB, {"starting_seconds": 0, "running_seconds": None})
    real_start = ResumableGlueJobOperator._start
    calls: list[str | None] = []

    def die_after_start(self, hook, request, decision):
        calls.append(real_start(self, hook, request, decision))
        if len(calls) == 1:
            raise RuntimeError("worker died right after StartJobRun")
        return calls[-1]

    monkeypatch.setattr(ResumableGlueJobOperator, "_start", die_after_start)
    dag = make_dag("glue_restart", deferrable=True, retries=1, on_retry="restart")

    result = dag_runner(dag)

    assert result.task_states == {"etl": "success"}
    second, first = job_runs(glue)  # the second may be started by the trigger once a slot frees
    assert first["Id"] == calls[0]
    assert first["JobRunState"] in ("STOPPING", "STOPPED")
    assert second["PreviousRunId"] == first["Id"]
    assert second["JobRunState"] == "SUCCEEDED"
