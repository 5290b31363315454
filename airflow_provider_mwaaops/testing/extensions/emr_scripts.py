"""What an emulated EMR step or EMR Serverless job run does: its outcome, duration, message, logs.

AWS decides a run's fate by running the user's code; the emulator has no code to run, so a test
(or a DAG) says what should happen, in one of two ways:

- an emulator call, reachable from the ``aws_emulator`` fixture::

      aws_emulator.emr.script_step("transform", outcome="FAILED", message="Table not found", times=1)
      aws_emulator.emr.script_job_run("nightly-*", duration=float("inf"))  # runs until cancelled

  Rules match a step's ``Name`` or a job run's ``name`` (``fnmatch`` patterns), optionally only on
  one cluster / application; ``times=N`` applies a rule to the next N matching runs only, so "fail
  once, then succeed" is ``times=1``. Rules are tried in the order they were added;

- Spark configuration in the submission itself, which Spark ignores on a real cluster (unknown
  ``spark.*`` properties are accepted silently), so the same DAG runs unchanged against AWS::

      --conf spark.mwaaops.emulator.outcome=FAILED --conf "spark.mwaaops.emulator.message=Boom"

  read from a step's ``HadoopJarStep.Args`` and from a job run's ``sparkSubmitParameters``
  (shell-quoted), ``entryPointArguments`` and ``spark-defaults`` properties. Keys: ``outcome``,
  ``duration`` (seconds, ``inf`` hangs), ``message``, ``reason``, ``stdout`` / ``stderr`` (one
  line each, repeatable), ``log_interval`` and ``times`` (counted over earlier runs with the same
  name on the same cluster / application). A submission that carries such keys uses them and no
  emulator-call rule.

Whatever is not scripted takes the defaults of :class:`EmrTimings` (success after a short run).
Rules, timings and forgotten client tokens live in moto's backends, so ``reset()`` drops them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import math
import shlex
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

#: Spark ignores unknown ``spark.*`` properties, so these reach the emulator and nothing else.
ARG_PREFIX = "spark.mwaaops.emulator."
STEP_OUTCOMES = ("COMPLETED", "FAILED")
JOB_RUN_OUTCOMES = ("SUCCESS", "FAILED")
#: One lock for every emulated EMR clock: the server answers requests on several threads.
SIMULATION_LOCK = threading.RLock()


def now() -> float:
    """The clock of every emulated EMR run (tests may replace it to move time by hand)."""
    return time.time()


class ManualClock:
    """A clock a test moves by hand, standing in for :func:`now` (see :func:`manual_clock`)."""

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.contextmanager
def manual_clock(start: float | None = None) -> Iterator[ManualClock]:
    """Within the block, emulated EMR runs follow a :class:`ManualClock` (from now, or ``start``).

    ``with manual_clock() as clock: ...; clock.advance(0.5)`` observes every state at an exact
    moment, without sleeping.
    """
    global now
    clock, previous = ManualClock(start), now
    now = clock
    try:
        yield clock
    finally:
        now = previous


def to_datetime(seconds: float) -> datetime:
    """A naive UTC datetime, as moto's models keep them."""
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)


class ScriptError(ValueError):
    """A script the emulator cannot follow (an outcome the service has not, a bad number)."""


@dataclasses.dataclass
class EmrTimings:
    """How long each emulated phase lasts, in seconds (defaults keep a test's run under a second).

    EMR Serverless: a job run is SUBMITTED, PENDING and SCHEDULED for ``job_submitted`` /
    ``job_pending`` / ``job_scheduled`` each, then RUNNING for ``job_running``; CANCELLING lasts
    ``job_cancelling``. An application takes ``application_starting`` to go from STARTING to
    STARTED and ``application_stopping`` from STOPPING to STOPPED. EMR steps run for
    ``step_running`` and stay CANCEL_PENDING for ``step_cancel_pending``. Scripted log lines are
    written ``log_interval`` apart while the run is RUNNING (all of them by its end).
    """

    job_submitted: float = 0.05
    job_pending: float = 0.05
    job_scheduled: float = 0.05
    job_running: float = 0.5
    job_cancelling: float = 0.2
    application_starting: float = 0.3
    application_stopping: float = 0.2
    step_running: float = 0.5
    step_cancel_pending: float = 0.2
    log_interval: float = 0.05


@dataclasses.dataclass(frozen=True)
class RunScript:
    """What one run does; ``None`` fields take the emulator's defaults."""

    outcome: str | None = None
    duration: float | None = None
    message: str | None = None
    reason: str | None = None
    stdout: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    log_interval: float | None = None


