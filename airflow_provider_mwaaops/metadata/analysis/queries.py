"""The analysis queries, written once and run by DuckDB here and by Athena over the same files.

The monthly query sticks to SQL that DuckDB and Trino (Athena engine 3) read the same way
(``date_trunc``, ``date_diff``, ``count_if``, ``CAST``), so the view that ``mwaaops metadata
athena-ddl`` prints is the very text the report runs, and a test can check one against the other.
The other two queries are DuckDB-only (``quantile_cont``); Athena users get the monthly view.

Every query reads two relations, ``dag_run`` and ``task_instance``, holding one row per natural
key (the latest export's copy): :mod:`airflow_provider_mwaaops.metadata.analysis.reader` builds
them in DuckDB, :func:`dedupe_sql` in Athena. Only columns that Airflow 2.11 and 3.x share are
used, so one query serves exports of both lines.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Natural keys, the same on Airflow 2.11 and 3.x, unlike the surrogate ids (3.x gives
#: task_instance a UUID primary key) that a restore into another database may renumber.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "dag_run": ("dag_id", "run_id"),
    "task_instance": ("dag_id", "run_id", "task_id", "map_index"),
}

#: Columns the queries read; an export missing one of them cannot be analysed.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "dag_run": ("dag_id", "run_id", "state", "start_date", "end_date", "queued_at"),
    "task_instance": (
        "dag_id",
        "run_id",
        "task_id",
        "map_index",
        "state",
        "start_date",
        "end_date",
        "try_number",
    ),
}

#: Name of the column that orders copies of one row (the export's position; higher is newer).
EXPORT_ORDER_COLUMN = "_mwaaops_export_order"


def dedupe_sql(
    source: str,
    columns: Sequence[str],
    key: Sequence[str],
    order_by: str | None = None,
) -> str:
    """``SELECT`` the newest copy of each row of ``source`` (all exports stacked) by natural ``key``.

    A row exported by a full export and again by a later incremental one (its run finished in
    between) must count once, with the later state: the first copy in ``order_by`` (the highest
    export order) wins. Written with explicit columns (no ``EXCLUDE``) so Athena runs it too.
    """
    order_by = order_by or f"{quote(EXPORT_ORDER_COLUMN)} DESC"
    keys = ", ".join(quote(column) for column in key)
    cols = ", ".join(quote(column) for column in columns)
    # Identifiers are quoted here and come from the export catalog, never from user text.
    return (
        f"SELECT {cols} FROM (\n"  # noqa: S608
        f"  SELECT {cols},\n"
        f"    row_number() OVER (PARTITION BY {keys} ORDER BY {order_by}) AS _mwaaops_copy\n"
        f"  FROM {source}\n"
        f") AS copies\nWHERE _mwaaops_copy = 1"
    )


#: Per DAG and calendar month (UTC) of the run's start (its queue time if it never started):
#: runs, outcomes, success rate over finished runs, duration figures over runs that have both a
#: start and an end, and the change of the average duration against the previous calendar month
#: (NULL when the DAG did not run that month). Portable between DuckDB and Athena (Trino).
MONTHLY_SQL_TEMPLATE = """\
WITH runs AS (
  SELECT
    dag_id,
    state,
    CAST(date_trunc('month', coalesce(start_date, queued_at)) AS date) AS month,
    CASE
      WHEN start_date IS NOT NULL AND end_date IS NOT NULL
      THEN CAST(date_diff('millisecond', start_date, end_date) AS double) / 1000
    END AS duration_s
  FROM {dag_run}
),
monthly AS (
  SELECT
    dag_id,
    month,
    count(*) AS runs,
    count_if(state = 'success') AS succeeded,
    count_if(state = 'failed') AS failed,
    CAST(count_if(state = 'success') AS double)
      / nullif(count_if(state IN ('success', 'failed')), 0) AS success_rate,
    min(duration_s) AS min_duration_s,
    max(duration_s) AS max_duration_s,
    avg(duration_s) AS avg_duration_s
  FROM runs
  WHERE month IS NOT NULL
  GROUP BY dag_id, month
)
SELECT
  cur.dag_id,
  cur.month,
  cur.runs,
  cur.succeeded,
  cur.failed,
  cur.success_rate,
  cur.min_duration_s,
  cur.max_duration_s,
  cur.avg_duration_s,
  prev.avg_duration_s AS prev_avg_duration_s,
  (cur.avg_duration_s - prev.avg_duration_s) / nullif(prev.avg_duration_s, 0) AS avg_duration_change
FROM monthly AS cur
LEFT JOIN monthly AS prev
  ON prev.dag_id = cur.dag_id AND date_diff('month', prev.month, cur.month) = 1
ORDER BY cur.dag_id, cur.month"""


def monthly_sql(dag_run: str = "dag_run") -> str:
    """The monthly query over ``dag_run`` (a deduplicated relation, qualified as the caller needs)."""
    return MONTHLY_SQL_TEMPLATE.format(dag_run=dag_run)


MONTHLY_SQL = monthly_sql()

#: Task duration. Airflow's own ``duration`` column is not filled for every state on every
#: line, so it is derived from start and end, which both lines always set for finished tries.
_TASK_DURATION = "CAST(date_diff('millisecond', start_date, end_date) AS double) / 1000"

#: Tasks by average duration of their finished task instances (latest try of each), with the
#: tail (p95, max) that averages hide.
SLOWEST_TASKS_SQL = f"""\
SELECT
  dag_id,
  task_id,
  count(*) AS instances,
  avg({_TASK_DURATION}) AS avg_duration_s,
  quantile_cont({_TASK_DURATION}, 0.95) AS p95_duration_s,
  max({_TASK_DURATION}) AS max_duration_s
FROM task_instance
WHERE start_date IS NOT NULL AND end_date IS NOT NULL
GROUP BY dag_id, task_id
ORDER BY avg_duration_s DESC, dag_id, task_id
LIMIT $limit"""  # noqa: S608 (a constant: _TASK_DURATION is ours)

#: Tasks whose instances needed more than one try. ``try_number`` counts tries started (both
#: lines since 2.10), so ``try_number - 1`` is the retries of an instance, a clear included.
RETRY_HOT_SPOTS_SQL = """\
SELECT
  dag_id,
  task_id,
  count(*) AS instances,
  count_if(try_number > 1) AS retried_instances,
  sum(greatest(try_number - 1, 0)) AS retries,
  max(try_number) AS max_try_number,
  count_if(state = 'failed') AS failed_instances,
  CAST(count_if(try_number > 1) AS double) / count(*) AS retry_rate
FROM task_instance
GROUP BY dag_id, task_id
HAVING sum(greatest(try_number - 1, 0)) > 0
ORDER BY retries DESC, retry_rate DESC, dag_id, task_id
LIMIT $limit"""


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier (DuckDB and Athena DML alike)."""
    return '"' + identifier.replace('"', '""') + '"'
