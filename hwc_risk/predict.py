"""Prediction over the grid: a pure block function and window-by-window drivers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from sklearn.base import BaseEstimator

from .covariates import FeatureStack
from .models import risk_scores
from .progress import progress

__all__ = ["predict_block", "predict_to_array", "predict_to_geotiff"]


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


def predict_to_array(
    model: BaseEstimator, stack: FeatureStack, window_size: int = 512
) -> np.ndarray:
    """The risk surface as one float32 array, computed window by window."""
    out = np.full(stack.grid.shape, np.nan, dtype=np.float32)
    with stack.open() as handles:
        for win in stack.grid.windows(window_size):
            block = predict_block(model, stack.read_window(handles, win))
            r, c = int(win.row_off), int(win.col_off)
            out[r : r + block.shape[0], c : c + block.shape[1]] = block
    out[~stack.valid] = np.nan
    return out


def predict_to_geotiff(
    model: BaseEstimator, stack: FeatureStack, out_path: Path, window_size: int = 512
) -> Path:
    """Write the risk surface to a tiled float32 GeoTIFF, window by window.

    Only one window of features is in memory at a time.
    """
    profile = stack.grid.profile(dtype="float32", nodata=np.nan, predictor=3)
    windows = list(stack.grid.windows(window_size))
    with stack.open() as handles, rasterio.open(out_path, "w", **profile) as dst:
        for win in progress(windows, "predicting", len(windows), "window"):
            block = predict_block(model, stack.read_window(handles, win))
            r, c = int(win.row_off), int(win.col_off)
            block[~stack.valid[r : r + block.shape[0], c : c + block.shape[1]]] = np.nan
            dst.write(block, 1, window=win)
    return out_path
