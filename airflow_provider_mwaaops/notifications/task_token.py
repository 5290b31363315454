"""Answer the Step Functions task that waits for this DAG run (``.waitForTaskToken``), once.

A recovery workflow starts a DAG run with its task token in the run's conf and waits. The run
answers with SendTaskSuccess (a run summary as output) or SendTaskFailure (the reason), either from
a callback (:class:`TaskTokenNotifier`, DAG- or task-level) or from a task
(:class:`~airflow_provider_mwaaops.operators.task_token.TaskTokenOperator`). Both go through
:func:`answer_task_token`, which keeps three promises:

* **Not early.** A task callback for a try that Airflow will retry (state ``up_for_retry``) does
  not answer: the retry may still succeed.
* **Once per run.** The first answer is recorded in an Airflow Variable named after a hash of the
  token (``mwaaops_task_token_<hash>``, never the token itself); later callbacks of the same run
  (several failing tasks, a DAG callback after a task callback, a cleared and re-run DAG run) find
  it and send nothing. Two callbacks racing within the same second can both send; Step Functions
  then refuses the second (``TaskTimedOut``), which is logged, not raised.
* **Clear when it is too late.** A token that expired (the state's ``TimeoutSeconds`` or
  ``HeartbeatSeconds`` passed, or the execution ended) or that Step Functions does not know gets
  one ERROR line saying so and what it means, and is recorded as answered: sending again cannot help.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.aws.task_token import TaskTokenError, TaskTokenReporter
from airflow_provider_mwaaops.compat import BaseNotifier

log = logging.getLogger(__name__)

__all__ = ["TaskTokenNotifier", "answer_task_token", "ledger_key", "run_summary"]

Outcome = Literal["auto", "success", "failure"]
#: What :func:`answer_task_token` did.
SENT_SUCCESS = "sent_success"
SENT_FAILURE = "sent_failure"
ALREADY_ANSWERED = "already_answered"
NOT_YET = "not_yet"  # a try that will be retried
NO_TOKEN = "no_token"  # noqa: S105 (an outcome name, not a secret)
TOKEN_GONE = "token_gone"  # noqa: S105  expired, answered elsewhere, or execution ended
TOKEN_INVALID = "token_invalid"  # noqa: S105

_FAILED_STATES = frozenset({"failed", "upstream_failed"})


def ledger_key(task_token: str) -> str:
    """The Variable that records an answer: a hash of the token, so the token is not stored."""
    return f"mwaaops_task_token_{hashlib.sha256(task_token.encode()).hexdigest()[:24]}"


def _read_ledger(task_token: str) -> dict[str, Any] | None:
    try:
        raw = compat.variable_get(ledger_key(task_token))
    except Exception as exc:  # sending anyway is safe: Step Functions refuses a second answer
        log.warning("Could not read whether the task token was already answered: %s", exc)
        return None
    if raw is None:
        return None
    try:
        return dict(json.loads(raw))
    except (TypeError, ValueError):
        return {"answer": str(raw)}


def _write_ledger(task_token: str, answer: str, context: Mapping[str, Any]) -> None:
    dag_run = context.get("dag_run")
    record = {
        "answer": answer,
        "dag_id": getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None) or context.get("run_id"),
        "at": datetime.now(UTC).isoformat(),
    }
    try:
        compat.variable_set(
            ledger_key(task_token), json.dumps(record), description="mwaaops: task token answered"
        )
    except Exception as exc:  # the answer itself went out; a later repeat is refused by Step Functions
        log.warning(
            "Answered the task token but could not record it in Variable %s: %s", ledger_key(task_token), exc
        )


def token_from_conf(context: Mapping[str, Any], conf_key: str) -> str | None:
    """The token the run was started with (``dag_run.conf[conf_key]``), if the context has it."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    token = conf.get(conf_key) if isinstance(conf, Mapping) else None
    return str(token) if token else None


def _state(thing: Any) -> str | None:
    state = getattr(thing, "state", None)
    return None if state is None else str(getattr(state, "value", state))


def resolve_outcome(context: Mapping[str, Any], outcome: Outcome) -> str | None:
    """``success`` / ``failure`` for this callback or task; ``None`` for a try that will be retried."""
    ti = context.get("ti")
    if _state(ti) == "up_for_retry":
        return None
    if outcome != "auto":
        return outcome
    if context.get("exception") is not None or _state(ti) in _FAILED_STATES:
        return "failure"
    if _state(context.get("dag_run")) == "failed":
        return "failure"
    return "success"