@dataclasses.dataclass
class _Rule:
    pattern: str
    scope: str | None  # cluster id / application id, or None for every one
    script: RunScript
    remaining: int | None  # None: unlimited


@dataclasses.dataclass
class ScriptBook:
    """The rules added by emulator calls for one service, plus its timings."""

    rules: list[_Rule] = dataclasses.field(default_factory=list)
    timings: EmrTimings = dataclasses.field(default_factory=EmrTimings)
    #: Client tokens StartJobRun no longer remembers (see ``forget_client_tokens``).
    token_generation: int = 0

    def add(self, pattern: str, scope: str | None, script: RunScript, times: int | None) -> None:
        if times is not None and times < 1:
            raise ScriptError(f"times must be at least 1, got {times}")
        self.rules.append(_Rule(pattern, scope, script, times))

    def take(self, name: str | None, scope: str) -> RunScript | None:
        """The first rule matching a new run, using up one of its ``times``."""
        for rule in self.rules:
            if rule.remaining == 0 or (rule.scope is not None and rule.scope != scope):
                continue
            if fnmatch.fnmatchcase(name or "", rule.pattern):
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.script
        return None


def book_of(backend: Any) -> ScriptBook:
    """The backend's ScriptBook (created on first use; moto's reset drops it with the backend)."""
    with SIMULATION_LOCK:
        book = backend.__dict__.get("_mwaaops_scripts")
        if book is None:
            book = backend._mwaaops_scripts = ScriptBook()
        return book


def make_script(
    allowed_outcomes: Sequence[str],
    outcome: str | None = None,
    duration: float | None = None,
    message: str | None = None,
    reason: str | None = None,
    stdout: Iterable[str] = (),
    stderr: Iterable[str] = (),
    log_interval: float | None = None,
) -> RunScript:
    """A validated RunScript (``allowed_outcomes``: the service's terminal states a run can reach)."""
    if outcome is not None and outcome not in allowed_outcomes:
        raise ScriptError(f"outcome must be one of {', '.join(allowed_outcomes)}, got {outcome!r}")
    for label, value in (("duration", duration), ("log_interval", log_interval)):
        if value is not None and (math.isnan(value) or value < 0):
            raise ScriptError(f"{label} must be a number of seconds >= 0, got {value!r}")
    for label, lines in (("stdout", stdout), ("stderr", stderr)):
        if isinstance(lines, str):
            raise ScriptError(f"{label} takes a list of lines, not one string")
    return RunScript(
        outcome=outcome,
        duration=None if duration is None else float(duration),
        message=message,
        reason=reason,
        stdout=tuple(str(line) for line in stdout),
        stderr=tuple(str(line) for line in stderr),
        log_interval=None if log_interval is None else float(log_interval),
    )


