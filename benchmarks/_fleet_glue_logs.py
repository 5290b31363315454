"""The Glue log-forwarding workload of ``trigger_fleet.py`` (``--service glue-logs``).

N Glue job runs that each write ``--log-lines-per-second`` lines to their output stream (and a few
to their error stream) while RUNNING, waited on with log forwarding on: ours
(``GlueJobRunTrigger(forward_logs=True)``) against the amazon provider's
``GlueJobCompleteTrigger(verbose=True)``, which reads both streams at every poll.

Emulator side (imported by ``_fleet_emulator.py``):

* :func:`setup` creates one job (MaxConcurrentRuns N) whose runs are parked in STARTING (no lines)
  and starts N of them. A run's FIRST GetJobRun makes it RUNNING from that moment for
  ``hold`` + uniform(0, ``spread``) seconds, then it SUCCEEDS (:func:`install_hold`): every
  implementation sees the same amount of log per wait however long it takes to start.
* The lines are written by the emulator's own Glue log extension
  (``testing/extensions/glue_job_logs.py``, the documented job-run script: ``line_template`` at
  ``lines_per_second``, ``error_lines``). It writes lazily: every CloudWatch Logs read first
  writes, under one lock, every line of every run that is due by then, with the timestamp at which
  the run wrote it. So no reader can see a line late or miss one, whatever the load (the lines'
  times come from the script, not from when the emulator got to write them), and no background
  thread competes with the measured process. The cost lands in the emulator process; it is
  reported per run (emulator CPU seconds) so that a saturated emulator shows.
* :func:`report` writes every line the runs wrote (read back from moto's CloudWatch Logs) to a
  file, for the exactly-once check.

Child side (imported by ``_fleet_child.py``): :func:`make_trigger`, and :func:`capture_lines` /
:func:`write_delivered`, which keep every message the triggers log (a structlog processor on
Airflow 3, a root handler on Airflow 2) and write the marked lines found in them to a file.
Our trigger's log cursor is checkpointed as in a triggerer, except that the XCom write is
replaced by :class:`JsonMemoryCheckpoint` (JSON-encodes the cursor, keeps it in memory): the
benchmark has no triggerer supervisor to send an XCom to, so the IPC part of that cost is missing.

Orchestrator side: :func:`compare` (exactly-once check) and :data:`COLUMNS` (the table).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import resource
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SERVICE = "glue-logs"
JOB = "fleet-glue-logs"
#: A run stays STARTING this long unless polled (then it is RUNNING from its first poll).
PARKED_SECONDS = 86_400.0
#: Every line the runs write starts with this; the rest makes each line unique.
MARK = "fleetlog"
LINE = re.compile(MARK + r" (\S+) (out|err) (\d+)")
#: About 130 bytes, like a Spark / GlueContext INFO line.
OUTPUT_TEMPLATE = (
    MARK + " {run_id} out {n:06d} INFO GlueContext: wrote batch {n} of {job_name} to "
    "s3://fleet-bench/out/part-{n:05d}.snappy.parquet"
)
ERROR_TEMPLATE = MARK + " r{index:05d} err {k} WARN GlueLogger: retrying S3 read of s3://fleet-bench/in/{k}"
LOG_GROUPS = ("/aws-glue/jobs/output", "/aws-glue/jobs/error")
ACCOUNT_ID = "123456789012"  # moto's default account
#: The CloudWatch Logs reads a log relay may make (counted together as "log reads").
LOG_ACTIONS = ("GetLogEvents", "FilterLogEvents", "DescribeLogStreams")

_HOLD: dict[str, Any] = {"hold": 25.0, "spread": 5.0, "held": set(), "installed": False}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- emulator side ---------------------------------------------------------------------------------
def install_hold() -> None:
    """A run of :data:`JOB` becomes RUNNING at its first GetJobRun, for hold + U(0, spread) s.

    Wraps moto's ``GlueBackend.get_job_run`` (under our emulator's own wrapper), which every
    GetJobRun reaches. ``_fleet_emulator``'s Glue hold may run before this one on the same first
    poll; whichever runs last sets the same kind of timeline (RUNNING from now, hold + U after),
    so the order does not matter.
    """
    if _HOLD["installed"]:
        return
    from moto.glue.models import GlueBackend

    original = GlueBackend.get_job_run

    def get_job_run(self: Any, name: str, run_id: str) -> Any:
        if name == JOB and run_id not in _HOLD["held"]:
            _run_from_now(self, run_id, time.time())
        return original(self, name, run_id)

    GlueBackend.get_job_run = get_job_run  # type: ignore[method-assign]
    _HOLD["installed"] = True


def _run_from_now(backend: Any, run_id: str, now: float) -> None:
    import dataclasses

    from airflow_provider_mwaaops.testing.extensions.glue_job_runs import GLUE_LOCK, life_of

    with GLUE_LOCK:
        if run_id in _HOLD["held"]:
            return
        _HOLD["held"].add(run_id)
        run = next((r for r in backend.jobs[JOB].job_runs if r.job_run_id == run_id), None)
        life = life_of(run) if run is not None else None
        if life is None or life.started_at is None:
            return
        life.script = dataclasses.replace(
            life.script,
            starting_seconds=max(0.0, now - life.started_at.timestamp()),
            running_seconds=_HOLD["hold"] + random.uniform(0.0, _HOLD["spread"]),
        )
        life.log_next_at = None  # computed while parked (next due: its Timeout); due again now


def setup(
    emulator: Any,
    counters: Any,
    *,
    n: int,
    tag: str,
    arn_file: str,
    hold: float,
    spread: float,
    lines_per_second: float,
    error_lines: int,
) -> dict[str, Any]:
    """Reset, create the job and N parked runs (ids to ``arn_file``); counters start empty."""
    emulator.reset()
    counters.reset()
    install_hold()
    _HOLD.update(hold=hold, spread=spread, held=set())
    glue = emulator.client("glue")
    glue.create_job(
        Name=JOB,
        Role="arn:aws:iam::123456789012:role/fleet-benchmark",
        Command={"Name": "glueetl", "ScriptLocation": "s3://fleet/etl.py"},
        ExecutionProperty={"MaxConcurrentRuns": n},
    )
    emulator.glue.script_job(
        JOB,
        starting_seconds=PARKED_SECONDS,
        running_seconds=None,
        lines_per_second=lines_per_second,
        line_template=OUTPUT_TEMPLATE,
    )
    # Each run's error lines (written at the same rate, so right after it starts RUNNING).
    emulator.glue.script_next_runs(
        JOB,
        *(
            {"error_lines": [ERROR_TEMPLATE.format(index=index, k=k) for k in range(error_lines)]}
            for index in range(n)
        ),
    )

    run_ids, statuses = start_fleet_runs(glue, JOB, n, tag, counters, arn_file)
    _HOLD["cpu_at_setup"] = _cpu_seconds()
    return {"arn_file": arn_file, "n": len(run_ids), "statuses": dict(statuses)}  # all STARTING


def written_lines(emulator: Any) -> list[str]:
    """Every marked line in the runs' output and error streams (after writing what is due)."""
    from moto.logs.models import logs_backends

    from airflow_provider_mwaaops.testing.extensions.glue_job_logs import flush

    logs = logs_backends[ACCOUNT_ID][emulator.region_name]
    flush(logs)
    lines = []
    for group_name in LOG_GROUPS:
        group = logs.groups.get(group_name)
        for stream in group.streams.values() if group is not None else ():
            lines += [event.message for event in stream.events if event.message.startswith(MARK)]
    return lines


