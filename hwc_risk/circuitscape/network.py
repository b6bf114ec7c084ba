"""Circuitscape's network (graph) modes: pairwise and advanced.

The habitat file is a list of edges ``node node value`` (resistances or
conductances; nodes numbered from 0); focal nodes, sources and grounds are
lists of node numbers (with a value for sources and grounds). Outputs are
written under Circuitscape's names with Circuitscape 5's numbering: node
numbers in output files are one more than in the inputs (Circuitscape 5
numbers nodes from 1; its own test suite adds 1 to Circuitscape 4's files).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..circuit import (
    CircuitGraph,
    branch_currents,
    effective_resistance_pairs,
    node_currents,
    solve_sources_grounds,
)
from .files import read_included_pairs, read_table, tag, write_resistances
from .ini import CircuitscapeError, CircuitscapeIni

__all__ = ["run_network_advanced", "run_network_pairwise"]

Progress = Callable[[str], None]


def _node_ids(values: np.ndarray, path: Path) -> np.ndarray:
    if np.any(values < 0) or np.any(values != np.round(values)):
        raise CircuitscapeError(f"{path}: node numbers must be whole numbers from 0")
    return values.astype(np.int64)


def read_network(ini: CircuitscapeIni) -> CircuitGraph:
    """The graph of ``habitat_file``: ``node node value`` lines."""
    path = ini.require("habitat_file")
    table = read_table(path, "habitat_file", 3)
    if table.size == 0:
        raise CircuitscapeError(f"{path}: no edges")
    i, j = _node_ids(table[:, 0], path), _node_ids(table[:, 1], path)
    values = table[:, 2]
    if np.any(values <= 0):
        raise CircuitscapeError(f"{path}: edge values must be positive")
    conductance = 1.0 / values if ini.flag("habitat_map_is_resistances") else values
    n = int(max(i.max(), j.max())) + 1
    return CircuitGraph.from_edges(i, j, conductance, n)


def _write_rows(path: Path, ids: np.ndarray, *columns: np.ndarray) -> Path:
    lines = []
    for k in range(ids.shape[0]):
        node = " ".join(str(int(v)) for v in np.atleast_1d(ids[k]))
        values = " ".join(f"{float(c[k]):.10g}" for c in columns)
        lines.append(f"{node} {values}")
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def _write_currents(
    base: Path, graph: CircuitGraph, volts: np.ndarray, nodes: np.ndarray, suffix: str
) -> list[Path]:
    """Node and branch current files of one solve, for the given nodes (0-based)."""
    cur = node_currents(graph, volts)
    i, j, branch = branch_currents(graph, volts)
    inside = np.isin(i, nodes)
    keep = inside & (branch > 1e-6)
    return [
        _write_rows(Path(f"{base}_node_currents{suffix}.txt"), nodes + 1, cur[nodes]),
        _write_rows(
            Path(f"{base}_branch_currents{suffix}.txt"),
            np.column_stack([i[keep] + 1, j[keep] + 1]),
            branch[keep],
        ),
    ]


def run_network_pairwise(ini: CircuitscapeIni, say: Progress) -> list[Path]:
    """Pairwise effective resistances between focal nodes of a graph."""
    graph = read_network(ini)
    path = ini.require("point_file")
    focal_ids = _node_ids(read_table(path, "point_file", 1)[:, 0], path)
    if np.any(focal_ids >= graph.n_nodes):
        raise CircuitscapeError(f"{path}: focal nodes beyond the graph's {graph.n_nodes} nodes")
    exclude: set[tuple[int, int]] = set()
    if ini.flag("use_included_pairs"):
        pairs = read_included_pairs(ini.require("included_pairs_file"))
        n = focal_ids.size
        exclude = {
            (a, b)
            for a in range(n)
            for b in range(a + 1, n)
            if not pairs.solve(focal_ids[a], focal_ids[b])
        }
    say(f"network pairwise mode: {graph.n_nodes} nodes, {focal_ids.size} focal nodes")
    base = ini.output_base()
    write_volt, write_cur = ini.flag("write_volt_maps"), ini.flag("write_cur_maps")
    edge_i, edge_j, _ = branch_currents(graph, np.zeros(graph.n_nodes))
    cum_nodes = np.zeros(graph.n_nodes)
    cum_branch = np.zeros(edge_i.size)
    resistances = np.zeros((focal_ids.size, focal_ids.size))
    written: list[Path] = []
    focal: list[int | None] = [int(f) for f in focal_ids]
    for pair in effective_resistance_pairs(graph, focal, write_volt or write_cur, exclude):
        resistances[pair.i, pair.j] = resistances[pair.j, pair.i] = pair.resistance
        if pair.voltages is None:
            continue
        a, b = focal_ids[pair.i], focal_ids[pair.j]
        comp = np.flatnonzero(graph.components == graph.components[a])
        suffix = tag(a + 1, b + 1)
        if write_volt:
            path_v = Path(f"{base}_voltages{suffix}.txt")
            written.append(_write_rows(path_v, comp + 1, pair.voltages[comp]))
        if write_cur:
            written.extend(_write_currents(base, graph, pair.voltages, comp, suffix))
            cum_nodes += node_currents(graph, pair.voltages)
            cum_branch += branch_currents(graph, pair.voltages)[2]
    if write_cur:
        nodes = np.arange(graph.n_nodes)
        edges = np.column_stack([edge_i + 1, edge_j + 1])
        written.append(_write_rows(Path(f"{base}_node_currents_cum.txt"), nodes + 1, cum_nodes))
        written.append(_write_rows(Path(f"{base}_branch_currents_cum.txt"), edges, cum_branch))
    written.extend(write_resistances(base, focal_ids + 1.0, resistances))
    return written


def _node_values(ini: CircuitscapeIni, key: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Values per node from ``node value`` lines, and which nodes the file lists."""
    path = ini.require(key)
    table = read_table(path, key, 2)
    ids = _node_ids(table[:, 0], path)
    if np.any(ids >= n):
        raise CircuitscapeError(f"{path}: nodes beyond the graph's {n} nodes")
    out = np.zeros(n)
    out[ids] = table[:, 1]
    listed = np.zeros(n, dtype=bool)
    listed[ids] = True
    return out, listed


