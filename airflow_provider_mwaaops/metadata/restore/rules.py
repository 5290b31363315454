"""How each metadata table is restored: its order, what identifies a row, which ids to remap.

The rules name columns of both Airflow lines; a column that the target table does not have (``job_id``
on an Airflow 3 task instance, say) is simply ignored, so one rule set serves 2.11 and 3.x.

Three kinds of identity, because Airflow's tables have all three:

* a **unique natural key** (``variable.key``, ``dag_run (dag_id, run_id)``, a task instance's
  ``(dag_id, task_id, run_id, map_index)``): the upsert's ``ON CONFLICT`` target;
* a **fingerprint** for tables with nothing unique but a surrogate id (``job``, ``trigger``, ``log``,
  ``task_fail``): the columns that never change once the row is written, so a second restore finds
  the rows the first one wrote even when their ids had to be changed;
* a **surrogate id** that other tables point at (``job.id`` from ``task_instance.job_id``,
  ``queued_by_job_id``, ``dag_run.creating_job_id``, ``trigger.triggerer_id``; ``trigger.id`` from
  ``task_instance.trigger_id``; ``dag_run.id`` from ``xcom.dag_run_id``; ``dag_version.id`` on 3.x).
  The id is kept when the target has no row with it, otherwise the row gets a fresh id and every
  reference to it is rewritten through the same map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: With ``upsert`` the export wins for rows that exist; with ``insert_only`` rows the target already
#: has are left alone (tables that the target's own DAG processor owns: dag, dag_bundle, dag_version...).
Mode = Literal["upsert", "insert_only"]


@dataclass(frozen=True)
class Reference:
    """A column holding another restored table's surrogate id."""

    table: str
    #: Keep a value the map does not know when the target has that id, or has no such table (no
    #: constraint to break): log_template rows are written identically by every ``airflow db
    #: migrate`` of one version, notes' users are the target's own. Otherwise the value becomes NULL.
    trust_target_ids: bool = False


@dataclass(frozen=True)
class NaturalReference:
    """A column resolved in the target through the referenced row's natural key.

    ``xcom.dag_run_id`` is found as the target's ``dag_run.id`` of ``(dag_id, run_id)``, which holds
    even when the dag run was restored by an earlier run of the restore.
    """

    table: str
    target_column: str
    #: referenced table's column -> this table's column
    on: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TableRule:
    name: str
    #: Candidate unique natural keys, first whose columns the target table has wins (the key moved
    #: between Airflow lines for some tables); used as the ON CONFLICT target. Empty for tables
    #: identified by their fingerprint.
    conflict_keys: tuple[tuple[str, ...], ...] = ()
    #: Immutable columns that identify a row of a table without a unique natural key; the first one
    #: narrows the lookup, so it should be selective (a timestamp).
    fingerprint: tuple[str, ...] | None = None
    #: Surrogate id column (int ids are re-allocated on collision; UUIDs are kept).
    surrogate: str | None = None
    references: dict[str, Reference] = field(default_factory=dict)
    natural_references: dict[str, NaturalReference] = field(default_factory=dict)
    mode: Mode = "upsert"
    #: Column telling which of two versions of a row is newer, where the export catalog has no
    #: watermark for the table. An exported row older than the target's is never written over it
    #: (an earlier export of a chain, or a target that moved on since the backup).
    newer_by: str | None = None


_JOB = Reference("job")
_USER = Reference("ab_user", trust_target_ids=True)  # Airflow 2 notes: FAB users of the target
_TI_KEY = ("dag_id", "task_id", "run_id", "map_index")
_TI_REFERENCES = {
    "job_id": _JOB,
    "queued_by_job_id": _JOB,
    "trigger_id": Reference("trigger"),
    "dag_version_id": Reference("dag_version"),
}
_DAG_RUN_BY_KEY = NaturalReference("dag_run", "id", (("dag_id", "dag_id"), ("run_id", "run_id")))

