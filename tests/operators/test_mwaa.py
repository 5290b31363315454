"""MWAA snapshot, create-from-snapshot and update operators against the emulated MWAA."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mwaaops.compat import AirflowException

BUCKET = "dr-snapshots"
PRIMARY = "prod"
SECONDARY_REGION = "us-west-2"
SPEC: dict[str, Any] = {
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/mwaa-east",
    "SourceBucketArn": "arn:aws:s3:::dags-east",
    "DagS3Path": "dags",
    "PluginsS3Path": "plugins.zip",
    "PluginsS3ObjectVersion": "v-east-1",
    "NetworkConfiguration": {"SubnetIds": ["subnet-e1", "subnet-e2"], "SecurityGroupIds": ["sg-e1"]},
    "AirflowVersion": "2.11.0",
    "EnvironmentClass": "mw1.medium",
    "MaxWorkers": 7,
    "AirflowConfigurationOptions": {"core.parallelism": "64", "smtp.smtp_password": "hunter2"},
    "Tags": {"team": "data"},
}
WEST = {
    "network_configuration": {"SubnetIds": ["subnet-w1", "subnet-w2"], "SecurityGroupIds": ["sg-w1"]},
    "source_bucket_arn": "arn:aws:s3:::dags-west",
    "execution_role_arn": "arn:aws:iam::123456789012:role/mwaa-west",
}


@pytest.fixture
def primary(aws_emulator: Any) -> Iterator[Any]:
    """A running primary environment, the snapshot bucket, and a fast lifecycle (1 step per 0.2 s)."""
    from moto.moto_api import state_manager

    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    aws_emulator.set_transition(mwaa_environments.MODEL_NAME, {"progression": "time", "seconds": 0.2})
    aws_emulator.client("s3").create_bucket(Bucket=BUCKET)
    aws_emulator.client("mwaa").create_environment(Name=PRIMARY, **SPEC)
    mwaa_environments.wait_for_status(PRIMARY)
    yield aws_emulator
    state_manager.unset_transition(mwaa_environments.MODEL_NAME)


def _fast(**kwargs: Any) -> dict[str, Any]:
    return {"deferrable": False, "waiter_delay": 0.2, "waiter_max_delay": 0.5, **kwargs}


def _snapshot(context: Any = None) -> dict[str, Any]:
    from airflow_provider_mwaaops.operators.mwaa import MwaaEnvironmentSnapshotOperator

    op = MwaaEnvironmentSnapshotOperator(
        task_id="snap", environment_name=PRIMARY, bucket=BUCKET, prefix="snaps"
    )
    return op.execute(context or {})


def _create(**kwargs: Any) -> Any:
    from airflow_provider_mwaaops.operators.mwaa import MwaaCreateEnvironmentFromSnapshotOperator

    arguments = {
        "task_id": "recreate",
        "snapshot": f"s3://{BUCKET}/snaps/{PRIMARY}/",
        "environment_name": "prod-west",
        "region_name": SECONDARY_REGION,
        "overrides": {"AirflowConfigurationOptions": {"smtp.smtp_password": "new-secret"}},
        **WEST,
        **_fast(),
    }
    arguments.update(kwargs)
    return MwaaCreateEnvironmentFromSnapshotOperator(**arguments)


def _west(aws_emulator: Any) -> Any:
    import boto3

    return boto3.client("mwaa", region_name=SECONDARY_REGION, endpoint_url=aws_emulator.endpoint_url)


def test_snapshot_create_available_round_trip(primary: Any) -> None:
    stored = _snapshot()
    assert stored["uri"].startswith(f"s3://{BUCKET}/snaps/{PRIMARY}/")
    assert stored["withheld_configuration_options"] == ["smtp.smtp_password"]
    body = primary.client("s3").get_object(Bucket=BUCKET, Key=stored["uri"].split("/", 3)[3])["Body"].read()
    document = json.loads(body)
    assert document["sha256"] == stored["sha256"]
    assert "hunter2" not in body.decode()
    assert document["region_bound"]["SourceBucketArn"] == SPEC["SourceBucketArn"]
    assert document["read_only"]["Status"] == "AVAILABLE"
    assert "Status" not in document["configuration"]

    result = _create().execute({})
    assert result["status"] == "AVAILABLE"
    assert result["environment_name"] == "prod-west"
    assert result["arn"] == "arn:aws:airflow:us-west-2:123456789012:environment/prod-west"

    west = _west(primary).get_environment(Name="prod-west")["Environment"]
    assert west["NetworkConfiguration"] == WEST["network_configuration"]
    assert west["SourceBucketArn"] == WEST["source_bucket_arn"]
    assert "PluginsS3ObjectVersion" not in west  # a version of the old bucket's object
    assert west["PluginsS3Path"] == "plugins.zip"
    assert west["MaxWorkers"] == 7
    assert west["EnvironmentClass"] == "mw1.medium"
    assert west["AirflowConfigurationOptions"] == {
        "core.parallelism": "64",
        "smtp.smtp_password": "new-secret",
    }
    assert west["Tags"]["team"] == "data"
    assert west["Tags"]["mwaaops:snapshot-sha256"] == stored["sha256"]


def test_create_failed_is_reported_with_its_reason(primary: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    _snapshot()
    mwaa_environments.fail_next_create(
        "prod-west", "INCORRECT_CONFIGURATION", "Subnets lack a NAT gateway", region_name=SECONDARY_REGION
    )
    with pytest.raises(
        AirflowException, match="prod-west ended CREATE_FAILED: INCORRECT_CONFIGURATION: Subnets"
    ):
        _create().execute({})


def test_a_retry_attaches_to_what_the_first_try_created(primary: Any, monkeypatch: Any) -> None:
    from airflow_provider_mwaaops.hooks.mwaa import MwaaEnvironmentHook

    _snapshot()
    first = _create()
    _, request = first._request()
    first.hook.create_environment(request)  # ...and the worker dies before it waits

    calls: list[str] = []
    original = MwaaEnvironmentHook.create_environment
    monkeypatch.setattr(
        MwaaEnvironmentHook,
        "create_environment",
        lambda self, r: calls.append(r["Name"]) or original(self, r),
    )
    assert _create().execute({})["status"] == "AVAILABLE"
    assert calls == []  # attached, not created again
    assert _west(primary).list_environments()["Environments"] == ["prod-west"]


def test_a_lost_create_response_is_recognised(primary: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    _snapshot()
    # AWS accepted the create, the answer was lost, the SDK retried and got "already exists".
    mwaa_environments.fail_next_call(
        "CreateEnvironment", "InternalServerException", after_effect=True, region_name=SECONDARY_REGION
    )
    assert _create().execute({})["status"] == "AVAILABLE"


def test_a_foreign_environment_of_that_name_is_not_taken(primary: Any) -> None:
    _snapshot()
    _west(primary).create_environment(Name="prod-west", **SPEC)
    with pytest.raises(AirflowException, match="already exists and was not created from this snapshot"):
        _create().execute({})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"environment_name": "1-west"}, "environment name '1-west' is not valid for MWAA"),
        (
            {"overrides": {"MaxWorker": 3}},
            "overrides name fields CreateEnvironment does not have: \\['MaxWorker'\\]",
        ),
        ({"overrides": {}}, "withheld secret Airflow configuration options \\['smtp.smtp_password'\\]"),
        ({"network_configuration": {"SubnetIds": ["subnet-w1"]}}, "at 'networkConfiguration.subnetIds'"),
        ({"snapshot": f"s3://{BUCKET}/nothing-here/"}, "no snapshot under"),
    ],
)
def test_bad_input_is_refused_before_any_create(primary: Any, kwargs: dict[str, Any], message: str) -> None:
    _snapshot()
    with pytest.raises((AirflowException, ValueError), match=message):
        _create(**kwargs).execute({})
    assert _west(primary).list_environments()["Environments"] == []


def _store(aws_emulator: Any, document: dict[str, Any], key: str) -> str:
    aws_emulator.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    return f"s3://{BUCKET}/{key}"


def test_snapshots_of_another_account_newer_or_altered_are_refused(primary: Any) -> None:
    from airflow_provider_mwaaops.hooks.mwaa import EnvironmentSnapshot

    environment = primary.client("mwaa").get_environment(Name=PRIMARY)["Environment"]
    foreign = EnvironmentSnapshot.from_environment(environment, account_id="999999999999", region="us-east-1")
    uri = _store(primary, json.loads(foreign.to_json()), "other/foreign.json")
    with pytest.raises(AirflowException, match="taken in account 999999999999"):
        _create(snapshot=uri).execute({})

    newer = json.loads(foreign.to_json())
    newer["format_version"] = 2
    with pytest.raises(AirflowException, match="format_version 2; this provider reads up to 1"):
        _create(snapshot=_store(primary, newer, "other/newer.json")).execute({})

    altered = json.loads(foreign.to_json())
    altered["configuration"]["MaxWorkers"] = 25
    with pytest.raises(AirflowException, match="was altered"):
        _create(snapshot=_store(primary, altered, "other/altered.json")).execute({})
    assert _west(primary).list_environments()["Environments"] == []


def test_update_waits_and_reports_a_rollback(primary: Any, monkeypatch: Any) -> None:
    from airflow_provider_mwaaops.hooks.mwaa import MwaaEnvironmentHook
    from airflow_provider_mwaaops.operators.mwaa import MwaaUpdateEnvironmentOperator
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    def update(changes: dict[str, Any]) -> Any:
        return MwaaUpdateEnvironmentOperator(
            task_id="update", environment_name=PRIMARY, changes=changes, **_fast()
        ).execute({})

    assert update({"MaxWorkers": 12})["status"] == "AVAILABLE"
    assert primary.client("mwaa").get_environment(Name=PRIMARY)["Environment"]["MaxWorkers"] == 12

    sent: list[Any] = []
    original = MwaaEnvironmentHook.update_environment
    monkeypatch.setattr(
        MwaaEnvironmentHook, "update_environment", lambda self, n, c: sent.append(c) or original(self, n, c)
    )
    assert update({"MaxWorkers": 12})["status"] == "AVAILABLE"  # a retry: already in place
    assert sent == []

    mwaa_environments.fail_next_update(PRIMARY, "UPGRADE_FAILED", "requirements.txt did not install")
    with pytest.raises(AirflowException, match=r"ended UPDATE_FAILED: UPGRADE_FAILED: requirements\.txt"):
        update({"AirflowVersion": "2.11.2"})
    with pytest.raises(ValueError, match="changes name fields UpdateEnvironment does not have"):
        update({"Tags": {"a": "b"}})
