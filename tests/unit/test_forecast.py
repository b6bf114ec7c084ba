"""The count model of monthly totals: family choice, intervals, splits, rolling origins."""

from __future__ import annotations

import numpy as np
import pytest

from hwc_risk.forecast import (
    fit_count_model,
    forecast_totals,
    rolling_origin_totals,
    split_total,
)
from hwc_risk.temporal import as_month, month_label

START = as_month("2019-01")


def series(
    seed: int, n: int = 60, alpha: float = 0.0, level: float = 25.0, trend: float = 0.15
) -> np.ndarray:
    """Monthly counts with a yearly trend and a season (peak in April), Poisson or NB2."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    angle = 2 * np.pi * (t % 12) / 12
    mu = np.exp(np.log(level) + trend * t / 12 + 0.5 * np.sin(angle) + 0.2 * np.cos(angle))
    if alpha > 0:
        mu = rng.gamma(1 / alpha, alpha * mu)
    return rng.poisson(mu)


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_family_follows_the_dispersion() -> None:
    poisson = fit_count_model(series(1, alpha=0.0), START)
    overdispersed = fit_count_model(series(1, alpha=0.08), START)
    assert poisson.family == "poisson" and poisson.alpha == 0
    assert overdispersed.family == "negative_binomial"
    assert 0.02 < overdispersed.alpha < 0.3
    # a seasonal series keeps its harmonics
    assert "season1" in poisson.terms and "season1" in overdispersed.terms


def test_surges_make_a_negative_binomial() -> None:
    """A sharply seasonal series with near-zero winters and one autumn surge (as bear
    reports in a mast-failure year) is overdispersed: the NB2 fit must be found (started
    from the Poisson fit), not lost to a failed optimisation."""
    rng = np.random.default_rng(0)
    season = np.array([2, 0.5, 3, 7, 45, 85, 50, 22, 15, 18, 8, 2])
    mu = np.tile(season, 6).astype(float)
    mu[20:23] *= [8, 25, 10]  # autumn of the second year
    y = rng.poisson(rng.gamma(4.0, mu / 4.0))
    model = fit_count_model(y, START)
    assert model.family == "negative_binomial" and model.overdispersion_p < 1e-6
    june = y[:65]  # up to May of the sixth year: the next month is a June
    fc = forecast_totals(fit_count_model(june, START), june, rng=np.random.default_rng(0))
    # Junes so far: 40, 99, 45, 43, 10: the interval must be that wide, not Poisson-narrow
    assert fc.totals[0].upper - fc.totals[0].lower > 40


def test_forecast_months_and_interval_order() -> None:
    y = series(2, n=40, alpha=0.05)
    fc = forecast_totals(fit_count_model(y, START), y, horizon=3, rng=np.random.default_rng(0))
    assert [month_label(m) for m in fc.months] == ["2022-05", "2022-06", "2022-07"]
    for iv in fc.totals:
        assert 0 <= iv.lower <= iv.expected <= iv.upper
        assert iv.level == 0.8
    assert fc.draws.shape == (4000, 3)
    doc = fc.to_json()
    assert doc["months"][0]["month"] == "2022-05" and doc["model"]["family"] in (
        "poisson",
        "negative_binomial",
    )


def test_short_and_empty_series() -> None:
    with pytest.raises(ValueError, match="at least 6 months"):
        fit_count_model(np.array([1, 2, 3]), START)
    zeros = np.zeros(14, dtype=int)
    fc = forecast_totals(fit_count_model(zeros, START), zeros, rng=np.random.default_rng(0))
    assert fc.totals[0].upper == 0 and fc.totals[0].expected < 0.01


def test_split_adds_up_and_widens() -> None:
    rng = np.random.default_rng(4)
    draws = rng.poisson(40, size=20_000)
    parts = split_total(draws, {"very high": 0.5, "high": 0.3, "rest": 0.2}, rng)
    assert sum(p.expected for p in parts.values()) == pytest.approx(40, rel=0.01)
    assert parts["very high"].expected == pytest.approx(20, rel=0.02)
    # thinning keeps the total's spread and adds where the incidents fall
    sd_total = draws.std()
    assert parts["very high"].upper - parts["very high"].lower > 0.5 * (
        np.quantile(draws, 0.9) - np.quantile(draws, 0.1)
    )
    assert sd_total > 0
    assert "expected" in parts["high"].describe()


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_rolling_origin_beats_seasonal_naive_with_nominal_coverage() -> None:
    """On series with trend and season: the 80 % interval covers 70-90 % of the held-out
    totals, and the mean absolute error is clearly below the seasonal naive forecast's."""
    results = [
        rolling_origin_totals(
            series(seed, n=54, alpha=alpha), START, horizon=3, n_origins=18, seed=seed, n_sims=1000
        ).overall()
        for seed, alpha in [(10, 0.0), (11, 0.0), (12, 0.04), (13, 0.04), (14, 0.08)]
    ]
    n = sum(r["n"] for r in results)
    coverage = sum(r["coverage"] * r["n"] for r in results) / n
    mae = sum(r["mae"] * r["n"] for r in results) / n
    snaive = sum(r["mae_seasonal_naive"] * r["n"] for r in results) / n
    mean12 = sum(r["mae_mean_12"] * r["n"] for r in results) / n
    assert abs(coverage - 0.8) <= 0.10, coverage
    assert mae < 0.95 * snaive, (mae, snaive)
    assert mae < 0.9 * mean12, (mae, mean12)
