"""MESS against hand-computed values, and the chunked driver against the whole array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from hwc_risk.compute import Compute
from hwc_risk.extrapolation import MessReference, mess_block, write_extrapolation
from hwc_risk.grid import GridSpec
from tests.conftest import write_raster

# reference: feature a takes 1, 2, 3, 4 in training; feature b takes 10, 20
REF = MessReference.from_samples(
    np.array([[1, 10], [2, 20], [3, 10], [4, 20]], dtype=float), ["a", "b"]
)


@pytest.mark.parametrize(
    ("a", "expected"),
    [
        (2.5, 100.0),  # 2 of 4 values <= 2.5: f = 50, S = 2f
        (1.0, 50.0),  # f = 25
        (3.5, 50.0),  # f = 75: 2 (100 - f)
        (4.0, 0.0),  # at the maximum: f = 100, (max - p) / range = 0
        (0.0, -100 / 3),  # below: (p - min) / range = -1/3
        (5.5, -150 / 3),  # above: (max - p) / range = -1.5/3
    ],
)
def test_similarity_by_hand(a: float, expected: float) -> None:
    assert REF.similarity(0, np.array([a]))[0] == pytest.approx(expected)


def test_mess_is_the_smallest_and_names_the_feature() -> None:
    a = np.array([2.5, 0.0, 2.5, 5.0, 1.0, np.nan])
    b = np.array([15.0, 15.0, 25.0, 25.0, 10.0, 15.0])
    value, variable = mess_block(REF, np.stack([a, b]))
    # b: 15 -> f = 50 -> 100; 25 -> (20 - 25) / 10 = -50; 10 -> f = 50 -> 100
    expected = [100.0, -100 / 3, -50.0, -50.0, 50.0]
    assert np.allclose(value[:5], expected)
    assert variable.tolist() == [1, 1, 2, 2, 1, 0]  # ties go to the first; NaN -> 0
    assert np.isnan(value[5])
    assert value.dtype == np.float32 and variable.dtype == np.uint8


def test_constant_feature_and_bad_input() -> None:
    ref = MessReference.from_samples(np.array([[5.0], [5.0], [np.nan]]), ["c"])
    assert ref.similarity(0, np.array([5.0, 6.0])).tolist() == [0.0, -100.0]
    with pytest.raises(ValueError, match="no finite training value"):
        MessReference.from_samples(np.array([[np.nan]]), ["d"])
    with pytest.raises(ValueError, match="expected"):
        MessReference.from_samples(np.ones((3, 2)), ["one"])
    assert REF.subset(["b"]).names == ("b",)


def test_chunked_driver_equals_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    grid = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_000_000), 150, 130)
    a = rng.normal(0, 1.3, grid.shape).astype(np.float32)
    b = rng.uniform(-1, 2, grid.shape).astype(np.float32)
    b[:5, :5] = np.nan
    ref = MessReference.from_samples(
        np.column_stack([rng.normal(0, 1, 500), rng.uniform(0, 1, 500)]), ["a", "b"]
    )
    paths = {
        "a": write_raster(tmp_path / "a.tif", a, transform=grid.transform, nodata=np.nan),
        "b": write_raster(tmp_path / "b.tif", b, transform=grid.transform, nodata=np.nan),
    }
    out, var = write_extrapolation(
        ref, paths, grid, tmp_path / "x.tif", tmp_path / "v.tif", Compute(chunk_size=64)
    )
    whole_value, whole_var = mess_block(ref, np.stack([a, b]))
    with rasterio.open(out) as ds, rasterio.open(var) as dv:
        assert np.array_equal(ds.read(1), whole_value, equal_nan=True)
        assert np.array_equal(dv.read(1), whole_var)
        assert dv.tags()["variable_2"] == "b" and dv.nodata == 0
    # b outside [0, 1] is outside the training range, and the map says so
    outside = (b < ref.sorted_values[1][0]) | (b > ref.sorted_values[1][-1])
    assert (whole_value[outside] < 0).all()
    with pytest.raises(ValueError, match="no feature file for b"):
        write_extrapolation(ref, {"a": paths["a"]}, grid, tmp_path / "y.tif", tmp_path / "w.tif")
