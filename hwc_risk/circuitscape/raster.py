"""Circuitscape's raster modes: advanced, pairwise, one-to-all and all-to-one.

Each mode reads its inputs through :mod:`.files`, builds the conductance graph
with :mod:`hwc_risk.circuit` and writes Circuitscape's files. Where
Circuitscape's rules are particular (how focal regions merge with
short-circuit polygons, which cells act as sources), the functions here say so
and follow them, so that outputs match Circuitscape's own test suite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..circuit import (
    CircuitGraph,
    build_graph,
    effective_resistance_pairs,
    node_currents,
    node_map,
    solve_sources_grounds,
)
from .files import (
    AsciiHeader,
    FocalPoints,
    IncludedPairs,
    MapWriter,
    read_focal_points,
    read_grid,
    read_included_pairs,
    read_table,
    tag,
    write_resistance_list,
    write_resistances,
)
from .ini import CircuitscapeError, CircuitscapeIni

__all__ = ["Habitat", "load_habitat", "run_advanced", "run_one_to_all", "run_pairwise"]

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class Habitat:
    """The habitat grid as conductances, with what every raster mode shares."""

    conductance: np.ndarray  # S per cell; 0 where there is no habitat
    header: AsciiHeader
    polygons: np.ndarray | None  # short-circuit region ids (0 = none)
    four_neighbours: bool
    avg_resistances: bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.conductance.shape

    def graph(self, regions: np.ndarray | None) -> CircuitGraph:
        nodes = node_map(self.conductance, [regions] if regions is not None else None)
        return build_graph(self.conductance, nodes, self.four_neighbours, self.avg_resistances)

    def writer(self, ini: CircuitscapeIni) -> MapWriter:
        return MapWriter.from_ini(ini, self.header, self.conductance > 0)


def _matching(ini: CircuitscapeIni, key: str, header: AsciiHeader) -> np.ndarray:
    path = ini.require(key)
    data, h = read_grid(path, key)
    if (h.nrows, h.ncols) != (header.nrows, header.ncols):
        raise CircuitscapeError(
            f"{path}: {h.nrows} x {h.ncols} cells, but the habitat map has "
            f"{header.nrows} x {header.ncols}; all grids must match"
        )
    return data


def _reclassify(ini: CircuitscapeIni, habitat: np.ndarray) -> np.ndarray:
    table = read_table(ini.require("reclass_file"), "reclass_file", 2)
    out = habitat.copy()
    for old, new in table:
        out[habitat == old] = new
    return out


def load_habitat(ini: CircuitscapeIni) -> Habitat:
    """The habitat map as conductances, masked, with its short-circuit polygons."""
    values, header = read_grid(ini.require("habitat_file"), "habitat_file")
    if ini.flag("use_reclass_table"):
        values = _reclassify(ini, values)
    is_res = ini.flag("habitat_map_is_resistances")
    valid = np.isfinite(values)
    if np.any(values[valid] < 0):
        raise CircuitscapeError(
            f"{ini.path}: the habitat map has negative values; resistances and conductances "
            "must be positive (use nodata for barriers)"
        )
    if is_res and np.any(values[valid] == 0):
        raise CircuitscapeError(
            f"{ini.path}: the habitat map has zero resistances; use short-circuit regions "
            "(polygons) for zero-resistance areas"
        )
    with np.errstate(divide="ignore"):
        conductance = np.where(valid, 1.0 / np.where(valid, values, 1.0) if is_res else values, 0.0)
    if ini.flag("use_mask"):
        mask = _matching(ini, "mask_file", header)
        conductance = np.where(np.isfinite(mask) & (mask > 0), conductance, 0.0)
        if not conductance.any():
            raise CircuitscapeError(
                f"{ini.path}: the mask ({ini.get('mask_file')}) removes every habitat cell; "
                "a mask keeps cells where it is > 0"
            )
    polygons = None
    if ini.flag("use_polygons"):
        poly = _matching(ini, "polygon_file", header)
        polygons = np.where(np.isfinite(poly), poly, 0.0)
    return Habitat(
        conductance=conductance,
        header=header,
        polygons=polygons,
        four_neighbours=ini.flag("connect_four_neighbors_only"),
        avg_resistances=ini.flag("connect_using_avg_resistances"),
    )


# -- advanced ---------------------------------------------------------------------------


def _cell_values(ini: CircuitscapeIni, key: str, header: AsciiHeader) -> np.ndarray:
    """A source or ground map: a raster, or a text list of ``value x y`` lines; 0 = none."""
    path = ini.require(key)
    if path.name.lower().removesuffix(".gz").endswith((".asc", ".tif", ".tiff")):
        data = _matching(ini, key, header)
        return np.where(np.isfinite(data), data, np.nan)
    out = np.full((header.nrows, header.ncols), np.nan)
    for value, x, y in read_table(path, key, 3):
        row, col = header.cell_of(x, y)
        if not (0 <= row < header.nrows and 0 <= col < header.ncols):
            raise CircuitscapeError(f"{path}: point ({x:g}, {y:g}) is outside the habitat map")
        out[row, col] = value
    return out


def _resolve(sources: np.ndarray, grounds: np.ndarray, policy: str) -> None:
    """Circuitscape's rule for a node that is both a source and a ground (in place)."""
    conflict = (sources != 0) & (grounds != 0)
    if policy == "rmvsrc" or policy == "rmvall":
        sources[conflict] = 0.0
        if policy == "rmvall":
            grounds[conflict] = 0.0
    elif policy == "rmvgnd":
        grounds[conflict] = 0.0
    # a current source on a direct ground would go nowhere: the ground gives way
    grounds[np.isinf(grounds) & (sources > 0)] = 0.0


