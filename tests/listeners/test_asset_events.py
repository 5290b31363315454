"""The asset/dataset listener, loaded by Airflow through the plugin entry point, under dag.test().

On Airflow 3.3 ``dag.test()`` runs the task in-process but reports its success through Airflow's
real execution API application (in-process transport): the route that records the outlet's asset
event is the one the API server runs, and it calls ``on_asset_changed`` /
``on_asset_event_emitted``. ``on_asset_created`` comes from syncing the DAG into the database.
On 2.11 ``dag.test()`` runs the real ``_run_raw_task``, which registers the dataset change and
calls ``on_dataset_changed`` in the task's process, as a worker would. The API-server process
itself is covered in test_asset_events_api_server.py.
"""

from __future__ import annotations

import logging

import pytest

from airflow_provider_mwaaops import compat
from airflow_provider_mwaaops.listeners.asset_events import (
    PAYLOAD_SCHEMA,
    PAYLOAD_VERSION,
    AssetEventsListener,
    uri_selected,
)
from airflow_provider_mwaaops.listeners.publisher import EventPublisher
from airflow_provider_mwaaops.testing.dag_runner import register_dag_for_test

pytestmark = pytest.mark.timeout(240)


def producer_dag(dag_id: str, uris: list[str], extra: dict | None = None):
    """One task whose outlets are ``uris``; on Airflow 3 it also attaches ``extra`` to the events."""
    with compat.DAG(dag_id, schedule=None, catchup=False) as dag:

        @compat.task(outlets=[compat.Asset(uri) for uri in uris])
        def produce(**context):
            if extra and compat.AIRFLOW_V_3_0_PLUS:
                for uri in uris:
                    context["outlet_events"][compat.Asset(uri)].extra = extra
            return len(uris)

        produce()
    return dag


def ti_record(dag_id: str, run_id: str, task_id: str = "produce"):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id).one()
        session.expunge(ti)
        return ti


def by_type(messages: list[dict], event_type: str, uri: str) -> list[dict]:
    return [m for m in messages if m["event_type"] == event_type and m["asset"]["uri"] == uri]


# -- registration ------------------------------------------------------------------------------
def test_plugin_entry_point_registers_the_listener(mwaaops_airflow):
    from airflow.listeners.listener import get_listener_manager

    from airflow_provider_mwaaops.listeners.asset_events import asset_events_listener

    manager = get_listener_manager()
    assert manager.pm.is_registered(asset_events_listener)
    hooks = {
        impl.function.__name__
        for hook in manager.pm.get_hookcallers(asset_events_listener)
        for impl in hook.get_hookimpls()
        if impl.plugin is asset_events_listener
    }
    expected = (
        {"on_asset_created", "on_asset_changed", "on_asset_event_emitted"}
        if compat.AIRFLOW_V_3_0_PLUS
        else {"on_dataset_created", "on_dataset_changed"}
    )
    assert expected <= hooks


# -- created and changed, published to SNS and EventBridge -------------------------------------
def test_created_and_changed_reach_sns_and_eventbridge(dag_runner, targets, unique_uri, registered_listener):
    uri = unique_uri("orders")
    dag = producer_dag("asset_events_both_targets", [uri], extra={"rows": 42})

    result = dag_runner(dag)

    assert result.succeeded, result
    registered_listener.publisher.flush(30)
    sns = targets.sns_messages(2)
    bus = targets.bus_messages(2)
    for messages in (sns, bus):
        created, changed = by_type(messages, "created", uri), by_type(messages, "changed", uri)
        assert len(created) == 1, messages
        assert len(changed) == 1, messages
        event = changed[0]
        assert event["schema"] == PAYLOAD_SCHEMA
        assert event["version"] == PAYLOAD_VERSION
        assert event["environment"] == "test-env"
        assert event["airflow_version"] == compat.AIRFLOW_VERSION_STRING
        if compat.AIRFLOW_V_3_0_PLUS and not compat.ASSET_EVENT_EMITTED_HOOK:
            # Airflow 3.0/3.1 call on_asset_changed with the asset alone (AssetManager
            # .notify_asset_changed): the payload has no event details there.
            assert event["airflow_hook"] == "on_asset_changed"
            assert event["event"] is None
            assert event["asset"]["name"] == uri
            assert created[0]["event"] is None
            assert created[0]["airflow_hook"] == "on_asset_created"
            continue
        assert event["event"]["source_dag_id"] == "asset_events_both_targets"
        assert event["event"]["source_task_id"] == "produce"
        assert event["event"]["source_run_id"] == result.run_id
        assert event["event"]["source_map_index"] == -1
        assert created[0]["event"] is None
        if compat.AIRFLOW_V_3_0_PLUS:
            assert event["airflow_hook"] == "on_asset_event_emitted"
            assert event["event"]["extra"] == {"rows": 42}
            assert event["asset"]["name"] == uri
            assert event["asset"]["group"] == "asset"
            assert created[0]["airflow_hook"] == "on_asset_created"
        else:
            assert event["airflow_hook"] == "on_dataset_changed"
            assert created[0]["airflow_hook"] == "on_dataset_created"


def test_include_and_exclude_patterns(dag_runner, targets, unique_uri, registered_listener, monkeypatch):
    kept, excluded, outside = (
        unique_uri("curated/orders"),
        unique_uri("curated/tmp_scratch"),
        unique_uri("raw/x"),
    )
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_INCLUDE", "s3://lake-*/curated/*")
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_EXCLUDE", "*/tmp_*")
    dag = producer_dag("asset_events_filters", [kept, excluded, outside])

    result = dag_runner(dag)

    assert result.succeeded, result
    registered_listener.publisher.flush(30)
    uris = {(m["event_type"], m["asset"]["uri"]) for m in targets.sns_messages(2)}
    uris |= {(m["event_type"], m["asset"]["uri"]) for m in targets.sns_messages(10, timeout=2)}
    assert uris == {("created", kept), ("changed", kept)}


