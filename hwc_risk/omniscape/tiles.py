"""The moving window over a whole grid, tile by tile, on the compute pool or Dask.

Targets are grouped by the tile (:data:`TILE` cells a side) they fall in; a
tile's task solves its targets and returns the current over the tile grown by
the window's reach, which the caller adds into the maps. Each target is solved
once; a task's memory is set by the tile and the window, not by the grid. Tasks
run on :class:`hwc_risk.compute.Compute`'s local pool (threads or processes, at
most ``2 x workers`` tiles in flight) or on its Dask cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..compute import Compute
from .window import Landscape, WindowSettings, WindowSolver, correction_array, solve_target

__all__ = ["TILE", "OmniscapeMaps", "TileResult", "omniscape_maps", "solve_tile"]

#: Side of the tiles targets are grouped in (cells): small enough to keep every
#: worker busy, large enough that a tile's solves outweigh sending it.
TILE = 128


@dataclass
class OmniscapeMaps:
    """Cumulative current and flow potential over the grid (flow potential may be None)."""

    current: np.ndarray
    potential: np.ndarray | None
    targets: int
    factorisations: int = 0
    reused: int = 0

    @property
    def normalized(self) -> np.ndarray:
        """Current divided by flow potential (0 where both are 0), as Omniscape gives it."""
        if self.potential is None:
            raise ValueError("normalised current needs the flow potential")
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.current / self.potential
        return np.where(np.isnan(out), 0.0, out)


@dataclass
class TileJob:
    """What every tile's task shares: the landscape, the settings, the correction."""

    land: Landscape
    settings: WindowSettings
    correction: np.ndarray | None


@dataclass
class TileResult:
    row0: int
    col0: int
    current: np.ndarray
    potential: np.ndarray | None
    factorisations: int
    reused: int


def solve_tile(job: TileJob, targets: np.ndarray) -> TileResult:
    """Solve the targets of one tile; return the current over the tile grown by the reach."""
    h, w = job.land.shape
    reach = job.settings.reach
    r0 = max(int(targets[:, 0].min()) - reach, 0)
    c0 = max(int(targets[:, 1].min()) - reach, 0)
    r1 = min(int(targets[:, 0].max()) + reach, h - 1) + 1
    c1 = min(int(targets[:, 1].max()) + reach, w - 1) + 1
    current = np.zeros((r1 - r0, c1 - c0))
    potential = np.zeros_like(current) if job.settings.flow_potential else None
    solver = WindowSolver(job.settings.four_neighbours)
    for target in targets:
        win, cur, pot = solve_target(job.land, job.settings, target, solver, job.correction)
        at = (
            slice(win.row0 - r0, win.row0 - r0 + win.height),
            slice(win.col0 - c0, win.col0 - c0 + win.width),
        )
        current[at] += cur
        if potential is not None and pot is not None:
            potential[at] += pot
    return TileResult(r0, c0, current, potential, solver.misses, solver.hits)


def _tiles(targets: np.ndarray, size: int) -> Iterator[np.ndarray]:
    key = (targets[:, 0] // size).astype(np.int64) * 1_000_003 + targets[:, 1] // size
    for k in np.unique(key):
        yield targets[key == k]


_SHARED: Any = None


def _init_process(job: TileJob) -> None:
    global _SHARED
    _SHARED = job
    threadpool_limits(limits=1)


def _in_process(targets: np.ndarray) -> TileResult:
    return solve_tile(_SHARED, targets)


def _results(job: TileJob, tiles: list[np.ndarray], compute: Compute) -> Iterator[TileResult]:
    if compute.client is not None:
        shared = compute.client.scatter(job, broadcast=True, hash=False)
        futures = [compute.client.submit(solve_tile, shared, t, pure=False) for t in tiles]
        try:
            for fut in futures:
                yield fut.result()
        finally:
            compute.client.cancel(futures)
        return
    if compute.workers <= 1:
        for t in tiles:
            yield solve_tile(job, t)
        return
    pool: Executor
    if compute.pool == "processes":
        import multiprocessing

        pool = ProcessPoolExecutor(
            compute.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process,
            initargs=(job,),
        )

        def submit(t: np.ndarray) -> Future[TileResult]:
            return pool.submit(_in_process, t)
    else:
        pool = ThreadPoolExecutor(compute.workers)

        def submit(t: np.ndarray) -> Future[TileResult]:
            return pool.submit(solve_tile, job, t)

    with pool, threadpool_limits(limits=1):
        queue = iter(tiles)
        pending: set[Future[TileResult]] = set()
        for t in queue:
            pending.add(submit(t))
            if len(pending) >= 2 * compute.workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(submit(nxt))


def omniscape_maps(
    land: Landscape,
    settings: WindowSettings,
    targets: np.ndarray,
    compute: Compute | None = None,
) -> OmniscapeMaps:
    """Cumulative current (and flow potential) of every target over the grid."""
    compute = compute or Compute(workers=1)
    correction = None
    if settings.correct_artifacts and settings.block_size > 1:
        correction = correction_array(settings, WindowSolver(settings.four_neighbours))
    job = TileJob(land, settings, correction)
    current = np.zeros(land.shape)
    potential = np.zeros(land.shape) if settings.flow_potential else None
    maps = OmniscapeMaps(current, potential, targets=int(targets.shape[0]))
    if targets.shape[0] == 0:
        return maps
    tiles = list(_tiles(targets, TILE))
    for res in _results(job, tiles, compute):
        at = (
            slice(res.row0, res.row0 + res.current.shape[0]),
            slice(res.col0, res.col0 + res.current.shape[1]),
        )
        current[at] += res.current
        if potential is not None and res.potential is not None:
            potential[at] += res.potential
        maps.factorisations += res.factorisations
        maps.reused += res.reused
    return maps
