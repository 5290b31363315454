"""The embedded AWS: moto's server on a loopback port, shaped for Airflow tests and demos.

moto runs as a real HTTP server (``ThreadedMotoServer``) rather than the in-process ``mock_aws``
decorator because aiobotocore, and therefore every deferrable trigger, cannot talk to the
in-process mock. The server lives in this process, so tests can still reach moto's backends
directly when they need to shape state that no public API can (a job run that fails, say).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import urllib.request
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_provider_mwaaops.testing.extensions.emr_scripts import EmrControls
    from airflow_provider_mwaaops.testing.extensions.glue_control import GlueControl

#: Step Functions executions really run their definitions (Task, Parallel, Map, Fail states)
#: instead of jumping straight to SUCCEEDED.
DEFAULT_MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}}
#: Transitions (moto's state manager) that make slow resources slow here too. Glue job runs do not
#: use one: they follow scripts (``AwsEmulator.glue``; testing/extensions/glue_job_runs.py).
DEFAULT_TRANSITIONS: dict[str, dict[str, Any]] = {}
DEFAULT_REGION = "us-east-1"
#: moto accepts any credentials; fixed ones keep a user's real AWS profile out of the picture.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # noqa: S105 (moto accepts any key)


class AwsEmulator:
    """moto's server on ``127.0.0.1`` plus the environment that points Airflow and boto at it.

    Use it as a context manager, or through the ``aws_emulator`` pytest fixture::

        with AwsEmulator() as aws, aws.activated():
            aws.client("s3").create_bucket(Bucket="demo")

    ``activated()`` sets the ``aws_default`` Airflow connection, ``AWS_ENDPOINT_URL`` and fake
    credentials for the duration of the block; ``reset()`` drops every resource between tests.
    """

    def __init__(self, region_name: str = DEFAULT_REGION, port: int = 0, conn_id: str = "aws_default"):
        self.region_name = region_name
        self.conn_id = conn_id
        self._requested_port = port
        self._server: Any = None
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> AwsEmulator:
        """Start the server on a free loopback port (or the one given) and configure it."""
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        # One INFO line per request would drown the task logs that tests and the demo print.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # moto's executing Step Functions engine calls other services through this port.
        os.environ["MOTO_PORT"] = str(self.port)
        self._apply_config()
        # AWS behaviour moto lacks (Step Functions redrive, ...), patched into moto's own classes.
        from airflow_provider_mwaaops.testing import extensions

        extensions.install_all()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> AwsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Drop every resource in every service, keeping the server and its configuration."""
        self._post("/moto-api/reset", b"")
        self._apply_config()

    # -- addresses and environment ----------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("AwsEmulator is not started; call start() or use it as a context manager")
        return f"http://127.0.0.1:{self.port}"

    def connection_json(self) -> str:
        """The Airflow ``aws`` connection, in the JSON form Airflow reads from ``AIRFLOW_CONN_*``."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY_ID,
                "password": SECRET_ACCESS_KEY,
                "extra": {
                    "region_name": self.region_name,
                    "endpoint_url": self.endpoint_url,
                    # botocore 1.37.3 (MWAA 2.11.0's pin) does not read AWS_DISABLE_HOST_PREFIX_INJECTION:
                    # the client config says it on every botocore.
                    "config_kwargs": {"inject_host_prefix": False},
                },
            }
        )

    def environ(self) -> dict[str, str]:
        """Environment variables that send Airflow connections, boto3 and aiobotocore here."""
        return {
            f"AIRFLOW_CONN_{self.conn_id.upper()}": self.connection_json(),
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region_name,
            "AWS_REGION": self.region_name,
            "MOTO_PORT": str(self.port),
            # Operations with a host prefix (MWAA's env./api., Step Functions' sync-) would go to
            # "env.127.0.0.1", which does not resolve; the emulator answers them on its own address.
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            # Keep a developer's ~/.aws profile from overriding the fake credentials.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    @contextlib.contextmanager
    def activated(self) -> Iterator[AwsEmulator]:
        """Point this process at the emulator for the duration of the block."""
        with patched_environ(self.environ()):
            yield self

    # -- clients -------------------------------------------------------------------------------
    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` bound to the emulator."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service_name,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(inject_host_prefix=False),
        )

    def async_client(self, service_name: str) -> Any:
        """An aiobotocore client context manager for ``service_name`` bound to the emulator.

        ``async with emulator.async_client("stepfunctions") as sfn: await sfn.list_state_machines()``
        """
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        return get_session().create_client(
            service_name,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=AioConfig(inject_host_prefix=False),
        )

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        """DescribeExecution once the Step Functions execution has left RUNNING.

        moto's engine runs executions on threads of its own, so a test that starts, stops or
        redrives one must wait for the outcome; this fails the test instead of hanging.
        """
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] not in ("RUNNING", "PENDING_REDRIVE"):
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"{execution_arn} still {described['status']} after {timeout}s")
            time.sleep(0.1)

    @property
    def emr(self) -> EmrControls:
        """Script what EMR steps and EMR Serverless job runs do (outcome, duration, logs, timings)."""
        from airflow_provider_mwaaops.testing.extensions.emr_scripts import EmrControls

        return EmrControls(self.region_name)

    @property
    def glue(self) -> GlueControl:
        """Scripts what Glue job runs do (duration, outcome, ErrorMessage, log lines) in tests.

        ``aws_emulator.glue.script_next_runs("etl", {"outcome": "FAILED", "error_message": "x"})``;
        see "Glue job runs and workflows" in docs/testing.rst. ``reset()`` drops every script.
        """
        from airflow_provider_mwaaops.testing.extensions.glue_control import GlueControl

        return GlueControl(region_name=self.region_name)

    # -- internals -----------------------------------------------------------------------------
    def _apply_config(self) -> None:
        self._post("/moto-api/config", json.dumps(DEFAULT_MOTO_CONFIG).encode())
        for model_name, transition in DEFAULT_TRANSITIONS.items():
            self.set_transition(model_name, transition)

    def set_transition(self, model_name: str, transition: dict[str, Any]) -> None:
        """How fast a moto model moves through its states, e.g. ``("glue::job_run", {...})``.

        See moto's state manager: ``{"progression": "immediate"}``, ``{"progression": "time",
        "seconds": 5}`` or ``{"progression": "manual", "times": 3}``. ``reset()`` restores the defaults.
        """
        body = json.dumps({"model_name": model_name, "transition": transition}).encode()
        self._post("/moto-api/state-manager/set-transition", body)

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}{path}", data=body, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
            response.read()


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a block and restore the previous values afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