def _per_node(graph: CircuitGraph, cells: np.ndarray) -> np.ndarray:
    assert graph.nodes is not None
    out = np.zeros(graph.n_nodes)
    has = (graph.nodes > 0) & (cells != 0)
    np.add.at(out, graph.nodes[has] - 1, cells[has])
    return out


def _advanced_inputs(ini: CircuitscapeIni, header: AsciiHeader) -> tuple[np.ndarray, np.ndarray]:
    """Source currents (A) and ground conductances (S; inf = direct) per cell."""
    src = _cell_values(ini, "source_file", header)
    gnd = _cell_values(ini, "ground_file", header)
    src = np.where(np.isfinite(src), src, 0.0)
    valid = np.isfinite(gnd)
    if ini.flag("ground_file_is_resistances"):
        with np.errstate(divide="ignore"):
            gnd = np.where(valid, np.where(gnd == 0, np.inf, 1.0 / np.where(gnd == 0, 1, gnd)), 0)
    else:
        gnd = np.where(valid, gnd, 0.0)
    if np.any(gnd < 0):
        raise CircuitscapeError(f"{ini.path}: the ground map has negative values")
    if ini.flag("use_direct_grounds"):
        gnd = np.where(gnd > 0, np.inf, 0.0)
    if ini.flag("use_unit_currents"):
        src = np.where(src != 0, 1.0, 0.0)
    return src, gnd


def _policy(ini: CircuitscapeIni) -> str:
    policy = ini.get("remove_src_or_gnd", "keepall").lower()
    if policy not in ("keepall", "rmvsrc", "rmvgnd", "rmvall", "not entered"):
        raise CircuitscapeError(
            f"{ini.path}: remove_src_or_gnd = {policy}; use keepall, rmvsrc, rmvgnd or rmvall"
        )
    return policy


def run_advanced(ini: CircuitscapeIni, habitat: Habitat, say: Progress) -> list[Path]:
    """Advanced mode: sources and grounds from maps; one voltage and one current map."""
    graph = habitat.graph(habitat.polygons)
    say(f"advanced mode: {graph.n_nodes} nodes")
    src, gnd = _advanced_inputs(ini, habitat.header)
    sources, grounds = _per_node(graph, src), _per_node(graph, gnd)
    _resolve(sources, grounds, _policy(ini))
    solution = solve_sources_grounds(graph, sources, grounds)
    writer = habitat.writer(ini)
    written = []
    if ini.flag("write_volt_maps"):
        written.append(writer.write("voltmap", graph.to_cells(solution.voltages)))
    if ini.flag("write_cur_maps"):
        cur = node_currents(graph, solution.voltages, solution.finite_grounds)
        written.append(writer.write("curmap", graph.to_cells(cur)))
    return written


