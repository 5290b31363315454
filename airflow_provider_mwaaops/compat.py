"""The one module that knows which Airflow line is installed.

Everything else in the package imports Airflow base classes and version-dependent helpers from
here, and branches on the named capabilities below rather than on a version
(``tests/test_compat_boundary.py`` checks it), so that supporting a new Airflow release means
editing one file. We do not rely on
``airflow.providers.common.compat.sdk`` because the oldest common-compat that MWAA ships (1.7.0,
on the 2.11.0 image) predates it.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

import pluggy
from airflow import __version__ as AIRFLOW_VERSION_STRING
from packaging.version import Version

AIRFLOW_VERSION = Version(Version(AIRFLOW_VERSION_STRING).base_version)
AIRFLOW_V_3_0_PLUS = Version("3.0.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_1_PLUS = Version("3.1.0") <= AIRFLOW_VERSION
AIRFLOW_V_3_2_PLUS = Version("3.2.0") <= AIRFLOW_VERSION
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
        BaseNotifier,
        BaseOperator,
        BaseOperatorLink,
        BaseSensorOperator,
        Context,
        PokeReturnValue,
        Variable,
        task,
    )

    # The Task SDK took BaseHook in 3.1 (task-sdk 1.1) and the task exceptions in 3.2; before,
    # both live in Airflow core, where the Task SDK of that release itself imports them from.
    if TYPE_CHECKING or AIRFLOW_V_3_1_PLUS:
        from airflow.sdk import BaseHook
    else:  # Airflow 3.0
        from airflow.hooks.base import BaseHook  # type: ignore[no-redef]
    if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException
    else:  # Airflow 3.0 and 3.1
        from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[assignment]
else:  # Airflow 2.11
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[assignment]
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
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "ASSET_EVENT_EMITTED_HOOK",
    "ASSET_WATCHERS",
    "DAG",
    "DAG_TEST_LOGICAL_DATE_ARG",
    "DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION",
    "DAG_TEST_TRIGGERS_REACH_XCOMS",
    "DATASET_EVENTS_IN_TASK_PROCESS",
    "DEFERRED_TRY_XCOM_KEY",
    "EXECUTORS_RUN_WORKLOADS",
    "HAS_API_SERVER",
    "INSTALLED_AIRFLOW_VERSION",
    "LOCAL_EXECUTOR_QUEUES_DIRECTLY",
    "REACT_UI",
    "RETRY_MAY_RESUME_EARLIER_TRY",
    "STALE_DEFERRAL_EVENT_MAY_FAIL_RESUMED_TASK",
    "STANDALONE_DAG_PROCESSOR",
    "TASKS_MAY_USE_METADATA_DB",
    "TASK_STATE_STORE",
    "UI_BASE_URL_SECTION",
    "XCOM_STORES_NONE",
    "AirflowException",
    "AirflowFailException",
    "AirflowPlugin",
    "Asset",
    "BaseHook",
    "BaseNotifier",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "Context",
    "PokeReturnValue",
    "Variable",
    "can_restore_export_from",
    "conf",
    "dag_bag",
    "hookimpl",
    "note_deferral",
    "resumes_earlier_try",
    "run_task_states",
    "run_xcom_values",
    "runs_in_triggerer",
    "secrets_maskers",
    "sqs_event_trigger",
    "sync_dag_to_db",
    "task",
    "task_instance_resumed",
    "task_state_store",
    "template_accessor_classes",
    "trigger_xcom_get",
    "trigger_xcom_set",
    "variable_get",
    "variable_set",
    "xcom_push",
]

# -- What the installed line can do. Code elsewhere branches on these names, never on a version. --

#: The installed Airflow's version (``"3.3.1"``), for messages and published payloads only.
INSTALLED_AIRFLOW_VERSION: str = AIRFLOW_VERSION_STRING

#: Task code may open the metadata database (Airflow 2). Airflow 3 tasks may not; they reach
#: Airflow's state through the Task SDK and the public REST API (v2) instead, which exists there only.
TASKS_MAY_USE_METADATA_DB = not AIRFLOW_V_3_0_PLUS

#: ``airflow api-server`` (Airflow 3) serves the UI, the public API v2 and the execution API.
HAS_API_SERVER = AIRFLOW_V_3_0_PLUS

#: DAG files are parsed by a separate ``airflow dag-processor`` (Airflow 3); on 2.11 the scheduler
#: parses them itself.
STANDALONE_DAG_PROCESSOR = AIRFLOW_V_3_0_PLUS

#: Executors receive workloads in ``_process_workloads`` (Airflow 3) rather than CLI commands in
#: ``execute_async`` (2.11).
EXECUTORS_RUN_WORKLOADS = AIRFLOW_V_3_0_PLUS

#: Airflow 3.0's ``LocalExecutor`` overrides ``queue_workload`` to put each workload straight on its
#: workers' queue, so its workloads never pass through ``BaseExecutor``'s ``queued_tasks`` and
#: ``_process_workloads`` (``airflow/executors/local_executor.py`` of 3.0.6); from 3.1.0 it
#: implements ``_process_workloads`` and takes them from the base executor like the others.
LOCAL_EXECUTOR_QUEUES_DIRECTLY = AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_1_PLUS

#: ``dag.test()`` names its logical-date argument ``logical_date`` on Airflow 3, ``execution_date``
#: on 2.11.
DAG_TEST_LOGICAL_DATE_ARG = "logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date"

#: ``dag.test()`` puts the task's exception into the context of its ``on_failure_callback`` /
#: ``on_retry_callback`` (``context["exception"]``). A worker always does (Airflow 3: the task
#: runner's ``main()``; 2.11: ``handle_failure``), but the in-process supervisor that ``dag.test()``
#: uses on Airflow 3 did not mirror that before Task SDK 1.3.0 (Airflow 3.3; apache/airflow#64568):
#: on 3.0-3.2 a task callback under ``dag.test()`` sees no exception, so a notification built there
#: has no exception fields. Local testing only; deployments are unaffected.
DAG_TEST_TASK_CALLBACKS_GET_EXCEPTION = AIRFLOW_V_3_3_PLUS or not AIRFLOW_V_3_0_PLUS

#: A trigger that ``dag.test()`` runs inline can read and write XComs (a log cursor). Airflow 3.0's
#: ``_run_inline_trigger`` runs it after the task's in-process supervisor channel is gone
#: (``airflow/sdk/definitions/dag.py``), so :func:`trigger_xcom_get` reads None and
#: :func:`trigger_xcom_set` stores nothing there; 3.1+ pass the task instance and lend the channel.
#: A real 3.0 triggerer serves ``GetXCom``/``SetXCom`` (``TriggerRunnerSupervisor``).
DAG_TEST_TRIGGERS_REACH_XCOMS = AIRFLOW_V_3_1_PLUS or not AIRFLOW_V_3_0_PLUS

#: The UI is Airflow 3's React UI (task pages at ``/dags/<dag>/runs/<run>/tasks/<task>``), not
#: 2.11's grid view (``/dags/<dag>/grid?...``).
REACT_UI = AIRFLOW_V_3_0_PLUS
#: The configuration section whose ``base_url`` is the UI's address.
UI_BASE_URL_SECTION = "api" if AIRFLOW_V_3_0_PLUS else "webserver"

#: Asset watchers (Airflow 3) turn messages of an external queue into asset events, and so DAG
#: runs; Airflow 2.11 has no watchers, a waiting task does that job there.
ASSET_WATCHERS = AIRFLOW_V_3_0_PLUS

#: Airflow 2.11 calls ``on_dataset_changed`` in the task process that produced the event, on the
#: task's thread, without naming the task; Airflow 3 calls the asset hooks in the API server.
DATASET_EVENTS_IN_TASK_PROCESS = not AIRFLOW_V_3_0_PLUS

#: Airflow 3.2+ calls ``on_asset_event_emitted`` (carrying the event's source and extra) right
#: after ``on_asset_changed`` for the same change; the listener then publishes from the richer hook
#: only, so that each change is published once.
ASSET_EVENT_EMITTED_HOOK = Version("3.2.0") <= AIRFLOW_VERSION

if TYPE_CHECKING or AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import Asset
else:  # Airflow 2.11: the same idea is called a dataset
    from airflow.datasets import Dataset as Asset  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable


# -- Thin shims: the same operation, spelled per line ---------------------------------------------


def can_restore_export_from(airflow_version: str) -> bool:
    """Whether a metadata export written by Airflow ``airflow_version`` can be restored here.

    Only from the same major line and not from a newer release: ``airflow db migrate`` upgrades a
    restored database afterwards, nothing downgrades one.
    """
    exported = Version(Version(airflow_version).base_version)
    return exported.major == AIRFLOW_VERSION.major and exported <= AIRFLOW_VERSION


def dag_bag(dag_folder: str) -> Any:
    """A ``DagBag`` of the files in ``dag_folder``, without Airflow's example DAGs.

    The class moved to ``airflow.dag_processing`` in Airflow 3, where examples are a bundle of
    their own rather than a ``DagBag`` argument.
    """
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=dag_folder)
    from airflow.models.dagbag import DagBag as DagBagBefore32  # 2.11, 3.0 and 3.1

    return DagBagBefore32(dag_folder=dag_folder, include_examples=False)


def sync_dag_to_db(dag: Any) -> None:
    """Write one in-memory DAG to the metadata database as the line's DAG parsing would.

    Airflow 3: serialized into the dags-folder bundle (after syncing the configured bundles), by
    ``sync_bag_to_db`` (3.1+; in ``airflow.dag_processing.dagbag`` from 3.2) or the bag's own
    ``sync_to_db`` (3.0); Airflow 2.11: ``dag.sync_to_db()``, which also registers the DAG's datasets.
    """
    if not AIRFLOW_V_3_0_PLUS:
        dag.sync_to_db()
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    if AIRFLOW_V_3_2_PLUS:
        sync_bag_to_db(bag, "dags-folder", None)
    elif AIRFLOW_V_3_1_PLUS:
        from airflow.models.dagbag import sync_bag_to_db as sync_bag_to_db_31

        sync_bag_to_db_31(bag, "dags-folder", None)
    else:  # Airflow 3.0, whose sync reads the file location that its DagBag sets when parsing
        if getattr(dag, "relative_fileloc", None) is None:
            dag.relative_fileloc = dag.fileloc
        bag.sync_to_db("dags-folder", None)  # type: ignore[attr-defined]


def run_xcom_values(session: Any, dag_id: str, run_id: str, key: str) -> list[tuple[str, int | None, Any]]:
    """``(task_id, map_index, value)`` of every XCom ``key`` of one run, values deserialized.

    Airflow 3 stores XComs as JSON that ``XComModel.deserialize_value`` decodes; Airflow 2 decodes
    them when the row is loaded.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        rows = session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, key=key)).all()
        return [(row.task_id, row.map_index, XComModel.deserialize_value(row)) for row in rows]
    from airflow.models.xcom import XCom

    rows = XCom.get_many(run_id=run_id, dag_ids=dag_id, key=key, session=session).all()
    return [(row.task_id, row.map_index, row.value) for row in rows]


