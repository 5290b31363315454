"""Glue workflow runs whose graph really runs: triggers fire on node states and start job runs.

Like job runs, workflow runs advance when read (``glue_job_runs.settle``): a trigger whose
predicate became true fires at the moment it became true, and the runs it starts begin then.
Rules, with their AWS pages (Glue developer guide and API reference, "Workflows"):

- StartWorkflowRun fires the workflow's start trigger (every trigger of the workflow that is not
  CONDITIONAL: ON_DEMAND, SCHEDULED or EVENT) at once. A CONDITIONAL trigger fires once per run,
  when it is ACTIVATED ("To temporarily stop a trigger from firing, you can deactivate it";
  StartOnCreation "start ... CONDITIONAL triggers when created") and its predicate holds on the
  run's nodes: each condition is a job (State SUCCEEDED / STOPPED / FAILED / TIMEOUT) or crawler
  (CrawlState SUCCEEDED / FAILED / CANCELLED) that ended so in this run; Logical AND needs all,
  ANY one ("AWS Glue triggers"; Condition, Predicate).
- Jobs started by a trigger get the action's Arguments, Timeout, SecurityConfiguration and
  NotificationProperty, ``TriggerName`` and ``PredecessorRuns`` (the runs that satisfied the
  predicate) (Action, JobRun, Predecessor); their script also gets ``--WORKFLOW_NAME`` and
  ``--WORKFLOW_RUN_ID`` ("Getting and setting workflow run properties"), which, as in the sample
  JobRun of "Repairing and resuming a workflow run", are not listed in the run's Arguments.
- A run is RUNNING until no job or crawl it started is active and no trigger can fire; then it is
  COMPLETED, "even if one or more nodes ... don't complete" (resuming-workflow notes).
  StopWorkflowRun: "all running jobs and crawlers are immediately terminated, and jobs and
  crawlers that are not yet started never start ... The workflow run status goes from Running to
  Stopping, and ... to Stopped" ("Stopping a workflow run"); only a RUNNING run can be stopped
  (IllegalWorkflowStateException, StopWorkflowRun Errors; message text not documented).
- Workflow MaxConcurrentRuns: a run started beyond it has Status ERROR and ErrorMessage
  "Concurrent runs exceeded for workflow: <name>." ("Currently the only error message", WorkflowRun
  ErrorMessage). Without MaxConcurrentRuns "there is no limit".
- Statistics count the job runs and crawls the run started (WorkflowRunStatistics: Total, Timeout,
  Failed, Stopped, Succeeded, Running (STARTING / RUNNING / STOPPING), Errored, Waiting). For a
  resumed run, the copied nodes' runs are not counted: AWS does not say.
- ResumeWorkflowRun ("Repairing and resuming a workflow run", notes and limitations;
  ResumeWorkflowRun): only a run in the COMPLETED state (else IllegalWorkflowStateException); from
  "any job or crawler node that the original workflow run attempted to run", never a trigger node
  ("The nodes that are to be restarted must have a run attempt in the original run"; AWS does not
  document the error for a bad node id: InvalidInputException here). "The selected nodes and all
  nodes that are downstream from the selected nodes are run"; selecting a node downstream of
  another selected one "is redundant", and the answer's NodeIds lists only the nodes "actually
  restarted". The resumed run "is tracked as a separate workflow run with a new run ID" whose
  PreviousRunId is the resumed run, and "the run graph is a complete graph": nodes that do not
  run again show the original run's details. "You can resume the same workflow run multiple
  times", and resume a resumed run. Past the workflow's MaxConcurrentRuns:
  ConcurrentRunsExceededException (ResumeWorkflowRun Errors; message as in WorkflowRun
  ErrorMessage). Not documented, chosen here: the resumed run keeps the original's trigger
  snapshot and copies its run properties; downstream nodes that do not run again show no runs.
- A fresh run has no PreviousRunId (moto gave it the previous run's id): in AWS's workflow history
  "The first row has both a run ID and previous run ID. The second row has only a run ID".
- Not emulated: standalone conditional triggers (outside workflows), scheduled and event starts,
  EventBatchingCondition, blueprints. Crawler nodes run moto's crawls, which end at their first
  read unless moto's "glue::crawl" transition says otherwise.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.glue.exceptions import (
    ConcurrentRunsExceededException,
    EntityNotFoundException,
    InvalidInputException,
)
from moto.glue.models import FakeJobRun, FakeWorkflow, FakeWorkflowRun, GlueBackend

from airflow_provider_mwaaops.testing.extensions.glue_job_runs import (
    GLUE_LOCK,
    SETTLERS,
    RunRequest,
    error_run,
    life_of,
    new_run,
    request_stop,
    run_fields,
    settle,
    utcnow,
)
from airflow_provider_mwaaops.testing.extensions.glue_scripts import ScriptError
from airflow_provider_mwaaops.testing.extensions.glue_workflow_graph import (
    Action,
    TriggerSnapshot,
    WorkflowGraph,
    build_graph,
)

#: Crawl states (Crawl structure) for moto's crawl statuses.
CRAWL_STATES = {
    "RUNNING": "RUNNING",
    "STOPPING": "CANCELLING",
    "COMPLETED": "SUCCEEDED",
    "STOPPED": "CANCELLED",
}
CRAWL_TERMINAL = frozenset({"SUCCEEDED", "CANCELLED", "FAILED", "ERROR"})
RUNNING_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "CANCELLING"})


class IllegalWorkflowStateException(JsonRESTError):
    """AWS's error code (moto's class of the same name answers "IllegalWorkflowRunStateException")."""

    code = 400

    def __init__(self, message: str):
        super().__init__("IllegalWorkflowStateException", message)


def concurrent_runs_message(workflow_name: str) -> str:
    return f"Concurrent runs exceeded for workflow: {workflow_name}."


# -- crawls started by a workflow ------------------------------------------------------------------------
class CrawlRecord:
    """A crawl a workflow started; moto's crawl decides its state, first seen ends are kept."""

    def __init__(self, crawler_name: str, crawl: Any, started_at: datetime, error: str | None = None):
        self.crawler_name = crawler_name
        self.crawl = crawl
        self.started_at = started_at
        self.error = error
        self._ended: datetime | None = started_at if crawl is None else None

    def state_at(self, moment: datetime) -> str:
        if self.crawl is None:
            return "FAILED"
        self.crawl.advance()  # moto moves a crawl on when it is read ("glue::crawl" transition)
        state = CRAWL_STATES.get(str(self.crawl.status), str(self.crawl.status))
        if state in CRAWL_TERMINAL and self._ended is None:
            self._ended = max(moment, self.started_at)
        return state

    def ended_at(self, moment: datetime) -> datetime | None:
        return self._ended if self.state_at(moment) in CRAWL_TERMINAL else None

    def describe(self, moment: datetime) -> dict[str, Any]:
        described: dict[str, Any] = {"State": self.state_at(moment), "StartedOn": self.started_at}
        if self._ended is not None:
            described["CompletedOn"] = self._ended
        if self.error:
            described["ErrorMessage"] = self.error
        if self.crawl is not None:
            described.update(LogGroup=self.crawl.log_group, LogStream=self.crawl.log_stream)
        return described


