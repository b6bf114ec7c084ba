"""The planners' HTML map (Folium / Leaflet).

The risk classes are reprojected to Web Mercator (EPSG:3857) before they go
into an ``ImageOverlay``: Leaflet stretches an image linearly between its
corners in Web Mercator, so an image in any other CRS would be misaligned.

Incidents go into the page as JSON data (folium's ``tojson`` escapes ``<``,
``>`` and ``&``) and their popups are built in the browser with
``textContent``, so text from the user's files is shown, never run. Titles,
legend and other HTML get :func:`escape_text`. Many incidents are clustered.
A legend follows its layers (:func:`show_with_layers`): the risk classes' key is on
the page only while a layer drawn in its colours is on the map. With
``offline=True`` every script and stylesheet is inlined
(:mod:`hwc_risk.export.offline`) and the basemap is replaced by a plain
background.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from branca.element import Element, MacroElement, Template
from folium.plugins import FastMarkerCluster, Fullscreen
from pyproj import Transformer
from rasterio.transform import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from ..classes import class_shares
from ..grid import GridSpec
from .forecast_map import ForecastLayer, add_forecast
from .geotiff import class_colormap
from .offline import inline_assets, require_web_assets

if TYPE_CHECKING:
    from .scenario_map import ScenarioMap

__all__ = [
    "HOTSPOT_OUTLINE",
    "classes_to_web_mercator",
    "escape_text",
    "generalise_points",
    "show_with_layers",
    "warp_to_web_mercator",
    "web_mercator_frame",
    "write_map",
]

WEB_MERCATOR = "EPSG:3857"
#: The outline of the run's hotspots (solid; a scenario's new and vanished ones are dashed
#: and dotted in other colours: :mod:`hwc_risk.export.scenario_map`).
HOTSPOT_OUTLINE = "#67000d"
LEAFLET_JS = ("leaflet", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js")
LEAFLET_CSS = ("leaflet_css", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css")


def escape_text(value: object) -> str:
    """Escape user text for HTML that folium may also place in a JavaScript template literal.

    ``html.escape`` is not enough there: folium puts popup HTML inside
    backticks, where a backtick ends the string and ``${...}`` runs code. So
    backticks, dollar signs and backslashes become character references too.
    """
    text = html.escape(str(value), quote=True)
    return text.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


#: The longest side of the map's class overlay, in pixels. A larger area is shown
#: coarser (nearest class): the COG is the full-resolution product.
MAX_OVERLAY_SIDE = 4096


def web_mercator_frame(
    grid: GridSpec, max_side: int = MAX_OVERLAY_SIDE
) -> tuple[Affine, int, int, list[list[float]]]:
    """The Web Mercator image frame of the grid: transform, width, height (at the grid's
    resolution up to ``max_side`` pixels a side, coarser beyond) and its bounds as
    ``[[south, west], [north, east]]`` in degrees, as Leaflet wants them."""
    transform, width, height = calculate_default_transform(
        grid.crs, WEB_MERCATOR, grid.width, grid.height, *grid.bounds
    )
    scale = max(int(width), int(height)) / max_side
    if scale > 1:
        width, height = max(1, round(int(width) / scale)), max(1, round(int(height) / scale))
        transform = transform @ Affine.scale(scale)
    left, top = transform.c, transform.f
    right = left + int(width) * transform.a
    bottom = top + int(height) * transform.e
    west, south, east, north = transform_bounds(WEB_MERCATOR, "EPSG:4326", left, bottom, right, top)
    return transform, int(width), int(height), [[south, west], [north, east]]


def warp_to_web_mercator(
    path: Path,
    grid: GridSpec,
    max_side: int = MAX_OVERLAY_SIDE,
    categorical: bool = True,
) -> tuple[np.ndarray, list[list[float]]]:
    """A raster on the grid warped by GDAL into the Web Mercator frame of
    :func:`web_mercator_frame`, in bounded memory: class codes (uint8, nearest, 0 is
    nodata) or values (float32, nearest, NaN is nodata)."""
    transform, width, height, bounds = web_mercator_frame(grid, max_side)
    dtype, nodata = (np.uint8, 0) if categorical else (np.float32, np.nan)
    merc = np.full((height, width), nodata, dtype=dtype)
    with rasterio.open(path) as src:
        reproject(
            source=rasterio.band(src, 1),
            destination=merc,
            src_nodata=src.nodata if src.nodata is not None else nodata,
            dst_transform=transform,
            dst_crs=WEB_MERCATOR,
            dst_nodata=nodata,
            resampling=Resampling.nearest,
            warp_mem_limit=64,
        )
    return merc, bounds


def classes_to_web_mercator(
    classes: Path, grid: GridSpec, max_side: int = MAX_OVERLAY_SIDE
) -> tuple[np.ndarray, list[list[float]]]:
    """RGBA image of a risk-class raster in Web Mercator, and its bounds.

    The image is at the grid's resolution up to ``max_side`` pixels a side,
    coarser beyond; GDAL warps it from the file in bounded memory. The bounds
    are ``[[south, west], [north, east]]`` in degrees, as Leaflet wants them.
    """
    merc, bounds = warp_to_web_mercator(classes, grid, max_side)
    lut = np.zeros((256, 4), dtype=np.uint8)
    for code, rgba in class_colormap().items():
        lut[code] = rgba
    return lut[merc], bounds


def generalise_points(
    lon: np.ndarray, lat: np.ndarray, grid: GridSpec, setting: float | str
) -> tuple[np.ndarray, np.ndarray, str]:
    """Snap points to the centres of a grid, as GBIF recommends for sensitive locations.

    ``setting`` is a cell size in degrees (e.g. 0.01) or a distance ('1km',
    '500m') applied in the analysis grid's CRS. Returns the snapped lon/lat and
    a sentence for the map.
    """
    if isinstance(setting, float):
        d = setting
        glon = (np.floor(np.asarray(lon) / d) + 0.5) * d
        glat = (np.floor(np.asarray(lat) / d) + 0.5) * d
        return glon, glat, f"Incident locations are generalised to a {d:g}° grid."
    size = float(setting.rstrip("km")) * (1000.0 if setting.endswith("km") else 1.0)
    fwd = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    inv = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    x, y = fwd.transform(np.asarray(lon), np.asarray(lat))
    x0, y0 = grid.transform.c, grid.transform.f
    gx = x0 + (np.floor((np.asarray(x) - x0) / size) + 0.5) * size
    gy = y0 + (np.floor((np.asarray(y) - y0) / size) + 0.5) * size
    glon, glat = inv.transform(gx, gy)
    return (
        np.asarray(glon),
        np.asarray(glat),
        f"Incident locations are generalised to a {setting} grid.",
    )


_LEGEND = """
{% macro html(this, kwargs) %}
<div id="hwc-legend" style="position: fixed; bottom: 30px; right: 10px; z-index: 9999;
     background: rgba(255,255,255,0.92); padding: 8px 10px; border-radius: 4px;
     font: 13px/1.4 sans-serif; box-shadow: 0 1px 4px rgba(0,0,0,0.3); max-width: 360px;">
  <div id="hwc-legend-classes">
  <div style="font-weight: bold; margin-bottom: 4px;">{{ this.title }}</div>
  {% for colour, label in this.items %}
  <div><span style="display:inline-block; width: 14px; height: 14px; background: {{ colour }};
       border: 1px solid #777; margin-right: 6px; vertical-align: middle;"></span>{{ label }}</div>
  {% endfor %}
  {% for note in this.notes %}
  <div class="hwc-note" style="margin-top: 4px; color: #444;">{{ note }}</div>
  {% endfor %}
  </div>
  {% for note in this.general %}
  <div class="hwc-note" style="margin-top: 4px; color: #444;">{{ note }}</div>
  {% endfor %}
