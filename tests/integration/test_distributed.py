"""Features and prediction on a Dask cluster (a LocalCluster of two worker processes).

The surface must equal the local run's, cell for cell: chunks are the same
computations wherever they run, and the workers write their own chunks into
the tiled GTiffs under a cluster-wide lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from hwc_risk.compute import Compute
from hwc_risk.config import load_config
from hwc_risk.pipeline import RunResult, run
from hwc_risk.synthetic import SyntheticArea
from tests.conftest import edit_config

# runs pipelines or fits models on whole areas: the slow tier (tests/conftest.py)
pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as lc:
        yield lc.scheduler_address


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dask-area")
    config = SyntheticArea(size=150, cell_size=100.0, seed=8).write(
        folder, n_incidents=300, n_months=12, model="glm"
    )
    # chunks of 64 cells: 9 chunks, distances capped at 3 km (30 cells of overlap)
    edit_config(config, compute={"chunk_size": 64}, features={"distance_cap": 3000})
    return config


@pytest.fixture(scope="module")
def local_run(area: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The area run on this machine, in chunks of 64 cells."""
    return run(load_config(area), output_dir=tmp_path_factory.mktemp("local"))


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_cluster_run_gives_the_local_surface(
    area: Path, cluster: str, local_run: RunResult, tmp_path: Path
) -> None:
    local = local_run
    remote = run(load_config(area), output_dir=tmp_path / "remote", scheduler=cluster)
    assert remote.manifest["compute"]["scheduler"] == cluster
    assert remote.manifest["compute"]["pool"] == "dask.distributed"
    assert local.manifest["compute"]["scheduler"] is None
    a, b = _read(local.run_dir / "risk.tif"), _read(remote.run_dir / "risk.tif")
    assert np.isfinite(a).sum() > 0.8 * a.size
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        _read(local.run_dir / "risk_class.tif"), _read(remote.run_dir / "risk_class.tif")
    )
    # the same results: the second run is not a different fingerprint
    assert local.manifest["fingerprint"] == remote.manifest["fingerprint"]


def test_cluster_features_equal_local_features(area: Path, cluster: str, tmp_path: Path) -> None:
    from hwc_risk.covariates import build_feature_stack
    from hwc_risk.plan import resolve_run_grid

    cfg = load_config(area)
    grid = resolve_run_grid(cfg)
    local = build_feature_stack(
        cfg.covariates, grid, cfg.features, tmp_path / "l", compute=Compute(chunk_size=64)
    )
    with distributed.Client(cluster) as client:
        remote = build_feature_stack(
            cfg.covariates,
            grid,
            cfg.features,
            tmp_path / "r",
            compute=Compute(chunk_size=64, client=client),
        )
    assert remote.names == local.names and len(local.names) > 5
    for a, b in zip(local.layers, remote.layers, strict=True):
        np.testing.assert_array_equal(_read(b.path), _read(a.path), err_msg=a.name)


def test_unreachable_scheduler_is_a_clear_input_error(area: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwc_risk.cli",
            "run",
            str(area),
            "--output-dir",
            str(tmp_path / "o"),
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert "compute.scheduler 'tcp://127.0.0.1:9'" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "o" / area.parent.name).exists() or not any(
        (tmp_path / "o").rglob("risk.tif")
    )


def test_validate_reaches_the_scheduler(area: Path, cluster: str, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "area"
    shutil.copytree(area.parent, copy)
    config = edit_config(copy / area.name, compute={"scheduler": cluster})
    out = subprocess.run(
        [sys.executable, "-m", "hwc_risk.cli", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"Dask scheduler {cluster} (2 workers answered)" in out.stdout


def test_chunk_size_changes_no_result(area: Path, local_run: RunResult, tmp_path: Path) -> None:
    """Validation metrics, classes, spread, hotspots: all ranked and merged chunk by chunk,
    all the same with one chunk for the whole grid."""
    import geopandas as gpd

    small = local_run  # 9 chunks of 64
    whole = run(load_config(area), output_dir=tmp_path / "whole", chunk_size=1024)
    assert small.manifest["compute"]["chunk_size"] == 64
    assert whole.manifest["compute"]["chunk_size"] == 1024
    assert json.dumps(small.metrics, sort_keys=True) == json.dumps(whole.metrics, sort_keys=True)
    assert "auc" in small.metrics["spatial_block_cv"]["model"]
    for name in ("risk.tif", "risk_class.tif", "risk_sd.tif"):
        np.testing.assert_array_equal(_read(small.run_dir / name), _read(whole.run_dir / name))
    a = gpd.read_file(small.run_dir / "hotspots.gpkg", layer="hotspots")
    b = gpd.read_file(whole.run_dir / "hotspots.gpkg", layer="hotspots")
    assert len(a) == len(b) > 0
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert all(x.equals(y) for x, y in zip(a.geometry, b.geometry, strict=True))
