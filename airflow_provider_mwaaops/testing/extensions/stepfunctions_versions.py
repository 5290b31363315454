"""Step Functions versions, revisions and aliases as AWS serves them, on moto's own models.

moto keeps versions and aliases on its ``StateMachine`` but serves only part of their API, with
texts of its own. What this module makes the emulator do, and where each rule comes from
(API reference pages under https://docs.aws.amazon.com/step-functions/latest/apireference/;
error texts as AWS answered them, recorded against AWS in LocalStack's snapshot tests
``tests/aws/services/stepfunctions/v2/test_sfn_api_versioning.snapshot.json`` and
``test_sfn_api_aliasing.snapshot.json``):

- Revisions (API_UpdateStateMachine, API_PublishStateMachineVersion): a new state machine has no
  revision id; an UpdateStateMachine that changes its configuration gives it a new one, which
  UpdateStateMachine and DescribeStateMachine return as ``revisionId``. An update that changes
  nothing keeps the revision (and, with ``publish``, returns the version of that revision).
- PublishStateMachineVersion "is an idempotent API. It doesn't create a duplicate state machine
  version if it already exists for the current revision"; with ``revisionId`` (``INITIAL`` for a
  machine never updated) it publishes only if that is the current revision, otherwise
  ``ConflictException``. Version numbers are never reused after a deletion.
- UpdateStateMachine addresses the state machine itself: a version ARN is
  ``StateMachineDoesNotExist`` (as AWS answers it).
- ListStateMachineVersions: newest first, paginated. DeleteStateMachineVersion: "You can't delete a
  state machine version currently referenced by one or more aliases" (``ConflictException``);
  deleting one that does not exist succeeds, as on AWS.
- DescribeStateMachine "returns the details for a state machine version if the stateMachineArn you
  specify is a state machine version ARN" (its ``stateMachineArn`` is then the version ARN and
  ``description`` the version's); a qualified ARN naming a Distributed Map state (``.../label``)
  "fails with ValidationException". For an alias ARN the reference documents no answer; the
  emulator keeps moto's ``StateMachineDoesNotExist``.
- Aliases (API_CreateStateMachineAlias, API_UpdateStateMachineAlias, API_DeleteStateMachineAlias,
  API_DescribeStateMachineAlias): routing to one or two distinct *versions* of one state machine
  with weights summing to 100, names that are not all digits (1-80 of ``a-zA-Z0-9_.-``);
  CreateStateMachineAlias is idempotent for the same description and routing and a
  ``ConflictException`` otherwise; deleting an alias that does not exist succeeds; updating or
  describing one answers ``ResourceNotFound``.

Executions started through a version or an alias are in :mod:`.stepfunctions_executions`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import EmptyResult
from moto.stepfunctions.exceptions import StateMachineDoesNotExist, ValidationException
from moto.stepfunctions.models import StateMachine, StateMachineAlias, StepFunctionBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.paginator import paginate

from airflow_provider_mwaaops.testing.extensions._patching import add_method, replaced_by, wrap_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_http import action_result, update_result

_PATCH = "mwaaops.stepfunctions.versions"
_REVISION_ATTR = "_mwaaops_revision_id"
_PUBLISHED_ATTR = "_mwaaops_published_version"

ALIAS_NAME_PATTERN = r"^(?=.*[a-zA-Z_\-\.])[a-zA-Z0-9_\-\.]+$"
#: How AWS quotes the pattern in its validation message (each backslash doubled).
_ALIAS_NAME_PATTERN_IN_MESSAGE = ALIAS_NAME_PATTERN.replace("\\", "\\\\")
ALIAS_NAME_MAX_LENGTH = 80
MAX_ROUTES = 2
#: The message of AWS's ResourceNotFound for a missing alias (UpdateStateMachineAlias).
RESOURCE_NOT_FOUND = "Request references a resource that does not exist."

_VERSIONS_PAGINATION = {
    "list_versions": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": 100,
        "unique_attribute": ["arn"],
    }
}


class ConflictException(ServiceException):
    code = "ConflictException"


class ResourceNotFound(ServiceException):
    code = "ResourceNotFound"


# -- ARNs ------------------------------------------------------------------------------------------
def qualifier_of(arn: str) -> str | None:
    """The version number or alias name after ``stateMachine:NAME:``, or None when unqualified."""
    parts = arn.split(":")
    return parts[7] if len(parts) > 7 and parts[5] == "stateMachine" else None


def unqualified_arn(arn: str) -> str:
    return ":".join(arn.split(":")[:7])


def is_version_qualifier(qualifier: str) -> bool:
    return qualifier.isdigit()


def machine_of(backend: Any, arn: str) -> StateMachine:
    """The state machine a (possibly qualified) ARN belongs to; StateMachineDoesNotExist otherwise."""
    machine = next((m for m in backend.state_machines if m.arn == unqualified_arn(arn)), None)
    if machine is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return machine


def version_of(backend: Any, arn: str) -> Any:
    """The published version a version ARN names; StateMachineDoesNotExist (AWS's text) otherwise."""
    machine = machine_of(backend, arn)
    qualifier = qualifier_of(arn)
    version = machine.versions.get(int(qualifier)) if qualifier and is_version_qualifier(qualifier) else None
    if version is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return version


def alias_of(backend: Any, arn: str) -> StateMachineAlias:
    """The alias an alias ARN names; ResourceNotFound (AWS's text) when it does not exist."""
    qualifier = qualifier_of(arn)
    machine = next((m for m in backend.state_machines if m.arn == unqualified_arn(arn)), None)
    alias = machine.aliases.get(qualifier) if machine is not None and qualifier else None
    if alias is None:
        raise ResourceNotFound(RESOURCE_NOT_FOUND)
    return alias


def revision_id(machine: Any) -> str | None:
    return getattr(machine, _REVISION_ATTR, None)


# -- revisions and publishing ----------------------------------------------------------------------
def _configuration(machine: Any) -> tuple[Any, ...]:
    return (
        machine.definition,
        machine.roleArn,
        repr(machine.loggingConfiguration),
        repr(machine.tracingConfiguration),
        repr(machine.encryptionConfiguration),
    )


def _publish(original: Any) -> Any:
    def publish(self: Any, description: str | None) -> Any:
        """Idempotent per revision: the current revision's version if it has one, else a new one."""
        current = revision_id(self)
        for version in self.versions.values():
            if getattr(version, _REVISION_ATTR, None) == current:
                self.latest_version = version
                return version
        original(self, description)
        version = self.latest_version
        setattr(version, _REVISION_ATTR, current)
        return version

    return publish


def _update_state_machine(original: Any) -> Any:
    def update_state_machine(
        self: Any,
        arn: str,
        definition: str | None = None,
        role_arn: str | None = None,
        logging_configuration: dict[str, Any] | None = None,
        tracing_configuration: dict[str, Any] | None = None,
        encryption_configuration: dict[str, Any] | None = None,
        publish: bool | None = None,
        version_description: str | None = None,
    ) -> Any:
        if qualifier_of(arn) is not None:  # AWS: a version ARN is not a state machine to update
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        before = _configuration(self.describe_state_machine(arn))
        machine = original(
            self,
            arn,
            definition,
            role_arn,
            logging_configuration=logging_configuration,
            tracing_configuration=tracing_configuration,
            encryption_configuration=encryption_configuration,
            publish=False,
            version_description=None,
        )
        if _configuration(machine) != before:
            setattr(machine, _REVISION_ATTR, str(uuid.uuid4()))
        setattr(machine, _PUBLISHED_ATTR, machine.publish(version_description) if publish else None)
        return machine

    return update_state_machine


def backend_publish_state_machine_version(
    backend: Any, arn: str, description: str | None = None, expected_revision: str | None = None
) -> Any:
    """``PublishStateMachineVersion``: the version of the current revision, new or existing."""
    if qualifier_of(arn) is not None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    machine = backend.describe_state_machine(arn)
    current = revision_id(machine)
    if (
        expected_revision is not None
        and (None if expected_revision == "INITIAL" else expected_revision) != current
    ):
        raise ConflictException(
            f"Failed to publish the State Machine version for revision {expected_revision}. "
            f"The current State Machine revision is {current}."
        )
    return machine.publish(description)


def backend_list_state_machine_versions(backend: Any, arn: str, **page: Any) -> tuple[list[Any], Any]:
    machine = machine_of(backend, arn)

    @paginate(pagination_model=_VERSIONS_PAGINATION)
    def list_versions() -> list[Any]:
        return sorted(machine.versions.values(), key=lambda v: v.version, reverse=True)

    return list_versions(**page)


def backend_delete_state_machine_version(backend: Any, version_arn: str) -> None:
    machine = next((m for m in backend.state_machines if m.arn == unqualified_arn(version_arn)), None)
    qualifier = qualifier_of(version_arn)
    if machine is None or qualifier is None or not is_version_qualifier(qualifier):
        return  # AWS: deleting a version that does not exist succeeds
    referencing = [
        alias.name
        for alias in machine.aliases.values()
        if any(route["stateMachineVersionArn"] == version_arn for route in alias.routing_configuration)
    ]
    if referencing:
        raise ConflictException(
            "Version to be deleted must not be referenced by an alias. "
            f"Current list of aliases referencing this version: [{', '.join(referencing)}]"
        )
    version = machine.versions.pop(int(qualifier), None)
    if version is not None and machine.latest_version is version:
        machine.latest_version = max(machine.versions.values(), key=lambda v: v.version, default=None)


# -- aliases ---------------------------------------------------------------------------------------
def _validate_alias_name(name: str) -> None:
    if len(name) > ALIAS_NAME_MAX_LENGTH:
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
            f"Member must have length less than or equal to {ALIAS_NAME_MAX_LENGTH}"
        )
    if not re.match(ALIAS_NAME_PATTERN, name):
        raise ValidationException(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {_ALIAS_NAME_PATTERN_IN_MESSAGE}"
        )


