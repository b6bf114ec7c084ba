"""Bad input through the real CLI.

Each case: exit code 2, one line naming the problem, no traceback, nothing half written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwc_risk.export.report import sha256
from tests.conftest import edit_config, run_cli, write_raster


def assert_clean_failure(proc, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    lines = [line for line in err.splitlines() if line.startswith("hwc-risk: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def entries(folder: Path) -> list[str]:
    """What a user sees in a run-name folder: everything but the lock files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def no_run_folder(config: Path) -> bool:
    name_dir = config.parent / "out" / "synthetic"
    return not name_dir.exists() or not entries(name_dir)


def test_missing_config(tmp_path: Path) -> None:
    proc = run_cli("run", tmp_path / "nope.yaml")
    assert_clean_failure(proc, "nope.yaml", "config file not found")


def test_config_typo(small_area: Path) -> None:
    text = small_area.read_text().replace("model:", "modle:")
    small_area.write_text(text)
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "config.yaml", "unknown key 'modle'")
    assert no_run_folder(small_area)


def test_missing_incident_file(small_area: Path) -> None:
    edit_config(small_area, incidents={"path": "reports/march.csv"})
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "reports/march.csv", "incident file not found")
    assert no_run_folder(small_area)


def test_missing_covariate_file(small_area: Path) -> None:
    edit_config(
        small_area,
        covariates={
            "cover": {"path": "cover.tif", "type": "categorical"},
            "elevation": {"path": "dem_v2.tif", "type": "continuous"},
        },
    )
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "dem_v2.tif", "covariates.elevation.path")
    assert no_run_folder(small_area)


def test_missing_column(small_area: Path) -> None:
    edit_config(small_area, incidents={"date": "event_date"})
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "incidents.csv", "'event_date'", "incidents.date", "date")
    assert no_run_folder(small_area)


def test_absent_crs(small_area: Path) -> None:
    edit_config(small_area, incidents={"crs": None})
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "incidents.crs is missing", 'crs: "EPSG:4326"')


def test_unknown_crs(small_area: Path) -> None:
    edit_config(small_area, incidents={"crs": "EPSG:4327001"})
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "incidents.crs 'EPSG:4327001'", "EPSG code")


def test_raster_without_crs(small_area: Path) -> None:
    write_raster(small_area.parent / "elevation.tif", np.ones((48, 48), np.float32), crs=None)
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "elevation.tif", "has no CRS")


def test_rasters_that_do_not_overlap(small_area: Path) -> None:
    from affine import Affine

    far = Affine(250, 0, 900_000, 0, -250, 4_000_000)
    write_raster(
        small_area.parent / "elevation.tif",
        np.ones((48, 48), np.float32),
        crs="EPSG:32633",
        transform=far,
    )
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "elevation.tif", "does not overlap the analysis grid")
    assert no_run_folder(small_area)


def test_no_incidents_in_range(small_area: Path) -> None:
    proc = run_cli("run", small_area, "--month", "2019-05")
    assert_clean_failure(proc, "incidents.csv", "dated up to 2019-05", "choose a later --month")
    assert no_run_folder(small_area)


def test_bad_month(small_area: Path) -> None:
    proc = run_cli("run", small_area, "--month", "2025-13")
    assert_clean_failure(proc, "--month '2025-13'", "YYYY-MM")


def test_unknown_model(small_area: Path) -> None:
    edit_config(small_area, model="maxnet")
    proc = run_cli("run", small_area)
    assert_clean_failure(proc, "model 'maxnet' not found", "maxent")
    assert no_run_folder(small_area)


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
    proc = run_cli("run", small_area, "--month", "2025-02")
    assert_clean_failure(proc, "elevation.tif", "not a raster GDAL can read")
    after = {p.name: sha256(p) for p in run_dir.iterdir()}
    assert after == before
    assert entries(run_dir.parent) == ["2025-02"]


@pytest.mark.parametrize("bad", ["", "name: x\n", "- a\n- b\n"])
def test_malformed_configs(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(bad)
    proc = run_cli("run", path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr
