"""Synthetic series with repeat reporting: their stated truth is where reports fall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hwc_risk.synthetic import TRUTH_SHAPES, RepeatReporting, SyntheticArea, SyntheticSeries


@pytest.mark.parametrize("shape", list(TRUTH_SHAPES))
def test_every_truth_shape_is_a_probability_on_the_valid_cells(shape: str) -> None:
    area = SyntheticArea(size=40, seed=4, truth_shape=shape)
    assert area.truth.sum() == pytest.approx(1.0)
    assert (area.truth[~area.valid] == 0).all() and (area.truth[area.valid] > 0).all()


def test_shapes_differ_and_an_unknown_one_is_refused() -> None:
    a = SyntheticArea(size=40, seed=4, truth_shape="refuge").truth
    b = SyntheticArea(size=40, seed=4, truth_shape="threshold").truth
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] < 0.9
    with pytest.raises(ValueError, match="truth_shape"):
        SyntheticArea(size=40, truth_shape="spiral")


def test_without_repeats_the_next_month_follows_the_area_truth() -> None:
    series = SyntheticSeries(SyntheticArea(size=40, seed=2), n_incidents=200, n_months=12)
    np.testing.assert_allclose(series.truth_for(12), series.area.truth, rtol=1e-12)


def test_truth_for_is_where_the_next_month_reports_fall() -> None:
    """Simulate month T again and again from the same history: its reports land as
    ``truth_for(T)`` says, repeats at earlier events' addresses included."""
    area = SyntheticArea(size=40, seed=2)
    series = SyntheticSeries(
        area, n_incidents=300, n_months=12, repeat=RepeatReporting(branching=0.6), seed=2
    )
    month = 11
    truth = series.truth_for(month)
    rng = np.random.default_rng(0)
    counts = np.zeros(area.shape)
    before = series.events[series.events[:, 0] < month]
    for _ in range(400):
        pending: list[list[tuple[float, float]]] = [[] for _ in range(series.n_months)]
        for m, y, x in before:
            series._trigger(rng, int(m), y, x, pending)
        r, c = area.draw_cells(int(rng.poisson(series.per_month)), rng)
        np.add.at(counts, (r, c), 1.0)
        for y, x in pending[month]:
            counts[int(np.floor(y)), int(np.floor(x))] += 1.0
    seen = counts / counts.sum()
    at_events = np.zeros(area.shape, bool)
    at_events[before[:, 1].astype(int), before[:, 2].astype(int)] = True
    assert seen[at_events].sum() == pytest.approx(truth[at_events].sum(), abs=0.02)
    assert truth[at_events].sum() > 2 * area.truth[at_events].sum()  # repeats matter
    assert np.corrcoef(seen.ravel(), truth.ravel())[0, 1] > 0.9


def test_a_series_writes_reports_of_its_months_and_is_reproducible(tmp_path: Path) -> None:
    def written(folder: Path) -> pd.DataFrame:
        series = SyntheticSeries(
            SyntheticArea(size=40, seed=3), n_incidents=200, repeat=RepeatReporting(), seed=3
        )
        config = yaml.safe_load(series.write(folder).read_text())
        assert config["model"] == "auto" and series.last_month() == "2025-12"
        return pd.read_csv(folder / "incidents.csv")

    a, b = written(tmp_path / "a"), written(tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    assert a["date"].min() >= "2024-01-01" and a["date"].max() <= "2025-12-28"
    # repeated calls: the same address reported more than once
    assert a.duplicated(["lon", "lat"]).sum() > 0.2 * len(a)
    assert 100 < len(a) < 260
