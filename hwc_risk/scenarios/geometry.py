"""The geometries of edits: read from a planner's GeoPackage, and their cells on a grid.

A planner draws a farm block or a road in QGIS, in whatever CRS the project
has, and saves it as a GeoPackage. :func:`read_edit_shapes` reads one layer,
checks it (file, layer, CRS, geometry type, overlap with the grid) with one-line
errors that name the file, the layer and the scenario key, repairs invalid
polygons and reprojects to the grid's CRS. :func:`footprint` turns lines into
polygons of their width on the ground, and :func:`edit_cells` rasterises the
footprint onto any window of any grid.

Lines narrower than the diagonal of a cell are burnt with ``all_touched``
(every cell they touch), so a fence or a road leaves no gap an 8-neighbour
path could slip through; wider footprints take the cells whose centre they
cover, so the width on the ground is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from shapely.geometry.base import BaseGeometry

from ..errors import CRSError, InputError, MissingFileError, NoOverlapError

__all__ = ["EditShapes", "Footprint", "edit_cells", "footprint", "read_edit_shapes"]

ShapeKind = Literal["polygons", "lines"]
_POLYGONS = {"Polygon", "MultiPolygon"}
_LINES = {"LineString", "MultiLineString", "LinearRing"}


@dataclass(frozen=True)
class EditShapes:
    """The geometries of one edit in the grid's CRS, all polygons or all lines."""

    geometries: tuple[BaseGeometry, ...]
    kind: ShapeKind
    source: str  # "file.gpkg (layer roads)", for messages
    names: tuple[str, ...] = ()  # the layer's ``name`` column, when it has one (for the map)


@dataclass(frozen=True)
class Footprint:
    """Polygons on the ground to burn, and whether every touched cell counts."""

    polygons: tuple[BaseGeometry, ...]
    all_touched: bool
    bounds: tuple[float, float, float, float]


def _layers(path: Path, where: str) -> list[str]:
    import pyogrio
    from pyogrio.errors import DataSourceError

    if not path.exists():
        raise MissingFileError(f"{where}: {path} not found; check the path (relative to the file)")
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except DataSourceError:
        raise InputError(
            f"{where}: {path} is not a vector file GDAL can read; save the layer from QGIS as "
            "a GeoPackage"
        ) from None


def _choose_layer(path: Path, layer: str | None, where: str) -> str:
    names = _layers(path, where)
    if layer is not None:
        if layer not in names:
            raise InputError(
                f"{where}: {path} has no layer '{layer}'; set layer to one of: {', '.join(names)}"
            )
        return layer
    if len(names) != 1:
        listed = ", ".join(names) if names else "none"
        raise InputError(f"{where}: {path} has layers {listed}; set layer to the one to use")
    return names[0]


def _kind_of(frame: gpd.GeoDataFrame, source: str, where: str) -> ShapeKind:
    types = set(frame.geom_type.dropna())
    if types and types <= _POLYGONS:
        return "polygons"
    if types and types <= _LINES:
        return "lines"
    found = ", ".join(sorted(types)) or "no geometry"
    raise InputError(f"{where}: {source} holds {found}; draw polygons or lines, one kind per layer")


def read_edit_shapes(
    path: Path,
    layer: str | None,
    crs: CRS,
    grid_bounds: tuple[float, float, float, float],
    where: str,
    allowed: tuple[ShapeKind, ...] = ("polygons", "lines"),
) -> EditShapes:
    """Read one layer of an edit's vector file, checked and reprojected to ``crs``.

    ``where`` names the scenario key in messages (``SCENARIO.yaml:
    scenarios.0.edits.1 (planned-road, burn_lines)``). Invalid polygons (self-
    intersections from hand drawing) are repaired with ``shapely.make_valid``.

    Raises
    ------
    InputError
        The file is missing or unreadable, the layer is missing or ambiguous, it
        is empty, holds points or mixed kinds, or a kind ``allowed`` excludes.
    CRSError
        The layer has no CRS.
    NoOverlapError
        No geometry overlaps the grid.
    """
    name = _choose_layer(Path(path), layer, where)
    source = f"{path} (layer {name})"
    frame = gpd.read_file(path, layer=name)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise InputError(f"{where}: {source} has no geometry; draw the edit and save the layer")
    if frame.crs is None:
        raise CRSError(
            f"{where}: {source} has no CRS; set the layer's CRS in QGIS (Layer Properties > "
            "Source) and save again"
        )
    kind = _kind_of(frame, source, where)
    if kind not in allowed:
        other = "burn_lines or resistance" if kind == "lines" else "set_class or adjust"
        raise InputError(
            f"{where}: {source} holds {kind}, but this edit needs {' or '.join(allowed)}; "
            f"draw {allowed[0]}, or use {other} for {kind}"
        )
    frame = frame.to_crs(crs)
    geoms = [shapely.make_valid(g) if not g.is_valid else g for g in frame.geometry]
    box = shapely.box(*grid_bounds)
    if not any(g.intersects(box) for g in geoms):
        raise NoOverlapError(
            f"{where}: {source} does not overlap the analysis grid "
            f"{tuple(round(b) for b in grid_bounds)} in {crs.to_string()}; check the layer's CRS"
        )
    names = tuple("" if pd.isna(v) else str(v) for v in frame["name"]) if "name" in frame else ()
    return EditShapes(geometries=tuple(geoms), kind=kind, source=source, names=names)


def footprint(shapes: EditShapes, width: float | None, cell_size: float) -> Footprint:
    """The polygons to burn: polygons as drawn, lines buffered to ``width`` metres.

    Lines narrower than a cell's diagonal are burnt with ``all_touched``, so
    that the line has no gap (see the module's docstring).
    """
    if shapes.kind == "polygons":
        polys = shapes.geometries
        touched = False
    else:
        if width is None:
            raise ValueError("lines need a width")
        polys = tuple(shapely.buffer(g, width / 2.0, cap_style="flat") for g in shapes.geometries)
        touched = width < math.sqrt(2.0) * cell_size
    bounds = tuple(float(b) for b in shapely.total_bounds(np.array(polys, dtype=object)))
    return Footprint(polygons=polys, all_touched=touched, bounds=bounds)  # type: ignore[arg-type]


def edit_cells(foot: Footprint, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Boolean cells of a window (``transform``, ``shape``) that the footprint covers.

    Only polygons that reach the window are rasterised, so a chunk far from
    the edit costs a bounding-box test.
    """
    h, w = shape
    left, top = transform.c, transform.f
    right, bottom = left + w * transform.a, top + h * transform.e
    window_box = shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    polys = np.array(foot.polygons, dtype=object)
    near = polys[shapely.intersects(polys, window_box)] if len(polys) else polys
    if not len(near):
        return np.zeros(shape, dtype=bool)
    burnt = rasterize(
        [(g, 1) for g in near],
        out_shape=shape,
        transform=transform,
        fill=0,
        all_touched=foot.all_touched,
        dtype="uint8",
    )
    return burnt.astype(bool)
