"""The base of this package's AWS sensors: Airflow's sensor modes on top of a polling trigger.

A sensor here is a trigger's :meth:`~airflow_provider_mwaaops.triggers.base.AwsPollingTrigger.check`
seen through Airflow's sensor machinery. Deferred, the sensor hands the whole wait to the trigger;
in ``poke`` or ``reschedule`` mode each poke runs the same ``check`` once
(:meth:`~airflow_provider_mwaaops.triggers.base.AwsPollingTrigger.check_once`). So the condition is
written once, in the trigger, and both modes judge it alike. The wait follows Airflow's sensor
parameters: ``poke_interval`` is the trigger's delay and ``timeout`` its deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.compat import AirflowException, BaseSensorOperator, PokeReturnValue
from airflow_provider_mwaaops.operators.base import AwsConnectionMixin, aws_template_fields
from airflow_provider_mwaaops.triggers.base import STATUS_SUCCESS, AwsPollingTrigger

if TYPE_CHECKING:
    from airflow_provider_mwaaops.compat import Context

__all__ = ["AwsBaseSensor"]

#: Longest pause between checks while AWS throttles a deferred sensor.
MAX_BACKOFF_SECONDS = 300.0


class AwsBaseSensor(AwsConnectionMixin, BaseSensorOperator):
    """Base of this package's AWS sensors.

    A subclass sets ``aws_hook_class`` (used by ``self.hook``, for anything synchronous it needs)
    and implements :meth:`trigger`: the trigger whose ``check`` returns ``{"status": "success",
    ...}`` when the condition holds, ``{"status": "failure", "message": ...}`` when it never will,
    and ``None`` to keep waiting. :meth:`execute_complete` returns the success payload (pushed to
    XCom) and raises for anything else; override it to return something else.

    :param aws_conn_id: Airflow AWS connection; ``None`` uses boto's default credential chain.
        (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: TLS verification: ``False``, or a CA bundle path. (templated)
    :param botocore_config: botocore ``Config`` options as a dict.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``);
        otherwise Airflow's ``mode`` (``poke`` or ``reschedule``) applies.
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_connection(aws_conn_id, region_name, verify, botocore_config, deferrable)

    def trigger(self, context: Context) -> AwsPollingTrigger:
        """The trigger that judges the condition; build it with ``**self.trigger_kwargs()``."""
        raise NotImplementedError

    def trigger_kwargs(self) -> dict[str, Any]:
        """Connection settings, ``poke_interval`` as the delay and ``timeout`` as the deadline."""
        delay = float(self.poke_interval)
        return {
            **self.connection_kwargs(),
            "waiter_delay": delay,
            "waiter_max_delay": max(delay, MAX_BACKOFF_SECONDS),
            "timeout_at": AwsPollingTrigger.deadline_after(float(self.timeout)),
        }

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self.defer_to(self.trigger(context), context, "execute_complete")
        return super().execute(context)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        event = asyncio.run(self.trigger(context).check_once())
        if event is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.execute_complete(context, event))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """The success payload; a clear error for a failure, an error or the deadline."""
        if event and event.get("status") == STATUS_SUCCESS:
            return event
        self.raise_for_event(event, self.task_id, float(self.timeout))
        raise AirflowException(f"{self.task_id}: {(event or {}).get('message') or event}")
