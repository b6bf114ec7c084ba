"""Which surface a run ships: the model, history alone, or a blend of the two.

Where incidents happened before is often the strongest single predictor of
where they happen next, and on real reports a heat map of old reports can
beat a fitted model. So with ``model: auto`` the map a run ships is itself
chosen on held-out months, among candidates that include history on its own:

- ``past_counts``: all earlier reports per cell;
- ``recent_counts``: the reports of the last 12 months per cell;
- ``history_density``: a Gaussian kernel density of earlier reports, recency
  weighted, with the bandwidth and time constant chosen on held-out months
  (:func:`hwc_risk.history.choose_history`);
- ``model``: the fitted model;
- ``blend_25``, ``blend_50``, ``blend_75``: mixtures ``w * model / mean(model)
  + (1 - w) * density / mean(density)`` with the model's weight ``w`` 0.25, 0.5
  or 0.75: the share of each normalised intensity, so that where history is
  what predicts the map is mostly history, and where the covariates add, it
  adds them.

Each candidate is scored on as many held-out months as the data allow (each
month's surface from the months before it only), pooling the months'
incidents; the choice (:func:`choose_map`) is the first candidate in order of
preference whose pooled top-10 % capture is within one bootstrap standard
error of the best one's:

- :data:`PREFERENCE`: the even blend ``blend_50`` unless another candidate is
  clearly better, then the simpler ones first;
- :data:`MODEL_FIRST`, when the model is clearly better than the best history
  alone, or when the reports do not repeat near each other (the Knox test of
  :mod:`hwc_risk.near_repeat`): the model, then the blends mostly model.
  History has then shown no value of its own, and blending it in only dilutes
  the model (synthetic series where reports do not repeat: on sparse ones the
  months could not tell the even blend from the model, and the blend was far
  below it against the truth).

The even blend comes first otherwise because it hedges: when the held-out
months cannot tell the model from history, a mixture of the two is rarely far
below the better of them, whereas
shipping the one that led on a few noisy months often is (the "forecast
combination puzzle": equal weights often beat weights fitted on short
records; Clemen 1989, *International Journal of Forecasting* 5(4); Smith and
Wallis 2009, *Oxford Bulletin of Economics and Statistics* 71(3)). On real
reports, a rule taking the simplest candidate first shipped past counts or
the model where the blend did better (README, "The map a run ships"). A
stricter margin (1.94 standard errors: one standard error corrected for the
blend's six rivals) was tried and dropped: on sparse synthetic series without
repeat reporting it kept the blend where the model alone was clearly better.

The window tasks here (:func:`history_surfaces_window`, :func:`blend_window`)
run chunk by chunk like every other layer of a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from rasterio.windows import Window

from .bands import Band, read_band
from .compute import Compute, run_windows
from .history import HistorySettings
from .mask import ValidMask
from .modelling import (
    Design,
    baseline_bands,
    baseline_metrics,
    fit_held_out,
    remove_surfaces,
)
from .models import ModelRecipe
from .months import Month
from .surfaces import Area, RankedSurface, class_captures, kernel_density_window
from .validation import Metrics, Skipped

__all__ = [
    "BLEND_WEIGHTS",
    "CANDIDATES",
    "MODEL_FIRST",
    "PREFERENCE",
    "BlendJob",
    "HistorySurfacesJob",
    "MapChoice",
    "MapMonth",
    "MapMonths",
    "blend_window",
    "choose_map",
    "chosen_surface",
    "evaluate_map_month",
    "history_surfaces_window",
    "map_months",
    "model_share",
    "surface_mean",
]

#: The model's weight in each blend candidate.
BLEND_WEIGHTS: tuple[float, ...] = (0.25, 0.5, 0.75)

#: The candidates, simplest first: history alone, the model, then blends.
CANDIDATES: tuple[str, ...] = (
    "past_counts",
    "recent_counts",
    "history_density",
    "model",
    *(f"blend_{round(w * 100)}" for w in BLEND_WEIGHTS),
)

#: The order in which candidates are preferred when the held-out months cannot tell them
#: apart: the even blend (the hedge), then the simplest first.
PREFERENCE: tuple[str, ...] = (
    "blend_50",
    *(name for name in CANDIDATES if name != "blend_50"),
)

#: The order of preference when the model is clearly better than history alone.
MODEL_FIRST: tuple[str, ...] = (
    "model",
    "blend_75",
    "blend_50",
    "blend_25",
    "past_counts",
    "recent_counts",
    "history_density",
)

#: The candidates that are history alone.
HISTORY: tuple[str, ...] = ("past_counts", "recent_counts", "history_density")

#: Months of reports ``recent_counts`` counts.
RECENT_MONTHS = 12


def blend_weight(name: str) -> float | None:
    """The model's weight of a blend candidate (None for the others)."""
    return int(name.removeprefix("blend_")) / 100 if name.startswith("blend_") else None


