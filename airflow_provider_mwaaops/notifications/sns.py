"""Amazon SNS notifier for task- and DAG-level callbacks, on Airflow 2.11 and 3.x.

Named for what it adds over the amazon provider's ``SnsNotifier``, which publishes the message it is
given: the status of the run or task a callback is about, as a message built from the callback's
context with everything on-call needs (see :mod:`~airflow_provider_mwaaops.notifications.message`),
one body per SNS protocol, filter-policy attributes, FIFO topics (group and deduplication ids),
SNS's size limits honoured, secrets masked, and a publish failure that is logged instead of
breaking Airflow's callback handling.

Publishing goes through the amazon provider's ``SnsHook`` (its connection handling, assume-role
and endpoint settings) but calls the client directly, because ``publish_to_target`` always wraps
the message as ``{"default": ...}`` and cannot carry per-protocol bodies.

Rendering: Airflow's ``BaseNotifier.__call__`` renders the template fields in place, so a notifier
shared by many tasks (``default_args``) in one process keeps the first task's values. Here every
call renders a copy. It also renders when the context's ``dag`` is a serialized DAG without a
template environment, which is what ``dag.test()`` hands DAG-level callbacks on Airflow 3
(apache/airflow#64649).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mwaaops.compat import BaseNotifier
from airflow_provider_mwaaops.notifications.message import NotificationMessage, build_message
from airflow_provider_mwaaops.notifications.templating import template_accessors

log = logging.getLogger(__name__)

__all__ = ["SnsRunStatusNotifier", "fifo_ids", "publish_message", "send_sns_run_status"]

#: FIFO deduplication ids: at most 128 characters.
SNS_MAX_DEDUPLICATION_ID_CHARS = 128
SNS_MAX_GROUP_ID_CHARS = 128
#: The templated parameters of everything that publishes a notification message (the notifier and
#: ``SnsPublishResultOperator``).
MESSAGE_TEMPLATE_FIELDS: tuple[str, ...] = (
    "target_arn",
    "subject",
    "message",
    "message_attributes",
    "message_group_id",
    "message_deduplication_id",
    "environment_name",
    "aws_conn_id",
    "region_name",
)


def is_fifo_topic(target_arn: str) -> bool:
    return target_arn.endswith(".fifo")


def _id_safe(text: str, limit: int) -> str:
    """SNS group/dedup ids allow ``[A-Za-z0-9]`` and punctuation; long ones are hashed to fit."""
    safe = "".join(ch if ch.isascii() and ch.isprintable() and ch != " " else "_" for ch in text)
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{safe[: limit - 17]}-{digest}"


def fifo_ids(
    message: NotificationMessage, group_id: str | None = None, deduplication_id: str | None = None
) -> tuple[str, str]:
    """Message group id (default: the DAG id, so one DAG's notifications stay in order) and a
    deduplication id derived from the run, task, map index, try and state.

    The same callback delivered twice (a retried publish, a callback re-run after a crash) then
    reaches subscribers once, while a new try or a different state is a new message.
    """
    doc = message.document
    group = group_id or str(doc.get("dag_id") or "airflow")
    if deduplication_id is None:
        parts = [
            doc.get("environment") or "",
            doc.get("dag_id") or "",
            doc.get("run_id") or "",
            doc.get("task_id") or "",
            "" if doc.get("map_index") is None else str(doc["map_index"]),
            "" if doc.get("try_number") is None else str(doc["try_number"]),
            doc.get("state") or "",
            doc.get("level") or "",
        ]
        deduplication_id = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return (
        _id_safe(group, SNS_MAX_GROUP_ID_CHARS),
        _id_safe(deduplication_id, SNS_MAX_DEDUPLICATION_ID_CHARS),
    )


def publish_kwargs_for(
    message: NotificationMessage,
    target_arn: str,
    message_group_id: str | None = None,
    message_deduplication_id: str | None = None,
) -> dict[str, Any]:
    """``sns.publish`` arguments; group and deduplication ids only for FIFO topics."""
    if is_fifo_topic(target_arn):
        group, dedup = fifo_ids(message, message_group_id, message_deduplication_id)
        return message.publish_kwargs(target_arn, message_group_id=group, message_deduplication_id=dedup)
    return message.publish_kwargs(target_arn)


def publish_message(
    message: NotificationMessage,
    target_arn: str,
    *,
    aws_conn_id: str | None = "aws_default",
    region_name: str | None = None,
    message_group_id: str | None = None,
    message_deduplication_id: str | None = None,
) -> str:
    """Publish with the amazon provider's SNS connection; returns the SNS message id."""
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    client = SnsHook(aws_conn_id=aws_conn_id, region_name=region_name).get_conn()
    response = client.publish(
        **publish_kwargs_for(message, target_arn, message_group_id, message_deduplication_id)
    )
    return str(response["MessageId"])


class SnsRunStatusNotifier(BaseNotifier):
    """Publish an Airflow callback (task or DAG level) to an SNS topic.

    Usable as ``on_failure_callback``, ``on_success_callback``, ``on_retry_callback``,
    ``on_execute_callback`` (task level) and as a DAG's ``on_failure_callback`` /
    ``on_success_callback``::

        notify_oncall = SnsRunStatusNotifier(target_arn="{{ var.value.target_sns_arn }}")
        DAG(..., on_failure_callback=notify_oncall, default_args={"on_failure_callback": notify_oncall})

    :param target_arn: SNS topic (or endpoint) ARN; templated. A ``.fifo`` topic gets a message
        group id and a deduplication id.
    :param subject: headline instead of "[env] Airflow <state>: <dag>.<task>"; templated; cut to
        SNS's 100 characters.
    :param message: your own text, shown above the fields; templated.
    :param message_attributes: extra SNS message attributes for subscription filter policies,
        besides dag_id, task_id, state, environment and level; templated.
    :param message_group_id: FIFO group id; default: the DAG id. Templated.
    :param message_deduplication_id: FIFO deduplication id; default: derived from environment,
        run, task, map index, try and state. Templated.
    :param environment_name: default ``[mwaaops] environment_name``; templated.
    :param protocols: SNS protocol keys to give a body (``default`` always has one).
    :param raise_on_failure: raise when the message cannot be published (or its templates cannot
        be rendered). Default ``False``: the failure is logged with its reason and Airflow's
        callback handling carries on.
    :param aws_conn_id: Airflow AWS connection.
    :param region_name: AWS region; default: the connection's.
    :param context: set by Airflow 3.1+ when it runs the notifier in the triggerer (deadline
        alerts), which then awaits it.
    """

    template_fields: Sequence[str] = MESSAGE_TEMPLATE_FIELDS

    def __init__(
        self,
        *,
        target_arn: str,
        subject: str | None = None,
        message: str | None = None,
        message_attributes: Mapping[str, Any] | None = None,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
        environment_name: str | None = None,
        protocols: Sequence[str] | None = None,
        raise_on_failure: bool = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        context: Any = None,
    ) -> None:
        super().__init__()
        # Airflow 3.1+ deadline callbacks construct the notifier with the context, then await it.
        self.context = context or {}  # type: ignore[assignment]  # any mapping Airflow hands over
        self.target_arn = target_arn
        self.subject = subject
        self.message = message
        self.message_attributes = dict(message_attributes or {})
        self.message_group_id = message_group_id
        self.message_deduplication_id = message_deduplication_id
        self.environment_name = environment_name
        self.protocols = tuple(protocols) if protocols else None
        self.raise_on_failure = raise_on_failure
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    # -- building ----------------------------------------------------------------------------------
    def build(self, context: Mapping[str, Any]) -> NotificationMessage:
        """The message this notifier would publish for ``context`` (its fields already rendered)."""
        return build_message(
            context,
            subject=self.subject,
            body=self.message,
            extra_attributes=self.message_attributes,
            environment_name=self.environment_name,
            protocols=self.protocols,
        )

    def _publish_kwargs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        return publish_kwargs_for(
            self.build(context), self.target_arn, self.message_group_id, self.message_deduplication_id
        )

    # -- sending -----------------------------------------------------------------------------------
    def notify(self, context: Any) -> None:
        """Publish synchronously (worker, dag processor, ``dag.test()``)."""
        message_id = publish_message(
            self.build(context),
            self.target_arn,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            message_group_id=self.message_group_id,
            message_deduplication_id=self.message_deduplication_id,
        )
        log.info("Published the notification to %s: message %s", self.target_arn, message_id)

    async def async_notify(self, context: Any) -> None:
        """Publish without blocking the event loop (Airflow 3.1+ runs notifiers in the triggerer).

        The message is built in a worker thread (masking and traceback formatting are CPU work)
        and published with the package's shared aiobotocore client.
        """
        from asgiref.sync import sync_to_async

        from airflow_provider_mwaaops.aws.client_pool import shared_pool

        kwargs = await sync_to_async(self._publish_kwargs)(context)
        client = await shared_pool().client("sns", aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        response = await client.publish(**kwargs)
        log.info("Published the notification to %s: message %s", self.target_arn, response["MessageId"])

    # -- Airflow's entry points --------------------------------------------------------------------
    def __call__(self, *args: Any) -> None:
        """Called by Airflow with the callback's context; never raises unless ``raise_on_failure``."""
        if len(args) != 1:  # the Airflow 2 SLA-miss signature: nothing of ours to send there
            return super().__call__(*args)
        context = args[0]
        try:
            rendered = self._rendered_copy(context)
            rendered.notify(context)
        except Exception as error:
            self._handle_failure(error)
        return None

    def __await__(self) -> Any:
        """``await notifier`` with ``notifier.context`` set (Airflow 3.1+ triggerer path)."""
        return self._await_notify().__await__()

    async def _await_notify(self) -> None:
        from asgiref.sync import sync_to_async

        context = getattr(self, "context", None) or {}
        try:
            # Templates may read Variables: a blocking call, and on Airflow 3 one that must reach the
            # triggerer's supervisor from a thread sync_to_async started (see aws.client_pool).
            rendered = await sync_to_async(self._rendered_copy)(context)
            await rendered.async_notify(context)
        except Exception as error:
            self._handle_failure(error)

    def _handle_failure(self, error: Exception) -> None:
        target = self.target_arn
        log.error(
            "Could not publish the Airflow notification to SNS topic %s: %s: %s",
            target,
            type(error).__name__,
            error,
        )
        if self.raise_on_failure:
            raise error

    def _rendered_copy(self, context: Any) -> SnsRunStatusNotifier:
        """Render the template fields on a copy, so a shared notifier keeps its templates."""
        rendered = copy.copy(self)
        rendered.message_attributes = copy.deepcopy(self.message_attributes)
        # Like BaseNotifier.__call__, the context itself receives the template fields' values.
        for name, value in template_accessors().items():
            if name not in context:
                context[name] = value
        rendered._update_context(context)
        rendered.render_template_fields(context)
        return rendered

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        dag = context.get("dag")
        if jinja_env is None:
            # A serialized DAG (DAG-level callbacks under dag.test() on Airflow 3) has no template
            # environment of its own; Airflow's default one renders Variables and macros the same.
            usable = dag if hasattr(dag, "get_template_env") else None
            jinja_env = self.get_template_env(dag=usable)
        self._do_render_template_fields(self, self.template_fields, context, jinja_env, set())

    def _render(self, template: Any, context: Any, dag: Any = None) -> Any:
        dag = dag or context.get("dag")
        if not hasattr(dag, "get_template_env"):
            dag = None
        return super(BaseNotifier, self)._render(template, context, dag)


def send_sns_run_status(**kwargs: Any) -> SnsRunStatusNotifier:
    """``on_failure_callback=send_sns_run_status(target_arn=...)``: the notifier in the amazon
    provider's ``send_*`` idiom."""
    return SnsRunStatusNotifier(**kwargs)
