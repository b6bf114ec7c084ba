"""``hwc-risk scenario CONFIG SCENARIO.yaml --month M`` on existing run folders.

On a copy of the shared sample run, the command refits the run's model, checks it
reproduces ``risk.tif``, and evaluates the sample's scenario file: its results are the
run's own scenario results, file for file; a new scenario is added beside them and the
map, the bulletin, the manifest and the STAC item follow. On runs that ship a blend of the
model and history, or history alone, the command's scenario moves the shipped map by the
model's share of the model's change. Every mistake in a scenario file, and a run folder
that is missing or was made from other inputs, gives exit code 2 and one line, and
leaves the run folder as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from shapely.geometry import LineString, box
from typer.testing import CliRunner

from hwc_risk.cli import app
from hwc_risk.export.outputs import SCENARIO_OUTPUTS
from hwc_risk.export.report import sha256
from tests.conftest import REPO, SAMPLE, cli, edit_config, run_cli

pytestmark = pytest.mark.slow

X0, Y0, CELL = 500_000.0, 5_200_000.0, 250.0  # the small area (tests/conftest.py)
CONNECTIVITY = {"from_covariate": "cover", "resistance": {1: 1, 2: 5, 3: 10, 4: 50}, "sources": [1]}


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _state(run_dir: Path) -> dict[str, str]:
    """Every file of a run folder (and beside it) with its hash."""
    out = {p.relative_to(run_dir).as_posix(): sha256(p) for p in run_dir.rglob("*") if p.is_file()}
    out |= {f"../{p.name}": "" for p in run_dir.parent.iterdir() if p.name != run_dir.name}
    return out


@pytest.fixture(scope="module")
def sample_copy(sample_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared sample run, with the sample's scenarios evaluated again by the
    command, and a fenced road added."""
    out = tmp_path_factory.mktemp("scenario-command")
    run_dir = out / "sample-district" / "2026-10"
    shutil.copytree(sample_run, run_dir)
    before = {p: sha256(run_dir / p) for p in ("risk.tif", "risk_class.tif", "metrics.json")}
    proc = run_cli(
        "scenario", SAMPLE, REPO / "pipelines" / "sample-scenarios.yaml",
        "--month", "2026-10", "--output-dir", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run_dir)
    assert "reproduces" in proc.stderr  # the refitted model gave the run's risk.tif
    assert {p: sha256(run_dir / p) for p in before} == before
    fence = out / "fence.yaml"
    road = REPO / "sample_data" / "planned_road.gpkg"
    edit = {"kind": "resistance", "path": str(road), "width": 30, "barrier": True}
    scenario = {"name": "fenced-road", "description": "The road, fenced", "edits": [edit]}
    fence.write_text(yaml.safe_dump({"scenarios": [scenario]}))
    proc = run_cli("scenario", SAMPLE, fence, "--month", "2026-10", "--output-dir", out)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def test_the_command_gives_the_runs_own_results(sample_run: Path, sample_copy: Path) -> None:
    for name in ("planned-road", "farm-expansion"):
        for spec in SCENARIO_OUTPUTS:
            if spec.filename.endswith(".tif"):
                np.testing.assert_array_equal(
                    _read(sample_copy / "scenarios" / name / spec.filename),
                    _read(sample_run / "scenarios" / name / spec.filename),
                    err_msg=f"{name}/{spec.filename}",
                )
        made, own = (
            json.loads((folder / "scenarios" / name / "summary.json").read_text())
            for folder in (sample_copy, sample_run)
        )
        assert made == own