@dataclass(frozen=True)
class HistorySurfacesJob:
    """What a worker needs for the history candidates of a month in a window."""

    valid: ValidMask
    rows: np.ndarray  # the incidents before the month
    cols: np.ndarray
    months: np.ndarray  # their month numbers
    target: int  # the month's number
    settings: HistorySettings
    cell_size: float

    @property
    def weights(self) -> np.ndarray:
        """Recency weights: 1 for the month before the target, decaying with tau."""
        age = (self.target - self.months).astype(float)
        tau = self.settings.tau_months
        return np.exp(-(age - 1.0) / tau) if math.isfinite(tau) else np.ones(age.size)


def history_surfaces_window(job: HistorySurfacesJob, window: Window) -> list[np.ndarray]:
    """``history_density`` and ``recent_counts`` of a window (NaN off the valid cells)."""
    valid = job.valid.window(window)
    sigma = job.settings.bandwidth / job.cell_size
    density = kernel_density_window(job.rows, job.cols, job.weights, sigma, window)
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = valid.shape
    recent = job.months >= job.target - RECENT_MONTHS
    inside = recent & (job.rows >= r0) & (job.rows < r0 + h)
    inside &= (job.cols >= c0) & (job.cols < c0 + w)
    counts = np.zeros((h, w), dtype=np.float32)
    np.add.at(counts, (job.rows[inside] - r0, job.cols[inside] - c0), 1.0)
    out = [density.astype(np.float32), counts]
    for layer in out:
        layer[~valid] = np.nan
    return out


def surface_mean(band: Band, valid: ValidMask, compute: Compute) -> float:
    """Mean of a surface over the valid cells where it has a value, chunk by chunk."""
    total, n = 0.0, 0
    for win in compute.windows(valid.shape):
        values = read_band(band, win)
        ok = valid.window(win) & np.isfinite(values)
        total += float(values[ok].sum(dtype=np.float64))
        n += int(ok.sum())
    return total / n if n else float("nan")


@dataclass(frozen=True)
class BlendJob:
    """The model and the history density, each with its mean, to mix in a window."""

    valid: ValidMask
    model: Band
    density: Band
    model_mean: float
    density_mean: float
    weights: tuple[float, ...]


def blend_window(job: BlendJob, window: Window) -> list[np.ndarray]:
    """``w * model / mean(model) + (1 - w) * density / mean(density)`` for each weight ``w``
    of the job: mixtures of two intensities each scaled to a mean of one."""
    model = read_band(job.model, window).astype(np.float64) / max(job.model_mean, 1e-300)
    density = read_band(job.density, window).astype(np.float64)
    density /= max(job.density_mean, 1e-300)
    valid = job.valid.window(window)
    out = []
    for w in job.weights:
        layer = (w * model + (1 - w) * density).astype(np.float32)
        layer[~valid] = np.nan
        out.append(layer)
    return out


@dataclass(frozen=True, kw_only=True)
class MapMonth:
    """Every candidate's metrics on one held-out month's incidents."""

    month: Month
    n_test: int
    metrics: dict[str, Metrics]
    class_capture: dict[str, dict[str, float]] = field(default_factory=dict)

    def captured(self, name: str, fraction: float) -> float:
        """How many of the month's incidents the candidate's top ``fraction`` held."""
        value = self.metrics[name].capture(fraction)
        return 0.0 if not np.isfinite(value) else value * self.metrics[name].n_incidents

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month.label,
            "n_test_incidents": self.n_test,
            **{name: m.to_json() for name, m in self.metrics.items()},
        }


