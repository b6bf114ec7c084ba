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
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from .bands import Band, FileStore, MemoryStore, Store
from .compute import Compute, run_tasks, run_windows
from .covariates import FeatureLayer, FeatureStack
from .history import HistoryJob, HistorySettings, history_at_samples, history_window
from .models import ModelRecipe, build_estimator, fit_estimator
from .months import Month
from .predict import predict_to_band
from .sampling import Samples
from .surfaces import (
    Area,
    BaselineJob,
    RankedSurface,
    SpreadJob,
    baseline_window,
    class_captures,
    spread_window,
)
from .temporal.stack import DriverMonth
from .validation import (
    BASELINES,
    FORECAST_BASELINES,
    BlockFolds,
    FoldEvaluation,
    Metrics,
    MonthEvaluation,
    RollingOrigin,
    Skipped,
    SpatialCV,
    kde_bandwidth,
)

__all__ = [
    "MIN_TRAINING_INCIDENTS",
    "Design",
    "DesignCache",
    "FittedModel",
    "HeldOut",
    "RollingMonths",
    "SpatialFolds",
    "baseline_bands",
    "baseline_metrics",
    "evaluate_month",
    "fit_final",
    "fit_held_out",
    "fit_model",
    "predicted_surface",
    "remove_surfaces",
    "rolling_origin",
    "run_jobs",
    "spatial_cv",
]

log = logging.getLogger(__name__)

#: Fewer incidents than this cannot train a model worth mapping.
MIN_TRAINING_INCIDENTS = 10