# -- pairwise ---------------------------------------------------------------------------


def _included_pairs(ini: CircuitscapeIni) -> IncludedPairs | None:
    if not ini.flag("use_included_pairs"):
        return None
    return read_included_pairs(ini.require("included_pairs_file"))


def _pair_polymap(
    polygons: np.ndarray | None,
    points: FocalPoints,
    pair: tuple[float, float],
    shape: tuple[int, int],
) -> np.ndarray:
    """Short-circuit regions for one pair of focal regions, by Circuitscape's rule.

    Without polygons, each region of the pair is one region. With polygons, a
    region of one cell is left as it is; a region outside every polygon
    becomes a new region; a region touching polygons joins those polygons
    (its cells outside them stay ordinary habitat, as in Circuitscape).
    """
    if polygons is None:
        out = np.zeros(shape)
        for fid in pair:
            sel = points.ids == fid
            out[points.rows[sel], points.cols[sel]] = fid
        return out
    out = polygons.copy()
    k = float(polygons.max())
    for fid in pair:
        sel = points.ids == fid
        rows, cols = points.rows[sel], points.cols[sel]
        if rows.size == 1:
            continue
        inside = polygons[rows, cols] != 0
        k += 1
        if not inside.any():
            out[rows, cols] = k
        else:
            out[np.isin(polygons, polygons[rows[inside], cols[inside]])] = k
    return out


PairMaps = tuple[int, int, float, np.ndarray | None, np.ndarray | None]


def _node_of(graph: CircuitGraph, cell: tuple[int, int]) -> int | None:
    assert graph.nodes is not None
    node = int(graph.nodes[cell])
    return node - 1 if node > 0 else None


def _pairs_of_points(
    habitat: Habitat,
    points: FocalPoints,
    pairs: IncludedPairs | None,
    want: bool,
    zero_focal: bool,
) -> Iterator[PairMaps]:
    """Pairs of single-cell focal points: one graph, one factorisation per grounded point."""
    ids = points.unique_ids
    graph = habitat.graph(habitat.polygons)
    focal = [_node_of(graph, points.first_cell(fid)) for fid in ids]
    exclude = set()
    if pairs is not None:
        exclude = {
            (a, b)
            for a in range(ids.size)
            for b in range(a + 1, ids.size)
            if not pairs.solve(ids[a], ids[b])
        }
    for pair in effective_resistance_pairs(graph, focal, want, exclude):
        volts = curs = None
        if pair.voltages is not None and pair.currents is not None:
            volts, curs = graph.to_cells(pair.voltages), graph.to_cells(pair.currents)
            if zero_focal:
                assert graph.nodes is not None
                both = [n + 1 for n in (focal[pair.i], focal[pair.j]) if n is not None]
                curs[np.isin(graph.nodes, both)] = 0.0
        yield pair.i, pair.j, pair.resistance, volts, curs


def _pairs_of_regions(
    habitat: Habitat, points: FocalPoints, want: bool, zero_focal: bool
) -> Iterator[PairMaps]:
    """Pairs of focal regions: each pair short-circuits its own two regions."""
    ids = points.unique_ids
    for a in range(ids.size):
        for b in range(a + 1, ids.size):
            regions = _pair_polymap(habitat.polygons, points, (ids[a], ids[b]), habitat.shape)
            graph = habitat.graph(regions)
            na, nb = (_node_of(graph, points.first_cell(f)) for f in (ids[a], ids[b]))
            pair = next(iter(effective_resistance_pairs(graph, [na, nb], want)))
            volts = curs = None
            if pair.voltages is not None and pair.currents is not None:
                volts, curs = graph.to_cells(pair.voltages), graph.to_cells(pair.currents)
                if zero_focal:
                    assert graph.nodes is not None
                    both = [n + 1 for n in (na, nb) if n is not None]
                    curs[np.isin(graph.nodes, both)] = 0.0
            yield a, b, pair.resistance, volts, curs


