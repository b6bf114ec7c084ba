"""The temporal leaves on a planted space-time truth: a model that sees the monthly driver
(read at each sample's own month, mapped with the missing-month policy) ranks next months'
cells clearly better than the same model without it.

The first test fits a logistic regression directly on the samples (no pipeline run); the
second runs the pipeline month by month and scores next month's forecast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import stats
from sklearn.linear_model import LogisticRegression

from hwc_risk.compute import Compute
from hwc_risk.grid import GridSpec
from hwc_risk.synthetic import SpaceTimeArea
from hwc_risk.temporal import (
    CovariateConfig,
    as_month,
    background_months,
    open_source,
    season_features,
    temporal_features,
    values_at_samples,
    write_month_layers,
)
from hwc_risk.temporal.stack import SEASON

# runs pipelines or fits models on whole areas: the slow tier (tests/conftest.py)
pytestmark = pytest.mark.slow

TRAIN = 24  # months with greenness published; the next 12 are mapped from its climatology


def _top_mass(surface: np.ndarray, truth: np.ndarray) -> float:
    """The truth's probability inside the top 10 % of ``surface``: the expected capture."""
    return float(truth[surface >= np.quantile(surface, 0.9)].sum())


def test_time_features_track_the_moving_hotspots(tmp_path: Path) -> None:
    st = SpaceTimeArea(size=60, seed=3, n_months=36)
    cube = st.write_cube(tmp_path / "greenness.nc", months=TRAIN)
    grid = GridSpec(st.area.crs, st.area.transform, st.size, st.size)
    rng = np.random.default_rng(0)
    r, c, t = st.draw(rng)
    months = as_month(st.month(0)) + np.arange(st.n_months)
    valid = st.area.valid
    static = np.log(np.where(valid, st.area.truth, np.nan))  # both models get the static truth
    # samples: incidents of the published months, each in its month; background months
    # drawn uniformly over the same months
    seen = t < TRAIN
    vr, vc = np.nonzero(valid)
    pick = rng.choice(vr.size, 5000)
    rows = np.concatenate([r[seen], vr[pick]])
    cols = np.concatenate([c[seen], vc[pick]])
    sample_months = np.concatenate([months[t[seen]], background_months(5000, months[:TRAIN], rng)])
    y = np.r_[np.ones(seen.sum()), np.zeros(5000)]
    cfg = CovariateConfig(path=cube, type="continuous")
    features = temporal_features("green", cfg)
    with open_source(cfg, "green") as src:
        values, filled = values_at_samples(src, cfg, features, grid, rows, cols, sample_months)
        assert filled == []  # every training month is published
        season = season_features(sample_months)
        x_static = static[rows, cols][:, None]
        x_time = np.column_stack(
            [x_static, values["green"], season["month_sin"], season["month_cos"]]
        )
        static_model = LogisticRegression(max_iter=1000).fit(x_static, y)
        time_model = LogisticRegression(max_iter=1000).fit(x_time, y)
        assert 0.8 * st.beta < time_model.coef_[0, 1] < 1.2 * st.beta  # the driver's effect
        capture = {"static": [], "time": []}
        spearman = {"static": [], "time": []}
        for k in range(TRAIN, st.n_months):
            layers, used = write_month_layers(
                src,
                "green",
                cfg,
                features,
                grid,
                months[k],
                tmp_path,
                Compute(chunk_size=32, workers=1),
            )
            assert [u.how for u in used] == ["climatology"]  # not published: its calendar month
            with rasterio.open(layers["green"]) as ds:
                green = ds.read(1)
            ok = valid & np.isfinite(green)
            sf = season_features(months[k])
            x_s = static[ok][:, None]
            x_t = np.column_stack(
                [
                    x_s,
                    green[ok],
                    np.full(ok.sum(), sf["month_sin"]),
                    np.full(ok.sum(), sf["month_cos"]),
                ]
            )
            truth = st.truth(k)[ok]
            for name, surface in (
                ("static", static_model.decision_function(x_s)),
                ("time", time_model.decision_function(x_t)),
            ):
                capture[name].append(_top_mass(surface, truth))
                spearman[name].append(stats.spearmanr(surface, truth).statistic)
    cap_s, cap_t = np.array(capture["static"]), np.array(capture["time"])
    assert np.all(cap_t >= cap_s - 0.005)  # never worse in any month
    assert cap_t.mean() > 1.10 * cap_s.mean()  # clearly better over the year
    harvest = [i for i, k in enumerate(range(TRAIN, st.n_months)) if st.calendar[k] in (4, 5, 6)]
    assert cap_t[harvest].mean() > 1.35 * cap_s[harvest].mean()  # where the hotspots moved
    assert np.mean(spearman["time"]) > 0.98
    assert np.mean(spearman["time"]) > np.mean(spearman["static"]) + 0.03


