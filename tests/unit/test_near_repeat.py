"""The Knox test of whether reports repeat near each other in space and time."""

from __future__ import annotations

import numpy as np
import pytest

from hwc_risk import near_repeat
from hwc_risk.near_repeat import knox_test
from hwc_risk.synthetic import RepeatReporting, SyntheticArea, SyntheticSeries


def _events(repeat: RepeatReporting | None, seed: int) -> tuple[np.ndarray, ...]:
    series = SyntheticSeries(SyntheticArea(size=60, seed=seed), 300, 24, repeat, seed=seed)
    ev = series.events
    return ev[:, 1].astype(int), ev[:, 2].astype(int), ev[:, 0].astype(int)


def test_repeat_reporting_is_detected() -> None:
    rows, cols, months = _events(RepeatReporting(branching=0.3), seed=1)
    result = knox_test(rows, cols, months, 100.0)
    assert result.clustered and result.p_value <= 0.01
    assert result.ratio > 1.5
    assert "they repeat" in result.summary


def test_independent_reports_are_not_clustered() -> None:
    # the same landscape's reports without repeats: where they fall is as uneven as
    # before (the truth), only the link between place and month is gone
    rows, cols, months = _events(None, seed=1)
    result = knox_test(rows, cols, months, 100.0)
    assert not result.clustered
    assert 0.6 < result.ratio < 1.5
    assert result.to_json()["clustered"] is False


def test_the_p_value_is_calibrated_on_reports_without_repeats() -> None:
    """Months independent of places: the test calls about 5 % of series clustered."""
    rng = np.random.default_rng(0)
    p = []
    for _ in range(60):
        n = 250
        rows, cols = rng.integers(0, 30, n), rng.integers(0, 30, n)
        p.append(knox_test(rows, cols, rng.integers(0, 24, n), 100.0, shuffles=99).p_value)
    p = np.array(p)
    assert (p < near_repeat.ALPHA).mean() <= 0.15
    assert 0.3 < np.median(p) < 0.7  # p-values spread over (0, 1), not piled at either end


def test_reports_far_apart_have_nothing_to_test() -> None:
    result = knox_test(np.array([0, 10, 20]), np.array([0, 10, 20]), np.array([1, 1, 1]), 250.0)
    assert result.close_in_space == 0 and result.p_value == 1.0 and not result.clustered
    assert "nothing to test" in result.summary
    assert result.to_json()["ratio"] is None


def test_large_series_are_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(near_repeat, "MAX_REPORTS", 100)
    rng = np.random.default_rng(2)
    rows, cols, months = rng.integers(0, 20, 500), rng.integers(0, 20, 500), np.zeros(500, int)
    result = knox_test(rows, cols, months, 100.0)
    assert result.reports == 100
    # every pair in the same month: all close pairs are close in time too
    assert result.close_in_both == result.close_in_space > 0
