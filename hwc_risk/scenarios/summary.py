"""What a scenario changes: risk, classes, people, hotspots, current and pinch points.

Pure functions on arrays and frames, and file drivers that read the baseline's
and the scenario's rasters chunk by chunk:

- :func:`classify_on_thresholds`: risk classes on the *baseline's* thresholds
  (``metrics.json`` ``risk_classes[].min_risk``), so that "very high" means the
  same risk in both; the baseline is classified the same way for the
  comparison, so a scenario that changes nothing changes no class;
- :func:`tally_classes` and :class:`ClassTally`: cells and people per class;
- :func:`hotspot_changes`: hotspots that are new (sharing no cell with a
  baseline hotspot) and that vanished;
- :func:`line_cells` and :func:`current_across_line`: the current crossing a
  new line, and :func:`pinch_point_change`: where the top cells of the current
  move. Both work on the connectivity solve grid, whose arrays are whole in
  memory (at most ``connectivity.max_cells`` cells);
- :class:`ScenarioSummary` and :func:`scenarios_table`: several scenarios side
  by side, as a CSV and as rows for the map and the bulletin;
- :func:`compare_surfaces`: the file driver that writes ``risk_delta.tif`` and
  the scenario's ``risk_class.tif`` and tallies both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from ..classes import RISK_CLASSES
from ..compute import Compute, run_windows
from ..covariates import ConnectivitySolve, create_band
from ..errors import InputError
from ..grid import GridSpec

__all__ = [
    "ClassTally",
    "CompareJob",
    "ConnectivityChange",
    "CurrentCut",
    "DifferenceJob",
    "HotspotChanges",
    "PinchChange",
    "ScenarioSummary",
    "classify_on_thresholds",
    "compare_surfaces",
    "compare_window",
    "current_across_line",
    "difference_window",
    "hotspot_changes",
    "line_cells",
    "pinch_point_change",
    "read_table_csv",
    "read_thresholds",
    "risk_delta",
    "scenario_classes",
    "scenarios_table",
    "tally_classes",
    "write_scenarios_csv",
    "write_table_csv",
]

#: A cell's risk changed when it moved by more than this (float32 noise: exactly 0
#: when nothing the model sees changed).
CHANGE_TOLERANCE = 1e-6
#: A change a planner counts (area changed, mean change, share outside the training
#: range): 0.01 on the 0-1 scale of relative risk. Landscape-wide layers (connectivity)
#: move the risk of almost every cell a little; this keeps the measures to the changes
#: that matter.
MATERIAL_CHANGE = 0.01
_N_CODES = max(c.code for c in RISK_CLASSES) + 1
#: Row labels of the side-by-side table that others read.
AREA_CHANGED = f"area where risk moved by {MATERIAL_CHANGE:g} or more (km²)"
OUTSIDE_RANGE = "of it, outside the training range (%)"


def classify_on_thresholds(risk: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """Risk classes (uint8, 0 = nodata) by fixed lower bounds per class label.

    A cell is in the highest class whose ``min_risk`` it reaches; every other
    cell with a value is "low" (so a scenario can push cells below the
    baseline's lowest value and they stay low).

    >>> t = {"very high": 0.9, "high": 0.6, "moderate": 0.3, "low": 0.0}
    >>> classify_on_thresholds(np.array([0.95, 0.6, 0.1, np.nan]), t).tolist()
    [4, 3, 1, 0]
    """
    ok = np.isfinite(risk)
    out = ok.astype(np.uint8)
    for cls in reversed(RISK_CLASSES[:-1]):  # moderate, high, very high: higher wins
        bound = thresholds.get(cls.label)
        if bound is not None:
            out[ok & (risk >= bound)] = cls.code
    return out


def risk_delta(baseline: np.ndarray, scenario: np.ndarray) -> np.ndarray:
    """Scenario minus baseline, float32; NaN where either has no value."""
    return (np.asarray(scenario, np.float32) - np.asarray(baseline, np.float32)).astype(np.float32)


def read_thresholds(metrics_json: Path) -> dict[str, float]:
    """The baseline's class lower bounds from a run folder's ``metrics.json``."""
    try:
        data = json.loads(Path(metrics_json).read_text(encoding="utf-8"))
        rows = data["risk_classes"]
        return {r["label"]: float(r["min_risk"]) for r in rows if r.get("min_risk") is not None}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{metrics_json}: no risk class thresholds ({exc}); give the metrics.json of a "
            "complete run"
        ) from None


@dataclass
class ClassTally:
    """Cells and people in each class code (index = code; 0 = nodata)."""

    cells: np.ndarray = field(default_factory=lambda: np.zeros(_N_CODES, np.int64))
    people: np.ndarray = field(default_factory=lambda: np.zeros(_N_CODES, np.float64))

    def __add__(self, other: ClassTally) -> ClassTally:
        return ClassTally(self.cells + other.cells, self.people + other.people)


def tally_classes(codes: np.ndarray, people: np.ndarray | None = None) -> ClassTally:
    """Cells (and people, NaN as 0) in each class of a block of class codes."""
    flat = np.asarray(codes, dtype=np.int64).ravel()
    cells = np.bincount(flat, minlength=_N_CODES)[:_N_CODES]
    if people is None:
        return ClassTally(cells, np.zeros(_N_CODES))
    weights = np.nan_to_num(np.asarray(people, np.float64).ravel(), nan=0.0)
    return ClassTally(cells, np.bincount(flat, weights=weights, minlength=_N_CODES)[:_N_CODES])


@dataclass(frozen=True)
class HotspotChanges:
    """Hotspots of the scenario that share no cell with a baseline hotspot (new), and
    baseline hotspots that share no cell with a scenario hotspot (vanished)."""

    new: gpd.GeoDataFrame
    vanished: gpd.GeoDataFrame


def _sharing(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> np.ndarray:
    """Whether each polygon of ``a`` shares area (not only an edge) with one of ``b``."""
    if a.empty or b.empty:
        return np.zeros(len(a), dtype=bool)
    pairs = gpd.sjoin(
        a[["geometry"]].reset_index(names="_a"),
        b[["geometry"]],
        how="inner",
        predicate="intersects",
    )
    hit = np.zeros(len(a), dtype=bool)
    for i, j in zip(pairs["_a"], pairs["index_right"], strict=True):
        if not hit[i] and a.geometry.iloc[i].intersection(b.geometry.loc[j]).area > 0:
            hit[i] = True
    return hit


def hotspot_changes(baseline: gpd.GeoDataFrame, scenario: gpd.GeoDataFrame) -> HotspotChanges:
    """New and vanished hotspots (as :func:`hwc_risk.export.hotspots.hotspot_polygons`
    makes them); polygons that only touch at an edge or corner do not share a cell."""
    base = baseline.reset_index(drop=True)
    scen = scenario.reset_index(drop=True)
    return HotspotChanges(
        new=scen[~_sharing(scen, base)].reset_index(drop=True),
        vanished=base[~_sharing(base, scen)].reset_index(drop=True),
    )


def line_cells(
    lines: Sequence[BaseGeometry], transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """The cells a line passes through (``all_touched``, no width): where to read the
    current that crosses it."""
    if not lines:
        return np.zeros(shape, dtype=bool)
    burnt = rasterize(
        [(g, 1) for g in lines],
        out_shape=shape,
        transform=transform,
        all_touched=True,
        dtype="uint8",
    )
    return burnt.astype(bool)


@dataclass(frozen=True)
class CurrentCut:
    """The current crossing a new line before and after the scenario.

    ``baseline_a`` and ``scenario_a``: current (A) through the cells the line
    passes, on each map; ``cut_share``: the share of the baseline's crossing
    current that no longer crosses; ``share_of_total``: the baseline's crossing
    current as a share of all the current between habitat patches (one ampere
    per pair), when the number of pairs is known.
    """

    baseline_a: float
    scenario_a: float
    cut_share: float
    share_of_total: float | None


def current_across_line(
    baseline: np.ndarray,
    scenario: np.ndarray,
    cells: np.ndarray,
    n_pairs: int | None = None,
) -> CurrentCut:
    """How much current a new line cuts (``cells`` from :func:`line_cells`).

    A line one cell thick across a corridor is crossed once by every unit of
    current that crosses it, so the current summed over its cells is the
    current across it. Cells with no current (barriers, NaN) count as zero.
    """
    before = float(np.nansum(np.where(cells, baseline, 0.0)))
    after = float(np.nansum(np.where(cells, scenario, 0.0)))
    cut = 1.0 - after / before if before > 0 else 0.0
    total = before / n_pairs if n_pairs else None
    return CurrentCut(baseline_a=before, scenario_a=after, cut_share=cut, share_of_total=total)


@dataclass(frozen=True)
class PinchChange:
    """The top cells of the current before and after: codes 1 lost, 2 kept, 3 gained
    (0 neither), and their counts."""

    codes: np.ndarray
    lost: int
    kept: int
    gained: int

    @property
    def moved_share(self) -> float:
        """Share of the scenario's pinch cells that were not pinch cells before."""
        return self.gained / max(1, self.kept + self.gained)


def _top_cells(current: np.ndarray, valid: np.ndarray, top_share: float) -> np.ndarray:
    values = np.where(valid & np.isfinite(current), current, -np.inf)
    n = int(np.count_nonzero(np.isfinite(values)))
    k = max(1, round(top_share * n))
    if n == 0:
        return np.zeros(current.shape, dtype=bool)
    cut = np.partition(values.ravel(), -k)[-k]
    return np.isfinite(values) & (values >= cut) & (values > 0)


def pinch_point_change(
    baseline: np.ndarray, scenario: np.ndarray, valid: np.ndarray, top_share: float = 0.02
) -> PinchChange:
    """Where the pinch points (the top ``top_share`` of ``valid`` cells by current) move.

    Leave the habitat patches out of ``valid``: they are short-circuited in the
    solve, so every cell of a patch carries the patch's whole current.
    """
    before = _top_cells(baseline, valid, top_share)
    after = _top_cells(scenario, valid, top_share)
    codes = np.zeros(baseline.shape, dtype=np.uint8)
    codes[before & ~after] = 1
    codes[before & after] = 2
    codes[~before & after] = 3
    return PinchChange(
        codes=codes,
        lost=int(np.count_nonzero(codes == 1)),
        kept=int(np.count_nonzero(codes == 2)),
        gained=int(np.count_nonzero(codes == 3)),
    )


@dataclass(frozen=True, kw_only=True)
class ConnectivityChange:
    """What a scenario's re-solved connectivity changed, on the solve grid."""

    layer: str  # the current layer measured (connectivity_current, ..._omniscape_current)
    base: ConnectivitySolve
    scenario: ConnectivitySolve
    cut: CurrentCut | None  # the current a new line cuts, when the scenario draws lines
    pinch: PinchChange


@dataclass(frozen=True)
class DifferenceJob:
    """Two rasters on the grid: the window task writes ``after - before``."""

    before: str
    after: str


def difference_window(job: DifferenceJob, window: Window) -> list[np.ndarray]:
    """The window task: ``after - before`` (float32; NaN where either has none)."""
    with rasterio.open(job.before) as b, rasterio.open(job.after) as a:
        return [risk_delta(b.read(1, window=window), a.read(1, window=window))]


@dataclass(frozen=True)
class CompareJob:
    """What a worker needs to compare one window of the baseline and the scenario."""

    baseline: str
    scenario: str
    thresholds: tuple[tuple[str, float], ...]
    baseline_classes: str | None = None  # the run's risk_class.tif


def scenario_classes(
    base: np.ndarray, scen: np.ndarray, thresholds: Mapping[str, float], base_classes: np.ndarray
) -> np.ndarray:
    """The scenario's classes: a cell the scenario leaves as it was keeps the run's class;
    a changed one takes the class whose baseline threshold it reaches. (The run cut its
    classes by share of area, splitting cells tied at a threshold in raster order: on a
    flat map, past counts with most cells 0, thresholds alone would move tied cells
    between classes though nothing changed.)

    >>> t = {"very high": 0.5, "high": 0.5, "moderate": 0.0, "low": 0.0}
    >>> base = np.array([0.0, 0.0, 0.5, 0.5])
    >>> scenario_classes(base, np.array([0.0, 0.7, 0.5, 0.2]), t, np.array([1, 2, 3, 4])).tolist()
    [1, 4, 3, 2]
    """
    out = classify_on_thresholds(scen, thresholds)
    same = base == scen
    out[same] = base_classes[same]
    return out


def compare_window(job: CompareJob, window: Window) -> list[np.ndarray]:
    """The window task: the risk delta (float32) and the scenario's classes (uint8)."""
    with rasterio.open(job.baseline) as b, rasterio.open(job.scenario) as s:
        base, scen = b.read(1, window=window), s.read(1, window=window)
    thresholds = dict(job.thresholds)
    if job.baseline_classes is None:
        return [risk_delta(base, scen), classify_on_thresholds(scen, thresholds)]
    with rasterio.open(job.baseline_classes) as c:
        base_classes = c.read(1, window=window)
    return [risk_delta(base, scen), scenario_classes(base, scen, thresholds, base_classes)]


#: Bins of |delta| in [0, 1] for its percentiles (1e-4 wide: the styles' limits).
_DELTA_BINS = 10_000


@dataclass(frozen=True)
class SurfaceComparison:
    """What :func:`compare_surfaces` wrote and counted."""

    delta: Path
    classes: Path
    baseline: ClassTally
    scenario: ClassTally
    changed_cells: int  # risk moved by MATERIAL_CHANGE or more
    mean_change: float  # over the changed cells
    largest_rise: float
    largest_fall: float
    extrapolated_cells: int | None = None  # changed cells with MESS < 0 (when given)
    delta_histogram: np.ndarray | None = None  # |delta| > CHANGE_TOLERANCE, _DELTA_BINS bins

    def delta_limit(self, share: float = 0.98) -> float:
        """The ``share`` percentile of |delta| over the changed cells (the limits of the
        diverging styles), at least the tolerance; from a histogram of 1e-4 bins."""
        hist = self.delta_histogram
        if hist is None or not hist.sum():
            return max(abs(self.largest_rise), abs(self.largest_fall), CHANGE_TOLERANCE)
        k = int(np.searchsorted(np.cumsum(hist), share * hist.sum()))
        return max((k + 1) / _DELTA_BINS, CHANGE_TOLERANCE)


@dataclass
class _Counts:
    """The running counts of :func:`compare_surfaces`."""

    base: ClassTally = field(default_factory=ClassTally)
    scen: ClassTally = field(default_factory=ClassTally)
    changed: int = 0
    total: float = 0.0
    rise: float = 0.0
    fall: float = 0.0
    outside: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(_DELTA_BINS, np.int64))

    def add_delta(self, dv: np.ndarray, mess: np.ndarray | None) -> None:
        finite = np.isfinite(dv)
        moved = finite & (np.abs(dv) > CHANGE_TOLERANCE)
        if moved.any():
            self.rise = max(self.rise, float(dv[moved].max()))
            self.fall = min(self.fall, float(dv[moved].min()))
            index = np.minimum((np.abs(dv[moved]) * _DELTA_BINS).astype(np.int64), _DELTA_BINS - 1)
            self.hist += np.bincount(index, minlength=_DELTA_BINS)
        material = finite & (np.abs(dv) >= MATERIAL_CHANGE)
        self.changed += int(material.sum())
        self.total += float(dv[material].sum(dtype=np.float64))
        if mess is not None:
            self.outside += int(np.count_nonzero(material & (mess < 0)))


