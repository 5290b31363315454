"""The base every AWS trigger in this package derives from: serialisation, client, loop, events.

A subclass says which service it talks to, which extra arguments it needs to be rebuilt after a
triggerer restart (:meth:`AwsPollingTrigger.trigger_kwargs`) and how to read one status answer
(:meth:`AwsPollingTrigger.check`). The loop, the shared client, the absolute timeout and the rule
"yield an error event, never raise" live here once. Operators reuse :meth:`AwsPollingTrigger.wait` for their
synchronous mode, so a deferred and a blocking wait cannot drift apart.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mwaaops.aws.client_pool import shared_pool
from airflow_provider_mwaaops.aws.errors import describe_aws_error
from airflow_provider_mwaaops.aws.polling import PollingPolicy, PollTimeout, poll

#: Payload ``status`` values every trigger of this package yields.
STATUS_SUCCESS = "success"
STATUS_FAILURE = "failure"  # the AWS resource ended in a failed state
STATUS_TIMEOUT = "timeout"  # our own deadline passed
STATUS_ERROR = "error"  # we could not find out (bad credentials, AccessDenied, ...)


class AwsPollingTrigger(BaseTrigger):
    """Polls one AWS resource until :meth:`check` returns a final event payload."""

    service_name: ClassVar[str]

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        waiter_delay: float = 30.0,
        waiter_max_delay: float = 300.0,
        timeout_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.waiter_delay = waiter_delay
        self.waiter_max_delay = waiter_max_delay
        self.timeout_at = timeout_at

    # -- what subclasses provide --------------------------------------------------------------
    @abstractmethod
    def trigger_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments (JSON-serialisable)."""

    @abstractmethod
    async def check(self, client: Any) -> dict[str, Any] | None:
        """One status read: a final payload (with ``status``), or ``None`` to keep waiting."""

    @property
    def what(self) -> str:
        """How log lines and errors name the resource being waited on."""
        return type(self).__name__

    # -- the shared machinery -----------------------------------------------------------------
    def serialize(self) -> tuple[str, dict[str, Any]]:
        common = {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "waiter_delay": self.waiter_delay,
            "waiter_max_delay": self.waiter_max_delay,
            "timeout_at": self.timeout_at,
        }
        return f"{type(self).__module__}.{type(self).__qualname__}", {**common, **self.trigger_kwargs()}

    async def client(self) -> Any:
        return await shared_pool().client(
            self.service_name, aws_conn_id=self.aws_conn_id, region_name=self.region_name
        )

    async def wait(self) -> dict[str, Any]:
        """Poll until the resource is final; always returns a payload, never raises."""
        try:
            client = await self.client()
            policy = PollingPolicy(
                delay=self.waiter_delay, max_delay=max(self.waiter_max_delay, self.waiter_delay)
            )
            return await poll(
                lambda: self.check(client),
                policy=policy,
                deadline=self.timeout_at,
                what=self.what,
                logger=self.log,
            )
        except PollTimeout as exc:
            return {**self.trigger_kwargs(), "status": STATUS_TIMEOUT, "message": str(exc)}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.exception("%s: waiting failed", self.what)
            return {
                **self.trigger_kwargs(),
                "status": STATUS_ERROR,
                "message": describe_aws_error(exc),
                "error_type": type(exc).__name__,
            }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self.wait())

    @staticmethod
    def deadline_after(seconds: float | None) -> float | None:
        """An absolute deadline for ``timeout_at``, from a relative timeout."""
        return None if seconds is None else time.time() + seconds