def test_a_new_scenario_joins_the_others(sample_copy: Path) -> None:
    folder = sample_copy / "scenarios" / "fenced-road"
    assert {p.name for p in folder.iterdir()} == {s.filename for s in SCENARIO_OUTPUTS}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["current_cut"]["cut_share"] > 0.95  # a fence cuts all of the current
    assert summary["edits"] == "resistance"
    table = (sample_copy / "scenarios" / "summary.csv").read_text().splitlines()[0]
    assert table == "measure,planned-road,farm-expansion,fenced-road"
    manifest = json.loads((sample_copy / "manifest.json").read_text())
    names = [s["name"] for s in manifest["scenarios"]]
    assert names == ["planned-road", "farm-expansion", "fenced-road"]
    assert manifest["scenarios"][2]["added_by"] == "hwc-risk scenario"
    for record in manifest["outputs"]:  # the manifest describes the folder as it is
        assert record["sha256"] == sha256(sample_copy / record["path"]), record["path"]
    listed = {o["path"] for o in manifest["outputs"]}
    on_disk = {p.relative_to(sample_copy).as_posix() for p in sample_copy.rglob("*") if p.is_file()}
    assert on_disk - listed == {"manifest.json", "item.json"}
    item = json.loads((sample_copy / "item.json").read_text())
    assert "scenarios_fenced-road_risk_delta" in item["assets"]
    asset = item["assets"]["scenarios_fenced-road_risk_delta"]
    assert asset["file:checksum"] == "1220" + sha256(folder / "risk_delta.tif")
    html = (sample_copy / "map.html").read_text()
    assert "fenced-road: change in risk" in html and "planned-road: risk class" in html
    assert "<th>fenced-road</th>" in (sample_copy / "bulletin.html").read_text()
    leftovers = [p.name for p in sample_copy.parent.iterdir() if p.name.startswith(".2026")]
    assert [n for n in leftovers if not n.endswith(".lock")] == []


# --- runs that ship a blend or history: the scenario follows the shipped map --------

SHIPPED = ("model", "blend_50", "past_counts")


