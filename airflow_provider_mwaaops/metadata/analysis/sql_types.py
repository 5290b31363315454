"""The SQL column type each warehouse reads an exported Arrow type as: one table, a column per warehouse.

Athena declares the Parquet files' own types (Hive DDL: it must match what the files hold, nested
types spelled out); Snowflake gets the column types its ``CREATE TABLE`` needs for the loaded rows
(one ``NUMBER`` for every integer width, nested values as ``VARIANT``). The first row whose test
matches a type decides; an empty cell (``None``) means that warehouse has no type for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pyarrow as pa

Warehouse = Literal["athena", "snowflake"]
#: A cell: the type's name, or how to spell it from the Arrow type (and the mapping, for nested
#: types), or ``None`` where the warehouse has no type for it.
Cell = str | Callable[[pa.DataType, Callable[[pa.DataType], str]], str] | None
#: (matches, Athena, Snowflake)
Row = tuple[Callable[[pa.DataType], bool], Cell, Cell]


def _is_int32(t: pa.DataType) -> bool:
    return bool(pa.types.is_int32(t) or pa.types.is_uint16(t) or pa.types.is_uint8(t))


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _is_binary(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t))


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _athena_struct(t: pa.DataType, of: Callable[[pa.DataType], str]) -> str:
    return "struct<" + ",".join(f"{f.name}:{of(f.type)}" for f in t) + ">"


#: Tried in order: the first row that matches decides.
TYPE_TABLE: tuple[Row, ...] = (
    (pa.types.is_boolean, "boolean", "BOOLEAN"),
    (pa.types.is_int8, "tinyint", "NUMBER(38,0)"),
    (pa.types.is_int16, "smallint", "NUMBER(38,0)"),
    (_is_int32, "int", "NUMBER(38,0)"),
    (pa.types.is_integer, "bigint", "NUMBER(38,0)"),
    (pa.types.is_float32, "float", "FLOAT"),
    (pa.types.is_floating, "double", "FLOAT"),
    (
        pa.types.is_decimal,
        lambda t, of: f"decimal({t.precision},{t.scale})",
        lambda t, of: f"NUMBER({t.precision},{t.scale})",
    ),
    (_is_string, "string", "VARCHAR"),
    (_is_binary, "binary", "BINARY"),
    (pa.types.is_timestamp, "timestamp", lambda t, of: "TIMESTAMP_TZ" if t.tz else "TIMESTAMP_NTZ"),
    (pa.types.is_date, "date", "DATE"),
    (_is_list, lambda t, of: f"array<{of(t.value_type)}>", "VARIANT"),
    (pa.types.is_map, lambda t, of: f"map<{of(t.key_type)},{of(t.item_type)}>", "VARIANT"),
    (pa.types.is_struct, _athena_struct, "VARIANT"),
    (pa.types.is_nested, None, "VARIANT"),
)


_NAMES: dict[str, str] = {"athena": "Athena", "snowflake": "Snowflake"}


def _cell(row: Row, warehouse: Warehouse) -> Cell:
    _, athena, snowflake = row
    return athena if warehouse == "athena" else snowflake


def sql_type(data_type: pa.DataType, warehouse: Warehouse) -> str:
    """``warehouse``'s column type for ``data_type``; ``ValueError`` when it has none."""
    cell = next((_cell(row, warehouse) for row in TYPE_TABLE if row[0](data_type)), None)
    if cell is None:
        raise ValueError(f"no {_NAMES[warehouse]} type for Arrow type {data_type}")
    if isinstance(cell, str):
        return cell
    return cell(data_type, lambda member: sql_type(member, warehouse))
