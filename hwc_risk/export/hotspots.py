"""Hotspots: the "very high" risk class as polygons, with area and people inside."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape

from ..classes import RISK_CLASSES
from ..grid import GridSpec

__all__ = ["hotspot_polygons", "write_hotspots"]

TOP = RISK_CLASSES[0]  # "very high"


def hotspot_polygons(
    classes: np.ndarray,
    grid: GridSpec,
    risk: np.ndarray,
    people_per_cell: np.ndarray | None = None,
    incidents: pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """One polygon per 4-connected patch of the top risk class, largest first.

    Columns: ``hotspot`` (rank, 1 = largest), ``area_km2``, ``cells``,
    ``mean_risk``, ``max_risk``, ``people`` (when ``people_per_cell`` is given;
    else absent) and ``incidents`` (incidents of the run inside, when given).
    """
    top = classes == TOP.code
    labels, n = ndimage.label(top)  # 4-connectivity, as rasterio's shapes below
    columns = ["hotspot", "area_km2", "cells", "mean_risk", "max_risk", "geometry"]
    if n == 0:
        return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs=grid.crs)
    geoms: dict[int, list[object]] = {}
    for geom, value in shapes(labels.astype(np.int32), mask=top, transform=grid.transform):
        geoms.setdefault(int(value), []).append(shape(geom))
    idx = np.arange(1, n + 1)
    flat = labels.ravel()
    cells = np.bincount(flat, minlength=n + 1)[1:]
    risk_filled = np.where(np.isfinite(risk), risk, 0.0).ravel()
    mean_risk = np.bincount(flat, weights=risk_filled, minlength=n + 1)[1:] / np.maximum(cells, 1)
    max_risk = ndimage.maximum(np.where(np.isfinite(risk), risk, 0.0), labels, idx)
    cell_km2 = abs(grid.transform.a * grid.transform.e) / 1e6
    data: dict[str, object] = {
        "label": idx,
        "area_km2": cells * cell_km2,
        "cells": cells,
        "mean_risk": mean_risk,
        "max_risk": np.asarray(max_risk, dtype=float),
    }
    if people_per_cell is not None:
        people = np.where(np.isfinite(people_per_cell), people_per_cell, 0.0).ravel()
        data["people"] = np.round(np.bincount(flat, weights=people, minlength=n + 1)[1:])
    if incidents is not None and len(incidents):
        rows = incidents["row"].to_numpy(dtype=int)
        cols = incidents["col"].to_numpy(dtype=int)
        hit = labels[rows, cols]
        data["incidents"] = np.bincount(hit, minlength=n + 1)[1:]
    frame = pd.DataFrame(data)
    from shapely.ops import unary_union

    frame["geometry"] = [unary_union(geoms[int(k)]) for k in frame["label"]]
    frame = frame.sort_values(["area_km2", "max_risk"], ascending=False).reset_index(drop=True)
    frame.insert(0, "hotspot", np.arange(1, n + 1))
    frame = frame.drop(columns="label")
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=grid.crs)


def write_hotspots(path: Path, hotspots: gpd.GeoDataFrame) -> Path:
    """Write the hotspots as a GeoPackage layer named ``hotspots``."""
    hotspots.to_file(path, layer="hotspots", driver="GPKG")
    return path
