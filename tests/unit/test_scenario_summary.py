"""What a scenario changes: classes on fixed thresholds, tallies, hotspots, current, table."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, box

from hwc_risk.compute import Compute
from hwc_risk.connectivity import habitat_patches, pairwise_current
from hwc_risk.errors import InputError
from hwc_risk.grid import GridSpec
from hwc_risk.scenarios.config import ResistanceEdit, ScenarioConfig
from hwc_risk.scenarios.edits import apply_changes, prepare_scenario, resistance_changes
from hwc_risk.scenarios.summary import (
    AREA_CHANGED,
    OUTSIDE_RANGE,
    ScenarioSummary,
    classify_on_thresholds,
    compare_surfaces,
    current_across_line,
    hotspot_changes,
    line_cells,
    pinch_point_change,
    read_thresholds,
    scenarios_table,
    tally_classes,
    write_scenarios_csv,
)
from hwc_risk.surfaces import classify
from tests.conftest import write_raster

UTM = CRS.from_epsg(32736)


def test_classes_on_the_baseline_thresholds_match_its_ranked_classes() -> None:
    rng = np.random.default_rng(1)
    risk = rng.uniform(size=(80, 90)).astype(np.float32)
    valid = np.ones(risk.shape, dtype=bool)
    valid[:4] = False
    risk[~valid] = np.nan
    ranked, thresholds = classify(risk, valid)
    assert np.array_equal(classify_on_thresholds(risk, thresholds), ranked)  # no ties
    # a scenario that lifts every cell by 0.1: more very high, none below low
    lifted = classify_on_thresholds(np.minimum(risk + 0.1, 1.0), thresholds)
    assert (lifted == 4).sum() > (ranked == 4).sum() and (lifted[valid] >= 1).all()
    assert (lifted[~valid] == 0).all()


def test_tally_counts_cells_and_people() -> None:
    codes = np.array([[4, 4, 1], [0, 2, 1]], dtype=np.uint8)
    people = np.array([[10.0, 5.0, 1.0], [99.0, np.nan, 2.0]])
    t = tally_classes(codes, people)
    assert t.cells.tolist() == [1, 2, 1, 0, 2]
    assert t.people.tolist() == [99.0, 3.0, 0.0, 0.0, 15.0]
    both = t + tally_classes(codes)
    assert both.cells[4] == 4 and both.people[4] == 15.0


def _spots(*boxes: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"hotspot": range(1, len(boxes) + 1)}, geometry=[box(*b) for b in boxes], crs=UTM
    )


def test_hotspot_changes_need_a_shared_cell() -> None:
    base = _spots((0, 0, 200, 200), (1000, 1000, 1100, 1100), (3000, 0, 3100, 100))
    scen = _spots((100, 100, 300, 300), (1100, 1000, 1200, 1100), (5000, 0, 5100, 100))
    changes = hotspot_changes(base, scen)
    # the first overlaps; the second only shares an edge (new, and its old neighbour
    # vanished); the third moved away
    assert sorted(changes.new.geometry.bounds.minx) == [1100, 5000]
    assert sorted(changes.vanished.geometry.bounds.minx) == [1000, 3000]
    empty = hotspot_changes(base, scen.iloc[:0])
    assert len(empty.new) == 0 and len(empty.vanished) == 3


def _corridor_landscape() -> tuple[GridSpec, np.ndarray, np.ndarray]:
    """Two forests (west, east) joined by a low-resistance corridor through farmland."""
    grid = GridSpec(UTM, Affine(100, 0, 500_000, 0, -100, 9_000_000), 80, 60)
    res = np.full(grid.shape, 40.0)
    res[25:35, :] = 1.0  # the corridor, rows 25-34
    forest = np.zeros(grid.shape, dtype=bool)
    forest[:, :8] = forest[:, -8:] = True
    res[forest] = 1.0
    return grid, res, habitat_patches(forest, 4, 8)


def _road(tmp_path: Path, **change: object) -> tuple[np.ndarray, np.ndarray]:
    """The resistance after a north-south road across the corridor, and the road's cells."""
    grid, res, _ = _corridor_landscape()
    line = LineString([(504_000, 8_998_500), (504_050, 8_995_000)])  # rows 15-50, col 40
    path = tmp_path / "road.gpkg"
    gpd.GeoDataFrame(geometry=[line], crs=UTM).to_file(path, layer="road", driver="GPKG")
    edit = ResistanceEdit(kind="resistance", path=path, width=20.0, **change)  # type: ignore[arg-type]
    prepared = prepare_scenario(ScenarioConfig(name="road", edits=[edit]), grid)
    edited = apply_changes(res, resistance_changes(prepared, grid.cell_size), grid.transform)
    return edited, line_cells([line], grid.transform, grid.shape)


