"""The raster edge: open, check and align raster files onto the analysis grid.

Every raster a run reads (covariates, a bias raster, a resistance raster, the
population file) goes through here as a :class:`RasterSource`: a path, a band,
a nodata override, whether it is categorical, and the config key to name in
errors. Nothing here knows the config's shape, so an error about the bias
raster names ``background.bias_raster``, not a covariate that does not exist.

Alignment is GDAL's warp (rasterio's ``reproject``): nearest neighbour for
categorical rasters; for continuous ones the average of the source cells when
the source is finer than the grid (more than 1.5 source cells per grid cell),
else bilinear.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from rasterio.dtypes import in_dtype_range
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject, transform_bounds

from .errors import CRSError, InputError, MissingFileError, NoOverlapError

if TYPE_CHECKING:
    from .config import CovariateConfig
    from .grid import GridSpec

__all__ = [
    "RasterSource",
    "align_array",
    "align_file",
    "no_data_error",
    "open_raster",
    "source_cell_area",
]


@dataclass(frozen=True)
class RasterSource:
    """One band of a raster file, and the config key that named it.

    ``key`` is what errors name: ``covariates.land_use`` or
    ``background.bias_raster``. ``path_key`` is the key holding the path
    (``covariates.land_use.path``); by default the key itself.
    """

    path: Path
    key: str
    band: int = 1
    nodata: float | None = None
    categorical: bool = False
    path_key: str = ""

    def __post_init__(self) -> None:
        if not self.path_key:
            object.__setattr__(self, "path_key", self.key)

    @classmethod
    def of_covariate(cls, name: str, cov: CovariateConfig) -> RasterSource:
        """The source of ``covariates.<name>``."""
        return cls(
            path=cov.path,
            key=f"covariates.{name}",
            band=cov.band,
            nodata=cov.nodata,
            categorical=cov.type == "categorical",
            path_key=f"covariates.{name}.path",
        )


def open_raster(source: RasterSource) -> rasterio.io.DatasetReader:
    """Open a raster, turning I/O failures into one-line input errors."""
    path = source.path
    if not path.exists():
        raise MissingFileError(f"{path}: file not found; check {source.path_key} in the config")
    try:
        return rasterio.open(path)
    except RasterioIOError:
        raise InputError(
            f"{path}: not a raster GDAL can read ({source.path_key}); give a GeoTIFF or "
            "another GDAL raster"
        ) from None


def _bounds_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _check_source(
    ds: rasterio.io.DatasetReader, source: RasterSource, grid: GridSpec
) -> tuple[float, ...]:
    """Band, CRS and overlap of an open source; its bounds in the grid's CRS."""
    if source.band > ds.count:
        raise InputError(
            f"{source.path}: {source.key}.band is {source.band} but the raster has "
            f"{ds.count} band(s); set band between 1 and {ds.count}"
        )
    if ds.crs is None:
        raise CRSError(
            f"{source.path}: raster has no CRS ({source.key}); assign one "
            "(e.g. gdal_edit.py -a_srs EPSG:32736)"
        )
    bounds = transform_bounds(ds.crs, grid.crs, *ds.bounds, densify_pts=21)
    if not _bounds_overlap(bounds, grid.bounds):
        raise NoOverlapError(
            f"{source.path}: raster ({source.key}) does not overlap the analysis grid "
            f"{tuple(round(b) for b in grid.bounds)} in {grid.crs.to_string()}; "
            "check its CRS and extent, or set grid.extent"
        )
    return bounds


def _open_on_grid(
    source: RasterSource, grid: GridSpec
) -> tuple[rasterio.io.DatasetReader, float | None, Resampling]:
    """An open, checked source; its nodata and the resampling onto the grid."""
    ds = open_raster(source)
    try:
        bounds = _check_source(ds, source, grid)
    except Exception:
        ds.close()
        raise
    dtype = ds.dtypes[source.band - 1]
    if source.nodata is not None and not in_dtype_range(source.nodata, dtype):
        ds.close()
        raise InputError(
            f"{source.path}: {source.key}.nodata is {source.nodata:g} but the raster holds "
            f"{dtype} values; set a nodata value a {dtype} can hold, or remove the key"
        )
    nodata = source.nodata if source.nodata is not None else ds.nodata
    if source.categorical:
        return ds, nodata, Resampling.nearest
    src_cell = (bounds[2] - bounds[0]) / ds.width  # in grid units, valid across CRSs
    finer = grid.cell_size / src_cell > 1.5
    return ds, nodata, Resampling.average if finer else Resampling.bilinear


def no_data_error(source: RasterSource) -> NoOverlapError:
    """The error for a source with no valid cell on the grid."""
    return NoOverlapError(
        f"{source.path}: raster ({source.key}) has no valid data inside the analysis grid; "
        "check its nodata value and extent"
    )


def align_array(source: RasterSource, grid: GridSpec) -> np.ndarray:
    """One band of a raster on the grid as float32; nodata becomes NaN.

    For grids of a bounded size (connectivity solves, tests); a run's
    covariates go through :func:`align_file`.
    """
    ds, nodata, resampling = _open_on_grid(source, grid)
    with ds:
        out = np.full(grid.shape, np.nan, dtype=np.float32)
        reproject(
            source=rasterio.band(ds, source.band),
            destination=out,
            src_nodata=nodata,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    if not np.isfinite(out).any():
        raise no_data_error(source)
    return out


def align_file(source: RasterSource, grid: GridSpec, path: Path, block: int = 256) -> Path:
    """Like :func:`align_array`, into a tiled float32 GeoTIFF on the grid.

    GDAL warps it in pieces of at most 64 MB, so a raster of any size aligns
    in bounded memory. Whether it has any valid cell is for the caller to
    check as it reads the file.
    """
    ds, nodata, resampling = _open_on_grid(source, grid)
    profile = grid.profile(dtype="float32", nodata=np.nan, blockxsize=block, blockysize=block)
    with ds, rasterio.open(path, "w", **profile) as dst:
        reproject(
            source=rasterio.band(ds, source.band),
            destination=rasterio.band(dst, 1),
            src_nodata=nodata,
            dst_nodata=np.nan,
            resampling=resampling,
            warp_mem_limit=64,
        )
    return path


def source_cell_area(source: RasterSource, grid: GridSpec) -> float:
    """The area of one of the source's cells, in the grid's CRS units squared."""
    with open_raster(source) as ds:
        left, bottom, right, top = transform_bounds(ds.crs, grid.crs, *ds.bounds)
        return (right - left) * (top - bottom) / (ds.width * ds.height)
