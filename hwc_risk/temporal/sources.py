"""Where a monthly covariate's values come from: a path template, a cube, a GeoTIFF's bands.

Every source says which months it has (:attr:`MonthlySource.months`), the grid
of its own pixels for a month (:meth:`~MonthlySource.grid_of`, north-up), reads
a window of one month's pixels (:meth:`~MonthlySource.read`, nodata as NaN)
and hands GDAL one month as a file and band (:meth:`~MonthlySource.gdal_band`)
for the whole-layer alignment of :func:`hwc_risk.rasters.align_file`.
Nothing here reads a whole month unless asked to.

- :class:`TemplateSource`: ``ndvi/ndvi_{month}.tif``, one GDAL raster per
  month (the months are the files that exist);
- :class:`BandSource`: a multi-band GeoTIFF whose band descriptions (or
  ``month``/``date`` tags) are months;
- :class:`CubeSource`: a NetCDF or Zarr cube opened with xarray: CF time
  decoding (any calendar), the CRS from the CF ``grid_mapping`` or
  rioxarray's ``spatial_ref``, latitude ascending or descending.

Open one with :func:`open_source`; sources are context managers and keep
their file handles until closed (one thread at a time).
"""

from __future__ import annotations

import glob
import re
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from affine import Affine
from rasterio.windows import Window

from ..errors import CRSError, InputError, MissingFileError
from ..grid import GridSpec
from ..rasters import RasterSource, open_raster
from .config import CovariateConfig
from .months import as_month, month_label, month_of

__all__ = [
    "BandSource",
    "MonthlySource",
    "TemplateSource",
    "open_source",
]

_MONTH_TEXT = re.compile(r"(\d{4})-(\d{2})")


class MonthlySource(ABC):
    """The months of one covariate, read by window."""

    #: the config key named in errors, e.g. ``covariates.ndvi``
    key: str
    #: the file or template named in errors
    where: str
    #: available months, sorted, ``datetime64[M]``
    months: np.ndarray

    def __enter__(self) -> MonthlySource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - sources without handles have nothing to close
        """Release file handles."""

    def index_of(self, month: np.datetime64) -> int:
        """Position of ``month`` in :attr:`months`; an input error when it is not there."""
        i = int(np.searchsorted(self.months, month))
        if i >= self.months.size or self.months[i] != month:
            raise InputError(
                f"{self.where}: {self.key} has no month {month_label(month)} "
                f"(it has {self.describe_months()})"
            )
        return i

    def describe_months(self) -> str:
        """``2020-01 to 2024-12, 60 months``."""
        if self.months.size == 0:
            return "no month"
        first, last = month_label(self.months[0]), month_label(self.months[-1])
        return f"{first} to {last}, {self.months.size} months"

    @abstractmethod
    def grid_of(self, month: np.datetime64) -> GridSpec:
        """The grid of the source's own pixels in ``month`` (north-up)."""

    @abstractmethod
    def read(self, month: np.datetime64, window: Window) -> np.ndarray:
        """Pixels of ``month`` in ``window`` of :meth:`grid_of`, float64, nodata as NaN."""

    @abstractmethod
    def gdal_band(self, month: np.datetime64, folder: Path) -> tuple[Path, int, float | None]:
        """A GDAL raster, band and nodata holding ``month`` (written into ``folder`` if need be)."""


