"""Hotspots: the "very high" risk class as polygons, with area and people inside.

``hotspots.gpkg`` is written for QGIS: as GeoPackage 1.2, which every GDAL
that a QGIS LTR release ships reads without a warning (GDAL 3.6, the GDAL of
QGIS 3.22 on Debian 12, warns on every open of the 1.4 files that newer GDAL
writes by default), and with its default style in the ``layer_styles`` table
that QGIS reads when it opens the layer: an outline in the colour of the very
high class, no fill, so the risk classes under a hotspot stay visible.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import ExitStack
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
from rasterio.features import shapes
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from scipy import ndimage
from shapely.geometry import shape
from shapely.ops import unary_union

from ..classes import RISK_CLASSES
from ..compute import Compute
from ..grid import GridSpec

__all__ = ["hotspot_polygons", "write_hotspots"]

TOP = RISK_CLASSES[0]  # "very high"


class _Pieces:
    """Patches of the top class found chunk by chunk, merged where they touch."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.cells: list[np.ndarray] = []
        self.risk_sum: list[np.ndarray] = []
        self.risk_max: list[np.ndarray] = []
        self.people: list[np.ndarray] = []
        self.first: list[np.ndarray] = []  # flat index of each piece's first cell
        self.geoms: list[list[object]] = []

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: np.ndarray, b: np.ndarray) -> None:
        """Merge the pieces on either side of a chunk edge (-1 = no piece)."""
        both = (a >= 0) & (b >= 0)
        for i, j in set(zip(a[both].tolist(), b[both].tolist(), strict=True)):
            ri, rj = self.find(i), self.find(j)
            if ri != rj:
                self.parent[max(ri, rj)] = min(ri, rj)