def _pooled(months: list[MapMonth], name: str, fraction: float) -> float:
    n = sum(m.metrics[name].n_incidents for m in months)
    return sum(m.captured(name, fraction) for m in months) / n if n else float("nan")


def _bootstrap_se(months: list[MapMonth], a: str, b: str, fraction: float, seed: int) -> float:
    """Standard error of the pooled capture of ``a`` minus ``b``, resampling months."""
    if len(months) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(400):
        pick = [months[i] for i in rng.integers(0, len(months), len(months))]
        diffs.append(_pooled(pick, a, fraction) - _pooled(pick, b, fraction))
    return float(np.nanstd(diffs, ddof=1))


@dataclass(frozen=True, kw_only=True)
class MapChoice:
    """The surface a run ships and why (``map_choice`` in metrics.json)."""

    chosen: str
    reason: str
    months: list[MapMonth]
    pooled: dict[str, dict[str, float]]

    @property
    def weight(self) -> float | None:
        """The model's weight when a blend is shipped."""
        return blend_weight(self.chosen)

    def capture(self, name: str, fraction: float = 0.10) -> float:
        return self.pooled[name][f"capture_rate_{round(fraction * 100)}"]

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "model_weight": self.weight,
            "reason": self.reason,
            "months": [m.month.label for m in self.months],
            "n_test_incidents": sum(m.n_test for m in self.months),
            "pooled": self.pooled,
            "per_month": [m.to_json() for m in self.months],
        }


def choose_map(
    months: list[MapMonth], fraction: float = 0.10, seed: int = 0, model_first: bool = False
) -> MapChoice:
    """The first candidate in order of preference whose pooled top-``fraction`` capture
    over the held-out months is within one bootstrap standard error of the best one's:
    :data:`MODEL_FIRST` when the model is clearly (one standard error) better than the
    best history alone or with ``model_first`` (the reports do not repeat near each
    other: :mod:`hwc_risk.near_repeat`), else :data:`PREFERENCE` (the even blend, then
    the simplest).

    >>> m = Metrics(n_incidents=10, auc=0.7, boyce=0.5, rates=((0.1, 0.5, 5.0),))
    >>> better = Metrics(n_incidents=10, auc=0.8, boyce=0.6, rates=((0.1, 0.9, 9.0),))
    >>> month = MapMonth(month=Month(24300), n_test=10, metrics={"past_counts": m, "model": better})
    >>> choose_map([month, month]).chosen
    'model'
    """
    names = [n for n in CANDIDATES if all(n in m.metrics for m in months)]
    pooled = {
        n: {
            f"capture_rate_{round(f * 100)}": _pooled(months, n, f)
            for f in (0.05, 0.10, 0.20)
            if all(m.metrics[n].measures(f) for m in months)
        }
        | {"auc": float(np.nanmean([m.metrics[n].auc for m in months]))}
        for n in names
    }
    key = f"capture_rate_{round(fraction * 100)}"
    best = max(names, key=lambda n: pooled[n][key])
    order, words = PREFERENCE, "the even blend, then the simplest"
    history = [n for n in HISTORY if n in names]
    if model_first and "model" in names:
        order, words = MODEL_FIRST, "reports do not repeat near each other: the model first"
    elif "model" in names and history:
        top = max(history, key=lambda n: pooled[n][key])
        lead = pooled["model"][key] - pooled[top][key]
        if lead > _bootstrap_se(months, "model", top, fraction, seed):
            order, words = MODEL_FIRST, "the model clearly above history alone: the model first"
    chosen = best
    for name in sorted(names, key=order.index):
        se = _bootstrap_se(months, best, name, fraction, seed)
        if pooled[name][key] >= pooled[best][key] - se:
            chosen = name
            break
    reason = (
        f"first candidate ({words}) within one bootstrap standard "
        f"error of the best pooled top-"
        f"{fraction:.0%} capture (best: {best}, {pooled[best][key]:.1%}) over {len(months)} "
        f"held-out month(s) and {sum(m.n_test for m in months)} incidents; pooled top-"
        f"{fraction:.0%} capture: " + ", ".join(f"{n} {pooled[n][key]:.1%}" for n in names)
    )
    return MapChoice(chosen=chosen, reason=reason, months=months, pooled=pooled)


