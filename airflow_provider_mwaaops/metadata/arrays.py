"""Arrow arrays from Python values without ``pa.array``/``pa.scalar``.

Converting a Python list or value makes pyarrow import pandas (about 40 MB and up to a second of
start-up) just to ask whether it is a pandas object. The export's hot path builds its few Python
-made arrays here instead, so an export never loads pandas (``tests/metadata/test_export.py``
checks it in a fresh process).
"""

from __future__ import annotations

import array

import pyarrow as pa


def variable_width_array(values: list[str] | list[bytes], out_type: pa.DataType) -> pa.Array:
    """Non-null ``str``/``bytes`` values as a ``string``/``binary`` array, built from buffers."""
    data = [v.encode() if isinstance(v, str) else v for v in values]
    offsets = array.array("i", [0])
    for item in data:
        offsets.append(offsets[-1] + len(item))
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(out_type, len(data), buffers)


def string_array(values: list[str | None]) -> pa.Array:
    """``str`` values and nulls as a ``string`` array, built from buffers (no pandas import)."""
    data = b"".join(b"" if v is None else v.encode() for v in values)
    offsets = array.array("i", [0])
    bits = bytearray((len(values) + 7) // 8)
    nulls = 0
    end = 0
    for i, value in enumerate(values):
        if value is None:
            nulls += 1
        else:
            bits[i >> 3] |= 1 << (i & 7)
            end += len(value.encode())
        offsets.append(end)
    validity = pa.py_buffer(bytes(bits)) if nulls else None
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(values), buffers, null_count=nulls)


def int_array(values: list[int | None]) -> pa.Array:
    """``int`` values and nulls as an ``int64`` array, built from buffers (no pandas import)."""
    data = array.array("q", [0 if v is None else v for v in values])
    bits = bytearray((len(values) + 7) // 8)
    nulls = 0
    for i, value in enumerate(values):
        if value is None:
            nulls += 1
        else:
            bits[i >> 3] |= 1 << (i & 7)
    validity = pa.py_buffer(bytes(bits)) if nulls else None
    return pa.Array.from_buffers(pa.int64(), len(values), [validity, pa.py_buffer(data)], null_count=nulls)
