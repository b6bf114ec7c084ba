"""Risk through time: every month's run of a name as one CF-1.8 NetCDF cube and a CSV.

``hwc-risk cube OUTPUT_DIR/NAME`` gathers the complete run folders of a name:

- ``risk_cube.nc``: ``risk`` and ``risk_class`` (time x y x x) of every run
  month, and ``expected_incidents`` for every month a run forecast (from each
  ``forecast.tif``; where two runs forecast the same month, the most recent
  run's, i.e. the shortest lead, with ``forecast_lead`` saying which), on one
  time axis with CF time bounds. Projected ``x``/``y`` cell centres and a
  ``spatial_ref`` grid mapping (CF parameters, ``crs_wkt`` with its EPSG
  identifier, GDAL's ``spatial_ref`` and ``GeoTransform``), so GDAL (and
  with it QGIS, as a layer with a time dimension) and ``xarray`` with
  rioxarray read the CRS. DEFLATE-compressed, chunked one month by 256 x 256
  cells, written a month and a chunk at a time (memory does not grow with the
  number of months or the grid).
- ``monthly_figures.csv``: per month, the district, each risk class and each
  hotspot: cells, area, mean risk, incidents (the month's for the district;
  to date inside each hotspot, as ``hotspots.gpkg`` counts them) and the
  expected incidents of the next month inside it, with its interval where the
  run's ``metrics.json`` has one.

Runs not complete, without ``risk.tif``, or on another grid than the latest
run (a run from another config, e.g. reports only on a coarser grid) are left
out, each with a note; the cube is about one grid.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from . import __version__
from .classes import RISK_CLASSES
from .errors import InputError
from .export.forecast import forecast_bands
from .grid import GridSpec
from .temporal.months import as_month, month_label
from .zonal import Zone, zone_totals

__all__ = ["CubeResult", "RunMonth", "build_cube", "find_runs"]

CUBE_NAME = "risk_cube.nc"
CSV_NAME = "monthly_figures.csv"
CHUNK = 256
_MONTH_DIR = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class RunMonth:
    """One complete run folder usable in the cube."""

    month: np.datetime64
    folder: Path
    forecast: dict[np.datetime64, int]  # month -> band of forecast.tif


@dataclass(frozen=True)
class CubeResult:
    """What :func:`build_cube` wrote and what it left out."""

    cube: Path
    csv: Path
    runs: tuple[RunMonth, ...]
    times: tuple[np.datetime64, ...]
    notes: tuple[str, ...]


def _grid_of(path: Path) -> GridSpec:
    with rasterio.open(path) as ds:
        return GridSpec.from_dataset(ds)


def _describe(g: GridSpec) -> str:
    return f"{g.width} x {g.height} cells of {g.cell_size:g} in {g.crs.to_string()}"


def find_runs(name_dir: Path) -> tuple[list[RunMonth], GridSpec, list[str]]:
    """The complete runs under ``name_dir`` on the latest run's grid, that grid, and notes."""
    if not name_dir.is_dir():
        raise InputError(
            f"{name_dir}: no such folder; give OUTPUT_DIR/NAME, the folder holding a "
            "name's month folders (e.g. out/sample-district)"
        )
    notes: list[str] = []
    usable: list[Path] = []
    for folder in sorted(p for p in name_dir.iterdir() if p.is_dir() and _MONTH_DIR.match(p.name)):
        status = _status(folder)
        if status != "complete":
            notes.append(f"{folder.name}: left out, the run is {status}")
        elif not (folder / "risk.tif").is_file():
            notes.append(f"{folder.name}: left out, it has no risk.tif")
        else:
            usable.append(folder)
    if not usable:
        raise InputError(
            f"{name_dir}: no complete run folder (YYYY-MM with risk.tif); run "
            "`hwc-risk run CONFIG --month YYYY-MM` first"
        )
    grid = _grid_of(usable[-1] / "risk.tif")
    runs = []
    for folder in usable:
        other = _grid_of(folder / "risk.tif")
        if other != grid:
            notes.append(
                f"{folder.name}: left out, its grid ({_describe(other)}) is not the latest "
                f"run's ({_describe(grid)})"
            )
            continue
        fc = folder / "forecast.tif"
        runs.append(
            RunMonth(
                month=as_month(folder.name),
                folder=folder,
                forecast=forecast_bands(fc) if fc.is_file() else {},
            )
        )
    return runs, grid, notes


def _status(folder: Path) -> str:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "without a readable manifest.json"
    return str(manifest.get("status", "of unknown status"))


def _forecast_sources(runs: list[RunMonth]) -> dict[np.datetime64, tuple[RunMonth, int]]:
    """For each forecast month, the run with the shortest lead and its band."""
    best: dict[np.datetime64, tuple[RunMonth, int]] = {}
    for run in runs:  # in month order: a later run replaces an earlier one
        for month, band in run.forecast.items():
            best[month] = (run, band)
    return best


