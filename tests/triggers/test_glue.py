"""GlueJobRunTrigger under dag.test(): the run's log lines reach the task log exactly once (also
across a triggerer restart), a logs AccessDenied is one warning on a green task, and the
connection settings reach the polling client of a deferred wait."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import certifi
import pytest
from moto.core.exceptions import JsonRESTError
from moto.glue.responses import GlueResponse
from moto.logs.responses import LogsResponse

from airflow_provider_mwaaops.compat import DAG, DAG_TEST_TRIGGERS_REACH_XCOMS
from airflow_provider_mwaaops.log.cloudwatch import CHECKPOINT_XCOM_KEY
from airflow_provider_mwaaops.operators.glue import ResumableGlueJobOperator
from airflow_provider_mwaaops.testing.dag_runner import task_return_values
from airflow_provider_mwaaops.testing.triggerer import triggerer_restarts
from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger

JOB = "logging-etl"
OUTPUT = [f"processed batch {n:02d}" for n in range(16)]
ERRORS = ["WARN skew detected", "WARN retrying shuffle"]
PROOF_CONFIG = {
    "user_agent_extra": "mwaaops-glue-proof/1",
    "read_timeout": 23,
    "proxies": {"https": "http://127.0.0.1:9"},  # keeps verify on the plain-http emulator client
}


class Recorded:
    """What the trigger wrote to the task log (its logger), by level."""

    def __init__(self) -> None:
        self.info: list[str] = []
        self.warning: list[str] = []

    def lines(self, prefix: str) -> list[str]:
        return [text.removeprefix(prefix + " ") for text in self.info if text.startswith(prefix + " ")]


class RecordingLog:
    def __init__(self, real: Any, recorded: Recorded) -> None:
        self.real, self.recorded = real, recorded

    def info(self, message: str, *args: Any) -> None:
        self.recorded.info.append(message % args)
        self.real.info(message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self.recorded.warning.append(message % args)
        self.real.warning(message, *args)

    def log(self, level: int, message: str, *args: Any) -> None:
        (self.recorded.warning if level >= 30 else self.recorded.info).append(message % args)
        self.real.log(level, message, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def task_log(monkeypatch) -> Recorded:
    recorded = Recorded()
    real = GlueJobRunTrigger.log

    def log(self):
        return RecordingLog(real.__get__(self), recorded)

    monkeypatch.setattr(GlueJobRunTrigger, "log", property(log))
    return recorded


@pytest.fixture
def glue(aws_emulator):
    client = aws_emulator.client("glue")
    client.create_job(Name=JOB, Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://s/etl.py"})
    aws_emulator.glue.script_job(
        JOB,
        starting_seconds=0.1,
        running_seconds=2.4,
        output_lines=OUTPUT,
        error_lines=ERRORS,
    )
    return client


def make_dag(dag_id: str, **kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        ResumableGlueJobOperator(task_id="etl", job_name=JOB, deferrable=True, waiter_delay=0.2, **kwargs)
    return dag


@pytest.mark.parametrize("restart", [False, True], ids=["no-restart", "triggerer-restart"])
def test_log_lines_reach_the_task_log_exactly_once(dag_runner, glue, task_log, restart):
    with triggerer_restarts(GlueJobRunTrigger, after_seconds=1.2 if restart else 60) as rebuilt:
        result = dag_runner(make_dag(f"glue_logs_{restart}"))

    assert result.task_states == {"etl": "success"}
    assert bool(rebuilt) is restart
    cursors = task_return_values(result.dag_id, result.run_id, key=CHECKPOINT_XCOM_KEY)
    if not DAG_TEST_TRIGGERS_REACH_XCOMS:
        # Airflow 3.0's dag.test() runs the trigger with no channel to XComs (documented in compat):
        # no cursor is stored, so a rebuilt trigger forwards each stream again from its first line.
        assert cursors == {}
        for prefix, lines in (("[glue output]", OUTPUT), ("[glue error]", ERRORS)):
            written = task_log.lines(prefix)
            repeated = len(written) - len(lines)
            assert written == lines[:repeated] + lines
            assert repeated == 0 or restart
        return
    assert task_log.lines("[glue output]") == OUTPUT
    assert task_log.lines("[glue error]") == ERRORS
    [run] = glue.get_job_runs(JobName=JOB)["JobRuns"]
    assert f"/aws-glue/jobs/output\x1f{run['Id']}" in cursors["etl"]["streams"]


def test_logs_access_denied_leaves_the_task_green_with_one_warning(dag_runner, glue, task_log, monkeypatch):
    def denied(self):
        raise JsonRESTError(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/mwaa/airflow is not authorized to perform: "
            "logs:GetLogEvents because no identity-based policy allows the logs:GetLogEvents action",
        )

    monkeypatch.setattr(LogsResponse, "get_log_events", denied)

    result = dag_runner(make_dag("glue_logs_denied"))

    assert result.task_states == {"etl": "success"}
    assert task_log.lines("[glue output]") == []
    denials = [text for text in task_log.warning if "logs:GetLogEvents" in text]
    assert len(denials) == 1, task_log.warning
    assert "The wait goes on" in denials[0]


def test_forward_logs_off_reads_no_logs(dag_runner, glue, task_log, monkeypatch):
    reads: list[int] = []
    real = LogsResponse.get_log_events

    def counted(self):
        reads.append(1)
        return real(self)

    monkeypatch.setattr(LogsResponse, "get_log_events", counted)

    result = dag_runner(make_dag("glue_logs_off", forward_logs=False))

    assert result.task_states == {"etl": "success"}
    assert reads == []
    assert task_log.lines("[glue output]") == []


def test_botocore_config_and_verify_reach_the_polling_client_of_a_deferred_wait(
    dag_runner, glue, monkeypatch
):
    """From the operator's parameters, through the serialized trigger (rebuilt as after a
    triggerer restart), to the aiobotocore client that polls GetJobRun."""
    agents: list[str] = []
    clients: list[Any] = []
    real_get = GlueResponse.get_job_run
    real_check = GlueJobRunTrigger.check

    def get_job_run(self):
        agents.append(self.headers.get("User-Agent", ""))
        return real_get(self)

    async def check(self, client):
        clients.append(client)
        return await real_check(self, client)

    monkeypatch.setattr(GlueResponse, "get_job_run", get_job_run)
    monkeypatch.setattr(GlueJobRunTrigger, "check", check)
    dag = make_dag("glue_client_settings", verify=certifi.where(), botocore_config=PROOF_CONFIG)

    with triggerer_restarts(GlueJobRunTrigger, after_seconds=0.5) as rebuilt:
        result = dag_runner(dag)

    assert result.task_states == {"etl": "success"}
    assert rebuilt
    client = clients[-1]
    assert client.meta.config.read_timeout == 23
    assert "mwaaops-glue-proof/1" in client.meta.config.user_agent_extra
    assert client._endpoint.http_session._verify == certifi.where()
    assert agents
    assert all("mwaaops-glue-proof/1" in agent for agent in agents)


def test_a_rebuilt_slot_waiting_trigger_finds_the_run_its_try_started(aws_emulator, glue):
    """A triggerer restart right after the trigger's StartJobRun succeeded: the rebuilt trigger
    (job_run_id still None in its stored arguments) finds the tagged run and starts no other."""
    from airflow_provider_mwaaops.aws.resumable import Attempt, TaskInstanceRef
    from airflow_provider_mwaaops.hooks.glue import TAG_ARGUMENT
    from airflow_provider_mwaaops.testing.triggerer import rebuild

    attempt = Attempt(TaskInstanceRef("d", "t", "manual__1"), try_number=2)
    request = {"JobName": JOB, "Arguments": {TAG_ARGUMENT: attempt.tag()}}
    aws_emulator.glue.script_job(JOB, starting_seconds=0, running_seconds=0.3)
    started = glue.start_job_run(**request)["JobRunId"]  # what the interrupted trigger did
    trigger = GlueJobRunTrigger(
        job_name=JOB, start_request=request, attempt=attempt.as_dict(), waiter_delay=0.1, forward_logs=False
    )

    payload = asyncio.run(rebuild(trigger).wait())

    assert payload["status"] == "success", payload
    assert payload["job_run_id"] == started
    assert [run["Id"] for run in glue.get_job_runs(JobName=JOB)["JobRuns"]] == [started]
