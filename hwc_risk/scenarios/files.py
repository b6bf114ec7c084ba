"""The folder a scenario writes: ``<run folder>/scenarios/<name>/``.

From the scenario's working files (tiled GeoTIFFs written chunk by chunk) and
measures, :func:`write_scenario_files` writes, as the output registry
(:data:`hwc_risk.export.outputs.SCENARIO_OUTPUTS`) describes them:

- ``risk.tif``, ``risk_delta.tif`` (with a diverging QGIS style symmetric about
  0, limits at the 98th percentile of the change) and ``risk_class.tif`` on the
  baseline's thresholds (colour table; tags and style with this scenario's
  area shares);
- ``extrapolation.tif`` (MESS) and ``extrapolation_variable.tif``;
- with connectivity solved again: ``connectivity_delta.tif`` and
  ``pinch_points.tif`` (1 lost, 2 kept, 3 gained; from the solve grid);
- ``hotspots.gpkg`` (layers ``hotspots``, ``new_hotspots``,
  ``vanished_hotspots``), ``edits.gpkg`` (one layer per drawn edit) and
  ``summary.json``, which says that nothing was refitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from ..classes import RISK_CLASSES
from ..compute import Compute, run_windows
from ..covariates import create_band
from ..export.geotiff import class_colormap, write_cog
from ..export.outputs import scenario_output
from ..export.qgis import write_diverging_qml, write_palette_qml
from ..export.report import write_json
from ..grid import GridSpec
from .config import ScenarioConfig
from .edits import PreparedScenario
from .summary import (
    ConnectivityChange,
    DifferenceJob,
    HotspotChanges,
    ScenarioSummary,
    SurfaceComparison,
    difference_window,
)

__all__ = [
    "NOTHING_REFITTED",
    "PINCH_CODES",
    "ScenarioMeasures",
    "edits_frame",
    "write_scenario_files",
]

#: What every scenario's ``summary.json`` says of the model.
NOTHING_REFITTED = (
    "nothing was refitted: the model of {month} ('{model}') evaluated on edited inputs; "
    "where they leave the training range (extrapolation.tif) its answer is a guess"
)

#: The codes of ``pinch_points.tif``: (code, colour, label).
PINCH_CODES = (
    (1, "#2c7bb6", "pinch point lost"),
    (2, "#9e9e9e", "pinch point kept"),
    (3, "#d7191c", "pinch point gained"),
)


@dataclass(frozen=True, kw_only=True)
class ScenarioMeasures:
    """A scenario's working files and measures, before its folder is written."""

    risk: Path  # tiled GTiff
    comparison: SurfaceComparison  # delta and classes (tiled), tallies
    mess: Path
    mess_variable: Path
    mess_features: tuple[str, ...]
    hotspots: gpd.GeoDataFrame
    changes: HotspotChanges
    network: ConnectivityChange | None
    current_files: tuple[Path, Path] | None  # the baseline's and scenario's current (grid)
    summary: ScenarioSummary
    changed_features: tuple[str, ...]
    shipped: str = "model"  # the map the run ships (hwc_risk.map_choice)
    model_share: float = 1.0  # how much it moves per unit of the model's surface


def _shipped_note(shipped: str, share: float) -> dict[str, object]:
    """What the scenario's map is, given the map the run ships."""
    if shipped == "model":
        note = "the run ships the model's map: the scenario's map is the model's on its inputs"
    elif share == 0.0:
        note = (
            f"the run ships '{shipped}', history alone: a plan changes covariates, not past "
            "reports, so the scenario leaves the map as it is"
        )
    else:
        note = (
            f"the run ships '{shipped}', a blend of the model and history: the scenario's map "
            "is the baseline's plus the model's share of the change in the model's map "
            "(history and scaling held)"
        )
    return {"chosen": shipped, "model_share": share, "note": note}


