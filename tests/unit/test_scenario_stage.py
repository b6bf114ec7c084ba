"""The scenario stage on a small synthetic area: the run's stages in-process, then
scenarios evaluated with the fitted model (nothing refitted).

A plan that changes no cell changes nothing (every rebuilt layer equal to the
baseline's, a risk delta of exactly 0); chunks give the whole area's files; a
scenario keeps the baseline's features even when it removes a class; errors name
the scenario.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import LineString, box

from hwc_risk.bands import FileBand, FileStore, file_of
from hwc_risk.compute import Compute
from hwc_risk.config import load_config
from hwc_risk.covariates import build_feature_stack
from hwc_risk.errors import InputError
from hwc_risk.history import HistorySettings
from hwc_risk.incidents import incidents_for_month
from hwc_risk.map_choice import MapChoice, chosen_surface, model_share
from hwc_risk.modelling import Design, fit_final
from hwc_risk.models import load_recipe
from hwc_risk.plan import plan_run
from hwc_risk.predict import RiskMap, map_risk
from hwc_risk.sampling import draw_samples
from hwc_risk.scenarios.config import check_scenarios, parse_scenarios
from hwc_risk.scenarios.edits import prepare_scenario
from hwc_risk.scenarios.stack import scenario_stack
from hwc_risk.scenarios.stage import ScenarioBasis, baseline_of, evaluate_scenarios
from hwc_risk.synthetic import SyntheticArea
from tests.conftest import edit_config

pytestmark = pytest.mark.slow

AREA = SyntheticArea(size=48, cell_size=250.0, seed=5)
X0, Y0 = AREA.origin
CELL = AREA.cell_size
CONNECTIVITY = {"from_covariate": "cover", "resistance": {1: 1, 2: 5, 3: 10, 4: 50}, "sources": [1]}


def _cells(row0: int, row1: int, col0: int, col1: int) -> object:
    """Cells ``[row0, row1) x [col0, col1)`` as a polygon in the area's CRS."""
    return box(X0 + col0 * CELL, Y0 - row1 * CELL, X0 + col1 * CELL, Y0 - row0 * CELL)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


