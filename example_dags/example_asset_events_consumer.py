"""
Consumer side of cross-environment data-aware scheduling: runs when another Airflow environment
publishes an asset event (``example_asset_events_producer`` and the package's listener) to an SNS
topic that this environment's SQS queue is subscribed to.

On Airflow 3 the DAG is scheduled on an asset with an ``AssetWatcher``: the triggerer polls the
queue, each message becomes an asset event, and the scheduler starts this DAG with the message in
``triggering_asset_events``. Airflow 2.11 has no watchers: the DAG runs continuously and its first
task is a deferrable SQS sensor waiting for the next message. Both come from
``airflow_provider_mwaaops.assets.sqs``: ``sqs_asset_schedule`` / ``sqs_asset_wait``.

The queue is infrastructure owned by this environment; create it with your usual tooling and
subscribe it to the producer's topic with raw message delivery and the filter policy
``{"event_type": ["changed"]}`` (add ``asset_uri`` to it to pick single assets).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from airflow_provider_mwaaops.assets.sqs import received_sqs_messages, sqs_asset_schedule, sqs_asset_wait
from airflow_provider_mwaaops.compat import DAG, task

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/mwaaops-example-asset-events-consumer"
#: How this environment names the producer's data; a different URI from the producer's own asset.
REMOTE_ORDERS_URI = "mwaaops-remote://producer-env/curated/orders"
WAIT_TASK_ID = "wait_for_event"

log = logging.getLogger(__name__)

with DAG(
    dag_id="example_asset_events_consumer",
    schedule=sqs_asset_schedule(REMOTE_ORDERS_URI, QUEUE_URL, waiter_delay=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "asset-events"],
    doc_md=__doc__,
) as dag:
    # Airflow 2.11 only (None on Airflow 3, where the watcher already waited); an hour without
    # events skips the run and the next one starts waiting again.
    wait = sqs_asset_wait(WAIT_TASK_ID, QUEUE_URL, timeout=3600, soft_fail=True, poke_interval=10)

    @task
    def load_orders(**context) -> list[dict]:
        """Read the producer's events (the listener's JSON payload) and act on them."""
        received = []
        for body in received_sqs_messages(context, WAIT_TASK_ID):
            event = json.loads(body)
            if event.get("schema") != "mwaaops.asset_event" or event.get("event_type") != "changed":
                continue
            source = event.get("event") or {}
            received.append(
                {
                    "uri": event["asset"]["uri"],
                    "environment": event.get("environment"),
                    "source_dag_id": source.get("source_dag_id"),
                    "source_run_id": source.get("source_run_id"),
                    "extra": source.get("extra"),
                }
            )
            log.info("Orders updated in %s: %s", event.get("environment"), received[-1])
        if not received:
            log.info("No producer event in this run (started by hand rather than by an event)")
        return received

    loaded = load_orders()
    if wait is not None:
        wait >> loaded


if __name__ == "__main__":
    dag.test()