def _validate_routing(backend: Any, routing: list[dict[str, Any]]) -> None:
    """AWS's routing rules, each with the text AWS answers it with."""
    arns = [str(route["stateMachineVersionArn"]) for route in routing]
    weights = [int(route["weight"]) for route in routing]
    if len(routing) > MAX_ROUTES:
        items = ", ".join(
            f"RoutingConfigurationListItem(stateMachineVersionArn={arn}, weight={weight})"
            for arn, weight in zip(arns, weights, strict=True)
        )
        raise ValidationException(
            f"1 validation error detected: Value '[{items}]' at 'routingConfiguration' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_ROUTES}"
        )
    for index, weight in enumerate(weights, start=1):
        if weight > 100:
            raise ValidationException(
                f"1 validation error detected: Value '{weight}' at "
                f"'routingConfiguration.{index}.member.weight' failed to satisfy constraint: "
                "Member must have value less than or equal to 100"
            )
    received = f"Received: [{', '.join(arns)}]"
    if any(qualifier_of(arn) is None or not is_version_qualifier(qualifier_of(arn) or "") for arn in arns):
        raise ValidationException(
            f"Routing configuration must contain state machine version ARNs. {received}"
        )
    if len(set(arns)) != len(arns):
        raise ValidationException(
            f"Routing configuration must contain distinct state machine version ARNs. {received}"
        )
    if sum(weights) != 100:
        raise ValidationException(
            f"Sum of routing configuration weights must equal 100. Received: [{', '.join(map(str, weights))}]"
        )
    if len({unqualified_arn(arn) for arn in arns}) > 1:
        # AWS documents the rule ("versions of the same state machine"), not its text: moto's.
        raise ValidationException("Both stateMachineVersionArn values must belong to the same state machine.")
    for arn in arns:
        try:
            version_of(backend, arn)
        except StateMachineDoesNotExist:
            # API reference: CreateStateMachineAlias answers ResourceNotFound for what it cannot find.
            raise ResourceNotFound(RESOURCE_NOT_FOUND) from None


