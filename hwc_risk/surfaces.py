"""Risk surfaces on disk: metrics, classes and baselines, chunk by chunk.

A surface (a float32 GeoTIFF on the grid) is never read whole. Metrics and
classes need order statistics of all its cells in an area: the k-th largest
value, how many cells lie below a score. :class:`RankedSurface` finds them
exactly in a few passes over the chunks: every float32 value maps to a 32-bit
key in the same order, a histogram of the keys' upper 16 bits (65,536 counts)
shows which bucket holds the k-th largest, and a second pass counts the lower
16 bits inside that bucket. The numbers are the definitions of
:mod:`hwc_risk.validation` (:func:`~hwc_risk.validation.capture_rate`,
:func:`~hwc_risk.validation.surface_auc`, the Boyce index; tests hold them
equal), and memory depends on the chunk, not the grid.

Surfaces can be files (a run's) or arrays in memory (:mod:`hwc_risk.bands`);
:func:`evaluate_surface`, :func:`classify` and :func:`baseline_surfaces` are
the in-memory entry points: the same code in one chunk.

Baseline surfaces (uniform, past counts, kernel density) are written chunk by
chunk by :func:`baseline_window`; the kernel density is a sum of separable
Gaussians (a matrix product per chunk) rather than a filter over the grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from .bands import ArrayBand, Band, as_band, read_band
from .classes import RISK_CLASSES
from .compute import Compute
from .history import gaussian_kernel
from .mask import ValidMask, cell_groups
from .validation import BASELINES, BlockFolds, Metrics, boyce_from_shares, kde_bandwidth

__all__ = [
    "Area",
    "BaselineJob",
    "ClassCut",
    "RankedSurface",
    "SpreadJob",
    "baseline_surfaces",
    "baseline_window",
    "class_captures",
    "class_window",
    "classify",
    "evaluate_surface",
    "kernel_density_window",
    "spread_window",
    "values_at",
]

_BUCKETS = 1 << 16


def float_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys of float32 values in the same order (-0.0 and 0.0 share a key)."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    return np.where(bits & 0x80000000, ~bits, bits | 0x80000000).astype(np.uint32)


def key_value(key: int) -> float:
    """The float32 value of a key of :func:`float_keys`."""
    bits = key & 0x7FFFFFFF if key & 0x80000000 else ~key & 0xFFFFFFFF
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


@dataclass(frozen=True)
class Area:
    """The cells a surface is evaluated on: the valid cells, optionally of one fold."""

    valid: ValidMask
    folds: BlockFolds | None = None
    fold: int = -1

    def window(self, window: Window) -> np.ndarray:
        inside = self.valid.window(window)
        if self.folds is not None:
            inside &= self.folds.window(window) == self.fold
        return inside

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        inside = self.valid.at(rows, cols)
        if self.folds is not None:
            inside &= self.folds.at(rows, cols) == self.fold
        return inside


def values_at(band: Band | Path, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of a band at cells, read chunk by chunk."""
    band = as_band(band)
    out = np.full(len(rows), np.nan, dtype=np.float32)
    width = band.shape[1]
    with band.reader() as ds:
        for idx, win in cell_groups(rows, cols, width):
            block = ds.read(win)
            out[idx] = block[rows[idx] - int(win.row_off), cols[idx] - int(win.col_off)]
    return out


@dataclass(frozen=True)
class Order:
    """The m-th largest value's key, and how many cells are above it and equal to it."""

    key: int
    greater: int
    equal: int

    @property
    def value(self) -> float:
        return key_value(self.key)