</div>
{% endmacro %}
"""


class _HideLayer(MacroElement):
    """Start with a layer switched off (folium's show=False misses FastMarkerCluster)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this.map.get_name() }}.removeLayer({{ this.layer.get_name() }});"
        "{% endmacro %}"
    )

    def __init__(self, fmap: folium.Map, layer: Element) -> None:
        super().__init__()
        self._name = "HideLayer"
        self.map = fmap
        self.layer = layer


_SHOW_WITH = """
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this.map.get_name() }};
  var layers = [{{ this.names }}];
  var box = document.getElementById({{ this.element_id }});
  // the layer control fires these for every overlay it lists, whether a planner ticked
  // it or a script (the exclusive switching of whole-area images) added or removed it
  function follow() {
    var on = layers.some(function (layer) { return map.hasLayer(layer); });
    box.style.display = on ? '' : 'none';
  }
  map.on('overlayadd overlayremove', follow);
  follow();
})();
{% endmacro %}
"""


class _ShowWithLayers(MacroElement):
    def __init__(self, fmap: folium.Map, element_id: str, layers: list[Element]) -> None:
        super().__init__()
        self._name = "ShowWithLayers"
        self.map = fmap
        self.element_id = json.dumps(element_id)
        self.names = ", ".join(layer.get_name() for layer in layers)
        self._template = Template(_SHOW_WITH)


