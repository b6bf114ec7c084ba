"""Offline maps, sensitive locations and large months, in real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from hwc_risk.export.webmap import write_map
from hwc_risk.grid import GridSpec
from hwc_risk.surfaces import classify
from tests.conftest import SAMPLE, class_file, run_cli

FIND_MAP = """() => {
  for (const key of Object.keys(window)) {
    if (key.startsWith('map_') && window[key] instanceof L.Map) return key;
  }
  return null;
}"""

COUNT_MARKERS = """(name) => {
  const map = window[name];
  let n = 0;
  map.eachLayer(l => { if (l.getLayers && l._featureGroup) n += l.getLayers().length; });
  return n;
}"""

GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 660_000, 0, -100, 9_760_000), 300, 250)


def synthetic_month(n: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    surface = rng.uniform(size=GRID.shape).astype(np.float32)
    classes, _ = classify(surface, np.ones(GRID.shape, bool))
    west, north = 34.54, -2.17
    frame = pd.DataFrame(
        {
            "date": pd.Timestamp("2026-10-01") + pd.to_timedelta(rng.integers(0, 30, n), "D"),
            "lon": west + rng.uniform(0, 0.25, n),
            "lat": north - rng.uniform(0, 0.2, n),
            "species": rng.choice(["elephant", "lion", "hyena"], n),
            "type": "crop raiding",
            "id": [f"R{i:06d}" for i in range(n)],
            "description": ["Maize field raided at night, fence broken"] * n,
        }
    )
    return classes, frame


@pytest.mark.slow  # a run of its own, with --offline
def test_offline_sample_map_makes_no_request(open_map: Any, tmp_path: Path) -> None:
    proc = run_cli("run", SAMPLE, "--offline", "--output-dir", tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    page_path = Path(proc.stdout.strip()) / "map.html"
    source = page_path.read_text()
    assert not re.search(r"<(script|link|img)[^>]*(src|href)=\"https?://", source)
    opened = open_map(page_path, network=False)
    page = opened.page
    page.wait_for_selector(".leaflet-image-layer")
    page.wait_for_timeout(500)
    assert opened.refused == []  # not a single request left the page
    assert opened.page_errors == [] and opened.console_errors == []
    assert page.evaluate(FIND_MAP) is not None
    assert page.locator(".leaflet-tile").count() == 0  # no basemap
    legend = page.locator("#hwc-legend").inner_text()
    assert "very high" in legend and "Offline map" in legend
    assert page.locator(".leaflet-control-layers").count() == 1
    assert (
        page.locator(".leaflet-control-zoom-fullscreen, .leaflet-control-fullscreen").count() >= 1
    )
    assert page.locator(".leaflet-control-scale").count() == 1
    assert page.locator("path.leaflet-interactive").count() > 0  # hotspot outlines
    # the scenarios' layers (images and shapes inside the page) fetch nothing either
    for label in ("planned-road: change in risk", "planned-road: plan and changes"):
        page.locator(".leaflet-control-layers-overlays label", has_text=label).locator(
            "input"
        ).click()
    page.wait_for_timeout(500)
    assert page.locator("img.leaflet-image-layer").count() == 2
    assert opened.refused == [] and opened.page_errors == []
    shot = opened.screenshot("map-sample-district-offline.png")
    assert shot.stat().st_size > 10_000
    _check_forecast_chart(page, page_path.parent / "metrics.json")


# heights of the chart's bars and of the forecast box, in SVG units
CHART_HEIGHTS = """() => {
  const svg = document.querySelector('#hwc-forecast svg');
  const bars = [...svg.querySelectorAll('rect.month')].map(r => r.getBBox().height);
  const box = svg.querySelector('rect.forecast').getBBox().height;
  const whisker = svg.querySelector('line.interval');
  return {bars, box, visible: svg.getBoundingClientRect().height > 50,
          whisker: whisker.y1.baseVal.value - whisker.y2.baseVal.value};
}"""


def _check_forecast_chart(page: Any, metrics_path: Path) -> None:
    """The chart of incidents per month is drawn offline, and the forecast box stands as
    high as the expected total on the months' scale; the forecast layer switches on."""
    import json

    forecast = json.loads(metrics_path.read_text())["forecast"]
    counts = forecast["monthly_counts"]["counts"][-24:]
    month = forecast["months"][0]
    drawn = page.evaluate(CHART_HEIGHTS)
    assert drawn["visible"] and len(drawn["bars"]) == len(counts)
    k = max(range(len(counts)), key=lambda i: counts[i])
    per_incident = drawn["bars"][k] / counts[k]
    assert drawn["box"] == pytest.approx(month["expected"] * per_incident, abs=0.2)
    assert drawn["whisker"] == pytest.approx(
        (month["upper"] - month["lower"]) * per_incident, abs=0.2
    )
    layer = page.locator(".leaflet-control-layers label", has_text="Expected incidents")
    assert layer.count() == 1
    shown = page.locator("img.leaflet-image-layer").count()
    layer.locator("input").check()
    page.wait_for_timeout(300)
    assert page.locator("img.leaflet-image-layer").count() == shown + 1


