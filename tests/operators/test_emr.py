"""EmrStepsOperator and EmrServerlessJobOperator under dag.test(), against the EMR emulator.

Each job kind: success; a worker that dies right after submitting, then a retry that leaves exactly
one job run / one set of steps (asserted by listing); cancel on kill; failure messages in the
service's own words. Steps A, B, C with B failing once: the retry reruns B and C only.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest

from airflow_provider_mwaaops.aws.resumable import Attempt, TaskInstanceRef
from airflow_provider_mwaaops.compat import DAG, AirflowException
from airflow_provider_mwaaops.operators.emr import (
    EmrServerlessJobOperator,
    EmrStepsOperator,
    plan_steps,
)
from airflow_provider_mwaaops.testing.triggerer import triggerer_restarts
from airflow_provider_mwaaops.triggers.emr import EmrServerlessJobRunTrigger, EmrStepsTrigger

LOG_BUCKET = "emr-operator-logs"
ROLE = "arn:aws:iam::123456789012:role/emr-job"
NO_RETRY_DELAY = datetime.timedelta(0)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def emr(aws_emulator: Any) -> Any:
    return aws_emulator.client("emr")


@pytest.fixture
def serverless(aws_emulator: Any) -> Any:
    return aws_emulator.client("emr-serverless")


@pytest.fixture
def cluster_id(aws_emulator: Any, emr: Any) -> str:
    aws_emulator.client("s3").create_bucket(Bucket=LOG_BUCKET)
    return emr.run_job_flow(
        Name="etl",
        ReleaseLabel="emr-6.15.0",
        LogUri=f"s3://{LOG_BUCKET}/clusters/",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]


def step(name: str, action: str = "CANCEL_AND_WAIT") -> dict[str, Any]:
    return {
        "Name": name,
        "ActionOnFailure": action,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", f"s3://code/{name}.py"]},
    }


def steps_dag(dag_id: str, cluster: str, steps: list[dict[str, Any]], **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        EmrStepsOperator(task_id="steps", job_flow_id=cluster, steps=steps, waiter_delay=0.2, **kwargs)
    return dag


def listed_steps(emr: Any, cluster: str) -> list[tuple[str, str]]:
    """(user's step name, state) of every step on the cluster, oldest first (paging with Marker)."""
    found = []
    for page in emr.get_paginator("list_steps").paginate(ClusterId=cluster):
        found += [(s["Name"].split(" @", 1)[0], s["Status"]["State"]) for s in page["Steps"]]
    return list(reversed(found))


def die_once_after_submitting(
    monkeypatch: Any, operator_class: type, seen: list[Any], attribute: str, before_death=None
) -> None:
    """The first try's worker dies right after submitting (before it waits, deferred or not)."""
    real_wait_for = operator_class.wait_for

    def wait_for(self: Any, trigger: Any, context: Any, **kwargs: Any) -> Any:
        seen.append(getattr(self, attribute))
        if len(seen) == 1:
            if before_death is not None:
                before_death()
            raise RuntimeError("worker died right after submitting")
        return real_wait_for(self, trigger, context, **kwargs)

    monkeypatch.setattr(operator_class, "wait_for", wait_for)


# == EMR steps =====================================================================================
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_steps_run_in_order_and_succeed(dag_runner, emr, cluster_id, deferrable):
    dag = steps_dag(f"emr_steps_ok_{deferrable}", cluster_id, [step("A"), step("B")], deferrable=deferrable)

    result = dag_runner(dag)

    assert result.task_states == {"steps": "success"}
    assert listed_steps(emr, cluster_id) == [("A", "COMPLETED"), ("B", "COMPLETED")]


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_steps_worker_crash_then_retry_leaves_one_set_of_steps(
    dag_runner, aws_emulator, emr, cluster_id, monkeypatch, deferrable
):
    """Before the retry, 120 other steps land on the cluster: the retry pages (Marker) past them."""
    aws_emulator.emr.script_step("A*", duration=1.0)
    aws_emulator.emr.script_step("other-*", duration=0.0)

    def other_tasks_submit() -> None:
        for batch in range(12):
            emr.add_job_flow_steps(
                JobFlowId=cluster_id, Steps=[step(f"other-{batch}-{n}", "CONTINUE") for n in range(10)]
            )

    seen: list[Any] = []
    die_once_after_submitting(monkeypatch, EmrStepsOperator, seen, "step_ids", other_tasks_submit)
    dag = steps_dag(
        f"emr_steps_crash_{deferrable}",
        cluster_id,
        [step("A"), step("B")],
        deferrable=deferrable,
        retries=1,
        retry_delay=NO_RETRY_DELAY,
    )

    result = dag_runner(dag)

    assert result.task_states == {"steps": "success"}
    assert len(seen) == 2
    assert seen[0] == seen[1]  # the retry re-attached to what the first try submitted
    ours = [entry for entry in listed_steps(emr, cluster_id) if not entry[0].startswith("other-")]
    assert ours == [("A", "COMPLETED"), ("B", "COMPLETED")]
    assert len(listed_steps(emr, cluster_id)) == 122


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_retry_reruns_the_failed_step_and_those_after_it_only(
    dag_runner, aws_emulator, emr, cluster_id, deferrable
):
    """A, B, C with B failing once (CANCEL_AND_WAIT cancels C): the retry submits B and C; A ran once."""
    aws_emulator.emr.script_step("B*", outcome="FAILED", message="Table sales not found", times=1)
    dag = steps_dag(
        f"emr_steps_redrive_{deferrable}",
        cluster_id,
        [step("A"), step("B"), step("C")],
        deferrable=deferrable,
        retries=1,
        retry_delay=NO_RETRY_DELAY,
    )

    result = dag_runner(dag)

    assert result.task_states == {"steps": "success"}
    assert listed_steps(emr, cluster_id) == [
        ("A", "COMPLETED"),
        ("B", "FAILED"),
        ("C", "CANCELLED"),
        ("B", "COMPLETED"),
        ("C", "COMPLETED"),
    ]


def test_step_failure_carries_failure_details_and_stderr_tail(aws_emulator, emr, cluster_id):
    aws_emulator.emr.script_step(
        "B*",
        outcome="FAILED",
        reason="Spark job failed",
        message="Table sales not found",
        stderr=["Traceback: boom"],
    )
    operator = EmrStepsOperator(
        task_id="t", job_flow_id=cluster_id, steps=[step("A"), step("B")], waiter_delay=0.1
    )
    operator.step_ids = operator.hook.add_steps(cluster_id, [step("A @x#1:0"), step("B @x#1:1")], None)
    trigger = EmrStepsTrigger(cluster_id=cluster_id, step_ids=operator.step_ids, **operator.trigger_kwargs())
    event = asyncio.run(trigger.wait())

    assert event["status"] == "failure"
    with pytest.raises(AirflowException) as raised:
        operator.execute_complete({}, event)
    text = str(raised.value)
    assert f"EMR step {operator.step_ids[1]}" in text
    assert "ended FAILED: Spark job failed: Table sales not found" in text
    assert f"s3://{LOG_BUCKET}/clusters/{cluster_id}/steps/{operator.step_ids[1]}/stderr.gz" in text
    assert "Traceback: boom" in text  # the tail of the step's stderr, read from the cluster's LogUri


def test_terminated_cluster_fails_before_add_job_flow_steps(dag_runner, emr, cluster_id):
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    result = dag_runner(steps_dag("emr_steps_terminated", cluster_id, [step("A")]))

    assert result.task_states == {"steps": "failed"}
    assert listed_steps(emr, cluster_id) == []


def _attempt() -> Attempt:
    return Attempt(TaskInstanceRef("d", "t", "r"), 1)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "non-empty list"),
        ([step("A")] * 257, "at most 256"),
        ([{**step("A"), "HadoopJarStep": {"Jar": "x.jar", "Args": ["--n", 3]}}], "Args must be strings"),
        ([{**step("A"), "ActionOnFailure": "RETRY"}], "ActionOnFailure must be one of"),
        ([step("A" * 250)], "too long"),
    ],
)
def test_bad_steps_are_refused_before_any_call(steps, message):
    operator = EmrStepsOperator(task_id="t", job_flow_id="j-1", steps=steps)
    with pytest.raises(ValueError, match=message):
        operator._validate(_attempt())


