"""``hwc-risk scenario``: scenarios evaluated on an existing run folder, without a rerun.

A run folder keeps no fitted model (pickles are fragile across versions and
unsafe to load), so :func:`add_scenarios` fits it again, exactly:

1. the plan stage, then checks: the month's run folder exists and is complete,
   and its ``fingerprint`` is the plan's (same config, inputs, version), else
   exit 2 with "run `hwc-risk run CONFIG --month M` first";
2. the scenario file is read and checked against the config (exit 2);
3. the features and samples stages, and the fit stage **without selection**:
   the recipe, the features and the history settings the run recorded
   (``manifest.json`` ``final_fit``); the refitted model's map must equal the
   folder's ``risk.tif`` cell for cell (else the run cannot be reproduced here:
   exit 1, or exit 2 when the installed packages differ from the run's);
4. the scenario stage (:func:`~hwc_risk.scenarios.stage.evaluate_scenarios`).

The result goes into a staging copy of the run folder (its files linked, not
copied): the new ``scenarios/<name>/`` folders (a name already there is
replaced; the others are kept), ``scenarios/summary.csv`` with every scenario,
a new ``map.html`` and ``bulletin.*``, ``manifest.json`` (its ``scenarios``
and ``outputs``) and ``item.json``. The copy replaces the run folder by the
same atomic moves a run makes, under the month's lock, so an interrupted
command leaves the run folder as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from ..bands import FileBand, FileStore, file_of
from ..compute import GDAL_CACHE_MB, Compute, open_compute
from ..config import PipelineConfig
from ..covariates import FeatureStack
from ..errors import InputError
from ..export.bulletin import write_run_bulletin
from ..export.outputs import spec_for
from ..export.products import planners_map
from ..export.report import file_record, package_versions, write_json
from ..export.scenario_map import ScenarioLayers, ScenarioMap
from ..export.stac import write_stac_item
from ..history import HistorySettings
from ..incidents import MonthIncidents, incidents_for_month
from ..map_choice import MapChoice, chosen_surface, model_share
from ..modelling import MIN_TRAINING_INCIDENTS, Design, FittedModel, fit_final
from ..models import average_recipe
from ..months import Month
from ..plan import Plan, plan_run
from ..predict import RiskMap, predict_to_geotiff
from ..runfolder import RunFolders, read_manifest
from ..sampling import draw_samples
from ..temporal.stack import run_features
from .config import ScenarioFile, check_scenarios, load_scenarios
from .results import ScenarioResults
from .stage import ScenarioBasis, baseline_of, evaluate_scenarios, warn_history_alone
from .summary import read_table_csv, read_thresholds, write_table_csv

__all__ = ["ScenarioCommandResult", "add_scenarios", "refit_final"]

log = logging.getLogger(__name__)

#: Files of the run folder the command writes again.
_REWRITTEN = {"map.html", "bulletin.html", "bulletin.pdf", "manifest.json", "item.json"}


@dataclass(frozen=True)
class ScenarioCommandResult:
    """What ``hwc-risk scenario`` wrote."""

    run_dir: Path
    scenarios: list[str]  # the names evaluated
    outputs: list[Path]  # the new files of the run folder
    table: Path  # scenarios/summary.csv


def _run_folder(config: PipelineConfig, month: str, output_dir: Path | None) -> Path:
    out = Path(output_dir if output_dir is not None else config.output_dir)
    return out / config.name / Month.parse(month).label


def _checked_manifest(run_dir: Path, plan: Plan, config: PipelineConfig) -> dict[str, Any]:
    """The run's manifest, checked to be complete, of the same inputs, and refittable."""
    rerun = f"run `hwc-risk run {config.config_path or 'CONFIG'} --month {plan.month.label}`"
    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("status") != "complete":
        raise InputError(f"{run_dir}: no complete run of {plan.month.label}; {rerun} first")
    if manifest.get("fingerprint") != plan.fingerprint:
        raise InputError(
            f"{run_dir}: made from another config, other inputs or another hwc-risk version "
            f"(its fingerprint differs); {rerun} first"
        )
    if "final_fit" not in manifest:
        raise InputError(f"{run_dir}: the run does not record its final fit; {rerun} --force")
    return manifest


def refit_final(
    plan: Plan,
    stack: FeatureStack,
    incidents: MonthIncidents,
    record: dict[str, Any],
    work: Path,
    compute: Compute,
) -> tuple[FittedModel, Design]:
    """The run's final model fitted again from what ``manifest.json`` ``final_fit``
    records: the recipe, the static features kept and the history settings (no
    selection: it would choose the same, at many times the cost), and its design."""
    cfg = plan.config
    samples = draw_samples(
        stack, incidents.used, cfg.background, cfg.incidents, cfg.seed, work, plan.month
    )
    design = Design.of(samples, stack, cfg.seed, FileStore(work, compute.block), compute)
    wanted = list(record["features"])
    keep = [k for k, layer in enumerate(stack.layers) if layer.name in wanted]
    design = replace(design, keep=keep)
    settings = _history_settings(record.get("history"))
    if settings is not None:
        design = design.with_history(settings)
    if design.names != wanted:
        raise RuntimeError(
            f"the features rebuilt ({', '.join(design.names)}) are not the run's "
            f"({', '.join(wanted)})"
        )
    recipe = plan.recipe
    if recipe.estimator == "auto":
        recipe = average_recipe(str(record["recipe"]).split("+"), plan.config_dir)
    return fit_final(design, recipe, plan.month), design


