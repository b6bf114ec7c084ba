"""Rasters on the analysis grid, on disk or in memory, behind one small interface.

A run keeps its working rasters (features, the valid-cell mask, validation
surfaces) as tiled GeoTIFFs and reads them chunk by chunk, so memory never
grows with the grid. A notebook, a test or a small study area can hold the
same rasters as numpy arrays. Both are a :class:`Band`: something to read a
window of, and to write windows into; and new bands come from a
:class:`Store` (a folder, or memory). Everything that validates a model
(:mod:`hwc_risk.modelling`, :mod:`hwc_risk.surfaces`, :mod:`hwc_risk.mask`,
:mod:`hwc_risk.sampling`) works through these, so the same code runs on files
and on arrays; tests hold the chunked files equal to the whole arrays.

>>> band = ArrayBand(np.arange(12, dtype=np.float32).reshape(3, 4))
>>> with band.reader() as r:
...     r.read(Window(1, 1, 2, 2)).tolist()
[[5.0, 6.0], [9.0, 10.0]]
>>> store = MemoryStore()
>>> out = store.band("risk", (3, 4))
>>> with out.writer() as w:
...     w.write(np.ones((1, 4), np.float32), Window(0, 2, 4, 1))
>>> int(np.isnan(out.array).sum())
8
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import rasterio
from rasterio.windows import Window

if TYPE_CHECKING:
    from .grid import GridSpec

__all__ = [
    "ArrayBand",
    "Band",
    "ConstantBand",
    "FileBand",
    "FileStore",
    "MemoryStore",
    "Store",
    "as_band",
    "file_of",
    "read_band",
]


class Reader(Protocol):
    def read(self, window: Window | None = None) -> np.ndarray: ...


class Writer(Protocol):
    def write(self, data: np.ndarray, window: Window) -> None: ...


class Band(Protocol):
    """A single-band raster on the grid: read windows of it, write windows into it."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def reader(self) -> Any: ...  # a context manager giving a Reader

    def writer(self) -> Any: ...  # a context manager giving a Writer


class _FileReader:
    def __init__(self, ds: rasterio.io.DatasetReader) -> None:
        self.ds = ds

    def read(self, window: Window | None = None) -> np.ndarray:
        return self.ds.read(1, window=window)


class _FileWriter:
    def __init__(self, ds: rasterio.io.DatasetWriter) -> None:
        self.ds = ds

    def write(self, data: np.ndarray, window: Window) -> None:
        self.ds.write(data, 1, window=window)


@dataclass(frozen=True)
class FileBand:
    """Band 1 of a GeoTIFF (picklable: a path; every reader opens its own handle)."""

    path: Path

    @property
    def shape(self) -> tuple[int, int]:
        with rasterio.open(self.path) as ds:
            return (ds.height, ds.width)

    @contextmanager
    def reader(self) -> Iterator[_FileReader]:
        with rasterio.open(self.path) as ds:
            yield _FileReader(ds)

    @contextmanager
    def writer(self) -> Iterator[_FileWriter]:
        with rasterio.open(self.path, "r+") as ds:
            yield _FileWriter(ds)


class _ArrayAccess:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def read(self, window: Window | None = None) -> np.ndarray:
        if window is None:
            return self.array.copy()
        r, c = int(window.row_off), int(window.col_off)
        return self.array[r : r + int(window.height), c : c + int(window.width)].copy()

    def write(self, data: np.ndarray, window: Window) -> None:
        r, c = int(window.row_off), int(window.col_off)
        self.array[r : r + data.shape[0], c : c + data.shape[1]] = data


@dataclass(frozen=True, eq=False)
class ArrayBand:
    """A band held as a 2-D numpy array (written in place)."""

    array: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.array.shape
        return (int(h), int(w))

    @contextmanager
    def reader(self) -> Iterator[_ArrayAccess]:
        yield _ArrayAccess(self.array)

    @contextmanager
    def writer(self) -> Iterator[_ArrayAccess]:
        yield _ArrayAccess(self.array)


