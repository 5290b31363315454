"""Run a Step Functions execution to the end; on retry, redrive it from the point of failure.

Each try of the task owns one execution name, derived from dag_id / task_id / run_id / map_index,
so every try can find what an earlier try (or a worker that died) left behind:

========================  ==========================================================
execution found           what the try does
========================  ==========================================================
none                      StartExecution under the derived name
RUNNING, PENDING_REDRIVE  attaches and waits (no second execution)
SUCCEEDED                 returns its output, starts nothing
FAILED/TIMED_OUT/ABORTED  RedriveExecution (idempotent per try) when redrivable;
                          otherwise fails clearly, or starts a fresh execution when
                          ``if_not_redrivable="start_new"``
========================  ==========================================================

An execution started through a version or an alias ARN has the state machine's execution ARN, so
a retry finds it the same way; its redrive reruns the version it started on (AWS redrives the
original definition). When the definition a fresh start would run differs from that one,
``if_definition_changed`` decides.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.providers.amazon.aws.links.step_function import (
    StateMachineDetailsLink,
    StateMachineExecutionsDetailsLink,
)
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.aws.arn import StateMachineArn, execution_arn_for, validate_sfn_name
from airflow_provider_mwaaops.aws.errors import error_code
from airflow_provider_mwaaops.compat import AirflowException
from airflow_provider_mwaaops.hooks.step_function import (
    MAX_MAP_RUN_REDRIVES,
    REDRIVABLE_STATUSES,
    StepFunctionRedriveHook,
)
from airflow_provider_mwaaops.operators.base import AwsBaseOperator, aws_template_fields
from airflow_provider_mwaaops.triggers.base import STATUS_FAILURE, STATUS_SUCCESS, AwsPollingTrigger
from airflow_provider_mwaaops.triggers.step_function import WAITING_STATUSES, StepFunctionExecutionTrigger

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

#: StartExecution rejects an input above 256 KB (UTF-8 bytes).
MAX_INPUT_BYTES = 256 * 1024
MAX_NAME_LENGTH = 80
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: How long a try waits, after redriving, for an unsuccessful Map Run to run again to update it.
MAP_RUN_RESTART_TIMEOUT_S = 60.0
DEFINITION_POLICIES = ("redrive", "start_new", "fail")
_MAP_RUN_SETTINGS = {
    "max_concurrency": "maxConcurrency",
    "tolerated_failure_count": "toleratedFailureCount",
    "tolerated_failure_percentage": "toleratedFailurePercentage",
}


def execution_name_for(dag_id: str, task_id: str, run_id: str, map_index: int | None = -1) -> str:
    """A valid, deterministic execution name for one task instance (<= 80 characters).

    The readable part is sanitised and may be cut; the hash of the exact, unsanitised identity
    keeps two task instances from ever sharing a name (``a:b`` and ``a_b`` sanitise alike).
    """
    identity = f"{dag_id}\x1f{task_id}\x1f{run_id}\x1f{map_index if map_index is not None else -1}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    parts = [dag_id, task_id, run_id] + ([str(map_index)] if map_index is not None and map_index >= 0 else [])
    readable = _NAME_UNSAFE.sub("_", ".".join(parts)).strip("._-") or "airflow"
    return f"{readable[: MAX_NAME_LENGTH - len(digest) - 1]}-{digest}"


def _generation_name(base: str, generation: int) -> str:
    """Name of the n-th fresh execution started after a NOT_REDRIVABLE one (n >= 1)."""
    if generation == 0:
        return base
    suffix = f"-n{generation}"
    return base[: MAX_NAME_LENGTH - len(suffix)] + suffix


def _client_token(execution_arn: str, try_number: int) -> str:
    """Same token for the same try, so a repeated RedriveExecution call is a no-op."""
    return hashlib.sha256(f"{execution_arn}\x1f{try_number}".encode()).hexdigest()[:32]


def _map_runs_at_redrive_limit(map_runs: dict[str, dict[str, Any]]) -> str | None:
    """Why a redrive would fail with States.Runtime (a Map Run redriven 1000 times), or None."""
    for arn, described in map_runs.items():
        count = int(described.get("redriveCount", 0))
        if count >= MAX_MAP_RUN_REDRIVES:
            return (
                f"Map Run {arn} has been redriven {count} times, AWS's hard limit of {MAX_MAP_RUN_REDRIVES} "
                "(a redrive would fail with States.Runtime)"
            )
    return None


def _started_through(described: dict[str, Any]) -> str:
    """' (started through alias ... on version ...)' for an execution of a version or alias."""
    alias, version = described.get("stateMachineAliasArn"), described.get("stateMachineVersionArn")
    if alias:
        return f" (started through alias {alias}, on version {version}: the redrive reruns that version)"
    if version:
        return f" (started on version {version}: the redrive reruns that version)"
    return ""


def serialize_input(value: Any) -> str:
    """The execution input as the JSON string StartExecution takes; fails early on bad input."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"input must be JSON (a dict, list or JSON string); got a non-JSON string: {exc}"
            ) from exc
        text = value
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input is not JSON-serialisable: {exc}") from exc
    size = len(text.encode())
    if size > MAX_INPUT_BYTES:
        raise ValueError(f"input is {size} bytes; Step Functions accepts at most {MAX_INPUT_BYTES} bytes")
    return text