def hotspot_polygons(
    classes: Path,
    risk: Path,
    grid: GridSpec,
    people: Path | None = None,
    people_factor: float = 1.0,
    incidents: pd.DataFrame | None = None,
    chunk: int = 1024,
) -> gpd.GeoDataFrame:
    """One polygon per 4-connected patch of the top risk class, largest first.

    Reads the class and risk rasters (and a people-per-cell raster, times
    ``people_factor``) chunk by chunk: patches are labelled in each chunk,
    merged with the patches they touch across chunk edges, and their pieces'
    polygons unioned, so memory depends on the chunk and the hotspots, not
    the grid. Columns: ``hotspot`` (rank, 1 = largest; ties by higher
    ``max_risk``, then raster order), ``area_km2``, ``cells``, ``mean_risk``,
    ``max_risk``, ``people`` (when ``people`` is given) and ``incidents``
    (incidents of the run inside, when given).
    """
    columns = ["hotspot", "area_km2", "cells", "mean_risk", "max_risk", "geometry"]
    pieces = _Pieces()
    have_incidents = incidents is not None and len(incidents) > 0
    inc_rows = inc_cols = np.zeros(0, dtype=np.int64)
    if incidents is not None and have_incidents:
        inc_rows = incidents["row"].to_numpy(dtype=np.int64)
        inc_cols = incidents["col"].to_numpy(dtype=np.int64)
    inc_piece = np.full(inc_rows.size, -1, dtype=np.int64)
    above: dict[int, np.ndarray] = {}  # last row of the chunk above, by column offset
    left_edge = np.zeros(0, dtype=np.int64)
    with ExitStack() as files:
        cls_ds = files.enter_context(rasterio.open(classes))
        risk_ds = files.enter_context(rasterio.open(risk))
        people_ds = files.enter_context(rasterio.open(people)) if people is not None else None
        for win in Compute(chunk_size=chunk).windows(grid.shape):
            r0, c0 = int(win.row_off), int(win.col_off)
            top = cls_ds.read(1, window=win) == TOP.code
            local, n = ndimage.label(top)  # 4-connectivity, as rasterio's shapes below
            base = len(pieces.parent)
            ids = np.where(local > 0, local + base - 1, -1)
            if n:
                _add_pieces(pieces, local, n, top, win, grid, risk_ds, people_ds)
            if r0 > 0:
                pieces.join(above[c0], ids[0])
            if c0 > 0:
                pieces.join(left_edge, ids[:, 0])
            above[c0] = ids[-1].copy()
            left_edge = ids[:, -1].copy()
            inside = (
                (inc_rows >= r0)
                & (inc_rows < r0 + top.shape[0])
                & (inc_cols >= c0)
                & (inc_cols < c0 + top.shape[1])
            )
            inc_piece[inside] = ids[inc_rows[inside] - r0, inc_cols[inside] - c0]
    if not pieces.parent:
        return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs=grid.crs)
    root = np.array([pieces.find(i) for i in range(len(pieces.parent))])
    groups, group_of = np.unique(root, return_inverse=True)
    n_groups = groups.size
    cells = np.bincount(group_of, np.concatenate(pieces.cells), n_groups).astype(np.int64)
    risk_sum = np.bincount(group_of, np.concatenate(pieces.risk_sum), n_groups)
    risk_max = np.full(n_groups, -np.inf)
    np.maximum.at(risk_max, group_of, np.concatenate(pieces.risk_max))
    first = np.full(n_groups, np.iinfo(np.int64).max)
    np.minimum.at(first, group_of, np.concatenate(pieces.first))
    cell_km2 = abs(grid.transform.a * grid.transform.e) / 1e6
    data: dict[str, object] = {
        "first": first,
        "area_km2": cells * cell_km2,
        "cells": cells,
        "mean_risk": risk_sum / np.maximum(cells, 1),
        "max_risk": risk_max,
    }
    if people_ds is not None:
        people_sum = np.bincount(group_of, np.concatenate(pieces.people), n_groups)
        data["people"] = np.round(people_sum * people_factor)
    if have_incidents:
        hit = inc_piece[inc_piece >= 0]
        data["incidents"] = np.bincount(group_of[hit], minlength=n_groups)
    parts: list[list[object]] = [[] for _ in range(n_groups)]
    for piece, group in enumerate(group_of):
        parts[group].extend(pieces.geoms[piece])
    frame = pd.DataFrame(data)
    frame["geometry"] = [unary_union(p) for p in parts]
    frame = frame.sort_values("first", kind="stable")
    frame = frame.sort_values(["area_km2", "max_risk"], ascending=False, kind="stable")
    frame = frame.drop(columns="first").reset_index(drop=True)
    frame.insert(0, "hotspot", np.arange(1, n_groups + 1))
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=grid.crs)


