"""Covariates aligned onto the grid, and the features the model sees.

The pure functions (:func:`distance_to_class`, :func:`class_fraction`,
:func:`continuous_feature`) work on arrays; :func:`build_feature_stack` aligns
each covariate, derives its features and writes every feature to its own tiled
GeoTIFF, so that the full stack is never held in memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage, stats

from .bands import ArrayBand, Band, FileBand, file_of, read_band
from .compute import Compute, run_windows, with_halo
from .config import ConnectivityConfig, CovariateConfig, FeaturesConfig
from .errors import InputError, NoOverlapError
from .grid import GridSpec
from .mask import ValidMask, cell_groups
from .rasters import RasterSource, align_array, align_file, no_data_error

if TYPE_CHECKING:
    from .temporal.stack import TimeFeatures

__all__ = [
    "AlignedCovariate",
    "AlignedSummary",
    "ConnectivitySolve",
    "FeatureJob",
    "FeatureLayer",
    "FeatureStack",
    "Landscape",
    "align_covariates",
    "build_feature_stack",
    "choose_transform",
    "class_fraction",
    "connectivity_files",
    "connectivity_inputs",
    "continuous_feature",
    "create_band",
    "derive_features",
    "distance_to_class",
    "feature_window",
    "solve_connectivity",
    "summarise_aligned",
    "write_covariate_features",
]

log = logging.getLogger(__name__)


def distance_to_class(
    codes: np.ndarray, value: float, cell_size: float, cap: float | None = None
) -> np.ndarray:
    """Euclidean distance (CRS units) from each cell to the nearest cell of ``value``.

    Distances are measured from cell centre to cell centre, so cells of the
    class are at 0, and capped at ``cap`` (cells farther away, or with no cell
    of the class in ``codes`` at all, get the cap). NaN cells of ``codes`` stay
    NaN. Only cells inside ``codes`` count as sources: a class just outside the
    grid is not seen.

    >>> codes = np.array([[1, 2, 2]], dtype=np.float32)
    >>> distance_to_class(codes, 1, 100.0).tolist()
    [[0.0, 100.0, 200.0]]
    >>> distance_to_class(codes, 1, 100.0, cap=150.0).tolist()
    [[0.0, 100.0, 150.0]]
    """
    is_class = codes == value
    if not is_class.any():
        if cap is None:
            raise ValueError(f"class {value} does not occur in the grid")
        dist = np.full(codes.shape, cap, dtype=np.float32)
    else:
        dist = ndimage.distance_transform_edt(~is_class, sampling=cell_size).astype(np.float32)
        if cap is not None:
            np.minimum(dist, np.float32(cap), out=dist)
    dist[np.isnan(codes)] = np.nan
    return dist


def disk_kernel(radius_cells: float) -> np.ndarray:
    """A circular footprint of the given radius in cells (at least the centre cell)."""
    r = int(np.floor(radius_cells))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return ((xx**2 + yy**2) <= radius_cells**2 + 1e-9).astype(np.float32)


def disk_sum(mask: np.ndarray, radius_cells: float) -> np.ndarray:
    """For every cell, how many ``True`` cells of ``mask`` lie in the disk of :func:`disk_kernel`.

    Equal to convolving with the disk (zeros beyond the edges), but computed as
    one running sum per kernel row: ``2r + 1`` passes over the grid instead of
    ``(2r + 1)^2``, in exact integer arithmetic.
    """
    h, w = mask.shape
    r = int(np.floor(radius_cells))
    pad = r + 1
    # running sums along rows, padded so that every box is a plain slice: zeros on the
    # left, the row total repeated on the right
    cs = np.zeros((h, w + 1 + 2 * pad), dtype=np.int32)
    np.cumsum(mask, axis=1, dtype=np.int32, out=cs[:, pad + 1 : pad + 1 + w])
    cs[:, pad + 1 + w :] = cs[:, pad + w : pad + w + 1]
    out = np.zeros((h, w), dtype=np.int32)
    limit = radius_cells**2 + 1e-9  # the disk_kernel test, row by row
    for dy in range(-r, r + 1):
        if dy * dy > limit:
            continue
        half = 0
        while half < r and (half + 1) ** 2 + dy * dy <= limit:
            half += 1
        src = cs[max(0, dy) : min(h, h + dy)]
        out[max(0, -dy) : min(h, h - dy)] += (
            src[:, pad + half + 1 : pad + half + 1 + w] - src[:, pad - half : pad - half + w]
        )
    return out


def class_fraction(codes: np.ndarray, value: float, radius_cells: float) -> np.ndarray:
    """Share of valid cells within a circular neighbourhood that are of class ``value``.

    Cells with no data are left out of the denominator; NaN cells stay NaN.
    """
    valid = np.isfinite(codes)
    hits = disk_sum(codes == value, radius_cells)
    total = disk_sum(valid, radius_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, hits / np.maximum(total, 1), np.nan).astype(np.float32)
    frac[~valid] = np.nan
    return np.clip(frac, 0.0, 1.0, out=frac, where=np.isfinite(frac))


def continuous_feature(values: np.ndarray, transform: str) -> tuple[np.ndarray, str]:
    """The model feature of a continuous covariate and the transform applied.

    ``auto`` applies ``log1p`` when every value is non-negative and the
    distribution is strongly right-skewed (skewness > 1), as population
    density usually is; otherwise the values are used as they are.
    """
    finite = values[np.isfinite(values)]
    transform = choose_transform(
        transform,
        int(finite.size),
        float(finite.min()) if finite.size else 0.0,
        lambda: float(stats.skew(finite)) if float(np.ptp(finite)) > 0 else 0.0,
    )
    if transform == "log1p":
        return np.log1p(values).astype(np.float32), "log1p"
    return values.astype(np.float32, copy=True), "none"


def choose_transform(requested: str, n: int, minimum: float, skewness: Callable[[], float]) -> str:
    """The transform of a continuous covariate with ``n`` valid values (see
    :func:`continuous_feature`); ``skewness`` is only computed when ``auto`` needs it."""
    if requested == "log1p" and n and minimum < 0:
        raise ValueError("log1p needs non-negative values")
    if requested != "auto":
        return requested
    if n <= 2 or minimum < 0:
        return "none"
    return "log1p" if skewness() > 1.0 else "none"


@dataclass(frozen=True, kw_only=True)
class FeatureLayer:
    """One model feature on the grid: a single-band GeoTIFF (``path``) in a run, or
    any :class:`~hwc_risk.bands.Band` (``band``, e.g. an array in a notebook)."""

    name: str
    covariate: str
    kind: str  # "value", "distance", "fraction", "connectivity", "history"
    units: str
    transform: str = "none"
    path: Path | None = None
    band: Band = field(default=None)  # type: ignore[assignment]  # set from path if absent

    def __post_init__(self) -> None:
        if self.band is None:
            if self.path is None:
                raise ValueError(f"feature layer {self.name}: give its path or its band")
            object.__setattr__(self, "band", FileBand(self.path))

    @property
    def file(self) -> Path:
        """The layer's GeoTIFF (a run's layers are files)."""
        return file_of(self.band)


@dataclass
class FeatureStack:
    """The features of a run, one band each, and the mask of cells where all are valid."""

    grid: GridSpec
    layers: list[FeatureLayer]
    valid: ValidMask
    class_names: dict[str, dict[int, str]] = field(default_factory=dict)
    # what the features were derived from, kept for scenarios (hwc_risk.scenarios.stage):
    # the aligned covariates with their classes and transforms, and the connectivity solve
    landscape: Landscape | None = None
    connectivity: ConnectivitySolve | None = None

    #: the monthly covariates and season, when the model has time features: the layers
    #: of kind "time" are the run month's, and this makes any other month's
    time: TimeFeatures | None = None

    def in_memory(self) -> FeatureStack:
        """The same stack with its layers and mask read into arrays (a small grid's
        validation reads them hundreds of times)."""
        layers = [
            replace(layer, band=ArrayBand(read_band(layer.band)))
            if isinstance(layer.band, FileBand)
            else layer
            for layer in self.layers
        ]
        return replace(self, layers=layers, valid=ValidMask.of_array(self.valid.to_array()))

    @classmethod
    def from_arrays(
        cls, grid: GridSpec, features: dict[str, np.ndarray], valid: np.ndarray | None = None
    ) -> FeatureStack:
        """A stack held in memory: one array per feature (float32 on ``grid``).

        ``valid`` defaults to the cells where every feature is finite.

        >>> from affine import Affine
        >>> from rasterio.crs import CRS
        >>> grid = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 0, 0, -100, 0), 3, 2)
        >>> stack = FeatureStack.from_arrays(grid, {"a": np.ones((2, 3)), "b": np.zeros((2, 3))})
        >>> stack.values_at(np.array([1]), np.array([2])).tolist(), stack.valid.count
        ([[1.0, 0.0]], 6)
        """
        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in features.items()}
        if valid is None:
            valid = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
        layers = [
            FeatureLayer(name=k, covariate=k, kind="value", units="as given", band=ArrayBand(a))
            for k, a in arrays.items()
        ]
        return cls(grid=grid, layers=layers, valid=ValidMask.of_array(valid))

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @contextmanager
    def open(self) -> Iterator[list[Any]]:
        """A reader of every layer (one handle each; not for sharing across threads)."""
        with ExitStack() as stack:
            yield [stack.enter_context(layer.band.reader()) for layer in self.layers]

    def values_at(self, rows: np.ndarray, cols: np.ndarray, block: int = 1024) -> np.ndarray:
        """Feature values at cells as ``(n_cells, n_features)`` float32.

        Cells are grouped by ``block`` x ``block`` chunk and each band is read
        only over the chunk's cells' bounding box, so memory does not grow with
        the grid.
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        out = np.empty((len(rows), len(self.layers)), dtype=np.float32)
        with self.open() as handles:
            for idx, win in cell_groups(rows, cols, self.grid.width, block):
                r, c = rows[idx] - int(win.row_off), cols[idx] - int(win.col_off)
                for j, ds in enumerate(handles):
                    out[idx, j] = ds.read(win)[r, c]
        return out

    def describe(self) -> list[dict[str, str]]:
        return [
            {
                "name": layer.name,
                "covariate": layer.covariate,
                "kind": layer.kind,
                "units": layer.units,
                "transform": layer.transform,
            }
            for layer in self.layers
        ]


