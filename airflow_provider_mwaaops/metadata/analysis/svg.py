"""Charts as inline SVG strings: the report must open from a mail attachment or an S3 download,
offline, so there is no JavaScript, no CDN and no image file beside the HTML.

Hover details use SVG ``<title>`` elements, which every browser shows as a native tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 24
MARGIN_BOTTOM = 36
GRID_LINES = 4

COLOR_SUCCESS = "#2e7d32"
COLOR_FAILED = "#c62828"
COLOR_OTHER = "#9e9e9e"
COLOR_DURATION = "#1565c0"
COLOR_RANGE = "#90caf9"
COLOR_ACCENT = "#ef6c00"


@dataclass(frozen=True)
class StackedBar:
    """One bar: a label under it and its segments (value, colour, legend name) from the bottom up."""

    label: str
    segments: Sequence[tuple[float, str, str]]


@dataclass(frozen=True)
class RangePoint:
    """One x position of a range chart: a low-high whisker with a marked middle value."""

    label: str
    low: float | None
    middle: float | None
    high: float | None


def _nice_max(value: float) -> float:
    """Round an axis maximum up to 1, 2, 2.5 or 5 times a power of ten so gridlines read well."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<text x="{MARGIN_LEFT}" y="14" class="chart-title">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _y_axis(axis_max: float, plot_height: float, fmt: Callable[[float], str]) -> list[str]:
    parts = []
    for i in range(GRID_LINES + 1):
        value = axis_max * i / GRID_LINES
        y = MARGIN_TOP + plot_height - plot_height * i / GRID_LINES
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(fmt(value))}</text>"
        )
    return parts


def _x_labels(labels: Sequence[str], centers: Sequence[float], plot_bottom: float) -> list[str]:
    # Thin the labels out when there are many months so they never overlap.
    every = max(1, math.ceil(len(labels) / 12))
    return [
        f'<text x="{x:.1f}" y="{plot_bottom + 16:.1f}" text-anchor="middle" class="tick">'
        f"{escape(label)}</text>"
        for i, (label, x) in enumerate(zip(labels, centers, strict=True))
        if i % every == 0 or i == len(labels) - 1
    ]


def stacked_bar_chart(title: str, bars: Sequence[StackedBar], fmt: Callable[[float], str] = str) -> str:
    """Vertical stacked bars, one per label (runs per month split by outcome)."""
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    # Counts: at least one unit per gridline, so the axis never shows a fraction of a run.
    axis_max = max(
        _nice_max(max((sum(v for v, _, _ in bar.segments) for bar in bars), default=0)), GRID_LINES
    )
    slot = plot_width / max(len(bars), 1)
    bar_width = max(2.0, min(48.0, slot * 0.7))
    body = _y_axis(axis_max, plot_height, lambda v: f"{v:g}")
    centers = []
    bottom = MARGIN_TOP + plot_height
    for i, bar in enumerate(bars):
        x_center = MARGIN_LEFT + slot * (i + 0.5)
        centers.append(x_center)
        y: float = bottom
        for value, color, name in bar.segments:
            if value <= 0:
                continue
            height = plot_height * value / axis_max
            y -= height
            body.append(
                f'<rect x="{x_center - bar_width / 2:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
                f'height="{height:.1f}" fill="{color}"><title>{escape(bar.label)}: {escape(fmt(value))} '
                f"{escape(name)}</title></rect>"
            )
    body += _x_labels([bar.label for bar in bars], centers, bottom)
    body.append(_legend({name: color for bar in bars for _, color, name in bar.segments}))
    return _svg(WIDTH, HEIGHT, title, body)


def range_chart(title: str, points: Sequence[RangePoint], fmt: Callable[[float], str]) -> str:
    """Min-max whiskers with the average marked and joined by a line (durations per month)."""
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    values = [v for p in points for v in (p.low, p.middle, p.high) if v is not None]
    axis_max = _nice_max(max(values, default=0))
    slot = plot_width / max(len(points), 1)
    bottom = MARGIN_TOP + plot_height
    body = _y_axis(axis_max, plot_height, fmt)

    def y_of(value: float) -> float:
        return bottom - plot_height * value / axis_max

    centers, line = [], []
    for i, point in enumerate(points):
        x = MARGIN_LEFT + slot * (i + 0.5)
        centers.append(x)
        tip = (
            f"{point.label}: min {fmt(point.low or 0)}, avg {fmt(point.middle or 0)}, "
            f"max {fmt(point.high or 0)}"
            if point.middle is not None
            else f"{point.label}: no finished run"
        )
        if point.low is not None and point.high is not None:
            body.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_of(point.low):.1f}" y2="{y_of(point.high):.1f}" '
                f'stroke="{COLOR_RANGE}" stroke-width="6" stroke-linecap="round">'
                f"<title>{escape(tip)}</title></line>"
            )
        if point.middle is not None:
            line.append(f"{x:.1f},{y_of(point.middle):.1f}")
            body.append(
                f'<circle cx="{x:.1f}" cy="{y_of(point.middle):.1f}" r="3.5" fill="{COLOR_DURATION}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    if len(line) > 1:
        body.append(
            f'<polyline points="{" ".join(line)}" fill="none" stroke="{COLOR_DURATION}" stroke-width="1.5"/>'
        )
    body += _x_labels([p.label for p in points], centers, bottom)
    body.append(_legend({"min-max": COLOR_RANGE, "average": COLOR_DURATION}))
    return _svg(WIDTH, HEIGHT, title, body)


def horizontal_bar_chart(
    title: str,
    items: Sequence[tuple[str, float, float | None]],
    fmt: Callable[[float], str],
    value_name: str,
    marker_name: str | None = None,
) -> str:
    """One bar per item (label, value) with an optional marker (such as p95) drawn across it."""
    row_height = 22
    label_width = 260
    height = MARGIN_TOP + row_height * max(len(items), 1) + 28
    plot_width = WIDTH - label_width - MARGIN_RIGHT - 60
    axis_max = _nice_max(max((max(v, m or 0) for _, v, m in items), default=0))
    body = []
    for i, (label, value, marker) in enumerate(items):
        y = MARGIN_TOP + row_height * i
        width = plot_width * value / axis_max
        short = label if len(label) <= 40 else label[:39] + "…"
        tip = f"{label}: {value_name} {fmt(value)}" + (
            f", {marker_name} {fmt(marker)}" if marker is not None and marker_name else ""
        )
        body.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" class="tick">{escape(short)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{max(width, 1):.1f}" height="{row_height - 8}" '
            f'fill="{COLOR_DURATION}"><title>{escape(tip)}</title></rect>'
            f'<text x="{label_width + max(width, 1) + 4:.1f}" y="{y + 15}" class="tick">'
            f"{escape(fmt(value))}</text>"
        )
        if marker is not None:
            mx = label_width + plot_width * marker / axis_max
            body.append(
                f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y + 2}" y2="{y + row_height - 2}" '
                f'stroke="{COLOR_ACCENT}" stroke-width="2"><title>{escape(tip)}</title></line>'
            )
    legend = {value_name: COLOR_DURATION}
    if marker_name:
        legend[marker_name] = COLOR_ACCENT
    body.append(_legend(legend, y=height - 8))
    return _svg(WIDTH, height, title, body)


def _legend(entries: dict[str, str], y: float = HEIGHT - 6) -> str:
    parts, x = [], float(MARGIN_LEFT)
    for name, color in entries.items():
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14:.1f}" y="{y:.1f}" class="tick">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return '<g class="legend">' + "".join(parts) + "</g>"