def _add_pieces(
    pieces: _Pieces,
    local: np.ndarray,
    n: int,
    top: np.ndarray,
    win: Window,
    grid: GridSpec,
    risk_ds: rasterio.io.DatasetReader,
    people_ds: rasterio.io.DatasetReader | None,
) -> None:
    """Record the ``n`` patches labelled in one chunk."""
    base = len(pieces.parent)
    pieces.parent.extend(range(base, base + n))
    flat = local.ravel()
    idx = np.arange(1, n + 1)
    risk = risk_ds.read(1, window=win)
    risk = np.where(np.isfinite(risk), risk, 0.0)
    pieces.cells.append(np.bincount(flat, minlength=n + 1)[1:].astype(np.float64))
    pieces.risk_sum.append(np.bincount(flat, weights=risk.ravel(), minlength=n + 1)[1:])
    pieces.risk_max.append(np.asarray(ndimage.maximum(risk, local, idx), dtype=np.float64))
    if people_ds is not None:
        people = people_ds.read(1, window=win).astype(np.float64)
        people = np.where(np.isfinite(people), people, 0.0).ravel()
        pieces.people.append(np.bincount(flat, weights=people, minlength=n + 1)[1:])
    labels, first = np.unique(flat, return_index=True)
    first, labels = first[labels > 0], labels[labels > 0]
    w = local.shape[1]
    r0, c0 = int(win.row_off), int(win.col_off)
    order = np.empty(n, dtype=np.int64)
    order[labels - 1] = (r0 + first // w) * grid.width + c0 + first % w
    pieces.first.append(order)
    geoms: list[list[object]] = [[] for _ in range(n)]
    transform = window_transform(win, grid.transform)
    for geom, value in shapes(local.astype(np.int32), mask=top, transform=transform):
        geoms[int(value) - 1].append(shape(geom))
    pieces.geoms.extend(geoms)


#: GeoPackage version written: 1.2 is read without warnings by GDAL 2.2 and later.
GPKG_VERSION = "1.2"
LAYER = "hotspots"


def hotspot_style_qml(colour: str = TOP.colour, width_mm: float = 0.8) -> str:
    """A QGIS vector style (QML) drawing polygons as an outline only, in ``colour``.

    Symbol layer properties are written as ``<prop k v>`` elements, the form
    that every QGIS 3 release reads.
    """
    rgb = ",".join(str(int(colour.lstrip("#")[i : i + 2], 16)) for i in (0, 2, 4))
    root = ET.Element("qgis", {"version": "3.22.0-Białowieża", "styleCategories": "Symbology"})
    renderer = ET.SubElement(
        root,
        "renderer-v2",
        {"type": "singleSymbol", "forceraster": "0", "symbollevels": "0", "enableorderby": "0"},
    )
    symbols = ET.SubElement(renderer, "symbols")
    symbol = ET.SubElement(
        symbols,
        "symbol",
        {"type": "fill", "name": "0", "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"},
    )
    layer = ET.SubElement(
        symbol, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"}
    )
    props = {
        "color": f"{rgb},0",
        "style": "no",  # no fill: the risk classes show through
        "outline_color": f"{rgb},255",
        "outline_style": "solid",
        "outline_width": f"{width_mm:g}",
        "outline_width_unit": "MM",
        "joinstyle": "miter",
    }
    for key, value in props.items():
        ET.SubElement(layer, "prop", {"k": key, "v": value})
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    ET.SubElement(root, "layerGeometryType").text = "2"  # polygons
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{body}\n"


def _layer_styles(geometry_column: str) -> pd.DataFrame:
    """The ``layer_styles`` row that makes the hotspot style the layer's default in QGIS.

    Columns as QGIS creates the table (``QgsOgrProviderMetadata::saveStyle``);
    QGIS loads the row with an empty ``f_table_schema`` whose ``f_table_name``
    and ``f_geometry_column`` match the layer, preferring ``useAsDefault``.
    """
    return pd.DataFrame(
        {
            "f_table_catalog": [""],
            "f_table_schema": [""],
            "f_table_name": [LAYER],
            "f_geometry_column": [geometry_column],
            "styleName": [LAYER],
            "styleQML": [hotspot_style_qml()],
            "styleSLD": [""],
            "useAsDefault": [True],
            "description": ["hwc-risk: very high risk hotspots, outline only"],
            "owner": [""],
            "ui": [None],
            "update_time": pd.Series([pd.NaT], dtype="datetime64[ms, UTC]"),
        }
    )


def write_hotspots(path: Path, hotspots: gpd.GeoDataFrame) -> Path:
    """Write the hotspots as GeoPackage 1.2 layer ``hotspots``, with its QGIS style.

    The style's ``update_time`` is left empty, so a rerun writes the same table.
    """
    pyogrio.write_dataframe(
        hotspots,
        path,
        layer=LAYER,
        driver="GPKG",
        dataset_options={"VERSION": GPKG_VERSION},
    )
    geometry_column = pyogrio.read_info(path, layer=LAYER)["geometry_name"] or "geom"
    pyogrio.write_dataframe(
        _layer_styles(geometry_column),
        path,
        layer="layer_styles",
        driver="GPKG",
        layer_options={"FID": "id"},
    )
    return path
