"""The report as one self-contained HTML file: inline CSS and SVG, nothing fetched when opened."""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import TYPE_CHECKING

from airflow_provider_mwaaops.metadata.analysis import svg
from airflow_provider_mwaaops.metadata.analysis.console import format_ratio, format_seconds

if TYPE_CHECKING:
    from airflow_provider_mwaaops.metadata.analysis.report import MetadataReport, MonthlyStats

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #212121; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; } h3 { font-size: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e0e0e0; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: #c62828; } .down { color: #2e7d32; }
.meta { color: #616161; font-size: 0.85rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
svg.chart { background: #fafafa; border: 1px solid #eeeeee; }
svg .grid { stroke: #e0e0e0; stroke-width: 1; }
svg .tick { font-size: 10px; fill: #616161; }
svg .chart-title { font-size: 12px; font-weight: 600; fill: #212121; }
"""


def write_html(
    report: MetadataReport, uri: str, *, aws_conn_id: str | None = None, region_name: str | None = None
) -> str:
    """Write :func:`render`'s page to a local path or an ``s3://`` URI; returns where it went.

    Goes through the export sinks, so the file appears whole or not at all, like export files.
    """
    from airflow_provider_mwaaops.metadata.sinks import write_file

    return write_file(uri, render(report).encode(), aws_conn_id=aws_conn_id, region_name=region_name)


def render(report: MetadataReport) -> str:
    """The whole page (inline SVG charts, no script) to open offline or attach to a mail; every
    value is escaped, since DAG and task ids are user text."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Airflow metadata report - {escape(report.export_uri)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Airflow metadata report</h1>",
        _provenance(report),
        '<h2 id="monthly">Runs per DAG and month</h2>',
        _monthly_sections(report),
        '<h2 id="slowest">Slowest tasks</h2>',
        _slowest(report),
        '<h2 id="retries">Retry hot spots</h2>',
        _retries(report),
        "</body></html>",
    ]
    return "\n".join(parts)


def _provenance(report: MetadataReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(table)}</td><td class='num'>{report.rows_read.get(table, 0)}</td>"
        f"<td class='num'>{report.rows_unique.get(table, 0)}</td></tr>"
        for table in sorted(set(report.rows_read) | set(report.rows_unique))
    )
    exports = ", ".join(escape(export_id) for export_id in report.export_ids)
    return (
        f"<p class='meta'>Source: <code>{escape(report.export_uri)}</code><br>"
        f"Generated {escape(report.generated_at.isoformat(timespec='seconds'))} from "
        f"{len(report.export_ids)} complete export(s): {exports}<br>"
        "Rows exported more than once (a full export and later incremental ones) count once, "
        "the latest export's copy winning. Months are calendar months (UTC) of each run's start.</p>"
        "<table><tr><th>table</th><th class='num'>rows read</th><th class='num'>unique rows</th></tr>"
        f"{rows}</table>"
    )


def _monthly_sections(report: MetadataReport) -> str:
    if not report.monthly:
        return "<p>No DAG runs in this export.</p>"
    by_dag: dict[str, list[MonthlyStats]] = defaultdict(list)
    for row in report.monthly:
        by_dag[row.dag_id].append(row)
    sections = []
    for dag_id, rows in sorted(by_dag.items()):
        bars = [
            svg.StackedBar(
                row.month.strftime("%Y-%m"),
                [
                    (row.succeeded, svg.COLOR_SUCCESS, "succeeded"),
                    (row.failed, svg.COLOR_FAILED, "failed"),
                    (row.runs - row.succeeded - row.failed, svg.COLOR_OTHER, "other"),
                ],
            )
            for row in rows
        ]
        points = [
            svg.RangePoint(
                row.month.strftime("%Y-%m"), row.min_duration_s, row.avg_duration_s, row.max_duration_s
            )
            for row in rows
        ]
        sections.append(
            f"<h3>{escape(dag_id)}</h3><div class='charts'>"
            + svg.stacked_bar_chart(f"{dag_id}: runs per month", bars)
            + svg.range_chart(f"{dag_id}: run duration per month", points, format_seconds)
            + "</div>"
            + _monthly_table(rows)
        )
    return "\n".join(sections)


def _monthly_table(rows: list[MonthlyStats]) -> str:
    head = (
        "<tr><th>month</th><th class='num'>runs</th><th class='num'>succeeded</th>"
        "<th class='num'>failed</th><th class='num'>success rate</th><th class='num'>min</th>"
        "<th class='num'>avg</th><th class='num'>max</th><th class='num'>avg vs previous month</th></tr>"
    )
    body = []
    for row in rows:
        change = row.avg_duration_change
        css = "" if change is None or change == 0 else (" up" if change > 0 else " down")
        body.append(
            f"<tr><td>{row.month:%Y-%m}</td><td class='num'>{row.runs}</td>"
            f"<td class='num'>{row.succeeded}</td><td class='num'>{row.failed}</td>"
            f"<td class='num'>{format_ratio(row.success_rate)}</td>"
            f"<td class='num'>{format_seconds(row.min_duration_s)}</td>"
            f"<td class='num'>{format_seconds(row.avg_duration_s)}</td>"
            f"<td class='num'>{format_seconds(row.max_duration_s)}</td>"
            f"<td class='num{css}'>{format_ratio(change, signed=True)}</td></tr>"
        )
    return "<table>" + head + "".join(body) + "</table>"


def _slowest(report: MetadataReport) -> str:
    if not report.slowest_tasks:
        return "<p>No finished task instances in this export.</p>"
    chart = svg.horizontal_bar_chart(
        "Average duration of the slowest tasks (marker: p95)",
        [(f"{t.dag_id}.{t.task_id}", t.avg_duration_s, t.p95_duration_s) for t in report.slowest_tasks],
        format_seconds,
        value_name="average",
        marker_name="p95",
    )
    rows = "".join(
        f"<tr><td>{escape(t.dag_id)}</td><td>{escape(t.task_id)}</td><td class='num'>{t.instances}</td>"
        f"<td class='num'>{format_seconds(t.avg_duration_s)}</td>"
        f"<td class='num'>{format_seconds(t.p95_duration_s)}</td>"
        f"<td class='num'>{format_seconds(t.max_duration_s)}</td></tr>"
        for t in report.slowest_tasks
    )
    return (
        chart + "<table><tr><th>DAG</th><th>task</th><th class='num'>instances</th><th class='num'>avg</th>"
        "<th class='num'>p95</th><th class='num'>max</th></tr>" + rows + "</table>"
    )


def _retries(report: MetadataReport) -> str:
    if not report.retry_hot_spots:
        return "<p>No task instance needed a retry.</p>"
    chart = svg.horizontal_bar_chart(
        "Retries per task",
        [(f"{r.dag_id}.{r.task_id}", float(r.retries), None) for r in report.retry_hot_spots],
        lambda v: f"{v:g}",
        value_name="retries",
    )
    rows = "".join(
        f"<tr><td>{escape(r.dag_id)}</td><td>{escape(r.task_id)}</td><td class='num'>{r.instances}</td>"
        f"<td class='num'>{r.retried_instances}</td><td class='num'>{r.retries}</td>"
        f"<td class='num'>{r.max_try_number}</td><td class='num'>{r.failed_instances}</td>"
        f"<td class='num'>{format_ratio(r.retry_rate)}</td></tr>"
        for r in report.retry_hot_spots
    )
    return (
        chart + "<table><tr><th>DAG</th><th>task</th><th class='num'>instances</th>"
        "<th class='num'>retried</th><th class='num'>retries</th><th class='num'>max try</th>"
        "<th class='num'>failed</th><th class='num'>retry rate</th></tr>" + rows + "</table>"
    )
