"""End to end with a real scheduler and executor: Airflow ends or requeues a try by itself, and the
next attempt's log starts with the reason the forwarder read from Airflow's event log.

One set of components serves both cases (starting them is most of the cost): a PostgreSQL
metadata DB, the scheduler (plus the dag processor and the API server on Airflow 3, where the task
reads the event log over HTTP as it must in a deployment), and the LosingLocalExecutor, which runs
every task normally except those on its lossy queue, whose first workload per try it loses.

* Heartbeat timeout: the first try kills its supervisor and itself with SIGKILL, so nothing
  reports for it any more; the scheduler's heartbeat check fails it and it is retried.
* Stuck in queued: the executor loses the first workload, the scheduler's task_queued_timeout
  check requeues the try and the executor then runs it.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mwaaops.testing.components import AirflowComponents, default_component_commands

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

HEARTBEAT_DAG = "mwaaops_forwarder_heartbeat_timeout"
STUCK_DAG = "mwaaops_forwarder_stuck_in_queued"
HEARTBEAT_TIMEOUT_S = 8


def _queued_timeout(airflow_3: bool) -> int:
    """Seconds a try may sit in queued. Every task of the session is subject to it, and Airflow 3
    also makes it the lifetime of the token a worker needs to start the task: it must cover a
    worker's start-up on a busy machine (30 s was not enough with a load average of 10 on 2 cores).
    """
    return 60 if airflow_3 else 20


BODY_MARKER = "task body starts"

DAGS = textwrap.dedent(
    f'''
    """DAGs whose tries Airflow itself ends (heartbeat timeout) or requeues (stuck in queued)."""
    import os
    import signal
    from datetime import datetime, timedelta

    from airflow_provider_mwaaops.compat import DAG, task

    START = datetime(2026, 1, 1)

    with DAG("{HEARTBEAT_DAG}", schedule="@once", start_date=START, catchup=False):

        @task(retries=1, retry_delay=timedelta(seconds=1))
        def dies_without_a_word(ti=None):
            print("{BODY_MARKER}")
            if ti.try_number == 1:
                # The process that heartbeats for this try (Airflow 2: the LocalTaskJob, Airflow 3:
                # the supervisor) dies with the task: only the scheduler can notice.
                os.kill(os.getppid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
            print("second try finished")

        dies_without_a_word()

    with DAG("{STUCK_DAG}", schedule="@once", start_date=START, catchup=False):

        @task(queue="mwaaops-lossy")
        def lost_by_the_executor():
            print("{BODY_MARKER}")

        lost_by_the_executor()
    '''
)


def _config(airflow_3: bool) -> dict[str, dict[str, Any]]:
    scheduler: dict[str, Any] = {
        "task_queued_timeout": _queued_timeout(airflow_3),
        "task_queued_timeout_check_interval": 1,
        "scheduler_heartbeat_sec": 1,
        "parsing_processes": 1,
    }
    if airflow_3:
        scheduler |= {
            "task_instance_heartbeat_timeout": HEARTBEAT_TIMEOUT_S,
            "task_instance_heartbeat_timeout_detection_interval": 1,
        }
    else:
        scheduler |= {
            "scheduler_zombie_task_threshold": HEARTBEAT_TIMEOUT_S,
            "zombie_detection_interval": 1,
            "job_heartbeat_sec": 1,
        }
    return {
        "core": {
            "executor": "airflow_provider_mwaaops.testing.executors.LosingLocalExecutor",
            "parallelism": 4,
            "dags_are_paused_at_creation": False,
        },
        "scheduler": scheduler,
        "workers": {"min_heartbeat_interval": 1},
        "dag_processor": {"parsing_processes": 1},
    }


@dataclass
class RunningAirflow:
    airflow: IsolatedAirflow
    components: AirflowComponents
    #: Airflow 3 only: the API server the task processes read the event log from.
    server: AirflowApiServer | None

    @property
    def db_url(self) -> str:
        return self.airflow.sql_alchemy_conn

    @property
    def log_folder(self) -> Path:
        return Path(self.airflow.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])

    def run_id(self, dag_id: str) -> str:
        return str(self.query("SELECT run_id FROM dag_run WHERE dag_id = %s", dag_id)[0][0])

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(self.db_url.replace("postgresql+psycopg2://", "postgresql://"))
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def wait_for_finished_run(self, dag_id: str, timeout: float) -> str:
        def finished() -> str:
            rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s", dag_id)
            return str(rows[0][0]) if rows and rows[0][0] in ("success", "failed") else ""

        return self.components.wait_until(finished, timeout, f"a finished run of {dag_id}")

    def task_log(self, dag_id: str, task_id: str, attempt: int) -> list[str]:
        """The messages of one attempt's log, in order (Airflow 3 writes JSON lines)."""
        paths = list(self.log_folder.glob(f"dag_id={dag_id}/**/task_id={task_id}/attempt={attempt}.log"))
        assert len(paths) == 1, f"expected one log for {dag_id}.{task_id} attempt {attempt}: {paths}"
        messages = []
        for line in paths[0].read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                messages.append(line)
                continue
            messages.append(str(record.get("event", line)) if isinstance(record, dict) else line)
        return messages

    def events(self, dag_id: str) -> list[tuple[str, int]]:
        return [
            (event, try_number)
            for event, try_number in self.query(
                "SELECT event, try_number FROM log WHERE dag_id = %s ORDER BY dttm", dag_id
            )
        ]


