"""Values of a source raster at some cells of the analysis grid, without aligning all of it.

For training samples a monthly covariate is needed at a few thousand cells,
each in its own month: warping a whole month onto the grid for them would
cost a grid per month. Instead each cell gets a *footprint* in the source's
pixels, computed once, and a month's values are a weighted sum of the few
source pixels under it, read by window (:func:`gather`).

The footprints follow the rule and the kernels of the whole-layer alignment
(:func:`hwc_risk.rasters.align_file`, GDAL's warper), so a sample's
value is the value of the aligned layer at its cell:

- ``average`` when the source is more than 1.5 times finer than the grid:
  the mean of the source pixels under the cell, each weighted by the share of
  it the cell covers (GDAL's average);
- ``bilinear`` otherwise: a triangle kernel on pixel centres, widened when the
  source is finer than the grid (as GDAL widens it when it downsamples).

Nodata pixels are left out and the weights of the others renormalised; a cell
whose centre is outside the source has no value (NaN), as in a warp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pyproj import Transformer
from rasterio.windows import Window

from ..grid import GridSpec

__all__ = ["Footprints", "footprints", "gather", "resampling_for"]

#: Side, in source pixels, of the windows :func:`gather` reads.
READ_BLOCK = 256
#: Source pixels weighed at once (cells x footprint): bounds memory when the source is
#: much finer than the grid (e.g. 10 m imagery on a 1 km grid: 10 000 pixels a cell).
BATCH_PIXELS = 1 << 22

Resampling = Literal["average", "bilinear"]


@dataclass(frozen=True)
class Footprints:
    """Where each of ``n`` cells takes its value from in a source grid.

    Cell ``i``'s value is the sum over ``a < ky``, ``b < kx`` of
    ``wy[i, a] * wx[i, b] * src[row0[i] + a, col0[i] + b]`` over valid
    pixels, divided by the sum of those weights. ``inside`` is False for
    cells whose centre is outside the source (no value); ``centre`` is the flat
    index of the source pixel under each cell's centre (bilinear values need it
    valid, as GDAL's warper does).
    """

    row0: np.ndarray
    col0: np.ndarray
    wy: np.ndarray
    wx: np.ndarray
    inside: np.ndarray
    centre: np.ndarray
    resampling: Resampling

    def subset(self, index: np.ndarray) -> Footprints:
        """The footprints of some of the cells."""
        return Footprints(
            row0=self.row0[index],
            col0=self.col0[index],
            wy=self.wy[index],
            wx=self.wx[index],
            inside=self.inside[index],
            centre=self.centre[index],
            resampling=self.resampling,
        )


def _to_source(
    grid: GridSpec, src: GridSpec, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grid-CRS coordinates as fractional (col, row) pixel coordinates of the source."""
    if grid.crs != src.crs:
        x, y = Transformer.from_crs(grid.crs, src.crs, always_xy=True).transform(x, y)
    inv = ~src.transform
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f


def resampling_for(grid: GridSpec, src: GridSpec) -> Resampling:
    """The rule of :func:`hwc_risk.rasters.align_array`: average when the source is more than
    1.5 times finer than the grid, else bilinear."""
    from rasterio.warp import transform_bounds

    left, _, right, _ = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    src_cell = (right - left) / src.width
    return "average" if grid.cell_size / src_cell > 1.5 else "bilinear"


