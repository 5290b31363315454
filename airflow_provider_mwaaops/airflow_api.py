"""A small client of Airflow 3's public REST API (v2), reached directly or through MWAA.

On Airflow 3 a task cannot open the metadata database, so everything that reads Airflow's own
history from inside Airflow (the metadata export's REST source, the log forwarder) goes through the
API instead. Two transports carry the same calls:

- ``from_url``: an API server URL with a bearer token (from ``POST /auth/token`` when a user and
  password are given), for self-managed Airflow and tests;
- ``from_mwaa``: boto3 ``mwaa.invoke_rest_api`` through the amazon provider's
  :class:`~airflow.providers.amazon.aws.hooks.mwaa.MwaaHook`, so IAM does the authentication and the
  Airflow connection decides credentials, role and endpoint. Each call is bounded by MWAA: 10 s,
  and "the response payload size cannot exceed 6 MB" (MWAA user guide, *Using the Apache Airflow
  REST API*), which fails the call with an error AWS does not document. So
  :meth:`AirflowApiClient.paginate` stays under the limit by itself: it measures the bytes per row
  of each page and sizes the next one to a quarter of the limit; an oversized answer that still
  happens (one huge row) is an MWAA error like any other, whose message says what to check.

Paths are relative to the API root (``/dags/~/dagRuns/list``, not ``/api/v2/dags/...``), as
InvokeRestApi expects them. Transient failures (connection errors, 429, 5xx, MWAA throttling)
are retried with tenacity; 4xx answers are not, and every error names the endpoint and the status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import tenacity

from airflow_provider_mwaaops import config
from airflow_provider_mwaaops.compat import AirflowException, conf

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2"
#: Airflow's default ``[api] maximum_page_limit``; servers cap larger requests to their own value.
DEFAULT_PAGE_SIZE = 100
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_ATTEMPTS = 4
#: HTTP statuses a later attempt is expected to get past.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: MWAA error codes (not the Airflow API's) that mean "try again".
_MWAA_RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "InternalServerException", "ServiceUnavailableException", "RequestTimeout"}
)
#: MWAA InvokeRestApi fails a call whose response is larger ("cannot exceed 6 MB"; the user guide
#: documents the limit, not the error).
MWAA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
#: Pages aim at this share of a transport's response limit: rows of one list differ in size.
RESPONSE_BUDGET_SHARE = 0.25
#: The first page through a size-limited transport: enough rows to measure their size.
PROBE_PAGE_SIZE = 10


class AirflowApiError(AirflowException):
    """A call to the Airflow REST API failed; ``endpoint`` says where, ``status`` how (None: no answer)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        detail: Any = None,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.detail = detail
        self.retryable = retryable


