from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from hwc_risk.config import CovariateConfig, GridConfig
from hwc_risk.errors import CRSError, InputError, MissingFileError, NoOverlapError
from hwc_risk.grid import GridSpec, resolve_grid
from hwc_risk.rasters import RasterSource, align_array
from tests.conftest import write_raster

T = Affine(100, 0, 500_000, 0, -100, 9_000_000)


def cov(
    path: Path,
    kind: str = "continuous",
    band: int = 1,
    name: str = "x",
    nodata: float | None = None,
) -> RasterSource:
    """The source of a covariate ``name`` of the config."""
    config = CovariateConfig(path=path, type=kind, band=band, nodata=nodata)  # type: ignore[arg-type]
    return RasterSource.of_covariate(name, config)


def test_default_grid_is_the_first_covariate(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "a.tif", np.zeros((20, 30), np.float32))
    grid = resolve_grid(GridConfig(), cov(path, name="a"))
    assert grid.shape == (20, 30)
    assert grid.transform == T
    assert grid.epsg == 32736


def test_grid_from_config_resolution_and_crs(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "a.tif", np.zeros((20, 30), np.float32))
    grid = resolve_grid(GridConfig(resolution=250), cov(path, name="a"))
    assert grid.res == (250, 250)
    assert grid.shape == (8, 12)  # 2000 m x 3000 m, rounded up
    assert grid.bounds[0] == 500_000 and grid.bounds[3] == 9_000_000

    other = resolve_grid(GridConfig(crs="EPSG:32737", resolution=100), cov(path, name="a"))
    assert other.epsg == 32737
    # the same place in the neighbouring zone: about the same size in cells
    assert abs(other.width - 30) <= 2 and abs(other.height - 20) <= 2


def test_geographic_grid_is_refused(tmp_path: Path) -> None:
    path = write_raster(
        tmp_path / "g.tif",
        np.zeros((5, 5), np.float32),
        crs="EPSG:4326",
        transform=Affine(0.01, 0, 34, 0, -0.01, -2),
    )
    with pytest.raises(CRSError, match="projected CRS"):
        resolve_grid(GridConfig(), cov(path, name="g"))


def test_unknown_crs_string(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "a.tif", np.zeros((5, 5), np.float32))
    with pytest.raises(CRSError, match=r"grid\.crs 'EPSG:999999'"):
        resolve_grid(GridConfig(crs="EPSG:999999"), cov(path, name="a"))


def test_raster_without_crs(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "a.tif", np.zeros((5, 5), np.float32), crs=None)
    with pytest.raises(CRSError, match="has no CRS"):
        resolve_grid(GridConfig(), cov(path, name="a"))


def test_missing_and_unreadable_rasters(tmp_path: Path) -> None:
    grid = GridSpec(rasterio.crs.CRS.from_epsg(32736), T, 10, 10)
    with pytest.raises(MissingFileError, match=r"covariates\.x\.path"):
        align_array(cov(tmp_path / "none.tif", name="x"), grid)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"this is not a tiff")
    with pytest.raises(InputError, match="not a raster GDAL can read"):
        align_array(cov(bad, name="x"), grid)


def test_band_selection_is_one_based(tmp_path: Path) -> None:
    data = np.stack([np.full((10, 10), 1.0), np.full((10, 10), 2.0)]).astype(np.float32)
    path = write_raster(tmp_path / "two.tif", data)
    grid = GridSpec(rasterio.crs.CRS.from_epsg(32736), T, 10, 10)
    assert np.all(align_array(cov(path, band=2, name="x"), grid) == 2.0)
    assert np.all(align_array(cov(path, band=1, name="x"), grid) == 1.0)
    with pytest.raises(InputError, match="band is 3 but the raster has 2"):
        align_array(cov(path, band=3, name="x"), grid)


