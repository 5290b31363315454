"""Answer the Step Functions task waiting for this DAG run, as a task (retried on AWS errors).

The operator form of :class:`~airflow_provider_mwaaops.notifications.task_token.TaskTokenNotifier`:
put it at the end of a recovery DAG (``trigger_rule="all_done"`` by default, so it also runs after
failures) and it answers SendTaskSuccess with the run summary, or SendTaskFailure naming the
failed tasks. It shares the notifier's once-per-run record, so a DAG that also has the notifier as
its failure callback still answers once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.amazon.aws.hooks.step_function import StepFunctionHook

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.aws.task_token import TaskTokenError
from airflow_provider_mwaaops.compat import AirflowException, AirflowFailException
from airflow_provider_mwaaops.notifications.task_token import (
    TOKEN_GONE,
    TOKEN_INVALID,
    answer_task_token,
    token_from_conf,
)
from airflow_provider_mwaaops.operators.base import AwsBaseOperator, aws_template_fields

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = ["TaskTokenOperator"]

_FAILED = frozenset({"failed", "upstream_failed"})


class TaskTokenOperator(AwsBaseOperator):
    """SendTaskSuccess / SendTaskFailure for the task token this DAG run was started with.

    :param task_token: the token (default: ``dag_run.conf[conf_key]``). (templated)
    :param conf_key: the run-conf key holding the token.
    :param outcome: ``"auto"``: failure when a direct upstream task failed, else success;
        ``"success"`` or ``"failure"`` to decide yourself.
    :param summary: added to the run summary SendTaskSuccess carries (JSON values; e.g. an upstream
        task's XCom through a template). (templated)
    :param error: SendTaskFailure's error name.
    :param cause: SendTaskFailure's cause (default: the failed tasks). (templated)
    :param fail_when_undeliverable: fail the task (without retries) when Step Functions no longer
        waits for the token (expired) or does not know it; default True.

    Returns (XCom) ``{"answer": ...}``: ``sent_success``, ``sent_failure``, ``already_answered``,
    ``no_token``. AWS errors that a retry may overcome (throttling, network) fail the try, so
    Airflow retries it; nothing is sent twice.
    """

    template_fields: Sequence[str] = aws_template_fields("task_token", "summary", "cause")
    template_fields_renderers = {"summary": "json"}
    aws_hook_class = StepFunctionHook
    aws_service_label = "Step Functions"
    ui_color = "#f9c3a5"

    def __init__(
        self,
        *,
        task_token: str | None = None,
        conf_key: str = "task_token",
        outcome: Literal["auto", "success", "failure"] = "auto",
        summary: Mapping[str, Any] | None = None,
        error: str = "AirflowDagRunFailed",
        cause: str | None = None,
        fail_when_undeliverable: bool = True,
        trigger_rule: str = "all_done",
        **kwargs: Any,
    ) -> None:
        super().__init__(trigger_rule=trigger_rule, **kwargs)
        if outcome not in ("auto", "success", "failure"):
            raise ValueError(f"outcome must be 'auto', 'success' or 'failure', got {outcome!r}")
        self.task_token = task_token
        self.conf_key = conf_key
        self.outcome: Literal["auto", "success", "failure"] = outcome
        self.summary = summary
        self.error = error
        self.cause = cause
        self.fail_when_undeliverable = fail_when_undeliverable

    def _decide(self, context: Context) -> tuple[Literal["success", "failure"], str | None]:
        """The answer and, for a failure, its cause (the failed upstream tasks)."""
        if self.outcome != "auto":
            return self.outcome, self.cause
        states = compat.run_task_states(context) or {}
        failed = sorted(task for task in self.upstream_task_ids if states.get(task) in _FAILED)
        if failed:
            return "failure", self.cause or f"failed tasks: {', '.join(failed)}"
        return "success", None

    def execute(self, context: Context) -> dict[str, Any]:
        token = self.task_token or token_from_conf(context, self.conf_key)
        outcome, cause = self._decide(context)
        summary = dict(self.summary) if isinstance(self.summary, Mapping) else None
        try:
            answer = answer_task_token(
                context,
                token,
                outcome=outcome,
                summary=summary,
                error=self.error,
                cause=cause,
                client=self.hook.conn,
            )
        except TaskTokenError as exc:
            raise AirflowException(f"{exc}; the next try sends it again") from exc
        if answer in (TOKEN_GONE, TOKEN_INVALID) and self.fail_when_undeliverable:
            raise AirflowFailException(
                "Step Functions did not accept the task token (see the log above): the waiting "
                "workflow did not get this run's answer"
            )
        return {"answer": answer, "outcome": outcome}