def secrets_maskers() -> list[Callable[[Any], Any]]:
    """The ``redact`` functions of every secrets masker a value must pass through.

    Airflow 3.1+ keeps two maskers: the Task SDK's (fed in task and dag-processor processes) and
    core's (fed in the scheduler and API server; absent where only the Task SDK is installed).
    Airflow 3.0 has one, the Task SDK's, which core uses too.
    """
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.utils.log.secrets_masker import redact as redact_2

        return [redact_2]
    if not AIRFLOW_V_3_1_PLUS:
        from airflow.sdk.execution_time.secrets_masker import redact as redact_30

        return [redact_30]
    from airflow.sdk._shared.secrets_masker import redact as sdk_redact

    try:
        from airflow._shared.secrets_masker import redact as core_redact
    except ImportError:  # a worker with only the Task SDK installed
        return [sdk_redact]
    return [sdk_redact, core_redact]


def secrets_masker_sensitive_fields() -> frozenset[str]:
    """The key names Airflow's secrets masker hides values of: its defaults plus
    ``[core] sensitive_var_conn_names`` (the Task SDK's masker on 3.x, whose list is core's too)."""
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.utils.log.secrets_masker import get_sensitive_variables_fields as fields_2

        return frozenset(fields_2())
    if not AIRFLOW_V_3_1_PLUS:  # 3.0: module functions rather than the masker's attributes
        from airflow import settings
        from airflow.sdk.execution_time.secrets_masker import get_sensitive_variables_fields as fields_30

        return frozenset(fields_30() if settings.HIDE_SENSITIVE_VAR_CONN_FIELDS else ())
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    # Airflow's settings give the masker its list (defaults plus the configured names).
    masker = _secrets_masker()
    return frozenset(masker.sensitive_variables_fields if masker.hide_sensitive_var_conn_fields else ())