class _ConstantAccess:
    def __init__(self, band: ConstantBand) -> None:
        self.band = band

    def read(self, window: Window | None = None) -> np.ndarray:
        h, w = self.band.shape
        if window is not None:
            h, w = int(window.height), int(window.width)
        return np.full((h, w), self.band.value, dtype=np.float32)


@dataclass(frozen=True)
class ConstantBand:
    """A band holding one value everywhere (a month's season features): nothing stored,
    every window read is made on the spot; read only."""

    value: float
    height: int
    width: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @contextmanager
    def reader(self) -> Iterator[_ConstantAccess]:
        yield _ConstantAccess(self)

    @contextmanager
    def writer(self) -> Iterator[Any]:
        raise ValueError("a constant band is read only")
        yield  # pragma: no cover


def as_band(value: Band | Path | str) -> Band:
    """A band from a band or a GeoTIFF's path."""
    if isinstance(value, str | Path):
        return FileBand(Path(value))
    return value


def file_of(band: Band) -> Path:
    """The GeoTIFF behind a band, for what needs a file (COG conversion, GDAL tools)."""
    if not isinstance(band, FileBand):
        raise ValueError("this band is held in memory; write it to a file first")
    return band.path


def read_band(band: Band | Path, window: Window | None = None) -> np.ndarray:
    """One window of a band (the whole band without one)."""
    with as_band(band).reader() as r:
        out: np.ndarray = r.read(window)
        return out


class Store(Protocol):
    """Where a step's working bands live: a folder of GeoTIFFs, or memory."""

    def band(
        self,
        name: str,
        shape: tuple[int, int],
        grid: GridSpec | None = None,
        description: str = "",
        dtype: str = "float32",
        nodata: float = np.nan,
    ) -> Band: ...

    def child(self, name: str) -> Store: ...

    def remove(self, *bands: Band) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class FileStore:
    """Bands as tiled GeoTIFFs in ``folder`` (tiles of ``block`` cells)."""

    folder: Path
    block: int = 256

    def band(
        self,
        name: str,
        shape: tuple[int, int],
        grid: GridSpec | None = None,
        description: str = "",
        dtype: str = "float32",
        nodata: float = np.nan,
    ) -> FileBand:
        from .covariates import create_band

        if grid is None:
            raise ValueError("a band on disk needs its grid")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.tif"
        create_band(path, grid, description or name, self.block, dtype=dtype, nodata=nodata)
        return FileBand(path)

    def child(self, name: str) -> FileStore:
        return FileStore(self.folder / name, self.block)

    def remove(self, *bands: Band) -> None:
        for band in bands:
            if isinstance(band, FileBand):
                band.path.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


#: Held while a memory store's dictionary changes (a module lock: stores stay picklable).
_MEMORY_LOCK = threading.Lock()


@dataclass(frozen=True)
class MemoryStore:
    """Bands as numpy arrays, filled with ``nodata`` (tasks on several threads may add
    and remove bands at once: a lock keeps the shared dictionary whole)."""

    bands: dict[str, ArrayBand] = field(default_factory=dict)
    prefix: str = ""

    def band(
        self,
        name: str,
        shape: tuple[int, int],
        grid: GridSpec | None = None,
        description: str = "",
        dtype: str = "float32",
        nodata: float = np.nan,
    ) -> ArrayBand:
        band = ArrayBand(np.full(shape, nodata, dtype=dtype))
        with _MEMORY_LOCK:
            self.bands[self.prefix + name] = band
        return band

    def child(self, name: str) -> MemoryStore:
        return MemoryStore(self.bands, f"{self.prefix}{name}/")

    def remove(self, *bands: Band) -> None:
        with _MEMORY_LOCK:
            for name in [n for n, b in self.bands.items() if any(b is x for x in bands)]:
                del self.bands[name]

    def clear(self) -> None:
        with _MEMORY_LOCK:
            for name in [n for n in self.bands if n.startswith(self.prefix)]:
                del self.bands[name]
