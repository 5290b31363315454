"""The base every AWS operator of this package derives from: connection, waiting, errors, links.

What an AWS operator here always needs, written once:

* the amazon provider's connection parameters (``aws_conn_id``, ``region_name``, ``verify``,
  ``botocore_config``), templated as the amazon provider templates them, carried into the
  synchronous hook (:attr:`AwsConnectionMixin.hook`) and into every trigger
  (:meth:`AwsBaseOperator.trigger_kwargs`), so a CA bundle or a proxy configuration applies to the
  deferred and the synchronous wait alike;
* how long and how often to wait: ``deferrable`` (default ``[operators] default_deferrable``),
  ``waiter_delay`` / ``waiter_max_delay``, and a limit given either as ``wait_timeout`` or as the
  amazon provider's ``waiter_max_attempts``;
* one way to wait (:meth:`AwsBaseOperator.wait_for`): deferred, or the same trigger's
  :meth:`~airflow_provider_mwaaops.triggers.base.AwsPollingTrigger.wait` run in the worker, so the
  two modes cannot drift apart;
* errors a DAG author can act on: an AWS access denial names the IAM action and the connection
  (:meth:`AwsConnectionMixin.aws_errors`), and an error or timeout event says what it was about
  (:meth:`AwsConnectionMixin.raise_for_event`);
* console links stored with the region and partition of the hook (:meth:`AwsConnectionMixin.persist_link`).

:class:`~airflow_provider_mwaaops.sensors.base.AwsBaseSensor` shares all of it except the waiting
parameters, which a sensor takes from Airflow's own ``poke_interval`` and ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from botocore.exceptions import ClientError

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.aws.errors import access_denied_action, describe_aws_error
from airflow_provider_mwaaops.compat import AirflowException, BaseOperator, conf
from airflow_provider_mwaaops.triggers.base import (
    STATUS_FAILURE,
    STATUS_SUCCESS,
    STATUS_TIMEOUT,
    AwsPollingTrigger,
    botocore_config_dict,
)

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
    from airflow.providers.amazon.aws.links.base_aws import BaseAwsLink
    from botocore.config import Config

    from airflow_provider_mwaaops.compat import Context

__all__ = ["AwsBaseOperator", "AwsConnectionMixin", "aws_template_fields", "default_deferrable"]


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when an operator is built (not at import)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def _seconds(value: timedelta | float | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds or a timedelta, got {value!r}")
    return float(seconds)


class AwsConnectionMixin:
    """Connection settings, hook factory, AWS error wording and links: shared by the operator and
    sensor bases (each takes the parameters explicitly in its own ``__init__``, so that Airflow's
    ``default_args`` apply to them)."""

    #: The synchronous amazon-provider hook class :attr:`hook` builds (an ``AwsGenericHook``).
    aws_hook_class: ClassVar[type[AwsGenericHook[Any]]]
    #: The service's name in error messages, as in "Glue call failed".
    aws_service_label: ClassVar[str] = "AWS"

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None
    deferrable: bool

    def _set_connection(
        self,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: Config | dict[str, Any] | None,
        deferrable: bool | None,
    ) -> None:
        if verify is not None and not isinstance(verify, bool | str):
            raise ValueError(f"verify must be True, False, None or a CA bundle path, got {verify!r}")
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config_dict(botocore_config)
        self.deferrable = default_deferrable() if deferrable is None else bool(deferrable)

    # -- the synchronous side ---------------------------------------------------------------------
    def hook_params(self) -> dict[str, Any]:
        """Constructor arguments of :attr:`aws_hook_class`; extend it for a hook that takes more."""
        params = self.connection_kwargs()
        params["config"] = params.pop("botocore_config")  # what the amazon provider's hooks call it
        return params

    @cached_property
    def hook(self) -> Any:
        """The synchronous hook, built on first use (after templates are rendered)."""
        return self.aws_hook_class(**self.hook_params())

    def connection_kwargs(self) -> dict[str, Any]:
        """The connection part of every trigger's arguments (see ``AwsBaseOperator.trigger_kwargs``)."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }

    # -- errors -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def aws_errors(self) -> Iterator[None]:
        """Turn a botocore ``ClientError`` raised inside into an error a DAG author can act on."""
        try:
            yield
        except ClientError as exc:
            raise self._aws_error(exc) from exc

    def _aws_error(self, exc: ClientError) -> Exception:
        action = access_denied_action(exc)
        if action:
            return AirflowException(self._denied(action, describe_aws_error(exc)))
        return AirflowException(f"{self.aws_service_label} call failed: {describe_aws_error(exc)}")

    def _denied(self, action: str, detail: str) -> str:
        return f"AWS denied {action} (IAM): grant it to the role of connection {self.aws_conn_id!r}. {detail}"

    def raise_for_event(self, event: dict[str, Any] | None, what: str, wait_timeout: float | None) -> None:
        """Raise for a trigger's ``timeout`` or ``error`` event (naming ``what`` it waited for);
        return for ``success`` and ``failure``, which only the subclass can explain."""
        event = event or {}
        status = event.get("status")
        if status == STATUS_TIMEOUT:
            raise AirflowException(f"{what} still running after wait_timeout={wait_timeout}s")
        if status not in (STATUS_SUCCESS, STATUS_FAILURE):
            action = event.get("iam_action")
            detail = f"could not wait for {what}: {event.get('message')}"
            raise AirflowException(self._denied(action, detail) if action else detail)

    # -- deferring and resuming ---------------------------------------------------------------------
    def defer_to(self, trigger: AwsPollingTrigger, context: Context, method_name: str) -> None:
        """Defer to ``trigger``, resuming in ``method_name``, noting which try deferred (see
        :meth:`resume_execution`)."""
        compat.note_deferral(context)
        self.defer(trigger=trigger, method_name=method_name)  # type: ignore[attr-defined]

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the deferral, unless it is an earlier try's: then this retry starts anew.

        Airflow 3.0 and 3.1.0 start a retry in the resumption of the failed try's deferral, with that
        try's event (:data:`~airflow_provider_mwaaops.compat.RETRY_MAY_RESUME_EARLIER_TRY`); a retry
        here must run ``execute``, which finds the earlier try's run and redrives or resumes it.
        """
        if compat.resumes_earlier_try(context["ti"]):
            self.log.warning(  # type: ignore[attr-defined]
                "Airflow resumed try %s in %s() with an earlier try's trigger event; "
                "starting the try from execute() instead",
                context["ti"].try_number,
                next_method,
            )
            return self.execute(context)  # type: ignore[attr-defined]
        return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]

    # -- console links ------------------------------------------------------------------------------
    def persist_link(self, link: type[BaseAwsLink], context: Context, **fields: Any) -> None:
        """Store one console link's fields in XCom, with the hook's region and partition."""
        link.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            **fields,
        )


class AwsBaseOperator(AwsConnectionMixin, BaseOperator):
    """Base of this package's AWS operators; see the module documentation.

    A subclass sets :attr:`~AwsConnectionMixin.aws_hook_class` (and
    :attr:`~AwsConnectionMixin.aws_service_label`), lists its own
    ``template_fields`` through ``aws_template_fields(...)``, validates its inputs at the start of
    ``execute`` (before any AWS call), starts or finds its resource inside ``with
    self.aws_errors():``, builds its trigger with ``**self.trigger_kwargs()`` and ends ``execute``
    with ``return self.wait_for(trigger, context)``. Its ``execute_complete(context, event)`` is
    called with the trigger's event in both modes; ``self.raise_for_event(event, what,
    self.wait_timeout)`` handles the timeout and error events.

    :param aws_conn_id: Airflow AWS connection; ``None`` uses boto's default credential chain.
        (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: TLS verification: ``False``, or a CA bundle path. (templated)
    :param botocore_config: botocore ``Config`` options as a dict (``{"read_timeout": 60,
        "proxies": {...}}``), for the synchronous calls and the wait alike.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param waiter_delay: seconds between status checks (jittered; longer while AWS throttles).
    :param waiter_max_delay: upper bound of the delay while backing off.
    :param wait_timeout: give up waiting after this long (seconds or a timedelta); the AWS
        resource keeps running. Default: wait as long as it runs.
    :param waiter_max_attempts: the amazon provider's way to say the same: give up after about
        ``waiter_max_attempts`` checks, i.e. after ``waiter_delay * waiter_max_attempts`` seconds.
        Give one of ``wait_timeout`` and ``waiter_max_attempts``, or both with the same meaning.
    """

    template_fields: Sequence[str] = aws_template_fields()

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferrable: bool | None = None,
        waiter_delay: float = 30,
        waiter_max_delay: float = 300,
        wait_timeout: timedelta | float | None = None,
        waiter_max_attempts: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_connection(aws_conn_id, region_name, verify, botocore_config, deferrable)
        if isinstance(waiter_delay, bool) or not isinstance(waiter_delay, int | float) or waiter_delay <= 0:
            raise ValueError(f"waiter_delay must be positive, got {waiter_delay!r}")
        if not isinstance(waiter_max_delay, int | float) or waiter_max_delay <= 0:
            raise ValueError(f"waiter_max_delay must be positive, got {waiter_max_delay!r}")
        self.waiter_delay = waiter_delay
        self.waiter_max_delay = waiter_max_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.wait_timeout = self._wait_limit(wait_timeout, waiter_max_attempts, waiter_delay)

    @staticmethod
    def _wait_limit(
        wait_timeout: timedelta | float | None, waiter_max_attempts: int | None, waiter_delay: float
    ) -> float | None:
        timeout = _seconds(wait_timeout, "wait_timeout")
        if waiter_max_attempts is None:
            return timeout
        if (
            isinstance(waiter_max_attempts, bool)
            or not isinstance(waiter_max_attempts, int)
            or waiter_max_attempts < 1
        ):
            raise ValueError(f"waiter_max_attempts must be a positive integer, got {waiter_max_attempts!r}")
        from_attempts = float(waiter_delay * waiter_max_attempts)
        if timeout is not None and timeout != from_attempts:
            raise ValueError(
                f"wait_timeout={timeout:g}s and waiter_max_attempts={waiter_max_attempts} (x waiter_delay="
                f"{waiter_delay:g}s = {from_attempts:g}s) set two different limits; give one of them"
            )
        return from_attempts

    def trigger_kwargs(self) -> dict[str, Any]:
        """Every trigger's common arguments: the connection, the delays and an absolute deadline
        from ``wait_timeout`` counted from now."""
        return {
            **self.connection_kwargs(),
            "waiter_delay": self.waiter_delay,
            "waiter_max_delay": self.waiter_max_delay,
            "timeout_at": AwsPollingTrigger.deadline_after(self.wait_timeout),
        }

    def wait_for(
        self, trigger: AwsPollingTrigger, context: Context, method_name: str = "execute_complete"
    ) -> Any:
        """Defer to ``trigger``, or run its wait here; either way ``method_name`` gets the event."""
        if self.deferrable:
            self.defer_to(trigger, context, method_name)
        event = asyncio.run(trigger.wait())
        return getattr(self, method_name)(context, event)
