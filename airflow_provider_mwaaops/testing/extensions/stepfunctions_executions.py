"""Executions as AWS serves them: through versions and aliases, with Map Run children, described in full.

Rules and their sources (API reference pages under
https://docs.aws.amazon.com/step-functions/latest/apireference/; response shapes as recorded
against AWS in LocalStack's ``test_sfn_api_aliasing.snapshot.json`` / ``..._versioning...``):

- *StartExecution* accepts "an unqualified state machine ARN", "a state machine version ARN" or "a
  state machine alias ARN". A version runs that version's definition; an alias picks one of its
  (at most two) versions at random by weight ("Step Functions randomly chooses which version runs a
  given execution based on the percentage you specify", *CreateStateMachineAlias*). The execution
  ARN is the state machine's, whatever ARN it was started with. "Step Functions doesn't associate
  state machine executions that you start with an unqualified ARN with a version", nor executions
  started with a version ARN "with any aliases that point to that version". Names are unique per
  state machine, as for unqualified starts; a start without a name gets a UUID.
- *DescribeExecution*: ``stateMachineArn`` is the unqualified ARN; ``stateMachineVersionArn`` and
  ``stateMachineAliasArn`` say what the execution started through; plus the redrive members
  (:mod:`.stepfunctions_redrive`) and, for a Distributed Map child, ``mapRunArn``.
- *ListExecutions*: "You can also provide a state machine alias ARN or version ARN to list the
  executions associated with a specific alias or version"; with ``mapRunArn``, "a list of all of
  the child workflow executions started by a Map Run" (:mod:`.stepfunctions_map_children`), with
  ``itemCount`` and ``mapRunArn``. "You can specify either a mapRunArn or a stateMachineArn, but not
  both." ``redriveFilter`` (REDRIVEN / NOT_REDRIVEN) applies before the page is cut; items carry
  ``redriveCount`` / ``redriveDate``; newest first.
- *DescribeStateMachineForExecution* answers with the state machine *as the execution started it*
  (its definition snapshot, ``revisionId`` if any, ``updateDate``), not the current one: that is
  what a caller compares with DescribeStateMachine to see that the definition changed since.
- *GetExecutionHistory* of a Map Run child is the child's own history.
"""

from __future__ import annotations

import copy
import datetime
import json
import random
import uuid
from typing import Any

from moto.stepfunctions.exceptions import StateMachineDoesNotExist, ValidationException
from moto.stepfunctions.parser.api import InvalidExecutionInput
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.stepfunctions.utils import PAGINATION_MODEL
from moto.utilities.paginator import paginate

from airflow_provider_mwaaops.testing.extensions import stepfunctions_map_children as children
from airflow_provider_mwaaops.testing.extensions._patching import replaced_by, wrap_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_http import action_result, update_result
from airflow_provider_mwaaops.testing.extensions.stepfunctions_redrive import (
    NOT_REDRIVABLE,
    REASON_RUNNING,
    REASON_SUCCEEDED,
    REDRIVABLE,
    STOPPED_STATUSES,
    redrive_count,
    redrive_date,
    redrive_fields,
    redrive_status,
)
from airflow_provider_mwaaops.testing.extensions.stepfunctions_versions import (
    RESOURCE_NOT_FOUND,
    ResourceNotFound,
    alias_of,
    is_version_qualifier,
    machine_of,
    qualifier_of,
    revision_id,
    version_of,
)

_PATCH = "mwaaops.stepfunctions.executions"
_VERSION_ARN_ATTR = "_mwaaops_version_arn"
_ALIAS_ARN_ATTR = "_mwaaops_alias_arn"
REDRIVABLE_BY_MAP_RUN = "REDRIVABLE_BY_MAP_RUN"


def version_arn_of(execution: Any) -> str | None:
    return getattr(execution, _VERSION_ARN_ATTR, None)


def alias_arn_of(execution: Any) -> str | None:
    return getattr(execution, _ALIAS_ARN_ATTR, None)


# -- StartExecution through a version or an alias ------------------------------------------------------
def _routed_version_arn(alias: Any) -> str:
    """One of the alias's versions, chosen at random by weight."""
    routes = alias.routing_configuration
    pick = random.uniform(0, 100)  # noqa: S311 (routing, not security)
    for route in routes:
        pick -= int(route["weight"])
        if pick < 0:
            return str(route["stateMachineVersionArn"])
    return str(next(r for r in reversed(routes) if int(r["weight"]) > 0)["stateMachineVersionArn"])


def _input_data(execution_input: str | None) -> str:
    if execution_input is None:
        return "{}"
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise InvalidExecutionInput(str(exc)) from None  # moto's own answer for unqualified starts
    return execution_input