def template_accessor_classes() -> tuple[type, type]:
    """``(VariableAccessor, ConnectionAccessor)``: what ``var`` and ``conn`` are in templates."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.context import ConnectionAccessor, VariableAccessor

        return VariableAccessor, ConnectionAccessor
    from airflow.utils.context import ConnectionAccessor as Conn2
    from airflow.utils.context import VariableAccessor as Var2

    return Var2, Conn2


def sqs_event_trigger(queue_url: str, **sqs_trigger_kwargs: Any) -> Any:
    """An event trigger for asset watchers that turns messages of the SQS queue into events.

    The common-messaging provider's ``MessageQueueTrigger`` is the documented entry point: from
    common-messaging 1.1 it takes ``scheme="sqs"`` plus the SQS trigger's arguments; 1.0.x (MWAA
    3.0.6 pins 1.0.5) takes the queue URL as ``queue`` and matches it against the SQS provider's URL
    pattern. Without common-messaging, the amazon provider's SQS trigger itself.
    """
    try:
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
    except ImportError:
        from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

        return SqsSensorTrigger(sqs_queue=queue_url, **sqs_trigger_kwargs)
    if "scheme" in inspect.signature(MessageQueueTrigger.__init__).parameters:
        return MessageQueueTrigger(scheme="sqs", sqs_queue=queue_url, **sqs_trigger_kwargs)
    return MessageQueueTrigger(queue=queue_url, **sqs_trigger_kwargs)


#: An XCom may hold None. Airflow 3.0's execution API requires a request body when a task sets an
#: XCom, so the Task SDK 1.0 cannot send None (422 "Field required"); 3.1 made the body optional.
XCOM_STORES_NONE = AIRFLOW_V_3_1_PLUS or not AIRFLOW_V_3_0_PLUS


def xcom_push(ti: Any, key: str, value: Any) -> None:
    """``ti.xcom_push(key, value)``, except that on Airflow 3.0 a None value is not pushed.

    Degradation on 3.0: the key is absent rather than null. Whoever pulls it reads None either way
    (``xcom_pull`` answers None for a key never pushed); only a listing of the run's XComs differs.
    """
    if value is None and not XCOM_STORES_NONE:
        return
    ti.xcom_push(key=key, value=value)


def task_instance_resumed(ti: Any) -> bool:
    """Whether this start of a task instance resumes it after a deferral (same try, not a new one).

    Airflow 2 keeps ``next_method`` on the ORM TaskInstance; Airflow 3 sends it to the task process
    in the run context from the server. A resumption left over from an earlier try (Airflow 3.0 and
    3.1.0, see :data:`RETRY_MAY_RESUME_EARLIER_TRY`) is a new try, not a resumption.
    """
    return _resumption_method(ti) is not None and not resumes_earlier_try(ti)


def _resumption_method(ti: Any) -> str | None:
    """The method Airflow starts this task in instead of ``execute`` (None: ``execute``)."""
    if AIRFLOW_V_3_0_PLUS:
        context = getattr(ti, "_ti_context_from_server", None)
        return getattr(context, "next_method", None) or None
    return getattr(ti, "next_method", None) or None


#: A retry may start in the resumption method of the earlier try's deferral. Airflow 3.0 and 3.1.0
#: keep a task's ``next_method``/``next_kwargs`` when a resumed try fails into a retry (the
#: execution API clears them from 3.1.1: apache/airflow#56704, #56731), so the retry skips
#: ``execute`` and gets the earlier try's trigger event again: a Step Functions retry would re-read
#: the failed execution instead of redriving it, a Glue workflow retry would re-report the failed
#: run instead of resuming it, and a trigger failure would fail every retry the same way. Our
#: operators detect it (:func:`note_deferral` / :func:`resumes_earlier_try`) and start such a
#: try from ``execute``. Airflow 2 clears them when a try fails.
RETRY_MAY_RESUME_EARLIER_TRY = AIRFLOW_V_3_0_PLUS and Version("3.1.1") > AIRFLOW_VERSION

#: The scheduler may fail a task that resumes within seconds of its deferral. The worker's exit at
#: the deferral reports "success" to the executor for the same try number as the resumption; if the
#: scheduler reads that event only once the resumed try is queued or running (a busy scheduler, a
#: trigger that fires at once), no executor holds that key any more and it marks the running task
#: failed ("finished with state success, but the task instance's state attribute is running"; the
#: resumed task then gets 409 "TI was not in the running state"). Airflow 3 counts queued and
#: running task instances there and spares only a scheduled one (3.3's
#: ``_process_executor_events``); Airflow 2.11 counts only a queued one, a window too short to have
#: shown here. Seen on Airflow 3.0.6 and 3.3.2 in this package's deployment test. Our triggers hold
#: a final event that comes within seconds of the deferral (``triggers.base``).
STALE_DEFERRAL_EVENT_MAY_FAIL_RESUMED_TASK = AIRFLOW_V_3_0_PLUS


def runs_in_triggerer() -> bool:
    """Whether this process is Airflow 3's trigger runner (the triggerer's subprocess), where a
    scheduler and an executor act on a trigger's event; not ``dag.test()``, which runs triggers
    inline with neither. The runner hands its comms decoder to the task SDK (3.0 and 3.3 alike)."""
    runner = sys.modules.get("airflow.jobs.triggerer_job_runner")
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    decoder = getattr(runner, "TriggerCommsDecoder", None)
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return isinstance(decoder, type) and isinstance(comms, decoder)


#: The XCom (of the task instance itself) holding the try number that deferred last.
DEFERRED_TRY_XCOM_KEY = "mwaaops_deferred_try"


def note_deferral(context: Any) -> None:
    """Record, just before the task defers, which try defers (where a retry may resume it).

    The record is an XCom of the task instance: Airflow keeps XComs across a deferral, and does not
    clear them for a retry that it (wrongly) starts as a resumption, so the retry still finds it.
    """
    ti = context.get("ti")
    if not RETRY_MAY_RESUME_EARLIER_TRY or ti is None:
        return
    ti.xcom_push(key=DEFERRED_TRY_XCOM_KEY, value=int(ti.try_number))


def resumes_earlier_try(ti: Any) -> bool:
    """Whether Airflow starts this try in the resumption of an *earlier* try's deferral.

    True only where :data:`RETRY_MAY_RESUME_EARLIER_TRY` and the try that deferred (recorded by
    :func:`note_deferral`) is not this one. Without a record (a deferral by another operator, or
    by an earlier release of this package) the resumption is taken as it comes, as Airflow does.
    """
    if not RETRY_MAY_RESUME_EARLIER_TRY or _resumption_method(ti) is None:
        return False
    deferred_try = ti.xcom_pull(task_ids=ti.task_id, key=DEFERRED_TRY_XCOM_KEY, map_indexes=ti.map_index)
    return isinstance(deferred_try, int) and deferred_try != int(ti.try_number)


# -- exactly-once job runs (aws/resumable.py) and log cursors (log/cloudwatch.py) ---------------

#: Tasks have a task state store (``context["task_state_store"]``: get/set, kept across tries of a
#: task instance) from Airflow 3.3.
TASK_STATE_STORE = AIRFLOW_V_3_3_PLUS


def task_state_store(context: Any) -> Any | None:
    """The task instance's state store (Airflow 3.3+), or None where Airflow has none."""
    if not TASK_STATE_STORE:
        return None
    return context.get("task_state_store")


