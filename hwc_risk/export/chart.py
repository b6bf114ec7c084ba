"""A small chart of incidents per month with the forecast and its interval, as inline SVG.

Pure text: no script, no external file, so it works in an offline map and in
any report. Bars are the months' incident counts; each forecast month is a
hollow bar at its expected total with a whisker over its prediction interval.
Every label is escaped.

Example
-------
>>> from hwc_risk.forecast import Interval
>>> svg = monthly_chart_svg(
...     as_months(["2026-08", "2026-09", "2026-10"]), [12, 18, 9],
...     [(as_month("2026-11"), Interval(expected=14.2, lower=8, upper=21, level=0.8))])
>>> svg.startswith("<svg") and "<script" not in svg
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

from ..forecast import Interval
from ..temporal.months import as_month, as_months, calendar_month, month_label

__all__ = ["monthly_chart_svg"]

_ABBR = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
BAR = "#4a78a8"
FORECAST = "#d7191c"


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 10 ** np.floor(np.log10(value))
    for k in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if k * step >= value:
            return float(k * step)
    return float(10 * step)


def _label(month: np.datetime64) -> str:
    return f"{_ABBR[int(calendar_month(month)) - 1]} {month_label(month)[2:4]}"


def monthly_chart_svg(
    months: Sequence[np.datetime64] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    forecast: Sequence[tuple[np.datetime64, Interval]] = (),
    width: int = 560,
    height: int = 180,
    title: str = "Incidents per month",
) -> str:
    """The chart as an ``<svg>`` element (``role="img"`` with a ``<title>``)."""
    months = as_months(months)
    counts = np.asarray(counts, dtype=float)
    n = months.size + len(forecast)
    top = _nice_top(max([*counts, *(iv.upper for _, iv in forecast), 1.0]))
    left, right, upper, lower = 34, 8, 22, 26
    plot_w, plot_h = width - left - right, height - upper - lower
    slot = plot_w / max(n, 1)

    def y(v: float) -> float:
        return upper + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="14" font-size="12">{escape(title)}</text>',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#555"/>',
    ]
    for tick in (0.0, top / 2, top):
        parts.append(
            f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" text-anchor="end">{tick:g}</text>'
        )
    every = max(1, int(np.ceil(n / 12)))
    for i, (m, c) in enumerate(zip(months, counts, strict=True)):
        x = left + i * slot
        parts.append(
            f'<rect class="month" x="{x + 0.1 * slot:.1f}" y="{y(c):.1f}" '
            f'width="{0.8 * slot:.1f}" height="{y(0) - y(c):.1f}" fill="{BAR}">'
            f"<title>{escape(month_label(m))}: {c:g}</title></rect>"
        )
        if i % every == 0:
            parts.append(_tick_label(x + slot / 2, height - 8, m))
    for j, (m, iv) in enumerate(forecast):
        i = months.size + j
        cx = left + (i + 0.5) * slot
        m = as_month(m)
        text = escape(f"{month_label(m)}: {iv.describe()} ({iv.level:.0%} interval)")
        parts += [
            f'<rect class="forecast" x="{cx - 0.4 * slot:.1f}" y="{y(iv.expected):.1f}" '
            f'width="{0.8 * slot:.1f}" height="{y(0) - y(iv.expected):.1f}" fill="none" '
            f'stroke="{FORECAST}" stroke-dasharray="3 2"><title>{text}</title></rect>',
            f'<line class="interval" x1="{cx:.1f}" y1="{y(iv.lower):.1f}" x2="{cx:.1f}" '
            f'y2="{y(iv.upper):.1f}" stroke="{FORECAST}" stroke-width="2"/>',
        ]
        parts.append(_tick_label(cx, height - 8, m, colour=FORECAST))
    parts.append("</svg>")
    return "".join(parts)


def _tick_label(x: float, y: float, month: np.datetime64, colour: str = "#333") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{colour}">'
        f"{escape(_label(month))}</text>"
    )