def compare_surfaces(
    baseline_risk: Path,
    scenario_risk: Path,
    thresholds: Mapping[str, float],
    grid: GridSpec,
    out_dir: Path,
    people: Path | None = None,
    people_factor: float = 1.0,
    compute: Compute | None = None,
    mess: Path | None = None,
    scenario_people: Path | None = None,
    baseline_classes: Path | None = None,
) -> SurfaceComparison:
    """Write ``risk_delta`` and ``risk_class`` tiled GTiffs under ``out_dir``, chunk by
    chunk, and tally cells and people (``people`` raster x ``people_factor`` = people per
    cell) per class for both surfaces on the baseline's thresholds.

    ``baseline_classes``: the run's ``risk_class.tif``: the baseline is tallied on it,
    and cells the scenario leaves as they were keep its class (:func:`scenario_classes`).

    ``scenario_people``: the scenario's own people raster (when it edits the
    population), else ``people`` counts for both. ``mess``: the scenario's MESS
    raster; the changed cells where it is negative are counted.
    """
    compute = compute or Compute()
    delta = create_band(out_dir / "risk_delta_tiled.tif", grid, "risk delta", compute.block)
    classes = create_band(
        out_dir / "risk_class_tiled.tif", grid, "risk class", compute.block, "uint8", 0
    )
    job = CompareJob(
        str(baseline_risk),
        str(scenario_risk),
        tuple(thresholds.items()),
        str(baseline_classes) if baseline_classes is not None else None,
    )
    run_windows(compare_window, job, [delta, classes], compute, grid.shape, "scenario: delta")
    counts = _Counts()
    scenario_people = scenario_people or people
    with ExitStack() as files:
        b, c, d = (files.enter_context(rasterio.open(p)) for p in (baseline_risk, classes, delta))
        k = files.enter_context(rasterio.open(baseline_classes)) if baseline_classes else None
        pops = [
            files.enter_context(rasterio.open(p)) if p is not None else None
            for p in (people, scenario_people)
        ]
        m = files.enter_context(rasterio.open(mess)) if mess is not None else None
        for win in compute.windows(grid.shape):
            heads = [p.read(1, window=win) * people_factor if p is not None else None for p in pops]
            base_classes = (
                k.read(1, window=win)
                if k is not None
                else classify_on_thresholds(b.read(1, window=win), thresholds)
            )
            counts.base += tally_classes(base_classes, heads[0])
            counts.scen += tally_classes(c.read(1, window=win), heads[1])
            mess_block = m.read(1, window=win) if m is not None else None
            counts.add_delta(d.read(1, window=win), mess_block)
    n = counts.changed
    return SurfaceComparison(
        delta=delta,
        classes=classes,
        baseline=counts.base,
        scenario=counts.scen,
        changed_cells=n,
        mean_change=counts.total / n if n else 0.0,
        largest_rise=counts.rise,
        largest_fall=counts.fall,
        extrapolated_cells=counts.outside if mess is not None else None,
        delta_histogram=counts.hist,
    )


