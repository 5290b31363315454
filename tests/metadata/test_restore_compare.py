"""compare_exports knows what a restore deliberately skips, and still fails on anything lost.

The exports are written here file by file in the export format (Parquet + manifest), so these
tests need no Airflow process: they pin the comparison's own rules. The drill scenario: a backup
taken with ``secrets='exclude'`` has variables without values; restore skips them (a variable
without a value is not a variable); the export of the restored database therefore lacks them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from airflow_provider_mwaaops.metadata.export import parquet_bytes
from airflow_provider_mwaaops.metadata.manifest import (
    FileEntry,
    Manifest,
    TableEntry,
    manifest_path,
    part_path,
    sha256_hex,
)
from airflow_provider_mwaaops.metadata.restore.compare import compare_exports
from airflow_provider_mwaaops.metadata.restore.plan import TableStats
from airflow_provider_mwaaops.metadata.restore.run import RestoreReport
from airflow_provider_mwaaops.metadata.sinks import open_sink
from airflow_provider_mwaaops.metadata.tables import get_table

VARIABLES = [
    {"id": 1, "key": "api_token", "val": None, "description": "secret", "is_encrypted": None},
    {"id": 2, "key": "sns_topic", "val": None, "description": None, "is_encrypted": None},
]
CONNECTIONS = [
    {"id": 1, "conn_id": "warehouse", "conn_type": "postgres", "host": "db", "port": 5432},
    {"id": 2, "conn_id": "aws_dr", "conn_type": "aws", "host": None, "port": None},
]


def write_export(root: Path, export_id: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """An export with secrets excluded, as ``secrets='exclude'`` writes it."""
    sink = open_sink(str(root))
    entries = {}
    for name, rows in tables.items():
        spec = get_table(name)
        columns = list(spec.column_names)
        full = [{column: row.get(column) for column in spec.column_names} for row in rows]
        data = parquet_bytes(pa.Table.from_pylist(full, schema=spec.arrow_schema))
        path = part_path(name, 0)
        sink.write_bytes(f"{export_id}/{path}", data)
        entries[name] = TableEntry(
            name,
            rows=len(rows),
            columns=columns,
            secret_columns=list(spec.secret_columns),
            files=[FileEntry(path, len(rows), len(data), sha256_hex(data))],
        )
    manifest = Manifest(
        export_id=export_id,
        mode="full",
        airflow_version="2.11.2",
        source={"kind": "test"},
        started_at="2026-12-04T20:00:00+00:00",
        finished_at="2026-12-04T20:00:01+00:00",
        tables=entries,
    )
    sink.write_bytes(manifest_path(export_id), manifest.to_json())


def report_skipping(variables: int) -> RestoreReport:
    report = RestoreReport(export_ids=["backup"], target="db", dry_run=False)
    report.tables["variable"] = TableStats(
        "variable", exported=len(VARIABLES), skipped={"val not in the export (secrets excluded)": variables}
    )
    report.tables["connection"] = TableStats("connection", exported=2, inserted=2)
    return report


def compare(tmp_path: Path, restored: dict[str, list[dict[str, Any]]], **kwargs: Any) -> Any:
    write_export(tmp_path, "backup", {"variable": VARIABLES, "connection": CONNECTIONS})
    write_export(tmp_path, "restored", restored)
    sink = open_sink(str(tmp_path))
    return compare_exports(sink, "backup", sink, "restored", **kwargs)


def test_variables_without_values_skipped_by_the_restore_are_not_counted_as_missing(tmp_path):
    result = compare(tmp_path, {"variable": [], "connection": CONNECTIONS})
    assert result.equal, result.describe()
    assert len(result.tables["variable"].not_restored) == 2
    assert "2 not restored by design" in result.describe()


def test_with_the_restore_report_the_skipped_count_must_match(tmp_path):
    result = compare(tmp_path, {"variable": [], "connection": CONNECTIONS}, restore_report=report_skipping(2))
    assert result.equal, result.describe()
    # The restore says it skipped one: the second missing variable was lost, not skipped.
    lost = compare(tmp_path, {"variable": [], "connection": CONNECTIONS}, restore_report=report_skipping(1))
    assert not lost.equal
    assert len(lost.tables["variable"].only_in_a) == 2


def test_a_lost_connection_still_fails_the_comparison(tmp_path):
    result = compare(tmp_path, {"variable": [], "connection": CONNECTIONS[:1]})
    assert not result.equal
    assert [row["conn_id"] for row in result.tables["connection"].only_in_a] == ["aws_dr"]
    assert "DIFFERENT" in result.describe()


def test_a_variable_kept_by_the_target_compares_as_usual(tmp_path):
    result = compare(tmp_path, {"variable": VARIABLES, "connection": CONNECTIONS})
    assert result.equal
    assert not result.tables["variable"].not_restored


def test_a_lost_variable_with_a_value_is_never_excused(tmp_path):
    valued = [{**VARIABLES[0], "val": "plain"}, VARIABLES[1]]
    write_export(tmp_path, "backup", {"variable": valued, "connection": CONNECTIONS})
    write_export(tmp_path, "restored", {"variable": [], "connection": CONNECTIONS})
    sink = open_sink(str(tmp_path))
    result = compare_exports(sink, "backup", sink, "restored")
    assert not result.equal
    assert [row["key"] for row in result.tables["variable"].only_in_a] == ["api_token"]
    assert [row["key"] for row in result.tables["variable"].not_restored] == ["sns_topic"]
