"""Incident history as a feature: recency-weighted counts and kernel densities of earlier incidents.

Where incidents happened before is often the strongest single predictor of
where they happen next. These features describe, for a cell and a month, the
incidents of *earlier* months only (never the month itself), so a model
validated on a month never sees that month's answers.

Three layers: ``history_count`` (recency-weighted incidents in the cell),
``history_kde_<h>m`` and ``history_kde_<3h>m`` (Gaussian kernel densities at
bandwidth h and 3h), each ``log1p``-transformed. The recency time constant
and the bandwidth are chosen on held-out months (:func:`choose_history`): each
candidate's surface from the months before a month is scored by the
log-likelihood of that month's incidents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.windows import Window
from scipy import ndimage

from .compute import with_halo

__all__ = [
    "HistoryJob",
    "HistorySettings",
    "choose_history",
    "history_at_samples",
    "history_surfaces",
    "history_window",
    "month_number",
]


@dataclass(frozen=True)
class HistorySettings:
    """Recency time constant (months; inf = no decay) and kernel bandwidth (CRS units)."""

    tau_months: float
    bandwidth: float

    @property
    def names(self) -> list[str]:
        h = round(self.bandwidth)
        return ["history_count", f"history_kde_{h}m", f"history_kde_{3 * h}m"]


def month_number(dates: np.ndarray) -> np.ndarray:
    """Months since year 0 (``year * 12 + month - 1``); -1 for NaT."""
    d = np.asarray(dates, dtype="datetime64[M]")
    out = d.astype(np.int64) + 1970 * 12
    out[np.isnat(d)] = -1
    return out


def _recency_weights(months: np.ndarray, target: int, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Which incidents precede ``target`` month, and their weights (1 for the month before)."""
    earlier = (months < target) & (months >= 0)
    age = (target - months[earlier]).astype(float)  # 1 = the month just before
    weights = np.exp(-(age - 1.0) / tau) if math.isfinite(tau) else np.ones(age.size)
    return earlier, weights


def _weighted_counts(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
    target: int,
    tau: float,
) -> np.ndarray:
    earlier, weights = _recency_weights(months, target, tau)
    counts = np.zeros(shape, dtype=np.float64)
    np.add.at(counts, (rows[earlier], cols[earlier]), weights)
    return counts


def history_surfaces(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
    target: int,
    settings: HistorySettings,
    cell_size: float,
) -> list[np.ndarray]:
    """The three history layers for ``target`` month from incidents of earlier months."""
    counts = _weighted_counts(shape, rows, cols, months, target, settings.tau_months)
    layers = [np.log1p(counts)]
    cell_km2 = cell_size * cell_size / 1e6
    for bw in (settings.bandwidth, 3 * settings.bandwidth):
        dens = ndimage.gaussian_filter(counts, bw / cell_size, mode="constant", truncate=_TRUNCATE)
        layers.append(np.log1p(dens / cell_km2))  # incidents per km², log scale
    return [layer.astype(np.float32) for layer in layers]


@dataclass(frozen=True)
class HistoryJob:
    """What a worker needs for the history layers of one month in a window."""

    shape: tuple[int, int]
    rows: np.ndarray  # earlier incidents' cells
    cols: np.ndarray
    weights: np.ndarray  # their recency weights
    sigmas: tuple[float, float]  # kernel bandwidths in cells
    cell_km2: float

    @classmethod
    def of(
        cls,
        shape: tuple[int, int],
        rows: np.ndarray,
        cols: np.ndarray,
        months: np.ndarray,
        target: int,
        settings: HistorySettings,
        cell_size: float,
    ) -> HistoryJob:
        earlier, weights = _recency_weights(months, target, settings.tau_months)
        sigmas = (settings.bandwidth / cell_size, 3 * settings.bandwidth / cell_size)
        return cls(
            shape, rows[earlier], cols[earlier], weights, sigmas, cell_size * cell_size / 1e6
        )

    @property
    def halo(self) -> int:
        """Cells around a window that the wider kernel reaches (scipy's radius + 1)."""
        return int(_TRUNCATE * max(self.sigmas) + 0.5) + 1


_TRUNCATE = 3.0


