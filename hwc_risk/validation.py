"""Validation: metrics of a risk surface against held-out incidents, splits, and baselines.

All functions here are pure: they take arrays and return numbers or arrays.

Metrics
-------
AUC
    Probability that a held-out incident's cell scores higher than a random
    valid cell of the evaluated area (ties count one half).
Continuous Boyce index
    Hirzel et al. (2006, Ecological Modelling 199:142-152): Spearman
    correlation between predicted score and the predicted-to-expected ratio
    of incidents in a moving window over the score range; 1 is perfect, 0 no
    better than random.
Capture rate
    Share of held-out incidents falling in the top ``fraction`` of the area
    (ties at the threshold share the remaining area proportionally, so a
    uniform surface captures exactly ``fraction``).
PAI
    Predictive accuracy index (Chainey et al. 2008): capture rate divided by
    the area share; 1 is no better than uniform.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.windows import Window
from scipy import stats

from .months import Month

__all__ = [
    "BASELINES",
    "FORECAST_BASELINES",
    "BlockFolds",
    "FoldEvaluation",
    "Metrics",
    "MonthEvaluation",
    "RollingOrigin",
    "Skipped",
    "SpatialCV",
    "block_ids",
    "boyce_from_shares",
    "boyce_index",
    "capture_rate",
    "default_block_size",
    "kde_bandwidth",
    "skill_of",
    "spatial_block_folds",
    "surface_auc",
]


#: The naive surfaces every model is compared with, in the order metrics.json lists them:
#: no information, incidents per cell so far, a kernel density of past incidents.
BASELINES: tuple[str, ...] = ("uniform", "past_counts", "kde")

#: The baselines a forecast of next month's surface is also compared with (runs with a
#: forecast): kernel densities of the incidents of the same month a year before, and of the
#: 12 months before the month.
FORECAST_BASELINES: tuple[str, ...] = ("same_month_last_year", "last_12_months")


@dataclass(frozen=True)
class Metrics:
    """Skill of one surface on held-out incidents.

    ``rates`` holds, for each area fraction, the capture rate (share of the
    held-out incidents in the top ``fraction`` of the area) and the PAI.
    """

    n_incidents: int
    auc: float
    boyce: float
    rates: tuple[tuple[float, float, float], ...] = ()  # (fraction, capture rate, PAI)

    def measures(self, fraction: float) -> bool:
        """Whether the capture rate at ``fraction`` of the area was measured."""
        return any(round(f * 100) == round(fraction * 100) for f, _, _ in self.rates)

    def capture(self, fraction: float) -> float:
        """The capture rate at ``fraction`` of the area (NaN if not measured)."""
        pct = round(fraction * 100)
        return next((c for f, c, _ in self.rates if round(f * 100) == pct), float("nan"))

    @property
    def skill(self) -> float:
        """What model choices compare: the mean of top-10 % and top-20 % capture and AUC
        (those that are finite); minus infinity when none is."""
        finite = [v for v in (self.capture(0.10), self.capture(0.20), self.auc) if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("-inf")

    def to_json(self) -> dict[str, float]:
        out: dict[str, float] = {"n_incidents": self.n_incidents, "auc": self.auc}
        out["boyce"] = self.boyce
        for fraction, capture, pai in self.rates:
            pct = round(fraction * 100)
            out[f"capture_rate_{pct}"] = capture
            out[f"pai_{pct}"] = pai
        return out

    @classmethod
    def mean(cls, items: Sequence[Metrics]) -> Metrics:
        """Mean of each metric over months or folds (NaN-aware); incidents are summed."""

        def avg(values: list[float]) -> float:
            arr = np.array(values, dtype=float)
            return float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")

        rates = tuple(
            (f, avg([m.rates[k][1] for m in items]), avg([m.rates[k][2] for m in items]))
            for k, (f, _, _) in enumerate(items[0].rates)
        )
        return cls(
            n_incidents=int(sum(m.n_incidents for m in items)),
            auc=avg([m.auc for m in items]),
            boyce=avg([m.boyce for m in items]),
            rates=rates,
        )


@dataclass(frozen=True)
class Skipped:
    """A validation that could not be made, and why."""

    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"skipped": self.reason}


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The model's and the baselines' metrics on one held-out set of incidents."""

    model: Metrics
    baselines: dict[str, Metrics] = field(default_factory=dict)

    def best_baseline(self, fraction: float) -> tuple[str, float]:
        """The baseline that captured most at ``fraction`` of the area, and its capture
        (the first of :data:`BASELINES` on ties; a NaN capture never wins)."""
        return max(
            ((name, self.baselines[name].capture(fraction)) for name in BASELINES),
            key=lambda item: -1.0 if not np.isfinite(item[1]) else item[1],
        )

    def _baselines_json(self) -> dict[str, Any]:
        names = [name for name in BASELINES if name in self.baselines]
        return {name: self.baselines[name].to_json() for name in names}


