"""Circuit-theory connectivity on raster grids, as Circuitscape defines it.

Pure functions on arrays: build the node map (cells, merged where short-circuit
regions or focal regions join them), the conductance graph between
neighbouring cells, solve for voltages with grounds and current sources, and
compute the per-node currents that Circuitscape maps. :mod:`hwc_risk.circuitscape`
reads and writes Circuitscape's files around these.

Conventions follow Circuitscape (McRae et al. 2008; Circuitscape.jl):

- a cell is a node when its conductance is positive; all cells of a
  short-circuit region (polygon) or focal region that holds at least one
  such cell share one node, including region cells without habitat;
- neighbours are joined by an edge of conductance ``(g1 + g2) / 2`` (average
  conductance) or ``2 g1 g2 / (g1 + g2)`` (average resistance); diagonal
  edges are divided by sqrt(2);
- a node's current is the larger of the currents flowing into and out of it.

Linear systems are solved with conjugate gradients preconditioned by pyamg's
smoothed-aggregation algebraic multigrid, to a relative residual of 1e-11
(Circuitscape stops at 1e-6), or with a sparse direct solve for small systems.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyamg
from scipy import sparse
from scipy.sparse import csgraph
from scipy.sparse.linalg import cg, splu

__all__ = [
    "AdvancedSolution",
    "CircuitGraph",
    "Factor",
    "PairResult",
    "branch_currents",
    "build_graph",
    "effective_resistance_pairs",
    "merge_region",
    "node_currents",
    "node_map",
    "pair_with_focal_regions",
    "solve_advanced",
    "solve_sources_grounds",
]

#: Systems with at most this many unknowns are solved directly (SuperLU); larger ones
#: with AMG-preconditioned conjugate gradients.
DIRECT_SOLVE_MAX = 20_000
CG_RTOL = 1e-11
SQRT2 = np.sqrt(2.0)


def node_map(conductance: np.ndarray, regions: list[np.ndarray] | None = None) -> np.ndarray:
    """Node number of every cell (1..n, 0 = not a node), numbered in raster order.

    Cells with positive, finite conductance are nodes. Each map in
    ``regions`` (short-circuit polygons, focal regions) holds region ids
    (> 0; 0, negative or NaN = none): cells sharing an id are merged into one
    node if any of them is a node, and the region's other cells join that node.
    Regions of different maps that share a habitat cell merge too.

    The merge is one connected-components pass (scipy) over a graph of the
    habitat cells and one extra vertex per region, so it costs time in
    proportion to the cells, whatever the number of regions.
    """
    habitat = np.isfinite(conductance) & (conductance > 0)
    n_hab = int(habitat.sum())
    labels = np.zeros(conductance.shape, dtype=np.int64)
    labels[habitat] = np.arange(1, n_hab + 1)
    if not regions:
        return labels
    flat_hab = habitat.ravel()
    flat_labels = labels.ravel()
    links_a: list[np.ndarray] = []
    links_b: list[np.ndarray] = []
    members: list[tuple[np.ndarray, np.ndarray]] = []  # (cells, region vertex of each)
    n_vertices = n_hab
    for region in regions:
        ids = np.where(np.isfinite(region), region, 0.0).ravel()
        cells = np.flatnonzero(ids > 0)
        uniq, inverse = np.unique(ids[cells], return_inverse=True)
        vertex = n_vertices + inverse
        on_habitat = flat_hab[cells]
        links_a.append(flat_labels[cells[on_habitat]] - 1)
        links_b.append(vertex[on_habitat])
        members.append((cells, vertex))
        n_vertices += uniq.size
    a = np.concatenate(links_a)
    b = np.concatenate(links_b)
    graph = sparse.coo_matrix((np.ones(a.size), (a, b)), shape=(n_vertices, n_vertices))
    n_comp, comp = csgraph.connected_components(graph, directed=False)
    has_habitat = np.zeros(n_comp, dtype=bool)
    has_habitat[comp[:n_hab]] = True
    merged = np.zeros(flat_labels.size, dtype=np.int64)
    merged[flat_hab] = comp[:n_hab] + 1
    for cells, vertex in members:
        c = comp[vertex]
        keep = has_habitat[c]
        merged[cells[keep]] = c[keep] + 1
    return _renumber(merged).reshape(conductance.shape)


def _renumber(flat: np.ndarray) -> np.ndarray:
    """Labels 1..n in order of first appearance (0 stays 0)."""
    nz = flat > 0
    out = np.zeros(flat.size, dtype=np.int64)
    if not nz.any():
        return out
    _, first, inverse = np.unique(flat[nz], return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    out[nz] = order[inverse] + 1
    return out


@dataclass
class CircuitGraph:
    """A conductance graph: adjacency, connected components and, for rasters, the node map."""

    nodes: np.ndarray | None  # (rows, cols) node number per cell, 0 = none; None for networks
    adjacency: sparse.csr_matrix  # symmetric, edge conductances, no diagonal
    components: np.ndarray  # component label per node (0-based node index)

    @classmethod
    def from_edges(
        cls, i: np.ndarray, j: np.ndarray, conductance: np.ndarray, n: int
    ) -> CircuitGraph:
        """A network graph from edge lists (0-based node indices; repeated edges add up)."""
        adj = sparse.coo_matrix((conductance, (i, j)), shape=(n, n)).tocsr()
        adj = (adj + adj.T).tocsr()
        adj.setdiag(0)
        adj.eliminate_zeros()
        _, labels = csgraph.connected_components(adj, directed=False)
        return cls(nodes=None, adjacency=adj, components=labels)

    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def laplacian(self) -> sparse.csr_matrix:
        degree = np.asarray(self.adjacency.sum(axis=1)).ravel()
        return (sparse.diags(degree) - self.adjacency).tocsr()

    def component_nodes(self) -> Iterator[np.ndarray]:
        for c in np.unique(self.components):
            yield np.flatnonzero(self.components == c)

    def to_cells(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Spread per-node values onto the grid (``fill`` where there is no node)."""
        if self.nodes is None:
            raise ValueError("a network graph has no cells")
        out = np.full(self.nodes.shape, fill, dtype=np.float64)
        has = self.nodes > 0
        out[has] = values[self.nodes[has] - 1]
        return out


