"""Plain-text tables for a terminal or a task log: no dependency, stable column widths."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any


def format_seconds(value: float | None) -> str:
    """Durations as people read them: ``850ms``, ``42.0s``, ``12m05s``, ``3h20m``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_ratio(value: float | None, signed: bool = False) -> str:
    """A fraction as a percentage; ``signed`` for changes (``+12.5%``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, date):
        return value.strftime("%Y-%m")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
    """Columns padded to their widest cell; ``numeric`` columns are right-aligned."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    right = list(numeric) + [False] * (len(headers) - len(numeric))

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if is_right else cell.ljust(width)
            for cell, width, is_right in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