def run_network_advanced(ini: CircuitscapeIni, say: Progress) -> list[Path]:
    """Advanced mode on a graph: current sources and grounds at nodes."""
    from .raster import _policy, _resolve

    graph = read_network(ini)
    n = graph.n_nodes
    sources, _ = _node_values(ini, "source_file", n)
    grounds, listed = _node_values(ini, "ground_file", n)
    if ini.flag("ground_file_is_resistances"):
        # a listed resistance of 0 is a direct ground
        with np.errstate(divide="ignore"):
            inverse = np.where(grounds != 0, 1.0 / np.where(grounds != 0, grounds, 1.0), np.inf)
        grounds = np.where(listed, inverse, 0.0)
    if ini.flag("use_direct_grounds"):
        grounds = np.where(grounds > 0, np.inf, 0.0)
    if ini.flag("use_unit_currents"):
        sources = np.where(sources != 0, 1.0, 0.0)
    _resolve(sources, grounds, _policy(ini))
    say(f"network advanced mode: {n} nodes")
    solution = solve_sources_grounds(graph, sources, grounds)
    base = ini.output_base()
    nodes = np.arange(n)
    written: list[Path] = []
    if ini.flag("write_volt_maps"):
        written.append(_write_rows(Path(f"{base}_voltages.txt"), nodes + 1, solution.voltages))
    if ini.flag("write_cur_maps"):
        cur = node_currents(graph, solution.voltages, solution.finite_grounds)
        i, j, branch = branch_currents(graph, solution.voltages)
        keep = branch > 1e-6
        written.append(_write_rows(Path(f"{base}_node_currents.txt"), nodes + 1, cur))
        written.append(
            _write_rows(
                Path(f"{base}_branch_currents.txt"),
                np.column_stack([i[keep] + 1, j[keep] + 1]),
                branch[keep],
            )
        )
    return written
