"""``hwc-risk cube`` on run folders made by the real pipeline."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import geopandas as gpd
import netCDF4
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 - the .rio accessor
import xarray as xr

from hwc_risk.export.forecast import forecast_bands, write_forecast_tif
from hwc_risk.grid import GridSpec
from hwc_risk.synthetic import SyntheticArea
from hwc_risk.temporal import as_month, month_label
from hwc_risk.zonal import scale_to_total
from tests.conftest import cli, edit_config, run_cli


def _add_forecast(run_dir: Path, totals: list[float]) -> None:
    """A forecast.tif as the forecast stage writes it: the run's risk scaled to each total."""
    with rasterio.open(run_dir / "risk.tif") as ds:
        grid = GridSpec.from_dataset(ds)
    month = as_month(run_dir.name)
    layers = []
    for k, total in enumerate(totals, start=1):
        layers.append(
            (month + k, scale_to_total(run_dir / "risk.tif", total, run_dir / f"f{k}.tif", grid))
        )
    write_forecast_tif(grid, month, layers, run_dir / "forecast.tif")
    for _, path in layers:
        path.unlink()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two monthly runs on one grid with forecasts, a run on a coarser grid, and a folder
    a crashed old version left without a manifest."""
    folder = tmp_path_factory.mktemp("cube-area")
    config = SyntheticArea(size=40, cell_size=250.0, seed=3).write(
        folder,
        n_incidents=150,
        n_months=14,
        model="glm",
        extra_config={"background": {"n_points": 1500}, "validation": {"folds": 3}},
    )
    for month in ("2025-01", "2025-02"):
        done = run_cli("run", config, "--month", month, "--quiet")
        assert done.returncode == 0, done.stderr
    coarse = folder / "coarse.yaml"
    shutil.copy(config, coarse)
    edit_config(coarse, grid={"resolution": 1000})
    done = run_cli("run", coarse, "--month", "2024-12", "--quiet")
    assert done.returncode == 0, done.stderr
    name_dir = folder / "out" / "synthetic"
    _add_forecast(name_dir / "2025-01", [11.0, 13.0])
    _add_forecast(name_dir / "2025-02", [12.5, 9.0])
    (name_dir / "2024-10").mkdir()
    return name_dir


@pytest.mark.slow  # reads the module's runs
def test_cube_command_writes_cf_netcdf_and_csv(runs: Path) -> None:
    done = run_cli("cube", runs)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(runs / "risk_cube.nc"), str(runs / "monthly_figures.csv")]
    assert "2024-12: left out, its grid (10 x 10 cells of 1000" in done.stderr
    assert "2024-10: left out, the run is without a readable manifest.json" in done.stderr
    assert "2 run(s), 4 month(s) from 2025-01 to 2025-04" in done.stderr

    ds = xr.open_dataset(runs / "risk_cube.nc", decode_coords="all")
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert [str(t)[:7] for t in ds.time.values] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert ds.rio.crs.to_epsg() == 32633
    with rasterio.open(runs / "2025-02" / "risk.tif") as src:
        risk = src.read(1)
        assert tuple(ds.rio.transform()) == tuple(src.transform)
    assert np.array_equal(ds.risk.isel(time=1).values, risk, equal_nan=True)
    with rasterio.open(runs / "2025-01" / "risk_class.tif") as src:
        classes = src.read(1)
    got = ds.risk_class.isel(time=0).fillna(0).values.astype(np.uint8)
    assert np.array_equal(got, classes)
    assert ds.risk.isel(time=2).isnull().all()  # a forecast month, no run yet
    # each month's forecast comes from the latest run that forecast it
    sums = ds.expected_incidents.sum(dim=("y", "x")).values
    assert np.allclose(sums, [0.0, 11.0, 12.5, 9.0], atol=1e-3)
    assert ds.forecast_lead.values[1:].tolist() == [1, 1, 2]

    with netCDF4.Dataset(runs / "risk_cube.nc") as nc:
        var = nc["risk"]
        assert var.filters()["zlib"] and var.chunking() == [1, 40, 40]
        assert "EPSG" in nc["spatial_ref"].crs_wkt and nc["spatial_ref"].epsg_code == "EPSG:32633"
    # GDAL's netCDF driver (what QGIS opens it with): the CRS and one band a month
    with rasterio.open(f"netcdf:{runs / 'risk_cube.nc'}:risk") as gd:
        assert gd.crs.to_epsg() == 32633 and gd.count == 4
        assert gd.tags(2)["NETCDF_DIM_time"] == str(
            int((np.datetime64("2025-02-01") - np.datetime64("1970-01-01")).astype(int))
        )


@pytest.mark.slow  # reads the module's runs
def test_monthly_figures(runs: Path) -> None:
    done = run_cli("cube", runs)
    assert done.returncode == 0, done.stderr
    with open(runs / "monthly_figures.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["month"] for r in rows} == {"2025-01", "2025-02"}
    for month in ("2025-01", "2025-02"):
        mine = [r for r in rows if r["month"] == month]
        district = next(r for r in mine if r["zone"] == "district")
        classes = [r for r in mine if r["zone"] == "class"]
        spots = [r for r in mine if r["zone"] == "hotspot"]
        manifest = json.loads((runs / month / "manifest.json").read_text())
        assert int(district["incidents_in_month"]) == manifest["incidents"]["used_by_month"][month]
        assert sum(int(r["cells"]) for r in classes) == int(district["cells"])
        very_high = next(r for r in classes if r["label"] == "very high")
        assert int(very_high["cells"]) == pytest.approx(0.05 * int(district["cells"]), abs=1)
        # the next month's expected incidents add up over the classes to the forecast total
        total = {"2025-01": 11.0, "2025-02": 12.5}[month]
        assert district["next_month"] == month_label(as_month(month) + 1)
        assert float(district["expected_next_month"]) == pytest.approx(total, abs=1e-3)
        # each class's figure is rounded to 0.001: four of them sum within 0.002
        assert sum(float(r["expected_next_month"]) for r in classes) == pytest.approx(
            total, abs=2e-3
        )
        assert float(very_high["mean_risk"]) > float(district["mean_risk"])
        gpkg = gpd.read_file(runs / month / "hotspots.gpkg", layer="hotspots")
        assert len(spots) == len(gpkg)
        assert [int(r["cells"]) for r in spots] == gpkg["cells"].astype(int).tolist()
        assert [int(r["incidents_to_date"]) for r in spots] == gpkg["incidents"].astype(
            int
        ).tolist()


def test_cube_bad_folders(tmp_path: Path) -> None:
    missing = cli("cube", tmp_path / "nowhere")
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "empty" / "2025-01").mkdir(parents=True)
    empty = cli("cube", tmp_path / "empty")
    assert empty.returncode == 2 and "no complete run folder" in empty.stderr
    assert not (tmp_path / "empty" / "risk_cube.nc").exists()


@pytest.mark.slow  # reads the module's runs
def test_forecast_tif_round_trip(runs: Path) -> None:
    bands = forecast_bands(runs / "2025-02" / "forecast.tif")
    assert {month_label(m): b for m, b in bands.items()} == {"2025-03": 1, "2025-04": 2}
    with rasterio.open(runs / "2025-02" / "forecast.tif") as ds:
        assert ds.tags()["forecast_issued"] == "2025-02"
        assert ds.descriptions == ("expected incidents 2025-03", "expected incidents 2025-04")
        assert ds.overviews(1) == [] or ds.profile["tiled"]
