import math

import numpy as np
import pytest

from hwc_risk.history import (
    HistorySettings,
    choose_history,
    history_at_samples,
    history_surfaces,
    month_number,
)
from hwc_risk.models import BlendClassifier, risk_scores


def test_month_number() -> None:
    dates = np.array(["2025-01-31", "2025-02-01", "NaT"], dtype="datetime64[ns]")
    assert month_number(dates).tolist() == [2025 * 12, 2025 * 12 + 1, -1]


def test_history_uses_only_earlier_months() -> None:
    shape = (20, 20)
    rows = np.array([5, 5, 10])
    cols = np.array([5, 5, 10])
    months = np.array([100, 101, 102])
    s = HistorySettings(tau_months=math.inf, bandwidth=100.0)
    # a sample in month 102 sees the two earlier incidents, not its own month's
    at_102 = history_surfaces(shape, rows, cols, months, 102, s, 100.0)
    assert np.expm1(at_102[0][5, 5]) == pytest.approx(2.0)
    assert at_102[0][10, 10] == 0.0
    feats = history_at_samples(
        shape,
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
    layers = history_surfaces((5, 5), rows, cols, months, 100, s, 100.0)
    assert np.expm1(layers[0][1, 1]) == pytest.approx(1.0 + math.exp(-3.0 / 3.0))


def test_choose_history_prefers_what_predicts_held_out_months() -> None:
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
        shape,
        np.array(rows),
        np.array(cols),
        np.array(months),
        list(range(14, 20)),
        np.ones(shape, bool),
        100.0,
    )
    assert settings.tau_months <= 6.0  # a shift is best followed by short memory
    best = max(info["candidates"], key=lambda c: c["mean_log_likelihood"])
    assert info["chosen"]["bandwidth"] == best["bandwidth"]


def test_blend_learns_weights_on_held_out_folds() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3)).astype(np.float32)
    y = (X[:, 0] + rng.normal(scale=0.7, size=600) > 1.0).astype(int)
    blend = BlendClassifier(members=("glm", "gbm"), cv=3, random_state=0).fit(X, y)
    assert blend.weights_.sum() == pytest.approx(1.0) and (blend.weights_ >= 0).all()
    scores = risk_scores(blend, X)
    assert scores[X[:, 0] > 1.5].mean() > scores[X[:, 0] < -1].mean() + 0.3


def test_history_in_chunks_equals_the_whole_grid() -> None:
    from hwc_risk.compute import Compute
    from hwc_risk.history import HistoryJob, history_window

    rng = np.random.default_rng(4)
    shape = (90, 130)
    n = 400
    rows, cols = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
    months = rng.integers(100, 124, n)
    s = HistorySettings(tau_months=6.0, bandwidth=300.0)  # kernels of 3 and 9 cells
    whole = history_surfaces(shape, rows, cols, months, 120, s, 100.0)
    job = HistoryJob.of(shape, rows, cols, months, 120, s, 100.0)
    assert job.halo == 28  # 3 x 9 cells, rounded, + 1
    for win in Compute(chunk_size=16).windows(shape):
        got = history_window(job, win)
        r, c = int(win.row_off), int(win.col_off)
        for layer, full in zip(got, whole, strict=True):
            part = full[r : r + layer.shape[0], c : c + layer.shape[1]]
            np.testing.assert_array_equal(layer, part)
    assert whole[2].max() > 0 and (whole[0] == 0).any()
