"""hotspots.gpkg opens in QGIS 3.22 LTR with its style and without GDAL warnings.

What is written is checked in the file itself: the GeoPackage version in the
SQLite header (GDAL 3.6, the GDAL of QGIS 3.22 on Debian 12, warns on every
open of a 1.4 file), and the ``layer_styles`` row that QGIS loads as the
layer's default style, found with the query QGIS itself runs. Where Debian's
GDAL 3.6 (``ogrinfo``) or QGIS (``python3-qgis``) are installed, they open
the file too; without them those two tests are skipped.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from hwc_risk.classes import RISK_CLASSES
from hwc_risk.export.hotspots import write_hotspots

VERY_HIGH = RISK_CLASSES[0].colour  # "#d7191c"
RGB = ",".join(str(int(VERY_HIGH[i : i + 2], 16)) for i in (1, 3, 5))


@pytest.fixture
def gpkg(tmp_path: Path) -> Path:
    frame = gpd.GeoDataFrame(
        {"hotspot": [1, 2], "area_km2": [0.5, 0.25], "cells": [50, 25]},
        geometry=[
            box(500_000, 9_000_000, 501_000, 9_000_500),
            box(502_000, 9_001_000, 502_500, 9_001_500),
        ],
        crs="EPSG:32736",
    )
    return write_hotspots(tmp_path / "hotspots.gpkg", frame)


def test_the_geopackage_is_version_1_2(gpkg: Path) -> None:
    header = gpkg.read_bytes()[:100]
    assert header[68:72] == b"GPKG"  # application_id
    assert int.from_bytes(header[60:64], "big") == 10200  # user_version: 1.2.0
    with sqlite3.connect(gpkg) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200


def test_qgis_finds_an_outline_style_as_the_layer_default(gpkg: Path) -> None:
    with sqlite3.connect(gpkg) as db:
        geometry_column = db.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = 'hotspots'"
        ).fetchone()[0]
        kind = db.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchone()[0]
        columns = [row[1] for row in db.execute("PRAGMA table_info(layer_styles)")]
        # the filter QgsOgrProviderMetadata::loadStyle sets on the table
        rows = db.execute(
            "SELECT styleName, styleQML, useAsDefault FROM layer_styles WHERE "
            "f_table_schema='' AND f_table_name=? AND f_geometry_column=? "
            "ORDER BY CASE WHEN useAsDefault THEN 1 ELSE 2 END, update_time DESC LIMIT 1",
            ("hotspots", geometry_column),
        ).fetchall()
    assert kind == "attributes"  # a table GDAL (and so QGIS) opens as a layer
    assert columns == [
        "id",
        "f_table_catalog",
        "f_table_schema",
        "f_table_name",
        "f_geometry_column",
        "styleName",
        "styleQML",
        "styleSLD",
        "useAsDefault",
        "description",
        "owner",
        "ui",
        "update_time",
    ]
    [(name, qml, default)] = rows
    assert name == "hotspots" and default == 1
    assert qml.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(qml.split("\n", 1)[1])
    renderer = root.find("renderer-v2")
    assert renderer is not None and renderer.get("type") == "singleSymbol"
    layers = root.findall(".//symbol[@type='fill']/layer")
    assert [layer.get("class") for layer in layers] == ["SimpleFill"]
    props = {p.get("k"): p.get("v") for p in layers[0].findall("prop")}
    assert props["style"] == "no"  # no fill: the risk classes under a hotspot stay visible
    assert props["outline_style"] == "solid"
    assert props["outline_color"] == f"{RGB},255"  # the very-high colour of the map
    assert float(props["outline_width"]) > 0


def test_an_empty_month_still_gets_the_style(tmp_path: Path) -> None:
    empty = gpd.GeoDataFrame({"hotspot": []}, geometry=[], crs="EPSG:32736")
    path = write_hotspots(tmp_path / "hotspots.gpkg", empty)
    assert len(gpd.read_file(path, layer="hotspots")) == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM layer_styles").fetchone()[0] == 1


def test_gdal_3_6_opens_it_without_a_warning(gpkg: Path) -> None:
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo is None:
        pytest.skip("needs ogrinfo (Debian 12: apt-get install gdal-bin, GDAL 3.6)")
    done = subprocess.run(
        [ogrinfo, "-so", "-al", str(gpkg)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stdout + done.stderr
    assert "hotspots" in done.stdout


QGIS_CHECK = """
import sys
from qgis.core import QgsApplication, QgsVectorLayer
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
layer = QgsVectorLayer(sys.argv[1] + "|layername=hotspots", "hotspots", "ogr")
fill = layer.renderer().symbol().symbolLayer(0)
print(layer.isValid(), layer.featureCount(), int(fill.brushStyle()), fill.strokeColor().name())
"""


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_qgis_draws_the_hotspots_as_outlines(gpkg: Path, tmp_path: Path) -> None:
    python = "/usr/bin/python3"
    probe = subprocess.run([python, "-c", "import qgis.core"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("needs QGIS's Python bindings (Debian: apt-get install python3-qgis)")
    script = tmp_path / "check.py"
    script.write_text(QGIS_CHECK)
    done = subprocess.run(
        [python, str(script), str(gpkg)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "2", "0", VERY_HIGH]  # valid, 2 hotspots, no brush
    assert "partially supported" not in done.stderr
