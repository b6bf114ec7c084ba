"""The scenario stage: the month's fitted model evaluated on a planner's edited inputs.

After the predict stage, for every scenario of the config
(:func:`scenarios_stage`; ``hwc-risk scenario`` runs the same
:func:`evaluate_scenarios` on an existing run folder):

1. the edits' GeoPackages are read and checked
   (:func:`~hwc_risk.scenarios.edits.prepare_scenario`);
2. the scenario's features are built with the baseline's classes and
   transforms, connectivity solved again where the plan touches it
   (:func:`~hwc_risk.scenarios.stack.scenario_stack`);
3. the fitted model predicts the scenario's risk, chunk by chunk; **nothing is
   refitted**;
4. the scenario is measured against the baseline: risk delta, classes on the
   baseline's thresholds, area and people per class, new and vanished
   hotspots, MESS over the features the plan changed, the current a new line
   cuts and where pinch points move (:mod:`hwc_risk.scenarios.summary`);
5. its folder ``scenarios/<name>/`` is written (:mod:`hwc_risk.scenarios.files`),
   and ``scenarios/summary.csv`` puts every scenario side by side.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.windows import Window

from ..bands import FileBand, read_band
from ..compute import Compute, run_windows
from ..config import ConnectivityConfig, FeaturesConfig
from ..covariates import FeatureStack, create_band
from ..export.hotspots import hotspot_polygons
from ..export.products import people_per_cell, run_tags
from ..extrapolation import MessReference, write_extrapolation
from ..grid import GridSpec
from ..incidents import MonthIncidents
from ..modelling import FittedModel
from ..plan import Plan
from ..predict import RiskMap, predict_to_geotiff
from ..selection import Selection
from .config import BurnLinesEdit, ResistanceEdit, ScenarioConfig
from .edits import PreparedScenario, prepare_scenario
from .files import ScenarioMeasures, edits_frame, write_scenario_files
from .results import ScenarioResults, ScenarioRun
from .stack import ScenarioStack, scenario_stack
from .summary import (
    ConnectivityChange,
    ScenarioSummary,
    compare_surfaces,
    current_across_line,
    hotspot_changes,
    line_cells,
    pinch_point_change,
    write_scenarios_csv,
)

__all__ = [
    "ScenarioBasis",
    "ShiftJob",
    "baseline_of",
    "connectivity_change",
    "evaluate_scenarios",
    "run_scenario",
    "scenarios_stage",
    "shift_window",
    "warn_history_alone",
]

log = logging.getLogger(__name__)

#: Layers whose current the line cut and the pinch points are measured on.
_CURRENTS = ("connectivity_current", "connectivity_omniscape_current")
#: The share of cells (by current) that are pinch points.
PINCH_SHARE = 0.02


@dataclass(frozen=True, kw_only=True)
class ScenarioBasis:
    """The baseline a scenario is measured against: the month's features, model and map."""

    stack: FeatureStack  # the features stage's (aligned covariates, connectivity solve)
    fitted: FittedModel  # the model, its training samples and the stack it maps
    risk: RiskMap  # the baseline's risk, classes and class thresholds
    hotspots: gpd.GeoDataFrame  # the baseline's hotspots
    incidents: pd.DataFrame  # the incidents used (cells), counted in hotspots
    settings: FeaturesConfig
    connectivity: ConnectivityConfig | None
    people: Path | None  # people per cell x people_factor (outputs.population_covariate)
    people_factor: float
    population: str | None  # the covariate people come from
    tags: dict[str, str]  # the run's GeoTIFF tags (month, model, map, version, name)
    source: str  # the file the scenarios come from, for messages
    shipped: str = "model"  # the map the run ships (hwc_risk.map_choice)
    model_share: float = 1.0  # how much the shipped map moves per unit of the model's

    @property
    def grid(self) -> GridSpec:
        return self.stack.grid

    @property
    def month(self) -> str:
        return self.tags.get("month", "")


