"""The planners' HTML map (Folium / Leaflet).

The risk classes are reprojected to Web Mercator (EPSG:3857) before they go
into an ``ImageOverlay``: Leaflet stretches an image linearly between its
corners in Web Mercator, so an image in any other CRS would be misaligned.
Every value that comes from the user's files is HTML-escaped before it is
put in a popup, tooltip, title or legend.
"""

from __future__ import annotations

import html
from pathlib import Path

import folium
import numpy as np
import pandas as pd
from branca.element import Element, MacroElement, Template
from folium.plugins import MarkerCluster
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from ..classes import RISK_CLASSES
from ..grid import GridSpec
from .geotiff import class_colormap

__all__ = ["classes_to_web_mercator", "escape_text", "write_map"]

WEB_MERCATOR = "EPSG:3857"


def classes_to_web_mercator(
    classes: np.ndarray, grid: GridSpec
) -> tuple[np.ndarray, list[list[float]]]:
    """RGBA image of the classes in Web Mercator, and its bounds.

    The bounds are ``[[south, west], [north, east]]`` in degrees, as Leaflet wants them.
    """
    transform, width, height = calculate_default_transform(
        grid.crs, WEB_MERCATOR, grid.width, grid.height, *grid.bounds
    )
    merc = np.zeros((int(height), int(width)), dtype=np.uint8)
    reproject(
        source=classes,
        destination=merc,
        src_transform=grid.transform,
        src_crs=grid.crs,
        src_nodata=0,
        dst_transform=transform,
        dst_crs=WEB_MERCATOR,
        dst_nodata=0,
        resampling=Resampling.nearest,
    )
    lut = np.zeros((256, 4), dtype=np.uint8)
    for code, rgba in class_colormap().items():
        lut[code] = rgba
    rgba_img = lut[merc]
    left, top = transform.c, transform.f
    right = left + int(width) * transform.a
    bottom = top + int(height) * transform.e
    west, south, east, north = transform_bounds(WEB_MERCATOR, "EPSG:4326", left, bottom, right, top)
    return rgba_img, [[south, west], [north, east]]


def escape_text(value: object) -> str:
    """Escape user text for HTML that folium may also place in a JavaScript template literal.

    ``html.escape`` is not enough there: folium puts popup HTML inside
    backticks, where a backtick ends the string and ``${...}`` runs code. So
    backticks, dollar signs and backslashes become character references too.
    """
    text = html.escape(str(value), quote=True)
    return text.replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def _popup_html(row: pd.Series, fields: list[tuple[str, str]]) -> str:
    parts = []
    for col, label in fields:
        value = row.get(col)
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            continue
        text = value.strftime("%Y-%m-%d") if isinstance(value, pd.Timestamp) else str(value)
        parts.append(f"<b>{escape_text(label)}</b>: {escape_text(text)}")
    return "<br>".join(parts)


_LEGEND = """
{% macro html(this, kwargs) %}
<div id="hwc-legend" style="position: fixed; bottom: 30px; right: 10px; z-index: 9999;
     background: rgba(255,255,255,0.92); padding: 8px 10px; border-radius: 4px;
     font: 13px/1.4 sans-serif; box-shadow: 0 1px 4px rgba(0,0,0,0.3);">
  <div style="font-weight: bold; margin-bottom: 4px;">{{ this.title }}</div>
  {% for colour, label in this.items %}
  <div><span style="display:inline-block; width: 14px; height: 14px; background: {{ colour }};
       border: 1px solid #777; margin-right: 6px; vertical-align: middle;"></span>{{ label }}</div>
  {% endfor %}
  <div style="margin-top: 4px; color: #444;">{{ this.note }}</div>
</div>
{% endmacro %}
"""


class _Legend(MacroElement):
    def __init__(self, title: str, items: list[tuple[str, str]], note: str) -> None:
        super().__init__()
        self._name = "Legend"
        self.title = escape_text(title)
        self.items = [(colour, escape_text(label)) for colour, label in items]
        self.note = escape_text(note)
        self._template = Template(_LEGEND)


def write_map(
    path: Path,
    *,
    title: str,
    grid: GridSpec,
    classes: np.ndarray,
    incidents: pd.DataFrame,
    month: str,
    class_captures: dict[str, float] | None = None,
) -> Path:
    """Write the planners' map: risk classes, incidents of the month and before, legend."""
    image, bounds = classes_to_web_mercator(classes, grid)
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    fmap = folium.Map(location=centre, zoom_start=11, tiles="OpenStreetMap", control_scale=True)
    fmap.get_root().header.add_child(  # type: ignore[attr-defined]
        Element(f"<title>{escape_text(title)}</title>")
    )

    folium.raster_layers.ImageOverlay(
        image=image, bounds=bounds, opacity=0.65, name="Risk class", pixelated=True
    ).add_to(fmap)

    fields = [
        ("date", "Date"),
        ("species", "Species"),
        ("type", "Type"),
        ("id", "Report"),
        ("description", "Description"),
    ]
    month_start = pd.Timestamp(f"{month}-01")
    this_month = incidents["date"] >= month_start
    for label, subset, colour in (
        (f"Incidents in {month}", incidents[this_month], "#6a00a8"),
        ("Earlier incidents", incidents[~this_month], "#333333"),
    ):
        group = folium.FeatureGroup(
            name=f"{label} ({len(subset)})", show=label != "Earlier incidents"
        )
        cluster = MarkerCluster(options={"disableClusteringAtZoom": 15}).add_to(group)
        for _, row in subset.iterrows():
            folium.CircleMarker(
                location=[float(row["lat"]), float(row["lon"])],
                radius=5,
                color=colour,
                weight=1,
                fill=True,
                fill_opacity=0.8,
                popup=folium.Popup(_popup_html(row, fields), max_width=300),
            ).add_to(cluster)
        group.add_to(fmap)

    items = []
    for cls in RISK_CLASSES:
        text = f"{cls.label} ({cls.area_share:.0%} of area)"
        if class_captures and cls.label in class_captures:
            text += f", {class_captures[cls.label]:.0%} of held-out incidents"
        items.append((cls.colour, text))
    _Legend("Conflict risk", items, "Classes by share of the area; risk is relative.").add_to(fmap)
    heading = Element(
        '<div style="position: fixed; top: 10px; left: 50px; z-index: 9999; '
        "background: rgba(255,255,255,0.92); padding: 6px 10px; border-radius: 4px; "
        'font: bold 15px sans-serif;">' + escape_text(title) + "</div>"
    )
    fmap.get_root().html.add_child(heading)  # type: ignore[attr-defined]
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(bounds)
    fmap.save(str(path))
    return path