def _history_settings(record: dict[str, Any] | None) -> HistorySettings | None:
    if record is None:
        return None
    tau = record["tau_months"]
    return HistorySettings(np.inf if tau is None else float(tau), record["bandwidth"])


def _shipped(
    plan: Plan, design: Design, model: Path, record: dict[str, Any]
) -> tuple[Path, str, float]:
    """The map the run shipped, made again from the refitted model's surface as the
    predict stage made it (:mod:`hwc_risk.map_choice`), the candidate and the model's
    share of it."""
    chosen = str(record.get("shipped", "model"))
    settings = _history_settings(record.get("shipped_history"))
    if chosen == "model" or settings is None:
        return model, "model", 1.0
    choice = MapChoice(chosen=chosen, reason="recorded", months=[], pooled={})
    shipped = chosen_surface(choice, design, FileBand(model), plan.month, settings)
    share = model_share(chosen, design, FileBand(model), plan.month, settings)
    return file_of(shipped), chosen, share


def _differences(a_path: Path, b_path: Path, compute: Compute) -> tuple[int, float]:
    """Cells where two surfaces differ (NaN equals NaN), and the largest difference."""
    cells, largest = 0, 0.0
    with rasterio.open(a_path) as a, rasterio.open(b_path) as b:
        for win in compute.windows((a.height, a.width)):
            x, y = a.read(1, window=win), b.read(1, window=win)
            differ = ~((x == y) | (np.isnan(x) & np.isnan(y)))
            cells += int(differ.sum())
            if differ.any():
                largest = max(largest, float(np.nanmax(np.abs(x[differ] - y[differ]))))
    return cells, largest


def _check_reproduced(
    risk: Path, run_dir: Path, manifest: dict[str, Any], compute: Compute
) -> None:
    """The refitted model's map must be the run's ``risk.tif``, cell for cell."""
    cells, largest = _differences(risk, run_dir / "risk.tif", compute)
    if not cells:
        return
    text = (
        f"{run_dir / 'risk.tif'}: the model fitted again gives another map ({cells} cells "
        f"differ, by up to {largest:.3g})"
    )
    installed = package_versions()
    recorded = manifest.get("packages", {})
    changed = sorted(k for k, v in recorded.items() if installed.get(k) != v)
    if changed:
        raise InputError(
            f"{text}: the run was made with other packages ({', '.join(changed)}); run "
            "`hwc-risk run CONFIG --month M --force` with these, then the scenario"
        )
    raise RuntimeError(f"{text}, with the same packages: please report this bug")


def _basis(
    plan: Plan, run_dir: Path, manifest: dict[str, Any], source: Path, work: Path, compute: Compute
) -> ScenarioBasis:
    """The run's baseline, rebuilt: features, incidents, the model refitted and checked."""
    cfg, grid = plan.config, plan.grid
    stack = run_features(plan, work, compute)
    incidents = incidents_for_month(
        plan.incidents, grid, stack.valid, plan.month, MIN_TRAINING_INCIDENTS, cfg.incidents,
        cfg.config_path,
    )  # fmt: skip
    record = manifest["final_fit"]
    fitted, design = refit_final(plan, stack, incidents, record, work, compute)
    model = predict_to_geotiff(fitted.model, fitted.stack, work / "risk_tiled.tif", compute)
    risk, chosen, share = _shipped(plan, design, model, record)
    _check_reproduced(risk, run_dir, manifest, compute)
    log.info("the refitted model reproduces %s exactly", run_dir / "risk.tif")
    warn_history_alone(chosen, share)
    baseline = RiskMap(
        risk=risk,
        classes=run_dir / "risk_class.tif",
        thresholds=read_thresholds(run_dir / "metrics.json"),
        model=model,
    )
    return baseline_of(
        plan, stack, incidents.used, fitted, baseline, work, compute, str(source), (chosen, share)
    )


def _link_run_folder(run_dir: Path, staging: Path, replaced: set[str]) -> None:
    """Every file of the run folder linked into ``staging``, but those the command writes
    again and the replaced scenarios' folders (files are never written in place)."""
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if path.is_dir() or rel.as_posix() in _REWRITTEN | {"scenarios/summary.csv"}:
            continue
        if rel.parts[0] == "scenarios" and len(rel.parts) > 2 and rel.parts[1] in replaced:
            continue
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def _merged_table(run_dir: Path, results: ScenarioResults, kept: list[str]) -> Any:
    """The run's scenarios kept and the new ones, side by side."""
    frame = results.frame()
    old = run_dir / "scenarios" / "summary.csv"
    if kept and old.is_file():
        before = read_table_csv(old)[kept]
        frame = before.join(frame, how="outer").reindex(frame.index)
    return frame


