"""The planners' comparison on the map: each scenario beside the baseline.

For every scenario, three layers in the layer control, off at first:

- ``<name>: risk class``: its classes on the baseline's thresholds, in the
  baseline's colours;
- ``<name>: change in risk``: scenario minus baseline in a diverging palette
  (ColorBrewer's RdBu reversed: falls blue, rises red, no change transparent),
  symmetric about 0 with limits at the 98th percentile of the change;
- ``<name>: plan and changes``: the edits as drawn (dashed black; the
  layer's ``name`` and the edit's description in the tooltip, as text), new
  hotspots in long cyan dashes and vanished ones in grey dots (the run's own
  hotspots are solid dark red: a colour of no ramp on the map, so that a new
  one is not taken for an old one), and the changed cells where the model
  extrapolates (MESS < 0) hatched: "outside what the model was trained on: a
  guess".

The whole-area images (the baseline's classes and each scenario's classes and
change) are exclusive: switching one on switches the others off, as radio
buttons would, while the basemap stays. A box at the bottom left holds the
legend of these layers and the scenarios' table (collapsible); each part of
the legend is shown only while a layer it keys is on the map
(:func:`~hwc_risk.export.webmap.show_with_layers`), as the risk classes'
legend is. Every text from a scenario file or a GeoPackage goes through
:func:`~hwc_risk.export.webmap.escape_text`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, MacroElement, Template

from ..grid import GridSpec
from .geotiff import class_colormap
from .qgis import DIVERGING
from .webmap import HOTSPOT_OUTLINE, escape_text, show_with_layers, warp_to_web_mercator

__all__ = [
    "EXTRAPOLATION_NOTE",
    "ScenarioLayers",
    "ScenarioMap",
    "add_scenario_layers",
    "diverging_rgba",
    "hatch_rgba",
]

#: The legend's words for the hatched cells.
EXTRAPOLATION_NOTE = "outside what the model was trained on: a guess"
#: A cell whose risk moved less than this shows no change.
_TOLERANCE = 1e-6
#: Outlines (colour, dashes): new hotspots in long cyan dashes (no ramp of the map has
#: cyan, and it stands out on the reds where risk rose), vanished ones in grey dots, the
#: plan in black dashes; the run's own hotspots are solid dark red (webmap).
_NEW, _VANISHED, _EDITS = ("#00b4d8", "10 6"), ("#757575", "2 6"), ("#111111", "6 4")


@dataclass(frozen=True, kw_only=True)
class ScenarioLayers:
    """One scenario's files and shapes for the map (all on the run's grid)."""

    name: str
    description: str
    classes: Path  # risk_class.tif
    delta: Path  # risk_delta.tif
    delta_limit: float
    extrapolation: Path  # extrapolation.tif (MESS)
    edits: gpd.GeoDataFrame
    new_hotspots: gpd.GeoDataFrame
    vanished_hotspots: gpd.GeoDataFrame

    @classmethod
    def from_folder(cls, folder: Path) -> ScenarioLayers:
        """A scenario's layers read back from its folder ``scenarios/<name>/``."""
        import pyogrio

        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        edits_path = folder / "edits.gpkg"
        frames = [gpd.read_file(edits_path, layer=n) for n, _ in pyogrio.list_layers(edits_path)]
        edits = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
        spots = folder / "hotspots.gpkg"
        return cls(
            name=folder.name,
            description=str(summary.get("description", "")),
            classes=folder / "risk_class.tif",
            delta=folder / "risk_delta.tif",
            delta_limit=float(summary["delta_limit"]),
            extrapolation=folder / "extrapolation.tif",
            edits=edits,
            new_hotspots=gpd.read_file(spots, layer="new_hotspots"),
            vanished_hotspots=gpd.read_file(spots, layer="vanished_hotspots"),
        )


@dataclass(frozen=True)
class ScenarioMap:
    """The scenarios of a run for the map: their layers and the side-by-side table."""

    layers: tuple[ScenarioLayers, ...]
    table: pd.DataFrame


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    h = colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def diverging_rgba(delta: np.ndarray, limit: float, tolerance: float = _TOLERANCE) -> np.ndarray:
    """RGBA of a change: RdBu reversed from ``-limit`` (blue) to ``+limit`` (red),
    linear between its five colours and clipped beyond; transparent where there is no
    change (``|delta| <= tolerance``) or no value.

    >>> diverging_rgba(np.array([[-1.0, 0.0, 1.0, np.nan]]), 1.0)[0, :, 3].tolist()
    [255, 0, 255, 0]
    """
    stops = np.array([_hex_rgb(c) for c in DIVERGING], dtype=np.float64)
    position = (np.clip(np.nan_to_num(delta) / max(limit, tolerance), -1, 1) + 1) * 2  # 0..4
    low = np.minimum(np.floor(position).astype(np.int64), 3)
    frac = (position - low)[..., np.newaxis]
    rgb = stops[low] * (1 - frac) + stops[low + 1] * frac
    alpha = np.where(np.isfinite(delta) & (np.abs(delta) > tolerance), 255, 0)
    return np.dstack([np.round(rgb).astype(np.uint8), alpha.astype(np.uint8)])


