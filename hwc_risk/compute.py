"""Running window tasks over the grid: a local pool, or a Dask cluster.

Features and predictions are computed chunk by chunk. A *window task* is a
top-level function ``task(shared, window) -> list[array]`` (picklable, so that
it can run in another process or on another machine): it reads what it needs
from files by path (GDAL handles are never shared), and returns one array per
output GeoTIFF. :func:`run_windows` runs it on every window and writes the
arrays into tiled GTiffs that already exist on the grid:

- locally, on a thread pool (the shipped recipes release the GIL while they
  compute) or a process pool, with at most ``2 x workers`` windows in flight,
  written by the calling thread, so memory depends on the chunk size, not the
  grid;
- on a dask.distributed cluster (``compute.scheduler`` / ``--scheduler``),
  where each worker writes its own window under a ``distributed.Lock``
  (GTiff files take one writer at a time). The files must be on a file system
  that the workers share; the COG is made afterwards from the tiled GTiff.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
    wait,
)
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.windows import Window
from threadpoolctl import threadpool_limits

from .bands import Band, FileBand, as_band
from .config import ComputeConfig
from .errors import InputError
from .progress import progress_bar, quiet

__all__ = ["Compute", "WindowTask", "open_compute", "run_tasks", "run_windows", "with_halo"]

T = TypeVar("T")

#: ``task(shared, window)`` returns one array per output file, each of the window's shape.
WindowTask = Callable[[Any, Window], list[np.ndarray]]

#: GDAL's block cache per process, MB. The default (5 % of RAM) is most of a windowed
#: loop's memory and buys no speed when every block is read once.
GDAL_CACHE_MB = 64

#: At most this many MB of features held in memory for validation (:meth:`Compute.holds_in_memory`).
IN_MEMORY_MB = 256


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class Compute:
    """How window tasks run: chunk size, local pool settings, or a Dask client."""

    chunk_size: int = 1024
    workers: int = field(default_factory=default_workers)
    pool: str = "threads"
    client: Any = None  # a distributed.Client when running on a cluster

    @property
    def block(self) -> int:
        """GeoTIFF tile side for files written in chunks: tiles never straddle two chunks."""
        block = math.gcd(self.chunk_size, 256)
        return block if block % 16 == 0 else 256

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def describe(self) -> str:
        """Where chunks run, in words (for the log)."""
        if self.client is not None:
            workers = len(self.client.nthreads())
            return f"the Dask cluster at {self.client.scheduler.address} ({workers} workers)"
        return f"{self.workers} local {self.pool}"

    def record(self) -> dict[str, Any]:
        """The settings, for the manifest."""
        return {
            "scheduler": self.client.scheduler.address if self.client is not None else None,
            "workers": None if self.client is not None else self.workers,
            "pool": "dask.distributed" if self.client is not None else self.pool,
            "chunk_size": self.chunk_size,
        }

    def holds_in_memory(self, shape: tuple[int, int], layers: int) -> bool:
        """Whether a run's validation holds its features and surfaces in memory: when the
        grid fits in one chunk, windows run on local threads and the features take at
        most :data:`IN_MEMORY_MB`. Hundreds of small fits then read and write arrays,
        not files (every read of a file opens it); larger grids, process pools and
        Dask clusters keep tiled files, so memory stays bounded by the chunk.

        >>> Compute(chunk_size=512, pool="threads").holds_in_memory((300, 400), 20)
        True
        >>> Compute(chunk_size=512, pool="threads").holds_in_memory((600, 400), 20)
        False
        """
        height, width = shape
        small = height <= self.chunk_size and width <= self.chunk_size
        megabytes = height * width * 4 * (layers + 1) / 2**20
        local = self.client is None and self.pool == "threads"
        return small and local and megabytes <= IN_MEMORY_MB

    def windows(self, shape: tuple[int, int]) -> list[Window]:
        """Chunks tiling a grid of ``shape``, row by row."""
        height, width = shape
        size = self.chunk_size
        return [
            Window(c, r, min(size, width - c), min(size, height - r))
            for r in range(0, height, size)
            for c in range(0, width, size)
        ]


def with_halo(
    window: Window, halo: int, shape: tuple[int, int]
) -> tuple[Window, tuple[slice, slice]]:
    """``window`` grown by ``halo`` cells (clipped to a grid of ``shape``), and the
    slices of the original window inside it."""
    height, width = shape
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    top, left = max(0, r0 - halo), max(0, c0 - halo)
    bottom, right = min(height, r0 + h + halo), min(width, c0 + w + halo)
    outer = Window(left, top, right - left, bottom - top)
    return outer, (slice(r0 - top, r0 - top + h), slice(c0 - left, c0 - left + w))


@contextmanager
def open_compute(cfg: ComputeConfig | None = None) -> Iterator[Compute]:
    """A :class:`Compute` for a run; connects to ``cfg.scheduler`` if one is set."""
    cfg = cfg or ComputeConfig()
    address = cfg.scheduler
    map_large_arrays()
    compute = Compute(
        chunk_size=cfg.chunk_size, workers=cfg.workers or default_workers(), pool=cfg.pool
    )
    if not address:
        yield compute
        return
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError(
            "compute.scheduler needs the 'distributed' package; pip install distributed"
        ) from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(
            f"compute.scheduler '{address}': no Dask scheduler answered ({exc}); check the "
            "address (tcp://host:8786), or leave it out to compute on this machine"
        ) from None
    compute.client = client
    try:
        yield compute
    finally:
        client.close()


@functools.cache
def _glibc(function: str) -> Callable[..., int] | None:
    """A function of glibc's allocator (``malloc_trim``, ``mallopt``), or None on another
    C library."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), function) if name else None
    except (OSError, AttributeError):
        return None


