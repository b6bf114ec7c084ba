"""The map a run ships: history candidates, blends, and a choice that prefers the simple."""

import math
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window
from scipy import ndimage

from hwc_risk.bands import ArrayBand
from hwc_risk.history import HistorySettings
from hwc_risk.map_choice import (
    CANDIDATES,
    BlendJob,
    HistorySurfacesJob,
    MapMonth,
    blend_window,
    choose_map,
    history_surfaces_window,
)
from hwc_risk.mask import ValidMask
from hwc_risk.months import Month
from hwc_risk.validation import Metrics
from tests.conftest import assert_chunked_equals_whole


def _month(index: int, captures: dict[str, float], n: int = 40) -> MapMonth:
    metrics = {
        name: Metrics(n_incidents=n, auc=0.7, boyce=0.5, rates=((0.1, c, c / 0.1),))
        for name, c in captures.items()
    }
    return MapMonth(month=Month(index), n_test=n, metrics=metrics)


def _months(means: dict[str, float], noise: float, n_months: int, seed: int) -> list[MapMonth]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_months):
        shared = rng.normal(0, noise)  # months differ alike for every candidate
        caps = {
            name: float(np.clip(m + shared + rng.normal(0, noise / 4), 0, 1))
            for name, m in means.items()
        }
        out.append(_month(24300 + k, caps))
    return out


def test_a_clearly_better_candidate_is_chosen() -> None:
    means = {name: 0.30 for name in CANDIDATES} | {"model": 0.45}
    choice = choose_map(_months(means, 0.05, 12, 0))
    assert choice.chosen == "model"
    assert choice.capture("model") > choice.capture("past_counts") + 0.1


def test_history_wins_when_it_is_what_predicts() -> None:
    means = {name: 0.30 for name in CANDIDATES} | {"recent_counts": 0.50}
    assert choose_map(_months(means, 0.05, 12, 1)).chosen == "recent_counts"


#: A rival's lead over the kept candidate month by month: half a point on average, winning
#: some months and losing others; and three points every month.
NOISY_LEAD = [0.06, -0.05, 0.06, -0.05, 0.05, -0.04]
STEADY_LEAD = [0.03] * 6


def _lead(kept: str, rival: str, leads: list[float]) -> list[MapMonth]:
    """Months where ``kept`` captures 40 % and ``rival`` 40 % plus each lead (others 20 %)."""
    base = {name: 0.20 for name in CANDIDATES}
    return [_month(24300 + k, base | {kept: 0.40, rival: 0.40 + d}) for k, d in enumerate(leads)]


def test_within_noise_the_simpler_candidate_is_kept() -> None:
    choice = choose_map(_lead("history_density", "model", NOISY_LEAD))
    assert choice.capture("model") > choice.capture("history_density")
    assert choice.chosen == "history_density"
    assert "within one bootstrap standard error" in choice.reason
    # the same lead every month is clear: the model is chosen
    assert choose_map(_lead("history_density", "model", STEADY_LEAD)).chosen == "model"


def test_within_noise_the_even_blend_is_shipped() -> None:
    # past counts lead the blend pooled, but not every month: the blend (the hedge) is
    # kept; a steady lead is clear and past counts are shipped
    choice = choose_map(_lead("blend_50", "past_counts", NOISY_LEAD))
    assert choice.capture("past_counts") > choice.capture("blend_50")
    assert choice.chosen == "blend_50"
    assert choice.weight == 0.5
    assert choose_map(_lead("blend_50", "past_counts", STEADY_LEAD)).chosen == "past_counts"


def test_capture_is_pooled_over_incidents_not_months() -> None:
    big = _month(24300, {"past_counts": 0.2, "model": 0.6}, n=90)
    small = _month(24301, {"past_counts": 0.9, "model": 0.1}, n=10)
    choice = choose_map([big, small])
    assert choice.capture("model") == pytest.approx((0.6 * 90 + 0.1 * 10) / 100)
    assert choice.capture("past_counts") == pytest.approx((0.2 * 90 + 0.9 * 10) / 100)


