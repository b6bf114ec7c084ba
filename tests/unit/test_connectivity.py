from pathlib import Path

import numpy as np
import pytest

from hwc_risk.config import load_config
from hwc_risk.connectivity import (
    cost_distance,
    habitat_patches,
    least_cost_corridor,
    pairwise_current,
    resistance_from_classes,
)
from hwc_risk.errors import ConfigError


def test_resistance_from_classes_and_density() -> None:
    codes = np.array([[1.0, 2.0, 3.0, np.nan]])
    density = np.array([[0.0, 100.0, 0.0, 0.0]])
    res = resistance_from_classes(codes, {1: 1.0, 2: 5.0}, density, 0.01)
    assert res[0, 0] == 1.0 and res[0, 1] == pytest.approx(10.0)
    assert np.isnan(res[0, 2]) and np.isnan(res[0, 3])  # unlisted class, nodata


def test_habitat_patches_are_ranked_by_size() -> None:
    src = np.zeros((10, 10), bool)
    src[0:2, 0:2] = True  # 4 cells
    src[5:10, 5:10] = True  # 25 cells
    src[0, 9] = True  # 1 cell: too small
    patches = habitat_patches(src, min_cells=2)
    assert patches[6, 6] == 1 and patches[0, 0] == 2 and patches[0, 9] == 0


def test_cost_distance_on_uniform_resistance() -> None:
    res = np.full((21, 21), 2.0)
    src = np.zeros_like(res, bool)
    src[10, 10] = True
    cd = cost_distance(res, src, 100.0)
    assert cd[10, 10] == 0
    assert cd[10, 15] == pytest.approx(5 * 100 * 2.0)  # straight along a row
    assert cd[15, 15] == pytest.approx(5 * np.sqrt(2) * 100 * 2.0)  # diagonal
    # a barrier of NaN must be walked around
    res[:, 12] = np.nan
    res[0, 12] = 2.0
    cd2 = cost_distance(res, src, 100.0)
    assert np.isnan(cd2[5, 12]) and cd2[10, 14] > cd[10, 14] * 2


def test_corridor_is_zero_on_the_least_cost_path() -> None:
    res = np.full((15, 30), 10.0)
    res[7, :] = 1.0  # a cheap road between the patches
    patches = np.zeros(res.shape, int)
    patches[6:9, 0:2] = 1
    patches[6:9, 28:30] = 2
    corridor = least_cost_corridor(res, patches, 100.0)
    assert np.nanmax(corridor[7, 2:28]) == pytest.approx(0.0, abs=1e-6)
    assert corridor[1, 15] > 1000


def test_pairwise_current_prefers_the_corridor_and_survives_coarsening() -> None:
    res = np.full((60, 80), 20.0)
    res[28:32, :] = 1.0  # a low-resistance corridor
    patches = np.zeros(res.shape, int)
    patches[20:40, 0:5] = 1
    patches[20:40, 75:80] = 2
    cur = pairwise_current(res, patches)
    assert cur[30, 40] > 5 * cur[5, 40]
    coarse = pairwise_current(res, patches, max_cells=1200)  # forces a factor-2 coarsening
    assert coarse.shape == res.shape
    assert coarse[30, 40] > 3 * coarse[5, 40]


def test_config_checks_connectivity(tmp_path: Path) -> None:
    base = (
        "name: x\nincidents: {path: a.csv, x: lon, y: lat, crs: 'EPSG:4326'}\n"
        "covariates: {lu: {path: lu.tif, type: categorical}, pop: {path: p.tif, "
        "type: continuous}}\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(
        base + "connectivity: {from_covariate: landuse, resistance: {1: 1}, sources: [1]}\n"
    )
    with pytest.raises(ConfigError, match="covariate 'landuse'"):
        load_config(path)
    path.write_text(
        base + "connectivity: {from_covariate: pop, resistance: {1: 1}, sources: [1]}\n"
    )
    with pytest.raises(ConfigError, match="to be categorical"):
        load_config(path)
    path.write_text(base + "connectivity: {from_covariate: lu, resistance: {1: 1}}\n")
    with pytest.raises(ConfigError, match="sources"):
        load_config(path)
    path.write_text(base + "connectivity: {from_covariate: lu, resistance: {1: 0}, sources: [1]}\n")
    with pytest.raises(ConfigError, match="positive"):
        load_config(path)
    path.write_text(
        base + "connectivity: {from_covariate: lu, resistance: {1: 1, 2: 50}, "
        "sources: [1], density_covariate: pop, density_factor: 0.01}\n"
    )
    cfg = load_config(path)
    assert cfg.connectivity is not None and cfg.connectivity.layers == [
        "current",
        "cost_distance",
        "corridor",
    ]


def test_layers_from_a_resistance_raster(tmp_path: Path) -> None:
    from affine import Affine
    from rasterio.crs import CRS

    from hwc_risk.config import ConnectivityConfig
    from hwc_risk.covariates import connectivity_layers
    from hwc_risk.grid import GridSpec
    from tests.conftest import write_raster

    conductance = np.full((30, 40), 0.5, np.float32)
    conductance[14:16, :] = 2.0
    sources = np.zeros((30, 40), np.uint8)
    sources[10:20, :3] = 1
    sources[10:20, -3:] = 1
    cfg = ConnectivityConfig(
        resistance_raster=write_raster(tmp_path / "c.tif", conductance),
        raster_is_conductance=True,
        sources_raster=write_raster(tmp_path / "s.tif", sources),
        min_patch_cells=5,
    )
    grid = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_000_000), 40, 30)
    layers = connectivity_layers(cfg, grid, {})
    assert set(layers) == {
        "connectivity_current",
        "connectivity_cost_distance",
        "connectivity_corridor",
    }
    cur = layers["connectivity_current"]
    assert cur[15, 20] > cur[3, 20]  # the conductive band carries the current
    cd = layers["connectivity_cost_distance"]
    assert cd[15, 1] == 0 and cd[15, 20] == pytest.approx(17 * 100 * 0.5, rel=1e-6)


