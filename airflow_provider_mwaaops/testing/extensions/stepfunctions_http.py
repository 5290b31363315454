"""Helpers for the Step Functions HTTP handlers the extensions add or replace in moto.

moto 5.2 answers with ``ActionResult`` objects (older releases with JSON strings); these helpers
build and extend either, so a handler does not care which moto serves it.
"""

from __future__ import annotations

import json
from typing import Any


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, default=lambda value: value.timestamp())


def action_result(body: dict[str, Any]) -> Any:
    """A response body for a handler of moto's ``StepFunctionResponse``."""
    try:
        from moto.core.responses import ActionResult
    except ImportError:  # moto before ActionResult: plain JSON bodies
        return _json(body)
    return ActionResult(body)


def update_result(result: Any, update: dict[str, Any]) -> Any:
    """Add members to a response of moto's, whether an ActionResult (5.2) or a JSON string."""
    payload = getattr(result, "result", None)
    if isinstance(payload, dict):
        payload.update(update)
        return result
    if isinstance(result, str):
        body = json.loads(result)
        body.update(update)
        return _json(body)
    return result