def start_qualified_execution(
    backend: Any, arn: str, name: str | None, execution_input: str | None, trace_header: Any
) -> Any:
    """StartExecution on a version or alias ARN: that version's definition, the machine's execution."""
    machine: Any = machine_of(backend, arn)
    qualifier = qualifier_of(arn) or ""
    alias_arn = None
    if is_version_qualifier(qualifier):
        version = version_of(backend, arn)
    else:
        alias = machine.aliases.get(qualifier)
        if alias is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        version, alias_arn = version_of(backend, _routed_version_arn(alias)), alias.arn
    input_data = _input_data(execution_input)
    existing = machine._handle_name_input_idempotency(name, input_data)
    if existing is not None:
        return existing
    # The version is the definition snapshot; its executions are not part of it.
    snapshot = copy.deepcopy(version, {id(version.executions): []})
    snapshot.arn = machine.arn  # Map Run ARNs and $$.StateMachine.Id name the state machine
    execution = Execution(
        name=name,  # type: ignore[arg-type]  # None is what moto's unqualified start accepts too
        sm_type=snapshot.sm_type,
        role_arn=snapshot.roleArn,
        exec_arn=f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}:execution:"
        f"{machine.name}:{name}",
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=snapshot,
        start_date=datetime.datetime.now(tz=datetime.UTC),
        cloud_watch_logging_session=None,
        input_data=input_data,
        trace_header=trace_header,
        activity_store={},
    )
    setattr(execution, _VERSION_ARN_ATTR, version.arn)
    setattr(execution, _ALIAS_ARN_ATTR, alias_arn)
    machine.executions.append(execution)
    execution.start()
    return execution


def _start_execution(original: Any) -> Any:
    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: Any = None,
    ) -> Any:
        # StartExecution: "If you don't provide a name for the execution, Step Functions automatically
        # generates a universally unique identifier (UUID) as the execution name" (moto used "None").
        name = name or str(uuid.uuid4())
        if qualifier_of(state_machine_arn) is None:
            return original(self, state_machine_arn, name, execution_input, trace_header)
        return start_qualified_execution(self, state_machine_arn, name, execution_input, trace_header)

    return start_execution


# -- DescribeExecution -------------------------------------------------------------------------------
def _child_redrive_fields(backend: Any, child: children.ChildExecution, record: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"redriveCount": child.redrive_count}
    if child.redrive_date is not None:
        fields["redriveDate"] = child.redrive_date
    reason: str | None
    if child.status == "RUNNING":
        status, reason = NOT_REDRIVABLE, REASON_RUNNING
    elif child.status == "SUCCEEDED":
        status, reason = NOT_REDRIVABLE, REASON_SUCCEEDED
    else:
        parent = children.parent_execution(backend, record)
        status, reason = redrive_status(parent) if parent is not None else (NOT_REDRIVABLE, None)
        if status == REDRIVABLE:
            status, reason = REDRIVABLE_BY_MAP_RUN, None
    fields["redriveStatus"] = status
    if reason is not None:
        fields["redriveStatusReason"] = reason
    return fields


def _describe_child(backend: Any, child: children.ChildExecution, record: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "executionArn": child.execution_arn,
        "stateMachineArn": child.state_machine_arn,
        "name": child.name,
        "status": child.status,
        "startDate": child.start_date,
        "input": json.dumps(child.input, separators=(",", ":")),
        "inputDetails": {"included": True},
        "mapRunArn": child.map_run_arn,
    }
    if child.stop_date is not None:
        body["stopDate"] = child.stop_date
    if child.status == "SUCCEEDED":
        body["output"] = json.dumps(child.output, separators=(",", ":"))
        body["outputDetails"] = {"included": True}
    for key, value in (("error", child.error), ("cause", child.cause)):
        if value is not None:
            body[key] = value
    body.update(_child_redrive_fields(backend, child, record))
    return body


def _qualifier_members(execution: Any) -> dict[str, Any]:
    members = {}
    if version_arn_of(execution) is not None:
        members["stateMachineVersionArn"] = version_arn_of(execution)
    if alias_arn_of(execution) is not None:
        members["stateMachineAliasArn"] = alias_arn_of(execution)
    return members


def _describe_execution(original: Any) -> Any:
    def describe_execution(self: Any) -> Any:
        arn = self._get_param("executionArn") or ""
        backend = self.stepfunction_backend
        if children.is_child_arn(arn):
            found = children.find_child(backend, arn)
            if found is not None:
                return action_result(_describe_child(backend, *found))
        result = original(self)
        execution = backend.describe_execution(arn)
        update = redrive_fields(execution) | _qualifier_members(execution)
        if execution.status == "TIMED_OUT" and execution.stop_date is not None:
            update["stopDate"] = execution.stop_date  # moto leaves it out for TIMED_OUT only
        return update_result(result, update)

    return describe_execution


# -- ListExecutions ----------------------------------------------------------------------------------
def _filtered(
    items: list[Any], status_filter: str | None, redrive_filter: str | None, redrives: Any
) -> list[Any]:
    if status_filter:
        items = [item for item in items if item.status == status_filter]
    if redrive_filter:
        redriven = redrive_filter == "REDRIVEN"
        items = [item for item in items if (redrives(item) > 0) == redriven]
    return sorted(items, key=lambda item: item.start_date, reverse=True)