def edits_frame(scenario: ScenarioConfig, prepared: PreparedScenario, crs: CRS) -> gpd.GeoDataFrame:
    """The edits as drawn (in the grid's CRS): one row per geometry, with the edit's
    number, kind, covariate, description and the layer's ``name`` when it has one."""
    rows: list[dict[str, object]] = []
    for j, (edit, shapes) in enumerate(zip(scenario.edits, prepared.shapes, strict=True)):
        if shapes is None:  # a replaced raster has no outline
            continue
        for k, geometry in enumerate(shapes.geometries):
            rows.append(
                {
                    "edit": j,
                    "kind": edit.kind,
                    "covariate": getattr(edit, "covariate", None) or "resistance",
                    "description": edit.description or scenario.description or "",
                    "name": shapes.names[k] if k < len(shapes.names) else "",
                    "geometry": geometry,
                }
            )
    columns = ["edit", "kind", "covariate", "description", "name", "geometry"]
    frame = pd.DataFrame(rows, columns=columns)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=crs)


def _cog(tiled: Path, folder: Path, filename: str, tags: dict[str, str]) -> Path:
    spec = scenario_output(folder.name, filename)
    units = {"units": spec.units} if spec.units else {}
    return write_cog(tiled, folder / filename, categorical=spec.categorical, tags={**tags, **units})


def _class_entries(comparison: SurfaceComparison, thresholds: dict[str, float]) -> list[str]:
    """One label per class (highest first): its baseline threshold and area shares."""
    before, after = comparison.baseline.cells, comparison.scenario.cells
    total_before, total_after = max(1, int(before[1:].sum())), max(1, int(after[1:].sum()))
    labels = []
    for cls in RISK_CLASSES:
        bound = thresholds.get(cls.label)
        rule = f"risk ≥ {bound:.3f}" if bound is not None and cls.code != 1 else "the rest"
        labels.append(
            f"{cls.label} ({rule}, baseline thresholds): {after[cls.code] / total_after:.1%} of "
            f"the area (baseline {before[cls.code] / total_before:.1%})"
        )
    return labels


def _risk_files(
    folder: Path, m: ScenarioMeasures, tags: dict[str, str], thresholds: dict[str, float]
) -> list[Path]:
    """risk.tif, risk_delta.tif and risk_class.tif with their QGIS styles."""
    comparison = m.comparison
    out = [_cog(m.risk, folder, "risk.tif", tags)]
    out.append(_cog(comparison.delta, folder, "risk_delta.tif", tags))
    limit = comparison.delta_limit()
    out.append(write_diverging_qml(folder / "risk_delta.qml", limit, "Change in relative risk"))
    labels = _class_entries(comparison, thresholds)
    with rasterio.open(comparison.classes, "r+") as ds:
        ds.update_tags(
            **{f"class_{c.code}": text for c, text in zip(RISK_CLASSES, labels, strict=True)}
        )
        ds.write_colormap(1, class_colormap())
        ds.colorinterp = [ColorInterp.palette]
    out.append(_cog(comparison.classes, folder, "risk_class.tif", tags))
    entries = [(c.code, c.colour, text) for c, text in zip(RISK_CLASSES, labels, strict=True)]
    entries.sort()
    out.append(write_palette_qml(folder / "risk_class.qml", entries, "Scenario risk classes"))
    return out


@dataclass(frozen=True)
class NearestJob:
    """Codes on a grid ``factor`` times coarser, upsampled by nearest cell."""

    codes: np.ndarray
    factor: int


def nearest_window(job: NearestJob, window: Window) -> list[np.ndarray]:
    """The window task: each cell takes the code of the coarse cell it lies in."""
    r0, c0 = int(window.row_off), int(window.col_off)
    rows = (r0 + np.arange(int(window.height))) // job.factor
    cols = (c0 + np.arange(int(window.width))) // job.factor
    return [job.codes[np.ix_(rows, cols)].astype(np.uint8)]


