"""The model must recover a risk surface we planted, on a landscape unlike the sample's.

Incidents are drawn from :class:`hwc_risk.synthetic.SyntheticArea`'s truth;
the pipeline runs on them as on agency data; the map must then rank cells like
the truth and capture fresh incidents drawn from the truth.

Why these bars: the truth is a smooth function of the features the model
sees (distance to woodland, land cover, elevation), so a well-specified model
with ~600 presences should rank cells almost as the truth does. Measured on
this seed, MaxEnt reaches a Spearman correlation of about 0.96. We require
0.85 and, as a reference that the bar is not trivially met, more than a
"partial truth" that knows every driver but the elevation optimum (which
scores about 0.6 here). For held-out incidents, the map's top 10 % must
capture at least 85 % of what the truth's own top 10 % captures and far more
than a uniform map's 10 %.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage, stats

from hwc_risk.config import load_config
from hwc_risk.pipeline import run
from hwc_risk.synthetic import CROPLAND, PASTURE, WETLAND, WOODLAND, SyntheticArea
from hwc_risk.validation import capture_rate

# runs pipelines or fits models on whole areas: the slow tier (tests/conftest.py)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticArea, np.ndarray, dict]:
    folder = tmp_path_factory.mktemp("planted")
    area = SyntheticArea(size=120, seed=3)
    config = area.write(folder, n_incidents=600, n_months=24)
    result = run(load_config(config))
    with rasterio.open(result.run_dir / "risk.tif") as ds:
        risk = ds.read(1)
    return area, risk, result.metrics


def partial_truth(area: SyntheticArea) -> np.ndarray:
    """The truth without its elevation term."""
    d_wood = ndimage.distance_transform_edt(area.cover != WOODLAND) * area.cell_size
    eta = (
        1.8 * np.exp(-d_wood / 1500.0)
        + 0.9 * (area.cover == PASTURE)
        + 0.5 * (area.cover == CROPLAND)
        - 1.5 * (area.cover == WETLAND)
        - 0.6 * (area.cover == WOODLAND)
    )
    return np.exp(eta)


def test_risk_ranks_cells_like_the_truth(planted) -> None:  # type: ignore[no-untyped-def]
    area, risk, _ = planted
    ok = area.valid & np.isfinite(risk)
    assert ok.sum() == area.valid.sum()  # every valid cell predicted
    assert not np.isfinite(risk[~area.valid]).any()
    rho = stats.spearmanr(risk[ok], area.truth[ok]).statistic
    reference = stats.spearmanr(partial_truth(area)[ok], area.truth[ok]).statistic
    assert rho >= 0.85, rho
    assert rho > reference + 0.1, (rho, reference)


def test_top_decile_captures_fresh_incidents(planted) -> None:  # type: ignore[no-untyped-def]
    area, risk, _ = planted
    rows, cols = area.draw_cells(3000, np.random.default_rng(2024))
    ok = area.valid
    model_capture = capture_rate(risk[ok], risk[rows, cols], 0.10)
    truth_capture = capture_rate(area.truth[ok], area.truth[rows, cols], 0.10)
    assert model_capture > 0.10 * 2  # at least twice uniform
    assert model_capture >= 0.85 * truth_capture, (model_capture, truth_capture)


def test_validation_reports_skill_above_uniform(planted) -> None:  # type: ignore[no-untyped-def]
    _, _, metrics = planted
    spatial = metrics["spatial_block_cv"]
    assert spatial["model"]["capture_rate_10"] > spatial["uniform"]["capture_rate_10"]
    assert spatial["model"]["auc"] > 0.7
    temporal = metrics["temporal_holdout"]
    assert temporal["model"]["capture_rate_10"] > temporal["uniform"]["capture_rate_10"]
    json.dumps(metrics, default=str)  # serialisable


def test_a_shuffled_truth_is_not_recovered(tmp_path: Path) -> None:
    """Control: incidents placed at random give a map with no real skill."""
    area = SyntheticArea(size=60, seed=8)
    flat = np.where(area.valid, 1.0, 0.0)
    area.truth = flat / flat.sum()  # incidents now uniform over the valid area
    config = area.write(tmp_path, n_incidents=300, n_months=12)
    result = run(load_config(config))
    spatial = result.metrics["spatial_block_cv"]["model"]
    assert spatial["auc"] < 0.62
    assert spatial["capture_rate_10"] < 0.2
