"""Run DAGs end to end with ``dag.test()`` and read back what happened, on Airflow 2.11 and 3.x.

:func:`run_dag` is the one call most tests need; the pieces it is made of (loading a folder of DAG
files, registering an in-memory DAG, calling ``dag.test()``, reading task states and XComs) are
here too for harnesses that need one of them. The readers use the metadata database directly:
they run in the test's own process, where ORM access is allowed on both lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_mwaaops import compat


@dataclass(frozen=True)
class DagRunResult:
    """The outcome of one test run: final DagRun state and every task instance's final state."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str] = field(default_factory=dict)
    duration_seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    def tasks_in(self, state: str) -> list[str]:
        return sorted(task for task, task_state in self.task_states.items() if task_state == state)


def run_dag(
    dag: Any, conf: dict[str, Any] | None = None, logical_date: datetime | None = None
) -> DagRunResult:
    """Run ``dag`` once through ``dag.test()`` and return its final state and task states.

    Works for DAGs defined in a test module as well as DAGs from the dags folder: on Airflow 3 the
    DAG is first serialized into the dags-folder bundle, which ``dag.test()`` requires there.
    Triggers run inline, so deferrable operators really defer and resume.
    """
    register_dag_for_test(dag)
    started = time.monotonic()
    dag_run = dag_test(dag, conf=conf, logical_date=logical_date)
    duration = time.monotonic() - started
    state = dag_run.state
    return DagRunResult(
        dag_id=dag.dag_id,
        run_id=dag_run.run_id,
        state=str(getattr(state, "value", state)),
        task_states=task_instance_states(dag.dag_id, dag_run.run_id),
        duration_seconds=duration,
    )


def load_dags(folder: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse every DAG file in ``folder`` (or the one file): (DAGs by id, import errors by file)."""
    bag = compat.dag_bag(folder)
    return dict(bag.dags), dict(bag.import_errors)


def register_dag_for_test(dag: Any) -> None:
    """Make an in-memory DAG runnable by ``dag.test()``.

    Airflow 3 refuses to create a DagRun for a DAG that is not serialized in a configured bundle;
    DAGs defined in a test module (or loaded from a folder that is not the dags folder) never are.
    Airflow 2.11 runs any DAG object, but records a task's dataset events only for datasets a
    parsed DAG has registered (else "DatasetModel ... not found"), so the DAG is synced there too.
    """
    compat.sync_dag_to_db(dag)


def dag_test(dag: Any, conf: dict[str, Any] | None = None, logical_date: Any = None) -> Any:
    """``dag.test(run_conf=conf)`` at ``logical_date`` (default: now); returns the DagRun."""
    kwargs: dict[str, Any] = {"run_conf": conf}
    if logical_date is not None:
        kwargs[compat.DAG_TEST_LOGICAL_DATE_ARG] = logical_date
    return dag.test(**kwargs)


def task_instance_states(dag_id: str, run_id: str) -> dict[str, str]:
    """Final state of every task instance of one run, keyed ``task_id`` or ``task_id[map_index]``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
            .filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .all()
        )
    return {
        _task_key(task_id, map_index): str(getattr(state, "value", state))
        for task_id, map_index, state in rows
    }


def task_return_values(dag_id: str, run_id: str, key: str = "return_value") -> dict[str, Any]:
    """Every task's XCom ``key`` (its return value by default) of one run, deserialized, keyed
    like :func:`task_instance_states`."""
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = compat.run_xcom_values(session, dag_id, run_id, key)
    return {_task_key(task_id, map_index): value for task_id, map_index, value in rows}


def _task_key(task_id: str, map_index: int | None) -> str:
    return task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"
