"""The monthly chart: bars scaled to the counts, the forecast interval where it belongs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hwc_risk.export.chart import monthly_chart_svg
from hwc_risk.forecast import Interval
from hwc_risk.temporal import as_month, month_range

NS = "{http://www.w3.org/2000/svg}"


def test_bars_and_forecast_whisker() -> None:
    months = month_range(as_month("2025-11"), as_month("2026-10"))
    counts = [5, 10, 20, 40, 30, 25, 12, 8, 6, 4, 7, 9]
    iv = Interval(expected=11.5, lower=6, upper=18, level=0.8)
    svg = monthly_chart_svg(months, counts, [(as_month("2026-11"), iv)], title="Incidents <&>")
    root = ET.fromstring(svg)  # well-formed, labels escaped
    assert root.find(f"{NS}title").text == "Incidents <&>"
    assert "<script" not in svg
    bars = [r for r in root.iter(f"{NS}rect") if r.get("class") == "month"]
    assert len(bars) == 12
    heights = [float(b.get("height")) for b in bars]
    base = float(bars[0].get("y")) + heights[0]
    # heights proportional to the counts, on one baseline
    assert all(abs(h / heights[3] - c / 40) < 0.01 for h, c in zip(heights, counts, strict=True))
    assert all(abs(float(b.get("y")) + h - base) < 0.2 for b, h in zip(bars, heights, strict=True))
    (box,) = [r for r in root.iter(f"{NS}rect") if r.get("class") == "forecast"]
    assert abs(float(box.get("height")) / heights[3] - 11.5 / 40) < 0.01
    (line,) = [w for w in root.iter(f"{NS}line") if w.get("class") == "interval"]
    span = float(line.get("y1")) - float(line.get("y2"))
    assert abs(span / heights[3] - (18 - 6) / 40) < 0.01
    assert "2026-11: 12 expected, 6-18 (80% interval)" in svg
    assert "Nov 26" in svg  # the forecast month's label
