from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from sklearn.linear_model import LogisticRegression

from hwc_risk.classes import RISK_CLASSES
from hwc_risk.compute import Compute
from hwc_risk.config import CovariateConfig, FeaturesConfig
from hwc_risk.covariates import build_feature_stack
from hwc_risk.grid import GridSpec
from hwc_risk.models import risk_scores
from hwc_risk.predict import predict_block, predict_to_geotiff
from hwc_risk.surfaces import classify
from tests.conftest import write_raster

T = Affine(100, 0, 500_000, 0, -100, 9_000_000)


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    a = rng.normal(size=(37, 53)).astype(np.float32)
    b = rng.normal(size=(37, 53)).astype(np.float32)
    a[3:6, 3:6] = -9999
    covs = {
        "a": CovariateConfig(
            path=write_raster(tmp_path / "a.tif", a, nodata=-9999), type="continuous"
        ),
        "b": CovariateConfig(path=write_raster(tmp_path / "b.tif", b), type="continuous"),
    }
    grid = GridSpec(CRS.from_epsg(32736), T, 53, 37)
    return build_feature_stack(covs, grid, FeaturesConfig(), tmp_path / "f")


def fitted() -> LogisticRegression:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    return LogisticRegression().fit(X, y)


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_windowed_prediction_equals_whole_array(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = fitted()
    whole = np.full(stack.grid.shape, np.nan, np.float32)
    rows, cols = np.nonzero(stack.valid.to_array())
    whole[rows, cols] = risk_scores(model, stack.values_at(rows, cols))
    runs = [("threads", size, workers) for size in (7, 16, 512) for workers in (1, 3)]
    runs += [("threads", 10, 2), ("processes", 16, 2)]
    # windows that do and do not divide the grid; one thread, a pool of threads with
    # a handle each, or processes
    for pool, size, workers in runs:
        compute = Compute(chunk_size=size, workers=workers, pool=pool)
        out = predict_to_geotiff(model, stack, tmp_path / f"r{pool}{size}{workers}.tif", compute)
        with rasterio.open(out) as ds:
            np.testing.assert_array_equal(ds.read(1), whole)
            assert ds.profile["tiled"] and ds.nodata is not None
    assert np.isnan(whole[3:6, 3:6]).all() and np.isfinite(whole[10:, 10:]).all()


def test_predict_block_skips_invalid_cells() -> None:
    model = fitted()
    block = np.zeros((2, 2, 3), np.float32)
    block[1, 0, 0] = np.nan
    out = predict_block(model, block)
    assert np.isnan(out[0, 0]) and np.isfinite(out[1:, :]).all()


def test_classes_follow_area_shares() -> None:
    rng = np.random.default_rng(0)
    surface = rng.uniform(size=(100, 100)).astype(np.float32)
    valid = np.ones_like(surface, bool)
    valid[:, :20] = False
    classes, thresholds = classify(surface, valid)
    assert (classes[~valid] == 0).all()
    n = valid.sum()
    for cls in RISK_CLASSES:
        assert (classes == cls.code).sum() == round(cls.area_share * n)
    very_high = surface[classes == 4]
    assert very_high.min() >= surface[(classes == 3)].max()
    assert thresholds["very high"] == pytest.approx(very_high.min())
    # a flat surface still gets exact shares
    flat, _ = classify(np.ones((10, 10), np.float32), np.ones((10, 10), bool))
    assert (flat == 4).sum() == 5


def test_prediction_windows_and_stacks_in_memory(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hwc_risk.bands import MemoryStore, read_band
    from hwc_risk.covariates import FeatureStack
    from hwc_risk.predict import PredictJob, predict_to_band, predict_window
    from tests.conftest import assert_chunked_equals_whole

    model = fitted()
    assert_chunked_equals_whole(
        predict_window, PredictJob.of(model, stack), stack.grid.shape, tmp_path
    )
    # the same features held as arrays predict the same surface
    arrays = {layer.name: read_band(layer.band) for layer in stack.layers}
    memory = FeatureStack.from_arrays(stack.grid, arrays, stack.valid.to_array())
    assert memory.valid.count == stack.valid.count
    on_disk = predict_to_geotiff(model, stack, tmp_path / "disk.tif", Compute(chunk_size=16))
    out = MemoryStore().band("risk", stack.grid.shape)
    predict_to_band(model, memory, out, Compute(chunk_size=16))
    np.testing.assert_array_equal(read_band(out), read_band(on_disk))


def test_predict_block_scores_in_slices_as_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # a chunk is scored SCORE_CELLS cells at a time (the model's working memory bounded):
    # the surface is the one scoring every cell at once gives, NaN cells included
    import hwc_risk.predict

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    model = LogisticRegression().fit(X, (X[:, 0] + rng.normal(size=400) > 0).astype(int))
    block = rng.normal(size=(3, 30, 40)).astype(np.float32)
    block[1, 5:9, 7:20] = np.nan
    whole = predict_block(model, block)
    monkeypatch.setattr(hwc_risk.predict, "SCORE_CELLS", 37)
    sliced = predict_block(model, block)
    np.testing.assert_array_equal(sliced, whole)
    assert np.isnan(whole[5:9, 7:20]).all() and np.isfinite(whole).sum() == 1200 - 52
