import numpy as np
import pytest

from hwc_risk.surfaces import baseline_surfaces, evaluate_surface
from hwc_risk.validation import (
    block_ids,
    boyce_index,
    capture_rate,
    default_block_size,
    spatial_block_folds,
    surface_auc,
)


def test_capture_rate_counts_incidents_in_the_top_area() -> None:
    values = np.arange(1000, dtype=float)
    # top 10 % are values 900..999
    scores = np.array([999, 950, 900, 899, 10], dtype=float)
    assert capture_rate(values, scores, 0.10) == pytest.approx(3 / 5)
    assert capture_rate(values, scores, 0.5) == pytest.approx(4 / 5)


def test_capture_rate_of_flat_surface_is_the_area_share() -> None:
    values = np.ones(1000)
    assert capture_rate(values, np.ones(37), 0.10) == pytest.approx(0.10)
    # a surface flat except for two hot cells: ties share the rest of the area
    values = np.zeros(100)
    values[:2] = 5.0
    scores = np.array([5.0, 0.0, 0.0, 0.0])
    # top 10 cells: 2 hot ones + 8 of the 98 zeros
    assert capture_rate(values, scores, 0.10) == pytest.approx(0.25 + 0.75 * 8 / 98)


def test_auc() -> None:
    values = np.arange(100, dtype=float)
    assert surface_auc(values, np.array([99.5])) == pytest.approx(1.0)
    assert surface_auc(np.ones(50), np.ones(5)) == pytest.approx(0.5)
    assert surface_auc(values, np.array([49.0])) == pytest.approx(0.495)


def test_boyce_index_detects_a_good_and_a_bad_model() -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(size=20_000)
    # presences drawn with probability proportional to the value: a good model
    good = rng.choice(values, size=500, p=values / values.sum())
    assert boyce_index(values, good) > 0.9
    # presences drawn against the model: strongly negative
    inv = 1 - values
    bad = rng.choice(values, size=500, p=inv / inv.sum())
    assert boyce_index(values, bad) < -0.9
    assert np.isnan(boyce_index(np.ones(10), np.ones(3)))


def test_evaluate_surface_restricts_to_area() -> None:
    surface = np.tile(np.arange(10, dtype=np.float32), (10, 1))
    area = np.zeros((10, 10), bool)
    area[:, 5:] = True
    rows = np.array([0, 1, 2])
    cols = np.array([9, 9, 1])  # the last one is outside the area
    out = evaluate_surface(surface, area, rows, cols, fractions=(0.2,)).to_json()
    assert out["n_incidents"] == 2
    assert out["capture_rate_20"] == pytest.approx(1.0)
    assert out["pai_20"] == pytest.approx(5.0)


def test_counts_and_kde_surfaces() -> None:
    valid = np.ones((50, 50), bool)
    valid[0, :] = False
    rows = np.array([25, 25, 10])
    cols = np.array([25, 25, 40])
    surfaces = baseline_surfaces((50, 50), rows, cols, valid, bandwidth_cells=2.0)
    counts = surfaces["past_counts"]
    assert counts[25, 25] == 2 and counts[10, 40] == 1 and np.isnan(counts[0, 3])
    kde = surfaces["kde"]
    assert np.nanargmax(kde) == 25 * 50 + 25
    assert np.nansum(kde) == pytest.approx(3.0, rel=1e-3)  # mass kept away from the edges


def test_spatial_block_folds_keep_blocks_whole() -> None:
    rng = np.random.default_rng(0)
    folds = spatial_block_folds((40, 60), 10, 4, rng)
    rr, cc = np.mgrid[0:40, 0:60]
    ids = block_ids(rr, cc, 10, 60)
    for b in np.unique(ids):
        assert np.unique(folds[ids == b]).size == 1
    counts = np.bincount(folds.ravel(), minlength=4) // 100  # blocks per fold
    assert sorted(counts.tolist()) == [6, 6, 6, 6]


def test_default_block_size() -> None:
    assert default_block_size((320, 400), 100.0, 500.0) == pytest.approx(4000.0)
    assert default_block_size((16, 16), 100.0, 500.0) == pytest.approx(1000.0)
