"""Publish a result (a query's rows, a report's summary) to SNS as a task of the DAG.

Why not the amazon provider's ``SnsPublishOperator``: subscribers of a topic usually get both the
pipeline's results and its failure notifications, and should be able to treat them alike. This
operator sends the same message as :class:`~airflow_provider_mwaaops.notifications.sns.SnsRunStatusNotifier`
(identity of the run and task, per-protocol bodies, filter-policy attributes, FIFO ids, size
limits, masking), with the result added, and its ``state`` attribute set to ``"result"`` so that a
filter policy can tell results from callbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.compat import BaseOperator
from airflow_provider_mwaaops.notifications.message import build_message
from airflow_provider_mwaaops.notifications.sns import MESSAGE_TEMPLATE_FIELDS, publish_message

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = ["SnsPublishResultOperator"]


class SnsPublishResultOperator(BaseOperator):
    """Publish ``result`` (any JSON-serialisable value, e.g. an upstream task's XCom) to SNS.

    :param target_arn: SNS topic ARN, e.g. ``"{{ var.value.target_sns_arn }}"``.
    :param result: the value to publish; an ``XComArg`` (``query.output``) or a template.
    :param subject: headline; default "[env] Airflow result: <dag>.<task>". Cut to 100 characters.
    :param message: your own text above the result.
    :param message_attributes: extra SNS message attributes for subscription filter policies.
    :param message_group_id: FIFO group id; default: the DAG id.
    :param message_deduplication_id: FIFO deduplication id; default: derived from run, task and try.
    :param state: value of the ``state`` field and attribute; default ``"result"``.
    :param environment_name: default ``[mwaaops] environment_name``.
    :param aws_conn_id: Airflow AWS connection.
    :param region_name: AWS region; default: the connection's.
    :return: the SNS message id (pushed to XCom).
    """

    template_fields: Sequence[str] = ("result", *MESSAGE_TEMPLATE_FIELDS)
    ui_color = "#f3d5c1"

    def __init__(
        self,
        *,
        target_arn: str,
        result: Any = None,
        subject: str | None = None,
        message: str | None = None,
        message_attributes: Mapping[str, Any] | None = None,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
        state: str = "result",
        environment_name: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_arn = target_arn
        self.result = result
        self.subject = subject
        self.message = message
        self.message_attributes = dict(message_attributes or {})
        self.message_group_id = message_group_id
        self.message_deduplication_id = message_deduplication_id
        self.state = state
        self.environment_name = environment_name
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context: Context) -> str:
        notification = build_message(
            context,
            subject=self.subject,
            body=self.message,
            result=self.result,
            extra_attributes=self.message_attributes,
            environment_name=self.environment_name,
            state=self.state,
        )
        message_id = publish_message(
            notification,
            self.target_arn,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            message_group_id=self.message_group_id,
            message_deduplication_id=self.message_deduplication_id,
        )
        self.log.info(
            "Published to %s: message %s (%d bytes)", self.target_arn, message_id, notification.size_bytes()
        )
        return message_id
