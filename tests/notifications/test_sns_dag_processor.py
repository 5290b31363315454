"""DAG-level SnsRunStatusNotifier on the path production Airflow 3 takes: the dag processor.

On Airflow 3 a DAG's on_success/on_failure callbacks do not run where the run finished: the
scheduler turns them into a ``DagCallbackRequest`` and a dag-processor child process (the Task
SDK's ``DagFileProcessorProcess``) parses the DAG file and calls them, with a context Airflow builds
from the request (``_execute_dag_callbacks``) and Variables fetched over the supervisor channel.

``dag.test()`` instead calls them in-process with the *serialized* DAG in the context, where
Airflow's own ``BaseNotifier`` cannot render templates (apache/airflow#64649; SnsRunStatusNotifier works
around it, see test_sns_callbacks). So this test finishes a real run with ``dag.test()``, asks
the finished DagRun for the callback request exactly as the scheduler does
(``DagRun.produce_dag_callback(execute=False)``; on 3.0 ``update_state(execute_callbacks=False)``),
and hands it to a real ``DagFileProcessorProcess``
the way ``DagFileProcessorManager`` does: a forked child, the in-process Execution API, the
manager's socket loop.
"""

from __future__ import annotations

import inspect
import selectors
import textwrap
import time
from pathlib import Path

import pytest

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

pytestmark = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 runs DAG callbacks inline")

DAG_FILE = textwrap.dedent(
    '''
    """DAG whose own on_failure_callback is an SnsRunStatusNotifier with a templated topic ARN."""
    import datetime

    from airflow_provider_mwaaops.compat import DAG, task
    from airflow_provider_mwaaops.notifications.sns import SnsRunStatusNotifier

    with DAG(
        "notifier_dag_processor",
        schedule=None,
        start_date=datetime.datetime(2026, 1, 1),
        on_failure_callback=SnsRunStatusNotifier(
            target_arn="{{ var.value.target_sns_arn }}",
            message="Run {{ run_id }} failed at {{ ti.task_id }}",
        ),
    ) as dag:

        @task
        def breaks() -> None:
            raise RuntimeError("the warehouse is gone")

        breaks()

    if __name__ == "__main__":
        dag.test()
    '''
)


def run_callbacks_like_the_dag_processor(dag_file: Path, bundle_path: Path, callbacks: list) -> str:
    """Parse ``dag_file`` in a dag-processor child and run ``callbacks`` there; returns its log."""
    import structlog
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.dag_processing.processor import DagFileProcessorProcess
    from airflow.sdk.api.client import Client
    from airflow.sdk.log import logging_processors
    from uuid6 import uuid7

    api = InProcessExecutionAPI()
    client = Client(base_url=None, token="", dry_run=True, transport=api.transport)
    client.base_url = "http://in-process.invalid./"  # type: ignore[assignment]
    log_path = dag_file.with_suffix(".processor.log")
    selector = selectors.DefaultSelector()
    with log_path.open("ab") as handle:
        # JSON lines, as the manager writes a processor's log (Airflow 3.0 names the flag the other way).
        if "json_output" in inspect.signature(logging_processors).parameters:
            processors = logging_processors(json_output=True)
        else:
            processors, _ = logging_processors(enable_pretty_log=False)
        logger = structlog.wrap_logger(
            structlog.BytesLogger(handle), processors=processors, logger_name="processor"
        ).bind()
        # Airflow 3.0's manager does not name the bundle or the file's relative path to its processors.
        start_parameters = inspect.signature(DagFileProcessorProcess.start).parameters
        bundle = (
            {"bundle_name": "dags-folder", "dag_file_rel_path": dag_file.name}
            if "bundle_name" in start_parameters
            else {}
        )
        process = DagFileProcessorProcess.start(
            id=uuid7(),
            path=dag_file,
            bundle_path=bundle_path,
            **bundle,
            callbacks=callbacks,
            selector=selector,
            logger=logger,
            logger_filehandle=handle,
            client=client,
        )
        deadline = time.monotonic() + 120
        while not process.is_ready:
            assert time.monotonic() < deadline, "dag processor child did not finish"
            for key, _ in selector.select(timeout=1.0):
                handler, on_close = key.data
                try:
                    more = handler(key.fileobj)
                except (BrokenPipeError, ConnectionResetError):
                    more = False
                if not more:
                    on_close(key.fileobj)
                    key.fileobj.close()
    return log_path.read_text(errors="replace")


def test_dag_failure_callback_in_the_dag_processor(mwaaops_airflow, aws_emulator, sns_inbox, monkeypatch):
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mwaaops.testing.dag_runner import load_dags, run_dag

    inbox = sns_inbox("dag-processor")
    monkeypatch.setenv("AIRFLOW_VAR_TARGET_SNS_ARN", inbox.topic_arn)
    dags_folder = Path(mwaaops_airflow.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dag_file = dags_folder / "notifier_dag_processor.py"
    dag_file.write_text(DAG_FILE)
    try:
        dags, errors = load_dags(str(dag_file))
        assert not errors, errors
        result = run_dag(dags["notifier_dag_processor"])
        assert result.state == "failed"
        inline = inbox.drain()  # what dag.test() itself delivered (the #64649 path)
        assert [m.attributes["level"] for m in inline] == ["dag"]

        with create_session() as session:
            dag_run = session.scalar(
                select(DagRun).where(DagRun.dag_id == result.dag_id, DagRun.run_id == result.run_id)
            )
            serialized = SerializedDagModel.get_dag(result.dag_id, session=session)
            failed_ti = next(ti for ti in dag_run.get_task_instances(session=session) if ti.state == "failed")
            if hasattr(dag_run, "produce_dag_callback"):
                request = dag_run.produce_dag_callback(
                    dag=serialized, success=False, relevant_ti=failed_ti, reason="task_failure", execute=False
                )
            else:
                # Airflow 3.0's scheduler gets the request from update_state(execute_callbacks=False)
                # (airflow/models/dagrun.py), which re-derives the finished run's state from its tasks.
                dag_run.dag = serialized
                _, request = dag_run.update_state(session=session, execute_callbacks=False)
            assert request is not None
            request = type(request).model_validate_json(request.to_json())  # as the DB queue stores it

        processor_log = run_callbacks_like_the_dag_processor(dag_file, dags_folder, [request])
    finally:
        dag_file.unlink()

    (message,) = inbox.drain()
    doc = message.document
    assert doc["level"] == "dag"
    assert doc["dag_id"] == "notifier_dag_processor"
    assert doc["run_id"] == result.run_id
    assert doc["state"] == "failed"
    assert doc["reason"] == "task_failure"
    assert doc["last_task_id"] == "breaks"
    assert doc["logical_date"]
    assert doc["log_url"].startswith("http://localhost:8080/dags/notifier_dag_processor/runs/")
    # Templates rendered in the child: the Variable came over the supervisor channel.
    assert doc["body"] == f"Run {result.run_id} failed at breaks"
    assert message.attributes["state"] == "failed"
    assert "Callback failed" not in processor_log, processor_log
