"""The moving window of Omniscape: targets, sources, one circuit solve per target.

Pure functions on arrays (rows, columns; 0-based). For each *target* (the
centre of a ``block_size`` block whose sources add up to more than zero), the
conductances within ``radius + buffer`` cells and the sources within
``radius`` cells are clipped to a circle; the target's block strength is
shared out among those sources in proportion to their strength (optionally
weighted by a distance-decay kernel), the target is grounded, and the current
through every cell is added to the cumulative map. Flow potential is the same
with every conductance 1. These follow Omniscape.jl (v0.6) to the letter,
including its handling of targets near the grid's edges, so that results match
its test suite.

Speed: a window's graph is assembled from arrays (no per-cell loops), only the
target's connected component is solved, and the factorisation of a window's
conductance matrix is kept in a small cache keyed by the window's
conductances: the flow-potential windows (all conductances 1) and windows of
uniform landscape repeat, and reuse one factorisation.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ..circuit import CircuitGraph, Factor, node_currents

__all__ = [
    "Conditions",
    "Landscape",
    "WindowSettings",
    "WindowSolver",
    "correction_array",
    "decay_weights",
    "find_targets",
]

SQRT2 = np.sqrt(2.0)
Decay = Literal["none", "exponential", "gaussian"]


@dataclass(frozen=True)
class Conditions:
    """Conditional connectivity: which sources a target may be connected to.

    For each condition, ``comparison`` is ``within`` (a source's present value
    minus the target block's median future value must lie in
    ``[lower, upper]``) or ``equals`` (a source's present value must equal the
    block's most frequent future value).
    """

    comparisons: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]


@dataclass(frozen=True)
class WindowSettings:
    """The moving window's settings (cells)."""

    radius: int
    buffer: int = 0
    block_size: int = 1
    four_neighbours: bool = False
    flow_potential: bool = False
    correct_artifacts: bool = True
    decay: Decay = "none"
    decay_scale: float = 0.0
    conditions: Conditions | None = None

    @property
    def block_radius(self) -> int:
        return (self.block_size - 1) // 2

    @property
    def reach(self) -> int:
        """How far a target's window reaches: radius + buffer."""
        return self.radius + self.buffer


@dataclass
class Landscape:
    """The grids a window reads: conductance (0 or NaN = barrier), sources, conditions."""

    conductance: np.ndarray
    sources: np.ndarray
    present: tuple[np.ndarray, ...] = ()  # condition layers, present values
    future: tuple[np.ndarray, ...] = ()  # the same, future values (targets)

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.conductance.shape
        return int(h), int(w)


def find_targets(strength: np.ndarray, settings: WindowSettings) -> np.ndarray:
    """Targets as rows ``(row, col, amps)``: block centres whose block strength is > 0.

    Centres are every ``block_size`` cells from ``block_radius``, columns in the
    outer loop as in Omniscape; a block's strength is the sum of ``strength``
    over the block.
    """
    h, w = strength.shape
    br, bs = settings.block_radius, settings.block_size
    s = np.where(np.isfinite(strength), strength, 0.0)
    rows = np.arange(br, h - br, bs)
    cols = np.arange(br, w - br, bs)
    if rows.size == 0 or cols.size == 0:
        return np.zeros((0, 3))
    # block sums through a summed-area table
    sat = np.zeros((h + 1, w + 1))
    sat[1:, 1:] = s.cumsum(0).cumsum(1)
    r0, r1 = rows - br, np.minimum(rows + br, h - 1) + 1
    c0, c1 = cols - br, np.minimum(cols + br, w - 1) + 1
    amps = sat[r1][:, c1] - sat[r0][:, c1] - sat[r1][:, c0] + sat[r0][:, c0]
    cc, rr = np.meshgrid(cols, rows)
    table = np.column_stack([rr.T.ravel(), cc.T.ravel(), amps.T.ravel()])
    return table[table[:, 2] > 0]


def decay_weights(dist: np.ndarray, decay: Decay, scale: float) -> np.ndarray:
    """The distance-decay kernel (distance in cells): 1, exp(-d/L) or exp(-d²/(2L²))."""
    if decay == "exponential":
        return np.exp(-dist / scale)
    if decay == "gaussian":
        return np.exp(-(dist**2) / (2.0 * scale**2))
    return np.ones_like(dist)


@dataclass
class Window:
    """One target's window on the grid: extent and the target's cell inside it."""

    row0: int
    col0: int
    height: int
    width: int
    centre: tuple[int, int]

    @classmethod
    def around(cls, row: int, col: int, reach: int, shape: tuple[int, int]) -> Window:
        r0, c0 = max(row - reach, 0), max(col - reach, 0)
        r1, c1 = min(row + reach, shape[0] - 1), min(col + reach, shape[1] - 1)
        return cls(r0, c0, r1 - r0 + 1, c1 - c0 + 1, (row - r0, col - c0))

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.row0, self.row0 + self.height), slice(self.col0, self.col0 + self.width)

    def distance(self) -> np.ndarray:
        rr, cc = np.ogrid[: self.height, : self.width]
        return np.sqrt((rr - self.centre[0]) ** 2 + (cc - self.centre[1]) ** 2)