def run_summary(context: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The SendTaskSuccess output: which run answered, how it went, and ``extra``."""
    dag_run = context.get("dag_run")
    summary: dict[str, Any] = {
        "dag_id": getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None) or context.get("run_id"),
    }
    for name in ("logical_date", "run_after", "start_date"):
        value = getattr(dag_run, name, None)
        if value is not None:
            summary[name] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    states = compat.run_task_states(context)
    if states is not None:
        summary["tasks"] = states
    if extra:
        summary.update(extra)
    return summary


def failure_cause(context: Mapping[str, Any]) -> str:
    """Why the run failed, for SendTaskFailure's cause."""
    exception = context.get("exception")
    if exception is not None:
        return f"{type(exception).__name__}: {exception}"
    states = compat.run_task_states(context) or {}
    failed = sorted(task for task, state in states.items() if state in _FAILED_STATES)
    reason = context.get("reason")
    parts = [str(reason)] if reason else []
    if failed:
        parts.append(f"failed tasks: {', '.join(failed)}")
    return "; ".join(parts) or "the DAG run failed"


def answer_task_token(
    context: Mapping[str, Any],
    task_token: str | None,
    *,
    outcome: Outcome = "auto",
    summary: Mapping[str, Any] | None = None,
    error: str = "AirflowDagRunFailed",
    cause: str | None = None,
    aws_conn_id: str | None = "aws_default",
    region_name: str | None = None,
    client: Any = None,
) -> str:
    """Answer ``task_token`` for this run unless that would be early or a repeat; say what happened.

    Raises :class:`~airflow_provider_mwaaops.aws.task_token.TaskTokenError` only for errors that
    another attempt could overcome (throttling, a network error, AccessDenied).
    """
    if not task_token:
        log.info("No Step Functions task token for this run: nothing to answer")
        return NO_TOKEN
    verdict = resolve_outcome(context, outcome)
    if verdict is None:
        log.info("This try will be retried: the Step Functions task token is not answered yet")
        return NOT_YET
    previous = _read_ledger(task_token)
    if previous is not None:
        log.info(
            "The Step Functions task token of this run was already answered (%s, by %s/%s at %s); "
            "not sending %s again",
            previous.get("answer"),
            previous.get("dag_id"),
            previous.get("run_id"),
            previous.get("at"),
            verdict,
        )
        return ALREADY_ANSWERED
    reporter = TaskTokenReporter(task_token, aws_conn_id=aws_conn_id, region_name=region_name, client=client)
    try:
        if verdict == "success":
            reporter.succeed(run_summary(context, summary))
        else:
            reporter.fail(error, cause or failure_cause(context))
    except TaskTokenError as exc:
        if not (exc.gone or exc.invalid):
            raise
        if exc.gone:
            log.error(
                "Step Functions no longer waits for this task token (%s): the waiting state timed out "
                "(TimeoutSeconds/HeartbeatSeconds), was already answered, or its execution ended. "
                "The %s of this run was not delivered. %s",
                exc.code,
                verdict,
                exc,
            )
        else:
            log.error(
                "Step Functions rejected the task token as invalid (%s): check what started this run "
                "passed $$.Task.Token unchanged, from the same account and Region. %s",
                exc.code,
                exc,
            )
        _write_ledger(task_token, f"undeliverable ({exc.code})", context)
        return TOKEN_GONE if exc.gone else TOKEN_INVALID
    _write_ledger(task_token, verdict, context)
    return SENT_SUCCESS if verdict == "success" else SENT_FAILURE


class TaskTokenNotifier(BaseNotifier):
    """SendTaskSuccess / SendTaskFailure from a DAG or task callback, once per DAG run.

    .. code-block:: python

        notifier = TaskTokenNotifier()  # token from dag_run.conf["task_token"]
        DAG(..., on_success_callback=notifier, on_failure_callback=notifier)

    :param task_token: the token; default: ``dag_run.conf[conf_key]`` of the run.
    :param conf_key: the run-conf key holding the token.
    :param outcome: ``"auto"`` (failure when the callback is about a failed task or run),
        ``"success"`` or ``"failure"``.
    :param summary: added to the run summary that SendTaskSuccess carries (JSON values).
    :param error: SendTaskFailure's error name (a Catch in the state machine can match it).
    :param aws_conn_id: Airflow AWS connection.
    :param region_name: AWS region (the token's Region; default: the connection's).

    A callback never raises: a delivery that failed for good is logged; a transient one too (a
    callback cannot be retried; prefer
    :class:`~airflow_provider_mwaaops.operators.task_token.TaskTokenOperator` when the answer
    must survive an AWS outage).
    """

    def __init__(
        self,
        *,
        task_token: str | None = None,
        conf_key: str = "task_token",
        outcome: Outcome = "auto",
        summary: Mapping[str, Any] | None = None,
        error: str = "AirflowDagRunFailed",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
    ) -> None:
        super().__init__()
        if outcome not in ("auto", "success", "failure"):
            raise ValueError(f"outcome must be 'auto', 'success' or 'failure', got {outcome!r}")
        self.task_token = task_token
        self.conf_key = conf_key
        self.outcome: Outcome = outcome
        self.summary = dict(summary or {})
        self.error = error
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def notify(self, context: Any) -> None:
        token = self.task_token or token_from_conf(context, self.conf_key)
        if token is None and context.get("dag_run") is None:
            log.warning(
                "This callback's context has no DAG run, so its conf (and %r) cannot be read; "
                "give the notifier task_token= to answer from such callbacks",
                self.conf_key,
            )
        answer_task_token(
            context,
            token,
            outcome=self.outcome,
            summary=self.summary,
            error=self.error,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
        )

    def __call__(self, *args: Any) -> None:
        """Airflow's callback entry point: never raises into Airflow's callback handling."""
        if len(args) != 1:  # Airflow 2's SLA-miss signature: nothing to answer there
            return None
        try:
            self.notify(args[0])
        except Exception as exc:
            log.error("Could not answer the Step Functions task token: %s: %s", type(exc).__name__, exc)
        return None
