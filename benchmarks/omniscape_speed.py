"""Time hwc-risk's moving window (Omniscape) against a naive loop of Circuitscape solves.

Usage: ``.venv/bin/python benchmarks/omniscape_speed.py [--quick]``

1. *Window vs naive loop*: the same targets (current and flow potential) solved
   by ``hwc_risk.omniscape`` (window graphs assembled from arrays, one solve of
   the target's component, factorisations of repeated windows reused) and by a
   naive loop that runs the generic Circuitscape advanced-mode path on every
   window (node map, graph, per-component solve, node currents). Both on one
   core; the two maps must agree.
2. *Omniscape's documented example size*: radius 100 cells (the radius of
   Omniscape's user-guide .ini and of its Maryland example) on a 1000 x 1000
   grid; a sample of targets is timed and given per 1,000 targets, on 1 worker
   and on the local pool.

The landscape is a smooth random resistance (two orders of magnitude) with 1 %
barrier cells. Prints Markdown tables. Timings share the machine with whatever
else runs; compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import peak_rss_mb

from hwc_risk.circuit import build_graph, node_currents, node_map, solve_sources_grounds
from hwc_risk.compute import Compute
from hwc_risk.omniscape import Landscape, WindowSettings, find_targets, omniscape_maps
from hwc_risk.omniscape.window import Window, window_sources


def landscape(side: int, seed: int = 1) -> Landscape:
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=(side, side)), side / 40)
    resistance = np.exp(2.3 * field / field.std())
    resistance[rng.random((side, side)) < 0.01] = np.nan
    conductance = np.where(np.isfinite(resistance), 1.0 / resistance, 0.0)
    return Landscape(conductance, conductance.copy())


def naive_window(g: np.ndarray, src: np.ndarray, centre: tuple[int, int]) -> np.ndarray:
    """Circuitscape's advanced mode on one window, through the generic raster path."""
    nodes = node_map(g)
    graph = build_graph(g, nodes, four_neighbours=False, avg_resistances=False)
    if nodes[centre] == 0:
        return np.zeros(g.shape)
    sources = np.zeros(graph.n_nodes)
    has = nodes > 0
    np.add.at(sources, nodes[has] - 1, src[has])
    grounds = np.zeros(graph.n_nodes)
    grounds[nodes[centre] - 1] = np.inf
    sources[nodes[centre] - 1] = 0.0
    solution = solve_sources_grounds(graph, sources, grounds)
    return graph.to_cells(node_currents(graph, solution.voltages, solution.finite_grounds))


def naive(
    land: Landscape, settings: WindowSettings, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Current and flow potential, every window through the generic path."""
    current = np.zeros(land.shape)
    potential = np.zeros(land.shape)
    for target in targets:
        win = Window.around(int(target[0]), int(target[1]), settings.reach, land.shape)
        src = window_sources(land, settings, target, win)
        g = land.conductance[win.slices].copy()
        g[win.distance() > settings.reach] = 0.0
        current[win.slices] += naive_window(g, src, win.centre)
        potential[win.slices] += naive_window(np.ones(g.shape), src, win.centre)
    return current, potential


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def compare(side: int, radius: int, n_targets: int) -> dict[str, float]:
    land = landscape(side)
    settings = WindowSettings(radius=radius, flow_potential=True, correct_artifacts=False)
    targets = find_targets(land.sources, settings)
    rng = np.random.default_rng(0)
    targets = targets[np.sort(rng.choice(targets.shape[0], n_targets, replace=False))]
    (cur, pot), t_naive = timed(naive, land, settings, targets)
    maps, t_fast = timed(omniscape_maps, land, settings, targets, Compute(workers=1))
    assert maps.potential is not None
    diff = max(
        np.abs(maps.current - cur).max() / np.abs(cur).max(),
        np.abs(maps.potential - pot).max() / np.abs(pot).max(),
    )
    return {
        "side": side,
        "radius": radius,
        "targets": n_targets,
        "naive_s": t_naive,
        "window_s": t_fast,
        "speedup": t_naive / t_fast,
        "max_rel_diff": diff,
        "reused": maps.reused / (maps.reused + maps.factorisations),
    }


def example_size(side: int, radius: int, n_targets: int, workers: int) -> dict[str, float]:
    land = landscape(side)
    settings = WindowSettings(radius=radius, flow_potential=True, block_size=1)
    targets = find_targets(land.sources, settings)
    rng = np.random.default_rng(0)
    targets = targets[np.sort(rng.choice(targets.shape[0], n_targets, replace=False))]
    pool = "processes" if workers > 1 else "threads"
    maps, took = timed(omniscape_maps, land, settings, targets, Compute(workers=workers, pool=pool))
    return {
        "workers": workers,
        "targets": n_targets,
        "seconds": took,
        "per_1000_s": took / n_targets * 1000,
        "rss_mb": peak_rss_mb(),
        "finite": float(np.isfinite(maps.current).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args()
    cases = [(120, 10, 60), (200, 25, 40)] if args.quick else [(200, 10, 300), (300, 30, 80)]
    print(
        "| grid | radius | targets | naive loop s | moving window s | speed-up "
        "| max rel. diff | solves reusing a factorisation |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for side, radius, n in cases:
        r = compare(side, radius, n)
        print(
            f"| {side}x{side} | {radius} | {n} | {r['naive_s']:.2f} | {r['window_s']:.2f} | "
            f"{r['speedup']:.1f}x | {r['max_rel_diff']:.1e} | {r['reused']:.0%} |"
        )
    side, radius, n = (300, 30, 20) if args.quick else (1000, 100, 40)
    print()
    print(f"Omniscape's example radius ({radius} cells), {side}x{side} grid, {n} targets sampled:")
    print()
    print("| workers | targets | seconds | s per 1,000 targets | peak RSS MB |")
    print("|---|---|---|---|---|")
    for workers in sorted({1, min(2, os.cpu_count() or 1)}):
        r = example_size(side, radius, n, workers)
        print(
            f"| {workers} | {n} | {r['seconds']:.1f} | {r['per_1000_s']:.0f} | {r['rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
