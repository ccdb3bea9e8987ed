"""Charts drawn on the server as SVG, and the filters the console's templates format with.

A chart is an ``<svg role="img">`` whose label says what it shows; each bar carries a
``<title>`` with its exact figure (a browser's tooltip, a screen reader's text), and the
templates put the same figures in a table next to it for those who would rather read. No
script and no style attribute: the Content-Security-Policy allows neither inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 180
_TOP, _BOTTOM, _LEFT = 16, 40, 44


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above ``value`` (an axis' top)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def _figure(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def bar_chart(bars: Sequence[tuple[str, float]], *, label: str, unit: str = "",
              every: int = 1) -> Markup:
    """A bar per ``(name, value)``, left to right, on an axis from 0; ``label`` names the chart
    for assistive technology; every ``every``-th bar's name is written below the axis."""
    top = _nice_ceiling(max((v for _, v in bars), default=0))
    plot_w, plot_h = WIDTH - _LEFT - 8, HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(len(bars), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for fraction in (0.0, 0.5, 1.0):
        y = _TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_figure(top * fraction)}</text>')
    for index, (name, value) in enumerate(bars):
        height = plot_h * value / top
        x = _LEFT + index * slot + slot * 0.1
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{_TOP + plot_h - height:.1f}" '
                     f'width="{slot * 0.8:.1f}" height="{height:.1f}"><title>{escape(name)}: '
                     f"{_figure(value)}{escape(unit)}</title></rect>")
        if index % every == 0:
            parts.append(f'<text class="axis" x="{x + slot * 0.4:.1f}" '
                         f'y="{HEIGHT - _BOTTOM + 16}" text-anchor="middle">'
                         f"{escape(name)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above is escaped)


def row_chart(bars: Sequence[tuple[str, float]], *, label: str, unit: str = "") -> Markup:
    """A horizontal bar per ``(name, value)``, top to bottom, its name on the left and its
    figure at its end: for categories whose names are too long to stand under a column."""
    top = max((v for _, v in bars), default=0) or 1
    name_w, row_h, room = 190, 24, WIDTH - 190 - 48
    height = row_h * len(bars) + 8
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for index, (name, value) in enumerate(bars):
        y = 4 + index * row_h
        width = room * value / top
        parts.append(f'<text class="axis" x="{name_w - 8}" y="{y + 16}" text-anchor="end">'
                     f"{escape(name)}</text>"
                     f'<rect class="bar" x="{name_w}" y="{y + 4}" width="{width:.1f}" '
                     f'height="{row_h - 8}"><title>{escape(name)}: {_figure(value)}'
                     f"{escape(unit)}</title></rect>"
                     f'<text class="axis" x="{name_w + width + 6:.1f}" y="{y + 16}">'
                     f"{_figure(value)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above is escaped)


def when(moment: datetime | None) -> str:
    """``2026-12-01 12:05:09 UTC``; an empty string for None."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | timedelta | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``-1 min 10 s`` (past); empty for None."""
    if seconds is None:
        return ""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{sign}{minutes} min {rest:02d} s"
