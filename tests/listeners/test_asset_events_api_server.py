"""Airflow 3: the asset-change hooks run in the API server process; check them there, for real.

A real ``airflow api-server`` on loopback (sharing the session's isolated Airflow DB and the
emulator) carries the listener configuration; this test process does not, so every message that
arrives was published by the API server's copy of the listener.
"""

from __future__ import annotations

import pytest

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.testing.dag_runner import register_dag_for_test

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not compat.AIRFLOW_V_3_0_PLUS, reason="the API server exists on Airflow 3 only"),
]

SUFFIX = "-api"


@pytest.fixture(scope="module")
def api_server(mwaaops_airflow, _mwaaops_emulator_server, listener_environ_for):
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

    environ = {**_mwaaops_emulator_server.environ(), **listener_environ_for(SUFFIX, "api-server-env")}
    with AirflowApiServer(mwaaops_airflow, extra_environ=environ) as server:
        yield server


def test_rest_api_asset_event_is_published_by_the_api_server(api_server, targets_named, unique_uri):
    targets = targets_named(SUFFIX)  # same names, so the ARNs the server was given
    uri = unique_uri("api/orders")
    with compat.DAG("asset_events_api_producer", schedule=None) as dag:
        compat.BaseOperator(task_id="produce", outlets=[compat.Asset(uri)])
    register_dag_for_test(dag)  # creates the asset in the shared DB (in this process)
    assets = api_server.request("GET", "/api/v2/assets", params={"uri_pattern": uri})["assets"]
    assert len(assets) == 1

    api_server.request("POST", "/api/v2/assets/events", json={"asset_id": assets[0]["id"], "extra": {"k": 1}})

    for messages in (targets.sns_messages(1), targets.bus_messages(1)):
        assert len(messages) == 1, messages
        event = messages[0]
        assert event["event_type"] == "changed"
        assert event["airflow_hook"] == "on_asset_event_emitted"
        assert event["environment"] == "api-server-env"  # only the server has this configuration
        assert event["asset"]["uri"] == uri
        assert event["event"]["extra"]["k"] == 1
        assert event["event"]["source_dag_id"] is None  # from the REST API, not a task
