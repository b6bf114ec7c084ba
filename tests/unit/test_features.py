from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from hwc_risk.config import CovariateConfig, FeaturesConfig
from hwc_risk.covariates import (
    build_feature_stack,
    class_fraction,
    continuous_feature,
    disk_kernel,
    distance_to_class,
)
from hwc_risk.errors import InputError
from hwc_risk.grid import GridSpec
from tests.conftest import write_raster

T = Affine(100, 0, 500_000, 0, -100, 9_000_000)


def test_distance_to_class_is_euclidean_in_metres() -> None:
    codes = np.full((21, 21), 2.0, dtype=np.float32)
    codes[10, 10] = 1
    dist = distance_to_class(codes, 1, 50.0)
    rr, cc = np.mgrid[0:21, 0:21]
    np.testing.assert_allclose(dist, np.hypot(rr - 10, cc - 10) * 50.0, rtol=1e-6)


def test_distance_to_class_keeps_nodata_and_needs_the_class() -> None:
    codes = np.array([[1, 2, np.nan]], dtype=np.float32)
    dist = distance_to_class(codes, 1, 10.0)
    assert dist[0, 1] == 10.0 and np.isnan(dist[0, 2])
    with pytest.raises(ValueError, match="does not occur"):
        distance_to_class(codes, 7, 10.0)


def test_class_fraction() -> None:
    codes = np.full((30, 30), 2.0, dtype=np.float32)
    codes[:, :15] = 1.0
    frac = class_fraction(codes, 1.0, 3)
    assert frac[15, 2] == 1.0 and frac[15, 27] == 0.0
    # on the boundary the disk is split: the centre column belongs to class 2
    k = disk_kernel(3)
    expected = k[:, :3].sum() / k.sum()
    assert frac[15, 15] == pytest.approx(expected)
    # nodata cells are left out of the denominator
    codes[:, 20:] = np.nan
    frac2 = class_fraction(codes, 2.0, 2)
    assert frac2[15, 19] == 1.0 and np.isnan(frac2[15, 25])


def test_continuous_transform() -> None:
    rng = np.random.default_rng(1)
    skewed = rng.lognormal(3, 1.5, size=(50, 50)).astype(np.float32)
    out, applied = continuous_feature(skewed, "auto")
    assert applied == "log1p"
    np.testing.assert_allclose(out, np.log1p(skewed), rtol=1e-6)
    normal = rng.normal(size=(50, 50)).astype(np.float32)
    out, applied = continuous_feature(normal, "auto")
    assert applied == "none"
    np.testing.assert_array_equal(out, normal)
    with pytest.raises(ValueError, match="non-negative"):
        continuous_feature(normal, "log1p")


def test_build_feature_stack(tmp_path: Path) -> None:
    lu = np.ones((20, 20), np.uint8)
    lu[:, 10:] = 3
    lu[0, 0] = 0  # nodata
    pop = np.full((20, 20), 10.0, np.float32)
    pop[19, 19] = -1  # nodata
    covs = {
        "lu": CovariateConfig(
            path=write_raster(tmp_path / "lu.tif", lu, nodata=0),
            type="categorical",
            classes={1: "Forest land", 3: "crops"},
        ),
        "pop": CovariateConfig(
            path=write_raster(tmp_path / "pop.tif", pop, nodata=-1), type="continuous"
        ),
    }
    grid = GridSpec(CRS.from_epsg(32736), T, 20, 20)
    stack = build_feature_stack(covs, grid, FeaturesConfig(neighbourhood=200), tmp_path / "f")
    assert stack.names == [
        "lu_is_forest_land",
        "lu_distance_forest_land",
        "lu_fraction_forest_land",
        "lu_is_crops",
        "lu_distance_crops",
        "lu_fraction_crops",
        "pop",
    ]
    assert stack.class_names["lu"] == {1: "Forest land", 3: "crops"}
    valid = stack.valid.to_array()
    assert not valid[0, 0] and not valid[19, 19] and valid.sum() == 398 == stack.valid.count
    for layer in stack.layers:
        with rasterio.open(layer.path) as ds:
            assert ds.crs.to_epsg() == 32736 and ds.descriptions == (layer.name,)
    values = stack.values_at(np.array([5, 5]), np.array([2, 15]))
    # distance to crops from column 2 is 8 cells; from column 15 it is 0
    assert values[0, 4] == pytest.approx(800.0) and values[1, 4] == 0.0
    assert values[0, 3] == 0.0 and values[1, 3] == 1.0  # is the cell cropland?
    assert values[0, 6] == 10.0


def test_categorical_with_too_many_values(tmp_path: Path) -> None:
    data = np.arange(400, dtype=np.float32).reshape(20, 20)
    path = write_raster(tmp_path / "c.tif", data)
    grid = GridSpec(CRS.from_epsg(32736), T, 20, 20)
    with pytest.raises(InputError, match="is it continuous"):
        build_feature_stack(
            {"x": CovariateConfig(path=path, type="categorical")}, grid, FeaturesConfig(), tmp_path
        )


