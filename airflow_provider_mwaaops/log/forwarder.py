"""Put Airflow's own reason for ending the previous try at the top of the next try's log.

A listener on ``on_task_instance_running``: when a try starts, it reads the event log of the same
task instance (:mod:`airflow_provider_mwaaops.log.reasons`) and, if Airflow itself ended the
previous try (heartbeat timeout, stuck in queued, state mismatch, executor launch failure,
fail_fast) or requeued this one before it ran, logs one line per reason. The hook runs in the task
process before the operator executes (on Airflow 2 after ``pre_execute``), where anything logged
through the standard library lands in the try's own log: on Airflow 2 the raw task moves the task
log handlers onto the root logger; on Airflow 3 the task process sends its logging to the
supervisor, which writes the log.

It must never fail or slow a task: the lookup is one indexed query (Airflow 2) or one REST call
with ``[mwaaops] api_timeout`` and no retries (Airflow 3), every error is swallowed and logged once
per process, and ``[mwaaops] log_forwarder_enabled = False`` switches it off.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_mwaaops import compat, config
from airflow_provider_mwaaops.log.reasons import (
    EndReason,
    EventLogSource,
    lookup_reasons_before_try,
)

log = logging.getLogger(__name__)

#: Every forwarded line starts with this, so that people and log searches can find them.
LINE_PREFIX = "[mwaaops] "


def forward_reasons(task_instance: Any, source: EventLogSource | None = None) -> list[EndReason]:
    """Look up and log the reasons for ``task_instance``'s current try; returns what was logged."""
    reasons = lookup_reasons_before_try(task_instance, source=source)
    for reason in reasons:
        log.warning("%s%s", LINE_PREFIX, reason.as_text())
    return reasons


def _first_try(task_instance: Any) -> bool:
    return int(getattr(task_instance, "try_number", 0) or 0) <= 1


def _through_mwaa_api() -> bool:
    """Whether lookups go through MWAA's InvokeRestApi (Airflow 3 with ``mwaa_environment_name``).

    MWAA allows about 10 API requests per second per environment. A first try can only have been
    requeued (stuck in queued), which is rare; looking that up at every task start would spend the
    environment's whole budget on busy days, so through MWAA only retries are looked up.
    """
    if compat.TASKS_MAY_USE_METADATA_DB:
        return False
    return bool(config.mwaa_environment_name())


class LogForwarder:
    """The listener object; ``source`` is for tests (default: the line's event-log source)."""

    def __init__(self, source: EventLogSource | None = None):
        self._source = source

    @compat.hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        try:
            if not config.log_forwarder_enabled() or compat.task_instance_resumed(task_instance):
                return
            if self._source is None and _first_try(task_instance) and _through_mwaa_api():
                return  # see _through_mwaa_api
            forward_reasons(task_instance, source=self._source)
        except Exception:  # never into Airflow: on 2.11 an exception here fails the task
            log.debug("mwaaops log forwarder failed", exc_info=True)


log_forwarder = LogForwarder()