_CONN_UNITS = {
    "connectivity_omniscape_current": "A (moving-window cumulative current)",
    "connectivity_flow_potential": "A (moving-window current with resistance 1)",
    "connectivity_normalized_current": "ratio of current to flow potential",
    "connectivity_current": "A (cumulative current, 1 A per patch pair)",
    "connectivity_cost_distance": "resistance x m",
    "connectivity_corridor": "resistance x m above the least-cost path",
}


#: Layers whose barrier or unreachable cells carry no current (others: the largest cost).
_CURRENT_LIKE = {
    "connectivity_current",
    "connectivity_omniscape_current",
    "connectivity_flow_potential",
    "connectivity_normalized_current",
}


@dataclass(frozen=True)
class ConnectivitySolve:
    """The connectivity layers as solved, on the solve grid (at most
    ``connectivity.max_cells`` cells), with what they were solved from."""

    grid: GridSpec  # the solve grid: the analysis grid, or a coarsened one
    inputs: dict[str, np.ndarray]  # the covariates it was built from, on the solve grid
    resistance: np.ndarray  # NaN: a barrier
    patches: np.ndarray  # habitat patches (1 = largest; 0 = none)
    layers: dict[str, np.ndarray]


#: A change made to the resistance before the solve (a scenario's fences, crossings).
ResistanceHook = Callable[[np.ndarray, GridSpec], np.ndarray]


