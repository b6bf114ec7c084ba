"""Planted truth for scenarios: a model fitted on the unedited landscape, evaluated on an
edited one, must rank the change the truth makes, and flag what it never saw.

The landscape is a :class:`~hwc_risk.synthetic.SyntheticArea`; its intensity is a known
function of land cover and elevation, so the truth under an edit is that function of the
edited rasters. Edits go through the scenario modules as a run will use them: GeoPackages
drawn in another CRS, edited covariates written chunk by chunk, features rebuilt by
``build_feature_stack`` from the edited files, the fitted model's prediction, MESS.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from scipy import stats
from shapely.geometry import box

from hwc_risk.compute import Compute
from hwc_risk.config import CovariateConfig, FeaturesConfig
from hwc_risk.covariates import FeatureStack, build_feature_stack
from hwc_risk.extrapolation import MessReference, mess_block
from hwc_risk.grid import GridSpec
from hwc_risk.models import build_estimator, load_recipe
from hwc_risk.predict import predict_to_geotiff
from hwc_risk.scenarios.config import check_scenarios, parse_scenarios
from hwc_risk.scenarios.edits import prepare_scenario, write_edited_covariate
from hwc_risk.synthetic import CLASS_NAMES, PASTURE, SyntheticArea

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


class Landscape:
    """The area, its covariate configs and feature stack, and a model fitted on it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.area = SyntheticArea(size=80, cell_size=CELL, seed=11, origin=ORIGIN)
        paths = self.area.write_rasters(folder / "data")
        self.covs = {
            "cover": CovariateConfig(
                path=paths["cover"], type="categorical", classes=dict(CLASS_NAMES)
            ),
            "elevation": CovariateConfig(path=paths["elevation"], type="continuous"),
        }
        with rasterio.open(paths["cover"]) as ds:
            self.grid = GridSpec.from_dataset(ds)
        self.compute = Compute(chunk_size=64, workers=2)
        self.stack = self.features(self.covs, "baseline")
        rng = np.random.default_rng(0)
        rows, cols = self.area.draw_cells(900, rng)
        valid = np.flatnonzero(self.area.valid.ravel())
        bg = rng.choice(valid, size=3000, replace=False)
        rows = np.concatenate([rows, bg // self.area.size])
        cols = np.concatenate([cols, bg % self.area.size])
        self.X = self.stack.values_at(rows, cols)
        y = np.r_[np.ones(900), np.zeros(3000)]
        ok = np.isfinite(self.X).all(axis=1)
        self.X = self.X[ok]
        self.model = build_estimator(load_recipe("glm"), 0).fit(self.X, y[ok])
        self.risk = _read(predict_to_geotiff(self.model, self.stack, folder / "base.tif"))

    def features(self, covs: dict[str, CovariateConfig], tag: str) -> FeatureStack:
        return build_feature_stack(
            covs, self.grid, FeaturesConfig(), self.folder / tag, compute=self.compute
        )

    def scenario(self, name: str, edits: str, polygon: object) -> tuple[FeatureStack, np.ndarray]:
        """Apply a scenario (its GeoPackage drawn in WGS 84) and predict on it."""
        gpkg = self.folder / f"{name}.gpkg"
        drawn = gpd.GeoDataFrame(geometry=[polygon], crs=self.area.crs).to_crs("EPSG:4326")
        drawn.to_file(gpkg, layer="plan", driver="GPKG")
        text = {"scenarios": [{"name": name, "edits": [{**e, "path": gpkg.name} for e in edits]}]}
        parsed = parse_scenarios(text, self.folder / "S.yaml", self.folder)
        scenario = check_scenarios(parsed, self.covs, has_connectivity=False).scenarios[0]
        prepared = prepare_scenario(scenario, self.grid)
        covs = dict(self.covs)
        for key, cov_edits in prepared.covariates.items():
            aligned = self.folder / "baseline" / "aligned" / f"{key}.tif"
            out = write_edited_covariate(
                aligned, cov_edits, self.covs[key].type == "categorical", self.grid,
                self.folder / f"{name}-{key}.tif", self.compute,
            )  # fmt: skip
            # the baseline's transform, pinned: features mean the same in both stacks
            applied = next(lay.transform for lay in self.stack.layers if lay.covariate == key)
            pinned = "none" if self.covs[key].type == "categorical" else applied
            covs[key] = self.covs[key].model_copy(update={"path": out, "transform": pinned})
        stack = self.features(covs, name)
        assert stack.names == self.stack.names
        risk = _read(predict_to_geotiff(self.model, stack, self.folder / f"{name}-risk.tif"))
        return stack, risk


@pytest.fixture(scope="module")
def land(tmp_path_factory: pytest.TempPathFactory) -> Landscape:
    return Landscape(tmp_path_factory.mktemp("scenario-truth"))


def test_the_delta_ranks_the_truths_delta(land: Landscape) -> None:
    # a woodland block cleared for pasture (rows 24-36, cols 20-46 hold a whole patch)
    block = _box(23, 38, 19, 48)
    _, risk = land.scenario(
        "clearing", [{"kind": "set_class", "covariate": "cover", "class": "pasture"}], block
    )
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
    stack, _ = land.scenario(
        "raised", [{"kind": "adjust", "covariate": "elevation", "add": 1500}], _box(48, 57, 0, 30)
    )
    keep = [lay.name for lay in stack.layers if lay.kind != "is"]  # 0/1 indicators: no range
    ref = MessReference.from_samples(land.X, land.stack.names).subset(keep)
    block = np.stack([_read(lay.path) for lay in stack.layers if lay.name in keep])
    value, variable = mess_block(ref, block)
    edited = np.zeros(land.area.shape, dtype=bool)
    edited[48:57, 0:30] = True
    edited &= land.area.valid
    assert (value[edited] < 0).all()
    elevation = 1 + keep.index(next(n for n in keep if n.startswith("elevation")))
    assert (variable[edited] == elevation).all()
    # elsewhere the landscape is the training landscape: hardly anything is flagged
    rest = land.area.valid & ~edited
    assert (value[rest] < 0).mean() < 0.02
