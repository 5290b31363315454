"""Every DAG in example_dags/ runs to success under dag.test() on the embedded AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_FILES = sorted(p for p in EXAMPLE_DAGS.glob("example_*.py"))


def test_there_are_examples():
    assert EXAMPLE_FILES


def test_example_folder_loads_without_import_errors(mwaaops_airflow):
    """The whole folder in one DagBag, as a scheduler parses a dags folder."""
    from airflow_provider_mwaaops.testing.dag_runner import load_dags

    dags, errors = load_dags(str(EXAMPLE_DAGS))
    assert not errors, errors
    assert len(dags) >= len(EXAMPLE_FILES)


@pytest.fixture
def metadata_db_connection(mwaaops_airflow, monkeypatch):
    """The connection the metadata examples read the metadata database through on Airflow 3."""
    import json

    url = mwaaops_airflow.sql_alchemy_conn
    if url.startswith("sqlite:///"):
        connection = json.dumps({"conn_type": "sqlite", "host": url.removeprefix("sqlite:///")})
    else:  # postgresql+psycopg2://... as an Airflow connection URI
        connection = "postgresql://" + url.split("://", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_MWAAOPS_METADATA_DB", connection)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_dag_succeeds(path, dag_runner, aws_emulator, metadata_db_connection, monkeypatch):
    from airflow_provider_mwaaops.testing.asset_events import prepare_example
    from airflow_provider_mwaaops.testing.dag_runner import load_dags
    from airflow_provider_mwaaops.testing.emr_examples import prepare_emr_example
    from airflow_provider_mwaaops.testing.glue_examples import prepare_glue_example
    from airflow_provider_mwaaops.testing.mwaa_recovery import prepare_mwaa_example
    from airflow_provider_mwaaops.testing.snowflake import fake_snowflake
    from airflow_provider_mwaaops.testing.task_tokens import forget_answers

    dags, errors = load_dags(str(path))
    assert not errors, errors
    assert dags, f"{path.name} defines no DAG"
    for dag in dags.values():
        prepare_example(dag, aws_emulator)  # the asset-events consumer needs its producer's event
        conf = prepare_mwaa_example(dag, aws_emulator)  # the MWAA recovery examples need a disaster
        conf = prepare_glue_example(dag, aws_emulator) or conf  # what the Glue examples' jobs do
        for name, value in prepare_emr_example(dag.dag_id, aws_emulator).items():  # a cluster, an app
            monkeypatch.setenv(name, value)
        with fake_snowflake():  # Snowflake examples run on fakesnow
            result = dag_runner(dag, conf=conf)
        forget_answers()  # the recovery example records its answer in the shared metadata DB
        assert result.succeeded, result
        assert set(result.task_states.values()) <= {"success", "skipped"}, result.task_states


def test_snowflake_example_result_arrives_through_sns(dag_runner, aws_emulator, monkeypatch):
    """The Snowflake example on fakesnow: its query result reaches an SQS queue subscribed to the
    topic named by the ``target_sns_arn`` Variable (set here, as in a real deployment)."""
    import json

    from airflow_provider_mwaaops.testing.dag_runner import load_dags
    from airflow_provider_mwaaops.testing.snowflake import fake_snowflake

    sns, sqs = aws_emulator.client("sns"), aws_emulator.client("sqs")
    topic_arn = sns.create_topic(Name="team-results")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="team-results-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
    monkeypatch.setenv("AIRFLOW_VAR_TARGET_SNS_ARN", topic_arn)

    dags, errors = load_dags(str(EXAMPLE_DAGS / "example_snowflake_sns.py"))
    assert not errors, errors
    with fake_snowflake():
        result = dag_runner(dags["example_snowflake_sns"])
    assert result.succeeded, result
    assert result.task_states["read_back"] == "success"  # nothing to read back on a user's topic

    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    (envelope,) = [json.loads(m["Body"]) for m in received]
    document = json.loads(envelope["Message"])
    assert document["result"] == [
        {"region": "APAC", "orders": 1, "revenue": 99.99},
        {"region": "EU", "orders": 2, "revenue": 200.5},
        {"region": "US", "orders": 2, "revenue": 245.25},
    ]
    assert envelope["MessageAttributes"]["report"]["Value"] == "revenue_per_region"
    assert envelope["Subject"].startswith("Revenue per region for ")
    # The demo's own topic was not created: the Variable named the topic to use.
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [topic_arn]