def _require_postgres() -> None:
    from airflow_provider_mwaaops.testing import postgres

    try:
        postgres.check_available()
    except postgres.PostgresUnavailable as err:
        if postgres.postgres_required():
            pytest.fail(f"{postgres.REQUIRE_ENV}=1 but {err}")
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def running_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAirflow]:
    """Scheduler (+ dag processor and API server on Airflow 3) on PostgreSQL, both DAGs deployed."""
    _require_postgres()
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS
    from airflow_provider_mwaaops.testing.postgres import migrated_postgres_airflow

    home = tmp_path_factory.mktemp("forwarder") / "airflow"
    with ExitStack() as stack:
        airflow = stack.enter_context(migrated_postgres_airflow(home))
        (Path(airflow.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "forwarder_dags.py").write_text(DAGS)
        config = _config(AIRFLOW_V_3_0_PLUS)
        extra_environ: dict[str, str] = {}
        server = None
        if AIRFLOW_V_3_0_PLUS:
            from airflow_provider_mwaaops.testing.api_server import ADMIN_USER, AirflowApiServer

            server = stack.enter_context(AirflowApiServer(airflow))
            extra_environ = dict(server.environ)
            # What a deployment sets so that task processes can read the event log over HTTP.
            config["mwaaops"] = {
                "api_url": server.url,
                "api_username": ADMIN_USER,
                "api_password": server.password,
                "api_timeout": 5,
            }
        components = stack.enter_context(
            AirflowComponents(
                airflow, default_component_commands(), config=config, extra_environ=extra_environ
            )
        )
        try:
            yield RunningAirflow(airflow, components, server)
        finally:
            components.stop()
            shutil.rmtree(home, ignore_errors=True)


def _forwarded(messages: list[str]) -> list[str]:
    return [m for m in messages if "[mwaaops]" in m]


def _assert_forwarded_first(messages: list[str], expected: str) -> None:
    """The forwarded reason is logged before anything the task itself prints, near the top."""
    forwarded = _forwarded(messages)
    assert any(expected in m for m in forwarded), "\n".join(messages)
    first_forwarded = next(i for i, m in enumerate(messages) if "[mwaaops]" in m)
    body = next(i for i, m in enumerate(messages) if BODY_MARKER in m)
    assert first_forwarded < body, "\n".join(messages)


@pytest.mark.timeout(420)
def test_heartbeat_timeout_reason_opens_the_retry_log(running_airflow: RunningAirflow) -> None:
    state = running_airflow.wait_for_finished_run(HEARTBEAT_DAG, timeout=300)

    events = running_airflow.events(HEARTBEAT_DAG)
    if state != "success":
        pytest.fail(f"run {state}; events {events}\n{running_airflow.components.logs()}")
    assert ("heartbeat timeout", 1) in events
    # The first try's log carries nothing of ours: nothing ended a try before it.
    assert _forwarded(running_airflow.task_log(HEARTBEAT_DAG, "dies_without_a_word", 1)) == []
    retry_log = running_airflow.task_log(HEARTBEAT_DAG, "dies_without_a_word", 2)
    _assert_forwarded_first(retry_log, "Try 1 was ended by Airflow: heartbeat timeout")
    reason = next(m for m in _forwarded(retry_log) if "heartbeat timeout" in m)
    assert "Decided by the scheduler" in reason
    # Airflow 3 follows its heartbeat timeout with a state mismatch of its own making: not forwarded.
    assert not any("killed externally" in m for m in _forwarded(retry_log)), retry_log
    assert f"Task did not emit heartbeat within time limit ({HEARTBEAT_TIMEOUT_S} seconds)" in reason


@pytest.mark.timeout(420)
def test_stuck_in_queued_reason_opens_the_requeued_attempt_log(running_airflow: RunningAirflow) -> None:
    state = running_airflow.wait_for_finished_run(STUCK_DAG, timeout=300)

    events = running_airflow.events(STUCK_DAG)
    if state != "success":
        pytest.fail(f"run {state}; events {events}\n{running_airflow.components.logs()}")
    assert ("stuck in queued reschedule", 1) in events
    # Airflow keeps the try number when it requeues: the attempt that ran is still try 1.
    messages = running_airflow.task_log(STUCK_DAG, "lost_by_the_executor", 1)
    _assert_forwarded_first(messages, "Try 1 was requeued by Airflow before it ran: stuck in queued")
    reason = next(m for m in _forwarded(messages) if "stuck in queued" in m)
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    timeout = float(_queued_timeout(AIRFLOW_V_3_0_PLUS))
    assert f"Task was in queued state for longer than {timeout} seconds" in reason


@pytest.mark.timeout(420)
def test_failure_callbacks_get_the_reason_from_the_event_log(
    running_airflow: RunningAirflow, request: pytest.FixtureRequest
) -> None:
    """What the SNS notifier calls: the try Airflow ended has a reason, the one that succeeded none.

    Airflow 2 reads the database (run here in a process on the deployment's PostgreSQL, as a
    callback would); Airflow 3 reads the real API server over HTTP, directly and through MWAA's
    InvokeRestApi.
    """
    running_airflow.wait_for_finished_run(HEARTBEAT_DAG, timeout=300)
    run_id = running_airflow.run_id(HEARTBEAT_DAG)
    if running_airflow.server is None:
        script = textwrap.dedent(
            f"""
            import json
            import time
            from types import SimpleNamespace
            from airflow_provider_mwaaops.log.reasons import end_reason_from_context

            out = {{}}
            for try_number in (1, 2):
                ti = SimpleNamespace(dag_id={HEARTBEAT_DAG!r}, task_id="dies_without_a_word",
                                     run_id={run_id!r}, map_index=-1, try_number=try_number)
                started = time.perf_counter()
                reason = end_reason_from_context({{"ti": ti}})
                out[f"seconds_{{try_number}}"] = time.perf_counter() - started
                out[try_number] = reason.as_dict() if reason else None
            print(json.dumps(out))
            """
        )
        result = running_airflow.airflow.run_python("-c", script)
        found = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"end reason lookups (database): {found['seconds_1']:.3f} s, {found['seconds_2']:.3f} s")
        first, second = found["1"], found["2"]
    else:
        from types import SimpleNamespace

        from airflow_provider_mwaaops.airflow_api import AirflowApiClient
        from airflow_provider_mwaaops.log.reasons import ApiEventLogSource, end_reason_from_context
        from airflow_provider_mwaaops.testing.api_server import ADMIN_USER

        server = running_airflow.server
        direct = AirflowApiClient.from_url(server.url, ADMIN_USER, server.password, attempts=1)
        # The same reads through MWAA's InvokeRestApi (emulated, forwarding to the real server).
        emulator = request.getfixturevalue("aws_emulator")
        from airflow_provider_mwaaops.testing.extensions import mwaa_environments, mwaa_rest_api

        emulator.client("mwaa").create_environment(
            Name="forwarder-env",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa",
            SourceBucketArn="arn:aws:s3:::mwaa-dags",
            DagS3Path="dags",
            NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"]},
            AirflowVersion="3.3.1",
        )
        mwaa_environments.wait_for_status("forwarder-env")  # CREATING -> AVAILABLE
        mwaa_rest_api.attach_api_server("forwarder-env", server.url, token=server.token())
        via_mwaa = AirflowApiClient.from_mwaa("forwarder-env", attempts=1)
        answers: dict[str, dict[int, Any]] = {}
        for name, client in (("direct", direct), ("mwaa", via_mwaa)):
            source = ApiEventLogSource(client)
            for try_number in (1, 2):
                ti = SimpleNamespace(
                    dag_id=HEARTBEAT_DAG,
                    task_id="dies_without_a_word",
                    run_id=run_id,
                    map_index=-1,
                    try_number=try_number,
                )
                started = time.perf_counter()
                reason = end_reason_from_context({"ti": ti}, source=source)
                print(f"end reason lookup ({name}, try {try_number}): {time.perf_counter() - started:.3f} s")
                answers.setdefault(name, {})[try_number] = reason.as_dict() if reason else None
        assert answers["mwaa"] == answers["direct"]
        first, second = answers["direct"][1], answers["direct"][2]

    assert first is not None
    assert (first["kind"], first["event"]) == ("heartbeat_timeout", "heartbeat timeout")
    assert first["try_number"] == 1
    assert first["when"]
    assert "scheduler" in first["decided_by"]
    assert second is None