def _chunking_inputs(tmp_path: Path) -> tuple[dict[str, CovariateConfig], GridSpec]:
    rng = np.random.default_rng(3)
    shape = (150, 170)
    blobs = rng.normal(size=shape)
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(blobs, 6)
    codes = np.digitize(smooth, np.quantile(smooth, [0.5, 0.8, 0.97])).astype(np.int16) + 1
    codes[:20, 100:140] = 0  # nodata
    codes[140, 160] = 9  # a class of one cell in a corner: far from almost everything
    pop = rng.lognormal(2, 1.5, size=shape).astype(np.float32)
    pop[60:70, :15] = -1
    covs = {
        "lu": CovariateConfig(
            path=write_raster(tmp_path / "lu.tif", codes, nodata=0), type="categorical"
        ),
        "pop": CovariateConfig(
            path=write_raster(tmp_path / "pop.tif", pop, nodata=-1), type="continuous"
        ),
    }
    return covs, GridSpec(CRS.from_epsg(32736), T, shape[1], shape[0])


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_chunked_features_equal_the_whole_array_within_the_cap(tmp_path: Path) -> None:
    """Chunks with a halo give the whole-array values: distances up to the cap, fractions."""
    from hwc_risk.compute import Compute

    covs, grid = _chunking_inputs(tmp_path)
    settings = FeaturesConfig(neighbourhood=700, distance_cap=2_500)  # 7 and 25 cells
    whole = build_feature_stack(
        covs, grid, settings, tmp_path / "whole", compute=Compute(chunk_size=4096, workers=1)
    )
    lu = rasterio.open(tmp_path / "whole" / "aligned" / "lu.tif").read(1)
    for compute in (
        Compute(chunk_size=32, workers=3),
        Compute(chunk_size=48, workers=2, pool="processes"),
    ):
        chunked = build_feature_stack(
            covs, grid, settings, tmp_path / f"c{compute.chunk_size}", compute=compute
        )
        assert chunked.names == whole.names
        np.testing.assert_array_equal(chunked.valid.to_array(), whole.valid.to_array())
        for a, b in zip(whole.layers, chunked.layers, strict=True):
            with rasterio.open(a.path) as da, rasterio.open(b.path) as db:
                np.testing.assert_array_equal(db.read(1), da.read(1), err_msg=a.name)
    # values at scattered cells, read chunk by chunk, are the bands' values there
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, 150, 500), rng.integers(0, 170, 500)
    got = whole.values_at(r, c, block=40)
    for j, layer in enumerate(whole.layers):
        with rasterio.open(layer.path) as ds:
            np.testing.assert_array_equal(got[:, j], ds.read(1)[r, c])
    # and the whole-array values are the plain functions' (distance capped)
    for v, label in ((1, "class_1"), (9, "class_9")):
        with rasterio.open(tmp_path / "whole" / f"lu_distance_{label}.tif") as ds:
            got = ds.read(1)
        plain = distance_to_class(lu, v, 100.0)
        expected = np.minimum(plain, 2_500)
        np.testing.assert_array_equal(got, expected)
    assert (got == 2_500).any() and np.nanmax(plain) > 2_500  # class 9: the cap was reached
    with rasterio.open(tmp_path / "whole" / "lu_fraction_class_2.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), class_fraction(lu, 2, 7))
    with rasterio.open(tmp_path / "whole" / "pop_log1p.tif") as ds:
        pop = rasterio.open(tmp_path / "whole" / "aligned" / "pop.tif").read(1)
        np.testing.assert_allclose(ds.read(1), continuous_feature(pop, "auto")[0])


@pytest.mark.parametrize("radius", [0.4, 1.0, 2.5, 3.0, 7.2])
def test_disk_sum_equals_convolution_with_the_disk(radius: float) -> None:
    from scipy import ndimage

    from hwc_risk.covariates import disk_sum

    rng = np.random.default_rng(int(radius * 10))
    mask = rng.random((41, 57)) < 0.3
    expected = ndimage.convolve(
        mask.astype(np.int32), disk_kernel(radius).astype(np.int32), mode="constant"
    )
    np.testing.assert_array_equal(disk_sum(mask, radius), expected)


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
@pytest.mark.parametrize("kind", ["categorical", "continuous"])
def test_feature_windows_in_chunks_equal_the_whole_grid(tmp_path: Path, kind: str) -> None:
    from hwc_risk.covariates import FeatureJob, feature_window
    from tests.conftest import assert_chunked_equals_whole

    covs, grid = _chunking_inputs(tmp_path)
    name = "lu" if kind == "categorical" else "pop"
    path = str(covs[name].path.resolve())
    if kind == "categorical":
        job = FeatureJob(path, grid.shape, True, (1, 2, 9), 100.0, radius_cells=7, cap=2_500)
    else:
        job = FeatureJob(path, grid.shape, False, transform="none")
    assert_chunked_equals_whole(feature_window, job, grid.shape, tmp_path)