def test_a_road_across_a_corridor_cuts_its_current(tmp_path: Path) -> None:
    _, res, patches = _corridor_landscape()
    before = pairwise_current(res, patches)
    fenced, cells = _road(tmp_path, barrier=True)
    after = pairwise_current(fenced, patches)
    cut = current_across_line(before, after, cells, n_pairs=1)
    # one pair, 1 A: nearly all of it crosses the road's line before (the line spans the
    # corridor and beyond), and a fenced road cuts all of it
    assert cut.share_of_total is not None and cut.share_of_total > 0.9
    assert cut.cut_share > 0.99
    # the current did not vanish: 1 A still crosses column 60, round the road's ends
    # (summed node currents count a meandering path more than once, so at least 1 A)
    assert np.nansum(after[:, 60]) >= 0.95 and np.nansum(before[:, 60]) >= 0.95
    # habitat patches are short-circuited (every cell carries the patch's current): pinch
    # points are looked for outside them
    moved = pinch_point_change(before, after, np.isfinite(res) & (patches == 0), 0.03)
    assert moved.lost > 0 and moved.gained > 0 and 0 < moved.moved_share <= 1
    lost_rows = np.nonzero(moved.codes == 1)[0]
    assert ((lost_rows >= 25) & (lost_rows < 35)).mean() > 0.9  # lost along the corridor

    # an unfenced road (resistance 500 on 20 m) is crossed still, less than before
    road, _ = _road(tmp_path, value=500.0)
    partial = current_across_line(before, pairwise_current(road, patches), cells, n_pairs=1)
    assert 0.1 < partial.cut_share < cut.cut_share


def test_nothing_crosses_when_nothing_flows() -> None:
    zero = np.zeros((5, 5))
    cut = current_across_line(zero, zero, np.ones((5, 5), dtype=bool))
    assert cut.cut_share == 0.0 and cut.share_of_total is None


def test_compare_surfaces_chunked_and_table(tmp_path: Path) -> None:
    grid = GridSpec(UTM, Affine(100, 0, 500_000, 0, -100, 9_000_000), 140, 100)
    rng = np.random.default_rng(7)
    base = rng.uniform(size=grid.shape).astype(np.float32)
    base[:3] = np.nan
    scen = base.copy()
    scen[40:60, 40:80] += 0.3  # a farm block raises risk
    scen[80:90, :] -= 0.2  # a fence lowers it elsewhere
    people = np.full(grid.shape, 200.0, dtype=np.float32)  # per km² -> 2 per 1-ha cell
    paths = {
        n: write_raster(tmp_path / f"{n}.tif", a, transform=grid.transform, nodata=np.nan)
        for n, a in (("base", base), ("scen", scen), ("people", people))
    }
    _, thresholds = classify(base, np.isfinite(base))
    out = tmp_path / "out"
    out.mkdir()
    got = compare_surfaces(
        paths["base"], paths["scen"], thresholds, grid, out, paths["people"], 0.01,
        Compute(chunk_size=64),
    )  # fmt: skip
    with rasterio.open(got.delta) as d, rasterio.open(got.classes) as c:
        assert np.allclose(d.read(1), scen - base, equal_nan=True)
        assert np.array_equal(c.read(1), classify_on_thresholds(scen, thresholds))
    assert got.changed_cells == 20 * 40 + 10 * 140
    assert got.largest_rise == pytest.approx(0.3, abs=1e-6)
    assert got.largest_fall == pytest.approx(-0.2, abs=1e-6)
    assert got.baseline.cells.sum() == got.scenario.cells.sum() == grid.width * grid.height
    vh_gain = got.scenario.cells[4] - got.baseline.cells[4]
    assert vh_gain > 0
    assert got.scenario.people[4] - got.baseline.people[4] == pytest.approx(2 * vh_gain)

    summary = ScenarioSummary(
        name="farms",
        description="Farm block",
        edits="set_class land_use",
        cell_km2=0.01,
        comparison=got,
        new_hotspots=2,
        vanished_hotspots=0,
        extrapolated_share=0.25,
    )
    other = ScenarioSummary(
        name="nothing",
        description="No change",
        edits="",
        cell_km2=0.01,
        comparison=got,
        new_hotspots=0,
        vanished_hotspots=1,
    )
    table = scenarios_table([summary, other])
    assert list(table.columns) == ["farms", "nothing"]
    assert table.loc[AREA_CHANGED, "farms"] == pytest.approx(22.0)
    assert table.loc["very high: area change (km²)", "farms"] == pytest.approx(vh_gain * 0.01)
    assert table.loc[OUTSIDE_RANGE, "farms"] == 25.0
    csv = pd.read_csv(write_scenarios_csv(tmp_path / "s.csv", [summary, other]), index_col=0)
    assert csv.loc["new hotspots", "farms"] == "2" or csv.loc["new hotspots", "farms"] == 2
    assert json.dumps(summary.record())  # serialisable for summary.json


def test_read_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"risk_classes": [
        {"label": "very high", "min_risk": 0.8}, {"label": "high", "min_risk": 0.5},
        {"label": "low", "min_risk": None}]}))  # fmt: skip
    assert read_thresholds(path) == {"very high": 0.8, "high": 0.5}
    path.write_text("{}")
    with pytest.raises(InputError, match="no risk class thresholds"):
        read_thresholds(path)