def _resistance(
    cfg: ConnectivityConfig, grid: GridSpec, covariates: dict[str, np.ndarray]
) -> np.ndarray:
    """The resistance surface: the raster, or the reclass table (and density)."""
    from . import connectivity as conn

    if cfg.resistance_raster is not None:
        raster = RasterSource(path=cfg.resistance_raster, key="connectivity.resistance_raster")
        resistance = align_array(raster, grid).astype(float)
        if cfg.raster_is_conductance:
            with np.errstate(divide="ignore"):
                resistance = np.where(resistance > 0, 1.0 / resistance, np.nan)
        resistance[~(resistance > 0)] = np.nan
        return resistance
    assert cfg.from_covariate is not None and cfg.resistance is not None  # config checks
    density = covariates.get(cfg.density_covariate) if cfg.density_covariate else None
    return conn.resistance_from_classes(
        covariates[cfg.from_covariate], cfg.resistance, density, cfg.density_factor
    )


def _sources(
    cfg: ConnectivityConfig,
    grid: GridSpec,
    covariates: dict[str, np.ndarray],
    resistance: np.ndarray,
) -> np.ndarray:
    """The source habitat cells (passable ones only)."""
    if cfg.sources_raster is not None:
        raster = RasterSource(
            path=cfg.sources_raster, key="connectivity.sources_raster", categorical=True
        )
        src = align_array(raster, grid)
        sources = np.isfinite(src) & (src > 0)
    else:
        assert cfg.from_covariate is not None and cfg.sources is not None
        sources = np.isin(covariates[cfg.from_covariate], cfg.sources)
    sources &= np.isfinite(resistance)
    if not sources.any():
        raise InputError(
            "connectivity: no source habitat cell on the grid; check connectivity.sources"
        )
    return sources