def test_uri_selected_globs():
    assert uri_selected("s3://a/b", [], [])
    assert not uri_selected("s3://a/b", ["s3://x/*"], [])
    assert uri_selected("s3://x/b", ["s3://x/*", "gs://*"], [])
    assert not uri_selected("s3://x/tmp/b", ["s3://x/*"], ["*/tmp/*"])
    assert not uri_selected("file:///tmp/a", [], ["file://*"])


def test_nothing_is_published_without_a_target(dag_runner, aws_emulator, unique_uri, registered_listener):
    before = registered_listener.publisher.stats.enqueued
    result = dag_runner(producer_dag("asset_events_unconfigured", [unique_uri("a")]))

    assert result.succeeded
    assert registered_listener.publisher.stats.enqueued == before


# -- a hanging or failing target never touches the task ----------------------------------------
def test_hanging_target_leaves_task_timing_and_state_untouched(
    dag_runner, targets, unique_uri, registered_listener, hanging_endpoint, monkeypatch, caplog
):
    """SNS answers nothing at all: the task ends first; the publish fails later in the worker thread."""
    from airflow_provider_mwaaops.listeners import publisher as publisher_module

    dag = producer_dag("asset_events_hanging_target", [unique_uri("orders")])
    # Airflow creates the asset (on_asset_created / on_dataset_created) when the DAG is first
    # synced: let that event go to the working target, so the hanging one sees only the change.
    register_dag_for_test(dag)
    assert registered_listener.publisher.flush(30)
    monkeypatch.setattr(publisher_module, "READ_TIMEOUT_S", 2.0)
    monkeypatch.setattr(publisher_module, "CONNECT_TIMEOUT_S", 2.0)
    monkeypatch.setenv("AIRFLOW_CONN_MWAAOPS_HANG", hanging_endpoint.connection_json())
    monkeypatch.setenv("AIRFLOW__MWAAOPS__AWS_CONN_ID", "mwaaops_hang")
    monkeypatch.delenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_EVENT_BUS_NAME")
    failed_before = registered_listener.publisher.stats.failed
    caplog.set_level(logging.WARNING, logger="airflow_provider_mwaaops.listeners.publisher")

    result = dag_runner(dag)

    assert result.succeeded, result
    assert result.task_states == {"produce": "success"}
    ti = ti_record(result.dag_id, result.run_id)
    # The task's end was recorded before the listener's first request even reached the target.
    assert hanging_endpoint.wait_for_accept(30) is not None
    assert ti.end_date <= hanging_endpoint.first_accept
    assert registered_listener.publisher.flush(60)
    assert registered_listener.publisher.stats.failed > failed_before
    assert "publishing" in caplog.text
    assert "failed" in caplog.text
    assert "Timeout" in caplog.text or "timed out" in caplog.text


def test_failing_target_is_logged_and_the_task_succeeds(
    dag_runner, targets, unique_uri, registered_listener, monkeypatch, caplog
):
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_SNS_TOPIC_ARN", targets.topic_arn + "-missing")
    failed_before = registered_listener.publisher.stats.failed
    caplog.set_level(logging.WARNING, logger="airflow_provider_mwaaops.listeners.publisher")

    result = dag_runner(producer_dag("asset_events_failing_target", [unique_uri("orders")]))

    assert result.succeeded, result
    assert registered_listener.publisher.flush(30)
    assert registered_listener.publisher.stats.failed >= failed_before + 2  # created + changed
    assert "NotFound" in caplog.text
    # The EventBridge half of the same events still went out.
    assert len(targets.bus_messages(2)) == 2


def test_full_queue_drops_and_logs_without_blocking(targets, hanging_endpoint, monkeypatch, caplog):
    from airflow_provider_mwaaops.listeners import publisher as publisher_module

    monkeypatch.setattr(publisher_module, "READ_TIMEOUT_S", 1.0)
    monkeypatch.setattr(publisher_module, "MAX_ATTEMPTS", 1)
    monkeypatch.setenv("AIRFLOW_CONN_MWAAOPS_HANG", hanging_endpoint.connection_json())
    monkeypatch.setenv("AIRFLOW__MWAAOPS__AWS_CONN_ID", "mwaaops_hang")
    caplog.set_level(logging.WARNING, logger="airflow_provider_mwaaops.listeners.publisher")
    listener = AssetEventsListener(EventPublisher(max_queue_size=2))
    asset = compat.Asset("s3://lake/dropped")
    hook = listener.on_asset_created if compat.AIRFLOW_V_3_0_PLUS else listener.on_dataset_created

    for _ in range(6):
        hook(asset)  # the first is in flight (hanging), two wait in the queue, three are dropped

    stats = listener.publisher.stats
    assert stats.enqueued + stats.dropped == 6
    assert stats.dropped >= 3
    assert "queue full" in caplog.text
    assert listener.publisher.flush(60)


def test_listener_never_raises(monkeypatch, caplog):
    """Airflow 2.11 calls dataset hooks unguarded: an exception there would fail the task."""
    listener = AssetEventsListener(EventPublisher())
    monkeypatch.setenv("AIRFLOW__MWAAOPS__ASSET_EVENTS_SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t")

    listener.on_dataset_changed(object())  # no .uri at all
    listener.on_asset_changed(None)
    listener.on_asset_event_emitted(object())

    assert "listener failed" in caplog.text
