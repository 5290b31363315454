"""Amazon MWAA in the emulator: environments and ``InvokeRestApi``, which moto does not have at all.

moto ships no MWAA service, so this module adds one the way moto's own services are built: a
``BackendDict`` of ``MwaaBackend`` (per account and region, emptied by ``/moto-api/reset``), a
``BaseResponse`` whose actions moto's router finds from botocore's MWAA model, and URL patterns
registered in moto's backend index so the server dispatches requests signed for ``airflow`` here.

``InvokeRestApi`` follows the real API: ``Name``, ``Method``, ``Path`` (1-64 characters, relative to
``/api/v2`` on Airflow 3 and ``/api/v1`` on Airflow 2), ``QueryParameters`` and ``Body`` are
forwarded to the Airflow API server attached to the environment (:func:`attach_api_server`; in tests
a real loopback ``airflow api-server``); a 2xx answer comes back as ``RestApiStatusCode`` /
``RestApiResponse``, a 4xx as ``RestApiClientException`` and a 5xx as ``RestApiServerException``
(both carrying the status and the Airflow answer), an unknown environment as
``ResourceNotFoundException``. MWAA bounds each call to about 10 s and 6 MB of response ("The
response payload size cannot exceed 6 MB", MWAA user guide, *Using the Apache Airflow REST API*).
AWS documents that an oversized call fails, not how: the emulator answers it with the error the
API reference gives for a failure on MWAA's side, ``InternalServerException``, with only its
documented text ("An internal error has occurred."), so that nothing comes to rely on a message
AWS never promised. A slow API server is an ``InternalServerException`` too.

Environments themselves (lifecycle, validation, tags, SchedulerHeartbeat metrics) live in
:mod:`~airflow_provider_mwaaops.testing.extensions.mwaa_environments`; this module holds the service
registration and the REST API forwarding.

boto3 sends MWAA calls to ``env.`` / ``api.`` host prefixes, which do not resolve on a loopback
endpoint; the emulator's environment sets ``AWS_DISABLE_HOST_PREFIX_INJECTION`` for that reason.
"""

from __future__ import annotations

import re
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import requests
from moto.backend_index import backend_url_patterns
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse

from airflow_provider_mwaaops.testing.extensions import mwaa_environments
from airflow_provider_mwaaops.testing.extensions.mwaa_environments import (
    InternalServerException,
    MwaaEnvironment,
    MwaaEnvironmentBackend,
    MwaaEnvironmentResponses,
    ValidationException,
)

#: Size limit of an InvokeRestApi response (AWS: "6 MB"). Tests may lower it.
RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
#: InternalServerException's text in the MWAA API reference (and botocore's model).
INTERNAL_ERROR = "An internal error has occurred."
#: How long MWAA waits for the Airflow API server, in seconds.
CALL_TIMEOUT_S = 10.0
_METHODS = frozenset({"GET", "PUT", "POST", "PATCH", "DELETE"})


# -- errors (names and members from botocore's MWAA model) ------------------------------------
class _RestApiException(ServiceException):
    def __init__(self, status: int, response: Any):
        super().__init__(f"Airflow REST API answered {status}")
        self.RestApiStatusCode = status
        self.RestApiResponse = response if isinstance(response, dict) else {"detail": response}


class RestApiClientException(_RestApiException):
    code = "RestApiClientException"


class RestApiServerException(_RestApiException):
    code = "RestApiServerException"