class Run:
    """The small area's run stages in-process, up to the scenario stage's basis."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        config = AREA.write(folder / "area", n_incidents=300, n_months=8, model="glm")
        edit_config(config, connectivity=CONNECTIVITY, features={"history": False})
        self.config = load_config(config)
        self.plan = plan_run(self.config)
        self.compute = Compute(chunk_size=16, workers=2)
        cfg, grid, work = self.config, self.plan.grid, folder / "work"
        self.stack = build_feature_stack(
            cfg.covariates, grid, cfg.features, work / "features", cfg.connectivity, self.compute
        )
        incidents = incidents_for_month(
            self.plan.incidents, grid, self.stack.valid, self.plan.month, 10, cfg.incidents
        )
        samples = draw_samples(self.stack, incidents.used, cfg.background, seed=cfg.seed)
        design = Design.of(samples, self.stack, cfg.seed, FileStore(work), self.compute)
        self.design = design
        self.fitted = fit_final(design, load_recipe("glm"), self.plan.month)
        risk = map_risk(self.fitted.model, self.fitted.stack, work, self.compute)
        self.risk = risk
        self.basis: ScenarioBasis = baseline_of(
            self.plan, self.stack, incidents.used, self.fitted, risk, work / "s", self.compute,
            "S.yaml",
        )  # fmt: skip

    def scenarios(self, name: str, edits: list[dict[str, object]], shape: object) -> list:
        """Scenarios of one edit list, its GeoPackage drawn in WGS 84."""
        gpkg = self.folder / f"{name}.gpkg"
        frame = gpd.GeoDataFrame({"name": [f"{name} plan"]}, geometry=[shape], crs=AREA.crs)
        frame.to_crs("EPSG:4326").to_file(gpkg, layer="plan", driver="GPKG")
        edits = [{**e, "path": gpkg.name} for e in edits]
        parsed = parse_scenarios(
            {"scenarios": [{"name": name, "description": name, "edits": edits}]},
            self.folder / "S.yaml",
            self.folder,
        )
        covariates, has_connectivity = self.config.covariates, self.config.connectivity is not None
        return check_scenarios(parsed, covariates, has_connectivity).scenarios

    def evaluate(self, scenarios: list, tag: str, compute: Compute | None = None) -> Path:
        out = self.folder / tag
        shutil.rmtree(out, ignore_errors=True)
        compute = compute or self.compute
        evaluate_scenarios(scenarios, self.basis, out / "scenarios", out / "work", compute)
        return out / "scenarios"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(tmp_path_factory.mktemp("scenario-stage"))


def test_a_plan_that_changes_no_cell_changes_nothing(run: Run) -> None:
    # woodland "planted" on the nodata strip along the southern edge: no cell with data
    strip = _cells(46, 48, 0, 48)
    plant = [{"kind": "set_class", "covariate": "cover", "class": "woodland"}]
    scenarios = run.scenarios("nothing", plant, strip)
    out = run.evaluate(scenarios, "noop") / "nothing"
    work = run.folder / "noop" / "work" / "nothing" / "features"
    rebuilt = sorted(p.name for p in work.glob("*.tif"))
    assert any(n.startswith("connectivity_") for n in rebuilt)  # cover feeds connectivity
    baseline = {layer.name: layer.file for layer in run.stack.layers}
    for name in rebuilt:  # the same values (the tiles' order in the file follows the pool)
        np.testing.assert_array_equal(_read(work / name), _read(baseline[name[:-4]]), name)
    delta = _read(out / "risk_delta.tif")
    ok = np.isfinite(delta)
    assert ok.sum() == run.stack.valid.count and (delta[ok] == 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["new hotspots"] == 0 and summary["vanished hotspots"] == 0
    assert summary["cells_by_class"]["very high"][0] == summary["cells_by_class"]["very high"][1]
    assert (_read(out / "pinch_points.tif") != 1).all()  # no pinch point lost or gained
    assert (_read(out / "pinch_points.tif") != 3).all()
    assert "nothing was refitted" in summary["nothing_refitted"]


def test_chunks_give_the_whole_areas_files(run: Run) -> None:
    edits = [
        {"kind": "set_class", "covariate": "cover", "class": "pasture"},
        {"kind": "adjust", "covariate": "elevation", "add": 300},
    ]
    scenarios = run.scenarios("clearing", edits, _cells(10, 30, 5, 40))
    chunked = run.evaluate(scenarios, "chunked", Compute(chunk_size=16, workers=2))
    whole = run.evaluate(scenarios, "whole", Compute(chunk_size=64, workers=1))
    names = sorted(p.name for p in (whole / "clearing").glob("*.tif"))
    assert {"risk.tif", "risk_delta.tif", "risk_class.tif", "extrapolation.tif"} <= set(names)
    for name in names:
        np.testing.assert_array_equal(
            _read(chunked / "clearing" / name), _read(whole / "clearing" / name), err_msg=name
        )
    a = json.loads((chunked / "clearing" / "summary.json").read_text())
    b = json.loads((whole / "clearing" / "summary.json").read_text())
    assert a == b
    assert a["largest rise in risk"] > 0.01  # the plan does change the map


def test_a_scenario_keeps_the_baselines_features(run: Run) -> None:
    """Clearing every woodland cell leaves the woodland features (all 'not woodland',
    distances at the cap) in the model's order: the features keep their meaning."""
    clear = [{"kind": "set_class", "covariate": "cover", "class": "pasture"}]
    scenarios = run.scenarios("no-woodland", clear, _cells(0, 48, 0, 48))
    prepared = prepare_scenario(scenarios[0], run.plan.grid)
    built = scenario_stack(
        run.stack, run.fitted.stack, scenarios[0], prepared, run.config.features, None,
        run.folder / "keep", run.compute,
    )  # fmt: skip
    assert built.stack.names == run.fitted.stack.names
    files = {layer.name: layer.file for layer in built.stack.layers}
    valid = run.stack.valid.to_array()
    assert (_read(files["cover_is_woodland"])[valid] == 0).all()
    cap = run.config.features.distance_cap
    assert (_read(files["cover_distance_woodland"])[valid] == cap).all()
    assert (
        "elevation" in files
        and files["elevation"]
        == dict((layer.name, layer.file) for layer in run.fitted.stack.layers)["elevation"]
    )  # not edited: the baseline's file


