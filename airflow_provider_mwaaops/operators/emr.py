"""EMR Serverless job runs and EMR-on-EC2 steps that survive retries: one run, resumed, never doubled.

The amazon provider re-adds every EMR step on every try and gives an EMR Serverless job a fresh
client token per DAG parse, so a retry after a worker died starts the same work again while the
first copy may still run. Here every run or step carries the task instance's mark in its *name*,
written in the very call that starts it (:meth:`~airflow_provider_mwaaops.aws.resumable.Attempt.tag`),
so a retry finds it by listing, bounded to the DAG run's start:

* :class:`EmrServerlessJobOperator`: a run of an earlier try that is SUBMITTED / PENDING /
  SCHEDULED / RUNNING / QUEUED is re-attached; SUCCESS is done; FAILED / CANCELLED starts a new run
  (the rules of :func:`~airflow_provider_mwaaops.aws.resumable.decide`). StartJobRun also gets a
  deterministic ``clientToken`` per try, so a repeated call in one try returns the same run; the
  listing is what a retry relies on, because AWS does not document how long it keeps a token.
* :class:`EmrStepsOperator`: EMR has no idempotency token. The task's steps are found by a
  ListSteps name scan (paging with ``Marker``); COMPLETED steps are not rerun, PENDING / RUNNING
  ones are re-attached, and the first FAILED / CANCELLED / INTERRUPTED step and every step after it
  are submitted again, in order.

Both cancel what they started when the task is killed (synchronously, and deferred on Airflow 3.3+)
and fail with the service's own words (``stateDetails``; ``FailureDetails`` and the step's stderr).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from airflow.providers.amazon.aws.links.emr import (
    EmrClusterLink,
    EmrServerlessCloudWatchLogsLink,
    EmrServerlessS3LogsLink,
)

from airflow_provider_mwaaops.aws.polling import PollingPolicy, poll
from airflow_provider_mwaaops.aws.resumable import (
    Attach,
    Attempt,
    Outcome,
    Refuse,
    RetryPolicy,
    RunSeen,
    bounded_scan,
    decide,
)
from airflow_provider_mwaaops.compat import AirflowException
from airflow_provider_mwaaops.hooks.emr import (
    APPLICATION_CAN_START,
    APPLICATION_WILL_START,
    CLUSTER_ACCEPTS_STEPS,
    JOB_RUN_ACTIVE,
    MAX_ACTIVE_STEPS,
    EmrServerlessJobHook,
    EmrStepsHook,
    serverless_log_streams,
    serverless_s3_log_location,
)
from airflow_provider_mwaaops.log.cloudwatch import LogSource
from airflow_provider_mwaaops.operators.base import AwsBaseOperator, aws_template_fields
from airflow_provider_mwaaops.triggers.base import STATUS_SUCCESS
from airflow_provider_mwaaops.triggers.emr import EmrServerlessJobRunTrigger, EmrStepsTrigger

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = ["EmrServerlessJobOperator", "EmrStepsOperator", "StepPlan", "plan_steps", "step_marker"]

T = TypeVar("T")

#: EMR Serverless job run and EMR step names: at most 256 characters.
MAX_NAME_LENGTH = 256
ACTIONS_ON_FAILURE = ("CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW")
_STEP_MARK = " @"


async def _pages(pages: Iterable[Sequence[T]]) -> AsyncIterator[Sequence[T]]:
    """A synchronous hook's pages as the async iterator ``bounded_scan`` reads."""
    for page in pages:
        yield page


def _scan(pages: Iterator[list[T]], attempt: Attempt, started_at: Any, max_items: int, what: str) -> list[T]:
    return asyncio.run(
        bounded_scan(_pages(pages), attempt=attempt, started_at=started_at, max_items=max_items, what=what)
    )


