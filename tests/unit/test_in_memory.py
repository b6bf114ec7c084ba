"""Validation on numpy arrays, without files: the same numbers as a run's files give."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from hwc_risk.bands import FileStore, MemoryStore
from hwc_risk.compute import Compute
from hwc_risk.config import BackgroundConfig
from hwc_risk.covariates import FeatureLayer, FeatureStack
from hwc_risk.grid import GridSpec
from hwc_risk.history import HistorySettings, choose_history
from hwc_risk.mask import ValidMask
from hwc_risk.modelling import Design, rolling_origin, spatial_cv
from hwc_risk.models import load_recipe
from hwc_risk.months import Month
from hwc_risk.sampling import draw_samples

GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_000_000), 60, 50)


def _landscape() -> tuple[dict[str, np.ndarray], np.ndarray, pd.DataFrame]:
    """Two features, a valid mask with a hole, and 12 months of incidents that follow
    the first feature."""
    rng = np.random.default_rng(3)
    rr, cc = np.mgrid[0:50, 0:60]
    features = {
        "wetness": np.exp(-((rr - 20) ** 2 + (cc - 35) ** 2) / 200.0).astype(np.float32),
        "noise": rng.normal(size=(50, 60)).astype(np.float32),
    }
    valid = np.ones((50, 60), bool)
    valid[:8, :10] = False
    p = features["wetness"] * valid
    cells = rng.choice(p.size, size=360, p=(p / p.sum()).ravel())
    months = rng.integers(0, 12, 360)
    incidents = pd.DataFrame(
        {
            "row": cells // 60,
            "col": cells % 60,
            "date": pd.to_datetime([f"2025-{m + 1:02d}-15" for m in months]),
        }
    )
    return features, valid, incidents


def _file_stack(features: dict[str, np.ndarray], valid: np.ndarray, folder: Path) -> FeatureStack:
    layers = []
    for name, values in features.items():
        path = folder / f"{name}.tif"
        with rasterio.open(path, "w", **GRID.profile(dtype="float32", nodata=np.nan)) as dst:
            dst.write(values, 1)
        layers.append(FeatureLayer(name=name, path=path, covariate=name, kind="value", units="1"))
    mask = ValidMask.from_array(valid, GRID, folder / "valid.tif")
    return FeatureStack(grid=GRID, layers=layers, valid=mask)


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_validation_on_arrays_equals_validation_on_files(tmp_path: Path) -> None:
    features, valid, incidents = _landscape()
    memory = FeatureStack.from_arrays(GRID, features, valid)
    files = _file_stack(features, valid, tmp_path)
    compute = Compute(chunk_size=16, workers=2)
    background = BackgroundConfig(n_points=1500)
    results = []
    for stack, store in ((memory, MemoryStore()), (files, FileStore(tmp_path / "work", 16))):
        samples = draw_samples(stack, incidents, background, seed=5)
        history, _ = choose_history(
            samples.rows[samples.y == 1],
            samples.cols[samples.y == 1],
            samples.months[samples.y == 1],
            [Month.parse("2025-07"), Month.parse("2025-08")],
            stack.valid,
            GRID.cell_size,
        )
        design = Design.of(samples, stack, seed=5, store=store, compute=compute)
        design = design.with_history(history)
        origins = [Month.parse(m) for m in ("2025-10", "2025-11", "2025-12")]
        rolling = rolling_origin(design, load_recipe("glm"), origins, (0.1, 0.2))
        spatial, spread = spatial_cv(design, load_recipe("glm"), 3, 1500.0, (0.1,), Month(24312))
        results.append((samples, history, rolling, spatial, spread))
    (s_mem, h_mem, r_mem, sp_mem, _), (s_file, h_file, r_file, sp_file, spread) = results
    np.testing.assert_array_equal(s_mem.X, s_file.X)
    assert h_mem == h_file and isinstance(h_mem, HistorySettings)
    # as JSON text: a NaN (a Boyce index of a month) equals itself there
    assert json.dumps(r_mem.to_json()) == json.dumps(r_file.to_json())
    assert json.dumps(sp_mem.to_json()) == json.dumps(sp_file.to_json())
    # and the model sees the planted pattern: well above the uniform baseline
    mean = r_mem.mean
    assert mean.model.capture(0.1) > 2 * mean.baselines["uniform"].capture(0.1)
    assert spread is not None and Path(spread.path).exists()


def test_file_store_and_memory_store_make_bands_alike(tmp_path: Path) -> None:
    file_band = FileStore(tmp_path, 16).band("x", GRID.shape, GRID)
    memory_band = MemoryStore().band("x", GRID.shape)
    assert file_band.shape == memory_band.shape == GRID.shape
    with pytest.raises(ValueError, match="needs its grid"):
        FileStore(tmp_path).band("y", GRID.shape)