def _new_lines(scenario: ScenarioConfig, prepared: PreparedScenario) -> list[object]:
    """The lines a scenario draws (roads, fences): burnt lines and resistance lines."""
    out: list[object] = []
    for edit, shapes in zip(scenario.edits, prepared.shapes, strict=True):
        drawn = isinstance(edit, BurnLinesEdit | ResistanceEdit)
        if drawn and shapes is not None and shapes.kind == "lines":
            out.extend(shapes.geometries)
    return out


def connectivity_change(
    basis: ScenarioBasis, built: ScenarioStack, scenario: ScenarioConfig, prepared: PreparedScenario
) -> ConnectivityChange | None:
    """The current cut by the scenario's new lines and the pinch points that move,
    on the solve grid (summing upsampled currents over a thin line would count it
    as many times as the grid was coarsened)."""
    base, scen = basis.stack.connectivity, built.solve
    if base is None or scen is None:
        return None
    layer = next((n for n in _CURRENTS if n in base.layers and n in scen.layers), None)
    if layer is None:
        return None
    before, after = base.layers[layer], scen.layers[layer]
    grid, pairwise = base.grid, layer == "connectivity_current"
    lines = _new_lines(scenario, prepared)
    cut = None
    if lines:
        k = int(base.patches.max())
        cells = line_cells(lines, grid.transform, grid.shape)
        cut = current_across_line(before, after, cells, k * (k - 1) // 2 if pairwise else None)
    valid = np.isfinite(base.resistance)
    if pairwise:  # patches are short-circuited: each cell carries its patch's current
        valid &= (base.patches == 0) & (scen.patches == 0)
    pinch = pinch_point_change(before, after, valid, PINCH_SHARE)
    return ConnectivityChange(layer=layer, base=base, scenario=scen, cut=cut, pinch=pinch)


def _mess_features(basis: ScenarioBasis, built: ScenarioStack) -> list[str]:
    """The features MESS is measured on: those the plan changed, but 0/1 class
    indicators (their training range is always 0-1); every such feature when the plan
    changed none, but the month's time features (a plan changes no month)."""
    kinds = {layer.name: layer.kind for layer in basis.fitted.stack.layers}
    changed = [n for n in built.changed if kinds.get(n) != "is"]
    return changed or [n for n in basis.fitted.names if kinds.get(n, "is") not in ("is", "time")]


def _extrapolation(
    basis: ScenarioBasis, built: ScenarioStack, work: Path, compute: Compute
) -> tuple[Path, Path, list[str]]:
    """MESS of the scenario's changed features against the training samples'."""
    names = _mess_features(basis, built)
    ref = MessReference.from_samples(basis.fitted.X, basis.fitted.names).subset(names)
    files = {layer.name: layer.file for layer in built.stack.layers if layer.name in names}
    mess, variable = write_extrapolation(
        ref, files, basis.grid, work / "mess_tiled.tif", work / "mess_variable_tiled.tif", compute
    )
    return mess, variable, names


def _edits_text(scenario: ScenarioConfig) -> str:
    parts = []
    for edit in scenario.edits:
        covariate = getattr(edit, "covariate", None)
        parts.append(f"{edit.kind} {covariate}" if covariate else edit.kind)
    return "; ".join(parts)


def _current_files(
    basis: ScenarioBasis, built: ScenarioStack, network: ConnectivityChange | None
) -> tuple[Path, Path] | None:
    """The baseline's and the scenario's current layer on the grid (for the delta)."""
    if network is None or network.layer not in built.rebuilt:
        return None
    base = next((x for x in basis.stack.layers if x.name == network.layer), None)
    return None if base is None else (base.file, built.rebuilt[network.layer].file)


@dataclass(frozen=True)
class ShiftJob:
    """The baseline's shipped map moved by a share of the change in the model's surface."""

    shipped: FileBand
    before: FileBand  # the model's surface on the baseline's inputs
    after: FileBand  # the model's surface on the scenario's
    share: float


def shift_window(job: ShiftJob, window: Window) -> list[np.ndarray]:
    """``shipped + share * (after - before)`` in a window (NaN where any is NaN)."""
    base = read_band(job.shipped, window).astype(np.float64)
    change = read_band(job.after, window) - read_band(job.before, window).astype(np.float64)
    return [(base + job.share * change).astype(np.float32)]


def _scenario_map(basis: ScenarioBasis, model_risk: Path, work: Path, compute: Compute) -> Path:
    """The scenario's map as the run ships it: the model's surface itself when the run
    ships the model, else the baseline's shipped map moved by the model's share of it
    (history and scaling held: a plan changes the covariates, not the past reports)."""
    before = basis.risk.model or basis.risk.risk
    if basis.model_share == 1.0 and before == basis.risk.risk:
        return model_risk
    grid = basis.grid
    out = create_band(work / "shipped_tiled.tif", grid, "relative conflict risk", compute.block)
    job = ShiftJob(
        shipped=FileBand(basis.risk.risk),
        before=FileBand(before),
        after=FileBand(model_risk),
        share=basis.model_share,
    )
    run_windows(shift_window, job, [out], compute, grid.shape, "scenario map")
    return out


def _measure(
    basis: ScenarioBasis,
    scenario: ScenarioConfig,
    prepared: PreparedScenario,
    built: ScenarioStack,
    work: Path,
    compute: Compute,
) -> ScenarioMeasures:
    """Predict the scenario and measure it against the baseline (work files)."""
    grid, fitted = basis.grid, basis.fitted
    model_risk = predict_to_geotiff(fitted.model, built.stack, work / "model_tiled.tif", compute)
    risk = _scenario_map(basis, model_risk, work, compute)
    mess, variable, mess_names = _extrapolation(basis, built, work, compute)
    people = built.edited.get(basis.population) if basis.population else None
    comparison = compare_surfaces(
        basis.risk.risk, risk, basis.risk.thresholds, grid, work, basis.people,
        basis.people_factor, compute, mess, people, basis.risk.classes,
    )  # fmt: skip
    hotspots = hotspot_polygons(
        comparison.classes, risk, grid, people or basis.people, basis.people_factor,
        incidents=basis.incidents, chunk=compute.chunk_size,
    )  # fmt: skip
    changes = hotspot_changes(basis.hotspots, hotspots)
    network = connectivity_change(basis, built, scenario, prepared)
    n_changed, outside = comparison.changed_cells, comparison.extrapolated_cells
    summary = ScenarioSummary(
        name=scenario.name,
        description=scenario.description or "",
        edits=_edits_text(scenario),
        cell_km2=abs(grid.transform.a * grid.transform.e) / 1e6,
        comparison=comparison,
        new_hotspots=len(changes.new),
        vanished_hotspots=len(changes.vanished),
        extrapolated_share=(outside / n_changed) if outside is not None and n_changed else 0.0,
        current_cut=network.cut if network else None,
        pinch=network.pinch if network else None,
        pinch_cell_km2=network.base.grid.cell_size**2 / 1e6 if network else None,
    )
    return ScenarioMeasures(
        risk=risk, comparison=comparison, mess=mess, mess_variable=variable,
        mess_features=tuple(mess_names), hotspots=hotspots, changes=changes, network=network,
        current_files=_current_files(basis, built, network), summary=summary,
        changed_features=built.changed, shipped=basis.shipped, model_share=basis.model_share,
    )  # fmt: skip


def run_scenario(
    scenario: ScenarioConfig,
    index: int,
    basis: ScenarioBasis,
    out_dir: Path,
    work: Path,
    compute: Compute,
) -> ScenarioRun:
    """Evaluate one scenario and write ``out_dir/<name>/`` (see the module's docstring)."""
    start = time.perf_counter()
    where = f"{basis.source}: scenarios.{index}"
    log.info("scenario %s: reading the edits", scenario.name)
    prepared = prepare_scenario(scenario, basis.grid, where)
    work = work / scenario.name
    built = scenario_stack(
        basis.stack, basis.fitted.stack, scenario, prepared, basis.settings, basis.connectivity,
        work, compute, where,
    )  # fmt: skip
    measured = _measure(basis, scenario, prepared, built, work, compute)
    folder = out_dir / scenario.name
    edits = edits_frame(scenario, prepared, basis.grid.crs)
    files = write_scenario_files(
        folder, measured, edits, basis.grid, basis.tags, basis.risk.thresholds, compute
    )
    seconds = time.perf_counter() - start
    log.info("scenario %s done in %.1f s", scenario.name, seconds)
    return ScenarioRun(
        scenario=scenario,
        summary=measured.summary,
        folder=folder,
        files=tuple(files),
        edits=edits,
        hotspots=measured.changes,
        changed_features=built.changed,
        delta_limit=measured.comparison.delta_limit(),
        seconds=seconds,
    )


def evaluate_scenarios(
    scenarios: list[ScenarioConfig],
    basis: ScenarioBasis,
    out_dir: Path,
    work: Path,
    compute: Compute,
) -> ScenarioResults:
    """Every scenario into ``out_dir/<name>/``, and ``out_dir/summary.csv`` side by side."""
    if not scenarios:
        return ScenarioResults()
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = tuple(
        run_scenario(scenario, i, basis, out_dir, work, compute)
        for i, scenario in enumerate(scenarios)
    )
    table = write_scenarios_csv(out_dir / "summary.csv", [run.summary for run in runs])
    return ScenarioResults(runs=runs, table=table)


def baseline_of(
    plan: Plan,
    stack: FeatureStack,
    used: pd.DataFrame,
    fitted: FittedModel,
    risk: RiskMap,
    work: Path,
    compute: Compute,
    source: str,
    shipped: tuple[str, float] = ("model", 1.0),
) -> ScenarioBasis:
    """The baseline of a run's month as scenarios need it: its stages' results, the
    people per cell and the baseline's hotspots (as the products stage draws them);
    ``shipped`` the map the run ships and the model's share of it."""
    config = plan.config
    work.mkdir(parents=True, exist_ok=True)
    people, factor = people_per_cell(config.outputs, config, plan.grid, work)
    hotspots = hotspot_polygons(
        risk.classes, risk.risk, plan.grid, people, factor, incidents=used,
        chunk=compute.chunk_size,
    )  # fmt: skip
    return ScenarioBasis(
        stack=stack,
        fitted=fitted,
        risk=risk,
        hotspots=hotspots,
        incidents=used,
        settings=config.features,
        connectivity=config.connectivity,
        people=people,
        people_factor=factor,
        population=config.outputs.population_covariate,
        tags=run_tags(config.name, plan.month.label, fitted.recipe.name) | {"map": shipped[0]},
        source=source,
        shipped=shipped[0],
        model_share=shipped[1],
    )


def warn_history_alone(shipped: str, share: float) -> None:
    """Say in the log when the shipped map is history alone: plans change nothing on it."""
    if share == 0.0:
        log.warning(
            "the run ships '%s' (history alone, chosen on held-out months): a plan changes "
            "the covariates, not the past reports, so the scenarios change nothing on the "
            "map (each scenario's summary.json says so)",
            shipped,
        )


def scenarios_stage(
    plan: Plan,
    stack: FeatureStack,
    incidents: MonthIncidents,
    selection: Selection,
    fitted: FittedModel,
    risk: RiskMap,
    staging: Path,
    compute: Compute,
) -> ScenarioResults:
    """The scenario stage of a run: the config's ``scenarios:`` evaluated with the
    month's fitted model, into ``staging/scenarios/`` (nothing when there are none)."""
    config = plan.config
    if not config.scenarios:
        return ScenarioResults()
    work = staging / "_work" / "scenarios"
    source = str(config.config_path or "the config")
    share = selection.model_share(FileBand(risk.model or risk.risk), plan.month)
    warn_history_alone(selection.shipped, share)
    basis = baseline_of(
        plan, stack, incidents.used, fitted, risk, work, compute, source,
        (selection.shipped, share),
    )  # fmt: skip
    return evaluate_scenarios(config.scenarios, basis, staging / "scenarios", work, compute)
