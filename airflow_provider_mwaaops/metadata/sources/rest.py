"""Rows of Airflow 3's metadata through its public REST API (v2), for where tasks cannot touch the DB.

On Airflow 3 a task has no database access, and on MWAA nobody has; the API is the supported
read path. This source turns API pages into Arrow chunks in the catalog's schemas
(:mod:`airflow_provider_mwaaops.metadata.tables`), so the export pipeline, sinks and manifest are
the same as with :class:`~airflow_provider_mwaaops.metadata.sources.database.DatabaseSource`.

The API is not the database, and this source says so instead of guessing: a table column the API
does not return is left out of :meth:`RestSource.columns` (the manifest then records it as absent,
and it is written as null), nothing is invented. In short (details in ``docs/components/metadata.rst``):

- ``dag_run``, ``task_instance``, ``task_instance_history``, ``log``, ``job``, ``slot_pool``,
  ``variable``, ``connection``, ``dag``, ``dag_tag``, ``dag_version`` are read; surrogate ids the
  API hides (``dag_run.id``, ``task_instance_history.id``, pool/variable/connection ids) are absent.
- Connection passwords are write-only in the API: never exported. Variable values and connection
  extras whose keys Airflow considers sensitive come back masked (``***``) and are exported as null.
- ``log`` is incremental on ``dttm`` (the API's ``after``/``before`` filters), ``job`` on
  ``latest_heartbeat`` (filtered client-side). ``dag_run`` and ``task_instance`` are filtered by
  ``updated_at`` on the server (:meth:`RestSource.watermark_column`), although the API does not
  return ``updated_at`` itself: their high watermark is the export's start time less a margin.

Pages are offset/limit, ordered by a stable key (``id`` where the API sorts by it), within the
server's ``[api] maximum_page_limit``; see
:meth:`~airflow_provider_mwaaops.airflow_api.AirflowApiClient.paginate`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from airflow_provider_mwaaops.airflow_api import AirflowApiClient, AirflowApiError
from airflow_provider_mwaaops.metadata.sources.base import MetadataSource, ReadWindow
from airflow_provider_mwaaops.metadata.tables import TableSpec

log = logging.getLogger(__name__)

#: What Airflow's secrets masker puts in place of a sensitive value.
MASKED = "***"
#: InvokeRestApi's ``Path`` is at most 64 characters.
MWAA_MAX_PATH = 64


class RestSourceError(AirflowApiError):
    """The REST source cannot read this Airflow (wrong version, unreadable answer)."""


class RestSourceUnavailable(RuntimeError):
    """The REST source needs Airflow 3 and its public API v2."""


@dataclass(frozen=True)
class _Field:
    """A catalog column's value from one API item: the item's ``member``, converted."""

    member: str
    convert: Callable[[Mapping[str, Any]], Any] | None = None

    def __call__(self, item: Mapping[str, Any]) -> Any:
        return self.convert(item) if self.convert else item.get(self.member)


def _key(name: str) -> _Field:
    return _Field(name)


def _nested(name: str, member: str) -> _Field:
    def convert(item: Mapping[str, Any]) -> Any:
        value = item.get(name)
        return value.get(member) if isinstance(value, Mapping) else None

    return _Field(name, convert)


def _json_text(name: str) -> _Field:
    def convert(item: Mapping[str, Any]) -> Any:
        value = item.get(name)
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    return _Field(name, convert)


def _unmasked(name: str) -> _Field:
    """Secret columns: the API masks sensitive values as ``***``; that is no value at all."""

    def convert(item: Mapping[str, Any]) -> Any:
        value = item.get(name)
        return None if value == MASKED else value

    return _Field(name, convert)


def _custom_operator_name(item: Mapping[str, Any]) -> Any:
    """The TI endpoint returns ``operator_name`` = ``custom_operator_name or operator``."""
    name = item.get("operator_name")
    return None if name is None or name == item.get("operator") else name


def _owners(item: Mapping[str, Any]) -> Any:
    owners = item.get("owners")
    return ", ".join(owners) if isinstance(owners, list) else owners


# Task instance fields common to /taskInstances and /tries answers (API name differs in places).
_TI_FIELDS: dict[str, _Field] = {
    "task_id": _key("task_id"),
    "dag_id": _key("dag_id"),
    "run_id": _key("dag_run_id"),
    "map_index": _key("map_index"),
    "start_date": _key("start_date"),
    "end_date": _key("end_date"),
    "duration": _key("duration"),
    "state": _key("state"),
    "try_number": _key("try_number"),
    "max_tries": _key("max_tries"),
    "hostname": _key("hostname"),
    "unixname": _key("unixname"),
    "pool": _key("pool"),
    "pool_slots": _key("pool_slots"),
    "queue": _key("queue"),
    "priority_weight": _key("priority_weight"),
    "operator": _key("operator"),
    "queued_dttm": _key("queued_when"),
    "scheduled_dttm": _key("scheduled_when"),
    "pid": _key("pid"),
    "executor": _key("executor"),
    "task_display_name": _key("task_display_name"),
    "dag_version_id": _nested("dag_version", "id"),
}


@dataclass(frozen=True)
class _Table:
    """How one catalog table is read from the API."""

    path: str
    items_key: str
    fields: dict[str, _Field]
    order_by: str | None = "id"
    keyset: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    #: Query parameters that restrict the server's answer to ``low < watermark <= high``.
    window_params: Callable[[ReadWindow], dict[str, Any]] | None = None
    #: API member the window also filters on client-side (when the answer carries it).
    window_member: str | None = None


def _updated_at_window(window: ReadWindow) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if window.low is not None:
        params["updated_at_gt"] = window.low.isoformat()
    if window.high is not None:
        params["updated_at_lte"] = window.high.isoformat()
    return params


def _dttm_window(window: ReadWindow) -> dict[str, Any]:
    # The API's ``after``/``before`` are strict; ``dttm <= high`` is ``dttm < high + 1 µs``.
    params: dict[str, Any] = {}
    if window.low is not None:
        params["after"] = window.low.isoformat()
    if window.high is not None:
        params["before"] = (window.high + timedelta(microseconds=1)).isoformat()
    return params


_TABLES: dict[str, _Table] = {
    "dag": _Table(
        "/dags",
        "dags",
        {
            "dag_id": _key("dag_id"),
            "is_paused": _key("is_paused"),
            "is_stale": _key("is_stale"),
            "last_parsed_time": _key("last_parsed_time"),
            "last_parse_duration": _key("last_parse_duration"),
            "last_expired": _key("last_expired"),
            "fileloc": _key("fileloc"),
            "relative_fileloc": _key("relative_fileloc"),
            "bundle_name": _key("bundle_name"),
            "bundle_version": _key("bundle_version"),
            "owners": _Field("owners", _owners),
            "dag_display_name": _key("dag_display_name"),
            "description": _key("description"),
            "timetable_summary": _key("timetable_summary"),
            "timetable_description": _key("timetable_description"),
            "timetable_partitioned": _key("timetable_partitioned"),
            "timetable_periodic": _key("timetable_periodic"),
            "max_active_tasks": _key("max_active_tasks"),
            "max_active_runs": _key("max_active_runs"),
            "max_consecutive_failed_dag_runs": _key("max_consecutive_failed_dag_runs"),
            "has_task_concurrency_limits": _key("has_task_concurrency_limits"),
            "has_import_errors": _key("has_import_errors"),
            "allowed_run_types": _json_text("allowed_run_types"),
            "next_dagrun": _key("next_dagrun_logical_date"),
            "next_dagrun_data_interval_start": _key("next_dagrun_data_interval_start"),
            "next_dagrun_data_interval_end": _key("next_dagrun_data_interval_end"),
            "next_dagrun_create_after": _key("next_dagrun_run_after"),
        },
        order_by="dag_id",
        keyset=("dag_id",),
        # Stale DAGs are history too (their runs are exported); the API hides them by default.
        params={"exclude_stale": "false"},
    ),
    "dag_tag": _Table(
        "/dags",  # each DAG's ``tags``, one row per tag
        "dags",
        {"name": _key("name"), "dag_id": _key("dag_id")},
        order_by="dag_id",
        keyset=("dag_id", "name"),
        params={"exclude_stale": "false"},
    ),
    "dag_version": _Table(
        "/dags/~/dagVersions",
        "dag_versions",
        {
            "id": _key("id"),
            "version_number": _key("version_number"),
            "dag_id": _key("dag_id"),
            "bundle_name": _key("bundle_name"),
            "bundle_version": _key("bundle_version"),
            "created_at": _key("created_at"),
        },
        order_by="id",
        keyset=("id",),
    ),
    "slot_pool": _Table(
        "/pools",
        "pools",
        {
            "pool": _key("name"),
            "slots": _key("slots"),
            "description": _key("description"),
            "include_deferred": _key("include_deferred"),
            "team_name": _key("team_name"),
        },
        order_by="name",
        keyset=("pool",),
    ),
    "variable": _Table(
        "/variables",
        "variables",
        {
            "key": _key("key"),
            "val": _unmasked("value"),
            "description": _key("description"),
            "is_encrypted": _key("is_encrypted"),
            "team_name": _key("team_name"),
        },
        order_by="key",
        keyset=("key",),
    ),
    "connection": _Table(
        "/connections",
        "connections",
        {
            "conn_id": _key("connection_id"),
            "conn_type": _key("conn_type"),
            "description": _key("description"),
            "host": _key("host"),
            "schema": _key("schema"),
            "login": _key("login"),
            "port": _key("port"),
            "extra": _unmasked("extra"),
            "team_name": _key("team_name"),
        },
        order_by="connection_id",
        keyset=("conn_id",),
    ),
    "job": _Table(
        "/jobs",
        "jobs",
        {
            name: _key(name)
            for name in [
                "id",
                "dag_id",
                "state",
                "job_type",
                "start_date",
                "end_date",
                "latest_heartbeat",
                "executor_class",
                "hostname",
                "unixname",
            ]
        },
        keyset=("id",),
        window_member="latest_heartbeat",
    ),
    "dag_run": _Table(
        "/dags/~/dagRuns",
        "dag_runs",
        {
            "dag_id": _key("dag_id"),
            "run_id": _key("dag_run_id"),
            "queued_at": _key("queued_at"),
            "logical_date": _key("logical_date"),
            "start_date": _key("start_date"),
            "end_date": _key("end_date"),
            "state": _key("state"),
            "run_type": _key("run_type"),
            "triggered_by": _key("triggered_by"),
            "triggering_user_name": _key("triggering_user_name"),
            "conf": _json_text("conf"),
            "data_interval_start": _key("data_interval_start"),
            "data_interval_end": _key("data_interval_end"),
            "run_after": _key("run_after"),
            "last_scheduling_decision": _key("last_scheduling_decision"),
            "bundle_version": _key("bundle_version"),
            "partition_key": _key("partition_key"),
            "partition_date": _key("partition_date"),
        },
        keyset=("dag_id", "run_id"),
        window_params=_updated_at_window,
    ),
    "task_instance": _Table(
        "/dags/~/dagRuns/~/taskInstances",
        "task_instances",
        {
            "id": _key("id"),
            **_TI_FIELDS,
            "custom_operator_name": _Field("operator_name", _custom_operator_name),
            "rendered_map_index": _key("rendered_map_index"),
            "trigger_id": _nested("trigger", "id"),
            "queued_by_job_id": _nested("triggerer_job", "id"),
        },
        keyset=("id",),
        window_params=_updated_at_window,
    ),
    "task_instance_history": _Table(
        "/dags/~/dagRuns/~/taskInstances",  # the TIs with earlier tries; their /tries answers the rows
        "task_instances",
        {
            "task_instance_id": _key("__task_instance_id"),
            **_TI_FIELDS,
            "custom_operator_name": _key("operator_name"),
        },
        keyset=("task_instance_id", "try_number"),
    ),
    "log": _Table(
        "/eventLogs",
        "event_logs",
        {
            "id": _key("event_log_id"),
            "dttm": _key("when"),
            "dag_id": _key("dag_id"),
            "task_id": _key("task_id"),
            "map_index": _key("map_index"),
            "event": _key("event"),
            "logical_date": _key("logical_date"),
            "run_id": _key("run_id"),
            "owner": _key("owner"),
            "extra": _key("extra"),
            "try_number": _key("try_number"),
        },
        keyset=("id",),
        window_params=_dttm_window,
        window_member="when",
    ),
}

#: Tables whose watermark column the API filters on but does not return.
FILTER_ONLY_WATERMARKS: dict[str, str] = {"dag_run": "updated_at", "task_instance": "updated_at"}


def _parse_ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class RestSource(MetadataSource):
    """Airflow 3's metadata read through its REST API (a URL with a token, or MWAA InvokeRestApi).

    ``client``: an :class:`~airflow_provider_mwaaops.airflow_api.AirflowApiClient` (default:
    :meth:`~airflow_provider_mwaaops.airflow_api.AirflowApiClient.from_config`).
    ``page_size``: items asked for per call; the server caps it at ``[api] maximum_page_limit``.
    ``watermark_lag``: for watermarks the API filters on but does not return (``updated_at``), the
    high watermark is the time the source was created minus this margin. Raise it when the
    exporter's clock may run ahead of the Airflow components' clocks, or when transactions commit
    long after they stamp ``updated_at``: rows inside the margin go to the next export instead of
    being missed by both.
    """

    kind = "rest"

    def __init__(
        self,
        client: AirflowApiClient | None = None,
        *,
        page_size: int = 100,
        watermark_lag: timedelta = timedelta(0),
        max_path_length: int | None = None,
    ) -> None:
        from airflow_provider_mwaaops.compat import TASKS_MAY_USE_METADATA_DB

        if TASKS_MAY_USE_METADATA_DB:
            raise RestSourceUnavailable(
                "The REST metadata source reads Airflow 3's public API v2 and is not available on "
                "Airflow 2; on Airflow 2.11 tasks may read the metadata database: use DatabaseSource"
            )
        self.client = client or AirflowApiClient.from_config()
        self.page_size = page_size
        self.watermark_lag = watermark_lag
        if max_path_length is None and self.client.target.startswith("MWAA"):
            max_path_length = MWAA_MAX_PATH
        self.max_path_length = max_path_length
        self._version: str | None = None
        self._columns: dict[str, list[str] | None] = {}
        self._started = datetime.now(UTC)
        self._info: dict[str, Any] = {}
        #: Task instances whose tries could not be read (path over MWAA's 64-character limit).
        self.skipped_tries: list[str] = []
        #: The task instances this export read, by natural key (their history is read for them).
        self._exported_tis: dict[tuple[Any, ...], _TaskTry] | None = None

    @contextlib.contextmanager
    def consistent_read(self) -> Iterator[None]:
        """Not one moment (the API answers page by page), but consistent (see ``_history``).
        The task instances an export read are its own: forgotten when the next export starts."""
        self._exported_tis = None
        yield

    # -- description --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """A live dict: the pipeline records it when the export starts and writes it with the
        manifest at the end, so what is learnt while reading (the server's page limit, tries that
        could not be read) is in the manifest too."""
        self._info.update({"kind": self.kind, "api": self.client.target.strip()})
        return self._info

    def _note(self) -> None:
        if self.client.detected_page_limit:
            self._info["page_limit"] = self.client.detected_page_limit
        if self.skipped_tries:
            self._info["task_instance_history_skipped"] = len(self.skipped_tries)

    def airflow_version(self) -> str:
        if self._version is None:
            try:
                answer = self.client.get("/version")
            except AirflowApiError as err:
                if err.status == 404:
                    raise RestSourceError(
                        f"{self.client.target.strip()} has no /api/v2/version: not an Airflow 3 API server",
                        endpoint=err.endpoint,
                        status=err.status,
                    ) from err
                raise
            self._version = str(answer["version"])
            if not self._version.startswith("3."):
                raise RestSourceError(
                    f"{self.client.target.strip()} runs Airflow {self._version}; "
                    "the REST source reads Airflow 3",
                    endpoint="/version",
                )
        return self._version

    # -- schema -------------------------------------------------------------------------------
    def columns(self, spec: TableSpec) -> list[str] | None:
        table = _TABLES.get(spec.name)
        if table is None:
            return None
        if spec.name not in self._columns:
            self.airflow_version()  # fail early and clearly on a wrong or unreachable server
            # Only what this API version really returns: an older Airflow 3 lacks some members.
            sample = self._sample(spec.name, table)
            present = [
                name
                for name, extract in table.fields.items()
                if name in spec.column_index and (sample is None or extract.member in sample)
            ]
            if spec.name == "connection":
                present.append("password")  # write-only in the API: a column that is always null
            self._columns[spec.name] = [c for c in spec.column_names if c in present]
        return self._columns[spec.name]

    def _sample(self, name: str, table: _Table) -> Mapping[str, Any] | None:
        if name in ("task_instance_history", "dag_tag"):
            return None  # rows built from other answers, which always carry these members
        page = self.client.get(table.path, params={**table.params, "limit": 1})
        items = page.get(table.items_key) if isinstance(page, Mapping) else None
        return items[0] if items else None

    def keyset(self, spec: TableSpec) -> list[str]:
        return list(_TABLES[spec.name].keyset)

    def watermark_column(self, spec: TableSpec, columns: list[str]) -> str | None:
        """Also ``updated_at`` of dag_run / task_instance, which the API filters on but never returns."""
        if spec.name in FILTER_ONLY_WATERMARKS and spec.watermark == FILTER_ONLY_WATERMARKS[spec.name]:
            return spec.watermark
        return super().watermark_column(spec, columns)

    def watermark_high(self, spec: TableSpec) -> datetime | None:
        table = _TABLES.get(spec.name)
        if table is None or spec.watermark is None:
            return None
        if spec.name in FILTER_ONLY_WATERMARKS:
            return self._started - self.watermark_lag
        if table.window_member is None:
            return None
        page = self.client.get(
            table.path, params={**table.params, "order_by": f"-{table.window_member}", "limit": 1}
        )
        items = page.get(table.items_key) if isinstance(page, Mapping) else None
        return _parse_ts(items[0].get(table.window_member)) if items else None

    # -- reading ------------------------------------------------------------------------------
    def read(
        self, spec: TableSpec, window: ReadWindow, chunk_rows: int, include_secrets: bool = False
    ) -> Iterator[pa.Table]:
        columns = self.columns(spec)
        if columns is None:
            return
        table = _TABLES[spec.name]
        rows = self._rows(spec, table, window)
        batch: list[Mapping[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk_rows:
                yield self._chunk(spec, table, columns, batch, include_secrets)
                batch = []
        if batch:
            yield self._chunk(spec, table, columns, batch, include_secrets)
        self._note()

    def _items(self, table: _Table, window: ReadWindow | None) -> Iterator[Mapping[str, Any]]:
        params = dict(table.params)
        if table.order_by:
            params["order_by"] = table.order_by
        if window is not None and table.window_params is not None:
            params.update(table.window_params(window))
        items = self.client.paginate(table.path, params, table.items_key, page_size=self.page_size)
        member = table.window_member
        for item in items:
            if window is not None and member and not _in_window(_parse_ts(item.get(member)), window):
                continue
            yield item

    def _rows(self, spec: TableSpec, table: _Table, window: ReadWindow) -> Iterator[Mapping[str, Any]]:
        if spec.name == "task_instance_history":
            yield from self._history()
            return
        if spec.name == "dag_tag":
            for dag in self._items(table, window):
                for tag in sorted(dag.get("tags") or [], key=lambda t: str(t.get("name"))):
                    yield {"name": tag.get("name"), "dag_id": dag.get("dag_id")}
            return
        if spec.name == "dag_run":
            # Without an upper bound: a run the scheduler touched after the export started (every
            # running run, each loop) is still the parent of task instances this export holds.
            # The next export reads it again, newer; a chain is replayed by natural key.
            yield from self._items(table, replace(window, high=None))
            return
        if spec.name == "task_instance":
            self._exported_tis = {}
            for item in self._items(table, window):
                self._exported_tis[_ti_key(item)] = _TaskTry.of(item)
                yield item
            return
        yield from self._items(table, window)

    def _history(self) -> Iterator[Mapping[str, Any]]:
        """Earlier tries of the task instances this chain holds (``/tries``: history, then the TI).

        The API answers each page at its own moment, so history is read for the task instances as
        exported: a task retried after its row was read (new id, one more try) gets history rows
        for the tries before the exported one, under the exported id; a task instance changed
        since the export started and not exported is left to the next export, which has both.
        One call per retried or cleared task instance: the API has no bulk history endpoint.
        """
        unchanged = ReadWindow(high=self._started - self.watermark_lag)
        tries_of = {_ti_key(ti): _TaskTry.of(ti) for ti in self._items(_TABLES["task_instance"], unchanged)}
        tries_of.update(self._exported_tis or {})
        for key, exported in sorted(tries_of.items(), key=lambda kv: str(kv[1].id)):
            if exported.has_history:
                yield from self._tries(key, exported)

    def _tries(self, key: tuple[Any, ...], exported: _TaskTry) -> Iterator[Mapping[str, Any]]:
        dag_id, run_id, task_id, map_index = key
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}/tries"
        if self.max_path_length and len(path) > self.max_path_length:
            self.skipped_tries.append(f"{dag_id}.{task_id}[{map_index}] {run_id}")
            log.warning(
                "task_instance_history: %s exceeds the API path limit of %d characters; tries of %s.%s "
                "in %s not exported",
                path,
                self.max_path_length,
                dag_id,
                task_id,
                run_id,
            )
            return
        try:
            page = self.client.get(path, params={"map_index": map_index})
        except AirflowApiError as err:
            if err.status == 404:  # deleted since it was exported (airflow db clean)
                return
            raise
        seen: set[int] = set()
        for item in sorted(page.get("task_instances") or [], key=lambda t: t.get("try_number") or 0):
            number = item.get("try_number") or 0
            if exported.is_history(number) and number not in seen:
                seen.add(number)
                yield {**item, "__task_instance_id": exported.id}

    def _chunk(
        self,
        spec: TableSpec,
        table: _Table,
        columns: list[str],
        items: list[Mapping[str, Any]],
        include_secrets: bool,
    ) -> pa.Table:
        arrays = []
        for col in spec.columns:
            extract = table.fields.get(col.name)
            blank = col.name in spec.secret_columns and not include_secrets
            if extract is None or col.name not in columns or blank:
                arrays.append(pa.nulls(len(items), col.arrow_type))
                continue
            values = [extract(item) for item in items]
            if col.kind == "ts":
                values = [_parse_ts(v) for v in values]
            elif col.kind in ("str", "uuid", "json"):
                values = [None if v is None else str(v) for v in values]
            arrays.append(pa.array(values, col.arrow_type))
        return pa.Table.from_arrays(arrays, schema=spec.arrow_schema)


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def _ti_key(ti: Mapping[str, Any]) -> tuple[Any, ...]:
    return (ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["map_index"])


@dataclass(frozen=True)
class _TaskTry:
    """A task instance as exported: its id, try and state bound which of its tries are history."""

    id: Any
    try_number: int
    state: str | None

    @classmethod
    def of(cls, ti: Mapping[str, Any]) -> _TaskTry:
        return cls(ti["id"], ti.get("try_number") or 0, ti.get("state"))

    @property
    def has_history(self) -> bool:
        """Whether it has rows in task_instance_history: it was retried or cleared."""
        return self.try_number > 1 or (
            self.try_number >= 1 and self.state in (None, "up_for_retry", "up_for_reschedule")
        )

    def is_history(self, try_number: int) -> bool:
        """Earlier tries are history; so is the exported try itself once it waits for a retry
        (Airflow moved it to history; the API then lists the history row, not the TI)."""
        return try_number < self.try_number or (
            try_number == self.try_number and self.state == "up_for_retry"
        )


def _in_window(value: datetime | None, window: ReadWindow) -> bool:
    if window.low is None:
        return value is None or window.high is None or value <= window.high
    if value is None or value <= window.low:
        return False
    return window.high is None or value <= window.high


__all__ = ["FILTER_ONLY_WATERMARKS", "RestSource", "RestSourceError", "RestSourceUnavailable"]
