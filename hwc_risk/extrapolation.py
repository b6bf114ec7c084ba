"""Where a model extrapolates: the multivariate environmental similarity surface (MESS).

A correlative model has seen the feature values of its training samples
only; where a cell's value of some feature lies outside their range, its
answer is a guess. MESS (Elith, Kearney & Phillips 2010, *Methods in Ecology
and Evolution* 1: 330-342), as dismo's ``mess``, ENMeval and biomod2 compute
it, measures it per cell: for each feature with reference (training) values
``v`` and a cell's value ``p``, let ``f`` be the percentage of reference values
at or below ``p``; the similarity is

- ``100 (p - min) / (max - min)`` if ``f = 0`` (below the range: negative),
- ``2 f`` if ``0 < f <= 50``,
- ``2 (100 - f)`` if ``50 < f < 100``,
- ``100 (max - p) / (max - min)`` if ``f = 100`` (at or above the maximum:
  zero or negative),

and MESS is the smallest over the features, the most dissimilar feature the
one that gives it. Negative MESS: at least one feature is outside the range
the model was trained on. A feature constant in training gives 0 where the
cell equals it and -100 elsewhere.

:class:`MessReference` holds the sorted reference values; :func:`mess_block`
is the pure kernel on a ``(n_features, rows, cols)`` block, and
:func:`write_extrapolation` the chunked driver over feature GeoTIFFs on the
grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from .compute import Compute, run_windows
from .covariates import create_band
from .grid import GridSpec

__all__ = [
    "ExtrapolationJob",
    "MessReference",
    "extrapolation_window",
    "mess_block",
    "write_extrapolation",
]

#: Code of the most-dissimilar-variable raster where MESS has no value.
NO_VARIABLE = 0


@dataclass(frozen=True)
class MessReference:
    """The training samples' values of each feature, sorted (NaN dropped)."""

    names: tuple[str, ...]
    sorted_values: tuple[np.ndarray, ...]

    @classmethod
    def from_samples(cls, X: np.ndarray, names: Sequence[str]) -> MessReference:
        """From a ``(n_samples, n_features)`` design matrix (presence and background)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(names):
            raise ValueError(f"X has shape {X.shape}, expected (n, {len(names)})")
        cols = []
        for j, name in enumerate(names):
            col = X[:, j]
            col = np.sort(col[np.isfinite(col)])
            if not col.size:
                raise ValueError(f"feature {name} has no finite training value")
            cols.append(col)
        return cls(tuple(names), tuple(cols))

    def subset(self, names: Sequence[str]) -> MessReference:
        """The reference of some features only (e.g. leaving out 0/1 indicators)."""
        index = {n: i for i, n in enumerate(self.names)}
        return MessReference(tuple(names), tuple(self.sorted_values[index[n]] for n in names))

    def similarity(self, j: int, p: np.ndarray) -> np.ndarray:
        """The MESS similarity of values ``p`` for feature ``j`` (NaN stays NaN)."""
        v = self.sorted_values[j]
        lo, hi = float(v[0]), float(v[-1])
        p = np.asarray(p, dtype=np.float64)
        f = 100.0 * np.searchsorted(v, p, side="right") / v.size
        out = np.where(f <= 50.0, 2.0 * f, 2.0 * (100.0 - f))
        if hi > lo:
            out = np.where(f == 0.0, 100.0 * (p - lo) / (hi - lo), out)
            out = np.where(f == 100.0, 100.0 * (hi - p) / (hi - lo), out)
        else:
            out = np.where(p == lo, 0.0, -100.0)
        out[~np.isfinite(p)] = np.nan
        return out


def mess_block(ref: MessReference, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MESS and the most dissimilar feature (1-based; 0 = none) of a block.

    ``features`` is ``(n_features, ...)`` in ``ref.names`` order. A cell with
    any NaN feature gets NaN and 0. Ties go to the first feature.
    """
    features = np.asarray(features)
    if features.shape[0] != len(ref.names):
        raise ValueError(f"{features.shape[0]} feature arrays for {len(ref.names)} names")
    sims = np.stack([ref.similarity(j, features[j]) for j in range(len(ref.names))])
    ok = np.isfinite(sims).all(axis=0)
    filled = np.where(np.isfinite(sims), sims, np.inf)
    most = np.argmin(filled, axis=0)
    value = np.take_along_axis(filled, most[np.newaxis], axis=0)[0]
    value = np.where(ok, value, np.nan).astype(np.float32)
    variable = np.where(ok, most + 1, NO_VARIABLE).astype(np.uint8)
    return value, variable


@dataclass(frozen=True)
class ExtrapolationJob:
    """What a worker needs for one window: the reference and the feature files."""

    ref: MessReference
    paths: tuple[str, ...]  # one GeoTIFF per feature, in ref.names order


def extrapolation_window(job: ExtrapolationJob, window: Window) -> list[np.ndarray]:
    """The window task: MESS (float32) and the most dissimilar feature (uint8)."""
    with ExitStack() as files:
        handles = [files.enter_context(rasterio.open(p)) for p in job.paths]
        block = np.stack([ds.read(1, window=window) for ds in handles])
    value, variable = mess_block(job.ref, block)
    return [value, variable]


def write_extrapolation(
    ref: MessReference,
    feature_paths: dict[str, Path],
    grid: GridSpec,
    out: Path,
    variable_out: Path,
    compute: Compute | None = None,
) -> tuple[Path, Path]:
    """Write ``extrapolation.tif`` (MESS) and the most dissimilar feature per cell.

    ``feature_paths`` maps each of ``ref.names`` to its GeoTIFF on the grid.
    The variable raster is uint8 (0 = no data; ``N`` = ``ref.names[N - 1]``,
    also in its tags ``variable_N``). Both are tiled GTiffs, written chunk by
    chunk; convert them to COGs for a run folder.
    """
    if len(ref.names) > 254:
        raise ValueError("at most 254 features fit the variable raster")
    missing = [n for n in ref.names if n not in feature_paths]
    if missing:
        raise ValueError(f"no feature file for {', '.join(missing)}")
    compute = compute or Compute()
    create_band(
        out, grid, "MESS: similarity to the training range (negative = outside)", compute.block
    )
    create_band(
        variable_out,
        grid,
        "most dissimilar feature",
        compute.block,
        dtype="uint8",
        nodata=NO_VARIABLE,
    )
    with rasterio.open(variable_out, "r+") as ds:
        ds.update_tags(**{f"variable_{i}": n for i, n in enumerate(ref.names, start=1)})
    job = ExtrapolationJob(ref, tuple(str(Path(feature_paths[n]).resolve()) for n in ref.names))
    run_windows(
        extrapolation_window, job, [out, variable_out], compute, grid.shape, "extrapolation"
    )
    return out, variable_out