# -- model ------------------------------------------------------------------------------------
@dataclass
class ApiServer:
    """Where an emulated environment's web server really is, and how the emulator logs in to it.

    MWAA authenticates callers with IAM and talks to its own web server as an admin; here that
    is a bearer token from the server's ``/auth/token`` (or a fixed one).
    """

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _login(self) -> None:
        answer = requests.post(
            f"{self.url.rstrip('/')}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=CALL_TIMEOUT_S,
        )
        answer.raise_for_status()
        self.token = str(answer.json()["access_token"])

    def call(
        self, api_root: str, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> requests.Response:
        with self._lock:
            if self.token is None and self.username:
                self._login()
        answer = self._send(api_root, method, path, params, body)
        if answer.status_code == 401 and self.username:
            with self._lock:
                self._login()
            answer = self._send(api_root, method, path, params, body)
        return answer

    def _send(
        self, api_root: str, method: str, path: str, params: dict[str, Any] | None, body: Any
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return requests.request(
            method,
            f"{self.url.rstrip('/')}{api_root}{path}",
            params=params or None,
            json=body if method != "GET" else None,
            headers=headers,
            timeout=CALL_TIMEOUT_S,
        )


class MwaaBackend(MwaaEnvironmentBackend, BaseBackend):
    """MWAA environments of one account and region, and the REST calls made to them."""

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self._init_environments()

    @property
    def _url_module(self) -> Any:  # moto derives "<module>.urls" from the class's module otherwise
        return sys.modules[__name__]

    def invoke_rest_api(
        self, name: str, method: str, path: str, query: dict[str, Any] | None, body: Any
    ) -> tuple[int, Any]:
        environment = self.get_environment(name)
        if not path or len(path) > 64:
            raise ValidationException(f"Path must be 1 to 64 characters long, got {len(path or '')}")
        if method not in _METHODS:
            raise ValidationException(f"Method must be one of {sorted(_METHODS)}, got {method!r}")
        if environment.api_server is None:
            raise InternalServerException(
                f"Environment {name} has no web server in the emulator: call "
                "mwaa_rest_api.attach_api_server() with an Airflow API server URL"
            )
        api_root = "/api/v1" if environment.airflow_version.startswith("2.") else "/api/v2"
        try:
            answer = environment.api_server.call(api_root, method, path, query, body)
        except requests.Timeout:
            raise InternalServerException(
                f"The Airflow web server of {name} did not answer within {CALL_TIMEOUT_S:g} s"
            ) from None
        except requests.RequestException as err:
            raise InternalServerException(f"The Airflow web server of {name} is unreachable: {err}") from None
        if len(answer.content) > RESPONSE_LIMIT_BYTES:
            # The call fails (user guide); the error is undocumented: the API reference's generic one.
            raise InternalServerException(INTERNAL_ERROR)
        try:
            payload = answer.json() if answer.content else {}
        except ValueError:
            payload = {"detail": answer.text}
        if 400 <= answer.status_code < 500:
            raise RestApiClientException(answer.status_code, payload)
        if answer.status_code >= 500:
            raise RestApiServerException(answer.status_code, payload)
        return answer.status_code, payload


mwaa_backends = BackendDict(MwaaBackend, "mwaa")
mwaa_environments.register_backends(mwaa_backends)


def attach_api_server(
    environment_name: str,
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    account_id: str | None = None,
    region_name: str = "us-east-1",
) -> None:
    """Make ``url`` the web server of an emulated environment (created with CreateEnvironment).

    A web server only answers once its environment is AVAILABLE: the emulated environment still
    goes through its statuses (wait for AVAILABLE, or set the ``mwaa::environment`` transition to
    ``{"progression": "immediate"}``); InvokeRestApi forwards whatever the status.
    """
    from moto.core import DEFAULT_ACCOUNT_ID

    backend: MwaaBackend = mwaa_backends[account_id or DEFAULT_ACCOUNT_ID][region_name]
    with backend.lock:
        environment = backend.get_environment(environment_name)
        environment.api_server = ApiServer(url, username=username, password=password, token=token)


# -- HTTP API -----------------------------------------------------------------------------------
class MwaaResponse(MwaaEnvironmentResponses, BaseResponse):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(service_name="mwaa")
        self.automated_parameter_parsing = True

    @property
    def backend(self) -> MwaaBackend:
        return mwaa_backends[self.current_account][self.region]

    def invoke_rest_api(self) -> ActionResult:
        status, payload = self.backend.invoke_rest_api(
            self._get_param("Name"),
            str(self._get_param("Method") or "").upper(),
            self._get_param("Path"),
            self._get_param("QueryParameters"),
            self._get_param("Body"),
        )
        return ActionResult({"RestApiStatusCode": status, "RestApiResponse": payload})


url_bases = [r"https?://(?:api\.|env\.)?airflow\.(.+)\.amazonaws\.com"]
url_paths = {
    "{0}/environments$": MwaaResponse.dispatch,
    "{0}/environments/(?P<Name>[^/]+)$": MwaaResponse.dispatch,
    "{0}/restapi/(?P<Name>[^/]+)$": MwaaResponse.dispatch,
    "{0}/tags/(?P<ResourceArn>.+)$": MwaaResponse.dispatch,
}


def install() -> None:
    """Register the service with moto: ``moto.mwaa`` for its backend lookup, a URL pattern for
    the server's dispatcher (requests signed for ``airflow`` resolve to ``airflow.<region>...``)."""
    if "moto.mwaa" not in sys.modules:
        alias = types.ModuleType("moto.mwaa")
        alias.mwaa_backends = mwaa_backends  # type: ignore[attr-defined]
        alias.url_bases = url_bases  # type: ignore[attr-defined]
        alias.url_paths = url_paths  # type: ignore[attr-defined]
        sys.modules["moto.mwaa"] = alias
    if not any(name == "mwaa" for name, _ in backend_url_patterns):
        backend_url_patterns.append(("mwaa", re.compile(url_bases[0])))
    mwaa_environments.install()


__all__ = ["MwaaBackend", "MwaaEnvironment", "attach_api_server", "install", "mwaa_backends"]
