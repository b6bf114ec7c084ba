"""What the quality benchmarks share: exact-share top-k capture, pooling and bootstrap.

A risk map is read by its top k % of the area. Ranking "exactly k %" of the
cells matters when a surface has ties (past counts are mostly zeros): cells
tied at the threshold count by the share of them that fits, so a surface with
many ties gets no more than k % of the area, and a constant surface captures
exactly k % of the incidents. This is the rule of
:func:`hwc_risk.validation.capture_rate`; it is written out here so that the
benchmarks state what they measure (``tests/unit/test_benchmark_skill.py``
holds the two equal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRACTIONS = (0.10, 0.20)


def top_cut(values: np.ndarray, fraction: float) -> tuple[float, float]:
    """The threshold of the top ``fraction`` of ``values`` and the share of cells
    equal to it that count as inside.

    >>> top_cut(np.array([3.0, 2.0, 2.0, 2.0, 1.0]), 0.4)  # 2 cells: the 3 and 1/3 of each 2
    (2.0, 0.3333333333333333)
    """
    k = fraction * values.size
    desc = np.sort(values)[::-1]
    threshold = float(desc[max(0, math.ceil(k) - 1)])
    greater = int(np.count_nonzero(values > threshold))
    equal = int(np.count_nonzero(values == threshold))
    return threshold, min(1.0, max(0.0, (k - greater) / equal))


def capture_weights(values: np.ndarray, scores: np.ndarray, fraction: float) -> np.ndarray:
    """How much of each incident (score at its cell) the top ``fraction`` of the
    cells ``values`` captures: 1 above the threshold, the tie share at it, else 0."""
    threshold, share = top_cut(values, fraction)
    return np.where(scores > threshold, 1.0, np.where(scores == threshold, share, 0.0))


def auc_terms(values: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per incident, the share of cells it outranks (ties count one half); their
    mean is the AUC."""
    ordered = np.sort(values)
    lo = np.searchsorted(ordered, scores, side="left")
    hi = np.searchsorted(ordered, scores, side="right")
    return (lo + 0.5 * (hi - lo)) / ordered.size


def expected_capture(surface: np.ndarray, probability: np.ndarray, fraction: float) -> float:
    """Expected share of incidents drawn from ``probability`` (over the same cells,
    summing to one) that the top ``fraction`` of ``surface`` captures."""
    weights = capture_weights(surface, surface, fraction)
    return float(np.sum(weights * probability) / np.sum(probability))


@dataclass(frozen=True)
class MonthScore:
    """One month's incidents scored on one surface: sums that pool across months."""

    n: int
    hits_10: float
    hits_20: float
    auc_sum: float

    @classmethod
    def of(
        cls, surface: np.ndarray, valid: np.ndarray, rows: np.ndarray, cols: np.ndarray
    ) -> MonthScore:
        """Score the incidents at ``rows, cols`` (cells of ``valid``) on ``surface``."""
        values = surface[valid]
        scores = surface[rows, cols]
        if scores.size == 0:
            return cls(n=0, hits_10=0.0, hits_20=0.0, auc_sum=0.0)
        if not (np.isfinite(values).all() and np.isfinite(scores).all()):
            raise ValueError("the surface has no value on some valid cells or incident cells")
        return cls(
            n=int(scores.size),
            hits_10=float(capture_weights(values, scores, 0.10).sum()),
            hits_20=float(capture_weights(values, scores, 0.20).sum()),
            auc_sum=float(auc_terms(values, scores).sum()),
        )


def pool(months: list[MonthScore]) -> dict[str, float]:
    """Capture at 10 % and 20 %, AUC and PAI over the incidents of all ``months``."""
    n = sum(m.n for m in months)
    if n == 0:
        return {k: float("nan") for k in ("capture_10", "capture_20", "auc", "pai_10", "pai_20")}
    c10 = sum(m.hits_10 for m in months) / n
    c20 = sum(m.hits_20 for m in months) / n
    return {
        "capture_10": c10,
        "capture_20": c20,
        "auc": sum(m.auc_sum for m in months) / n,
        "pai_10": c10 / 0.10,
        "pai_20": c20 / 0.20,
        "n": float(n),
    }


def bootstrap_months(
    scores: dict[str, list[MonthScore]], n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Pooled metrics of every method on ``n_boot`` resamples of the months (with
    replacement; the same resamples for every method, so differences are paired)."""
    arrays = {
        name: np.array([(m.n, m.hits_10, m.hits_20, m.auc_sum) for m in months], dtype=float)
        for name, months in scores.items()
    }
    n_months = len(next(iter(arrays.values())))
    picks = np.random.default_rng(seed).integers(0, n_months, size=(n_boot, n_months))
    out = {}
    for name, a in arrays.items():
        sums = a[picks].sum(axis=1)  # (n_boot, 4)
        n = np.where(sums[:, 0] > 0, sums[:, 0], np.nan)
        out[name] = {
            "capture_10": sums[:, 1] / n,
            "capture_20": sums[:, 2] / n,
            "auc": sums[:, 3] / n,
        }
    return out


def interval(draws: np.ndarray) -> tuple[float, float]:
    """The central 95 % interval of bootstrap draws."""
    lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return float(lo), float(hi)