class ApiTransport(Protocol):
    """Carries one API call: an API server URL (HTTP) or MWAA's InvokeRestApi."""

    #: Where requests go, for error messages (a URL, or "MWAA environment 'name'").
    target: str
    #: The largest response the transport carries, in bytes; None when it has no limit of its own.
    response_limit_bytes: int | None

    def send(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any: ...


def _endpoint(target: str, method: str, path: str) -> str:
    return f"{method} {target}{path}"


def _short(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _detail_message(detail: Any) -> str:
    """Airflow's FastAPI errors carry ``{"detail": ...}``; show that rather than the envelope."""
    if isinstance(detail, Mapping) and "detail" in detail:
        detail = detail["detail"]
    return _short(detail) if detail not in (None, "", {}) else ""


def _http_error(endpoint: str, status: int, detail: Any) -> AirflowApiError:
    message = f"Airflow API {endpoint} answered {status}"
    if text := _detail_message(detail):
        message += f": {text}"
    return AirflowApiError(
        message, endpoint=endpoint, status=status, detail=detail, retryable=status in RETRYABLE_STATUSES
    )


@dataclass
class _HttpTransport:
    """An API server URL; a bearer token from ``/auth/token`` when a user and password are given."""

    base_url: str
    timeout: float
    username: str | None = None
    password: str | None = None
    token: str | None = None

    response_limit_bytes: int | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.target = self.base_url + API_PREFIX
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"

    def _fetch_token(self) -> str:
        url = f"{self.base_url}/auth/token"
        endpoint = f"POST {url}"
        try:
            answer = self._session.post(
                url, json={"username": self.username, "password": self.password}, timeout=self.timeout
            )
        except requests.RequestException as err:
            raise AirflowApiError(
                f"Airflow API {endpoint} unreachable: {err}", endpoint=endpoint, retryable=True
            ) from err
        if answer.status_code >= 400:
            raise _http_error(endpoint, answer.status_code, _decode(answer))
        return str(answer.json()["access_token"])

    def send(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any:
        if self.token is None and self.username:
            self.token = self._fetch_token()
        answer = self._request(method, path, params, body)
        if answer.status_code == 401 and self.username:
            # Tokens expire (``[api_auth] jwt_expiration_time``); a long export outlives one.
            self.token = self._fetch_token()
            answer = self._request(method, path, params, body)
        if answer.status_code >= 400:
            raise _http_error(_endpoint(self.target, method, path), answer.status_code, _decode(answer))
        return _decode(answer)

    def _request(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: Any
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            return self._session.request(
                method,
                self.target + path,
                params=dict(params) if params else None,
                json=body,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            endpoint = _endpoint(self.target, method, path)
            raise AirflowApiError(
                f"Airflow API {endpoint} unreachable: {err}", endpoint=endpoint, retryable=True
            ) from err


def _decode(answer: requests.Response) -> Any:
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        return answer.text


class _MwaaTransport:
    """boto3 ``mwaa.invoke_rest_api`` through the amazon provider's hook (IAM, one call per request)."""

    response_limit_bytes: int | None = MWAA_RESPONSE_LIMIT_BYTES

    def __init__(self, hook: Any, environment_name: str):
        self._hook = hook
        self.environment_name = environment_name
        self.target = f"MWAA environment '{environment_name}' "

    def send(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        from airflow_provider_mwaaops.aws.errors import describe_aws_error, error_code, is_retryable

        endpoint = _endpoint(self.target, method, path)
        request: dict[str, Any] = {"Name": self.environment_name, "Path": path, "Method": method}
        if params:
            request["QueryParameters"] = dict(params)
        if body is not None:
            request["Body"] = body
        try:
            answer = self._hook.conn.invoke_rest_api(**request)
        except ClientError as err:
            code = error_code(err) or ""
            if code in ("RestApiClientException", "RestApiServerException"):
                status = int(err.response.get("RestApiStatusCode") or (500 if "Server" in code else 400))
                raise _http_error(endpoint, status, err.response.get("RestApiResponse")) from err
            message = (
                f"Airflow API {endpoint} failed in MWAA: {describe_aws_error(err)}. MWAA fails calls "
                "that take over 10 s or answer over 6 MB: if this one may have, ask for smaller pages"
            )
            raise AirflowApiError(
                message,
                endpoint=endpoint,
                detail=err.response,
                retryable=is_retryable(err) or code in _MWAA_RETRYABLE_CODES,
            ) from err
        except BotoCoreError as err:
            raise AirflowApiError(
                f"Airflow API {endpoint} unreachable through MWAA: {describe_aws_error(err)}",
                endpoint=endpoint,
                retryable=is_retryable(err),
            ) from err
        return answer.get("RestApiResponse")


class AirflowApiClient:
    """``get`` / ``post`` / ``paginate`` against Airflow 3's public API, retrying transient failures.

    Build it with :meth:`from_url`, :meth:`from_mwaa` or :meth:`from_config`.
    """

    def __init__(
        self,
        transport: ApiTransport,
        attempts: int = DEFAULT_ATTEMPTS,
        wait: Callable[..., Any] | None = None,
    ):
        self._transport = transport
        self._attempts = max(1, attempts)
        # wait_exponential + wait_random rather than wait_exponential_jitter, whose arguments
        # changed between the tenacity releases MWAA images pin.
        self._wait = wait or tenacity.wait_exponential(multiplier=0.5, max=8.0) + tenacity.wait_random(0, 0.5)
        #: The server's ``[api] maximum_page_limit``, once a page came back shorter than asked for.
        self.detected_page_limit: int | None = None

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_url(
        cls,
        url: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> AirflowApiClient:
        """An API server at ``url`` (``http://host:8080``); a token is fetched when a user is given."""
        if not url:
            raise ValueError("Airflow API url is empty")
        transport = _HttpTransport(url, timeout=timeout, username=username, password=password, token=token)
        return cls(transport, attempts=attempts)

    @classmethod
    def from_mwaa(
        cls,
        environment_name: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> AirflowApiClient:
        """MWAA's InvokeRestApi for ``environment_name``, with the credentials of ``aws_conn_id``.

        botocore's own retries are switched off: this client retries, and a stack of both would
        multiply the wait of a failing call.
        """
        from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook
        from botocore.config import Config

        if not environment_name:
            raise ValueError("MWAA environment name is empty")
        config = Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"}
        )
        hook = MwaaHook(aws_conn_id=aws_conn_id, region_name=region_name, config=config)
        return cls(_MwaaTransport(hook, environment_name), attempts=attempts)

    @classmethod
    def from_config(cls, *, attempts: int = DEFAULT_ATTEMPTS) -> AirflowApiClient:
        """The API ``[mwaaops]`` names: MWAA when ``mwaa_environment_name`` is set, else ``api_url``
        (falling back to ``[api] base_url``) with ``api_username`` / ``api_password``; every call
        waits at most ``api_timeout``.

        ``attempts=1`` for callers that must not wait through a retry ladder (a task's start-up).
        """
        timeout = config.api_timeout()
        if environment := config.mwaa_environment_name():
            return cls.from_mwaa(
                environment,
                aws_conn_id=config.aws_conn_id(),
                region_name=config.region_name(),
                timeout=timeout,
                attempts=attempts,
            )
        url = config.api_url() or conf.get("api", "base_url", fallback="")
        if not url:
            raise AirflowException(
                "No Airflow API configured: set [mwaaops] api_url (or [api] base_url) or "
                "[mwaaops] mwaa_environment_name"
            )
        return cls.from_url(
            url,
            username=config.api_username(),
            password=config.api_password(),
            timeout=timeout,
            attempts=attempts,
        )

    # -- calls ----------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        """Where this client sends requests (a URL, or the MWAA environment)."""
        return self._transport.target

    def request(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """One API call, retried while the failure is transient; returns the decoded JSON answer."""
        if not path.startswith("/"):
            path = "/" + path
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda err: isinstance(err, AirflowApiError) and err.retryable),
            reraise=True,
            before_sleep=self._log_retry,
        )
        return retrying(self._transport.send, method.upper(), path, params, json)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, params=params, json=json)

    def paginate(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        items_key: str | None = None,
        *,
        json: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, page by page (offset/limit).

        GET endpoints take ``limit``/``offset`` query parameters; with ``json`` the call is a POST
        to a ``.../list`` endpoint whose body takes ``page_limit``/``page_offset``. The server
        silently caps the page at its ``[api] maximum_page_limit``: the offset advances by what
        actually came back, and the cap is remembered in :attr:`detected_page_limit`. Through a
        transport with a response limit (MWAA: 6 MB) the first page is small and every next one is
        sized from the bytes per row of the previous page, to a quarter of the limit. Pass an
        ``order_by`` on a stable key, or rows inserted or deleted meanwhile shift the pages.
        """
        size = max(1, min(page_size, self.detected_page_limit or page_size))
        limit_bytes = getattr(self._transport, "response_limit_bytes", None)
        if limit_bytes:
            size = min(size, PROBE_PAGE_SIZE)
        offset = 0
        while True:
            page = self._page(path, params, json, offset, size)
            items = _items(page, items_key, path)
            total = page.get("total_entries") if isinstance(page, Mapping) else None
            yield from items
            offset += len(items)
            if not items or (isinstance(total, int) and offset >= total):
                return
            if len(items) < size:
                if total is None:
                    return  # a short page without a total is the last one
                # Short page but more to come: the server capped our page size.
                self.detected_page_limit = len(items)
            ceiling = min(page_size, self.detected_page_limit or page_size)
            size = _page_size_within(limit_bytes, page, len(items), ceiling) if limit_bytes else ceiling

    def _page(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        offset: int,
        size: int,
    ) -> Any:
        if body is not None:
            return self.post(path, json={**body, "page_offset": offset, "page_limit": size}, params=params)
        return self.get(path, params={**(params or {}), "offset": offset, "limit": size})

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("Airflow API call failed (attempt %d), retrying: %s", state.attempt_number, error)


def _page_size_within(limit_bytes: int, page: Any, rows: int, ceiling: int) -> int:
    """Rows per page that keep an answer at ``RESPONSE_BUDGET_SHARE`` of ``limit_bytes``, judged by
    the bytes per row of ``page`` (at least 1, at most ``ceiling``)."""
    page_bytes = len(json.dumps(page, separators=(",", ":"), default=str).encode())
    fitting = int(limit_bytes * RESPONSE_BUDGET_SHARE * rows / max(page_bytes, 1))
    if fitting < rows:
        log.info(
            "Airflow API pages of %d rows came to %d bytes; asking for %d rows to stay under %d bytes",
            rows,
            page_bytes,
            max(1, fitting),
            limit_bytes,
        )
    return max(1, min(ceiling, fitting))


def _items(page: Any, items_key: str | None, path: str) -> list[dict[str, Any]]:
    """The list in a page: ``items_key``, or the only list-valued member of the answer."""
    if not isinstance(page, Mapping):
        raise AirflowApiError(f"Airflow API {path} returned {type(page).__name__}, not a page", endpoint=path)
    if items_key is None:
        lists = [key for key, value in page.items() if isinstance(value, list)]
        if len(lists) != 1:
            raise AirflowApiError(
                f"Airflow API {path}: cannot tell the items of the page among {sorted(page)}; pass items_key",
                endpoint=path,
            )
        items_key = lists[0]
    items = page.get(items_key)
    if not isinstance(items, list):
        raise AirflowApiError(f"Airflow API {path}: answer has no list {items_key!r}", endpoint=path)
    return items


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MWAA_RESPONSE_LIMIT_BYTES",
    "AirflowApiClient",
    "AirflowApiError",
    "ApiTransport",
]