def solve_connectivity(
    cfg: ConnectivityConfig,
    grid: GridSpec,
    covariates: dict[str, np.ndarray],
    compute: Compute | None = None,
    edit_resistance: ResistanceHook | None = None,
) -> ConnectivitySolve:
    """Resistance-based connectivity layers on ``grid`` (see :mod:`hwc_risk.connectivity`).

    ``edit_resistance`` changes the resistance once it is built, before the
    sources and the solves (a scenario's fences and crossings, burnt on this
    grid).
    """
    from . import connectivity as conn

    resistance = _resistance(cfg, grid, covariates)
    if edit_resistance is not None:
        resistance = edit_resistance(resistance, grid)
    sources = _sources(cfg, grid, covariates, resistance)
    out: dict[str, np.ndarray] = {}
    if cfg.method == "omniscape":
        radius = round(cfg.radius / grid.cell_size)
        window = conn.moving_window_layers(resistance, sources, radius, cfg.block_size, compute)
        wanted = {"current": "connectivity_omniscape_current"}
        wanted |= {k: f"connectivity_{k}" for k in ("flow_potential", "normalized_current")}
        out |= {wanted[k]: window[wanted[k]] for k in cfg.layers if k in wanted}
    patches = conn.habitat_patches(sources, cfg.min_patch_cells, cfg.max_patches)
    if "current" in cfg.layers and cfg.method == "pairwise":
        if int(patches.max()) < 2:
            raise InputError(
                "connectivity: current needs at least two habitat patches of "
                f"connectivity.min_patch_cells ({cfg.min_patch_cells}) cells; lower it or "
                "drop 'current' from connectivity.layers"
            )
        out["connectivity_current"] = conn.pairwise_current(resistance, patches, cfg.max_cells)
    if "cost_distance" in cfg.layers:
        out["connectivity_cost_distance"] = conn.cost_distance(resistance, sources, grid.cell_size)
    if "corridor" in cfg.layers:
        out["connectivity_corridor"] = conn.least_cost_corridor(resistance, patches, grid.cell_size)
    return ConnectivitySolve(
        grid=grid, inputs=covariates, resistance=resistance, patches=patches, layers=out
    )


def connectivity_layers(
    cfg: ConnectivityConfig,
    grid: GridSpec,
    covariates: dict[str, np.ndarray],
    compute: Compute | None = None,
) -> dict[str, np.ndarray]:
    """The layers of :func:`solve_connectivity` alone."""
    return solve_connectivity(cfg, grid, covariates, compute).layers


def category_values(
    found: set[float], too_many: bool, cov: CovariateConfig, key: str, max_classes: int
) -> list[int]:
    """The class codes of an aligned categorical raster, checked to look categorical."""
    if too_many or len(found) > max_classes:
        more = "more than " if too_many else ""
        raise InputError(
            f"{cov.path}: covariates.{key} has {more}{len(found)} distinct values, more than "
            f"features.max_classes ({max_classes}); is it continuous? "
            "Set type: continuous, or raise features.max_classes"
        )
    values = sorted(found)
    if any(v != round(v) for v in values):
        raise InputError(
            f"{cov.path}: covariates.{key} is categorical but has non-integer values; "
            "set type: continuous"
        )
    return [int(v) for v in values]