async def trigger_xcom_get(key: str, *, dag_id: str, task_id: str, run_id: str, map_index: int) -> Any:
    """One XCom value of a task instance, read from a trigger without blocking the event loop.

    Airflow 3 triggers reach XComs through the triggerer's supervisor (asynchronously where the
    channel allows it; ``dag.test()``'s in-process channel answers synchronously); Airflow 2.11
    triggers read the metadata database, in a worker thread.

    Degradation: Airflow 3.0's ``dag.test()`` runs triggers inline with no supervisor channel at
    all (later lines lend them the test's in-process one), so there a trigger reads None and stores
    nothing (:func:`trigger_xcom_set`): a log cursor then starts at the beginning, which one inline
    trigger run never needs. A real 3.0 triggerer has the channel.
    """
    from asgiref.sync import sync_to_async

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.xcom import XCom

        if not _has_supervisor():
            return None
        where = {"key": key, "dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": map_index}
        if _supervisor_speaks_async() and hasattr(XCom, "aget_one"):
            return await XCom.aget_one(**where)
        return await sync_to_async(XCom.get_one)(**where)

    def read() -> Any:
        from airflow.models.xcom import XCom as XCom2
        from airflow.utils.session import create_session

        with create_session() as session:
            return XCom2.get_one(
                key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index, session=session
            )

    return await sync_to_async(read)()