def hatch_rgba(outside: np.ndarray, period: int = 6, width: int = 2) -> np.ndarray:
    """Diagonal stripes (black, alpha 0.6) over the cells of ``outside``, on a light
    tint so that a single cell shows too; transparent elsewhere."""
    rows, cols = np.indices(outside.shape)
    stripe = (rows + cols) % period < width
    alpha = np.where(outside, np.where(stripe, 153, 40), 0).astype(np.uint8)
    black = np.zeros(outside.shape, dtype=np.uint8)
    return np.dstack([black, black, black, alpha])


def _images(
    layers: ScenarioLayers, grid: GridSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[float]]]:
    """The scenario's classes, change and hatch as RGBA in Web Mercator."""
    codes, bounds = warp_to_web_mercator(layers.classes, grid)
    lut = np.zeros((256, 4), dtype=np.uint8)
    for code, rgba in class_colormap().items():
        lut[code] = rgba
    delta, _ = warp_to_web_mercator(layers.delta, grid, categorical=False)
    mess, _ = warp_to_web_mercator(layers.extrapolation, grid, categorical=False)
    outside = np.isfinite(delta) & (np.abs(delta) > _TOLERANCE) & (np.nan_to_num(mess) < 0)
    return lut[codes], diverging_rgba(delta, layers.delta_limit), hatch_rgba(outside), bounds


def _escaped(frame: gpd.GeoDataFrame, columns: Sequence[str]) -> dict[str, object]:
    """A frame as GeoJSON (WGS 84) with its text columns escaped for the tooltips."""
    shown = frame.to_crs("EPSG:4326")[[*columns, "geometry"]].copy()
    for column in columns:
        shown[column] = [escape_text(v) for v in shown[column]]
    return dict(json.loads(shown.to_json()))


def _plan_group(layers: ScenarioLayers) -> folium.FeatureGroup:
    """The edits, new and vanished hotspots of one scenario, in one layer."""
    group = folium.FeatureGroup(name=f"{layers.name}: plan and changes", show=False)
    if not layers.edits.empty:
        fields = ["kind", "covariate", "name", "description"]
        folium.GeoJson(
            _escaped(layers.edits, fields),
            style_function=lambda _f: {
                "color": _EDITS[0], "weight": 2, "dashArray": _EDITS[1], "fillOpacity": 0.05,
            },
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=["Edit", "Of", "Name", "Plan"]),
        ).add_to(group)  # fmt: skip
    for frame, (colour, dash), label in (
        (layers.new_hotspots, _NEW, "New hotspot"),
        (layers.vanished_hotspots, _VANISHED, "Vanished hotspot"),
    ):
        if frame.empty:
            continue
        shown = frame[["hotspot", "area_km2", "geometry"]].copy()
        shown["area_km2"] = shown["area_km2"].round(2)
        folium.GeoJson(
            dict(json.loads(shown.to_crs("EPSG:4326").to_json())),
            style_function=lambda _f, c=colour, d=dash: {
                "color": c, "weight": 3, "dashArray": d, "fillOpacity": 0.0,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["hotspot", "area_km2"], aliases=[label, "Area (km²)"]
            ),
        ).add_to(group)  # fmt: skip
    return group


_EXCLUSIVE = """
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this.map.get_name() }};
  var group = [{{ this.names }}];
  // after the layer control has finished handling the click (it re-adds every layer
  // still ticked), so that it then unticks the layers removed here
  map.on('overlayadd', function (e) {
    if (group.indexOf(e.layer) < 0) { return; }
    setTimeout(function () {
      group.forEach(function (other) {
        if (other !== e.layer && map.hasLayer(other)) { map.removeLayer(other); }
      });
    }, 0);
  });
})();
{% endmacro %}
"""


class _Exclusive(MacroElement):
    """Whole-area images that replace one another, as radio buttons would."""

    def __init__(self, fmap: folium.Map, layers: Sequence[Element]) -> None:
        super().__init__()
        self._name = "ExclusiveOverlays"
        self.map = fmap
        self.names = ", ".join(layer.get_name() for layer in layers)
        self._template = Template(_EXCLUSIVE)


def _swatch(style: str) -> str:
    return (
        f'<span style="display:inline-block;width:22px;height:12px;margin-right:6px;'
        f'vertical-align:middle;{style}"></span>'
    )


def _outline(colour: str, dash: str | None, width: int = 3) -> str:
    """A legend swatch drawing an outline as the map does: an SVG line, dashed or solid."""
    dashes = "" if dash is None else f' stroke-dasharray="{dash}"'
    return (
        '<svg width="22" height="12" style="margin-right:6px;vertical-align:middle;">'
        f'<line x1="1" y1="6" x2="21" y2="6" stroke="{colour}" stroke-width="{width}"{dashes} '
        'stroke-linecap="round"/></svg>'
    )


