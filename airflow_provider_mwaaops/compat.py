"""The one module that knows which Airflow line is installed.

Everything else in the package imports Airflow base classes and version-dependent helpers from
here, so that supporting a new Airflow release means editing one file. We do not rely on
``airflow.providers.common.compat.sdk`` because the oldest common-compat that MWAA ships (1.7.0,
on the 2.11.0 image) predates it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy
from airflow import __version__ as AIRFLOW_VERSION_STRING
from packaging.version import Version

AIRFLOW_VERSION = Version(Version(AIRFLOW_VERSION_STRING).base_version)
AIRFLOW_V_3_0_PLUS = Version("3.0.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_1_PLUS = Version("3.1.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_3_PLUS = Version("3.3.0") <= AIRFLOW_VERSION

#: Listener hook implementations are pluggy hookimpls under the "airflow" project name on both
#: lines; a hookimpl may declare any subset of a spec's arguments, so one class can carry the
#: Airflow 2 dataset hooks and the Airflow 3 asset hooks side by side.
hookimpl = pluggy.HookimplMarker("airflow")

from airflow.configuration import conf  # noqa: E402  (same path on both lines)
from airflow.plugins_manager import AirflowPlugin  # noqa: E402

if TYPE_CHECKING or AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import (
        DAG,
        BaseHook,
        BaseNotifier,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        Context,
        PokeReturnValue,
        Variable,
        task,
    )
    from airflow.sdk.exceptions import AirflowException
else:  # Airflow 2.11
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.exceptions import AirflowException  # type: ignore[assignment]
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    from airflow.models.baseoperator import BaseOperator  # type: ignore[no-redef]
    from airflow.models.baseoperatorlink import BaseOperatorLink  # type: ignore[no-redef]
    from airflow.models.dag import DAG  # type: ignore[no-redef]
    from airflow.models.variable import Variable  # type: ignore[no-redef]
    from airflow.notifications.basenotifier import BaseNotifier  # type: ignore[no-redef]
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue  # type: ignore[no-redef]
    from airflow.utils.context import Context  # type: ignore[no-redef]

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "DAG",
    "AirflowException",
    "AirflowPlugin",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Context",
    "PokeReturnValue",
    "Variable",
    "conf",
    "dag_test",
    "hookimpl",
    "load_dags",
    "read_task_event_log",
    "register_dag_for_test",
    "task",
    "task_instance_resumed",
    "task_instance_states",
    "task_return_values",
]


def register_dag_for_test(dag: Any) -> None:
    """Make an in-memory DAG runnable by ``dag.test()``.

    Airflow 3 refuses to create a DagRun for a DAG that is not serialized in a configured bundle;
    DAGs defined in a test module (or loaded from a folder that is not the dags folder) never are.
    Airflow 2.11 runs any DAG object, but records a task's dataset events only for datasets a
    parsed DAG has registered (else "DatasetModel ... not found"), so the DAG is synced there too.
    """
    if not AIRFLOW_V_3_0_PLUS:
        dag.sync_to_db()
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def dag_test(dag: Any, conf: dict[str, Any] | None = None, logical_date: Any = None) -> Any:
    """Call ``dag.test()``, whose logical-date argument changed name in Airflow 3."""
    if AIRFLOW_V_3_0_PLUS:
        if logical_date is None:
            return dag.test(run_conf=conf)
        return dag.test(run_conf=conf, logical_date=logical_date)
    return dag.test(run_conf=conf, execution_date=logical_date)


def task_instance_states(dag_id: str, run_id: str) -> dict[str, str]:
    """Final state of every task instance of one run, keyed ``task_id`` or ``task_id[map_index]``.

    Read straight from the metadata database: callers are test harnesses running in the same
    process as ``dag.test()``, where ORM access is allowed on both lines.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
            .filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .all()
        )
    states: dict[str, str] = {}
    for task_id, map_index, state in rows:
        key = task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"
        states[key] = str(state.value if hasattr(state, "value") else state)
    return states


def task_return_values(dag_id: str, run_id: str, key: str = "return_value") -> dict[str, Any]:
    """Every task's XCom ``key`` (its return value by default) of one run, deserialized.

    For test harnesses and reports running where ORM access is allowed.
    """
    from airflow.utils.session import create_session

    with create_session() as session:
        if AIRFLOW_V_3_0_PLUS:
            from airflow.models.xcom import XComModel

            query = XComModel.get_many(run_id=run_id, dag_ids=dag_id, key=key)
            rows = session.scalars(query).all()
            deserialize = XComModel.deserialize_value
        else:
            from airflow.models.xcom import XCom

            rows = XCom.get_many(run_id=run_id, dag_ids=dag_id, key=key, session=session).all()

            def deserialize(row: Any) -> Any:  # type: ignore[misc]  # Airflow 2 decodes on load
                return row.value

        values: dict[str, Any] = {}
        for row in rows:
            key = (
                row.task_id
                if row.map_index is None or row.map_index < 0
                else f"{row.task_id}[{row.map_index}]"
            )
            values[key] = deserialize(row)
    return values


