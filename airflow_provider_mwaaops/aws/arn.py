"""ARN parsing for the resources our operators and triggers address, with errors that name the input.

Operators take ARNs from DAG authors (templated strings, XCom values, Variables). A typo there used
to surface minutes later as an opaque ``ValidationException`` from the service, or as a trigger
polling the wrong thing; parsing up front turns it into a ``ValueError`` at the call site that
quotes the bad value and says which part is wrong.

Formats (``P`` partition, ``R`` region, ``A`` account):

* generic ``arn:P:SERVICE:R:A:RESOURCE``
* state machine ``arn:P:states:R:A:stateMachine:NAME``, its version ``...:NAME:7`` and its alias
  ``...:NAME:ALIAS``
* execution ``arn:P:states:R:A:execution:MACHINE:NAME`` (standard),
  ``arn:P:states:R:A:express:MACHINE:NAME:RUN_ID`` (express), and a Distributed Map child
  ``arn:P:states:R:A:execution:MACHINE/LABEL:NAME``
* Map Run ``arn:P:states:R:A:mapRun:MACHINE/LABEL:RUN_ID``

Glue job and workflow identifiers are plain names, not ARNs, so they have no parser here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SFN_NAME_MAX_LENGTH",
    "Arn",
    "ExecutionArn",
    "InvalidArnError",
    "MapRunArn",
    "StateMachineArn",
    "execution_arn_for",
    "validate_sfn_name",
]

#: Step Functions names (state machines, executions) are 1 to 80 characters (API shape ``Name``).
SFN_NAME_MAX_LENGTH = 80

# Partitions are aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ... : accept the family rather than a
# fixed list so a new partition does not need a release of this package.
_PARTITION = re.compile(r"aws(-[a-z]+)*")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9-]*")
# us-east-1, us-gov-west-1, cn-north-1, eusc-de-east-1, ...; empty for global services (IAM, S3).
_REGION = re.compile(r"([a-z]{2,}(-[a-z0-9]+)*-\d+)?")
# 12 digits; empty for S3 buckets; "aws" for AWS managed IAM policies.
_ACCOUNT = re.compile(r"(\d{12}|aws)?")
# Alias names: API shape CharacterRestrictedName. At least one non-digit keeps them apart from
# version numbers, which is what lets ``NAME:QUALIFIER`` be read unambiguously.
_ALIAS = re.compile(r"(?=.*[a-zA-Z_.-])[a-zA-Z0-9_.-]{1,80}")
_VERSION = re.compile(r"[1-9]\d*")

# The StartExecution / CreateStateMachine rules for names, from the Step Functions API reference.
_BRACKETS = "<>{}[]"
_WILDCARDS = "?*"
_SPECIALS = '"#%\\^|~`$&,;:/'
_FORBIDDEN = frozenset(_BRACKETS + _WILDCARDS + _SPECIALS)
_NAME_RULE = (
    f"1-{SFN_NAME_MAX_LENGTH} characters, no whitespace, no brackets < > {{ }} [ ], no wildcards ? *, "
    'none of " # % \\ ^ | ~ ` $ & , ; : /, and no control, surrogate or non-characters'
)


class InvalidArnError(ValueError):
    """An ARN that does not parse, or is not the kind of ARN the caller asked for.

    A ``ValueError`` so that callers validating parameters can catch one type for every bad
    argument; ``value``, ``kind`` and ``reason`` are kept for callers that build their own message.
    """

    def __init__(self, value: object, reason: str, *, kind: str = "ARN", expected: str | None = None):
        self.value = value
        self.kind = kind
        self.reason = reason
        self.expected = expected
        message = f"Invalid {kind} {value!r}: {reason}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)


def _name_problem(name: str, max_length: int) -> str | None:
    """What is wrong with ``name`` under the Step Functions naming rules, or None if nothing."""
    if not 1 <= len(name) <= max_length:
        return f"must be 1-{max_length} characters long, got {len(name)}"
    for position, char in enumerate(name):
        problem = _char_problem(char)
        if problem:
            return f"{problem} at position {position}"
    return None


def _char_problem(char: str) -> str | None:
    code = ord(char)
    if char.isspace():
        return f"must not contain whitespace (U+{code:04X})"
    if char in _FORBIDDEN:
        return f"must not contain {char!r}"
    if code <= 0x1F or 0x7F <= code <= 0x9F:
        return f"must not contain control character U+{code:04X}"
    if 0xD800 <= code <= 0xDFFF:
        return f"must not contain surrogate U+{code:04X}"
    if code in (0xFFFE, 0xFFFF, 0x10FFFF):
        return f"must not contain non-character U+{code:04X}"
    return None


def validate_sfn_name(name: object, what: str = "name") -> str:
    """Check a state machine or execution name against the Step Functions rules and return it.

    ``what`` names the input in the error ("execution name", "name of state machine 'x'"), so the
    message tells a DAG author which argument to fix and which rule it broke, instead of the
    service's later ``InvalidName`` that quotes neither.
    """
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    problem = _name_problem(name, SFN_NAME_MAX_LENGTH)
    if problem:
        raise ValueError(f"{what} {name!r} is not a valid Step Functions name: it {problem} ({_NAME_RULE})")
    return name


def _split_arn(value: object, kind: str, expected: str) -> list[str]:
    if not isinstance(value, str):
        raise InvalidArnError(value, f"must be a string, got {type(value).__name__}", kind=kind)
    if value != value.strip():
        raise InvalidArnError(value, "has leading or trailing whitespace", kind=kind, expected=expected)
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise InvalidArnError(
            value, "does not have the six ':'-separated parts of an ARN", kind=kind, expected=expected
        )
    return parts


@dataclass(frozen=True, slots=True)
class Arn:
    """Any ARN, split into its parts; ``str(arn)`` gives it back."""

    partition: str
    service: str
    region: str
    account_id: str
    resource: str

    @classmethod
    def parse(cls, value: str) -> Arn:
        """Parse ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``; region/account may be empty."""
        expected = "arn:PARTITION:SERVICE:REGION:ACCOUNT_ID:RESOURCE"
        _, partition, service, region, account_id, resource = _split_arn(value, "ARN", expected)
        checks = (
            (_PARTITION, partition, "partition"),
            (_SERVICE, service, "service"),
            (_REGION, region, "region"),
            (_ACCOUNT, account_id, "account id"),
        )
        for pattern, part, label in checks:
            if not pattern.fullmatch(part):
                raise InvalidArnError(value, f"{label} {part!r} is not valid", expected=expected)
        if not resource:
            raise InvalidArnError(value, "resource part is empty", expected=expected)
        return cls(partition, service, region, account_id, resource)

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account_id}:{self.resource}"


def _parse_states_arn(value: str | Arn, kind: str, expected: str) -> tuple[Arn, list[str]]:
    """Parse a Step Functions ARN of one resource type: the generic ARN and the resource's fields."""
    text = str(value) if isinstance(value, Arn) else value
    try:
        arn = value if isinstance(value, Arn) else Arn.parse(text)
    except InvalidArnError as exc:
        raise InvalidArnError(text, exc.reason, kind=kind, expected=expected) from None
    if arn.service != "states":
        raise InvalidArnError(text, f"service is {arn.service!r}, not 'states'", kind=kind, expected=expected)
    if not arn.region or not arn.account_id:
        raise InvalidArnError(text, "region and account id are required", kind=kind, expected=expected)
    return arn, arn.resource.split(":")