def test_categorical_alignment_keeps_codes_across_crs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(1, 5, size=(40, 40)).astype(np.uint8)
    path = write_raster(tmp_path / "lu.tif", codes, nodata=0)
    grid = resolve_grid(GridConfig(crs="EPSG:32737", resolution=130), cov(path, name="lu"))
    out = align_array(cov(path, "categorical", name="lu"), grid)
    vals = np.unique(out[np.isfinite(out)])
    assert set(vals.tolist()) <= {1.0, 2.0, 3.0, 4.0}  # nearest: no blended codes


def test_continuous_average_when_coarsening(tmp_path: Path) -> None:
    data = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    path = write_raster(tmp_path / "c.tif", data)
    grid = GridSpec(
        rasterio.crs.CRS.from_epsg(32736), Affine(400, 0, 500_000, 0, -400, 9_000_000), 4, 4
    )
    out = align_array(cov(path, name="c"), grid)
    expected = data.reshape(4, 4, 4, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_continuous_bilinear_when_refining(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(10, dtype=np.float32) * 10, (10, 1))  # +10 per 100 m eastwards
    path = write_raster(tmp_path / "r.tif", ramp)
    # a grid of 50 m cells: bilinear interpolation of a linear ramp is exact inside
    grid = GridSpec(
        rasterio.crs.CRS.from_epsg(32736), Affine(50, 0, 500_000, 0, -50, 9_000_000), 20, 20
    )
    out = align_array(cov(path, name="r"), grid)
    centres_x = (np.arange(20) + 0.5) * 50  # metres from the west edge
    expected = (centres_x - 50) / 100 * 10  # ramp value at a cell centre
    np.testing.assert_allclose(out[5, 2:18], expected[2:18], atol=1e-4)


def test_nodata_is_respected(tmp_path: Path) -> None:
    data = np.full((10, 10), 5.0, dtype=np.float32)
    data[:, :3] = -9999
    path = write_raster(tmp_path / "n.tif", data, nodata=-9999)
    grid = GridSpec(rasterio.crs.CRS.from_epsg(32736), T, 10, 10)
    out = align_array(cov(path, name="n"), grid)
    assert np.isnan(out[:, :3]).all()
    assert (out[:, 3:] == 5.0).all()  # no -9999 bleeding into valid cells
    # the config's nodata overrides the raster's
    over = CovariateConfig(path=path, type="continuous", nodata=5.0)
    out2 = align_array(RasterSource.of_covariate("n", over), grid)
    assert np.isnan(out2[:, 3:]).all()
    assert (out2[:, :3] == -9999).all()


def test_non_overlapping_raster(tmp_path: Path) -> None:
    far = Affine(100, 0, 900_000, 0, -100, 8_000_000)
    path = write_raster(tmp_path / "far.tif", np.ones((10, 10), np.float32), transform=far)
    grid = GridSpec(rasterio.crs.CRS.from_epsg(32736), T, 10, 10)
    with pytest.raises(NoOverlapError, match="does not overlap the analysis grid"):
        align_array(cov(path, name="far"), grid)


def test_all_nodata_raster(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "e.tif", np.full((10, 10), -1, np.float32), nodata=-1)
    grid = GridSpec(rasterio.crs.CRS.from_epsg(32736), T, 10, 10)
    with pytest.raises(NoOverlapError, match="no valid data"):
        align_array(cov(path, name="e"), grid)


def test_rowcol_and_chunks() -> None:
    from hwc_risk.compute import Compute

    grid = GridSpec(rasterio.crs.CRS.from_epsg(32736), T, 10, 7)
    rows, cols, inside = grid.rowcol(
        np.array([500_050.0, 499_999.0]), np.array([8_999_950.0, 8_999_950.0])
    )
    assert inside.tolist() == [True, False]
    assert (rows[0], cols[0]) == (0, 0)
    covered = np.zeros(grid.shape, int)
    for w in Compute(chunk_size=3).windows(grid.shape):  # the chunks a run computes
        covered[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (covered == 1).all()