@dataclass(frozen=True, kw_only=True)
class MonthEvaluation(Evaluation):
    """A model of the months before ``month`` tested on the month's incidents."""

    month: Month
    n_train: int
    n_test: int
    kde_bandwidth_cells: float | None = None
    class_capture: dict[str, float] | None = None
    forecast_baselines: dict[str, Metrics] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "test_month": self.month.label,
            "n_train_incidents": self.n_train,
            "n_test_incidents": self.n_test,
            "model": self.model.to_json(),
        }
        if self.baselines:
            out["kde_bandwidth_cells"] = self.kde_bandwidth_cells
            out.update(self._baselines_json())
            out["class_capture"] = self.class_capture
        out.update({k: v.to_json() for k, v in self.forecast_baselines.items()})
        return out


@dataclass(frozen=True, kw_only=True)
class FoldEvaluation(Evaluation):
    """A model of the other spatial folds tested on one fold's incidents."""

    fold: int

    def to_json(self) -> dict[str, Any]:
        return {"fold": self.fold, "model": self.model.to_json(), **self._baselines_json()}


def _mean_evaluation(items: Sequence[Evaluation]) -> Evaluation:
    names = [n for n in BASELINES if all(n in e.baselines for e in items)]
    return Evaluation(
        model=Metrics.mean([e.model for e in items]),
        baselines={n: Metrics.mean([e.baselines[n] for e in items]) for n in names},
    )


@dataclass(frozen=True, kw_only=True)
class RollingOrigin:
    """Rolling-origin validation: one :class:`MonthEvaluation` per held-out month."""

    per_month: tuple[MonthEvaluation, ...]
    #: held-out months that could not be tested, and why
    skipped: Mapping[Month, Skipped] = field(default_factory=dict)

    @property
    def mean(self) -> Evaluation:
        """Means over the months, for the model and each baseline."""
        return _mean_evaluation(self.per_month)

    @property
    def months(self) -> list[str]:
        return [e.month.label for e in self.per_month]

    def month(self, month: Month) -> MonthEvaluation | Skipped:
        """The evaluation of one held-out month (the run's own: the temporal holdout)."""
        found = next((e for e in self.per_month if e.month == month), None)
        return found or self.skipped.get(
            month, Skipped(f"no incidents in {month.label} to test on")
        )

    def month_skills(self) -> np.ndarray:
        """The model's :attr:`Metrics.skill` in each month (finite ones)."""
        skills = np.array([e.model.skill for e in self.per_month])
        return skills[np.isfinite(skills)]

    def to_json(self) -> dict[str, Any]:
        mean = self.mean
        return {
            "months": self.months,
            "n_test_incidents": int(sum(e.n_test for e in self.per_month)),
            "model": mean.model.to_json(),
            **mean._baselines_json(),
            "per_month": [e.to_json() for e in self.per_month],
        }


@dataclass(frozen=True, kw_only=True)
class SpatialCV:
    """Spatial block cross-validation: one :class:`FoldEvaluation` per evaluated fold."""

    block_size: float
    folds: int
    per_fold: tuple[FoldEvaluation, ...]

    @property
    def mean(self) -> Evaluation:
        return _mean_evaluation(self.per_fold)

    def to_json(self) -> dict[str, Any]:
        mean = self.mean
        return {
            "block_size": self.block_size,
            "folds": self.folds,
            "folds_evaluated": len(self.per_fold),
            "model": mean.model.to_json(),
            **mean._baselines_json(),
            "per_fold": [e.to_json() for e in self.per_fold],
        }


def skill_of(result: RollingOrigin | Skipped) -> float:
    """The model's mean :attr:`Metrics.skill` over a rolling origin; -inf when skipped."""
    return float("-inf") if isinstance(result, Skipped) else result.mean.model.skill


def surface_auc(values: np.ndarray, scores: np.ndarray) -> float:
    """AUC of presence ``scores`` against every cell value in ``values``."""
    if values.size == 0 or scores.size == 0:
        return float("nan")
    ordered = np.sort(values)
    lo = np.searchsorted(ordered, scores, side="left")
    hi = np.searchsorted(ordered, scores, side="right")
    return float(np.mean((lo + 0.5 * (hi - lo)) / ordered.size))


def capture_rate(values: np.ndarray, scores: np.ndarray, fraction: float) -> float:
    """Share of presence ``scores`` within the top ``fraction`` of cell ``values``.

    >>> values = np.arange(100.0)
    >>> capture_rate(values, np.array([99.0, 95.0, 10.0, 50.0]), 0.10)
    0.5
    >>> capture_rate(np.ones(100), np.ones(7), 0.10)  # uniform: exactly the area share
    0.1
    """
    if values.size == 0 or scores.size == 0:
        return float("nan")
    k = fraction * values.size
    desc = np.sort(values)[::-1]
    threshold = desc[max(0, math.ceil(k) - 1)]
    n_greater = int(np.count_nonzero(values > threshold))
    n_equal = int(np.count_nonzero(values == threshold))
    share = min(1.0, max(0.0, (k - n_greater) / n_equal)) if n_equal else 0.0
    hit = np.where(scores > threshold, 1.0, np.where(scores == threshold, share, 0.0))
    return float(np.round(hit.mean(), 12))