@dataclass
class DesignCache:
    """What every variant of a design (other features, other recipes) computes alike:
    the baselines' metrics of each held-out month and fold."""

    baselines: dict[tuple[str, tuple[float, ...]], dict[str, Metrics]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    key_locks: dict[tuple[str, tuple[float, ...]], threading.Lock] = field(default_factory=dict)

    @contextmanager
    def holding(self, key: tuple[str, tuple[float, ...]]) -> Iterator[dict[str, Metrics]]:
        """The cached baselines of ``key``, held alone: an empty dict to fill if new."""
        with self.lock:
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:
            yield self.baselines.setdefault(key, {})


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
    store: Store  # where surfaces and history layers go: a folder, or memory
    seed: int
    keep: list[int] | None = None  # static feature subset (for ablations)
    # background months drawn from the incidents' (redrawn before a held-out month), or
    # over the study period (late ones left out of training instead: time features)
    redraw_background: bool = True
    forecast_baselines: bool = False  # held-out months also against FORECAST_BASELINES
    compute: Compute = field(default_factory=Compute)  # how chunked layers are computed
    cache: DesignCache = field(default_factory=lambda: DesignCache())  # shared by variants

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

    @classmethod
    def of(
        cls,
        samples: Samples,
        stack: FeatureStack,
        seed: int,
        store: Store | None = None,
        compute: Compute | None = None,
    ) -> Design:
        """The design of a run's samples, without history (chosen later)."""
        return cls(
            stack=stack,
            X_static=samples.X,
            y=samples.y,
            rows=samples.rows,
            cols=samples.cols,
            months=samples.months,
            history=None,
            store=store if store is not None else MemoryStore(),
            compute=compute or Compute(),
            seed=seed,
            redraw_background=samples.background_months == "incidents",
        )

    @classmethod
    def for_run(
        cls, samples: Samples, stack: FeatureStack, seed: int, work: Path, compute: Compute
    ) -> Design:
        """A run's design: features and validation surfaces in memory when the grid is
        small (:meth:`~hwc_risk.compute.Compute.holds_in_memory`), else tiled files in
        ``work``; :meth:`hwc_risk.selection.Selection.on_disk` hands the later stages
        files again."""
        if compute.holds_in_memory(stack.grid.shape, len(stack.layers)):
            return cls.of(samples, stack.in_memory(), seed, MemoryStore(), compute)
        return cls.of(samples, stack, seed, FileStore(work, compute.block), compute)

    def without(self, kind: str) -> Design:
        """The same design without the static layers of one kind (e.g. connectivity)."""
        current = self.keep if self.keep is not None else range(len(self.stack.layers))
        return replace(self, keep=[k for k in current if self.stack.layers[k].kind != kind])

    def with_history(self, settings: HistorySettings | None) -> Design:
        """The same samples and static features, with (or without) history."""
        return replace(self, history=settings)

    def training_rows(self, origin: Month) -> np.ndarray:
        """The samples a model tested on ``origin`` is trained on: incidents before it, and
        the background (only that of earlier months when background months were drawn over
        the study period: their time features are their own month's)."""
        p = self.is_presence
        before = self.months < origin.index
        return (p & before) | (~p & (before | self.redraw_background))

    def months_before(self, origin: Month) -> np.ndarray:
        """Sample months for training before ``origin``: background redrawn from earlier months."""
        months = self.months.copy()
        if not self.redraw_background:
            return months
        earlier = np.unique(months[self.is_presence & (months < origin.index)])
        late_bg = ~self.is_presence & (months >= origin.index)
        if late_bg.any() and earlier.size:
            rng = np.random.default_rng(self.seed + origin.index)
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

    def stack_for(
        self, incidents: np.ndarray, target: Month, tag: str, drivers: DriverMonth | None = None
    ) -> FeatureStack:
        """A feature stack for predicting month ``target`` from the ``incidents`` rows.

        The history layers are written chunk by chunk (:func:`history_window`).
        They are not masked: prediction skips cells where any static feature
        has no data. Time features are those of ``drivers`` (default: ``target`` as
        a forecast made at the end of the month before it).
        """
        layers = list(self.static_layers)
        if self.stack.time is not None:
            layers = self.stack.time.swap(layers, drivers or DriverMonth.forecast(target))
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
            store = self.store.child("history").child(tag)
            new = [
                FeatureLayer(
                    name=name,
                    covariate="history",
                    kind="history",
                    units="log1p of incidents (count) or incidents per km2 (kde)",
                    transform="log1p",
                    band=store.band(name, grid.shape, grid, name),
                )
                for name in self.history.names
            ]
            bands = [layer.band for layer in new]
            run_windows(history_window, job, bands, self.compute, grid.shape, "history features")
            layers.extend(new)
        return FeatureStack(
            grid=self.stack.grid,
            layers=layers,
            valid=self.stack.valid,
            class_names=self.stack.class_names,
            time=self.stack.time,
        )


def fit_model(recipe: ModelRecipe, seed: int, X: np.ndarray, y: np.ndarray) -> BaseEstimator:
    """A recipe's estimator fitted on ``X, y``."""
    model = build_estimator(recipe, seed)
    fit_estimator(model, X, y)
    return model


@dataclass(frozen=True, kw_only=True)
class FittedModel:
    """The fit stage's result: the model fitted on every sample, and the feature stack
    it maps (history up to the run's month)."""

    model: BaseEstimator
    recipe: ModelRecipe
    X: np.ndarray  # the features of every sample, as fitted (for explanations)
    y: np.ndarray
    names: list[str]
    stack: FeatureStack


def fit_final(design: Design, recipe: ModelRecipe, month: Month) -> FittedModel:
    """The fit stage: ``recipe`` on every sample of ``design``, and the stack to map the
    month after ``month`` with (history from every incident up to ``month``).

    The fit runs on one BLAS/OpenMP thread, as the validation's fits do, so the map
    does not depend on the machine's number of cores.
    """
    everything = np.ones(design.y.size, dtype=bool)
    X = design.features(everything, design.is_presence, design.months)
    with threadpool_limits(limits=1):  # as every validation fit: see compute.run_tasks
        model = fit_model(recipe, design.seed, X, design.y)
    # the month's own covariates and season, history as of the month after it
    drivers = DriverMonth(month=month, known=month)
    stack = design.stack_for(design.is_presence, month + 1, "final", drivers)
    return FittedModel(model=model, recipe=recipe, X=X, y=design.y, names=design.names, stack=stack)


def predicted_surface(
    design: Design, model: BaseEstimator, incidents: np.ndarray, target: Month, tag: str
) -> Band:
    """Predict month ``target`` from the ``incidents`` rows into a surface band."""
    grid = design.stack.grid
    stack = design.stack_for(incidents, target, tag)
    out = design.store.child("surfaces").band(tag, grid.shape, grid, "relative conflict risk")
    predict_to_band(model, stack, out, design.compute)
    design.store.child("history").child(tag).clear()
    return out


def baseline_bands(design: Design, rows: np.ndarray, cols: np.ndarray, tag: str) -> dict[str, Band]:
    """Baseline surfaces from past incidents at ``rows, cols``: :data:`BASELINES`."""
    grid = design.stack.grid
    store = design.store.child("surfaces")
    bands = {name: store.band(f"{tag}-{name}", grid.shape, grid, name) for name in BASELINES}
    job = BaselineJob(design.stack.valid, rows, cols, kde_bandwidth(rows, cols, grid.shape))
    run_windows(baseline_window, job, list(bands.values()), design.compute, grid.shape, "baselines")
    return bands


def remove_surfaces(design: Design, *bands: Band) -> None:
    design.store.child("surfaces").remove(*bands)


def baseline_metrics(
    design: Design,
    train: np.ndarray,
    area: Area,
    test: np.ndarray,
    fractions: tuple[float, ...],
    tag: str,
) -> dict[str, Metrics]:
    """The baselines' metrics for incidents ``test`` from the earlier incidents ``train``.

    The same for every model evaluated on the same split, so they are
    computed once per split and design family (:attr:`Design.cache`).
    """
    with design.cache.holding((tag, fractions)) as cached:
        if cached:
            return cached
        chunk = design.compute.chunk_size
        bases = baseline_bands(design, design.rows[train], design.cols[train], tag)
        te_r, te_c = design.rows[test], design.cols[test]
        for name, path in bases.items():
            ranked = RankedSurface.for_incidents(path, area, te_r, te_c, chunk)
            cached[name] = ranked.evaluate(fractions)
        remove_surfaces(design, *bases.values())
        return cached


def kde_window(job: BaselineJob, window: Window) -> list[np.ndarray]:
    """The window task of a kernel density of incidents alone (see :func:`baseline_window`)."""
    return [baseline_window(job, window)[2]]


def _forecast_baseline_metrics(
    design: Design,
    origin: Month,
    area: Area,
    test: np.ndarray,
    fractions: tuple[float, ...],
    tag: str,
) -> dict[str, Metrics]:
    """:data:`~hwc_risk.validation.FORECAST_BASELINES` for ``origin``'s incidents: kernel
    densities of the incidents of the month a year before, and of the 12 months before."""
    p, m = design.is_presence, design.months
    subsets = {
        "same_month_last_year": p & (m == origin.index - 12),
        "last_12_months": p & (m >= origin.index - 12) & (m < origin.index),
    }
    grid, store = design.stack.grid, design.store.child("surfaces")
    with design.cache.holding((f"{tag}-forecast", fractions)) as cached:
        if cached:
            return cached
        for name in FORECAST_BASELINES:
            rows, cols = design.rows[subsets[name]], design.cols[subsets[name]]
            band = store.band(f"{tag}-{name}", grid.shape, grid, name)
            job = BaselineJob(design.stack.valid, rows, cols, kde_bandwidth(rows, cols, grid.shape))
            run_windows(kde_window, job, [band], design.compute, grid.shape, name.replace("_", " "))
            ranked = RankedSurface.for_incidents(
                band, area, design.rows[test], design.cols[test], design.compute.chunk_size
            )
            cached[name] = ranked.evaluate(fractions)
            remove_surfaces(design, band)
        return cached


@dataclass(frozen=True, kw_only=True)
class HeldOut:
    """A model of the months before ``month`` and the incidents it is tested on."""

    month: Month
    model: BaseEstimator
    before: np.ndarray  # the presences it was trained on
    test: np.ndarray  # the month's presences
    surface: Band  # its prediction of the month

    @property
    def tag(self) -> str:
        return f"origin-{self.month.index}"


def fit_held_out(design: Design, recipe: ModelRecipe, origin: Month) -> HeldOut | Skipped:
    """Train on everything before month ``origin`` and predict the month's surface."""
    p = design.is_presence
    before = p & (design.months < origin.index)
    test = p & (design.months == origin.index)
    if test.sum() == 0:
        return Skipped(f"no incidents in {origin.label} to test on")
    if before.sum() < MIN_TRAINING_INCIDENTS:
        return Skipped(f"only {int(before.sum())} incidents before {origin.label} to train on")
    train = design.training_rows(origin)
    months = design.months_before(origin)
    model = fit_model(recipe, design.seed, design.features(train, before, months), design.y[train])
    tag = f"origin-{origin.index}-{recipe.name}-{id(model)}"
    surface = predicted_surface(design, model, before, origin, tag)
    return HeldOut(month=origin, model=model, before=before, test=test, surface=surface)


def evaluate_month(
    design: Design,
    recipe: ModelRecipe,
    origin: Month,
    fractions: tuple[float, ...],
    with_baselines: bool = True,
) -> MonthEvaluation | Skipped:
    """Train on everything before month ``origin``, test on the month's incidents.

    Every surface (the model's and the baselines') is written to a file and
    evaluated chunk by chunk (:class:`~hwc_risk.surfaces.RankedSurface`).
    """
    held = fit_held_out(design, recipe, origin)
    if isinstance(held, Skipped):
        return held
    area = Area(design.stack.valid)
    te_r, te_c = design.rows[held.test], design.cols[held.test]
    chunk = design.compute.chunk_size
    ranked = RankedSurface.for_incidents(held.surface, area, te_r, te_c, chunk)
    result = MonthEvaluation(
        month=origin,
        n_train=int(held.before.sum()),
        n_test=int(held.test.sum()),
        model=ranked.evaluate(fractions),
    )
    if with_baselines:
        before = held.before
        result = replace(
            result,
            baselines=baseline_metrics(design, before, area, held.test, fractions, held.tag),
            kde_bandwidth_cells=kde_bandwidth(
                design.rows[before], design.cols[before], design.stack.grid.shape
            ),
            class_capture=class_captures(ranked.classes(), te_r, te_c),
        )
    if with_baselines and design.forecast_baselines:
        extra = _forecast_baseline_metrics(design, origin, area, held.test, fractions, held.tag)
        result = replace(result, forecast_baselines=extra)
    remove_surfaces(design, held.surface)
    return result


@dataclass(frozen=True)
class RollingMonths:
    """A rolling-origin validation to run: one task per held-out month.

    :meth:`tasks` are independent (a fit and its evaluation each) and can run
    side by side with other validations' tasks (:func:`run_jobs`);
    :meth:`summarise` turns their results into the summary.
    """

    design: Design
    recipe: ModelRecipe
    origins: tuple[Month, ...]
    fractions: tuple[float, ...]
    with_baselines: bool = True

    def tasks(self) -> list[Callable[[], MonthEvaluation | Skipped]]:
        return [
            partial(
                evaluate_month, self.design, self.recipe, o, self.fractions, self.with_baselines
            )
            for o in self.origins
        ]

    def summarise(self, results: Sequence[MonthEvaluation | Skipped]) -> RollingOrigin | Skipped:
        per_month = [r for r in results if isinstance(r, MonthEvaluation)]
        skipped = {
            o: r for o, r in zip(self.origins, results, strict=True) if isinstance(r, Skipped)
        }
        if not per_month:
            # the months' own reasons (the last held-out month is the run's)
            return Skipped("; ".join(dict.fromkeys(r.reason for r in reversed(skipped.values()))))
        return RollingOrigin(per_month=tuple(per_month), skipped=skipped)


@dataclass(frozen=True)
class SpatialFolds:
    """A spatial block cross-validation to run: one task per fold (see :class:`RollingMonths`).

    The summary comes with the spread of the fold models' surfaces: a float32
    band (in ``design.store``) of their per-cell standard deviation (an
    uncertainty layer), or None when fewer than two folds were evaluated or
    ``with_spread`` is false.
    """

    design: Design
    recipe: ModelRecipe
    folds: int
    block_size: float
    fractions: tuple[float, ...]
    target: Month
    with_spread: bool = True
    with_baselines: bool = True

    @property
    def fold_map(self) -> BlockFolds:
        grid = self.design.stack.grid
        block_cells = max(1, round(self.block_size / grid.cell_size))
        rng = np.random.default_rng(self.design.seed)
        return BlockFolds.of(grid.shape, block_cells, self.folds, rng)

    def tasks(self) -> list[Callable[[], tuple[FoldEvaluation, Band] | None]]:
        fold_map = self.fold_map
        return [
            partial(
                _evaluate_fold,
                self.design,
                self.recipe,
                fold_map,
                f,
                self.fractions,
                self.target,
                self.with_baselines,
            )
            for f in range(self.folds)
        ]

    def summarise(
        self, results: Sequence[tuple[FoldEvaluation, Band] | None]
    ) -> tuple[SpatialCV | Skipped, Band | None]:
        done = [r for r in results if r is not None]
        surfaces = [path for _, path in done]
        if not done:
            return Skipped("no fold had held-out incidents and enough training incidents"), None
        summary = SpatialCV(
            block_size=self.block_size, folds=self.folds, per_fold=tuple(f for f, _ in done)
        )
        spread = None
        if self.with_spread and len(surfaces) >= 2:
            spread = _spread(self.design, surfaces, f"spread-{self.recipe.name}-{id(summary)}")
        remove_surfaces(self.design, *surfaces)
        return summary, spread


#: The band description of the spatial-fold models' spread (``risk_sd.tif``).
SPREAD_DESCRIPTION = "spread of the spatial-fold models' risk (standard deviation)"


def _spread(design: Design, surfaces: list[Band], name: str) -> Band:
    """The per-cell standard deviation of the fold models' surfaces, as a band."""
    grid = design.stack.grid
    spread = design.store.child("surfaces").band(name, grid.shape, grid, SPREAD_DESCRIPTION)
    job = SpreadJob(design.stack.valid, tuple(surfaces))
    run_windows(spread_window, job, [spread], design.compute, grid.shape, "risk spread")
    return spread


def run_jobs(compute: Compute, jobs: Sequence[Any], desc: str) -> list[Any]:
    """The summaries of several validations (:class:`RollingMonths`,
    :class:`SpatialFolds`), their tasks run side by side (:func:`~hwc_risk.compute.run_tasks`)."""
    tasks = [job.tasks() for job in jobs]
    results = run_tasks([t for group in tasks for t in group], compute, desc, "fit")
    out, start = [], 0
    for job, group in zip(jobs, tasks, strict=True):
        out.append(job.summarise(results[start : start + len(group)]))
        start += len(group)
    return out


def rolling_origin(
    design: Design,
    recipe: ModelRecipe,
    origins: Sequence[Month],
    fractions: tuple[float, ...],
    with_baselines: bool = True,
) -> RollingOrigin | Skipped:
    """Rolling-origin evaluation: each month in ``origins`` tested by a model of earlier months."""
    job = RollingMonths(design, recipe, tuple(origins), fractions, with_baselines)
    result: RollingOrigin | Skipped = run_jobs(design.compute, [job], "rolling-origin months")[0]
    return result


def _evaluate_fold(
    design: Design,
    recipe: ModelRecipe,
    folds: BlockFolds,
    fold: int,
    fractions: tuple[float, ...],
    target: Month,
    with_baselines: bool,
) -> tuple[FoldEvaluation, Band] | None:
    """A model of the other folds tested on fold ``fold``; its evaluation and surface."""
    p = design.is_presence
    sample_fold = folds.at(design.rows, design.cols)
    test_p = p & (sample_fold == fold)
    train = sample_fold != fold
    train_p = train & p
    if test_p.sum() == 0 or train_p.sum() < MIN_TRAINING_INCIDENTS:
        return None
    model = fit_model(
        recipe, design.seed, design.features(train, train_p, design.months), design.y[train]
    )
    tag = f"fold-{fold}-of-{folds.fold_of_block.max() + 1}-{folds.block_cells}"
    surface = predicted_surface(design, model, train_p, target, f"{tag}-{recipe.name}-{id(model)}")
    area = Area(design.stack.valid, folds, fold)
    te_r, te_c = design.rows[test_p], design.cols[test_p]
    ranked = RankedSurface.for_incidents(surface, area, te_r, te_c, design.compute.chunk_size)
    result = FoldEvaluation(fold=fold, model=ranked.evaluate(fractions))
    if with_baselines:
        bases = baseline_metrics(design, train_p, area, test_p, fractions, tag)
        result = replace(result, baselines=bases)
    return result, surface


def spatial_cv(
    design: Design,
    recipe: ModelRecipe,
    folds: int,
    block_size: float,
    fractions: tuple[float, ...],
    target: Month,
    with_spread: bool = True,
    with_baselines: bool = True,
) -> tuple[SpatialCV | Skipped, Band | None]:
    """Spatial block cross-validation, and the spread of the fold models' surfaces
    (see :class:`SpatialFolds`)."""
    job = SpatialFolds(
        design, recipe, folds, block_size, fractions, target, with_spread, with_baselines
    )
    out: tuple[SpatialCV | Skipped, Band | None] = run_jobs(
        design.compute, [job], "spatial cross-validation"
    )[0]
    return out
