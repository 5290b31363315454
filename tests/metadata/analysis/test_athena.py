"""Athena DDL for exports: typed as the files are, projected onto the files' folders, and the views
compute what the report computes (run here on DuckDB, which reads the same SQL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

DAG_ID = "mwaaops_athena_probe"
DATABASE = "airflow_history"
LOCATION = "s3://athena-bucket/exports"


@dataclass
class Exports:
    base: Path
    export_ids: list[str]


TABLES = ["dag_run", "task_instance", "slot_pool"]


@pytest.fixture(scope="module")
def exports(mwaaops_airflow, tmp_path_factory, fail_on_request_dag, update_run, export_history) -> Exports:
    from airflow_provider_mwaaops.testing.dag_runner import run_dag

    def _shape(run_id: str, start: datetime, seconds: int, state: str) -> None:
        end = start + timedelta(seconds=seconds)
        update_run(DAG_ID, run_id, start_date=start, end_date=end, state=state, updated_at=datetime.now(UTC))

    dag = fail_on_request_dag(DAG_ID)
    base = tmp_path_factory.mktemp("athena-exports")
    first = run_dag(dag, conf={"fail": True})
    _shape(first.run_id, datetime(2026, 1, 15, tzinfo=UTC), 60, "failed")
    second = run_dag(dag)
    _shape(second.run_id, datetime(2026, 2, 15, tzinfo=UTC), 120, "success")
    export_history(base, "20260301T000000Z", "full", TABLES)
    # The failed January run is repaired after the full export: the incremental carries it again.
    _shape(first.run_id, datetime(2026, 1, 15, tzinfo=UTC), 180, "success")
    export_history(base, "20260302T000000Z", "incremental", TABLES)
    return Exports(base, ["20260301T000000Z", "20260302T000000Z"])


def _statements(exports: Exports, **kwargs) -> list[str]:
    from airflow_provider_mwaaops.metadata.analysis.athena import athena_ddl
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader

    return athena_ddl(ExportReader.open(str(exports.base)), DATABASE, location=LOCATION, **kwargs)


def _create_table(statements: list[str], table: str) -> str:
    (found,) = [
        s
        for s in statements
        if s.startswith(f"CREATE EXTERNAL TABLE IF NOT EXISTS `{DATABASE}`.`{table}_exported`")
    ]
    return found


def _manifests(exports: Exports):
    from airflow_provider_mwaaops.metadata.manifest import load_manifest
    from airflow_provider_mwaaops.metadata.sinks import open_sink

    sink = open_sink(str(exports.base))
    return [load_manifest(sink, export_id) for export_id in exports.export_ids]


@pytest.mark.parametrize("table", ["dag_run", "task_instance", "slot_pool"])
def test_columns_and_types_match_every_exported_file(exports, table):
    from airflow_provider_mwaaops.metadata.analysis.athena import athena_type

    ddl = _create_table(_statements(exports), table)
    declared = re.findall(r"^  `([^`]+)` (\S+?),?$", ddl.split("PARTITIONED BY")[0], flags=re.M)

    files = [
        exports.base / manifest.export_id / entry.path
        for manifest in _manifests(exports)
        for entry in manifest.tables[table].files
    ]
    assert files
    for path in files:
        schema = pq.read_schema(path)
        assert declared == [(f.name, athena_type(f.type)) for f in schema], path
    partitioned = table != "slot_pool"
    expected_keys = "(`export_id` string, `dt` string)" if partitioned else "(`export_id` string)"
    assert f"PARTITIONED BY {expected_keys}" in ddl
    assert "STORED AS PARQUET" in ddl
    assert f"LOCATION '{LOCATION}/'" in ddl


def test_projection_reaches_every_file_and_only_complete_exports(exports):
    ddl = _create_table(_statements(exports), "dag_run")
    props = dict(re.findall(r"'([^']+)'='([^']*)'", ddl))

    assert props["projection.enabled"] == "true"
    assert props["projection.export_id.type"] == "enum"
    assert props["projection.export_id.values"].split(",") == exports.export_ids
    assert props["projection.dt.type"] == "date"
    assert props["projection.dt.format"] == "yyyy-MM-dd"
    first_day, end = props["projection.dt.range"].split(",")
    assert end == "NOW"
    template = props["storage.location.template"]
    for manifest in _manifests(exports):
        for entry in manifest.tables["dag_run"].files:
            assert entry.partition >= first_day
            folder = template.replace("${export_id}", manifest.export_id).replace("${dt}", entry.partition)
            assert folder == f"{LOCATION}/{manifest.export_id}/{entry.path.rsplit('/', 1)[0]}/"


def test_views_give_the_reports_monthly_figures(exports):
    """Run the printed views on DuckDB over the same files; they must agree with the report."""
    import duckdb

    from airflow_provider_mwaaops.metadata.analysis.report import build_report
    from airflow_provider_mwaaops.metadata.tables import get_table

    statements = _statements(exports, tables=["dag_run"])
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'").fetchall()
    connection.execute(f'CREATE SCHEMA "{DATABASE}"').fetchall()
    parts = []
    for manifest in _manifests(exports):
        for entry in manifest.tables["dag_run"].files:
            part = pq.read_table(
                exports.base / manifest.export_id / entry.path, schema=get_table("dag_run").arrow_schema
            )
            part = part.append_column("export_id", pa.array([manifest.export_id] * part.num_rows))
            parts.append(part.append_column("dt", pa.array([entry.partition] * part.num_rows)))
    connection.register("files", pa.concat_tables(parts))
    connection.execute(f'CREATE TABLE "{DATABASE}"."dag_run_exported" AS SELECT * FROM files').fetchall()
    for statement in statements:
        if statement.startswith("CREATE OR REPLACE VIEW"):
            connection.execute(statement).fetchall()

    from_views = connection.execute(
        f'SELECT * FROM "{DATABASE}"."dag_run_monthly" WHERE dag_id = ? ORDER BY month', [DAG_ID]
    ).fetchall()
    report = build_report(str(exports.base))
    from_report = [tuple(vars(row).values()) for row in report.monthly if row.dag_id == DAG_ID]
    assert from_views == from_report
    assert [(row[2], row[3], row[8]) for row in from_views] == [(1, 1, 180.0), (1, 1, 120.0)]
    assert from_views[1][10] == pytest.approx(120 / 180 - 1)
    unique = connection.execute(f'SELECT count(*) FROM "{DATABASE}"."dag_run"').fetchall()[0][0]
    assert unique == report.rows_unique["dag_run"]


def test_export_ids_that_do_not_sort_in_time_are_ranked_by_manifest():
    from airflow_provider_mwaaops.metadata.analysis.athena import _export_order

    assert _export_order(["20260101T000000Z", "20260102T000000Z"]) == '"export_id" DESC'
    ranked = _export_order(["nightly__scheduled_2", "nightly__manual_1"])
    assert ranked == (
        "CASE \"export_id\" WHEN 'nightly__scheduled_2' THEN 0 WHEN 'nightly__manual_1' THEN 1 END DESC"
    )


def test_athena_types():
    from airflow_provider_mwaaops.metadata.analysis.athena import AthenaDdlError, athena_type

    assert athena_type(pa.timestamp("us", tz="UTC")) == "timestamp"
    assert athena_type(pa.int64()) == "bigint"
    assert athena_type(pa.int32()) == "int"
    assert athena_type(pa.float64()) == "double"
    assert athena_type(pa.binary()) == "binary"
    assert athena_type(pa.list_(pa.struct([("a", pa.string())]))) == "array<struct<a:string>>"
    with pytest.raises(AthenaDdlError):
        athena_type(pa.null())


def test_cli_prints_ddl_for_an_export_in_s3(exports, aws_emulator, capsys, export_history):
    from airflow_provider_mwaaops.cli import main

    aws_emulator.client("s3").create_bucket(Bucket="mwaaops-athena")
    export_history(
        "s3://mwaaops-athena/airflow", "20260401T000000Z", "full", TABLES, aws_conn_id="aws_default"
    )

    code = main(
        [
            "metadata",
            "athena-ddl",
            "s3://mwaaops-athena/airflow",
            "--database",
            "ops",
            "--aws-conn-id",
            "aws_default",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "LOCATION 's3://mwaaops-athena/airflow/'" in out
    assert "'storage.location.template'='s3://mwaaops-athena/airflow/${export_id}/dag_run/dt=${dt}/'" in out
    assert "'projection.export_id.values'='20260401T000000Z'" in out
    assert 'CREATE OR REPLACE VIEW "ops"."dag_run_monthly" AS' in out


def test_cli_refuses_a_local_export_without_an_s3_location(exports, capsys):
    from airflow_provider_mwaaops.cli import main

    code = main(["metadata", "athena-ddl", str(exports.base), "--database", "ops"])

    assert code == 2
    assert "--location s3://" in capsys.readouterr().err