def load_dags(folder: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse every DAG file in ``folder``: (DAGs by id, import errors by file)."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=folder)
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

        bag = DagBag(dag_folder=folder, include_examples=False)  # type: ignore[call-arg]
    return dict(bag.dags), dict(bag.import_errors)


# -- SNS notifier (notifications/): UI links, secrets masking, template accessors -----------------
def ui_base_url() -> str:
    """The Airflow UI's base URL: ``[api] base_url`` on Airflow 3, ``[webserver] base_url`` on 2.11."""
    if AIRFLOW_V_3_0_PLUS:
        url = conf.get("api", "base_url", fallback="") or "http://localhost:8080"
    else:
        url = conf.get("webserver", "base_url", fallback="") or "http://localhost:8080"
    return url.rstrip("/")


def task_log_url(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int = -1,
    try_number: int | None = None,
    logical_date: Any = None,
) -> str:
    """Link to one try's log in the Airflow UI (the React UI's task page on 3.x, the grid on 2.11)."""
    from urllib.parse import quote, urlencode

    base = ui_base_url()
    if AIRFLOW_V_3_0_PLUS:
        url = f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id)}"
        if map_index is not None and map_index >= 0:
            url += f"/mapped/{map_index}"
        return url + (f"?try_number={try_number}" if try_number and try_number > 0 else "")
    params: dict[str, Any] = {"dag_run_id": run_id, "task_id": task_id}
    if map_index is not None and map_index >= 0:
        params["map_index"] = map_index
    if logical_date is not None:
        params["base_date"] = logical_date.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    params["tab"] = "logs"
    return f"{base}/dags/{quote(dag_id)}/grid?{urlencode(params)}"


def dag_run_ui_url(dag_id: str, run_id: str) -> str:
    """Link to one DAG run in the Airflow UI."""
    from urllib.parse import quote, urlencode

    base = ui_base_url()
    if AIRFLOW_V_3_0_PLUS:
        return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
    return f"{base}/dags/{quote(dag_id)}/grid?{urlencode({'dag_run_id': run_id})}"


def redact(value: Any) -> Any:
    """Mask every secret Airflow's secrets masker knows of in ``value`` (str, dict, list...).

    Airflow 3.x keeps two maskers: the Task SDK's (fed in task and dag-processor processes) and
    core's (fed in the scheduler and API server); a value goes through both.
    """
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.utils.log.secrets_masker import redact as redact_2

        return redact_2(value)
    from airflow.sdk._shared.secrets_masker import redact as sdk_redact

    value = sdk_redact(value)
    try:
        from airflow._shared.secrets_masker import redact as core_redact
    except ImportError:  # a worker with only the Task SDK installed
        return value
    return core_redact(value)


