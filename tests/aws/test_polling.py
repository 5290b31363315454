"""The shared polling loop: slows down on throttling, fails fast on real errors, keeps deadlines."""

from __future__ import annotations

import asyncio
import time

import pytest
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.aws.polling import PollingPolicy, PollTimeout, TooManyTransientErrors, poll


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


class Script:
    """A check() that plays a list of outcomes: values, None (not done) or exceptions."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.times: list[float] = []

    async def __call__(self):
        self.times.append(time.monotonic())
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def run(coro):
    return asyncio.run(coro)


def test_returns_the_first_final_result():
    script = Script(None, None, {"done": True})
    assert run(poll(script, policy=PollingPolicy(delay=0.01, max_delay=0.01))) == {"done": True}
    assert len(script.times) == 3


def test_throttling_doubles_the_delay_and_a_good_answer_restores_it():
    throttled = client_error("ThrottlingException")
    script = Script(throttled, throttled, throttled, None, "ok")
    policy = PollingPolicy(delay=0.1, max_delay=10.0, jitter=0.0)

    assert run(poll(script, policy=policy)) == "ok"

    # A loaded machine can only make sleeps longer, so lower bounds are exact and upper ones loose.
    first, second, third, restored = script.gaps()
    assert 0.19 <= first < 0.35
    assert 0.39 <= second < 0.6
    assert 0.79 <= third < 1.1
    assert 0.09 <= restored < 0.35  # back to the normal delay after a good answer


def test_server_errors_are_retried_up_to_the_limit():
    policy = PollingPolicy(delay=0.001, max_delay=0.002, max_consecutive_errors=3)
    script = Script(*[client_error("InternalFailure", 500)] * 3)
    with pytest.raises(TooManyTransientErrors, match="3 consecutive errors"):
        run(poll(script, policy=policy, what="execution x"))


def test_a_non_retryable_error_ends_the_wait_at_once():
    script = Script(client_error("ExecutionDoesNotExist"), "never")
    with pytest.raises(ClientError):
        run(poll(script, policy=PollingPolicy(delay=0.001, max_delay=0.001)))
    assert len(script.times) == 1


def test_deadline_is_absolute():
    script = Script(*[None] * 1000)
    started = time.monotonic()
    with pytest.raises(PollTimeout):
        run(poll(script, policy=PollingPolicy(delay=0.05, max_delay=0.05), deadline=time.time() + 0.3))
    assert time.monotonic() - started < 1.0


def test_jitter_spreads_delays_within_bounds():
    policy = PollingPolicy(delay=10, max_delay=10, jitter=0.2)
    samples = [policy.jittered(10) for _ in range(500)]
    assert min(samples) >= 8
    assert max(samples) <= 12
    assert max(samples) - min(samples) > 2  # really spread, not constant


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"delay": 0}, "positive"), ({"delay": 5, "max_delay": 1}, "max_delay"), ({"jitter": 1.5}, "jitter")],
)
def test_policy_rejects_nonsense(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PollingPolicy(**kwargs)