def _short(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# == EMR Serverless ================================================================================
def _serverless_outcome(state: str) -> Outcome:
    if state == "SUCCESS":
        return Outcome.SUCCEEDED
    return Outcome.ACTIVE if state in JOB_RUN_ACTIVE else Outcome.FAILED


def client_token_for(tag: str, application_id: str) -> str:
    """StartJobRun's ``clientToken`` for one try: 64 hex characters (``[A-Za-z0-9._-]``, 1-64)."""
    return hashlib.sha256(f"{application_id}\x1f{tag}".encode()).hexdigest()


class EmrServerlessJobOperator(AwsBaseOperator):
    """Run one EMR Serverless job to its end; a retry re-attaches to the run of an earlier try.

    :param application_id: the EMR Serverless application. (templated)
    :param execution_role_arn: the job's runtime role. (templated)
    :param job_driver: StartJobRun's ``jobDriver`` (``{"sparkSubmit": {...}}``). (templated)
    :param configuration_overrides: StartJobRun's ``configurationOverrides``; its
        ``monitoringConfiguration`` decides where the driver's logs go. (templated)
    :param name: a readable run name; the task instance's mark is appended to it (the run is
        named after the task instance alone by default). (templated)
    :param tags: tags of the job run. (templated)
    :param execution_timeout_minutes: StartJobRun's ``executionTimeoutMinutes``.
    :param start_application: start the application when it is CREATED or STOPPED (and wait until
        it is STARTED) before submitting; ``False`` fails clearly instead.
    :param application_start_timeout: seconds to wait for the application to be STARTED.
    :param cancel_on_kill: CancelJobRun when the task is killed (deferred: Airflow 3.3+).
    :param on_retry: ``"resume"`` (default): attach to an earlier try's active or succeeded run,
        start a new one after a failed one; ``"restart"``: every try cancels an earlier active run
        and starts a new one.
    :param forward_logs: copy the driver's stdout / stderr into the task log while waiting, when
        the run's monitoring configuration sends them to CloudWatch Logs.
    :param log_limits: ``max_lines_per_poll`` / ``max_bytes_per_poll`` of the log forwarding.
    :param max_runs_scanned: how many of the application's runs since the DAG run started a retry
        reads to find its own; above it the try fails rather than risk a duplicate.

    Connection and waiting parameters are those of
    :class:`~airflow_provider_mwaaops.operators.base.AwsBaseOperator`. Returns the job run id.
    """

    aws_hook_class = EmrServerlessJobHook
    aws_service_label: ClassVar[str] = "EMR Serverless"
    template_fields: Sequence[str] = aws_template_fields(
        "application_id", "execution_role_arn", "job_driver", "configuration_overrides", "name", "tags"
    )
    template_fields_renderers = {"job_driver": "json", "configuration_overrides": "json"}
    operator_extra_links = (EmrServerlessCloudWatchLogsLink(), EmrServerlessS3LogsLink())
    ui_color = "#f7d4a7"

    def __init__(
        self,
        *,
        application_id: str,
        execution_role_arn: str,
        job_driver: dict[str, Any],
        configuration_overrides: dict[str, Any] | None = None,
        name: str | None = None,
        tags: dict[str, str] | None = None,
        execution_timeout_minutes: int | None = None,
        start_application: bool = True,
        application_start_timeout: float = 900.0,
        cancel_on_kill: bool = True,
        on_retry: Literal["resume", "restart"] = "resume",
        forward_logs: bool = True,
        log_limits: dict[str, int] | None = None,
        max_runs_scanned: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        RetryPolicy(on_retry=on_retry)  # fails at parse time for a bad value
        self.on_retry = on_retry
        self.application_id = application_id
        self.execution_role_arn = execution_role_arn
        self.job_driver = job_driver
        self.configuration_overrides = configuration_overrides
        self.name = name
        self.tags = tags
        self.execution_timeout_minutes = execution_timeout_minutes
        self.start_application = start_application
        self.application_start_timeout = application_start_timeout
        self.cancel_on_kill = cancel_on_kill
        self.forward_logs = forward_logs
        self.log_limits = log_limits
        self.max_runs_scanned = max_runs_scanned
        self.job_run_id: str | None = None

    # -- validation (before any AWS call) -------------------------------------------------------
    def _validate(self, run_name: str) -> None:
        for label in ("application_id", "execution_role_arn"):
            value = getattr(self, label)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{label} must be a non-empty string, got {value!r}")
        if not isinstance(self.job_driver, dict) or not self.job_driver:
            raise ValueError(
                f"job_driver must be a dict such as {{'sparkSubmit': {{...}}}}, got {self.job_driver!r}"
            )
        if self.configuration_overrides is not None and not isinstance(self.configuration_overrides, dict):
            raise ValueError(f"configuration_overrides must be a dict, got {self.configuration_overrides!r}")
        if len(run_name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"name {self.name!r} is too long: with the task instance's mark the job run name has "
                f"{len(run_name)} characters, EMR Serverless accepts {MAX_NAME_LENGTH}"
            )

    def run_name(self, attempt: Attempt) -> str:
        return f"{self.name} {attempt.tag()}" if self.name else attempt.tag()

    # -- execute ----------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        attempt = Attempt.from_context(context)
        run_name = self.run_name(attempt)
        self._validate(run_name)
        hook = self.hook
        with self.aws_errors():
            application = hook.application(self.application_id)
            decision = decide(self._runs_of(hook, attempt), attempt, RetryPolicy(on_retry=self.on_retry))
            self.log.info("EMR Serverless: %s", decision.reason)
            if isinstance(decision, Refuse):
                raise AirflowException(decision.reason)
            if isinstance(decision, Attach):
                self.job_run_id = decision.run.run_id
            else:
                for active in decision.stop_first:
                    hook.cancel_run(self.application_id, active.run_id)
                self._ensure_started(hook, application)
                self.job_run_id = hook.start_run(self._request(attempt, run_name))
                self.log.info("Started job run %s (%s)", self.job_run_id, run_name)
            monitoring = self._monitoring(application)
        sources = self._log_sources(monitoring)
        self._persist_log_links(context, monitoring)
        trigger = EmrServerlessJobRunTrigger(
            application_id=self.application_id,
            job_run_id=self.job_run_id,
            cancel_on_kill=self.cancel_on_kill,
            log_sources=[source.as_dict() for source in sources],
            forward_logs=self.forward_logs,
            log_limits=self.log_limits,
            task_instance=attempt.task_instance.as_dict(),
            **self.trigger_kwargs(),
        )
        return self.wait_for(trigger, context)

    def _runs_of(self, hook: EmrServerlessJobHook, attempt: Attempt) -> list[RunSeen]:
        """This task instance's runs since the DAG run started (ListJobRuns, createdAtAfter)."""
        listed = _scan(
            hook.job_run_pages(self.application_id, attempt.since),
            attempt,
            lambda run: run.get("createdAt"),
            self.max_runs_scanned,
            f"job runs of application {self.application_id}",
        )
        seen = []
        for run in listed:
            try_number = attempt.try_of(str(run.get("name") or "").rsplit(" ", 1)[-1])
            if try_number is None:
                continue
            state = run["state"]
            seen.append(
                RunSeen(run["id"], try_number, _serverless_outcome(state), state, run.get("createdAt"))
            )
        return seen

    def _ensure_started(self, hook: EmrServerlessJobHook, application: dict[str, Any]) -> None:
        """StartApplication (and wait for STARTED) unless it is STARTED; clear errors otherwise."""
        state = application.get("state")
        if state == "STARTED":
            return
        if state not in APPLICATION_CAN_START | APPLICATION_WILL_START | {"STOPPING"}:
            raise AirflowException(
                f"EMR Serverless application {self.application_id} is {state}: it cannot run jobs"
            )
        if state != "STARTING" and not self.start_application:
            raise AirflowException(
                f"EMR Serverless application {self.application_id} is {state} and start_application=False: "
                "start it (StartApplication) or let the operator do it"
            )
        if state in APPLICATION_CAN_START | {"STOPPING"}:
            self.log.info("Application %s is %s: starting it", self.application_id, state)
            hook.conn.start_application(applicationId=self.application_id)

        async def started() -> str | None:
            current = hook.application(self.application_id).get("state")
            if current == "TERMINATED":
                raise AirflowException(f"EMR Serverless application {self.application_id} was TERMINATED")
            return current if current == "STARTED" else None

        asyncio.run(
            poll(
                started,
                policy=PollingPolicy(
                    delay=min(self.waiter_delay, 5.0), max_delay=max(self.waiter_delay, 5.0)
                ),
                deadline=time.time() + self.application_start_timeout,
                what=f"application {self.application_id}",
                logger=self.log,
            )
        )
        self.log.info("Application %s is STARTED", self.application_id)

    def _request(self, attempt: Attempt, run_name: str) -> dict[str, Any]:
        request: dict[str, Any] = {
            "applicationId": self.application_id,
            "clientToken": client_token_for(attempt.tag(), self.application_id),
            "executionRoleArn": self.execution_role_arn,
            "jobDriver": self.job_driver,
            "name": run_name,
        }
        if self.configuration_overrides:
            request["configurationOverrides"] = self.configuration_overrides
        if self.tags:
            request["tags"] = self.tags
        if self.execution_timeout_minutes is not None:
            request["executionTimeoutMinutes"] = self.execution_timeout_minutes
        return request

    def _monitoring(self, application: dict[str, Any]) -> dict[str, Any]:
        """The run's monitoring configuration: its own blocks, else the application's."""
        own = (self.configuration_overrides or {}).get("monitoringConfiguration") or {}
        merged = dict(application.get("monitoringConfiguration") or {})
        merged.update({key: value for key, value in own.items() if value})
        return merged

    def _log_sources(self, monitoring: dict[str, Any]) -> list[LogSource]:
        assert self.job_run_id is not None
        found = serverless_log_streams(self.application_id, self.job_run_id, monitoring)
        if found is None:
            location = serverless_s3_log_location(self.application_id, self.job_run_id, monitoring)
            if location:
                self.log.info("The driver's logs go to S3, not CloudWatch Logs: %s", location)
            return []
        group, streams = found
        return [LogSource(group, (stream,), f"driver {stream.rsplit('/', 1)[-1]}") for stream in streams]

    def _persist_log_links(self, context: Context, monitoring: dict[str, Any]) -> None:
        cloudwatch = monitoring.get("cloudWatchLoggingConfiguration") or {}
        if cloudwatch.get("enabled"):
            prefix = cloudwatch.get("logStreamNamePrefix") or ""
            self.persist_link(
                EmrServerlessCloudWatchLogsLink,
                context,
                awslogs_group=cloudwatch.get("logGroupName") or "/aws/emr-serverless",
                stream_prefix=f"{prefix}/applications/{self.application_id}/jobs/{self.job_run_id}",
            )
        log_uri = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
        if log_uri:
            self.persist_link(
                EmrServerlessS3LogsLink,
                context,
                log_uri=log_uri,
                application_id=self.application_id,
                job_run_id=self.job_run_id,
            )

    # -- completion ---------------------------------------------------------------------------------
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = event or {}
        self.job_run_id = event.get("job_run_id") or self.job_run_id
        what = f"EMR Serverless job run {self.job_run_id} (application {self.application_id})"
        status = event.get("status")
        if status == STATUS_SUCCESS:
            self.log.info("%s SUCCESS", what)
            return self.job_run_id
        self.raise_for_event(event, what, self.wait_timeout)
        details = event.get("state_details") or "(no stateDetails)"
        message = f"{what} ended {event.get('job_run_state')}: {details}"
        monitoring = self._monitoring({})
        location = serverless_s3_log_location(self.application_id, str(self.job_run_id), monitoring)
        if location:
            message += f"\nDriver logs in S3: {location}SPARK_DRIVER/"
        self.log.error("%s", message)
        raise AirflowException(message)

    def on_kill(self) -> None:
        if self.cancel_on_kill and self.job_run_id:
            self.log.info("Cancelling job run %s because the task was killed", self.job_run_id)
            self.hook.cancel_run(self.application_id, self.job_run_id)


# == EMR steps =====================================================================================
def step_marker(attempt: Attempt, index: int) -> str:
    """What a step's name ends with: `` @<task-instance key>#<try>:<position>``."""
    return f"{_STEP_MARK}{attempt.tag()}:{index}"


def _parse_step_name(name: str, attempt: Attempt) -> tuple[int, int] | None:
    """(try, position) of a step this task instance submitted, else None."""
    _, mark, marker = name.rpartition(_STEP_MARK)
    if not mark:
        return None
    tag, _, position = marker.rpartition(":")
    try_number = attempt.try_of(tag)
    if try_number is None or not position.isdigit():
        return None
    return try_number, int(position)


@dataclass(frozen=True)
class StepPlan:
    """What a try does with its steps: keep ``kept`` (by position), cancel, submit from ``resubmit_from``."""

    kept: list[str]  # step ids of positions [0, resubmit_from), COMPLETED or still active
    resubmit_from: int | None  # first position submitted again (None: nothing to submit)
    cancel_first: list[str]  # active steps after the resubmission point (ActionOnFailure=CONTINUE)
    reason: str


def plan_steps(count: int, newest: dict[int, dict[str, Any]]) -> StepPlan:
    """Decide from the newest step of each position (a ListSteps summary) what this try submits.

    COMPLETED positions are kept; PENDING / RUNNING ones are re-attached; the first position that
    ended badly or is being cancelled (CANCEL_PENDING, e.g. after a kill), or was never submitted,
    and every position after it are submitted again, in order.
    Steps after that point that are still active are cancelled first, so none runs twice at once.
    """
    kept: list[str] = []
    for index in range(count):
        step = newest.get(index)
        state = step["Status"]["State"] if step else None
        if state in ("COMPLETED", "PENDING", "RUNNING"):  # CANCEL_PENDING ends CANCELLED: rerun it
            kept.append(step["Id"])  # type: ignore[index]
            continue
        cancel = [
            newest[later]["Id"]
            for later in range(index + 1, count)
            if later in newest and newest[later]["Status"]["State"] in ("PENDING", "RUNNING")
        ]
        if step is None and not newest:
            reason = "no step of this task instance yet: submitting all"
        elif step is None:
            reason = f"step {index} was never submitted: submitting it and every step after it"
        else:
            reason = (
                f"step {index} ({step['Name']}) ended {state}: submitting it and the {count - index - 1} "
                f"step(s) after it again; {index} step(s) before it are kept"
            )
        return StepPlan(kept, index, cancel, reason)
    return StepPlan(kept, None, [], "every step is COMPLETED or still active: nothing submitted")


class EmrStepsOperator(AwsBaseOperator):
    """Add steps to an EMR cluster and wait for them; a retry reruns only what did not complete.

    :param job_flow_id: the cluster (``j-...``). (templated)
    :param steps: StepConfig dicts (``Name``, ``ActionOnFailure``, ``HadoopJarStep``), run in
        order. Each step's name gets the task instance's mark appended. (templated)
    :param execution_role_arn: AddJobFlowSteps' ``ExecutionRoleArn`` (runtime roles). (templated)
    :param cancel_on_kill: CancelSteps for this task's PENDING / RUNNING steps when the task is
        killed (deferred: Airflow 3.3+). Other tasks' steps are never touched.
    :param max_steps_scanned: how many of the cluster's steps since the DAG run started a retry
        reads to find its own; above it the try fails rather than risk duplicates.
    :param stderr_tail_lines: lines of a failed step's stderr put into the error.

    Connection and waiting parameters are those of
    :class:`~airflow_provider_mwaaops.operators.base.AwsBaseOperator`. Returns the step ids, in
    the order of ``steps``.
    """

    aws_hook_class = EmrStepsHook
    aws_service_label: ClassVar[str] = "EMR"
    template_fields: Sequence[str] = aws_template_fields("job_flow_id", "steps", "execution_role_arn")
    template_fields_renderers = {"steps": "json"}
    operator_extra_links = (EmrClusterLink(),)
    ui_color = "#f7d4a7"

    def __init__(
        self,
        *,
        job_flow_id: str,
        steps: list[dict[str, Any]],
        execution_role_arn: str | None = None,
        cancel_on_kill: bool = True,
        max_steps_scanned: int = 2000,
        stderr_tail_lines: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_flow_id = job_flow_id
        self.steps = steps
        self.execution_role_arn = execution_role_arn
        self.cancel_on_kill = cancel_on_kill
        self.max_steps_scanned = max_steps_scanned
        self.stderr_tail_lines = stderr_tail_lines
        self.step_ids: list[str] = []

    # -- validation (before any AWS call) -------------------------------------------------------
    def _validate(self, attempt: Attempt) -> None:
        if not isinstance(self.job_flow_id, str) or not self.job_flow_id.strip():
            raise ValueError(
                f"job_flow_id must be a cluster id such as 'j-2AXXXXXXGAPLF', got {self.job_flow_id!r}"
            )
        if not isinstance(self.steps, list) or not self.steps:
            raise ValueError(f"steps must be a non-empty list of StepConfig dicts, got {self.steps!r}")
        if len(self.steps) > MAX_ACTIVE_STEPS:
            raise ValueError(
                f"{len(self.steps)} steps given; a cluster accepts at most {MAX_ACTIVE_STEPS} "
                "PENDING and RUNNING steps"
            )
        for index, step in enumerate(self.steps):
            self._validate_step(index, step, attempt)

    def _validate_step(self, index: int, step: Any, attempt: Attempt) -> None:
        if not isinstance(step, dict):
            raise ValueError(f"steps[{index}] must be a StepConfig dict, got {step!r}")
        name = step.get("Name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"steps[{index}] needs a Name")
        if len(name) + len(step_marker(attempt, index)) > MAX_NAME_LENGTH:
            raise ValueError(
                f"steps[{index}] Name {name!r} is too long: with the task instance's mark it would exceed "
                f"the {MAX_NAME_LENGTH} characters EMR accepts"
            )
        action = step.get("ActionOnFailure", "CONTINUE")
        if action not in ACTIONS_ON_FAILURE:
            raise ValueError(
                f"steps[{index}] ({name}): ActionOnFailure must be one of {ACTIONS_ON_FAILURE}, "
                f"got {action!r}"
            )
        jar = step.get("HadoopJarStep")
        if not isinstance(jar, dict) or not jar.get("Jar"):
            raise ValueError(f"steps[{index}] ({name}): HadoopJarStep with a Jar is required")
        args = jar.get("Args", [])
        bad = [arg for arg in args if not isinstance(arg, str)] if isinstance(args, list) else [args]
        if bad:
            raise ValueError(f"steps[{index}] ({name}): HadoopJarStep Args must be strings, got {bad!r}")

    # -- execute ----------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        attempt = Attempt.from_context(context)
        self._validate(attempt)
        hook = self.hook
        with self.aws_errors():
            cluster = hook.cluster(self.job_flow_id)
            state = cluster["Status"]["State"]
            newest = self._steps_of(hook, attempt)
            plan = plan_steps(len(self.steps), newest)
            self.log.info("EMR steps on %s: %s", self.job_flow_id, plan.reason)
            submitted: list[str] = []
            if plan.resubmit_from is not None:
                if state not in CLUSTER_ACCEPTS_STEPS:
                    why = cluster["Status"].get("StateChangeReason", {}).get("Message", "no reason given")
                    accepted = ", ".join(sorted(CLUSTER_ACCEPTS_STEPS))
                    raise AirflowException(
                        f"EMR cluster {self.job_flow_id} is {state} ({why}): steps can only be added to a "
                        f"cluster that is {accepted}"
                    )
                if plan.cancel_first:
                    self.log.info("Cancelling steps %s before submitting them again", plan.cancel_first)
                    hook.cancel_steps(self.job_flow_id, plan.cancel_first)
                submitted = hook.add_steps(
                    self.job_flow_id, self._named(attempt, plan.resubmit_from), self.execution_role_arn
                )
                self.log.info("Submitted steps %s", submitted)
        self.step_ids = plan.kept + submitted
        self.persist_link(EmrClusterLink, context, job_flow_id=self.job_flow_id)
        trigger = EmrStepsTrigger(
            cluster_id=self.job_flow_id,
            step_ids=self.step_ids,
            cancel_on_kill=self.cancel_on_kill,
            **self.trigger_kwargs(),
        )
        return self.wait_for(trigger, context)

    def _named(self, attempt: Attempt, start: int) -> list[dict[str, Any]]:
        return [
            {**step, "Name": f"{step['Name']}{step_marker(attempt, index)}"}
            for index, step in enumerate(self.steps)
            if index >= start
        ]

    def _steps_of(self, hook: EmrStepsHook, attempt: Attempt) -> dict[int, dict[str, Any]]:
        """The newest step of each position this task instance submitted since its last clear."""
        listed = _scan(
            hook.step_pages(self.job_flow_id),
            attempt,
            lambda step: step["Status"].get("Timeline", {}).get("CreationDateTime"),
            self.max_steps_scanned,
            f"steps on cluster {self.job_flow_id}",
        )
        newest: dict[int, tuple[tuple[int, datetime | float], dict[str, Any]]] = {}
        for step in listed:
            parsed = _parse_step_name(step.get("Name", ""), attempt)
            if parsed is None or parsed[0] < attempt.first_try:
                continue
            try_number, index = parsed
            created = step["Status"].get("Timeline", {}).get("CreationDateTime") or 0.0
            key = (try_number, created.timestamp() if isinstance(created, datetime) else float(created))
            if index not in newest or key > newest[index][0]:
                newest[index] = (key, step)
        return {index: step for index, (_, step) in newest.items() if index < len(self.steps)}

    # -- completion ---------------------------------------------------------------------------------
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = event or {}
        self.step_ids = list(event.get("step_ids") or self.step_ids)
        what = f"{len(self.step_ids)} EMR step(s) on cluster {self.job_flow_id}"
        if event.get("status") == STATUS_SUCCESS:
            self.log.info("%s COMPLETED: %s", what, self.step_ids)
            return self.step_ids
        self.raise_for_event(event, what, self.wait_timeout)
        summary = ", ".join(
            f"{step_id} {state}"
            for step_id, state in zip(self.step_ids, event.get("step_states", []), strict=False)
        )
        message = self._explain(str(event.get("failed_step_id"))) + f"\nSteps of this task: {summary}"
        self.log.error("%s", message)
        raise AirflowException(message)

    def _explain(self, step_id: str) -> str:
        """The failed step in EMR's words: FailureDetails and the tail of its stderr."""
        with self.aws_errors():
            step = self.hook.describe_step(self.job_flow_id, step_id)
        status = step["Status"]
        text = (
            f"EMR step {step_id} ({step.get('Name')}) on cluster {self.job_flow_id} ended {status['State']}"
        )
        details = status.get("FailureDetails") or {}
        if details:
            text += f": {details.get('Reason', '')}"
            if details.get("Message"):
                text += f": {details['Message']}"
            if details.get("LogFile"):
                text += f" (log: {details['LogFile']})"
        reason = (status.get("StateChangeReason") or {}).get("Message")
        if reason:
            text += f"; {reason}"
        log_file = details.get("LogFile")
        if log_file:
            tail = self.hook.log_tail(log_file, self.stderr_tail_lines)
            if tail:
                text += "\nLast lines of the step's stderr:\n  " + "\n  ".join(
                    _short(line, 500) for line in tail
                )
        return text

    def on_kill(self) -> None:
        if not (self.cancel_on_kill and self.step_ids):
            return
        self.log.info(
            "Cancelling this task's active steps on %s because the task was killed", self.job_flow_id
        )
        # Synchronous calls: on_kill runs in a signal handler, possibly inside the wait's event loop.
        self.hook.cancel_active_steps(self.job_flow_id, self.step_ids)