def _figure(value: object) -> str:
    """A table value as a planner reads it: whole numbers from 100 up, else 3 digits."""
    if isinstance(value, float):
        if not np.isfinite(value):
            return ""
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


#: The ids of the legend's parts that follow their layers (see add_scenario_layers).
CHANGE_LEGEND, CLASSES_LEGEND, PLAN_LEGEND = (
    "hwc-scenario-change",
    "hwc-scenario-classes",
    "hwc-scenario-plan",
)


def _legend_html(scenarios: ScenarioMap) -> str:
    """The scenarios' legend, and their table in a collapsible part (text escaped)."""
    ramp = ", ".join(DIVERGING)
    rows = [
        f'<div id="{CHANGE_LEGEND}">'
        f"{_swatch(f'background: linear-gradient(to right, {ramp});')}change in risk: "
        "blue falls, red rises</div>",
        f'<div id="{CLASSES_LEGEND}">risk class: the colours of the "Conflict risk" legend, '
        "on the baseline's thresholds</div>",
    ]
    for layers in scenarios.layers:
        rows.append(
            f'<div class="hwc-scenario"><b>{escape_text(layers.name)}</b>: '
            f"{escape_text(layers.description)} (change ±{layers.delta_limit:.2g} at the ends)"
            "</div>"
        )
    hatch = "repeating-linear-gradient(45deg, #000 0 2px, rgba(0,0,0,0.15) 2px 6px)"
    plan = [
        f"<div>{_swatch(f'background: {hatch};')}{EXTRAPOLATION_NOTE}</div>",
        f"<div>{_outline(HOTSPOT_OUTLINE, None, 2)}hotspot of the baseline (solid dark red)</div>",
        f"<div>{_outline(*_NEW)}new hotspot of the scenario (cyan dashes)</div>",
        f"<div>{_outline(*_VANISHED)}vanished hotspot (grey dots)</div>",
        f"<div>{_outline(*_EDITS, 2)}the plan as drawn (black dashes)</div>",
    ]
    rows.append(f'<div id="{PLAN_LEGEND}">' + "".join(plan) + "</div>")
    table = scenarios.table.drop(index="description", errors="ignore")
    cells = "".join(
        f'<tr><th style="text-align: left;">{escape_text(label)}</th>'
        + "".join(f'<td style="text-align: right;">{escape_text(_figure(v))}</td>' for v in row)
        + "</tr>"
        for label, row in table.iterrows()
    )
    head = "".join(f"<th>{escape_text(c)}</th>" for c in table.columns)
    return (
        '<div id="hwc-scenarios" style="'
        "background: rgba(255,255,255,0.94); padding: 6px 10px; "
        "border-radius: 4px; font: 12px/1.4 sans-serif; box-shadow: 0 1px 4px rgba(0,0,0,0.3);"
        ' max-width: 440px;">'
        '<div style="font-weight: bold;">What-if scenarios: the month\'s model on the edited '
        "inputs, nothing refitted</div>"
        + "".join(rows)
        + '<details id="hwc-scenario-details"><summary style="cursor: pointer;">The scenarios '
        'side by side</summary><table id="hwc-scenario-table" style="border-collapse: '
        f'collapse;"><thead><tr><th>measure</th>{head}</tr></thead><tbody>{cells}</tbody>'
        "</table></details></div>"
    )


def add_scenario_layers(
    fmap: folium.Map, scenarios: ScenarioMap, grid: GridSpec, baseline: Element, panels: list[str]
) -> list[Element]:
    """Add every scenario's layers and the exclusive switching with the ``baseline``
    classes overlay; the scenarios' legend and table go to ``panels`` (the map's column
    of boxes at the bottom left; see the module's docstring), each part of the legend
    shown with its layers. Returns the scenarios' risk-class layers (drawn in the
    colours of the classes' legend)."""
    images: list[Element] = [baseline]
    by_kind: dict[str, list[Element]] = {"risk class": [], "change in risk": [], "plan": []}
    for layers in scenarios.layers:
        classes, change, hatch, bounds = _images(layers, grid)
        for image, label in ((classes, "risk class"), (change, "change in risk")):
            overlay = folium.raster_layers.ImageOverlay(
                image=image, bounds=bounds, opacity=0.75, name=f"{layers.name}: {label}",
                pixelated=True, show=False,
            )  # fmt: skip
            overlay.add_to(fmap)
            images.append(overlay)
            by_kind[label].append(overlay)
        group = _plan_group(layers)
        folium.raster_layers.ImageOverlay(
            image=hatch, bounds=bounds, opacity=1.0, pixelated=True
        ).add_to(group)
        group.add_to(fmap)
        by_kind["plan"].append(group)
    _Exclusive(fmap, images).add_to(fmap)
    panels.append(_legend_html(scenarios))
    for element_id, kind in (
        (CHANGE_LEGEND, "change in risk"),
        (CLASSES_LEGEND, "risk class"),
        (PLAN_LEGEND, "plan"),
    ):
        show_with_layers(fmap, element_id, by_kind[kind])
    return by_kind["risk class"]