def report(emulator: Any, written_file: str) -> dict[str, Any]:
    """Write the lines the runs wrote to ``written_file``; the emulator's CPU since setup."""
    lines = written_lines(emulator)
    Path(written_file).write_text("\n".join(lines) + "\n")
    return {"written": len(lines), "emulator_cpu_s": _cpu_seconds() - _HOLD.get("cpu_at_setup", 0.0)}


def command(request: Mapping[str, Any], emulator: Any, counters: Any) -> dict[str, Any]:
    """The emulator's ``glue-logs-setup`` and ``glue-logs-report`` commands."""
    params = {key: value for key, value in request.items() if key != "cmd"}
    if request["cmd"] == "glue-logs-setup":
        return setup(emulator, counters, **params)
    if request["cmd"] == "glue-logs-report":
        return report(emulator, **params)
    return {"error": f"unknown command {request['cmd']!r}"}


# -- child side --------------------------------------------------------------------------------------
class JsonMemoryCheckpoint:
    """Stands in for ``XComLogCheckpoint`` in the benchmark: JSON-encodes the cursor as the XCom
    write would, and keeps it in memory (there is no triggerer supervisor to send it to)."""

    store: dict[str, str] = {}

    def __init__(self, task_instance: Any, key: str = "mwaaops_log_cursor") -> None:
        self.name = f"{task_instance.task_id}/{key}"

    async def load(self) -> Mapping[str, Any] | None:
        raw = self.store.get(self.name)
        return None if raw is None else json.loads(raw)

    async def save(self, state: Mapping[str, Any]) -> None:
        self.store[self.name] = json.dumps(dict(state))


