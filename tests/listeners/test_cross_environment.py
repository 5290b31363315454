"""Cross-environment data-aware scheduling, end to end, with Airflow's real processes.

The two example DAGs are deployed in one Airflow (PostgreSQL metadata DB) standing in for two
environments: the producer's asset and the consumer's asset have different URIs, so the only link
between them is AWS: the listener publishes the producer's event to SNS, the topic delivers it to
the consumer's SQS queue, and the consumer side picks it up.

* Airflow 3: API server, scheduler (LocalExecutor), dag processor and triggerer. The producer's
  task runs in a task process that reports to the API server; the listener runs in the API server
  and publishes. The consumer asset's ``AssetWatcher`` trigger runs in the triggerer, Airflow turns
  its event into an asset event, and the scheduler starts the consumer DAG (run type
  ``asset_triggered``) whose task reads the producer's payload.
* Airflow 2.11: scheduler (LocalExecutor) and triggerer. The producer's task runs through
  ``airflow tasks run`` (a forked process that ends with ``os._exit``): the listener publishes from
  there, and flushes at the end of the task. The consumer is a continuous DAG whose deferrable SQS
  sensor waits in the triggerer.

Also here: under ``dag.test()`` on 2.11 the consumer's sensor really defers and its trigger runs
inline (the demo and the example tests rely on that).
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.testing.asset_events import (
    CONSUMER_DAG_ID,
    PRODUCER_DAG_ID,
    PRODUCER_ENVIRONMENT,
    create_example_targets,
    prepare_example,
    producer_listener_environ,
)
from airflow_provider_mwaaops.testing.components import AirflowComponents, default_component_commands
from airflow_provider_mwaaops.testing.dag_runner import load_dags, task_return_values

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
PRODUCER_URI = "s3://mwaaops-example-lake/curated/orders"


def _require_postgres() -> None:
    from airflow_provider_mwaaops.testing import postgres

    try:
        postgres.check_available()
    except postgres.PostgresUnavailable as err:
        if postgres.postgres_required():
            pytest.fail(f"{postgres.REQUIRE_ENV}=1 but {err}")
        pytest.skip(str(err))


def _config() -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {
        "core": {"executor": "LocalExecutor", "parallelism": 4, "dags_are_paused_at_creation": False},
        "scheduler": {"scheduler_heartbeat_sec": 1, "parsing_processes": 1, "dag_dir_list_interval": 2},
        "triggerer": {"job_heartbeat_sec": 1},
    }
    if compat.AIRFLOW_V_3_0_PLUS:
        config["dag_processor"] = {"parsing_processes": 1, "refresh_interval": 2}
    return config


class Db:
    def __init__(self, url: str):
        self.url = url.replace("postgresql+psycopg2://", "postgresql://")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        if compat.AIRFLOW_V_3_0_PLUS:
            sql = (
                "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
                "WHERE x.dag_id = %s AND r.run_id = %s AND x.task_id = %s AND x.key = 'return_value'"
            )
        else:
            sql = (
                "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s "
                "AND key = 'return_value'"
            )
        rows = self.query(sql, dag_id, run_id, task_id)
        if not rows:
            return None
        value = rows[0][0]
        if isinstance(value, memoryview | bytes):
            value = bytes(value).decode()
        return json.loads(value) if isinstance(value, str) else value


@pytest.mark.timeout(900)
def test_consumer_dag_runs_on_the_producers_event(tmp_path_factory, _mwaaops_emulator_server):  # noqa: PT019
    _require_postgres()
    from airflow_provider_mwaaops.testing.postgres import migrated_postgres_airflow

    emulator = _mwaaops_emulator_server
    emulator.reset()
    topic_arn, queue_url = create_example_targets(emulator)
    listener_env = producer_listener_environ(topic_arn)
    home = tmp_path_factory.mktemp("cross-env") / "airflow"
    with ExitStack() as stack:
        airflow = stack.enter_context(migrated_postgres_airflow(home))
        dags_folder = Path(airflow.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        for dag_id in (PRODUCER_DAG_ID, CONSUMER_DAG_ID):
            shutil.copy(EXAMPLES / f"{dag_id}.py", dags_folder)
        environ = {**emulator.environ(), **listener_env}
        server = None
        if compat.AIRFLOW_V_3_0_PLUS:
            from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

            server = stack.enter_context(AirflowApiServer(airflow, extra_environ=environ))
            environ = {**server.environ, **environ}
        components = stack.enter_context(
            AirflowComponents(
                airflow, default_component_commands(triggerer=True), config=_config(), extra_environ=environ
            )
        )
        db = Db(airflow.sql_alchemy_conn)
        try:
            components.wait_until(
                lambda: (
                    len(
                        db.query(
                            "SELECT dag_id FROM dag WHERE dag_id IN (%s, %s) AND NOT is_paused",
                            PRODUCER_DAG_ID,
                            CONSUMER_DAG_ID,
                        )
                    )
                    == 2
                ),
                240,
                "both example DAGs parsed and unpaused",
            )
            producer_run_id = _trigger(PRODUCER_DAG_ID, server, components, airflow)

            components.wait_until(
                lambda: db.query(
                    "SELECT 1 FROM dag_run WHERE dag_id = %s AND run_id = %s AND state = 'success'",
                    PRODUCER_DAG_ID,
                    producer_run_id,
                ),
                240,
                "the producer run to succeed",
            )

            def consumer_received() -> Any:
                for (run_id,) in db.query(
                    "SELECT run_id FROM dag_run WHERE dag_id = %s AND state = 'success'", CONSUMER_DAG_ID
                ):
                    received = db.return_value(CONSUMER_DAG_ID, run_id, "load_orders")
                    if received:
                        return run_id, received
                return None

            consumer_run_id, received = components.wait_until(
                consumer_received, 300, "a consumer run that received the producer's event"
            )
        except Exception:
            print(components.logs())
            if server is not None:
                print(server.log_text[-6000:])
            raise

        assert len(received) == 1, received
        event = received[0]
        assert event["uri"] == PRODUCER_URI
        assert event["environment"] == PRODUCER_ENVIRONMENT
        assert event["source_dag_id"] == PRODUCER_DAG_ID
        assert event["source_run_id"] == producer_run_id
        if compat.AIRFLOW_V_3_0_PLUS:
            assert event["extra"]["rows"] == 3
            (run_type,) = db.query(
                "SELECT run_type FROM dag_run WHERE dag_id = %s AND run_id = %s",
                CONSUMER_DAG_ID,
                consumer_run_id,
            )[0]
            assert run_type == "asset_triggered"
            # The asset event Airflow created from the watcher's trigger event carries the message.
            extras = db.query(
                "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s",
                "mwaaops-remote://producer-env/curated/orders",
            )
            assert len(extras) == 1
            extra = extras[0][0] if isinstance(extras[0][0], dict) else json.loads(extras[0][0])
            assert extra["from_trigger"] is True
            body = json.loads(extra["payload"]["message_batch"][0]["Body"])
            assert body["event"]["source_run_id"] == producer_run_id
        # The queue was drained by the consumer side.
        left = emulator.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
        assert not left.get("Messages")
        components.stop()


def _trigger(dag_id: str, server: Any, components: AirflowComponents, airflow: Any) -> str:
    if server is not None:
        run = server.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        return str(run["dag_run_id"])
    import subprocess
    import sys

    run_id = "manual__cross_environment"
    subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "trigger", dag_id, "--run-id", run_id],
        env={**components["scheduler"].environ},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return run_id


@pytest.mark.timeout(300)
@pytest.mark.skipif(compat.AIRFLOW_V_3_0_PLUS, reason="Airflow 3's consumer is an asset watcher, not a task")
def test_airflow2_consumer_sensor_defers_and_receives_under_dag_test(dag_runner, aws_emulator):
    dags, errors = load_dags(str(EXAMPLES / f"{CONSUMER_DAG_ID}.py"))
    assert not errors
    consumer = dags[CONSUMER_DAG_ID]
    prepare_example(consumer, aws_emulator)  # the real producer DAG and listener publish to SNS

    result = dag_runner(consumer)

    assert result.succeeded, result
    received = task_return_values(CONSUMER_DAG_ID, result.run_id)["load_orders"]
    assert len(received) == 1
    assert received[0]["uri"] == PRODUCER_URI
    assert received[0]["environment"] == PRODUCER_ENVIRONMENT
    assert received[0]["source_dag_id"] == PRODUCER_DAG_ID
