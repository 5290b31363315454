"""A real ``airflow api-server`` on loopback, for the Airflow 3 behaviour that only shows across
process boundaries: listeners that run in the API server, the REST API that tasks must use because
they cannot reach the database, the event log an operator reads back.

The server shares the calling process's isolated Airflow (same AIRFLOW_HOME and metadata DB), so a
DAG run made with ``dag.test()`` in the test is visible through the API. Authentication is the real
simple auth manager: one admin user whose password is written before start-up, and bearer tokens
from ``POST /auth/token``, exactly what a client outside Airflow does.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from airflow_provider_mwaaops.testing.airflow_env import IsolatedAirflow

ADMIN_USER = "admin"
START_TIMEOUT_S = 120.0


class ApiServerError(RuntimeError):
    """The API server did not start, or answered a request with an error status."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowApiServer:
    """``airflow api-server`` (core + execution API) as a subprocess on 127.0.0.1.

    ``environ`` (after start) holds everything another Airflow process needs to talk to this
    server: a scheduler or worker started with it reaches the execution API here and its JWTs
    validate, so test helpers that start more components should start them with it.
    """

    def __init__(
        self,
        airflow_env: IsolatedAirflow,
        extra_environ: Mapping[str, str] | None = None,
        port: int = 0,
        python: str = sys.executable,
    ):
        self.airflow_env = airflow_env
        self.port = port or free_port()
        self.python = python
        self.password = secrets.token_urlsafe(16)
        self._token: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = Path(tempfile.mkstemp(prefix="mwaaops-api-server-", suffix=".log")[1])
        # One file per server: several servers may share an Airflow home, and the auth manager
        # re-reads its file at every login, so a shared file would hand one server another's password.
        passwords_file = airflow_env.home / f"simple_auth_manager_passwords.{self.port}.json"
        passwords_file.write_text(json.dumps({ADMIN_USER: self.password}))
        self.environ: dict[str, str] = {
            **airflow_env.environ,
            **(extra_environ or {}),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.environ.get(
                "AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(32)
            ),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_text(self) -> str:
        """What the server printed so far (for assertion messages and debugging)."""
        return self._log_file.read_text(errors="replace") if self._log_file.exists() else ""

    def start(self) -> AirflowApiServer:
        log = self._log_file.open("wb")
        self._process = subprocess.Popen(
            [self.python, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **self.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ApiServerError(
                    f"airflow api-server exited with {self._process.returncode}:\n{self.log_text[-4000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2):  # noqa: S310
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.stop()
        raise ApiServerError(
            f"airflow api-server not healthy after {START_TIMEOUT_S}s:\n{self.log_text[-4000:]}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # The server forks workers; signal the whole session so none outlives the test.
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)

    def __enter__(self) -> AirflowApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def token(self) -> str:
        """A bearer token for the admin user, from the server's own token endpoint."""
        if self._token is None:
            answer = self._send(
                "POST", "/auth/token", body={"username": ADMIN_USER, "password": self.password}, auth=False
            )
            self._token = str(answer["access_token"])
        return self._token

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Call the REST API as the admin user; returns the decoded JSON answer (None if empty)."""
        return self._send(method, path, body=json, params=params, auth=True)

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=60) as answer:  # noqa: S310
                raw = answer.read()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            raise ApiServerError(f"{method} {path} -> {err.code}: {text[:2000]}", err.code, text) from err
        return json.loads(raw) if raw else None
