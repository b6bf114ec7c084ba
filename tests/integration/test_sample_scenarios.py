"""The sample district's planned road and farm expansion (pipelines/sample.yaml runs them).

The scenario file is checked against the sample config, its GeoPackages (the road in
WGS 84, the farms in UTM) are read and burnt onto the sample grid; through the run (the
shared sample run), the road cuts the current through the forest corridor, the farms
raise the risk inside their blocks, and every scenario file is what the registry says.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.features import rasterize

from hwc_risk.config import load_config
from hwc_risk.grid import GridSpec
from hwc_risk.rasters import RasterSource, align_array
from hwc_risk.scenarios.config import check_scenarios, load_scenarios
from hwc_risk.scenarios.edits import apply_changes, prepare_scenario
from hwc_risk.scenarios.geometry import edit_cells
from tests.conftest import REPO

FOREST, CROPLAND, SETTLEMENT = 1, 3, 4


@pytest.fixture(scope="module")
def sample() -> dict:
    cfg = load_config(REPO / "pipelines" / "sample.yaml")
    assert cfg.connectivity is not None
    scenarios = check_scenarios(
        load_scenarios(REPO / "pipelines" / "sample-scenarios.yaml"), cfg.covariates, True
    )
    with rasterio.open(cfg.covariates["land_use"].path) as ds:
        grid = GridSpec.from_dataset(ds)
    land = align_array(RasterSource.of_covariate("land_use", cfg.covariates["land_use"]), grid)
    pop = align_array(RasterSource.of_covariate("population", cfg.covariates["population"]), grid)
    return {"cfg": cfg, "scenarios": scenarios, "grid": grid, "land": land, "pop": pop}


def test_the_sample_plans_edit_the_sample_grid(sample: dict) -> None:
    names = [s.name for s in sample["scenarios"].scenarios]
    assert names == ["planned-road", "farm-expansion"]
    assert sample["cfg"].scenarios == sample["scenarios"].scenarios  # sample.yaml runs them
    grid, land = sample["grid"], sample["land"]
    road = prepare_scenario(sample["scenarios"].scenarios[0], grid)
    burnt = apply_changes(land, road.covariates["land_use"].changes, grid.transform)
    changed = np.isfinite(land) & (burnt != land)
    assert 250 < changed.sum() < 450  # a 30 m road, about 24 km long, on 100 m cells
    assert (burnt[changed] == SETTLEMENT).all()
    assert changed[:12].any() and not changed[250:].any()  # from the north, ends mid-south
    farms = prepare_scenario(sample["scenarios"].scenarios[1], grid)
    assert set(farms.covariates) == {"land_use", "population"}
    cleared = apply_changes(land, farms.covariates["land_use"].changes, grid.transform)
    assert ((land == FOREST) & (cleared == CROPLAND)).sum() > 1000  # forest edge cleared
    pop = sample["pop"]
    grown = apply_changes(pop, farms.covariates["population"].changes, grid.transform)
    moved = np.isfinite(pop) & (grown != pop)
    assert np.allclose(grown[moved] - pop[moved], 60.0, atol=1e-3)
    blocks = edit_cells(farms.covariates["land_use"].changes[0].foot, grid.transform, grid.shape)
    assert np.array_equal(moved, blocks & np.isfinite(pop))  # the same blocks, both edits


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


@pytest.mark.slow
def test_each_scenario_folder(sample_run: Path) -> None:
    """Every file of the registry, as COGs on the run's grid; the delta is scenario minus
    baseline and the classes are on the baseline's thresholds."""
    from rio_cogeo.cogeo import cog_validate

    from hwc_risk.export.outputs import SCENARIO_OUTPUTS
    from hwc_risk.scenarios.summary import classify_on_thresholds, read_thresholds

    baseline = _read(sample_run / "risk.tif")
    thresholds = read_thresholds(sample_run / "metrics.json")
    for name in ("planned-road", "farm-expansion"):
        folder = sample_run / "scenarios" / name
        assert {p.name for p in folder.iterdir()} == {s.filename for s in SCENARIO_OUTPUTS}
        for spec in SCENARIO_OUTPUTS:
            if spec.filename.endswith(".tif"):
                assert cog_validate(folder / spec.filename)[0], spec.filename
                with rasterio.open(folder / spec.filename) as ds:
                    assert ds.crs.to_epsg() == 32736 and ds.shape == baseline.shape
                    assert ds.tags()["units"] == spec.units and ds.tags()["scenario"] == name
        risk = _read(folder / "risk.tif")
        delta = _read(folder / "risk_delta.tif")
        np.testing.assert_array_equal(delta, risk - baseline)
        classes = _read(folder / "risk_class.tif")
        np.testing.assert_array_equal(classes, classify_on_thresholds(risk, thresholds))
        assert np.isfinite(_read(folder / "extrapolation.tif")[np.isfinite(risk)]).all()
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["nothing_refitted"].startswith("nothing was refitted: the model of 2026-10")
        assert summary["largest rise in risk"] > 0.05  # the plans change the map
        # the QGIS style of the change is symmetric about 0
        items = ET.parse(folder / "risk_delta.qml").getroot().findall(".//colorrampshader/item")
        values = [float(i.get("value", "nan")) for i in items]
        assert values[2] == 0 and values[0] == -values[-1] == pytest.approx(-summary["delta_limit"])
    edits = gpd.read_file(sample_run / "scenarios" / "planned-road" / "edits.gpkg",
                          layer="edit_0_burn_lines")  # fmt: skip
    assert list(edits["name"]) == ["Planned road B-12"] and edits.crs.to_epsg() == 32736


