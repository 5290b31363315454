"""An AWS job's own CloudWatch log lines in the Airflow task log, while the task waits for the job.

One component for every service whose jobs write to CloudWatch Logs (Glue job runs, EMR Serverless
job runs...). A *source* is a log group, its stream(s) and a label that prefixes each line
(:class:`LogSource`); a :class:`CloudWatchLogForwarder` reads what is new in its sources at every
call of :meth:`~CloudWatchLogForwarder.forward` and writes it to a logger, which is the task log
both in the worker and in the triggerer. A trigger gets it through :class:`ForwardsCloudWatchLogs`,
whose ``after_check`` runs beside the status polls (see ``AwsPollingTrigger.after_check``), so
reading logs never delays or fails the wait.

What it guarantees:

* **Cursor.** Each stream is read from where the previous call stopped (CloudWatch's forward token;
  the last timestamp and how many lines carried it, as a fallback when a token is refused), so a
  line is written once.
* **Cost.** One ``GetLogEvents`` per stream per call; one more for a stream that had more new lines
  than the limit (to skip to its end). Nothing else: no ``DescribeLogStreams`` (5 requests per
  second per account), no ``FilterLogEvents`` scans. The status poll's cadence is unchanged: the
  caller decides when to call.
* **Read budget.** All forwarders of a process (the triggerer) share one budget of CloudWatch Logs
  reads per second per Region endpoint, ``[mwaaops] log_reads_per_second`` (default 5; 0:
  unlimited), because GetLogEvents' quota (10 per second per account and Region, see
  :mod:`~airflow_provider_mwaaops.aws.rate_limit`) is shared by the whole account. A call first
  waits for one token per stream, in arrival order with every other forwarder's calls; while it
  waits the status checks go on (it is side work, see ``AwsPollingTrigger.after_check``), so over
  the budget a trigger reads its job's lines less often, later, but none is lost or repeated. The
  last call, after the job ended, goes before every waiting non-final call, and a non-final call
  still waiting then is dropped (the last call reads what it would have read).
* **Rate limit.** At most ``max_lines_per_poll`` lines and ``max_bytes_per_poll`` bytes per call,
  in timestamp order across the sources; what is over the limit is skipped and counted in one line
  ("N lines skipped"), so a chatty job can neither flood the task log nor make the reader fall
  ever further behind.
* **Secrets.** Every line goes through Airflow's secrets masker before it is written. The masker
  knows the secrets registered in *this* process: the connections and variables the trigger or
  task itself read.
* **Errors never fail the wait.** A stream that does not exist yet is normal (jobs create them when
  they first write); one that never appeared is reported once, at the end. AccessDenied is one
  warning naming the IAM action, after which the forwarder stops reading; throttling is one
  warning, after which it skips a growing number of calls; any other error is one warning per
  distinct message. ``forward`` never raises (cancellation aside).
* **Triggerer restarts.** With a :class:`LogCheckpoint` the cursor is saved *before* the lines of a
  call are written, and loaded by the rebuilt trigger: no line is written twice. A line can be
  missing only if the triggerer process dies (SIGKILL, out of memory) between saving the cursor
  and writing the lines of that one call, or if the saved cursor cannot be read back (then the
  rebuilt trigger warns and starts over, and lines repeat). :class:`XComLogCheckpoint` keeps the
  cursor in an XCom of the task instance (key ``mwaaops_log_cursor``), which Airflow clears when
  the next try starts. Without a checkpoint (a synchronous wait in the worker, which no restart
  can interrupt without ending the try) the cursor lives in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from airflow.triggers.base import TriggerEvent

from airflow_provider_mwaaops import compat, config
from airflow_provider_mwaaops.aws.errors import (
    ACCESS_DENIED_CODES,
    access_denied_action,
    describe_aws_error,
    error_code,
    is_throttling,
)
from airflow_provider_mwaaops.aws.rate_limit import TokenBucket, shared_bucket
from airflow_provider_mwaaops.aws.resumable import TaskInstanceRef
from airflow_provider_mwaaops.secrets_masking import redact

__all__ = [
    "CHECKPOINT_XCOM_KEY",
    "CloudWatchLogForwarder",
    "ForwardsCloudWatchLogs",
    "LogCheckpoint",
    "LogLimits",
    "LogSource",
    "XComLogCheckpoint",
    "log_read_budget",
]

#: XCom key under which :class:`XComLogCheckpoint` keeps the cursor.
CHECKPOINT_XCOM_KEY = "mwaaops_log_cursor"
#: A forwarder skips this many calls at most while CloudWatch Logs throttles it.
MAX_THROTTLE_SKIP = 8


@dataclass(frozen=True)
class LogSource:
    """Where a job writes: a log group, its stream(s), and the label that prefixes each line."""

    log_group: str
    log_streams: tuple[str, ...]
    label: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.log_streams, str):
            object.__setattr__(self, "log_streams", (self.log_streams,))
        if not self.log_group or not self.log_streams or not all(self.log_streams):
            raise ValueError(f"a log source needs a log group and at least one stream, got {self!r}")

    def prefix(self, stream: str) -> str:
        """``[label]`` (``[label stream]`` when the source has several streams)."""
        label = self.label or self.log_group
        return f"[{label} {stream}]" if len(self.log_streams) > 1 else f"[{label}]"

    def as_dict(self) -> dict[str, Any]:
        return {"log_group": self.log_group, "log_streams": list(self.log_streams), "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogSource:
        return cls(data["log_group"], tuple(data["log_streams"]), data.get("label"))


@dataclass(frozen=True)
class LogLimits:
    """How much one :meth:`CloudWatchLogForwarder.forward` call writes at most."""

    max_lines_per_poll: int = 500
    max_bytes_per_poll: int = 128 * 1024

    def __post_init__(self) -> None:
        for name in ("max_lines_per_poll", "max_bytes_per_poll"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_lines_per_poll > 9_999:  # GetLogEvents returns 10,000 events at most
            raise ValueError(f"max_lines_per_poll must be below 10000, got {self.max_lines_per_poll}")

    def as_dict(self) -> dict[str, int]:
        return {"max_lines_per_poll": self.max_lines_per_poll, "max_bytes_per_poll": self.max_bytes_per_poll}


class LogCheckpoint(Protocol):
    """Somewhere a forwarder's cursor survives the process (see the module docs)."""

    async def load(self) -> Mapping[str, Any] | None: ...

    async def save(self, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class XComLogCheckpoint:
    """The cursor in an XCom of the task instance (cleared by Airflow when a new try starts)."""

    task_instance: TaskInstanceRef
    key: str = CHECKPOINT_XCOM_KEY

    async def load(self) -> Mapping[str, Any] | None:
        value = await compat.trigger_xcom_get(self.key, **self.task_instance.as_dict())
        return value if isinstance(value, Mapping) else None

    async def save(self, state: Mapping[str, Any]) -> None:
        await compat.trigger_xcom_set(self.key, dict(state), **self.task_instance.as_dict())


@dataclass
class _Cursor:
    """Where one stream was left: CloudWatch's token, and the last timestamp as a fallback."""

    token: str | None = None
    last_ts: int | None = None
    at_last_ts: int = 0  # lines written with timestamp == last_ts
    seen: bool = False  # the stream has existed at some point

    def advance(self, events: Sequence[Mapping[str, Any]]) -> None:
        for event in events:
            ts = int(event.get("timestamp", 0))
            if ts == self.last_ts:
                self.at_last_ts += 1
            else:
                self.last_ts, self.at_last_ts = ts, 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "last_ts": self.last_ts,
            "at_last_ts": self.at_last_ts,
            "seen": self.seen,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Cursor:
        return cls(
            data.get("token"), data.get("last_ts"), int(data.get("at_last_ts", 0)), bool(data.get("seen"))
        )


@dataclass
class _Read:
    """What one stream gave in one call."""

    source: LogSource
    stream: str
    events: list[dict[str, Any]] = field(default_factory=list)
    token: str | None = None
    more: bool = False  # the stream had more new lines than were read


class CloudWatchLogForwarder:
    """Writes the new lines of some CloudWatch log streams to a logger, one call at a time.

    :param sources: where to read.
    :param logger: where to write (a trigger's ``self.log``, an operator's ``self.log``).
    :param limits: lines and bytes per call.
    :param checkpoint: where the cursor survives a restart (None: memory only).
    :param mask: applied to every line before it is written (default: Airflow's secrets masker).
    :param budget: the shared read budget (one token per GetLogEvents call); None: unlimited.
    """

    def __init__(
        self,
        sources: Iterable[LogSource],
        *,
        logger: Any,
        limits: LogLimits | None = None,
        checkpoint: LogCheckpoint | None = None,
        mask: Callable[[str], str] | None = None,
        budget: TokenBucket | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.budget = budget
        self.logger = logger
        self.limits = limits or LogLimits()
        self.checkpoint = checkpoint
        self.mask = mask or redact
        self.cursors: dict[tuple[str, str], _Cursor] = {
            (source.log_group, stream): _Cursor() for source in self.sources for stream in source.log_streams
        }
        #: GetLogEvents calls made so far (for the cost figures in the docs and benchmarks).
        self.api_calls = 0
        #: Lines written so far.
        self.lines_written = 0
        #: Calls dropped while waiting for the read budget (their lines came with a later call).
        self.calls_dropped_waiting = 0
        self._budget_wait: asyncio.Future[None] | None = None
        self._loaded = checkpoint is None
        self._disabled: str | None = None
        self._warned: set[str] = set()
        self._skip_calls = 0
        self._throttled_streak = 0

    # -- the one public operation ----------------------------------------------------------------
    async def forward(self, client: Any, *, final: bool = False) -> int:
        """Write what is new in every source; returns the number of lines written. Never raises.

        ``client`` is a CloudWatch Logs client (aiobotocore). ``final=True`` marks the last call
        after the job ended: it is never skipped for throttling, it goes before non-final calls
        waiting for the read budget, and streams that never appeared are reported.
        """
        try:
            return await self._forward(client, final)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not cost the wait
            self._warn_once(f"unexpected:{type(exc).__name__}", "could not forward log lines: %s", exc)
            return 0

    def stop_waiting(self) -> bool:
        """Drop the running call if it is still waiting for the read budget (it then writes
        nothing and changes no cursor; a later call reads its lines). True if one was dropped."""
        if self._budget_wait is not None and not self._budget_wait.done():
            self._budget_wait.cancel()
            return True
        return False

    @property
    def streams(self) -> int:
        """How many streams a call reads (the tokens it takes from the read budget)."""
        return len(self.cursors)

    @property
    def state(self) -> dict[str, Any]:
        """The cursor of every stream, JSON-serialisable (what a checkpoint keeps)."""
        return {
            "streams": {f"{group}\x1f{stream}": c.as_dict() for (group, stream), c in self.cursors.items()}
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a :attr:`state` saved earlier (unknown streams in it are ignored)."""
        for name, cursor in (state.get("streams") or {}).items():
            group, _, stream = str(name).partition("\x1f")
            if (group, stream) in self.cursors:
                self.cursors[(group, stream)] = _Cursor.from_dict(cursor)

    # -- one call ------------------------------------------------------------------------------------
    async def _forward(self, client: Any, final: bool) -> int:
        if self._disabled:
            return 0
        if self._skip_calls and not final:
            self._skip_calls -= 1
            return 0
        await self._load_checkpoint()
        if not await self._reserve(self.streams, final):
            return 0
        reads = await asyncio.gather(
            *(self._read(client, source, stream) for source in self.sources for stream in source.log_streams)
        )
        done = [read for read in reads if read is not None]
        if self._disabled:
            return 0
        lines, skipped = self._within_limits(done)
        for read in done:
            if read.more and await self._reserve(1, final):
                await self._skip_to_end(client, read)
        save = bool(skipped or any(read.events for read in done) or any(read.more for read in done))
        await _uncancelled(self._commit(lines, save))
        if skipped or any(read.more for read in done):
            self.logger.warning(
                "%s%d log line(s) skipped: more than %d lines or %d bytes arrived since the last look "
                "(the job's full log stays in CloudWatch)",
                "at least " if any(read.more for read in done) else "",
                skipped,
                self.limits.max_lines_per_poll,
                self.limits.max_bytes_per_poll,
            )
        if final:
            self._report_missing_streams()
        return len(lines)

    async def _reserve(self, calls: int, final: bool) -> bool:
        """Wait for ``calls`` tokens of the read budget; False if :meth:`stop_waiting` gave up."""
        if self.budget is None:
            return True
        wait = self._budget_wait = asyncio.ensure_future(self.budget.acquire(calls, priority=final))
        try:
            await wait
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the caller itself is cancelled
            self.calls_dropped_waiting += 1
            return False
        finally:
            self._budget_wait = None
        return True

    async def _commit(self, lines: Sequence[tuple[str, str]], save: bool) -> None:
        """Save the cursor, then write the lines: the two halves of one call's progress."""
        if save:
            await self._save_checkpoint()
        for prefix, message in lines:
            self.logger.info("%s %s", prefix, message)
        self.lines_written += len(lines)

    async def _read(self, client: Any, source: LogSource, stream: str) -> _Read | None:
        """New events of one stream (advancing its cursor), or None after an error."""
        cursor = self.cursors[(source.log_group, stream)]
        request: dict[str, Any] = {
            "logGroupName": source.log_group,
            "logStreamName": stream,
            "startFromHead": True,
            "limit": self.limits.max_lines_per_poll + 1,
        }
        try:
            if cursor.token:
                try:
                    answer = await self._get(client, {**request, "nextToken": cursor.token})
                    events = list(answer.get("events", []))
                except Exception as exc:
                    if error_code(exc) != "InvalidParameterException":
                        raise
                    # An expired or foreign token: continue from the last timestamp instead.
                    answer, events = await self._resume(client, request, cursor)
            else:
                answer, events = await self._resume(client, request, cursor)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._read_failed(source, stream, exc)
            return None
        self._throttled_streak = 0
        cursor.seen = True
        read = _Read(source, stream, list(events), answer.get("nextForwardToken") or cursor.token)
        if len(read.events) > self.limits.max_lines_per_poll:
            read.more = True
        cursor.advance(read.events)
        cursor.token = read.token
        return read

    async def _resume(
        self, client: Any, request: dict[str, Any], cursor: _Cursor
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Events from the start of the stream, or from ``cursor.last_ts`` on without the lines
        already written at that timestamp (the de-duplication a timestamp cursor needs)."""
        if cursor.last_ts is None:
            answer = await self._get(client, request)
            return answer, list(answer.get("events", []))
        answer = await self._get(client, {**request, "startTime": cursor.last_ts})
        events = list(answer.get("events", []))
        written = 0
        while written < min(len(events), cursor.at_last_ts):
            if int(events[written].get("timestamp", 0)) != cursor.last_ts:
                break
            written += 1
        return answer, events[written:]

    async def _get(self, client: Any, request: dict[str, Any]) -> dict[str, Any]:
        self.api_calls += 1
        return await client.get_log_events(**request)

    async def _skip_to_end(self, client: Any, read: _Read) -> None:
        """Move a stream that had more than the limit to its newest line (one call)."""
        cursor = self.cursors[(read.source.log_group, read.stream)]
        request = {"logGroupName": read.source.log_group, "logStreamName": read.stream, "limit": 1}
        try:
            answer = await self._get(client, {**request, "startFromHead": False})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._read_failed(read.source, read.stream, exc)
            return
        cursor.advance(answer.get("events", []))
        cursor.token = answer.get("nextForwardToken") or cursor.token

    def _within_limits(self, reads: Sequence[_Read]) -> tuple[list[tuple[str, str]], int]:
        """(prefix, masked line) to write in timestamp order, and how many lines were skipped."""
        merged = sorted(
            (
                (int(event.get("timestamp", 0)), index, read, event)
                for read in reads
                for index, event in enumerate(read.events)
            ),
            key=lambda item: (item[0], item[1]),
        )
        lines: list[tuple[str, str]] = []
        budget = self.limits.max_bytes_per_poll
        skipped = 0
        for _ts, _index, read, event in merged:
            message = str(event.get("message", "")).rstrip("\n")
            size = len(message.encode("utf-8", "replace"))
            if len(lines) >= self.limits.max_lines_per_poll or (lines and size > budget):
                skipped += 1
                continue
            if size > budget:  # the first line alone is over the budget: cut it
                message = message.encode("utf-8", "replace")[:budget].decode("utf-8", "ignore") + " [cut]"
                size = budget
            budget -= size
            lines.append((read.source.prefix(read.stream), self.mask(message)))
        return lines, skipped

    # -- checkpoint ----------------------------------------------------------------------------------
    async def _load_checkpoint(self) -> None:
        if self._loaded or self.checkpoint is None:
            return
        self._loaded = True
        try:
            state = await self.checkpoint.load()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._warn_once(
                "checkpoint-load", "could not read the saved log cursor (lines may repeat): %s", exc
            )
            return
        if state:
            self.restore(state)

    async def _save_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        try:
            await self.checkpoint.save(self.state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._warn_once(
                "checkpoint-save",
                "could not save the log cursor (after a triggerer restart lines may repeat): %s",
                exc,
            )

    # -- errors ----------------------------------------------------------------------------------------
    def _read_failed(self, source: LogSource, stream: str, exc: BaseException) -> None:
        code = error_code(exc)
        where = f"{source.log_group}:{stream}"
        if code == "ResourceNotFoundException":
            return  # not written yet; _report_missing_streams speaks at the end
        action = access_denied_action(exc)
        if action or code in ACCESS_DENIED_CODES:
            self._disabled = "access denied"
            self._warn_once(
                "denied",
                "cannot read the job's log lines (%s): %s; grant %s to see them here. The wait goes on.",
                where,
                describe_aws_error(exc),
                action or "logs:GetLogEvents",
            )
            return
        if is_throttling(exc):
            self._throttled_streak += 1
            self._skip_calls = min(MAX_THROTTLE_SKIP, 2 ** (self._throttled_streak - 1))
            self._warn_once(
                "throttled", "CloudWatch Logs is throttling the log reads; lines will arrive late: %s", exc
            )
            return
        described = describe_aws_error(exc)
        self._warn_once(f"error:{described}", "could not read log lines from %s: %s", where, described)

    def _report_missing_streams(self) -> None:
        for (group, stream), cursor in self.cursors.items():
            if not cursor.seen:
                self._warn_once(
                    f"missing:{group}:{stream}",
                    "no log stream %s in %s: the job wrote nothing there, or the log group is elsewhere",
                    stream,
                    group,
                    level=logging.INFO,
                )

    def _warn_once(self, key: str, message: str, *args: Any, level: int = logging.WARNING) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        self.logger.log(level, message, *args)


async def _uncancelled(work: Awaitable[None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile (then re-raise).

    A triggerer that stops cancels its triggers; the cursor save and the write of the lines it
    covers must not be cut apart (a saved cursor without its lines loses them, a rebuilt trigger
    that loads the cursor before the save ends repeats them), so cancellation waits for both.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.wait({task})
        raise


def log_read_budget(client: Any) -> TokenBucket | None:
    """The process's CloudWatch Logs read budget for ``client``'s Region endpoint, None if
    ``[mwaaops] log_reads_per_second`` is 0 (unlimited).

    Keyed by Region and endpoint only, not by account (knowing the account would cost an STS
    call): forwarders of different accounts in one triggerer share a budget, which is stricter
    than the quota needs, never looser.
    """
    rate = config.log_reads_per_second()
    if rate == 0:
        return None
    meta = getattr(client, "meta", None)
    key = ("logs", getattr(meta, "region_name", None), getattr(meta, "endpoint_url", None))
    return shared_bucket(key, rate)


class ForwardsCloudWatchLogs:
    """Mixin for an ``AwsPollingTrigger`` that forwards its job's CloudWatch lines.

    The trigger calls :meth:`init_log_forwarding` in ``__init__``, adds :meth:`log_forwarding_kwargs`
    to its ``trigger_kwargs`` and implements :meth:`log_sources` (None while they are not known yet,
    e.g. before the job run exists). Forwarding then runs as the trigger's side work after every
    status check and once more, bounded, when the job is final; all forwarders of the process
    share one read budget (:func:`log_read_budget`). Deferred (in the triggerer), the
    cursor is checkpointed in an XCom of ``task_instance``; waited on synchronously, it stays in
    memory.
    """

    #: The logs client's service name.
    logs_service: ClassVar[str] = "logs"

    forward_logs: bool
    log_limits: LogLimits
    log_task_instance: TaskInstanceRef | None

    def init_log_forwarding(
        self,
        forward_logs: bool,
        log_limits: Mapping[str, Any] | None,
        task_instance: Mapping[str, Any] | None,
    ) -> None:
        """Set the forwarding arguments (``log_limits``: :class:`LogLimits` fields; ``task_instance``:
        a ``TaskInstanceRef`` dict, whose XCom keeps the cursor when deferred)."""
        self.forward_logs = bool(forward_logs)
        self.log_limits = LogLimits(**(log_limits or {}))
        self.log_task_instance = TaskInstanceRef.from_dict(task_instance) if task_instance else None
        self._log_forwarder: CloudWatchLogForwarder | None = None
        self._in_triggerer = False

    def log_forwarding_kwargs(self) -> dict[str, Any]:
        """The forwarding arguments, for the trigger's ``trigger_kwargs``."""
        return {
            "forward_logs": self.forward_logs,
            "log_limits": self.log_limits.as_dict(),
            "task_instance": self.log_task_instance.as_dict() if self.log_task_instance else None,
        }

    def log_sources(self) -> Sequence[LogSource] | None:
        """The job's log sources, or None while they are not known."""
        raise NotImplementedError

    async def run(self: Any) -> AsyncIterator[TriggerEvent]:
        # Only the triggerer calls run(); a synchronous wait calls wait() directly.
        self._in_triggerer = True
        async for event in super().run():  # type: ignore[misc]
            yield event

    async def after_check(self: Any, client: Any, result: dict[str, Any] | None) -> None:
        if not self.forward_logs:
            return
        logs = await self.client(self.logs_service)
        forwarder = self._log_forwarder
        if forwarder is None:
            sources = self.log_sources()
            if not sources:
                return
            checkpoint = None
            if self._in_triggerer and self.log_task_instance is not None:
                checkpoint = XComLogCheckpoint(self.log_task_instance)
            forwarder = self._log_forwarder = CloudWatchLogForwarder(
                sources,
                logger=self.log,
                limits=self.log_limits,
                checkpoint=checkpoint,
                budget=log_read_budget(logs),
            )
        await forwarder.forward(logs, final=result is not None)

    def side_work_ending(self) -> None:
        # A call still waiting for the read budget would only hold up the final one.
        if self._log_forwarder is not None:
            self._log_forwarder.stop_waiting()

    def final_side_work_bound(self: Any) -> float:
        # The final call may wait for its tokens: the bound grows by that wait, so the last read
        # is not cut off when many jobs end together.
        bound = float(super().final_side_work_bound())  # type: ignore[misc]
        forwarder = self._log_forwarder
        if forwarder is not None and forwarder.budget is not None:
            bound += forwarder.budget.wait_estimate(forwarder.streams + 1, priority=True)
        return bound
