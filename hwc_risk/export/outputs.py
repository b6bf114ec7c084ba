"""The registry of a run folder's files: one entry per output.

Every file a run writes is described once here: its name, its title and
roles in the STAC item, its units (the GeoTIFF ``units`` tag), whether its
values are classes (NEAREST overviews) and the QGIS style written beside it.
The COG writes, the STAC item, the manifest's output list and the tests'
expected file sets all read it, so a new output is one new entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = [
    "OUTPUTS",
    "SCENARIO_OUTPUTS",
    "OutputSpec",
    "always_written",
    "layer_output",
    "output_spec",
    "scenario_output",
    "spec_for",
]


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """One file of a run folder."""

    filename: str
    title: str
    roles: tuple[str, ...] = ("data",)
    units: str | None = None  # GeoTIFFs: the ``units`` tag
    categorical: bool = False  # GeoTIFFs: class codes (NEAREST overviews, colour table)
    style: str | None = None  # the QGIS style written beside it
    always: bool = True  # in every run folder (else only when there is something to write)
    risk_classes: bool = True  # categorical GeoTIFFs: the codes are the risk classes

    @property
    def key(self) -> str:
        """The asset key in ``item.json``: the name without a data extension (``risk``,
        ``map``, ``run_log``); a style or figure keeps its kind (``risk_class_qml``); a
        file in a subfolder is named by its path (``scenarios_road_risk``)."""
        stem, _, suffix = self.filename.rpartition(".")
        data = ("tif", "html", "json", "jsonl", "gpkg", "csv")
        name = stem if suffix in data else self.filename
        return name.replace(".", "_").replace("/", "_")


OUTPUTS: tuple[OutputSpec, ...] = (
    OutputSpec(
        filename="risk.tif",
        title="Relative conflict risk (0-1)",
        units="relative risk (0-1)",
        style="risk.qml",
    ),
    OutputSpec(filename="risk.qml", title="QGIS style for risk.tif", roles=("style",)),
    OutputSpec(
        filename="risk_sd.tif",
        title="Spread of the spatial-fold models' risk (standard deviation)",
        units="standard deviation of relative risk",
        always=False,
    ),
    OutputSpec(
        filename="risk_class.tif",
        title="Conflict risk classes",
        units="class code",
        categorical=True,
        style="risk_class.qml",
    ),
    OutputSpec(filename="risk_class.qml", title="QGIS style for risk_class.tif", roles=("style",)),
    OutputSpec(
        filename="risk_change.tif",
        title="Change in relative risk since the previous month",
        units="difference of relative risk",
        always=False,
    ),
    OutputSpec(filename="hotspots.gpkg", title="Very high risk hotspots"),
    OutputSpec(
        filename="forecast.tif",
        title="Expected incidents per cell in each month ahead (forecast)",
        units="expected incidents per cell per month",
        style="forecast.qml",
        always=False,
    ),
    OutputSpec(
        filename="forecast.qml", title="QGIS style for forecast.tif", roles=("style",), always=False
    ),
    OutputSpec(
        filename="importance.png",
        title="Permutation importance of each feature",
        roles=("overview",),
    ),
    OutputSpec(
        filename="response_curves.png",
        title="The model's response to each feature",
        roles=("overview",),
    ),
    OutputSpec(filename="map.html", title="Planners' map", roles=("overview",)),
    OutputSpec(filename="bulletin.html", title="Bulletin for managers", roles=("overview",)),
    OutputSpec(
        filename="bulletin.pdf",
        title="Bulletin for managers (PDF)",
        roles=("overview",),
        always=False,  # WeasyPrint needs the Pango library
    ),
    OutputSpec(
        filename="scenarios/summary.csv",
        title="What-if scenarios side by side",
        roles=("data",),
        always=False,
    ),
    OutputSpec(
        filename="rejected_incidents.csv",
        title="Rejected incident rows with reasons",
        roles=("metadata",),
    ),
    OutputSpec(
        filename="duplicates_merged.csv",
        title="Incident rows merged as duplicates, with the row each duplicates",
        roles=("metadata",),
        always=False,
    ),
    OutputSpec(
        filename="metrics.json",
        title="Validation metrics, model and baselines",
        roles=("metadata",),
    ),
    OutputSpec(filename="run.log.jsonl", title="The run's log", roles=("metadata",)),
    OutputSpec(
        filename="manifest.json",
        title="Inputs, outputs, versions and timings",
        roles=("metadata",),
    ),
    OutputSpec(filename="item.json", title="STAC item of the run", roles=("metadata",)),
)

_BY_NAME = {spec.filename: spec for spec in OUTPUTS}

#: The files of a scenario's folder ``scenarios/<name>/`` (names relative to it).
SCENARIO_OUTPUTS: tuple[OutputSpec, ...] = (
    OutputSpec(
        filename="risk.tif",
        title="relative conflict risk under the scenario (0-1)",
        units="relative risk (0-1)",
    ),
    OutputSpec(
        filename="risk_delta.tif",
        title="change in relative risk (scenario minus baseline)",
        units="difference of relative risk (scenario - baseline)",
        style="risk_delta.qml",
    ),
    OutputSpec(filename="risk_delta.qml", title="QGIS style for risk_delta.tif", roles=("style",)),
    OutputSpec(
        filename="risk_class.tif",
        title="risk classes on the baseline's thresholds",
        units="class code",
        categorical=True,
        style="risk_class.qml",
    ),
    OutputSpec(filename="risk_class.qml", title="QGIS style for risk_class.tif", roles=("style",)),
    OutputSpec(
        filename="extrapolation.tif",
        title="MESS: similarity to the training range (negative: outside, a guess)",
        units="MESS similarity (percent; negative: outside the training range)",
    ),
    OutputSpec(
        filename="extrapolation_variable.tif",
        title="the most dissimilar feature (tags variable_N)",
        units="feature number",
        categorical=True,
        risk_classes=False,
    ),
    OutputSpec(
        filename="connectivity_delta.tif",
        title="change in connectivity current (scenario minus baseline)",
        units="difference of current (A)",
        style="connectivity_delta.qml",
        always=False,
    ),
    OutputSpec(
        filename="connectivity_delta.qml",
        title="QGIS style for connectivity_delta.tif",
        roles=("style",),
        always=False,
    ),
    OutputSpec(
        filename="pinch_points.tif",
        title="pinch points: 1 lost, 2 kept, 3 gained",
        units="code",
        categorical=True,
        risk_classes=False,
        style="pinch_points.qml",
        always=False,
    ),
    OutputSpec(
        filename="pinch_points.qml",
        title="QGIS style for pinch_points.tif",
        roles=("style",),
        always=False,
    ),
    OutputSpec(filename="hotspots.gpkg", title="hotspots: all, new and vanished"),
    OutputSpec(filename="edits.gpkg", title="the plan's edits as drawn"),
    OutputSpec(filename="summary.json", title="what the scenario changes", roles=("metadata",)),
)

_SCENARIO_BY_NAME = {spec.filename: spec for spec in SCENARIO_OUTPUTS}


def scenario_output(scenario: str, filename: str) -> OutputSpec:
    """The registry entry of a file of ``scenarios/<scenario>/``, named by its path in
    the run folder (``scenarios/road/risk.tif``) and titled with the scenario."""
    try:
        spec = _SCENARIO_BY_NAME[filename]
    except KeyError:
        raise KeyError(f"{filename} is not in SCENARIO_OUTPUTS; add it") from None
    style = f"scenarios/{scenario}/{spec.style}" if spec.style else None
    return replace(
        spec,
        filename=f"scenarios/{scenario}/{filename}",
        title=f"Scenario {scenario}: {spec.title}",
        style=style,
    )


def spec_for(relative: str, layer_units: Mapping[str, str] | None = None) -> OutputSpec:
    """The registry entry of any file of a run folder, by its path in the folder
    (``risk.tif``, ``scenarios/road/risk.tif``); ``layer_units`` names the feature
    layers a run ships (``connectivity_current``: its units)."""
    parts = relative.split("/")
    if len(parts) == 3 and parts[0] == "scenarios":
        return scenario_output(parts[1], parts[2])
    stem = relative.removesuffix(".tif")
    if layer_units and relative.endswith(".tif") and stem in layer_units:
        return layer_output(stem, layer_units[stem])
    return output_spec(relative)


def output_spec(filename: str) -> OutputSpec:
    """The registry entry of a run folder's file."""
    try:
        return _BY_NAME[filename]
    except KeyError:
        raise KeyError(f"{filename} is not in hwc_risk.export.outputs.OUTPUTS; add it") from None


def layer_output(name: str, units: str) -> OutputSpec:
    """A feature layer hwc-risk built and ships (``connectivity_current.tif``, ...)."""
    return OutputSpec(
        filename=f"{name}.tif", title=name.replace("_", " "), units=units, always=False
    )


def _unique_keys() -> None:
    keys = [spec.key for spec in OUTPUTS]
    if len(set(keys)) != len(keys):  # pragma: no cover - a registry edit
        raise RuntimeError(f"two outputs share an asset key: {sorted(keys)}")


_unique_keys()


def always_written() -> set[str]:
    """The files every completed run folder has."""
    return {spec.filename for spec in OUTPUTS if spec.always}