def _update_manifest(
    manifest: dict[str, Any],
    staging: Path,
    results: ScenarioResults,
    kept: list[str],
    new_files: list[Path],
) -> dict[str, Any]:
    """The manifest with the scenarios and the files as the folder now holds them."""
    added = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = dict(manifest)
    old = [s for s in manifest.get("scenarios", []) if s.get("name") in kept]
    new = [{**r, "added_by": "hwc-risk scenario", "added": added} for r in results.record(staging)]
    manifest["scenarios"] = old + new
    outputs = [o for o in manifest["outputs"] if (staging / o["path"]).is_file()]
    outputs = [
        o for o in outputs if o["path"] not in {str(p.relative_to(staging)) for p in new_files}
    ]
    manifest["outputs"] = outputs + [file_record(p, staging) for p in new_files]
    return manifest


def _stac(staging: Path, plan: Plan, manifest: dict[str, Any]) -> Path:
    units = {f["name"]: f["units"] for f in manifest["model"]["features"]}
    paths = [staging / o["path"] for o in manifest["outputs"]] + [staging / "manifest.json"]
    write_stac_item(
        staging / "item.json",
        run_name=plan.config.name,
        month=plan.month.label,
        grid=plan.grid,
        run_dir=staging,
        files=[(p, spec_for(p.relative_to(staging).as_posix(), units)) for p in paths],
        model=str(manifest["model"]["recipe"]),
        inputs=manifest["inputs"],
    )
    return staging / "item.json"


def _assemble(
    staging: Path,
    run_dir: Path,
    plan: Plan,
    basis: ScenarioBasis,
    manifest: dict[str, Any],
    results: ScenarioResults,
    kept: list[str],
) -> list[Path]:
    """The staging copy completed: table, map, bulletin, manifest and STAC item."""
    table = write_table_csv(
        staging / "scenarios" / "summary.csv", _merged_table(run_dir, results, kept)
    )
    layers = [ScenarioLayers.from_folder(staging / "scenarios" / n) for n in kept]
    scenario_map = ScenarioMap(
        layers=tuple(layers) + tuple(r.map_layers() for r in results.runs),
        table=read_table_csv(table),
    )
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    held = {r["label"]: r["held_out_capture"] for r in metrics["risk_classes"]}
    captures = {k: v for k, v in held.items() if v is not None} or None
    change = (manifest.get("change_since_previous") or {}).get("summary")
    new_files = [p for p in results.outputs if p != results.table] + [table]
    new_files.append(
        planners_map(staging, plan, basis.incidents, basis.hotspots, captures, change, scenario_map)
    )
    if plan.config.outputs.bulletin:
        new_files += write_run_bulletin(
            staging, manifest, metrics, plan.config.outputs.bulletin_paper
        )
    updated = _update_manifest(manifest, staging, results, kept, new_files)
    write_json(staging / "manifest.json", updated)
    _stac(staging, plan, updated)
    return new_files


def add_scenarios(
    config: PipelineConfig,
    scenarios_path: Path,
    month: str,
    output_dir: Path | None = None,
    offline: bool | None = None,
) -> ScenarioCommandResult:
    """Evaluate the scenarios of ``scenarios_path`` on the month's run folder (see the
    module's docstring) and return what was written."""
    run_dir = _run_folder(config, month, output_dir)
    recorded = read_manifest(run_dir) or {}
    if offline is None:
        offline = bool((recorded.get("map") or {}).get("offline", config.outputs.offline_map))
    plan = plan_run(config, month, output_dir, offline)
    manifest = _checked_manifest(run_dir, plan, config)
    checked = check_scenarios(
        load_scenarios(scenarios_path), config.covariates, config.connectivity is not None
    )
    return _evaluate_into(plan, run_dir, manifest, checked)


def _evaluate_into(
    plan: Plan, run_dir: Path, manifest: dict[str, Any], scenarios: ScenarioFile
) -> ScenarioCommandResult:
    """The scenarios evaluated into a staging copy that replaces the run folder."""
    names = [s.name for s in scenarios.scenarios]
    kept = [s["name"] for s in manifest.get("scenarios", []) if s.get("name") not in names]
    folders = RunFolders(plan.out_root)
    label = plan.month.label
    with folders.lock(label):
        for note in folders.recover():
            log.warning("%s", note)
        staging = folders.staging(label)
        try:
            start = time.perf_counter()
            _link_run_folder(run_dir, staging, set(names))
            with (
                rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
                open_compute(plan.config.compute) as compute,
            ):
                work = staging / "_work"
                basis = _basis(
                    plan, run_dir, manifest, scenarios.source or Path("scenarios"), work, compute
                )
                results = evaluate_scenarios(
                    scenarios.scenarios, basis, staging / "scenarios", work / "scenarios", compute
                )
                written = _assemble(staging, run_dir, plan, basis, manifest, results, kept)
                shutil.rmtree(work, ignore_errors=True)
            log.info("scenarios evaluated in %.1f s", time.perf_counter() - start)
            final = folders.commit(staging, label)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return ScenarioCommandResult(
        run_dir=final,
        scenarios=names,
        outputs=[final / p.relative_to(staging) for p in written],
        table=final / "scenarios" / "summary.csv",
    )