def create_band(
    path: Path,
    grid: GridSpec,
    description: str,
    block: int = 256,
    dtype: str = "float32",
    nodata: float = np.nan,
) -> Path:
    """An empty tiled GeoTIFF on the grid (all nodata) for window writes."""
    profile = grid.profile(
        dtype=dtype,
        nodata=nodata,
        blockxsize=block,
        blockysize=block,
        sparse_ok=True,  # blocks never written read as nodata
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.set_band_description(1, description)
    return path


def _write_band(path: Path, grid: GridSpec, data: np.ndarray, name: str) -> None:
    profile = grid.profile(dtype="float32", nodata=np.nan)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32, copy=False), 1)
        dst.set_band_description(1, name)


@dataclass(frozen=True)
class FeatureJob:
    """What a worker needs to derive one covariate's features in a window.

    ``halo`` cells around the window are read as well: enough for the
    neighbourhood radius and the distance cap, so that a chunk's values equal
    the whole-array computation's.
    """

    aligned: str  # the covariate aligned onto the grid (GeoTIFF path)
    shape: tuple[int, int]
    categorical: bool
    classes: tuple[int, ...] = ()
    transform: str = "none"
    cell_size: float = 1.0
    radius_cells: float = 1.0
    cap: float = 0.0

    @property
    def halo(self) -> int:
        if not self.categorical:
            return 0
        return int(np.ceil(max(self.cap / self.cell_size, self.radius_cells))) + 1


def feature_window(job: FeatureJob, window: Window) -> list[np.ndarray]:
    """The window task of feature building: one array per feature of the covariate.

    Categorical: for each class, is-class (0/1), distance (capped at
    ``job.cap``) and neighbourhood fraction; continuous: the value, transformed.
    """
    outer, core = with_halo(window, job.halo, job.shape)
    with rasterio.open(job.aligned) as ds:
        data = ds.read(1, window=outer)
    if not job.categorical:
        values = data[core]
        if job.transform == "log1p":
            with np.errstate(invalid="ignore"):
                return [np.log1p(values).astype(np.float32)]
        return [values.astype(np.float32)]
    out: list[np.ndarray] = []
    finite = np.isfinite(data[core])
    for v in job.classes:
        out.append(np.where(finite, (data[core] == v).astype(np.float32), np.float32(np.nan)))
        out.append(distance_to_class(data, v, job.cell_size, job.cap)[core])
        out.append(class_fraction(data, v, job.radius_cells)[core])
    return out


@dataclass
class AlignedSummary:
    """What one pass over an aligned covariate learns: classes, moments, valid cells."""

    n: int = 0
    minimum: float = np.inf
    total: float = 0.0
    classes: set[float] = field(default_factory=set)


def summarise_aligned(
    path: Path,
    windows: list[Window],
    mask: Path | None,
    categorical: bool,
    max_classes: int,
) -> tuple[AlignedSummary, bool]:
    """One pass over an aligned covariate: ANDs its finite cells into the ``mask`` file
    (a :class:`~hwc_risk.mask.ValidMask` file), if one is given.

    Returns the summary and whether there were too many classes (stops early).
    """
    out = AlignedSummary()
    with ExitStack() as files:
        ds = files.enter_context(rasterio.open(path))
        dst = files.enter_context(rasterio.open(mask, "r+")) if mask is not None else None
        for win in windows:
            block = ds.read(1, window=win)
            ok = np.isfinite(block)
            if dst is not None:
                dst.write((dst.read(1, window=win) & ok).astype(np.uint8), 1, window=win)
            vals = block[ok]
            if not vals.size:
                continue
            out.n += int(vals.size)
            out.minimum = min(out.minimum, float(vals.min()))
            out.total += float(vals.sum(dtype=np.float64))
            if categorical:
                out.classes.update(np.unique(vals).tolist())
                if len(out.classes) > max_classes:
                    return out, True
    return out, False


def _skewness(path: Path, windows: list[Window], s: AlignedSummary) -> float:
    """Skewness of an aligned covariate (the biased estimator, as scipy.stats.skew),
    from central moments read window by window."""
    mean = s.total / s.n
    m2 = m3 = 0.0
    with rasterio.open(path) as ds:
        for win in windows:
            block = ds.read(1, window=win)
            d = block[np.isfinite(block)].astype(np.float64) - mean
            m2 += float(np.dot(d, d))
            m3 += float((d * d * d).sum())
    m2 /= s.n
    m3 /= s.n
    return m3 / m2**1.5 if m2 > 0 else 0.0