def _mode(values: np.ndarray) -> float:
    """Most frequent value; ties go to the first seen in column-major order."""
    uniq, first, counts = np.unique(values, return_index=True, return_counts=True)
    best = counts == counts.max()
    return float(uniq[best][np.argmin(first[best])])


def window_sources(
    land: Landscape, settings: WindowSettings, target: np.ndarray, win: Window
) -> np.ndarray:
    """The target's amps shared out among the sources of its window (Omniscape's rules)."""
    dist = win.distance()
    src = land.sources[win.slices].copy()
    src[~np.isfinite(src) | (dist > settings.radius)] = 0.0
    # Omniscape clears the target's block at the window's nominal centre, which is
    # the target only away from the top and left edges; kept as Omniscape does it
    reach, br = settings.reach, settings.block_radius
    h, w = land.shape
    src[reach - br : min(reach + br, h - 1) + 1, reach - br : min(reach + br, w - 1) + 1] = 0.0
    if settings.decay != "none":
        src = src * decay_weights(dist, settings.decay, settings.decay_scale)
    total = src[src > 0].sum()
    if total > 0:
        src = np.where(src > 0, src * target[2] / total, src)
    if settings.conditions is not None:
        src = _match_conditions(land, settings, target, win, src)
    return src


def _match_conditions(
    land: Landscape, settings: WindowSettings, target: np.ndarray, win: Window, src: np.ndarray
) -> np.ndarray:
    assert settings.conditions is not None
    h, w = land.shape
    row, col, br = int(target[0]), int(target[1]), settings.block_radius
    block = (slice(row - br, min(row + br, h - 1) + 1), slice(col - br, min(col + br, w - 1) + 1))
    c = settings.conditions
    for k, comparison in enumerate(c.comparisons):
        future = land.future[k][block]
        future = future.T[np.isfinite(future.T)]  # column-major, as Omniscape reads it
        present = land.present[k][win.slices]
        with np.errstate(invalid="ignore"):
            if comparison == "within":
                diff = present - float(np.median(future))
                drop = (diff > c.upper[k]) | (diff < c.lower[k])
            else:
                drop = np.isfinite(present) & (present != _mode(future))
        src = np.where(drop, 0.0, src)
    return src


def _graph(g: np.ndarray, four: bool) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Node index per cell (-1 = none) and the adjacency of a window (average conductance)."""
    has = g > 0
    index = np.full(g.shape, -1, dtype=np.int64)
    index[has] = np.arange(int(has.sum()))
    offsets = [(0, 1, 1.0), (1, 0, 1.0)]
    if not four:
        offsets += [(1, 1, SQRT2), (1, -1, SQRT2)]
    rows, cols, vals = [], [], []
    h, w = g.shape
    for dr, dc, scale in offsets:
        a = (slice(0, h - dr), slice(max(0, -dc), w - max(0, dc)))
        b = (slice(dr, h), slice(max(0, dc), w - max(0, -dc)))
        both = has[a] & has[b]
        rows.append(index[a][both])
        cols.append(index[b][both])
        vals.append((g[a][both] + g[b][both]) / (2.0 * scale))
    n = int(has.sum())
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    adj = sparse.coo_matrix((v, (r, c)), shape=(n, n)).tocsr()
    return index, (adj + adj.T).tocsr()


@dataclass
class _Solved:
    """A factorised window: its graph, the ground's component, and the solver."""

    index: np.ndarray
    graph: CircuitGraph
    keep: np.ndarray  # nodes of the ground's component, ground excluded
    factor: Factor | None


