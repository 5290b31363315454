"""``mwaaops metadata report``: what the exported history says about each DAG, as HTML and text.

Reads every complete export under a location (a full export and the incremental ones after it),
counts each dag run and task instance once (the latest export's copy wins), and computes with
DuckDB: per DAG and month the runs, success rate, min/max/avg duration and the change of the
average against the previous month; the slowest tasks; the tasks that retry most. The monthly
figures come from the same SQL that :mod:`airflow_provider_mwaaops.metadata.analysis.athena` prints as an
Athena view, so a dashboard in Athena and this report agree.

Usable without Airflow running: only the export's files are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_mwaaops.metadata.analysis import queries
from airflow_provider_mwaaops.metadata.analysis.console import (
    format_cell,
    format_ratio,
    format_seconds,
    text_table,
)

if TYPE_CHECKING:
    import duckdb

    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader

#: How many tasks the "slowest" and "retry hot spots" sections list by default.
DEFAULT_TOP = 10


@dataclass(frozen=True)
class MonthlyStats:
    """One DAG in one calendar month (UTC); durations in seconds, rates as fractions."""

    dag_id: str
    month: date
    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    min_duration_s: float | None
    max_duration_s: float | None
    avg_duration_s: float | None
    prev_avg_duration_s: float | None
    avg_duration_change: float | None


@dataclass(frozen=True)
class TaskDuration:
    """Durations of one task's finished instances, in seconds."""

    dag_id: str
    task_id: str
    instances: int
    avg_duration_s: float
    p95_duration_s: float
    max_duration_s: float


@dataclass(frozen=True)
class RetryHotSpot:
    """How often one task's instances needed more than one try."""

    dag_id: str
    task_id: str
    instances: int
    retried_instances: int
    retries: int
    max_try_number: int
    failed_instances: int
    retry_rate: float


@dataclass
class MetadataReport:
    """Everything the report shows; :meth:`console_table` renders it as text,
    :func:`~airflow_provider_mwaaops.metadata.analysis.html.render` as a page."""

    export_uri: str
    export_ids: list[str]
    rows_read: dict[str, int]
    rows_unique: dict[str, int]
    monthly: list[MonthlyStats]
    slowest_tasks: list[TaskDuration]
    retry_hot_spots: list[RetryHotSpot]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def console_table(self) -> str:
        """The monthly figures plus the two task lists as plain text, for a terminal or task log."""
        monthly = text_table(
            ["dag_id", "month", "runs", "ok", "failed", "success", "min", "avg", "max", "avg vs prev"],
            [
                [
                    row.dag_id,
                    format_cell(row.month),
                    str(row.runs),
                    str(row.succeeded),
                    str(row.failed),
                    format_ratio(row.success_rate),
                    format_seconds(row.min_duration_s),
                    format_seconds(row.avg_duration_s),
                    format_seconds(row.max_duration_s),
                    format_ratio(row.avg_duration_change, signed=True),
                ]
                for row in self.monthly
            ],
            numeric=[False, False, *[True] * 8],
        )
        slowest = text_table(
            ["dag_id", "task_id", "instances", "avg", "p95", "max"],
            [
                [
                    t.dag_id,
                    t.task_id,
                    str(t.instances),
                    format_seconds(t.avg_duration_s),
                    format_seconds(t.p95_duration_s),
                    format_seconds(t.max_duration_s),
                ]
                for t in self.slowest_tasks
            ],
            numeric=[False, False, True, True, True, True],
        )
        retries = text_table(
            ["dag_id", "task_id", "instances", "retried", "retries", "max try", "failed", "retry rate"],
            [
                [
                    r.dag_id,
                    r.task_id,
                    str(r.instances),
                    str(r.retried_instances),
                    str(r.retries),
                    str(r.max_try_number),
                    str(r.failed_instances),
                    format_ratio(r.retry_rate),
                ]
                for r in self.retry_hot_spots
            ],
            numeric=[False, False, *[True] * 6],
        )
        unique = ", ".join(f"{table} {count}" for table, count in sorted(self.rows_unique.items()))
        return "\n\n".join(
            [
                f"Airflow metadata report: {self.export_uri} "
                f"({len(self.export_ids)} export(s); unique rows: {unique})",
                "Runs per DAG and month (UTC)\n" + monthly,
                "Slowest tasks\n"
                + (slowest if self.slowest_tasks else "(no task instance with both a start and an end)"),
                "Retry hot spots\n" + (retries if self.retry_hot_spots else "(no task needed a retry)"),
            ]
        )


def analyse(
    connection: duckdb.DuckDBPyConnection, top: int = DEFAULT_TOP
) -> tuple[list[MonthlyStats], list[TaskDuration], list[RetryHotSpot]]:
    """Run the three queries on a connection where ``dag_run`` and ``task_instance`` are deduplicated."""
    monthly = [MonthlyStats(*row) for row in connection.execute(queries.MONTHLY_SQL).fetchall()]
    slowest = [
        TaskDuration(*row) for row in connection.execute(queries.SLOWEST_TASKS_SQL, {"limit": top}).fetchall()
    ]
    retries = [
        RetryHotSpot(*row)
        for row in connection.execute(queries.RETRY_HOT_SPOTS_SQL, {"limit": top}).fetchall()
    ]
    return monthly, slowest, retries


def build_report(
    export_uri: str,
    *,
    storage_options: dict[str, Any] | None = None,
    aws_conn_id: str | None = None,
    region_name: str | None = None,
    top: int = DEFAULT_TOP,
    verify_checksums: bool = False,
) -> MetadataReport:
    """Read every complete export under ``export_uri`` (local path or ``s3://``) and analyse it.

    ``export_uri`` is either one export (the folder holding its ``manifest.json``) or the base
    folder under which each export has its own folder. S3 credentials and endpoint come from
    ``storage_options`` (s3fs arguments), else from the Airflow connection ``aws_conn_id``, else
    from the environment (``AWS_ENDPOINT_URL`` and the usual credential chain). ``verify_checksums``
    checks every listed file's sha256 first, which reads all the bytes once.
    """
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader

    reader = ExportReader.open(
        export_uri,
        storage_options=storage_options,
        aws_conn_id=aws_conn_id,
        region_name=region_name,
        verify_checksums=verify_checksums,
    )
    return report_from_reader(reader, top=top)


def report_from_reader(reader: ExportReader, top: int = DEFAULT_TOP) -> MetadataReport:
    """The report of exports already opened (the Athena DDL can then reuse the same reader)."""
    with reader.connect(tables=tuple(queries.REQUIRED_COLUMNS)) as loaded:
        monthly, slowest, retries = analyse(loaded.connection, top=top)
        return MetadataReport(
            export_uri=reader.uri,
            export_ids=[export.export_id for export in reader.exports],
            rows_read=loaded.rows_read,
            rows_unique=loaded.rows_unique,
            monthly=monthly,
            slowest_tasks=slowest,
            retry_hot_spots=retries,
        )
