"""The ``[mwaaops]`` getters: documented defaults, types, and a cache that follows overrides."""

from __future__ import annotations

import pytest

from airflow_provider_mwaaops import config
from airflow_provider_mwaaops.get_provider_info import get_provider_info

OPTIONS = get_provider_info()["config"]["mwaaops"]["options"]


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in OPTIONS:
        monkeypatch.delenv(f"AIRFLOW__MWAAOPS__{key.upper()}", raising=False)
    config.clear_cache()


def test_defaults_are_the_documented_ones() -> None:
    assert config.aws_conn_id() == OPTIONS["aws_conn_id"]["default"] == "aws_default"
    assert config.asset_events_queue_size() == int(OPTIONS["asset_events_queue_size"]["default"])
    assert config.api_timeout() == float(OPTIONS["api_timeout"]["default"])
    assert config.log_forwarder_enabled() is True
    assert config.environment_name() is None
    assert config.region_name() is None
    assert config.asset_events_include() == []
    assert config.api_configured() is False


def test_an_environment_override_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.environment_name() is None
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ENVIRONMENT_NAME", " prod-data ")
    assert config.environment_name() == "prod-data"
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ENVIRONMENT_NAME", "staging")
    assert config.environment_name() == "staging"


def test_values_are_cached_until_their_override_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_get = config.conf.get

    def counting_get(section: str, key: str, **kwargs: object) -> object:
        calls.append((section, key))
        return real_get(section, key, **kwargs)

    monkeypatch.setattr(config.conf, "get", counting_get)
    for _ in range(3):
        config.asset_events_sns_topic_arn()
    assert calls == [("mwaaops", "asset_events_sns_topic_arn")]
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t")
    assert config.asset_events_sns_topic_arn() == "arn:aws:sns:us-east-1:1:t"
    assert len(calls) == 2


def test_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_INCLUDE", "s3://lake/*, ,file://tmp/*")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_QUEUE_SIZE", "50")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__API_TIMEOUT", "2.5")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_FORWARDER_ENABLED", "False  # off for now")
    assert config.asset_events_include() == ["s3://lake/*", "file://tmp/*"]
    assert config.asset_events_queue_size() == 50
    assert config.api_timeout() == 2.5
    assert config.log_forwarder_enabled() is False


def test_malformed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener and the forwarder keep working on a typo; an API timeout says what is wrong."""
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_QUEUE_SIZE", "lots")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_FORWARDER_ENABLED", "maybe")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__API_TIMEOUT", "soon")
    assert config.asset_events_queue_size() == 1000
    assert config.log_forwarder_enabled() is True
    with pytest.raises(ValueError, match=r"\[mwaaops\] api_timeout = 'soon'"):
        config.api_timeout()


@pytest.mark.parametrize("key", ["MWAA_ENVIRONMENT_NAME", "API_URL", "API_USERNAME"])
def test_any_api_setting_configures_the_api(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv(f"AIRFLOW__MWAAOPS__{key}", "x")
    assert config.api_configured() is True


def test_log_reads_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.log_reads_per_second() == float(OPTIONS["log_reads_per_second"]["default"]) == 5.0
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_READS_PER_SECOND", "2.5  # half the default")
    assert config.log_reads_per_second() == 2.5
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_READS_PER_SECOND", "0")
    assert config.log_reads_per_second() == 0.0  # unlimited


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_a_bad_log_read_budget_names_the_option(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_READS_PER_SECOND", value)
    with pytest.raises(ValueError, match=rf"\[mwaaops\] log_reads_per_second = '{value}' is not a number"):
        config.log_reads_per_second()
