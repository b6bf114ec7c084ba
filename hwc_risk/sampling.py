"""Presence and background samples: which cells the model learns from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Samples", "sample_background"]


def sample_background(valid: np.ndarray, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of ``n_points`` distinct valid cells drawn uniformly (all if fewer).

    >>> mask = np.array([[True, False], [True, True]])
    >>> sorted(sample_background(mask, 10, np.random.default_rng(0)).tolist())
    [0, 2, 3]
    """
    flat = np.flatnonzero(valid.ravel())
    if flat.size <= n_points:
        return flat
    return np.sort(rng.choice(flat, size=n_points, replace=False))


@dataclass
class Samples:
    """Presence (incident) and background cells with their features.

    ``X`` has one row per sample, presences first; ``y`` is 1 for presence
    and 0 for background; ``rows``/``cols`` are the cells; ``dates`` holds the
    incident date of presences (NaT for background).
    """

    X: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    dates: np.ndarray
    feature_names: list[str]

    @property
    def n_presence(self) -> int:
        return int(self.y.sum())

    def subset(self, mask: np.ndarray) -> Samples:
        return Samples(
            self.X[mask],
            self.y[mask],
            self.rows[mask],
            self.cols[mask],
            self.dates[mask],
            self.feature_names,
        )
