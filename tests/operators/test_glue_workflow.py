"""ResumableGlueWorkflowOperator under dag.test() against the emulator's Glue workflows: a failed
node fails the task, the retry resumes only the failed node and what follows it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from airflow_provider_mwaaops.compat import DAG
from airflow_provider_mwaaops.hooks.glue import TAG_RUN_PROPERTY
from airflow_provider_mwaaops.operators.glue import ResumableGlueWorkflowOperator
from airflow_provider_mwaaops.testing.dag_runner import task_return_values

WORKFLOW = "nightly"
JOBS = ("extract", "transform", "load")
QUICK = {"starting_seconds": 0.05, "running_seconds": 0.3}


@pytest.fixture
def glue(aws_emulator):
    """extract -> transform -> load, each started when the one before it SUCCEEDED."""
    client = aws_emulator.client("glue")
    for name in JOBS:
        client.create_job(
            Name=name, Role="r", Command={"Name": "glueetl", "ScriptLocation": f"s3://s/{name}.py"}
        )
        aws_emulator.glue.script_job(name, **QUICK)
    client.create_workflow(Name=WORKFLOW)
    client.create_trigger(
        Name="start", WorkflowName=WORKFLOW, Type="ON_DEMAND", Actions=[{"JobName": "extract"}]
    )
    for watched, starts in (("extract", "transform"), ("transform", "load")):
        client.create_trigger(
            Name=f"after-{watched}",
            WorkflowName=WORKFLOW,
            Type="CONDITIONAL",
            StartOnCreation=True,
            Predicate={
                "Conditions": [{"LogicalOperator": "EQUALS", "JobName": watched, "State": "SUCCEEDED"}]
            },
            Actions=[{"JobName": starts}],
        )
    return client


def runs_per_job(glue) -> dict[str, list[str]]:
    return {job: [run["JobRunState"] for run in glue.get_job_runs(JobName=job)["JobRuns"]] for job in JOBS}


def make_dag(dag_id: str, **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        ResumableGlueWorkflowOperator(
            task_id="workflow",
            workflow_name=WORKFLOW,
            run_properties={"day": "2026-01-02"},
            waiter_delay=0.2,
            retry_delay=datetime.timedelta(0),
            **kwargs,
        )
    return dag


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_retry_resumes_only_the_failed_node_and_what_follows(dag_runner, aws_emulator, glue, deferrable):
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED", "error_message": "bad row 7"})
    dag = make_dag(f"glue_wf_resume_{deferrable}", deferrable=deferrable, retries=1)

    result = dag_runner(dag)

    assert result.task_states == {"workflow": "success"}
    # extract ran once; transform failed and ran again; load ran (after the resumed transform)
    assert runs_per_job(glue) == {
        "extract": ["SUCCEEDED"],
        "transform": ["SUCCEEDED", "FAILED"],
        "load": ["SUCCEEDED"],
    }
    runs = glue.get_workflow_runs(Name=WORKFLOW)["Runs"]
    assert len(runs) == 2
    first = next(run for run in runs if "PreviousRunId" not in run)
    resumed = next(run for run in runs if run.get("PreviousRunId") == first["WorkflowRunId"])
    assert first["WorkflowRunProperties"]["day"] == "2026-01-02"
    assert resumed["WorkflowRunProperties"][TAG_RUN_PROPERTY].endswith("#2")
    assert task_return_values(result.dag_id, result.run_id)["workflow"] == resumed["WorkflowRunId"]
    nodes = task_return_values(result.dag_id, result.run_id, key="nodes")["workflow"]
    assert {node["name"]: node["state"] for node in nodes} == dict.fromkeys(JOBS, "SUCCEEDED")


def test_a_completed_run_with_a_failed_node_fails_the_task_naming_it(
    dag_runner, aws_emulator, glue, monkeypatch
):
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED", "error_message": "bad row 7"})
    errors: list[str] = []
    real = ResumableGlueWorkflowOperator.execute_complete

    def recorded(self, context, event=None):
        try:
            return real(self, context, event)
        except Exception as exc:
            errors.append(str(exc))
            raise

    monkeypatch.setattr(ResumableGlueWorkflowOperator, "execute_complete", recorded)

    result = dag_runner(make_dag("glue_wf_fails", deferrable=True))

    assert result.task_states == {"workflow": "failed"}
    [run] = glue.get_workflow_runs(Name=WORKFLOW)["Runs"]
    assert run["Status"] == "COMPLETED"  # AWS's status; the task judges the nodes
    assert "transform FAILED: bad row 7" in errors[-1]
    assert run["WorkflowRunId"] in errors[-1]


def test_fresh_retry_mode_starts_the_whole_workflow_again(dag_runner, aws_emulator, glue):
    aws_emulator.glue.script_next_runs("transform", {"outcome": "FAILED", "error_message": "bad row 7"})

    result = dag_runner(make_dag("glue_wf_fresh", deferrable=True, retries=1, retry_mode="fresh"))

    assert result.task_states == {"workflow": "success"}
    assert runs_per_job(glue)["extract"] == ["SUCCEEDED", "SUCCEEDED"]
    assert all("PreviousRunId" not in run for run in glue.get_workflow_runs(Name=WORKFLOW)["Runs"])


def test_worker_crash_after_start_workflow_run_attaches_on_retry(dag_runner, glue, monkeypatch):
    real = ResumableGlueWorkflowOperator._start_or_resume
    started: list[str] = []

    def die_after_start(self, *args, **kwargs):
        started.append(real(self, *args, **kwargs))
        raise RuntimeError("worker died right after StartWorkflowRun")

    monkeypatch.setattr(ResumableGlueWorkflowOperator, "_start_or_resume", die_after_start)

    result = dag_runner(make_dag("glue_wf_crash", deferrable=True, retries=1))

    assert result.task_states == {"workflow": "success"}
    assert len(started) == 1
    [run] = glue.get_workflow_runs(Name=WORKFLOW)["Runs"]
    assert run["WorkflowRunId"] == started[0]
    assert runs_per_job(glue) == {key: ["SUCCEEDED"] for key in JOBS}


def test_sync_on_kill_stops_the_workflow_run(aws_emulator, glue):
    aws_emulator.glue.script_job("extract", starting_seconds=0, running_seconds=None)
    run_id = glue.start_workflow_run(Name=WORKFLOW)["RunId"]
    operator = ResumableGlueWorkflowOperator(task_id="k", workflow_name=WORKFLOW)
    operator.run_id = run_id

    operator.on_kill()

    assert aws_emulator.glue.wait_for_workflow_run(WORKFLOW, run_id) == "STOPPED"


def test_non_string_run_properties_fail_before_any_aws_call(dag_runner, glue):
    with DAG("glue_wf_bad_props", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        ResumableGlueWorkflowOperator(task_id="workflow", workflow_name=WORKFLOW, run_properties={"n": 1})

    result = dag_runner(dag)

    assert result.task_states == {"workflow": "failed"}
    assert glue.get_workflow_runs(Name=WORKFLOW)["Runs"] == []
