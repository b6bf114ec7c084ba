"""The sample district's planned road and farm expansion (pipelines/sample-scenarios.yaml).

The scenario file is checked against the sample config, its GeoPackages (the road in
WGS 84, the farms in UTM) are read and burnt onto the sample grid, and the road, with the
sample's own resistance table, cuts the current through the forest corridor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from hwc_risk.config import load_config
from hwc_risk.connectivity import habitat_patches, pairwise_current, resistance_from_classes
from hwc_risk.grid import GridSpec
from hwc_risk.rasters import RasterSource, align_array
from hwc_risk.scenarios.config import check_scenarios, load_scenarios
from hwc_risk.scenarios.edits import apply_changes, prepare_scenario, resistance_changes
from hwc_risk.scenarios.geometry import edit_cells
from hwc_risk.scenarios.summary import current_across_line, line_cells, pinch_point_change
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


def test_the_planned_road_cuts_the_corridors_current(sample: dict) -> None:
    # as a run solves connectivity: on a coarsened grid (connectivity.max_cells) with the
    # covariates aligned onto it by GDAL, the edits burnt onto that grid
    cfg, conn = sample["cfg"], sample["cfg"].connectivity
    grid = sample["grid"].coarsened(3)  # 134 x 107 cells of 300 m
    land = align_array(RasterSource.of_covariate("land_use", cfg.covariates["land_use"]), grid)
    pop = align_array(RasterSource.of_covariate("population", cfg.covariates["population"]), grid)
    road = prepare_scenario(sample["scenarios"].scenarios[0], grid)
    burnt = apply_changes(land, road.covariates["land_use"].changes, grid.transform)
    before_res = resistance_from_classes(land, conn.resistance, pop, conn.density_factor)
    after_res = resistance_from_classes(burnt, conn.resistance, pop, conn.density_factor)
    after_res = apply_changes(after_res, resistance_changes(road, grid.cell_size), grid.transform)
    habitat = np.isin(land, conn.sources) & np.isfinite(before_res)
    patches = habitat_patches(habitat, conn.min_patch_cells, conn.max_patches)
    k = int(patches.max())
    assert k >= 2
    before = pairwise_current(before_res, patches)
    after = pairwise_current(after_res, patches)
    cells = line_cells(list(road.shapes[0].geometries), grid.transform, grid.shape)
    cut = current_across_line(before, after, cells, n_pairs=k * (k - 1) // 2)
    # most current between the forests crosses the road's line, and the road cuts much of it
    assert cut.share_of_total is not None and 0.5 < cut.share_of_total <= 1.05
    assert cut.cut_share > 0.25
    moved = pinch_point_change(before, after, np.isfinite(before_res) & (patches == 0), 0.02)
    assert moved.lost > 0 and moved.gained > 0


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
