"""What our moto extensions need from moto, on both sides of its 5.2.6 rework.

The testing kit requires moto 5.2.6 (pyproject's ``testing`` extra, the oldest moto the MWAA matrix
proves: the EMR Serverless extension imports 5.2.6's models, which 5.1.10 named differently); these
helpers still keep the errors and request reads of older moto working, so no extension names the
moved parts directly.

Errors: moto 5.2.6 dropped ``moto.core.exceptions.AWSError`` (error type and HTTP status as class
attributes) for ``ServiceException`` (the error code only; the status comes from the service's
botocore model, as AWS documents it per error shape).

Requests: moto 5.2.6 parses JSON requests through the service's botocore model (``params``,
members coerced to the model's types, members unknown to an older botocore dropped) where it
used to keep the decoded body (``parameters``). A rule that must see a member exactly as sent
reads it with :func:`request_member`.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core import exceptions as _moto_exceptions

_LEGACY_BASE: Any = getattr(_moto_exceptions, "AWSError", None)


def service_error(code: str, status: int = 400) -> type[Exception]:
    """An exception class moto answers as the AWS error ``code``.

    ``status`` is used only by moto before 5.2.6; later versions take it from the model.
    Raise the class with the message alone: ``raise Conflict("...")``.
    """
    if _LEGACY_BASE is not None:
        return type(code, (_LEGACY_BASE,), {"TYPE": code, "STATUS": status, "__module__": __name__})
    return type(code, (_moto_exceptions.ServiceException,), {"code": code, "__module__": __name__})


def request_member(response: Any, name: str) -> Any:
    """A top-level member of a JSON request exactly as the client sent it (None when absent)."""
    body = response.body
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return None
    return decoded.get(name) if isinstance(decoded, dict) else None
