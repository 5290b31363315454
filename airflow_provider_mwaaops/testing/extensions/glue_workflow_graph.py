"""The graph of a Glue workflow: its triggers, the jobs and crawlers they start or watch, the edges.

AWS (API reference, "Workflows": WorkflowGraph, Node, Edge; "Repairing and resuming a workflow
run"):

- A workflow's graph is made of the triggers that name it (``WorkflowName``) and of the jobs and
  crawlers those triggers start (``Actions``) or watch (``Predicate.Conditions``). Edges run from
  a watched node to its trigger and from a trigger to the nodes it starts.
- Each node has a ``UniqueId`` within the workflow, the id ResumeWorkflowRun takes. AWS's look
  like ``wnode_`` and 64 hex digits; here they are derived from the workflow, node type and name,
  so they are stable across the workflow's runs.
- A predicate's ``Logical`` is "An optional field if only one condition is listed. If multiple
  conditions are listed, then this field is required" (Predicate): moto answered HTTP 500 without
  it; here a single condition works without it (as AND) and several without it are
  InvalidInputException (AWS documents the rule, not the message).
- "When a workflow run is started, AWS Glue takes a snapshot of the workflow design graph ...
  Snapshots make only triggers immutable": a run keeps the ``WorkflowGraph`` built when it
  started, with each trigger's type, state, predicate and actions as they were then.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from moto.glue.exceptions import InvalidInputException
from moto.glue.models import GlueBackend
from moto.glue.utils import Predicate

from airflow_provider_mwaaops.testing.extensions._patching import wrap_method

NODE_ID_PREFIX = "wnode_"


def node_unique_id(workflow_name: str, node_type: str, name: str) -> str:
    digest = hashlib.sha256(f"{workflow_name}\0{node_type}\0{name}".encode()).hexdigest()
    return NODE_ID_PREFIX + digest


@dataclasses.dataclass(frozen=True)
class Node:
    unique_id: str
    type: str  # TRIGGER | JOB | CRAWLER
    name: str


@dataclasses.dataclass(frozen=True)
class Condition:
    """One entry of a trigger's predicate: a job (State) or crawler (CrawlState) to watch."""

    type: str  # JOB | CRAWLER
    name: str
    state: str


@dataclasses.dataclass(frozen=True)
class Action:
    type: str  # JOB | CRAWLER
    name: str
    arguments: dict[str, str] | None = None
    timeout: int | None = None
    security_configuration: str | None = None
    notification_property: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class TriggerSnapshot:
    name: str
    type: str  # ON_DEMAND | SCHEDULED | CONDITIONAL | EVENT
    state: str
    logical: str  # AND | ANY ("An optional field if only one condition is listed")
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    #: the Trigger structure as GetTrigger answered when the snapshot was taken
    described: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class WorkflowGraph:
    workflow_name: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]
    triggers: tuple[TriggerSnapshot, ...]

    def node(self, unique_id: str) -> Node | None:
        return next((node for node in self.nodes if node.unique_id == unique_id), None)

    def node_id(self, node_type: str, name: str) -> str:
        return node_unique_id(self.workflow_name, node_type, name)

    def downstream(self, start: Iterable[str]) -> set[str]:
        """``start`` and every node reachable from it along the edges."""
        successors: dict[str, list[str]] = {}
        for source, destination in self.edges:
            successors.setdefault(source, []).append(destination)
        seen: set[str] = set()
        pending = list(start)
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(successors.get(current, ()))
        return seen

    def triggers_starting(self, node_id: str) -> list[TriggerSnapshot]:
        """The triggers whose actions start the node."""
        return [t for t in self.triggers if any(self.node_id(a.type, a.name) == node_id for a in t.actions)]

    def describe(self, details: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The WorkflowGraph structure; ``details`` adds JobDetails / CrawlerDetails per node id."""
        by_name = {t.name: t for t in self.triggers}
        nodes = []
        for node in self.nodes:
            described: dict[str, Any] = {"Type": node.type, "Name": node.name, "UniqueId": node.unique_id}
            if node.type == "TRIGGER":
                described["TriggerDetails"] = {"Trigger": by_name[node.name].described}
            described.update((details or {}).get(node.unique_id, {}))
            nodes.append(described)
        edges = [{"SourceId": source, "DestinationId": destination} for source, destination in self.edges]
        return {"Nodes": nodes, "Edges": edges}


def _conditions(trigger: Any) -> tuple[Condition, ...]:
    predicate = trigger.predicate
    if predicate is None:
        return ()
    conditions = []
    for condition in predicate.conditions:
        if condition.job_name:
            conditions.append(Condition("JOB", condition.job_name, _value(condition.state)))
        elif condition.crawler_name:
            conditions.append(Condition("CRAWLER", condition.crawler_name, _value(condition.crawl_state)))
    return tuple(conditions)


def _actions(trigger: Any) -> tuple[Action, ...]:
    actions = []
    for action in trigger.actions:
        kind, name = ("JOB", action.job_name) if action.job_name else ("CRAWLER", action.crawler_name)
        if not name:
            continue
        actions.append(
            Action(
                type=kind,
                name=name,
                arguments=dict(action.arguments) if action.arguments else None,
                timeout=action.timeout,
                security_configuration=action.security_configuration,
                notification_property=action.notification_property,
            )
        )
    return tuple(actions)


def _value(enum_or_text: Any) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text))


def _logical(trigger: Any) -> str:
    predicate = trigger.predicate
    logical = getattr(predicate, "logical", None) if predicate is not None else None
    return _value(logical) if logical else "AND"


def build_graph(backend: GlueBackend, workflow_name: str) -> WorkflowGraph:
    """The workflow's graph as its triggers define it now (a run's snapshot)."""
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    snapshots = []

    def add(node_type: str, name: str) -> str:
        unique_id = node_unique_id(workflow_name, node_type, name)
        nodes.setdefault(unique_id, Node(unique_id, node_type, name))
        return unique_id

    for trigger in backend.triggers.values():
        if trigger.workflow_name != workflow_name:
            continue
        snapshot = TriggerSnapshot(
            name=trigger.name,
            type=trigger.trigger_type,
            state=trigger.state,
            logical=_logical(trigger),
            conditions=_conditions(trigger),
            actions=_actions(trigger),
            described=trigger.as_dict(),
        )
        snapshots.append(snapshot)
        trigger_id = add("TRIGGER", trigger.name)
        for condition in snapshot.conditions:
            edges.append((add(condition.type, condition.name), trigger_id))
        for action in snapshot.actions:
            edges.append((trigger_id, add(action.type, action.name)))
    return WorkflowGraph(workflow_name, tuple(nodes.values()), tuple(dict.fromkeys(edges)), tuple(snapshots))


def _optional_logical(original: Callable[..., None]) -> Callable[..., None]:
    def init(self: Predicate, inputs: dict[str, Any]) -> None:
        if not inputs.get("Logical"):
            if len(inputs.get("Conditions") or []) > 1:
                # Not an AWS text: AWS documents the rule, not the message.
                raise InvalidInputException(
                    "CreateTrigger", "Logical is required when a predicate lists several conditions"
                )
            inputs = {**inputs, "Logical": "AND"}
        original(self, inputs)

    return init


def install() -> None:
    wrap_method(Predicate, "__init__", "mwaaops.glue.workflow_graph", _optional_logical)
