"""Loading exports into Snowflake (fakesnow): the counts the report sees, upserted, idempotent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

fakesnow = pytest.importorskip("fakesnow")

DAG_ID = "mwaaops_snowflake_probe"
CONN_ID = "mwaaops_snowflake_test"


@dataclass
class Exports:
    base: Path
    failed_run_id: str


TABLES = ["dag_run", "task_instance"]


@pytest.fixture(scope="module")
def exports(mwaaops_airflow, tmp_path_factory, fail_on_request_dag, update_run, export_history) -> Exports:
    """Two runs (one failed) in a full export; the failed one repaired plus a new run incrementally."""
    from airflow_provider_mwaaops.testing.dag_runner import run_dag

    dag = fail_on_request_dag(DAG_ID)
    base = tmp_path_factory.mktemp("snowflake-exports")
    assert run_dag(dag).succeeded
    failed = run_dag(dag, conf={"fail": True})
    assert failed.state == "failed"
    export_history(base, "e1", "full", TABLES)
    update_run(DAG_ID, failed.run_id, state="success", updated_at=datetime.now(UTC))
    assert run_dag(dag).succeeded
    export_history(base, "e2", "incremental", TABLES)
    return Exports(base, failed.run_id)


@pytest.fixture
def snowflake_connection(monkeypatch):
    """A Snowflake connection for the provider's hook; fakesnow answers it in-process."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "snowflake",
                "login": "loader",
                "password": "not-a-secret",
                "schema": "AIRFLOW_HISTORY",
                "extra": {"account": "mwaaops", "database": "ANALYTICS", "warehouse": "WH", "role": "LOADER"},
            }
        ),
    )
    with fakesnow.patch():
        yield CONN_ID


def _probe_runs(conn_id: str) -> dict[str, str]:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    rows = SnowflakeHook(snowflake_conn_id=conn_id).get_records(
        "SELECT RUN_ID, STATE FROM AIRFLOW_DAG_RUN WHERE DAG_ID = %(dag)s", parameters={"dag": DAG_ID}
    )
    return dict(rows)


def test_snowflake_holds_the_rows_the_report_counts(exports, snowflake_connection):
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.metadata.analysis.snowflake import SnowflakeMetadataLoader

    reader = ExportReader.open(str(exports.base))
    with reader.connect() as loaded:
        expected = loaded.rows_unique
        assert loaded.rows_read["dag_run"] > expected["dag_run"]  # the repaired run is in both exports
    loader = SnowflakeMetadataLoader(snowflake_connection)

    results = loader.load_export(reader)

    assert {r.table: r.rows_in_target for r in results} == expected
    assert {r.table: r.rows_loaded for r in results} == expected
    assert [r.target for r in results] == ["AIRFLOW_DAG_RUN", "AIRFLOW_TASK_INSTANCE"]
    runs = _probe_runs(snowflake_connection)
    assert len(runs) == 3
    assert set(runs.values()) == {"success"}

    again = loader.load_export(reader)
    assert {r.table: r.rows_in_target for r in again} == expected


def test_a_later_export_replaces_the_earlier_copy(exports, snowflake_connection):
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.metadata.analysis.snowflake import SnowflakeMetadataLoader

    loader = SnowflakeMetadataLoader(snowflake_connection)
    loader.load_export(ExportReader.open(str(exports.base / "e1")))
    assert _probe_runs(snowflake_connection)[exports.failed_run_id] == "failed"

    loader.load_export(ExportReader.open(str(exports.base)))

    runs = _probe_runs(snowflake_connection)
    assert runs[exports.failed_run_id] == "success"
    assert len(runs) == 3


def test_target_columns_follow_the_export_schema(exports, snowflake_connection):
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.metadata.analysis.snowflake import SnowflakeMetadataLoader
    from airflow_provider_mwaaops.metadata.tables import get_table

    SnowflakeMetadataLoader(snowflake_connection, table_prefix="raw_").load_export(
        ExportReader.open(str(exports.base)), tables=["dag_run"]
    )
    columns = SnowflakeHook(snowflake_conn_id=snowflake_connection).get_records(
        "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'RAW_DAG_RUN' "
        "ORDER BY ORDINAL_POSITION"
    )
    assert [name for name, _ in columns] == [c.upper() for c in get_table("dag_run").column_names]
    types = dict(columns)
    assert types["START_DATE"].startswith("TIMESTAMP")
    assert types["ID"] == "NUMBER"
    assert types["DAG_ID"] in ("TEXT", "VARCHAR")


def test_operator_loads_and_returns_the_counts(exports, snowflake_connection):
    from airflow_provider_mwaaops.metadata.analysis.reader import ExportReader
    from airflow_provider_mwaaops.operators.metadata_analysis import MetadataSnowflakeLoadOperator

    operator = MetadataSnowflakeLoadOperator(
        task_id="load_history", export_uri=str(exports.base), snowflake_conn_id=snowflake_connection
    )

    counts = operator.execute({})

    with ExportReader.open(str(exports.base)).connect() as loaded:
        assert counts == loaded.rows_unique


def test_snowflake_types():
    import pyarrow as pa

    from airflow_provider_mwaaops.metadata.analysis.snowflake import snowflake_type

    assert snowflake_type(pa.timestamp("us", tz="UTC")) == "TIMESTAMP_TZ"
    assert snowflake_type(pa.timestamp("us")) == "TIMESTAMP_NTZ"
    assert snowflake_type(pa.int64()) == "NUMBER(38,0)"
    assert snowflake_type(pa.binary()) == "BINARY"
    assert snowflake_type(pa.list_(pa.int64())) == "VARIANT"