async def trigger_xcom_set(
    key: str, value: Any, *, dag_id: str, task_id: str, run_id: str, map_index: int
) -> None:
    """Store one XCom value of a task instance from a trigger (see :func:`trigger_xcom_get`)."""
    from asgiref.sync import sync_to_async

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.xcom import XCom

        if not _has_supervisor():
            return

        where = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": map_index}
        if _supervisor_speaks_async() and hasattr(XCom, "aset"):
            await XCom.aset(key, value, **where)
        else:
            await sync_to_async(XCom.set)(key, value, **where)
        return

    def write() -> None:
        from airflow.models.xcom import XCom as XCom2
        from airflow.utils.session import create_session

        with create_session() as session:
            XCom2.set(
                key,
                value,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                session=session,
            )

    await sync_to_async(write)()


def _has_supervisor() -> bool:
    """Whether this Airflow 3 process has a channel to a supervisor (tasks, triggerer, processor)."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _supervisor_speaks_async() -> bool:
    """Whether this process's channel to the Airflow 3 supervisor has ``asend`` (the triggerer's)."""
    from airflow.sdk.execution_time import task_runner

    return hasattr(getattr(task_runner, "SUPERVISOR_COMMS", None), "asend")


# -- task-token callbacks (notifications/task_token.py) -----------------------------------------------
def run_task_states(context: Any) -> dict[str, str] | None:
    """``{task_id: state}`` of the callback's or task's own DAG run; None where it cannot be read.

    Airflow 3 tasks ask the API server (``RuntimeTaskInstance.get_task_states``, 3.1+); Airflow 2
    reads the run's task instances. A DAG-level callback on Airflow 3 without a task context has
    neither.
    """
    dag_run = context.get("dag_run")
    if dag_run is None:
        return None
    try:
        if AIRFLOW_V_3_0_PLUS:
            ti = context.get("ti")
            get_task_states = getattr(ti, "get_task_states", None)
            if get_task_states is None:
                return None
            states = get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id])
            by_task = states.get(dag_run.run_id, {})
        else:
            by_task = {
                ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state
                for ti in dag_run.get_task_instances()
            }
    except Exception:  # a summary is a courtesy: never fail the answer for it
        return None
    return {task: str(getattr(state, "value", state)) for task, state in sorted(by_task.items())}


def _orm_allowed() -> bool:
    """Whether this process talks to the metadata DB itself rather than through a supervisor:
    always on Airflow 2; on Airflow 3 in scheduler-side processes (``dag.test()``'s DAG callbacks),
    but not in tasks or the DAG processor, which have Task SDK comms."""
    if not AIRFLOW_V_3_0_PLUS:
        return True
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is None


def variable_get(key: str) -> str | None:
    """A Variable's value or None, from a task, a callback in the DAG processor, or the scheduler."""
    if _orm_allowed():
        from airflow.models.variable import Variable as OrmVariable

        return OrmVariable.get(key, default_var=None)  # type: ignore[no-any-return]
    return Variable.get(key, None)  # type: ignore[no-any-return]


def variable_set(key: str, value: str, description: str | None = None) -> None:
    """Set a Variable from wherever :func:`variable_get` can read one."""
    if _orm_allowed():
        from airflow.models.variable import Variable as OrmVariable

        OrmVariable.set(key, value, description=description)
        return
    Variable.set(key, value, description=description)
