"""The moving window against a brute-force solve, and its beyond-Omniscape options.

The brute force builds each target's window circuit cell by cell with dense
matrices (no sparse code, no caching, no tiles) and sums the currents; the
moving window must agree with it: with one layer giving targets and sources
(Omniscape), with separate source and target layers, and with the sources
weighted by an exponential or Gaussian distance-decay kernel.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwc_risk.compute import Compute
from hwc_risk.omniscape import Landscape, WindowSettings, find_targets, omniscape_maps
from hwc_risk.omniscape.window import decay_weights


def brute_force(
    conductance: np.ndarray,
    sources: np.ndarray,
    targets: np.ndarray,
    radius: int,
    buffer: int,
    decay: str = "none",
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative current and flow potential, one dense solve per target cell."""
    h, w = conductance.shape
    reach = radius + buffer
    current, potential = np.zeros((h, w)), np.zeros((h, w))
    for (r, c), amps in np.ndenumerate(targets):
        if amps <= 0:
            continue
        square = [
            (i, j)
            for i in range(max(r - reach, 0), min(r + reach, h - 1) + 1)
            for j in range(max(c - reach, 0), min(c + reach, w - 1) + 1)
        ]
        cells = [(i, j) for i, j in square if np.hypot(i - r, j - c) <= reach]
        inj = {}
        for i, j in square:
            d = np.hypot(i - r, j - c)
            if d <= radius and (i, j) != (r, c) and sources[i, j] > 0:
                inj[(i, j)] = sources[i, j] * decay_weights(np.array(d), decay, scale)  # type: ignore[arg-type]
        total = sum(inj.values())
        inj = {k: v * amps / total for k, v in inj.items()}
        # the flow potential's window is the whole square of conductance 1, as in Omniscape
        for g, out, area in ((conductance, current, cells), (np.ones((h, w)), potential, square)):
            nodes = [cell for cell in area if g[cell] > 0]
            index = {cell: k for k, cell in enumerate(nodes)}
            lap = np.zeros((len(nodes), len(nodes)))
            edges = []
            for (i, j), k in index.items():
                for di, dj in itertools.product((-1, 0, 1), repeat=2):
                    other = (i + di, j + dj)
                    if (di, dj) != (0, 0) and other in index and index[other] > k:
                        weight = (g[i, j] + g[other]) / 2 / np.hypot(di, dj)
                        m = index[other]
                        edges.append((k, m, weight))
                        lap[k, k] += weight
                        lap[m, m] += weight
                        lap[k, m] -= weight
                        lap[m, k] -= weight
            ground = index[(r, c)]
            rhs = np.array([inj.get(cell, 0.0) for cell in nodes])
            reached, frontier = {ground}, [ground]  # the ground's component, by flooding
            while frontier:
                k = frontier.pop()
                for m in np.flatnonzero(lap[k]):
                    if m not in reached:
                        reached.add(int(m))
                        frontier.append(int(m))
            keep = sorted(reached - {ground})
            volts = np.zeros(len(nodes))
            volts[keep] = np.linalg.solve(lap[np.ix_(keep, keep)], rhs[keep])
            inflow, outflow = np.zeros(len(nodes)), np.zeros(len(nodes))
            for k, m, weight in edges:
                flow = weight * (volts[k] - volts[m])  # k -> m when positive
                outflow[k] += max(flow, 0.0)
                inflow[m] += max(flow, 0.0)
                outflow[m] += max(-flow, 0.0)
                inflow[k] += max(-flow, 0.0)
            for cell, k in index.items():
                out[cell] += max(inflow[k], outflow[k])
    return current, potential


@pytest.fixture(scope="module")
def landscape() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    resistance = rng.uniform(0.5, 4.0, size=(14, 15))
    resistance[6, 3:9] = np.nan  # a barrier
    conductance = np.where(np.isfinite(resistance), 1.0 / resistance, 0.0)
    sources = np.where(
        rng.random(resistance.shape) < 0.6, rng.uniform(0.1, 2.0, resistance.shape), 0
    )
    sources[~np.isfinite(resistance)] = 0.0
    return conductance, sources


