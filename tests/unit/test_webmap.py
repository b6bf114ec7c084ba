from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from hwc_risk.export.webmap import classes_to_web_mercator, escape_text, write_map
from hwc_risk.grid import GridSpec
from tests.conftest import class_file

GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 660_000, 0, -100, 9_760_000), 200, 150)


def test_overlay_is_in_web_mercator_where_the_cell_is(tmp_path: Path) -> None:
    classes = np.ones(GRID.shape, np.uint8)
    r, c = 100, 40
    classes[r - 1 : r + 2, c - 1 : c + 2] = 4  # a 300 m hot spot
    classes[:10, :10] = 0  # nodata in the north-west corner
    image, bounds = classes_to_web_mercator(class_file(classes, GRID, tmp_path), GRID)
    (south, west), (north, east) = bounds
    # where is the hot spot in the image? Leaflet places pixels linearly in Web Mercator
    hot = np.argwhere((image[..., 0] == 215) & (image[..., 3] == 255))
    py, px = hot.mean(axis=0) + 0.5
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    mx0, my1 = to_merc.transform(west, north)
    mx1, my0 = to_merc.transform(east, south)
    mx = mx0 + px / image.shape[1] * (mx1 - mx0)
    my = my1 - py / image.shape[0] * (my1 - my0)
    lon, lat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True).transform(mx, my)
    x, y = GRID.cell_centres(np.array([r]), np.array([c]))
    exp_lon, exp_lat = Transformer.from_crs(GRID.crs, "EPSG:4326", always_xy=True).transform(
        x[0], y[0]
    )
    # within one 100 m cell (about 0.0009 degrees)
    assert lon == pytest.approx(exp_lon, abs=0.0009)
    assert lat == pytest.approx(exp_lat, abs=0.0009)
    # nodata is transparent, data opaque
    assert (image[:5, :5, 3] == 0).all()
    assert (image[50:60, 50:60, 3] == 255).all()


def test_escape_text_blocks_html_and_template_literals() -> None:
    text = escape_text("<b>x</b> ${alert(1)} `y` \\")
    assert "<" not in text and "$" not in text and "`" not in text and "\\" not in text
    assert "&lt;b&gt;" in text


def test_map_file(tmp_path: Path) -> None:
    classes = np.ones(GRID.shape, np.uint8)
    incidents = pd.DataFrame(
        {
            "date": pd.to_datetime(["2026-10-02", "2026-09-01"]),
            "lon": [34.5, 34.51],
            "lat": [-2.3, -2.31],
            "description": ["<script>alert(1)</script>", "ok"],
        }
    )
    out = write_map(
        tmp_path / "m.html",
        title="Area <x>",
        grid=GRID,
        classes=class_file(classes, GRID, tmp_path),
        incidents=incidents,
        month="2026-10",
    )
    html = out.read_text()
    assert "<script>alert(1)</script>" not in html
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in html  # JSON-escaped data
    assert "Area &lt;x&gt;" in html and "Area <x>" not in html
    assert "Incidents in 2026-10 (1)" in html and "Earlier incidents (1)" in html


def test_overlay_of_a_large_grid_is_capped(tmp_path: Path) -> None:
    classes = np.ones(GRID.shape, np.uint8)
    classes[:, 100:] = 4  # the eastern half
    image, bounds = classes_to_web_mercator(class_file(classes, GRID, tmp_path), GRID, 50)
    full, full_bounds = classes_to_web_mercator(class_file(classes, GRID, tmp_path), GRID)
    assert max(image.shape[:2]) == 50 and max(full.shape[:2]) > 150
    np.testing.assert_allclose(bounds, full_bounds, atol=1e-3)  # same place, coarser
    east = image[:, image.shape[1] // 2 + 2 :, 0]
    west = image[:, : image.shape[1] // 2 - 2, 0]
    assert (east[east > 0] == 215).all() and (west[west > 0] == 166).all()
