"""The planners' comparison on the map, in real headless Chromium.

On the shared sample run (the planned road and the farm expansion): every scenario
layer switches on and off, the whole-area images replace one another as radio buttons
would and sit on their bounds, each legend is on the page only while its layers are,
the legend names what the hatching and the outlines mean, new hotspots are drawn as
the legend says and apart from the baseline's, and the table opens. On a small area
whose scenario description and GeoPackage ``name`` carry HTML and JavaScript, nothing
runs and the text shows as text.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from shapely.geometry import box

from hwc_risk.classes import RISK_CLASSES
from hwc_risk.export.qgis import DIVERGING, EXPECTED_RAMP
from hwc_risk.export.webmap import HOTSPOT_OUTLINE
from tests.browser.test_map import FIND_MAP, JS_BREAKOUTS, XSS, _unexpected, settled_gap
from tests.conftest import edit_config, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCENARIOS = ("planned-road", "farm-expansion")
LAYERS = ("risk class", "change in risk", "plan and changes")

CHECKED = """() => [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
  .filter(l => l.querySelector('input').checked).map(l => l.textContent.trim())"""


def _click(page: Any, label: str) -> None:
    page.get_by_role("checkbox", name=label, exact=True).click()
    page.wait_for_timeout(150)


def test_every_scenario_layer_toggles(open_map: Any, sample_run: Path) -> None:
    opened = open_map(sample_run / "map.html")
    page = opened.page
    page.wait_for_selector(".leaflet-image-layer")
    name = page.evaluate(FIND_MAP)
    assert page.evaluate(CHECKED)[0] == "Risk class"  # scenarios start hidden
    assert not any(s in " ".join(page.evaluate(CHECKED)) for s in SCENARIOS)
    for scenario in SCENARIOS:
        for layer in LAYERS:
            label = f"{scenario}: {layer}"
            _click(page, label)
            assert label in page.evaluate(CHECKED)
            _click(page, label)
            assert label not in page.evaluate(CHECKED)
    # the whole-area images replace one another; the baseline comes back the same way
    _click(page, "planned-road: change in risk")
    page.wait_for_timeout(300)
    checked = page.evaluate(CHECKED)
    assert "planned-road: change in risk" in checked and "Risk class" not in checked
    assert page.locator("img.leaflet-image-layer").count() == 1
    assert settled_gap(page, name) < 1.5  # the change sits on its bounds
    opened.screenshot("map-sample-scenario-change.png")
    _click(page, "farm-expansion: risk class")
    page.wait_for_timeout(300)
    checked = page.evaluate(CHECKED)
    assert "farm-expansion: risk class" in checked
    assert "planned-road: change in risk" not in checked
    _click(page, "Risk class")
    page.wait_for_timeout(300)
    assert "farm-expansion: risk class" not in page.evaluate(CHECKED)
    # the plan drawn, with its hatching (an image of its own) and hotspot outlines
    _click(page, "planned-road: plan and changes")
    page.wait_for_timeout(300)
    assert page.locator("img.leaflet-image-layer").count() == 2
    assert page.locator('path.leaflet-interactive[stroke-dasharray="6 4"]').count() >= 1
    opened.screenshot("map-sample-scenario-road.png")
    assert opened.page_errors == [] and _unexpected(opened.console_errors) == []


#: The parts of the legends that follow their layers.
LEGENDS = ("hwc-legend-classes", "hwc-scenario-change", "hwc-scenario-classes", "hwc-scenario-plan")


def _legends_shown(page: Any) -> set[str]:
    return {part for part in LEGENDS if page.locator(f"#{part}").is_visible()}


def test_each_legend_follows_its_layers(open_map: Any, sample_run: Path) -> None:
    # one picture, one key: the risk classes' legend leaves when the change in risk
    # replaces them, and each scenario legend comes with its layers
    opened = open_map(sample_run / "map.html")
    page = opened.page
    page.wait_for_selector("#hwc-scenarios")
    assert _legends_shown(page) == {"hwc-legend-classes"}
    _click(page, "planned-road: change in risk")  # the baseline's classes switch off
    page.wait_for_timeout(300)
    assert "Risk class" not in page.evaluate(CHECKED)
    assert _legends_shown(page) == {"hwc-scenario-change"}
    assert page.locator("#hwc-legend").is_hidden()  # the sample's legend has no other note
    opened.screenshot("map-sample-change-legend.png")
    _click(page, "farm-expansion: change in risk")  # another change: its key stays
    page.wait_for_timeout(300)
    assert _legends_shown(page) == {"hwc-scenario-change"}
    _click(page, "farm-expansion: risk class")  # in the classes' colours: their key is back
    page.wait_for_timeout(300)
    assert _legends_shown(page) == {"hwc-legend-classes", "hwc-scenario-classes"}
    _click(page, "farm-expansion: plan and changes")
    assert _legends_shown(page) == {
        "hwc-legend-classes",
        "hwc-scenario-classes",
        "hwc-scenario-plan",
    }
    _click(page, "farm-expansion: plan and changes")
    _click(page, "Risk class")
    page.wait_for_timeout(300)
    assert _legends_shown(page) == {"hwc-legend-classes"}
    _click(page, "Risk class")  # no image at all: no key
    assert _legends_shown(page) == set()
    assert opened.page_errors == [] and _unexpected(opened.console_errors) == []


OUTLINES = """() => [...document.querySelectorAll('path.leaflet-interactive')]
  .map(p => [p.getAttribute('stroke'), p.getAttribute('stroke-dasharray')])"""

SWATCHES = """() => [...document.querySelectorAll('#hwc-scenario-plan div')]
  .filter(d => d.querySelector('svg line'))
  .map(d => [d.textContent.trim(), d.querySelector('line').getAttribute('stroke'),
             d.querySelector('line').getAttribute('stroke-dasharray')])"""


def test_new_hotspots_stand_apart_from_the_baselines(open_map: Any, sample_run: Path) -> None:
    # a new hotspot once looked like an old one (two reds, both solid): the legend says
    # which outline is which, the map draws each as it says, and no two look alike
    spots = sample_run / "scenarios" / "farm-expansion" / "hotspots.gpkg"
    counts = {
        "hotspot of the baseline": len(
            gpd.read_file(sample_run / "hotspots.gpkg", layer="hotspots")
        ),
        "new hotspot": len(gpd.read_file(spots, layer="new_hotspots")),
        "vanished hotspot": len(gpd.read_file(spots, layer="vanished_hotspots")),
    }
    assert counts["new hotspot"] > 0 and counts["vanished hotspot"] > 0
    opened = open_map(sample_run / "map.html")
    page = opened.page
    page.wait_for_selector("#hwc-scenarios")
    _click(page, "farm-expansion: plan and changes")
    page.wait_for_timeout(300)
    swatches = {text: (stroke, dash) for text, stroke, dash in page.evaluate(SWATCHES)}
    styles = {}
    for words, count in counts.items():
        (text,) = [t for t in swatches if t.startswith(words)]
        styles[words] = swatches[text]
        drawn = [s for s in page.evaluate(OUTLINES) if tuple(s) == swatches[text]]
        assert len(drawn) == count, (text, swatches[text], len(drawn), count)
    assert styles["hotspot of the baseline"] == (HOTSPOT_OUTLINE, None)  # solid
    assert len(set(styles.values())) == len(styles)
    ramps = {c.colour for c in RISK_CLASSES} | set(DIVERGING) | set(EXPECTED_RAMP)
    new_colour = styles["new hotspot"][0]
    assert new_colour not in ramps | {HOTSPOT_OUTLINE} and styles["new hotspot"][1]
    assert "new hotspot of the scenario (cyan dashes)" in swatches
    assert "hotspot of the baseline (solid dark red)" in swatches
    opened.screenshot("map-sample-new-hotspots.png")


def test_the_scenario_legend_and_table(open_map: Any, sample_run: Path) -> None:
    opened = open_map(sample_run / "map.html")
    page = opened.page
    page.wait_for_selector("#hwc-scenarios")
    legend = page.locator("#hwc-scenarios")
    assert legend.is_visible()
    _click(page, "planned-road: change in risk")
    _click(page, "planned-road: plan and changes")
    text = legend.inner_text()
    for words in (
        "nothing refitted",
        "change in risk: blue falls, red rises",
        "outside what the model was trained on: a guess",
        "new hotspot",
        "vanished hotspot",
        "the plan as drawn",
        *SCENARIOS,
    ):
        assert words in text, words
    # the scenarios' box and the forecast's chart share the bottom left: neither covers
    # the other (they did once, and the table could not be opened)
    a, b = legend.bounding_box(), page.locator("#hwc-forecast").bounding_box()
    assert a is not None and b is not None
    assert a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
    table = page.locator("#hwc-scenario-table")
    assert not table.is_visible()  # folded until asked for
    page.locator("#hwc-scenario-details summary").click()
    assert table.is_visible()
    assert page.locator("#hwc-scenario-table thead th").count() == 1 + len(SCENARIOS)
    assert "current cut by the line (%)" in table.inner_text()
    opened.screenshot("map-sample-scenario-table.png")


def test_scenario_text_runs_nothing(
    open_map: Any, small_area_template: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "area"
    shutil.copytree(small_area_template, folder)
    payload = f"Farms {XSS} " + " ".join(JS_BREAKOUTS)
    block = box(501_250, 5_192_500, 507_500, 5_197_500)  # EPSG:32633, inside the area
    gpd.GeoDataFrame({"name": [payload]}, geometry=[block], crs="EPSG:32633").to_file(
        folder / "plan.gpkg", layer="plan", driver="GPKG"
    )
    edit = {"kind": "set_class", "covariate": "cover", "path": "plan.gpkg", "class": "pasture"}
    config = edit_config(
        folder / "config.yaml",
        name="xss-plans",
        scenarios=[{"name": "xss", "description": payload, "edits": [edit]}],
    )
    proc = run_cli("run", config, "-q")
    assert proc.returncode == 0, proc.stderr
    opened = open_map(Path(proc.stdout.strip()) / "map.html")
    page = opened.page
    page.wait_for_selector("#hwc-scenarios")
    assert XSS in page.locator("#hwc-scenarios").inner_text()  # shown as text
    _click(page, "xss: plan and changes")
    page.wait_for_timeout(300)
    shown = page.evaluate(
        """(name) => {
      const map = window[name];
      const texts = [];
      // hover every feature of every GeoJSON layer with a tooltip, as a planner would
      map.eachLayer(l => {
        if (!(l.getLayers && l.getTooltip && l.getTooltip())) { return; }
        l.getLayers().forEach(c => {
          if (!c.feature) { return; }
          const at = c.getBounds ? c.getBounds().getCenter() : c.getLatLng();
          c.fire('mouseover', {latlng: at}, true);
          const el = l.getTooltip().getElement();
          if (el) { texts.push(el.textContent); }
        });
      });
      return texts;
    }""",
        page.evaluate(FIND_MAP),
    )
    assert any(XSS in t for t in shown)  # the GeoPackage's name, as text
    assert all(p in " ".join(shown) for p in JS_BREAKOUTS)
    assert page.locator('img[src="x"]').count() == 0
    assert opened.dialogs == [] and opened.page_errors == []
