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
from scipy.spatial import cKDTree

from .compute import with_halo
from .mask import ValidMask, cell_groups
from .months import Month

__all__ = [
    "HistoryJob",
    "HistorySettings",
    "choose_history",
    "gaussian_kernel",
    "history_at_samples",
    "history_surfaces",
    "history_window",
    "kernel_sums",
    "smoothed_mask_at",
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


def _recency_weights(months: np.ndarray, target: int, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Which incidents precede ``target`` month, and their weights (1 for the month before)."""
    earlier = (months < target) & (months >= 0)
    age = (target - months[earlier]).astype(float)  # 1 = the month just before
    weights = np.exp(-(age - 1.0) / tau) if math.isfinite(tau) else np.ones(age.size)
    return earlier, weights


def gaussian_kernel(sigma: float, truncate: float) -> tuple[int, np.ndarray]:
    """scipy.ndimage's normalised, truncated 1-D Gaussian: its radius and weights."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x.astype(np.float64) ** 2)
    return radius, phi / phi.sum()


#: At most this many incident-sample pairs are held at once by :func:`kernel_sums`.
_PAIRS = 1 << 22


def kernel_sums(
    at_rows: np.ndarray,
    at_cols: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    sigma: float,
    truncate: float = 3.0,
) -> np.ndarray:
    """Gaussian kernel sums of weighted points at cells, without a grid.

    ``sum_i weights[i] * k(at_row - rows[i]) * k(at_col - cols[i])`` with ``k``
    scipy.ndimage's truncated, normalised 1-D kernel: the value that
    ``gaussian_filter(counts, sigma, mode="constant", truncate=truncate)``
    has at the cell, where ``counts`` holds the weights on the grid. Only
    pairs within the kernel's radius are visited (a k-d tree finds them).
    """
    at_rows = np.asarray(at_rows, dtype=np.int64)
    at_cols = np.asarray(at_cols, dtype=np.int64)
    out = np.zeros(at_rows.size)
    if at_rows.size == 0 or len(rows) == 0:
        return out
    radius, phi = gaussian_kernel(sigma, truncate)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    src = cKDTree(np.column_stack([rows, cols]).astype(np.float64))
    step = max(1, _PAIRS // len(rows))
    for start in range(0, at_rows.size, step):
        r, c = at_rows[start : start + step], at_cols[start : start + step]
        dst = cKDTree(np.column_stack([r, c]).astype(np.float64))
        pairs = src.sparse_distance_matrix(dst, radius, p=np.inf, output_type="ndarray")
        i, j = pairs["i"], pairs["j"]
        value = weights[i] * phi[r[j] - rows[i] + radius] * phi[c[j] - cols[i] + radius]
        out[start : start + r.size] = np.bincount(j, weights=value, minlength=r.size)
    return out


def smoothed_mask_at(
    valid: ValidMask,
    sigmas: list[float],
    rows: np.ndarray,
    cols: np.ndarray,
    truncate: float = 3.0,
    block: int = 1024,
) -> np.ndarray:
    """The valid-cell mask smoothed by each Gaussian of ``sigmas`` (cells), at cells.

    ``out[k, i]`` is ``gaussian_filter(mask, sigmas[k], mode="constant")`` at
    ``(rows[i], cols[i])``: how much of a kernel centred there falls on valid
    cells. The mask is read chunk by chunk with a halo of the widest kernel.
    """
    out = np.zeros((len(sigmas), len(rows)))
    halo = max(gaussian_kernel(s, truncate)[0] for s in sigmas) if sigmas else 0
    for idx, win in cell_groups(rows, cols, valid.shape[1], block):
        outer, _ = with_halo(win, halo, valid.shape)
        mask = valid.window(outer).astype(np.float64)
        r = np.asarray(rows)[idx] - int(outer.row_off)
        c = np.asarray(cols)[idx] - int(outer.col_off)
        for k, sigma in enumerate(sigmas):
            smooth = ndimage.gaussian_filter(mask, sigma, mode="constant", truncate=truncate)
            out[k, idx] = smooth[r, c]
    return out


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
        target: Month,
        settings: HistorySettings,
        cell_size: float,
    ) -> HistoryJob:
        """The job for the layers of month ``target`` from incidents in ``months``."""
        earlier, weights = _recency_weights(months, target.index, settings.tau_months)
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
    """The window task of the history layers.

    The kernel densities are computed on the window plus a halo of the wider
    kernel's radius, so every cell of the window sees every incident that a
    filter over the whole grid would (tested: any chunking gives the same
    layers).
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
    inc_rows: np.ndarray,
    inc_cols: np.ndarray,
    inc_months: np.ndarray,
    sample_rows: np.ndarray,
    sample_cols: np.ndarray,
    sample_months: np.ndarray,
    settings: HistorySettings,
    cell_size: float,
) -> np.ndarray:
    """History features of each sample, from the incidents before its own month.

    The values the history layers (:func:`history_window`) have at the sample's
    cell, computed from the incidents near the samples (:func:`kernel_sums`),
    never on the grid.
    """
    out = np.zeros((sample_rows.size, 3), dtype=np.float32)
    cell_km2 = cell_size * cell_size / 1e6
    sigmas = (settings.bandwidth / cell_size, 3 * settings.bandwidth / cell_size)
    for month in np.unique(sample_months):
        idx = np.flatnonzero(sample_months == month)
        earlier, weights = _recency_weights(inc_months, int(month), settings.tau_months)
        r, c = inc_rows[earlier], inc_cols[earlier]
        at_r, at_c = sample_rows[idx], sample_cols[idx]
        # the count layer is the kernel sum of a one-cell kernel
        same = kernel_sums(at_r, at_c, r, c, weights, 1.0, truncate=0.0)
        layers = [np.log1p(same)]
        for sigma in sigmas:
            dens = kernel_sums(at_r, at_c, r, c, weights, sigma, _TRUNCATE)
            layers.append(np.log1p(dens / cell_km2))
        for j, layer in enumerate(layers):
            out[idx, j] = layer.astype(np.float32)
    return out


def choose_history(
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
    eval_months: list[Month],
    valid: ValidMask,
    cell_size: float,
) -> tuple[HistorySettings, dict[str, Any]]:
    """Pick the recency and bandwidth whose history best predicts held-out months.

    Score: mean log-likelihood of each evaluation month's incidents under the
    normalised kernel density of the earlier months (mixed with 5 % uniform so
    that an incident far from any earlier one costs a finite penalty). The
    density is summed at the incidents only (:func:`kernel_sums`); its total
    over the valid cells is each earlier incident's kernel mass on valid cells
    (:func:`smoothed_mask_at`), so nothing grid-sized is made.
    """
    taus = [3.0, 6.0, 12.0, math.inf]
    bandwidths = sorted(
        {max(cell_size, b) for b in (cell_size, 250.0, 500.0, 1000.0, 2000.0, 4000.0)}
    )
    n_valid = max(valid.count, 1)
    mass = smoothed_mask_at(valid, [bw / cell_size for bw in bandwidths], rows, cols)
    scores: list[dict[str, Any]] = []
    best: tuple[float, HistorySettings] | None = None
    for tau in taus:
        for k, bw in enumerate(bandwidths):
            total, n = 0.0, 0
            for target in eval_months:
                now = months == target.index
                earlier, weights = _recency_weights(months, target.index, tau)
                if not now.any() or not earlier.any():
                    continue
                dens = kernel_sums(
                    rows[now], cols[now], rows[earlier], cols[earlier], weights, bw / cell_size
                )
                dens = dens / max(float(np.dot(weights, mass[k, earlier])), 1e-12)
                p = 0.95 * dens + 0.05 / n_valid
                total += float(np.log(p).sum())
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


def history_surfaces(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
    target: Month,
    settings: HistorySettings,
    cell_size: float,
) -> list[np.ndarray]:
    """The three history layers for ``target`` month, held in memory: the window task
    :func:`history_window` on the whole grid."""
    job = HistoryJob.of(shape, rows, cols, months, target, settings, cell_size)
    return history_window(job, Window(0, 0, shape[1], shape[0]))