def make_trigger(impl: str, run_id: str, waiter_delay: float, max_attempts: int) -> Any:
    """Ours with log forwarding on (as the operator builds it), or the amazon one, verbose.

    ``ours-nologs`` is ours with forwarding off: the same runs and lines, status polls only (the
    baseline for what forwarding costs and for the unchanged poll cadence).
    """
    if impl == "ours-nologs":
        from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger

        return GlueJobRunTrigger(
            job_name=JOB, job_run_id=run_id, waiter_delay=waiter_delay, forward_logs=False
        )
    if impl == "ours":
        from airflow_provider_mwaaops.log import cloudwatch
        from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger

        cloudwatch.XComLogCheckpoint = JsonMemoryCheckpoint  # type: ignore[misc, assignment]
        return GlueJobRunTrigger(
            job_name=JOB,
            job_run_id=run_id,
            waiter_delay=waiter_delay,
            forward_logs=True,
            task_instance={"dag_id": "fleet", "task_id": run_id, "run_id": "bench", "map_index": -1},
        )
    if impl == "amazon":
        from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger

        return GlueJobCompleteTrigger(
            job_name=JOB,
            run_id=run_id,
            verbose=True,
            waiter_delay=int(waiter_delay),
            waiter_max_attempts=max_attempts,
            aws_conn_id="aws_default",
        )
    raise ValueError(f"no {impl!r} implementation for {SERVICE}")


#: Every message logged while the fleet runs (only the list append happens in the measured loop).
_CAPTURED: list[str] = []


