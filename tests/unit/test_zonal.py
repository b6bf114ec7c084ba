"""Sums over risk classes and hotspots, chunk by chunk, against numpy on the arrays."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from hwc_risk.grid import GridSpec
from hwc_risk.surfaces import classify
from hwc_risk.zonal import scale_to_total, zone_totals
from tests.conftest import DEFAULT_TRANSFORM, class_file


def test_zone_totals_equal_numpy(tmp_path: Path) -> None:
    from rasterio.crs import CRS

    rng = np.random.default_rng(2)
    grid = GridSpec(CRS.from_epsg(32736), DEFAULT_TRANSFORM, 150, 130)
    risk = rng.uniform(size=grid.shape).astype(np.float32)
    risk[:10, :] = np.nan
    with rasterio.open(
        tmp_path / "risk.tif", "w", **grid.profile(dtype="float32", nodata=np.nan)
    ) as d:
        d.write(risk, 1)
    codes, _ = classify(risk, np.isfinite(risk))
    classes = class_file(codes, grid, tmp_path)
    left, top = grid.transform.c, grid.transform.f
    spots = gpd.GeoDataFrame(
        {"hotspot": [1, 2]},
        geometry=[
            box(left + 1000, top - 9000, left + 6000, top - 2000),  # 50 x 70 cells
            box(left + 9000, top - 12000, left + 9500, top - 11000),  # 5 x 10 cells
        ],
        crs=grid.crs,
    )
    zones = zone_totals(grid, {"risk": (tmp_path / "risk.tif", 1)}, classes, spots, chunk=64)
    by = {(z.kind, z.id): z for z in zones}
    ok = np.isfinite(risk)
    assert by[("district", 0)].cells == ok.sum()
    assert by[("district", 0)].sums["risk"] == pytest.approx(float(risk[ok].sum(dtype=np.float64)))
    for code in (1, 2, 3, 4):
        z = by[("class", code)]
        assert z.cells == (codes == code).sum()
        assert z.mean("risk") == pytest.approx(float(risk[codes == code].mean(dtype=np.float64)))
    assert by[("hotspot", 1)].cells == 50 * 70 and by[("hotspot", 2)].cells == 5 * 10
    inside = risk[20:90, 10:60]
    assert by[("hotspot", 1)].sums["risk"] == pytest.approx(
        float(np.nansum(inside, dtype=np.float64))
    )
    assert by[("hotspot", 1)].counts["risk"] == np.isfinite(inside).sum()


def test_scale_to_total(tmp_path: Path) -> None:
    from rasterio.crs import CRS

    grid = GridSpec(CRS.from_epsg(32736), DEFAULT_TRANSFORM, 70, 90)
    surface = np.random.default_rng(1).uniform(size=grid.shape).astype(np.float32)
    surface[0, :] = np.nan
    with rasterio.open(
        tmp_path / "s.tif", "w", **grid.profile(dtype="float32", nodata=np.nan)
    ) as d:
        d.write(surface, 1)
    out = scale_to_total(tmp_path / "s.tif", 42.0, tmp_path / "e.tif", grid, chunk=64)
    with rasterio.open(out) as ds:
        expected = ds.read(1).astype(np.float64)
    assert np.nansum(expected) == pytest.approx(42.0, rel=1e-5)
    assert np.isnan(expected[0]).all()
    ratio = expected[1:] / surface[1:]
    assert np.allclose(ratio, ratio[0, 0], rtol=1e-5)