def _edge_conductance(g1: np.ndarray, g2: np.ndarray, avg_resistances: bool) -> np.ndarray:
    if avg_resistances:
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where((g1 > 0) & (g2 > 0), 2.0 * g1 * g2 / (g1 + g2), 0.0)
        return w
    return (g1 + g2) / 2.0


def build_graph(
    conductance: np.ndarray,
    nodes: np.ndarray,
    four_neighbours: bool = True,
    avg_resistances: bool = True,
) -> CircuitGraph:
    """The graph of conductances between neighbouring node cells.

    ``conductance`` is 0 (or NaN) where there is no habitat; such cells can
    still carry a node number through a region, and then join edges with the
    conductance the averaging rule gives them (zero for average resistance).
    """
    g = np.where(np.isfinite(conductance) & (conductance > 0), conductance, 0.0)
    n = int(nodes.max())
    rows_i: list[np.ndarray] = []
    cols_i: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    pairs = [
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None)), 1.0),  # east
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None)), 1.0),  # south
    ]
    if not four_neighbours:
        pairs += [
            ((slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None)), SQRT2),
            ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1)), SQRT2),
        ]
    for a, b, scale in pairs:
        na, nb = nodes[a], nodes[b]
        both = (na > 0) & (nb > 0) & (na != nb)
        w = _edge_conductance(g[a][both], g[b][both], avg_resistances) / scale
        keep = w > 0
        rows_i.append(na[both][keep] - 1)
        cols_i.append(nb[both][keep] - 1)
        vals.append(w[keep])
    r = np.concatenate(rows_i) if rows_i else np.zeros(0, np.int64)
    c = np.concatenate(cols_i) if cols_i else np.zeros(0, np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0)
    adj = sparse.coo_matrix((v, (r, c)), shape=(n, n)).tocsr()
    adj = (adj + adj.T).tocsr()  # duplicates (parallel edges into regions) are summed
    adj.eliminate_zeros()
    _, labels = csgraph.connected_components(adj, directed=False)
    return CircuitGraph(nodes=nodes, adjacency=adj, components=labels)


