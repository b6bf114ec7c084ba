"""Connectivity layers built from the agency's own land use: resistance, current, cost.

Many agencies have no connectivity raster. From a categorical land-use
covariate and a reclass table (optionally raised by settlement density) this
module builds a resistance surface and three layers on the analysis grid:

``connectivity_current``
    Cumulative circuit-theory current between the largest patches of source
    habitat (e.g. forest), all pairs, with the patches short-circuited
    (:mod:`hwc_risk.circuit`). High where animals moving between patches are
    funnelled: corridors and pinch points.
``connectivity_cost_distance``
    Cumulative least-cost distance from any source habitat cell over the
    resistance (scikit-image's MCP), in resistance x metres.
``connectivity_corridor``
    Normalised least-cost corridor (as Linkage Mapper defines it): for each
    pair of patches, cost-distance from one plus cost-distance from the other
    minus their least-cost path cost; the minimum over pairs. 0 on a least-cost
    path, growing away from it.

With ``method: omniscape`` the current is Omniscape's moving window instead
(:func:`moving_window_layers`, :mod:`hwc_risk.omniscape`): every source cell
is connected to the others within the radius, no patches chosen. It gives
``connectivity_omniscape_current``, ``connectivity_flow_potential`` (the same
with resistance 1 everywhere) and ``connectivity_normalized_current`` (the
first over the second: above 1 where movement is channelled, below 1 where it
is impeded).

The pipeline solves all three on a grid of at most ``max_cells`` cells (see
:func:`hwc_risk.covariates.build_feature_stack`). :func:`pairwise_current`
called on a larger grid coarsens the resistance by averaging (an integer
factor) before the solve and interpolates the current back: the circuit solve
costs memory and time in proportion to the cells (about 4 GB and 25 s for 4
million cells, see ``benchmarks/circuit_advanced.py``).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage
from skimage.graph import MCP_Geometric

from .circuit import build_graph, effective_resistance_pairs, node_map
from .compute import Compute
from .errors import InputError

__all__ = [
    "cost_distance",
    "habitat_patches",
    "least_cost_corridor",
    "moving_window_layers",
    "pairwise_current",
    "resistance_from_classes",
]

log = logging.getLogger(__name__)


def resistance_from_classes(
    codes: np.ndarray,
    reclass: dict[int, float],
    density: np.ndarray | None = None,
    density_factor: float = 0.0,
) -> np.ndarray:
    """Resistance per cell from class codes; NaN where the class has no entry or no data.

    With ``density`` (e.g. people per km²), resistance is multiplied by
    ``1 + density_factor * density``.
    """
    out = np.full(codes.shape, np.nan)
    for code, value in reclass.items():
        out[codes == code] = value
    if density is not None and density_factor:
        out = out * (1.0 + density_factor * np.where(np.isfinite(density), density, 0.0))
    return out


def habitat_patches(source: np.ndarray, min_cells: int = 4, max_patches: int = 10) -> np.ndarray:
    """Label the largest 8-connected patches of ``source`` cells (1 = largest; 0 = none)."""
    labels, n = ndimage.label(source, structure=np.ones((3, 3)))
    if n == 0:
        return labels
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    keep = [k for k in order[:max_patches] if sizes[k] >= min_cells]
    out = np.zeros_like(labels)
    for rank, k in enumerate(keep, start=1):
        out[labels == k + 1] = rank
    return out


def _coarsen(resistance: np.ndarray, factor: int) -> np.ndarray:
    h, w = resistance.shape
    hh, ww = math.ceil(h / factor), math.ceil(w / factor)
    padded = np.full((hh * factor, ww * factor), np.nan)
    padded[:h, :w] = resistance
    blocks = padded.reshape(hh, factor, ww, factor)
    with np.errstate(all="ignore"):
        # a coarse cell is habitat-passable if at least half its cells are
        valid = np.isfinite(blocks).sum(axis=(1, 3)) * 2 >= factor * factor
        mean = np.nanmean(blocks, axis=(1, 3))
    return np.where(valid, mean, np.nan)


def pairwise_current(
    resistance: np.ndarray,
    patches: np.ndarray,
    max_cells: int = 1_000_000,
) -> np.ndarray:
    """Cumulative current over all pairs of patches (1 A each), on the input grid.

    Patches are short-circuited (animals move freely inside habitat); cells with
    NaN resistance are barriers. 8 neighbours, average resistance.
    """
    factor = max(1, math.ceil(math.sqrt(resistance.size / max_cells)))
    res = resistance
    pat = patches
    if factor > 1:
        log.info("coarsening the resistance by %d for the circuit solve", factor)
        res = _coarsen(resistance, factor)
        h, w = res.shape
        pat_pad = np.zeros((h * factor, w * factor), dtype=patches.dtype)
        pat_pad[: patches.shape[0], : patches.shape[1]] = patches
        pat = pat_pad.reshape(h, factor, w, factor).max(axis=(1, 3))
    conductance = np.where(np.isfinite(res) & (res > 0), 1.0 / np.where(res > 0, res, 1), 0.0)
    nodes = node_map(conductance, [pat.astype(float)])
    graph = build_graph(conductance, nodes, four_neighbours=False, avg_resistances=True)
    ids = [int(i) for i in np.unique(pat[pat > 0])]
    focal: list[int | None] = []
    for pid in ids:
        on = nodes[(pat == pid) & (nodes > 0)]
        focal.append(int(on[0]) - 1 if on.size else None)
    total = np.zeros(graph.n_nodes)
    for pair in effective_resistance_pairs(graph, focal, want_maps=True):
        if pair.currents is not None:
            total += pair.currents
    cells = graph.to_cells(total)
    cells[nodes == 0] = np.nan
    if factor > 1:
        zoom = ndimage.zoom(np.nan_to_num(cells), factor, order=1)
        cells = zoom[: resistance.shape[0], : resistance.shape[1]]
        cells[~np.isfinite(resistance)] = np.nan
    return cells


def cost_distance(resistance: np.ndarray, sources: np.ndarray, cell_size: float) -> np.ndarray:
    """Cumulative least-cost distance from any ``sources`` cell (resistance x CRS units)."""
    if not sources.any():
        raise InputError("no source habitat cells on the grid; check connectivity.sources")
    costs = np.where(np.isfinite(resistance), resistance, np.inf)
    mcp = MCP_Geometric(costs, fully_connected=True, sampling=(cell_size, cell_size))
    starts = np.argwhere(sources & np.isfinite(costs))
    cumulative, _ = mcp.find_costs(starts)
    out = np.asarray(cumulative, dtype=np.float64)
    out[~np.isfinite(out) | ~np.isfinite(resistance)] = np.nan
    return out


def least_cost_corridor(
    resistance: np.ndarray, patches: np.ndarray, cell_size: float
) -> np.ndarray:
    """Normalised least-cost corridor between patch pairs (0 on a least-cost path)."""
    ids = [int(i) for i in np.unique(patches[patches > 0])]
    if len(ids) < 2:
        return np.full(resistance.shape, np.nan)
    dists = {pid: cost_distance(resistance, patches == pid, cell_size) for pid in ids}
    corridor = np.full(resistance.shape, np.inf)
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            total = dists[ids[a]] + dists[ids[b]]
            if not np.isfinite(total).any():
                continue
            corridor = np.fmin(corridor, total - np.nanmin(total))
    corridor[~np.isfinite(corridor)] = np.nan
    return corridor


def moving_window_layers(
    resistance: np.ndarray,
    sources: np.ndarray,
    radius_cells: int,
    block_size: int,
    compute: Compute | None = None,
) -> dict[str, np.ndarray]:
    """Omniscape's moving-window current, flow potential and normalised current.

    Source strength is the conductance (1 / resistance) of the ``sources``
    cells, 0 elsewhere: every source cell is a target, connected to the source
    cells within ``radius_cells`` (8 neighbours, average conductance, block
    artefacts corrected). NaN resistance is a barrier.
    """
    from .omniscape import Landscape, WindowSettings, find_targets, omniscape_maps

    passable = np.isfinite(resistance) & (resistance > 0)
    conductance = np.where(passable, 1.0 / np.where(passable, resistance, 1.0), 0.0)
    strength = np.where(sources & passable, conductance, 0.0)
    settings = WindowSettings(
        radius=max(1, int(radius_cells)),
        block_size=block_size + 1 - block_size % 2,
        flow_potential=True,
    )
    targets = find_targets(strength, settings)
    if targets.shape[0] == 0:
        raise InputError(
            "connectivity: no source cell for the moving window; check connectivity.sources"
        )
    log.info("moving window: %d targets, radius %d cells", targets.shape[0], settings.radius)
    maps = omniscape_maps(Landscape(conductance, strength), settings, targets, compute)
    assert maps.potential is not None
    return {
        "connectivity_omniscape_current": maps.current,
        "connectivity_flow_potential": maps.potential,
        "connectivity_normalized_current": maps.normalized,
    }
