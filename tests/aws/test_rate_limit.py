"""aws/rate_limit.py: the shared token bucket, on a simulated clock (counts and order, no timing)."""

from __future__ import annotations

import asyncio
import collections

import pytest

from airflow_provider_mwaaops.aws.rate_limit import TokenBucket, forget_buckets, shared_bucket


class FakeTime:
    """A clock that moves only when the bucket sleeps (then by exactly what it asked for)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        await asyncio.sleep(0)

    def bucket(self, rate: float, **kwargs) -> TokenBucket:
        return TokenBucket(rate, clock=self.clock, sleep=self.sleep, **kwargs)


async def readers(bucket: TokenBucket, time: FakeTime, n: int, tokens: int, until: float):
    """``n`` readers that each take ``tokens`` again and again until the clock passes ``until``;
    returns every grant as (time, reader)."""
    grants: list[tuple[float, int]] = []

    async def reader(index: int) -> None:
        while time.now < until and len(grants) < 10_000:  # a bucket that never waits fails, not hangs
            await bucket.acquire(tokens)
            grants.append((time.now, index))
            await asyncio.sleep(0)  # the read itself

    await asyncio.gather(*(reader(index) for index in range(n)))
    return grants


def test_many_readers_stay_within_the_rate_in_every_window() -> None:
    async def main():
        time = FakeTime()
        bucket = time.bucket(5)
        grants = await readers(bucket, time, n=200, tokens=2, until=60.0)
        return time, bucket, grants

    time, bucket, grants = asyncio.run(main())
    tokens = [(at, 2) for at, _ in grants]
    # Token bucket property: in any window of w seconds at most capacity + rate * w tokens.
    for start, _ in tokens:
        for width in (0.0, 1.0, 5.0, 30.0):
            used = sum(n for at, n in tokens if start <= at <= start + width)
            assert used <= bucket.capacity + bucket.rate * width + 1e-9, (start, width, used)
    # ... and the budget is used, not wasted: 60 s at 5/s, 2 per grant, plus the first full bucket.
    assert sum(n for _, n in tokens) >= 5 * 60
    assert bucket.granted == sum(n for _, n in tokens)
    assert time.now >= 60.0


def test_readers_are_served_in_turn_none_starves() -> None:
    async def main():
        time = FakeTime()
        return await readers(time.bucket(5), time, n=50, tokens=2, until=100.0)

    grants = asyncio.run(main())
    per_reader = collections.Counter(reader for _, reader in grants)
    assert set(per_reader) == set(range(50))
    assert max(per_reader.values()) - min(per_reader.values()) <= 1
    # Round robin: after the first round every reader's grants are 50 grants apart.
    order = [reader for _, reader in grants]
    assert all(order[i] == order[i + 50] for i in range(len(order) - 50))


def test_priority_waiters_go_before_everyone_waiting() -> None:
    async def main():
        time = FakeTime()
        bucket = time.bucket(1)
        served: list[str] = []

        async def take(name: str, priority: bool = False) -> None:
            await bucket.acquire(1, priority=priority)
            served.append(name)

        await bucket.acquire(1)  # empty now
        tasks = [asyncio.ensure_future(take(f"poll{n}")) for n in range(5)]
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(take("final-a", priority=True)))
        tasks.append(asyncio.ensure_future(take("final-b", priority=True)))
        await asyncio.gather(*tasks)
        return served

    served = asyncio.run(main())
    # poll0 may already have been granted by the dispatcher's first wake-up; the finals come next,
    # in their own order, before every other waiting poll.
    finals = [served.index("final-a"), served.index("final-b")]
    assert finals[0] < finals[1] <= 2
    assert [name for name in served if name.startswith("poll")] == [f"poll{n}" for n in range(5)]


def test_a_cancelled_waiter_leaves_the_queue_and_takes_nothing() -> None:
    async def main():
        time = FakeTime()
        bucket = time.bucket(1)
        await bucket.acquire(1)
        leaving = asyncio.ensure_future(bucket.acquire(1))
        staying = asyncio.ensure_future(bucket.acquire(1))
        await asyncio.sleep(0)
        leaving.cancel()
        await staying
        return bucket, leaving, time

    bucket, leaving, time = asyncio.run(main())
    assert leaving.cancelled()
    assert bucket.granted == 2
    assert time.now == pytest.approx(1.0)  # the one left waited one token's time, not two
    assert bucket.queued() == 0


def test_a_request_above_capacity_is_served_and_leaves_a_debt() -> None:
    async def main():
        time = FakeTime()
        bucket = time.bucket(2)  # capacity 2
        await bucket.acquire(5)
        debt = bucket.tokens
        await bucket.acquire(1)
        return debt, time.now

    debt, now = asyncio.run(main())
    assert debt == pytest.approx(-3)
    assert now == pytest.approx(2.0)  # 4 tokens to pay back the debt and earn one, at 2/s


def test_wait_estimate_counts_the_waiters_ahead() -> None:
    async def main():
        time = FakeTime()
        bucket = time.bucket(2)
        await bucket.acquire(2)
        waiting = [asyncio.ensure_future(bucket.acquire(2)) for _ in range(3)]
        await asyncio.sleep(0)
        estimates = (bucket.wait_estimate(2), bucket.wait_estimate(2, priority=True))
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        return estimates

    normal, priority = asyncio.run(main())
    assert normal == pytest.approx(4.0)  # 6 tokens ahead + 2 of its own, at 2/s
    assert priority == pytest.approx(1.0)  # nobody ahead among the priority waiters


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf"), "5"])
def test_bad_rates_are_refused(rate) -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        TokenBucket(rate)


def test_shared_buckets_are_per_key_rate_and_loop() -> None:
    forget_buckets()

    async def main():
        first = shared_bucket(("logs", "eu-west-1", None), 5)
        assert shared_bucket(("logs", "eu-west-1", None), 5) is first
        assert shared_bucket(("logs", "us-east-1", None), 5) is not first
        assert shared_bucket(("logs", "eu-west-1", None), 2) is not first
        return first

    one = asyncio.run(main())
    assert asyncio.run(main()) is not one  # another loop, another bucket
    forget_buckets()