class Factor:
    """A reusable solver for one SPD matrix and many right-hand sides.

    Up to :data:`DIRECT_SOLVE_MAX` unknowns it is a sparse LU factorisation
    (SuperLU in symmetric mode: a fill-reducing ordering of ``A + A^T`` and no
    pivoting, which a grounded conductance matrix, symmetric positive
    definite, does not need; three times faster than the default); above, a
    smoothed-aggregation AMG hierarchy used as the preconditioner of
    conjugate gradients.
    """

    def __init__(self, matrix: sparse.spmatrix) -> None:
        self.matrix = sparse.csr_matrix(matrix)
        n = self.matrix.shape[0]
        self.direct = n <= DIRECT_SOLVE_MAX
        self.lu = None
        self.precond = None
        if n == 0:
            return
        if self.direct:
            self.lu = splu(
                self.matrix.tocsc(),
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )
        else:
            ml = pyamg.smoothed_aggregation_solver(self.matrix, symmetry="symmetric")
            self.precond = ml.aspreconditioner()

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve for one right-hand side (a vector) or several (columns of a matrix)."""
        if self.matrix.shape[0] == 0:
            return np.zeros(rhs.shape)
        if self.lu is not None:
            return np.asarray(self.lu.solve(np.asarray(rhs, dtype=np.float64)))
        if rhs.ndim == 2:
            return np.column_stack([self.solve(rhs[:, k]) for k in range(rhs.shape[1])])
        x, info = cg(self.matrix, rhs, rtol=CG_RTOL, atol=0.0, maxiter=5000, M=self.precond)
        if info != 0:
            raise RuntimeError(f"conjugate gradients did not converge (info={info})")
        return np.asarray(x)


@dataclass
class AdvancedSolution:
    """Voltages of an advanced-mode solve."""

    voltages: np.ndarray  # per node; 0 where no component was solved
    finite_grounds: np.ndarray  # ground conductances used (0 for direct grounds)
    solved: np.ndarray  # per node: True where its component was solved


def solve_sources_grounds(
    graph: CircuitGraph,
    sources: np.ndarray,
    grounds: np.ndarray,
    only_node: int | None = None,
) -> AdvancedSolution:
    """Voltages for current ``sources`` (A) and ``grounds`` (S; inf = direct ground).

    As in Circuitscape, each connected component whose sources add up to a
    non-zero current and whose ground conductances add up to more than zero is
    solved; the others stay at 0 V. With ``only_node`` (0-based) only the
    component holding that node is solved (one-to-all and all-to-one modes).
    """
    lap = graph.laplacian
    voltages = np.zeros(graph.n_nodes)
    solved = np.zeros(graph.n_nodes, dtype=bool)
    finite = np.where(np.isinf(grounds), 0.0, grounds)
    for comp in graph.component_nodes():
        if only_node is not None and graph.components[only_node] != graph.components[comp[0]]:
            continue
        s, gr = sources[comp], grounds[comp]
        if s.sum() == 0 or not gr.sum() > 0:
            continue
        direct = np.isinf(gr)
        keep = comp[~direct]
        sub = lap[keep][:, keep] + sparse.diags(finite[keep])
        voltages[keep] = Factor(sub).solve(sources[keep])
        solved[comp] = True
    return AdvancedSolution(voltages, finite, solved)


def solve_advanced(
    graph: CircuitGraph, sources: np.ndarray, grounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Voltages of every node for current ``sources`` (A) and ``grounds`` (S; inf = direct).

    Returns the voltages and the finite ground conductances used (for
    :func:`node_currents`); see :func:`solve_sources_grounds`.
    """
    solution = solve_sources_grounds(graph, sources, grounds)
    return solution.voltages, solution.finite_grounds


def node_currents(
    graph: CircuitGraph, voltages: np.ndarray, finite_grounds: np.ndarray | None = None
) -> np.ndarray:
    """Current through every node, as Circuitscape maps it.

    For each node the currents flowing in from its neighbours and flowing out
    to them are summed separately (current into a finite ground counts as
    outflow) and the larger of the two is the node's current. Branch currents below 1e-8 of the
    largest are dropped, as Circuitscape does.
    """
    upper = sparse.triu(graph.adjacency, k=1).tocoo()
    i, j, w = upper.row, upper.col, upper.data
    n = graph.n_nodes
    result = []
    for sign in (1.0, -1.0):
        cur = sign * w * (voltages[i] - voltages[j])
        if cur.size:
            maxcur = cur.max()
            if maxcur != 0:
                cur = np.where(np.abs(cur / maxcur) < 1e-8, 0.0, cur)
        # cur > 0 runs towards j for the inflow sum (sign +1) and leaves j for the
        # outflow sum (sign -1, where the currents are negated); either way the
        # positive part is booked on j and the negative part on i
        total = np.zeros(n)
        np.add.at(total, j, np.where(cur > 0, cur, 0.0))
        np.add.at(total, i, np.where(cur < 0, -cur, 0.0))
        if finite_grounds is not None and np.any(finite_grounds):
            # Circuitscape books current to a finite ground with the outflow when it
            # leaves the node (positive voltage) and, signed, with the inflow otherwise
            fg = finite_grounds * voltages
            total += np.where(fg < 0, fg, 0.0) if sign > 0 else np.where(fg > 0, fg, 0.0)
        result.append(total)
    return np.maximum(result[0], result[1])


