"""Step Functions calls the redriving operator needs beyond the amazon provider's hook.

Built on :class:`airflow.providers.amazon.aws.hooks.step_function.StepFunctionHook`, so connection
handling, assumed roles and endpoint overrides behave exactly as users know them. What is added
here is the API knowledge behind "find, redrive or start" and "explain why it failed".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook
from botocore.exceptions import ClientError

from airflow_provider_mwaaops.aws.errors import error_code

#: Final statuses that RedriveExecution accepts.
REDRIVABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
#: How many failed Map Run children the failure report looks into.
MAX_FAILED_CHILDREN_REPORTED = 3
#: "the hard limit of 1000 redrives of a given Map Run. If you've exceeded this limit, you'll
#: receive the States.Runtime error" (Step Functions developer guide, Redriving Map Runs).
MAX_MAP_RUN_REDRIVES = 1000

_FAILURE_EVENT_DETAILS = (
    "executionFailedEventDetails",
    "executionTimedOutEventDetails",
    "executionAbortedEventDetails",
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "lambdaFunctionFailedEventDetails",
    "activityFailedEventDetails",
    "mapRunFailedEventDetails",
)


@dataclass
class MapRunReport:
    """What a Distributed Map run did: item counts and the first failed children's errors."""

    map_run_arn: str
    status: str
    item_counts: dict[str, int]
    failed_children: list[str] = field(default_factory=list)
    redrive_count: int = 0

    def describe(self) -> str:
        counts = ", ".join(
            f"{key} {self.item_counts.get(key, 0)}" for key in ("failed", "succeeded", "aborted", "timedOut")
        )
        text = f"Map Run {self.map_run_arn.rsplit(':', 2)[-2]} {self.status}: {counts}"
        if self.redrive_count >= MAX_MAP_RUN_REDRIVES:
            text += (
                f"; redriven {self.redrive_count} times, AWS's hard limit of {MAX_MAP_RUN_REDRIVES}: "
                "a redrive of its parent fails with States.Runtime"
            )
        elif self.redrive_count:
            text += f"; redriven {self.redrive_count} times"
        for child in self.failed_children:
            text += f"\n    child {child}"
        return text