def test_history_surfaces_are_their_definition(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    shape = (40, 50)
    valid = np.ones(shape, bool)
    valid[:5, :5] = False
    rows, cols = rng.integers(0, 40, 300), rng.integers(0, 50, 300)
    months = rng.integers(100, 130, 300)
    settings = HistorySettings(tau_months=6.0, bandwidth=300.0)
    job = HistorySurfacesJob(
        valid=ValidMask.of_array(valid),
        rows=rows,
        cols=cols,
        months=months,
        target=130,
        settings=settings,
        cell_size=100.0,
    )
    assert_chunked_equals_whole(history_surfaces_window, job, shape, tmp_path)
    density, recent = history_surfaces_window(job, Window(0, 0, 50, 40))
    weighted = np.zeros(shape)
    np.add.at(weighted, (rows, cols), np.exp(-(129 - months) / 6.0))
    expected = ndimage.gaussian_filter(weighted, 3.0, mode="constant", truncate=4.0)
    np.testing.assert_allclose(density[valid], expected[valid], rtol=1e-5, atol=1e-9)
    counts = np.zeros(shape)
    last_year = months >= 118
    np.add.at(counts, (rows[last_year], cols[last_year]), 1.0)
    np.testing.assert_array_equal(recent[valid], counts[valid])
    assert np.isnan(density[~valid]).all() and np.isnan(recent[~valid]).all()


def test_blends_mix_intensities_scaled_to_a_mean_of_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    model = rng.uniform(0.1, 0.9, (20, 30)).astype(np.float32)
    density = rng.gamma(2.0, 1.0, (20, 30)).astype(np.float32)
    valid = np.ones((20, 30), bool)
    job = BlendJob(
        valid=ValidMask.of_array(valid),
        model=ArrayBand(model),
        density=ArrayBand(density),
        model_mean=float(model.mean()),
        density_mean=float(density.mean()),
        weights=(0.0, 0.5, 1.0),
    )
    assert_chunked_equals_whole(blend_window, job, (20, 30), tmp_path)
    history, half, model_only = blend_window(job, Window(0, 0, 30, 20))
    np.testing.assert_allclose(history, density / density.mean(), rtol=1e-5)
    np.testing.assert_allclose(model_only, model / model.mean(), rtol=1e-5)
    np.testing.assert_allclose(half, 0.5 * (history + model_only), rtol=1e-5)
    assert math.isclose(float(half.mean()), 1.0, rel_tol=1e-5)


def test_the_model_clearly_above_history_alone_is_shipped_before_the_blend() -> None:
    # history alone is well below the model every month, the blend a little below it and
    # within noise: history adds nothing of its own, so the model is shipped, not the blend
    base = {name: 0.15 for name in CANDIDATES}
    months = [
        _month(24300 + k, base | {"model": 0.40 + d, "blend_50": 0.39, "blend_75": 0.395})
        for k, d in enumerate([0.04, -0.03, 0.03, -0.02, 0.02, -0.03])
    ]
    choice = choose_map(months)
    assert choice.chosen == "model"
    assert "the model clearly above history alone" in choice.reason
    # history as good as the model: the even blend is the hedge again
    even = [
        _month(24300 + k, base | {"model": 0.40 + d, "history_density": 0.40 - d, "blend_50": 0.41})
        for k, d in enumerate([0.04, -0.03, 0.03, -0.02, 0.02, -0.03])
    ]
    assert choose_map(even).chosen == "blend_50"


def test_where_reports_do_not_repeat_the_model_comes_first() -> None:
    # model and history alone tie, the even blend leads them within noise: the blend is
    # kept by default, the model when the reports show no near-repeats (history has no
    # news of its own there)
    def months(leads: list[float]) -> list[MapMonth]:
        base = {name: 0.20 for name in CANDIDATES} | {"model": 0.40, "history_density": 0.40}
        return [_month(24300 + k, base | {"blend_50": 0.40 + d}) for k, d in enumerate(leads)]

    assert choose_map(months(NOISY_LEAD)).chosen == "blend_50"
    choice = choose_map(months(NOISY_LEAD), model_first=True)
    assert choice.chosen == "model" and "do not repeat" in choice.reason
    # a clear lead still wins
    assert choose_map(months(STEADY_LEAD), model_first=True).chosen == "blend_50"
