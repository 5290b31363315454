"""The binary COPY encoder (metadata/restore/pgbinary.py) against a real PostgreSQL server.

Every (Arrow type, PostgreSQL type) pair the metadata tables use goes in once as binary and once
as the CSV the bulk path sent before; both copies must hold the same rows, and the values must be
the ones the Arrow batch held: NULLs, empty text, tabs/newlines/backslashes/quotes, non-ASCII,
zero bytes in bytea, JSON (and JSON null), timestamps before 2000 and with microseconds, integer
limits, NaN and infinities, UUIDs in either case, a sliced batch.

Skips without a PostgreSQL server, fails instead under MWAAOPS_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import uuid
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_mwaaops.metadata.restore import pgbinary
from airflow_provider_mwaaops.metadata.restore.bulk import _csv_rows

UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")
U1, U2 = uuid.uuid4(), uuid.uuid4()

#: name -> (PostgreSQL type, Arrow type, values)
COLUMNS: dict[str, tuple[str, pa.DataType, list[Any]]] = {
    "i4": ("integer", pa.int64(), [0, -1, 2**31 - 1, -(2**31), None, 7]),
    "i8": ("bigint", pa.int64(), [2**63 - 1, -(2**63), 0, None, 1, 2]),
    "i2": ("smallint", pa.int64(), [2**15 - 1, -(2**15), None, 0, 1, 2]),
    "f8": ("double precision", pa.float64(), [0.1, -1e300, math.inf, -math.inf, None, 0.125]),
    "f4": ("real", pa.float64(), [0.5, -2.25, None, 1e10, 0.0, 3.0]),
    "b": ("boolean", pa.bool_(), [True, False, None, True, False, None]),
    "tz": (
        "timestamp with time zone",
        TS,
        [
            dt.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
            dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            dt.datetime(1970, 1, 1, tzinfo=UTC),
            None,
            dt.datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC),
            dt.datetime(1900, 6, 15, 0, 0, 0, 1, tzinfo=UTC),
        ],
    ),
    "naive": (
        "timestamp without time zone",
        TS,
        [dt.datetime(2024, 3, 1, 12, 30, tzinfo=UTC), None, dt.datetime(2000, 1, 1, tzinfo=UTC)] * 2,
    ),
    "vc": (
        "character varying(250)",
        pa.string(),
        ["tab\there", "new\nline\r\n", "back\\slash \\N \\.", 'quote " ,|;', "", None],
    ),
    "t": ("text", pa.string(), ["ünïcødé ✓", None, "", "x" * 10_000, "\\", "end"]),
    "j": ("json", pa.string(), ['{"a": [1, null, "\\t"]}', "null", None, "[]", '"s"', "{}"]),
    "jb": ("jsonb", pa.string(), ['{"b": 2, "a": 1}', "null", None, "[1,2]", '"s"', "{}"]),
    "by": ("bytea", pa.binary(), [b"\x00,\t\n\\|\xff", b"", None, b"\x80\x04}\x94.", b"a", b"\x00"]),
    "u": (
        "uuid",
        pa.string(),
        [str(U1), str(U2).upper(), None, U1.hex, str(U2), "00000000-0000-0000-0000-000000000000"],
    ),
}


def _batch(columns: dict[str, tuple[str, pa.DataType, list[Any]]] = COLUMNS) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(values, arrow) for _pg, arrow, values in columns.values()], names=list(columns)
    )


def _pg_types(columns: dict[str, tuple[str, pa.DataType, list[Any]]] = COLUMNS) -> list[str]:
    return [pgbinary.pg_type_name(pg) for pg, _arrow, _values in columns.values()]


@pytest.fixture
def conn(postgres_url):  # type: ignore[no-untyped-def]
    import psycopg2

    connection = psycopg2.connect(postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    connection.autocommit = True
    with connection.cursor() as cur:
        cur.execute("SET TIME ZONE 'Asia/Kolkata'")  # a session zone must not shift anything
        for table in ("via_binary", "via_csv"):
            listed = ", ".join(f"{name} {pg}" for name, (pg, _a, _v) in COLUMNS.items())
            cur.execute(f"CREATE TABLE {table} (n serial, {listed})")
    yield connection
    connection.close()


def _copy_binary(conn: Any, batch: pa.RecordBatch, table: str = "via_binary") -> None:
    data = pgbinary.HEADER + pgbinary.encode_rows(batch, _pg_types()) + pgbinary.TRAILER
    with conn.cursor() as cur:
        cur.copy_expert(
            f"COPY {table} ({', '.join(batch.schema.names)}) FROM STDIN (FORMAT binary)", io.BytesIO(data)
        )


def _copy_csv(conn: Any, batch: pa.RecordBatch) -> None:
    """What the bulk path sends when binary is not possible (bytea as \\x hex, as it prepares it)."""
    arrays = list(batch.columns)
    index = batch.schema.get_field_index("by")
    arrays[index] = pa.array(
        [None if v is None else "\\x" + v.hex() for v in arrays[index].to_pylist()], pa.string()
    )
    csv = _csv_rows(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names))
    with conn.cursor() as cur:
        cur.copy_expert(
            f"COPY via_csv ({', '.join(batch.schema.names)}) FROM STDIN (FORMAT csv)", io.BytesIO(csv)
        )


def _rows(conn: Any, table: str) -> list[tuple[Any, ...]]:
    # json has no equality operator: compare its text; jsonb is normalised by the server anyway.
    listed = ", ".join(f"{name}::text" if name == "j" else name for name in COLUMNS)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {listed} FROM {table} ORDER BY n")
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cur.fetchall()]


def test_binary_copy_holds_what_csv_holds_and_what_arrow_held(conn):
    batch = _batch()
    _copy_binary(conn, batch)
    _copy_csv(conn, batch)
    binary, csv = _rows(conn, "via_binary"), _rows(conn, "via_csv")
    assert binary == csv
    columns = list(COLUMNS)
    for name, (pg, _arrow, values) in COLUMNS.items():
        got = [row[columns.index(name)] for row in binary]
        if name == "naive":  # stored as the UTC wall time
            values = [None if v is None else v.replace(tzinfo=None) for v in values]
        elif name == "jb":
            values = [None if v is None else json.loads(v) for v in values]
        elif name == "u":
            values = [None if v is None else uuid.UUID(v) for v in values]
        elif name == "f4":
            values = [None if v is None else float(v) for v in values]
        if name == "u":
            got = [None if v is None else uuid.UUID(str(v)) for v in got]
        assert got == values, (name, pg)


def test_nan_travels_as_nan(conn):
    columns = {"f8": COLUMNS["f8"]}
    batch = pa.RecordBatch.from_arrays([pa.array([math.nan, None], pa.float64())], names=["f8"])
    data = pgbinary.HEADER + pgbinary.encode_rows(batch, _pg_types(columns)) + pgbinary.TRAILER
    with conn.cursor() as cur:
        cur.copy_expert("COPY via_binary (f8) FROM STDIN (FORMAT binary)", io.BytesIO(data))
        cur.execute("SELECT f8 FROM via_binary ORDER BY n")
        first, second = (row[0] for row in cur.fetchall())
    assert math.isnan(first)
    assert second is None


def test_a_sliced_batch_encodes_as_its_own_copy():
    batch = _batch()
    for offset, length in ((1, 4), (3, 3), (5, 1), (2, 0)):
        part = batch.slice(offset, length)
        fresh = pa.RecordBatch.from_pylist(part.to_pylist(), schema=batch.schema)
        assert pgbinary.encode_rows(part, _pg_types()) == pgbinary.encode_rows(fresh, _pg_types())


@pytest.mark.parametrize(
    ("pg", "arrow", "values"),
    [
        ("integer", pa.int64(), [2**31]),
        ("smallint", pa.int64(), [-(2**15) - 1]),
        ("uuid", pa.string(), ["not-a-uuid"]),
        ("uuid", pa.string(), ["zzzzzzzz-0000-0000-0000-000000000000"]),
    ],
)
def test_values_the_column_cannot_hold_are_refused(pg, arrow, values):
    batch = pa.RecordBatch.from_arrays([pa.array(values, arrow)], names=["c"])
    with pytest.raises(ValueError, match="column c"):
        pgbinary.encode_rows(batch, [pgbinary.pg_type_name(pg)])


def test_pairs_without_a_certain_binary_form_are_left_to_csv():
    assert pgbinary.supported([pa.int64(), pa.string(), TS], ["integer", "text", "timestamp with time zone"])
    for arrow, pg in [
        (pa.string(), "integer"),  # Airflow 2's text user_id into an integer column
        (pa.string(), "bytea"),  # JSON text for a pickled column: the row path's coerce decides
        (pa.binary(), "text"),
        (pa.int64(), "numeric"),
        (pa.string(), "my_domain"),
        (pa.float64(), "integer"),
    ]:
        assert not pgbinary.supported([arrow], [pg]), (arrow, pg)


def test_pg_type_name_drops_the_modifier():
    assert pgbinary.pg_type_name("character varying(250)") == "character varying"
    assert pgbinary.pg_type_name("timestamp with time zone") == "timestamp with time zone"
