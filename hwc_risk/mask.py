"""The valid-cell mask: cells where every covariate has data.

A run's mask is a one-byte tiled GeoTIFF (1 = valid), read chunk by chunk,
so no grid-sized array is ever held; a mask can also be held in memory
(:meth:`ValidMask.of_array`). :class:`ValidMask` is picklable (a file mask
is a path and a shape) and can be handed to window tasks on other processes
or Dask workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from .bands import ArrayBand, Band, FileBand, read_band
from .grid import GridSpec

__all__ = ["ValidMask", "cell_groups", "row_strips"]


def cell_groups(
    rows: np.ndarray, cols: np.ndarray, width: int, block: int = 1024
) -> Iterator[tuple[np.ndarray, Window]]:
    """Cells grouped by ``block`` x ``block`` chunk: the indices of each group and the
    window of its cells' bounding box (read it once for all of them)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if not rows.size:
        return
    per_row = -(-width // block)
    keys = (rows // block) * per_row + cols // block
    order = np.argsort(keys, kind="stable")
    _, starts = np.unique(keys[order], return_index=True)
    for idx in np.split(order, starts[1:]):
        r0, r1 = int(rows[idx].min()), int(rows[idx].max()) + 1
        c0, c1 = int(cols[idx].min()), int(cols[idx].max()) + 1
        yield idx, Window(c0, r0, c1 - c0, r1 - r0)


def row_strips(shape: tuple[int, int], cells: int, block: int = 256) -> list[Window]:
    """Full-width strips of about ``cells`` cells (whole tile rows when the grid is wide),
    in raster order: cells come out in the order of their flat index."""
    height, width = shape
    rows = max(1, cells // max(width, 1))
    if rows >= block:
        rows -= rows % block
    return [Window(0, r, width, min(rows, height - r)) for r in range(0, height, rows)]


@dataclass(frozen=True)
class ValidMask:
    """Where every covariate has data: a uint8 band (1 valid, 0 not), on disk or in memory.

    A run's mask is a file (:meth:`create`, :meth:`open`); :meth:`of_array`
    holds one in memory (notebooks, tests, small areas). Either is read
    window by window.
    """

    band: Band
    shape: tuple[int, int]
    count: int  # valid cells

    @staticmethod
    def create(path: Path, grid: GridSpec, block: int = 256) -> Path:
        """An all-valid mask file on the grid, to be narrowed window by window."""
        profile = grid.profile(dtype="uint8", nodata=None, blockxsize=block, blockysize=block)
        with rasterio.open(path, "w", **profile) as dst:
            for _, win in dst.block_windows(1):
                dst.write(np.ones((int(win.height), int(win.width)), np.uint8), 1, window=win)
            dst.set_band_description(1, "valid cell (every covariate has data)")
        return path

    @classmethod
    def open(cls, path: Path, chunk: int = 1024) -> ValidMask:
        """The mask in ``path``, its valid cells counted chunk by chunk."""
        band = FileBand(Path(path))
        count = 0
        with band.reader() as r:
            shape = band.shape
            for win in row_strips(shape, chunk * chunk):
                count += int(np.count_nonzero(r.read(win)))
        return cls(band, shape, count)

    @classmethod
    def from_array(cls, valid: np.ndarray, grid: GridSpec, path: Path) -> ValidMask:
        """A mask file written from an array (small grids and tests)."""
        profile = grid.profile(dtype="uint8", nodata=None)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.asarray(valid, dtype=np.uint8), 1)
        return cls(FileBand(Path(path)), grid.shape, int(np.count_nonzero(valid)))

    @classmethod
    def of_array(cls, valid: np.ndarray) -> ValidMask:
        """A mask held in memory."""
        arr = np.asarray(valid, dtype=np.uint8)
        h, w = arr.shape
        return cls(ArrayBand(arr), (int(h), int(w)), int(np.count_nonzero(arr)))

    @property
    def path(self) -> Path:
        """The mask's file (a run's mask is one)."""
        if not isinstance(self.band, FileBand):
            raise ValueError("this mask is held in memory, not in a file")
        return self.band.path

    def window(self, window: Window) -> np.ndarray:
        """The mask over ``window`` as booleans."""
        return read_band(self.band, window).astype(bool)

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Whether each cell ``(rows[i], cols[i])`` is valid (cells must be on the grid)."""
        out = np.zeros(len(rows), dtype=bool)
        with self.band.reader() as r:
            for idx, win in cell_groups(rows, cols, self.shape[1]):
                block = r.read(win)
                out[idx] = block[rows[idx] - int(win.row_off), cols[idx] - int(win.col_off)] > 0
        return out

    def to_array(self) -> np.ndarray:
        """The whole mask in memory: for tests and district-sized grids only."""
        return read_band(self.band).astype(bool)

    @property
    def share(self) -> float:
        """Share of the grid's cells that are valid."""
        return self.count / max(1, self.shape[0] * self.shape[1])