def _check_name(value: str, name: str, label: str, kind: str, expected: str) -> None:
    problem = _name_problem(name, SFN_NAME_MAX_LENGTH)
    if problem:
        raise InvalidArnError(value, f"{label} {name!r} {problem}", kind=kind, expected=expected)


def _split_labelled(value: str, part: str, kind: str, expected: str) -> tuple[str, str | None]:
    """``MACHINE`` or ``MACHINE/LABEL`` (Distributed Map children and Map Runs) -> (machine, label)."""
    machine, slash, label = part.partition("/")
    _check_name(value, machine, "state machine name", kind, expected)
    if not slash:
        return machine, None
    _check_name(value, label, "Map Run label", kind, expected)
    return machine, label


@dataclass(frozen=True, slots=True)
class StateMachineArn:
    """A state machine ARN, possibly qualified by a version number or an alias name."""

    partition: str
    region: str
    account_id: str
    name: str
    version: int | None = None
    alias: str | None = None

    _EXPECTED = "arn:PARTITION:states:REGION:ACCOUNT_ID:stateMachine:NAME[:VERSION|:ALIAS]"

    @classmethod
    def parse(cls, value: str | Arn) -> StateMachineArn:
        """Parse a plain, version (``...:NAME:7``) or alias (``...:NAME:PROD``) state machine ARN."""
        kind, expected = "state machine ARN", cls._EXPECTED
        arn, fields = _parse_states_arn(value, kind, expected)
        text = str(arn)
        if fields[0] != "stateMachine" or len(fields) not in (2, 3):
            raise InvalidArnError(
                text, f"resource {arn.resource!r} is not a state machine", kind=kind, expected=expected
            )
        _check_name(text, fields[1], "state machine name", kind, expected)
        version, alias = cls._qualifier(text, fields[2] if len(fields) == 3 else None)
        return cls(arn.partition, arn.region, arn.account_id, fields[1], version, alias)

    @classmethod
    def _qualifier(cls, text: str, qualifier: str | None) -> tuple[int | None, str | None]:
        if qualifier is None:
            return None, None
        if _VERSION.fullmatch(qualifier):
            return int(qualifier), None
        if _ALIAS.fullmatch(qualifier):
            return None, qualifier
        raise InvalidArnError(
            text,
            f"qualifier {qualifier!r} is neither a version number nor an alias name "
            "(1-80 of a-z A-Z 0-9 _ . -, not all digits)",
            kind="state machine ARN",
            expected=cls._EXPECTED,
        )

    @property
    def qualifier(self) -> str | None:
        """The version number or alias name as it appears in the ARN, or None."""
        if self.version is not None:
            return str(self.version)
        return self.alias

    @property
    def unqualified(self) -> str:
        """The ARN of the state machine itself, without version or alias.

        Executions, ListExecutions and IAM resources are named after this one, whatever ARN an
        execution was started with.
        """
        return f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:{self.name}"

    def __str__(self) -> str:
        qualifier = self.qualifier
        return self.unqualified if qualifier is None else f"{self.unqualified}:{qualifier}"


