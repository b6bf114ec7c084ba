"""The planners' map in real headless Chromium."""

from __future__ import annotations

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
from tests.conftest import class_file

# browser: every test in tests/browser/ (tests/conftest.py marks them)
GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 660_000, 0, -100, 9_760_000), 200, 150)

XSS = "<img src=x onerror=alert(1)>"
# break out of the JavaScript template literal folium wraps popups in
JS_BREAKOUTS = ["${alert(2)}", "`);alert(3);(`", "</script><script>alert(4)</script>", "\\`"]

FIND_MAP = """() => {
  for (const key of Object.keys(window)) {
    if (key.startsWith('map_') && window[key] instanceof L.Map) return key;
  }
  return null;
}"""


@pytest.fixture(scope="module")
def xss_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A map whose title and incident reports carry an HTML/JS payload.

    Made by the map writer itself (as a run calls it) from a risk-class raster and
    incidents with hostile text: escaping is the writer's job, no run is needed.
    """
    folder = tmp_path_factory.mktemp("xss")
    rng = np.random.default_rng(7)
    surface = rng.uniform(size=GRID.shape).astype(np.float32)
    classes, _ = classify(surface, np.ones(GRID.shape, bool))
    n = 40
    incidents = pd.DataFrame(
        {
            "date": pd.Timestamp("2026-09-20") + pd.to_timedelta(rng.integers(0, 25, n), "D"),
            "lon": 34.45 + rng.uniform(0, 0.15, n),
            "lat": -2.18 - rng.uniform(0, 0.12, n),
            "species": "<b>wolf</b>",
            "id": [f"X{i}" for i in range(n)],
            "description": f"Goats taken {XSS} & more " + " ".join(JS_BREAKOUTS),
        }
    )
    return write_map(
        folder / "map.html",
        title=f"Human-wildlife conflict risk: xss {XSS}, 2026-10",
        grid=GRID,
        classes=class_file(classes, GRID, folder),
        incidents=incidents,
        month="2026-10",
    )


OVERLAY_GAP = """(name) => {
  const map = window[name];
  let layer = null;
  map.eachLayer(l => { if (l instanceof L.ImageOverlay) layer = l; });
  const b = layer.getBounds();
  const nw = map.latLngToContainerPoint(b.getNorthWest());
  const se = map.latLngToContainerPoint(b.getSouthEast());
  const img = document.querySelector('img.leaflet-image-layer').getBoundingClientRect();
  const box = map.getContainer().getBoundingClientRect();
  return Math.max(Math.abs(img.left - box.left - nw.x), Math.abs(img.top - box.top - nw.y),
                  Math.abs(img.right - box.left - se.x), Math.abs(img.bottom - box.top - se.y));
}"""


def _unexpected(errors: list[str]) -> list[str]:
    # requests we refuse on purpose (offline test machine) log "Failed to load resource"
    return [e for e in errors if "Failed to load resource" not in e]


def test_map_initialises_with_risk_layer_and_legend(open_map: Any, xss_map: Path) -> None:
    opened = open_map(xss_map)
    page = opened.page
    page.wait_for_selector(".leaflet-image-layer")
    assert opened.page_errors == []
    assert _unexpected(opened.console_errors) == []
    assert any(u.endswith("/leaflet.js") for u in opened.served)
    name = page.evaluate(FIND_MAP)
    assert name is not None
    overlay = page.locator("img.leaflet-image-layer")
    assert overlay.count() == 1
    assert overlay.get_attribute("src").startswith("data:image/png;base64,")
    legend = page.locator("#hwc-legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for label in ("very high", "high", "moderate", "low"):
        assert label in text
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator(".leaflet-control-scale").count() == 1
    # the overlay sits exactly on its geographic bounds at this zoom (measured once the
    # initial fit-bounds zoom animation has settled)
    gap = settled_gap(page, name)
    assert gap < 1.5, gap
    shot = opened.screenshot("map-small-area.png")
    assert shot.stat().st_size > 10_000


def settled_gap(page: Any, name: str) -> float:
    """The overlay's gap to its geographic bounds (:data:`OVERLAY_GAP`), measured once the
    map's zoom animation has settled (two readings in a row agree)."""
    gap = None
    for _ in range(20):
        page.wait_for_timeout(250)
        if page.evaluate("(name) => window[name]._animatingZoom === true", name):
            continue
        now = page.evaluate(OVERLAY_GAP, name)
        if gap is not None and abs(now - gap) < 0.01:
            break
        gap = now
    assert gap is not None
    return float(gap)


def _toggle(page: Any, label: str) -> None:
    """Tick or untick the layer whose label starts with ``label``."""
    overlays = page.locator(".leaflet-control-layers-overlays label")
    overlays.filter(has_text=label).locator("input").click()
    page.wait_for_timeout(150)


def test_the_legend_follows_the_risk_classes(open_map: Any, xss_map: Path) -> None:
    # the classes' legend is on the page while the risk classes are, as a planner ticks
    # and unticks them in the layer control; other layers leave it as it is
    opened = open_map(xss_map)
    page = opened.page
    page.wait_for_selector(".leaflet-image-layer")
    legend = page.locator("#hwc-legend")
    assert legend.is_visible()
    _toggle(page, "Risk class")
    assert page.locator("img.leaflet-image-layer").count() == 0
    assert legend.is_hidden()
    _toggle(page, "Earlier incidents")  # another layer on: the legend stays hidden
    assert legend.is_hidden()
    _toggle(page, "Risk class")
    assert page.locator("img.leaflet-image-layer").count() == 1
    assert legend.is_visible() and "very high" in legend.inner_text()
    _toggle(page, "Earlier incidents")
    assert legend.is_visible()
    assert opened.page_errors == [] and _unexpected(opened.console_errors) == []


def test_user_text_is_escaped_and_runs_nothing(open_map: Any, xss_map: Path) -> None:
    opened = open_map(xss_map)
    page = opened.page
    page.wait_for_selector(".leaflet-image-layer")
    name = page.evaluate(FIND_MAP)
    # open the popup of every incident marker, as a planner clicking around would
    n_opened = page.evaluate(
        """(name) => {
      const map = window[name];
      let n = 0;
      const visit = (layer) => {
        if (layer.getLayers) { layer.getLayers().forEach(visit); return; }
        if (layer.getPopup && layer.getPopup()) {
          const popup = layer.getPopup();
          popup.setLatLng(layer.getLatLng()).openOn(map);
          n += 1;
        }
      };
      map.eachLayer(visit);
      return n;
    }""",
        name,
    )
    assert n_opened > 0
    page.wait_for_timeout(300)
    content = page.locator(".leaflet-popup-content").first.inner_text()
    assert XSS in content  # shown as text
    for payload in JS_BREAKOUTS:
        assert payload in content
    assert "<b>wolf</b>" in content
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator(".leaflet-popup-content b", has_text="wolf").count() == 0
    assert opened.dialogs == []
    assert opened.page_errors == []


@pytest.mark.slow  # reads the session's shared sample run
def test_sample_map_screenshot(open_map: Any, sample_run: Path) -> None:
    opened = open_map(sample_run / "map.html")
    page = opened.page
    page.wait_for_selector(".leaflet-image-layer")
    page.wait_for_timeout(500)
    assert opened.page_errors == []
    assert _unexpected(opened.console_errors) == []
    title = page.title()
    assert "sample-district" in title and "2026-10" in title
    # clusters of this month's incidents are drawn
    assert page.locator(".marker-cluster, .leaflet-interactive").count() > 0
    opened.screenshot("map-sample-district.png")
