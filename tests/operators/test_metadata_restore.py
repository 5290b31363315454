"""MetadataRestoreOperator under dag.test(): restores into a fresh metadata DB and answers the
waiting Step Functions task (success once; failure once, and only when no retry is left)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

ROLE_ARN = "arn:aws:iam::123456789012:role/states"


def export_session_db(tmp_path: Path, dag_runner: Any) -> Path:
    """Some history in the test session's own Airflow, exported with the real exporter."""
    from airflow_provider_mwaaops.compat import DAG, task
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    with DAG("restore_operator_history", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task
        def work() -> int:
            return 7

        work()
    assert dag_runner(dag).succeeded
    exports = tmp_path / "exports"
    source = DatabaseSource()
    try:
        run_export(source, open_sink(str(exports)), export_id="op-1")
    finally:
        source.close()
    return exports


def waiting_execution(aws: Any, name: str) -> tuple[str, str]:
    sqs, sfn = aws.client("sqs"), aws.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName=f"tokens-{name}")["QueueUrl"]
    definition = {
        "StartAt": "Restore",
        "States": {
            "Restore": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name, input="{}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            return execution["executionArn"], json.loads(message["Body"])["token"]
    raise AssertionError("no task token")


def callback_events(aws: Any, execution: str) -> list[dict[str, Any]]:
    events = aws.client("stepfunctions").get_execution_history(executionArn=execution)["events"]
    return [e for e in events if e["type"] in ("TaskSucceeded", "TaskFailed")]


def _try_number(dag_id: str, run_id: str) -> int:
    engine = sa.create_engine(_session_db_url())
    try:
        with engine.connect() as conn:
            query = "SELECT try_number FROM task_instance WHERE dag_id = :d AND run_id = :r"
            return int(conn.execute(sa.text(query), {"d": dag_id, "r": run_id}).scalar())
    finally:
        engine.dispose()


def _session_db_url() -> str:
    from airflow_provider_mwaaops.compat import conf

    return str(conf.get("database", "sql_alchemy_conn"))


def restore_dag(dag_id: str, exports: Path, url: str, **kwargs: Any) -> Any:
    from airflow_provider_mwaaops.compat import DAG
    from airflow_provider_mwaaops.operators.metadata_restore import MetadataRestoreOperator

    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        MetadataRestoreOperator(
            task_id="restore",
            export_uri=str(exports),
            target_sql_alchemy_url=url,
            task_token="{{ dag_run.conf['task_token'] }}",
            **kwargs,
        )
    return dag


def test_restore_then_success_is_sent_to_the_waiting_task(dag_runner, aws_emulator, tmp_path):
    exports = export_session_db(tmp_path, dag_runner)
    target = IsolatedAirflow(tmp_path / "target").migrate()
    execution, token = waiting_execution(aws_emulator, "dr-ok")
    result = dag_runner(
        restore_dag("restore_op_ok", exports, target.sql_alchemy_conn), conf={"task_token": token}
    )
    assert result.succeeded, result
    described = aws_emulator.wait_for_execution(execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["export_ids"] == ["op-1"]
    assert output["tables"]["dag_run"]["inserted"] >= 1
    assert [e["type"] for e in callback_events(aws_emulator, execution)] == ["TaskSucceeded"]
    engine = sa.create_engine(target.sql_alchemy_conn)
    with engine.connect() as conn:
        runs = conn.execute(
            sa.text("SELECT run_id FROM dag_run WHERE dag_id = 'restore_operator_history'")
        ).all()
    engine.dispose()
    assert runs


@pytest.mark.timeout(300)
def test_failure_is_sent_once_on_the_last_try_only(dag_runner, aws_emulator, tmp_path, monkeypatch):
    from airflow_provider_mwaaops.aws.task_token import TaskTokenReporter

    attempts: list[str] = []
    original_send = TaskTokenReporter._send

    def recording_send(self, verb, call):
        attempts.append(verb)
        return original_send(self, verb, call)

    monkeypatch.setattr(TaskTokenReporter, "_send", recording_send)
    exports = export_session_db(tmp_path, dag_runner)
    manifest = json.loads((exports / "op-1" / "manifest.json").read_text())
    broken = exports / "op-1" / manifest["tables"]["dag_run"]["files"][0]["path"]
    broken.write_bytes(broken.read_bytes()[:-10] + b"corrupted!")
    target = IsolatedAirflow(tmp_path / "target").migrate()
    execution, token = waiting_execution(aws_emulator, "dr-bad")
    dag = restore_dag(
        "restore_op_bad", exports, target.sql_alchemy_conn, retries=1, retry_delay=timedelta(seconds=0)
    )
    result = dag_runner(dag, conf={"task_token": token})
    assert result.task_states["restore"] == "failed"
    assert attempts == ["failure"]  # the first try failed too, but left the token alone
    assert _try_number(result.dag_id, result.run_id) == 2
    assert aws_emulator.wait_for_execution(execution)["status"] == "FAILED"
    events = callback_events(aws_emulator, execution)
    assert [e["type"] for e in events] == ["TaskFailed"]
    details = events[0]["taskFailedEventDetails"]
    assert details["error"] == "MetadataRestoreFailed"
    assert "checksum" in details["cause"]
    assert "dag_run" in details["cause"]


def test_airflow3_needs_an_explicit_target_airflow2_defaults_to_its_own_db():
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS, AirflowException
    from airflow_provider_mwaaops.operators.metadata_restore import MetadataRestoreOperator

    operator = MetadataRestoreOperator(task_id="r", export_uri="/tmp/none")
    if AIRFLOW_V_3_0_PLUS:
        with pytest.raises(AirflowException, match="may not write the metadata database"):
            operator.target_url()
    else:
        from airflow_provider_mwaaops.compat import conf

        assert operator.target_url() == conf.get("database", "sql_alchemy_conn")


def test_bad_arguments_are_refused_at_parse_time():
    from airflow_provider_mwaaops.operators.metadata_restore import MetadataRestoreOperator

    with pytest.raises(ValueError, match="target="):
        MetadataRestoreOperator(task_id="r", export_uri="x", target="ftp")
    with pytest.raises(ValueError, match="not both"):
        MetadataRestoreOperator(task_id="r", export_uri="x", target_conn_id="a", target_sql_alchemy_url="b")
