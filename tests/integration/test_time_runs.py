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


def test_the_forecast_follows_a_map_choice_of_history(
    small_area: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the held-out months pick past counts (forced here, whatever they say): the run ships
    # past counts, and each forecast month is those counts scaled to its expected total, not
    # the model's surface, though the model has time features of the month it forecasts
    from dataclasses import replace

    from hwc_risk import map_choice
    from hwc_risk.config import load_config
    from hwc_risk.pipeline import run

    choose = map_choice.choose_map

    def past_counts(*args, **kwargs):  # type: ignore[no-untyped-def]
        return replace(choose(*args, **kwargs), chosen="past_counts")

    monkeypatch.setattr(map_choice, "choose_map", past_counts)
    config = edit_config(
        small_area, model="auto", features={"season": True}, forecast={"horizon": 2}
    )
    result = run(load_config(config), output_dir=tmp_path / "out")
    assert result.metrics["map_choice"]["chosen"] == "past_counts"
    with rasterio.open(result.run_dir / "risk.tif") as ds:
        risk = ds.read(1)
    counts = risk / np.nanmin(risk[risk > 0])  # past counts scaled to a maximum of one
    assert np.allclose(counts[np.isfinite(counts)], np.round(counts[np.isfinite(counts)]))
    months = result.metrics["forecast"]["months"]
    with rasterio.open(result.run_dir / "forecast.tif") as ds:
        for k, month in enumerate(months, start=1):
            expected = ds.read(k)
            share = risk / np.nansum(risk)
            total = float(np.nansum(expected))  # metrics.json rounds it to 0.01
            assert total == pytest.approx(month["expected"], abs=0.006)
            assert np.allclose(expected, total * share, rtol=1e-4, equal_nan=True)
