"""What the analysis tests share: a probe DAG, history moved to known times, exports of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def fail_on_request_dag() -> Callable[[str], Any]:
    """Builds a DAG of one task that fails when its run's conf says ``fail``."""

    def build(dag_id: str) -> Any:
        from airflow_provider_mwaaops.compat import DAG, task

        with DAG(dag_id, schedule=None, start_date=datetime(2025, 1, 1), catchup=False) as dag:

            @task
            def work(**context) -> None:
                if (context["dag_run"].conf or {}).get("fail"):
                    raise ValueError("asked to fail")

            work()
        return dag

    return build


@pytest.fixture(scope="session")
def update_run() -> Callable[..., None]:
    """Sets columns of one dag run in this Airflow's metadata database, as months of history
    would have left them: ``update_run(dag_id, run_id, start_date=..., state=...)``."""

    def update(dag_id: str, run_id: str, **values: Any) -> None:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import update

        with create_session() as session:
            session.execute(
                update(DagRun)
                .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    return update


@pytest.fixture(scope="session")
def export_history() -> Callable[..., Any]:
    """Exports ``tables`` of this Airflow's metadata database as the export operator does:
    ``export_history(base, export_id, mode, tables, **sink_options)`` returns the manifest."""

    def export(
        base: Path | str, export_id: str, mode: str, tables: Sequence[str], **sink_options: Any
    ) -> Any:
        from airflow_provider_mwaaops.metadata.export import ExportSettings, export_metadata
        from airflow_provider_mwaaops.metadata.sinks import open_sink

        settings = ExportSettings(export_id=export_id, mode=mode, tables=tables)
        return export_metadata(open_sink(str(base), **sink_options), settings)

    return export