def _current_limit(network: ConnectivityChange) -> float:
    """The 98th percentile of the current's change (on the solve grid: bounded)."""
    delta = np.abs(network.scenario.layers[network.layer] - network.base.layers[network.layer])
    moved = delta[np.isfinite(delta) & (delta > 0)]
    return float(np.percentile(moved, 98)) if moved.size else 1.0


def _connectivity_files(
    folder: Path,
    m: ScenarioMeasures,
    grid: GridSpec,
    tags: dict[str, str],
    compute: Compute,
    work: Path,
) -> list[Path]:
    """connectivity_delta.tif and pinch_points.tif (when connectivity was solved again)."""
    out: list[Path] = []
    if m.current_files is not None:
        delta = create_band(work / "connectivity_delta_tiled.tif", grid, "current delta")
        job = DifferenceJob(*(str(p) for p in m.current_files))
        run_windows(difference_window, job, [delta], compute, grid.shape, "scenario: current")
        out.append(_cog(delta, folder, "connectivity_delta.tif", tags))
        limit = _current_limit(m.network) if m.network is not None else 1.0
        out.append(write_diverging_qml(folder / "connectivity_delta.qml", limit, "Current"))
    if m.network is not None:
        pinch = create_band(
            work / "pinch_points_tiled.tif", grid, "pinch points", dtype="uint8", nodata=0
        )
        factor = round(m.network.base.grid.cell_size / grid.cell_size)
        job_n = NearestJob(m.network.pinch.codes, factor)
        run_windows(nearest_window, job_n, [pinch], compute, grid.shape, "scenario: pinch points")
        out.append(_cog(pinch, folder, "pinch_points.tif", tags))
        entries = list(PINCH_CODES)
        out.append(write_palette_qml(folder / "pinch_points.qml", entries, "Pinch points"))
    return out


def _hotspot_file(path: Path, hotspots: gpd.GeoDataFrame, changes: HotspotChanges) -> Path:
    for layer, frame in (
        ("hotspots", hotspots),
        ("new_hotspots", changes.new),
        ("vanished_hotspots", changes.vanished),
    ):
        frame.to_file(path, layer=layer, driver="GPKG")
    return path


def _edits_file(path: Path, edits: gpd.GeoDataFrame) -> Path:
    """One layer per drawn edit (``edit_N_<kind>``); an empty layer when none is drawn."""
    if edits.empty:
        edits.to_file(path, layer="edits", driver="GPKG")
        return path
    for (j, kind), frame in edits.groupby(["edit", "kind"], sort=True):
        frame.reset_index(drop=True).to_file(path, layer=f"edit_{j}_{kind}", driver="GPKG")
    return path


def write_scenario_files(
    folder: Path,
    m: ScenarioMeasures,
    edits: gpd.GeoDataFrame,
    grid: GridSpec,
    tags: dict[str, str],
    thresholds: dict[str, float],
    compute: Compute,
) -> list[Path]:
    """Write the scenario's folder (see the module's docstring); the files, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    work = m.risk.parent
    scenario_tags = {**tags, "scenario": folder.name}
    out = _risk_files(folder, m, scenario_tags, thresholds)
    out.append(_cog(m.mess, folder, "extrapolation.tif", scenario_tags))
    out.append(_cog(m.mess_variable, folder, "extrapolation_variable.tif", scenario_tags))
    out += _connectivity_files(folder, m, grid, scenario_tags, compute, work)
    out.append(_hotspot_file(folder / "hotspots.gpkg", m.hotspots, m.changes))
    out.append(_edits_file(folder / "edits.gpkg", edits))
    record = {
        **m.summary.record(),
        "nothing_refitted": NOTHING_REFITTED.format(
            month=tags.get("month", "the month"), model=tags.get("model", "")
        ),
        "changed_features": list(m.changed_features),
        "extrapolation_features": list(m.mess_features),
        "delta_limit": m.comparison.delta_limit(),
        "map_shipped": _shipped_note(m.shipped, m.model_share),
    }
    out.append(write_json(folder / "summary.json", record))
    return out
