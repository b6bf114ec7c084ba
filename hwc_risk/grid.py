"""The analysis grid: its CRS, transform and shape, and how a config resolves it.

Rasters are read onto the grid by :mod:`hwc_risk.rasters`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError as RioCRSError
from rasterio.warp import transform_bounds

from .config import GridConfig
from .errors import ConfigError, CRSError
from .rasters import RasterSource, open_raster

__all__ = ["GridSpec", "parse_crs", "resolve_grid"]


def parse_crs(value: str, where: str) -> CRS:
    """Parse a user-given CRS string; ``where`` names the config key for the message."""
    try:
        crs = CRS.from_user_input(value)
    except (RioCRSError, ValueError, TypeError):
        raise CRSError(
            f"{where} '{value}' is not a CRS that PROJ knows; use an EPSG code such as 'EPSG:4326'"
        ) from None
    return crs


@dataclass(frozen=True)
class GridSpec:
    """A raster grid: CRS, affine transform (north-up) and shape."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def cell_size(self) -> float:
        """Mean cell side, in CRS units."""
        return float(np.mean(self.res))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        right = left + self.width * self.transform.a
        bottom = top + self.height * self.transform.e
        return (left, bottom, right, top)

    @property
    def epsg(self) -> int | None:
        return self.crs.to_epsg()

    def rowcol(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell indices of coordinates in the grid CRS, and whether each is inside."""
        inv = ~self.transform
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        col_f = inv.a * x + inv.b * y + inv.c
        row_f = inv.d * x + inv.e * y + inv.f
        row = np.floor(row_f).astype(np.int64)
        col = np.floor(col_f).astype(np.int64)
        inside = (row >= 0) & (row < self.height) & (col >= 0) & (col < self.width)
        inside &= np.isfinite(row_f) & np.isfinite(col_f)
        return np.where(inside, row, -1), np.where(inside, col, -1), inside

    def cell_centres(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of cell centres."""
        t = self.transform
        c = np.asarray(cols, dtype=float) + 0.5
        r = np.asarray(rows, dtype=float) + 0.5
        return t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f

    def coarsened(self, factor: int) -> GridSpec:
        """The grid with cells ``factor`` times larger a side, over the same origin
        (the last row and column may reach past the grid's edge)."""
        if factor == 1:
            return self
        return replace(
            self,
            transform=self.transform @ Affine.scale(factor),
            width=-(-self.width // factor),
            height=-(-self.height // factor),
        )

    def profile(self, **overrides: object) -> dict[str, object]:
        """A rasterio profile of a tiled single-band GTiff on this grid.

        For working files (features, aligned covariates, surfaces before their
        COG conversion): ZSTD at level 1 without a predictor reads about three
        times faster than DEFLATE with the floating-point predictor, for about
        twice the size. The COGs users get are DEFLATE with a predictor
        (:mod:`hwc_risk.export.geotiff`).
        """
        prof: dict[str, object] = {
            "driver": "GTiff",
            "width": self.width,
            "height": self.height,
            "count": 1,
            "crs": self.crs,
            "transform": self.transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "zstd",
            "zstd_level": 1,
        }
        prof.update(overrides)
        return prof

    @classmethod
    def from_dataset(cls, ds: rasterio.io.DatasetReader) -> GridSpec:
        return cls(crs=ds.crs, transform=ds.transform, width=ds.width, height=ds.height)


def _check_projected(crs: CRS, where: str) -> None:
    if crs.is_geographic:
        raise CRSError(
            f"{where} is geographic ({crs.to_string()}), but distances and neighbourhoods need "
            "metres; set grid.crs to a projected CRS such as the local UTM zone"
        )


def resolve_grid(cfg: GridConfig, first: RasterSource | None) -> GridSpec:
    """The analysis grid: the config's settings, each unset one taken from the first
    (static) covariate; with no covariate (``first`` None: incidents alone, or monthly
    covariates only) the config must set all three, as the config's checks require."""
    if first is None:
        if cfg.crs is None or cfg.resolution is None or cfg.extent is None:
            raise ConfigError(
                "no static covariate gives the grid; set grid.crs, grid.resolution and grid.extent"
            )
        crs = parse_crs(cfg.crs, "grid.crs")
        _check_projected(crs, "grid.crs")
        return _grid_over(crs, cfg.extent, cfg.resolution)
    with open_raster(first) as ds:
        if ds.crs is None:
            raise CRSError(
                f"{first.path}: raster has no CRS ({first.key}); assign one "
                "(e.g. gdal_edit.py -a_srs EPSG:32736) or set grid.crs"
            )
        src_grid = GridSpec.from_dataset(ds)
        src_bounds = ds.bounds
    if cfg.crs is None and cfg.resolution is None and cfg.extent is None:
        _check_projected(src_grid.crs, f"the CRS of {first.path} ({first.key})")
        return src_grid

    crs = parse_crs(cfg.crs, "grid.crs") if cfg.crs is not None else src_grid.crs
    _check_projected(crs, "grid.crs" if cfg.crs is not None else f"the CRS of {first.path}")
    if cfg.extent is not None:
        extent = cfg.extent
    else:
        extent = transform_bounds(src_grid.crs, crs, *src_bounds, densify_pts=21)
    xmin, ymin, xmax, ymax = extent
    if cfg.resolution is not None:
        res = cfg.resolution
    elif crs == src_grid.crs:
        res = src_grid.cell_size
    else:
        # keep about as many cells across as the source has
        res = max(xmax - xmin, ymax - ymin) / max(src_grid.width, src_grid.height)
    return _grid_over(crs, extent, res)


def _grid_over(crs: CRS, extent: tuple[float, float, float, float], res: float) -> GridSpec:
    """Square cells of ``res`` from the top-left corner of ``extent``, covering it."""
    xmin, ymin, xmax, ymax = extent
    width = max(1, math.ceil((xmax - xmin) / res - 1e-9))
    height = max(1, math.ceil((ymax - ymin) / res - 1e-9))
    return GridSpec(
        crs=crs, transform=Affine(res, 0, xmin, 0, -res, ymax), width=width, height=height
    )
