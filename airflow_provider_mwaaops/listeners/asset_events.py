"""Publish Airflow's asset (3.x) and dataset (2.11) events to SNS and/or EventBridge.

One listener object carries the hooks of both lines; Airflow registers only the hooks its
listener spec knows about and ignores the others. Where Airflow calls them:

* Airflow 3: ``on_asset_created`` in the dag processor (and wherever DAGs are synced to the
  database, e.g. ``dag.test()``); ``on_asset_changed`` / ``on_asset_event_emitted`` in the API
  server (task outlets reach it through the execution API, ``POST /api/v2/assets/events`` through
  the public API) and in the triggerer (asset watcher events).
* Airflow 2.11: ``on_dataset_created`` in the scheduler / dag processor; ``on_dataset_changed`` in
  the task process that produced the event (or the webserver for the REST API).

Every hook only builds a small dictionary and hands it to the
:class:`~airflow_provider_mwaaops.listeners.publisher.EventPublisher` queue; it never raises into
Airflow (2.11 does not guard listener calls: an exception there would fail the task).

The payload format is documented in ``docs/components/asset-events.rst``; bump
:data:`PAYLOAD_VERSION` for any incompatible change.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from airflow_provider_mwaaops import compat, config
from airflow_provider_mwaaops.listeners.publisher import EventPublisher, PublishTargets

log = logging.getLogger(__name__)

#: The ``schema`` field of every published payload.
PAYLOAD_SCHEMA = "mwaaops.asset_event"
#: The payload's format version (the ``version`` field); bumped for incompatible changes only.
PAYLOAD_VERSION = 1


def uri_selected(uri: str, include: list[str], exclude: list[str]) -> bool:
    """Glob match (``fnmatch``, case-sensitive): included (or no include list) and not excluded."""
    if include and not any(fnmatch.fnmatchcase(uri, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(uri, pattern) for pattern in exclude)


def publish_targets() -> PublishTargets:
    """Where the ``[mwaaops]`` settings send events (read through the cached getters of
    :mod:`~airflow_provider_mwaaops.config`: a listener hook must stay cheap)."""
    return PublishTargets(
        sns_topic_arn=config.asset_events_sns_topic_arn(),
        event_bus_name=config.asset_events_event_bus_name(),
        aws_conn_id=config.aws_conn_id(),
        region_name=config.region_name(),
    )


def asset_identity(asset: Any) -> dict[str, Any]:
    """URI, name, group and extra of an asset (3.x) or dataset (2.11; it has no name or group).

    Accepts what the listener hooks receive: ``SerializedAsset`` on 3.x, ``Dataset`` or
    ``DatasetModel`` on 2.11.
    """
    return {
        "uri": asset.uri,
        "name": getattr(asset, "name", None),
        "group": getattr(asset, "group", None),
        "extra": dict(getattr(asset, "extra", None) or {}),
    }


def asset_event_details(asset_event: Any) -> tuple[Any, dict[str, Any]]:
    """``(asset, details)`` from the event ``on_asset_event_emitted`` receives (Airflow 3.2+).

    ``details`` holds the event's extra and its source task instance (all None when the event came
    from the REST API or an asset watcher rather than a task).
    """
    partition_date = getattr(asset_event, "partition_date", None)
    return asset_event.asset, {
        "extra": dict(asset_event.extra or {}),
        "source_dag_id": asset_event.source_dag_id,
        "source_task_id": asset_event.source_task_id,
        "source_run_id": asset_event.source_run_id,
        "source_map_index": asset_event.source_map_index,
        "source_aliases": [alias.name for alias in (getattr(asset_event, "source_aliases", None) or [])],
        "partition_key": getattr(asset_event, "partition_key", None),
        "partition_date": partition_date.isoformat() if partition_date else None,
    }


def build_payload(
    event_type: str,
    hook: str,
    asset: dict[str, Any],
    event: dict[str, Any] | None,
    environment: str | None,
) -> dict[str, Any]:
    """The published message (format version :data:`PAYLOAD_VERSION`)."""
    return {
        "schema": PAYLOAD_SCHEMA,
        "version": PAYLOAD_VERSION,
        "event_type": event_type,
        "airflow_hook": hook,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "environment": environment,
        "airflow_version": compat.INSTALLED_AIRFLOW_VERSION,
        "asset": asset,
        "event": event,
    }


class AssetEventsListener:
    """Listener (pluggy hookimpls) that publishes asset/dataset events outward.

    The module-level :data:`asset_events_listener` is the instance the plugin registers; tests may
    build their own with a custom
    :class:`~airflow_provider_mwaaops.listeners.publisher.EventPublisher`.
    """

    def __init__(self, publisher: EventPublisher | None = None):
        self._publisher = publisher
        self._publisher_lock = threading.Lock()
        # Airflow 2.11 does not tell the dataset hooks which task produced the event; the task
        # runs in this process on this thread, so the task-instance hooks remember it.
        self._running = threading.local()

    @property
    def publisher(self) -> EventPublisher:
        if self._publisher is None:
            with self._publisher_lock:
                if self._publisher is None:
                    self._publisher = EventPublisher(max_queue_size=config.asset_events_queue_size())
        return self._publisher

    # -- Airflow 3 ---------------------------------------------------------------------------
    @compat.hookimpl
    def on_asset_created(self, asset: Any) -> None:
        self._safely(self._emit, "created", "on_asset_created", asset, None)

    @compat.hookimpl
    def on_asset_changed(self, asset: Any) -> None:
        if compat.ASSET_EVENT_EMITTED_HOOK:
            return  # published from on_asset_event_emitted, which Airflow calls right after
        self._safely(self._emit, "changed", "on_asset_changed", asset, None)

    @compat.hookimpl
    def on_asset_event_emitted(self, asset_event: Any) -> None:
        self._safely(self._emit_event, asset_event)

    # -- Airflow 2.11 --------------------------------------------------------------------------
    @compat.hookimpl
    def on_dataset_created(self, dataset: Any) -> None:
        self._safely(self._emit, "created", "on_dataset_created", dataset, None)

    @compat.hookimpl
    def on_dataset_changed(self, dataset: Any) -> None:
        self._safely(self._emit, "changed", "on_dataset_changed", dataset, self._running_source())

    @compat.hookimpl
    def on_task_instance_running(self, task_instance: Any) -> None:
        if compat.DATASET_EVENTS_IN_TASK_PROCESS:
            self._safely(self._remember_task, task_instance)

    @compat.hookimpl
    def on_task_instance_success(self, task_instance: Any) -> None:
        if compat.DATASET_EVENTS_IN_TASK_PROCESS:
            self._safely(self._task_finished)

    @compat.hookimpl
    def on_task_instance_failed(self, task_instance: Any) -> None:
        if compat.DATASET_EVENTS_IN_TASK_PROCESS:
            self._safely(self._task_finished)

    # -- internals -----------------------------------------------------------------------------
    @staticmethod
    def _safely(func: Any, *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            log.warning("mwaaops asset events listener failed; the event is not published", exc_info=True)

    def _emit(self, event_type: str, hook: str, asset: Any, event: dict[str, Any] | None) -> None:
        self._submit(event_type, hook, asset_identity(asset), event)

    def _emit_event(self, asset_event: Any) -> None:
        asset, details = asset_event_details(asset_event)
        self._submit("changed", "on_asset_event_emitted", asset_identity(asset), details)

    def _submit(
        self, event_type: str, hook: str, asset: dict[str, Any], event: dict[str, Any] | None
    ) -> None:
        targets = publish_targets()
        if not targets.enabled:
            return
        if not uri_selected(asset["uri"], config.asset_events_include(), config.asset_events_exclude()):
            log.debug("mwaaops: %s event for %s not published (include/exclude)", event_type, asset["uri"])
            return
        payload = build_payload(event_type, hook, asset, event, config.environment_name())
        self.publisher.publish(payload, targets)

    def _remember_task(self, task_instance: Any) -> None:
        self._running.source = {
            "extra": None,  # Airflow 2.11 does not pass the event's extra to listeners
            "source_dag_id": task_instance.dag_id,
            "source_task_id": task_instance.task_id,
            "source_run_id": task_instance.run_id,
            "source_map_index": task_instance.map_index,
            "source_aliases": [],
            "partition_key": None,
            "partition_date": None,
        }

    def _running_source(self) -> dict[str, Any] | None:
        source = getattr(self._running, "source", None)
        return dict(source) if source else None

    def _task_finished(self) -> None:
        self._running.source = None
        # The 2.11 task process ends with os._exit(), skipping atexit: publish what this task
        # produced now. Airflow has already recorded the task's end date and state.
        if self._publisher is not None and self._publisher.pending:
            self._publisher.flush()


#: The instance registered by :class:`~airflow_provider_mwaaops.plugins.mwaaops.MwaaOpsPlugin`.
asset_events_listener = AssetEventsListener()
