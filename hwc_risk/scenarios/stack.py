"""A scenario's feature stack: the baseline's features, rebuilt where the plan edits them.

The month's model maps a stack of features in a fixed order, each with a
meaning fixed when the baseline was built: the classes of a categorical
covariate (one set of features per class present on the grid) and the
transform of a continuous one (``log1p`` chosen by skewness). A scenario must
keep both, or a plan that clears every forest, or skews the population, would
change the features' names or meaning under the model. So a scenario does
not build its features afresh: :func:`scenario_stack`

- writes each edited covariate (:func:`~hwc_risk.scenarios.edits.write_edited_covariate`)
  and derives its features with the baseline's classes and transform
  (:func:`~hwc_risk.covariates.write_covariate_features` on the baseline's
  :class:`~hwc_risk.covariates.AlignedCovariate`, its path swapped);
- re-solves the connectivity layers when the scenario edits the covariates
  they are built from or the resistance (:func:`resolve_connectivity`), on the
  baseline's solve grid, with the edits burnt on that grid;
- reuses every other layer, the incident history included, as the baseline
  wrote it, and keeps the model's column order.

A scenario that changes no cell gives a stack of byte-equal files, and a risk
delta of exactly zero.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import rasterio

from ..compute import Compute
from ..config import ConnectivityConfig, FeaturesConfig
from ..covariates import (
    AlignedCovariate,
    ConnectivitySolve,
    FeatureLayer,
    FeatureStack,
    Landscape,
    connectivity_files,
    solve_connectivity,
    summarise_aligned,
    write_covariate_features,
)
from ..errors import InputError
from ..grid import GridSpec
from ..mask import ValidMask
from ..rasters import align_array
from .config import ReplaceEdit, ScenarioConfig
from .edits import (
    CellChange,
    PreparedScenario,
    apply_changes,
    covariate_changes,
    replacement_source,
    resistance_changes,
    write_edited_covariate,
)

__all__ = ["ScenarioStack", "needs_connectivity", "resolve_connectivity", "scenario_stack"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ScenarioStack:
    """A scenario's features in the model's column order, and what was rebuilt."""

    stack: FeatureStack
    edited: dict[str, Path]  # each edited covariate, aligned on the grid
    rebuilt: dict[str, FeatureLayer]  # every layer rebuilt, by name (the model's or not)
    changed: tuple[str, ...]  # the model's features rebuilt from edited inputs
    solve: ConnectivitySolve | None  # the connectivity re-solved (None: the baseline's kept)


def needs_connectivity(scenario: ScenarioConfig, connectivity: ConnectivityConfig | None) -> bool:
    """Whether the scenario edits the resistance or a covariate connectivity is built from."""
    if connectivity is None:
        return False
    inputs = {connectivity.from_covariate, connectivity.density_covariate} - {None}
    return scenario.edits_resistance or bool(inputs & set(scenario.covariates))


def _replace_key(scenario: ScenarioConfig, covariate: str, where: str) -> str:
    """The key of the covariate's ``replace`` edit, for messages."""
    for j, edit in enumerate(scenario.edits):
        if isinstance(edit, ReplaceEdit) and edit.covariate == covariate:
            return f"{where}.edits.{j}"
    return where


def _edited_covariates(
    landscape: Landscape,
    scenario: ScenarioConfig,
    prepared: PreparedScenario,
    work: Path,
    compute: Compute,
    where: str,
) -> dict[str, Path]:
    """Each edited covariate written on the grid, chunk by chunk."""
    out = {}
    for key, edits in prepared.covariates.items():
        cov = landscape.covariate(key)
        out[key] = write_edited_covariate(
            cov.path,
            edits,
            cov.categorical,
            landscape.grid,
            work / f"{key}.tif",
            compute,
            _replace_key(scenario, key, where),
        )
    return out


def _scenario_mask(
    valid: ValidMask,
    landscape: Landscape,
    prepared: PreparedScenario,
    edited: dict[str, Path],
    work: Path,
    compute: Compute,
    max_classes: int,
) -> ValidMask:
    """The baseline's mask, narrowed where a replacement raster has no data.

    Cell edits change only cells with data, so only a ``replace`` can narrow
    it. A replaced categorical covariate's classes the baseline never saw are
    logged: the model has no features for them (0 for every class it knows).
    """
    replaced = [k for k, e in prepared.covariates.items() if e.replacement is not None]
    if not replaced:
        return valid
    mask = Path(shutil.copyfile(valid.path, work / "valid.tif"))
    windows = compute.windows(landscape.grid.shape)
    for key in replaced:
        cov = landscape.covariate(key)
        summary, _ = summarise_aligned(edited[key], windows, mask, cov.categorical, max_classes)
        unseen = sorted(int(c) for c in summary.classes if int(c) not in cov.classes)
        if cov.categorical and unseen:
            log.warning(
                "scenario %s: the replacement of %s has classes %s the model never saw; "
                "it has no features for them",
                prepared.name,
                key,
                ", ".join(map(str, unseen)),
            )
    return ValidMask.open(mask, compute.chunk_size)


