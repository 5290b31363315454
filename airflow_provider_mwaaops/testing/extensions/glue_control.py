"""The ``aws_emulator.glue`` handle: script what Glue job runs do, and wait for their outcome.

It sits above the scripts (:mod:`.glue_scripts`), the job-run lifecycle (:mod:`.glue_job_runs`)
and the workflow runs (:mod:`.glue_workflow_runs`), which is why it is a module of its own: the
lifecycle reads the scripts, and this handle reads the lifecycle.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from airflow_provider_mwaaops.testing.extensions.glue_job_runs import TERMINAL_STATES, life_of, settle
from airflow_provider_mwaaops.testing.extensions.glue_scripts import (
    DEFAULT_SCRIPT,
    SCRIPT_ARGUMENT,
    ScriptBook,
    check_fields,
    script_book,
)
from airflow_provider_mwaaops.testing.extensions.glue_workflow_runs import state_of


class GlueControl:
    """Scripts Glue job runs of the emulator, for tests: ``aws_emulator.glue``.

    ::

        aws_emulator.glue.script_job("etl", running_seconds=0.3)           # every run of "etl"
        aws_emulator.glue.script_next_runs("etl", {"outcome": "FAILED",     # the next run fails,
                                                   "error_message": "boom"}, {})  # then one succeeds
        glue.start_job_run(JobName="etl", Arguments=GlueControl.run_arguments(running_seconds=None))

    Field names are those of
    :class:`~airflow_provider_mwaaops.testing.extensions.glue_scripts.JobRunScript`; an unknown
    name raises at once.
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

        def final_state() -> str | None:
            now = settle(self.backend())
            job = self.backend().jobs[job_name]
            run = next(run for run in job.job_runs if run.job_run_id == run_id)
            state = life_of(run).state_at(now)  # type: ignore[union-attr]
            return state if state in TERMINAL_STATES else None

        return _wait(final_state, timeout, f"job run {run_id} of {job_name}")

    def wait_for_workflow_run(self, workflow_name: str, run_id: str, timeout: float = 30.0) -> str:
        """The workflow run's final status (COMPLETED, STOPPED or ERROR), once it has one."""

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
