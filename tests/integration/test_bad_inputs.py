"""A corpus of bad inputs: each must give exit code 2 and one line naming the problem.

Each case takes a valid small study area, breaks one thing, and runs the real
command line (in-process, for speed) with both ``validate`` and ``run``: both must
stop with exit code 2 and the same one line, which names the file, key or value at
fault and says what to do; there must be no traceback, and no run folder may
appear. The tests at the end run the installed ``hwc-risk`` command in a
subprocess, to prove the console script and its exit codes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from affine import Affine

from hwc_risk.export.report import sha256
from tests.conftest import CliResult, cli, edit_config, run_cli, write_raster

Breaker = Callable[[Path], list[str]]  # breaks the area in place; returns extra CLI args


def _replace_in_config(old: str, new: str) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        cfg.write_text(cfg.read_text().replace(old, new, 1))
        return []

    return breaker


def _edit(**changes: object) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        edit_config(cfg, **changes)
        return []

    return breaker


def _without(key: str) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        data = yaml.safe_load(cfg.read_text())
        del data[key]
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        return []

    return breaker


def _write_incidents(text: str | bytes, name: str = "incidents.csv") -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        path = cfg.parent / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        if name != "incidents.csv":
            edit_config(cfg, incidents={"path": name})
        return []

    return breaker


def _raster(name: str, data: np.ndarray, **kw: object) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        write_raster(cfg.parent / name, data, **kw)  # type: ignore[arg-type]
        return []

    return breaker


def _export(name: str, text: str, fmt: str) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        (cfg.parent / name).write_text(text)
        edit_config(cfg, incidents={"path": name, "format": fmt})
        return []

    return breaker


def _corrupt(name: str) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        (cfg.parent / name).write_bytes(b"II*\x00 not a real TIFF")
        return []

    return breaker


def _config_text(text: str) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        cfg.write_text(text)
        return []

    return breaker


def _no_config(cfg: Path) -> list[str]:
    cfg.unlink()
    return []


def _args(*extra: str) -> Breaker:
    return lambda cfg: list(extra)


def _rows(transform: Callable[[list[str]], list[str]]) -> Breaker:
    def breaker(cfg: Path) -> list[str]:
        path = cfg.parent / "incidents.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], *transform(lines[1:])]) + "\n")
        return []

    return breaker


def _swap_lonlat(rows: list[str]) -> list[str]:
    out = []
    for row in rows:
        parts = row.split(",")
        parts[2], parts[3] = parts[3], parts[2]
        out.append(",".join(parts))
    return out


def _monthly(
    kind: str,
    months: list[str] | None = None,
    crs: bool = True,
    **keys: object,
) -> Breaker:
    """Add a monthly covariate ``green`` on the small area's grid: a NetCDF ``cube``
    (``months`` its time steps, ``crs`` whether it has a grid mapping), ``bands`` (a
    GeoTIFF whose first band has no month) or a ``template`` matching no file."""

    def breaker(cfg: Path) -> list[str]:
        folder = cfg.parent
        if kind == "cube":
            path = "green.nc"
            _write_cube(folder / path, months or [], crs)
        elif kind == "bands":
            path = "green.tif"
            with rasterio.open(folder / "cover.tif") as ds:
                profile = {**ds.profile, "count": 2, "dtype": "float32", "nodata": None}
            with rasterio.open(folder / path, "w", **profile) as dst:
                dst.write(np.ones((2, 48, 48), np.float32))
                dst.set_band_description(2, "2024-02")
            keys.setdefault("monthly", True)
        else:
            path = "green/green_{month}.tif"
        data = yaml.safe_load(cfg.read_text())
        data["covariates"]["green"] = {"path": path, "type": "continuous", **keys}
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        return []

    return breaker


def _write_cube(path: Path, months: list[str], crs: bool) -> None:
    import rioxarray  # noqa: F401 - the .rio accessor
    import xarray as xr

    with rasterio.open(path.parent / "cover.tif") as ds:
        t = ds.transform
        xs = t.c + (np.arange(ds.width) + 0.5) * t.a
        ys = t.f + (np.arange(ds.height) + 0.5) * t.e
        epsg = ds.crs.to_epsg()
    times = np.array([np.datetime64(m) for m in months], dtype="datetime64[ns]")
    data = np.ones((len(months), ys.size, xs.size), np.float32)
    ds_out = xr.Dataset(
        {"green": (("time", "y", "x"), data)}, coords={"time": times, "y": ys, "x": xs}
    )
    if crs:
        ds_out = ds_out.rio.write_crs(f"EPSG:{epsg}")
    ds_out.to_netcdf(path)


def _months(first: str, last: str) -> list[str]:
    return [str(m) + "-15" for m in np.arange(np.datetime64(first), np.datetime64(last) + 1)]


ELEV = np.ones((48, 48), np.float32)
UTM33 = Affine(250, 0, 500_000, 0, -250, 5_200_000)

# "{config}" in a needle stands for the config's path
CASES: dict[str, tuple[Breaker, list[str]]] = {
    "config-missing": (_no_config, ["{config}", "config file not found"]),
    "config-empty": (_config_text(""), ["{config}"]),
    "config-keys-missing": (_config_text("name: x\n"), ["{config}"]),
    "config-a-list": (_config_text("- a\n- b\n"), ["{config}"]),
    "config-typo-top": (_replace_in_config("model:", "modle:"), ["unknown key 'modle'"]),
    "config-typo-nested": (
        _replace_in_config("date: date", "dat: date"),
        ["unknown key 'incidents.dat'"],
    ),
    "config-yaml-syntax": (
        _replace_in_config("name: synthetic", "name: [oops"),
        ["not valid YAML"],
    ),
    "config-wrong-type": (_edit(validation={"folds": "five"}), ["validation.folds"]),
    "config-bad-name": (_edit(name="my district/2"), ["key 'name'"]),
    "config-bad-timezone": (
        _edit(incidents={"timezone": "Mars/Olympus"}),
        ["Mars/Olympus", "IANA"],
    ),
    "config-bad-generalisation": (_edit(outputs={"generalise_incidents": "1 mile"}), ["1km"]),
    "config-connectivity-unknown-covariate": (
        _edit(connectivity={"from_covariate": "landuse", "resistance": {1: 1}, "sources": [1]}),
        ["covariate 'landuse'"],
    ),
    "incidents-missing": (
        _edit(incidents={"path": "exports/march.csv"}),
        ["march.csv", "not found"],
    ),
    "incidents-glob-empty": (_edit(incidents={"path": "exports/*.csv"}), ["no file matches"]),
    "incidents-empty-file": (_write_incidents(""), ["incidents.csv", "empty"]),
    "incidents-header-only": (_write_incidents("id,date,lon,lat,species,kind\n"), ["no rows"]),
    "incidents-latin1": (
        _write_incidents(
            "id,date,lon,lat,species,kind\nx,2025-01-01,14.5,47,loup,attaqu\xe9\n".encode("latin-1")
        ),
        ["not UTF-8"],
    ),
    "incidents-excel": (
        _write_incidents(b"PK\x03\x04", "incidents.xlsx"),
        ["unsupported", ".xlsx"],
    ),
    "incidents-missing-date-column": (
        _edit(incidents={"date": "event_date"}),
        ["'event_date'", "incidents.date"],
    ),
    "incidents-missing-x-column": (
        _edit(incidents={"x": "longitude"}),
        ["'longitude'", "incidents.x"],
    ),
    "incidents-crs-absent": (
        _edit(incidents={"crs": None}),
        ["incidents.crs is missing", 'crs: "EPSG:4326"'],
    ),
    "incidents-crs-unknown": (
        _edit(incidents={"crs": "EPSG:4327001"}),
        ["incidents.crs 'EPSG:4327001'", "EPSG code"],
    ),
    "incidents-earthranger-truncated": (
        _export("events.json", '{"data": {"results": [{"id": 1,', "earthranger"),
        ["events.json", "not valid JSON"],
    ),
    "incidents-smart-no-observations": (
        _export("obs.json", json.dumps({"patrols": []}), "smart"),
        ["obs.json", "no list of records"],
    ),
    # run and validate stop alike: without --month, a table with no accepted row has no
    # month to map; with one, too few usable incidents
    "incidents-all-swapped": (_rows(_swap_lonlat), ["usable"]),
    "incidents-all-in-the-future": (
        _rows(
            lambda rows: [
                ",".join([r.split(",")[0], "2099-01-01", *r.split(",")[2:]]) for r in rows
            ]
        ),
        ["usable"],
    ),
    "incidents-filter-matches-nothing": (
        _edit(incidents={"filters": {"species": ["tiger"]}}),
        ["usable"],
    ),
    "covariate-missing": (
        _edit(
            covariates={
                "cover": {"path": "cover.tif", "type": "categorical"},
                "elevation": {"path": "dem_v2.tif", "type": "continuous"},
            }
        ),
        ["dem_v2.tif", "covariates.elevation"],
    ),
    "covariate-corrupt-geotiff": (
        _corrupt("elevation.tif"),
        ["elevation.tif", "not a raster GDAL can read"],
    ),
    "covariate-no-crs": (
        _raster("elevation.tif", ELEV, crs=None, transform=UTM33),
        ["elevation.tif", "no CRS"],
    ),
    "covariate-all-nodata": (
        _raster(
            "elevation.tif",
            np.full((48, 48), -9999, np.float32),
            crs="EPSG:32633",
            transform=UTM33,
            nodata=-9999,
        ),
        ["elevation.tif", "no valid data"],
    ),
    "covariate-no-overlap": (
        _raster(
            "elevation.tif",
            ELEV,
            crs="EPSG:32633",
            transform=Affine(250, 0, 900_000, 0, -250, 4_000_000),
        ),
        ["elevation.tif", "does not overlap the analysis grid"],
    ),
    "covariate-band-out-of-range": (
        _edit(
            covariates={
                "cover": {"path": "cover.tif", "type": "categorical"},
                "elevation": {"path": "elevation.tif", "type": "continuous", "band": 3},
            }
        ),
        ["band is 3", "1 band"],
    ),
    "covariate-categorical-is-continuous": (
        _edit(
            covariates={
                "cover": {"path": "cover.tif", "type": "categorical"},
                "elevation": {"path": "elevation.tif", "type": "categorical"},
            }
        ),
        ["covariates.elevation", "is it continuous"],
    ),
    "grid-geographic": (_edit(grid={"crs": "EPSG:4326"}), ["grid.crs", "projected"]),
    "month-before-data": (
        _args("--month", "2019-01"),
        ["incidents.csv", "dated up to 2019-01", "later --month"],
    ),
    "month-malformed": (_args("--month", "Jan-2025"), ["--month 'Jan-2025'", "YYYY-MM"]),
    "month-out-of-range": (_args("--month", "2025-13"), ["--month '2025-13'", "YYYY-MM"]),
    "model-unknown": (_edit(model="maxnet"), ["model 'maxnet' not found", "maxent"]),
    # monthly covariates (the small area's incidents run from 2024-01 to 2025-04)
    "monthly-month-not-published": (
        _monthly("cube", _months("2024-01", "2025-02"), missing_month="error"),
        ["covariates.green", "no 2025-04", "2024-01 to 2025-02", "missing_month"],
    ),
    "monthly-latest-too-old": (
        _monthly("cube", _months("2024-01", "2024-12"), missing_month="latest"),
        ["covariates.green", "2024-12, 4 months old", "max_age_months"],
    ),
    "monthly-cube-without-crs": (
        _monthly("cube", _months("2024-01", "2025-04"), crs=False),
        ["green.nc", "no CRS", "grid_mapping"],
    ),
    "monthly-two-steps-in-a-month": (
        _monthly("cube", ["2024-01-01", "2024-01-20", "2024-02-15"]),
        ["green.nc", "two time steps fall in 2024-01"],
    ),
    "monthly-template-matches-nothing": (
        _monthly("template"),
        ["green_{month}.tif", "no file matches", "covariates.green.path"],
    ),
    "monthly-band-without-month": (
        _monthly("bands"),
        ["green.tif", "band 1 has no month", "'month' tag"],
    ),
    "monthly-keys-on-a-static-covariate": (
        _edit(
            covariates={
                "cover": {"path": "cover.tif", "type": "categorical"},
                "elevation": {"path": "elevation.tif", "type": "continuous", "lags": [0, 1]},
            }
        ),
        ["covariates.elevation", "lags only apply to monthly covariates"],
    ),
    "incidents-alone-without-grid": (
        _without("covariates"),
        ["grid.crs, grid.resolution and grid.extent"],
    ),
}


def error_line(result: CliResult | subprocess.CompletedProcess[str]) -> str:
    """The one error line of a command that stopped on bad input (exit code 2)."""
    if isinstance(result, CliResult):
        assert result.exception is None, result.exception
        code = result.exit_code
    else:
        code = result.returncode
    assert code == 2, (code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("hwc-risk: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def entries(folder: Path) -> list[str]:
    """What a user sees in a run-name folder: everything but the lock files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def no_run_folder(config: Path) -> bool:
    name_dir = config.parent / "out" / "synthetic"
    return not name_dir.exists() or not entries(name_dir)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_clear_line(name: str, small_area: Path) -> None:
    breaker, needles = CASES[name]
    extra = breaker(small_area) or []
    lines = {
        command: error_line(cli(command, small_area, *extra)) for command in ("validate", "run")
    }
    for command, line in lines.items():
        for needle in needles:
            needle = needle.replace("{config}", str(small_area))
            assert needle in line, (command, needle, line)
    assert no_run_folder(small_area)
    # `validate` stops where a run would, with the same words; where rows were rejected,
    # validate writes them beside the config and says so, a run says how to get them
    rows = small_area.with_name("config.rejected_incidents.csv")
    written = f"; the rejected rows are in {rows}"
    how = f"; run `hwc-risk validate {small_area}` to write the rejected rows to {rows}"
    if written in lines["validate"]:
        assert rows.is_file()
        assert lines["validate"].replace(written, how) == lines["run"]
    else:
        assert lines["run"] == lines["validate"]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


