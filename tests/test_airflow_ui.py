"""Links into the Airflow UI: the installed line's base URL and routes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_mwaaops import airflow_ui
from airflow_provider_mwaaops.compat import REACT_UI, UI_BASE_URL_SECTION


@pytest.fixture(autouse=True)
def _base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW__{UI_BASE_URL_SECTION.upper()}__BASE_URL", "https://airflow.example/")


def test_base_url_comes_from_the_lines_ui_server() -> None:
    assert airflow_ui.ui_base_url() == "https://airflow.example"


def test_task_log_url_of_a_mapped_try() -> None:
    url = airflow_ui.task_log_url(
        "orders",
        "manual__2026-01-01T00:00:00+00:00",
        "load",
        map_index=3,
        try_number=2,
        logical_date=datetime(2026, 1, 1, tzinfo=UTC),
    )
    if REACT_UI:
        assert url == (
            "https://airflow.example/dags/orders/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
            "/tasks/load/mapped/3?try_number=2"
        )
    else:
        assert url.startswith("https://airflow.example/dags/orders/grid?dag_run_id=manual__2026")
        assert "task_id=load&map_index=3&base_date=2026-01-01T00%3A00%3A00.000000%2B0000&tab=logs" in url


def test_dag_run_url() -> None:
    url = airflow_ui.dag_run_url("orders", "scheduled__x")
    if REACT_UI:
        assert url == "https://airflow.example/dags/orders/runs/scheduled__x"
    else:
        assert url == "https://airflow.example/dags/orders/grid?dag_run_id=scheduled__x"