def test_large_grids_solve_coarse_and_interpolate_in_chunks(tmp_path: Path) -> None:
    """Above max_cells the layers are solved on a coarsened grid and written chunk by
    chunk: same values in any chunking, close to the full-resolution solve."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from scipy import stats

    from hwc_risk.compute import Compute
    from hwc_risk.config import ConnectivityConfig, CovariateConfig, FeaturesConfig
    from hwc_risk.covariates import build_feature_stack
    from hwc_risk.grid import GridSpec
    from tests.conftest import write_raster

    h, w = 120, 150  # 18,000 cells
    cover = np.full((h, w), 2, np.uint8)  # farmland
    cover[:, :20] = 1  # forest west
    cover[:, -20:] = 1  # forest east
    cover[55:65, 20:-20] = 3  # a river valley between them, easy going
    cover[:6, :6] = 0  # nodata corner
    covs = {
        "lu": CovariateConfig(
            path=write_raster(tmp_path / "lu.tif", cover, nodata=0), type="categorical"
        )
    }
    grid = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_000_000), w, h)

    def layers(max_cells: int, chunk: int, folder: str) -> dict[str, np.ndarray]:
        conn = ConnectivityConfig(
            from_covariate="lu",
            resistance={1: 1.0, 2: 20.0, 3: 2.0},
            sources=[1],
            min_patch_cells=5,
            max_cells=max_cells,
        )
        stack = build_feature_stack(
            covs, grid, FeaturesConfig(), tmp_path / folder, conn, Compute(chunk_size=chunk)
        )
        out = {}
        for layer in stack.layers:
            if layer.kind == "connectivity":
                with rasterio.open(layer.path) as ds:
                    out[layer.name] = ds.read(1)
        return out

    fine = layers(1_000_000, 1024, "fine")
    coarse = layers(10_000, 1024, "coarse")  # factor 2
    chunked = layers(10_000, 32, "chunked")
    assert (
        set(coarse)
        == set(fine)
        == {
            "connectivity_current",
            "connectivity_cost_distance",
            "connectivity_corridor",
        }
    )
    valid = cover > 0
    for name in fine:
        np.testing.assert_array_equal(chunked[name], coarse[name])
        assert np.isfinite(coarse[name][valid]).all() and np.isnan(coarse[name][~valid]).all()
        rho = stats.spearmanr(coarse[name][valid], fine[name][valid]).statistic
        assert rho > 0.8, (name, rho)
    current = coarse["connectivity_current"]
    assert current[60, 75] > 3 * current[20, 75]  # the valley carries the current


def test_omniscape_method_config() -> None:
    from pydantic import ValidationError

    from hwc_risk.config import ConnectivityConfig

    cfg = ConnectivityConfig(resistance_raster="r.tif", sources_raster="s.tif", method="omniscape")
    assert cfg.layers == ["current", "flow_potential", "normalized_current"]
    assert ConnectivityConfig(resistance_raster="r.tif", sources_raster="s.tif").layers == [
        "current",
        "cost_distance",
        "corridor",
    ]
    with pytest.raises(ValidationError, match="set method: omniscape"):
        ConnectivityConfig(
            resistance_raster="r.tif", sources_raster="s.tif", layers=["flow_potential"]
        )


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_moving_window_layers_find_the_pinch_point(tmp_path: Path) -> None:
    """A wall with one gap: the moving window's current is channelled through the gap
    (normalised current well above 1) and is about 1 away from the wall."""
    from affine import Affine
    from rasterio.crs import CRS

    from hwc_risk.compute import Compute
    from hwc_risk.config import ConnectivityConfig
    from hwc_risk.covariates import connectivity_layers
    from hwc_risk.grid import GridSpec
    from tests.conftest import write_raster

    h, w = 31, 41
    resistance = np.ones((h, w), np.float32)
    resistance[:, 20] = -9999  # a wall (nodata: no movement) ...
    resistance[15, 20] = 1.0  # ... with one gap
    cfg = ConnectivityConfig(
        resistance_raster=write_raster(tmp_path / "r.tif", resistance, nodata=-9999),
        sources_raster=write_raster(tmp_path / "s.tif", np.ones((h, w), np.uint8)),
        method="omniscape",
        radius=800.0,  # 8 cells
        block_size=1,
        layers=["current", "flow_potential", "normalized_current", "cost_distance"],
    )
    grid = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_000_000), w, h)
    layers = connectivity_layers(cfg, grid, {}, Compute(workers=2))
    assert set(layers) == {
        "connectivity_omniscape_current",
        "connectivity_flow_potential",
        "connectivity_normalized_current",
        "connectivity_cost_distance",
    }
    norm = layers["connectivity_normalized_current"]
    assert norm[15, 20] > 4.0  # channelled through the gap
    assert np.all(norm[np.arange(h) != 15, 20] == 0)  # nothing crosses the wall elsewhere
    assert 0.9 < norm[15, 8] < 1.1  # open ground, far from the wall
    pot = layers["connectivity_flow_potential"]
    assert pot[15, 20] == pytest.approx(pot[5, 20], rel=0.3)  # no barriers in the null model
