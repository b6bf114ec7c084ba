"""The real CLI on the bundled sample data, end to end, checking every file of the run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from scipy import stats

from hwc_risk.export.outputs import SCENARIO_OUTPUTS, always_written
from hwc_risk.export.report import sha256
from tests.conftest import REPO, SAMPLE, run_cli

# every test reads the session's shared sample run (tests/conftest.py) or makes its own
pytestmark = pytest.mark.slow

SCENARIOS = ("planned-road", "farm-expansion")
CONNECTIVITY = {
    "connectivity_current.tif",
    "connectivity_cost_distance.tif",
    "connectivity_corridor.tif",
}
FORECAST = {"forecast.tif", "forecast.qml"}


def test_run_folder_has_every_output(sample_run: Path) -> None:
    names = {p.name for p in sample_run.iterdir()}
    # every file of the registry's every-run set, and the sample's conditional ones
    assert names == always_written() | {
        "risk_sd.tif",
        "bulletin.pdf",
        "scenarios",
        *CONNECTIVITY,
        *FORECAST,
    }
    assert "risk.tif" in names and "map.html" in names and "metrics.json" in names
    # nothing else was left beside the run folder (no staging or work folders)
    assert [p.name for p in sample_run.parent.iterdir() if not p.name.endswith(".lock")] == [
        "2026-10"
    ]


def test_risk_geotiff(sample_run: Path) -> None:
    with rasterio.open(REPO / "sample_data" / "land_use.tif") as lu:
        shape, transform = lu.shape, lu.transform
        lu_valid = lu.read(1) != 0
    with rasterio.open(sample_run / "risk.tif") as ds:
        assert ds.crs.to_epsg() == 32736
        assert ds.shape == shape and ds.transform == transform
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.profile["tiled"] and ds.overviews(1)
        assert ds.tags()["month"] == "2026-10"
        assert set(ds.tags()["model"].split("+")) <= {"maxent", "glm", "gbm"}
        risk = ds.read(1)
    assert cog_validate(sample_run / "risk.tif")[0]
    valid = np.isfinite(risk)
    assert np.nanmin(risk) >= 0 and np.nanmax(risk) <= 1
    # nodata of the land use (the corner outside the district) stays nodata
    assert not valid[~lu_valid].any()
    assert valid[lu_valid].mean() > 0.99


@pytest.mark.parametrize(
    ("product", "truth"),
    [("risk.tif", "truth_risk_2026-10.tif"), ("forecast.tif", "truth_risk_2026-11.tif")],
)
def test_maps_rank_cells_like_the_months_truth(sample_run: Path, product: str, truth: str) -> None:
    # the sample's incidents follow a truth that moves with the season: the month's map
    # and next month's forecast each rank cells like their own month's truth
    with rasterio.open(sample_run / product) as ds:
        risk = ds.read(1)
    with rasterio.open(REPO / "sample_data" / truth) as ds:
        truth_map = ds.read(1)
    ok = np.isfinite(risk) & np.isfinite(truth_map) & (truth_map > 0)
    rho = stats.spearmanr(risk[ok], truth_map[ok]).statistic
    assert rho > 0.8, rho


def test_class_geotiff(sample_run: Path) -> None:
    with rasterio.open(sample_run / "risk_class.tif") as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == 0
        assert ds.crs.to_epsg() == 32736
        cmap = ds.colormap(1)
        classes = ds.read(1)
    assert cog_validate(sample_run / "risk_class.tif")[0]
    assert set(np.unique(classes)) == {0, 1, 2, 3, 4}
    assert cmap[4][:3] == (215, 25, 28) and cmap[0][3] == 0
    share = (classes == 4).sum() / (classes > 0).sum()
    assert share == pytest.approx(0.05, abs=0.001)


def test_map_html(sample_run: Path) -> None:
    html = (sample_run / "map.html").read_text()
    assert "L.map(" in html and "L.imageOverlay(" in html
    assert "data:image/png;base64," in html
    assert "L.control.layers(" in html and "markerClusterGroup" in html
    assert "L.control.fullscreen(" in html and "control.scale" in html
    assert "very high (5% of area" in html
    assert "Human-wildlife conflict risk: sample-district, 2026-10" in html
    # the incidents of the month and before are on the map, each once
    assert "Incidents in 2026-10 (20)" in html and "Earlier incidents (942)" in html
    assert html.count('"HWC-S-20') == 962
    assert "Hotspots (" in html
    # online maps load only Leaflet and its plugins: no Bootstrap, jQuery or icon fonts
    assert "bootstrap" not in html and "jquery" not in html
    # the overlay is placed in lat/lon bounds around the sample district
    bounds = re.search(
        r"L\.imageOverlay\(\s*\"data:image/png;base64,[^\"]+\",\s*(\[\[.*?\]\])", html, re.S
    )
    assert bounds is not None
    (south, west), (north, east) = json.loads(bounds.group(1))
    assert -2.6 < south < north < -2.1 and 34.4 < west < east < 34.9


def test_metrics_compare_model_and_baselines(sample_run: Path) -> None:
    metrics = json.loads((sample_run / "metrics.json").read_text())
    assert metrics["month"] == "2026-10"
    # model: auto chose a recipe by rolling-origin skill and says why
    choice = metrics["model_choice"]
    assert metrics["model"] == choice["chosen"]
    assert set(choice["chosen"].split("+")) <= {"maxent", "glm", "gbm"}
    assert "rolling-origin" in choice["reason"]
    assert set(choice["candidates"]) == {"maxent", "glm", "gbm"}
    rolling = metrics["rolling_origin"]
    assert rolling["months"] == ["2026-08", "2026-09", "2026-10"]
    for name in ("model", "uniform", "past_counts", "kde"):
        for key in (
            "auc",
            "boyce",
            "capture_rate_5",
            "capture_rate_10",
            "capture_rate_20",
            "pai_5",
            "pai_10",
            "pai_20",
        ):
            assert key in rolling[name], (name, key)
    # the default model beats the baselines on the held-out months of the sample
    best_base = max(rolling[n]["capture_rate_10"] for n in ("past_counts", "kde", "uniform"))
    assert rolling["model"]["capture_rate_10"] > best_base
    history = metrics["history_features"]["chosen"]
    assert history["layers"][0] == "history_count" and history["bandwidth"] > 0
    explanation = metrics["explanation"]
    names = {e["feature"] for e in explanation["permutation_importance"]}
    assert "population_log1p" in names and "land_use_is_cropland" in names
    # history stays in the model only if it added skill on the held-out months
    assert ("history_count" in names) == choice["history"]["used"]
    assert len(explanation["response_curves"]) == len(names)
    with rasterio.open(sample_run / "risk_sd.tif") as ds:
        sd = ds.read(1)
        assert ds.crs.to_epsg() == 32736
    assert np.nanmax(sd) > 0 and np.nanmin(sd) >= 0
    for section in ("temporal_holdout", "spatial_block_cv"):
        block = metrics[section]
        for name in ("model", "uniform", "past_counts", "kde"):
            for key in ("auc", "boyce", "capture_rate_10"):
                assert key in block[name]
        assert block["uniform"]["capture_rate_10"] == pytest.approx(0.10)
        assert block["uniform"]["auc"] == pytest.approx(0.5)
        assert block["model"]["auc"] > 0.7
        assert block["model"]["capture_rate_10"] > 0.2
    assert metrics["temporal_holdout"]["n_test_incidents"] == 20
    assert metrics["spatial_block_cv"]["folds_evaluated"] == 5
    assert "summary" in metrics and "2026-10" in metrics["summary"]


def test_manifest(sample_run: Path) -> None:
    manifest = json.loads((sample_run / "manifest.json").read_text())
    counts = manifest["incidents"]
    assert counts["read"] == 968
    assert counts["accepted"] + counts["duplicates_merged"] + counts["rejected"] == counts["read"]
    assert counts["duplicates_merged"] == 0
    assert counts["rejected_by_reason"] == {
        "outside_study_area": 2,
        "bad_date": 2,
        "bad_coordinates": 1,
        "missing_coordinates": 1,
    }
    assert counts["used"] + counts["after_month"] == counts["accepted"]
    roles = {i["role"]: i for i in manifest["inputs"]}
    assert set(roles) == {
        "config",
        "incidents",
        "covariate:land_use",
        "covariate:population",
        "covariate:connectivity",
        "covariate:greenness",
        "model_recipe",
        "scenario:planned-road",  # the GeoPackages of the plans, hashed
        "scenario:farm-expansion",
    }
    road = roles["scenario:planned-road"]
    assert road["sha256"] == sha256(REPO / "sample_data" / "planned_road.gpkg")
    inc = roles["incidents"]
    assert inc["sha256"] == sha256(REPO / "sample_data" / "incidents_seasonal.csv")
    cube = roles["covariate:greenness"]
    assert cube["monthly"] == "cube"
    assert cube["sha256"] == sha256(REPO / "sample_data" / "greenness_monthly.nc")
    outputs = {o["path"]: o for o in manifest["outputs"]}
    scenario_files = {f"scenarios/{n}/{s.filename}" for n in SCENARIOS for s in SCENARIO_OUTPUTS}
    assert set(outputs) == scenario_files | {
        "scenarios/summary.csv",
        "bulletin.html",
        "bulletin.pdf",
        "risk.tif",
        "risk_class.tif",
        "map.html",
        "metrics.json",
        "rejected_incidents.csv",
        "run.log.jsonl",
        "risk_sd.tif",
        "importance.png",
        "response_curves.png",
        "risk.qml",
        "risk_class.qml",
        "hotspots.gpkg",
        *CONNECTIVITY,
        *FORECAST,
    }
    for name, rec in outputs.items():
        assert rec["sha256"] == sha256(sample_run / name)
    assert manifest["grid"]["epsg"] == 32736
    assert manifest["config"]["name"] == "sample-district"
    assert manifest["packages"]["rasterio"] and manifest["packages"]["hwc-risk"]
    stages = {"plan", "features", "samples", "selection", "fit", "predict", "forecast"}
    stages |= {"scenarios", "products"}
    assert stages <= set(manifest["timings_s"])
    assert manifest["model"]["n_presence"] == counts["used"]


def test_rejected_rows_file(sample_run: Path) -> None:
    rejected = pd.read_csv(sample_run / "rejected_incidents.csv", dtype=str)
    assert len(rejected) == 6
    assert set(rejected["incident_id"]) == {f"HWC-BAD-{i}" for i in range(1, 7)}
    assert rejected["reason"].notna().all() and rejected["detail"].notna().all()
    swapped = rejected.set_index("incident_id").loc["HWC-BAD-6", "detail"]
    assert "swapped" in swapped


def test_month_option_uses_only_earlier_incidents(tmp_path: Path) -> None:
    proc = run_cli("run", SAMPLE, "--month", "2025-06", "--output-dir", tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "sample-district" / "2025-06"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    by_month = manifest["incidents"]["used_by_month"]
    assert max(by_month) == "2025-06"
    assert manifest["incidents"]["used"] == sum(by_month.values())
    assert manifest["incidents"]["after_month"] > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["temporal_holdout"]["test_month"] == "2025-06"
    assert metrics["temporal_holdout"]["n_test_incidents"] == by_month["2025-06"]


def test_connectivity_layers_and_ablation(sample_run: Path) -> None:
    with rasterio.open(sample_run / "risk.tif") as ds:
        risk_valid = np.isfinite(ds.read(1))
    for name in CONNECTIVITY:
        assert cog_validate(sample_run / name)[0]
        with rasterio.open(sample_run / name) as ds:
            assert ds.crs.to_epsg() == 32736 and ds.dtypes[0] == "float32"
            data = ds.read(1)
        assert np.isfinite(data[risk_valid]).all()
        assert np.nanmin(data) >= 0
    with rasterio.open(sample_run / "connectivity_current.tif") as ds:
        current = ds.read(1)
    with rasterio.open(REPO / "sample_data" / "land_use.tif") as ds:
        land = ds.read(1)
    # more current crosses cheap grassland than settlements
    assert np.nanmedian(current[land == 2]) > np.nanmedian(current[land == 4])
    metrics = json.loads((sample_run / "metrics.json").read_text())
    ablation = metrics["connectivity_ablation"]
    assert set(ablation["layers"]) == {n.removesuffix(".tif") for n in CONNECTIVITY}
    for side in ("with", "without"):
        for part in ("temporal_holdout", "spatial_block_cv"):
            assert 0 <= ablation[side][part]["capture_rate_10"] <= 1
    assert "with" in ablation["summary"] and "without" in ablation["summary"]
    manifest = json.loads((sample_run / "manifest.json").read_text())
    names = {f["name"] for f in manifest["model"]["features"]}
    assert {n.removesuffix(".tif") for n in CONNECTIVITY} <= names


def test_qgis_styles(sample_run: Path) -> None:
    import xml.etree.ElementTree as ET

    risk = ET.parse(sample_run / "risk.qml").getroot()
    renderer = risk.find("./pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "singlebandpseudocolor"
    items = risk.findall(".//colorrampshader/item")
    values = [float(i.get("value", "nan")) for i in items]
    assert values == sorted(values) and values[0] == 0 and values[-1] == 1
    labels = " ".join(i.get("label", "") for i in items)
    for word in ("moderate", "high", "very high"):
        assert word in labels
    metrics = json.loads((sample_run / "metrics.json").read_text())
    very_high = next(c for c in metrics["risk_classes"] if c["label"] == "very high")
    assert any(abs(v - very_high["min_risk"]) < 1e-5 for v in values)

    classes = ET.parse(sample_run / "risk_class.qml").getroot()
    renderer = classes.find("./pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "paletted"
    entries = classes.findall(".//colorPalette/paletteEntry")
    assert [e.get("value") for e in entries] == ["1", "2", "3", "4"]
    assert entries[3].get("label", "").startswith("very high (5% of area, ")
    assert "of held-out incidents" in entries[3].get("label", "")
    with rasterio.open(sample_run / "risk_class.tif") as ds:
        cmap = ds.colormap(1)
        tags = ds.tags()
        assert ds.descriptions == ("risk class",)
    for entry in entries:
        code = int(entry.get("value", "0"))
        colour = entry.get("color", "").lstrip("#")
        assert tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4)) == cmap[code][:3]
    assert tags["class_4"].startswith("very high: 5% of the area, ")
    assert tags["hwc_risk_version"] and tags["units"] == "class code"
    with rasterio.open(sample_run / "risk.tif") as ds:
        assert ds.descriptions == ("relative conflict risk",)
        assert ds.tags()["units"] == "relative risk (0-1)"
        assert ds.profile["compress"].lower() == "deflate"
    assert not list(sample_run.glob("*.aux.xml"))


def test_hotspots(sample_run: Path) -> None:
    import geopandas as gpd

    hotspots = gpd.read_file(sample_run / "hotspots.gpkg", layer="hotspots")
    assert hotspots.crs.to_epsg() == 32736
    assert list(hotspots["hotspot"]) == list(range(1, len(hotspots) + 1))
    assert hotspots["area_km2"].is_monotonic_decreasing
    with rasterio.open(sample_run / "risk_class.tif") as ds:
        top_cells = int((ds.read(1) == 4).sum())
    # polygons cover exactly the "very high" cells of 1 ha each
    assert hotspots["area_km2"].sum() == pytest.approx(top_cells * 0.01)
    assert hotspots.geometry.area.sum() == pytest.approx(top_cells * 10_000)
    assert (hotspots["people"] >= 0).all() and hotspots["people"].sum() > 100
    assert hotspots["incidents"].sum() > 100  # many of the 962 incidents sit in hotspots


def test_stac_item(sample_run: Path) -> None:
    import pystac

    item = pystac.Item.from_file(str(sample_run / "item.json"))
    assert item.id == "sample-district-2026-10"
    assert item.properties["start_datetime"].startswith("2026-10-01")
    assert item.properties["end_datetime"].startswith("2026-10-31")
    schemas = " ".join(item.stac_extensions)
    for ext in ("projection", "raster", "classification", "file", "processing"):
        assert f"/{ext}/" in schemas, ext
    assert item.properties["proj:code"] == "EPSG:32736" or item.properties.get("proj:epsg") == 32736
    assert item.properties["processing:software"]["hwc-risk"]
    assert {"risk", "risk_class", "map", "metrics", "manifest", "hotspots"} <= set(item.assets)
    for asset in item.assets.values():
        target = sample_run / asset.href.removeprefix("./")
        assert asset.extra_fields["file:checksum"] == "1220" + sha256(target)
        assert asset.extra_fields["file:size"] == target.stat().st_size
    classes = item.assets["risk_class"].extra_fields["classification:classes"]
    assert [c["value"] for c in classes] == [1, 2, 3, 4]
    assert item.assets["risk"].media_type.startswith("image/tiff")
    bands = item.assets["risk"].extra_fields["raster:bands"]
    assert bands[0]["data_type"] == "float32"


def test_bulletin(sample_run: Path) -> None:
    """bulletin.html names the month and its incidents as the manifest counts them, with
    the scenarios' table; bulletin.pdf prints on one or two pages."""
    import pypdfium2 as pdfium

    manifest = json.loads((sample_run / "manifest.json").read_text())
    n = manifest["incidents"]["used_by_month"]["2026-10"]
    html = (sample_run / "bulletin.html").read_text()
    assert f"{n} incidents reported in October 2026" in html
    assert "<h1>Human-wildlife conflict risk: sample-district</h1>" in html
    assert "What the plans would change" in html
    assert "<th>planned-road</th>" in html and "<th>farm-expansion</th>" in html
    assert "nothing was refitted" in html
    # next month's expectation, from the forecast in metrics.json
    metrics = json.loads((sample_run / "metrics.json").read_text())
    (ahead,) = metrics["forecast"]["months"]
    assert f"About {round(ahead['expected'])} expected in November 2026" in html
    assert "<script" not in html and "http" not in html.split("<footer>")[0]
    pages = len(pdfium.PdfDocument(sample_run / "bulletin.pdf"))
    assert 1 <= pages <= 2
    outputs = {o["path"] for o in manifest["outputs"]}
    assert {"bulletin.html", "bulletin.pdf"} <= outputs