def test_plan_keeps_completed_and_active_and_resubmits_from_the_first_bad_step():
    def summary(step_id: str, state: str) -> dict[str, Any]:
        return {"Id": step_id, "Name": step_id, "Status": {"State": state}}

    plan = plan_steps(
        3, {0: summary("a", "COMPLETED"), 1: summary("b", "FAILED"), 2: summary("c", "RUNNING")}
    )
    assert (plan.kept, plan.resubmit_from, plan.cancel_first) == (["a"], 1, ["c"])
    plan = plan_steps(2, {0: summary("a", "COMPLETED"), 1: summary("b", "RUNNING")})
    assert (plan.kept, plan.resubmit_from) == (["a", "b"], None)
    assert plan_steps(2, {}).resubmit_from == 0
    plan = plan_steps(2, {0: summary("a", "CANCEL_PENDING"), 1: summary("b", "PENDING")})
    assert (plan.kept, plan.resubmit_from, plan.cancel_first) == ([], 0, ["b"])  # after a kill


def test_sync_on_kill_cancels_only_this_tasks_active_steps(aws_emulator, emr, cluster_id):
    aws_emulator.emr.script_step("*", duration=float("inf"))
    other = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("other-task")])["StepIds"][0]
    operator = EmrStepsOperator(task_id="t", job_flow_id=cluster_id, steps=[step("A")])
    operator.step_ids = operator.hook.add_steps(cluster_id, [step("A @x#1:0")], None)

    operator.on_kill()

    state = emr.describe_step(ClusterId=cluster_id, StepId=operator.step_ids[0])["Step"]["Status"]["State"]
    assert state in ("CANCEL_PENDING", "CANCELLED")
    assert emr.describe_step(ClusterId=cluster_id, StepId=other)["Step"]["Status"]["State"] == "RUNNING"