def interior_targets(shape: tuple[int, int], reach: int, seed: int) -> np.ndarray:
    """A target layer of its own: random strengths, away from the grid's edges."""
    rng = np.random.default_rng(seed)
    t = np.zeros(shape)
    t[reach:-reach, reach:-reach] = rng.uniform(
        0.5, 3.0, (shape[0] - 2 * reach, shape[1] - 2 * reach)
    )
    return t


@pytest.mark.parametrize(
    ("decay", "scale"), [("none", 0.0), ("exponential", 1.5), ("gaussian", 2.0)]
)
def test_separate_targets_and_decay_match_a_brute_force_solve(
    landscape: tuple[np.ndarray, np.ndarray], decay: str, scale: float
) -> None:
    conductance, sources = landscape
    radius, buffer = 3, 1
    targets = interior_targets(conductance.shape, radius + buffer, seed=3)
    targets[~(conductance > 0)] = 0.0
    settings = WindowSettings(
        radius=radius,
        buffer=buffer,
        flow_potential=True,
        decay=decay,
        decay_scale=scale,  # type: ignore[arg-type]
    )
    maps = omniscape_maps(
        Landscape(conductance, sources), settings, find_targets(targets, settings)
    )
    cur, pot = brute_force(conductance, sources, targets, radius, buffer, decay, scale)
    np.testing.assert_allclose(maps.current, cur, rtol=1e-7, atol=1e-9 * cur.max())
    assert maps.potential is not None
    np.testing.assert_allclose(maps.potential, pot, rtol=1e-7, atol=1e-9 * pot.max())


def test_decay_changes_where_current_flows(landscape: tuple[np.ndarray, np.ndarray]) -> None:
    conductance, sources = landscape
    targets = interior_targets(conductance.shape, 4, seed=3)
    flat = WindowSettings(radius=3, buffer=1)
    near = WindowSettings(radius=3, buffer=1, decay="exponential", decay_scale=0.5)
    a = omniscape_maps(Landscape(conductance, sources), flat, find_targets(targets, flat)).current
    b = omniscape_maps(Landscape(conductance, sources), near, find_targets(targets, near)).current
    assert np.abs(a - b).max() > 0.05 * a.max()
    assert a.sum() > 0 and b.sum() > 0


def test_tiles_on_a_pool_equal_one_serial_pass(landscape: tuple[np.ndarray, np.ndarray]) -> None:
    import hwc_risk.omniscape.tiles as tiles

    conductance, sources = landscape
    settings = WindowSettings(radius=3, buffer=1, block_size=3, flow_potential=True)
    land = Landscape(conductance, sources)
    targets = find_targets(sources, settings)
    serial = omniscape_maps(land, settings, targets)
    old = tiles.TILE
    try:
        tiles.TILE = 4  # several tiles on this small grid
        pooled = omniscape_maps(land, settings, targets, Compute(workers=2, pool="threads"))
    finally:
        tiles.TILE = old
    np.testing.assert_allclose(pooled.current, serial.current, rtol=1e-12, atol=1e-15)
    assert pooled.potential is not None and serial.potential is not None
    np.testing.assert_allclose(pooled.potential, serial.potential, rtol=1e-12, atol=1e-15)


@pytest.mark.slow  # over ~3 s on the shared 2-core machine
def test_repeated_windows_reuse_one_factorisation() -> None:
    conductance = np.ones((40, 40))
    sources = np.ones((40, 40))
    settings = WindowSettings(radius=4, flow_potential=True)
    maps = omniscape_maps(
        Landscape(conductance, sources), settings, find_targets(sources, settings)
    )
    # every interior window of a uniform landscape is the same matrix, for the current and
    # for the flow potential: far fewer factorisations than solves
    assert maps.targets == 1600
    edge_targets = 1600 - 32 * 32  # windows clipped by the grid's edge differ
    assert maps.factorisations <= 2 * edge_targets + 2
    assert maps.reused >= 2 * maps.targets - maps.factorisations
    assert maps.current.sum() > 0


def test_targets_are_block_sums() -> None:
    strength = np.arange(36, dtype=float).reshape(6, 6)
    targets = find_targets(strength, WindowSettings(radius=2, block_size=3))
    assert targets[:, :2].tolist() == [[1, 1], [4, 1], [1, 4], [4, 4]]  # columns outer
    assert targets[0, 2] == strength[0:3, 0:3].sum()
