"""Circuitscape's file formats: grids, point lists, pair lists, resistances.

Grids are read with GDAL (ESRI ASCII grids, GeoTIFFs, either gzipped) and
written the way Circuitscape writes them (ASCII with 10 significant digits, or
GeoTIFF with ``write_as_tif``). Point lists are ``id x y`` lines; include or
exclude pair lists are Circuitscape's two formats (a ``min``/``max`` matrix or
a ``mode include|exclude`` list).
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import RasterioIOError

from ..errors import MissingFileError
from .ini import CircuitscapeError, CircuitscapeIni

__all__ = [
    "AsciiHeader",
    "FocalPoints",
    "IncludedPairs",
    "MapWriter",
    "read_focal_points",
    "read_grid",
    "read_included_pairs",
    "read_table",
    "write_ascii_grid",
    "write_resistances",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsciiHeader:
    """The georeferencing of a grid, as an ASCII grid header gives it."""

    ncols: int
    nrows: int
    xllcorner: float
    yllcorner: float
    cellsize: float
    nodata: float = -9999.0
    crs: str | None = None

    @property
    def transform(self) -> Affine:
        top = self.yllcorner + self.nrows * self.cellsize
        return Affine(self.cellsize, 0.0, self.xllcorner, 0.0, -self.cellsize, top)

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """Row and column (0-based) of a point, as Circuitscape places it."""
        row = int(np.ceil(self.nrows - (y - self.yllcorner) / self.cellsize)) - 1
        col = int(np.ceil((x - self.xllcorner) / self.cellsize)) - 1
        return row, col


def read_grid(path: Path, key: str) -> tuple[np.ndarray, AsciiHeader]:
    """Read band 1 of a raster (ASCII grid, GeoTIFF, optionally gzipped); nodata -> NaN."""
    if not path.exists():
        raise MissingFileError(f"{path}: file not found ({key}); check the path in the .ini")
    gdal_path = f"/vsigzip/{path}" if path.suffix == ".gz" else str(path)
    try:
        with rasterio.open(gdal_path) as ds:
            data = ds.read(1).astype(np.float64)
            # Circuitscape's convention: -9999 is nodata when the file declares none
            nodata = ds.nodata if ds.nodata is not None else -9999.0
            t = ds.transform
            header = AsciiHeader(
                ncols=ds.width,
                nrows=ds.height,
                xllcorner=t.c,
                yllcorner=t.f + ds.height * t.e,
                cellsize=abs(t.a),
                nodata=float(nodata),
                crs=ds.crs.to_wkt() if ds.crs else None,
            )
    except RasterioIOError:
        raise CircuitscapeError(f"{path}: not a raster GDAL can read ({key})") from None
    data[data == nodata] = np.nan
    return data, header


def _format(value: float) -> str:
    return "0" if value == 0 else f"{value:.10g}"


def write_ascii_grid(
    path: Path, data: np.ndarray, header: AsciiHeader, compress: bool = False
) -> Path:
    """Write an ESRI ASCII grid the way Circuitscape does (10 significant digits)."""
    lines = [
        f"ncols         {header.ncols}",
        f"nrows         {header.nrows}",
        f"xllcorner     {header.xllcorner!r}",
        f"yllcorner     {header.yllcorner!r}",
        f"cellsize      {header.cellsize!r}",
        f"NODATA_value  {_format(header.nodata)}",
    ]
    values = np.where(np.isnan(data), header.nodata, data)
    for row in values:
        lines.append(" ".join(_format(v) for v in row) + " ")
    text = "\n".join(lines) + "\n"
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def write_geotiff(path: Path, data: np.ndarray, header: AsciiHeader) -> Path:
    """Write a float64 GeoTIFF on the habitat grid (nodata -9999)."""
    profile = {
        "driver": "GTiff",
        "width": header.ncols,
        "height": header.nrows,
        "count": 1,
        "dtype": "float64",
        "transform": header.transform,
        "nodata": -9999.0,
        "compress": "deflate",
    }
    if header.crs:
        profile["crs"] = header.crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.where(np.isnan(data), -9999.0, data), 1)
    return path


@dataclass
class MapWriter:
    """Writes a run's maps under Circuitscape's names, with its output options.

    ``set_null_*_to_nodata`` puts nodata where the habitat map has none
    (Circuitscape's rule); ``log_transform_maps`` writes log10 of current maps
    (nodata where the current is 0).
    """

    base: Path
    header: AsciiHeader
    habitat: np.ndarray  # bool: cells with conductance
    compress: bool = False
    as_tif: bool = False
    log_currents: bool = False
    null_currents: bool = False
    null_voltages: bool = False

    @classmethod
    def from_ini(cls, ini: CircuitscapeIni, header: AsciiHeader, habitat: np.ndarray) -> MapWriter:
        return cls(
            base=ini.output_base(),
            header=header,
            habitat=habitat,
            compress=ini.flag("compress_grids"),
            as_tif=ini.flag("write_as_tif"),
            log_currents=ini.flag("log_transform_maps"),
            null_currents=ini.flag("set_null_currents_to_nodata"),
            null_voltages=ini.flag("set_null_voltages_to_nodata"),
        )

    def write(self, kind: str, cells: np.ndarray, tag: str = "") -> Path:
        """Write ``<base>_<kind><tag>`` where kind is curmap, voltmap, cum_curmap or max_curmap."""
        out = np.array(cells, dtype=np.float64)
        if kind != "voltmap" and self.log_currents:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.where(out > 0, np.log10(np.where(out > 0, out, 1.0)), np.nan)
        if self.null_voltages if kind == "voltmap" else self.null_currents:
            out = np.where(self.habitat, out, np.nan)
        name = f"{self.base}_{kind}{tag}"
        if self.as_tif:
            return write_geotiff(Path(name + ".tif"), out, self.header)
        return write_ascii_grid(Path(name + ".asc"), out, self.header, self.compress)


def read_table(path: Path, key: str, columns: int) -> np.ndarray:
    """Rows of numbers from a whitespace-separated text file (at least ``columns`` a row)."""
    if not path.is_file():
        raise MissingFileError(f"{path}: file not found ({key}); check the path in the .ini")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            rows.append([float(p) for p in parts[:columns]])
        except ValueError:
            raise CircuitscapeError(f"{path}: line {n} is not {columns} numbers ({key})") from None
        if len(rows[-1]) < columns:
            raise CircuitscapeError(f"{path}: line {n} has fewer than {columns} numbers ({key})")
    return np.array(rows, dtype=np.float64).reshape(-1, columns)


@dataclass
class FocalPoints:
    """Focal cells, sorted by id; cells of one id in column-major order (Circuitscape's)."""

    rows: np.ndarray
    cols: np.ndarray
    ids: np.ndarray

    @property
    def unique_ids(self) -> np.ndarray:
        return np.unique(self.ids)

    @property
    def has_regions(self) -> bool:
        """Whether any id covers several cells (focal regions rather than points)."""
        return bool(self.ids.size != np.unique(self.ids).size)

    def first_cell(self, fid: float) -> tuple[int, int]:
        k = int(np.flatnonzero(self.ids == fid)[0])
        return int(self.rows[k]), int(self.cols[k])

    def keep(self, wanted: np.ndarray) -> FocalPoints:
        sel = np.isin(self.ids, wanted)
        return FocalPoints(self.rows[sel], self.cols[sel], self.ids[sel])

    def to_map(self, shape: tuple[int, int]) -> np.ndarray:
        """Focal ids per cell (0 = none); a later cell of the list wins."""
        out = np.zeros(shape)
        out[self.rows, self.cols] = self.ids
        return out


def read_focal_points(ini: CircuitscapeIni, header: AsciiHeader) -> FocalPoints:
    """``point_file``: a raster of ids, or a text list of ``id x y`` lines."""
    path = ini.require("point_file")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".asc", ".tif", ".tiff")):
        data, h = read_grid(path, "point_file")
        if (h.nrows, h.ncols) != (header.nrows, header.ncols):
            raise CircuitscapeError(
                f"{path}: {h.nrows} x {h.ncols} cells, but the habitat map has "
                f"{header.nrows} x {header.ncols}; all grids must match"
            )
        data = np.where(np.isfinite(data), data, 0.0)
        cols, rows = np.nonzero(data.T)  # column-major, as Circuitscape lists them
        ids = data[rows, cols]
    else:
        table = read_table(path, "point_file", 3)
        cells = [header.cell_of(x, y) for _, x, y in table]
        rows = np.array([c[0] for c in cells], dtype=np.int64)
        cols = np.array([c[1] for c in cells], dtype=np.int64)
        ids = table[:, 0]
        outside = (rows < 0) | (rows >= header.nrows) | (cols < 0) | (cols >= header.ncols)
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise CircuitscapeError(
                f"{path}: focal point {ids[k]:g} at ({table[k, 1]:g}, {table[k, 2]:g}) is "
                "outside the habitat map"
            )
    keep = ids > 0
    if not keep.all():
        log.warning("%s: %d focal cells with ids <= 0 are ignored", path, int((~keep).sum()))
    order = np.argsort(ids[keep], kind="stable")
    points = FocalPoints(rows[keep][order], cols[keep][order], ids[keep][order])
    if points.unique_ids.size < 2:
        raise CircuitscapeError(f"{path}: fewer than two focal points or regions")
    return points


