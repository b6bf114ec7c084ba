"""Edits on covariates and resistance: pure functions on arrays, and a chunked driver.

The pure core: :func:`set_inside` and :func:`adjust_inside` change the cells
of an array that a mask marks; a :class:`CellChange` is one edit resolved to a
footprint on the ground and what happens inside it, and
:func:`apply_changes` applies a scenario's changes, in order, to any window
of any grid (the analysis grid for covariates, the connectivity solve grid
for resistance).

The I/O shell: :func:`prepare_scenario` reads the edits' GeoPackages once
(checked and reprojected, see :mod:`hwc_risk.scenarios.geometry`), and
:func:`write_edited_covariate` writes an edited copy of an aligned covariate
on the analysis grid, chunk by chunk on the run's pool (or Dask cluster), so
memory depends on the chunk, not the grid. ``replace`` edits align their raster
onto the grid as covariates are (:func:`hwc_risk.rasters.align_file`).

Edits change only cells with data: nodata stays nodata, and cells without a
resistance (no data, or classes missing from the reclass table) stay barriers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..compute import Compute, run_windows
from ..covariates import create_band
from ..errors import InputError
from ..grid import GridSpec
from ..rasters import RasterSource, align_file
from .config import (
    AdjustEdit,
    BurnLinesEdit,
    ReplaceEdit,
    ResistanceEdit,
    ScenarioConfig,
    SetClassEdit,
)
from .geometry import (
    EditShapes,
    Footprint,
    ShapeKind,
    edit_cells,
    footprint,
    read_edit_shapes,
)

__all__ = [
    "CellChange",
    "CovariateEdits",
    "EditJob",
    "PreparedScenario",
    "adjust_inside",
    "apply_changes",
    "covariate_changes",
    "edit_window",
    "prepare_scenario",
    "replacement_source",
    "resistance_changes",
    "set_inside",
    "write_edited_covariate",
]


def set_inside(values: np.ndarray, inside: np.ndarray, value: float) -> np.ndarray:
    """A copy of ``values`` with the cells ``inside`` that have data set to ``value``.

    >>> set_inside(np.array([1.0, np.nan, 3.0]), np.array([True, True, False]), 9).tolist()
    [9.0, nan, 3.0]
    """
    out = np.array(values, copy=True)
    out[inside & np.isfinite(values)] = value
    return out


def adjust_inside(
    values: np.ndarray, inside: np.ndarray, multiply: float = 1.0, add: float = 0.0
) -> np.ndarray:
    """A copy of ``values`` with ``value * multiply + add`` in the cells ``inside`` with data.

    >>> adjust_inside(np.array([10.0, 20.0]), np.array([True, False]), 1.5, 1).tolist()
    [16.0, 20.0]
    """
    out = np.array(values, copy=True)
    sel = inside & np.isfinite(values)
    out[sel] = values[sel] * multiply + add
    return out


@dataclass(frozen=True)
class CellChange:
    """One edit on the ground: its footprint, and a value to set (NaN: a barrier)
    or a ``multiply``/``add`` to apply inside it."""

    foot: Footprint
    set_to: float | None = None
    multiply: float = 1.0
    add: float = 0.0

    def apply(self, values: np.ndarray, transform: Affine) -> np.ndarray:
        """The change applied to an array whose top-left cell is at ``transform``."""
        inside = edit_cells(self.foot, transform, values.shape)
        if self.set_to is not None:
            return set_inside(values, inside, self.set_to)
        return adjust_inside(values, inside, self.multiply, self.add)


def apply_changes(
    values: np.ndarray, changes: tuple[CellChange, ...], transform: Affine
) -> np.ndarray:
    """Every change in order (later edits win where they overlap)."""
    out = values
    for change in changes:
        out = change.apply(out, transform)
    return out


@dataclass(frozen=True)
class CovariateEdits:
    """A scenario's edits of one covariate: an optional replacement, then cell changes."""

    covariate: str
    replacement: ReplaceEdit | None = None
    changes: tuple[CellChange, ...] = ()


@dataclass(frozen=True)
class PreparedScenario:
    """A scenario with its geometries read: covariate edits on the analysis grid, and
    the resistance edits' shapes (footprinted later on the connectivity solve grid)."""

    name: str
    covariates: dict[str, CovariateEdits]
    resistance: tuple[tuple[ResistanceEdit, EditShapes], ...] = field(default_factory=tuple)
    shapes: tuple[EditShapes | None, ...] = ()  # per edit, for the map and summaries


def _change(
    edit: SetClassEdit | BurnLinesEdit | AdjustEdit, shapes: EditShapes, cell: float
) -> CellChange:
    width = edit.width if isinstance(edit, BurnLinesEdit) else None
    foot = footprint(shapes, width, cell)
    if isinstance(edit, SetClassEdit):
        return CellChange(foot, set_to=float(edit.class_))
    if isinstance(edit, BurnLinesEdit):
        return CellChange(foot, set_to=float(edit.value))
    return CellChange(foot, multiply=edit.multiply, add=edit.add)


