"""Airflow 3's supported restore path: variables, pools, connections and DAG re-activation through a
real ``airflow api-server`` on loopback (the restore never opens the server's database)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_provider_mwaaops.metadata.restore import RestoreOptions
from airflow_provider_mwaaops.metadata.sinks import open_sink
from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

POPULATE = str(Path(__file__).with_name("populate_source.py"))
#: Real Airflow processes (history, exports, migrations) on a busy 2-core machine take minutes.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS

    if not AIRFLOW_V_3_0_PLUS:
        pytest.skip("the REST restore path is Airflow 3's")
    base = tmp_path_factory.mktemp("api-restore")
    key = Fernet.generate_key().decode()
    source = IsolatedAirflow(base / "home").migrate()
    source.run_python(POPULATE, "populate", str(base / "exports"), key, "backup-1", python=sys.executable)
    return base / "exports", key


def _client(server: Any) -> Any:
    from airflow_provider_mwaaops.airflow_api import AirflowApiClient

    return AirflowApiClient.from_url(server.url, username="admin", password=server.password)


def _paused_copies_of_the_source_dags(server: Any) -> None:
    """The new environment has parsed the same DAG files: present, paused at creation."""
    from airflow_provider_mwaaops.compat import DAG, register_dag_for_test, task

    for dag_id in ("restore_source_ok", "restore_source_failing"):
        with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1)) as dag:

            @task
            def noop() -> None:
                pass

            noop()
        register_dag_for_test(dag)
        server.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": True})


def test_rest_restore_of_pools_variables_connections_and_dag_state(airflow_api_server, export):
    from airflow_provider_mwaaops.metadata.restore.rest import restore_through_api

    exports, key = export
    _paused_copies_of_the_source_dags(airflow_api_server)
    options = RestoreOptions(export_key=key)
    report = restore_through_api(open_sink(str(exports)), "backup-1", _client(airflow_api_server), options)

    assert report.tables["variable"].inserted == 2
    assert report.tables["connection"].inserted == 1
    assert report.tables["slot_pool"].inserted == 1  # restore_pool; default_pool is unchanged
    assert report.reactivated_dags == ["restore_source_ok"]
    not_restorable = report.ignored_columns["(not restorable through the API; needs database access)"]
    assert {"dag_run", "task_instance", "log", "job"} <= set(not_restorable)

    api = airflow_api_server
    assert api.request("GET", "/api/v2/variables/restore_canary_var")["value"] == "canary-variable-9a7f"
    pool = api.request("GET", "/api/v2/pools/restore_pool")
    assert (pool["slots"], pool["description"]) == (3, "restored pool")
    connection = api.request("GET", "/api/v2/connections/restore_canary")
    assert (connection["conn_type"], connection["host"], connection["login"]) == (
        "postgres",
        "db.example",
        "etl",
    )
    dags = {d["dag_id"]: d["is_paused"] for d in api.request("GET", "/api/v2/dags")["dags"]}
    assert dags["restore_source_ok"] is False
    assert dags["restore_source_failing"] is True
    # the password the API never shows went in: read it from the server's database, as Airflow would
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = session.query(Connection).filter(Connection.conn_id == "restore_canary").one()
        assert stored.password == "canary-password-5c1e"

    again = restore_through_api(open_sink(str(exports)), "backup-1", _client(airflow_api_server), options)
    assert again.changed_rows == 0, again.summary()
    assert again.reactivated_dags == []


def test_rest_dry_run_changes_nothing(airflow_api_server, export):
    from airflow_provider_mwaaops.metadata.restore.rest import restore_through_api

    exports, key = export
    restore_through_api(
        open_sink(str(exports)), "backup-1", _client(airflow_api_server), RestoreOptions(export_key=key)
    )
    changed = {"pool": "restore_pool", "slots": 9, "description": "restored pool", "include_deferred": False}
    airflow_api_server.request("PATCH", "/api/v2/pools/restore_pool", json=changed)
    report = restore_through_api(
        open_sink(str(exports)),
        "backup-1",
        _client(airflow_api_server),
        RestoreOptions(export_key=key, dry_run=True),
    )
    assert report.tables["slot_pool"].updated == 1
    assert airflow_api_server.request("GET", "/api/v2/pools/restore_pool")["slots"] == 9
