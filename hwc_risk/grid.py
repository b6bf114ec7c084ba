"""The analysis grid and the alignment of rasters onto it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.dtypes import in_dtype_range
from rasterio.errors import CRSError as RioCRSError
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject, transform_bounds

from .config import CovariateConfig, GridConfig
from .errors import CRSError, InputError, MissingFileError, NoOverlapError

__all__ = [
    "GridSpec",
    "align_raster",
    "align_raster_to_file",
    "no_data_error",
    "open_raster",
    "parse_crs",
    "resolve_grid",
]


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


def open_raster(path: Path, key: str) -> rasterio.io.DatasetReader:
    """Open a raster, turning I/O failures into one-line input errors."""
    if not path.exists():
        raise MissingFileError(f"{path}: file not found; check {key} in the config")
    try:
        return rasterio.open(path)
    except RasterioIOError:
        raise InputError(
            f"{path}: not a raster GDAL can read ({key}); give a GeoTIFF or another GDAL raster"
        ) from None


def _check_projected(crs: CRS, where: str) -> None:
    if crs.is_geographic:
        raise CRSError(
            f"{where} is geographic ({crs.to_string()}), but distances and neighbourhoods need "
            "metres; set grid.crs to a projected CRS such as the local UTM zone"
        )


def resolve_grid(cfg: GridConfig, first: CovariateConfig, first_key: str) -> GridSpec:
    """The analysis grid: the config's settings, each unset one taken from the first covariate."""
    with open_raster(first.path, first_key) as ds:
        if ds.crs is None:
            raise CRSError(
                f"{first.path}: raster has no CRS ({first_key}); assign one "
                "(e.g. gdal_edit.py -a_srs EPSG:32736) or set grid.crs"
            )
        src_grid = GridSpec.from_dataset(ds)
        src_bounds = ds.bounds
    if cfg.crs is None and cfg.resolution is None and cfg.extent is None:
        _check_projected(src_grid.crs, f"the CRS of {first.path} ({first_key})")
        return src_grid

    crs = parse_crs(cfg.crs, "grid.crs") if cfg.crs is not None else src_grid.crs
    _check_projected(crs, "grid.crs" if cfg.crs is not None else f"the CRS of {first.path}")
    if cfg.extent is not None:
        xmin, ymin, xmax, ymax = cfg.extent
    else:
        xmin, ymin, xmax, ymax = transform_bounds(src_grid.crs, crs, *src_bounds, densify_pts=21)
    if cfg.resolution is not None:
        res = cfg.resolution
    elif crs == src_grid.crs:
        res = src_grid.cell_size
    else:
        # keep about as many cells across as the source has
        res = max(xmax - xmin, ymax - ymin) / max(src_grid.width, src_grid.height)
    width = max(1, math.ceil((xmax - xmin) / res - 1e-9))
    height = max(1, math.ceil((ymax - ymin) / res - 1e-9))
    return GridSpec(
        crs=crs, transform=Affine(res, 0, xmin, 0, -res, ymax), width=width, height=height
    )


def _bounds_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _open_covariate(
    cfg: CovariateConfig, key: str, grid: GridSpec
) -> tuple[rasterio.io.DatasetReader, float | None, Resampling]:
    """Open a covariate after checking its band, CRS and overlap; its nodata and resampling."""
    ds = open_raster(cfg.path, f"covariates.{key}.path")
    try:
        if cfg.band > ds.count:
            raise InputError(
                f"{cfg.path}: covariates.{key}.band is {cfg.band} but the raster has "
                f"{ds.count} band(s); set band between 1 and {ds.count}"
            )
        if ds.crs is None:
            raise CRSError(
                f"{cfg.path}: raster has no CRS (covariates.{key}); assign one "
                "(e.g. gdal_edit.py -a_srs EPSG:32736)"
            )
        src_bounds_in_grid = transform_bounds(ds.crs, grid.crs, *ds.bounds, densify_pts=21)
        if not _bounds_overlap(src_bounds_in_grid, grid.bounds):
            raise NoOverlapError(
                f"{cfg.path}: raster (covariates.{key}) does not overlap the analysis grid "
                f"{tuple(round(b) for b in grid.bounds)} in {grid.crs.to_string()}; "
                "check its CRS and extent, or set grid.extent"
            )
    except Exception:
        ds.close()
        raise
    nodata = cfg.nodata if cfg.nodata is not None else ds.nodata
    dtype = ds.dtypes[cfg.band - 1]
    if cfg.nodata is not None and not in_dtype_range(cfg.nodata, dtype):
        ds.close()
        raise InputError(
            f"{cfg.path}: covariates.{key}.nodata is {cfg.nodata:g} but the raster holds "
            f"{dtype} values; set a nodata value a {dtype} can hold, or remove the key"
        )
    if cfg.type == "categorical":
        resampling = Resampling.nearest
    else:
        # source cell size expressed in grid units, valid across CRSs
        src_cell = (src_bounds_in_grid[2] - src_bounds_in_grid[0]) / ds.width
        finer = grid.cell_size / src_cell > 1.5
        resampling = Resampling.average if finer else Resampling.bilinear
    return ds, nodata, resampling


def no_data_error(cfg: CovariateConfig, key: str) -> NoOverlapError:
    return NoOverlapError(
        f"{cfg.path}: raster (covariates.{key}) has no valid data inside the analysis grid; "
        "check its nodata value and extent"
    )


def align_raster(cfg: CovariateConfig, key: str, grid: GridSpec) -> np.ndarray:
    """Read one band of a covariate onto the grid; nodata becomes NaN.

    Categorical rasters are resampled with nearest neighbour. Continuous ones
    with the average of the source cells when the source is finer than the grid
    (more than 1.5 source cells per grid cell), else bilinearly.
    """
    ds, nodata, resampling = _open_covariate(cfg, key, grid)
    with ds:
        out = np.full(grid.shape, np.nan, dtype=np.float32)
        reproject(
            source=rasterio.band(ds, cfg.band),
            destination=out,
            src_nodata=nodata,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    if not np.isfinite(out).any():
        raise no_data_error(cfg, key)
    return out


def align_raster_to_file(
    cfg: CovariateConfig, key: str, grid: GridSpec, path: Path, block: int = 256
) -> Path:
    """Like :func:`align_raster`, into a tiled float32 GeoTIFF on the grid.

    GDAL warps it in pieces of at most 64 MB, so a covariate of any size
    aligns in bounded memory. Whether it has any valid cell is for the caller
    to check as it reads the file (see :func:`hwc_risk.covariates.build_feature_stack`).
    """
    ds, nodata, resampling = _open_covariate(cfg, key, grid)
    profile = grid.profile(dtype="float32", nodata=np.nan, blockxsize=block, blockysize=block)
    with ds, rasterio.open(path, "w", **profile) as dst:
        reproject(
            source=rasterio.band(ds, cfg.band),
            destination=rasterio.band(dst, 1),
            src_nodata=nodata,
            dst_nodata=np.nan,
            resampling=resampling,
            warp_mem_limit=64,
        )
    return path
