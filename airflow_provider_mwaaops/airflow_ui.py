"""Links into the Airflow UI, for messages that leave Airflow (notifications).

The UI's address is ``base_url`` of the line's UI server and its routes differ: Airflow 3's React
UI has a page per task instance and try, 2.11's grid view takes the same as query parameters.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from airflow_provider_mwaaops.compat import REACT_UI, UI_BASE_URL_SECTION, conf


def ui_base_url() -> str:
    """The Airflow UI's base URL: ``[api] base_url`` on Airflow 3, ``[webserver] base_url`` on 2.11."""
    url = conf.get(UI_BASE_URL_SECTION, "base_url", fallback="") or "http://localhost:8080"
    return url.rstrip("/")


def task_log_url(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int = -1,
    try_number: int | None = None,
    logical_date: Any = None,
) -> str:
    """Link to one try's log in the Airflow UI (the task instance's page, or the grid's log tab)."""
    base = ui_base_url()
    if REACT_UI:
        url = f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
        if map_index is not None and map_index >= 0:
            url += f"/mapped/{map_index}"
        return url + (f"?try_number={try_number}" if try_number and try_number > 0 else "")
    params: dict[str, Any] = {"dag_run_id": run_id, "task_id": task_id}
    if map_index is not None and map_index >= 0:
        params["map_index"] = map_index
    if logical_date is not None:
        params["base_date"] = logical_date.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    params["tab"] = "logs"
    return f"{base}/dags/{quote(dag_id)}/grid?{urlencode(params)}"


def dag_run_url(dag_id: str, run_id: str) -> str:
    """Link to one DAG run in the Airflow UI."""
    base = ui_base_url()
    if REACT_UI:
        return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
    return f"{base}/dags/{quote(dag_id)}/grid?{urlencode({'dag_run_id': run_id})}"
