"""Runs on landscapes unlike the sample end with exit 0, or exit 2 and one line: never a crash.

Issue 13: a 1500 x 1500 landscape with four covariates crashed during spatial
cross-validation, because a fold's spline GLM had a feature that was constant
in its training samples (the cell-count history of incidents that never repeat
in a cell, on a large grid) and the compiled scorer could not represent it.
This module generates study areas of several sizes and seeds with the same
class of fault (constant features in a fold, a class absent from a fold, a
covariate with two values, a categorical covariate with one class, incidents
in one corner so that folds have none, few incidents, one month, a tiny grid)
and runs the real command line on each.

The landscapes: :class:`~hwc_risk.synthetic.SyntheticArea` (land cover,
elevation, incidents drawn from a known truth) plus a population density
(a few settlements, zero elsewhere) and a connectivity surface, as in the
reported case; each case then breaks one thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from scipy import ndimage

from hwc_risk.synthetic import PASTURE, WETLAND, SyntheticArea
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Landscape:
    """One generated study area and what is wrong with it."""

    size: int
    seed: int
    variant: str = "plain"
    model: str = "glm"
    n_incidents: int = 200
    n_months: int = 16
    cell_size: float = 250.0


def _extra_covariates(area: SyntheticArea, folder: Path, variant: str) -> None:
    """Population density and connectivity rasters on the area's grid (nodata -1)."""
    rng = np.random.default_rng(area.seed + 100)
    seeds = np.zeros(area.shape, np.float32)
    n = max(3, area.size**2 // 2000)
    seeds[rng.integers(0, area.size, n), rng.integers(0, area.size, n)] = rng.lognormal(8, 1, n)
    population = ndimage.gaussian_filter(seeds, max(1.0, area.size / 60))
    population[population < 1e-3] = 0.0  # zero away from settlements
    smooth = ndimage.gaussian_filter(rng.normal(size=area.shape), max(1.0, area.size / 30))
    connectivity = np.exp(2 * (smooth - smooth.mean()) / smooth.std())
    if variant == "constant":
        connectivity = np.full(area.shape, 2.5)
    elif variant == "two_values":
        connectivity = (connectivity > np.median(connectivity)).astype(float)
    profile = {
        "driver": "GTiff",
        "width": area.size,
        "height": area.size,
        "count": 1,
        "crs": area.crs,
        "transform": area.transform,
        "dtype": "float32",
        "nodata": -1,
    }
    for name, values in (("population", population), ("connectivity", connectivity)):
        with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
            dst.write(np.where(area.valid, values, -1).astype(np.float32), 1)


def _break_land_cover(folder: Path, variant: str) -> None:
    with rasterio.open(folder / "cover.tif", "r+") as ds:
        cover = ds.read(1)
        if variant == "one_class":
            cover[cover > 0] = PASTURE
        elif variant == "rare_class":  # wetland in four cells: absent from most folds
            cover[cover == WETLAND] = PASTURE
            cover[1:3, 1:3] = WETLAND
        ds.write(cover, 1)


def _clump_incidents(folder: Path) -> None:
    """Every incident into the north-west tenth of the area: most folds hold none."""
    table = pd.read_csv(folder / "incidents.csv")
    lon, lat = table["lon"], table["lat"]
    table["lon"] = lon.min() + (lon - lon.min()) * 0.1
    table["lat"] = lat.max() - (lat.max() - lat) * 0.1
    table.to_csv(folder / "incidents.csv", index=False)


def write_landscape(case: Landscape, folder: Path) -> Path:
    """Write the case's rasters, incidents and config; return the config path."""
    area = SyntheticArea(size=case.size, cell_size=case.cell_size, seed=case.seed)
    config = area.write(
        folder,
        n_incidents=case.n_incidents,
        n_months=case.n_months,
        model=case.model,
        extra_config={"background": {"n_points": 1500}, "validation": {"folds": 3}},
    )
    _extra_covariates(area, folder, case.variant)
    _break_land_cover(folder, case.variant)
    if case.variant == "clumped":
        _clump_incidents(folder)
    data = yaml.safe_load(config.read_text())
    covariates = data["covariates"]
    data["covariates"] = {
        "cover": covariates["cover"],
        "population": {"path": "population.tif", "type": "continuous"},
        "connectivity": {"path": "connectivity.tif", "type": "continuous"},
        "elevation": covariates["elevation"],
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


CASES = {
    # the reported fault at a small scale: incidents almost never share a cell, so the
    # cell-count history is zero in every training sample of some fold
    "sparse-history-glm": Landscape(size=400, seed=11, n_incidents=120, cell_size=100.0),
    "constant-covariate-glm": Landscape(size=40, seed=1, variant="constant"),
    "two-valued-covariate-maxent": Landscape(size=40, seed=2, variant="two_values", model="maxent"),
    "one-land-cover-class-glm": Landscape(size=40, seed=3, variant="one_class"),
    "rare-class-auto": Landscape(size=48, seed=4, variant="rare_class", model="auto"),
    "clumped-incidents-glm": Landscape(size=40, seed=5, variant="clumped"),
    "twelve-incidents-glm": Landscape(size=40, seed=6, n_incidents=12),
    "one-month-glm": Landscape(size=40, seed=7, n_months=1),
    "tiny-grid-glm": Landscape(size=12, seed=8, n_incidents=60),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_run_ends_cleanly(name: str, tmp_path: Path) -> None:
    config = write_landscape(CASES[name], tmp_path / "area")
    proc = run_cli("run", config, "--quiet")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode in (0, 2), (proc.returncode, proc.stderr[-3000:])
    runs = config.parent / "out" / "synthetic"
    if proc.returncode == 2:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("hwc-risk: error:")]
        assert len(errors) == 1, proc.stderr
        assert not runs.exists() or not [p for p in runs.iterdir() if p.suffix != ".lock"]
        return
    run_dir = Path(proc.stdout.strip())
    with rasterio.open(run_dir / "risk.tif") as ds:
        risk = ds.read(1, masked=True)
    assert risk.count() > 0 and float(risk.min()) >= 0 and float(risk.max()) <= 1
    assert json.loads((run_dir / "metrics.json").read_text())


def test_too_few_incidents_is_one_clear_line(tmp_path: Path) -> None:
    config = write_landscape(Landscape(size=40, seed=9, n_incidents=8), tmp_path / "area")
    proc = run_cli("run", config, "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hwc-risk: error:")]
    assert len(errors) == 1, proc.stderr
    assert "8 usable incidents" in errors[0] and "at least 10 are needed" in errors[0]
