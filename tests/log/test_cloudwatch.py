"""log/cloudwatch.py: cursor, de-duplication, limits, masking, errors and checkpoints, against the
embedded CloudWatch Logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
from moto.core.exceptions import JsonRESTError
from moto.logs.models import LogsBackend

from airflow_provider_mwaaops.aws.client_pool import shared_pool
from airflow_provider_mwaaops.aws.rate_limit import TokenBucket, forget_buckets
from airflow_provider_mwaaops.log.cloudwatch import (
    CloudWatchLogForwarder,
    LogLimits,
    LogSource,
    log_read_budget,
)

GROUP = "/aws-glue/jobs/output"


class Recorder:
    """A logger that keeps what it was asked to write."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def log(self, level: int, message: str, *args: Any) -> None:
        self.records.append((level, message % args if args else message))

    def info(self, message: str, *args: Any) -> None:
        self.log(logging.INFO, message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self.log(logging.WARNING, message, *args)

    def lines(self) -> list[str]:
        return [text for level, text in self.records if level == logging.INFO and text.startswith("[")]

    def warnings(self) -> list[str]:
        return [text for level, text in self.records if level == logging.WARNING]


class MemoryCheckpoint:
    def __init__(self) -> None:
        self.state: dict | None = None
        self.saves = 0

    async def load(self):
        return self.state

    async def save(self, state):
        self.state = dict(state)
        self.saves += 1


@pytest.fixture
def logs(aws_emulator):
    client = aws_emulator.client("logs")
    client.create_log_group(logGroupName=GROUP)
    return client


#: Event times in the tests: offsets from a minute ago (CloudWatch refuses events older than 14 days).
BASE_MS = int(time.time() * 1000) - 60_000


def put(logs, stream: str, *messages: str, ts: int | None = None, group: str = GROUP) -> None:
    """Write ``messages``: at ``BASE_MS + ts`` all, or one millisecond apart from now."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    first = BASE_MS + ts if ts is not None else int(time.time() * 1000)
    events = [
        {"timestamp": first + (0 if ts is not None else i), "message": message}
        for i, message in enumerate(messages)
    ]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def forward(forwarder: CloudWatchLogForwarder, final: bool = False) -> int:
    async def go() -> int:
        return await forwarder.forward(await shared_pool().client("logs"), final=final)

    return asyncio.run(go())


def make(*sources: LogSource, **kwargs: Any) -> tuple[CloudWatchLogForwarder, Recorder]:
    recorder = Recorder()
    return CloudWatchLogForwarder(sources, logger=recorder, **kwargs), recorder


def test_lines_are_written_once_in_order_with_their_prefix(logs):
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"))
    assert forward(forwarder) == 0  # the stream does not exist yet: quiet
    put(logs, "jr_1", "one", "two")
    assert forward(forwarder) == 2
    assert forward(forwarder) == 0
    put(logs, "jr_1", "three")
    forward(forwarder, final=True)
    assert out.lines() == ["[output] one", "[output] two", "[output] three"]
    assert out.warnings() == []
    assert forwarder.api_calls == 4  # one GetLogEvents per stream per call


def test_sources_are_merged_by_timestamp(logs):
    logs.create_log_group(logGroupName="/aws-glue/jobs/error")
    put(logs, "jr_1", "out-late", ts=2000)
    put(logs, "jr_1", "err-early", ts=1000, group="/aws-glue/jobs/error")
    forwarder, out = make(
        LogSource(GROUP, ("jr_1",), "output"), LogSource("/aws-glue/jobs/error", ("jr_1",), "error")
    )
    forward(forwarder)
    assert out.lines() == ["[error] err-early", "[output] out-late"]


def test_several_streams_of_one_source_are_named(logs):
    put(logs, "jr_1", "driver line")
    put(logs, "jr_1_exec", "executor line")
    forwarder, out = make(LogSource(GROUP, ("jr_1", "jr_1_exec"), "spark"))
    forward(forwarder)
    assert sorted(out.lines()) == ["[spark jr_1] driver line", "[spark jr_1_exec] executor line"]


def test_the_limit_skips_and_counts_and_the_reader_does_not_fall_behind(logs):
    put(logs, "jr_1", *[f"line {n}" for n in range(12)])
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"), limits=LogLimits(max_lines_per_poll=5))
    assert forward(forwarder) == 5
    assert out.lines() == [f"[output] line {n}" for n in range(5)]
    [warning] = out.warnings()
    assert "at least 1 log line(s) skipped" in warning
    put(logs, "jr_1", "after the flood")
    forward(forwarder)
    assert out.lines()[-1] == "[output] after the flood"  # jumped to the end, not line 5
    assert len(out.lines()) == 6
    assert forwarder.api_calls == 3  # read, skip to the end, read


def test_the_byte_limit_cuts_a_huge_line_and_skips_the_rest(logs):
    put(logs, "jr_1", "x" * 300, "y" * 10)
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "o"), limits=LogLimits(max_bytes_per_poll=100))
    forward(forwarder)
    [line] = out.lines()
    assert line.startswith("[o] " + "x" * 100)
    assert line.endswith("[cut]")
    assert "1 log line(s) skipped" in out.warnings()[0]


def test_secrets_are_masked(logs):
    from airflow_provider_mwaaops.secrets_masking import redact

    mask_calls = []

    def mask(text):
        mask_calls.append(text)
        return redact(text).replace("hunter2", "***")

    put(logs, "jr_1", "password is hunter2")
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"), mask=mask)
    forward(forwarder)
    assert out.lines() == ["[output] password is ***"]
    assert mask_calls == ["password is hunter2"]


def test_lines_carry_through_airflows_masker_by_default(logs):
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # Airflow 2.11
        from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret("s3cr3t-value-123")
    put(logs, "jr_1", "token=s3cr3t-value-123 ok")
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"))
    forward(forwarder)
    assert out.lines() == ["[output] token=*** ok"]


def test_a_checkpoint_is_saved_before_lines_are_written_and_restores_the_cursor(logs):
    checkpoint = MemoryCheckpoint()
    order: list[str] = []
    real_save = checkpoint.save

    async def save(state):
        order.append("save")
        await real_save(state)

    checkpoint.save = save  # type: ignore[method-assign]
    source = LogSource(GROUP, ("jr_1",), "output")
    forwarder, out = make(source, checkpoint=checkpoint)
    real_log = out.log

    def log(level, message, *args):
        order.append("write")
        real_log(level, message, *args)

    out.log = log  # type: ignore[method-assign]
    put(logs, "jr_1", "a", "b")
    forward(forwarder)
    assert order == ["save", "write", "write"]
    forward(forwarder)
    assert checkpoint.saves == 1  # nothing new, nothing saved

    # A triggerer restart: a new forwarder with the same checkpoint continues, repeating nothing.
    put(logs, "jr_1", "c")
    rebuilt, again = make(source, checkpoint=checkpoint)
    forward(rebuilt)
    assert again.lines() == ["[output] c"]


def test_a_refused_token_falls_back_to_the_timestamp_without_repeating(logs):
    put(logs, "jr_1", "same ms 1", "same ms 2", ts=5000)
    checkpoint = MemoryCheckpoint()
    forwarder, _ = make(LogSource(GROUP, ("jr_1",), "output"), checkpoint=checkpoint)
    forward(forwarder)
    put(logs, "jr_1", "same ms 3", ts=5000)
    put(logs, "jr_1", "later", ts=6000)
    assert checkpoint.state is not None
    for cursor in checkpoint.state["streams"].values():
        cursor["token"] = "f/not-a-token"  # expired (AWS keeps tokens 24 hours)
    rebuilt, again = make(LogSource(GROUP, ("jr_1",), "output"), checkpoint=checkpoint)
    forward(rebuilt)
    assert again.lines() == ["[output] same ms 3", "[output] later"]
    assert again.warnings() == []


@pytest.fixture
def failing_reads(monkeypatch):
    """Make GetLogEvents fail with a given AWS error."""
    errors: list[JsonRESTError] = []
    real = LogsBackend.get_log_events

    def get_log_events(self, *args, **kwargs):
        if errors:
            raise errors[0]
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LogsBackend, "get_log_events", get_log_events)
    return errors


def test_access_denied_is_one_warning_and_stops_reading(logs, failing_reads):
    failing_reads.append(
        JsonRESTError(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/mwaa/x is not authorized to perform: "
            "logs:GetLogEvents on resource: arn:aws:logs:us-east-1:123456789012:log-group:/x",
        )
    )
    put(logs, "jr_1", "hidden")
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"))
    for _ in range(3):
        assert forward(forwarder) == 0
    forward(forwarder, final=True)
    [warning] = out.warnings()
    assert "logs:GetLogEvents" in warning
    assert forwarder.api_calls == 1


def test_throttling_warns_once_and_skips_calls(logs, failing_reads):
    failing_reads.append(JsonRESTError("ThrottlingException", "Rate exceeded"))
    put(logs, "jr_1", "late line")
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"))
    forward(forwarder)
    forward(forwarder)  # skipped
    assert forwarder.api_calls == 1
    forward(forwarder)
    forward(forwarder)
    failing_reads.clear()
    forward(forwarder, final=True)  # the last call is never skipped
    assert out.lines() == ["[output] late line"]
    assert len(out.warnings()) == 1
    assert "throttling" in out.warnings()[0]


def test_other_errors_warn_once_per_message_and_never_raise(logs, failing_reads):
    failing_reads.append(JsonRESTError("ServiceUnavailableException", "try later"))
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"))
    for _ in range(3):
        forward(forwarder)
    assert len(out.warnings()) == 1


def test_a_stream_that_never_appears_is_reported_once_at_the_end(logs):
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"), LogSource("/missing", ("jr_1",), "error"))
    put(logs, "jr_1", "there")
    forward(forwarder)
    forward(forwarder, final=True)
    forward(forwarder, final=True)
    infos = [
        text for level, text in out.records if level == logging.INFO and text.startswith("no log stream")
    ]
    assert infos == [
        "no log stream jr_1 in /missing: the job wrote nothing there, or the log group is elsewhere"
    ]
    assert out.warnings() == []


def test_bad_sources_and_limits_are_named():
    with pytest.raises(ValueError, match="log group"):
        LogSource("", ("s",))
    with pytest.raises(ValueError, match="max_lines_per_poll"):
        LogLimits(max_lines_per_poll=0)
    with pytest.raises(ValueError, match="below 10000"):
        LogLimits(max_lines_per_poll=10_000)
    assert LogSource("g", "s").log_streams == ("s",)  # type: ignore[arg-type]
    assert LogSource.from_dict(LogSource("g", ("s",), "x").as_dict()) == LogSource("g", ("s",), "x")


# -- the shared read budget ------------------------------------------------------------------------
class FakeTime:
    """A clock that moves only when the budget sleeps, by what it asked for."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class RecordingBucket(TokenBucket):
    """Remembers who got tokens, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order: list[str] = []

    async def acquire(self, n: float = 1, *, priority: bool = False, name: str = "") -> None:
        await super().acquire(n, priority=priority)
        self.order.append(name or ("final" if priority else "poll"))


def test_forwarders_sharing_a_budget_read_no_more_than_it_grants_and_lose_nothing(logs):
    logs.create_log_group(logGroupName="/aws-glue/jobs/error")
    runs = [f"jr_{n:02d}" for n in range(20)]
    for run in runs:
        put(logs, run, *[f"{run} out {k}" for k in range(3)])
        put(logs, run, f"{run} err", group="/aws-glue/jobs/error")
    time_ = FakeTime()
    budget = TokenBucket(2, clock=time_.clock, sleep=time_.sleep)
    pairs = [
        make(
            LogSource(GROUP, (run,), "output"),
            LogSource("/aws-glue/jobs/error", (run,), "error"),
            budget=budget,
        )
        for run in runs
    ]

    async def wait(forwarder: CloudWatchLogForwarder, run: str) -> None:
        client = await shared_pool().client("logs")
        for poll in range(3):
            await forwarder.forward(client)
            if run == runs[0]:
                put(logs, run, f"{run} out late {poll}")  # arrives between two reads
        await forwarder.forward(client, final=True)

    async def main() -> None:
        await asyncio.gather(*(wait(forwarder, run) for (forwarder, _), run in zip(pairs, runs, strict=True)))

    asyncio.run(main())
    calls = sum(forwarder.api_calls for forwarder, _ in pairs)
    assert calls == budget.granted == 20 * 4 * 2  # every read took its token
    assert calls <= budget.capacity + budget.rate * time_.now  # ... and the rate held
    for (_, out), run in zip(pairs, runs, strict=True):
        expected = [f"{run} out {k}" for k in range(3)] + [f"{run} err"]
        expected += [f"{run} out late {poll}" for poll in range(3)] if run == runs[0] else []
        assert sorted(line.split("] ", 1)[1] for line in out.lines()) == sorted(expected)
        assert out.warnings() == []


class ManualTime(FakeTime):
    """A clock whose every sleep waits until the test lets it pass (``tick``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.gate.wait()
        self.gate.clear()
        self.now += seconds

    async def tick_until(self, *tasks: asyncio.Future[Any]) -> None:
        while not all(task.done() for task in tasks):
            self.gate.set()
            await asyncio.sleep(0.001)


def test_a_call_waiting_for_the_budget_is_dropped_and_the_final_read_goes_first(logs):
    put(logs, "jr_1", "one", "two")
    time_ = ManualTime()
    budget = RecordingBucket(1, clock=time_.clock, sleep=time_.sleep)
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"), budget=budget)

    async def main() -> tuple[int, int]:
        client = await shared_pool().client("logs")
        await budget.acquire(1, name="drain")  # the bucket is empty, its time stands still
        others = [asyncio.ensure_future(budget.acquire(1, name=f"other{n}")) for n in range(3)]
        waiting = asyncio.ensure_future(forwarder.forward(client))
        for _ in range(5):
            await asyncio.sleep(0)
        assert forwarder.stop_waiting() is True
        dropped = await waiting
        final = asyncio.ensure_future(forwarder.forward(client, final=True))
        for _ in range(5):
            await asyncio.sleep(0)
        await time_.tick_until(final, *others)
        return dropped, final.result()

    dropped, written = asyncio.run(main())
    assert dropped == 0
    assert forwarder.calls_dropped_waiting == 1
    assert written == 2
    assert out.lines() == ["[output] one", "[output] two"]
    assert forwarder.api_calls == 1  # the dropped call read nothing
    assert budget.order == ["drain", "final", "other0", "other1", "other2"]


def test_stop_waiting_does_nothing_without_a_waiting_call(logs):
    forwarder, _ = make(LogSource(GROUP, ("jr_1",), "output"))
    assert forwarder.stop_waiting() is False


def test_the_budget_comes_from_the_configuration(logs, monkeypatch):
    forget_buckets()

    async def budgets() -> tuple[Any, Any]:
        client = await shared_pool().client("logs")
        return log_read_budget(client), log_read_budget(client)

    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_READS_PER_SECOND", "3")
    first, again = asyncio.run(budgets())
    assert first is again
    assert first.rate == 3
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_READS_PER_SECOND", "0")
    assert asyncio.run(budgets()) == (None, None)  # unlimited
    monkeypatch.setenv("AIRFLOW__MWAAOPS__LOG_READS_PER_SECOND", "many")
    with pytest.raises(ValueError, match="log_reads_per_second"):
        asyncio.run(budgets())
    forget_buckets()


def test_without_a_budget_nothing_waits(logs):
    put(logs, "jr_1", "one")
    forwarder, out = make(LogSource(GROUP, ("jr_1",), "output"), budget=None)
    for _ in range(20):
        forward(forwarder)
    assert forwarder.api_calls == 20
    assert out.lines() == ["[output] one"]