def test_forecast_of_next_month(sample_run: Path) -> None:
    metrics = json.loads((sample_run / "metrics.json").read_text())
    forecast = metrics["forecast"]
    assert forecast["horizon"] == 1 and forecast["issued"] == "2026-10"
    (month,) = forecast["months"]
    assert month["month"] == "2026-11"
    assert month["lower"] <= month["expected"] <= month["upper"]
    # the sample's November (season 1 + 0.6 cos(2 pi 6/12), 10 % more a year): 36 * 0.4 *
    # 1.1^2 = 17.4 incidents; the interval holds it
    assert month["lower"] <= 17.4 <= month["upper"]
    with rasterio.open(sample_run / "forecast.tif") as ds:
        expected = ds.read(1)
        assert ds.count == 1 and ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.tags()["forecast_issued"] == "2026-10"
        assert ds.tags(1)["month"] == "2026-11" and ds.descriptions == (
            "expected incidents 2026-11",
        )
        assert ds.crs.to_epsg() == 32736
    assert cog_validate(sample_run / "forecast.tif")[0]
    assert np.nansum(expected) == pytest.approx(month["expected"], rel=1e-3)
    assert np.nanmin(expected) >= 0
    # split over the classes: their expectations add up to the total
    by_class = month["by_class"]
    assert set(by_class) == {"very high", "high", "moderate", "low"}
    assert sum(v["expected"] for v in by_class.values()) == pytest.approx(month["expected"], 0.02)
    assert by_class["very high"]["expected"] > 0.05 * month["expected"]  # denser than its area
    assert month["by_hotspot"] and all(
        v["lower"] <= v["upper"] for v in month["by_hotspot"].values()
    )
    # next month's greenness is not published: the cube's Novembers stand in for it
    used = month["covariates_used"]
    assert [u["how"] for u in used if u["wanted"] == "2026-11"] == ["climatology"]
    # the totals, checked on the last 12 months, beat the same month last year
    totals = forecast["totals_validation"]["overall"]
    assert totals["n"] == 12 and totals["mae"] < totals["mae_seasonal_naive"]
    assert 0.5 <= totals["coverage"] <= 1.0
    surfaces = forecast["surface_validation"]
    assert surfaces["months"] == ["2026-08", "2026-09", "2026-10"]
    for name in ("model", "kde", "past_counts", "same_month_last_year", "last_12_months"):
        assert 0 <= surfaces[name]["capture_rate_10"] <= 1, name
    best = max(
        surfaces[n]["capture_rate_10"] for n in ("kde", "same_month_last_year", "last_12_months")
    )
    assert surfaces["model"]["capture_rate_10"] > best
    assert (
        "Next month (2026-11): " in metrics["summary"] and "very high areas" in metrics["summary"]
    )
    import xml.etree.ElementTree as ET

    style = ET.parse(sample_run / "forecast.qml").getroot()
    values = [float(i.get("value", "nan")) for i in style.findall(".//colorrampshader/item")]
    assert values == sorted(values) and values[0] == 0 and len(values) == 5


