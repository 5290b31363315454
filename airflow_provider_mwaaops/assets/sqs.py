"""Schedule a DAG on asset events that another environment publishes to an SQS queue.

The producing environment's listener (:mod:`~airflow_provider_mwaaops.listeners.asset_events`)
publishes each asset event to SNS or EventBridge; a queue subscribed there feeds the consuming
environment. The same DAG file runs on both lines: on Airflow 3 an asset watcher turns each message
into an asset event and so a DAG run; Airflow 2.11 has no watchers, so the DAG runs continuously
and its first task waits for the next message::

    with DAG("load_orders", schedule=sqs_asset_schedule(URI, QUEUE_URL)):
        wait = sqs_asset_wait("wait_for_orders", QUEUE_URL)  # None on Airflow 3

        @task
        def load(**context):
            for body in received_sqs_messages(context, "wait_for_orders"): ...

        loaded = load()
        if wait is not None:
            wait >> loaded
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mwaaops.compat import ASSET_WATCHERS, Asset, sqs_event_trigger

__all__ = ["received_sqs_messages", "sqs_asset_schedule", "sqs_asset_wait"]


def sqs_asset_schedule(
    uri: str, queue_url: str, *, aws_conn_id: str = "aws_default", waiter_delay: int = 30
) -> Any:
    """The schedule of a DAG fed by asset events arriving on an SQS queue from another environment.

    Airflow 3: the asset itself, with an ``AssetWatcher`` whose SQS trigger turns each message into
    an asset event (and so a DAG run). Airflow 2.11: ``"@continuous"``, the DAG's first task waits
    for the next message (:func:`sqs_asset_wait`).
    """
    if not ASSET_WATCHERS:
        return "@continuous"
    from airflow.sdk import AssetWatcher

    trigger = sqs_event_trigger(
        queue_url, aws_conn_id=aws_conn_id, waiter_delay=waiter_delay, max_messages=10
    )
    return [Asset(uri, watchers=[AssetWatcher(name=f"sqs-{uri}"[:200], trigger=trigger)])]


def sqs_asset_wait(task_id: str, queue_url: str, *, aws_conn_id: str = "aws_default", **kwargs: Any) -> Any:
    """Airflow 2.11: a deferrable SQS sensor that waits for the next event; None on Airflow 3.

    Call it inside the DAG's ``with`` block; on Airflow 3 the watcher already waited for the
    event before the run started, so there is nothing to wait for.
    """
    if ASSET_WATCHERS:
        return None
    from airflow.providers.amazon.aws.sensors.sqs import SqsSensor

    return SqsSensor(
        task_id=task_id,
        sqs_queue=queue_url,
        aws_conn_id=aws_conn_id,
        max_messages=10,
        deferrable=True,
        **kwargs,
    )


def received_sqs_messages(context: Any, wait_task_id: str) -> list[str]:
    """Bodies of the SQS messages that started this run (3.x) or that the wait task received (2.11)."""
    if ASSET_WATCHERS:
        bodies: list[str] = []
        for events in context["triggering_asset_events"].values():
            for event in events:
                for message in (event.extra or {}).get("payload", {}).get("message_batch", []):
                    bodies.append(message["Body"])
        return bodies
    messages = context["ti"].xcom_pull(task_ids=wait_task_id, key="messages") or []
    return [message["Body"] for message in messages]
