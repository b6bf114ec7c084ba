"""QGIS styles, offline inlining and hotspots, on small made-up inputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
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


def test_hotspots_from_classes() -> None:
    classes = np.ones(GRID.shape, np.uint8)
    classes[1:3, 1:4] = 4  # 6 cells
    classes[6, 8] = 4  # 1 cell
    classes[0, 9] = 0
    risk = np.where(classes == 4, 0.9, 0.1).astype(np.float32)
    people = np.full(GRID.shape, 2.5)
    incidents = pd.DataFrame({"row": [1, 2, 6, 5], "col": [1, 3, 8, 5]})
    spots = hotspot_polygons(classes, GRID, risk, people, incidents)
    assert list(spots["hotspot"]) == [1, 2]
    assert list(spots["cells"]) == [6, 1]
    assert spots["area_km2"].tolist() == pytest.approx([0.06, 0.01])
    assert spots["people"].tolist() == [15.0, 2.0]  # rounded people
    assert spots["incidents"].tolist() == [2, 1]
    assert spots.geometry.iloc[0].area == pytest.approx(60_000)
    empty = hotspot_polygons(np.ones(GRID.shape, np.uint8), GRID, risk)
    assert len(empty) == 0


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