def test_time_features_are_recorded(sample_run: Path) -> None:
    metrics = json.loads((sample_run / "metrics.json").read_text())
    inputs = metrics["inputs"]
    assert inputs["covariates"] == ["land_use", "population", "connectivity"]
    assert inputs["season"] is True
    ablation = metrics["time_ablation"]
    assert ablation["features"] == ["greenness", "greenness_mean3", "month_sin", "month_cos"]
    assert metrics["forecast"]["ablation"] == ablation
    toggle = metrics["model_choice"]["time_features"]
    assert toggle["used"] == ablation["kept"]
    assert "time features" in metrics["model_choice"]["reason"]
    manifest = json.loads((sample_run / "manifest.json").read_text())
    cube = manifest["monthly_covariates"]["greenness"]
    assert cube["months"] == "2023-11 to 2026-10, 36 months"
    assert cube["features"] == ["greenness", "greenness_mean3"]
    assert {u["wanted"]: u["how"] for u in cube["months_used"]}["2026-10"] == "published"
    samples = manifest["samples"]
    assert samples["background_months"] == "uniform"  # auto, with time features
    assert samples["dropped_without_time_data"] == {"incidents": 0, "background": 0}
    log = (sample_run / "run.log.jsonl").read_text()
    assert "greenness 2026-11: not published; used the mean of 2023, 2024, 2025" in log
    html = (sample_run / "map.html").read_text()
    assert "Expected incidents, 2026-11" in html and 'id="hwc-forecast"' in html
    # one chart (an inline SVG image; the legends' small swatches are SVG too)
    assert html.count('role="img"') == 1 and 'class="forecast"' in html
