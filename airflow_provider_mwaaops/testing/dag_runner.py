"""Run a DAG end to end with ``dag.test()`` and report what happened, on Airflow 2.11 and 3.x."""

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
    compat.register_dag_for_test(dag)
    started = time.monotonic()
    dag_run = compat.dag_test(dag, conf=conf, logical_date=logical_date)
    duration = time.monotonic() - started
    state = dag_run.state
    return DagRunResult(
        dag_id=dag.dag_id,
        run_id=dag_run.run_id,
        state=str(getattr(state, "value", state)),
        task_states=compat.task_instance_states(dag.dag_id, dag_run.run_id),
        duration_seconds=duration,
    )
