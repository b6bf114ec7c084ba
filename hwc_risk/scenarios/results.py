"""What the scenario stage hands on: each scenario's measures, files and map layers.

:class:`ScenarioRun` is one scenario evaluated (its
:class:`~hwc_risk.scenarios.summary.ScenarioSummary`, the files of its folder,
its edits and its hotspot changes); :class:`ScenarioResults` all of a run's,
with the side-by-side ``scenarios/summary.csv``. The products stage draws them
on the map, the records stage lists them in the manifest and the STAC item, and
the bulletin reads the CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ..export.report import file_record
from ..export.scenario_map import ScenarioLayers, ScenarioMap
from .config import ScenarioConfig
from .summary import HotspotChanges, ScenarioSummary, scenarios_table

__all__ = ["ScenarioResults", "ScenarioRun", "scenario_inputs"]


def scenario_inputs(scenario: ScenarioConfig) -> list[dict[str, Any]]:
    """The files a scenario's edits read, hashed as the run's inputs are."""
    out = []
    for j, (key, path, layer) in enumerate(scenario.input_files()):
        edit = scenario.edits[j]
        out.append(
            {
                "role": f"scenario:{scenario.name}",
                "edit": j,
                "kind": edit.kind,
                "key": key,
                "layer": layer,
                **file_record(path),
            }
        )
    return out


@dataclass(frozen=True, kw_only=True)
class ScenarioRun:
    """One scenario evaluated against the month's baseline."""

    scenario: ScenarioConfig
    summary: ScenarioSummary
    folder: Path  # <run folder>/scenarios/<name>
    files: tuple[Path, ...]  # in the order written
    edits: gpd.GeoDataFrame  # the edits' geometries in the grid's CRS
    hotspots: HotspotChanges
    changed_features: tuple[str, ...]
    delta_limit: float  # the 98th percentile of |delta| over the changed cells
    seconds: float = 0.0

    def record(self, root: Path) -> dict[str, Any]:
        """The manifest's entry: name, description, edits (files hashed), outputs."""
        return {
            "name": self.scenario.name,
            "description": self.summary.description,
            "edits": scenario_inputs(self.scenario),
            "changed_features": list(self.changed_features),
            "outputs": [p.relative_to(root).as_posix() for p in self.files],
            "seconds": round(self.seconds, 3),
        }

    def map_layers(self) -> ScenarioLayers:
        """The scenario's layers on the planners' map."""
        return ScenarioLayers(
            name=self.scenario.name,
            description=self.summary.description,
            classes=self.folder / "risk_class.tif",
            delta=self.folder / "risk_delta.tif",
            delta_limit=self.delta_limit,
            extrapolation=self.folder / "extrapolation.tif",
            edits=self.edits,
            new_hotspots=self.hotspots.new,
            vanished_hotspots=self.hotspots.vanished,
        )


@dataclass(frozen=True)
class ScenarioResults:
    """The scenario stage's result (empty when the config has no scenarios)."""

    runs: tuple[ScenarioRun, ...] = ()
    table: Path | None = None  # scenarios/summary.csv

    @property
    def outputs(self) -> list[Path]:
        """Every file written, scenario by scenario, then the side-by-side table."""
        files = [p for run in self.runs for p in run.files]
        return files + ([self.table] if self.table is not None else [])

    def record(self, root: Path) -> list[dict[str, Any]]:
        """The manifest's ``scenarios`` section."""
        return [run.record(root) for run in self.runs]

    def frame(self) -> pd.DataFrame:
        """The scenarios side by side (one column each), as in ``summary.csv``."""
        return scenarios_table([run.summary for run in self.runs])

    def map(self) -> ScenarioMap | None:
        """The comparison layers and table for the planners' map (None: no scenario)."""
        if not self.runs:
            return None
        return ScenarioMap(layers=tuple(r.map_layers() for r in self.runs), table=self.frame())