@dataclass
class ExecutionFailure:
    """Why an execution ended badly, in the words of its own history."""

    execution_arn: str
    status: str
    state_name: str | None = None
    error: str | None = None
    cause: str | None = None
    map_runs: list[MapRunReport] = field(default_factory=list)

    def describe(self) -> str:
        name = self.execution_arn.rsplit(":", 1)[-1]
        where = f" in state '{self.state_name}'" if self.state_name else ""
        text = f"Step Functions execution {name} {self.status}{where}"
        if self.error:
            text += f": {self.error}"
        if self.cause:
            text += f" ({_short(self.cause)})"
        for report in self.map_runs:
            text += "\n  " + report.describe()
        return text


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StepFunctionRedriveHook(StepFunctionHook):
    """Step Functions hook with find / start / redrive / explain for one deterministic execution."""

    def get_execution(self, execution_arn: str) -> dict[str, Any] | None:
        """DescribeExecution, or ``None`` when the execution does not exist (yet)."""
        try:
            return self.conn.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise

    def start(self, state_machine_arn: str, name: str, execution_input: str) -> str:
        """StartExecution under a fixed name; a concurrent or repeated start finds the same run.

        AWS treats a StartExecution with the name and input of a running execution as the same
        request; a name already used for a *finished* execution raises ExecutionAlreadyExists, which
        the caller resolves by describing that execution instead.
        """
        response = self.conn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=execution_input
        )
        return response["executionArn"]

    def redrive(self, execution_arn: str, client_token: str) -> str:
        """RedriveExecution with an idempotency token; returns the redrive date (ISO 8601)."""
        response = self.conn.redrive_execution(executionArn=execution_arn, clientToken=client_token)
        return str(response.get("redriveDate", ""))

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self.conn.stop_execution(executionArn=execution_arn, error="Airflow.TaskKilled", cause=cause)
        except ClientError as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise

    def unsuccessful_map_runs(self, execution_arn: str) -> dict[str, dict[str, Any]]:
        """DescribeMapRun of every Map Run of the execution that did not succeed, by ARN."""
        described = {
            m["mapRunArn"]: self.conn.describe_map_run(mapRunArn=m["mapRunArn"])
            for m in self._map_runs(execution_arn)
        }
        return {arn: d for arn, d in described.items() if d.get("status") != "SUCCEEDED"}

    def update_map_runs_once_running(
        self,
        before: dict[str, dict[str, Any]],
        settings: dict[str, Any],
        timeout: float,
        interval: float = 1.0,
    ) -> tuple[list[str], list[str]]:
        """Apply UpdateMapRun to each of ``before`` (DescribeMapRun answers taken before a redrive)
        as soon as the redrive has it RUNNING again; returns (updated, missed) Map Run ARNs.

        UpdateMapRun "updates an in-progress Map Run's configuration" (API reference): AWS documents
        nothing for a Map Run that has ended, so it is never called on one. A Map Run that ends
        before it is seen running again, or is not redriven within ``timeout``, is missed.
        """
        pending = {arn: int(d.get("redriveCount", 0)) for arn, d in before.items()}
        updated: list[str] = []
        missed: list[str] = []
        deadline = time.monotonic() + timeout
        while pending:
            for arn, count in list(pending.items()):
                described = self.conn.describe_map_run(mapRunArn=arn)
                if int(described.get("redriveCount", 0)) <= count:
                    continue  # not redriven yet
                del pending[arn]
                if described.get("status") != "RUNNING":
                    missed.append(arn)
                    continue
                try:
                    self.conn.update_map_run(mapRunArn=arn, **settings)
                    updated.append(arn)
                except ClientError as exc:  # it ended between the two calls
                    self.log.warning("UpdateMapRun of %s failed: %s", arn, exc)
                    missed.append(arn)
            if pending and time.monotonic() >= deadline:
                missed.extend(pending)
                break
            if pending:
                time.sleep(interval)
        return updated, missed

    def definition_change(self, execution_arn: str, state_machine_arn: str) -> str | None:
        """Why a fresh start of ``state_machine_arn`` would not run the definition the execution
        runs, or ``None`` when it would.

        A redrive always reruns the definition the execution started with ("you can't redrive a
        failed workflow using a state machine definition that's different from the initial
        workflow execution"): DescribeStateMachineForExecution has it, DescribeStateMachine (of
        the state machine, the version, or each version an alias routes to) has what runs now.
        """
        started = self.conn.describe_state_machine_for_execution(executionArn=execution_arn)
        described = self.conn.describe_execution(executionArn=execution_arn)
        now = self._definitions_now(state_machine_arn)
        if _parsed(started["definition"]) in [_parsed(d) for d in now]:
            return None
        origin = described.get("stateMachineVersionArn") or described.get("stateMachineArn")
        return (
            f"the definition changed since execution {execution_arn} started (on {origin}): "
            f"{state_machine_arn} now runs a different one, and a redrive reruns the original"
        )

    def _definitions_now(self, state_machine_arn: str) -> list[str]:
        parts = state_machine_arn.split(":")
        qualifier = parts[7] if len(parts) > 7 else None
        if qualifier is None or qualifier.isdigit():
            return [self.conn.describe_state_machine(stateMachineArn=state_machine_arn)["definition"]]
        alias = self.conn.describe_state_machine_alias(stateMachineAliasArn=state_machine_arn)
        return [
            self.conn.describe_state_machine(stateMachineArn=route["stateMachineVersionArn"])["definition"]
            for route in alias.get("routingConfiguration", [])
            if route.get("weight", 0) > 0
        ]

    def output(self, described: dict[str, Any]) -> Any:
        raw = described.get("output")
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    # -- failure explanation ------------------------------------------------------------------
    def explain_failure(self, execution_arn: str) -> ExecutionFailure:
        """Read the execution's history backwards to name the failed state, its error and cause."""
        described = self.conn.describe_execution(executionArn=execution_arn)
        failure = ExecutionFailure(
            execution_arn=execution_arn,
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
        )
        events = self._history(execution_arn)
        failure.state_name, state_error, state_cause = _failed_state(events)
        failure.error = failure.error or state_error
        failure.cause = failure.cause or state_cause
        failure.map_runs = [self._map_run_report(m["mapRunArn"]) for m in self._map_runs(execution_arn)]
        return failure

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        paginator = self.conn.get_paginator("get_execution_history")
        events: list[dict[str, Any]] = []
        for page in paginator.paginate(executionArn=execution_arn, includeExecutionData=True):
            events.extend(page["events"])
        return events

    def _map_runs(self, execution_arn: str) -> list[dict[str, Any]]:
        try:
            return self.conn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
        except ClientError as exc:
            if error_code(exc) in {"ExecutionDoesNotExist", "ResourceNotFound"}:
                return []
            raise

    def _map_run_report(self, map_run_arn: str) -> MapRunReport:
        described = self.conn.describe_map_run(mapRunArn=map_run_arn)
        report = MapRunReport(
            map_run_arn=map_run_arn,
            status=described.get("status", "UNKNOWN"),
            item_counts={k: int(v) for k, v in described.get("itemCounts", {}).items()},
            redrive_count=int(described.get("redriveCount", 0)),
        )
        report.failed_children = self._failed_children(map_run_arn)
        return report

    def _failed_children(self, map_run_arn: str) -> list[str]:
        """'name: error (cause)' of the first failed child executions; best effort."""
        try:
            listed = self.conn.list_executions(mapRunArn=map_run_arn, statusFilter="FAILED")
            children = listed.get("executions", [])[:MAX_FAILED_CHILDREN_REPORTED]
            lines = []
            for child in children:
                described = self.conn.describe_execution(executionArn=child["executionArn"])
                line = f"{child['name']}: {described.get('error') or 'failed'}"
                if described.get("cause"):
                    line += f" ({_short(described['cause'], 200)})"
                lines.append(line)
            return lines
        except ClientError as exc:  # the item counts are still worth reporting without them
            self.log.warning("Could not read the failed children of %s: %s", map_run_arn, exc)
            return []


def _parsed(definition: str) -> Any:
    """A definition as data, so that formatting does not count as a change."""
    try:
        return json.loads(definition)
    except ValueError:
        return definition


def _failed_state(events: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    """(state name, error, cause) of the last failure in a history, if any."""
    entered_by_id = {e["id"]: e for e in events if e["type"].endswith("StateEntered")}
    by_id = {e["id"]: e for e in events}
    for event in reversed(events):
        details = next((event[key] for key in _FAILURE_EVENT_DETAILS if key in event), None)
        if details is None or event["type"].startswith("Execution"):
            continue
        state = None
        cursor: dict[str, Any] | None = event
        while cursor is not None:  # walk back to the state that scheduled this event
            if cursor["id"] in entered_by_id:
                state = cursor.get("stateEnteredEventDetails", {}).get("name")
                break
            cursor = by_id.get(cursor.get("previousEventId", 0))
        return state, details.get("error"), details.get("cause")
    return None, None, None
