"""ARN parsing and Step Functions name rules: good inputs round-trip, bad ones say what is wrong."""

from __future__ import annotations

import pytest

from airflow_provider_mwaaops.aws.arn import (
    Arn,
    ExecutionArn,
    InvalidArnError,
    MapRunArn,
    StateMachineArn,
    execution_arn_for,
    validate_sfn_name,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"


# -- generic ARNs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "partition", "service", "region", "account", "resource"),
    [
        (MACHINE, "aws", "states", "us-east-1", "123456789012", "stateMachine:orders"),
        (
            "arn:aws-cn:glue:cn-north-1:123456789012:job/etl",
            "aws-cn",
            "glue",
            "cn-north-1",
            "123456789012",
            "job/etl",
        ),
        (
            "arn:aws-us-gov:elasticmapreduce:us-gov-west-1:123456789012:cluster/j-1",
            "aws-us-gov",
            "elasticmapreduce",
            "us-gov-west-1",
            "123456789012",
            "cluster/j-1",
        ),
        ("arn:aws:s3:::my-bucket/key:with:colons", "aws", "s3", "", "", "my-bucket/key:with:colons"),
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", "aws", "iam", "", "aws", "policy/ReadOnlyAccess"),
    ],
)
def test_arn_parse(
    value: str, partition: str, service: str, region: str, account: str, resource: str
) -> None:
    arn = Arn.parse(value)
    assert (arn.partition, arn.service, arn.region, arn.account_id, arn.resource) == (
        partition,
        service,
        region,
        account,
        resource,
    )
    assert str(arn) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "six ':'-separated parts"),
        ("states:us-east-1:123456789012:stateMachine:x", "six ':'-separated parts"),
        ("arn:aws:states:us-east-1:123456789012", "six ':'-separated parts"),
        (" " + MACHINE, "leading or trailing whitespace"),
        ("arn:gcp:states:us-east-1:123456789012:stateMachine:x", "partition 'gcp'"),
        ("arn:aws:States:us-east-1:123456789012:stateMachine:x", "service 'States'"),
        ("arn:aws:states:useast1:123456789012:stateMachine:x", "region 'useast1'"),
        ("arn:aws:states:us-east-1:12345:stateMachine:x", "account id '12345'"),
        ("arn:aws:states:us-east-1:123456789012:", "resource part is empty"),
    ],
)
def test_arn_parse_rejects_with_the_input_and_the_reason(value: str, fragment: str) -> None:
    with pytest.raises(InvalidArnError) as info:
        Arn.parse(value)
    message = str(info.value)
    assert repr(value) in message
    assert fragment in message
    assert isinstance(info.value, ValueError)
    assert info.value.value == value


def test_arn_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidArnError, match="must be a string, got NoneType"):
        Arn.parse(None)  # type: ignore[arg-type]


# -- state machines ---------------------------------------------------------------------------------
def test_plain_state_machine_arn() -> None:
    machine = StateMachineArn.parse(MACHINE)
    assert (machine.name, machine.version, machine.alias, machine.qualifier) == ("orders", None, None, None)
    assert machine.unqualified == MACHINE == str(machine)
    assert (machine.partition, machine.region, machine.account_id) == ("aws", "us-east-1", "123456789012")


def test_version_state_machine_arn() -> None:
    machine = StateMachineArn.parse(f"{MACHINE}:7")
    assert (machine.name, machine.version, machine.alias) == ("orders", 7, None)
    assert machine.unqualified == MACHINE
    assert str(machine) == f"{MACHINE}:7"


@pytest.mark.parametrize("alias", ["PROD", "blue-green", "v2.beta", "_1", "1a"])
def test_alias_state_machine_arn(alias: str) -> None:
    machine = StateMachineArn.parse(f"{MACHINE}:{alias}")
    assert (machine.name, machine.version, machine.alias) == ("orders", None, alias)
    assert machine.unqualified == MACHINE
    assert str(machine) == f"{MACHINE}:{alias}"


