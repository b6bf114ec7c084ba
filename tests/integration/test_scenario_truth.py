"""Planted truth for scenarios, through the run: the month's model, evaluated on an edited
landscape, must rank the change the truth makes, and flag what it never saw.

The landscape is a :class:`~hwc_risk.synthetic.SyntheticArea`; its intensity is a known
function of land cover and elevation, so the truth under an edit is that function of the
edited rasters. The real CLI runs the area's config with two scenarios (GeoPackages drawn
in another CRS than the grid's); the scenarios' folders are read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from scipy import stats
from shapely.geometry import box

from hwc_risk.scenarios.summary import OUTSIDE_RANGE
from hwc_risk.synthetic import PASTURE, SyntheticArea
from tests.conftest import edit_config, run_cli

pytestmark = pytest.mark.slow

CELL = 250.0
ORIGIN = (500_000.0, 5_200_000.0)


def _box(row0: int, row1: int, col0: int, col1: int) -> object:
    """Cells ``[row0, row1) x [col0, col1)`` of the area as a polygon in its CRS."""
    x0, y0 = ORIGIN
    return box(x0 + col0 * CELL, y0 - row1 * CELL, x0 + col1 * CELL, y0 - row0 * CELL)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _plan(path: Path, polygon: object) -> Path:
    """A plan drawn in WGS 84 (another CRS than the grid's), saved as a GeoPackage."""
    drawn = gpd.GeoDataFrame(geometry=[polygon], crs="EPSG:32633").to_crs("EPSG:4326")
    drawn.to_file(path, layer="plan", driver="GPKG")
    return path


class Landscape:
    """The area run by the real CLI with two scenarios: a woodland block cleared for
    pasture, and hills raised by 1.5 km."""

    def __init__(self, folder: Path) -> None:
        self.area = SyntheticArea(size=80, cell_size=CELL, seed=11, origin=ORIGIN)
        config = self.area.write(
            folder,
            n_incidents=900,
            n_months=12,
            model="glm",
            extra_config={
                "background": {"n_points": 3000},
                "validation": {"folds": 3},
                "features": {"history": False},
            },
        )
        _plan(folder / "clearing.gpkg", _box(23, 38, 19, 48))
        _plan(folder / "raised.gpkg", _box(48, 57, 0, 30))
        clearing = {"kind": "set_class", "covariate": "cover", "path": "clearing.gpkg"}
        raised = {"kind": "adjust", "covariate": "elevation", "path": "raised.gpkg", "add": 1500}
        edit_config(
            config,
            scenarios=[
                {"name": "clearing", "edits": [{**clearing, "class": "pasture"}]},
                {"name": "raised", "edits": [raised]},
            ],
        )
        proc = run_cli("run", config, "-q")
        assert proc.returncode == 0, proc.stderr
        self.run_dir = Path(proc.stdout.strip())
        self.risk = _read(self.run_dir / "risk.tif")

    def scenario(self, name: str, file: str = "risk.tif") -> np.ndarray:
        return _read(self.run_dir / "scenarios" / name / file)


@pytest.fixture(scope="module")
def land(tmp_path_factory: pytest.TempPathFactory) -> Landscape:
    return Landscape(tmp_path_factory.mktemp("scenario-truth"))


def test_the_delta_ranks_the_truths_delta(land: Landscape) -> None:
    # a woodland block cleared for pasture (rows 24-36, cols 20-46 hold a whole patch)
    risk = land.scenario("clearing")
    np.testing.assert_array_equal(land.scenario("clearing", "risk_delta.tif"), risk - land.risk)
    cover = land.area.cover.copy()
    cover[23:38, 19:48] = np.where(cover[23:38, 19:48] > 0, PASTURE, 0)
    truth_delta = land.area.intensity(cover, land.area.elevation) - land.area.intensity(
        land.area.cover, land.area.elevation
    )
    # the changed area: cells whose truth moved by at least 1 % of the largest move (the
    # forest edge's pull, exp(-d / 1500 m), reaches every cell by a hair)
    changed = land.area.valid & (np.abs(truth_delta) > 0.01 * np.abs(truth_delta).max())
    assert changed.sum() > 500  # the clearing moves the forest edge for kilometres
    delta = risk - land.risk
    rho = stats.spearmanr(delta[changed], truth_delta[changed]).statistic
    assert rho > 0.8, rho  # 0.93 when written
    # and the rise inside the clearing and the fall around it both come out
    inside = np.zeros_like(changed)
    inside[23:38, 19:48] = True
    assert np.sign(np.median(delta[changed & inside & (truth_delta > 0)])) == 1
    assert np.sign(np.median(delta[changed & ~inside & (truth_delta < 0)])) == -1


def test_extrapolation_flags_cells_outside_the_training_range(land: Landscape) -> None:
    # the hills raised by 1.5 km in the south-west: far above any elevation the model saw
    value = land.scenario("raised", "extrapolation.tif")
    variable = land.scenario("raised", "extrapolation_variable.tif")
    with rasterio.open(land.run_dir / "scenarios" / "raised" / "extrapolation_variable.tif") as ds:
        names = {int(k.split("_")[1]): v for k, v in ds.tags().items() if k.startswith("variable_")}
    edited = np.zeros(land.area.shape, dtype=bool)
    edited[48:57, 0:30] = True
    edited &= land.area.valid
    assert (value[edited] < 0).all()
    assert {names[int(v)] for v in np.unique(variable[edited])} == {"elevation"}
    # elsewhere the landscape is the training landscape: hardly anything is flagged
    rest = land.area.valid & ~edited
    assert (value[rest] < 0).mean() < 0.02
    summary = json.loads((land.run_dir / "scenarios" / "raised" / "summary.json").read_text())
    assert summary["extrapolation_features"] == ["elevation"]  # what the plan changed
    assert summary[OUTSIDE_RANGE] > 50  # most of the changed area is a guess, and says so