@pytest.mark.slow
def test_the_planned_road_cuts_the_corridors_current(sample_run: Path) -> None:
    """Through the run: the road's line carries the current between the two forests (the
    solve grid's 300 m cells), and the road cuts much of it; pinch points move."""
    summary = json.loads((sample_run / "scenarios" / "planned-road" / "summary.json").read_text())
    cut = summary["current_cut"]
    assert 0.5 < cut["share_of_total"] <= 1.05
    assert cut["cut_share"] > 0.25
    assert summary["pinch-point area moved (km²)"] > 0
    pinch = _read(sample_run / "scenarios" / "planned-road" / "pinch_points.tif")
    assert (pinch == 1).any() and (pinch == 3).any()  # lost and gained
    change = _read(sample_run / "scenarios" / "planned-road" / "connectivity_delta.tif")
    assert np.nanmin(change) < 0  # less current somewhere along the corridor


@pytest.mark.slow
def test_the_farms_raise_risk_inside_the_blocks(sample_run: Path) -> None:
    folder = sample_run / "scenarios" / "farm-expansion"
    delta = _read(folder / "risk_delta.tif")
    blocks = gpd.read_file(REPO / "sample_data" / "farm_expansion.gpkg").to_crs("EPSG:32736")
    with rasterio.open(folder / "risk_delta.tif") as ds:
        inside = rasterize(blocks.geometry, out_shape=ds.shape, transform=ds.transform) > 0
    assert np.nanmean(delta[inside]) > 0.05
    # the blocks' very high cells join hotspots (or make new ones)
    spots = gpd.read_file(folder / "hotspots.gpkg", layer="hotspots")
    assert spots.intersects(blocks.union_all()).any()
    table = pd.read_csv(sample_run / "scenarios" / "summary.csv", index_col=0)
    assert list(table.columns) == ["planned-road", "farm-expansion"]
    assert float(table.loc["very high: area change (km²)", "farm-expansion"]) > 1
    assert float(table.loc["very high: people change", "farm-expansion"]) > 0


def test_the_plans_are_what_the_seeded_script_writes(tmp_path: Path) -> None:
    import importlib.util

    import geopandas as gpd

    spec = importlib.util.spec_from_file_location(
        "make_sample", REPO / "sample_data" / "make_sample_data.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.HERE = tmp_path
    script.write_plans()
    for name in ("planned_road", "farm_expansion"):
        shipped = gpd.read_file(REPO / "sample_data" / f"{name}.gpkg", layer=name)
        made = gpd.read_file(tmp_path / f"{name}.gpkg", layer=name)
        assert shipped.crs == made.crs
        assert shipped.drop(columns="geometry").equals(made.drop(columns="geometry"))
        assert all(
            a.equals_exact(b, 1e-9) for a, b in zip(shipped.geometry, made.geometry, strict=True)
        )