def branch_currents(
    graph: CircuitGraph, voltages: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Current through every edge ``(i, j)``, ``i < j`` (0-based), as Circuitscape writes it.

    The magnitude of ``g (v_i - v_j)``; currents below 1e-8 of the largest
    signed current are zero, as in Circuitscape.
    """
    upper = sparse.triu(graph.adjacency, k=1).tocoo()
    cur = upper.data * (voltages[upper.row] - voltages[upper.col])
    if cur.size and cur.max() != 0:
        cur = np.where(np.abs(cur / cur.max()) < 1e-8, 0.0, cur)
    return upper.row, upper.col, np.abs(cur)


@dataclass
class PairResult:
    """One focal pair of a pairwise run."""

    i: int  # index into the focal list
    j: int
    resistance: float
    voltages: np.ndarray | None  # per node; v[i] = 0, v[j] = resistance
    currents: np.ndarray | None


def effective_resistance_pairs(
    graph: CircuitGraph,
    focal_nodes: list[int | None],
    want_maps: bool = True,
    exclude: set[tuple[int, int]] | None = None,
) -> Iterator[PairResult]:
    """Pairwise effective resistances between focal nodes (0-based; None = not on the graph).

    For each pair ``(i, j)``, ``i < j``, in the same component, node ``i`` is
    grounded and 1 A is injected at node ``j``: the voltage of ``j`` is the
    effective resistance. Pairs in different components (or off the graph)
    get -1, as in Circuitscape, and so do the pairs ``(i, j)`` in ``exclude``
    (indices into ``focal_nodes``), which are not solved. One solver is set
    up per grounded node and reused for all its pairs.
    """
    exclude = exclude or set()
    lap = graph.laplacian
    comp = graph.components
    for a, na in enumerate(focal_nodes):
        partners = list(range(a + 1, len(focal_nodes)))
        if na is None:
            for b in partners:
                yield PairResult(a, b, -1.0, None, None)
            continue
        nodes_c = np.flatnonzero(comp == comp[na])
        keep = nodes_c[nodes_c != na]
        local = {int(node): k for k, node in enumerate(keep)}
        factor = Factor(lap[keep][:, keep]) if keep.size else None
        for b in partners:
            nb = focal_nodes[b]
            if nb is None or comp[nb] != comp[na] or (a, b) in exclude:
                yield PairResult(a, b, -1.0, None, None)
                continue
            if nb == na:  # both in one short-circuit region: no resistance, no current
                zeros = np.zeros(graph.n_nodes) if want_maps else None
                yield PairResult(a, b, 0.0, zeros, zeros)
                continue
            rhs = np.zeros(keep.size)
            rhs[local[nb]] = 1.0
            assert factor is not None
            v_local = factor.solve(rhs)
            resistance = float(v_local[local[nb]])
            if not want_maps:
                yield PairResult(a, b, resistance, None, None)
                continue
            volts = np.zeros(graph.n_nodes)
            volts[keep] = v_local
            yield PairResult(a, b, resistance, volts, node_currents(graph, volts))


def merge_region(polygons: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Add a region to a polygon map: polygons it touches (in any cell) join it.

    This is how Circuitscape combines a focal region with short-circuit
    polygons: the overlap is by cell, whether or not the cell is habitat.
    """
    ids = np.where(np.isfinite(polygons), polygons, 0.0)
    new_id = max(float(ids.max()), 0.0) + 1.0
    touched = np.unique(ids[cells & (ids > 0)])
    out = np.where(np.isin(ids, touched) & (ids > 0), new_id, ids)
    out[cells] = new_id
    return out


def pair_with_focal_regions(
    conductance: np.ndarray,
    regions: list[np.ndarray],
    focal: np.ndarray,
    id_a: float,
    id_b: float,
    four_neighbours: bool,
    avg_resistances: bool,
    want_maps: bool = True,
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """Effective resistance between two focal regions, and cell maps of voltage and current.

    As in Circuitscape, only the two regions of the pair are short-circuited
    (with the polygons they touch, see :func:`merge_region`); the other focal
    regions stay ordinary habitat. ``regions`` holds at most the polygon map. Returns -1 and no maps
    when the regions are not connected.
    """
    combined = regions[0] if regions else np.zeros(conductance.shape)
    for fid in (id_a, id_b):
        combined = merge_region(combined, focal == fid)
    nodes = node_map(conductance, [combined])
    graph = build_graph(conductance, nodes, four_neighbours, avg_resistances)
    on_a = nodes[(focal == id_a) & (nodes > 0)]
    on_b = nodes[(focal == id_b) & (nodes > 0)]
    if on_a.size == 0 or on_b.size == 0:
        return -1.0, None, None
    na, nb = int(on_a[0]) - 1, int(on_b[0]) - 1
    pair = next(iter(effective_resistance_pairs(graph, [na, nb], want_maps)))
    if pair.voltages is None or pair.currents is None:
        return pair.resistance, None, None
    return pair.resistance, graph.to_cells(pair.voltages), graph.to_cells(pair.currents)