def item_state(item: Any, moment: datetime) -> str:
    life = life_of(item)
    return life.state_at(moment) if life is not None else item.state_at(moment)


def item_ended(item: Any, moment: datetime) -> datetime | None:
    life = life_of(item)
    return life.ended_at(moment) if life is not None else item.ended_at(moment)


# -- the state of one workflow run ----------------------------------------------------------------------
@dataclasses.dataclass
class RunState:
    """What the emulator keeps for a workflow run (on moto's FakeWorkflowRun as ``_mwaaops_state``)."""

    graph: WorkflowGraph
    started_at: datetime
    #: node ids whose runs belong to this run; None: every node (a run that was not resumed)
    own_nodes: frozenset[str] | None = None
    #: triggers that may fire in this run; None: every one
    eligible: frozenset[str] | None = None
    #: node id -> runs copied from the run this one resumes (nodes outside own_nodes)
    copied: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    node_runs: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    fired: dict[str, datetime] = dataclasses.field(default_factory=dict)
    status: str = "RUNNING"
    stop_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None

    def runs_of(self, node_id: str) -> list[Any]:
        """The node's runs as this run shows them (its own, or copied from the resumed run)."""
        if self.own_nodes is None or node_id in self.own_nodes:
            return self.node_runs.get(node_id, [])
        return self.copied.get(node_id, [])

    def own_items(self) -> list[Any]:
        return [item for items in self.node_runs.values() for item in items]


def state_of(run: FakeWorkflowRun) -> RunState | None:
    return getattr(run, "_mwaaops_state", None)