def _number(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ScriptError(f"{ARG_PREFIX}{key} must be a number of seconds, got {value!r}") from None


def script_from_settings(
    settings: Sequence[tuple[str, str]], allowed_outcomes: Sequence[str]
) -> tuple[RunScript | None, int | None]:
    """(script, times) from ``(key, value)`` pairs found in a submission; (None, None) if none."""
    if not settings:
        return None, None
    fields: dict[str, Any] = {"stdout": [], "stderr": []}
    times: int | None = None
    for key, value in settings:
        if key in ("stdout", "stderr"):
            fields[key].append(value)
        elif key in ("outcome", "message", "reason"):
            fields[key] = value
        elif key in ("duration", "log_interval"):
            fields[key] = _number(key, value)
        elif key == "times":
            try:
                times = int(value)
            except ValueError:
                raise ScriptError(f"{ARG_PREFIX}times must be a whole number, got {value!r}") from None
            if times < 1:
                raise ScriptError(f"{ARG_PREFIX}times must be at least 1, got {times}")
        else:
            raise ScriptError(f"unknown emulator setting {ARG_PREFIX}{key}")
    return make_script(allowed_outcomes, **fields), times


def settings_from_tokens(tokens: Iterable[str]) -> list[tuple[str, str]]:
    """``spark.mwaaops.emulator.key=value`` tokens (alone, after ``--conf``, or ``--conf=...``)."""
    found = []
    for token in tokens:
        if not isinstance(token, str):
            continue
        text = token[len("--conf=") :] if token.startswith("--conf=") else token
        if text.startswith(ARG_PREFIX) and "=" in text:
            key, value = text[len(ARG_PREFIX) :].split("=", 1)
            found.append((key, value))
    return found


def settings_from_properties(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Emulator settings among configuration properties (``spark-defaults``)."""
    return [
        (key[len(ARG_PREFIX) :], str(value))
        for key, value in properties.items()
        if isinstance(key, str) and key.startswith(ARG_PREFIX)
    ]


def split_submit_parameters(parameters: str | None) -> list[str]:
    """``sparkSubmitParameters`` as spark-submit sees it (shell words, quotes honoured)."""
    if not parameters:
        return []
    try:
        return shlex.split(parameters)
    except ValueError:  # unbalanced quotes: take plain words rather than fail the submission
        return parameters.split()


def log_lines(script: RunScript, failed: bool, message: str | None) -> tuple[list[str], list[str]]:
    """(stdout, stderr) a run writes; a failure's message ends its stderr, as a driver's would."""
    stdout, stderr = list(script.stdout), list(script.stderr)
    if failed and message and message not in stderr:
        stderr.append(message)
    return stdout, stderr


class EmrControls:
    """Scripting of EMR steps and EMR Serverless job runs, as ``aws_emulator.emr``.

    Everything applies to runs submitted afterwards, in the emulator's region and account, and is
    dropped by ``aws_emulator.reset()``.
    """

    def __init__(self, region_name: str, account_id: str = DEFAULT_ACCOUNT_ID):
        self.region_name = region_name
        self.account_id = account_id

    def _emr_book(self) -> ScriptBook:
        from moto.emr.models import emr_backends

        return book_of(emr_backends[self.account_id][self.region_name])

    def _serverless_book(self) -> ScriptBook:
        from moto.emrserverless.models import emrserverless_backends

        return book_of(emrserverless_backends[self.account_id][self.region_name])

    def script_step(
        self,
        name: str = "*",
        *,
        outcome: str | None = None,
        duration: float | None = None,
        message: str | None = None,
        reason: str | None = None,
        stdout: Iterable[str] = (),
        stderr: Iterable[str] = (),
        times: int | None = None,
        cluster_id: str | None = None,
    ) -> None:
        """Script EMR steps whose ``Name`` matches ``name`` (an ``fnmatch`` pattern).

        ``outcome`` COMPLETED (default) or FAILED; ``duration`` seconds RUNNING (``inf``: until
        cancelled); ``message`` / ``reason`` become FailureDetails.Message / .Reason of a failed
        step (Reason defaults to AWS's "Unknown Error"); ``stdout`` / ``stderr`` lines land in the
        step's logs under the cluster's LogUri; ``times`` limits the rule to the next N steps.
        """
        script = make_script(STEP_OUTCOMES, outcome, duration, message, reason, stdout, stderr)
        with SIMULATION_LOCK:
            self._emr_book().add(name, cluster_id, script, times)

    def script_job_run(
        self,
        name: str = "*",
        *,
        outcome: str | None = None,
        duration: float | None = None,
        message: str | None = None,
        stdout: Iterable[str] = (),
        stderr: Iterable[str] = (),
        log_interval: float | None = None,
        times: int | None = None,
        application_id: str | None = None,
    ) -> None:
        """Script EMR Serverless job runs whose ``name`` matches ``name`` (unnamed runs match "").

        ``outcome`` SUCCESS (default) or FAILED; ``duration`` seconds RUNNING (``inf``: until
        cancelled or ``executionTimeoutMinutes``); ``message`` becomes the failed run's
        ``stateDetails``; ``stdout`` / ``stderr`` are the driver's lines, written to CloudWatch
        Logs while the run is RUNNING (``log_interval`` apart) and to S3 at its end, where its
        monitoring configuration sends them; ``times`` limits the rule to the next N runs.
        """
        script = make_script(JOB_RUN_OUTCOMES, outcome, duration, message, None, stdout, stderr, log_interval)
        with SIMULATION_LOCK:
            self._serverless_book().add(name, application_id, script, times)

    def set_timings(self, **timings: float) -> EmrTimings:
        """Change the default phase durations (fields of :class:`EmrTimings`); returns all of them."""
        known = {field.name for field in dataclasses.fields(EmrTimings)}
        unknown = sorted(set(timings) - known)
        if unknown:
            raise ScriptError(f"unknown timings {unknown}; known: {sorted(known)}")
        with SIMULATION_LOCK:
            for book in (self._emr_book(), self._serverless_book()):
                for key, value in timings.items():
                    if value < 0:
                        raise ScriptError(f"{key} must be >= 0, got {value}")
                    setattr(book.timings, key, float(value))
            return dataclasses.replace(self._serverless_book().timings)

    def forget_client_tokens(self) -> None:
        """Make StartJobRun forget every client token seen so far.

        AWS does not document how long it remembers a token; this lets a test prove that a retry
        finds its run by listing rather than by relying on the token.
        """
        with SIMULATION_LOCK:
            self._serverless_book().token_generation += 1
