"""Error classification tables, with ClientErrors built the way botocore builds them."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    SSLError,
    WaiterError,
)

from airflow_provider_mwaaops.aws.errors import (
    access_denied_action,
    describe_aws_error,
    error_code,
    http_status,
    is_retryable,
    is_throttling,
    is_transient,
)


def client_error(
    code: str | None, message: str = "", status: int = 400, operation: str = "Op"
) -> ClientError:
    response: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "r-1"}}
    if code is not None or message:
        response["Error"] = {"Code": code, "Message": message}
    return ClientError(response, operation)  # type: ignore[arg-type]


THROTTLED = [
    client_error("ThrottlingException", "Rate exceeded"),
    client_error("Throttling", "Rate exceeded"),
    client_error("TooManyRequestsException", status=429),
    client_error("RequestLimitExceeded", status=503),
    client_error("ProvisionedThroughputExceededException"),
    client_error("SlowDown", status=503),
    client_error("com.amazonaws.glue#ThrottlingException"),
    client_error(None, status=429),
    client_error("SomethingNew", status=429),
]
TRANSIENT = [
    client_error("ServiceUnavailable", status=503),
    client_error("InternalFailure", status=500),
    client_error("InternalServerException", status=500),
    client_error("InternalServiceException", status=500),
    client_error("RequestTimeout", status=408),
    client_error("Whatever", status=502),
    client_error(None, status=504),
    EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"),
    ConnectTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com"),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientPayloadError("truncated"),
    aiohttp.ClientOSError(104, "Connection reset by peer"),
    TimeoutError(),
    ConnectionResetError(),
]
PERMANENT = [
    client_error("AccessDeniedException", "User: x is not authorized to perform: states:StartExecution"),
    client_error("ValidationException", "1 validation error"),
    client_error("ExecutionDoesNotExist", "Execution Does Not Exist"),
    client_error("EntityNotFoundException"),
    client_error("NotImplemented", status=501),
    SSLError(endpoint_url="https://x", error="CERTIFICATE_VERIFY_FAILED"),
    aiohttp.ClientSSLError(
        aiohttp.client_reqrep.ConnectionKey("h", 443, True, True, None, None, None), OSError()
    ),
    NoCredentialsError(),
    ParamValidationError(report="Missing required parameter"),
    ValueError("bad"),
    asyncio.CancelledError(),
]


@pytest.mark.parametrize("exc", THROTTLED, ids=repr)
def test_throttling(exc: BaseException) -> None:
    assert is_throttling(exc)
    assert is_retryable(exc)


@pytest.mark.parametrize("exc", TRANSIENT + PERMANENT, ids=repr)
def test_not_throttling(exc: BaseException) -> None:
    assert not is_throttling(exc)


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_transient(exc: BaseException) -> None:
    assert is_transient(exc)
    assert is_retryable(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=repr)
def test_permanent(exc: BaseException) -> None:
    assert not is_transient(exc)
    assert not is_retryable(exc)


def test_throttling_with_a_5xx_is_both() -> None:
    exc = client_error("SlowDown", status=503)
    assert is_throttling(exc)
    assert is_transient(exc)


def test_classification_follows_explicit_causes() -> None:
    try:
        try:
            raise client_error("ThrottlingException", "Rate exceeded")
        except ClientError as inner:
            raise RuntimeError("describe_execution failed") from inner
    except RuntimeError as outer:
        wrapped = outer
    assert is_throttling(wrapped)
    assert error_code(wrapped) == "ThrottlingException"
    assert describe_aws_error(wrapped) == "ThrottlingException: Rate exceeded"


def test_waiter_error_uses_its_last_response() -> None:
    exc = WaiterError(
        name="ExecutionComplete",
        reason="x",
        last_response={"Error": {"Code": "ThrottlingException", "Message": "slow"}},
    )
    assert is_throttling(exc)
    assert describe_aws_error(exc) == "ThrottlingException: slow"


@pytest.mark.parametrize(
    ("message", "action"),
    [
        (
            "User: arn:aws:sts::123456789012:assumed-role/mwaa-exec/airflow is not authorized to perform: "
            "states:StartExecution on resource: arn:aws:states:us-east-1:123456789012:stateMachine:orders "
            "because no identity-based policy allows the states:StartExecution action",
            "states:StartExecution",
        ),
        (
            "User: arn:aws:iam::123456789012:user/u is not authorized to perform: glue:StartJobRun on "
            "resource: arn:aws:glue:us-east-1:123456789012:job/etl with an explicit deny in a service "
            "control policy",
            "glue:StartJobRun",
        ),
        (
            "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to perform: "
            "elasticmapreduce:RunJobFlow",
            "elasticmapreduce:RunJobFlow",
        ),
        (
            "User: x is not authorized to perform states:DescribeExecution on resource: y",
            "states:DescribeExecution",
        ),
        ("Access Denied", None),
        ("", None),
    ],
)
def test_access_denied_action(message: str, action: str | None) -> None:
    assert access_denied_action(client_error("AccessDeniedException", message)) == action
    assert access_denied_action(client_error("AccessDenied", message, status=403)) == action


def test_access_denied_action_from_other_codes_that_quote_the_action() -> None:
    sns = client_error(
        "AuthorizationError", "User: arn:x is not authorized to perform: SNS:Publish on resource: y"
    )
    assert access_denied_action(sns) == "SNS:Publish"


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ValidationException", "not authorized to perform is just a phrase here: a:b"),
        client_error("ThrottlingException", "Rate exceeded"),
        ValueError("User: x is not authorized to perform: states:StartExecution"),
    ],
    ids=repr,
)
def test_access_denied_action_is_none_for_other_errors(exc: BaseException) -> None:
    assert access_denied_action(exc) is None


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            client_error("ExecutionDoesNotExist", "Execution Does Not Exist: 'arn:x'"),
            "ExecutionDoesNotExist: Execution Does Not Exist: 'arn:x'",
        ),
        (
            client_error("ValidationException", "line one\n  line two"),
            "ValidationException: line one line two",
        ),
        (client_error("InternalFailure", status=500), "InternalFailure"),
        (client_error(None, status=503), "HTTP 503"),
        (
            EndpointConnectionError(endpoint_url="http://x"),
            'EndpointConnectionError: Could not connect to the endpoint URL: "http://x"',
        ),
        (TimeoutError(), "TimeoutError"),
        (ValueError("bad\nvalue"), "ValueError: bad value"),
    ],
)
def test_describe_aws_error(exc: BaseException, text: str) -> None:
    assert describe_aws_error(exc) == text


def test_error_code_and_status() -> None:
    exc = client_error("ThrottlingException", status=400)
    assert (error_code(exc), http_status(exc)) == ("ThrottlingException", 400)
    assert (error_code(ValueError()), http_status(ValueError())) == (None, None)
