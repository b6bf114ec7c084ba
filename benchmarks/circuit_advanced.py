"""Time the circuit solver in advanced mode on grids of 0.25, 1 and 4 million cells.

Usage: ``.venv/bin/python benchmarks/circuit_advanced.py [--sides 500 1000 2000]``

Each grid is a smooth random resistance surface (8 neighbours, average
resistance) with current sources along the western edge and direct grounds
along the eastern edge: one connected component the size of the grid. Each size
runs in its own process so that the peak memory (RSS) is its own. Prints one
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def one(side: int) -> dict[str, float]:
    from scipy import ndimage

    import hwc_risk.circuit as circuit

    rng = np.random.default_rng(1)
    field = ndimage.gaussian_filter(rng.normal(size=(side, side)), side / 50)
    resistance = np.exp(2.0 * field / field.std())  # spans about two orders of magnitude
    conductance = 1.0 / resistance
    t0 = time.perf_counter()
    nodes = circuit.node_map(conductance)
    graph = circuit.build_graph(conductance, nodes, four_neighbours=False, avg_resistances=True)
    t1 = time.perf_counter()
    sources = np.zeros(graph.n_nodes)
    grounds = np.zeros(graph.n_nodes)
    sources[nodes[:, 0] - 1] = 1.0
    grounds[nodes[:, -1] - 1] = np.inf
    volts, finite = circuit.solve_advanced(graph, sources, grounds)
    t2 = time.perf_counter()
    currents = circuit.node_currents(graph, volts, finite)
    t3 = time.perf_counter()
    # Kirchhoff: all injected current leaves through the grounded column
    inflow = currents[nodes[:, -1] - 1].sum()
    return {
        "cells": float(side * side),
        "graph_s": t1 - t0,
        "solve_s": t2 - t1,
        "currents_s": t3 - t2,
        "balance": float(abs(inflow - side) / side),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    header = [
        "grid",
        "cells",
        "graph build s",
        "solve s (AMG-CG)",
        "currents s",
        "current balance error",
        "peak RSS MB",
    ]
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|---|")
    for side in args.sides:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(side)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {side}x{side} | {r['cells'] / 1e6:.2f} M | {r['graph_s']:.2f} | {r['solve_s']:.2f} "
            f"| {r['currents_s']:.2f} | {r['balance']:.1e} | {r['rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
