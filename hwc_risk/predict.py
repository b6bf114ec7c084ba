"""Prediction over the grid: a pure block function and window-by-window drivers."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from sklearn.base import BaseEstimator

from .covariates import FeatureStack
from .models import risk_scores
from .progress import progress

__all__ = ["iter_predicted_windows", "predict_block", "predict_to_array", "predict_to_geotiff"]


def predict_block(model: BaseEstimator, features: np.ndarray) -> np.ndarray:
    """Risk of every cell of a ``(n_features, rows, cols)`` block; NaN where a feature is.

    Only cells with all features valid are passed to the model.
    """
    n, h, w = features.shape
    flat = features.reshape(n, h * w).T
    ok = np.isfinite(flat).all(axis=1)
    out = np.full(h * w, np.nan, dtype=np.float32)
    if ok.any():
        out[ok] = risk_scores(model, flat[ok])
    return out.reshape(h, w)


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def iter_predicted_windows(
    model: BaseEstimator,
    stack: FeatureStack,
    window_size: int = 512,
    workers: int | None = None,
) -> Iterator[tuple[Window, np.ndarray]]:
    """Predicted windows, computed by a pool of threads, yielded in grid order.

    Each thread opens its own dataset handles (GDAL handles are not
    thread-safe); at most ``2 * workers`` windows are in flight, so memory
    stays bounded by the window size, not the grid. Prediction releases the
    GIL in NumPy and scikit-learn, so threads overlap reading and computing.
    """
    windows = list(stack.grid.windows(window_size))
    n = workers or _default_workers()
    local = threading.local()
    opened: list[list[rasterio.io.DatasetReader]] = []
    lock = threading.Lock()

    def handles() -> list[rasterio.io.DatasetReader]:
        if not hasattr(local, "handles"):
            local.handles = [rasterio.open(layer.path) for layer in stack.layers]
            with lock:
                opened.append(local.handles)
        return list(local.handles)

    def work(win: Window) -> np.ndarray:
        block = predict_block(model, stack.read_window(handles(), win))
        r, c = int(win.row_off), int(win.col_off)
        block[~stack.valid[r : r + block.shape[0], c : c + block.shape[1]]] = np.nan
        return block

    try:
        if n == 1:
            for win in windows:
                yield win, work(win)
            return
        with ThreadPoolExecutor(max_workers=n) as pool:
            pending: deque[tuple[Window, Future[np.ndarray]]] = deque()
            queue = iter(windows)
            for win in queue:
                pending.append((win, pool.submit(work, win)))
                if len(pending) >= 2 * n:
                    break
            while pending:
                win, future = pending.popleft()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(work, nxt)))
                yield win, future.result()
    finally:
        for group in opened:
            for ds in group:
                ds.close()


def predict_to_array(
    model: BaseEstimator, stack: FeatureStack, window_size: int = 512, workers: int | None = None
) -> np.ndarray:
    """The risk surface as one float32 array, computed window by window."""
    out = np.full(stack.grid.shape, np.nan, dtype=np.float32)
    for win, block in iter_predicted_windows(model, stack, window_size, workers):
        r, c = int(win.row_off), int(win.col_off)
        out[r : r + block.shape[0], c : c + block.shape[1]] = block
    return out


def predict_to_geotiff(
    model: BaseEstimator,
    stack: FeatureStack,
    out_path: Path,
    window_size: int = 512,
    workers: int | None = None,
) -> Path:
    """Write the risk surface to a tiled float32 GeoTIFF, window by window.

    Windows are predicted by a thread pool (:func:`iter_predicted_windows`) and
    written by this thread only, in grid order.
    """
    profile = stack.grid.profile(dtype="float32", nodata=np.nan, predictor=3)
    n_windows = sum(1 for _ in stack.grid.windows(window_size))
    with rasterio.open(out_path, "w", **profile) as dst:
        for win, block in progress(
            iter_predicted_windows(model, stack, window_size, workers),
            "predicting",
            n_windows,
            "window",
        ):
            dst.write(block, 1, window=win)
    return out_path
