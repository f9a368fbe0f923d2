"""Bar charts as SVG text, for the notebooks and the reports built from them.

A run draws about a dozen small charts: matplotlib spent about a sixth of a warm run on the real extracts laying
them out and rasterising them, where writing the same bars, axes and labels as SVG takes milliseconds. SVG also
stays sharp when a report is zoomed, and halves the size of a report full of charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

BAR_COLOUR = "#4C72B0"
LINE_COLOUR = "#DD8452"
WIDTH, HEIGHT = 900, 360
FONT_SIZE = 12
# the plot area's margins, in pixels: room for tick labels and axis titles
LEFT, RIGHT_WITH_LINE, RIGHT, TOP = 80, 80, 24, 36
BOTTOM, BOTTOM_ROTATED = 56, 100
# x labels turn 45 degrees past this many bars, as they would overlap
ROTATE_AFTER = 8


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` evenly spaced ticks from a multiple of the step at or below `low` to one at or above `high`,
    the step 1, 2 or 5 times a power of ten, so an axis reads 0, 20, 40 rather than 0, 17.4, 34.8."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low, low + 1] if math.isfinite(low) else [0.0, 1.0]
    raw_step = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick's value with thousands separators and as many decimals as the step needs."""
    step = ticks[1] - ticks[0]  # nice_ticks gives at least two, increasing
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"


def bar_chart(
    labels: Sequence[Any],
    values: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    secondary: Sequence[float | None] | None = None,
    secondary_label: str = "",
) -> str:
    """One bar per label, with `secondary` (None: no value) as a line on a second axis from 0 when given."""
    rotated = len(labels) > ROTATE_AFTER
    left, right = LEFT, WIDTH - (RIGHT_WITH_LINE if secondary is not None else RIGHT)
    top, bottom = TOP, HEIGHT - (BOTTOM_ROTATED if rotated else BOTTOM)
    ticks = nice_ticks(min([0.0, *values]), max([0.0, *values]))  # bars stand on 0; no bars: an axis of 0 to 1

    slot = (right - left) / max(len(labels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' font-family="DejaVu Sans, sans-serif" font-size="{FONT_SIZE}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        _text(WIDTH / 2, TOP / 2 + 4, title, anchor="middle", size=FONT_SIZE + 2),
    ]
    for tick in ticks:
        y = _y(tick, ticks, top, bottom)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(_text(left - 6, y + 4, tick_label(tick, ticks), anchor="end"))
    baseline = _y(0.0, ticks, top, bottom)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + index * slot
        y = _y(value, ticks, top, bottom)
        parts.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{min(y, baseline):.1f}" width="{slot * 0.8:.1f}"'
            f' height="{abs(baseline - y):.1f}" fill="{BAR_COLOUR}"/>'
        )
        centre = x + slot / 2
        if rotated:
            parts.append(_text(centre, bottom + 14, str(label), anchor="end", rotate=(-45, centre, bottom + 14)))
        else:
            parts.append(_text(centre, bottom + 16, str(label), anchor="middle"))
    frame = f'x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"'
    parts.append(f'<rect {frame} fill="none" stroke="#333"/>')
    parts.append(_text(left + (right - left) / 2, HEIGHT - 8, xlabel, anchor="middle"))
    parts.append(_text(16, (top + bottom) / 2, ylabel, anchor="middle", rotate=(-90, 16, (top + bottom) / 2)))
    if secondary is not None:
        parts.extend(_line(secondary, left, slot, right, top, bottom))
        parts.append(
            _text(WIDTH - 14, (top + bottom) / 2, secondary_label, anchor="middle",
                  rotate=(90, WIDTH - 14, (top + bottom) / 2))
        )  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def _y(value: float, ticks: Sequence[float], top: float, bottom: float) -> float:
    """Where `value` falls between the plot's `bottom` (the first tick) and its `top` (the last)."""
    return bottom - (value - ticks[0]) / (ticks[-1] - ticks[0]) * (bottom - top)


def _line(
    values: Sequence[float | None], left: float, slot: float, right: float, top: float, bottom: float
) -> list[str]:
    """The secondary series: its axis on the right from 0, a polyline through each run of known values (an unknown
    value breaks the line) and a marker on every known one."""
    known = [value for value in values if value is not None]
    ticks = nice_ticks(0.0, max([0.0, *known]))
    parts = []
    for tick in ticks:
        parts.append(_text(right + 6, _y(tick, ticks, top, bottom) + 4, tick_label(tick, ticks), anchor="start"))
    runs: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        x, y = left + (index + 0.5) * slot, _y(value, ticks, top, bottom)
        runs[-1].append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE_COLOUR}"/>')
    for points in runs:
        if len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2"/>')
    return parts


def _text(
    x: float,
    y: float,
    content: str,
    anchor: str,
    size: int = FONT_SIZE,
    rotate: tuple[float, float, float] | None = None,
) -> str:
    """A text element; `rotate` is (degrees, centre x, centre y)."""
    transform = f' transform="rotate({rotate[0]} {rotate[1]:.1f} {rotate[2]:.1f})"' if rotate else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor={quoteattr(anchor)} font-size="{size}"{transform}>'
        f"{escape(content)}</text>"
    )
