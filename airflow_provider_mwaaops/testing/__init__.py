"""Offline testing for DAGs that use this provider: an embedded AWS, a throw-away Airflow, and
``run_dag`` to run a DAG end to end under ``dag.test()`` on Airflow 2.11 and 3.x.

The pytest fixtures in :mod:`airflow_provider_mwaaops.testing.pytest_plugin` load automatically;
this package imports neither Airflow nor moto until they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mwaaops.testing.dag_runner import (
        DagRunResult,
        load_dags,
        run_dag,
        task_instance_states,
        task_return_values,
    )
    from airflow_provider_mwaaops.testing.emulator import AwsEmulator

__all__ = [
    "AwsEmulator",
    "DagRunResult",
    "load_dags",
    "run_dag",
    "task_instance_states",
    "task_return_values",
]

_LAZY = {
    "AwsEmulator": "airflow_provider_mwaaops.testing.emulator",
    **{
        name: "airflow_provider_mwaaops.testing.dag_runner"
        for name in ("DagRunResult", "load_dags", "run_dag", "task_instance_states", "task_return_values")
    },
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
