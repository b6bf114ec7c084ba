"""A monthly covariate from a cube with a time axis: NetCDF or Zarr, opened with xarray.

Times are decoded by CF conventions (any calendar: cftime dates too) and
each time step must fall in its own month. The CRS comes from the CF
``grid_mapping`` variable (``crs_wkt``, ``spatial_ref`` or CF projection
parameters, as rioxarray reads them); a cube on ``lat``/``lon`` without one
is taken as WGS 84. Latitude may ascend or descend: reads are always
north-up. Data are read lazily, a window of one month at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr
from rasterio.crs import CRS
from rasterio.windows import Window

from ..errors import CRSError, InputError, MissingFileError
from ..grid import GridSpec
from .months import as_month, month_label, month_of
from .sources import MonthlySource, north_up_transform

__all__ = ["CubeSource", "open_cube"]

_GEOGRAPHIC_X = ("lon", "longitude")


def open_cube(path: Path, key: str) -> xr.Dataset:
    """Open a NetCDF file or Zarr store lazily, with CF times and grid mappings decoded."""
    if not path.exists():
        raise MissingFileError(f"{path}: file not found; check {key}.path in the config")
    zarr = path.suffix.lower() == ".zarr" or path.is_dir()
    try:
        return xr.open_dataset(
            path,
            engine="zarr" if zarr else "netcdf4",
            decode_coords="all",
            decode_times=xr.coders.CFDatetimeCoder(use_cftime=None),
            cache=False,
        )
    except (OSError, ValueError, TypeError, KeyError) as exc:
        kind = "Zarr store" if zarr else "NetCDF file"
        raise InputError(
            f"{path}: not a {kind} xarray can read ({key}): {exc}; check the file"
        ) from None


def _pick_variable(ds: xr.Dataset, variable: str | None, path: Path, key: str) -> xr.DataArray:
    gridded = [str(n) for n, v in ds.data_vars.items() if v.ndim >= 3]
    if variable is not None:
        if variable not in ds.data_vars:
            raise InputError(
                f"{path}: no variable '{variable}' ({key}.variable); it has: "
                f"{', '.join(str(v) for v in ds.data_vars) or 'none'}"
            )
        return ds[variable]
    if len(gridded) != 1:
        raise InputError(
            f"{path}: {len(gridded)} variables with a time axis ({', '.join(gridded) or 'none'}); "
            f"set {key}.variable to one of them"
        )
    return ds[gridded[0]]


def _time_dim(da: xr.DataArray, path: Path, key: str) -> str:
    for dim in da.dims:
        if dim not in da.coords:
            continue
        values = da[dim].values
        if np.issubdtype(values.dtype, np.datetime64) or (
            values.dtype == object and values.size and hasattr(values.flat[0], "month")
        ):
            return str(dim)
    raise InputError(
        f"{path}: variable '{da.name}' has no CF time axis ({key}); give its time coordinate "
        "a units attribute such as 'days since 2000-01-01'"
    )


def _months_of(times: np.ndarray, path: Path, key: str) -> dict[np.datetime64, int]:
    if np.issubdtype(times.dtype, np.datetime64):
        months = list(times.astype("datetime64[M]"))
    else:
        months = [as_month(t) for t in times]
    index: dict[np.datetime64, int] = {}
    for i, m in enumerate(months):
        if m in index:
            raise InputError(
                f"{path}: two time steps fall in {month_label(m)} ({key}); give one step per "
                "month, e.g. ds.resample(time='MS').mean() with xarray"
            )
        index[month_of(m)] = i
    return index


def _grid_mapping_crs(ds: xr.Dataset) -> CRS | None:
    """The CRS of the one grid-mapping variable of a dataset that no variable points to."""
    from pyproj import CRS as ProjCRS

    found = [
        v
        for v in [*ds.coords.values(), *ds.data_vars.values()]
        if "grid_mapping_name" in v.attrs or "crs_wkt" in v.attrs or "spatial_ref" in v.attrs
    ]
    if len(found) != 1:
        return None
    try:
        return CRS.from_wkt(ProjCRS.from_cf(dict(found[0].attrs)).to_wkt())
    except Exception:
        return None


def _cube_crs(da: xr.DataArray, ds: xr.Dataset, x_dim: str, path: Path, key: str) -> CRS:
    crs = da.rio.crs or _grid_mapping_crs(ds)
    if crs is not None:
        return CRS.from_user_input(crs)
    if x_dim.lower() in _GEOGRAPHIC_X:
        return CRS.from_epsg(4326)
    raise CRSError(
        f"{path}: variable '{da.name}' has no CRS ({key}); add a CF grid_mapping variable, "
        "e.g. with rioxarray: ds.rio.write_crs('EPSG:32736').to_netcdf(...)"
    )


class CubeSource(MonthlySource):
    """One variable of a NetCDF/Zarr cube with a time axis."""

    def __init__(
        self, path: Path, key: str, variable: str | None = None, nodata: float | None = None
    ):
        self.key, self.where, self.path, self.nodata = key, str(path), path, nodata
        self.dataset = open_cube(path, key)
        try:
            self._setup(_pick_variable(self.dataset, variable, path, key))
        except Exception:
            self.dataset.close()
            raise

    def _setup(self, da: xr.DataArray) -> None:
        path, key = self.path, self.key
        self.t_dim = _time_dim(da, path, key)
        try:
            self.x_dim, self.y_dim = str(da.rio.x_dim), str(da.rio.y_dim)
        except Exception:
            raise InputError(
                f"{path}: no x/y (or lon/lat) dimensions in '{da.name}' ({key}); its dimensions "
                f"are {', '.join(map(str, da.dims))}"
            ) from None
        extra = [str(d) for d in da.dims if d not in (self.t_dim, self.x_dim, self.y_dim)]
        if any(da.sizes[d] != 1 for d in extra):
            raise InputError(
                f"{path}: '{da.name}' has more dimensions than time, y and x ({', '.join(extra)}; "
                f"{key}); select one level before using it"
            )
        self.array = da.isel({d: 0 for d in extra})
        self.index = _months_of(self.array[self.t_dim].values, path, key)
        self.months = np.array(sorted(self.index), dtype="datetime64[M]")
        try:
            transform, self.ascending = north_up_transform(
                self.array[self.x_dim].values.astype(float),
                self.array[self.y_dim].values.astype(float),
            )
        except ValueError as exc:
            raise InputError(
                f"{path}: the x/y coordinates of '{da.name}' are not a regular grid ({exc}; {key})"
            ) from None
        self.grid = GridSpec(
            crs=_cube_crs(da, self.dataset, self.x_dim, path, key),
            transform=transform,
            width=int(self.array.sizes[self.x_dim]),
            height=int(self.array.sizes[self.y_dim]),
        )

    def grid_of(self, month: np.datetime64) -> GridSpec:
        return self.grid

    def read(self, month: np.datetime64, window: Window) -> np.ndarray:
        self.index_of(month)
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        rows = (
            slice(self.grid.height - r0 - h, self.grid.height - r0)
            if self.ascending
            else slice(r0, r0 + h)
        )
        sel: dict[Any, Any] = {
            self.t_dim: self.index[month_of(month)],
            self.y_dim: rows,
            self.x_dim: slice(c0, c0 + w),
        }
        data = self.array.isel(sel).transpose(self.y_dim, self.x_dim).values.astype(np.float64)
        if self.ascending:
            data = data[::-1]
        if self.nodata is not None:
            data[data == self.nodata] = np.nan
        return data

    def gdal_band(self, month: np.datetime64, folder: Path) -> tuple[Path, int, float | None]:
        """Write ``month`` on the cube's own grid as a tiled GeoTIFF, 256 rows at a time."""
        safe = self.key.replace(".", "-")
        path = folder / f"{safe}-{month_label(month)}-source.tif"
        if path.exists():
            return path, 1, None
        g = self.grid
        part = path.with_name(path.name + ".part")
        with rasterio.open(part, "w", **g.profile(dtype="float32", nodata=np.nan)) as dst:
            for r0 in range(0, g.height, 256):
                win = Window(0, r0, g.width, min(256, g.height - r0))
                dst.write(self.read(month, win).astype(np.float32), 1, window=win)
        part.replace(path)
        return path, 1, None

    def close(self) -> None:
        self.dataset.close()
