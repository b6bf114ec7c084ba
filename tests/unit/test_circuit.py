"""Analytic checks of the circuit solver."""

from __future__ import annotations

import numpy as np
import pytest

from hwc_risk.circuit import (
    build_graph,
    effective_resistance_pairs,
    merge_region,
    node_currents,
    node_map,
    solve_advanced,
)


def strip(h: int, w: int) -> np.ndarray:
    return np.ones((h, w))


def test_uniform_strip_has_linear_voltage_and_uniform_current() -> None:
    h, w = 6, 12
    g = strip(h, w)
    nodes = node_map(g)
    graph = build_graph(g, nodes, four_neighbours=True, avg_resistances=True)
    sources = np.zeros(graph.n_nodes)
    grounds = np.zeros(graph.n_nodes)
    sources[nodes[:, 0] - 1] = 1.0 / h  # 1 A into the source column
    grounds[nodes[:, -1] - 1] = np.inf  # the last column is grounded directly
    volts, finite = solve_advanced(graph, sources, grounds)
    vmap = graph.to_cells(volts)
    # h unit conductances in parallel between columns: 1/h volt per column
    expected = (w - 1 - np.arange(w)) / h
    np.testing.assert_allclose(vmap, np.tile(expected, (h, 1)), atol=1e-12)
    cmap = graph.to_cells(node_currents(graph, volts, finite))
    np.testing.assert_allclose(cmap, 1.0 / h, atol=1e-12)  # every cell carries 1/h A


def test_short_circuit_columns_give_the_same_strip() -> None:
    h, w = 5, 9
    g = strip(h, w)
    poly = np.zeros((h, w))
    poly[:, 0] = 1
    poly[:, -1] = 2
    nodes = node_map(g, [poly])
    assert len(np.unique(nodes[:, 0])) == 1 and len(np.unique(nodes[:, -1])) == 1
    graph = build_graph(g, nodes)
    sources = np.zeros(graph.n_nodes)
    grounds = np.zeros(graph.n_nodes)
    sources[nodes[0, 0] - 1] = 1.0
    grounds[nodes[0, -1] - 1] = np.inf
    volts, _ = solve_advanced(graph, sources, grounds)
    np.testing.assert_allclose(graph.to_cells(volts)[2], (w - 1 - np.arange(w)) / h, atol=1e-12)


def test_series_resistors() -> None:
    resist = np.array([[2.0, 4.0, 1.0, 3.0]])
    g = 1.0 / resist
    nodes = node_map(g)
    graph = build_graph(g, nodes, four_neighbours=True, avg_resistances=True)
    [pair] = list(effective_resistance_pairs(graph, [0, 3]))
    # edge resistance is the mean of its two cells' resistances
    expected = (2 + 4) / 2 + (4 + 1) / 2 + (1 + 3) / 2
    assert pair.resistance == pytest.approx(expected, rel=1e-12)
    # with average conductances the edges are conductance means instead
    graph_c = build_graph(g, nodes, four_neighbours=True, avg_resistances=False)
    [pair_c] = list(effective_resistance_pairs(graph_c, [0, 3]))
    expected_c = sum(2 / (g[0, k] + g[0, k + 1]) for k in range(3))
    assert pair_c.resistance == pytest.approx(expected_c, rel=1e-12)


def test_parallel_resistors() -> None:
    # two rows, separated by a barrier row, joined at both ends by focal regions
    resist = np.array([[1.0, 1.0, 1.0, 1.0], [np.nan] * 4, [3.0, 3.0, 3.0, 3.0]])
    g = np.where(np.isfinite(resist), 1.0 / resist, 0.0)
    ends = np.zeros_like(g)
    ends[[0, 2], 0] = 1
    ends[[0, 2], 3] = 2
    nodes = node_map(g, [ends])
    graph = build_graph(g, nodes)
    [pair] = list(effective_resistance_pairs(graph, [nodes[0, 0] - 1, nodes[0, 3] - 1]))
    top, bottom = 3 * 1.0, 3 * 3.0
    assert pair.resistance == pytest.approx(1 / (1 / top + 1 / bottom), rel=1e-12)
    # the current splits in inverse proportion to resistance
    cells = graph.to_cells(pair.currents)
    assert cells[0, 1] == pytest.approx(bottom / (top + bottom))
    assert cells[2, 1] == pytest.approx(top / (top + bottom))


def test_resistances_match_the_laplacian_pseudo_inverse() -> None:
    rng = np.random.default_rng(4)
    g = rng.uniform(0.2, 5.0, size=(6, 7))
    g[2, 3] = np.nan  # a hole
    nodes = node_map(np.nan_to_num(g))
    graph = build_graph(np.nan_to_num(g), nodes, four_neighbours=False, avg_resistances=False)
    lap = graph.laplacian.toarray()
    pinv = np.linalg.pinv(lap)
    focal = [0, 10, 25, graph.n_nodes - 1]
    for pair in effective_resistance_pairs(graph, focal, want_maps=False):
        i, j = focal[pair.i], focal[pair.j]
        expected = pinv[i, i] + pinv[j, j] - 2 * pinv[i, j]
        assert pair.resistance == pytest.approx(expected, rel=1e-9)


def test_disconnected_pairs_are_minus_one() -> None:
    g = np.array([[1.0, 1.0, 0.0, 1.0, 1.0]])
    nodes = node_map(g)
    graph = build_graph(g, nodes)
    pairs = list(effective_resistance_pairs(graph, [0, 1, 2, None]))
    res = {(p.i, p.j): p.resistance for p in pairs}
    assert res[(0, 1)] == pytest.approx(1.0)
    assert res[(0, 2)] == -1.0 and res[(1, 2)] == -1.0 and res[(0, 3)] == -1.0


def test_large_system_uses_amg_and_agrees_with_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    import hwc_risk.circuit as circuit

    rng = np.random.default_rng(0)
    g = rng.uniform(0.5, 2.0, size=(40, 50))
    nodes = node_map(g)
    graph = build_graph(g, nodes, four_neighbours=False, avg_resistances=True)
    focal = [0, 777, graph.n_nodes - 1]
    direct = [p.resistance for p in effective_resistance_pairs(graph, focal, want_maps=False)]
    monkeypatch.setattr(circuit, "DIRECT_SOLVE_MAX", 10)  # force CG + AMG
    amg = [p.resistance for p in effective_resistance_pairs(graph, focal, want_maps=False)]
    np.testing.assert_allclose(amg, direct, rtol=1e-9)


def test_merge_region_joins_touching_polygons() -> None:
    polys = np.array([[1, 1, 0, 2], [0, 0, 0, 2]], dtype=float)
    cells = np.zeros_like(polys, dtype=bool)
    cells[0, 1] = True  # touches polygon 1 only
    merged = merge_region(polys, cells)
    assert merged[0, 0] == merged[0, 1] == 3 and merged[0, 3] == 2