@dataclass
class IncludedPairs:
    """Which focal pairs to solve: Circuitscape's include/exclude matrix or list."""

    ids: np.ndarray  # focal ids the file names
    linked: np.ndarray  # (n, n) bool: the file links the pair
    include: bool  # True: solve only linked pairs; False: solve all but linked pairs

    def solve(self, a: float, b: float) -> bool:
        """Whether the pair of ids ``a``, ``b`` is to be solved."""
        ia, ib = np.flatnonzero(self.ids == a), np.flatnonzero(self.ids == b)
        if ia.size == 0 or ib.size == 0:
            return not self.include
        linked = bool(self.linked[ia[0], ib[0]] and self.linked[ib[0], ia[0]])
        return linked if self.include else not linked


def read_included_pairs(path: Path) -> IncludedPairs:
    """Read ``included_pairs_file``: a ``min``/``max`` matrix or a ``mode`` pair list."""
    if not path.is_file():
        raise MissingFileError(
            f"{path}: file not found (included_pairs_file); check the path in the .ini"
        )
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    head = lines[0][0].lower() if lines else ""
    try:
        if head == "min":
            lo, hi = float(lines[0][1]), float(lines[1][1])
            matrix = np.array([[float(v) for v in ln] for ln in lines[2:]], dtype=float)
            ids = matrix[1:, 0]
            values = matrix[1:, 1 : ids.size + 1]
            values = np.where(values > hi, 0.0, values)
            return IncludedPairs(ids, values >= lo, include=True)
        if head == "mode":
            mode = lines[0][1].lower()
            pairs = np.array([[float(v) for v in ln[:2]] for ln in lines[1:]], dtype=float)
            ids = np.unique(pairs)
            ids = ids[ids != 0]
            linked = np.zeros((ids.size, ids.size), dtype=bool)
            for a, b in pairs:
                ia, ib = np.flatnonzero(ids == a), np.flatnonzero(ids == b)
                if ia.size and ib.size:
                    linked[ia[0], ib[0]] = linked[ib[0], ia[0]] = True
            if mode not in ("include", "exclude"):
                raise CircuitscapeError(f"{path}: 'mode {mode}'; use mode include or exclude")
            return IncludedPairs(ids, linked, include=mode == "include")
    except (ValueError, IndexError):
        pass
    raise CircuitscapeError(
        f"{path}: not an include/exclude pairs file; it starts with 'min'/'max' lines and a "
        "matrix, or with 'mode include' / 'mode exclude' and one pair a line"
    )


