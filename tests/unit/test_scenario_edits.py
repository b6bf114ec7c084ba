"""Scenario files, the edits' GeoPackages, and the edits on arrays and on GeoTIFFs."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage
from shapely.geometry import LineString, Point, Polygon, box

from hwc_risk.compute import Compute
from hwc_risk.config import CovariateConfig
from hwc_risk.errors import ConfigError, CRSError, InputError, MissingFileError, NoOverlapError
from hwc_risk.grid import GridSpec
from hwc_risk.rasters import RasterSource, align_file
from hwc_risk.scenarios.config import (
    AdjustEdit,
    ResistanceEdit,
    SetClassEdit,
    check_scenarios,
    load_scenarios,
)
from hwc_risk.scenarios.edits import (
    CellChange,
    adjust_inside,
    apply_changes,
    prepare_scenario,
    resistance_changes,
    set_inside,
    write_edited_covariate,
)
from hwc_risk.scenarios.geometry import edit_cells, footprint, read_edit_shapes
from tests.conftest import write_raster

UTM = CRS.from_epsg(32736)
GRID = GridSpec(UTM, Affine(100, 0, 500_000, 0, -100, 9_000_000), 150, 120)  # 15 x 12 km


def gpkg(path: Path, geoms: list, crs: str | None = "EPSG:32736", layer: str = "edit") -> Path:
    frame = gpd.GeoDataFrame({"name": [f"g{i}" for i in range(len(geoms))]}, geometry=geoms)
    if crs is not None:
        frame = frame.set_crs(crs)
    frame.to_file(path, layer=layer, driver="GPKG")
    return path


def scenario_yaml(folder: Path, text: str) -> Path:
    path = folder / "SCENARIO.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Cov:
    def __init__(self, type: str, classes: dict[int, str] | None = None) -> None:
        self.type = type
        self.classes = classes


COVS = {
    "land_use": Cov("categorical", {1: "forest", 3: "cropland", 4: "settlement"}),
    "population": Cov("continuous"),
}

# -- the scenario file ------------------------------------------------------------------


def test_scenario_file_both_forms_and_paths_relative_to_it(tmp_path: Path) -> None:
    listed = scenario_yaml(
        tmp_path,
        """
scenarios:
  - name: farms
    edits:
      - {kind: set_class, covariate: land_use, path: farms.gpkg, class: cropland}
      - {kind: adjust, covariate: population, path: farms.gpkg, multiply: 1.5}
  - name: fence
    edits:
      - {kind: resistance, path: sub/fence.gpkg, layer: fences, width: 5, barrier: true}