def _page(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    @paginate(pagination_model=PAGINATION_MODEL)
    def list_executions() -> list[Any]:
        return items

    return list_executions(max_results=max_results, next_token=next_token)


def _executions_of(backend: Any, arn: str) -> tuple[str, list[Any]]:
    """(unqualified ARN, executions) for a state machine, version or alias ARN."""
    qualifier = qualifier_of(arn)
    machine = backend.describe_state_machine(arn if qualifier is None else machine_of(backend, arn).arn)
    executions = list(machine.executions)
    if qualifier is None:
        return machine.arn, executions
    if is_version_qualifier(qualifier):
        version_of(backend, arn)
        return machine.arn, [e for e in executions if version_arn_of(e) == arn]
    alias_of(backend, arn)
    return machine.arn, [e for e in executions if alias_arn_of(e) == arn]


def _execution_item(execution: Any, machine_arn: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "executionArn": execution.execution_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stateMachineArn": machine_arn,
        "status": execution.status,
        "redriveCount": redrive_count(execution),
        **_qualifier_members(execution),
    }
    if execution.status in STOPPED_STATUSES and execution.stop_date is not None:
        item["stopDate"] = execution.stop_date
    if redrive_date(execution) is not None:
        item["redriveDate"] = redrive_date(execution)
    return item


def _child_item(child: children.ChildExecution) -> dict[str, Any]:
    item: dict[str, Any] = {
        "executionArn": child.execution_arn,
        "name": child.name,
        "startDate": child.start_date,
        "stateMachineArn": child.state_machine_arn,
        "status": child.status,
        "itemCount": child.item_count,
        "mapRunArn": child.map_run_arn,
        "redriveCount": child.redrive_count,
    }
    if child.stop_date is not None:
        item["stopDate"] = child.stop_date
    if child.redrive_date is not None:
        item["redriveDate"] = child.redrive_date
    return item


def response_list_executions(self: Any) -> Any:
    """ListExecutions of a state machine, a version, an alias or a Map Run."""
    backend = self.stepfunction_backend
    machine_arn, map_run_arn = self._get_param("stateMachineArn"), self._get_param("mapRunArn")
    if bool(machine_arn) == bool(map_run_arn):
        # The API reference's rule; AWS documents no message for it, so this quotes the rule.
        raise ValidationException("You can specify either a mapRunArn or a stateMachineArn, but not both.")
    status_filter, redrive_filter = self._get_param("statusFilter"), self._get_param("redriveFilter")
    page = {
        "max_results": self._get_int_param("maxResults") or None,
        "next_token": self._get_param("nextToken"),
    }
    if map_run_arn:
        record = children.map_run_record(backend, map_run_arn)
        if record is None:
            raise ResourceNotFound(RESOURCE_NOT_FOUND)
        listed = _filtered(
            children.children_of(record), status_filter, redrive_filter, lambda c: c.redrive_count
        )
        results, next_token = _page(listed, **page)
        return action_result({"executions": [_child_item(c) for c in results], "nextToken": next_token})
    unqualified, executions = _executions_of(backend, machine_arn)
    results, next_token = _page(_filtered(executions, status_filter, redrive_filter, redrive_count), **page)
    items = [_execution_item(e, unqualified) for e in results]
    return action_result({"executions": items, "nextToken": next_token})


# -- DescribeStateMachineForExecution and GetExecutionHistory ----------------------------------------
def _describe_state_machine_for_execution(original: Any) -> Any:
    def describe_state_machine_for_execution(self: Any) -> Any:
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        snapshot = getattr(execution, "state_machine", None)
        if snapshot is None:  # moto's non-executing backend keeps no snapshot
            return original(self)
        machine_arn = execution.state_machine_arn
        body: dict[str, Any] = {
            "stateMachineArn": machine_arn,
            "name": snapshot.name,
            "definition": snapshot.definition,
            "roleArn": snapshot.roleArn,
            "updateDate": snapshot.update_date,
            "loggingConfiguration": snapshot.loggingConfiguration,
            "tracingConfiguration": snapshot.tracingConfiguration,
        }
        if revision_id(snapshot) is not None:
            body["revisionId"] = revision_id(snapshot)
        return action_result(body)

    return describe_state_machine_for_execution


def _get_execution_history(original: Any) -> Any:
    def get_execution_history(self: Any) -> Any:
        arn = self._get_param("executionArn") or ""
        if children.is_child_arn(arn):
            found = children.find_child(self.stepfunction_backend, arn)
            if found is not None:
                return action_result({"events": found[0].history()})
        return original(self)

    return get_execution_history


def install() -> None:
    """Qualified StartExecution; DescribeExecution / ListExecutions / history as AWS serves them."""
    wrap_method(StepFunctionsParserBackend, "start_execution", _PATCH, _start_execution)
    wrap_method(StepFunctionResponse, "describe_execution", _PATCH, _describe_execution)
    wrap_method(StepFunctionResponse, "list_executions", _PATCH, replaced_by(response_list_executions))
    wrap_method(
        StepFunctionResponse,
        "describe_state_machine_for_execution",
        _PATCH,
        _describe_state_machine_for_execution,
    )
    wrap_method(StepFunctionResponse, "get_execution_history", _PATCH, _get_execution_history)