def write_resistances(base: Path, ids: np.ndarray, res: np.ndarray) -> list[Path]:
    """``_resistances.out`` (matrix with ids) and ``_resistances_3columns.out``."""
    matrix = Path(f"{base}_resistances.out")
    rows = ["0 " + " ".join(_id(i) for i in ids)]
    for k, fid in enumerate(ids):
        rows.append(_id(fid) + " " + " ".join(_format(v) for v in res[k]))
    matrix.write_text("\n".join(rows) + "\n")
    three = Path(f"{base}_resistances_3columns.out")
    lines = [
        f"{_id(ids[a])} {_id(ids[b])} {_format(res[a, b])}"
        for a in range(ids.size)
        for b in range(a + 1, ids.size)
    ]
    three.write_text("\n".join(lines) + "\n")
    return [matrix, three]


def write_resistance_list(base: Path, ids: np.ndarray, res: np.ndarray) -> Path:
    """``_resistances.out`` of one-to-all and all-to-one modes: ``id resistance`` lines."""
    path = Path(f"{base}_resistances.out")
    path.write_text("".join(f"{_id(i)} {_format(r)}\n" for i, r in zip(ids, res, strict=True)))
    return path


def _id(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def tag(*ids: float) -> str:
    """``_a_b`` file-name suffix of focal ids."""
    return "".join(f"_{_id(i)}" for i in ids)