def test_errors_name_the_scenario(run: Run) -> None:
    clear = [{"kind": "set_class", "covariate": "cover", "class": "pasture"}]
    scenarios = run.scenarios("no-woodland", clear, _cells(0, 48, 0, 48))
    with pytest.raises(InputError, match=r"S\.yaml: scenarios\.0 \(no-woodland\): with the "
                       "edits, connectivity: no source habitat cell"):  # fmt: skip
        run.evaluate(scenarios, "cleared")
    fence = LineString([(X0 + 2 * CELL, Y0 - 5 * CELL), (X0 + 40 * CELL, Y0 - 30 * CELL)])
    scenarios = run.scenarios("fence", [{"kind": "resistance", "barrier": True}], fence)
    with pytest.raises(InputError, match=r"scenarios\.0\.edits\.0 \(fence, resistance\): .* "
                       "holds lines; set width"):  # fmt: skip
        run.evaluate(scenarios, "fence")


def _shipped(run: Run, chosen: str, settings: HistorySettings) -> np.ndarray:
    choice = MapChoice(chosen=chosen, reason="test", months=[], pooled={})
    model = FileBand(run.risk.model or run.risk.risk)
    return _read(file_of(chosen_surface(choice, run.design, model, run.plan.month, settings)))


def test_a_blended_map_moves_by_the_models_share(run: Run) -> None:
    """When the run ships a blend of the model and history, the share is the model's
    coefficient in the shipped map (the rest is the history density, scaled), and a
    scenario's map moves by that share of the change in the model's map; history
    alone does not move at all."""
    settings = HistorySettings(tau_months=6.0, bandwidth=500.0)
    month, model_file = run.plan.month, run.risk.model or run.risk.risk
    model = _read(model_file)
    blend = _shipped(run, "blend_50", settings)
    history = _shipped(run, "history_density", settings)  # density / its top
    share = model_share("blend_50", run.design, FileBand(model_file), month, settings)
    assert model_share("model", run.design, FileBand(model_file), month, settings) == 1.0
    assert model_share("past_counts", run.design, FileBand(model_file), month, settings) == 0.0
    valid = run.stack.valid.to_array()
    rest, dense = (blend - share * model)[valid], history[valid] > 0.01
    factor = float(np.median(rest[dense] / history[valid][dense]))
    np.testing.assert_allclose(rest, factor * history[valid], rtol=1e-4, atol=1e-6)
    assert 0 < share * model[valid].max() < 1
    scenarios = run.scenarios("blended", [{"kind": "adjust", "covariate": "elevation",
                                           "add": 300}], _cells(10, 30, 5, 40))  # fmt: skip
    for chosen, value, expected in (("blend_50", blend, share), ("history_density", history, 0)):
        risk_file = run.folder / f"{chosen}.tif"
        with rasterio.open(model_file) as src:
            profile = src.profile
        with rasterio.open(risk_file, "w", **profile) as dst:
            dst.write(value, 1)
        shipped = RiskMap(
            risk=risk_file, classes=run.risk.classes, thresholds=run.risk.thresholds,
            model=model_file,
        )  # fmt: skip
        basis = replace(run.basis, risk=shipped, shipped=chosen, model_share=expected)
        out = run.folder / f"moved-{chosen}"
        evaluate_scenarios(scenarios, basis, out / "scenarios", out / "work", run.compute)
        after = _read(out / "work" / "blended" / "model_tiled.tif")
        delta = _read(out / "scenarios" / "blended" / "risk_delta.tif")
        np.testing.assert_allclose(
            delta[valid], expected * (after - model)[valid], rtol=1e-5, atol=1e-7
        )
        summary = json.loads((out / "scenarios" / "blended" / "summary.json").read_text())
        assert summary["map_shipped"]["chosen"] == chosen
    assert np.abs(after - model)[valid].max() > 0.01  # the plan did change the model's map