def build_cube(name_dir: Path) -> CubeResult:
    """Write ``risk_cube.nc`` and ``monthly_figures.csv`` into ``name_dir`` (each written
    beside itself and renamed when complete)."""
    runs, grid, notes = find_runs(name_dir)
    forecasts = _forecast_sources(runs)
    times = sorted({r.month for r in runs} | set(forecasts))
    cube = name_dir / CUBE_NAME
    part = cube.with_name(cube.name + ".part")
    try:
        _write_netcdf(part, grid, runs, forecasts, times, notes)
        part.replace(cube)
    finally:
        part.unlink(missing_ok=True)
    table = name_dir / CSV_NAME
    _write_csv(table, grid, runs)
    return CubeResult(
        cube=cube, csv=table, runs=tuple(runs), times=tuple(times), notes=tuple(notes)
    )


# -- NetCDF ---------------------------------------------------------------------------------


def _days_since_epoch(month: np.datetime64) -> float:
    return float(np.asarray(month).astype("datetime64[D]").astype(np.int64))


def _grid_mapping(nc: Any, grid: GridSpec) -> None:
    from pyproj import CRS as ProjCRS

    crs = ProjCRS.from_user_input(grid.crs.to_wkt())
    var = nc.createVariable("spatial_ref", "i4")
    attrs = {k: v for k, v in crs.to_cf().items() if v is not None}
    epsg = grid.crs.to_epsg()
    wkt = crs.to_wkt()  # WKT2 with ID["EPSG", code] when the CRS has one
    attrs.update(
        crs_wkt=wkt,
        spatial_ref=wkt,
        GeoTransform=" ".join(str(v) for v in grid.transform.to_gdal()),
    )
    if epsg is not None:
        attrs["epsg_code"] = f"EPSG:{epsg}"
    var.setncatts(attrs)


def _coordinates(nc: Any, grid: GridSpec, times: list[np.datetime64]) -> None:
    nc.createDimension("time", len(times))
    nc.createDimension("y", grid.height)
    nc.createDimension("x", grid.width)
    nc.createDimension("nv", 2)
    t = nc.createVariable("time", "f8", ("time",))
    t.setncatts(
        {
            "standard_name": "time",
            "long_name": "month (start)",
            "units": "days since 1970-01-01 00:00:00",
            "calendar": "standard",
            "axis": "T",
            "bounds": "time_bnds",
        }
    )
    t[:] = [_days_since_epoch(m) for m in times]
    bounds = nc.createVariable("time_bnds", "f8", ("time", "nv"))
    bounds[:] = [[_days_since_epoch(m), _days_since_epoch(m + 1)] for m in times]
    units = grid.crs.linear_units or "m"
    rows, cols = np.arange(grid.height), np.arange(grid.width)
    xs, _ = grid.cell_centres(np.zeros(grid.width), cols)
    _, ys = grid.cell_centres(rows, np.zeros(grid.height))
    for name, values, std in (
        ("x", xs, "projection_x_coordinate"),
        ("y", ys, "projection_y_coordinate"),
    ):
        var = nc.createVariable(name, "f8", (name,))
        var.setncatts(
            {
                "standard_name": std,
                "long_name": f"{name} coordinate of cell centre",
                "units": "m" if units in ("metre", "meter") else units,
                "axis": name.upper(),
            }
        )
        var[:] = values