class RankedSurface:
    """A float32 surface on disk, ranked within an :class:`Area` without holding it.

    The first pass (on construction) counts the cells, their range and the
    key histogram, and for every ``score`` how many cells are below and equal
    to it (for the AUC).
    """

    def __init__(
        self,
        surface: Band | Path,
        area: Area,
        scores: np.ndarray | None = None,
        chunk: int = 1024,
    ) -> None:
        self.band = as_band(surface)
        self.area = area
        self.chunk = chunk
        self.windows = Compute(chunk_size=chunk).windows(area.valid.shape)
        self.scores = np.zeros(0, np.float32) if scores is None else np.asarray(scores)
        self.n = 0
        self.lo, self.hi = math.inf, -math.inf
        self.hist = np.zeros(_BUCKETS, dtype=np.int64)
        self.less = np.zeros(self.scores.size, dtype=np.int64)
        self.equal = np.zeros(self.scores.size, dtype=np.int64)
        for _, block, ok in self._chunks():
            v = block[ok]
            if not v.size:
                continue
            self.n += v.size
            self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
            self.hist += np.bincount(float_keys(v) >> 16, minlength=_BUCKETS)
            if self.scores.size:
                v.sort()
                left = np.searchsorted(v, self.scores, side="left")
                self.less += left
                self.equal += np.searchsorted(v, self.scores, side="right") - left

    @classmethod
    def for_incidents(
        cls,
        surface: Band | Path,
        area: Area,
        rows: np.ndarray,
        cols: np.ndarray,
        chunk: int = 1024,
    ) -> RankedSurface:
        """Ranked for the incidents at ``rows, cols`` that fall in the area on a value
        (the others are ignored)."""
        scores = values_at(surface, rows, cols)
        inside = area.at(rows, cols) & np.isfinite(scores)
        return cls(surface, area, scores[inside], chunk)

    def _chunks(self) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
        """Each chunk: its window, values, and which cells are in the area with a value."""
        with self.band.reader() as ds:
            for win in self.windows:
                block = ds.read(win)
                yield win, block, self.area.window(win) & np.isfinite(block)

    def _second_pass(
        self, ms: list[int], edges: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[dict[int, Order], np.ndarray | None]:
        """The m-th largest (1-based) for every m in ``ms``, and the number of cells in
        each closed interval ``[edges[0][i], edges[1][i]]`` (for the Boyce index)."""
        from_top = np.cumsum(self.hist[::-1])
        where: dict[int, tuple[int, int]] = {}  # m -> (bucket, cells in higher buckets)
        for m in ms:
            i = int(np.searchsorted(from_top, m))
            where[m] = (_BUCKETS - 1 - i, int(from_top[i - 1]) if i else 0)
        low = {b: np.zeros(_BUCKETS, dtype=np.int64) for b, _ in where.values()}
        counts = None if edges is None else np.zeros(edges[0].size, dtype=np.int64)
        if low or counts is not None:
            for _, block, ok in self._chunks():
                v = block[ok]
                if not v.size:
                    continue
                keys = float_keys(v)
                high = keys >> 16
                for b, hist in low.items():
                    hist += np.bincount(keys[high == b] & 0xFFFF, minlength=_BUCKETS)
                if counts is not None and edges is not None:
                    v.sort()
                    counts += np.searchsorted(v, edges[1], side="right")
                    counts -= np.searchsorted(v, edges[0], side="left")
        orders = {}
        for m, (b, above) in where.items():
            in_bucket = np.cumsum(low[b][::-1])
            j = int(np.searchsorted(in_bucket, m - above))
            lo16 = _BUCKETS - 1 - j
            greater = above + (int(in_bucket[j - 1]) if j else 0)
            orders[m] = Order((b << 16) | lo16, greater, int(low[b][lo16]))
        return orders, counts

    def evaluate(self, fractions: tuple[float, ...]) -> Metrics:
        """AUC, Boyce index, capture rates and PAI for the scores given on construction:
        :func:`hwc_risk.validation.evaluate_surface` of the surface, chunk by chunk."""
        s = self.scores
        if self.n == 0 or s.size == 0:
            nan = float("nan")
            return Metrics(
                n_incidents=int(s.size),
                auc=nan,
                boyce=nan,
                rates=tuple((f, nan, nan) for f in fractions),
            )
        edges = None
        if self.hi > self.lo:
            width = (self.hi - self.lo) / 10.0
            starts = np.linspace(self.lo, self.hi - width, 101)
            edges = (starts, starts + width)
        ks = {f: f * self.n for f in fractions}
        ms = {f: max(0, math.ceil(k) - 1) + 1 for f, k in ks.items()}
        orders, counts = self._second_pass(sorted(set(ms.values())), edges)
        boyce = float("nan")
        if edges is not None and counts is not None:
            ordered_s = np.sort(s)
            predicted = (
                np.searchsorted(ordered_s, edges[1], side="right")
                - np.searchsorted(ordered_s, edges[0], side="left")
            ) / ordered_s.size
            boyce = boyce_from_shares(
                edges[0], (self.hi - self.lo) / 10.0, counts / self.n, predicted
            )
        rates = []
        for f in fractions:
            order = orders[ms[f]]
            t = np.float32(order.value)
            share = min(1.0, max(0.0, (ks[f] - order.greater) / order.equal))
            hit = np.where(s > t, 1.0, np.where(s == t, share, 0.0))
            cr = float(np.round(hit.mean(), 12))
            rates.append((f, cr, cr / f))
        auc = float(np.mean((self.less + 0.5 * self.equal) / self.n))
        return Metrics(n_incidents=int(s.size), auc=auc, boyce=boyce, rates=tuple(rates))

    def classes(self) -> ClassCut:
        """The cut of the surface into :data:`~hwc_risk.classes.RISK_CLASSES`, as
        :func:`hwc_risk.classes.classify` makes it (ties broken by raster order)."""
        if self.area.folds is not None:
            raise ValueError("risk classes are cut over the valid cells, not a fold")
        n = self.n
        stops, start, cumulative = [], 0, 0.0
        for cls in RISK_CLASSES:
            cumulative += cls.area_share
            stop = n if cls is RISK_CLASSES[-1] else min(n, round(cumulative * n))
            stops.append((cls, start, stop))
            start = stop
        wanted = sorted({stop for _, a, stop in stops if stop > 0})
        orders, _ = self._second_pass(wanted) if n else ({}, None)
        thresholds = {
            cls.label: orders[stop].value for cls, a, stop in stops if stop > a and stop > 0
        }
        cuts = []
        for cls, _, stop in reversed(stops[:-1]):  # moderate, high, very high
            if stop == 0:
                continue
            order = orders[stop]
            need = stop - order.greater  # how many cells equal to the cut go up
            cuts.append((cls.code, order.key, need, order.equal))
        cut = ClassCut(self.area.valid, self.band, self.chunk, tuple(cuts), thresholds, {})
        partial = [k for k, (_, _, need, equal) in enumerate(cuts) if need < equal]
        if partial:
            cut.offsets.update(self._tie_offsets(cut, partial))
        return cut

    def _tie_offsets(self, cut: ClassCut, partial: list[int]) -> dict[int, np.ndarray]:
        """For each partly split cut: how many cells equal to it come before each
        (row, chunk column) in raster order."""
        height, width = self.area.valid.shape
        counts = {k: np.zeros((height, -(-width // self.chunk)), np.int64) for k in partial}
        for win, block, ok in self._chunks():
            keys = float_keys(block)
            r0, j = int(win.row_off), int(win.col_off) // self.chunk
            for k in partial:
                tie = ok & (keys == cut.cuts[k][1])
                counts[k][r0 : r0 + block.shape[0], j] = tie.sum(axis=1)
        out = {}
        for k, table in counts.items():
            flat = table.ravel()
            out[k] = (np.cumsum(flat) - flat).reshape(table.shape)
        return out


@dataclass(frozen=True)
class ClassCut:
    """Where a surface is cut into risk classes; a window task writes the classes.

    ``cuts`` holds, from the lowest class boundary up, the class code, the key
    of the cut value, how many cells equal to it belong above it, and how many
    there are; ``offsets`` the tie counts of cuts whose equal cells are split.
    """

    valid: ValidMask
    surface: Band
    chunk: int
    cuts: tuple[tuple[int, int, int, int], ...]
    thresholds: dict[str, float]
    offsets: dict[int, np.ndarray]

    def codes(self, window: Window, block: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Class codes (uint8, 0 = no data) of a chunk of the grid's chunking."""
        ok = valid & np.isfinite(block)
        out = ok.astype(np.uint8)  # low
        keys = float_keys(block)
        r0, j = int(window.row_off), int(window.col_off) // self.chunk
        for k, (code, key, need, _) in enumerate(self.cuts):
            up = ok & (keys > key)
            tie = ok & (keys == key)
            if k in self.offsets:
                rank = self.offsets[k][r0 : r0 + block.shape[0], j][:, None]
                tie &= rank + np.cumsum(tie, axis=1) - 1 < need
            out[up | tie] = code
        return out

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Class codes at cells."""
        out = np.zeros(len(rows), dtype=np.uint8)
        height, width = self.valid.shape
        with self.surface.reader() as ds:
            for idx, _ in cell_groups(rows, cols, width, self.chunk):
                r0 = int(rows[idx[0]]) // self.chunk * self.chunk
                c0 = int(cols[idx[0]]) // self.chunk * self.chunk
                win = Window(c0, r0, min(self.chunk, width - c0), min(self.chunk, height - r0))
                codes = self.codes(win, ds.read(win), self.valid.window(win))
                out[idx] = codes[rows[idx] - r0, cols[idx] - c0]
        return out


def class_window(cut: ClassCut, window: Window) -> list[np.ndarray]:
    """The window task that writes the risk classes of a surface."""
    block = read_band(cut.surface, window)
    return [cut.codes(window, block, cut.valid.window(window))]


def class_captures(cut: ClassCut, rows: np.ndarray, cols: np.ndarray) -> dict[str, float]:
    """Share of incidents at ``rows, cols`` in each risk class (cells with a class)."""
    hit = cut.at(rows, cols)
    hit = hit[hit > 0]
    if hit.size == 0:
        return {}
    return {cls.label: float(np.mean(hit == cls.code)) for cls in RISK_CLASSES}


@dataclass(frozen=True)
class BaselineJob:
    """What a worker needs for the baseline surfaces of a window."""

    valid: ValidMask
    rows: np.ndarray  # past incidents' cells
    cols: np.ndarray
    sigma: float  # kernel density bandwidth, cells


#: scipy's default truncation of a Gaussian filter (four standard deviations).
_KDE_TRUNCATE = 4.0


def kernel_density_window(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray | None,
    sigma: float,
    window: Window,
    truncate: float = _KDE_TRUNCATE,
) -> np.ndarray:
    """Weighted Gaussian kernel sums of points at cells ``rows, cols`` over a window.

    ``K_rows @ diag(weights) @ K_cols`` over the points within the kernel's reach:
    a sum of separable, truncated, normalised Gaussians (scipy.ndimage's), equal
    to filtering the grid of weighted counts, with no halo to read.
    """
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = int(window.height), int(window.width)
    radius, phi = gaussian_kernel(sigma, truncate)
    near = (rows >= r0 - radius) & (rows < r0 + h + radius)
    near &= (cols >= c0 - radius) & (cols < c0 + w + radius)
    dens = np.zeros((h, w))
    rr, cc = rows[near], cols[near]
    ww = np.ones(rr.size) if weights is None else np.asarray(weights, dtype=float)[near]
    for start in range(0, rr.size, 2048):
        dr = np.arange(r0, r0 + h)[:, None] - rr[None, start : start + 2048]
        dc = np.arange(c0, c0 + w)[:, None] - cc[None, start : start + 2048]
        a = np.where(np.abs(dr) <= radius, phi[np.clip(dr + radius, 0, 2 * radius)], 0.0)
        b = np.where(np.abs(dc) <= radius, phi[np.clip(dc + radius, 0, 2 * radius)], 0.0)
        if weights is not None:
            a = a * ww[None, start : start + 2048]
        dens += a @ b.T
    return dens


def baseline_window(job: BaselineJob, window: Window) -> list[np.ndarray]:
    """Uniform, past-counts and kernel-density baselines of a window (NaN outside the
    valid cells); the density is :func:`kernel_density_window` of the incidents."""
    valid = job.valid.window(window)
    r0, c0 = int(window.row_off), int(window.col_off)
    h, w = valid.shape
    nan = np.float32(np.nan)
    uniform = np.where(valid, np.float32(1.0), nan)
    inside = (job.rows >= r0) & (job.rows < r0 + h) & (job.cols >= c0) & (job.cols < c0 + w)
    counts = np.zeros((h, w), dtype=np.float32)
    np.add.at(counts, (job.rows[inside] - r0, job.cols[inside] - c0), 1.0)
    kde = kernel_density_window(job.rows, job.cols, None, job.sigma, window).astype(np.float32)
    counts[~valid] = nan
    kde[~valid] = nan
    return [uniform, counts, kde]


@dataclass(frozen=True)
class SpreadJob:
    """Fold surfaces whose per-cell standard deviation is wanted."""

    valid: ValidMask
    surfaces: tuple[Band, ...]


def spread_window(job: SpreadJob, window: Window) -> list[np.ndarray]:
    """Standard deviation across the fold surfaces (no value counts as 0), NaN off the
    valid cells."""
    total = np.zeros((int(window.height), int(window.width)))
    total_sq = np.zeros_like(total)
    for band in job.surfaces:
        block = np.nan_to_num(read_band(band, window))
        total += block
        total_sq += block**2
    n = len(job.surfaces)
    mean = total / n
    spread = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0)).astype(np.float32)
    spread[~job.valid.window(window)] = np.nan
    return [spread]


# -- surfaces held in memory: the same code in one chunk --------------------------------


def _whole(shape: tuple[int, int]) -> Window:
    return Window(0, 0, shape[1], shape[0])


def evaluate_surface(
    surface: np.ndarray,
    area: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    fractions: tuple[float, ...] = (0.10,),
) -> Metrics:
    """AUC, Boyce index, capture rates and PAI of a surface held in memory (float32).

    ``area`` is the boolean mask of cells evaluated (the valid area, or a
    fold's blocks); incidents at ``rows, cols`` outside it, or on a cell with
    no value, are ignored. The same computation as a run's on files
    (:class:`RankedSurface`), in one chunk.

    >>> surface = np.tile(np.arange(10, dtype=np.float32), (10, 1))
    >>> area = np.ones((10, 10), bool)
    >>> m = evaluate_surface(surface, area, np.array([0, 1]), np.array([9, 0]), (0.1,))
    >>> m.capture(0.1), m.n_incidents
    (0.5, 2)
    """
    band = ArrayBand(np.asarray(surface, dtype=np.float32))
    ranked = RankedSurface.for_incidents(
        band, Area(ValidMask.of_array(area)), rows, cols, chunk=max(band.shape)
    )
    return ranked.evaluate(fractions)


def classify(surface: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Risk classes (uint8, 0 = nodata) of a surface held in memory, and the lower risk
    bound of each class: :meth:`RankedSurface.classes` in one chunk (ties broken in
    raster order, so the shares of :data:`~hwc_risk.classes.RISK_CLASSES` hold exactly
    even on flat surfaces)."""
    values = np.asarray(surface, dtype=np.float32)
    mask = ValidMask.of_array(valid)
    cut = RankedSurface(ArrayBand(values), Area(mask), chunk=max(values.shape)).classes()
    return cut.codes(_whole(values.shape), values, mask.to_array()), cut.thresholds


def baseline_surfaces(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    valid: np.ndarray,
    bandwidth_cells: float | None = None,
) -> dict[str, np.ndarray]:
    """The baselines of past incidents at ``rows, cols`` held in memory (NaN outside
    ``valid``): uniform, incidents per cell, and a Gaussian kernel density with
    Silverman's bandwidth unless one is given, as :func:`baseline_window` writes them."""
    sigma = kde_bandwidth(rows, cols, shape) if bandwidth_cells is None else bandwidth_cells
    job = BaselineJob(ValidMask.of_array(valid), np.asarray(rows), np.asarray(cols), sigma)
    return dict(zip(BASELINES, baseline_window(job, _whole(shape)), strict=True))
