"""Shared fixtures: tiny rasters and study areas made here, never collected.

Test tiers
----------
Every test belongs to one of three tiers, set by the markers registered in
``pyproject.toml`` (``--strict-markers``: a misspelt marker is an error):

fast (no marker)
    Unit tests, docstring examples and integration tests that take a few seconds
    at most on the 2-core machine: the edit loop, ``make test-fast``
    (``pytest -m "not slow and not browser"``).
``@pytest.mark.slow``
    Fits models on more than a toy area, runs a pipeline (every test that takes
    :func:`sample_run`), builds packages, or takes more than about 3 s
    (``pytest --durations=20`` shows the slowest). A module whose tests are all
    slow says ``pytestmark = pytest.mark.slow``.
``@pytest.mark.browser``
    Everything in ``tests/browser/`` (headless Chromium).

``make test`` runs all three. Collection stops with an error if a test in
``tests/browser/`` lacks ``browser``, or a test that takes the sample run lacks
``slow``.

The sample pipeline runs once per pytest invocation (:func:`sample_run`); a test
that only reads its outputs takes that fixture and must not change the folder
(checked when the session ends). A test that needs a run of its own (another
month, other options) makes it, into :func:`sample_output` (a private copy of
the sample's output folder) when it needs the sample month in place, or on
:func:`small_area` where the sample district is not the point.

Run the command line in-process with :func:`cli` (exit code, stdout, stderr,
without the seconds of imports each new process pays); keep :func:`run_cli`
(the installed console script in a subprocess) for the tests that prove the
installed command, exit codes and signals.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine
from rasterio.crs import CRS

from hwc_risk import progress
from hwc_risk.export.report import sha256
from hwc_risk.grid import GridSpec
from hwc_risk.mask import ValidMask
from hwc_risk.synthetic import SyntheticArea

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "pipelines" / "sample.yaml"
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


@dataclass(frozen=True)
class CliResult:
    """What a user sees of one command: exit code, stdout and stderr."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def returncode(self) -> int:
        """The exit code, named as :func:`run_cli`'s result names it."""
        return self.exit_code


def cli(*args: str | Path) -> CliResult:
    """Run the ``hwc-risk`` command in this process (its typer ``app`` with ``args``).

    The same code and argument parsing as the console script, without a new
    interpreter. The logging and progress settings a command makes are put back
    afterwards, so that they do not leak into later tests.
    """
    from typer.testing import CliRunner

    from hwc_risk.cli import app

    logger = logging.getLogger("hwc_risk")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
        progress.enable(False)
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


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


def folder_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The run folder of ``hwc-risk run pipelines/sample.yaml``, made once per session.

    Read-only: shared by every test that reads the sample's outputs (all of them
    ``slow``). Its files are checked unchanged when the session ends; take
    :func:`sample_output` to write beside it.
    """
    out = tmp_path_factory.mktemp("sample-out")
    proc = run_cli("run", SAMPLE, "--output-dir", out)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir == out / "sample-district" / "2026-10"
    before = folder_hashes(out)
    yield run_dir
    assert folder_hashes(out) == before, "a test changed the shared sample run; use sample_output"


@pytest.fixture
def sample_output(sample_run: Path, tmp_path: Path) -> Path:
    """A private copy of the sample run's output folder (``<out>/sample-district/2026-10``).

    Returns the folder to pass as ``--output-dir``: a run of another month there
    finds 2026-10 beside it, a rerun of 2026-10 finds it done.
    """
    out = tmp_path / "out"
    shutil.copytree(sample_run.parents[1], out)
    return out


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything in ``tests/browser/`` browser; refuse a sample-run test not marked slow."""
    browser_dir = REPO / "tests" / "browser"
    wrong = []
    for item in items:
        if browser_dir in item.path.parents:
            item.add_marker(pytest.mark.browser)
        uses = set(getattr(item, "fixturenames", ())) & {"sample_run", "sample_output"}
        if uses and item.get_closest_marker("slow") is None:
            wrong.append(f"{item.nodeid}: takes {min(uses)} but is not marked slow")
    if wrong:
        raise pytest.UsageError("test tiers (tests/conftest.py):\n" + "\n".join(wrong))
