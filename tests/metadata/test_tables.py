"""The export catalog against the installed Airflow's models: no column may go unnoticed."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_provider_mwaaops.metadata.tables import (
    ANALYSIS_TABLES,
    DEFAULT_TABLES,
    PARTITION_COLUMN,
    SCHEMA_VERSION,
    TABLES,
    get_table,
    resolve_tables,
)


def _models_metadata():
    from airflow.models.base import Base

    try:
        from airflow.models import import_all_models

        import_all_models()
    except ImportError:  # pragma: no cover - both supported lines have it
        pass
    return Base.metadata


def _expected_kind(column) -> set[str]:
    import sqlalchemy as sa

    t = column.type
    name = type(t).__name__
    if name in {"UtcDateTime"} or isinstance(t, sa.DateTime):
        return {"ts"}
    if isinstance(t, sa.Boolean):
        return {"bool"}
    if isinstance(t, sa.Float):
        return {"float"}
    if isinstance(t, sa.Integer):
        return {"int", "str"}  # Airflow 2 note user ids are ints, Airflow 3's strings
    if name in {"Uuid", "UUID"}:
        return {"uuid"}
    if name in {"ExecutorConfigType"} or isinstance(t, sa.LargeBinary):
        return {"bin", "json"}  # Airflow 2 xcom values are JSON bytes
    if name in {"JSON", "JSONField", "ExtendedJSON", "PickleType", "Interval"}:
        return {"json"}
    return {"str", "json"}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_catalog_covers_every_column_of_the_installed_airflow(table):
    metadata = _models_metadata()
    spec = get_table(table)
    if table not in metadata.tables:
        pytest.skip(f"{table} does not exist in this Airflow")
    model = metadata.tables[table]
    missing = [c.name for c in model.columns if c.name not in spec.column_index]
    assert not missing, f"{table}: columns not in the export catalog: {missing}"
    for column in model.columns:
        kind = spec.column_index[column.name].kind
        assert kind in _expected_kind(column), f"{table}.{column.name}: {column.type!r} exported as {kind}"
    if spec.watermark:
        assert spec.watermark in model.columns, f"{table}: watermark {spec.watermark} missing"


def test_schemas_are_explicit_and_versioned():
    for spec in TABLES.values():
        schema = spec.arrow_schema
        assert schema.names == spec.column_names
        assert schema.metadata[b"mwaaops.schema_version"] == str(SCHEMA_VERSION).encode()
        assert PARTITION_COLUMN not in spec.column_index
        for field in schema:
            assert field.type in {
                pa.int64(),
                pa.float64(),
                pa.string(),
                pa.bool_(),
                pa.binary(),
                pa.timestamp("us", tz="UTC"),
            }


def test_defaults_and_order():
    assert "xcom" not in DEFAULT_TABLES
    assert "xcom" in TABLES
    assert set(ANALYSIS_TABLES) >= {"dag_run", "task_instance", "log"}
    names = [t.name for t in resolve_tables(["log", "dag_run", "dag"])]
    assert names == ["dag", "dag_run", "log"]  # dependency order, whatever the caller's order
    with pytest.raises(ValueError, match="unknown metadata table 'nope'"):
        resolve_tables(["nope"])


def test_secret_columns():
    assert get_table("connection").secret_columns == ("password", "extra")
    assert get_table("variable").secret_columns == ("val",)
