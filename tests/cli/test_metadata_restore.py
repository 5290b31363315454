"""``mwaaops metadata restore``: the self-managed restore path, with exit codes and the task token."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mwaaops.cli import main
from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow


@pytest.fixture
def exported(tmp_path: Path, dag_runner: Any) -> Path:
    """History in the session's Airflow, exported with the real exporter."""
    from airflow_provider_mwaaops.compat import DAG, task
    from airflow_provider_mwaaops.metadata.export import run_export
    from airflow_provider_mwaaops.metadata.sinks import open_sink
    from airflow_provider_mwaaops.metadata.sources.database import DatabaseSource

    with DAG("restore_cli_history", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task
        def work() -> int:
            return 1

        work()
    assert dag_runner(dag).succeeded
    source = DatabaseSource()
    try:
        run_export(source, open_sink(str(tmp_path / "exports")), export_id="cli-1")
    finally:
        source.close()
    return tmp_path / "exports"


@pytest.fixture
def target(tmp_path: Path) -> IsolatedAirflow:
    return IsolatedAirflow(tmp_path / "target").migrate()


def _json_out(text: str) -> dict:
    """The JSON document the command printed (Airflow 2 may log to stdout before it)."""
    return json.loads(text[text.index("\n{") + 1 :] if not text.startswith("{") else text)


def test_dry_run_then_restore_then_nothing_left_to_do(exported, target, capsys):
    url = target.sql_alchemy_conn
    assert main(["metadata", "restore", str(exported), "cli-1", "--url", url, "--dry-run", "--json"]) == 0
    planned = _json_out(capsys.readouterr().out)
    assert planned["dry_run"] is True
    assert planned["tables"]["dag_run"]["inserted"] >= 1

    assert main(["metadata", "restore", str(exported), "--url", url, "--json"]) == 0  # latest export
    done = _json_out(capsys.readouterr().out)
    assert done["changed_rows"] == planned["changed_rows"] > 0

    assert main(["metadata", "restore", str(exported), "cli-1", "--url", url, "--strict"]) == 2
    assert "strict restore refused" in capsys.readouterr().err
    assert main(["metadata", "restore", str(exported), "cli-1", "--url", url]) == 0
    assert "0 rows changed" in capsys.readouterr().out


def test_corrupt_export_is_refused_with_exit_code_2(exported, target, capsys):
    manifest = json.loads((exported / "cli-1" / "manifest.json").read_text())
    path = manifest["tables"]["task_instance"]["files"][0]["path"]
    (exported / "cli-1" / path).write_bytes(b"not parquet at all")
    assert main(["metadata", "restore", str(exported), "cli-1", "--url", target.sql_alchemy_conn]) == 2
    err = capsys.readouterr().err
    assert "mwaaops: error:" in err
    assert path in err


def test_missing_export_is_refused(tmp_path, target, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["metadata", "restore", str(tmp_path / "empty"), "--url", target.sql_alchemy_conn]) == 2
    assert "no complete export" in capsys.readouterr().err


def test_task_token_is_answered_with_the_report(exported, target, aws_emulator, capsys):
    sqs, sfn = aws_emulator.client("sqs"), aws_emulator.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName="cli-tokens")["QueueUrl"]
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
    machine = sfn.create_state_machine(
        name="cli-restore", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/s"
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="cli-1", input="{}")
    token = None
    deadline = time.monotonic() + 15
    while token is None and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            token = json.loads(message["Body"])["token"]
    assert token
    argv = ["metadata", "restore", str(exported), "cli-1", "--url", target.sql_alchemy_conn]
    assert main([*argv, "--task-token", token, "--aws-conn-id", "aws_default"]) == 0
    described = aws_emulator.wait_for_execution(execution["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["export_ids"] == ["cli-1"]