def _axis_weights(
    centre: np.ndarray, half: np.ndarray, resampling: Resampling, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """First pixel and ``k`` weights along one axis (pixel ``j`` spans ``[j, j + 1)``)."""
    if resampling == "average":
        lo, hi = centre - half, centre + half
        start = np.floor(lo).astype(np.int64)
        j = start[:, None] + np.arange(k)
        w = np.clip(np.minimum(j + 1, hi[:, None]) - np.maximum(j, lo[:, None]), 0, None)
        return start, w
    radius = np.maximum(1.0, 2 * half)  # the cell's width in source pixels, at least one
    start = np.floor(centre - 0.5 - radius).astype(np.int64) + 1
    j = start[:, None] + np.arange(k)
    w = np.clip(1 - np.abs(j + 0.5 - centre[:, None]) / radius[:, None], 0, None)
    return start, w


def footprints(grid: GridSpec, rows: np.ndarray, cols: np.ndarray, src: GridSpec) -> Footprints:
    """The footprints of cells ``(rows, cols)`` of ``grid`` in the source grid ``src``."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    resampling = resampling_for(grid, src)
    xc, yc = grid.cell_centres(rows, cols)
    u, v = _to_source(grid, src, xc, yc)
    # the cell's extent in source pixels, from its corners
    hx, hy = grid.res[0] / 2, grid.res[1] / 2
    corners = [_to_source(grid, src, xc + dx, yc + dy) for dx in (-hx, hx) for dy in (-hy, hy)]
    cu = np.stack([c[0] for c in corners])
    cv = np.stack([c[1] for c in corners])
    half_u = (cu.max(axis=0) - cu.min(axis=0)) / 2 if rows.size else np.zeros(0)
    half_v = (cv.max(axis=0) - cv.min(axis=0)) / 2 if rows.size else np.zeros(0)

    def support(half: np.ndarray) -> int:
        widest = float(half.max()) if half.size else 0.5
        if resampling == "average":
            return math.ceil(2 * widest) + 1
        return 2 * math.ceil(max(1.0, 2 * widest)) + 1

    col0, wx = _axis_weights(u, half_u, resampling, support(half_u))
    row0, wy = _axis_weights(v, half_v, resampling, support(half_v))
    inside = (u >= 0) & (u < src.width) & (v >= 0) & (v < src.height)
    centre = np.where(
        inside, np.floor(v).astype(np.int64) * src.width + np.floor(u).astype(np.int64), -1
    )
    return Footprints(
        row0=row0, col0=col0, wy=wy, wx=wx, inside=inside, centre=centre, resampling=resampling
    )


def gather(
    read: Callable[[Window], np.ndarray], shape: tuple[int, int], fp: Footprints
) -> np.ndarray:
    """Values of the footprints' cells from a source read by ``read(window)``.

    ``shape`` is the source's (rows, cols). The source pixels under all
    footprints are read in windows of at most :data:`READ_BLOCK` pixels a
    side, each only over the pixels needed in it.
    """
    n, ky = fp.wy.shape
    kx = fp.wx.shape[1]
    if n == 0:
        return np.zeros(0)
    if n * ky * kx > BATCH_PIXELS and n > 1:  # a source much finer than the grid
        half = n // 2
        return np.concatenate(
            [
                gather(read, shape, fp.subset(np.arange(half))),
                gather(read, shape, fp.subset(np.arange(half, n))),
            ]
        )
    r = fp.row0[:, None, None] + np.arange(ky)[None, :, None]
    c = fp.col0[:, None, None] + np.arange(kx)[None, None, :]
    r, c = np.broadcast_to(r, (n, ky, kx)), np.broadcast_to(c, (n, ky, kx))
    weight = fp.wy[:, :, None] * fp.wx[:, None, :]
    ok = (weight > 0) & (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    ok &= fp.inside[:, None, None]
    flat = np.where(ok, r * shape[1] + c, -1)
    check_centre = fp.resampling == "bilinear"
    needed = np.concatenate([flat[ok], fp.centre[fp.inside]]) if check_centre else flat[ok]
    wanted = np.unique(needed)
    values = _read_pixels(read, shape, wanted)
    pixel = np.full(flat.shape, np.nan)
    pixel[ok] = values[np.searchsorted(wanted, flat[ok])]
    good = np.isfinite(pixel)
    if check_centre:
        centre_ok = np.zeros(n, dtype=bool)
        centre_ok[fp.inside] = np.isfinite(values[np.searchsorted(wanted, fp.centre[fp.inside])])
        good &= centre_ok[:, None, None]
    total = np.where(good, weight, 0).sum(axis=(1, 2))
    acc = np.where(good, weight * np.where(good, pixel, 0), 0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, acc / total, np.nan)


def _read_pixels(
    read: Callable[[Window], np.ndarray], shape: tuple[int, int], flat: np.ndarray
) -> np.ndarray:
    """Values of sorted unique flat pixel indices, read block by block."""
    out = np.full(flat.size, np.nan)
    if flat.size == 0:
        return out
    rows, cols = np.divmod(flat, shape[1])
    block = (rows // READ_BLOCK) * (shape[1] // READ_BLOCK + 1) + cols // READ_BLOCK
    order = np.argsort(block, kind="stable")
    bounds = np.flatnonzero(np.diff(block[order])) + 1
    for group in np.split(order, bounds):
        r, c = rows[group], cols[group]
        r0, c0 = int(r.min()), int(c.min())
        win = Window(c0, r0, int(c.max()) - c0 + 1, int(r.max()) - r0 + 1)
        out[group] = read(win)[r - r0, c - c0]
    return out