def test_deferred_kill_cancels_the_steps(aws_emulator, emr, cluster_id):
    aws_emulator.emr.script_step("*", duration=float("inf"))
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("A"), step("B")])["StepIds"]
    asyncio.run(EmrStepsTrigger(cluster_id=cluster_id, step_ids=ids, waiter_delay=0.1).on_kill())
    states = [emr.describe_step(ClusterId=cluster_id, StepId=i)["Step"]["Status"]["State"] for i in ids]
    assert all(state in ("CANCEL_PENDING", "CANCELLED") for state in states), states
    kept = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[step("C")])["StepIds"]
    asyncio.run(EmrStepsTrigger(cluster_id=cluster_id, step_ids=kept, cancel_on_kill=False).on_kill())
    assert (
        emr.describe_step(ClusterId=cluster_id, StepId=kept[0])["Step"]["Status"]["State"] != "CANCEL_PENDING"
    )


# == EMR Serverless ================================================================================
def make_application(serverless: Any, *, started: bool = True, auto_start: bool = True) -> str:
    app_id = serverless.create_application(
        name="spark",
        releaseLabel="emr-7.1.0",
        type="SPARK",
        autoStartConfiguration={"enabled": auto_start},
    )["applicationId"]
    if started:
        serverless.start_application(applicationId=app_id)
    return app_id


CLOUDWATCH = {"monitoringConfiguration": {"cloudWatchLoggingConfiguration": {"enabled": True}}}


