"""A Glue job run's output and error lines in the emulator's CloudWatch Logs, as Glue writes them.

Where the lines go (AWS pages):

- ``LogGroupName`` of a run is ``/aws-glue/jobs``, or ``/aws-glue/python-jobs`` for Python shell
  jobs (JobRun LogGroupName: "This name can be /aws-glue/jobs/"; the sample Python shell JobRun in
  "Repairing and resuming a workflow run" has ``/aws-glue/python-jobs``).
- Output lines go to ``<LogGroupName>/output`` and error lines to ``<LogGroupName>/error``, in a
  stream named after the run id ("Logging for AWS Glue jobs": stdout/stderr in
  /aws-glue/jobs/output, system and Glue-logger lines in /aws-glue/jobs/error; "Viewing logs":
  filter the group by the job run ID). ``--custom-logGroup-prefix`` replaces ``/aws-glue/jobs``
  (same page); AWS does not say what LogGroupName then reports: here the prefix, so that
  ``LogGroupName + "/output"`` is always where the lines are.
- With continuous logging (``--enable-continuous-cloudwatch-log`` = ``true``, Glue 4.0 and
  earlier), every line also goes to the driver stream ``<--continuous-log-logStreamPrefix><run id>``
  of ``--continuous-log-logGroup`` (default ``/aws-glue/jobs/logs-v2``) ("Enabling continuous
  logging"; "Special parameters used by AWS Glue"). Executor and progress-bar streams, and
  ``--custom-logStream-prefix``, are not emulated.

When: a run writes its lines while RUNNING, at the times its script gives (see
:class:`~.glue_scripts.JobRunScript`), and a FAILED / ERROR / TIMEOUT run writes its ErrorMessage
to the error stream as it ends. Nothing runs in the background: every CloudWatch Logs read
(GetLogEvents, FilterLogEvents, DescribeLogStreams) first writes the lines that are due by then,
with the timestamps at which the run wrote them, so a reader sees exactly what had been written
by the time it reads, and a follower sees the lines arrive. Groups are created when first
needed; a run's streams exist from its first read after it started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from moto.logs.models import LogsBackend

from airflow_provider_mwaaops.testing.extensions._patching import wrap_method
from airflow_provider_mwaaops.testing.extensions.glue_job_runs import (
    GLUE_LOCK,
    RunLife,
    life_of,
    log_group_name,
    settle,
)

CONTINUOUS_LOG_GROUP = "/aws-glue/jobs/logs-v2"
#: Generated lines (line_template) are written at this rate when the script names none.
DEFAULT_TEMPLATE_RATE = 1.0
#: Listed lines of a run that runs until stopped, when the script names no rate.
DEFAULT_OPEN_ENDED_RATE = 2.0
_PATCH = "mwaaops.glue.logs"


def destinations(life: RunLife, run_id: str) -> dict[str, list[tuple[str, str]]]:
    """``{"output"|"error": [(log group, stream), ...]}`` for a run."""
    group = log_group_name(life.job, life.effective_arguments)
    result = {"output": [(f"{group}/output", run_id)], "error": [(f"{group}/error", run_id)]}
    arguments = life.effective_arguments
    if arguments.get("--enable-continuous-cloudwatch-log", "").lower() == "true":
        continuous = arguments.get("--continuous-log-logGroup") or CONTINUOUS_LOG_GROUP
        stream = arguments.get("--continuous-log-logStreamPrefix", "") + run_id
        for targets in result.values():
            targets.append((continuous, stream))
    return result


# -- when each line is due ---------------------------------------------------------------------------
class LineSchedule:
    """The lines of one kind (output or error) a run writes, with the moment each is due."""

    def __init__(self, life: RunLife, kind: str, run_id: str):
        self.life = life
        self.run_id = run_id
        window = life.running_window()
        self.start = window[0] if window else None
        #: lines stop when the run stops running (its end, a stop request or its Timeout)
        self.cutoff = window[1] if window else None
        script = life.script
        self.listed = script.output_lines if kind == "output" else script.error_lines
        self.template = script.line_template if kind == "output" else None
        if self.template is not None:
            self.count: int | None = None
            self.offset, self.step = 0.0, 1.0 / (script.lines_per_second or DEFAULT_TEMPLATE_RATE)
        else:
            self.count = len(self.listed)
            self.offset, self.step = self._interval(self.count)

    def _interval(self, count: int) -> tuple[float, float]:
        """(offset of the first line, seconds between lines) for ``count`` listed lines."""
        script = self.life.script
        if script.lines_per_second:
            return 0.0, 1.0 / script.lines_per_second
        if script.running_seconds is None:
            return 0.0, 1.0 / DEFAULT_OPEN_ENDED_RATE
        step = script.running_seconds / (count + 1)
        return step, step

    def moment(self, index: int) -> datetime | None:
        """When line ``index`` is written; None if the run never writes it."""
        if self.start is None or (self.count is not None and index >= self.count):
            return None
        moment = self.start + timedelta(seconds=self.offset + index * self.step)
        return None if self.cutoff is not None and moment >= self.cutoff else moment

    def due(self, until: datetime, first: int) -> Iterator[tuple[int, datetime, str]]:
        """Lines ``first``, ``first + 1``, ... that are due by ``until``, with their times."""
        index = first
        while (moment := self.moment(index)) is not None and moment <= until:
            yield index, moment, self._message(index)
            index += 1

    def _message(self, index: int) -> str:
        if self.template is not None:
            job_name = self.life.job.name if self.life.job is not None else ""
            return self.template.format(n=index, job_name=job_name, run_id=self.run_id)
        return self.listed[index]


def _final_line(life: RunLife, until: datetime) -> tuple[datetime, str] | None:
    """The ErrorMessage a failed run writes to its error stream as it ends."""
    ended = life.ended_at(until)
    if ended is None or life.forced is not None or life.started_at is None:
        return None
    message = life.error_message(until)
    return (ended, message) if message else None


# -- writing ------------------------------------------------------------------------------------------
def _pending(life: RunLife, run_id: str, until: datetime) -> dict[str, list[tuple[datetime, str]]]:
    """New lines per kind, ``(due, message)``; advances the run's cursors and its next due time."""
    pending: dict[str, list[tuple[datetime, str]]] = {"output": [], "error": []}
    upcoming: list[datetime] = []
    for kind in ("output", "error"):
        schedule = LineSchedule(life, kind, run_id)
        written = life.log_cursor.get(kind, 0)
        for index, moment, message in schedule.due(until, written):
            pending[kind].append((moment, message))
            written = index + 1
        life.log_cursor[kind] = written
        following = schedule.moment(written)
        if following is not None:
            upcoming.append(following)
    ended = life.ended_at(until)
    if ended is not None:
        final = _final_line(life, until)
        if final is not None and not life.log_cursor.get("final"):
            pending["error"].append(final)
            life.log_cursor["final"] = 1
    else:
        natural_end = life.natural_end()[0]
        if natural_end is not None:
            upcoming.append(natural_end)
    # Nothing new can be due before the next line or the end (a stop only makes lines fewer).
    life.log_next_at = min(upcoming, default=None)
    life.log_done = ended is not None
    return pending


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def write_run_lines(logs: LogsBackend, run: Any, until: datetime) -> None:
    """Write the lines of ``run`` that are due by ``until`` and not written yet."""
    life = life_of(run)
    if life is None or life.forced is not None or life.started_at is None or life.started_at > until:
        return
    if life.log_done or (life.log_next_at is not None and life.log_next_at > until and life.stop_at is None):
        return
    targets = destinations(life, run.job_run_id)
    pending = _pending(life, run.job_run_id, until)
    by_stream: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for kind, lines in pending.items():
        for target in targets[kind]:
            by_stream.setdefault(target, []).extend(lines)
    for (group, stream), stream_lines in by_stream.items():
        logs.ensure_log_group(group)
        logs.ensure_log_stream(group, stream)
        if stream_lines:
            ordered = sorted(stream_lines, key=lambda line: line[0])
            events = [{"timestamp": _millis(moment), "message": text} for moment, text in ordered]
            logs.put_log_events(group, stream, events)


def flush(logs: LogsBackend, now: datetime | None = None) -> None:
    """Write every due line of the Glue job runs in the same account and Region as ``logs``."""
    from moto.glue.models import glue_backends

    account = glue_backends.get(logs.account_id)
    if account is None or logs.region_name not in account:
        return
    glue = account[logs.region_name]
    with GLUE_LOCK:
        now = settle(glue, now)
        for job in list(glue.jobs.values()):
            for run in list(job.job_runs):
                write_run_lines(logs, run, now)


def _flushing(original: Callable[..., Any]) -> Callable[..., Any]:
    def read(self: LogsBackend, *args: Any, **kwargs: Any) -> Any:
        flush(self)
        return original(self, *args, **kwargs)

    return read


def install() -> None:
    """CloudWatch Logs reads see the Glue lines due by the time they are made."""
    for name in ("get_log_events", "filter_log_events", "describe_log_streams"):
        wrap_method(LogsBackend, name, _PATCH, _flushing)
