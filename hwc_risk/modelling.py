"""Fitting and validating risk models with static and history features.

A :class:`Design` holds the samples (incidents and background cells) with
their static features, and makes the history features for any training set
and month on demand, so every fit sees only incidents that precede what it is
tested on. The validation drivers here are what ``metrics.json`` reports:
rolling-origin months, spatial block cross-validation, and the choice made by
``model: auto``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .compute import Compute, run_windows
from .covariates import FeatureLayer, FeatureStack, create_band
from .history import HistoryJob, HistorySettings, history_at_samples, history_window
from .models import ModelRecipe, build_estimator
from .predict import predict_to_geotiff
from .progress import progress
from .surfaces import (
    Area,
    BaselineJob,
    RankedSurface,
    SpreadJob,
    baseline_window,
    class_captures,
    spread_window,
)
from .validation import BlockFolds, kde_bandwidth

__all__ = ["MIN_TRAINING_INCIDENTS", "Design", "fit_model", "rolling_origin", "spatial_cv"]

log = logging.getLogger(__name__)

#: Fewer incidents than this cannot train a model worth mapping.
MIN_TRAINING_INCIDENTS = 10


@dataclass
class Design:
    """Samples, their static features, and history on demand."""

    stack: FeatureStack
    X_static: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    months: np.ndarray  # month number of each sample (background: assigned)
    history: HistorySettings | None
    work: Path
    seed: int
    keep: list[int] | None = None  # static feature subset (for ablations)
    compute: Compute = field(default_factory=Compute)  # how chunked layers are computed

    @property
    def is_presence(self) -> np.ndarray:
        return self.y == 1

    @property
    def static_layers(self) -> list[FeatureLayer]:
        layers = self.stack.layers
        return layers if self.keep is None else [layers[k] for k in self.keep]

    @property
    def names(self) -> list[str]:
        names = [layer.name for layer in self.static_layers]
        return names + (self.history.names if self.history is not None else [])

    def without(self, kind: str) -> Design:
        """The same design without the static layers of one kind (e.g. connectivity)."""
        current = self.keep if self.keep is not None else range(len(self.stack.layers))
        return replace(self, keep=[k for k in current if self.stack.layers[k].kind != kind])

    def with_history(self, settings: HistorySettings | None) -> Design:
        """The same samples and static features, with (or without) history."""
        return replace(self, history=settings)

    def months_before(self, origin: int) -> np.ndarray:
        """Sample months for training before ``origin``: background redrawn from earlier months."""
        months = self.months.copy()
        earlier = np.unique(months[self.is_presence & (months < origin)])
        late_bg = ~self.is_presence & (months >= origin)
        if late_bg.any() and earlier.size:
            rng = np.random.default_rng(self.seed + origin)
            months[late_bg] = rng.choice(earlier, size=int(late_bg.sum()))
        return months

    def features(
        self, samples: np.ndarray, incidents: np.ndarray, months: np.ndarray
    ) -> np.ndarray:
        """Features of the ``samples`` rows, with history from the ``incidents`` rows."""
        X = self.X_static[samples] if self.keep is None else self.X_static[samples][:, self.keep]
        if self.history is None:
            return X
        hist = history_at_samples(
            self.rows[incidents],
            self.cols[incidents],
            self.months[incidents],
            self.rows[samples],
            self.cols[samples],
            months[samples],
            self.history,
            self.stack.grid.cell_size,
        )
        return np.hstack([X, hist])

    def stack_for(self, incidents: np.ndarray, target: int, tag: str) -> FeatureStack:
        """A feature stack for predicting month ``target`` from the ``incidents`` rows.

        The history layers are written chunk by chunk (:func:`history_window`).
        They are not masked: prediction skips cells where any static feature
        has no data.
        """
        layers = list(self.static_layers)
        if self.history is not None:
            grid = self.stack.grid
            job = HistoryJob.of(
                grid.shape,
                self.rows[incidents],
                self.cols[incidents],
                self.months[incidents],
                target,
                self.history,
                grid.cell_size,
            )
            folder = self.work / "history" / tag
            folder.mkdir(parents=True, exist_ok=True)
            new = [
                FeatureLayer(name, folder / f"{name}.tif", "history", "history", "log1p")
                for name in self.history.names
            ]
            for layer in new:
                create_band(layer.path, grid, layer.name, self.compute.block)
            run_windows(
                history_window,
                job,
                [layer.path for layer in new],
                self.compute,
                grid.shape,
                "history features",
            )
            layers.extend(new)
        return FeatureStack(
            grid=self.stack.grid,
            layers=layers,
            valid=self.stack.valid,
            class_names=self.stack.class_names,
        )


def fit_model(recipe: ModelRecipe, seed: int, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    model = build_estimator(recipe, seed)
    model.fit(X, y)
    return model


def _predicted(
    design: Design, model: BaseEstimator, incidents: np.ndarray, target: int, tag: str
) -> Path:
    """Predict month ``target`` from the ``incidents`` rows into a surface file."""
    folder = design.work / "surfaces"
    folder.mkdir(parents=True, exist_ok=True)
    stack = design.stack_for(incidents, target, tag)
    out = predict_to_geotiff(model, stack, folder / f"{tag}.tif", design.compute)
    shutil.rmtree(design.work / "history" / tag, ignore_errors=True)
    return out


def _baselines(design: Design, rows: np.ndarray, cols: np.ndarray, tag: str) -> dict[str, Path]:
    """Baseline surfaces from past incidents at ``rows, cols`` (uniform, past counts, KDE)."""
    grid = design.stack.grid
    folder = design.work / "surfaces"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{tag}-{name}.tif" for name in ("uniform", "past_counts", "kde")}
    for name, path in paths.items():
        create_band(path, grid, name, design.compute.block)
    job = BaselineJob(design.stack.valid, rows, cols, kde_bandwidth(rows, cols, grid.shape))
    run_windows(baseline_window, job, list(paths.values()), design.compute, grid.shape, "baselines")
    return paths


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def evaluate_month(
    design: Design,
    recipe: ModelRecipe,
    origin: int,
    fractions: tuple[float, ...],
    with_baselines: bool = True,
) -> dict[str, Any]:
    """Train on everything before month ``origin``, test on the month's incidents.

    Every surface (the model's and the baselines') is written to a file and
    evaluated chunk by chunk (:class:`~hwc_risk.surfaces.RankedSurface`).
    """
    p = design.is_presence
    before = p & (design.months < origin)
    test = p & (design.months == origin)
    label = _label(origin)
    if test.sum() == 0:
        return {"skipped": f"no incidents in {label} to test on"}
    if before.sum() < MIN_TRAINING_INCIDENTS:
        return {"skipped": f"only {int(before.sum())} incidents before {label} to train on"}
    train = before | ~p
    months = design.months_before(origin)
    model = fit_model(recipe, design.seed, design.features(train, before, months), design.y[train])
    tag = f"origin-{origin}"
    surface = _predicted(design, model, before, origin, tag)
    area = Area(design.stack.valid)
    chunk = design.compute.chunk_size
    tr, tc = design.rows[before], design.cols[before]
    te_r, te_c = design.rows[test], design.cols[test]
    ranked = RankedSurface.for_incidents(surface, area, te_r, te_c, chunk)
    out: dict[str, Any] = {
        "test_month": label,
        "n_train_incidents": int(before.sum()),
        "n_test_incidents": int(test.sum()),
        "model": ranked.evaluate(fractions),
    }
    if with_baselines:
        out["kde_bandwidth_cells"] = kde_bandwidth(tr, tc, design.stack.grid.shape)
        bases = _baselines(design, tr, tc, tag)
        for name, base in bases.items():
            out[name] = RankedSurface.for_incidents(base, area, te_r, te_c, chunk).evaluate(
                fractions
            )
        out["class_capture"] = class_captures(ranked.classes(), te_r, te_c)
        _remove(*bases.values())
    _remove(surface)
    return out


def _label(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def _mean_metrics(blocks: list[dict[str, float]]) -> dict[str, float]:
    keys = blocks[0].keys()
    out: dict[str, float] = {}
    for k in keys:
        values = np.array([b[k] for b in blocks], dtype=float)
        if k == "n_incidents":
            out[k] = int(values.sum())
        else:
            out[k] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def rolling_origin(
    design: Design,
    recipe: ModelRecipe,
    origins: list[int],
    fractions: tuple[float, ...],
    with_baselines: bool = True,
) -> dict[str, Any]:
    """Rolling-origin evaluation: each month in ``origins`` tested by a model of earlier months."""
    per_month = []
    for origin in progress(origins, "rolling-origin months", len(origins), "month"):
        result = evaluate_month(design, recipe, origin, fractions, with_baselines)
        if "skipped" not in result:
            per_month.append(result)
    if not per_month:
        return {"skipped": "no held-out month had incidents and enough earlier ones"}
    names = ["model"] + (["uniform", "past_counts", "kde"] if with_baselines else [])
    summary: dict[str, Any] = {
        "months": [r["test_month"] for r in per_month],
        "n_test_incidents": int(sum(r["n_test_incidents"] for r in per_month)),
    }
    for name in names:
        summary[name] = _mean_metrics([r[name] for r in per_month])
    summary["per_month"] = per_month
    return summary


def spatial_cv(
    design: Design,
    recipe: ModelRecipe,
    folds: int,
    block_size: float,
    fractions: tuple[float, ...],
    target: int,
    with_spread: bool = True,
) -> tuple[dict[str, Any], Path | None]:
    """Spatial block cross-validation, and the spread of the fold models' surfaces.

    Returns the summary and a float32 GeoTIFF (under ``design.work``) of the
    per-cell standard deviation of the fold models' predicted surfaces (an
    uncertainty layer), or None when fewer than two folds were evaluated or
    ``with_spread`` is false.
    """
    grid = design.stack.grid
    block_cells = max(1, round(block_size / grid.cell_size))
    fold_map = BlockFolds.of(grid.shape, block_cells, folds, np.random.default_rng(design.seed))
    sample_fold = fold_map.at(design.rows, design.cols)
    p = design.is_presence
    chunk = design.compute.chunk_size
    per_fold: list[dict[str, Any]] = []
    surfaces: list[Path] = []
    for f in progress(range(folds), "spatial cross-validation", folds, "fold"):
        test_p = p & (sample_fold == f)
        train = sample_fold != f
        train_p = train & p
        if test_p.sum() == 0 or train_p.sum() < MIN_TRAINING_INCIDENTS:
            continue
        model = fit_model(
            recipe, design.seed, design.features(train, train_p, design.months), design.y[train]
        )
        tag = f"fold-{f}"
        surfaces.append(_predicted(design, model, train_p, target, tag))
        area = Area(design.stack.valid, fold_map, f)
        te_r, te_c = design.rows[test_p], design.cols[test_p]
        ranked = RankedSurface.for_incidents(surfaces[-1], area, te_r, te_c, chunk)
        fold: dict[str, Any] = {"fold": f, "model": ranked.evaluate(fractions)}
        bases = _baselines(design, design.rows[train_p], design.cols[train_p], tag)
        for name, base in bases.items():
            fold[name] = RankedSurface.for_incidents(base, area, te_r, te_c, chunk).evaluate(
                fractions
            )
        _remove(*bases.values())
        per_fold.append(fold)
    if not per_fold:
        return {"skipped": "no fold had held-out incidents and enough training incidents"}, None
    summary: dict[str, Any] = {
        "block_size": block_size,
        "folds": folds,
        "folds_evaluated": len(per_fold),
    }
    for name in ("model", "uniform", "past_counts", "kde"):
        summary[name] = _mean_metrics([fd[name] for fd in per_fold])
    summary["per_fold"] = per_fold
    spread = None
    if with_spread and len(surfaces) >= 2:
        spread = design.work / "surfaces" / "spread.tif"
        create_band(
            spread,
            grid,
            "spread of the spatial-fold models' risk (standard deviation)",
            design.compute.block,
        )
        job = SpreadJob(design.stack.valid, tuple(str(s.resolve()) for s in surfaces))
        run_windows(spread_window, job, [spread], design.compute, grid.shape, "risk spread")
    _remove(*surfaces)
    return summary, spread
