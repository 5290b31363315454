"""EnvironmentSnapshot: what is replayed, what stays behind, and what is never written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_mwaaops.hooks.mwaa import (
    SNAPSHOT_TAG,
    EnvironmentSnapshot,
    SnapshotError,
    environment_failure,
)

ENVIRONMENT: dict[str, Any] = {
    "Name": "prod",
    "Arn": "arn:aws:airflow:us-east-1:123456789012:environment/prod",
    "Status": "AVAILABLE",
    "CreatedAt": datetime(2026, 1, 1, tzinfo=UTC),
    "WebserverUrl": "abc.c1.us-east-1.airflow.amazonaws.com",
    "ServiceRoleArn": "arn:aws:iam::123456789012:role/aws-service-role/airflow.amazonaws.com/MWAA",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa",
    "SourceBucketArn": "arn:aws:s3:::dags",
    "DagS3Path": "dags",
    "KmsKey": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "AirflowVersion": "2.11.0",
    "AirflowConfigurationOptions": {"core.parallelism": "32", "secrets.backend_api_key": "s3cr3t"},
    "LoggingConfiguration": {
        "TaskLogs": {
            "Enabled": True,
            "LogLevel": "INFO",
            "CloudWatchLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:airflow-prod-Task",
        }
    },
    "LastUpdate": {"Status": "SUCCESS", "CreatedAt": datetime(2026, 1, 2, tzinfo=UTC)},
    "Tags": {"team": "data", "aws:cloudformation:stack-name": "x", SNAPSHOT_TAG: "old"},
}


def _snapshot() -> EnvironmentSnapshot:
    return EnvironmentSnapshot.from_environment(
        ENVIRONMENT,
        account_id="123456789012",
        region="us-east-1",
        taken_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
    )


def test_parts_are_split() -> None:
    snapshot = _snapshot()
    assert set(snapshot.region_bound) == {
        "ExecutionRoleArn",
        "SourceBucketArn",
        "KmsKey",
        "NetworkConfiguration",
    }
    assert {"Arn", "Status", "CreatedAt", "WebserverUrl", "ServiceRoleArn", "LastUpdate"} <= set(
        snapshot.read_only
    )
    assert snapshot.configuration["LoggingConfiguration"] == {
        "TaskLogs": {"Enabled": True, "LogLevel": "INFO"}
    }
    assert snapshot.read_only["LoggingConfiguration"]["TaskLogs"].endswith("log-group:airflow-prod-Task")
    assert snapshot.configuration["Tags"] == {"team": "data"}  # neither aws: nor our own tags
    assert snapshot.key("snaps/") == "snaps/prod/20260304T050607000000Z.json"


def test_secret_options_are_withheld_and_asked_for_again() -> None:
    snapshot = _snapshot()
    assert snapshot.withheld_configuration_options == ["secrets.backend_api_key"]
    assert "s3cr3t" not in snapshot.to_json()
    with pytest.raises(ValueError, match="withheld secret Airflow configuration options"):
        snapshot.create_request()
    request = snapshot.create_request(
        overrides={"AirflowConfigurationOptions": {"secrets.backend_api_key": "k"}}
    )
    assert request["AirflowConfigurationOptions"] == {
        "core.parallelism": "32",
        "secrets.backend_api_key": "k",
    }
    assert request["Tags"][SNAPSHOT_TAG] == snapshot.sha256
    assert request["Name"] == "prod"
    assert request["KmsKey"] == ENVIRONMENT["KmsKey"]
    without_key = snapshot.create_request(overrides={"KmsKey": None}, allow_missing_secrets=True)
    assert "KmsKey" not in without_key


def test_round_trip_and_checks() -> None:
    snapshot = _snapshot()
    assert EnvironmentSnapshot.from_json(snapshot.to_json()) == snapshot
    document = json.loads(snapshot.to_json())
    with pytest.raises(SnapshotError, match="not an MWAA environment snapshot"):
        EnvironmentSnapshot.from_json(json.dumps({**document, "format": "something-else"}))
    with pytest.raises(SnapshotError, match="not JSON"):
        EnvironmentSnapshot.from_json("{")
    del document["source"]
    with pytest.raises(SnapshotError, match="lacks a required part"):
        EnvironmentSnapshot.from_json(json.dumps(document))


def test_environment_failure_reads_last_update() -> None:
    failed = {"LastUpdate": {"Error": {"ErrorCode": "INCORRECT_CONFIGURATION", "ErrorMessage": "no route"}}}
    assert environment_failure(failed) == "INCORRECT_CONFIGURATION: no route"
    assert "gave no reason" in environment_failure({"LastUpdate": {}})
