"""The one polling loop every wait in this package runs, deferred or not.

Triggers and synchronous waits both call :func:`poll`: a check coroutine is awaited until it reports
a result, with a jittered delay between calls so that a thousand waits started together do not
poll in lockstep. Throttling and transient AWS errors slow the loop down instead of failing it;
anything else (a missing resource, AccessDenied) ends it at once, because retrying would only
hide the cause.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_mwaaops.aws.errors import describe_aws_error, is_throttling, is_transient

T = TypeVar("T")

log = logging.getLogger(__name__)


class PollTimeout(TimeoutError):
    """The absolute deadline passed before the resource reached a final state."""


class TooManyTransientErrors(RuntimeError):
    """AWS kept answering with throttling or server errors for longer than the policy allows."""


@dataclass(frozen=True)
class PollingPolicy:
    """How often to look, and how patient to be with an unhealthy API.

    ``delay`` is the normal pause between checks (the operators' ``waiter_delay``). After a
    throttling or transient error the pause doubles up to ``max_delay`` and returns to ``delay``
    after the next good answer. Every pause is spread by +/- ``jitter`` (a fraction) so that
    many waits drift apart instead of hitting the API in bursts.
    """

    delay: float = 30.0
    max_delay: float = 300.0
    jitter: float = 0.2
    max_consecutive_errors: int = 20

    def __post_init__(self) -> None:
        if self.delay <= 0:
            raise ValueError(f"polling delay must be positive, got {self.delay!r}")
        if self.max_delay < self.delay:
            raise ValueError(f"max_delay ({self.max_delay!r}) must be >= delay ({self.delay!r})")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter!r}")

    def jittered(self, base: float) -> float:
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))  # noqa: S311 (not cryptographic)


async def poll(
    check: Callable[[], Awaitable[T | None]],
    *,
    policy: PollingPolicy,
    deadline: float | None = None,
    what: str = "resource",
    logger: Any = None,
) -> T:
    """Await ``check()`` until it returns something other than ``None``, and return that.

    ``deadline`` is an absolute ``time.time()`` value, so a wait resumed after a triggerer restart
    keeps the original limit instead of starting a new one.
    """
    logger = logger or log
    delay = policy.delay
    errors = 0
    while True:
        try:
            result = await check()
        except Exception as exc:
            if not (is_throttling(exc) or is_transient(exc)):
                raise
            errors += 1
            if errors >= policy.max_consecutive_errors:
                raise TooManyTransientErrors(
                    f"gave up on {what} after {errors} consecutive errors; last: {describe_aws_error(exc)}"
                ) from exc
            delay = min(delay * 2, policy.max_delay)
            logger.warning("%s: %s; next check in about %.0fs", what, describe_aws_error(exc), delay)
        else:
            if result is not None:
                return result
            errors = 0
            delay = policy.delay
        pause = policy.jittered(delay)
        if deadline is not None:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise PollTimeout(f"{what} did not finish before the deadline")
            pause = min(pause, remaining)
        await asyncio.sleep(pause)