def _routing(routing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"stateMachineVersionArn": str(r["stateMachineVersionArn"]), "weight": int(r["weight"])}
        for r in routing
    ]


def response_create_state_machine_alias(self: Any) -> Any:
    name = self._get_param("name")
    description = self._get_param("description")
    routing = _routing(self._get_param("routingConfiguration") or [])
    _validate_alias_name(name)
    _validate_routing(self.stepfunction_backend, routing)
    machine = machine_of(self.stepfunction_backend, routing[0]["stateMachineVersionArn"])
    existing = machine.aliases.get(name)
    if existing is not None:
        if existing.description != description or existing.routing_configuration != routing:
            raise ConflictException(
                "Failed to create alias because an alias with the same name and a different routing "
                "configuration already exists."
            )
        alias = existing
    else:
        alias_class: Any = StateMachineAlias  # a CloudFormation model too; only its API part is used
        alias = alias_class(name, machine.arn, routing, description)
        machine.aliases[name] = alias
    return action_result({"creationDate": alias.creation_date, "stateMachineAliasArn": alias.arn})


def response_update_state_machine_alias(self: Any) -> Any:
    description = self._get_param("description")
    routing = self._get_param("routingConfiguration")
    if description is None and routing is None:
        raise ValidationException("You must provide at least one of routingConfiguration or description")
    alias = alias_of(self.stepfunction_backend, self._get_param("stateMachineAliasArn"))
    if routing is not None:
        routing = _routing(routing)
        _validate_routing(self.stepfunction_backend, routing)
        if unqualified_arn(routing[0]["stateMachineVersionArn"]) != alias.statemachine_arn:
            raise ValidationException(
                "Both stateMachineVersionArn values must belong to the same state machine."
            )
    alias.update(routing_configuration=routing, description=description)
    return action_result({"updateDate": alias.update_date})