@dataclass(frozen=True, slots=True)
class ExecutionArn:
    """A state machine execution: standard, express, or a Distributed Map child execution."""

    partition: str
    region: str
    account_id: str
    state_machine_name: str
    name: str
    is_express: bool = False
    #: Express execution ARNs end in a run id after the name; None for standard executions.
    run_id: str | None = None
    #: The Map Run label for a child execution started by a Distributed Map state.
    map_run_label: str | None = None

    _EXPECTED = (
        "arn:PARTITION:states:REGION:ACCOUNT_ID:execution:STATE_MACHINE:NAME "
        "or ...:express:STATE_MACHINE:NAME:RUN_ID"
    )

    @classmethod
    def parse(cls, value: str | Arn) -> ExecutionArn:
        """Parse a standard (``:execution:``) or express (``:express:``) execution ARN."""
        kind, expected = "execution ARN", cls._EXPECTED
        arn, fields = _parse_states_arn(value, kind, expected)
        text = str(arn)
        is_express = fields[0] == "express"
        shapes = {"execution": (3,), "express": (3, 4)}
        if len(fields) not in shapes.get(fields[0], ()):
            raise InvalidArnError(
                text, f"resource {arn.resource!r} is not an execution", kind=kind, expected=expected
            )
        machine, label = _split_labelled(text, fields[1], kind, expected)
        _check_name(text, fields[2], "execution name", kind, expected)
        run_id = fields[3] if len(fields) == 4 else None
        if run_id == "":
            raise InvalidArnError(text, "express run id is empty", kind=kind, expected=expected)
        return cls(arn.partition, arn.region, arn.account_id, machine, fields[2], is_express, run_id, label)

    @property
    def state_machine_arn(self) -> str:
        """The (unqualified) ARN of the state machine this execution belongs to.

        For a Distributed Map child this is the top-level state machine, the IAM resource that
        permissions are granted on; the label is in :attr:`map_run_label`.
        """
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:"
            f"{self.state_machine_name}"
        )

    def __str__(self) -> str:
        machine = self.state_machine_name
        if self.map_run_label is not None:
            machine = f"{machine}/{self.map_run_label}"
        prefix = f"arn:{self.partition}:states:{self.region}:{self.account_id}"
        if self.is_express:
            tail = f":{self.run_id}" if self.run_id is not None else ""
            return f"{prefix}:express:{machine}:{self.name}{tail}"
        return f"{prefix}:execution:{machine}:{self.name}"