@dataclass
class CurrentTotals:
    """Cumulative and maximum current maps over the solves of a run."""

    cumulative: np.ndarray
    maximum: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> CurrentTotals:
        return cls(np.zeros(shape), np.zeros(shape))

    def add(self, currents: np.ndarray) -> None:
        self.cumulative += currents
        np.maximum(self.maximum, currents, out=self.maximum)

    def write(self, ini: CircuitscapeIni, writer: MapWriter) -> list[Path]:
        out = []
        if ini.flag("write_cur_maps") or ini.flag("write_cum_cur_map_only"):
            out.append(writer.write("cum_curmap", self.cumulative))
        if ini.flag("write_max_cur_maps"):
            out.append(writer.write("max_curmap", self.maximum))
        return out


def _wants_currents(ini: CircuitscapeIni) -> bool:
    return any(
        ini.flag(k) for k in ("write_cur_maps", "write_cum_cur_map_only", "write_max_cur_maps")
    )


def run_pairwise(ini: CircuitscapeIni, habitat: Habitat, say: Progress) -> list[Path]:
    """Pairwise mode: effective resistance between every pair of focal points or regions."""
    points = read_focal_points(ini, habitat.header)
    pairs = _included_pairs(ini)
    if pairs is not None and pairs.include and not points.has_regions:
        points = points.keep(pairs.ids)
    ids = points.unique_ids
    write_volt = ini.flag("write_volt_maps")
    per_pair_cur = ini.flag("write_cur_maps") and not ini.flag("write_cum_cur_map_only")
    want = write_volt or _wants_currents(ini)
    zero_focal = ini.flag("set_focal_node_currents_to_zero")
    say(f"pairwise mode: {ids.size} focal {'regions' if points.has_regions else 'points'}")
    if points.has_regions:
        solves = _pairs_of_regions(habitat, points, want, zero_focal)
    else:
        solves = _pairs_of_points(habitat, points, pairs, want, zero_focal)
    writer = habitat.writer(ini)
    totals = CurrentTotals.zeros(habitat.shape)
    resistances = np.zeros((ids.size, ids.size))
    written: list[Path] = []
    for a, b, resistance, volts, curs in solves:
        resistances[a, b] = resistances[b, a] = resistance
        if curs is not None:
            totals.add(curs)
            if per_pair_cur:
                written.append(writer.write("curmap", curs, tag(ids[a], ids[b])))
        if volts is not None and write_volt:
            written.append(writer.write("voltmap", volts, tag(ids[a], ids[b])))
    if want:
        written.extend(totals.write(ini, writer))
    written.extend(write_resistances(writer.base, ids, resistances))
    return written


# -- one-to-all and all-to-one ----------------------------------------------------------


def _point_polymap(
    polygons: np.ndarray | None, points: FocalPoints, point_map: np.ndarray
) -> np.ndarray:
    """Short-circuit regions with every (active) focal region, by Circuitscape's rule.

    Without polygons the focal map itself; with polygons, focal cells outside
    polygons become regions of their own (numbered past the polygons) and,
    when focal ids cover several cells, a polygon a focal cell falls in takes
    that focal id, cell by cell in column-major order, as Circuitscape does.
    """
    if polygons is None:
        return point_map.copy()
    out = polygons.copy()
    if not points.has_regions:
        k = float(polygons.max())
        cells = (point_map != 0) & (polygons == 0)
        out[cells] = point_map[cells] + k
        return out
    k = max(float(polygons.max()), float(point_map.max()))
    cols, rows = np.nonzero(point_map.T)  # column-major
    for r, c in zip(rows, cols, strict=True):
        v1, v2 = point_map[r, c], out[r, c]
        if v2 == 0:
            out[r, c] = k + v1
        elif v1 != v2:
            out[out == v2] = v1
    return out


def _strengths(ini: CircuitscapeIni) -> dict[float, float] | None:
    if not ini.flag("use_variable_source_strengths"):
        return None
    table = read_table(ini.require("variable_source_file"), "variable_source_file", 2)
    return {float(i): float(v) for i, v in table}


@dataclass
class OneToAllSolve:
    """One focal point's solve: resistance (or -1) and its maps (None when skipped)."""

    resistance: float
    voltages: np.ndarray | None
    currents: np.ndarray | None