def show_with_layers(fmap: folium.Map, element_id: str, layers: list[Element]) -> None:
    """Show the page's element ``element_id`` (a legend) only while one of ``layers`` is
    on the map: hidden when the last of them is switched off in the layer control (or by
    a script), shown again when one is switched on. Every layer must be in the layer
    control, whose ``overlayadd`` and ``overlayremove`` events drive it."""
    _ShowWithLayers(fmap, element_id, layers).add_to(fmap)


class _Legend(MacroElement):
    """The legend box: the risk classes' key (``#hwc-legend-classes``: title, colours and
    their ``notes``) and below it the ``general`` notes about the page."""

    def __init__(
        self, title: str, items: list[tuple[str, str]], notes: list[str], general: list[str]
    ) -> None:
        super().__init__()
        self._name = "Legend"
        self.title = escape_text(title)
        self.items = [(colour, escape_text(label)) for colour, label in items]
        self.notes = [escape_text(n) for n in notes]
        self.general = [escape_text(n) for n in general]
        self._template = Template(_LEGEND)

    @property
    def follows(self) -> str:
        """The element to show only with the class layers: the key alone when general
        notes must stay on the page, else the whole box."""
        return "hwc-legend-classes" if self.general else "hwc-legend"


# Builds each incident marker and its popup in the browser. Text goes in with
# textContent, so whatever a report says is displayed, never interpreted.
_CALLBACK = """function (row) {
  var marker = L.circleMarker(new L.LatLng(row[0], row[1]),
      {radius: 5, color: %(colour)s, weight: 1, fill: true, fillOpacity: 0.8});
  var box = document.createElement('div');
  var labels = %(labels)s;
  for (var k = 0; k < labels.length; k++) {
    var v = row[2 + k];
    if (v === null || v === undefined || v === '') { continue; }
    var line = document.createElement('div');
    var b = document.createElement('b');
    b.textContent = labels[k] + ': ';
    line.appendChild(b);
    line.appendChild(document.createTextNode(String(v)));
    box.appendChild(line);
  }
  marker.bindPopup(box, {maxWidth: 320});
  return marker;
}"""

_FIELDS = [
    ("date", "Date"),
    ("species", "Species"),
    ("type", "Type"),
    ("id", "Report"),
    ("description", "Description"),
]