@dataclass(frozen=True, slots=True)
class MapRunArn:
    """A Distributed Map Run: ``arn:P:states:R:A:mapRun:MACHINE/LABEL:RUN_ID``.

    The parent execution is not encoded in a Map Run ARN (the last part is a run id, not the
    execution name), so it cannot be derived: DescribeMapRun returns it as ``executionArn``. What
    can be derived is the state machine and the ARN of any child execution of the run.
    """

    partition: str
    region: str
    account_id: str
    state_machine_name: str
    label: str
    run_id: str

    _EXPECTED = "arn:PARTITION:states:REGION:ACCOUNT_ID:mapRun:STATE_MACHINE/LABEL:RUN_ID"

    @classmethod
    def parse(cls, value: str | Arn) -> MapRunArn:
        """Parse a Map Run ARN as returned by ListMapRuns / the MapRunStarted event."""
        kind, expected = "Map Run ARN", cls._EXPECTED
        arn, fields = _parse_states_arn(value, kind, expected)
        text = str(arn)
        if fields[0] != "mapRun" or len(fields) != 3:
            raise InvalidArnError(
                text, f"resource {arn.resource!r} is not a Map Run", kind=kind, expected=expected
            )
        machine, label = _split_labelled(text, fields[1], kind, expected)
        if label is None:
            raise InvalidArnError(
                text, "missing '/LABEL' after the state machine name", kind=kind, expected=expected
            )
        if not fields[2]:
            raise InvalidArnError(text, "run id is empty", kind=kind, expected=expected)
        return cls(arn.partition, arn.region, arn.account_id, machine, label, fields[2])

    @property
    def state_machine_arn(self) -> str:
        """The (unqualified) ARN of the state machine whose execution started this Map Run."""
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:"
            f"{self.state_machine_name}"
        )

    def child_execution_arn(self, name: str) -> str:
        """The ARN of the child execution ``name`` of this Map Run (standard child workflows)."""
        validate_sfn_name(name, "child execution name")
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}:execution:"
            f"{self.state_machine_name}/{self.label}:{name}"
        )

    def __str__(self) -> str:
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}:mapRun:"
            f"{self.state_machine_name}/{self.label}:{self.run_id}"
        )


def execution_arn_for(state_machine_arn: str | StateMachineArn, name: str) -> str:
    """The ARN StartExecution will give execution ``name`` of a standard state machine.

    Lets an operator know the execution ARN before starting it (idempotent restarts, links) and
    check for it afterwards. Version and alias ARNs map to the unqualified machine name, as the
    service does. Express executions get a run id from the service, so their ARN cannot be built.
    """
    machine = (
        state_machine_arn
        if isinstance(state_machine_arn, StateMachineArn)
        else StateMachineArn.parse(state_machine_arn)
    )
    validate_sfn_name(name, "execution name")
    prefix = f"arn:{machine.partition}:states:{machine.region}:{machine.account_id}"
    return f"{prefix}:execution:{machine.name}:{name}"