def _class_label(value: int, names: dict[int, str] | None) -> str:
    if names and value in names:
        label = "".join(c if c.isalnum() else "_" for c in names[value].lower()).strip("_")
        return label or f"class_{value}"
    return f"class_{value}"


def connectivity_factor(cfg: ConnectivityConfig, grid: GridSpec) -> int:
    """How many times the grid is coarsened for the connectivity solves: to at most
    ``cfg.max_cells`` cells."""
    return max(1, math.ceil(math.sqrt(grid.width * grid.height / cfg.max_cells)))


@dataclass(frozen=True)
class UpsampleJob:
    """A layer solved on a coarsened grid, to be interpolated onto the grid's chunks."""

    coarse: np.ndarray
    factor: int
    valid: ValidMask


def upsample_window(job: UpsampleJob, window: Window) -> list[np.ndarray]:
    """Bilinear interpolation of the coarse layer at the window's cell centres."""
    r0, c0 = int(window.row_off), int(window.col_off)
    rows = (np.arange(r0, r0 + int(window.height)) + 0.5) / job.factor - 0.5
    cols = (np.arange(c0, c0 + int(window.width)) + 0.5) / job.factor - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    out = ndimage.map_coordinates(job.coarse, [rr, cc], order=1, mode="nearest")
    out = out.astype(np.float32)
    out[~job.valid.window(window)] = np.nan
    return [out]


def connectivity_inputs(
    cfg: ConnectivityConfig, landscape: Landscape
) -> tuple[GridSpec, dict[str, np.ndarray]]:
    """The solve grid (the grid, coarsened to at most ``cfg.max_cells`` cells) and the
    covariates the layers are built from on it (aligned onto it by GDAL when coarser)."""
    grid = landscape.grid
    needed = [c for c in landscape.covariates if c.name in _connectivity_inputs(cfg)]
    factor = connectivity_factor(cfg, grid)
    if factor > 1:
        log.info(
            "building connectivity layers on a grid coarsened %d times (connectivity.max_cells)",
            factor,
        )
        solve_grid = grid.coarsened(factor)
        return solve_grid, {c.name: align_array(c.source, solve_grid) for c in needed}
    log.info("building connectivity layers")
    inputs = {}
    for c in needed:
        with rasterio.open(c.path) as ds:
            inputs[c.name] = ds.read(1)
    return grid, inputs


def connectivity_files(
    solve: ConnectivitySolve,
    grid: GridSpec,
    valid: ValidMask,
    work_dir: Path,
    compute: Compute,
) -> list[FeatureLayer]:
    """The solved layers as feature GeoTIFFs on the grid (interpolated from a coarser
    solve grid chunk by chunk), masked to ``valid``."""
    factor = round(solve.grid.cell_size / grid.cell_size)
    on_data = valid.to_array() if factor == 1 else None  # at most max_cells cells
    out = []
    for name, arr in solve.layers.items():
        path = work_dir / f"{name}.tif"
        arr32 = arr.astype(np.float32)
        # barrier or unreachable cells: no current, the largest cost seen
        finite = np.isfinite(arr32)
        if not finite.any():
            raise InputError(f"connectivity: {name} has no value on the grid")
        fill = 0.0 if name in _CURRENT_LIKE else float(arr32[finite].max())
        arr32[~finite] = fill
        if on_data is not None:
            arr32[~on_data] = np.nan
            _write_band(path, grid, arr32, name)
        else:
            create_band(path, grid, name, compute.block)
            job = UpsampleJob(arr32, factor, valid)
            run_windows(upsample_window, job, [path], compute, grid.shape, f"features: {name}")
        out.append(
            FeatureLayer(
                name=name,
                path=path,
                covariate="connectivity",
                kind="connectivity",
                units=_CONN_UNITS[name],
            )
        )
    return out


def _connectivity_inputs(cfg: ConnectivityConfig) -> set[str]:
    """The covariates the connectivity layers are built from."""
    return {name for name in (cfg.from_covariate, cfg.density_covariate) if name is not None}