def _capture(surface: np.ndarray, truth: np.ndarray) -> float:
    """The truth's probability inside the top 10 % of ``surface`` (cells where it is finite)."""
    return float(truth[surface >= np.quantile(surface, 0.9)].sum())


@pytest.mark.slow
def test_the_forecast_with_time_features_captures_more_of_next_month(tmp_path: Path) -> None:
    """The pipeline, run month by month on a planted space-time truth: next month's
    forecast made with the monthly driver and the season ranks next month's cells like
    the truth, and clearly better than the same runs without them."""
    from hwc_risk.config import load_config
    from hwc_risk.pipeline import run

    st = SpaceTimeArea(size=60, seed=3)
    common = {
        "forecast": {"horizon": 1},
        "background": {"n_points": 3000},
        "validation": {"folds": 3},
    }
    static = {
        "cover": {"path": "cover.tif", "type": "categorical"},
        "elevation": {"path": "elevation.tif", "type": "continuous"},
    }
    green = {"greenness": {"path": "greenness.nc", "type": "continuous"}}
    configs = {
        "time": st.write(
            tmp_path / "time",
            extra_config={
                **common,
                "covariates": {**static, **green},
                "features": {"season": True},
            },
        ),
        "static": st.write(tmp_path / "static", extra_config={**common, "covariates": static}),
    }
    capture: dict[str, list[float]] = {"time": [], "static": []}
    spearman: dict[str, list[float]] = {"time": [], "static": []}
    for t in (28, 30, 32, 34):  # forecasts of May, July, September, November 2025
        truth = st.truth(t + 1)
        for name, config in configs.items():
            result = run(load_config(config), month=st.month(t))
            with rasterio.open(result.run_dir / "forecast.tif") as ds:
                expected = ds.read(1)
            ok = np.isfinite(expected)
            share = truth[ok] / truth[ok].sum()
            capture[name].append(_capture(expected[ok], share))
            spearman[name].append(stats.spearmanr(expected[ok], share).statistic)
            month = result.metrics["forecast"]["months"][0]
            assert month["month"] == st.month(t + 1)
            # the expected total is near the truth's (a trend and a season)
            assert abs(month["expected"] - st.expected_total(t + 1)) < 0.3 * st.expected_total(
                t + 1
            )
            if name == "time":
                ablation = result.metrics["time_ablation"]
                assert ablation["kept"] and ablation["features"] == ["greenness", *SEASON]
    cap_t, cap_s = np.array(capture["time"]), np.array(capture["static"])
    assert np.all(cap_t >= cap_s - 0.01), (cap_t, cap_s)  # no month clearly worse
    assert cap_t.mean() > 1.1 * cap_s.mean(), (cap_t, cap_s)  # clearly better overall
    rho_t, rho_s = np.array(spearman["time"]), np.array(spearman["static"])
    assert rho_t.min() > 0.95, rho_t  # tracks the truth month by month
    assert rho_t.mean() > rho_s.mean() + 0.03, (rho_t, rho_s)
