"""
Producer side of cross-environment data-aware scheduling: a task updates an asset, and the
package's listener publishes the asset event to SNS for other Airflow environments.

Nothing in this DAG talks to SNS: the listener (loaded through the package's plugin) does, in the
component where Airflow records the event (the API server on Airflow 3, the task's own process on
2.11), when the environment's ``[mwaaops]`` section names a topic::

    [mwaaops]
    environment_name = producer-env
    asset_events_sns_topic_arn = arn:aws:sns:us-east-1:123456789012:mwaaops-example-asset-events
    asset_events_include = s3://mwaaops-example-lake/curated/*

``example_asset_events_consumer`` is the other environment's side.
"""

from __future__ import annotations

import json
from datetime import datetime

from airflow_provider_mwaaops.compat import DAG, Asset, task

BUCKET = "mwaaops-example-lake"
ORDERS = Asset(f"s3://{BUCKET}/curated/orders")

with DAG(
    dag_id="example_asset_events_producer",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "asset-events"],
    doc_md=__doc__,
) as dag:

    @task(outlets=[ORDERS])
    def publish_orders(**context) -> dict:
        """Write today's orders, then describe the update in the asset event's extra."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook()
        if not s3.check_for_bucket(BUCKET):
            s3.create_bucket(bucket_name=BUCKET)
        orders = [{"order_id": i, "amount": 10 * i} for i in range(1, 4)]
        key = f"curated/orders/{context['run_id'].replace(':', '_')}.json"
        s3.load_string(json.dumps(orders), key=key, bucket_name=BUCKET, replace=True)
        # Airflow 3 passes this extra to the listener (and so to the other environment).
        context["outlet_events"][ORDERS].extra = {"key": key, "rows": len(orders)}
        return {"key": key, "rows": len(orders)}

    publish_orders()


if __name__ == "__main__":
    dag.test()