def capture_lines() -> None:
    """Keep every log message the triggers emit, as it would reach the task log."""
    import logging

    try:
        import structlog
    except ImportError:  # Airflow 2 does not use it
        structlog = None  # type: ignore[assignment]
    processors = list(structlog.get_config().get("processors") or []) if structlog else []
    names = [getattr(p, "__name__", "") for p in processors]
    if structlog and "positional_arguments_formatter" in names:  # Airflow 3: triggers log through structlog

        def keep(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
            _CAPTURED.append(str(event.get("event", "")))
            return event

        processors.insert(names.index("positional_arguments_formatter") + 1, keep)
        structlog.configure(processors=processors)
        return

    class Keep(logging.Handler):  # Airflow 2: stdlib logging
        def emit(self, record: logging.LogRecord) -> None:
            _CAPTURED.append(record.getMessage())

    logging.getLogger().addHandler(Keep(logging.INFO))


def write_delivered(path: Path) -> None:
    """The marked lines found in the captured messages, one per line (done after the fleet)."""
    with open(path, "w") as out:
        for message in _CAPTURED:
            if MARK in message:
                for match in LINE.finditer(message):
                    out.write(match.group(0) + "\n")


# -- orchestrator side -------------------------------------------------------------------------------
def line_keys(lines: Iterable[str]) -> Counter[str]:
    """``fleetlog <id> <out|err> <n>`` of every marked line in ``lines`` (several may share one
    message, as the amazon trigger logs them), counted."""
    keys: Counter[str] = Counter()
    for line in lines:
        keys.update(match.group(0) for match in LINE.finditer(line))
    return keys


def compare(written: Iterable[str], delivered: Iterable[str]) -> dict[str, int]:
    """Exactly-once check: every written line delivered once, none twice, nothing invented."""
    wrote, got = line_keys(written), line_keys(delivered)
    return {
        "lines_written": sum(wrote.values()),
        "lines_delivered": sum(got.values()),
        "lines_once": sum(1 for key in wrote if got.get(key) == 1),
        "lines_missing": sum(1 for key in wrote if key not in got),
        "lines_repeated": sum(count - 1 for key, count in got.items() if count > 1),
        "lines_unknown": sum(count for key, count in got.items() if key not in wrote),
    }


def per_minute(actions: Mapping[str, int], seconds: float) -> dict[str, float]:
    """API calls per minute of the fleet's wall-clock time, per action."""
    return {action: count * 60.0 / seconds for action, count in actions.items()} if seconds > 0 else {}


def summarise(row: dict[str, Any], child: Mapping[str, Any], rundir: Path, server: Mapping[str, Any]) -> None:
    """Add this workload's figures to a run's row (in place)."""
    written = (rundir / "written.txt").read_text().splitlines()
    delivered_file = rundir / "delivered.txt"
    delivered = delivered_file.read_text().splitlines() if delivered_file.exists() else []
    row.update(compare(written, delivered))
    seconds = child["all_events"] - child["fleet_start"]
    rates = per_minute(server["actions"], seconds)
    row["calls_per_min"] = rates
    row["getjobrun_per_min"] = rates.get("GetJobRun", 0.0)
    row["logs_per_min"] = sum(rate for action, rate in rates.items() if action in LOG_ACTIONS)
    row["other_per_min"] = sum(
        rate for action, rate in rates.items() if action != "GetJobRun" and action not in LOG_ACTIONS
    )
    status_polls = server["actions"].get("GetJobRun", 0)
    log_reads = sum(count for action, count in server["actions"].items() if action in LOG_ACTIONS)
    row["log_reads_per_poll"] = log_reads / status_polls if status_polls else None
    row["child_cpu_s"] = child.get("process_cpu_seconds")
    row["emulator_cpu_s"] = server.get("emulator_cpu_s")
    row["fleet_s"] = seconds
    gaps = poll_gaps(record["polls"] for record in server["executions"].values())
    row["poll_gap_p50_s"] = _percentile(gaps, 50)
    row["poll_gap_p95_s"] = _percentile(gaps, 95)


def poll_gaps(polls: Iterable[list[float]]) -> list[float]:
    """Every interval between one run's successive GetJobRuns, pooled over the runs.

    Its median is the cadence; the mean over a run's whole wait (``poll every s``) also counts
    the amazon trigger's back-to-back first two GetJobRuns (log group lookup, then first poll).
    """
    return [later - earlier for times in polls for earlier, later in itertools.pairwise(times)]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


#: The summary table of this workload (see ``trigger_fleet.table``).
COLUMNS: list[tuple[str, str | tuple[str, str], str]] = [
    ("impl", "impl", "s"),
    ("N", "n", "d"),
    ("ok", "completed", "d"),
    ("child CPU s", "child_cpu_s", ".1f"),
    ("GetJobRun /min", "getjobrun_per_min", ".0f"),
    ("log reads /min", "logs_per_min", ".0f"),
    ("other calls /min", "other_per_min", ".0f"),
    ("log reads per GetJobRun", "log_reads_per_poll", ".2f"),
    ("lag p50/p99 start-up ms", ("lag_startup_p50_ms", "lag_startup_p99_ms"), ".0f"),
    ("lag p50/p99 steady ms", ("lag_steady_p50_ms", "lag_steady_p99_ms"), ".0f"),
    ("poll every s", "poll_interval_s", ".2f"),
    ("poll gap p50/p95 s", ("poll_gap_p50_s", "poll_gap_p95_s"), ".2f"),
    ("detect mean/p99 s", ("detect_mean_s", "detect_p99_s"), ".2f"),
    ("lines written", "lines_written", "d"),
    ("delivered once", "lines_once", "d"),
    ("repeated", "lines_repeated", "d"),
    ("missing", "lines_missing", "d"),
    ("emulator CPU s", "emulator_cpu_s", ".1f"),
    ("fleet s", "fleet_s", ".1f"),
    ("load", "load_1m", ".1f"),
]


def verdicts(rows: Iterable[Mapping[str, Any]], waiter_delay: float) -> list[str]:
    """Per row: poll cadence against ``waiter_delay`` and the exactly-once check (ours must pass)."""
    lines = []
    for row in rows:
        interval = row.get("poll_gap_p50_s")
        kept = interval is not None and abs(interval / waiter_delay - 1) <= 0.05
        exact = (
            row.get("lines_written")
            and row.get("lines_once") == row.get("lines_written")
            and not row.get("lines_repeated")
            and not row.get("lines_unknown")
        )
        must = row["impl"] == "ours"
        if row["impl"] == "ours-nologs":
            lines.append(
                f"ours-nologs N={row['n']}: GetJobRun gap median {fmt_s(interval)} s (no log forwarding)"
            )
            continue
        lines.append(
            f"{row['impl']} N={row['n']}: GetJobRun gap median {fmt_s(interval)} s "
            f"(waiter_delay {waiter_delay:g} s, within 5%: {'yes' if kept else 'NO'}); "
            f"{row.get('lines_once')} of {row.get('lines_written')} lines delivered exactly once, "
            f"{row.get('lines_repeated')} repeated, {row.get('lines_missing')} missing, "
            f"{row.get('lines_unknown')} unknown"
            + (f": exactly once {'met' if exact else 'NOT met'}" if must else "")
        )
    return lines


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def start_fleet_runs(
    glue: Any, job: str, n: int, tag: str, counters: Any, arn_file: str
) -> tuple[list[str], Counter[str]]:
    """Start ``n`` runs of ``job`` (8 at a time), count their states, reset the call counters (the
    setup's calls are not the triggers') and write the run ids to ``arn_file``."""

    def start(index: int) -> str:
        return glue.start_job_run(JobName=job, Arguments={"--fleet": f"{tag}-{index:05d}"})["JobRunId"]

    with ThreadPoolExecutor(8) as pool:
        run_ids = list(pool.map(start, range(n)))
    statuses: Counter[str] = Counter()
    for page in glue.get_paginator("get_job_runs").paginate(JobName=job):
        statuses.update(run["JobRunState"] for run in page["JobRuns"])
    with counters.lock:
        counters.actions.clear()
    with open(arn_file, "w") as out:
        out.write("\n".join(run_ids))
    return run_ids, statuses