#: The restore order, every table after the tables it references. mwaa-dr's order (variable,
#: connection, slot_pool, log, job, dag_run, trigger, task_instance, task_fail, xcom) plus the
#: tables it never had: the 3.x versioned tables (dag_bundle, dag, dag_version...) that task
#: instances and dag runs point at, history, notes, reschedules and backfills.
RULES: tuple[TableRule, ...] = (
    # Every `airflow db migrate` writes these rows itself, with its own created_at: match on content.
    TableRule(
        "log_template", fingerprint=("filename", "elasticsearch_id"), surrogate="id", mode="insert_only"
    ),
    TableRule("team", conflict_keys=(("name",),), mode="insert_only"),
    TableRule("variable", conflict_keys=(("key",),), surrogate="id"),
    TableRule("connection", conflict_keys=(("conn_id",),), surrogate="id"),
    TableRule("slot_pool", conflict_keys=(("pool",),), surrogate="id"),
    TableRule(
        "log",
        fingerprint=(
            "dttm",
            "event",
            "dag_id",
            "task_id",
            "run_id",
            "map_index",
            "try_number",
            "owner",
            "extra",
        ),
        surrogate="id",
    ),
    TableRule(
        "job", fingerprint=("start_date", "job_type", "dag_id", "hostname", "unixname"), surrogate="id"
    ),
    TableRule("dag_bundle", conflict_keys=(("name",),), mode="insert_only"),
    TableRule("dag", conflict_keys=(("dag_id",),), mode="insert_only", newer_by="last_parsed_time"),
    TableRule("dag_tag", conflict_keys=(("name", "dag_id"),), mode="insert_only"),
    TableRule("dag_owner_attributes", conflict_keys=(("dag_id", "owner"),), mode="insert_only"),
    TableRule(
        "dag_version",
        conflict_keys=(("dag_id", "version_number"),),
        surrogate="id",
        mode="insert_only",
        newer_by="last_updated",
    ),
    TableRule(
        "serialized_dag",
        conflict_keys=(("dag_version_id",), ("dag_id",)),
        surrogate="id",
        references={"dag_version_id": Reference("dag_version")},
        mode="insert_only",
    ),
    TableRule(
        "dag_code",
        conflict_keys=(("dag_version_id",), ("fileloc_hash",)),
        surrogate="id",
        references={"dag_version_id": Reference("dag_version")},
        mode="insert_only",
    ),
    TableRule("backfill", fingerprint=("created_at", "dag_id"), surrogate="id"),
    TableRule(
        "dag_run",
        conflict_keys=(("dag_id", "run_id"),),
        surrogate="id",
        references={
            "creating_job_id": _JOB,
            "scheduled_by_job_id": _JOB,
            "created_dag_version_id": Reference("dag_version"),
            "backfill_id": Reference("backfill"),
            "log_template_id": Reference("log_template", trust_target_ids=True),
        },
    ),
    TableRule(
        "backfill_dag_run",
        conflict_keys=(("backfill_id", "dag_run_id"),),
        surrogate="id",
        references={"backfill_id": Reference("backfill"), "dag_run_id": Reference("dag_run")},
    ),
    TableRule(
        "dag_run_note",
        conflict_keys=(("dag_run_id",),),
        references={"dag_run_id": Reference("dag_run"), "user_id": _USER},
    ),
    TableRule(
        "trigger",
        fingerprint=("created_date", "classpath"),
        surrogate="id",
        references={"triggerer_id": _JOB},
    ),
    TableRule("task_instance", conflict_keys=(_TI_KEY,), surrogate="id", references=_TI_REFERENCES),
    TableRule(
        "task_instance_history",
        conflict_keys=((*_TI_KEY, "try_number"),),
        # 2.x: an int id; 3.x: task_instance_id, the UUID the try had (referenced by nothing).
        surrogate="id",
        references=_TI_REFERENCES,
    ),
    TableRule(
        "task_instance_note",
        conflict_keys=(("ti_id",), (*_TI_KEY,)),
        references={"ti_id": Reference("task_instance"), "user_id": _USER},
    ),
    TableRule("task_fail", fingerprint=("start_date", *_TI_KEY, "end_date"), surrogate="id"),
    TableRule(
        "task_reschedule",
        fingerprint=("start_date", "ti_id", *_TI_KEY, "try_number", "reschedule_date"),
        surrogate="id",
        references={"ti_id": Reference("task_instance")},
    ),
    TableRule(
        "xcom",
        conflict_keys=(("dag_run_id", "task_id", "map_index", "key"),),
        natural_references={"dag_run_id": _DAG_RUN_BY_KEY},
    ),
)

RULES_BY_NAME: dict[str, TableRule] = {rule.name: rule for rule in RULES}
RESTORE_ORDER: tuple[str, ...] = tuple(rule.name for rule in RULES)

#: Tables whose rows a fresh environment never has; any row in them makes a target "not empty" for
#: a strict restore. job and log are not among them: a running environment writes them constantly; nor
#: slot_pool's default_pool, dag_bundle or log_template, which ``airflow db migrate`` creates.
STRICT_TABLES: tuple[str, ...] = (
    "dag_run",
    "task_instance",
    "task_instance_history",
    "trigger",
    "xcom",
    "variable",
    "connection",
)


def rule_for(table: str) -> TableRule | None:
    return RULES_BY_NAME.get(table)


def order_tables(tables: list[str] | set[str]) -> list[str]:
    """The given tables in restore order; tables without a rule are left out (the caller reports)."""
    present = set(tables)
    return [name for name in RESTORE_ORDER if name in present]
