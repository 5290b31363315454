"""The base every AWS trigger in this package derives from: serialisation, client, loop, events.

A subclass says which service it talks to (:attr:`AwsPollingTrigger.service_name`), which extra
arguments it needs to be rebuilt after a triggerer restart (:meth:`AwsPollingTrigger.trigger_kwargs`)
and how to read one status answer (:meth:`AwsPollingTrigger.check`). Optionally it says how to stop
its resource when a user kills the deferred task (:meth:`AwsPollingTrigger.stop`, Airflow 3.3+) and
what to do next to the status polls (:meth:`AwsPollingTrigger.after_check`, e.g. forward the job's
log lines). The loop, the shared client, the connection settings (``verify`` and
``botocore_config`` included), the absolute timeout and the rule "yield an error event, never
raise" live here once. Operators reuse :meth:`AwsPollingTrigger.wait` for their synchronous mode,
so a deferred and a blocking wait cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.config import Config

from airflow_provider_mwaaops.aws.client_pool import shared_pool
from airflow_provider_mwaaops.aws.errors import access_denied_action, describe_aws_error, is_retryable
from airflow_provider_mwaaops.aws.polling import PollingPolicy, PollTimeout, poll
from airflow_provider_mwaaops.compat import STALE_DEFERRAL_EVENT_MAY_FAIL_RESUMED_TASK, runs_in_triggerer

__all__ = [
    "STATUS_ERROR",
    "STATUS_FAILURE",
    "STATUS_SUCCESS",
    "STATUS_TIMEOUT",
    "AwsPollingTrigger",
    "botocore_config_dict",
]

#: Payload ``status`` values every trigger of this package yields.
STATUS_SUCCESS = "success"
STATUS_FAILURE = "failure"  # the AWS resource ended in a failed state
STATUS_TIMEOUT = "timeout"  # our own deadline passed
STATUS_ERROR = "error"  # we could not find out (bad credentials, AccessDenied, ...)

#: Seconds after the trigger started before its event is yielded, where Airflow may fail a task
#: resumed that soon (:data:`~airflow_provider_mwaaops.compat.STALE_DEFERRAL_EVENT_MAY_FAIL_RESUMED_TASK`):
#: by then a busy scheduler has read the deferral's executor event. Only waits that end sooner
#: (a job already finished when the task deferred) are held, and only in a triggerer.
SETTLE_AFTER_DEFERRAL_SECONDS = 10.0


def botocore_config_dict(value: Config | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``botocore_config`` as the JSON-safe dict a trigger serializes, checked by botocore itself.

    Accepts what the amazon provider's operators accept (a dict of ``botocore.config.Config``
    options) and a ``Config`` object. Raises ``ValueError`` naming ``botocore_config`` for an
    option botocore does not know or a value the triggerer could not store.
    """
    if value is None:
        return None
    if isinstance(value, Config):
        options = dict(getattr(value, "_user_provided_options", {}))
    elif isinstance(value, Mapping):
        options = dict(value)
    else:
        raise ValueError(f"botocore_config must be a dict of botocore Config options, got {value!r}")
    try:
        Config(**options)
    except TypeError as exc:
        raise ValueError(f"botocore_config: {exc}") from exc
    try:
        json.dumps(options)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"botocore_config must hold JSON values only (the triggerer stores it): {exc}"
        ) from exc
    return options