def history_window(job: HistoryJob, window: Window) -> list[np.ndarray]:
    """The window task of the history layers: same values as :func:`history_surfaces`.

    The kernel densities are computed on the window plus a halo of the wider
    kernel's radius, so every cell of the window sees every incident that the
    whole-grid filter would.
    """
    outer, core = with_halo(window, job.halo, job.shape)
    top, left = int(outer.row_off), int(outer.col_off)
    bottom, right = top + int(outer.height), left + int(outer.width)
    inside = (job.rows >= top) & (job.rows < bottom) & (job.cols >= left) & (job.cols < right)
    counts = np.zeros((bottom - top, right - left), dtype=np.float64)
    np.add.at(counts, (job.rows[inside] - top, job.cols[inside] - left), job.weights[inside])
    layers = [np.log1p(counts[core])]
    for sigma in job.sigmas:
        dens = ndimage.gaussian_filter(counts, sigma, mode="constant", truncate=_TRUNCATE)
        layers.append(np.log1p(dens[core] / job.cell_km2))
    return [layer.astype(np.float32) for layer in layers]


def history_at_samples(
    shape: tuple[int, int],
    inc_rows: np.ndarray,
    inc_cols: np.ndarray,
    inc_months: np.ndarray,
    sample_rows: np.ndarray,
    sample_cols: np.ndarray,
    sample_months: np.ndarray,
    settings: HistorySettings,
    cell_size: float,
) -> np.ndarray:
    """History features of each sample, from the incidents before its own month."""
    out = np.zeros((sample_rows.size, 3), dtype=np.float32)
    for month in np.unique(sample_months):
        idx = np.flatnonzero(sample_months == month)
        layers = history_surfaces(
            shape, inc_rows, inc_cols, inc_months, int(month), settings, cell_size
        )
        for j, layer in enumerate(layers):
            out[idx, j] = layer[sample_rows[idx], sample_cols[idx]]
    return out


def choose_history(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
    eval_months: list[int],
    valid: np.ndarray,
    cell_size: float,
) -> tuple[HistorySettings, dict[str, Any]]:
    """Pick the recency and bandwidth whose history best predicts held-out months.

    Score: mean log-likelihood of each evaluation month's incidents under the
    normalised kernel density of the earlier months (mixed with 5 % uniform so
    that an incident far from any earlier one costs a finite penalty).
    """
    taus = [3.0, 6.0, 12.0, math.inf]
    bandwidths = sorted(
        {max(cell_size, b) for b in (cell_size, 250.0, 500.0, 1000.0, 2000.0, 4000.0)}
    )
    n_valid = max(int(valid.sum()), 1)
    scores: list[dict[str, Any]] = []
    best: tuple[float, HistorySettings] | None = None
    for tau in taus:
        for bw in bandwidths:
            total, n = 0.0, 0
            for target in eval_months:
                now = months == target
                if not now.any() or not ((months < target) & (months >= 0)).any():
                    continue
                counts = _weighted_counts(shape, rows, cols, months, target, tau)
                dens = ndimage.gaussian_filter(
                    counts, bw / cell_size, mode="constant", truncate=3.0
                )
                dens = np.where(valid, dens, 0.0)
                dens = dens / max(dens.sum(), 1e-12)
                p = 0.95 * dens + 0.05 / n_valid
                total += float(np.log(p[rows[now], cols[now]]).sum())
                n += int(now.sum())
            if n == 0:
                continue
            score = total / n
            scores.append({"tau_months": tau, "bandwidth": bw, "mean_log_likelihood": score})
            if best is None or score > best[0]:
                best = (score, HistorySettings(tau, bw))
    if best is None:  # too little history to choose: a middle setting
        chosen = HistorySettings(6.0, max(cell_size, 1000.0))
        return chosen, {"chosen": _describe(chosen), "reason": "too few months to choose"}
    return best[1], {
        "chosen": _describe(best[1]),
        "reason": "best mean log-likelihood of held-out months' incidents",
        "months_used": len(eval_months),
        "candidates": scores,
    }


def _describe(s: HistorySettings) -> dict[str, Any]:
    return {
        "tau_months": None if not math.isfinite(s.tau_months) else s.tau_months,
        "bandwidth": s.bandwidth,
        "layers": s.names,
    }
