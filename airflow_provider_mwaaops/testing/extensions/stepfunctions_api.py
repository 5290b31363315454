"""The Step Functions HTTP API of the redrive: what boto3 and aiobotocore callers see.

- ``RedriveExecution`` (``executionArn``, ``clientToken``) returns ``{"redriveDate": ...}``;
- ``DescribeExecution`` gains ``redriveCount``, ``redriveDate``, ``redriveStatus`` and
  ``redriveStatusReason`` (and the ``stopDate`` moto leaves out for TIMED_OUT executions);
- ``ListExecutions`` accepts ``redriveFilter`` (REDRIVEN / NOT_REDRIVEN), applied before paging,
  and its items carry ``redriveCount`` / ``redriveDate``.
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.responses import StepFunctionResponse
from moto.stepfunctions.utils import PAGINATION_MODEL
from moto.utilities.paginator import paginate

from airflow_provider_mwaaops.testing.extensions._patching import add_method, wrap_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_redrive import (
    STOPPED_STATUSES,
    ExecutionNotRedrivable,
    redrive_count,
    redrive_date,
    redrive_fields,
)

_PATCH = "mwaaops.stepfunctions.api"


def _action_result(body: dict[str, Any]) -> Any:
    try:
        from moto.core.responses import ActionResult
    except ImportError:  # moto before ActionResult: plain JSON bodies
        return json.dumps(body, default=lambda value: value.timestamp())
    return ActionResult(body)


def _update_result(result: Any, update: dict[str, Any]) -> Any:
    """Add members to a response of moto's, whether an ActionResult (5.2) or a JSON string."""
    payload = getattr(result, "result", None)
    if isinstance(payload, dict):
        payload.update(update)
        return result
    if isinstance(result, str):
        body = json.loads(result)
        body.update(update)
        return json.dumps(body, default=lambda value: value.timestamp())
    return result


def response_redrive_execution(self: Any) -> Any:
    """``StepFunctionResponse.redrive_execution``, the action moto has no handler for."""
    execution_arn = self._get_param("executionArn")
    client_token = self._get_param("clientToken")
    backend = self.stepfunction_backend
    if not hasattr(backend, "redrive_execution"):
        raise ExecutionNotRedrivable(
            "RedriveExecution needs moto's executing engine: config stepfunctions.execute_state_machine"
        )
    return _action_result(
        {"redriveDate": backend.redrive_execution(execution_arn, client_token=client_token)}
    )


def _describe_execution(original: Any) -> Any:
    def describe_execution(self: Any) -> Any:
        result = original(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        update = redrive_fields(execution)
        if execution.status == "TIMED_OUT" and execution.stop_date is not None:
            update["stopDate"] = execution.stop_date  # moto leaves it out for TIMED_OUT only
        return _update_result(result, update)

    return describe_execution


def _list_executions_page(backend: Any, **kwargs: Any) -> tuple[list[Any], str | None]:
    @paginate(pagination_model=PAGINATION_MODEL)
    def list_executions(
        state_machine_arn: str, status_filter: str | None = None, redrive_filter: str | None = None
    ) -> list[Any]:
        executions = list(backend.describe_state_machine(state_machine_arn).executions)
        if status_filter:
            executions = [e for e in executions if e.status == status_filter]
        if redrive_filter:
            redriven = redrive_filter == "REDRIVEN"
            executions = [e for e in executions if (redrive_count(e) > 0) == redriven]
        return sorted(executions, key=lambda e: e.start_date, reverse=True)

    return list_executions(**kwargs)


def response_list_executions(self: Any) -> Any:
    """moto's ListExecutions plus ``redriveFilter``, ``redriveCount``/``redriveDate`` and TIMED_OUT."""
    state_machine_arn = self._get_param("stateMachineArn")
    backend = self.stepfunction_backend
    state_machine = backend.describe_state_machine(state_machine_arn)
    results, next_token = _list_executions_page(
        backend,
        state_machine_arn=state_machine_arn,
        status_filter=self._get_param("statusFilter"),
        redrive_filter=self._get_param("redriveFilter"),
        max_results=self._get_int_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    executions = []
    for execution in results:
        item: dict[str, Any] = {
            "executionArn": execution.execution_arn,
            "name": execution.name,
            "startDate": execution.start_date,
            "stateMachineArn": state_machine.arn,
            "status": execution.status,
            "redriveCount": redrive_count(execution),
        }
        if execution.status in STOPPED_STATUSES and execution.stop_date is not None:
            item["stopDate"] = execution.stop_date
        if redrive_date(execution) is not None:
            item["redriveDate"] = redrive_date(execution)
        executions.append(item)
    return _action_result({"executions": executions, "nextToken": next_token})


def _list_executions(_original: Any) -> Any:
    """Replaces moto's handler: the redrive filter has to apply before the page is cut."""

    def list_executions(self: Any) -> Any:
        return response_list_executions(self)

    return list_executions


def install() -> None:
    """RedriveExecution in moto's Step Functions HTTP API; redrive members in Describe/ListExecutions."""
    add_method(StepFunctionResponse, "redrive_execution", response_redrive_execution)
    wrap_method(StepFunctionResponse, "describe_execution", _PATCH, _describe_execution)
    wrap_method(StepFunctionResponse, "list_executions", _PATCH, _list_executions)
