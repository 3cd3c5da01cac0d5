"""Geometry for the overview's small bar charts, drawn as inline SVG by a template.

The server works out every coordinate, so the page needs no script and the
chart reads the same with styles off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 480
HEIGHT = 160
LABELS = 20  # room under the bars for the week labels
TOP = 14  # room above the tallest bar for its value


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]


def bars(labels: Sequence[str], values: Sequence[float | None], decimals: int = 0) -> Chart:
    """One bar per label; a missing value (None) gets no bar and an empty label."""
    slot = WIDTH / max(1, len(values))
    top = max((v for v in values if v is not None), default=0) or 1
    room = HEIGHT - LABELS - TOP
    baseline = HEIGHT - LABELS
    drawn = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = 0.0 if value is None else room * value / top
        shown = "" if value is None else f"{value:.{decimals}f}"
        drawn.append(Bar(x=round(i * slot + slot * 0.15, 1), y=round(baseline - height, 1),
                         width=round(slot * 0.7, 1), height=round(height, 1),
                         label=label, value=shown))
    return Chart(WIDTH, HEIGHT, baseline, tuple(drawn))
