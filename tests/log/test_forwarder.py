"""The listener: registered through the plugin, logs the reasons, stays quiet when it should."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mwaaops.log.forwarder import LINE_PREFIX, LogForwarder
from airflow_provider_mwaaops.log.reasons import DatabaseEventLogSource

FORWARDER_LOGGER = "airflow_provider_mwaaops.log.forwarder"


def test_plugin_entry_point_registers_the_forwarder_for_task_starts(mwaaops_airflow: Any) -> None:
    from airflow.listeners.listener import get_listener_manager

    from airflow_provider_mwaaops.log.forwarder import log_forwarder

    manager = get_listener_manager()
    assert manager.pm.is_registered(log_forwarder)
    hooks = {
        impl.function.__name__
        for hook in manager.pm.get_hookcallers(log_forwarder)
        for impl in hook.get_hookimpls()
        if impl.plugin is log_forwarder
    }
    assert hooks == {"on_task_instance_running"}


@pytest.fixture
def timed_out_try(mwaaops_airflow: Any, request: pytest.FixtureRequest) -> SimpleNamespace:
    """A task instance at try 2 whose try 1 the scheduler declared dead (row written as it does)."""
    from airflow.models.log import Log
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.utils.session import create_session

    run_id = f"run_{request.node.name}"
    with create_session() as session:
        session.add(
            Log(
                event="heartbeat timeout",
                task_instance=TaskInstanceKey("fwd_dag", "task", run_id, 1, -1),
                extra="Task did not emit heartbeat within time limit (300 seconds) and will be terminated.",
            )
        )
    return SimpleNamespace(
        dag_id="fwd_dag",
        task_id="task",
        run_id=run_id,
        map_index=-1,
        try_number=2,
        next_method=None,
        _ti_context_from_server=SimpleNamespace(next_method=None),
    )


def _forwarded(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == FORWARDER_LOGGER]


def test_a_retry_start_logs_why_airflow_ended_the_previous_try(
    timed_out_try: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    forwarder = LogForwarder(source=DatabaseEventLogSource())

    with caplog.at_level(logging.INFO, logger=FORWARDER_LOGGER):
        forwarder.on_task_instance_running(previous_state="queued", task_instance=timed_out_try)

    lines = _forwarded(caplog)
    assert len(lines) == 1
    assert lines[0].startswith(f"{LINE_PREFIX}Try 1 was ended by Airflow: heartbeat timeout")
    assert "(300 seconds)" in lines[0]


def test_disabled_forwarder_and_resumed_tries_log_nothing(
    timed_out_try: SimpleNamespace, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarder = LogForwarder(source=DatabaseEventLogSource())
    # Resuming after a deferral is the same try starting again: its reasons were already logged.
    resumed = SimpleNamespace(
        **{
            **vars(timed_out_try),
            "next_method": "execute_complete",
            "_ti_context_from_server": SimpleNamespace(next_method="execute_complete"),
        }
    )

    with caplog.at_level(logging.INFO, logger=FORWARDER_LOGGER):
        forwarder.on_task_instance_running(previous_state="deferred", task_instance=resumed)
        monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_FORWARDER_ENABLED", "False")
        forwarder.on_task_instance_running(previous_state="queued", task_instance=timed_out_try)

    assert _forwarded(caplog) == []


def test_a_task_instance_the_listener_cannot_read_does_not_raise() -> None:
    # Not even a task instance: the hook must still return quietly (on 2.11 a raise fails the task).
    LogForwarder(source=DatabaseEventLogSource()).on_task_instance_running(
        previous_state=None, task_instance=object()
    )