class StepFunctionExecutionOperator(AwsBaseOperator):
    """Run an AWS Step Functions (Standard) execution to completion; retries redrive it.

    :param state_machine_arn: state machine, version or alias ARN. (templated)
    :param input: execution input: dict, list or JSON string. (templated)
    :param name: execution name; by default derived from dag_id / task_id / run_id / map_index so
        that every try finds the execution of the previous one. (templated)
    :param redrive: on a retry whose execution ended FAILED / TIMED_OUT / ABORTED, redrive it
        (only failed states rerun). ``False`` starts a fresh execution on every retry instead.
    :param if_not_redrivable: when AWS refuses a redrive (older than 14 days, definition changed
        since the start, ...): ``"fail"`` the task with the reason, or ``"start_new"`` execution.
    :param if_definition_changed: what a retry does when the execution it would redrive started
        on a different definition than the one ``state_machine_arn`` runs now (the state machine
        was updated, the alias points at another version). AWS redrives the *original* definition,
        so a fixed definition does not reach a redrive. ``"redrive"`` (default: no second
        execution, completed states are not run again) redrives the original with a warning in
        the log and in the error if it fails again; ``"start_new"`` starts a fresh execution on the
        new definition (``<name>-n1``, every state runs again); ``"fail"`` fails the task, saying
        why.
    :param map_run_update: applied with UpdateMapRun to the execution's unsuccessful Distributed
        Map runs once a redrive has them running again (AWS documents UpdateMapRun for a Map Run
        in progress only): ``max_concurrency``, ``tolerated_failure_count``,
        ``tolerated_failure_percentage``. (templated)
    :param stop_on_kill: stop the execution when the task is killed (while deferred: Airflow 3.3+).
    :param max_output_xcom_bytes: outputs larger than this are not pushed to XCom; a pointer to
        the execution is returned instead.

    The AWS connection and waiting parameters (``aws_conn_id``, ``region_name``, ``verify``,
    ``botocore_config``, ``deferrable``, ``waiter_delay``, ``waiter_max_delay``, ``wait_timeout``,
    ``waiter_max_attempts``) are those of :class:`~airflow_provider_mwaaops.operators.base.AwsBaseOperator`.

    XCom: return value is the execution's output (parsed JSON); keys ``execution_arn``,
    ``redrive_count`` and ``execution_status`` hold the rest.
    """

    aws_hook_class = StepFunctionRedriveHook
    aws_service_label: ClassVar[str] = "Step Functions"
    template_fields: Sequence[str] = aws_template_fields(
        "state_machine_arn", "input", "name", "map_run_update"
    )
    template_fields_renderers = {"input": "json", "map_run_update": "json"}
    operator_extra_links = (StateMachineDetailsLink(), StateMachineExecutionsDetailsLink())
    ui_color = "#f9c3a5"

    def __init__(
        self,
        *,
        state_machine_arn: str,
        input: dict[str, Any] | list[Any] | str | None = None,
        name: str | None = None,
        redrive: bool = True,
        if_not_redrivable: Literal["fail", "start_new"] = "fail",
        if_definition_changed: Literal["redrive", "start_new", "fail"] = "redrive",
        map_run_update: dict[str, Any] | None = None,
        stop_on_kill: bool = True,
        max_output_xcom_bytes: int = 64 * 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_not_redrivable not in ("fail", "start_new"):
            raise ValueError(f"if_not_redrivable must be 'fail' or 'start_new', got {if_not_redrivable!r}")
        if if_definition_changed not in DEFINITION_POLICIES:
            raise ValueError(
                f"if_definition_changed must be one of {', '.join(DEFINITION_POLICIES)}, "
                f"got {if_definition_changed!r}"
            )
        self.state_machine_arn = state_machine_arn
        self.input = input
        self.name = name
        self.redrive = redrive
        self.if_not_redrivable = if_not_redrivable
        self.if_definition_changed = if_definition_changed
        self.map_run_update = map_run_update
        self.stop_on_kill = stop_on_kill
        self.max_output_xcom_bytes = max_output_xcom_bytes
        self.execution_arn: str | None = None

    # -- validation (before any AWS call) -----------------------------------------------------
    def _validated(self, context: Context) -> tuple[StateMachineArn, str, str, dict[str, Any]]:
        machine = StateMachineArn.parse(self.state_machine_arn)
        execution_input = serialize_input(self.input)
        ti = context["ti"]
        name = self.name or execution_name_for(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))
        validate_sfn_name(name, "execution name")
        map_run_update = {}
        for key, value in (self.map_run_update or {}).items():
            if key not in _MAP_RUN_SETTINGS:
                raise ValueError(f"map_run_update: unknown setting {key!r}; use {sorted(_MAP_RUN_SETTINGS)}")
            map_run_update[_MAP_RUN_SETTINGS[key]] = value
        return machine, execution_input, name, map_run_update

    # -- execute ------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        machine, execution_input, name, map_run_update = self._validated(context)
        hook = self.hook
        with self.aws_errors():
            self.execution_arn, action = self._start_or_resume(
                hook, machine, name, execution_input, map_run_update, context["ti"].try_number
            )
        self.log.info("Execution %s: %s", self.execution_arn, action)
        self.persist_link(StateMachineDetailsLink, context, state_machine_arn=machine.unqualified)
        self.persist_link(StateMachineExecutionsDetailsLink, context, execution_arn=self.execution_arn)
        return self.wait_for(self._trigger(), context)

    def _trigger(self) -> AwsPollingTrigger:
        assert self.execution_arn is not None
        return StepFunctionExecutionTrigger(
            execution_arn=self.execution_arn, stop_on_kill=self.stop_on_kill, **self.trigger_kwargs()
        )

    def _start_or_resume(
        self,
        hook: StepFunctionRedriveHook,
        machine: StateMachineArn,
        base_name: str,
        execution_input: str,
        map_run_update: dict[str, Any],
        try_number: int,
    ) -> tuple[str, str]:
        """Find this task's execution and bring it to RUNNING (or SUCCEEDED); say what was done."""
        generation = 0
        while True:
            name = _generation_name(base_name, generation)
            execution_arn = execution_arn_for(machine, name)
            described = hook.get_execution(execution_arn)
            if described is None:
                return self._start(hook, machine, name, execution_input), "started"
            status = described["status"]
            if status in WAITING_STATUSES:
                return execution_arn, f"already {status}, attaching to it"
            if status == "SUCCEEDED":
                return execution_arn, "already SUCCEEDED, nothing to run"
            if status not in REDRIVABLE_STATUSES:
                raise AirflowException(f"execution {execution_arn} has unexpected status {status!r}")
            redrive_status = described.get("redriveStatus", "NOT_REDRIVABLE")
            reason = described.get("redriveStatusReason") or "redrive disabled (redrive=False)"
            if self.redrive and redrive_status == "REDRIVABLE":
                before = hook.unsuccessful_map_runs(execution_arn)
                at_limit = _map_runs_at_redrive_limit(before)
                if not at_limit:
                    policy = self._definition_policy(hook, execution_arn, machine)
                    if policy == "redrive":
                        action = self._redrive(
                            hook, execution_arn, status, map_run_update, before, try_number
                        )
                        return execution_arn, f"{action}{_started_through(described)}"
                    generation += 1  # "start_new": a fresh execution on the new definition
                    continue
                reason = at_limit
            if redrive_status == "REDRIVABLE_BY_MAP_RUN":
                raise AirflowException(
                    f"execution {execution_arn} is a Distributed Map child run; it can only be redriven "
                    "through its parent execution's Map Run"
                )
            if self.redrive and self.if_not_redrivable == "fail":
                raise AirflowException(
                    f"execution {execution_arn} ended {status} and cannot be redriven: {reason}. "
                    "Set if_not_redrivable='start_new' to start a fresh execution instead."
                )
            self.log.warning("Execution %s ended %s and is not redriven (%s)", execution_arn, status, reason)
            generation += 1

    def _definition_policy(
        self, hook: StepFunctionRedriveHook, execution_arn: str, machine: StateMachineArn
    ) -> str:
        """``"redrive"`` or ``"start_new"``; raises for ``if_definition_changed="fail"``."""
        change = hook.definition_change(execution_arn, str(machine))
        if change is None:
            return "redrive"
        if self.if_definition_changed == "fail":
            raise AirflowException(
                f"{change}. if_definition_changed='fail': set it to 'redrive' (rerun the original "
                "definition from the point of failure) or 'start_new' (a fresh execution on the new one)"
            )
        if self.if_definition_changed == "start_new":
            self.log.warning(
                "%s; starting a fresh execution on it (if_definition_changed='start_new')", change
            )
            return "start_new"
        self.log.warning(
            "%s; redriving the original definition (if_definition_changed='redrive'). Set "
            "if_definition_changed='start_new' to run the new one instead.",
            change,
        )
        return "redrive"

    def _start(self, hook: StepFunctionRedriveHook, machine: StateMachineArn, name: str, payload: str) -> str:
        # The type is the state machine's, whatever version or alias the ARN names (and
        # DescribeStateMachine documents version ARNs, not alias ARNs).
        machine_type = hook.conn.describe_state_machine(stateMachineArn=machine.unqualified).get(
            "type", "STANDARD"
        )
        if machine_type == "EXPRESS":
            # Express executions have no DescribeExecution, no history and no redrive: nothing this
            # operator promises (find, re-attach, redrive) is possible, so refuse before starting one.
            raise AirflowException(
                f"{machine} is an EXPRESS state machine; this operator runs STANDARD workflows "
                "(Express executions cannot be described, re-attached or redriven)"
            )
        try:
            return hook.start(str(machine), name, payload)
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            # Another try (or a worker that died mid-call) started it first: use that execution.
            return execution_arn_for(machine, name)

    def _redrive(
        self,
        hook: StepFunctionRedriveHook,
        execution_arn: str,
        status: str,
        map_run_update: dict[str, Any],
        before: dict[str, dict[str, Any]],
        try_number: int,
    ) -> str:
        self.log.info(
            "Explaining the previous failure before redriving:\n%s",
            hook.explain_failure(execution_arn).describe(),
        )
        redrive_date = hook.redrive(execution_arn, _client_token(execution_arn, try_number))
        if map_run_update and before:
            updated, missed = hook.update_map_runs_once_running(
                before, map_run_update, MAP_RUN_RESTART_TIMEOUT_S, interval=min(1.0, self.waiter_delay)
            )
            self.log.info("Updated %d redriven Map Run(s): %s", len(updated), map_run_update)
            for arn in missed:
                self.log.warning(
                    "Map Run %s was not seen running again within %.0f s of the redrive (it may have "
                    "ended first): map_run_update was not applied to it",
                    arn,
                    MAP_RUN_RESTART_TIMEOUT_S,
                )
        return f"ended {status}; redriven at {redrive_date}"

    # -- completion ---------------------------------------------------------------------------
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        event = event or {}
        self.execution_arn = event.get("execution_arn") or self.execution_arn
        status = event.get("status")
        if status == STATUS_SUCCESS:
            return self._succeeded(context, event)
        if status != STATUS_FAILURE:
            self.raise_for_event(event, f"execution {self.execution_arn}", self.wait_timeout)
        failure = self.hook.explain_failure(str(self.execution_arn))
        context["ti"].xcom_push(key="execution_status", value=failure.status)
        context["ti"].xcom_push(key="redrive_count", value=event.get("redrive_count", 0))
        message = failure.describe() + self._definition_note()
        self.log.error("%s", message)
        raise AirflowException(message)

    def _definition_note(self) -> str:
        """Why a redrive of this execution runs an old definition, if it does; best effort."""
        try:
            change = self.hook.definition_change(str(self.execution_arn), self.state_machine_arn)
        except ClientError as exc:
            self.log.warning("Could not compare the execution's definition with the current one: %s", exc)
            return ""
        if change is None:
            return ""
        return (
            f"\nNote: {change}. A retry redrives the original definition unless "
            "if_definition_changed='start_new'."
        )

    def _succeeded(self, context: Context, event: dict[str, Any]) -> Any:
        hook = self.hook
        described = hook.conn.describe_execution(executionArn=self.execution_arn)
        ti = context["ti"]
        ti.xcom_push(key="execution_arn", value=self.execution_arn)
        ti.xcom_push(key="execution_status", value=described["status"])
        ti.xcom_push(key="redrive_count", value=int(described.get("redriveCount", 0)))
        output_size = len((described.get("output") or "").encode())
        self.log.info(
            "Execution %s SUCCEEDED (redrive count %s, output %d bytes)",
            self.execution_arn,
            described.get("redriveCount", 0),
            output_size,
        )
        if output_size > self.max_output_xcom_bytes:
            return {"execution_arn": self.execution_arn, "output_bytes": output_size, "output_in_xcom": False}
        return hook.output(described)

    def on_kill(self) -> None:
        if self.stop_on_kill and self.execution_arn:
            self.log.info("Stopping %s because the task was killed", self.execution_arn)
            self.hook.stop(self.execution_arn, cause="The Airflow task running this execution was killed.")
