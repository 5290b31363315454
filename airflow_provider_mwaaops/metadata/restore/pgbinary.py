"""Arrow record batches in PostgreSQL's binary ``COPY`` format, encoded column by column.

Why: with CSV the client formats every value as text (timestamps are the costly ones) and the
server parses it back; in the binary format a timestamp is 8 bytes the server stores as they are.
On ``task_instance`` (40 columns, 8 indexes) the server's COPY of the same rows takes ~25 % less
time in binary (``benchmarks/README.md``), and the client does no formatting at all.

The format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"): a header,
then per row a 16-bit field count and per field a 32-bit length (-1 for NULL) followed by the
value in the type's binary ("send") form, all big-endian, then a 16-bit -1 trailer. Nothing here
loops over rows in Python: every column becomes two Arrow binary arrays (the length prefixes and
the values, built with numpy from the column's buffers), and one
``binary_join_element_wise`` (Arrow's C++ kernel) lays the rows out, NULL values skipped.

Only pairs of (Arrow type, PostgreSQL type) whose binary form is certain are encoded;
:func:`supported` says whether a whole batch is, and the caller keeps CSV for any other batch.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Signature, flags (no OIDs), header extension length.
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)

#: Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), where its timestamps count from.
_PG_EPOCH_US = 946_684_800_000_000

#: Width in bytes and range of each integer type.
_INT_RANGES = {
    "smallint": (2, -(2**15), 2**15 - 1),
    "integer": (4, -(2**31), 2**31 - 1),
    "bigint": (8, -(2**63), 2**63 - 1),
}
_FLOATS = {"double precision": ">f8", "real": ">f4"}
_TEXTS = {"text", "character varying", "json", "name"}
_TIMESTAMPS = {"timestamp with time zone", "timestamp without time zone"}


def pg_type_name(formatted: str) -> str:
    """``character varying(250)`` -> ``character varying``: the type without its modifier."""
    return formatted.split("(", 1)[0].strip()


def _encoder_for(arrow_type: pa.DataType, pg_type: str) -> Callable[[pa.Array, str], pa.Array] | None:
    if pa.types.is_integer(arrow_type) and pg_type in _INT_RANGES:
        return _integers
    if pa.types.is_floating(arrow_type) and pg_type in _FLOATS:
        return _floats
    if pa.types.is_timestamp(arrow_type) and pg_type in _TIMESTAMPS:
        return _timestamps
    if pa.types.is_boolean(arrow_type) and pg_type == "boolean":
        return _booleans
    if pa.types.is_string(arrow_type) and pg_type in _TEXTS:
        return _texts
    if pa.types.is_string(arrow_type) and pg_type == "jsonb":
        return _jsonb
    if pa.types.is_string(arrow_type) and pg_type == "uuid":
        return _uuids
    if pa.types.is_binary(arrow_type) and pg_type == "bytea":
        return _texts
    return None


def supported(arrow_types: Sequence[pa.DataType], pg_types: Sequence[str]) -> bool:
    """Whether every column has an encoder (else the caller sends the batch as CSV)."""
    return all(_encoder_for(a, p) is not None for a, p in zip(arrow_types, pg_types, strict=True))


def encode_rows(batch: pa.RecordBatch, pg_types: Sequence[str]) -> bytes:
    """The rows of ``batch`` (no header, no trailer) for ``COPY ... FROM STDIN (FORMAT binary)``.

    ``pg_types`` are the target columns' type names (:func:`pg_type_name`), in the batch's order.
    Raises ``ValueError`` for a value the column cannot hold (an integer out of range, a malformed
    UUID): the same rows as CSV would make the server refuse them too.
    """
    count = batch.num_rows
    if not count:
        return b""
    parts = [_fixed_width(np.full(count, batch.num_columns, dtype=">i2"), 2)]
    for name, array, pg_type in zip(batch.schema.names, batch.columns, pg_types, strict=True):
        encoder = _encoder_for(array.type, pg_type)
        if encoder is None:
            raise TypeError(f"column {name}: no binary COPY encoding of {array.type} as {pg_type}")
        try:
            values = encoder(array, pg_type)
        except ValueError as exc:
            raise ValueError(f"column {name}: {exc}") from exc
        lengths = np.diff(_offsets(values))
        if values.null_count:
            lengths[~_valid(values)] = -1
        parts += [_fixed_width(lengths.astype(">i4"), 4), values]
    rows = pc.binary_join_element_wise(*parts, _empty(count), null_handling="skip")
    offsets = _offsets(rows)
    return rows.buffers()[2][int(offsets[0]) : int(offsets[-1])].to_pybytes()


# -- Arrow <-> numpy through buffers: pa.scalar, fill_null(<Python value>) and to_numpy() would
# -- make pyarrow import pandas (~1 s and ~40 MB, see metadata/arrays.py) -----------------------------
def _offsets(array: pa.Array) -> np.ndarray:
    """The value offsets of a binary array (int32), as its own slice sees them."""
    start = array.offset
    return np.frombuffer(array.buffers()[1], dtype=np.int32)[start : start + len(array) + 1]


def _bits(buffer: pa.Buffer, offset: int, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[offset : offset + count].astype(bool)


def _valid(array: pa.Array) -> np.ndarray:
    """True where ``array`` holds a value."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    return _bits(array.buffers()[0], array.offset, len(array))