def _data_variables(nc: Any, grid: GridSpec) -> dict[str, Any]:
    chunks = (1, min(CHUNK, grid.height), min(CHUNK, grid.width))
    common = {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": chunks}
    dims = ("time", "y", "x")
    risk = nc.createVariable("risk", "f4", dims, fill_value=np.float32(np.nan), **common)
    risk.setncatts(
        {
            "long_name": "relative conflict risk",
            "units": "1",
            "valid_range": np.array([0.0, 1.0], dtype=np.float32),
            "grid_mapping": "spatial_ref",
        }
    )
    classes = nc.createVariable("risk_class", "u1", dims, fill_value=np.uint8(0), **common)
    ordered = sorted(RISK_CLASSES, key=lambda c: c.code)
    classes.setncatts(
        {
            "long_name": "risk class (share of the area)",
            "flag_values": np.array([c.code for c in ordered], dtype=np.uint8),
            "flag_meanings": " ".join(c.label.replace(" ", "_") for c in ordered),
            "grid_mapping": "spatial_ref",
        }
    )
    expected = nc.createVariable(
        "expected_incidents", "f4", dims, fill_value=np.float32(np.nan), **common
    )
    expected.setncatts(
        {
            "long_name": "expected incidents per cell in the month (forecast)",
            "units": "1",
            "cell_methods": "time: sum",
            "grid_mapping": "spatial_ref",
        }
    )
    lead = nc.createVariable("forecast_lead", "i2", ("time",), fill_value=np.int16(-1))
    lead.setncatts(
        {"long_name": "months between the run that forecast the month and the month", "units": "1"}
    )
    return {"risk": risk, "risk_class": classes, "expected_incidents": expected, "lead": lead}


def _copy_band(var: Any, index: int, path: Path, band: int, grid: GridSpec, dtype: str) -> None:
    with rasterio.open(path) as src:
        for r0 in range(0, grid.height, CHUNK):
            win = Window(0, r0, grid.width, min(CHUNK, grid.height - r0))
            data = src.read(band, window=win)
            if dtype == "f4" and src.nodata is not None and not np.isnan(src.nodata):
                data = np.where(data == src.nodata, np.nan, data)
            var[index, r0 : r0 + int(win.height), :] = data.astype(dtype)


def _write_netcdf(
    path: Path,
    grid: GridSpec,
    runs: list[RunMonth],
    forecasts: dict[np.datetime64, tuple[RunMonth, int]],
    times: list[np.datetime64],
    notes: list[str],
) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.setncatts(
            {
                "Conventions": "CF-1.8",
                "title": f"hwc-risk: conflict risk by month ({runs[-1].folder.parent.name})",
                "source": f"hwc-risk {__version__}",
                "history": f"hwc-risk cube from {len(runs)} run folder(s)",
                "comment": " ".join(notes) or "every complete run folder is in the cube",
            }
        )
        _coordinates(nc, grid, times)
        _grid_mapping(nc, grid)
        var = _data_variables(nc, grid)
        index = {m: i for i, m in enumerate(times)}
        for run in runs:
            i = index[run.month]
            _copy_band(var["risk"], i, run.folder / "risk.tif", 1, grid, "f4")
            if (run.folder / "risk_class.tif").is_file():
                _copy_band(var["risk_class"], i, run.folder / "risk_class.tif", 1, grid, "u1")
        for month, (run, band) in forecasts.items():
            i = index[month]
            _copy_band(var["expected_incidents"], i, run.folder / "forecast.tif", band, grid, "f4")
            var["lead"][i] = int((month - run.month).astype(int))


# -- CSV --------------------------------------------------------------------------------

COLUMNS = [
    "month",
    "zone",
    "id",
    "label",
    "cells",
    "area_km2",
    "mean_risk",
    "incidents_in_month",
    "incidents_to_date",
    "next_month",
    "expected_next_month",
    "expected_lower",
    "expected_upper",
]


def _run_json(folder: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _forecast_intervals(metrics: dict[str, Any], month: str) -> dict[tuple[str, str], Any]:
    """(zone, label) -> interval JSON from the run's ``forecast`` section, for ``month``."""
    out: dict[tuple[str, str], Any] = {}
    for entry in (metrics.get("forecast") or {}).get("months", []):
        if entry.get("month") != month:
            continue
        out[("district", "district")] = entry
        for label, iv in (entry.get("by_class") or {}).items():
            out[("class", label)] = iv
        for label, iv in (entry.get("by_hotspot") or {}).items():
            out[("hotspot", f"hotspot {label}")] = iv
    return out


def _month_rows(run: RunMonth, grid: GridSpec) -> list[dict[str, Any]]:
    import geopandas as gpd

    layers = {"risk": (run.folder / "risk.tif", 1)}
    next_month = run.month + 1
    if next_month in run.forecast:
        layers["expected"] = (run.folder / "forecast.tif", run.forecast[next_month])
    spots_path = run.folder / "hotspots.gpkg"
    spots = gpd.read_file(spots_path, layer="hotspots") if spots_path.is_file() else None
    classes = run.folder / "risk_class.tif"
    zones = zone_totals(grid, layers, classes if classes.is_file() else None, spots)
    manifest = _run_json(run.folder, "manifest.json")
    used = (manifest.get("incidents") or {}).get("used_by_month", {})
    label = month_label(run.month)
    intervals = _forecast_intervals(_run_json(run.folder, "metrics.json"), month_label(next_month))
    to_date = (
        dict(zip(spots["hotspot"].astype(int), spots["incidents"], strict=True))
        if spots is not None and "incidents" in spots
        else {}
    )
    return [
        _row(z, label, grid, used.get(label), to_date, intervals, next_month, layers) for z in zones
    ]


def _row(
    z: Zone,
    month: str,
    grid: GridSpec,
    in_month: Any,
    to_date: dict[int, Any],
    intervals: dict[tuple[str, str], Any],
    next_month: np.datetime64,
    layers: dict[str, Any],
) -> dict[str, Any]:
    iv = intervals.get((z.kind, z.label)) or {}
    has_forecast = "expected" in layers
    return {
        "month": month,
        "zone": z.kind,
        "id": z.id,
        "label": z.label,
        "cells": z.cells,
        "area_km2": round(z.cells * grid.res[0] * grid.res[1] / 1e6, 4),
        "mean_risk": round(z.mean("risk"), 6) if z.counts.get("risk") else "",
        "incidents_in_month": in_month if z.kind == "district" and in_month is not None else "",
        "incidents_to_date": to_date.get(z.id, "") if z.kind == "hotspot" else "",
        "next_month": month_label(next_month) if has_forecast else "",
        "expected_next_month": round(z.sums.get("expected", 0.0), 3) if has_forecast else "",
        "expected_lower": iv.get("lower", ""),
        "expected_upper": iv.get("upper", ""),
    }


def _write_csv(path: Path, grid: GridSpec, runs: list[RunMonth]) -> None:
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for run in runs:
                writer.writerows(_month_rows(run, grid))
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