class AwsPollingTrigger(BaseTrigger):
    """Polls one AWS resource until :meth:`check` returns a final event payload.

    :param aws_conn_id: Airflow AWS connection (``None``: boto's default credential chain).
    :param region_name: AWS region; default from the connection.
    :param verify: TLS verification for the polling client (``False`` or a CA bundle path), as for
        the amazon provider's hooks.
    :param botocore_config: botocore ``Config`` options for the polling client, as a dict.
    :param waiter_delay: seconds between status checks (jittered; longer while AWS throttles).
    :param waiter_max_delay: upper bound of the delay while backing off.
    :param timeout_at: absolute ``time.time()`` deadline, so a restarted trigger keeps the limit.
    """

    #: The botocore service name of the polling client (``"stepfunctions"``, ``"glue"``, ...).
    service_name: ClassVar[str]
    #: How long the last ``after_check`` (the one that sees the final status) may delay the event.
    final_side_work_timeout: ClassVar[float] = 30.0

    #: Whether ``on_kill`` calls ``stop``. Triggers that can stop their resource take a
    #: ``stop_on_kill`` argument, store it here and list it in ``trigger_kwargs``.
    stop_on_kill: bool = False

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        waiter_delay: float = 30.0,
        waiter_max_delay: float = 300.0,
        timeout_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config_dict(botocore_config)
        self.waiter_delay = waiter_delay
        self.waiter_max_delay = waiter_max_delay
        self.timeout_at = timeout_at

    # -- what subclasses provide --------------------------------------------------------------
    @abstractmethod
    def trigger_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments (JSON-serialisable); they also go into the
        timeout and error payloads, so ``execute_complete`` knows which resource they are about."""

    @abstractmethod
    async def check(self, client: Any) -> dict[str, Any] | None:
        """One status read: a final payload (with ``status``), or ``None`` to keep waiting.

        Raise what the client raises: throttling and transient errors slow the polling down,
        anything else ends the wait with an error event.
        """

    async def stop(self, client: Any) -> None:
        """Stop the AWS resource; ``on_kill`` calls it when ``stop_on_kill`` is true."""
        raise NotImplementedError(f"{type(self).__name__} cannot stop what it waits for")

    async def after_check(self, client: Any, result: dict[str, Any] | None) -> None:
        """Optional side work next to the status polls, e.g. forwarding the job's new log lines.

        Not called unless a subclass overrides it. It runs as its own task after a status check
        and never delays the next check: while one call is still running, the checks go on and
        the next call starts after a later check. When the resource is final it is called one
        last time with the final payload (``result``), bounded by ``final_side_work_timeout``,
        before the event is yielded. An exception is logged as a warning (once per distinct
        error) and the wait goes on: side work never fails a wait. ``client`` is the polling
        client; ``self.client("logs")`` gives the client of another service.
        """

    def side_work_ending(self) -> None:
        """The resource is final: called once before the running ``after_check`` call (if any) is
        awaited, to cut short a call that is only waiting (e.g. for a shared rate budget) so that
        it does not hold up the final one. Default: nothing."""

    def final_side_work_bound(self) -> float:
        """Seconds the final ``after_check`` (with the running call before it) may take:
        ``final_side_work_timeout``, more when a subclass knows its last call must wait longer."""
        return self.final_side_work_timeout

    @property
    def what(self) -> str:
        """How log lines and errors name the resource being waited on."""
        return type(self).__name__

    # -- the shared machinery -----------------------------------------------------------------
    def serialize(self) -> tuple[str, dict[str, Any]]:
        common = {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
            "waiter_delay": self.waiter_delay,
            "waiter_max_delay": self.waiter_max_delay,
            "timeout_at": self.timeout_at,
        }
        return f"{type(self).__module__}.{type(self).__qualname__}", {**common, **self.trigger_kwargs()}

    async def client(self, service_name: str | None = None) -> Any:
        """The shared client of this trigger's connection settings (another service if named)."""
        return await shared_pool().client(
            service_name or self.service_name,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )

    async def wait(self) -> dict[str, Any]:
        """Poll until the resource is final; always returns a payload, never raises."""
        side_work = _SideWork(self) if self._has_side_work() else None
        try:
            client = await self.client()
            policy = PollingPolicy(
                delay=self.waiter_delay, max_delay=max(self.waiter_max_delay, self.waiter_delay)
            )

            async def check() -> dict[str, Any] | None:
                result = await self.check(client)
                if side_work is not None and result is None:
                    side_work.start(client, result)
                return result

            final = await poll(
                check, policy=policy, deadline=self.timeout_at, what=self.what, logger=self.log
            )
            if side_work is not None:
                await side_work.finish(client, final)
            return final
        except PollTimeout as exc:
            return {**self.trigger_kwargs(), "status": STATUS_TIMEOUT, "message": str(exc)}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.exception("%s: waiting failed", self.what)
            payload = {
                **self.trigger_kwargs(),
                "status": STATUS_ERROR,
                "message": describe_aws_error(exc),
                "error_type": type(exc).__name__,
            }
            action = access_denied_action(exc)
            return {**payload, "iam_action": action} if action else payload
        finally:
            if side_work is not None:
                await side_work.stop()

    async def check_once(self) -> dict[str, Any] | None:
        """One ``check`` for a sensor's ``poke``: ``None`` also after a throttling or
        transient error (the next poke looks again); other errors are raised."""
        client = await self.client()
        try:
            return await self.check(client)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            self.log.warning("%s: %s; looking again at the next poke", self.what, describe_aws_error(exc))
            return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        payload = await self.wait()
        await self._settle_deferral(started)
        yield TriggerEvent(payload)

    async def _settle_deferral(self, started: float) -> None:
        """Hold an event that came within :data:`SETTLE_AFTER_DEFERRAL_SECONDS` of the start."""
        if not (STALE_DEFERRAL_EVENT_MAY_FAIL_RESUMED_TASK and runs_in_triggerer()):
            return  # dag.test() and the blocking mode have no executor event to wait for
        remaining = SETTLE_AFTER_DEFERRAL_SECONDS - (time.monotonic() - started)
        if remaining > 0:
            self.log.info(
                "%s: final %.1f s after the trigger started; resuming the task in %.1f s, once the scheduler "
                "has seen the deferral end (a sooner resumption may be failed by Airflow)",
                self.what,
                SETTLE_AFTER_DEFERRAL_SECONDS - remaining,
                remaining,
            )
            await asyncio.sleep(remaining)

    async def on_kill(self) -> None:
        """A user killed the deferred task (Airflow 3.3+; a triggerer restart does not call this):
        stop the resource when ``stop_on_kill`` is set."""
        if not self.stop_on_kill:
            return
        client = await self.client()
        self.log.info("Stopping %s because the task was killed", self.what)
        await self.stop(client)

    @staticmethod
    def deadline_after(seconds: float | None) -> float | None:
        """An absolute deadline for ``timeout_at``, from a relative timeout."""
        return None if seconds is None else time.time() + seconds

    def _has_side_work(self) -> bool:
        return type(self).after_check is not AwsPollingTrigger.after_check