""",
    )
    parsed = load_scenarios(listed)
    assert [s.name for s in parsed.scenarios] == ["farms", "fence"]
    first = parsed.scenarios[0].edits[0]
    assert isinstance(first, SetClassEdit) and first.path == tmp_path / "farms.gpkg"
    fence = parsed.scenarios[1].edits[0]
    assert isinstance(fence, ResistanceEdit) and fence.path == tmp_path / "sub" / "fence.gpkg"
    assert parsed.scenarios[0].covariates == ["land_use", "population"]
    assert parsed.scenarios[1].edits_resistance

    single = scenario_yaml(
        tmp_path,
        "name: grow\nedits:\n  - {kind: adjust, covariate: population, path: a.gpkg, add: 10}\n",
    )
    only = load_scenarios(single).scenarios
    assert len(only) == 1 and isinstance(only[0].edits[0], AdjustEdit)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "scenarios:\n  - name: a\n    edits:\n      - {kind: set_class, covariate: x, "
            "path: a.gpkg, class: 1, colour: red}\n",
            "unknown key 'scenarios.0.edits.0.colour'",
        ),
        (
            "scenarios:\n  - name: a\n    edits:\n      - {kind: paint, covariate: x}\n",
            "key 'scenarios.0.edits.0.kind' must be one of",
        ),
        (
            "scenarios:\n  - name: a\n    edits:\n      - {covariate: x}\n",
            "key 'scenarios.0.edits.0.kind' is missing",
        ),
        (
            "scenarios:\n  - name: a\n    edits:\n      - {kind: burn_lines, covariate: x, "
            "path: r.gpkg, value: 1}\n",
            "key 'scenarios.0.edits.0.width' is missing",
        ),
        (
            "scenarios:\n  - name: a\n    edits:\n      - {kind: resistance, path: r.gpkg, "
            "value: 5, barrier: true}\n",
            "exactly one of value, multiply or barrier",
        ),
        (
            "scenarios:\n  - name: a\n    edits:\n      - {kind: adjust, covariate: p, "
            "path: r.gpkg}\n",
            "give multiply (other than 1) or add",
        ),
        (
            "scenarios:\n  - name: a\n    edits:\n      - {kind: adjust, covariate: p, path: "
            "r.gpkg, add: 1}\n      - {kind: replace, covariate: p, raster: p2030.tif}\n",
            "replace of 'p' must be its first edit",
        ),
        (
            "scenarios:\n  - name: a\n    edits: [{kind: adjust, covariate: p, path: r.gpkg, "
            "add: 1}]\n  - name: a\n    edits: [{kind: adjust, covariate: p, path: r.gpkg, "
            "add: 2}]\n",
            "'a' is used twice",
        ),
        ("scenarios:\n  - name: a\n    edits: [\n", "not valid YAML at line"),
        ("- 1\n- 2\n", "expected a mapping with a 'scenarios:' list"),
    ],
)
def test_scenario_file_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = scenario_yaml(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_scenarios(path)
    message = str(err.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="scenario file not found"):
        load_scenarios(tmp_path / "nope.yaml")


def test_check_against_pipeline_resolves_class_names(tmp_path: Path) -> None:
    path = scenario_yaml(
        tmp_path,
        "scenarios:\n  - name: a\n    edits:\n"
        "      - {kind: set_class, covariate: land_use, path: f.gpkg, class: Cropland}\n"
        "      - {kind: burn_lines, covariate: land_use, path: r.gpkg, width: 30, "
        "value: settlement}\n"
        "      - {kind: burn_lines, covariate: population, path: r.gpkg, width: 30, value: 50}\n",
    )
    checked = check_scenarios(load_scenarios(path), COVS, has_connectivity=False)
    edits = checked.scenarios[0].edits
    assert edits[0].class_ == 3  # type: ignore[union-attr]
    assert edits[1].value == 4.0  # type: ignore[union-attr]
    assert edits[2].value == 50.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("{kind: set_class, covariate: roads, path: f.gpkg, class: 1}", "'roads' is not under"),
        ("{kind: set_class, covariate: population, path: f.gpkg, class: 1}", "needs a categ"),
        ("{kind: adjust, covariate: land_use, path: f.gpkg, add: 1}", "needs a continuous"),
        ("{kind: set_class, covariate: land_use, path: f.gpkg, class: 7}", "class 7 is not one"),
        ("{kind: set_class, covariate: land_use, path: f.gpkg, class: urban}", "'urban' is not"),
        (
            "{kind: burn_lines, covariate: population, path: f.gpkg, width: 5, value: tar}",
            "'tar' is not a number",
        ),
        ("{kind: resistance, path: f.gpkg, width: 5, barrier: true}", "needs a connectivity"),
    ],
)
def test_check_against_pipeline_errors(tmp_path: Path, edit: str, expected: str) -> None:
    path = scenario_yaml(tmp_path, f"scenarios:\n  - name: s\n    edits:\n      - {edit}\n")
    with pytest.raises(ConfigError) as err:
        check_scenarios(load_scenarios(path), COVS, has_connectivity=False)
    assert expected in str(err.value)
    assert "scenarios.0.edits.0 (s, " in str(err.value)


# -- the edits' GeoPackages -------------------------------------------------------------


def test_read_edit_shapes_reprojects_and_repairs(tmp_path: Path) -> None:
    # a farm block drawn in WGS 84 (QGIS project CRS), with a self-intersecting bow tie
    from pyproj import Transformer

    to_geo = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    corners = [(501_000, 8_995_000), (503_000, 8_997_000), (503_000, 8_995_000),
               (501_000, 8_997_000)]  # fmt: skip
    bow_tie = Polygon([to_geo.transform(x, y) for x, y in corners])
    assert not bow_tie.is_valid
    path = gpkg(tmp_path / "farm.gpkg", [bow_tie], crs="EPSG:4326")
    shapes = read_edit_shapes(path, None, UTM, GRID.bounds, "S.yaml: scenarios.0.edits.0")
    assert shapes.kind == "polygons" and "layer edit" in shapes.source
    (geom,) = shapes.geometries
    assert geom.is_valid
    # back in UTM metres
    assert np.allclose(geom.bounds, (501_000, 8_995_000, 503_000, 8_997_000), atol=1.0)
    assert geom.area == pytest.approx(2_000_000, rel=1e-3)  # two triangles of 1 km²


def test_read_edit_shapes_errors(tmp_path: Path) -> None:
    where = "S.yaml: scenarios.0.edits.1 (road, burn_lines)"
    poly = box(501_000, 8_995_000, 502_000, 8_996_000)
    two = tmp_path / "two.gpkg"
    gpkg(two, [poly], layer="farms")
    gpkg(two, [LineString([(500_500, 8_990_000), (510_000, 8_999_000)])], layer="roads")

    def fails(exc: type[Exception], match: str, path: Path, layer: str | None = None,
              allowed: tuple = ("polygons", "lines")) -> None:  # fmt: skip
        with pytest.raises(exc) as err:
            read_edit_shapes(path, layer, UTM, GRID.bounds, where, allowed)
        assert str(err.value).startswith(where) and match in str(err.value)

    fails(MissingFileError, "not found", tmp_path / "none.gpkg")
    (tmp_path / "junk.gpkg").write_text("not a geopackage")
    fails(InputError, "not a vector file GDAL can read", tmp_path / "junk.gpkg")
    fails(InputError, "has layers farms, roads; set layer", two)
    fails(InputError, "has no layer 'road'; set layer to one of: farms, roads", two, "road")
    fails(InputError, "holds lines, but this edit needs polygons", two, "roads", ("polygons",))
    with pytest.warns(UserWarning, match="crs"):
        nocrs = gpkg(tmp_path / "nocrs.gpkg", [poly], crs=None)
    fails(CRSError, "has no CRS", nocrs)
    fails(InputError, "holds Point", gpkg(tmp_path / "pts.gpkg", [Point(501_000, 8_995_000)]))
    far = box(700_000, 8_000_000, 701_000, 8_001_000)
    fails(NoOverlapError, "does not overlap the analysis grid", gpkg(tmp_path / "far.gpkg", [far]))
    assert read_edit_shapes(two, "roads", UTM, GRID.bounds, where).kind == "lines"


# -- the edits on arrays ------------------------------------------------------------------


def test_set_and_adjust_keep_nodata() -> None:
    values = np.array([[1.0, 2.0], [np.nan, 4.0]], dtype=np.float32)
    inside = np.array([[True, False], [True, True]])
    assert np.array_equal(set_inside(values, inside, 7), [[7, 2], [np.nan, 7]], equal_nan=True)
    got = adjust_inside(values, inside, 2.0, 1.0)
    assert np.array_equal(got, [[3, 2], [np.nan, 9]], equal_nan=True)
    assert values[0, 0] == 1.0  # the input is not changed


def _line_shapes(tmp_path: Path, line: LineString, name: str = "line.gpkg") -> object:
    path = gpkg(tmp_path / name, [line])
    return read_edit_shapes(path, None, UTM, GRID.bounds, "k")


def test_thin_diagonal_line_leaves_no_gap_for_8_neighbours(tmp_path: Path) -> None:
    # a 10 m fence drawn diagonally across 100 m cells, corner to corner
    line = LineString([(500_000, 9_000_000), (515_000, 8_988_000)])
    foot = footprint(_line_shapes(tmp_path, line), 10.0, GRID.cell_size)  # type: ignore[arg-type]
    assert foot.all_touched
    cells = edit_cells(foot, GRID.transform, GRID.shape)
    _, parts = ndimage.label(~cells, structure=np.ones((3, 3)))
    assert parts == 2  # the fence splits the grid in two, even for diagonal moves


def test_wide_line_keeps_its_width(tmp_path: Path) -> None:
    # a 500 m canal east-west through cell centres: 5 rows of cells, 10 km long
    line = LineString([(502_000, 8_994_050), (512_000, 8_994_050)])
    foot = footprint(_line_shapes(tmp_path, line), 500.0, GRID.cell_size)  # type: ignore[arg-type]
    assert not foot.all_touched
    cells = edit_cells(foot, GRID.transform, GRID.shape)
    assert cells.sum() == 5 * 100
    assert np.array_equal(np.flatnonzero(cells.any(axis=1)), np.arange(57, 62))


def test_later_edits_win_and_cells_follow_the_window(tmp_path: Path) -> None:
    poly = gpkg(tmp_path / "p.gpkg", [box(501_000, 8_995_000, 503_000, 8_997_000)])
    foot = footprint(read_edit_shapes(poly, None, UTM, GRID.bounds, "k"), None, 100.0)
    values = np.ones(GRID.shape, dtype=np.float32)
    out = apply_changes(
        values, (CellChange(foot, set_to=3.0), CellChange(foot, multiply=2.0)), GRID.transform
    )
    assert np.unique(out).tolist() == [1.0, 6.0] and (out == 6).sum() == 20 * 20
    # the same cells seen through a window's transform
    win_t = GRID.transform @ Affine.translation(20, 40)
    part = edit_cells(foot, win_t, (30, 30))
    assert np.array_equal(part, (out == 6)[40:70, 20:50])


def _scenario(tmp_path: Path, edits: str) -> object:
    path = scenario_yaml(tmp_path, f"scenarios:\n  - name: s\n    edits:\n{edits}")
    return check_scenarios(load_scenarios(path), COVS, has_connectivity=True).scenarios[0]


def test_write_edited_covariate_chunked_equals_whole(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    land = rng.choice([1.0, 3.0, 4.0], size=GRID.shape).astype(np.float32)
    land[:10, :10] = np.nan
    aligned = write_raster(tmp_path / "land.tif", land, transform=GRID.transform, nodata=np.nan)
    gpkg(tmp_path / "farm.gpkg", [box(500_000, 8_995_000, 505_000, 8_999_000)])
    road = LineString([(500_000, 8_990_000), (515_000, 8_996_000)])
    gpkg(tmp_path / "road.gpkg", [road])
    scenario = _scenario(
        tmp_path,
        "      - {kind: set_class, covariate: land_use, path: farm.gpkg, class: cropland}\n"
        "      - {kind: burn_lines, covariate: land_use, path: road.gpkg, width: 30, "
        "value: settlement}\n",
    )
    prepared = prepare_scenario(scenario, GRID)  # type: ignore[arg-type]
    edits = prepared.covariates["land_use"]
    out = write_edited_covariate(
        aligned, edits, True, GRID, tmp_path / "edited.tif", Compute(chunk_size=64, workers=2)
    )
    with rasterio.open(out) as ds:
        chunked = ds.read(1)
    whole = apply_changes(land, edits.changes, GRID.transform)
    assert np.array_equal(chunked, whole, equal_nan=True)
    assert np.isnan(chunked[:10, :10]).all()  # nodata stays nodata inside the farm
    assert (chunked[10:50, 10:50] == 3).all()  # the farm block (rows 10-49, cols 0-49)
    changed = chunked != land
    assert changed[50:].any() and (chunked[50:][changed[50:]] == 4).all()  # the road
    # aligning the edited file onto the grid again (as build_feature_stack does) is exact
    cov = CovariateConfig(path=out, type="categorical")
    again = align_file(RasterSource.of_covariate("land_use", cov), GRID, tmp_path / "again.tif")
    with rasterio.open(again) as ds:
        assert np.array_equal(ds.read(1), chunked, equal_nan=True)
    pop = CovariateConfig(path=out, type="continuous")
    again = align_file(RasterSource.of_covariate("population", pop), GRID, tmp_path / "again2.tif")
    with rasterio.open(again) as ds:
        assert np.array_equal(ds.read(1), chunked, equal_nan=True)


def test_replace_aligns_the_raster_then_edits(tmp_path: Path) -> None:
    pop = np.full(GRID.shape, 10.0, dtype=np.float32)
    aligned = write_raster(tmp_path / "pop.tif", pop, transform=GRID.transform, nodata=np.nan)
    # the 2030 plan at 200 m cells
    plan = np.full((60, 75), 50.0, dtype=np.float32)
    coarse = Affine(200, 0, 500_000, 0, -200, 9_000_000)
    write_raster(tmp_path / "plan.tif", plan, transform=coarse, nodata=-1.0)
    gpkg(tmp_path / "grow.gpkg", [box(500_000, 8_999_000, 501_000, 9_000_000)])
    scenario = _scenario(
        tmp_path,
        "      - {kind: replace, covariate: population, raster: plan.tif}\n"
        "      - {kind: adjust, covariate: population, path: grow.gpkg, multiply: 2}\n",
    )
    prepared = prepare_scenario(scenario, GRID)  # type: ignore[arg-type]
    out = write_edited_covariate(
        aligned, prepared.covariates["population"], False, GRID, tmp_path / "edited.tif"
    )
    with rasterio.open(out) as ds:
        got = ds.read(1)
    assert (got[:10, :10] == 100).all() and (got[10:, :] == 50).all() and (got[:, 10:] == 50).all()

    bad = _scenario(tmp_path, "      - {kind: replace, covariate: population, raster: x.tif}\n")
    with pytest.raises(MissingFileError, match=r"x\.tif: file not found"):
        write_edited_covariate(
            aligned,
            prepare_scenario(bad, GRID).covariates["population"],  # type: ignore[arg-type]
            False,
            GRID,
            tmp_path / "e2.tif",
        )


def test_resistance_changes_on_the_solve_grid(tmp_path: Path) -> None:
    gpkg(tmp_path / "fence.gpkg", [LineString([(505_000, 9_000_000), (505_000, 8_988_000)])])
    gpkg(tmp_path / "bridge.gpkg", [box(504_000, 8_994_000, 506_000, 8_995_000)])
    scenario = _scenario(
        tmp_path,
        "      - {kind: resistance, path: fence.gpkg, width: 5, barrier: true}\n"
        "      - {kind: resistance, path: bridge.gpkg, value: 2}\n",
    )
    prepared = prepare_scenario(scenario, GRID)  # type: ignore[arg-type]
    assert prepared.covariates == {}
    coarse = GRID.coarsened(3)  # a solve grid of 300 m cells
    changes = resistance_changes(prepared, coarse.cell_size)
    res = apply_changes(np.full(coarse.shape, 10.0), changes, coarse.transform)
    fence_cols = np.flatnonzero(np.isnan(res).all(axis=0))
    assert fence_cols.size >= 1 and (np.isnan(res).any(axis=0) == np.isin(
        np.arange(coarse.width), fence_cols)).all()  # fmt: skip
    assert (res == 2).sum() > 0  # the crossing over the fence
    assert set(np.unique(res[np.isfinite(res)])) == {2.0, 10.0}


def test_resistance_lines_need_a_width(tmp_path: Path) -> None:
    gpkg(tmp_path / "fence.gpkg", [LineString([(505_000, 9_000_000), (505_000, 8_988_000)])])
    scenario = _scenario(tmp_path, "      - {kind: resistance, path: fence.gpkg, value: 9}\n")
    with pytest.raises(InputError, match="holds lines; set width"):
        prepare_scenario(scenario, GRID)  # type: ignore[arg-type]
