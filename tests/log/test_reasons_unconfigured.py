"""On Airflow 3 an unconfigured forwarder makes no call at all (a refused call per task start is waste)."""

from __future__ import annotations

import pytest

from airflow_provider_mwaaops.compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_mwaaops.log import reasons


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2 reads the event log from the database")
def test_no_api_settings_means_no_source(monkeypatch):
    for key in ("API_URL", "API_USERNAME", "MWAA_ENVIRONMENT_NAME"):
        monkeypatch.delenv(f"AIRFLOW__MWAAOPS__{key}", raising=False)
    assert isinstance(reasons.default_source(), reasons.UnconfiguredEventLogSource)


@pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 2 reads the event log from the database")
def test_an_api_url_makes_the_api_the_source(monkeypatch):
    monkeypatch.setenv("AIRFLOW__MWAAOPS__API_URL", "http://127.0.0.1:9")
    assert isinstance(reasons.default_source(), reasons.ApiEventLogSource)


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 3 reads the event log through the API")
def test_airflow_2_reads_the_database():
    assert isinstance(reasons.default_source(), reasons.DatabaseEventLogSource)
