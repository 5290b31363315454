"""Run a Glue job run, or a Glue workflow run, exactly once per task instance.

Glue's StartJobRun and StartWorkflowRun take no idempotency token, so each run started here
carries the tag of the try that started it, written in the start call itself (job argument
``--mwaaops-task-attempt``, workflow run property ``mwaaops_task_attempt``): a worker that dies
right after the call leaves a run that the next try finds. What a try does with what it finds
(:func:`airflow_provider_mwaaops.aws.resumable.decide`):

========================================  ==================================================
run of this task instance found           what the try does (default ``on_retry="resume"``)
========================================  ==================================================
none                                      starts one
STARTING / RUNNING / WAITING              attaches and waits (no second run)
SUCCEEDED (since the last clear)          returns it, starts nothing
FAILED / TIMEOUT / STOPPED / ERROR /      job: a new run with ``JobRunId`` = the failed run
EXPIRED (since the last clear)            (Glue links them); ``rerun_failed=False`` fails
                                          instead. Workflow: ResumeWorkflowRun of its failed
                                          nodes (``retry_mode="resume"``) or a fresh run
only runs from before the task instance   starts a new one: clearing a task always runs the
was cleared                               job again, also after a success
========================================  ==================================================

The lookup lists runs newest first down to the DAG run's start (minus 10 minutes of clock skew)
and fails loudly, starting nothing, on a read error or when more than ``max_runs_scanned`` runs
lie above that bound. On Airflow 3.3+ the run a try chose is also kept in the task state store,
which lets the next try skip the listing while that run is active or succeeded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.providers.amazon.aws.links.glue import GlueJobRunDetailsLink
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.aws.errors import error_code
from airflow_provider_mwaaops.aws.resumable import (
    Attach,
    Attempt,
    Decision,
    Refuse,
    RetryPolicy,
    RunLookupError,
    RunMemo,
    RunSeen,
    Start,
    decide,
)
from airflow_provider_mwaaops.compat import AirflowException, xcom_push
from airflow_provider_mwaaops.hooks.glue import (
    ACTIVE_JOB_RUN_STATES,
    TAG_ARGUMENT,
    TAG_RUN_PROPERTY,
    GlueRunHook,
    failed_nodes,
    find_job_runs,
    find_workflow_runs,
    job_run_outcome,
    sync_pages,
    validate_string_map,
)
from airflow_provider_mwaaops.log.cloudwatch import LogLimits
from airflow_provider_mwaaops.operators.base import AwsBaseOperator, aws_template_fields
from airflow_provider_mwaaops.task_instance import TaskInstanceRef
from airflow_provider_mwaaops.triggers.base import STATUS_SUCCESS
from airflow_provider_mwaaops.triggers.glue import GlueJobRunTrigger, GlueWorkflowRunTrigger

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = ["GlueRunOperatorBase", "ResumableGlueJobOperator", "ResumableGlueWorkflowOperator"]

DEFAULT_MAX_RUNS_SCANNED = 1000


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class GlueRunOperatorBase(AwsBaseOperator):
    """What the Glue job-run and workflow-run operators share: the hook and the bounded lookup."""

    aws_hook_class = GlueRunHook
    aws_service_label: ClassVar[str] = "Glue"

    def _scan(self, finder: Any, pages: Any, attempt: Attempt, max_runs: int) -> list[Any]:
        try:
            return list(asyncio.run(finder(sync_pages(pages), attempt, max_runs)))
        except RunLookupError as exc:
            raise AirflowException(str(exc)) from exc


class ResumableGlueJobOperator(GlueRunOperatorBase):
    """Run a Glue job to the end; a retry or a dead worker never starts a second run.

    :param job_name: the Glue job (it must exist). (templated)
    :param script_args: job arguments for this run, strings to strings, e.g.
        ``{"--date": "{{ dag_run.conf.get('date', '') }}"}``. (templated)
    :param run_job_kwargs: other StartJobRun parameters (``WorkerType``, ``NumberOfWorkers``,
        ``Timeout``, ``JobRunQueuingEnabled``...). (templated)
    :param on_retry: ``"resume"`` (default: attach to an earlier try's active or succeeded run,
        start a new linked run after a failed one) or ``"restart"`` (stop an active earlier run,
        then start a new one on every try).
    :param rerun_failed: with ``"resume"``, ``False`` fails a retry whose earlier run failed
        instead of starting a new run.
    :param concurrent_runs_wait: seconds to wait for a free run slot when StartJobRun answers
        ConcurrentRunsExceededException (deferred: in the triggerer, no worker slot held); then
        the task fails saying so. Jobs with ``JobRunQueuingEnabled`` wait in WAITING instead.
    :param stop_on_kill: BatchStopJobRun when the task is killed (deferred: Airflow 3.3+).
    :param forward_logs: copy the run's output and error lines (``<LogGroupName>/output`` and
        ``/error``, stream = run id) into the task log while waiting: two GetLogEvents calls per
        status check.
    :param log_limits: ``{"max_lines_per_poll": ..., "max_bytes_per_poll": ...}``.
    :param max_runs_scanned: most job runs the retry lookup reads above its time bound.

    The AWS connection and waiting parameters are those of
    :class:`~airflow_provider_mwaaops.operators.base.AwsBaseOperator`.

    XCom: return value is the job run id; keys ``job_run_state``, ``execution_time`` (seconds) and
    ``dpu_seconds`` (Glue reports it for FLEX and auto-scaling runs only).
    """

    template_fields: Sequence[str] = aws_template_fields("job_name", "script_args", "run_job_kwargs")
    template_fields_renderers = {"script_args": "json", "run_job_kwargs": "json"}
    operator_extra_links = (GlueJobRunDetailsLink(),)
    ui_color = "#ededed"

    def __init__(
        self,
        *,
        job_name: str,
        script_args: dict[str, str] | None = None,
        run_job_kwargs: dict[str, Any] | None = None,
        on_retry: Literal["resume", "restart"] = "resume",
        rerun_failed: bool = True,
        concurrent_runs_wait: float = 3600.0,
        stop_on_kill: bool = True,
        forward_logs: bool = True,
        log_limits: dict[str, int] | None = None,
        max_runs_scanned: int = DEFAULT_MAX_RUNS_SCANNED,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_retry_policy = RetryPolicy(on_retry=on_retry, rerun_failed=rerun_failed)
        self.log_limits = LogLimits(**(log_limits or {})).as_dict()
        self.job_name = job_name
        self.script_args = script_args
        self.run_job_kwargs = run_job_kwargs
        self.concurrent_runs_wait = _positive(concurrent_runs_wait, "concurrent_runs_wait")
        self.max_runs_scanned = int(_positive(max_runs_scanned, "max_runs_scanned"))
        self.stop_on_kill = stop_on_kill
        self.forward_logs = forward_logs
        self.job_run_id: str | None = None

    # -- validation (before any AWS call) -----------------------------------------------------
    def _start_request(self, attempt: Attempt) -> dict[str, Any]:
        if not isinstance(self.job_name, str) or not self.job_name.strip():
            raise ValueError(f"job_name must be a Glue job name, got {self.job_name!r}")
        arguments = validate_string_map(self.script_args, "script_args")
        if TAG_ARGUMENT in arguments:
            raise ValueError(f"script_args: {TAG_ARGUMENT} is set by the operator")
        extra = dict(self.run_job_kwargs or {})
        for reserved in ("JobName", "Arguments", "JobRunId"):
            if reserved in extra:
                raise ValueError(f"run_job_kwargs: {reserved} is set by the operator")
        return {
            "JobName": self.job_name,
            "Arguments": {**arguments, TAG_ARGUMENT: attempt.tag()},
            **extra,
        }

    # -- execute ------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        attempt = Attempt.from_context(context)
        request = self._start_request(attempt)
        memo = RunMemo(context, self._memo_key())
        hook = self.hook
        with self.aws_errors():
            decision = self._decision(hook, attempt, memo)
            self.log.info("Glue job %s: %s", self.job_name, decision.reason)
            if isinstance(decision, Refuse):
                run = hook.get_job_run(self.job_name, decision.run.run_id)
                raise AirflowException(self._failure_text(decision.run.run_id, run.get("JobRunState"), run))
            if isinstance(decision, Attach):
                self.job_run_id = decision.run.run_id
            else:
                if decision.previous is not None:  # Glue links the new run to the failed one
                    request = {**request, "JobRunId": decision.previous.run_id}
                self.job_run_id = self._start(hook, request, decision)
        slot_deadline = None
        if self.job_run_id is None:
            slot_deadline = time.time() + self.concurrent_runs_wait
        else:
            memo.remember(self.job_run_id, attempt.try_number)
            self._persist_link(context)
        trigger = GlueJobRunTrigger(
            job_name=self.job_name,
            job_run_id=self.job_run_id,
            start_request=request,
            attempt=attempt.as_dict(),
            slot_wait_timeout_at=slot_deadline,
            stop_on_kill=self.stop_on_kill,
            forward_logs=self.forward_logs,
            log_limits=self.log_limits,
            task_instance=TaskInstanceRef.from_context(context).as_dict(),
            **self.trigger_kwargs(),
        )
        return self.wait_for(trigger, context)

    def _decision(self, hook: GlueRunHook, attempt: Attempt, memo: RunMemo) -> Decision:
        remembered = memo.recall()
        if (
            remembered
            and self.run_retry_policy.on_retry == "resume"
            and attempt.first_try <= remembered["try"] <= attempt.try_number
        ):
            try:
                state = hook.get_job_run(self.job_name, remembered["run_id"]).get("JobRunState", "")
            except ClientError as exc:
                self.log.info("Remembered run %s not readable (%s); looking it up", remembered["run_id"], exc)
            else:
                if state in ACTIVE_JOB_RUN_STATES or state == "SUCCEEDED":
                    seen = RunSeen(remembered["run_id"], remembered["try"], job_run_outcome(state), state)
                    return Attach(seen, f"{seen.describe()} (kept in the task state store) needs no new run")
        runs = self._scan(find_job_runs, hook.job_run_pages(self.job_name), attempt, self.max_runs_scanned)
        return decide(runs, attempt, self.run_retry_policy)

    def _start(self, hook: GlueRunHook, request: dict[str, Any], decision: Start) -> str | None:
        """StartJobRun (linked to the failed run); None when the job has no free run slot."""
        if decision.stop_first:
            ids = [run.run_id for run in decision.stop_first]
            self.log.info("on_retry='restart': stopping %s first", ", ".join(ids))
            hook.stop_job_runs(self.job_name, ids)
        try:
            run_id = hook.conn.start_job_run(**request)["JobRunId"]
        except ClientError as exc:
            if error_code(exc) != "ConcurrentRunsExceededException":
                raise
            self.log.info(
                "Glue job %s has no free run slot (MaxConcurrentRuns); waiting up to %.0fs for one%s",
                self.job_name,
                self.concurrent_runs_wait,
                " in the triggerer" if self.deferrable else "",
            )
            return None
        self.log.info("Started Glue job run %s of %s", run_id, self.job_name)
        return str(run_id)

    def _memo_key(self) -> str:
        return f"mwaaops_glue_job_run:{self.job_name}"

    def _persist_link(self, context: Context) -> None:
        self.persist_link(GlueJobRunDetailsLink, context, job_name=self.job_name, job_run_id=self.job_run_id)

    def _console_url(self, run_id: str) -> str:
        try:
            return GlueJobRunDetailsLink().format_link(
                aws_domain=GlueJobRunDetailsLink.get_aws_domain(self.hook.conn_partition),
                region_name=self.hook.conn_region_name,
                job_name=self.job_name,
                job_run_id=run_id,
            )
        except Exception:  # a link is a courtesy; never hide the failure behind it
            return ""

    def _failure_text(self, run_id: str, state: Any, run: dict[str, Any]) -> str:
        message = run.get("ErrorMessage") or "(Glue gave no ErrorMessage)"
        url = self._console_url(run_id)
        return f"Glue job run {run_id} of {self.job_name} ended {state}: {message}" + (
            f" (console: {url})" if url else ""
        )

    # -- completion ---------------------------------------------------------------------------
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = event or {}
        started_by_trigger = bool(event.get("job_run_id")) and event.get("job_run_id") != self.job_run_id
        self.job_run_id = event.get("job_run_id") or self.job_run_id
        if started_by_trigger:  # the run slot freed while deferred: the trigger started the run
            self._persist_link(context)
            try_number = Attempt.from_context(context).try_number
            RunMemo(context, self._memo_key()).remember(str(self.job_run_id), try_number)
        status = event.get("status")
        if status not in (STATUS_SUCCESS, "failure"):
            self.raise_for_event(
                event, f"Glue job run {self.job_run_id} of {self.job_name}", self.wait_timeout
            )
        ti = context["ti"]
        xcom_push(ti, "job_run_state", event.get("job_run_state"))
        xcom_push(ti, "execution_time", event.get("execution_time"))
        xcom_push(ti, "dpu_seconds", event.get("dpu_seconds"))
        if status != STATUS_SUCCESS:
            assert self.job_run_id is not None
            text = self._failure_text(
                self.job_run_id, event.get("job_run_state"), {"ErrorMessage": event.get("error_message")}
            )
            self.log.error("%s", text)
            raise AirflowException(text)
        self.log.info(
            "Glue job run %s SUCCEEDED (execution time %ss)", self.job_run_id, event.get("execution_time")
        )
        return self.job_run_id

    def on_kill(self) -> None:
        if self.stop_on_kill and self.job_run_id:
            self.log.info("Stopping Glue job run %s because the task was killed", self.job_run_id)
            self.hook.stop_job_runs(self.job_name, [self.job_run_id])


class ResumableGlueWorkflowOperator(GlueRunOperatorBase):
    """Run a Glue workflow to the end; a retry resumes only its failed nodes.

    The run is judged by its nodes: a COMPLETED run with a failed job or crawler node fails the
    task (AWS calls such a run COMPLETED). A retry after that calls ResumeWorkflowRun with the
    failed nodes' ``UniqueId``: those nodes and everything downstream of them run again, in a new
    run linked by ``PreviousRunId``; nodes that succeeded do not run again. A run that ended
    STOPPED or ERROR cannot be resumed (AWS resumes COMPLETED runs only): the retry starts a fresh
    run. A run still RUNNING is attached to.

    :param workflow_name: the Glue workflow. (templated)
    :param run_properties: run properties for a fresh run, strings to strings. (templated)
    :param retry_mode: ``"resume"`` (default) or ``"fresh"`` (every retry starts a new run).
    :param stop_on_kill: StopWorkflowRun when the task is killed (deferred: Airflow 3.3+).
    :param max_runs_scanned: most workflow runs the retry lookup reads above its time bound.

    XCom: return value is the workflow run id; ``workflow_run_status`` and ``nodes`` (each node's
    name, UniqueId and final state).
    """

    template_fields: Sequence[str] = aws_template_fields("workflow_name", "run_properties")
    template_fields_renderers = {"run_properties": "json"}
    ui_color = "#ededed"

    def __init__(
        self,
        *,
        workflow_name: str,
        run_properties: dict[str, str] | None = None,
        retry_mode: Literal["resume", "fresh"] = "resume",
        stop_on_kill: bool = True,
        max_runs_scanned: int = DEFAULT_MAX_RUNS_SCANNED,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if retry_mode not in ("resume", "fresh"):
            raise ValueError(f"retry_mode must be 'resume' or 'fresh', got {retry_mode!r}")
        self.workflow_name = workflow_name
        self.run_properties = run_properties
        self.retry_mode = retry_mode
        self.stop_on_kill = stop_on_kill
        self.max_runs_scanned = int(_positive(max_runs_scanned, "max_runs_scanned"))
        self.run_id: str | None = None

    def execute(self, context: Context) -> Any:
        if not isinstance(self.workflow_name, str) or not self.workflow_name.strip():
            raise ValueError(f"workflow_name must be a Glue workflow name, got {self.workflow_name!r}")
        properties = validate_string_map(self.run_properties, "run_properties")
        attempt = Attempt.from_context(context)
        hook = self.hook
        with self.aws_errors():
            pages = hook.workflow_run_pages(self.workflow_name)
            runs = self._scan(find_workflow_runs, pages, attempt, self.max_runs_scanned)
            decision = decide(runs, attempt, RetryPolicy())
            self.log.info("Glue workflow %s: %s", self.workflow_name, decision.reason)
            if isinstance(decision, Attach):
                self.run_id = decision.run.run_id
            elif isinstance(decision, Start):
                self.run_id = self._start_or_resume(hook, decision, properties, attempt)
        assert self.run_id is not None
        trigger = GlueWorkflowRunTrigger(
            workflow_name=self.workflow_name,
            run_id=self.run_id,
            stop_on_kill=self.stop_on_kill,
            **self.trigger_kwargs(),
        )
        return self.wait_for(trigger, context)

    def _start_or_resume(
        self, hook: GlueRunHook, decision: Start, properties: dict[str, str], attempt: Attempt
    ) -> str:
        previous = decision.previous
        if self.retry_mode == "resume" and previous is not None and previous.state == "COMPLETED":
            nodes = failed_nodes(hook.get_workflow_run(self.workflow_name, previous.run_id).get("Graph"))
            node_ids = [node["unique_id"] for node in nodes]
            answer = hook.conn.resume_workflow_run(
                Name=self.workflow_name, RunId=previous.run_id, NodeIds=node_ids
            )
            run_id = str(answer["RunId"])
            # The resumed run is this try's: tag it (a crash before this leaves the earlier try's
            # tag, which the next try still finds as the newest run of the task instance).
            hook.conn.put_workflow_run_properties(
                Name=self.workflow_name, RunId=run_id, RunProperties={TAG_RUN_PROPERTY: attempt.tag()}
            )
            self.log.info(
                "Resumed workflow run %s as %s from its failed node(s) %s (restarted: %s)",
                previous.run_id,
                run_id,
                ", ".join(f"{node['name']} ({node['state']})" for node in nodes),
                ", ".join(answer.get("NodeIds", [])),
            )
            return run_id
        if previous is not None:
            self.log.info(
                "Starting a fresh run of %s (previous run %s ended %s)",
                self.workflow_name,
                previous.run_id,
                previous.state,
            )
        answer = hook.conn.start_workflow_run(
            Name=self.workflow_name, RunProperties={**properties, TAG_RUN_PROPERTY: attempt.tag()}
        )
        self.log.info("Started workflow run %s of %s", answer["RunId"], self.workflow_name)
        return str(answer["RunId"])

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = event or {}
        self.run_id = event.get("run_id") or self.run_id
        status = event.get("status")
        if status not in (STATUS_SUCCESS, "failure"):
            self.raise_for_event(
                event, f"Glue workflow run {self.run_id} of {self.workflow_name}", self.wait_timeout
            )
        nodes = event.get("nodes", [])
        for node in nodes:
            self.log.info(
                "node %s (%s, %s): %s%s",
                node["name"],
                node["type"],
                node["unique_id"],
                node["state"],
                f": {node['error_message']}" if node.get("error_message") else "",
            )
        ti = context["ti"]
        xcom_push(ti, "workflow_run_status", event.get("workflow_run_status"))
        xcom_push(ti, "nodes", nodes)
        if status != STATUS_SUCCESS:
            failed = [n for n in nodes if n["unique_id"] in set(event.get("failed_node_ids", []))]
            detail = "; ".join(
                f"{n['name']} {n['state']}: {n.get('error_message') or 'no ErrorMessage'}" for n in failed
            )
            text = (
                f"Glue workflow run {self.run_id} of {self.workflow_name} ended "
                f"{event.get('workflow_run_status')}"
                + (f" with failed node(s): {detail}" if detail else "")
                + (f" ({event['error_message']})" if event.get("error_message") else "")
                + (". A retry resumes the failed nodes." if self.retry_mode == "resume" and detail else "")
            )
            self.log.error("%s", text)
            raise AirflowException(text)
        return self.run_id

    def on_kill(self) -> None:
        if self.stop_on_kill and self.run_id:
            self.log.info("Stopping Glue workflow run %s because the task was killed", self.run_id)
            self.hook.conn.stop_workflow_run(Name=self.workflow_name, RunId=self.run_id)
