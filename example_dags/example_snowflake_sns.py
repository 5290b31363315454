"""
Load orders into Snowflake, query revenue per region, and publish the result through Amazon SNS.

The pipeline from the MWAA source material: the ``snowflake_default`` connection is used through
the snowflake provider (``SnowflakeHook`` to load, ``SnowflakeCheckOperator`` to check the load,
``SQLExecuteQueryOperator`` for the query), and the query's rows go to the SNS topic whose ARN is
kept in the Airflow Variable ``target_sns_arn`` with ``SnsPublishResultOperator``. Every task
reports a failure to the same topic through ``SnsRunStatusNotifier``, and so does the DAG itself.

On an account (or the embedded AWS) where ``target_sns_arn`` is not set, ``ensure_topic`` creates
the topic, an SQS queue subscribed to it and the Variable, and ``read_back`` shows the published
result arriving on that queue. Where the Variable is set, both leave your topic alone. The demo
runs it on fakesnow, Snowflake SQL on DuckDB.
"""

from __future__ import annotations

import json
from datetime import datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.snowflake.operators.snowflake import SnowflakeCheckOperator

from airflow_provider_mwaaops.compat import DAG, Variable, task
from airflow_provider_mwaaops.notifications.sns import SnsRunStatusNotifier
from airflow_provider_mwaaops.operators.sns import SnsPublishResultOperator

SNOWFLAKE_CONN_ID = "snowflake_default"
TOPIC_VARIABLE = "target_sns_arn"
DEMO_TOPIC = "mwaaops-example-results"
DEMO_QUEUE = "mwaaops-example-results-inbox"
ORDERS = [
    (1, "EU", 120.50),
    (2, "EU", 80.00),
    (3, "US", 200.00),
    (4, "US", 45.25),
    (5, "APAC", 99.99),
]

notify_oncall = SnsRunStatusNotifier(target_arn="{{ var.value.target_sns_arn }}")

with DAG(
    dag_id="example_snowflake_sns",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "snowflake", "sns"],
    doc_md=__doc__,
    on_failure_callback=notify_oncall,
    default_args={"on_failure_callback": notify_oncall},
) as dag:

    @task
    def ensure_topic() -> str:
        """Idempotent setup for an empty account or emulator; a no-op where the Variable exists."""
        from airflow.providers.amazon.aws.hooks.sns import SnsHook
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        configured = Variable.get(TOPIC_VARIABLE, None)
        if configured:
            return configured
        topic_arn = SnsHook().get_conn().create_topic(Name=DEMO_TOPIC)["TopicArn"]
        sqs = SqsHook().get_conn()
        queue_url = sqs.create_queue(QueueName=DEMO_QUEUE)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        SnsHook().get_conn().subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        Variable.set(TOPIC_VARIABLE, topic_arn)
        return topic_arn

    @task
    def load_orders() -> int:
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        hook = SnowflakeHook(snowflake_conn_id=SNOWFLAKE_CONN_ID)
        hook.run(
            [
                "CREATE OR REPLACE TABLE orders (id INTEGER, region VARCHAR, amount NUMBER(10, 2))",
                "INSERT INTO orders (id, region, amount) VALUES "  # noqa: S608 (constants above)
                + ", ".join(f"({i}, '{region}', {amount})" for i, region, amount in ORDERS),
            ]
        )
        return len(ORDERS)

    check_load = SnowflakeCheckOperator(
        task_id="check_load",
        snowflake_conn_id=SNOWFLAKE_CONN_ID,
        sql=f"SELECT COUNT(*) = {len(ORDERS)} FROM orders",  # noqa: S608 (a constant)
    )

    revenue = SQLExecuteQueryOperator(
        task_id="revenue_per_region",
        conn_id=SNOWFLAKE_CONN_ID,
        sql=(
            "SELECT region, COUNT(*) AS orders, SUM(amount) AS revenue "
            "FROM orders GROUP BY region ORDER BY region"
        ),
    )

    @task
    def shape(rows: list) -> list[dict]:
        """Rows as records a subscriber can read without knowing the column order."""
        return [{"region": r[0], "orders": int(r[1]), "revenue": float(r[2])} for r in rows]

    publish = SnsPublishResultOperator(
        task_id="publish_result",
        target_arn="{{ var.value.target_sns_arn }}",
        result=shape(revenue.output),
        # Airflow 3 runs triggered through the REST API or by an asset have no logical date (no ``ds``).
        subject="Revenue per region for {{ (dag_run.logical_date or dag_run.run_after) | ds }}",
        message_attributes={"report": "revenue_per_region"},
    )

    @task
    def read_back(topic_arn: str) -> dict | None:
        """On the demo topic, show what a subscriber received; elsewhere there is nothing to read."""
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        sqs = SqsHook().get_conn()
        try:
            queue_url = sqs.get_queue_url(QueueName=DEMO_QUEUE)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            return None
        if not topic_arn.endswith(f":{DEMO_TOPIC}"):
            return None
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5)
        for message in received.get("Messages", []):
            envelope = json.loads(message["Body"])
            document = json.loads(envelope["Message"])
            if document.get("state") == "result":
                return {"subject": envelope.get("Subject"), "result": document["result"]}
        raise ValueError("the published result did not arrive on the demo queue")

    topic = ensure_topic()
    topic >> load_orders() >> check_load >> revenue
    publish >> read_back(topic)
    topic >> publish


if __name__ == "__main__":
    dag.test()
