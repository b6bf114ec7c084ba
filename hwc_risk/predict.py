"""Prediction over the grid: a pure block function and chunked drivers.

:func:`predict_block` scores one ``(n_features, rows, cols)`` block, passing
only cells where every feature is valid to the model. :func:`predict_window`
is the window task (see :mod:`hwc_risk.compute`) that reads one chunk of the
feature GeoTIFFs by path and scores it; :func:`predict_to_geotiff` runs it over
the grid on a local pool or a Dask cluster, so memory depends on the chunk
size, never on the grid.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window
from sklearn.base import BaseEstimator

from .bands import Band, FileBand, file_of
from .compiled import compile_model
from .compute import Compute, run_windows
from .covariates import FeatureStack, create_band
from .models import risk_scores
from .surfaces import Area, RankedSurface, class_window

__all__ = [
    "PredictJob",
    "RiskMap",
    "map_risk",
    "predict_block",
    "predict_to_band",
    "predict_to_geotiff",
    "predict_window",
]


#: Cells scored at once within a chunk: bounds the model's own working memory (MaxEnt's
#: hinge features, a spline basis: tens of values per feature and cell) whatever the
#: chunk size and the number of features.
SCORE_CELLS = 1 << 18


def predict_block(model: BaseEstimator, features: np.ndarray) -> np.ndarray:
    """Risk of every cell of a ``(n_features, rows, cols)`` block; NaN where a feature is.

    Only cells with all features valid are passed to the model, at most
    :data:`SCORE_CELLS` at a time (each cell's score depends on its own features only).
    """
    n, h, w = features.shape
    flat = features.reshape(n, h * w)
    ok = np.flatnonzero(np.isfinite(flat).all(axis=0))
    out = np.full(h * w, np.nan, dtype=np.float32)
    compiled = compile_model(model) is not None
    for start in range(0, ok.size, SCORE_CELLS):
        cells = ok[start : start + SCORE_CELLS]
        valid = flat[:, cells]  # (n_features, n_cells), each feature contiguous
        # compiled scorers read feature by feature; others want cells contiguous
        out[cells] = risk_scores(model, valid.T if compiled else np.ascontiguousarray(valid.T))
    return out.reshape(h, w)


@dataclass(frozen=True)
class PredictJob:
    """What a worker needs to predict a window: the model and the feature bands
    (files by absolute path, so that other processes and Dask workers find them)."""

    model: BaseEstimator
    bands: tuple[Band, ...]

    @classmethod
    def of(cls, model: BaseEstimator, stack: FeatureStack) -> PredictJob:
        bands = tuple(
            FileBand(b.path.resolve()) if isinstance(b, FileBand) else b
            for b in (layer.band for layer in stack.layers)
        )
        return cls(model, bands)


def predict_window(job: PredictJob, window: Window) -> list[np.ndarray]:
    """The window task: read every feature (own handles) and score the window.

    Rows are read and scored in strips of about :data:`SCORE_CELLS` cells, so a
    window in flight holds ``n_features x SCORE_CELLS`` values, not the whole
    chunk of every feature (a monthly run has two to three times the features of
    a static one).
    """
    h, w = int(window.height), int(window.width)
    out = np.empty((h, w), dtype=np.float32)
    rows = max(1, SCORE_CELLS // max(w, 1))
    with ExitStack() as files:
        readers = [files.enter_context(band.reader()) for band in job.bands]
        for top in range(0, h, rows):
            n = min(rows, h - top)
            strip = Window(window.col_off, window.row_off + top, w, n)
            block = np.empty((len(readers), n, w), dtype=np.float32)
            for k, reader in enumerate(readers):
                block[k] = reader.read(strip)
            out[top : top + n] = predict_block(job.model, block)
    return [out]


def predict_to_band(
    model: BaseEstimator, stack: FeatureStack, out: Band, compute: Compute | None = None
) -> Band:
    """Write the risk surface into ``out`` (a band on the grid), chunk by chunk.

    Chunks run on ``compute``'s local pool (written by this thread) or its Dask
    cluster (written by the workers under a cluster-wide lock; file bands only).
    """
    compute = compute or Compute()
    job = PredictJob.of(model, stack)
    run_windows(predict_window, job, [out], compute, stack.grid.shape, "predicting")
    return out


def predict_to_geotiff(
    model: BaseEstimator,
    stack: FeatureStack,
    out_path: Path,
    compute: Compute | None = None,
) -> Path:
    """Write the risk surface to a tiled float32 GeoTIFF, chunk by chunk."""
    compute = compute or Compute()
    create_band(out_path, stack.grid, "relative conflict risk", compute.block)
    predict_to_band(model, stack, FileBand(out_path), compute)
    return out_path


@dataclass(frozen=True, kw_only=True)
class RiskMap:
    """The predict stage's result: the risk surface and its classes (tiled GeoTIFFs
    in the work folder, before their COG conversion) and each class's lower bound."""

    risk: Path
    classes: Path
    thresholds: dict[str, float]
    model: Path | None = None  # the model's own surface (risk is the shipped one)


def map_risk(
    model: BaseEstimator,
    stack: FeatureStack,
    work: Path,
    compute: Compute | None = None,
    ship: Callable[[Band], Band] | None = None,
) -> RiskMap:
    """The predict stage: the fitted model over the grid, the surface to ship (``ship``
    of the model's surface: the model's itself by default, or a history surface or a
    blend chosen on held-out months, see :mod:`hwc_risk.map_choice`), and that surface
    cut into risk classes by share of the valid area
    (:meth:`~hwc_risk.surfaces.RankedSurface.classes`), all chunk by chunk."""
    compute = compute or Compute()
    predicted = FileBand(predict_to_geotiff(model, stack, work / "risk_tiled.tif", compute))
    risk = file_of(ship(predicted) if ship is not None else predicted)
    cut = RankedSurface(risk, Area(stack.valid), chunk=compute.chunk_size).classes()
    classes = create_band(
        work / "class_tiled.tif", stack.grid, "risk class", compute.block, dtype="uint8", nodata=0
    )
    run_windows(class_window, cut, [classes], compute, stack.grid.shape, "risk classes")
    return RiskMap(risk=risk, classes=classes, thresholds=cut.thresholds, model=file_of(predicted))