def template_accessors() -> dict[str, Any]:
    """``var`` and ``conn`` for Jinja templates, for contexts Airflow built without them.

    A DAG-level callback without a task instance gets only ``dag``, ``run_id`` and ``reason``;
    a notifier's ``{{ var.value.x }}`` needs these to render there too.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.context import ConnectionAccessor, VariableAccessor

        return {
            "var": {
                "json": VariableAccessor(deserialize_json=True),
                "value": VariableAccessor(deserialize_json=False),
            },
            "conn": ConnectionAccessor(),
        }
    from airflow.utils.context import ConnectionAccessor as Conn2
    from airflow.utils.context import VariableAccessor as Var2

    return {
        "var": {"json": Var2(deserialize_json=True), "value": Var2(deserialize_json=False)},
        "conn": Conn2(),
    }


# --- Asset / dataset listener (listeners/asset_events.py) and its cross-environment examples ----

#: Airflow 3.2+ calls ``on_asset_event_emitted`` (carrying the event's source and extra) right
#: after ``on_asset_changed`` for the same change; the listener then publishes from the richer hook
#: only, so that each change is published once.
ASSET_EVENT_EMITTED_HOOK = Version("3.2.0") <= AIRFLOW_VERSION

if TYPE_CHECKING or AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import Asset
else:  # Airflow 2.11: the same idea is called a dataset
    from airflow.datasets import Dataset as Asset  # type: ignore[assignment]


def asset_identity(asset: Any) -> dict[str, Any]:
    """URI, name, group and extra of an asset (3.x) or dataset (2.11; it has no name or group).

    Accepts what the listener hooks receive: ``SerializedAsset`` on 3.x, ``Dataset`` or
    ``DatasetModel`` on 2.11.
    """
    extra = getattr(asset, "extra", None) or {}
    if AIRFLOW_V_3_0_PLUS:
        return {
            "uri": asset.uri,
            "name": getattr(asset, "name", None),
            "group": getattr(asset, "group", None),
            "extra": dict(extra),
        }
    return {"uri": asset.uri, "name": None, "group": None, "extra": dict(extra)}


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


def sqs_asset_schedule(
    uri: str, queue_url: str, *, aws_conn_id: str = "aws_default", waiter_delay: int = 30
) -> Any:
    """The schedule of a DAG fed by asset events arriving on an SQS queue from another environment.

    Airflow 3: the asset itself, with an ``AssetWatcher`` whose SQS trigger turns each message into
    an asset event (and so a DAG run). Airflow 2.11 has no watchers: the DAG runs continuously and
    its first task waits for the next message (:func:`sqs_asset_wait`).
    """
    if not AIRFLOW_V_3_0_PLUS:
        return "@continuous"
    from airflow.sdk import AssetWatcher

    trigger = _sqs_event_trigger(queue_url, aws_conn_id=aws_conn_id, waiter_delay=waiter_delay)
    return [Asset(uri, watchers=[AssetWatcher(name=f"sqs-{uri}"[:200], trigger=trigger)])]


def _sqs_event_trigger(queue_url: str, *, aws_conn_id: str, waiter_delay: int) -> Any:
    kwargs: dict[str, Any] = {
        "sqs_queue": queue_url,
        "aws_conn_id": aws_conn_id,
        "waiter_delay": waiter_delay,
        "max_messages": 10,
    }
    try:  # the common-messaging provider's trigger is the documented entry point
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
    except ImportError:
        from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

        return SqsSensorTrigger(**kwargs)
    return MessageQueueTrigger(scheme="sqs", **kwargs)


def sqs_asset_wait(task_id: str, queue_url: str, *, aws_conn_id: str = "aws_default", **kwargs: Any) -> Any:
    """Airflow 2.11: a deferrable SQS sensor that waits for the next event; None on Airflow 3.

    Call it inside the DAG's ``with`` block; on Airflow 3 the watcher already waited for the
    event before the run started, so there is nothing to wait for.
    """
    if AIRFLOW_V_3_0_PLUS:
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
    if AIRFLOW_V_3_0_PLUS:
        bodies: list[str] = []
        for events in context["triggering_asset_events"].values():
            for event in events:
                for message in (event.extra or {}).get("payload", {}).get("message_batch", []):
                    bodies.append(message["Body"])
        return bodies
    messages = context["ti"].xcom_pull(task_ids=wait_task_id, key="messages") or []
    return [message["Body"] for message in messages]


# -- log forwarder (log/reasons.py) ------------------------------------------------------------


def read_task_event_log(
    dag_id: str,
    task_id: str,
    run_id: str,
    map_index: int,
    try_numbers: Any,
    events: Any,
) -> list[dict[str, Any]]:
    """Event-log (``log`` table) rows of one task instance's tries, straight from the metadata DB.

    Only where ORM access is allowed: Airflow 2 tasks, and Airflow 3 server-side processes (API
    server, scheduler); Airflow 3 tasks read ``GET /api/v2/eventLogs`` instead. A separate, short
    session keeps the caller's transaction (a task's own session on Airflow 2) untouched.
    """
    from airflow.models.log import Log
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(Log.event, Log.dttm, Log.try_number, Log.extra)
        .where(
            Log.dag_id == dag_id,
            Log.task_id == task_id,
            Log.run_id == run_id,
            Log.map_index == map_index,
            Log.try_number.in_(list(try_numbers)),
            Log.event.in_(list(events)),
        )
        .order_by(Log.dttm)
    )
    with create_session() as session:
        return [
            {"event": event, "when": when, "try_number": try_number, "extra": extra}
            for event, when, try_number, extra in session.execute(query)
        ]


def task_instance_resumed(ti: Any) -> bool:
    """Whether this start of a task instance resumes it after a deferral (same try, not a new one).

    Airflow 2 keeps ``next_method`` on the ORM TaskInstance; Airflow 3 sends it to the task process
    in the run context from the server.
    """
    if AIRFLOW_V_3_0_PLUS:
        context = getattr(ti, "_ti_context_from_server", None)
        return bool(getattr(context, "next_method", None))
    return bool(getattr(ti, "next_method", None))