@dataclass(frozen=True)
class AlignedCovariate:
    """A covariate aligned onto the grid (a GeoTIFF), with what its features need.

    Categorical: the class codes found on the grid and their names;
    continuous: the transform chosen for its values.
    """

    name: str
    source: RasterSource
    path: Path
    valid_cells: int
    classes: tuple[int, ...] = ()
    class_names: dict[int, str] = field(default_factory=dict)
    transform: str = "none"

    @property
    def categorical(self) -> bool:
        return self.source.categorical


@dataclass(frozen=True)
class Landscape:
    """Every covariate aligned onto the grid, and the cells where all have data."""

    grid: GridSpec
    covariates: tuple[AlignedCovariate, ...]
    valid: ValidMask

    def covariate(self, name: str) -> AlignedCovariate:
        return next(c for c in self.covariates if c.name == name)


def _align_one(
    name: str,
    cov: CovariateConfig,
    grid: GridSpec,
    settings: FeaturesConfig,
    folder: Path,
    mask_path: Path,
    compute: Compute,
) -> AlignedCovariate:
    """Align one covariate, narrow the valid mask by it, and check what it holds."""
    source = RasterSource.of_covariate(name, cov)
    log.info("aligning covariate %s (%s)", name, cov.path.name)
    path = align_file(source, grid, folder / f"{name}.tif", compute.block)
    windows = compute.windows(grid.shape)
    summary, too_many = summarise_aligned(
        path, windows, mask_path, source.categorical, settings.max_classes
    )
    if summary.n == 0:
        raise no_data_error(source)
    aligned = AlignedCovariate(name=name, source=source, path=path, valid_cells=summary.n)
    if source.categorical:
        values = category_values(summary.classes, too_many, cov, name, settings.max_classes)
        names = {}
        for v in values:
            label = _class_label(v, cov.classes)
            names[v] = cov.classes.get(v, label) if cov.classes else label
        return replace(aligned, classes=tuple(values), class_names=names)
    try:
        applied = choose_transform(
            cov.transform, summary.n, summary.minimum, partial(_skewness, path, windows, summary)
        )
    except ValueError as exc:
        raise InputError(f"{cov.path}: covariates.{name}.transform: {exc}") from None
    return replace(aligned, transform=applied)


def align_covariates(
    covariates: dict[str, CovariateConfig],
    grid: GridSpec,
    settings: FeaturesConfig,
    work_dir: Path,
    compute: Compute | None = None,
) -> Landscape:
    """Align every static covariate onto the grid under ``work_dir``, and the valid-cell mask.

    Each covariate is aligned into a GeoTIFF by GDAL in bounded memory and read
    chunk by chunk: the mask file (``valid.tif``) is narrowed by it, its classes
    are checked to look categorical, and a continuous covariate's transform is
    chosen. ``hwc-risk validate`` stops here; a run derives features next
    (:func:`derive_features`).
    """
    compute = compute or Compute()
    work_dir.mkdir(parents=True, exist_ok=True)
    folder = work_dir / "aligned"
    folder.mkdir(exist_ok=True)
    mask_path = ValidMask.create(work_dir / "valid.tif", grid, compute.block)
    aligned = tuple(
        _align_one(name, cov, grid, settings, folder, mask_path, compute)
        for name, cov in covariates.items()
        if not cov.is_monthly  # read month by month: hwc_risk.temporal
    )
    valid = ValidMask.open(mask_path, compute.chunk_size)
    if valid.count == 0:
        raise NoOverlapError(
            "the covariates have no cell with data in common on the analysis grid; "
            "check that their extents overlap and their nodata values"
        )
    return Landscape(grid=grid, covariates=aligned, valid=valid)


