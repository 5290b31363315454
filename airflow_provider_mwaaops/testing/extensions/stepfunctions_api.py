"""The Step Functions HTTP action of the redrive: ``RedriveExecution``, which moto has no handler for.

``RedriveExecution`` (``executionArn``, ``clientToken``) returns ``{"redriveDate": ...}``; the rules
are in :mod:`.stepfunctions_redrive`. The redrive members of DescribeExecution and ListExecutions
(``redriveCount``, ``redriveDate``, ``redriveStatus``, ``redriveStatusReason``, ``redriveFilter``)
are served with the rest of those actions in :mod:`.stepfunctions_executions`.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.responses import StepFunctionResponse

from airflow_provider_mwaaops.testing.extensions._patching import add_method
from airflow_provider_mwaaops.testing.extensions.stepfunctions_http import action_result
from airflow_provider_mwaaops.testing.extensions.stepfunctions_redrive import ExecutionNotRedrivable


def response_redrive_execution(self: Any) -> Any:
    """``StepFunctionResponse.redrive_execution``, the action moto has no handler for."""
    execution_arn = self._get_param("executionArn")
    client_token = self._get_param("clientToken")
    backend = self.stepfunction_backend
    if not hasattr(backend, "redrive_execution"):
        raise ExecutionNotRedrivable(
            "RedriveExecution needs moto's executing engine: config stepfunctions.execute_state_machine"
        )
    return action_result({"redriveDate": backend.redrive_execution(execution_arn, client_token=client_token)})


def install() -> None:
    """RedriveExecution in moto's Step Functions HTTP API."""
    add_method(StepFunctionResponse, "redrive_execution", response_redrive_execution)