def serverless_dag(dag_id: str, app_id: str, **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        EmrServerlessJobOperator(
            task_id="spark",
            application_id=app_id,
            execution_role_arn=ROLE,
            job_driver={"sparkSubmit": {"entryPoint": "s3://code/job.py"}},
            name="nightly",
            waiter_delay=0.2,
            **kwargs,
        )
    return dag


def job_runs(serverless: Any, app_id: str) -> list[dict[str, Any]]:
    runs = []
    for page in serverless.get_paginator("list_job_runs").paginate(applicationId=app_id):
        runs += page["jobRuns"]
    return runs


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_serverless_job_succeeds_and_its_driver_lines_reach_the_task_log(
    dag_runner, aws_emulator, serverless, deferrable, caplog, capfd
):
    app_id = make_application(serverless)
    aws_emulator.emr.script_job_run("nightly*", stdout=["rows written: 42"], stderr=["WARN slow shuffle"])
    caplog.set_level("INFO")
    dag = serverless_dag(
        f"emrs_ok_{deferrable}", app_id, deferrable=deferrable, configuration_overrides=CLOUDWATCH
    )

    result = dag_runner(dag)

    assert result.task_states == {"spark": "success"}
    assert [run["state"] for run in job_runs(serverless, app_id)] == ["SUCCESS"]
    captured = capfd.readouterr()
    task_log = caplog.text + captured.out + captured.err  # structlog (3.x) prints, logging (2.x) records
    assert "[driver stdout] rows written: 42" in task_log
    assert "[driver stderr] WARN slow shuffle" in task_log


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "sync"])
def test_serverless_worker_crash_then_retry_leaves_one_job_run(
    dag_runner, aws_emulator, serverless, monkeypatch, deferrable
):
    """The retry finds the run by listing, not by the client token (which the emulator forgets)."""
    app_id = make_application(serverless)
    aws_emulator.emr.script_job_run("nightly*", duration=1.0)
    seen: list[Any] = []
    die_once_after_submitting(
        monkeypatch, EmrServerlessJobOperator, seen, "job_run_id", aws_emulator.emr.forget_client_tokens
    )
    dag = serverless_dag(
        f"emrs_crash_{deferrable}", app_id, deferrable=deferrable, retries=1, retry_delay=NO_RETRY_DELAY
    )

    result = dag_runner(dag)

    assert result.task_states == {"spark": "success"}
    assert len(seen) == 2
    assert seen[0] == seen[1]
    assert [run["id"] for run in job_runs(serverless, app_id)] == [seen[0]]


def test_serverless_logs_reach_the_task_log_once_across_a_triggerer_restart(
    dag_runner, aws_emulator, serverless, caplog, capfd
):
    app_id = make_application(serverless)
    lines = [f"batch {n:02d} done" for n in range(12)]
    aws_emulator.emr.script_job_run("nightly*", duration=2.0, log_interval=0.15, stdout=lines)
    caplog.set_level("INFO")
    dag = serverless_dag("emrs_logs_restart", app_id, deferrable=True, configuration_overrides=CLOUDWATCH)

    with triggerer_restarts(EmrServerlessJobRunTrigger, after_seconds=1.0) as rebuilt:
        result = dag_runner(dag)

    assert result.task_states == {"spark": "success"}
    assert rebuilt
    captured = capfd.readouterr()
    # One capture holds the task log: structlog's output (3.x) or logging records (2.x, which are
    # also echoed to stderr); in neither may a line appear twice.
    for line in lines:
        counts = [
            text.count(f"[driver stdout] {line}") for text in (caplog.text, captured.out + captured.err)
        ]
        assert max(counts) == 1, (line, counts)


def test_unknown_cluster_and_application_fail_clearly(dag_runner, serverless, emr):
    result = dag_runner(steps_dag("emr_steps_unknown", "j-DOESNOTEXIST", [step("A")]))
    assert result.task_states == {"steps": "failed"}
    result = dag_runner(serverless_dag("emrs_unknown", "00nosuchapp"))
    assert result.task_states == {"spark": "failed"}


def test_serverless_failure_carries_state_details_and_a_retry_starts_a_new_run(
    dag_runner, aws_emulator, serverless
):
    app_id = make_application(serverless)
    aws_emulator.emr.script_job_run(
        "nightly*", outcome="FAILED", message="Job failed: OutOfMemoryError", times=1
    )
    dag = serverless_dag("emrs_failed_then_ok", app_id, retries=1, retry_delay=NO_RETRY_DELAY)

    result = dag_runner(dag)

    assert result.task_states == {"spark": "success"}
    runs = job_runs(serverless, app_id)
    assert sorted(run["state"] for run in runs) == ["FAILED", "SUCCESS"]
    failed = next(run for run in runs if run["state"] == "FAILED")
    operator = serverless_dag("x", app_id).get_task("spark")
    with pytest.raises(AirflowException) as raised:
        operator.execute_complete(
            {},
            {
                "status": "failure",
                "job_run_id": failed["id"],
                "job_run_state": "FAILED",
                "state_details": failed["stateDetails"],
            },
        )
    assert f"EMR Serverless job run {failed['id']}" in str(raised.value)
    assert "ended FAILED: Job failed: OutOfMemoryError" in str(raised.value)


