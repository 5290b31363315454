"""The emulated MWAA environments: AWS's validation, the lifecycle, tags, paging and heartbeats."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/mwaa"
SPEC: dict[str, Any] = {
    "ExecutionRoleArn": ROLE,
    "SourceBucketArn": "arn:aws:s3:::mwaa-dags",
    "DagS3Path": "dags",
    "NetworkConfiguration": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
    "AirflowVersion": "2.11.0",
}


@pytest.fixture
def mwaa(aws_emulator: Any) -> Any:
    return aws_emulator.client("mwaa")


@pytest.fixture
def raw_mwaa(aws_emulator: Any) -> Any:
    """A client that skips botocore's own checks, so the emulator's validation is what answers."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "mwaa",
        endpoint_url=aws_emulator.endpoint_url,
        region_name=aws_emulator.region_name,
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def pace(aws_emulator: Any) -> Iterator[Any]:
    """Set the lifecycle's progression for one test; back to the default afterwards."""
    from airflow_provider_mwaaops.testing.extensions.mwaa_environments import MODEL_NAME

    def set_pace(transition: dict[str, Any]) -> None:
        aws_emulator.set_transition(MODEL_NAME, transition)

    yield set_pace
    from moto.moto_api import state_manager

    state_manager.unset_transition(MODEL_NAME)


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]


def _statuses(mwaa: Any, name: str, calls: int) -> list[str]:
    return [mwaa.get_environment(Name=name)["Environment"]["Status"] for _ in range(calls)]


# -- validation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"Name": "1-starts-with-a-digit"},
            "at 'name' failed to satisfy constraint: Member must satisfy regular",
        ),
        (
            {"Name": "x" * 81},
            "at 'name' failed to satisfy constraint: Member must have length less than or equal to 80",
        ),
        (
            {"NetworkConfiguration": {"SubnetIds": ["subnet-1"]}},
            "at 'networkConfiguration.subnetIds' failed to satisfy constraint: Member must have length",
        ),
        ({"ExecutionRoleArn": "role/mwaa"}, "at 'executionRoleArn' failed to satisfy constraint"),
        (
            {"DagS3Path": None},
            "Value null at 'dagS3Path' failed to satisfy constraint: Member must not be null",
        ),
        ({"Schedulers": 6}, "Member must have value less than or equal to 5"),
        ({"WebserverAccessMode": "OPEN"}, "Member must satisfy enum value set: [PRIVATE_ONLY"),
        ({"Tags": {"team": "x" * 257}}, "Map value must satisfy constraint: [Member must have length less"),
        ({"AirflowVersion": "1.10.12"}, "(emulator: AirflowVersion '1.10.12' is not a valid value"),
        ({"EnvironmentClass": "mw1.huge"}, "(emulator: EnvironmentClass 'mw1.huge' is not a valid value"),
        (
            {"EnvironmentClass": "mw1.micro", "Schedulers": 2},
            "(emulator: Schedulers=2 is not accepted for mw1.micro",
        ),
    ],
)
def test_create_validates_as_aws(raw_mwaa: Any, change: dict[str, Any], expected: str) -> None:
    request = {"Name": "valid-name", **SPEC, **change}
    error = _error(raw_mwaa.create_environment, **{k: v for k, v in request.items() if v is not None})
    assert error["Code"] == "ValidationException"
    assert expected in error["Message"], error["Message"]
    assert raw_mwaa.list_environments()["Environments"] == []


def test_several_violations_are_counted(raw_mwaa: Any) -> None:
    error = _error(raw_mwaa.create_environment, Name="_bad", **{**SPEC, "DagS3Path": "d" * 1025})
    assert error["Message"].startswith("2 validation errors detected: ")


def test_duplicate_name_and_unknown_environment(mwaa: Any, pace: Any) -> None:
    pace({"progression": "immediate"})
    mwaa.create_environment(Name="dup", **SPEC)
    error = _error(mwaa.create_environment, Name="dup", **SPEC)
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("The provided input is not valid. (emulator: an environment named dup")
    for call in (mwaa.get_environment, mwaa.delete_environment, mwaa.update_environment):
        assert _error(call, Name="missing")["Code"] == "ResourceNotFoundException"