def _history_bands(
    design: Design, before: np.ndarray, target: Month, settings: HistorySettings, tag: str
) -> tuple[Band, Band]:
    """``history_density`` and ``recent_counts`` of month ``target`` from ``before``."""
    grid, store = design.stack.grid, design.store.child("surfaces")
    job = HistorySurfacesJob(
        valid=design.stack.valid,
        rows=design.rows[before],
        cols=design.cols[before],
        months=design.months[before],
        target=target.index,
        settings=settings,
        cell_size=grid.cell_size,
    )
    bands = (
        store.band(f"{tag}-history_density", grid.shape, grid, "history density"),
        store.band(f"{tag}-recent_counts", grid.shape, grid, "reports of the last 12 months"),
    )
    run_windows(history_surfaces_window, job, bands, design.compute, grid.shape, "history")
    return bands


def _blend_bands(design: Design, model: Band, density: Band, tag: str) -> list[Band]:
    """The blend candidates of a model surface and a history density."""
    grid, store = design.stack.grid, design.store.child("surfaces")
    valid, compute = design.stack.valid, design.compute
    job = BlendJob(
        valid=valid,
        model=model,
        density=density,
        model_mean=surface_mean(model, valid, compute),
        density_mean=surface_mean(density, valid, compute),
        weights=BLEND_WEIGHTS,
    )
    bands = [
        store.band(f"{tag}-blend_{round(w * 100)}", grid.shape, grid, "blend")
        for w in BLEND_WEIGHTS
    ]
    run_windows(blend_window, job, bands, compute, grid.shape, "blends")
    return bands


def evaluate_map_month(
    design: Design,
    recipe: ModelRecipe,
    origin: Month,
    settings: HistorySettings,
    fractions: tuple[float, ...],
    classes: bool = False,
) -> MapMonth | Skipped:
    """Every candidate of month ``origin`` from the months before it, on its incidents
    (with each candidate's risk-class captures when ``classes``)."""
    held = fit_held_out(design, recipe, origin)
    if isinstance(held, Skipped):
        return held
    tag = f"{held.tag}-map-{id(held)}"
    area, chunk = Area(design.stack.valid), design.compute.chunk_size
    te_r, te_c = design.rows[held.test], design.cols[held.test]
    past = baseline_metrics(design, held.before, area, held.test, fractions, held.tag)
    density, recent = _history_bands(design, held.before, origin, settings, tag)
    blends = _blend_bands(design, held.surface, density, tag)
    bands = dict(zip(CANDIDATES[1:], [recent, density, held.surface, *blends], strict=True))
    metrics = {"past_counts": past["past_counts"]}
    captures = {}
    for name, band in bands.items():
        ranked = RankedSurface.for_incidents(band, area, te_r, te_c, chunk)
        metrics[name] = ranked.evaluate(fractions)
        if classes:
            captures[name] = class_captures(ranked.classes(), te_r, te_c)
    remove_surfaces(design, *bands.values())
    n_test = int(held.test.sum())
    return MapMonth(month=origin, n_test=n_test, metrics=metrics, class_capture=captures)


@dataclass(frozen=True)
class MapMonths:
    """The map choice's held-out months to evaluate (a job of
    :func:`hwc_risk.modelling.run_jobs`: one task per month)."""

    design: Design
    recipe: ModelRecipe
    origins: tuple[Month, ...]
    settings: HistorySettings
    fractions: tuple[float, ...]
    model_first: bool = False  # the reports do not repeat: MODEL_FIRST whatever the lead

    def tasks(self) -> list[Callable[[], MapMonth | Skipped]]:
        last = self.origins[-1] if self.origins else None
        return [
            partial(
                evaluate_map_month,
                self.design,
                self.recipe,
                o,
                self.settings,
                self.fractions,
                o == last,
            )
            for o in self.origins
        ]

    def summarise(self, results: list[MapMonth | Skipped]) -> MapChoice | Skipped:
        months = [r for r in results if isinstance(r, MapMonth)]
        if not months:
            return Skipped("no held-out month to choose the map on")
        return choose_map(months, seed=self.design.seed, model_first=self.model_first)