#: Arrays of at least this many bytes get memory of their own from the system, given back
#: when they are freed (glibc's ``M_MMAP_THRESHOLD``; see :func:`map_large_arrays`).
MMAP_THRESHOLD_BYTES = 4 << 20


@functools.cache
def map_large_arrays() -> bool:
    """Have glibc map arrays of :data:`MMAP_THRESHOLD_BYTES` or more on their own, once
    per process; False on another C library.

    glibc raises its threshold as large blocks are freed (up to 32 MB), after which a
    run's chunk-sized arrays come from the per-thread heaps and stay resident once freed:
    at 4 Mpx that held a run's peak 200-400 MB above what it used, more when validation
    fits run side by side (issue 14; README "Performance"). A fixed threshold keeps the
    peak near the arrays alive.
    """
    mallopt = _glibc("mallopt")
    m_mmap_threshold = -3  # <malloc.h>
    return mallopt is not None and mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES) == 1


def _resident_bytes() -> int | None:
    """This process's resident size (Linux), or None."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryKeeper:
    """Hands freed heap pages back to the operating system when the resident size
    has grown by ``slack_mb`` since the last check that did so (glibc only).

    Every chunk allocates and frees the same temporaries, but glibc keeps freed
    pages of its per-thread arenas, so over hundreds of chunks the resident size
    creeps up. Trimming after every chunk would bound it too, but then every
    chunk's temporaries fault in fresh pages (prediction measured 30-70 %
    slower); trimming only past a slack costs nearly nothing.
    """

    def __init__(self, slack_mb: int = 32) -> None:
        self.slack = slack_mb << 20
        self.floor: int | None = None

    def __call__(self) -> None:
        rss = _resident_bytes()
        trim = _glibc("malloc_trim")
        if rss is None or trim is None:
            return
        if self.floor is not None and rss > self.floor + self.slack:
            trim(0)
            rss = _resident_bytes() or rss
        if self.floor is None or rss > self.floor + self.slack or rss < self.floor:
            self.floor = rss


def _open_outputs(files: ExitStack, outputs: Sequence[Band | Path | str]) -> list[Any]:
    return [files.enter_context(as_band(o).writer()) for o in outputs]


def _write(dsts: Sequence[Any], window: Window, arrays: list[np.ndarray]) -> None:
    if len(arrays) != len(dsts):
        raise RuntimeError(f"window task returned {len(arrays)} arrays for {len(dsts)} outputs")
    for dst, arr in zip(dsts, arrays, strict=True):
        dst.write(arr, window)


# -- process pool: the shared object is sent once per process, not once per window
_PROCESS_SHARED: Any = None


def _set_process_shared(shared: Any) -> None:
    global _PROCESS_SHARED
    _PROCESS_SHARED = shared
    map_large_arrays()
    rasterio.env.set_gdal_config("GDAL_CACHEMAX", GDAL_CACHE_MB)
    threadpool_limits(limits=1)


def _call_in_process(task: WindowTask, window: Window) -> list[np.ndarray]:
    return task(_PROCESS_SHARED, window)


def _local_pool(compute: Compute, shared: Any) -> tuple[Executor, Callable[..., Future]]:
    if compute.pool == "processes":
        import multiprocessing

        pool: Executor = ProcessPoolExecutor(
            compute.workers,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of GDAL's threads
            initializer=_set_process_shared,
            initargs=(shared,),
        )
        return pool, lambda task, win: pool.submit(_call_in_process, task, win)
    threads = ThreadPoolExecutor(compute.workers)
    return threads, lambda task, win: threads.submit(task, shared, win)


def _run_local(
    task: WindowTask,
    shared: Any,
    windows: list[Window],
    outputs: Sequence[Band | Path],
    compute: Compute,
    bar: Any,
) -> None:
    keeper = MemoryKeeper()
    with ExitStack() as files, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        dsts = _open_outputs(files, outputs)
        if compute.workers > 1:
            # the pool is the parallelism: OpenMP (HistGradientBoosting) and BLAS
            # threads inside every worker would only oversubscribe the cores
            files.enter_context(threadpool_limits(limits=1))
        if compute.workers == 1 and compute.pool == "threads":
            for win in windows:
                _write(dsts, win, task(shared, win))
                keeper()
                bar.update(int(win.width * win.height))
            return
        pool, submit = _local_pool(compute, shared)
        with pool:
            queue = iter(windows)
            pending: dict[Future, Window] = {}
            for win in queue:
                pending[submit(task, win)] = win
                if len(pending) >= 2 * compute.workers:
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    win = pending.pop(fut)
                    _write(dsts, win, fut.result())
                    bar.update(int(win.width * win.height))
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[submit(task, nxt)] = nxt
                del done, fut  # the written chunks' arrays go with their futures
                keeper()


def _compute_and_write(
    task: WindowTask,
    shared: Any,
    window: tuple[int, int, int, int],
    outputs: list[str],
    lock_name: str,
) -> int:
    """On a Dask worker: run the task on one window and write it under the cluster lock."""
    from distributed import Lock

    win = Window(*window)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        arrays = task(shared, win)
        with Lock(lock_name), ExitStack() as files:
            _write(_open_outputs(files, [Path(p) for p in outputs]), win, arrays)
    return int(win.width * win.height)


def _run_distributed(
    task: WindowTask,
    shared: Any,
    windows: list[Window],
    outputs: Sequence[Band | Path],
    compute: Compute,
    bar: Any,
) -> None:
    client = compute.client
    if not all(isinstance(as_band(o), FileBand) for o in outputs):
        raise ValueError("a Dask cluster writes files: give file bands, not arrays")
    shared_future = client.scatter(shared, broadcast=True, hash=False)
    lock_name = f"hwc-risk-write-{uuid.uuid4().hex}"
    paths = [str(as_band(p).path.resolve()) for p in outputs]  # type: ignore[attr-defined]
    futures = [
        client.submit(
            _compute_and_write,
            task,
            shared_future,
            (int(w.col_off), int(w.row_off), int(w.width), int(w.height)),
            paths,
            lock_name,
            pure=False,
        )
        for w in windows
    ]
    try:
        for fut in futures:  # in submission order: the bar may lag, never lead
            bar.update(fut.result())
    finally:
        client.cancel(futures)


def run_windows(
    task: WindowTask,
    shared: Any,
    outputs: Sequence[Band | Path],
    compute: Compute,
    shape: tuple[int, int],
    desc: str,
) -> None:
    """Run ``task`` on every chunk of a grid of ``shape``, writing into ``outputs``.

    Every output must already exist on the grid: a band of a
    :class:`~hwc_risk.bands.Store`, or the path of a tiled GTiff (see
    :func:`hwc_risk.covariates.create_band`). Bands in memory are written by
    the calling thread, so they work with the local pools, not on a Dask
    cluster. A progress bar counts cells per second.
    """
    windows = compute.windows(shape)
    total = sum(int(w.width * w.height) for w in windows)
    with progress_bar(desc, total, "cell") as bar:
        if compute.distributed:
            _run_distributed(task, shared, windows, outputs, compute, bar)
        else:
            _run_local(task, shared, windows, outputs, compute, bar)


def _in_worker(task: Callable[[], T]) -> T:
    # OpenMP's thread count is a per-thread setting: hold it to one in the worker too
    with quiet(), threadpool_limits(limits=1, user_api="openmp"):
        return task()


def run_tasks(tasks: Sequence[Callable[[], T]], compute: Compute, desc: str, unit: str) -> list[T]:
    """Run independent tasks (model fits and their evaluations) side by side.

    Tasks run on ``compute.workers`` local threads with one BLAS and OpenMP
    thread each, so two fits on two cores take about the time of one, and
    results come back in the order of ``tasks``. One thread per fit is also
    what makes results reproducible: a multi-threaded BLAS sums in an order
    that depends on its thread count, so the same fit differed in its last
    digits from one machine to another. Here every task computes exactly what
    it would alone, whatever the number of workers or cores. The chunked
    steps inside a task (prediction, surfaces) run on their own small pools.
    With a Dask cluster the tasks still run here: they are small fits on
    samples, not the grid.
    """
    workers = min(compute.workers, len(tasks))
    with threadpool_limits(limits=1), progress_bar(desc, len(tasks), unit) as bar:
        if workers <= 1:
            out = []
            for task in tasks:
                out.append(task())
                bar.update(1)
            return out
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(_in_worker, task) for task in tasks]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
            return [fut.result() for fut in futures]