# -- firing triggers ---------------------------------------------------------------------------------------
def _fire_time(state: RunState, trigger: TriggerSnapshot, now: datetime) -> tuple[datetime, list[Any]] | None:
    """When the trigger's predicate became true in this run (by ``now``), and the runs it used."""
    if not trigger.conditions:
        return None
    matches: list[tuple[datetime, Any] | None] = []
    for condition in trigger.conditions:
        best: tuple[datetime, Any] | None = None
        for item in state.runs_of(state.graph.node_id(condition.type, condition.name)):
            ended = item_ended(item, now)
            if (
                ended is not None
                and item_state(item, now) == condition.state
                and (best is None or ended < best[0])
            ):
                best = (ended, item)
        matches.append(best)
    hits = [match for match in matches if match is not None]
    if trigger.logical == "ANY":
        if not hits:
            return None
        first = min(hits, key=lambda hit: hit[0])
        moment, used = first[0], [first[1]]
    else:
        if len(hits) != len(matches):
            return None
        moment, used = max(hit[0] for hit in hits), [hit[1] for hit in hits]
    moment = max(moment, state.started_at)
    if moment > now or (state.stop_at is not None and moment >= state.stop_at):
        return None
    return moment, used


def _next_firing(state: RunState, now: datetime) -> tuple[datetime, TriggerSnapshot, list[Any]] | None:
    best = None
    for trigger in state.graph.triggers:
        if trigger.type != "CONDITIONAL" or trigger.state != "ACTIVATED" or trigger.name in state.fired:
            continue
        if state.eligible is not None and trigger.name not in state.eligible:
            continue
        found = _fire_time(state, trigger, now)
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], trigger, found[1])
    return best


def _predecessors(items: list[Any]) -> list[dict[str, str]]:
    return [
        {"JobName": item.job_name, "RunId": item.job_run_id} for item in items if life_of(item) is not None
    ]


def start_action(
    backend: GlueBackend,
    workflow_run: FakeWorkflowRun,
    action: Action,
    at: datetime,
    trigger_name: str | None,
    predecessors: list[dict[str, str]],
) -> Any:
    """Start one action of a trigger: a job run (or its ERROR / FAILED stand-in) or a crawl."""
    if action.type == "CRAWLER":
        return _start_crawl(backend, action.name, at)
    job = backend.jobs.get(action.name)
    if job is None:
        run = error_run(action.name, at, action.arguments)
    else:
        request = RunRequest(
            arguments=action.arguments,
            timeout=action.timeout,
            security_configuration=action.security_configuration,
            notification_property=action.notification_property,
        )
        workflow_arguments = {
            "--WORKFLOW_NAME": workflow_run.workflow_name,
            "--WORKFLOW_RUN_ID": workflow_run.run_id,
        }
        try:
            run = new_run(backend, job, request, at, from_trigger=True, extra_arguments=workflow_arguments)
        except ScriptError as err:
            run = error_run(action.name, at, action.arguments)
            life_of(run).forced = ("FAILED", f"mwaaops emulator: bad {action.name} script: {err}")  # type: ignore[union-attr]
    life = life_of(run)
    assert life is not None
    life.trigger_name = trigger_name
    life.predecessors = predecessors
    return run


def _start_crawl(backend: GlueBackend, crawler_name: str, at: datetime) -> CrawlRecord:
    crawler = backend.crawlers.get(crawler_name)
    if crawler is None:
        return CrawlRecord(crawler_name, None, at)
    try:
        crawler.start_crawler()
    except JsonRESTError as err:
        return CrawlRecord(crawler_name, None, at, error=err.message)
    return CrawlRecord(crawler_name, crawler.crawls[-1], at)


def fire(
    backend: GlueBackend,
    workflow_run: FakeWorkflowRun,
    trigger: TriggerSnapshot,
    at: datetime,
    used: list[Any] | None = None,
) -> None:
    state = state_of(workflow_run)
    assert state is not None
    state.fired[trigger.name] = at
    predecessors = _predecessors(used or [])
    for action in trigger.actions:
        node_id = state.graph.node_id(action.type, action.name)
        item = start_action(backend, workflow_run, action, at, trigger.name, predecessors)
        state.node_runs.setdefault(node_id, []).append(item)


def advance(backend: GlueBackend, workflow_run: FakeWorkflowRun, now: datetime) -> bool:
    """Fire what has become due in the run by ``now`` and end the run once it is quiet."""
    state = state_of(workflow_run)
    if state is None or state.status not in ("RUNNING", "STOPPING"):
        return False
    fired = False
    while state.status == "RUNNING":
        due = _next_firing(state, now)
        if due is None:
            break
        fire(backend, workflow_run, due[1], due[0], due[2])
        fired = True
    ends = [item_ended(item, now) for item in state.own_items()]
    if all(end is not None for end in ends):
        moments = [end for end in ends if end is not None]
        if state.status == "RUNNING":
            state.status = "COMPLETED"
            state.completed_at = max([state.started_at, *state.fired.values(), *moments])
        else:
            state.status = "STOPPED"
            state.completed_at = max([state.stop_at or state.started_at, *moments])
    return fired