class _SideWork:
    """Runs a trigger's :meth:`~AwsPollingTrigger.after_check` beside its polls, one call at a time."""

    def __init__(self, trigger: AwsPollingTrigger) -> None:
        self.trigger = trigger
        self.task: asyncio.Task[None] | None = None
        self.reported: set[str] = set()

    def start(self, client: Any, result: dict[str, Any] | None) -> None:
        """Start a call unless one is still running (the polls never wait for side work)."""
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._guarded(client, result))

    async def finish(self, client: Any, final: dict[str, Any]) -> None:
        """Let the running call end, then make the last one with the final payload; bounded."""
        self.trigger.side_work_ending()
        bound = self.trigger.final_side_work_bound()
        try:
            await asyncio.wait_for(self._last(client, final), bound)
        except TimeoutError:
            self.trigger.log.warning(
                "%s: side work still running after %.0fs; not waiting for it", self.trigger.what, bound
            )

    async def _last(self, client: Any, final: dict[str, Any]) -> None:
        if self.task is not None:
            await self.task
        await self._guarded(client, final)

    async def stop(self) -> None:
        """Cancel a running call and wait until it has ended, so that nothing of this wait is
        still running when a rebuilt trigger (after a triggerer restart) starts its own."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task})

    async def _guarded(self, client: Any, result: dict[str, Any] | None) -> None:
        try:
            await self.trigger.after_check(client, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            described = describe_aws_error(exc)
            if described not in self.reported:
                self.reported.add(described)
                self.trigger.log.warning(
                    "%s: side work failed (the wait goes on): %s", self.trigger.what, described
                )