def _primitive(array: pa.Array, dtype: str) -> np.ndarray:
    """The values buffer of a fixed-width array as numpy (what NULL slots hold is never used)."""
    start = array.offset
    return np.frombuffer(array.buffers()[1], dtype=dtype)[start : start + len(array)]


def _fixed_width(values: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """A binary array of ``width``-byte values from a numpy array already in big-endian form."""
    count = len(values)
    data = np.ascontiguousarray(values).view(np.uint8)
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32)
    validity, nulls = None, 0
    if valid is not None and not valid.all():
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = int(count - valid.sum())
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.binary(), count, buffers, null_count=nulls)


def _empty(count: int) -> pa.Array:
    """``count`` empty binary values (the join's separator)."""
    offsets = np.zeros(count + 1, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(b"")])


# -- one column's values in their binary form (NULL stays NULL) ------------------------------------------
def _validity(array: pa.Array) -> np.ndarray | None:
    return _valid(array) if array.null_count else None


def _integers(array: pa.Array, pg_type: str) -> pa.Array:
    width, low, high = _INT_RANGES[pg_type]
    if len(array) > array.null_count:
        bounds = pc.min_max(array).as_py()
        if bounds["min"] < low or bounds["max"] > high:
            raise ValueError(f"value out of range for {pg_type} ({bounds['min']}..{bounds['max']})")
    values = _primitive(array.cast(pa.int64()), "<i8")
    return _fixed_width(values.astype(f">i{width}"), width, _validity(array))


def _floats(array: pa.Array, pg_type: str) -> pa.Array:
    values = _primitive(array.cast(pa.float64()), "<f8")
    dtype = _FLOATS[pg_type]
    return _fixed_width(values.astype(dtype), np.dtype(dtype).itemsize, _validity(array))


def _timestamps(array: pa.Array, _pg_type: str) -> pa.Array:
    """Microseconds since 2000-01-01 UTC; a ``timestamp without time zone`` gets the UTC wall
    time (what CSV's ``...Z`` text gave it: Airflow keeps naive times in UTC)."""
    if array.type.unit != "us":
        array = array.cast(pa.timestamp("us", tz=array.type.tz))
    micros = _primitive(array.cast(pa.int64()), "<i8") - _PG_EPOCH_US
    return _fixed_width(micros.astype(">i8"), 8, _validity(array))


def _booleans(array: pa.Array, _pg_type: str) -> pa.Array:
    values = _bits(array.buffers()[1], array.offset, len(array)).astype(np.uint8)
    return _fixed_width(values, 1, _validity(array))


def _texts(array: pa.Array, _pg_type: str) -> pa.Array:
    """Text, varchar, json and bytea send their bytes as they are (UTF-8 checked by the server)."""
    return array.cast(pa.binary())


def _jsonb(array: pa.Array, _pg_type: str) -> pa.Array:
    """jsonb's binary form is a version byte (1) and the JSON text."""
    version = _fixed_width(np.ones(len(array), dtype=np.uint8), 1)
    text = array.cast(pa.binary())
    return pc.binary_join_element_wise(version, text, _empty(len(array)), null_handling="emit_null")


_HEX = np.full(256, 255, dtype=np.uint8)
for _digit, _char in enumerate(b"0123456789abcdef"):
    _HEX[_char] = _digit
    _HEX[bytes([_char]).upper()[0]] = _digit


def _uuids(array: pa.Array, _pg_type: str) -> pa.Array:
    """The 16 bytes of each UUID from its text (dashed or not, either case)."""
    digits = pc.replace_substring(array, "-", "").cast(pa.binary())
    valid = _valid(digits)
    offsets = _offsets(digits)
    starts, lengths = offsets[:-1][valid], np.diff(offsets)[valid]
    if (lengths != 32).any():
        raise ValueError("malformed UUID text")
    data = np.frombuffer(digits.buffers()[2], dtype=np.uint8) if len(starts) else np.zeros(0, np.uint8)
    nibbles = _HEX[data[starts[:, None] + np.arange(32)]] if len(starts) else np.zeros((0, 32), np.uint8)
    if (nibbles == 255).any():
        raise ValueError("malformed UUID text")
    packed = np.zeros((len(array), 16), dtype=np.uint8)
    packed[valid] = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return _fixed_width(packed, 16, _validity(array))
