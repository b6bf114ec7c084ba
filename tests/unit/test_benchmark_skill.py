"""The quality benchmarks' instruments: exact-share top-k capture and the monthly driver.

``benchmarks/`` is not a package (its scripts import their helpers as
``from _skill import ...``), so its folder is put on the path here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS

from hwc_risk.grid import GridSpec
from hwc_risk.surfaces import Area as SurfaceArea
from hwc_risk.surfaces import RankedSurface
from hwc_risk.validation import capture_rate, surface_auc
from tests.conftest import DEFAULT_TRANSFORM, mask_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _skill
import real_data


def test_a_constant_surface_captures_exactly_the_area_share() -> None:
    values = np.full(103, 0.5)  # 10.3 cells in the top 10 %: a fractional k as well
    scores = np.full(7, 0.5)
    assert _skill.capture_weights(values, scores, 0.10).sum() == pytest.approx(0.7)
    assert _skill.capture_weights(values, scores, 0.20).sum() == pytest.approx(1.4)
    p = np.random.default_rng(0).dirichlet(np.ones(103))
    assert _skill.expected_capture(values, p, 0.10) == pytest.approx(0.10)


def test_tied_cells_count_by_the_share_that_fits() -> None:
    # 2 cells above the cut, 8 tied at it, 10 below; the top 5 cells take 3 of the 8
    values = np.array([9.0, 8.0] + [5.0] * 8 + [1.0] * 10)
    threshold, share = _skill.top_cut(values, 0.25)
    assert (threshold, share) == (5.0, pytest.approx(3 / 8))
    hits = _skill.capture_weights(values, np.array([9.0, 5.0, 5.0, 1.0]), 0.25)
    assert hits.tolist() == pytest.approx([1.0, 3 / 8, 3 / 8, 0.0])
    # the same as the mean over random orders of the tied cells (exactly 5 cells taken)
    rng = np.random.default_rng(1)
    incident_cells = np.array([0, 2, 3, 15])
    taken = []
    for _ in range(4000):
        order = np.lexsort((rng.random(values.size), -values))[:5]
        taken.append(np.isin(incident_cells, order).mean())
    assert np.mean(taken) == pytest.approx(hits.mean(), abs=0.01)
    # a surface of mostly zeros (past counts) never gets more than 10 % of the area
    counts = np.zeros(500)
    counts[:20] = 1.0
    captured = _skill.capture_weights(counts, counts, 0.10)
    assert captured.sum() == pytest.approx(50.0)  # 20 cells above + 30 of 480 zeros


@pytest.mark.parametrize("levels", [None, 3, 12])
def test_exact_share_capture_agrees_with_the_pipeline(tmp_path: Path, levels: int | None) -> None:
    """hwc_risk.validation and hwc_risk.surfaces rank tied surfaces the same way."""
    rng = np.random.default_rng(7)
    shape = (37, 41)  # 1517 cells: 10 % is 151.7
    surface = rng.gamma(1.0, 1.0, shape).astype(np.float32)
    if levels is not None:
        surface = np.floor(surface * levels / 4).astype(np.float32)
    rows, cols = rng.integers(0, shape[0], 60), rng.integers(0, shape[1], 60)
    values, scores = surface.ravel().astype(np.float64), surface[rows, cols].astype(np.float64)
    path = tmp_path / "surface.tif"
    profile = {"driver": "GTiff", "count": 1, "dtype": "float32", "crs": "EPSG:32736"}
    with rasterio.open(
        path, "w", width=shape[1], height=shape[0], transform=DEFAULT_TRANSFORM, **profile
    ) as dst:
        dst.write(surface, 1)
    on_disk = (
        RankedSurface.for_incidents(
            path, SurfaceArea(mask_file(np.ones(shape, bool), tmp_path)), rows, cols, chunk=64
        )
        .evaluate(_skill.FRACTIONS)
        .to_json()
    )
    for fraction in _skill.FRACTIONS:
        ours = _skill.capture_weights(values, scores, fraction).mean()
        assert ours == pytest.approx(capture_rate(values, scores, fraction), abs=1e-12)
        assert ours == pytest.approx(on_disk[f"capture_rate_{round(fraction * 100)}"], abs=1e-12)
    assert _skill.auc_terms(values, scores).mean() == pytest.approx(surface_auc(values, scores))


def test_pooling_weighs_incidents_and_the_bootstrap_is_seeded() -> None:
    valid = np.ones((10, 10), bool)
    surface = np.arange(100.0).reshape(10, 10)
    top = _skill.MonthScore.of(surface, valid, np.array([9, 9, 9]), np.array([9, 8, 7]))
    low = _skill.MonthScore.of(surface, valid, np.array([0]), np.array([0]))
    pooled = _skill.pool([top, low])
    assert pooled["capture_10"] == pytest.approx(0.75) and pooled["n"] == 4
    a = _skill.bootstrap_months({"m": [top, low, top]}, n_boot=50, seed=3)
    b = _skill.bootstrap_months({"m": [top, low, top]}, n_boot=50, seed=3)
    assert np.array_equal(a["m"]["capture_10"], b["m"]["capture_10"])


# ---------------------------------------------------------------- the monthly driver

SERIES = real_data.Series(
    name="stand-in",
    folder="standin",
    table="reports.csv",
    others=(),
    date_format="%Y-%m-%d",
    id_column="id",
    type_column="type",
    last_year=2012,
    grid_crs="EPSG:32633",
    resolution=1000.0,
)


def _stand_in(folder: Path) -> Path:
    """Reports in 2011-2012 on a 6 x 8 km area in UTM 33N, a few a month."""
    rng = np.random.default_rng(5)
    n = 240
    x = 500_000 + rng.uniform(0, 8000, n)
    y = 5_200_000 + rng.uniform(0, 6000, n)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)
    dates = pd.Timestamp("2011-01-01") + pd.to_timedelta(rng.integers(0, 731, n), unit="D")
    table = pd.DataFrame(
        {
            "id": [f"R{i}" for i in range(n)],
            "date": dates.strftime("%Y-%m-%d"),
            "type": "sighting",
            "lon": lon,
            "lat": lat,
        }
    )
    (folder / SERIES.folder).mkdir(parents=True)
    table.to_csv(folder / SERIES.folder / SERIES.table, index=False)
    return folder


def test_month_m_is_scored_with_a_run_of_m_minus_1_only(tmp_path: Path) -> None:
    data = _stand_in(tmp_path)
    reports = real_data.Reports.read(data / SERIES.folder / SERIES.table, SERIES.date_format)
    area = real_data.series_area(SERIES, data, reports)
    seen: dict[str, tuple[str, pd.Timestamp]] = {}

    def models(run_month: str, history: real_data.Reports) -> dict[str, np.ndarray]:
        seen[run_month] = (run_month, history.dates.max())
        rows, cols = area.cells(history)
        counts = np.zeros(area.grid.shape)
        np.add.at(counts, (rows, cols), 1.0)
        return {"stand-in model": counts}

    months = SERIES.months()
    scores = real_data.month_by_month(reports, area, months, models)
    assert sorted(seen) == [real_data.previous_month(m) for m in months]
    for m in months:  # the run of M-1 saw nothing dated in M or later
        assert seen[real_data.previous_month(m)][1] < pd.Timestamp(f"{m}-01")
    in_months = [len(area.cells(reports.in_month(m))[0]) for m in months]
    assert [s.n for s in scores["stand-in model"]] == in_months and sum(in_months) > 50
    # a model that is past counts scores as the past-counts baseline, month by month
    assert scores["stand-in model"] == scores[real_data.BASELINES[0]]


def test_a_job_writes_only_reports_before_the_scored_month(tmp_path: Path) -> None:
    data = _stand_in(tmp_path)
    reports = real_data.Reports.read(data / SERIES.folder / SERIES.table, SERIES.date_format)
    area = real_data.series_area(SERIES, data, reports)
    job = real_data.Job(SERIES, "auto", scored="2012-03")
    assert job.run_month == "2012-02"
    config = yaml.safe_load(
        real_data.write_job_inputs(job, data, area, tmp_path / "job").read_text()
    )
    written = pd.read_csv(tmp_path / "job" / "incidents.csv")
    dates = pd.to_datetime(written["date"])
    assert dates.max() < pd.Timestamp("2012-03-01")
    assert len(written) == int((reports.dates < pd.Timestamp("2012-03-01")).sum())
    assert config["grid"]["crs"] == "EPSG:32633" and config["model"] == "auto"
    assert config["incidents"]["path"] == "incidents.csv"


def test_the_grid_without_a_raster_covers_every_report(tmp_path: Path) -> None:
    data = _stand_in(tmp_path)
    reports = real_data.Reports.read(data / SERIES.folder / SERIES.table, SERIES.date_format)
    area = real_data.series_area(SERIES, data, reports)
    assert len(area.cells(reports)[0]) == len(reports.raw)
    assert area.grid.crs == CRS.from_epsg(32633) and area.grid.res == (1000.0, 1000.0)
    assert isinstance(area.grid, GridSpec) and isinstance(area.grid.transform, Affine)
