"""The loopback API server fixture: real auth, shared metadata DB, clear errors."""

from __future__ import annotations

import pytest

from airflow_provider_mwaaops.testing.api_server import ApiServerError


def test_api_server_sees_the_test_process_database(airflow_api_server, mwaaops_airflow):
    from airflow.models.variable import Variable  # the ORM model: written here, read by the server

    Variable.set("mwaaops_api_server_probe", "seen")
    answer = airflow_api_server.request("GET", "/api/v2/variables/mwaaops_api_server_probe")
    assert answer["value"] == "seen"


def test_api_server_rejects_requests_without_a_token(airflow_api_server):
    with pytest.raises(ApiServerError) as err:
        airflow_api_server._send("GET", "/api/v2/pools", auth=False)
    assert err.value.status == 401


def test_two_servers_on_one_airflow_keep_their_own_credentials(airflow_api_server, mwaaops_airflow):
    from airflow_provider_mwaaops.testing.api_server import AirflowApiServer

    with AirflowApiServer(mwaaops_airflow) as second:
        assert second.request("GET", "/api/v2/pools")["total_entries"] >= 1
    airflow_api_server._token = None  # log in again after the second server wrote its password
    assert airflow_api_server.request("GET", "/api/v2/pools")["total_entries"] >= 1