def response_describe_state_machine_alias(self: Any) -> Any:
    alias = alias_of(self.stepfunction_backend, self._get_param("stateMachineAliasArn"))
    body = {
        "stateMachineAliasArn": alias.arn,
        "name": alias.name,
        "routingConfiguration": alias.routing_configuration,
        "creationDate": alias.creation_date,
        "updateDate": alias.update_date,
    }
    if alias.description:
        body["description"] = alias.description
    return action_result(body)


def response_delete_state_machine_alias(self: Any) -> Any:
    try:
        alias = alias_of(self.stepfunction_backend, self._get_param("stateMachineAliasArn"))
    except ResourceNotFound:
        return EmptyResult()  # AWS: deleting an alias that does not exist succeeds
    machine = machine_of(self.stepfunction_backend, alias.statemachine_arn)
    machine.aliases.pop(alias.name, None)
    return EmptyResult()


# -- versions and state machines over HTTP ----------------------------------------------------------
def response_publish_state_machine_version(self: Any) -> Any:
    version = backend_publish_state_machine_version(
        self.stepfunction_backend,
        self._get_param("stateMachineArn"),
        description=self._get_param("description"),
        expected_revision=self._get_param("revisionId"),
    )
    return action_result({"creationDate": version.creation_date, "stateMachineVersionArn": version.arn})


def response_list_state_machine_versions(self: Any) -> Any:
    versions, next_token = backend_list_state_machine_versions(
        self.stepfunction_backend,
        self._get_param("stateMachineArn"),
        max_results=self._get_int_param("maxResults") or None,
        next_token=self._get_param("nextToken"),
    )
    items = [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]
    return action_result({"stateMachineVersions": items, "nextToken": next_token})


def response_delete_state_machine_version(self: Any) -> Any:
    backend_delete_state_machine_version(self.stepfunction_backend, self._get_param("stateMachineVersionArn"))
    return EmptyResult()


def response_update_state_machine(self: Any) -> Any:
    publish = self._get_param("publish")
    version_description = self._get_param("versionDescription")
    if version_description and not publish:
        raise ValidationException("Version description can only be set when publish is true")
    machine = self.stepfunction_backend.update_state_machine(
        arn=self._get_param("stateMachineArn"),
        definition=self._get_param("definition"),
        role_arn=self._get_param("roleArn"),
        tracing_configuration=self._get_param("tracingConfiguration"),
        encryption_configuration=self._get_param("encryptionConfiguration"),
        logging_configuration=self._get_param("loggingConfiguration"),
        publish=publish,
        version_description=version_description,
    )
    body: dict[str, Any] = {"updateDate": machine.update_date}
    if revision_id(machine) is not None:
        body["revisionId"] = revision_id(machine)
    published = getattr(machine, _PUBLISHED_ATTR, None)
    if published is not None:
        body["stateMachineVersionArn"] = published.arn
    return action_result(body)


def _describe_state_machine(original: Any) -> Any:
    def describe_state_machine(self: Any) -> Any:
        arn = self._get_param("stateMachineArn") or ""
        parts = arn.split(":")
        if len(parts) > 6 and "/" in parts[6]:
            # API reference: a Distributed Map state's ARN "fails with ValidationException"; AWS
            # documents the code, not a message, so the message only names the input.
            raise ValidationException(f"'{arn}'")
        result = original(self)
        machine = self.stepfunction_backend.describe_state_machine(arn)
        if revision_id(machine) is not None:
            result = update_result(result, {"revisionId": revision_id(machine)})
        return result

    return describe_state_machine


def install() -> None:
    """Versions, revisions and aliases with AWS's rules in moto's backend and HTTP API."""
    wrap_method(StateMachine, "publish", _PATCH, _publish)
    wrap_method(StepFunctionBackend, "update_state_machine", _PATCH, _update_state_machine)
    replacements = {
        "create_state_machine_alias": response_create_state_machine_alias,
        "update_state_machine_alias": response_update_state_machine_alias,
        "describe_state_machine_alias": response_describe_state_machine_alias,
        "delete_state_machine_alias": response_delete_state_machine_alias,
        "update_state_machine": response_update_state_machine,
    }
    for name, handler in replacements.items():
        wrap_method(StepFunctionResponse, name, _PATCH, replaced_by(handler))
    add_method(StepFunctionResponse, "publish_state_machine_version", response_publish_state_machine_version)
    add_method(StepFunctionResponse, "list_state_machine_versions", response_list_state_machine_versions)
    add_method(StepFunctionResponse, "delete_state_machine_version", response_delete_state_machine_version)
    wrap_method(StepFunctionResponse, "describe_state_machine", _PATCH, _describe_state_machine)
