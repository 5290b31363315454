"""SendTaskFailure keeps its ``cause``: moto's HTTP handler passes only ``error`` to the backend.

moto's executing backend accepts a cause and records it in the ``TaskFailed`` event, as AWS does;
only the response layer drops it. A restore that answers a waiting task with a failure explains
why in the cause, so the emulator has to carry it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from moto.core.responses import EmptyResult
from moto.stepfunctions.responses import StepFunctionResponse

from airflow_provider_mwaaops.testing.extensions._patching import wrap_method

_PATCH = "mwaaops.stepfunctions.callbacks"


def _send_task_failure(original: Callable[..., Any]) -> Callable[..., Any]:
    def send_task_failure(self: Any) -> Any:
        backend = self.stepfunction_backend
        if "cause" not in inspect.signature(backend.send_task_failure).parameters:
            return original(self)  # the non-executing backend ignores failures anyway
        backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    return send_task_failure


def install() -> None:
    wrap_method(StepFunctionResponse, "send_task_failure", _PATCH, _send_task_failure)
