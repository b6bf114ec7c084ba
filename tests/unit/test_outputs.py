"""QGIS styles, offline inlining and hotspots, on small made-up inputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

import hwc_risk.export.offline as offline
from hwc_risk.errors import InputError
from hwc_risk.export.hotspots import hotspot_polygons
from hwc_risk.export.qgis import write_class_qml, write_risk_qml
from hwc_risk.export.webmap import generalise_points
from hwc_risk.grid import GridSpec

GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 660_000, 0, -100, 9_760_000), 10, 8)


def test_risk_qml_ramp(tmp_path: Path) -> None:
    path = write_risk_qml(
        tmp_path / "risk.qml", {"very high": 0.8, "high": 0.5, "moderate": 0.2, "low": 0.0}
    )
    assert path.read_text().startswith("<!DOCTYPE qgis")
    root = ET.parse(path).getroot()
    shader = root.find(".//rasterrenderer[@type='singlebandpseudocolor']//colorrampshader")
    assert shader is not None and shader.get("colorRampType") == "INTERPOLATED"
    items = shader.findall("item")
    assert [float(i.get("value", "nan")) for i in items] == [0.0, 0.2, 0.5, 0.8, 1.0]
    assert items[3].get("label") == "0.80 very high (top 5% of area)"
    stops = shader.find(".//Option[@name='stops']")
    assert stops is not None and stops.get("value", "").count(";") == 3


def test_class_qml_palette(tmp_path: Path) -> None:
    root = ET.parse(write_class_qml(tmp_path / "c.qml", {"very high": 0.4})).getroot()
    entries = root.findall(".//rasterrenderer[@type='paletted']/colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("color")) for e in entries] == [
        ("1", "#a6d96a"),
        ("2", "#ffffbf"),
        ("3", "#fdae61"),
        ("4", "#d7191c"),
    ]
    assert entries[3].get("label") == "very high (5% of area, 40% of held-out incidents)"
    assert entries[0].get("label") == "low (70% of area)"


def _band(path: Path, data: np.ndarray) -> Path:
    """A GeoTIFF of ``data`` on GRID (or a grid of its shape with GRID's origin)."""
    profile = GRID.profile(dtype=data.dtype.name, width=data.shape[1], height=data.shape[0])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def test_hotspots_from_classes(tmp_path: Path) -> None:
    classes = np.ones(GRID.shape, np.uint8)
    classes[1:3, 1:4] = 4  # 6 cells
    classes[6, 8] = 4  # 1 cell
    classes[0, 9] = 0
    risk = np.where(classes == 4, 0.9, 0.1).astype(np.float32)
    people = np.full(GRID.shape, 2.5, np.float32)
    incidents = pd.DataFrame({"row": [1, 2, 6, 5], "col": [1, 3, 8, 5]})
    files = [_band(tmp_path / f"{k}.tif", a) for k, a in enumerate((classes, risk, people))]
    for chunk in (1024, 2):  # one chunk, or patches cut by chunk edges
        spots = hotspot_polygons(
            files[0], files[1], GRID, files[2], 1.0, incidents=incidents, chunk=chunk
        )
        assert list(spots["hotspot"]) == [1, 2]
        assert list(spots["cells"]) == [6, 1]
        assert spots["area_km2"].tolist() == pytest.approx([0.06, 0.01])
        assert spots["people"].tolist() == [15.0, 2.0]  # rounded people
        assert spots["incidents"].tolist() == [2, 1]
        assert spots.geometry.iloc[0].area == pytest.approx(60_000)
        assert spots.geometry.iloc[0].geom_type == "Polygon"
    ones = _band(tmp_path / "ones.tif", np.ones(GRID.shape, np.uint8))
    assert len(hotspot_polygons(ones, files[1], GRID)) == 0


def test_hotspots_in_chunks_equal_one_chunk(tmp_path: Path) -> None:
    """Patches that wind across many chunk edges come out as one polygon each."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    noise = ndimage.gaussian_filter(rng.normal(size=(60, 70)), 2.0)
    classes = np.where(noise > np.quantile(noise, 0.85), 4, 1).astype(np.uint8)
    classes[:, 33] = 4  # a long thin patch through every chunk row
    risk = rng.random((60, 70)).astype(np.float32)
    c_path, r_path = _band(tmp_path / "c.tif", classes), _band(tmp_path / "r.tif", risk)
    incidents = pd.DataFrame({"row": rng.integers(0, 60, 300), "col": rng.integers(0, 70, 300)})
    grid = GridSpec(GRID.crs, GRID.transform, 70, 60)
    whole = hotspot_polygons(c_path, r_path, grid, incidents=incidents, chunk=1024)
    _, n = ndimage.label(classes == 4)
    assert len(whole) == n > 5
    for chunk in (7, 16):
        parts = hotspot_polygons(c_path, r_path, grid, incidents=incidents, chunk=chunk)
        cols = ["hotspot", "area_km2", "cells", "max_risk", "incidents"]
        pd.testing.assert_frame_equal(parts[cols], whole[cols])
        np.testing.assert_allclose(parts["mean_risk"], whole["mean_risk"], rtol=1e-12)
        for a, b in zip(parts.geometry, whole.geometry, strict=True):
            assert a.equals(b) and a.geom_type == b.geom_type
    assert whole["incidents"].sum() == (classes[incidents["row"], incidents["col"]] == 4).sum()


def test_generalise_points_snaps_to_centres() -> None:
    lon, lat, text = generalise_points(np.array([34.5432]), np.array([-2.3456]), GRID, 0.01)
    assert lon[0] == pytest.approx(34.545) and lat[0] == pytest.approx(-2.345)
    assert "0.01°" in text
    lon2, lat2, text2 = generalise_points(np.array([34.5432]), np.array([-2.3456]), GRID, "1km")
    assert "1km" in text2
    assert abs(lon2[0] - 34.5432) < 0.01 and abs(lat2[0] + 2.3456) < 0.01


def test_inline_refuses_unknown_external_resources(tmp_path: Path) -> None:
    html = '<script src="https://example.org/tracker.js"></script>'
    with pytest.raises(InputError, match="no local copy"):
        offline.inline_assets(html, tmp_path)


def test_missing_web_assets_say_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(offline, "_candidates", lambda: [tmp_path])
    with pytest.raises(InputError, match="make web-assets"):
        offline.require_web_assets()


def test_output_registry_names_every_file_once() -> None:
    from hwc_risk.export.outputs import OUTPUTS, always_written, layer_output, output_spec

    keys = [spec.key for spec in OUTPUTS]
    assert len(keys) == len(set(keys))  # STAC asset keys: a .qml must not shadow its .tif
    assert output_spec("risk_class.qml").key == "risk_class_qml"
    assert output_spec("run.log.jsonl").key == "run_log"
    assert output_spec("risk_class.tif").categorical and not output_spec("risk.tif").categorical
    assert {"risk.tif", "risk_class.tif", "map.html", "metrics.json", "manifest.json"} <= (
        always_written()
    )
    assert "risk_change.tif" not in always_written()  # only with a previous month
    assert layer_output("connectivity_current", "A").key == "connectivity_current"
    with pytest.raises(KeyError, match=r"not in hwc_risk\.export\.outputs\.OUTPUTS"):
        output_spec("surprise.tif")
