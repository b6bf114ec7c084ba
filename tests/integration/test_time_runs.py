"""Runs with time: incidents alone on a grid from the config, background months by reporting
effort, three months ahead, and what ``validate`` says of a monthly covariate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rio_cogeo.cogeo import cog_validate

from hwc_risk.export.forecast import forecast_bands
from hwc_risk.temporal import as_month
from tests.conftest import REPO, edit_config, run_cli


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory, small_area_template: Path) -> Path:
    """The small area's incidents alone (no raster), on a grid the config gives."""
    import shutil

    folder = tmp_path_factory.mktemp("alone") / "area"
    shutil.copytree(small_area_template, folder)
    with rasterio.open(folder / "cover.tif") as ds:
        crs, bounds, res = ds.crs.to_string(), list(ds.bounds), ds.res[0]
    config = folder / "config.yaml"
    data = yaml.safe_load(config.read_text())
    del data["covariates"]  # no raster at all
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    config = edit_config(
        config,
        name="alone",
        grid={"crs": crs, "resolution": res * 2, "extent": bounds},
        features={"season": True},
        background={"months": "effort"},
        forecast={"horizon": 3, "validation_origins": 3},
    )
    proc = run_cli("run", config, "-q")
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def test_incidents_alone_make_a_map_and_say_what_they_used(alone: Path) -> None:
    metrics = json.loads((alone / "metrics.json").read_text())
    inputs = metrics["inputs"]
    assert inputs["covariates"] == [] and inputs["monthly_covariates"] == {}
    assert inputs["history"] is True  # nothing else says where
    assert set(inputs["features"]) >= {"history_count"}
    with rasterio.open(alone / "risk.tif") as ds:
        risk = ds.read(1)
        assert ds.shape == (24, 24)  # 48 cells of 250 m on cells of 500 m
    assert np.isfinite(risk).all()  # no covariate: every cell of the grid is mapped
    manifest = json.loads((alone / "manifest.json").read_text())
    assert [i["role"] for i in manifest["inputs"] if i["role"].startswith("covariate")] == []
    assert manifest["samples"]["background_months"] == "effort"


def test_three_months_ahead(alone: Path) -> None:
    metrics = json.loads((alone / "metrics.json").read_text())
    months = metrics["forecast"]["months"]
    assert [m["month"] for m in months] == ["2025-05", "2025-06", "2025-07"]
    assert forecast_bands(alone / "forecast.tif") == {
        as_month(m["month"]): k for k, m in enumerate(months, start=1)
    }
    assert cog_validate(alone / "forecast.tif")[0]
    with rasterio.open(alone / "forecast.tif") as ds:
        for k, month in enumerate(months, start=1):
            assert np.nansum(ds.read(k)) == pytest.approx(month["expected"], rel=1e-3)
            assert month["lower"] <= month["expected"] <= month["upper"]
    check = metrics["forecast"]["totals_validation"]
    assert [row["horizon"] for row in check["by_horizon"]] == [1.0, 2.0, 3.0]


def test_validate_says_how_a_monthly_covariate_is_filled() -> None:
    proc = run_cli("validate", REPO / "pipelines" / "sample.yaml")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("covariate greenness"))
    assert "monthly (cube), 2023-11 to 2026-10, 36 months" in line
    assert "2026-10 published" in line
    assert "greenness 2026-11: not published; used the mean of 2023, 2024, 2025" in line
