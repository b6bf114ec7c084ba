import math
from pathlib import Path

import numpy as np
import pytest

from hwc_risk.history import (
    HistorySettings,
    choose_history,
    history_at_samples,
    history_surfaces,
)
from hwc_risk.models import BlendClassifier, risk_scores
from hwc_risk.months import Month, month_numbers
from tests.conftest import mask_file


def test_month_numbers() -> None:
    dates = np.array(["2025-01-31", "2025-02-01", "NaT"], dtype="datetime64[ns]")
    assert month_numbers(dates).tolist() == [2025 * 12, 2025 * 12 + 1, -1]
    assert Month(2025 * 12 + 1).label == "2025-02" == Month.parse("2025-02").label
    assert Month.of(np.datetime64("2025-02-28T23:59")) == Month(2025 * 12 + 1)


def test_history_uses_only_earlier_months() -> None:
    shape = (20, 20)
    rows = np.array([5, 5, 10])
    cols = np.array([5, 5, 10])
    months = np.array([100, 101, 102])
    s = HistorySettings(tau_months=math.inf, bandwidth=100.0)
    # a sample in month 102 sees the two earlier incidents, not its own month's
    at_102 = history_surfaces(shape, rows, cols, months, Month(102), s, 100.0)
    assert np.expm1(at_102[0][5, 5]) == pytest.approx(2.0)
    assert at_102[0][10, 10] == 0.0
    feats = history_at_samples(
        rows,
        cols,
        months,
        np.array([10, 5]),
        np.array([10, 5]),
        np.array([102, 101]),
        s,
        100.0,
    )
    assert feats[0, 0] == 0.0  # its own incident is not history
    assert np.expm1(feats[1, 0]) == pytest.approx(1.0)  # only month 100 precedes 101


def test_recency_weighting() -> None:
    s = HistorySettings(tau_months=3.0, bandwidth=100.0)
    rows = np.array([1, 1])
    cols = np.array([1, 1])
    months = np.array([96, 99])  # 4 months and 1 month before month 100
    layers = history_surfaces((5, 5), rows, cols, months, Month(100), s, 100.0)
    assert np.expm1(layers[0][1, 1]) == pytest.approx(1.0 + math.exp(-3.0 / 3.0))


def test_choose_history_prefers_what_predicts_held_out_months(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    shape = (60, 60)
    # incidents concentrate at a spot that moves once: recent months matter
    rows, cols, months = [], [], []
    for m in range(24):
        centre = (15, 15) if m < 12 else (45, 45)
        r = rng.normal(centre[0], 2.0, 20).clip(0, 59).astype(int)
        c = rng.normal(centre[1], 2.0, 20).clip(0, 59).astype(int)
        rows += r.tolist()
        cols += c.tolist()
        months += [m] * 20
    settings, info = choose_history(
        np.array(rows),
        np.array(cols),
        np.array(months),
        [Month(m) for m in range(14, 20)],
        mask_file(np.ones(shape, bool), tmp_path),
        100.0,
    )
    assert settings.tau_months <= 6.0  # a shift is best followed by short memory
    best = max(info["candidates"], key=lambda c: c["mean_log_likelihood"])
    assert info["chosen"]["bandwidth"] == best["bandwidth"]


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_blend_learns_weights_on_held_out_folds() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3)).astype(np.float32)
    y = (X[:, 0] + rng.normal(scale=0.7, size=600) > 1.0).astype(int)
    blend = BlendClassifier(members=("glm", "gbm"), cv=3, random_state=0).fit(X, y)
    assert blend.weights_.sum() == pytest.approx(1.0) and (blend.weights_ >= 0).all()
    scores = risk_scores(blend, X)
    assert scores[X[:, 0] > 1.5].mean() > scores[X[:, 0] < -1].mean() + 0.3


def test_history_layers_are_their_definition_in_any_chunking(tmp_path: Path) -> None:
    from scipy import ndimage

    from hwc_risk.history import HistoryJob, history_window
    from tests.conftest import assert_chunked_equals_whole

    rng = np.random.default_rng(4)
    shape = (90, 130)
    n = 400
    rows, cols = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
    months = rng.integers(100, 124, n)
    s = HistorySettings(tau_months=6.0, bandwidth=300.0)  # kernels of 3 and 9 cells
    job = HistoryJob.of(shape, rows, cols, months, Month(120), s, 100.0)
    assert job.halo == 28  # 3 x 9 cells, rounded, + 1
    assert_chunked_equals_whole(history_window, job, shape, tmp_path)
    # the definition: recency-weighted counts of earlier months, Gaussian densities per km2
    earlier = months < 120
    counts = np.zeros(shape)
    np.add.at(counts, (rows[earlier], cols[earlier]), np.exp(-(119 - months[earlier]) / 6.0))
    whole = history_surfaces(shape, rows, cols, months, Month(120), s, 100.0)
    np.testing.assert_allclose(whole[0], np.log1p(counts), rtol=1e-6)
    for layer, sigma in zip(whole[1:], (3.0, 9.0), strict=True):
        dens = ndimage.gaussian_filter(counts, sigma, mode="constant", truncate=3.0)
        np.testing.assert_allclose(layer, np.log1p(dens / 0.01), rtol=1e-6)
    assert whole[2].max() > 0 and (whole[0] == 0).any()


def test_history_at_samples_equals_the_grid_surfaces() -> None:
    rng = np.random.default_rng(7)
    shape = (70, 90)
    n = 300
    rows, cols = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
    rows[:20], cols[:20] = 0, 0  # incidents stacked in a corner: kernels cut by the edge
    months = rng.integers(100, 124, n)
    s = HistorySettings(tau_months=6.0, bandwidth=400.0)
    at_r, at_c = rng.integers(0, shape[0], 500), rng.integers(0, shape[1], 500)
    at_r[:5], at_c[:5] = rows[:5], cols[:5]  # samples on incident cells
    at_m = rng.integers(101, 125, 500)
    got = history_at_samples(rows, cols, months, at_r, at_c, at_m, s, 100.0)
    for month in np.unique(at_m):
        idx = at_m == month
        whole = history_surfaces(shape, rows, cols, months, Month(int(month)), s, 100.0)
        for j, layer in enumerate(whole):
            np.testing.assert_allclose(got[idx, j], layer[at_r[idx], at_c[idx]], rtol=1e-6)
    assert (got[:, 0] > 0).sum() >= 5 and got[:, 2].min() > 0


def test_choose_history_equals_its_grid_definition(tmp_path: Path) -> None:
    """Kernel sums at incidents and kernel mass on valid cells give the score of the
    whole-grid computation (density masked to valid cells, normalised over them)."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    shape = (50, 60)
    valid = np.ones(shape, bool)
    valid[:, :12] = False  # nodata in the west: kernels lose mass there
    n = 240
    rows, cols = rng.integers(0, shape[0], n), rng.integers(12, shape[1], n)
    months = rng.integers(0, 12, n)
    _, info = choose_history(
        rows, cols, months, [Month(9), Month(10), Month(11)], mask_file(valid, tmp_path), 100.0
    )
    for cand in info["candidates"][:8]:
        total, count = 0.0, 0
        for target in (9, 10, 11):
            now = months == target
            earlier = months < target
            age = target - months[earlier]
            tau = cand["tau_months"]
            w = np.exp(-(age - 1.0) / tau) if np.isfinite(tau) else np.ones(age.size)
            counts = np.zeros(shape)
            np.add.at(counts, (rows[earlier], cols[earlier]), w)
            sigma = cand["bandwidth"] / 100.0
            dens = ndimage.gaussian_filter(counts, sigma, mode="constant", truncate=3.0)
            dens = np.where(valid, dens, 0.0)
            p = 0.95 * dens / dens.sum() + 0.05 / valid.sum()
            total += float(np.log(p[rows[now], cols[now]]).sum())
            count += int(now.sum())
        assert cand["mean_log_likelihood"] == pytest.approx(total / count, rel=1e-9)


def test_an_equal_weight_blend_weighs_its_members_by_their_own_scale() -> None:
    """cv=0: each member's scores relative to its mean over the background, averaged;
    a member whose scores run ten times higher does not drown the other."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] + rng.normal(scale=0.5, size=3000) > 2.2).astype(int)
    blend = BlendClassifier(members=("glm", "maxent"), cv=0, random_state=0).fit(X, y)
    means = blend.member_scores(X[y == 0]).mean(axis=0)
    assert blend.weights_.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(blend.weights_ * means, (blend.weights_ * means)[0], rtol=1e-5)
    scores = risk_scores(blend, X)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert scores[y == 1].mean() > 3 * scores[y == 0].mean()