def test_ten_thousand_incidents_stay_light(open_map: Any, tmp_path: Path) -> None:
    classes, frame = synthetic_month(10_000)
    path = write_map(
        tmp_path / "big.html",
        title="Big month",
        grid=GRID,
        classes=class_file(classes, GRID, tmp_path),
        incidents=frame,
        month="2026-10",
        offline=True,
    )
    size_mb = path.stat().st_size / 1e6
    assert size_mb < 3.0, size_mb  # ~150 bytes per incident, not a script block each
    opened = open_map(path, network=False)
    page = opened.page
    page.wait_for_selector(".marker-cluster", timeout=30_000)
    assert opened.page_errors == []
    name = page.evaluate(FIND_MAP)
    assert page.evaluate(COUNT_MARKERS, name) == 10_000
    assert page.locator(".marker-cluster").count() < 500  # clustered, not 10 000 markers
    opened.screenshot("map-10000-incidents.png")


def test_generalised_locations_never_reach_the_page(open_map: Any, tmp_path: Path) -> None:
    classes, frame = synthetic_month(50, seed=3)
    frame["lon"] = frame["lon"].round(6)
    frame["lat"] = frame["lat"].round(6)
    path = write_map(
        tmp_path / "sensitive.html",
        title="Sensitive",
        grid=GRID,
        classes=class_file(classes, GRID, tmp_path),
        incidents=frame,
        month="2026-10",
        generalise=0.01,
        offline=True,
    )
    source = path.read_text()
    for lon, lat in zip(frame["lon"], frame["lat"], strict=True):
        assert f"{lon:.6f}".rstrip("0") not in source
        assert f"{lat:.6f}".rstrip("0") not in source
    coords = re.findall(r"\[(-?\d+\.\d+), (-?\d+\.\d+), \"2026", source)
    assert len(coords) == 50
    for lat_s, lon_s in coords:
        # snapped to the centres of a 0.01 degree grid
        assert abs(abs(float(lat_s)) * 100 % 1 - 0.5) < 1e-6
        assert abs(abs(float(lon_s)) * 100 % 1 - 0.5) < 1e-6
    opened = open_map(path, network=False)
    legend = opened.page.locator("#hwc-legend").inner_text()
    assert "generalised to a 0.01° grid" in legend
    # the risk classes switched off take their key away, not what the page says of the
    # incidents' places (nor that it is offline)
    opened.page.get_by_role("checkbox", name="Risk class", exact=True).click()
    opened.page.wait_for_timeout(150)
    assert opened.page.locator("#hwc-legend-classes").is_hidden()
    legend = opened.page.locator("#hwc-legend").inner_text()
    assert "very high" not in legend
    assert "generalised to a 0.01° grid" in legend and "Offline map" in legend