@dataclass
class WindowSolver:
    """Solves windows, keeping recent factorisations for windows that repeat."""

    four_neighbours: bool
    cache_size: int = 16
    hits: int = 0
    misses: int = 0
    _cache: OrderedDict[bytes, _Solved] = field(default_factory=OrderedDict)

    def _factorised(self, g: np.ndarray, centre: tuple[int, int]) -> _Solved | None:
        key = hashlib.blake2b(g.tobytes(), digest_size=16)
        key.update(np.array([*g.shape, *centre], dtype=np.int64).tobytes())
        digest = key.digest()
        if digest in self._cache:
            self.hits += 1
            self._cache.move_to_end(digest)
            return self._cache[digest]
        self.misses += 1
        index, adj = _graph(g, self.four_neighbours)
        ground = int(index[centre])
        if ground < 0:
            return None
        _, labels = csgraph.connected_components(adj, directed=False)
        comp = np.flatnonzero(labels == labels[ground])
        keep = comp[comp != ground]
        graph = CircuitGraph(nodes=None, adjacency=adj, components=labels)
        factor = None
        if keep.size:
            lap = graph.laplacian
            factor = Factor(lap[keep][:, keep])
        solved = _Solved(index, graph, keep, factor)
        self._cache[digest] = solved
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return solved

    def current(self, g: np.ndarray, src: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
        """Current through every cell of a window grounded at ``centre``.

        ``g``: conductances (0 = no node); ``src``: current injected per cell.
        As Circuitscape's advanced mode: only the ground's component is solved,
        a source on the ground is dropped, and nothing flows when the
        component's sources add up to zero.
        """
        g = np.where(np.isfinite(g) & (g > 0), g, 0.0)
        out = np.zeros(g.shape)
        solved = self._factorised(g, centre)
        if solved is None or solved.factor is None:
            return out
        has = solved.index >= 0
        per_node = np.zeros(solved.graph.n_nodes)
        per_node[solved.index[has]] = src[has]
        per_node[solved.index[centre]] = 0.0
        rhs = per_node[solved.keep]
        if rhs.sum() == 0:
            return out
        volts = np.zeros(solved.graph.n_nodes)
        volts[solved.keep] = solved.factor.solve(rhs)
        cur = node_currents(solved.graph, volts)
        out[has] = cur[solved.index[has]]
        return out


def correction_array(settings: WindowSettings, solver: WindowSolver) -> np.ndarray:
    """Omniscape's block-artefact correction for a full window (side 2·reach + 1).

    The current a block of ``block_size²`` targets would carry with every
    conductance 1, divided by the current of one target standing for the
    block: multiplying a target's current by it spreads it as the block would.
    """
    reach, br = settings.reach, settings.block_radius
    side = 2 * reach + 1
    centre = (reach, reach)
    rr, cc = np.ogrid[:side, :side]
    dist = np.sqrt((rr - reach) ** 2 + (cc - reach) ** 2)
    inside = dist <= settings.radius
    null_src = np.where(inside, 1.0 / (inside.sum() - 1), 0.0)
    null_src[centre] = 0.0
    blocked = np.where(inside, 1.0, 0.0)
    blocked[reach - br : reach + br + 1, reach - br : reach + br + 1] = 0.0
    blocked = blocked * settings.block_size**2 / blocked.sum()
    g = np.where(dist <= reach, 1.0, 0.0)
    block_current = solver.current(g, blocked, centre)
    null_current = solver.current(g, null_src, centre)
    padded = np.pad(null_current, br)
    total = np.zeros_like(null_current)
    for dr in range(settings.block_size):
        for dc in range(settings.block_size):
            total += padded[dr : dr + side, dc : dc + side]
    total[block_current == 0] = 0.0
    total[total == 0] = 1.0
    block_current[block_current == 0] = 1.0
    return total / block_current


def _cut(
    correction: np.ndarray,
    win: Window,
    target: np.ndarray,
    settings: WindowSettings,
    shape: tuple[int, int],
) -> np.ndarray:
    """The part of the correction array over a (possibly clipped) window, as Omniscape cuts it."""
    reach = settings.reach
    size = correction.shape[0]
    row, col = int(target[0]), int(target[1])
    r_lo, r_hi, c_lo, c_hi = 0, size, 0, size
    if col > shape[1] - 1 - reach:
        c_hi = win.width
    if col < reach:
        c_lo = c_hi - win.width
    if row > shape[0] - 1 - reach:
        r_hi = win.height
    if row < reach:
        r_lo = r_hi - win.height
    return correction[r_lo:r_hi, c_lo:c_hi]


def solve_target(
    land: Landscape,
    settings: WindowSettings,
    target: np.ndarray,
    solver: WindowSolver,
    correction: np.ndarray | None,
) -> tuple[Window, np.ndarray, np.ndarray | None]:
    """One target: its window, the current through it, and the flow potential."""
    win = Window.around(int(target[0]), int(target[1]), settings.reach, land.shape)
    src = window_sources(land, settings, target, win)
    g = land.conductance[win.slices].copy()
    g[win.distance() > settings.reach] = 0.0
    current = solver.current(g, src, win.centre)
    potential = None
    if settings.flow_potential:
        potential = solver.current(np.ones(g.shape), src, win.centre)
    if correction is not None:
        cut = _cut(correction, win, target, settings, land.shape)
        current = current * cut
        if potential is not None:
            potential = potential * cut
    return win, current, potential