@pytest.fixture(scope="module")
def shipped_runs(
    small_area_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The small area run (``model: auto``) with the map choice forced to ship each of
    :data:`SHIPPED`, then the same plan added to each run folder by ``hwc-risk scenario``
    (exit 0); the run folders by the candidate shipped."""
    from dataclasses import replace

    from hwc_risk import map_choice
    from hwc_risk.config import load_config
    from hwc_risk.pipeline import run

    folder = tmp_path_factory.mktemp("scenario-shipped") / "area"
    shutil.copytree(small_area_template, folder)
    config = edit_config(folder / "config.yaml", model="auto")
    block = box(X0 + 5 * CELL, Y0 - 30 * CELL, X0 + 30 * CELL, Y0 - 10 * CELL)
    gpd.GeoDataFrame({"name": ["block"]}, geometry=[block], crs="EPSG:32633").to_file(
        folder / "plan.gpkg", layer="plan", driver="GPKG"
    )
    plan = folder / "plan.yaml"
    plan.write_text(yaml.safe_dump({"scenarios": [{"name": "pasture", "edits": [SET]}]}))
    choose = map_choice.choose_map
    runs: dict[str, Path] = {}
    for shipped in SHIPPED:

        def forced(*args, _as=shipped, **kwargs):  # type: ignore[no-untyped-def]
            return replace(choose(*args, **kwargs), chosen=_as)

        out = folder / "out" / shipped
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(map_choice, "choose_map", forced)
            run_dir = run(load_config(config), output_dir=out).run_dir
        proc = cli("scenario", config, plan, "--month", run_dir.name, "--output-dir", out)
        assert proc.exit_code == 0, proc.stderr
        assert "reproduces" in proc.stderr  # the shipped map was made again, cell for cell
        # history alone: the command says, as a run's scenarios stage does, that plans
        # change nothing on the map
        assert ("change nothing on the map" in proc.stderr) == (shipped == "past_counts")
        runs[shipped] = run_dir
    return runs


def _summary(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "scenarios" / "pasture" / "summary.json").read_text()))


def test_the_scenario_follows_the_map_a_run_ships(shipped_runs: dict[str, Path]) -> None:
    for shipped, run_dir in shipped_runs.items():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["map_choice"]["chosen"] == shipped
        assert _summary(run_dir)["map_shipped"]["chosen"] == shipped
    # the model shipped: the scenario's map is the model's on the edited inputs
    model = shipped_runs["model"]
    assert _summary(model)["map_shipped"]["model_share"] == 1.0
    change = _read(model / "scenarios" / "pasture" / "risk_delta.tif")
    assert np.nanmax(np.abs(change)) > 0.01  # the plan moves the model's map


def test_a_blend_moves_by_the_models_share(shipped_runs: dict[str, Path]) -> None:
    # the same model in both runs (the map choice comes after the fit): the blend's change
    # is the model's change times the model's share of the blend, the history part held
    blend = shipped_runs["blend_50"]
    record = _summary(blend)["map_shipped"]
    share = record["model_share"]
    assert share > 0 and share != pytest.approx(1.0) and "blend" in record["note"]
    model_change = _read(shipped_runs["model"] / "scenarios" / "pasture" / "risk_delta.tif")
    change = _read(blend / "scenarios" / "pasture" / "risk_delta.tif")
    np.testing.assert_allclose(change, share * model_change, atol=2e-6, equal_nan=True)
    after = _read(blend / "scenarios" / "pasture" / "risk.tif")
    np.testing.assert_allclose(after, _read(blend / "risk.tif") + change, atol=2e-6)


def test_history_alone_is_left_as_it_is(shipped_runs: dict[str, Path]) -> None:
    # past counts shipped: a plan changes covariates, not past reports, so the map stays
    # the baseline's, no class gains or loses area, and summary.json says why
    history = shipped_runs["past_counts"]
    summary = _summary(history)
    assert summary["map_shipped"]["model_share"] == 0.0
    assert "leaves the map as it is" in summary["map_shipped"]["note"]
    folder = history / "scenarios" / "pasture"
    np.testing.assert_array_equal(_read(folder / "risk.tif"), _read(history / "risk.tif"))
    delta = _read(folder / "risk_delta.tif")
    assert np.all(delta[np.isfinite(delta)] == 0)
    assert summary["area where risk moved by 0.01 or more (km²)"] == 0
    for before, after in summary["cells_by_class"].values():
        assert before == after


def test_history_alone_keeps_the_classes_and_hotspots(shipped_runs: dict[str, Path]) -> None:
    history = shipped_runs["past_counts"]
    folder = history / "scenarios" / "pasture"
    classes = _read(folder / "risk_class.tif")
    np.testing.assert_array_equal(classes, _read(history / "risk_class.tif"))
    summary = _summary(history)
    assert summary["new hotspots"] == 0 and summary["vanished hotspots"] == 0


# --- mistakes: exit 2, one line, the run folder untouched ---------------------------


@pytest.fixture(scope="module")
def area_run(small_area_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small area (with connectivity) run once; returns its config."""
    folder = tmp_path_factory.mktemp("scenario-errors") / "area"
    shutil.copytree(small_area_template, folder)
    config = edit_config(folder / "config.yaml", connectivity=CONNECTIVITY)
    proc = run_cli("run", config, "-q")
    assert proc.returncode == 0, proc.stderr
    block = box(X0 + 5 * CELL, Y0 - 30 * CELL, X0 + 30 * CELL, Y0 - 10 * CELL)
    frame = gpd.GeoDataFrame({"name": ["block"]}, geometry=[block], crs="EPSG:32633")
    frame.to_file(folder / "plan.gpkg", layer="plan", driver="GPKG")
    line = LineString([(X0 + CELL, Y0 - CELL), (X0 + 40 * CELL, Y0 - 40 * CELL)])
    gpd.GeoDataFrame(geometry=[line], crs="EPSG:32633").to_file(folder / "line.gpkg", driver="GPKG")
    far = box(X0 + 1e6, Y0 - 1e5, X0 + 1e6 + 5000, Y0 - 1e5 + 5000)
    gpd.GeoDataFrame(geometry=[far], crs="EPSG:32633").to_file(folder / "far.gpkg", driver="GPKG")
    gpd.GeoDataFrame(geometry=[frame.geometry[0]]).to_file(folder / "nocrs.gpkg", driver="GPKG")
    return config


SET = {"kind": "set_class", "covariate": "cover", "path": "plan.gpkg", "class": "pasture"}
ERRORS: dict[str, tuple[object, list[str]]] = {
    "not-yaml": ("scenarios: [oops", ["not valid YAML"]),
    "unknown-kind": ([{**SET, "kind": "paint"}], ["key 'scenarios.0.edits.0.kind' must be one of"]),
    "typo": ([{**SET, "widht": 3}], ["unknown key 'scenarios.0.edits.0.widht'"]),
    "class-name": ([{**SET, "class": "orchard"}], ["(s, set_class)", "class 'orchard'"]),
    "covariate": ([{**SET, "covariate": "landuse"}], ["covariate 'landuse' is not under"]),
    "gpkg-missing": ([{**SET, "path": "nothere.gpkg"}], ["edits.0 (s, set_class)", "not found"]),
    "layer-missing": ([{**SET, "layer": "roads"}], ["has no layer 'roads'", "plan"]),
    "lines-for-polygons": ([{**SET, "path": "line.gpkg"}], ["holds lines", "polygons"]),
    "no-overlap": ([{**SET, "path": "far.gpkg"}], ["does not overlap the analysis grid"]),
    "no-crs": ([{**SET, "path": "nocrs.gpkg"}], ["has no CRS"]),
    "lines-without-width": (
        [{"kind": "resistance", "path": "line.gpkg", "barrier": True}],
        ["holds lines; set width"],
    ),
}


def _invoke(*args: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("hwc-risk: error:")]
    return result.exit_code, errors, result.stderr


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_mistake_gives_one_line_and_changes_nothing(area_run: Path, case: str) -> None:
    edits, needles = ERRORS[case]
    path = area_run.parent / f"{case}.yaml"
    if isinstance(edits, str):
        path.write_text(edits)
    else:
        path.write_text(yaml.safe_dump({"scenarios": [{"name": "s", "edits": edits}]}))
    run_dir = next(p for p in (area_run.parent / "out" / "synthetic").iterdir() if p.is_dir())
    before = _state(run_dir)
    code, errors, stderr = _invoke("scenario", str(area_run), str(path), "--month", run_dir.name)
    assert code == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert str(path) in errors[0] or case in ("gpkg-missing",)
    assert _state(run_dir) == before


def test_a_run_folder_missing_or_made_from_other_inputs(area_run: Path) -> None:
    run_dir = next(p for p in (area_run.parent / "out" / "synthetic").iterdir() if p.is_dir())
    plan = area_run.parent / "plan.yaml"
    plan.write_text(yaml.safe_dump({"scenarios": [{"name": "s", "edits": [SET]}]}))
    before = _state(run_dir)
    code, errors, _ = _invoke("scenario", str(area_run), str(plan), "--month", "2024-03")
    assert code == 2 and "no complete run of 2024-03" in errors[0]
    assert "run `hwc-risk run" in errors[0]
    other = area_run.with_name("changed.yaml")
    other.write_text(area_run.read_text())
    edit_config(other, seed=7)
    code, errors, _ = _invoke("scenario", str(other), str(plan), "--month", run_dir.name)
    assert code == 2 and "fingerprint differs" in errors[0] and "first" in errors[0]
    assert _state(run_dir) == before


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("no-overlap", ["scenarios.0.edits.0 (s, set_class)", "does not overlap the analysis"]),
        ("layer-missing", ["scenarios.0.edits.0 (s, set_class)", "has no layer 'roads'"]),
        ("lines-for-polygons", ["holds lines", "polygons"]),
    ],
)
def test_a_run_with_a_bad_plan_stops_before_its_long_steps(
    area_run: Path, case: str, needles: list[str]
) -> None:
    """The config's scenarios are read in the plan stage: one line naming the config and
    the edit, exit 2, and no run folder (nor a half-written scenarios/ folder)."""
    edit = ERRORS[case][0][0]  # type: ignore[index]
    config = area_run.with_name(f"run-{case}.yaml")
    config.write_text(area_run.read_text())
    edit_config(config, name=f"bad-{case}", scenarios=[{"name": "s", "edits": [edit]}])
    code, errors, stderr = _invoke("run", str(config), "-q")
    assert code == 2 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert str(config) in errors[0]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert not (area_run.parent / "out" / f"bad-{case}").exists()
    code, errors, _ = _invoke("validate", str(config))
    assert code == 2 and all(n in errors[0] for n in needles)