# -- lifecycle ---------------------------------------------------------------------------------------------
def test_create_goes_through_creating_by_time(mwaa: Any) -> None:
    """The default pace: one second per step."""
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    arn = mwaa.create_environment(Name="timed", **SPEC)["Arn"]
    assert arn == "arn:aws:airflow:us-east-1:123456789012:environment/timed"
    described = mwaa.get_environment(Name="timed")["Environment"]
    assert described["Status"] == "CREATING"
    assert described["LastUpdate"]["Status"] == "PENDING"
    assert "WebserverUrl" not in described
    assert mwaa_environments.wait_for_status("timed", timeout=5) == "AVAILABLE"
    described = mwaa.get_environment(Name="timed")["Environment"]
    assert described["LastUpdate"]["Status"] == "SUCCESS"
    assert described["WebserverUrl"].endswith(".us-east-1.airflow.amazonaws.com")
    assert described["AirflowVersion"] == "2.11.0"
    assert described["NetworkConfiguration"] == SPEC["NetworkConfiguration"]


def test_scripted_create_failure_reports_the_error(mwaa: Any, pace: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    pace({"progression": "manual", "times": 1})
    mwaa_environments.fail_next_create("broken", "INCORRECT_CONFIGURATION", "Subnets have no route to S3")
    mwaa.create_environment(Name="broken", **SPEC)
    assert _statuses(mwaa, "broken", 2) == ["CREATE_FAILED", "CREATE_FAILED"]
    last_update = mwaa.get_environment(Name="broken")["Environment"]["LastUpdate"]
    assert last_update["Status"] == "FAILED"
    assert last_update["Error"] == {
        "ErrorCode": "INCORRECT_CONFIGURATION",
        "ErrorMessage": "Subnets have no route to S3",
    }


def test_update_upgrade_and_rollback(mwaa: Any, pace: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    pace({"progression": "manual", "times": 1})  # one step per GetEnvironment
    mwaa.create_environment(Name="env", **SPEC)
    assert _statuses(mwaa, "env", 1) == ["AVAILABLE"]

    mwaa.update_environment(Name="env", MaxWorkers=4)
    assert _statuses(mwaa, "env", 2) == ["AVAILABLE", "AVAILABLE"]
    assert mwaa.get_environment(Name="env")["Environment"]["MaxWorkers"] == 4

    mwaa.update_environment(Name="env", AirflowVersion="2.11.2")
    assert _statuses(mwaa, "env", 4) == ["CREATING_SNAPSHOT", "UPDATING", "AVAILABLE", "AVAILABLE"]
    assert mwaa.get_environment(Name="env")["Environment"]["AirflowVersion"] == "2.11.2"

    mwaa_environments.fail_next_update("env", "UPGRADE_FAILED", "requirements did not install")
    mwaa.update_environment(Name="env", MaxWorkers=9)
    busy = _error(mwaa.update_environment, Name="env", MaxWorkers=8)
    assert "(emulator: environment env is UPDATING" in busy["Message"]
    assert _statuses(mwaa, "env", 3) == ["ROLLING_BACK", "UPDATE_FAILED", "UPDATE_FAILED"]
    described = mwaa.get_environment(Name="env")["Environment"]
    assert described["MaxWorkers"] == 4  # the failed update changed nothing
    assert described["LastUpdate"]["Error"]["ErrorCode"] == "UPGRADE_FAILED"


def test_delete_then_gone(mwaa: Any, pace: Any) -> None:
    pace({"progression": "manual", "times": 1})
    mwaa.create_environment(Name="doomed", **SPEC)
    mwaa.get_environment(Name="doomed")
    mwaa.delete_environment(Name="doomed")
    assert _statuses(mwaa, "doomed", 1) == ["DELETED"]
    assert _error(mwaa.get_environment, Name="doomed")["Code"] == "ResourceNotFoundException"
    mwaa.create_environment(Name="doomed", **SPEC)  # the name is free again


def test_an_environment_can_break(mwaa: Any, pace: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    pace({"progression": "immediate"})
    mwaa.create_environment(Name="fragile", **SPEC)
    mwaa_environments.make_unavailable("fragile", "DB_UNREACHABLE", "The metadata database is unreachable")
    described = mwaa.get_environment(Name="fragile")["Environment"]
    assert described["Status"] == "UNAVAILABLE"
    assert described["LastUpdate"]["Error"]["ErrorCode"] == "DB_UNREACHABLE"


def test_listing_pages_and_tags(mwaa: Any, raw_mwaa: Any, pace: Any) -> None:
    pace({"progression": "immediate"})
    for name in ("a", "b", "c"):
        mwaa.create_environment(Name=name, **SPEC, Tags={"team": name})
    first = mwaa.list_environments(MaxResults=2)
    assert first["Environments"] == ["a", "b"]
    assert mwaa.list_environments(MaxResults=2, NextToken=first["NextToken"])["Environments"] == ["c"]
    assert "MaxResults" in _error(raw_mwaa.list_environments, MaxResults=26)["Message"].replace(
        "maxResults", "MaxResults"
    )

    arn = mwaa.get_environment(Name="a")["Environment"]["Arn"]
    mwaa.tag_resource(ResourceArn=arn, Tags={"tier": "gold"})
    assert mwaa.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "a", "tier": "gold"}
    mwaa.untag_resource(ResourceArn=arn, tagKeys=["team"])
    assert mwaa.get_environment(Name="a")["Environment"]["Tags"] == {"tier": "gold"}
    other_region = arn.replace("us-east-1", "eu-west-1")
    assert (
        _error(mwaa.tag_resource, ResourceArn=other_region, Tags={"x": "y"})["Code"]
        == "ResourceNotFoundException"
    )
    bad_arn = _error(raw_mwaa.tag_resource, ResourceArn="arn:aws:s3:::bucket", Tags={"x": "y"})
    assert bad_arn["Code"] == "ValidationException"


def test_scripted_call_failures(mwaa: Any, raw_mwaa: Any, pace: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    pace({"progression": "immediate"})
    mwaa_environments.fail_next_call("CreateEnvironment", "ServiceUnavailableException")
    error = _error(raw_mwaa.create_environment, Name="later", **SPEC)
    assert error == {
        "Code": "ServiceUnavailableException",
        "Message": "The service is currently unavailable.",
    }
    assert raw_mwaa.list_environments()["Environments"] == []

    mwaa_environments.fail_next_call("CreateEnvironment", "InternalServerException", after_effect=True)
    assert _error(raw_mwaa.create_environment, Name="lost", **SPEC)["Code"] == "InternalServerException"
    assert mwaa.get_environment(Name="lost")["Environment"]["Status"] == "AVAILABLE"


# -- SchedulerHeartbeat ----------------------------------------------------------------------------------
def _heartbeats(aws_emulator: Any, name: str, minutes: int) -> list[float]:
    """The heartbeat sums per minute of the last ``minutes`` minutes, the current one included.

    EndTime is a minute ahead: the current minute's datapoint is stamped with its first second,
    and a query ending within that second (moto truncates EndTime to the second and excludes it)
    would leave it out: a restart in the first second of a minute failed the test in CI.
    """
    now = dt.datetime.now(dt.UTC)
    answer = aws_emulator.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "beats",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AmazonMWAA",
                        "MetricName": "SchedulerHeartbeat",
                        "Dimensions": [
                            {"Name": "Environment", "Value": name},
                            {"Name": "Function", "Value": "Scheduler"},
                        ],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - dt.timedelta(minutes=minutes),
        EndTime=now + dt.timedelta(minutes=1),
    )
    return answer["MetricDataResults"][0]["Values"]


def test_heartbeats_while_available_and_a_dead_scheduler(aws_emulator: Any, mwaa: Any, pace: Any) -> None:
    from airflow_provider_mwaaops.testing.extensions import mwaa_environments

    pace({"progression": "manual", "times": 1})
    mwaa.create_environment(Name="hb", **SPEC)
    assert _heartbeats(aws_emulator, "hb", 5) == []  # still CREATING: no scheduler yet

    mwaa.get_environment(Name="hb")  # AVAILABLE from now on
    mwaa_environments.age_environment("hb", dt.timedelta(minutes=30))
    beats = _heartbeats(aws_emulator, "hb", 5)
    assert sum(beats) >= 5 * 60 / mwaa_environments.HEARTBEAT_INTERVAL_S - 13
    assert max(beats) == 12  # every 5 s

    now = dt.datetime.now(dt.UTC)
    mwaa_environments.stop_scheduler("hb", at=now - dt.timedelta(minutes=10))
    assert _heartbeats(aws_emulator, "hb", 5) == []
    assert sum(_heartbeats(aws_emulator, "hb", 25)) > 0  # the history before the death stays

    mwaa_environments.start_scheduler("hb")
    # The first beat right away. A datapoint is stamped with the start of its minute: two
    # minutes back cover the minute of the restart even when the clock has just turned.
    assert _heartbeats(aws_emulator, "hb", 2) == [1.0]

    mwaa_environments.make_unavailable("hb")
    before = sum(_heartbeats(aws_emulator, "hb", 2))
    assert sum(_heartbeats(aws_emulator, "hb", 2)) == before  # no more beats once UNAVAILABLE
    metrics = aws_emulator.client("cloudwatch").list_metrics(Namespace="AmazonMWAA")["Metrics"]
    assert {d["Value"] for m in metrics for d in m["Dimensions"]} == {"hb", "Scheduler"}