def test_serverless_trigger_failure_event_carries_state_details(aws_emulator, serverless):
    app_id = make_application(serverless)
    aws_emulator.emr.script_job_run("*", outcome="FAILED", message="Exception in thread main")
    run_id = serverless.start_job_run(
        applicationId=app_id,
        clientToken="t1",
        executionRoleArn=ROLE,
        name="x",
        jobDriver={"sparkSubmit": {"entryPoint": "s3://code/job.py"}},
    )["jobRunId"]
    event = asyncio.run(
        EmrServerlessJobRunTrigger(application_id=app_id, job_run_id=run_id, waiter_delay=0.1).wait()
    )
    assert (event["status"], event["job_run_state"], event["state_details"]) == (
        "failure",
        "FAILED",
        "Exception in thread main",
    )


def test_stopped_application_is_started_and_the_job_runs(dag_runner, aws_emulator, serverless):
    """Auto-start off: StartJobRun alone would be refused; the operator starts the application."""
    app_id = make_application(serverless, started=True, auto_start=False)
    time.sleep(0.5)
    serverless.stop_application(applicationId=app_id)
    time.sleep(0.5)
    assert serverless.get_application(applicationId=app_id)["application"]["state"] == "STOPPED"

    result = dag_runner(serverless_dag("emrs_stopped_app", app_id))

    assert result.task_states == {"spark": "success"}
    assert [run["state"] for run in job_runs(serverless, app_id)] == ["SUCCESS"]


def test_stopped_application_with_start_application_false_fails_clearly(dag_runner, serverless):
    app_id = make_application(serverless, started=False, auto_start=False)

    result = dag_runner(serverless_dag("emrs_no_start", app_id, start_application=False))

    assert result.task_states == {"spark": "failed"}
    assert job_runs(serverless, app_id) == []


def test_serverless_bad_input_is_refused_before_any_call():
    operator = EmrServerlessJobOperator(
        task_id="t", application_id="", execution_role_arn=ROLE, job_driver={"x": 1}
    )
    with pytest.raises(ValueError, match="application_id"):
        operator._validate("name")
    operator = EmrServerlessJobOperator(
        task_id="t", application_id="a", execution_role_arn=ROLE, job_driver={}
    )
    with pytest.raises(ValueError, match="job_driver"):
        operator._validate("name")
    with pytest.raises(ValueError, match="on_retry"):
        EmrServerlessJobOperator(
            task_id="t",
            application_id="a",
            execution_role_arn=ROLE,
            job_driver={"x": 1},
            on_retry="sometimes",
        )


def test_serverless_sync_and_deferred_kill_cancel_the_run(aws_emulator, serverless):
    app_id = make_application(serverless)
    aws_emulator.emr.script_job_run("*", duration=float("inf"))

    def start(token: str) -> str:
        return serverless.start_job_run(
            applicationId=app_id,
            clientToken=token,
            executionRoleArn=ROLE,
            name=token,
            jobDriver={"sparkSubmit": {"entryPoint": "s3://code/job.py"}},
        )["jobRunId"]

    operator = serverless_dag("k", app_id).get_task("spark")
    operator.job_run_id = start("sync")
    operator.on_kill()
    deferred = start("deferred")
    asyncio.run(EmrServerlessJobRunTrigger(application_id=app_id, job_run_id=deferred).on_kill())
    kept = start("kept")
    asyncio.run(
        EmrServerlessJobRunTrigger(application_id=app_id, job_run_id=kept, cancel_on_kill=False).on_kill()
    )

    def state(run_id: str) -> str:
        return serverless.get_job_run(applicationId=app_id, jobRunId=run_id)["jobRun"]["state"]

    assert state(operator.job_run_id) in ("CANCELLING", "CANCELLED")
    assert state(deferred) in ("CANCELLING", "CANCELLED")
    assert state(kept) not in ("CANCELLING", "CANCELLED")