def _rows(frame: pd.DataFrame, lon: np.ndarray, lat: np.ndarray) -> list[list[object]]:
    cols: list[list[str | None]] = []
    for name, _ in _FIELDS:
        if name not in frame:
            cols.append([None] * len(frame))
        elif name == "date":
            cols.append(frame[name].dt.strftime("%Y-%m-%d").tolist())
        else:
            cols.append([None if pd.isna(v) else str(v) for v in frame[name]])
    rows: list[list[object]] = []
    for i in range(len(frame)):
        rows.append([round(float(lat[i]), 6), round(float(lon[i]), 6), *(c[i] for c in cols)])
    return rows


def _base_map(title: str, bounds: list[list[float]], offline: bool) -> folium.Map:
    """The Folium map with Leaflet only, a page title, and a basemap unless offline."""
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    fmap = folium.Map(
        location=centre,
        zoom_start=11,
        tiles=None if offline else "OpenStreetMap",
        control_scale=True,
    )
    # marker clusters need a maximum zoom; without a tile layer the map has none
    fmap.options["maxZoom"] = 18
    # only Leaflet itself: folium's Bootstrap, jQuery and icon fonts are not used here
    fmap.default_js = [LEAFLET_JS]
    fmap.default_css = [LEAFLET_CSS]
    root = fmap.get_root()
    root.header.add_child(Element(f"<title>{escape_text(title)}</title>"))  # type: ignore[attr-defined]
    if offline:
        root.header.add_child(  # type: ignore[attr-defined]
            Element("<style>.folium-map { background: #e9e6df; }</style>")
        )
    return fmap


def _add_hotspots(fmap: folium.Map, hotspots: gpd.GeoDataFrame) -> None:
    """Hotspot outlines with area, people and incidents in their tooltips."""
    shown = hotspots.to_crs("EPSG:4326")
    fields = [c for c in ("hotspot", "area_km2", "people", "incidents") if c in shown]
    aliases = {
        "hotspot": "Hotspot",
        "area_km2": "Area (km²)",
        "people": "People",
        "incidents": "Incidents",
    }
    shown = shown[[*fields, "geometry"]].copy()
    shown["area_km2"] = shown["area_km2"].round(2)
    folium.GeoJson(
        json.loads(shown.to_json()),
        name=f"Hotspots ({len(shown)})",
        style_function=lambda _f: {"color": HOTSPOT_OUTLINE, "weight": 2, "fillOpacity": 0.0},
        tooltip=folium.GeoJsonTooltip(
            fields=fields, aliases=[aliases[f] for f in fields], localize=True
        ),
    ).add_to(fmap)


def _add_incidents(
    fmap: folium.Map,
    incidents: pd.DataFrame,
    month: str,
    grid: GridSpec,
    generalise: float | str | None,
    notes: list[str],
) -> list[Element]:
    """The month's incidents and the earlier ones as clustered markers (locations
    generalised if asked, said in ``notes``); returns the layers to hide at first."""
    lon = incidents["lon"].to_numpy(dtype=float)
    lat = incidents["lat"].to_numpy(dtype=float)
    if generalise is not None:
        lon, lat, sentence = generalise_points(lon, lat, grid, generalise)
        notes.append(sentence + " Exact places are not in this page (GBIF guidance).")
    month_start = pd.Timestamp(f"{month}-01")
    this_month = (incidents["date"] >= month_start).to_numpy()
    labels = json.dumps([label for _, label in _FIELDS])
    hidden: list[Element] = []
    for label, mask, colour, show in (
        (f"Incidents in {month}", this_month, "#6a00a8", True),
        ("Earlier incidents", ~this_month, "#333333", False),
    ):
        subset = incidents[mask]
        cluster = FastMarkerCluster(
            _rows(subset, lon[mask], lat[mask]),
            callback=_CALLBACK % {"colour": json.dumps(colour), "labels": labels},
            name=f"{label} ({int(mask.sum())})",
            options={"disableClusteringAtZoom": 15, "chunkedLoading": True},
        ).add_to(fmap)
        if not show:
            hidden.append(cluster)
    return hidden