class _GdalFiles:
    """Open GDAL datasets by path, kept until closed."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.open: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        ds = self.open.get(path)
        if ds is None:
            ds = open_raster(RasterSource(path=path, key=self.key, path_key=f"{self.key}.path"))
            if ds.crs is None:
                ds.close()
                raise CRSError(
                    f"{path}: raster has no CRS ({self.key}); assign one "
                    "(e.g. gdal_edit.py -a_srs EPSG:32736)"
                )
            self.open[path] = ds
        return ds

    def close(self) -> None:
        for ds in self.open.values():
            ds.close()
        self.open.clear()


def _read_gdal(ds: Any, band: int, window: Window, nodata: float | None) -> np.ndarray:
    data = ds.read(band, window=window, boundless=False).astype(np.float64)
    nd = nodata if nodata is not None else ds.nodata
    if nd is not None and not np.isnan(nd):
        data[data == nd] = np.nan
    return data


class TemplateSource(MonthlySource):
    """One GDAL raster per month: a path template with ``{month}`` (``YYYY-MM``)."""

    def __init__(self, template: str, key: str, band: int = 1, nodata: float | None = None):
        if "{month}" not in template:
            raise InputError(
                f"{template}: {key}.path has no {{month}}; write e.g. ndvi_{{month}}.tif"
            )
        self.key, self.where, self.band, self.nodata = key, template, band, nodata
        pattern = re.compile(
            re.escape(template).replace(re.escape("{month}"), r"(\d{4}-\d{2})") + "$"
        )
        found: dict[np.datetime64, Path] = {}
        for name in glob.glob(template.replace("{month}", "[0-9][0-9][0-9][0-9]-[0-9][0-9]")):
            match = pattern.match(name)
            if match:
                found[as_month(match.group(1))] = Path(name)
        if not found:
            raise MissingFileError(
                f"{template}: no file matches {key}.path (with {{month}} as YYYY-MM, e.g. "
                f"{template.replace('{month}', '2024-01')}); check the path"
            )
        self.months = np.array(sorted(found), dtype="datetime64[M]")
        self.paths = found
        self.files = _GdalFiles(key)

    def path_of(self, month: np.datetime64) -> Path:
        self.index_of(month)
        return self.paths[month_of(month)]

    def grid_of(self, month: np.datetime64) -> GridSpec:
        ds = self.files.get(self.path_of(month))
        if self.band > ds.count:
            raise InputError(
                f"{ds.name}: {self.key}.band is {self.band} but the raster has {ds.count} "
                f"band(s); set band between 1 and {ds.count}"
            )
        return GridSpec.from_dataset(ds)

    def read(self, month: np.datetime64, window: Window) -> np.ndarray:
        return _read_gdal(self.files.get(self.path_of(month)), self.band, window, self.nodata)

    def gdal_band(self, month: np.datetime64, folder: Path) -> tuple[Path, int, float | None]:
        return self.path_of(month), self.band, self.nodata

    def close(self) -> None:
        self.files.close()


def band_month(description: str | None, tags: dict[str, str]) -> np.datetime64 | None:
    """The month a band holds: from its description, else a month/date/time tag."""
    texts = [description or ""]
    texts += [v for k, v in tags.items() if k.lower() in ("month", "date", "time")]
    for text in texts:
        match = _MONTH_TEXT.match(text.strip())
        if match and 1 <= int(match.group(2)) <= 12:
            return as_month(match.group(0))
    return None


class BandSource(MonthlySource):
    """A multi-band GDAL raster whose bands are months (band descriptions or tags)."""

    def __init__(self, path: Path, key: str, nodata: float | None = None):
        self.key, self.where, self.path, self.nodata = key, str(path), path, nodata
        self.files = _GdalFiles(key)
        ds = self.files.get(path)
        by_month: dict[np.datetime64, int] = {}
        for b in range(1, ds.count + 1):
            month = band_month(ds.descriptions[b - 1], ds.tags(b))
            if month is None:
                raise InputError(
                    f"{path}: band {b} has no month ({key}); give every band a description "
                    "or a 'month' tag YYYY-MM, or set monthly: false"
                )
            if month in by_month:
                raise InputError(
                    f"{path}: bands {by_month[month]} and {b} are both {month_label(month)} "
                    f"({key}); keep one band per month"
                )
            by_month[month] = b
        self.months = np.array(sorted(by_month), dtype="datetime64[M]")
        self.bands = by_month
        self.grid = GridSpec.from_dataset(ds)

    def grid_of(self, month: np.datetime64) -> GridSpec:
        return self.grid

    def read(self, month: np.datetime64, window: Window) -> np.ndarray:
        self.index_of(month)
        band = self.bands[month_of(month)]
        return _read_gdal(self.files.get(self.path), band, window, self.nodata)

    def gdal_band(self, month: np.datetime64, folder: Path) -> tuple[Path, int, float | None]:
        self.index_of(month)
        return self.path, self.bands[month_of(month)], self.nodata

    def close(self) -> None:
        self.files.close()


def open_source(cfg: CovariateConfig, key: str) -> MonthlySource:
    """The source of a monthly covariate ``covariates.<key>``."""
    where = f"covariates.{key}"
    kind = cfg.source_kind
    if kind == "template":
        return TemplateSource(str(cfg.path), where, band=cfg.band, nodata=cfg.nodata)
    if kind == "bands":
        return BandSource(cfg.path, where, nodata=cfg.nodata)
    if kind == "cube":
        from .cube_source import CubeSource

        return CubeSource(cfg.path, where, variable=cfg.variable, nodata=cfg.nodata)
    raise InputError(f"{cfg.path}: {where} is not monthly; use a {{month}} template or a cube")


def north_up_transform(xs: np.ndarray, ys: np.ndarray) -> tuple[Affine, bool]:
    """The affine transform of pixel-centre coordinates, and whether y ascends (south-up).

    Raises ValueError when the spacing is not regular.
    """
    if xs.size < 2 or ys.size < 2:
        raise ValueError("at least two pixels along x and y")
    dx, dy = np.diff(xs), np.diff(ys)
    if not (np.allclose(dx, dx[0], rtol=1e-5) and np.allclose(dy, dy[0], rtol=1e-5)):
        raise ValueError("irregular spacing")
    resx, resy = float(dx.mean()), float(dy.mean())
    if resx <= 0:
        raise ValueError("x must increase")
    ascending = resy > 0
    top = float(ys.max()) + abs(resy) / 2
    left = float(xs[0]) - resx / 2
    return Affine(resx, 0, left, 0, -abs(resy), top), ascending