def settle_workflows(backend: GlueBackend, now: datetime) -> bool:
    changed = False
    for workflow in list(backend.workflows.values()):
        for workflow_run in list(workflow.runs.values()):
            changed |= advance(backend, workflow_run, now)
    return changed


# -- the API's operations ---------------------------------------------------------------------------------
def get_workflow(backend: GlueBackend, name: str) -> FakeWorkflow:
    workflow = backend.workflows.get(name)
    if workflow is None:
        raise EntityNotFoundException("Entity not found")  # moto's text; AWS documents none
    return workflow


def active_runs(workflow: FakeWorkflow) -> int:
    states = (state_of(run) for run in workflow.runs.values())
    return sum(1 for state in states if state is not None and state.status in ("RUNNING", "STOPPING"))


def _over_limit(workflow: FakeWorkflow) -> bool:
    limit = workflow.max_concurrent_runs
    return bool(limit) and active_runs(workflow) >= int(limit or 0)


def _new_workflow_run(
    workflow: FakeWorkflow, properties: dict[str, str], now: datetime, previous_run_id: str | None = None
) -> FakeWorkflowRun:
    run = FakeWorkflowRun(workflow_name=workflow.name, previous_run_id=previous_run_id, properties=properties)
    run.started_on = now
    workflow.runs[run.run_id] = run
    return run


def start_workflow_run(backend: GlueBackend, name: str, properties: dict[str, str] | None) -> str:
    with GLUE_LOCK:
        workflow = get_workflow(backend, name)
        now = settle(backend)
        merged = {**(workflow.default_run_properties or {}), **(properties or {})}
        over_limit = _over_limit(workflow)
        run = _new_workflow_run(workflow, merged, now)
        state = run._mwaaops_state = RunState(graph=build_graph(backend, name), started_at=now)  # type: ignore[attr-defined]
        if over_limit:
            state.status, state.error_message = "ERROR", concurrent_runs_message(name)
            return run.run_id
        for trigger in state.graph.triggers:
            if trigger.type != "CONDITIONAL":
                fire(backend, run, trigger, now)
        settle(backend, now)
        return run.run_id


def get_run(workflow: FakeWorkflow, run_id: str) -> tuple[FakeWorkflowRun, RunState]:
    run = workflow.runs.get(run_id)
    state = state_of(run) if run is not None else None
    if run is None or state is None:
        raise EntityNotFoundException("Entity not found")  # moto's text; AWS documents none
    return run, state


def stop_workflow_run(backend: GlueBackend, name: str, run_id: str) -> None:
    with GLUE_LOCK:
        workflow = get_workflow(backend, name)
        now = settle(backend)
        _run, state = get_run(workflow, run_id)
        if state.status != "RUNNING":
            # Not an AWS text: AWS documents the error, not its message.
            raise IllegalWorkflowStateException(f"Workflow run {run_id} is {state.status}, not RUNNING")
        state.status, state.stop_at = "STOPPING", now
        for item in state.own_items():
            if life_of(item) is not None:
                request_stop(item, now)
            elif item.crawl is not None and item.state_at(now) == "RUNNING":
                backend.stop_crawler(item.crawler_name)
        settle(backend, now)


def resume_workflow_run(backend: GlueBackend, name: str, run_id: str, node_ids: Any) -> tuple[str, list[str]]:
    """Resume a COMPLETED run from ``node_ids``: a new run, linked by PreviousRunId (rules above)."""
    with GLUE_LOCK:
        workflow = get_workflow(backend, name)
        now = settle(backend)
        original, state = get_run(workflow, run_id)
        if state.status != "COMPLETED":
            # Not an AWS text: AWS documents the rule, not the message.
            raise IllegalWorkflowStateException(
                f"Workflow run {run_id} is {state.status}; only a COMPLETED run can be resumed"
            )
        selected = _check_resume_nodes(state, node_ids)
        if _over_limit(workflow):
            raise ConcurrentRunsExceededException(concurrent_runs_message(name))
        graph = state.graph
        rerun = graph.downstream(selected)
        restarted = [node for node in selected if node not in graph.downstream(set(selected) - {node})]
        resumed = _new_workflow_run(workflow, dict(original.properties), now, previous_run_id=run_id)
        new_state = resumed._mwaaops_state = RunState(  # type: ignore[attr-defined]
            graph=graph,
            started_at=now,
            own_nodes=frozenset(rerun),
            eligible=frozenset(
                node.name for node in graph.nodes if node.type == "TRIGGER" and node.unique_id in rerun
            ),
            copied={
                node.unique_id: list(state.runs_of(node.unique_id))
                for node in graph.nodes
                if node.unique_id not in rerun
            },
        )
        for node_id in restarted:
            _restart_node(backend, resumed, new_state, node_id, now)
        settle(backend, now)
        return resumed.run_id, restarted


