"""Do reports repeat near each other in space and time? The Knox test.

Reports of human-wildlife conflict often come in runs: the same animal returns
to the same farm or street, neighbours report what the first caller saw, one
incident is reported twice. Where that happens, where the last reports were is
news about where the next ones will be, beyond anything the covariates say;
where it does not, history carries only the static pattern the covariates may
already describe.

The Knox test (Knox 1964, *Applied Statistics* 13(1); the near-repeat test of
crime analysis, Ratcliffe and Rengert 2008, *Security Journal* 21) counts the
pairs of reports that are close in space *and* in time, and compares the count
with the same count after shuffling the reports' months among them (which
keeps where reports happen and how many fall in each month, and breaks only
their link). "Close" is the same or a neighbouring cell (centres at most 1.5
cells apart) and the same or the next month. The ratio of the observed count to
the shuffled counts' mean says how many times more such pairs there are than
chance gives (1: none beyond chance), and the share of shuffles with as many
pairs gives a one-sided p-value.

:func:`knox_test` is pure; the selection stage runs it on a run's incidents
(``near_repeat`` in ``metrics.json``), and with ``model: auto`` a series that
shows no clustering (p-value at or above :data:`ALPHA`) gets the covariates'
benefit of the doubt (:mod:`hwc_risk.selection`, :mod:`hwc_risk.map_choice`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["ALPHA", "NearRepeat", "knox_test"]

#: Below this p-value the reports are taken to cluster in space and time.
ALPHA = 0.05

#: At most this many reports enter the test (a seeded sample beyond it): the close
#: pairs of a dense city series grow with the square of its reports.
MAX_REPORTS = 5000


@dataclass(frozen=True, kw_only=True)
class NearRepeat:
    """The Knox test of a run's reports (``near_repeat`` in metrics.json)."""

    reports: int  # reports tested
    close_in_space: int  # pairs in the same or a neighbouring cell
    close_in_both: int  # of those, in the same or the next month
    expected: float  # the mean of the same count with the months shuffled
    p_value: float
    cell_size: float  # CRS units, for the sentence

    @property
    def ratio(self) -> float:
        """Observed close pairs over the count chance gives (nan without any)."""
        return self.close_in_both / self.expected if self.expected > 0 else float("nan")

    @property
    def clustered(self) -> bool:
        """Whether reports repeat near each other more than chance gives."""
        return self.p_value < ALPHA

    @property
    def summary(self) -> str:
        if self.close_in_space == 0:
            return "no two reports in the same or neighbouring cells: nothing to test"
        verdict = "they repeat" if self.clustered else "no clustering beyond chance"
        return (
            f"{self.close_in_both} pairs of reports within {1.5 * self.cell_size:.0f} "
            f"(CRS units) and a month of each other, {self.ratio:.2f} times what shuffled "
            f"months give (p = {self.p_value:.3f}): {verdict}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "test": "Knox: same or neighbouring cell, same or next month; months shuffled",
            "reports": self.reports,
            "close_in_space": self.close_in_space,
            "close_in_both": self.close_in_both,
            "expected": self.expected,
            "ratio": None if np.isnan(self.ratio) else self.ratio,
            "p_value": self.p_value,
            "clustered": self.clustered,
            "summary": self.summary,
        }


def knox_test(
    rows: np.ndarray,
    cols: np.ndarray,
    months: np.ndarray,
    cell_size: float,
    shuffles: int = 199,
    seed: int = 0,
) -> NearRepeat:
    """The Knox test of reports at cells ``rows, cols`` in month numbers ``months``.

    >>> rows = np.array([5, 5, 5, 5, 40, 40, 40, 40])
    >>> cols = np.array([5, 6, 5, 6, 40, 41, 40, 41])
    >>> months = np.array([1, 1, 20, 20, 10, 10, 30, 30])  # pairs a month apart
    >>> knox_test(rows, cols, months, 100.0).close_in_both
    4
    """
    rng = np.random.default_rng(seed)
    if rows.size > MAX_REPORTS:
        keep = np.sort(rng.choice(rows.size, MAX_REPORTS, replace=False))
        rows, cols, months = rows[keep], cols[keep], months[keep]
    points = np.column_stack([rows, cols]).astype(float)
    pairs = cKDTree(points).query_pairs(1.5, output_type="ndarray")
    months = np.asarray(months, dtype=np.int64)

    def close(m: np.ndarray) -> int:
        return int((np.abs(m[pairs[:, 0]] - m[pairs[:, 1]]) <= 1).sum())

    observed = close(months) if pairs.size else 0
    shuffled = np.array(
        [close(rng.permutation(months)) for _ in range(shuffles)] if pairs.size else [0]
    )
    p_value = float((1 + (shuffled >= observed).sum()) / (shuffled.size + 1)) if pairs.size else 1.0
    return NearRepeat(
        reports=int(rows.size),
        close_in_space=int(pairs.shape[0]),
        close_in_both=observed,
        expected=float(shuffled.mean()),
        p_value=p_value,
        cell_size=float(cell_size),
    )