def _solve_inputs(
    base: ConnectivitySolve,
    landscape: Landscape,
    scenario: ScenarioConfig,
    prepared: PreparedScenario,
    edited: dict[str, Path],
    where: str,
) -> dict[str, np.ndarray]:
    """The connectivity inputs on the solve grid with the scenario's edits.

    On the grid itself they are the edited files; on a coarsened solve grid a
    replacement is aligned onto it as the baseline's covariates were (GDAL) and
    the edits are burnt with the solve grid's footprints.
    """
    grid = base.grid
    changes = covariate_changes(scenario, prepared, grid.cell_size)
    inputs = dict(base.inputs)
    for key in set(inputs) & set(prepared.covariates):
        if grid == landscape.grid:
            with rasterio.open(edited[key]) as ds:
                inputs[key] = ds.read(1)
            continue
        cov = landscape.covariate(key)
        values = inputs[key]
        replacement = prepared.covariates[key].replacement
        if replacement is not None:
            key_where = _replace_key(scenario, key, where)
            values = align_array(replacement_source(replacement, cov.categorical, key_where), grid)
        inputs[key] = apply_changes(values, changes.get(key, ()), grid.transform)
    return inputs


def _edit_resistance(
    changes: tuple[CellChange, ...], resistance: np.ndarray, grid: GridSpec
) -> np.ndarray:
    return apply_changes(resistance, changes, grid.transform)


def resolve_connectivity(
    cfg: ConnectivityConfig,
    base: ConnectivitySolve,
    landscape: Landscape,
    scenario: ScenarioConfig,
    prepared: PreparedScenario,
    edited: dict[str, Path],
    compute: Compute,
    where: str = "scenarios",
) -> ConnectivitySolve:
    """The connectivity solved again on the baseline's solve grid, from the edited
    covariates and with the resistance edits burnt on that grid (a fence one cell
    wide on 300 m cells still blocks: narrow lines take every cell they touch)."""
    inputs = _solve_inputs(base, landscape, scenario, prepared, edited, where)
    hook = None
    if prepared.resistance:
        hook = partial(_edit_resistance, resistance_changes(prepared, base.grid.cell_size))
    log.info("scenario %s: solving connectivity again", scenario.name)
    try:
        return solve_connectivity(cfg, base.grid, inputs, compute, hook)
    except InputError as exc:  # e.g. a plan that clears every habitat patch
        raise type(exc)(f"{where} ({scenario.name}): with the edits, {exc}") from None


def _covariate_layers(
    landscape: Landscape,
    edited: dict[str, Path],
    settings: FeaturesConfig,
    folder: Path,
    compute: Compute,
) -> dict[str, FeatureLayer]:
    """The edited covariates' features, with the baseline's classes and transforms."""
    layers: dict[str, FeatureLayer] = {}
    for key, path in edited.items():
        cov: AlignedCovariate = replace(landscape.covariate(key), path=path)
        new = write_covariate_features(cov, landscape.grid, settings, folder, compute)
        layers |= {layer.name: layer for layer in new}
    return layers


def scenario_stack(
    baseline: FeatureStack,
    final: FeatureStack,
    scenario: ScenarioConfig,
    prepared: PreparedScenario,
    settings: FeaturesConfig,
    connectivity: ConnectivityConfig | None,
    work: Path,
    compute: Compute,
    where: str = "scenarios",
) -> ScenarioStack:
    """The scenario's features (see the module's docstring), under ``work``.

    ``baseline`` is the features stage's stack (it keeps the aligned
    covariates and the connectivity solve); ``final`` the stack the model maps,
    whose layers and order the result keeps.
    """
    landscape = baseline.landscape
    if landscape is None:
        raise ValueError("the baseline stack keeps no landscape; build it with derive_features")
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "features"
    folder.mkdir(exist_ok=True)
    edited = _edited_covariates(landscape, scenario, prepared, work, compute, where)
    valid = _scenario_mask(
        baseline.valid, landscape, prepared, edited, work, compute, settings.max_classes
    )
    layers = _covariate_layers(landscape, edited, settings, folder, compute)
    solve = None
    if connectivity is not None and needs_connectivity(scenario, connectivity):
        if baseline.connectivity is None:
            raise ValueError("the baseline stack keeps no connectivity solve")
        solve = resolve_connectivity(
            connectivity, baseline.connectivity, landscape, scenario, prepared, edited, compute,
            where,
        )  # fmt: skip
        new = connectivity_files(solve, landscape.grid, valid, folder, compute)
        layers |= {layer.name: layer for layer in new}
    stack = FeatureStack(
        grid=final.grid,
        layers=[layers.get(layer.name, layer) for layer in final.layers],
        valid=valid,
        class_names=final.class_names,
    )
    changed = tuple(layer.name for layer in final.layers if layer.name in layers)
    return ScenarioStack(stack=stack, edited=edited, rebuilt=layers, changed=changed, solve=solve)