def _check_resume_nodes(state: RunState, node_ids: Any) -> list[str]:
    # Not AWS texts below: AWS documents these rules but not the messages it answers with.
    if not isinstance(node_ids, list) or not node_ids:
        raise InvalidInputException("ResumeWorkflowRun", "NodeIds must list at least one node id")
    selected = list(dict.fromkeys(node_ids))
    for node_id in selected:
        node = state.graph.node(node_id)
        if node is None:
            raise InvalidInputException(
                "ResumeWorkflowRun", f"Node {node_id} is not in the workflow run's graph"
            )
        if node.type == "TRIGGER":
            raise InvalidInputException(
                "ResumeWorkflowRun", f"Node {node_id} is a trigger; resume a job or crawler node"
            )
        if not state.runs_of(node_id):
            raise InvalidInputException(
                "ResumeWorkflowRun", f"Node {node_id} had no run attempt in the workflow run"
            )
    return selected


def _restart_node(
    backend: GlueBackend, workflow_run: FakeWorkflowRun, state: RunState, node_id: str, at: datetime
) -> None:
    node = state.graph.node(node_id)
    assert node is not None
    starters = state.graph.triggers_starting(node_id)
    trigger = starters[0] if starters else None
    action = next(
        (a for a in (trigger.actions if trigger else ()) if state.graph.node_id(a.type, a.name) == node_id),
        Action(type=node.type, name=node.name),
    )
    item = start_action(backend, workflow_run, action, at, trigger.name if trigger else None, [])
    state.node_runs.setdefault(node_id, []).append(item)


# -- what GetWorkflowRun answers ---------------------------------------------------------------------------
def statistics(state: RunState, now: datetime) -> dict[str, int]:
    counts = {
        "TotalActions": 0,
        "TimeoutActions": 0,
        "FailedActions": 0,
        "StoppedActions": 0,
        "SucceededActions": 0,
        "RunningActions": 0,
        "ErroredActions": 0,
        "WaitingActions": 0,
    }
    by_state = {
        "TIMEOUT": "TimeoutActions",
        "FAILED": "FailedActions",
        "STOPPED": "StoppedActions",
        "CANCELLED": "StoppedActions",
        "SUCCEEDED": "SucceededActions",
        "ERROR": "ErroredActions",
        "WAITING": "WaitingActions",
    }
    for item in state.own_items():
        counts["TotalActions"] += 1
        item_now = item_state(item, now)
        key = "RunningActions" if item_now in RUNNING_STATES else by_state.get(item_now)
        if key:
            counts[key] += 1
    return counts


def _node_details(state: RunState, now: datetime) -> dict[str, dict[str, Any]]:
    details: dict[str, dict[str, Any]] = {}
    for node in state.graph.nodes:
        items = state.runs_of(node.unique_id)
        if not items:
            continue
        if node.type == "JOB":
            details[node.unique_id] = {
                "JobDetails": {"JobRuns": [_job_run_dict(item, now) for item in items]}
            }
        elif node.type == "CRAWLER":
            details[node.unique_id] = {"CrawlerDetails": {"Crawls": [item.describe(now) for item in items]}}
    return details


def _job_run_dict(item: FakeJobRun, now: datetime) -> dict[str, Any]:
    return run_fields(item, now)


def describe_run(
    run: FakeWorkflowRun, include_graph: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """The WorkflowRun structure (call after settle())."""
    state = state_of(run)
    assert state is not None
    now = now or utcnow()
    described: dict[str, Any] = {
        "Name": run.workflow_name,
        "WorkflowRunId": run.run_id,
        "StartedOn": run.started_on,
        "Status": state.status,
        "Statistics": statistics(state, now),
    }
    optional = {
        "PreviousRunId": run.previous_run_id,
        "WorkflowRunProperties": dict(run.properties) or None,
        "CompletedOn": state.completed_at,
        "ErrorMessage": state.error_message,
    }
    described.update({key: value for key, value in optional.items() if value is not None})
    if include_graph:
        described["Graph"] = state.graph.describe(_node_details(state, now))
    return described


def install() -> None:
    """Workflow runs advance whenever the Glue backend is settled (any Glue or Logs read)."""
    if settle_workflows not in SETTLERS:
        SETTLERS.append(settle_workflows)