def test_state_machine_arn_in_other_partitions() -> None:
    machine = StateMachineArn.parse("arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:m")
    assert machine.partition == "aws-us-gov"
    assert machine.unqualified == "arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:m"


def test_state_machine_arn_accepts_a_parsed_arn() -> None:
    assert StateMachineArn.parse(Arn.parse(MACHINE)).name == "orders"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("arn:aws:glue:us-east-1:123456789012:job/x", "service is 'glue', not 'states'"),
        ("arn:aws:states:us-east-1:123456789012:execution:m:e", "is not a state machine"),
        (f"{MACHINE}:7:extra", "is not a state machine"),
        ("arn:aws:states::123456789012:stateMachine:m", "region and account id are required"),
        (f"{MACHINE}:0", "qualifier '0' is neither a version number nor an alias"),
        (f"{MACHINE}:prod!", "qualifier 'prod!'"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:", "must be 1-80 characters long, got 0"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:" + "m" * 81, "got 81"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:a b", "whitespace (U+0020) at position 1"),
        ("arn:aws:states:us-east-1:123456789012:stateMachine:a*b", "must not contain '*'"),
        ("not-an-arn", "six ':'-separated parts"),
    ],
)
def test_state_machine_arn_errors(value: str, fragment: str) -> None:
    with pytest.raises(InvalidArnError) as info:
        StateMachineArn.parse(value)
    message = str(info.value)
    assert message.startswith(f"Invalid state machine ARN {value!r}: ")
    assert fragment in message
    assert "stateMachine:NAME[:VERSION|:ALIAS]" in message


# -- executions -------------------------------------------------------------------------------------
def test_standard_execution_arn() -> None:
    value = "arn:aws:states:us-east-1:123456789012:execution:orders:run-2024-01-01"
    execution = ExecutionArn.parse(value)
    assert (execution.state_machine_name, execution.name, execution.is_express) == (
        "orders",
        "run-2024-01-01",
        False,
    )
    assert execution.state_machine_arn == MACHINE
    assert execution.run_id is None
    assert execution.map_run_label is None
    assert str(execution) == value


def test_express_execution_arn() -> None:
    value = "arn:aws:states:us-east-1:123456789012:express:orders:run1:3f7a2b7c-0d4e-4b1a-9c2d-1e2f3a4b5c6d"
    execution = ExecutionArn.parse(value)
    assert execution.is_express
    assert (execution.name, execution.run_id) == ("run1", "3f7a2b7c-0d4e-4b1a-9c2d-1e2f3a4b5c6d")
    assert execution.state_machine_arn == MACHINE
    assert str(execution) == value


def test_distributed_map_child_execution_arn() -> None:
    value = "arn:aws:states:us-east-1:123456789012:execution:orders/ProcessItems:child-1"
    execution = ExecutionArn.parse(value)
    assert (execution.state_machine_name, execution.map_run_label, execution.name) == (
        "orders",
        "ProcessItems",
        "child-1",
    )
    assert execution.state_machine_arn == MACHINE
    assert str(execution) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (MACHINE, "is not an execution"),
        ("arn:aws:states:us-east-1:123456789012:execution:orders", "is not an execution"),
        ("arn:aws:states:us-east-1:123456789012:execution:orders:a:b", "is not an execution"),
        ("arn:aws:states:us-east-1:123456789012:execution:orders:bad#name", "execution name 'bad#name'"),
        ("arn:aws:states:us-east-1:123456789012:express:orders:run1:", "express run id is empty"),
        ("arn:aws:lambda:us-east-1:123456789012:function:f", "service is 'lambda'"),
    ],
)
def test_execution_arn_errors(value: str, fragment: str) -> None:
    with pytest.raises(InvalidArnError) as info:
        ExecutionArn.parse(value)
    assert str(info.value).startswith(f"Invalid execution ARN {value!r}: ")
    assert fragment in str(info.value)


