"""Bring exported values into the shape the target's columns take, and compare them fairly.

Parquet hands back timezone-aware timestamps, JSON as text and binary as bytes; PostgreSQL wants
aware timestamps for ``timestamptz``, SQLite stores naive UTC text, JSON columns want Python
objects. Comparison must also see through driver differences (``memoryview`` vs ``bytes``, naive
vs aware), or a second restore would "update" every row.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import uuid
from typing import Any

import sqlalchemy as sa

UTC = dt.UTC


def _is_json(column_type: Any) -> bool:
    return isinstance(column_type, sa.JSON) or type(column_type).__name__.upper() in {"JSON", "JSONB"}


def _is_datetime(column_type: Any) -> bool:
    return isinstance(column_type, (sa.DateTime, sa.TIMESTAMP))


def _is_binary(column_type: Any) -> bool:
    return isinstance(column_type, sa.LargeBinary) or type(column_type).__name__.upper() in {"BYTEA", "BLOB"}


def _is_uuid(column_type: Any) -> bool:
    return type(column_type).__name__.upper() in {"UUID", "UUIDTYPE"}


def _is_bool(column_type: Any) -> bool:
    return isinstance(column_type, sa.Boolean)


def to_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive value is taken as UTC (Airflow stores UTC everywhere)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def coerce(value: Any, column: sa.Column, dialect: str, kind: str | None = None, table: str = "") -> Any:
    """An exported value as the target column's driver expects it.

    ``kind`` is the export catalog's column kind (:mod:`airflow_provider_mwaaops.metadata.tables`).
    JSON text goes back to what the column holds: Python objects for JSON columns, text for text
    columns, and for Airflow 2's binary columns the bytes Airflow itself would write (a pickle for
    ``dag_run.conf``, UTF-8 JSON for ``xcom.value``).
    """
    if value is None:
        return None
    column_type = column.type
    if _is_datetime(column_type):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if isinstance(value, dt.datetime):
            value = to_utc(value)
            return value.replace(tzinfo=None) if dialect == "sqlite" else value
        return value
    if kind == "uuid" or _is_uuid(column_type):
        parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        return parsed if dialect == "postgresql" else parsed.hex
    if kind == "json":
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode()
        if _is_json(column_type):
            if not isinstance(value, str):
                return value
            loaded = json.loads(value)
            # JSON null stays JSON null (SQL NULL comes as None and never reaches this point).
            return sa.JSON.NULL if loaded is None else loaded
        if _is_binary(column_type):
            text = value if isinstance(value, str) else json.dumps(value)
            if table == "dag_run" and column.name == "conf":
                return pickle.dumps(json.loads(text), protocol=pickle.HIGHEST_PROTOCOL)
            return text.encode()
        return value
    if _is_json(column_type):
        return json.loads(value) if isinstance(value, str) else value
    if _is_binary(column_type):
        if isinstance(value, str):
            return value.encode()
        return bytes(value) if isinstance(value, (bytearray, memoryview)) else value
    if _is_bool(column_type):
        return bool(value)
    return value


def comparable(value: Any) -> Any:
    """A form in which equal values from any driver or file compare equal."""
    if value is sa.JSON.NULL:
        return None
    if isinstance(value, dt.datetime):
        return to_utc(value).replace(tzinfo=None)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bool):
        return int(value)
    return value