def _add_controls(fmap: folium.Map, title: str, hidden: list[Element]) -> None:
    """The title box, fullscreen button and layer control; some layers start hidden."""
    heading = Element(
        '<div id="hwc-title" style="position: fixed; top: 10px; left: 50px; z-index: 9999; '
        "background: rgba(255,255,255,0.92); padding: 6px 10px; border-radius: 4px; "
        'font: bold 15px sans-serif;">' + escape_text(title) + "</div>"
    )
    fmap.get_root().html.add_child(heading)  # type: ignore[attr-defined]
    Fullscreen(position="topleft").add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    for layer in hidden:
        _HideLayer(fmap, layer).add_to(fmap)


def _add_panels(fmap: folium.Map, panels: list[str]) -> None:
    """One column of boxes at the bottom left, so that none covers another: each box is
    reachable, the column scrolls when the window is short."""
    if not panels:
        return
    column = (
        '<div id="hwc-panels" style="position: fixed; bottom: 30px; left: 10px; z-index: 9999;'
        " display: flex; flex-direction: column; gap: 8px; max-height: calc(100vh - 90px);"
        ' overflow-y: auto;">' + "".join(panels) + "</div>"
    )
    fmap.get_root().html.add_child(Element(column))  # type: ignore[attr-defined]


def write_map(
    path: Path,
    *,
    title: str,
    grid: GridSpec,
    classes: Path,
    incidents: pd.DataFrame,
    month: str,
    class_captures: dict[str, float] | None = None,
    hotspots: gpd.GeoDataFrame | None = None,
    offline: bool = False,
    generalise: float | str | None = None,
    change_note: str | None = None,
    scenarios: ScenarioMap | None = None,
    forecast: ForecastLayer | None = None,
) -> Path:
    """Write the planners' map: risk classes, hotspots, incidents by month, legend, controls;
    with ``scenarios``, their comparison layers (:mod:`hwc_risk.export.scenario_map`); with
    a ``forecast``, the expected incidents of next month (off at first) and a chart. The
    classes' legend is shown while the risk classes, or a scenario's, are on the map."""
    assets = require_web_assets() if offline else None
    image, bounds = classes_to_web_mercator(classes, grid)
    fmap = _base_map(title, bounds, offline)
    baseline = folium.raster_layers.ImageOverlay(
        image=image, bounds=bounds, opacity=0.65, name="Risk class", pixelated=True
    )
    baseline.add_to(fmap)
    panels: list[str] = []  # boxes stacked at the bottom left: scenarios, then the chart
    in_class_colours: list[Element] = [baseline]  # the layers the legend's colours key
    if scenarios is not None:
        from .scenario_map import add_scenario_layers

        in_class_colours += add_scenario_layers(fmap, scenarios, grid, baseline, panels)
    if hotspots is not None and len(hotspots):
        _add_hotspots(fmap, hotspots)
    general: list[str] = []  # notes about the page, not the classes: they stay on it
    hidden = _add_incidents(fmap, incidents, month, grid, generalise, general)
    if forecast is not None:
        hidden += add_forecast(fmap, forecast, grid, panels)
    _add_panels(fmap, panels)
    items = [(s.risk_class.colour, s.legend()) for s in class_shares(class_captures)]
    notes = ["Classes by share of the area; risk is relative."]
    if change_note:
        notes.append(change_note)
    if offline:
        general.append("Offline map: no basemap.")
    legend = _Legend("Conflict risk", items, notes, general)
    legend.add_to(fmap)
    _add_controls(fmap, title, hidden)
    show_with_layers(fmap, legend.follows, in_class_colours)
    fmap.fit_bounds(bounds)
    page = fmap.get_root().render()
    if assets is not None:
        page = inline_assets(page, assets)
    path.write_text(page, encoding="utf-8")
    return path
