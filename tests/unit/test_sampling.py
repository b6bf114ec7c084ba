"""Background cells drawn from the mask file, strip by strip."""

from pathlib import Path

import numpy as np
import rasterio

from hwc_risk import sampling
from hwc_risk.sampling import sample_background, sample_weighted
from tests.conftest import DEFAULT_TRANSFORM, mask_file


def test_uniform_draw_is_the_draw_over_the_array(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    valid = rng.random((90, 70)) > 0.3
    mask = mask_file(valid, tmp_path)
    monkeypatch.setattr(sampling, "STRIP_CELLS", 500)  # many strips
    got = sample_background(mask, 400, np.random.default_rng(5))
    expected = np.sort(np.random.default_rng(5).choice(np.flatnonzero(valid), 400, replace=False))
    np.testing.assert_array_equal(got, expected)
    every = sample_background(mask, 10**6, np.random.default_rng(5))  # fewer cells than asked
    np.testing.assert_array_equal(every, np.flatnonzero(valid))


def test_weighted_draw_follows_the_weights(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shape = (60, 80)
    weights = np.zeros(shape, np.float32)
    weights[:, :40] = 1.0
    weights[:, 40:60] = 4.0
    weights[0, 0] = np.nan
    valid = np.ones(shape, bool)
    valid[:, :10] = False
    path = tmp_path / "w.tif"
    profile = {"driver": "GTiff", "width": 80, "height": 60, "count": 1, "dtype": "float32"}
    with rasterio.open(path, "w", crs="EPSG:32736", transform=DEFAULT_TRANSFORM, **profile) as d:
        d.write(weights, 1)
    monkeypatch.setattr(sampling, "STRIP_CELLS", 700)
    cells = sample_weighted(path, mask_file(valid, tmp_path), 600, np.random.default_rng(1))
    cols = cells % 80
    assert cells.size == np.unique(cells).size == 600
    assert (cols >= 10).all() and (cols < 60).all()  # never invalid, never weight 0
    heavy = np.mean(cols >= 40)  # mass 20 x 4 against 30 valid columns x 1: about 73 %
    assert 0.65 < heavy < 0.8
    few = sample_weighted(path, mask_file(valid, tmp_path), 10**5, np.random.default_rng(1))
    assert few.size == 60 * 50  # every cell with a positive weight, once