def _feature_layers(
    cov: AlignedCovariate, grid: GridSpec, settings: FeaturesConfig, work_dir: Path
) -> tuple[list[FeatureLayer], FeatureJob]:
    """The feature layers of one aligned covariate and the window task's job."""
    if not cov.categorical:
        name = cov.name if cov.transform == "none" else f"{cov.name}_{cov.transform}"
        layer = FeatureLayer(
            name=name,
            path=work_dir / f"{name}.tif",
            covariate=cov.name,
            kind="value",
            units="as input",
            transform=cov.transform,
        )
        job = FeatureJob(str(cov.path.resolve()), grid.shape, False, transform=cov.transform)
        return [layer], job
    units = "m" if grid.crs.linear_units in ("metre", "meter", "m") else grid.crs.linear_units
    layers = []
    for v in cov.classes:
        label = _class_label(v, cov.class_names)
        for kind, unit in (("is", "1"), ("distance", units), ("fraction", "1")):
            name = f"{cov.name}_{kind}_{label}"
            layers.append(
                FeatureLayer(
                    name=name,
                    path=work_dir / f"{name}.tif",
                    covariate=cov.name,
                    kind=kind,
                    units=unit,
                )
            )
    job = FeatureJob(
        str(cov.path.resolve()),
        grid.shape,
        True,
        cov.classes,
        cell_size=grid.cell_size,
        radius_cells=settings.neighbourhood / grid.cell_size,
        cap=settings.distance_cap,
    )
    return layers, job


def write_covariate_features(
    cov: AlignedCovariate,
    grid: GridSpec,
    settings: FeaturesConfig,
    work_dir: Path,
    compute: Compute,
) -> list[FeatureLayer]:
    """The feature GeoTIFFs of one aligned covariate under ``work_dir``, chunk by chunk.

    The classes and the transform are the covariate's own (``cov.classes``,
    ``cov.transform``), so a scenario's edited covariate given the baseline's
    gets the baseline's features, by the same names.
    """
    new, job = _feature_layers(cov, grid, settings, work_dir)
    for layer in new:
        create_band(layer.file, grid, layer.name, compute.block)
    bands = [layer.band for layer in new]
    run_windows(feature_window, job, bands, compute, grid.shape, f"features: {cov.name}")
    return new


def derive_features(
    landscape: Landscape,
    settings: FeaturesConfig,
    work_dir: Path,
    connectivity: ConnectivityConfig | None = None,
    compute: Compute | None = None,
) -> FeatureStack:
    """The features of every aligned covariate, each written to its own GeoTIFF.

    Categorical covariates give, for each class present in the grid, whether
    the cell is of the class (0/1), the distance to the class (metres, capped
    at ``settings.distance_cap``) and the fraction of the class within
    ``settings.neighbourhood``. Continuous covariates give their value, log1p
    transformed where :func:`continuous_feature` finds it sensible. With
    ``connectivity``, the layers of :func:`connectivity_layers` are added.

    Features are computed chunk by chunk (``compute.chunk_size``, with an
    overlap of the distance cap or the neighbourhood, whichever is larger) on
    ``compute``'s local pool or Dask cluster, so memory depends on the chunk
    size; the connectivity layers' solves need memory in proportion to
    ``connectivity.max_cells``: least-cost distances and circuits are
    landscape-wide, so they are solved whole on a grid of at most that many
    cells (the grid coarsened by an integer factor, covariates aligned onto it
    by GDAL; :func:`connectivity_inputs`), then interpolated back onto the grid
    chunk by chunk (:func:`connectivity_files`).
    """
    compute = compute or Compute()
    grid = landscape.grid
    layers: list[FeatureLayer] = []
    for cov in landscape.covariates:
        layers += write_covariate_features(cov, grid, settings, work_dir, compute)
    solve = None
    if connectivity is not None:
        # solved whole on at most connectivity.max_cells cells (memory bounded by it)
        solve_grid, inputs = connectivity_inputs(connectivity, landscape)
        solve = solve_connectivity(connectivity, solve_grid, inputs, compute)
        layers += connectivity_files(solve, grid, landscape.valid, work_dir, compute)
    class_names = {c.name: c.class_names for c in landscape.covariates if c.categorical}
    return FeatureStack(
        grid=grid,
        layers=layers,
        valid=landscape.valid,
        class_names=class_names,
        landscape=landscape,
        connectivity=solve,
    )


def build_feature_stack(
    covariates: dict[str, CovariateConfig],
    grid: GridSpec,
    settings: FeaturesConfig,
    work_dir: Path,
    connectivity: ConnectivityConfig | None = None,
    compute: Compute | None = None,
) -> FeatureStack:
    """Align every covariate and derive its features under ``work_dir``: the two steps
    :func:`align_covariates` and :func:`derive_features` in one call."""
    landscape = align_covariates(covariates, grid, settings, work_dir, compute)
    return derive_features(landscape, settings, work_dir, connectivity, compute)
