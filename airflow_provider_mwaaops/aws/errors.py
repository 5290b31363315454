"""Classify AWS errors so triggers and operators react to what went wrong, not to exception types.

A trigger polling a Step Functions execution must tell apart "slow down" (back off, keep waiting),
"the service or network hiccupped" (retry soon), and "this will never work" (an IAM deny, a bad
ARN: fail now with a message a DAG author can act on). botocore spreads that information over
``ClientError`` codes, HTTP status codes and a family of connection exceptions, and aiohttp adds
its own when aiobotocore lets them through; these functions put it in one place.

All functions are pure: they read the exception and never raise. An exception wrapped with
``raise ... from exc`` is classified by its cause, so a wrapper in our own code does not hide a
throttle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
from botocore import exceptions as botocore_exceptions

__all__ = [
    "ACCESS_DENIED_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "access_denied_action",
    "describe_aws_error",
    "error_code",
    "http_status",
    "is_retryable",
    "is_throttling",
    "is_transient",
]

#: botocore's standard-retry throttling codes plus the spellings individual services use.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RateExceeded",
    }
)

#: Server-side failures that a later attempt is expected to get past.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "InternalFailure",
        "InternalError",
        "InternalErrorException",
        "InternalServerError",
        "InternalServerException",
        "InternalServiceException",
        "InternalServiceError",
        "ServiceException",
        "ServiceFailure",
    }
)

ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "NotAuthorized",
    }
)

# 501 Not Implemented and 505 HTTP Version Not Supported will fail the same way every time.
_NOT_TRANSIENT_5XX = frozenset({501, 505})

# botocore's ConnectionError covers SSLError too: a certificate that does not verify fails the
# same way on every attempt, so it is deliberately not transient (retrying would hide it).
_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    botocore_exceptions.ConnectionError,
    botocore_exceptions.HTTPClientError,
    botocore_exceptions.IncompleteReadError,
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,  # asyncio.TimeoutError is this class since Python 3.11
    ConnectionError,
)
_PERMANENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    botocore_exceptions.SSLError,
    aiohttp.ClientSSLError,
)

# "User: arn:... is not authorized to perform: states:StartExecution on resource: ..."; SNS writes
# "SNS:Publish", some services omit the colon after "perform".
_NOT_AUTHORIZED = re.compile(r"not authorized to perform:?\s+([A-Za-z0-9-]+:[A-Za-z0-9*]+)")

_MAX_CAUSE_DEPTH = 5


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the causes it was explicitly raised from (``raise ... from``)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < _MAX_CAUSE_DEPTH:
        yield current
        current = current.__cause__
        seen += 1


def _response(exc: BaseException) -> Mapping[str, Any] | None:
    """The parsed service response of a ClientError (or a WaiterError's last response)."""
    for attribute in ("response", "last_response"):
        response = getattr(exc, attribute, None)
        if isinstance(response, Mapping):
            return response
    return None


def _own_code(exc: BaseException) -> str | None:
    response = _response(exc)
    error = response.get("Error") if response else None
    code = error.get("Code") if isinstance(error, Mapping) else None
    if not code:
        return None
    # Some JSON protocols send "namespace#Code"; botocore usually strips it, but not everywhere.
    return str(code).rsplit("#", 1)[-1]


def _own_status(exc: BaseException) -> int | None:
    response = _response(exc)
    metadata = response.get("ResponseMetadata") if response else None
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    return status if isinstance(status, int) else None


def _own_message(exc: BaseException) -> str:
    response = _response(exc)
    error = response.get("Error") if response else None
    if not isinstance(error, Mapping):
        return ""
    return str(error.get("Message") or error.get("message") or "")


def error_code(exc: BaseException) -> str | None:
    """The AWS error code (``ThrottlingException``, ``AccessDenied``, ...) or None."""
    return next((code for e in _chain(exc) if (code := _own_code(e))), None)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of the failed AWS response, or None when there was no response."""
    return next((status for e in _chain(exc) if (status := _own_status(e)) is not None), None)


def is_throttling(exc: BaseException) -> bool:
    """Whether AWS asked us to slow down: a throttling error code or HTTP 429.

    Callers should back off (longer than for a transient error) rather than fail the task.
    """
    return any(_own_code(e) in THROTTLING_CODES or _own_status(e) == 429 for e in _chain(exc))


def _is_transient_exception(exc: BaseException) -> bool:
    if isinstance(exc, _PERMANENT_EXCEPTIONS):
        return False
    return isinstance(exc, _TRANSIENT_EXCEPTIONS)


def is_transient(exc: BaseException) -> bool:
    """Whether a later attempt is expected to succeed: a 5xx, a server-side failure code, or a
    connection/timeout error from botocore or aiohttp.

    Throttling is reported by :func:`is_throttling` instead, because it calls for a longer wait;
    use :func:`is_retryable` for "either". TLS certificate errors are not transient.
    """
    for e in _chain(exc):
        if _own_code(e) in TRANSIENT_CODES:
            return True
        status = _own_status(e)
        if status is not None and 500 <= status <= 599 and status not in _NOT_TRANSIENT_5XX:
            return True
        if _is_transient_exception(e):
            return True
    return False


def is_retryable(exc: BaseException) -> bool:
    """Throttled or transient: worth another attempt after a backoff."""
    return is_throttling(exc) or is_transient(exc)


def access_denied_action(exc: BaseException) -> str | None:
    """The IAM action an access-denied error names, e.g. ``"states:StartExecution"``.

    Lets an operator fail with "the MWAA execution role needs states:StartExecution" instead of the
    raw message. None when the error is not an access denial or its message names no action (S3's
    plain "Access Denied", for one).
    """
    for e in _chain(exc):
        message = _own_message(e)
        if _own_code(e) in ACCESS_DENIED_CODES or "not authorized to perform" in message:
            match = _NOT_AUTHORIZED.search(message)
            if match:
                return match.group(1)
    return None


def describe_aws_error(exc: BaseException) -> str:
    """One line for logs and task-failure messages: ``"Code: message"``.

    Falls back to the HTTP status when the response has no code, and to ``"ExceptionType: text"``
    for errors that never reached AWS (connection failures, timeouts).
    """
    for e in _chain(exc):
        code = _own_code(e)
        status = _own_status(e)
        if code or status is not None:
            label = code or f"HTTP {status}"
            message = _own_message(e)
            return _one_line(f"{label}: {message}" if message else label)
    text = str(exc)
    return _one_line(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())
