"""What an emulated Glue job run does: how long it takes, how it ends, what it logs.

A real job run executes a script; the emulator's runs follow a :class:`JobRunScript` instead, so
tests can make a run succeed, fail with a given ErrorMessage, time out, hang until it is stopped,
or log lines at a given rate. A run's script is assembled when the run starts, each layer
overriding the fields it names:

1. the emulator's defaults (:data:`DEFAULT_SCRIPT`, or ``aws_emulator.glue.set_defaults()``);
2. the job's script (``aws_emulator.glue.script_job()``);
3. the next queued script of the job (``aws_emulator.glue.script_next_runs()``), used by one run;
4. the run's own ``--mwaaops-emulator`` argument (:data:`SCRIPT_ARGUMENT`), a JSON object of
   fields, taken from the run's effective arguments: the job's DefaultArguments, the StartJobRun
   (or trigger action) Arguments, then the job's NonOverridableArguments.

Scripts live in the Glue backend of their account and Region, so the emulator's ``reset()``
(and the ``aws_emulator`` fixture, before every test) drops them with everything else.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

#: The job argument that scripts one run, as in ``{"--mwaaops-emulator": json.dumps({...fields...})}``.
SCRIPT_ARGUMENT = "--mwaaops-emulator"
#: States a script may end a run in. STOPPED comes from BatchStopJobRun, WAITING from queuing.
OUTCOMES = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "ERROR"})
#: ErrorMessage of a scripted FAILED / ERROR run that names none. Not an AWS text: a real run's
#: message comes from its script (an exception) or from Glue, and AWS lists no generic one.
DEFAULT_FAILURE_MESSAGE = "Job run failed as scripted by the mwaaops emulator (no error_message given)"


class ScriptError(ValueError):
    """A script names an unknown field or an impossible value."""


@dataclasses.dataclass(frozen=True)
class JobRunScript:
    """One job run's behaviour. Durations are seconds of wall-clock time.

    The run is STARTING for ``starting_seconds``, RUNNING for ``running_seconds`` (``None``: until
    BatchStopJobRun or its Timeout), then ends in ``outcome``. BatchStopJobRun makes it STOPPING
    for ``stopping_seconds``, then STOPPED. While RUNNING it writes ``output_lines`` and
    ``error_lines`` (each list on its own) at ``lines_per_second``, or spread evenly over
    ``running_seconds`` when no rate is given; with ``line_template`` it writes generated output
    lines (``{n}``, ``{job_name}``, ``{run_id}``) at ``lines_per_second`` for as long as it runs.
    """

    starting_seconds: float = 0.5
    running_seconds: float | None = 1.5
    outcome: str = "SUCCEEDED"
    error_message: str | None = None
    stopping_seconds: float = 0.5
    output_lines: tuple[str, ...] = ()
    error_lines: tuple[str, ...] = ()
    lines_per_second: float | None = None
    line_template: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ScriptError(f"outcome must be one of {sorted(OUTCOMES)}, not {self.outcome!r}")
        for name in ("starting_seconds", "stopping_seconds"):
            _check_seconds(name, getattr(self, name))
        if self.running_seconds is not None:
            _check_seconds("running_seconds", self.running_seconds)
        if self.lines_per_second is not None and not self.lines_per_second > 0:
            raise ScriptError(f"lines_per_second must be > 0, not {self.lines_per_second!r}")
        for name in ("output_lines", "error_lines"):
            lines = getattr(self, name)
            if isinstance(lines, str) or not all(isinstance(line, str) for line in lines):
                raise ScriptError(f"{name} must be a list of strings")
            object.__setattr__(self, name, tuple(lines))

    @property
    def failure_message(self) -> str | None:
        """ErrorMessage of the run when it ends in ``outcome``."""
        if self.error_message is not None:
            return self.error_message
        return DEFAULT_FAILURE_MESSAGE if self.outcome in ("FAILED", "ERROR") else None

    def merged(self, fields: Mapping[str, Any]) -> JobRunScript:
        return dataclasses.replace(self, **check_fields(fields))


def _check_seconds(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ScriptError(f"{name} must be a number of seconds >= 0, not {value!r}")


def check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as JobRunScript keyword arguments; unknown names are an error, not ignored."""
    unknown = sorted(set(fields) - _FIELD_NAMES)
    if unknown:
        raise ScriptError(f"unknown job run script field(s) {unknown}; known: {sorted(_FIELD_NAMES)}")
    return dict(fields)


#: What a run does when nothing scripts it (two seconds, then SUCCEEDED, no log lines). Long
#: enough that MaxConcurrentRuns bites when tests start runs back to back, short enough for CI.
DEFAULT_SCRIPT = JobRunScript()
_FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(JobRunScript))


def fields_from_arguments(arguments: Mapping[str, str]) -> dict[str, Any]:
    """The script fields a run's ``--mwaaops-emulator`` argument sets (none without it)."""
    raw = arguments.get(SCRIPT_ARGUMENT)
    if raw is None:
        return {}
    try:
        fields = json.loads(raw)
    except ValueError as err:
        raise ScriptError(f"{SCRIPT_ARGUMENT} must be a JSON object: {err}") from None
    if not isinstance(fields, dict):
        raise ScriptError(f"{SCRIPT_ARGUMENT} must be a JSON object, not {type(fields).__name__}")
    return check_fields(fields)


class ScriptBook:
    """The scripts of one Glue backend (account and Region): defaults, per job, queued per job."""

    def __init__(self) -> None:
        self.defaults = DEFAULT_SCRIPT
        self.per_job: dict[str, dict[str, Any]] = {}
        self.queued: dict[str, deque[dict[str, Any]]] = {}

    def script_for_run(self, job_name: str, arguments: Mapping[str, str]) -> JobRunScript:
        """The script of a run starting now; takes the job's next queued script, if any."""
        script = self.defaults.merged(self.per_job.get(job_name, {}))
        queue = self.queued.get(job_name)
        if queue:
            script = script.merged(queue.popleft())
        return script.merged(fields_from_arguments(arguments))


def script_book(backend: Any) -> ScriptBook:
    """The ScriptBook kept on a moto GlueBackend (created on first use; gone after a reset)."""
    book = backend.__dict__.get("_mwaaops_scripts")
    if book is None:
        book = backend.__dict__["_mwaaops_scripts"] = ScriptBook()
    return book
