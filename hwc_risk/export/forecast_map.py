"""The forecast on the planners' map: an "expected next month" layer and a chart.

The layer is band 1 of ``forecast.tif`` (expected incidents per cell in the month after
the run's) warped to Web Mercator, as the class overlay is, and coloured with the
sequential ramp of ``forecast.qml``; its legend speaks of incidents per km². It starts
switched off. The chart of incidents per month with the forecast and its interval is
inline SVG (:func:`~hwc_risk.export.chart.monthly_chart_svg`): no script, nothing
fetched, so it works in an offline map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import folium
import numpy as np
import rasterio
from branca.element import Element
from rasterio.transform import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from ..forecast import Interval
from ..grid import GridSpec
from .qgis import EXPECTED_RAMP

__all__ = ["ForecastLayer", "add_forecast", "expected_to_web_mercator"]

WEB_MERCATOR = "EPSG:3857"


@dataclass(frozen=True, kw_only=True)
class ForecastLayer:
    """What the map shows of the forecast: ``forecast.tif``, the first month ahead, its
    total, the chart (SVG text) and the colour ramp's stops (expected incidents per cell)."""

    path: Path
    month: str
    total: Interval
    chart: str
    ramp: list[float]


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], dtype=float)


#: Rows coloured at once: the ramp's float temporaries stay a few MB whatever the image.
COLOUR_ROWS = 256


def _colour(values: np.ndarray, stops: list[float]) -> np.ndarray:
    """RGBA of values on the ramp (transparent where NaN or 0), a strip of
    :data:`COLOUR_ROWS` rows at a time."""
    colours = np.stack([_rgb(c) for c in EXPECTED_RAMP])
    out = np.zeros((*values.shape, 4), dtype=np.uint8)
    for top in range(0, values.shape[0], COLOUR_ROWS):
        strip, rgba = values[top : top + COLOUR_ROWS], out[top : top + COLOUR_ROWS]
        ok = np.isfinite(strip) & (strip > 0)
        v = np.clip(strip[ok], stops[0], stops[-1])
        for k in range(3):
            rgba[..., k][ok] = np.interp(v, stops, colours[:, k]).astype(np.uint8)
        rgba[..., 3][ok] = 210
    return out


def expected_to_web_mercator(
    layer: ForecastLayer, grid: GridSpec, max_side: int = 4096
) -> tuple[np.ndarray, list[list[float]]]:
    """RGBA image of band 1 of ``forecast.tif`` in Web Mercator, and its bounds
    (``[[south, west], [north, east]]``), at most ``max_side`` pixels a side."""
    transform, width, height = calculate_default_transform(
        grid.crs, WEB_MERCATOR, grid.width, grid.height, *grid.bounds
    )
    scale = max(int(width), int(height)) / max_side
    if scale > 1:
        width, height = max(1, round(int(width) / scale)), max(1, round(int(height) / scale))
        transform = transform @ Affine.scale(scale)
    merc = np.full((int(height), int(width)), np.nan, dtype=np.float32)
    with rasterio.open(layer.path) as src:
        reproject(
            source=rasterio.band(src, 1),
            destination=merc,
            dst_transform=transform,
            dst_crs=WEB_MERCATOR,
            dst_nodata=np.nan,
            resampling=Resampling.average if scale > 1 else Resampling.nearest,
            warp_mem_limit=64,
        )
    left, top = transform.c, transform.f
    right = left + int(width) * transform.a
    bottom = top + int(height) * transform.e
    west, south, east, north = transform_bounds(WEB_MERCATOR, "EPSG:4326", left, bottom, right, top)
    return _colour(merc, layer.ramp), [[south, west], [north, east]]


def _panel(layer: ForecastLayer, cell_km2: float) -> str:
    """The chart and the layer's legend, as a fixed panel (text already escaped)."""
    per_km2 = [v / cell_km2 for v in layer.ramp]
    gradient = ", ".join(EXPECTED_RAMP)
    total = layer.total
    words = (
        f"Expected incidents in {layer.month}: {total.expected:.0f} "
        f"({total.level:.0%} interval {total.lower:.0f}-{total.upper:.0f}). "
        f"Map layer 'Expected incidents': light few, dark many (0 to {per_km2[-1]:.2g} per km²)."
    )
    return (
        '<div id="hwc-forecast" style="'
        "background: rgba(255,255,255,0.92); padding: 6px 8px; "
        'border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,0.3); max-width: 580px;">'
        f"{layer.chart}"
        f'<div style="font: 12px/1.4 sans-serif; margin-top: 2px;">{_escape(words)}</div>'
        f'<div class="hwc-ramp" style="height: 8px; background: linear-gradient(to right, '
        f'{gradient}); margin-top: 3px;"></div></div>'
    )


def _escape(text: str) -> str:
    from .webmap import escape_text

    return escape_text(text)


def add_forecast(
    fmap: folium.Map, layer: ForecastLayer, grid: GridSpec, panels: list[str]
) -> list[Element]:
    """Add the "expected incidents" overlay (returned: to start hidden), and the chart's
    panel to ``panels`` (the map's column of boxes at the bottom left)."""
    image, bounds = expected_to_web_mercator(layer, grid)
    overlay = folium.raster_layers.ImageOverlay(
        image=image,
        bounds=bounds,
        opacity=0.75,
        name=_escape(f"Expected incidents, {layer.month} ({layer.total.expected:.0f})"),
        pixelated=True,
    ).add_to(fmap)
    cell_km2 = grid.res[0] * grid.res[1] / 1e6
    panels.append(_panel(layer, cell_km2))
    return [overlay]