# The installed console script, in a subprocess: exit codes as a shell sees them.


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
@pytest.mark.parametrize("command", ["run", "validate"])
def test_installed_command_exits_2_with_one_line(small_area: Path, command: str) -> None:
    small_area.write_text(small_area.read_text().replace("model:", "modle:"))
    line = error_line(run_cli(command, small_area))
    assert str(small_area) in line and "unknown key 'modle'" in line
    assert no_run_folder(small_area)


@pytest.mark.slow  # a run of the small area, then a rerun
def test_failed_rerun_leaves_earlier_run_untouched(small_area: Path) -> None:
    ok = run_cli("run", small_area, "--month", "2025-02", "-q")
    assert ok.returncode == 0, ok.stderr
    run_dir = Path(ok.stdout.strip())
    before = {p.name: sha256(p) for p in run_dir.iterdir()}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["month"] == "2025-02"

    # break a covariate: the rerun of the same month must fail late (after the
    # grid and incidents are read) and leave the earlier folder exactly as it was
    (small_area.parent / "elevation.tif").write_bytes(b"corrupt")
    edit_config(small_area, grid={"crs": "EPSG:32633"})
    line = error_line(run_cli("run", small_area, "--month", "2025-02"))
    assert "elevation.tif" in line and "not a raster GDAL can read" in line
    after = {p.name: sha256(p) for p in run_dir.iterdir()}
    assert after == before
    assert entries(run_dir.parent) == ["2025-02"]