def _one_solve(
    graph: CircuitGraph,
    sources: np.ndarray,
    grounds: np.ndarray,
    check: int | None,
    policy: str,
    want_currents: bool,
) -> tuple[bool, np.ndarray, np.ndarray | None]:
    src, gnd = _per_node(graph, sources), _per_node(graph, grounds)
    _resolve(src, gnd, policy)
    if check is None:
        zeros = graph.to_cells(np.zeros(graph.n_nodes))
        return False, zeros, zeros.copy() if want_currents else None
    solution = solve_sources_grounds(graph, src, gnd, only_node=check)
    volts = graph.to_cells(solution.voltages)
    curs = None
    if want_currents:
        curs = graph.to_cells(node_currents(graph, solution.voltages, solution.finite_grounds))
    return bool(solution.solved.any()), volts, curs


def _active_points(
    point_map: np.ndarray, ids: np.ndarray, fid: float, pairs: IncludedPairs | None
) -> np.ndarray:
    """The focal map for ``fid``'s solve: focal ids not paired with it are removed."""
    active = point_map.copy()
    if pairs is not None:
        for other in ids:
            if other != fid and not pairs.solve(fid, other):
                active[active == other] = 0.0
    return active


def run_one_to_all(
    ini: CircuitscapeIni, habitat: Habitat, say: Progress, one_to_all: bool
) -> list[Path]:
    """One-to-all (each focal point a source, all others grounds) or all-to-one.

    One-to-all injects 1 A (or the point's variable strength) at the focal
    point, with every other active focal point a direct ground; the
    resistance is the source's voltage per ampere. All-to-one grounds the
    focal point and injects 1 A (or each point's strength) at every other;
    its resistances are 0 (-1 when nothing was solved), as in Circuitscape.
    """
    points = read_focal_points(ini, habitat.header)
    pairs = _included_pairs(ini)
    if pairs is not None:
        points = points.keep(pairs.ids)
    strengths = _strengths(ini)
    ids = points.unique_ids
    shape = habitat.shape
    point_map = points.to_map(shape)
    first = np.zeros(shape)
    for fid in ids:
        first[points.first_cell(fid)] = fid
    base_graph = habitat.graph(_point_polymap(habitat.polygons, points, point_map))
    mode = "one-to-all" if one_to_all else "all-to-one"
    say(f"{mode} mode: {ids.size} focal {'regions' if points.has_regions else 'points'}")
    writer = habitat.writer(ini)
    want_curs = _wants_currents(ini)
    per_point_cur = ini.flag("write_cur_maps") and not ini.flag("write_cum_cur_map_only")
    totals = CurrentTotals.zeros(shape)
    resistances = np.full(ids.size, -1.0)
    written: list[Path] = []
    for k, fid in enumerate(ids):
        active = _active_points(point_map, ids, fid, pairs)
        if active.sum() == fid:  # nothing left to connect it to
            continue
        graph = base_graph
        if pairs is not None and points.has_regions:
            graph = habitat.graph(_point_polymap(habitat.polygons, points, active))
        strength = strengths.get(float(fid), 1.0) if strengths else 1.0
        if one_to_all:
            sources = np.where(first == fid, strength, 0.0)
            grounds = np.where((active != 0) & (active != fid), np.inf, 0.0)
        else:
            if strengths:
                per_cell = np.vectorize(lambda v: strengths.get(float(v), 1.0))(point_map)
                per_cell = np.where(active != 0, per_cell, 1.0)
                sources = np.where((point_map != 0) & (first != fid), per_cell, 0.0)
            else:
                sources = np.where((first != 0) & (active != fid), 1.0, 0.0)
            grounds = np.where(active == fid, np.inf, 0.0)
        check = _node_of(graph, points.first_cell(fid))
        policy = "rmvgnd" if one_to_all else "rmvsrc"
        solved, volts, curs = _one_solve(graph, sources, grounds, check, policy, want_curs)
        if solved:
            if one_to_all:
                cols, rows = np.nonzero(sources.T)
                v = volts[rows[0], cols[0]] / sources[rows[0], cols[0]]
                resistances[k] = v if v != 0 else -1.0
            else:
                resistances[k] = 0.0
        if ini.flag("write_volt_maps"):
            written.append(writer.write("voltmap", volts, tag(fid)))
        if curs is not None:
            totals.add(curs)
            if per_point_cur:
                written.append(writer.write("curmap", curs, tag(fid)))
    if want_curs:
        written.extend(totals.write(ini, writer))
    written.append(write_resistance_list(writer.base, ids, resistances))
    return written