def boyce_index(values: np.ndarray, scores: np.ndarray, n_steps: int = 101) -> float:
    """Continuous Boyce index (moving window of a tenth of the score range).

    Returns NaN when the surface is constant or there are no presences.
    """
    if values.size == 0 or scores.size == 0:
        return float("nan")
    lo, hi = float(np.min(values)), float(np.max(values))
    if not hi > lo:
        return float("nan")
    width = (hi - lo) / 10.0
    starts = np.linspace(lo, hi - width, n_steps)
    ordered_v = np.sort(values)
    ordered_s = np.sort(scores)

    def count(ordered: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.searchsorted(ordered, b, side="right") - np.searchsorted(ordered, a, side="left")

    expected = count(ordered_v, starts, starts + width) / ordered_v.size
    predicted = count(ordered_s, starts, starts + width) / ordered_s.size
    return boyce_from_shares(starts, width, expected, predicted)


def boyce_from_shares(
    starts: np.ndarray, width: float, expected: np.ndarray, predicted: np.ndarray
) -> float:
    """The Boyce index from the share of cells (``expected``) and of presences
    (``predicted``) in each moving window ``[starts, starts + width]``."""
    keep = expected > 0
    if keep.sum() < 3:
        return float("nan")
    ratio = predicted[keep] / expected[keep]
    if np.all(ratio == ratio[0]):
        return float("nan")
    rho = stats.spearmanr(starts[keep] + width / 2, ratio).statistic
    return float(rho)


def kde_bandwidth(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> float:
    """Gaussian kernel bandwidth in cells by Silverman's rule for two dimensions.

    ``h = sigma * n ** (-1/6)`` with ``sigma`` the mean standard deviation of
    the coordinates; clipped to [1 cell, a quarter of the shorter grid side].
    """
    n = rows.size
    if n < 2:
        return max(1.0, min(shape) / 8)
    sigma = math.sqrt(0.5 * (float(np.var(rows)) + float(np.var(cols))))
    h = sigma * n ** (-1.0 / 6.0)
    return float(np.clip(h, 1.0, min(shape) / 4))


def default_block_size(shape: tuple[int, int], cell_size: float, neighbourhood: float) -> float:
    """Spatial block side (CRS units): an eighth of the shorter grid side.

    At least twice the feature neighbourhood radius, so that neighbourhood
    features of a held-out block see little of the training blocks.
    """
    return max(min(shape) * cell_size / 8.0, 2.0 * neighbourhood, cell_size)


def block_ids(rows: np.ndarray, cols: np.ndarray, block_cells: int, width: int) -> np.ndarray:
    """The spatial block of each cell, for square blocks of ``block_cells`` cells."""
    n_bx = -(-width // block_cells)
    return (np.asarray(rows) // block_cells) * n_bx + (np.asarray(cols) // block_cells)


@dataclass(frozen=True)
class BlockFolds:
    """Fold number (0..k-1) of every cell: whole square blocks are assigned to folds.

    Blocks are shuffled and dealt round-robin, so folds differ in size by at
    most one block. Only the blocks' folds are stored; a cell's fold is looked
    up from its block, for any window or set of cells.
    """

    block_cells: int
    width: int
    fold_of_block: np.ndarray

    @classmethod
    def of(
        cls, shape: tuple[int, int], block_cells: int, k: int, rng: np.random.Generator
    ) -> BlockFolds:
        h, w = shape
        n_blocks = -(-h // block_cells) * -(-w // block_cells)
        order = rng.permutation(n_blocks)
        fold_of_block = np.empty(n_blocks, dtype=np.int16)
        fold_of_block[order] = np.arange(n_blocks) % k
        return cls(block_cells, w, fold_of_block)

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.fold_of_block[block_ids(rows, cols, self.block_cells, self.width)]

    def window(self, window: Window) -> np.ndarray:
        r0, c0 = int(window.row_off), int(window.col_off)
        rows = np.arange(r0, r0 + int(window.height))[:, None]
        cols = np.arange(c0, c0 + int(window.width))[None, :]
        return self.at(rows, cols)


def spatial_block_folds(
    shape: tuple[int, int], block_cells: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    """The :class:`BlockFolds` of a whole grid as an array (small grids and tests)."""
    return BlockFolds.of(shape, block_cells, k, rng).window(Window(0, 0, shape[1], shape[0]))
