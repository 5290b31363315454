"""The component runner starts real Airflow processes, captures their logs and stops them cleanly."""

from __future__ import annotations

import os

import pytest

from airflow_provider_mwaaops.testing.components import (
    AirflowComponent,
    AirflowComponents,
    ComponentError,
    config_environ,
)


def test_config_environ_names_airflow_variables() -> None:
    environ = config_environ({"scheduler": {"task_queued_timeout": 5.0, "standalone": True}})

    assert environ == {
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "5.0",
        "AIRFLOW__SCHEDULER__STANDALONE": "True",
    }


@pytest.mark.timeout(180)
def test_scheduler_runs_with_config_and_stops_with_its_children(mwaaops_airflow) -> None:
    # Airflow 2.11 refuses SQLite with LocalExecutor; SequentialExecutor starts on both lines' SQLite.
    executor = "LocalExecutor" if _airflow_3() else "SequentialExecutor"
    components = AirflowComponents(
        mwaaops_airflow, ["scheduler"], config={"core": {"executor": executor}, "scheduler": {"num_runs": -1}}
    )
    with components:
        scheduler = components["scheduler"]
        scheduler.wait_for_output("Starting the scheduler", timeout=120)
        pid = scheduler.pid
        assert scheduler.running
        assert scheduler.environ["AIRFLOW__CORE__EXECUTOR"] == executor

    assert not scheduler.running
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone, executor workers included
    assert "Starting the scheduler" in scheduler.output()


@pytest.mark.timeout(120)
def test_a_component_that_dies_fails_the_wait_with_its_log(mwaaops_airflow) -> None:
    with (
        AirflowComponent(mwaaops_airflow, ["no-such-command"]) as component,
        pytest.raises(ComponentError, match=r"(?s)exited with .*no-such-command"),
    ):
        component.wait_for_output("never printed", timeout=120)


def _airflow_3() -> bool:
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    return AIRFLOW_V_3_0_PLUS