@dataclass(frozen=True)
class ScenarioSummary:
    """One scenario's headline numbers, for the CSV, the map and the bulletin."""

    name: str
    description: str
    edits: str  # e.g. "burn_lines land_use; resistance"
    cell_km2: float
    comparison: SurfaceComparison
    new_hotspots: int
    vanished_hotspots: int
    extrapolated_share: float | None = None  # of the changed cells, MESS < 0
    current_cut: CurrentCut | None = None
    pinch: PinchChange | None = None
    pinch_cell_km2: float | None = None  # cell area of the solve grid

    def rows(self) -> dict[str, Any]:
        """The summary as ordered (label -> value) rows."""
        c = self.comparison
        out: dict[str, Any] = {
            "description": self.description,
            "edits": self.edits,
            AREA_CHANGED: c.changed_cells * self.cell_km2,
            "mean risk change there": c.mean_change,
            "largest rise in risk": c.largest_rise,
            "largest fall in risk": c.largest_fall,
        }
        for cls in RISK_CLASSES:
            area = (c.scenario.cells[cls.code] - c.baseline.cells[cls.code]) * self.cell_km2
            out[f"{cls.label}: area change (km²)"] = area
            people = c.scenario.people[cls.code] - c.baseline.people[cls.code]
            out[f"{cls.label}: people change"] = round(float(people))
        out["new hotspots"] = self.new_hotspots
        out["vanished hotspots"] = self.vanished_hotspots
        out[OUTSIDE_RANGE] = (
            None if self.extrapolated_share is None else 100 * self.extrapolated_share
        )
        cut = self.current_cut
        out["current across the new line, before (A)"] = None if cut is None else cut.baseline_a
        out["current cut by the line (%)"] = None if cut is None else 100 * cut.cut_share
        moved = None
        if self.pinch is not None and self.pinch_cell_km2 is not None:
            moved = self.pinch.gained * self.pinch_cell_km2
        out["pinch-point area moved (km²)"] = moved
        return out

    def record(self) -> dict[str, Any]:
        """For ``summary.json``: the rows plus the raw class tallies."""
        c = self.comparison
        return {
            "name": self.name,
            **self.rows(),
            "cells_by_class": {
                cls.label: [int(c.baseline.cells[cls.code]), int(c.scenario.cells[cls.code])]
                for cls in RISK_CLASSES
            },
            "current_cut": None if self.current_cut is None else asdict(self.current_cut),
        }


def scenarios_table(summaries: Sequence[ScenarioSummary]) -> pd.DataFrame:
    """Scenarios side by side: one row per measure, one column per scenario."""
    if not summaries:
        return pd.DataFrame()
    columns = {s.name: s.rows() for s in summaries}
    frame = pd.DataFrame(columns)
    frame.index.name = "measure"
    return frame


def write_scenarios_csv(path: Path, summaries: Sequence[ScenarioSummary]) -> Path:
    """The side-by-side table as CSV (numbers rounded to 4 significant digits)."""
    return write_table_csv(path, scenarios_table(summaries))


def write_table_csv(path: Path, frame: pd.DataFrame) -> Path:
    """A side-by-side table (:func:`scenarios_table`, or one read back and extended) as
    CSV, numbers rounded to 4 significant digits."""
    frame = frame.map(lambda v: float(f"{v:.4g}") if isinstance(v, float) else v)
    frame.index.name = "measure"
    frame.to_csv(path, encoding="utf-8")
    return path


def read_table_csv(path: Path) -> pd.DataFrame:
    """``scenarios/summary.csv`` read back: one column per scenario, numbers as floats."""
    frame = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    return frame.map(_number_or_text)


def _number_or_text(text: str) -> Any:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text
