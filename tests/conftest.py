"""Shared fixtures: tiny rasters and study areas made here, never collected."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS

from hwc_risk.grid import GridSpec
from hwc_risk.mask import ValidMask
from hwc_risk.synthetic import SyntheticArea

REPO = Path(__file__).resolve().parents[1]
HWC_RISK = Path(sys.executable).with_name("hwc-risk")
DEFAULT_TRANSFORM = Affine(100, 0, 500_000, 0, -100, 9_000_000)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32736",
    transform: Affine = DEFAULT_TRANSFORM,
    nodata: float | None = None,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a GeoTIFF."""
    arr = data if data.ndim == 3 else data[np.newaxis]
    profile = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "transform": transform,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


def mask_file(valid: np.ndarray, folder: Path, cell: float = 100.0) -> ValidMask:
    """A valid-cell mask file (as a run keeps it) on a grid of ``valid``'s shape."""
    h, w = valid.shape
    grid = GridSpec(CRS.from_epsg(32736), Affine(cell, 0, 500_000, 0, -cell, 9_000_000), w, h)
    return ValidMask.from_array(valid, grid, folder / f"valid-{h}x{w}.tif")


def assert_chunked_equals_whole(
    task: Any,
    job: Any,
    shape: tuple[int, int],
    folder: Path,
    chunks: tuple[int, ...] = (16, 37),
) -> None:
    """A window task run chunk by chunk, into files and into arrays, gives exactly the
    layers of one window over the whole grid: the check every chunked layer kind
    (features, history, baselines, classes, spread, prediction) goes through.

    ``job`` is the task's job, or a function of the chunk size giving it (a job that
    depends on the chunking, as the risk classes' tie offsets do).
    """
    from rasterio.windows import Window

    from hwc_risk.bands import FileStore, MemoryStore, read_band
    from hwc_risk.compute import Compute, run_windows

    job_for = job if callable(job) else (lambda chunk: job)
    whole = task(job_for(max(shape)), Window(0, 0, shape[1], shape[0]))
    grid = GridSpec(CRS.from_epsg(32736), DEFAULT_TRANSFORM, shape[1], shape[0])
    for k, chunk in enumerate(chunks):
        stores = (FileStore(folder / f"chunked-{k}", block=16), MemoryStore())
        for store in stores:
            bands = [
                store.band(f"layer{j}", shape, grid, dtype=str(layer.dtype), nodata=_fill(layer))
                for j, layer in enumerate(whole)
            ]
            compute = Compute(chunk_size=chunk, workers=2)
            run_windows(task, job_for(chunk), bands, compute, shape, "test")
            for band, expected in zip(bands, whole, strict=True):
                np.testing.assert_array_equal(read_band(band), expected)


def _fill(layer: np.ndarray) -> float:
    return float("nan") if np.issubdtype(layer.dtype, np.floating) else 0


def class_file(classes: np.ndarray, grid: GridSpec, folder: Path) -> Path:
    """A risk-class raster (uint8, 0 = no data) on ``grid``, as a run writes it."""
    path = folder / "risk_class.tif"
    with rasterio.open(path, "w", **grid.profile(dtype="uint8", nodata=0)) as dst:
        dst.write(classes.astype(np.uint8), 1)
    return path


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hwc-risk`` console script."""
    return subprocess.run(
        [str(HWC_RISK), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900
    )


def edit_config(path: Path, **changes: object) -> Path:
    """Update top-level keys of a YAML config (nested dicts are merged one level)."""
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def small_area_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic study area with 160 incidents over 16 months (read-only)."""
    folder = tmp_path_factory.mktemp("small-area")
    SyntheticArea(size=48, cell_size=250.0, seed=5).write(
        folder,
        n_incidents=160,
        n_months=16,
        extra_config={"background": {"n_points": 1500}, "validation": {"folds": 3}},
    )
    return folder


@pytest.fixture
def small_area(small_area_template: Path, tmp_path: Path) -> Path:
    """A private copy of the small study area; returns its config path."""
    dest = tmp_path / "area"
    shutil.copytree(small_area_template, dest)
    return dest / "config.yaml"


SAMPLE_CONFIG = REPO / "pipelines" / "sample.yaml"


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample district (with its two scenarios) run once by the real CLI, for
    every test that reads its run folder. Read-only: copy it to change it."""
    out = tmp_path_factory.mktemp("sample-out")
    proc = run_cli("run", SAMPLE_CONFIG, "--output-dir", out)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir == out / "sample-district" / "2026-10"
    return run_dir
