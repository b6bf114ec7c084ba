"""Presence and background samples: which cells the model learns from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from .mask import ValidMask, row_strips

__all__ = ["Samples", "sample_background", "sample_weighted"]

#: Cells read at a time when drawing samples.
STRIP_CELLS = 1 << 20


def sample_background(valid: ValidMask, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of ``n_points`` distinct valid cells drawn uniformly (all if fewer).

    The draw is of ranks among the valid cells in raster order (the same draw
    as ``rng.choice`` over the array of valid cells); ranks are turned into
    cells strip by strip, so no grid-sized array is made.
    """
    n = min(n_points, valid.count)
    ranks = np.sort(rng.choice(valid.count, size=n, replace=False)) if n < valid.count else None
    out: list[np.ndarray] = []
    seen = 0
    with rasterio.open(valid.path) as ds:
        for win in row_strips(valid.shape, STRIP_CELLS):
            flat = np.flatnonzero(ds.read(1, window=win)) + int(win.row_off) * valid.shape[1]
            if ranks is None:
                out.append(flat)
            else:
                lo, hi = np.searchsorted(ranks, [seen, seen + flat.size])
                out.append(flat[ranks[lo:hi] - seen])
            seen += flat.size
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def sample_weighted(
    weights_path: Path, valid: ValidMask, n_points: int, rng: np.random.Generator
) -> np.ndarray:
    """Flat indices of up to ``n_points`` distinct valid cells drawn with probability
    proportional to the positive values of a raster on the grid, without replacement.

    Efraimidis and Spirakis (2006, Information Processing Letters 97:181-185):
    every cell gets the key ``Exp(1) / weight`` and the smallest keys win; the
    keys are drawn strip by strip in raster order, keeping only the best
    ``n_points``, so memory does not grow with the grid.
    """
    best_keys = np.zeros(0)
    best_cells = np.zeros(0, dtype=np.int64)
    with rasterio.open(weights_path) as wds, rasterio.open(valid.path) as vds:
        for win in row_strips(valid.shape, STRIP_CELLS):
            w = wds.read(1, window=win).astype(np.float64)
            ok = (vds.read(1, window=win) > 0) & np.isfinite(w) & (w > 0)
            flat = np.flatnonzero(ok)
            keys = rng.exponential(size=flat.size) / w.ravel()[flat]
            best_keys = np.concatenate([best_keys, keys])
            best_cells = np.concatenate([best_cells, flat + int(win.row_off) * valid.shape[1]])
            if best_keys.size > n_points:
                keep = np.argpartition(best_keys, n_points - 1)[:n_points]
                best_keys, best_cells = best_keys[keep], best_cells[keep]
    return np.sort(best_cells)


@dataclass
class Samples:
    """Presence (incident) and background cells with their features.

    ``X`` has one row per sample, presences first; ``y`` is 1 for presence
    and 0 for background; ``rows``/``cols`` are the cells; ``dates`` holds the
    incident date of presences (NaT for background).
    """

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    dates: np.ndarray
    feature_names: list[str]

    @property
    def n_presence(self) -> int:
        return int(self.y.sum())

    def subset(self, mask: np.ndarray) -> Samples:
        return Samples(
            self.X[mask],
            self.y[mask],
            self.rows[mask],
            self.cols[mask],
            self.dates[mask],
            self.feature_names,
        )