def prepare_scenario(
    scenario: ScenarioConfig, grid: GridSpec, where: str = "scenarios"
) -> PreparedScenario:
    """Read every edit's geometries (checked, reprojected to the grid's CRS).

    Class names must already be codes (:func:`hwc_risk.scenarios.config.check_scenarios`).
    ``where`` prefixes the keys in messages, e.g. ``SCENARIO.yaml: scenarios.0``.
    """
    per_cov: dict[str, CovariateEdits] = {}
    resistance: list[tuple[ResistanceEdit, EditShapes]] = []
    all_shapes: list[EditShapes | None] = []
    for j, edit in enumerate(scenario.edits):
        key = f"{where}.edits.{j} ({scenario.name}, {edit.kind})"
        if isinstance(edit, ReplaceEdit):
            per_cov[edit.covariate] = CovariateEdits(edit.covariate, replacement=edit)
            all_shapes.append(None)
            continue
        allowed: tuple[ShapeKind, ...] = ("polygons", "lines")
        if isinstance(edit, SetClassEdit | AdjustEdit):
            allowed = ("polygons",)
        shapes = read_edit_shapes(edit.path, edit.layer, grid.crs, grid.bounds, key, allowed)
        all_shapes.append(shapes)
        if isinstance(edit, ResistanceEdit):
            if shapes.kind == "lines" and edit.width is None:
                raise InputError(f"{key}: {shapes.source} holds lines; set width (metres)")
            resistance.append((edit, shapes))
            continue
        named = edit.class_ if isinstance(edit, SetClassEdit) else getattr(edit, "value", 0)
        if isinstance(named, str):
            raise ValueError("class names must be resolved by check_scenarios first")
        before = per_cov.get(edit.covariate, CovariateEdits(edit.covariate))
        change = _change(edit, shapes, grid.cell_size)
        per_cov[edit.covariate] = CovariateEdits(
            edit.covariate, before.replacement, (*before.changes, change)
        )
    return PreparedScenario(scenario.name, per_cov, tuple(resistance), tuple(all_shapes))


def covariate_changes(
    scenario: ScenarioConfig, prepared: PreparedScenario, cell_size: float
) -> dict[str, tuple[CellChange, ...]]:
    """The covariate edits as cell changes on a grid of ``cell_size``: the connectivity
    solve grid's footprints (lines narrower than its cells' diagonal burnt with every
    cell they touch), from the shapes :func:`prepare_scenario` read."""
    out: dict[str, tuple[CellChange, ...]] = {}
    for edit, shapes in zip(scenario.edits, prepared.shapes, strict=True):
        if shapes is None or isinstance(edit, ResistanceEdit | ReplaceEdit):
            continue
        out[edit.covariate] = (*out.get(edit.covariate, ()), _change(edit, shapes, cell_size))
    return out


def resistance_changes(prepared: PreparedScenario, cell_size: float) -> tuple[CellChange, ...]:
    """The resistance edits as cell changes on a grid of ``cell_size`` (the solve grid)."""
    out = []
    for edit, shapes in prepared.resistance:
        foot = footprint(shapes, edit.width, cell_size)
        if edit.barrier:
            out.append(CellChange(foot, set_to=float("nan")))
        elif edit.value is not None:
            out.append(CellChange(foot, set_to=edit.value))
        else:
            out.append(CellChange(foot, multiply=edit.multiply or 1.0))
    return tuple(out)


@dataclass(frozen=True)
class EditJob:
    """What a worker needs to edit one window of a covariate on the grid."""

    source: str  # the covariate (or its replacement) aligned onto the grid
    changes: tuple[CellChange, ...]
    transform: Affine  # the grid's


def edit_window(job: EditJob, window: Window) -> list[np.ndarray]:
    """The window task: read the window, apply the changes, return it as float32."""
    with rasterio.open(job.source) as ds:
        values = ds.read(1, window=window).astype(np.float32)
    edited = apply_changes(values, job.changes, window_transform(window, job.transform))
    return [edited.astype(np.float32, copy=False)]


def replacement_source(edit: ReplaceEdit, categorical: bool, where: str) -> RasterSource:
    """The raster of a ``replace`` edit, as the raster edge reads it; errors name the
    scenario's key (``where``) and ``<where>.raster``."""
    return RasterSource(
        path=edit.raster,
        key=where,
        band=edit.band,
        nodata=edit.nodata,
        categorical=categorical,
        path_key=f"{where}.raster",
    )


def _align_replacement(
    edit: ReplaceEdit, categorical: bool, grid: GridSpec, out: Path, block: int, where: str
) -> Path:
    """The replacement raster aligned onto the grid; errors name the scenario's key."""
    return align_file(replacement_source(edit, categorical, where), grid, out, block)


def write_edited_covariate(
    aligned: Path,
    edits: CovariateEdits,
    categorical: bool,
    grid: GridSpec,
    out: Path,
    compute: Compute | None = None,
    where: str = "scenarios",
) -> Path:
    """An edited copy of an aligned covariate, as a tiled float32 GeoTIFF on the grid.

    ``aligned`` is the covariate already aligned onto the grid (as the run's
    feature stack keeps it); a replacement is aligned instead, then the cell
    changes are applied chunk by chunk (``compute.chunk_size``).
    """
    compute = compute or Compute()
    source = aligned
    if edits.replacement is not None:
        source = out.with_name(out.stem + "_replacement.tif")
        _align_replacement(edits.replacement, categorical, grid, source, compute.block, where)
    create_band(out, grid, f"{edits.covariate} (scenario)", compute.block)
    job = EditJob(str(Path(source).resolve()), edits.changes, grid.transform)
    run_windows(edit_window, job, [out], compute, grid.shape, f"scenario: {edits.covariate}")
    return out