# -- Map Runs ---------------------------------------------------------------------------------------
def test_map_run_arn() -> None:
    value = "arn:aws:states:us-east-1:123456789012:mapRun:orders/ProcessItems:0a1b2c3d-aaaa-bbbb-cccc-0123"
    run = MapRunArn.parse(value)
    assert (run.state_machine_name, run.label, run.run_id) == (
        "orders",
        "ProcessItems",
        "0a1b2c3d-aaaa-bbbb-cccc-0123",
    )
    assert run.state_machine_arn == MACHINE
    assert str(run) == value
    child = run.child_execution_arn("item-7")
    assert child == "arn:aws:states:us-east-1:123456789012:execution:orders/ProcessItems:item-7"
    assert ExecutionArn.parse(child).map_run_label == "ProcessItems"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("arn:aws:states:us-east-1:123456789012:mapRun:orders:abc", "missing '/LABEL'"),
        ("arn:aws:states:us-east-1:123456789012:mapRun:orders/Label:", "run id is empty"),
        ("arn:aws:states:us-east-1:123456789012:mapRun:orders/La bel:abc", "Map Run label 'La bel'"),
        ("arn:aws:states:us-east-1:123456789012:execution:orders:abc", "is not a Map Run"),
    ],
)
def test_map_run_arn_errors(value: str, fragment: str) -> None:
    with pytest.raises(InvalidArnError) as info:
        MapRunArn.parse(value)
    assert str(info.value).startswith(f"Invalid Map Run ARN {value!r}: ")
    assert fragment in str(info.value)


# -- names and execution ARNs -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["a", "run-2024-01-01T00.00.00", "x" * 80, "Bestellung_ä", "emoji🙂", "a@b+c=d!'("]
)
def test_valid_names(name: str) -> None:
    assert validate_sfn_name(name, "execution name") == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must be 1-80 characters long, got 0"),
        ("x" * 81, "must be 1-80 characters long, got 81"),
        ("a b", "must not contain whitespace (U+0020) at position 1"),
        ("a\tb", "whitespace (U+0009)"),
        ("a\u00a0b", "whitespace (U+00A0)"),
        *[(f"a{char}b", f"must not contain {char!r}") for char in '<>{}[]?*"#%\\^|~`$&,;:/'],
        ("a\x00b", "control character U+0000"),
        ("a\x7fb", "control character U+007F"),
        ("a\x9fb", "control character U+009F"),
        ("a\ud800b", "surrogate U+D800"),
        ("a\uffffb", "non-character U+FFFF"),
        ("a\U0010ffffb", "non-character U+10FFFF"),
    ],
)
def test_invalid_names_name_the_input_and_the_rule(name: str, rule: str) -> None:
    with pytest.raises(ValueError, match="not a valid Step Functions name") as info:
        validate_sfn_name(name, "execution name")
    message = str(info.value)
    assert message.startswith(f"execution name {name!r} ")
    assert rule in message
    assert "1-80 characters, no whitespace" in message


def test_non_string_name() -> None:
    with pytest.raises(ValueError, match="state machine name must be a string, got int 5"):
        validate_sfn_name(5, "state machine name")


@pytest.mark.parametrize("machine", [MACHINE, f"{MACHINE}:7", f"{MACHINE}:PROD"])
def test_execution_arn_for_maps_versions_and_aliases_to_the_machine(machine: str) -> None:
    expected = "arn:aws:states:us-east-1:123456789012:execution:orders:nightly-1"
    assert execution_arn_for(machine, "nightly-1") == expected
    assert execution_arn_for(StateMachineArn.parse(machine), "nightly-1") == expected


def test_execution_arn_for_validates_both_inputs() -> None:
    with pytest.raises(ValueError, match="execution name 'bad name'"):
        execution_arn_for(MACHINE, "bad name")
    with pytest.raises(InvalidArnError, match="Invalid state machine ARN 'orders'"):
        execution_arn_for("orders", "ok")
