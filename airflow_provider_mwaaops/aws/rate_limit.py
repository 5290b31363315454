"""A process-wide budget of API calls per second, shared by every coroutine of an event loop.

Why: some AWS read APIs have a low quota per account and Region that every caller shares. The
CloudWatch Logs quotas (https://docs.aws.amazon.com/general/latest/gr/cwl_region.html, "Amazon
CloudWatch Logs endpoints and quotas"; AWS knowledge center "How do I determine throttling in my
CloudWatch logs?", https://repost.aws/knowledge-center/cloudwatch-logs-throttling) allow
GetLogEvents 10 and FilterLogEvents 5 transactions per second per account and Region, not
adjustable. A triggerer with 200 Glue waits forwarding their logs made ~78 GetLogEvents per second
(benchmarks/README.md, ``--service glue-logs``): each trigger backing off on its own after being
throttled cannot keep a fleet under that. A :class:`TokenBucket` shared by all of them can.

How (:class:`TokenBucket`):

* ``rate`` tokens per second refill a bucket of ``capacity`` tokens (default: one second's worth,
  at least 1); one API call takes one token.
* :meth:`TokenBucket.acquire` waits for ``n`` tokens. Waiters are served strictly in arrival
  order, so no caller starves, and ``priority=True`` waiters (a last read that must happen)
  before all others, in their own arrival order. A caller that needs more tokens than the bucket
  holds is served once the bucket is full and leaves it in debt; later callers wait for the debt
  to be paid, so the long-run rate stays ``rate``.
* A waiter that is cancelled leaves the queue; tokens already granted to it are not returned
  (the budget errs on the side of fewer calls).
* One bucket per key and event loop (:func:`shared_bucket`): asyncio futures belong to one loop,
  and a triggerer has one.

The clock and the sleep are parameters, so that tests count grants over simulated time instead
of timing real waits.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

__all__ = ["TokenBucket", "forget_buckets", "shared_bucket"]

#: Token counts this close to what is needed count as enough: without it a float rounding left
#: the dispatcher sleeping ever smaller times that no longer moved the clock.
_EPSILON = 1e-9


@dataclass(eq=False)
class _Waiter:
    tokens: float
    future: asyncio.Future[None]


class TokenBucket:
    """``rate`` calls per second on average, bursts of at most ``capacity``; see the module docs.

    :param rate: tokens per second (> 0).
    :param capacity: the most tokens the bucket holds (default ``max(1, rate)``).
    :param clock: monotonic seconds (default ``time.monotonic``).
    :param sleep: how to wait ``seconds`` (default ``asyncio.sleep``).
    """

    def __init__(
        self,
        rate: float,
        *,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of tokens per second, got {rate!r}")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, self.rate))
        if not self.capacity > 0:
            raise ValueError(f"capacity must be positive, got {capacity!r}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._queues: tuple[collections.deque[_Waiter], collections.deque[_Waiter]] = (
            collections.deque(),  # priority
            collections.deque(),  # everyone else
        )
        self._dispatcher: asyncio.Task[None] | None = None
        #: Tokens granted so far.
        self.granted = 0.0
        #: Acquisitions that had to wait.
        self.waited = 0

    @property
    def tokens(self) -> float:
        """How many tokens are available now; below zero while the bucket is in debt."""
        self._refill()
        return self._tokens

    def queued(self, *, priority: bool | None = None) -> float:
        """Tokens asked for by waiters (only the priority ones, only the others, or all)."""
        queues = self._queues if priority is None else (self._queues[0 if priority else 1],)
        return sum(w.tokens for queue in queues for w in queue if not w.future.done())

    def wait_estimate(self, n: float = 1, *, priority: bool = False) -> float:
        """Seconds a new ``acquire(n, priority=...)`` would wait if no other waiter left."""
        ahead = self.queued(priority=True) + (0.0 if priority else self.queued(priority=False))
        return max(0.0, ahead + n - self.tokens) / self.rate

    async def acquire(self, n: float = 1, *, priority: bool = False) -> None:
        """Wait until ``n`` tokens are granted (in arrival order, ``priority`` waiters first)."""
        if n <= 0:
            return
        self._refill()
        if not self.queued() and self._tokens >= min(n, self.capacity) - _EPSILON:
            self._take(n)
            return
        self.waited += 1
        waiter = _Waiter(float(n), asyncio.get_running_loop().create_future())
        self._queues[0 if priority else 1].append(waiter)
        self._kick()
        try:
            await waiter.future
        finally:
            if not waiter.future.done():
                waiter.future.cancel()  # the dispatcher drops it

    # -- internals ---------------------------------------------------------------------------------
    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)

    def _take(self, n: float) -> None:
        self._tokens -= n
        self.granted += n

    def _head(self) -> collections.deque[_Waiter] | None:
        """The queue whose first waiter is next (cancelled waiters dropped), None when empty."""
        for queue in self._queues:
            while queue and queue[0].future.done():
                queue.popleft()
            if queue:
                return queue
        return None

    def _kick(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def _dispatch(self) -> None:
        """Grant tokens to the next waiter whenever there are enough; sleep until then.

        A waiter that arrives (or leaves) during a sleep is seen when the sleep ends; a priority
        waiter then goes first.
        """
        while (queue := self._head()) is not None:
            waiter = queue[0]
            self._refill()
            need = min(waiter.tokens, self.capacity)
            if self._tokens >= need - _EPSILON:
                queue.popleft()
                self._take(waiter.tokens)
                waiter.future.set_result(None)
                continue
            await self._sleep((need - self._tokens) / self.rate)


# -- one bucket per key and loop ---------------------------------------------------------------------
_buckets: dict[asyncio.AbstractEventLoop, dict[Hashable, TokenBucket]] = {}
_buckets_lock = threading.Lock()


def shared_bucket(key: Hashable, rate: float) -> TokenBucket:
    """The running loop's bucket for ``key`` at ``rate`` (made on first use)."""
    loop = asyncio.get_running_loop()
    with _buckets_lock:
        for closed in [other for other in _buckets if other.is_closed()]:
            del _buckets[closed]
        buckets = _buckets.setdefault(loop, {})
        bucket = buckets.get((key, rate))
        if bucket is None:
            bucket = buckets[(key, rate)] = TokenBucket(rate)
        return bucket


def forget_buckets() -> None:
    """Drop every shared bucket (tests)."""
    with _buckets_lock:
        _buckets.clear()
