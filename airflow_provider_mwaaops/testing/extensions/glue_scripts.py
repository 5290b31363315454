"""What an emulated Glue job run does: how long it takes, how it ends, what it logs.

A real job run executes a script; the emulator's runs follow a :class:`JobRunScript` instead, so
tests can make a run succeed, fail with a given ErrorMessage, time out, hang until it is stopped,
or log lines at a given rate. A run's script is assembled when the run starts, each layer
overriding the fields it names:

1. the emulator's defaults (:data:`DEFAULT_SCRIPT`, or :meth:`GlueControl.set_defaults`);
2. the job's script (:meth:`GlueControl.script_job`);
3. the next queued script of the job (:meth:`GlueControl.script_next_runs`), used by one run;
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
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

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


class GlueControl:
    """Scripts Glue job runs of the emulator, for tests: ``aws_emulator.glue``.

    ::

        aws_emulator.glue.script_job("etl", running_seconds=0.3)           # every run of "etl"
        aws_emulator.glue.script_next_runs("etl", {"outcome": "FAILED",     # the next run fails,
                                                   "error_message": "boom"}, {})  # then one succeeds
        glue.start_job_run(JobName="etl", Arguments=GlueControl.run_arguments(running_seconds=None))

    Field names are those of :class:`JobRunScript`; an unknown name raises at once.
    """

    def __init__(self, region_name: str, account_id: str = DEFAULT_ACCOUNT_ID):
        self.region_name = region_name
        self.account_id = account_id

    def backend(self) -> Any:
        """moto's GlueBackend behind this control (for state no API shows, like a run's script)."""
        from moto.glue.models import glue_backends

        return glue_backends[self.account_id][self.region_name]

    def _book(self) -> ScriptBook:
        return script_book(self.backend())

    def set_defaults(self, **fields: Any) -> None:
        """Change what every run does unless its job or arguments say otherwise (until reset)."""
        book = self._book()
        book.defaults = DEFAULT_SCRIPT.merged(fields)

    def script_job(self, job_name: str, **fields: Any) -> None:
        """What every later run of ``job_name`` does (replaces the job's previous script)."""
        DEFAULT_SCRIPT.merged(fields)  # validate now, not at the run
        self._book().per_job[job_name] = check_fields(fields)

    def script_next_runs(self, job_name: str, *runs: Mapping[str, Any]) -> None:
        """Scripts for the next ``len(runs)`` runs of ``job_name``, one each, in start order.

        Each applies over the job's script; runs started after the queue is used up follow the
        job's script. Runs started by workflow triggers take their scripts from the same queue.
        """
        for fields in runs:
            DEFAULT_SCRIPT.merged(fields)
        self._book().queued.setdefault(job_name, deque()).extend(check_fields(f) for f in runs)

    @staticmethod
    def run_arguments(**fields: Any) -> dict[str, str]:
        """Job arguments that script a run: merge into Arguments, DefaultArguments or an Action's."""
        DEFAULT_SCRIPT.merged(fields)
        return {SCRIPT_ARGUMENT: json.dumps(fields)}

    # -- waiting, for tests that must see an outcome ------------------------------------------------
    def wait_for_job_run(self, job_name: str, run_id: str, timeout: float = 30.0) -> str:
        """The run's final state, once it has one; fails the test after ``timeout`` seconds."""
        from airflow_provider_mwaaops.testing.extensions.glue_job_runs import TERMINAL_STATES, life_of, settle

        def final_state() -> str | None:
            now = settle(self.backend())
            job = self.backend().jobs[job_name]
            run = next(run for run in job.job_runs if run.job_run_id == run_id)
            state = life_of(run).state_at(now)  # type: ignore[union-attr]
            return state if state in TERMINAL_STATES else None

        return _wait(final_state, timeout, f"job run {run_id} of {job_name}")

    def wait_for_workflow_run(self, workflow_name: str, run_id: str, timeout: float = 30.0) -> str:
        """The workflow run's final status (COMPLETED, STOPPED or ERROR), once it has one."""
        from airflow_provider_mwaaops.testing.extensions.glue_job_runs import settle
        from airflow_provider_mwaaops.testing.extensions.glue_workflow_runs import state_of

        def final_status() -> str | None:
            settle(self.backend())
            state = state_of(self.backend().workflows[workflow_name].runs[run_id])
            assert state is not None
            return state.status if state.status not in ("RUNNING", "STOPPING") else None

        return _wait(final_status, timeout, f"workflow run {run_id} of {workflow_name}")


def _wait(read: Any, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None:
            return str(value)
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} has not ended after {timeout}s")
        time.sleep(0.05)