def map_months(months: np.ndarray, run_month: Month, at_most: int = 12) -> list[Month]:
    """The held-out months of the map choice: the last ``at_most`` months with incidents,
    up to the run's month.

    >>> map_months(np.array([3, 5, 5, 9]), Month(9), 2)
    [Month(index=5), Month(index=9)]
    """
    have = sorted({int(m) for m in months if m <= run_month.index})
    return [Month(m) for m in have[-at_most:]]


def chosen_surface(
    choice: MapChoice,
    design: Design,
    model_surface: Band,
    month: Month,
    settings: HistorySettings,
    tag: str = "shipped",
) -> Band:
    """The surface of the chosen candidate for the month after ``month`` (from every
    incident up to ``month``), scaled to a maximum of one over the valid cells (work
    files named by ``tag``)."""
    target = month + 1
    incidents = design.is_presence & (design.months <= month.index)
    if choice.chosen == "model":
        return model_surface
    if choice.chosen == "past_counts":
        bands = _past_counts_band(design, incidents, tag)
    else:
        density, recent = _history_bands(design, incidents, target, settings, tag)
        if choice.chosen == "history_density":
            bands = density
        elif choice.chosen == "recent_counts":
            bands = recent
        else:
            blends = _blend_bands(design, model_surface, density, tag)
            bands = blends[CANDIDATES.index(choice.chosen) - CANDIDATES.index("blend_25")]
    return _scaled_to_one(design, bands, tag)


def _past_counts_band(design: Design, incidents: np.ndarray, tag: str) -> Band:
    rows, cols = design.rows[incidents], design.cols[incidents]
    bands = baseline_bands(design, rows, cols, tag)
    remove_surfaces(design, bands["uniform"], bands["kde"])
    return bands["past_counts"]


@dataclass(frozen=True)
class ScaleJob:
    """A surface to multiply by ``factor`` (NaN off the valid cells)."""

    valid: ValidMask
    surface: Band
    factor: float


def scale_window(job: ScaleJob, window: Window) -> list[np.ndarray]:
    """The window of the surface times the job's factor."""
    values = read_band(job.surface, window).astype(np.float64) * job.factor
    out = values.astype(np.float32)
    out[~job.valid.window(window)] = np.nan
    return [out]


def _largest(design: Design, band: Band) -> float:
    """The largest value of ``band`` over the valid cells (0 when it has none)."""
    valid, compute = design.stack.valid, design.compute
    top = 0.0
    for win in compute.windows(valid.shape):
        values = read_band(band, win)
        ok = valid.window(win) & np.isfinite(values)
        if ok.any():
            top = max(top, float(values[ok].max()))
    return top


def model_share(
    chosen: str, design: Design, model_surface: Band, month: Month, settings: HistorySettings
) -> float:
    """How much the shipped surface of candidate ``chosen`` moves per unit of the
    model's surface, the history part and the scaling held: 1 for the model, 0 for
    history alone, ``w / (mean(model) * top)`` for a blend (``top`` the largest
    blended value, which :func:`chosen_surface` divides by). A scenario's map is the
    baseline's plus this share of the change in the model's surface."""
    weight = blend_weight(chosen)
    if chosen == "model":
        return 1.0
    if weight is None:
        return 0.0
    incidents = design.is_presence & (design.months <= month.index)
    density, _ = _history_bands(design, incidents, month + 1, settings, "share")
    blend = _blend_bands(design, model_surface, density, "share")[BLEND_WEIGHTS.index(weight)]
    top = _largest(design, blend)
    mean = surface_mean(model_surface, design.stack.valid, design.compute)
    return weight / (mean * top) if top > 0 and mean > 0 else 0.0


def _scaled_to_one(design: Design, band: Band, tag: str) -> Band:
    """``band`` divided by its largest value over the valid cells (risk.tif is 0-1)."""
    valid, compute, grid = design.stack.valid, design.compute, design.stack.grid
    top = _largest(design, band)
    out = design.store.child("surfaces").band(f"{tag}-risk", grid.shape, grid, "relative risk")
    job = ScaleJob(valid=valid, surface=band, factor=1.0 / top if top > 0 else 0.0)
    run_windows(scale_window, job, [out], compute, grid.shape, "scaling the map")
    return out
