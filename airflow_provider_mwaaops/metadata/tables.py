"""The catalog of exported metadata tables: one explicit, stable Parquet schema per table.

Why explicit rather than reflected: an export is read later by other tools (restore into another
Airflow version, Athena, Snowflake, DuckDB), so its schema must not depend on which Airflow wrote
it. Each table's schema is the *union* of its columns on Airflow 2.11 and 3.x, in a fixed order;
a column the source database does not have is written as nulls and left out of the manifest's
``columns`` list for that table, so a reader can tell "absent in this Airflow" from "null".
``tests/metadata/test_tables.py`` checks the catalog against the installed Airflow's SQLAlchemy
models, so a new Airflow column cannot slip by unnoticed.

Column kinds (how a database value becomes an Arrow value):

``int`` / ``float`` / ``str`` / ``bool``
    as is (``int64``, ``float64``, ``string``, ``bool``); ``str`` also stringifies the odd integer
    column of Airflow 2 (``user_id`` of notes).
``ts``
    ``timestamp[us, tz=UTC]``; naive database values are UTC (Airflow stores UTC).
``json``
    JSON **text** (``string``), exactly as the database holds it. Airflow 2 keeps some JSON-ish
    values pickled or as bytes (``dag_run.conf``, ``xcom.value``): those are decoded and written as
    JSON text (``json.dumps(..., default=str)``), never as a Python ``repr``.
``uuid``
    canonical dashed lower-case text.
``bin``
    raw bytes (``binary``): pickled ``executor_config``, compressed serialized DAGs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

#: Version of the export format (layout, manifest fields, table schemas). A reader refuses an
#: export whose ``schema_version`` is newer than this; adding a nullable column bumps it.
SCHEMA_VERSION = 1

#: Name of the Hive partition column of analysis tables (``<table>/dt=YYYY-MM-DD/...``). One name
#: for every table, and not the name of any real column, so Athena/Hive see no clash.
PARTITION_COLUMN = "dt"
#: Partition value of rows whose partition timestamp is null (Hive's own convention).
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "ts": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
    "uuid": pa.string(),
    "bin": pa.binary(),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]


@dataclass(frozen=True)
class ParentOrder:
    """Page a table in its parent's key order, for a child whose primary key is not time-ordered.

    Airflow 2's ``task_instance`` key is ``(dag_id, task_id, run_id, map_index)``: in that order a
    chunk holds one task's whole history and splits into a file per day. Paged by ``dag_run.id``
    (then ``then_by``), a chunk holds a few consecutive days of runs and writes a few files. Only
    used when a foreign key guarantees every child row has its parent (an inner join loses none).
    """

    parent: str
    join_on: tuple[str, ...]
    parent_key: str
    then_by: tuple[str, ...]


@dataclass(frozen=True)
class TableSpec:
    """How one metadata table is exported.

    ``keyset``: pagination key when it is not the table's primary key (the database source uses
    the source database's primary key otherwise, which differs between Airflow lines).
    ``natural_keys``: candidate natural keys, first whose columns all exist in the source wins;
    what restore upserts on. ``watermark``: column that bounds incremental exports (rows with
    ``low < watermark <= high``); ``None`` means the table is small and copied whole every time.
    ``parent_order``: page in a parent table's key order when the table has no ``id`` column
    (see :class:`ParentOrder`). ``partition_by``: timestamp columns whose first non-null value
    gives the row's ``dt`` partition; empty for tables that are not partitioned.
    ``secret_columns`` are never written in plain text. ``optional`` tables are exported only
    when asked for by name.
    """

    name: str
    columns: tuple[Column, ...]
    natural_keys: tuple[tuple[str, ...], ...] = ()
    keyset: tuple[str, ...] | None = None
    parent_order: ParentOrder | None = None
    watermark: str | None = None
    partition_by: tuple[str, ...] = ()
    secret_columns: tuple[str, ...] = ()
    optional: bool = False
    description: str = ""
    column_index: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_index", {c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def partitioned(self) -> bool:
        return bool(self.partition_by)

    @property
    def incremental(self) -> bool:
        return self.watermark is not None

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema every Parquet file of this table is written with (no partition column)."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type) for c in self.columns],
            metadata={"mwaaops.table": self.name, "mwaaops.schema_version": str(SCHEMA_VERSION)},
        )

    def natural_key(self, present: Iterable[str]) -> tuple[str, ...] | None:
        have = set(present)
        for candidate in self.natural_keys:
            if set(candidate) <= have:
                return candidate
        return None


def _cols(spec: str) -> tuple[Column, ...]:
    """``"id:int dag_id state:str"`` -> columns; a name without ``:kind`` is a ``str``."""
    out = []
    for token in spec.split():
        name, _, kind = token.partition(":")
        out.append(Column(name, kind or "str"))
    return tuple(out)


# Columns shared by task_instance and task_instance_history on both lines.
_TI_COMMON = (
    "task_id dag_id run_id map_index:int start_date:ts end_date:ts duration:float state "
    "try_number:int max_tries:int hostname unixname job_id:int pool pool_slots:int queue "
    "priority_weight:int operator custom_operator_name queued_dttm:ts scheduled_dttm:ts "
    "queued_by_job_id:int pid:int executor executor_config:bin updated_at:ts rendered_map_index "
    "context_carrier:json span_status external_executor_id trigger_id:int trigger_timeout:ts "
    "next_method next_kwargs:json task_display_name dag_version_id:uuid retry_delay_override:float "
    "retry_reason"
)

_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "log_template",
        _cols("id:int filename elasticsearch_id created_at:ts"),
        natural_keys=(("id",),),
        description="log file name templates that dag_run.log_template_id points at",
    ),
    TableSpec("team", _cols("name"), natural_keys=(("name",),), description="3.x multi-team names"),
    TableSpec(
        "dag_bundle",
        _cols("name active:bool version last_refreshed:ts signed_url_template template_params:json"),
        natural_keys=(("name",),),
    ),
    TableSpec(
        "dag",
        _cols(
            "dag_id root_dag_id is_paused:bool is_subdag:bool is_active:bool is_stale:bool "
            "exceeds_max_non_backfill:bool last_parsed_time:ts last_parse_duration:float last_pickled:ts "
            "last_expired:ts scheduler_lock:bool pickle_id:int fileloc relative_fileloc processor_subdir "
            "bundle_name bundle_version owners dag_display_name description default_view "
            "schedule_interval:json timetable_type timetable_summary timetable_description "
            "timetable_partitioned:bool timetable_periodic:bool partition_mapper_info:json "
            "dataset_expression:json asset_expression:json deadline:json max_active_tasks:int "
            "max_active_runs:int max_consecutive_failed_dag_runs:int has_task_concurrency_limits:bool "
            "has_import_errors:bool fail_fast:bool allowed_run_types:json next_dagrun:ts "
            "next_dagrun_data_interval_start:ts next_dagrun_data_interval_end:ts next_dagrun_partition_key "
            "next_dagrun_partition_date:ts next_dagrun_create_after:ts"
        ),
        natural_keys=(("dag_id",),),
        description="DAG rows with is_paused / is_active (2.x) or is_stale (3.x) at backup time",
    ),
    TableSpec("dag_tag", _cols("name dag_id"), natural_keys=(("dag_id", "name"),)),
    TableSpec("dag_owner_attributes", _cols("dag_id owner link"), natural_keys=(("dag_id", "owner"),)),
    TableSpec(
        "dag_version",
        _cols(
            "id:uuid version_number:int dag_id bundle_name bundle_version version_data:json "
            "created_at:ts last_updated:ts"
        ),
        natural_keys=(("dag_id", "version_number"),),
    ),
    TableSpec(
        "serialized_dag",
        _cols(
            "id:uuid dag_id fileloc fileloc_hash:int data:json data_compressed:bin created_at:ts "
            "last_updated:ts dag_hash processor_subdir dag_version_id:uuid"
        ),
        natural_keys=(("id",), ("dag_id",)),
    ),
    TableSpec(
        "dag_code",
        _cols(
            "id:uuid dag_id fileloc fileloc_hash:int created_at:ts last_updated:ts source_code "
            "source_code_hash dag_version_id:uuid"
        ),
        natural_keys=(("id",), ("fileloc_hash",)),
    ),
    TableSpec(
        "slot_pool",
        _cols("id:int pool slots:int description include_deferred:bool team_name"),
        natural_keys=(("pool",),),
    ),
    TableSpec(
        "variable",
        _cols("id:int key val description is_encrypted:bool team_name"),
        natural_keys=(("key",),),
        secret_columns=("val",),
    ),
    TableSpec(
        "connection",
        _cols(
            "id:int conn_id conn_type description host schema login password port:int "
            "is_encrypted:bool is_extra_encrypted:bool extra team_name"
        ),
        natural_keys=(("conn_id",),),
        secret_columns=("password", "extra"),
    ),
    TableSpec(
        "job",
        _cols(
            "id:int dag_id state job_type start_date:ts end_date:ts latest_heartbeat:ts executor_class "
            "hostname unixname"
        ),
        natural_keys=(("id",),),
        watermark="latest_heartbeat",
        partition_by=("start_date",),
        description="scheduler/triggerer/task jobs; ids are surrogates that restore remaps",
    ),
    TableSpec(
        "trigger",
        _cols("id:int classpath kwargs created_date:ts triggerer_id:int queue team_name"),
        natural_keys=(("id",),),
        description="kwargs stay encrypted with the source Airflow's Fernet key, as stored",
    ),
    TableSpec(
        "backfill",
        _cols(
            "id:int dag_id from_date:ts to_date:ts dag_run_conf:json is_paused:bool reprocess_behavior "
            "max_active_runs:int created_at:ts completed_at:ts updated_at:ts triggering_user_name"
        ),
        natural_keys=(("id",),),
    ),
    TableSpec(
        "dag_run",
        _cols(
            "id:int dag_id queued_at:ts execution_date:ts logical_date:ts start_date:ts end_date:ts state "
            "run_id creating_job_id:int external_trigger:bool run_type triggered_by triggering_user_name "
            "conf:json data_interval_start:ts data_interval_end:ts run_after:ts "
            "last_scheduling_decision:ts dag_hash log_template_id:int created_at:ts updated_at:ts "
            "clear_number:int backfill_id:int bundle_version scheduled_by_job_id:int context_carrier:json "
            "span_status created_dag_version_id:uuid partition_key partition_date:ts"
        ),
        natural_keys=(("dag_id", "run_id"),),
        watermark="updated_at",
        partition_by=("logical_date", "execution_date", "run_after"),
    ),
    TableSpec(
        "backfill_dag_run",
        _cols(
            "id:int backfill_id:int dag_run_id:int exception_reason logical_date:ts partition_key "
            "sort_ordinal:int"
        ),
        natural_keys=(("id",),),
    ),
    TableSpec(
        "dag_run_note",
        _cols("user_id dag_run_id:int content created_at:ts updated_at:ts"),
        natural_keys=(("dag_run_id",),),
        watermark="updated_at",
    ),
    TableSpec(
        "task_instance",
        _cols("id:uuid " + _TI_COMMON + " last_heartbeat_at:ts"),
        natural_keys=(("dag_id", "task_id", "run_id", "map_index"),),
        parent_order=ParentOrder("dag_run", ("dag_id", "run_id"), "id", ("task_id", "map_index")),
        watermark="updated_at",
        partition_by=("start_date", "updated_at"),
    ),
    TableSpec(
        "task_instance_history",
        _cols("id:int task_instance_id:uuid " + _TI_COMMON),
        natural_keys=(("dag_id", "task_id", "run_id", "map_index", "try_number"),),
        watermark="updated_at",
        partition_by=("start_date", "updated_at"),
    ),
    TableSpec(
        "task_instance_note",
        _cols("ti_id:uuid task_id dag_id run_id map_index:int user_id content created_at:ts updated_at:ts"),
        natural_keys=(("ti_id",), ("dag_id", "task_id", "run_id", "map_index")),
        watermark="updated_at",
    ),
    TableSpec(
        "task_fail",
        _cols("id:int task_id dag_id run_id map_index:int start_date:ts end_date:ts duration:int"),
        natural_keys=(("id",),),
        watermark="end_date",
        partition_by=("start_date", "end_date"),
        description="Airflow 2 only (removed in 3.0)",
    ),
    TableSpec(
        "task_reschedule",
        _cols(
            "id:int ti_id:uuid task_id dag_id run_id map_index:int try_number:int start_date:ts "
            "end_date:ts duration:int reschedule_date:ts"
        ),
        natural_keys=(("id",),),
        watermark="end_date",
    ),
    TableSpec(
        "log",
        _cols(
            "id:int dttm:ts dag_id task_id map_index:int event execution_date:ts logical_date:ts run_id "
            "owner owner_display_name extra try_number:int"
        ),
        natural_keys=(("id",),),
        keyset=("dttm", "id"),
        watermark="dttm",
        partition_by=("dttm",),
        description="the audit/event log (Airflow 3's eventLogs)",
    ),
    TableSpec(
        "xcom",
        _cols(
            "dag_run_id:int task_id map_index:int key dag_id run_id value:json dag_result:bool timestamp:ts"
        ),
        natural_keys=(("dag_id", "run_id", "task_id", "map_index", "key"),),
        watermark="timestamp",
        optional=True,
        description="task results; large and often sensitive, so exported only on request",
    ),
)

#: Every exportable table, in dependency order (a table comes after the tables it refers to), so
#: restore can replay the catalog front to back.
TABLES: dict[str, TableSpec] = {t.name: t for t in _TABLES}

#: Tables exported when the caller does not name any.
DEFAULT_TABLES: tuple[str, ...] = tuple(t.name for t in _TABLES if not t.optional)

#: Tables partitioned by date (the ones worth querying), which the report and Athena/Snowflake read.
ANALYSIS_TABLES: tuple[str, ...] = tuple(t.name for t in _TABLES if t.partitioned)


def get_table(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown metadata table {name!r}; known: {', '.join(TABLES)}") from None


def resolve_tables(names: Iterable[str] | None) -> list[TableSpec]:
    """Selected tables in catalog (dependency) order; ``None`` means :data:`DEFAULT_TABLES`."""
    wanted = list(DEFAULT_TABLES) if names is None else list(dict.fromkeys(names))
    for name in wanted:
        get_table(name)
    return [t for t in _TABLES if t.name in wanted]
