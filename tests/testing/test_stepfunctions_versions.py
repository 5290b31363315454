"""Versions, revisions and aliases in the embedded AWS, and executions started through them.

Expected texts and shapes are AWS's own (see the module docstring of
``airflow_provider_mwaaops.testing.extensions.stepfunctions_versions`` for the sources).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/states"
BUCKET = "mwaaops-versions"


def pass_machine(result: Any) -> str:
    return json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}})


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


@pytest.fixture
def sfn(aws_emulator: Any) -> Any:
    return aws_emulator.client("stepfunctions")


@pytest.fixture
def wait_for(aws_emulator: Any) -> Any:
    """DescribeExecution once the execution has left RUNNING."""
    return aws_emulator.wait_for_execution


@pytest.fixture
def machine(sfn: Any) -> str:
    """A state machine with version 1 (result 1) and version 2 (result 2)."""
    arn = sfn.create_state_machine(name="etl", definition=pass_machine(1), roleArn=ROLE_ARN, publish=True)[
        "stateMachineArn"
    ]
    sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(2), publish=True)
    return arn


# -- versions and revisions --------------------------------------------------------------------------
def test_publishing_is_idempotent_per_revision_and_numbers_are_not_reused(sfn):
    created = sfn.create_state_machine(name="m", definition=pass_machine(1), roleArn=ROLE_ARN, publish=True)
    arn = created["stateMachineArn"]
    assert created["stateMachineVersionArn"] == f"{arn}:1"
    assert "revisionId" not in sfn.describe_state_machine(stateMachineArn=arn)

    same = sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(1), publish=True)
    assert same["stateMachineVersionArn"] == f"{arn}:1"  # nothing changed: the same revision's version
    assert "revisionId" not in same
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == f"{arn}:1"

    changed = sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(2))
    assert "stateMachineVersionArn" not in changed
    revision = changed["revisionId"]
    published = sfn.publish_state_machine_version(
        stateMachineArn=arn, description="second", revisionId=revision
    )
    assert published["stateMachineVersionArn"] == f"{arn}:2"
    version_2 = sfn.describe_state_machine(stateMachineArn=f"{arn}:2")
    assert (version_2["stateMachineArn"], version_2["description"], version_2["revisionId"]) == (
        f"{arn}:2",
        "second",
        revision,
    )
    assert json.loads(version_2["definition"])["States"]["P"]["Result"] == 2
    assert (
        json.loads(sfn.describe_state_machine(stateMachineArn=f"{arn}:1")["definition"])["States"]["P"][
            "Result"
        ]
        == 1
    )

    listed = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [f"{arn}:2", f"{arn}:1"]  # newest first
    sfn.delete_state_machine_version(stateMachineVersionArn=f"{arn}:2")
    sfn.delete_state_machine_version(stateMachineVersionArn=f"{arn}:2")  # gone already: still 200
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == f"{arn}:3"


def test_publish_with_a_stale_revision_conflicts(sfn):
    arn = sfn.create_state_machine(name="m", definition=pass_machine(1), roleArn=ROLE_ARN)["stateMachineArn"]
    old = sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(2))["revisionId"]
    new = sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(3))["revisionId"]
    code, message = error_of(sfn.publish_state_machine_version, stateMachineArn=arn, revisionId=old)
    assert code == "ConflictException"
    assert message == (
        f"Failed to publish the State Machine version for revision {old}. "
        f"The current State Machine revision is {new}."
    )


def test_update_and_describe_of_qualified_arns(sfn, machine):
    code, message = error_of(
        sfn.update_state_machine, stateMachineArn=f"{machine}:2", definition=pass_machine(3)
    )
    assert (code, message) == ("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine}:2'")
    code, message = error_of(sfn.describe_state_machine, stateMachineArn=f"{machine}:9")
    assert (code, message) == ("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine}:9'")
    code, _ = error_of(sfn.describe_state_machine, stateMachineArn=f"{machine}/LoadTables")
    assert code == "ValidationException"


# -- aliases -------------------------------------------------------------------------------------------
def test_alias_routing_rules_answer_with_aws_texts(sfn, machine):
    def create(routing: list[tuple[str, int]], name: str = "prod") -> tuple[str, str]:
        items = [{"stateMachineVersionArn": arn, "weight": weight} for arn, weight in routing]
        return error_of(sfn.create_state_machine_alias, name=name, routingConfiguration=items)

    v1, v2 = f"{machine}:1", f"{machine}:2"
    assert create([(machine, 100)]) == (
        "ValidationException",
        f"Routing configuration must contain state machine version ARNs. Received: [{machine}]",
    )
    assert create([(v1, 50), (v1, 50)]) == (
        "ValidationException",
        f"Routing configuration must contain distinct state machine version ARNs. Received: [{v1}, {v1}]",
    )
    assert create([(v1, 70), (v2, 29)]) == (
        "ValidationException",
        "Sum of routing configuration weights must equal 100. Received: [70, 29]",
    )
    assert create([(v1, 101)])[1].endswith(
        "at 'routingConfiguration.1.member.weight' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    )
    assert create([(v1, 100)], name="123") == (
        "ValidationException",
        "1 validation error detected: Value '123' at 'name' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: ^(?=.*[a-zA-Z_\\\\-\\\\.])[a-zA-Z0-9_\\\\-\\\\.]+$",
    )
    assert create([(f"{machine}:7", 100)]) == (
        "ResourceNotFound",
        "Request references a resource that does not exist.",
    )


def test_alias_lifecycle(sfn, machine):
    v1, v2 = f"{machine}:1", f"{machine}:2"
    routing = [{"stateMachineVersionArn": v1, "weight": 100}]
    first = sfn.create_state_machine_alias(name="prod", description="live", routingConfiguration=routing)
    again = sfn.create_state_machine_alias(name="prod", description="live", routingConfiguration=routing)
    assert again["stateMachineAliasArn"] == first["stateMachineAliasArn"] == f"{machine}:prod"
    assert again["creationDate"] == first["creationDate"]  # idempotent: the same alias
    assert error_of(
        sfn.create_state_machine_alias, name="prod", description="other", routingConfiguration=routing
    ) == (
        "ConflictException",
        "Failed to create alias because an alias with the same name and a different routing configuration "
        "already exists.",
    )
    alias = first["stateMachineAliasArn"]
    split = [{"stateMachineVersionArn": v1, "weight": 50}, {"stateMachineVersionArn": v2, "weight": 50}]
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=split)
    assert sfn.describe_state_machine_alias(stateMachineAliasArn=alias)["routingConfiguration"] == split
    assert error_of(sfn.delete_state_machine_version, stateMachineVersionArn=v1) == (
        "ConflictException",
        "Version to be deleted must not be referenced by an alias. "
        "Current list of aliases referencing this version: [prod]",
    )
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)  # gone already: still 200
    missing = ("ResourceNotFound", "Request references a resource that does not exist.")
    assert error_of(sfn.update_state_machine_alias, stateMachineAliasArn=alias, description="x") == missing
    sfn.delete_state_machine_version(stateMachineVersionArn=v1)  # no alias references it any more


# -- executions through versions and aliases -----------------------------------------------------------
def test_start_through_version_and_alias_runs_that_version(sfn, machine, wait_for):
    alias = sfn.create_state_machine_alias(
        name="prod", routingConfiguration=[{"stateMachineVersionArn": f"{machine}:1", "weight": 100}]
    )["stateMachineAliasArn"]
    plain = sfn.start_execution(stateMachineArn=machine, name="plain")["executionArn"]
    by_version = sfn.start_execution(stateMachineArn=f"{machine}:2", name="by-version")["executionArn"]
    by_alias = sfn.start_execution(stateMachineArn=alias, name="by-alias")["executionArn"]
    assert by_alias == f"{machine.replace(':stateMachine:', ':execution:')}:by-alias"

    described = {arn: wait_for(arn) for arn in (plain, by_version, by_alias)}
    assert {json.loads(d["output"]) for d in described.values()} == {2, 1}
    assert json.loads(described[by_alias]["output"]) == 1
    assert json.loads(described[by_version]["output"]) == 2
    assert all(d["stateMachineArn"] == machine for d in described.values())
    assert "stateMachineVersionArn" not in described[plain]  # unqualified starts belong to no version
    assert described[by_version]["stateMachineVersionArn"] == f"{machine}:2"
    assert "stateMachineAliasArn" not in described[by_version]
    assert (described[by_alias]["stateMachineVersionArn"], described[by_alias]["stateMachineAliasArn"]) == (
        f"{machine}:1",
        alias,
    )

    def names(arn: str) -> list[str]:
        return [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]

    assert sorted(names(machine)) == ["by-alias", "by-version", "plain"]
    assert names(f"{machine}:2") == ["by-version"]
    assert names(f"{machine}:1") == ["by-alias"]
    assert names(alias) == ["by-alias"]
    item = sfn.list_executions(stateMachineArn=alias)["executions"][0]
    assert (item["stateMachineArn"], item["stateMachineVersionArn"], item["stateMachineAliasArn"]) == (
        machine,
        f"{machine}:1",
        alias,
    )
    # Names are unique per state machine, whatever ARN an execution started through.
    assert error_of(sfn.start_execution, stateMachineArn=f"{machine}:1", name="plain")[0] == (
        "ExecutionAlreadyExists"
    )


def test_alias_routes_by_weight(sfn, machine, wait_for):
    routing = [
        {"stateMachineVersionArn": f"{machine}:1", "weight": 50},
        {"stateMachineVersionArn": f"{machine}:2", "weight": 50},
    ]
    alias = sfn.create_state_machine_alias(name="canary", routingConfiguration=routing)[
        "stateMachineAliasArn"
    ]
    arns = [sfn.start_execution(stateMachineArn=alias, name=f"run-{i}")["executionArn"] for i in range(24)]
    versions = {wait_for(arn)["stateMachineVersionArn"] for arn in arns}
    assert versions == {f"{machine}:1", f"{machine}:2"}  # both get traffic (chance of not: 2**-23)

    only_2 = [{"stateMachineVersionArn": f"{machine}:1", "weight": 0}, routing[1] | {"weight": 100}]
    sfn.update_state_machine_alias(stateMachineAliasArn=alias, routingConfiguration=only_2)
    arns = [sfn.start_execution(stateMachineArn=alias, name=f"after-{i}")["executionArn"] for i in range(5)]
    assert {wait_for(arn)["stateMachineVersionArn"] for arn in arns} == {f"{machine}:2"}


def test_describe_state_machine_for_execution_is_the_definition_it_started_with(sfn, wait_for):
    arn = sfn.create_state_machine(name="m", definition=pass_machine(1), roleArn=ROLE_ARN)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="old")["executionArn"]
    wait_for(execution)
    revision = sfn.update_state_machine(stateMachineArn=arn, definition=pass_machine(2))["revisionId"]

    started_with = sfn.describe_state_machine_for_execution(executionArn=execution)
    assert json.loads(started_with["definition"])["States"]["P"]["Result"] == 1
    assert started_with["stateMachineArn"] == arn
    assert "revisionId" not in started_with
    assert (
        json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])["States"]["P"]["Result"]
        == 2
    )
    newer = sfn.start_execution(stateMachineArn=arn, name="new")["executionArn"]
    assert sfn.describe_state_machine_for_execution(executionArn=newer)["revisionId"] == revision


def test_redrive_of_an_aliased_execution_reruns_the_version_it_started_on(aws_emulator, sfn, wait_for):
    s3 = aws_emulator.client("s3")
    s3.create_bucket(Bucket=BUCKET)

    def definition(marker: bool) -> str:
        read = {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObjectTagging",
            "Parameters": {"Bucket": BUCKET, "Key": "input.txt"},
            **({"Next": "Marker"} if marker else {"End": True}),
        }
        states: dict[str, Any] = {"Read": read}
        if marker:
            states["Marker"] = {"Type": "Pass", "End": True}
        return json.dumps({"StartAt": "Read", "States": states})

    arn = sfn.create_state_machine(name="m", definition=definition(False), roleArn=ROLE_ARN, publish=True)[
        "stateMachineArn"
    ]
    alias = sfn.create_state_machine_alias(
        name="prod", routingConfiguration=[{"stateMachineVersionArn": f"{arn}:1", "weight": 100}]
    )["stateMachineAliasArn"]
    execution = sfn.start_execution(stateMachineArn=alias, name="run")["executionArn"]
    assert wait_for(execution)["status"] == "FAILED"

    version_2 = sfn.update_state_machine(stateMachineArn=arn, definition=definition(True), publish=True)
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias,
        routingConfiguration=[{"stateMachineVersionArn": version_2["stateMachineVersionArn"], "weight": 100}],
    )
    s3.put_object(Bucket=BUCKET, Key="input.txt", Body=b"x")
    sfn.redrive_execution(executionArn=execution)
    done = wait_for(execution)

    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1)
    assert (done["stateMachineVersionArn"], done["stateMachineAliasArn"]) == (f"{arn}:1", alias)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert "Marker" not in entered  # version 1 has no Marker state; the alias now points at version 2
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_an_execution_started_without_a_name_gets_a_uuid(sfn, machine, wait_for):
    import uuid

    for target in (machine, f"{machine}:1"):
        arn = sfn.start_execution(stateMachineArn=target)["executionArn"]
        name = arn.rsplit(":", 1)[-1]
        assert str(uuid.UUID(name)) == name
        assert wait_for(arn)["name"] == name
