"""Why the map looks as it does: permutation importance and response curves.

Both are computed on the final model with the training samples, written as
PNG figures in the run folder and as data in ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score

from .models import risk_scores

__all__ = ["explain"]

MAX_SAMPLES = 4000
CURVE_POINTS = 40


def _auc(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> float:
    return float(roc_auc_score(y, risk_scores(model, X)))


def permutation_importance(
    model: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    rng: np.random.Generator,
    repeats: int = 3,
) -> tuple[float, list[dict[str, Any]]]:
    """The model's AUC on ``X, y`` and the drop in it when each feature is shuffled
    (mean and standard deviation over ``repeats`` shuffles), largest drop first."""
    base = _auc(model, X, y)
    importance: list[dict[str, Any]] = []
    for j, name in enumerate(names):
        drops = []
        for _ in range(repeats):
            Xp = X.copy()
            Xp[:, j] = rng.permutation(Xp[:, j])
            drops.append(base - _auc(model, Xp, y))
        importance.append(
            {
                "feature": name,
                "auc_drop": float(np.mean(drops)),
                "auc_drop_sd": float(np.std(drops)),
            }
        )
    importance.sort(key=lambda r: -float(r["auc_drop"]))
    return base, importance


def response_curves(
    model: BaseEstimator, X: np.ndarray, y: np.ndarray, names: list[str]
) -> list[dict[str, Any]]:
    """The risk along each feature's 1st-99th percentile range of the background, the
    other features at their background median."""
    background = X[y == 0] if (y == 0).any() else X
    median = np.median(background, axis=0)
    curves = []
    for j, name in enumerate(names):
        lo, hi = np.percentile(background[:, j], [1, 99])
        xs = np.linspace(lo, hi, CURVE_POINTS) if hi > lo else np.array([lo])
        grid = np.tile(median, (xs.size, 1))
        grid[:, j] = xs
        curves.append(
            {
                "feature": name,
                "x": [float(v) for v in xs],
                "risk": [float(v) for v in risk_scores(model, grid.astype(np.float32))],
            }
        )
    return curves


def _importance_figure(importance: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib.pyplot as plt

    top = importance[:20]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    ax.barh(
        [str(r["feature"]) for r in top][::-1],
        [float(r["auc_drop"]) for r in top][::-1],
        xerr=[float(r["auc_drop_sd"]) for r in top][::-1],
        color="#d7191c",
    )
    ax.set_xlabel("drop in AUC when the feature is shuffled")
    ax.set_title("Permutation importance")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _curves_figure(
    curves: list[dict[str, Any]], importance: list[dict[str, Any]], path: Path
) -> Path:
    import matplotlib.pyplot as plt

    shown = [c for c in curves if c["feature"] in {r["feature"] for r in importance[:12]}]
    cols = 3
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.4 * rows), squeeze=False)
    for ax, curve in zip(axes.ravel(), shown, strict=False):
        ax.plot(curve["x"], curve["risk"], color="#d7191c")
        ax.set_title(curve["feature"], fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(shown) :]:
        ax.axis("off")
    fig.suptitle("Response curves (other features at their background median)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def explain(
    model: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    out_dir: Path,
    seed: int,
    repeats: int = 3,
) -> dict[str, Any]:
    """Permutation importance (drop in AUC) and response curves; figures in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(seed)
    if len(y) > MAX_SAMPLES:
        idx = rng.choice(len(y), MAX_SAMPLES, replace=False)
        X, y = X[idx], y[idx]
    base, importance = permutation_importance(model, X, y, names, rng, repeats)
    curves = response_curves(model, X, y, names)
    figures = [
        _importance_figure(importance, out_dir / "importance.png"),
        _curves_figure(curves, importance, out_dir / "response_curves.png"),
    ]
    return {
        "auc_on_training_samples": base,
        "permutation_importance": importance,
        "response_curves": curves,
        "figures": figures,
    }
