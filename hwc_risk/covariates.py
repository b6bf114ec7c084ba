"""Covariates aligned onto the grid, and the features the model sees.

The pure functions (:func:`distance_to_class`, :func:`class_fraction`,
:func:`continuous_feature`) work on arrays; :func:`build_feature_stack` aligns
each covariate, derives its features and writes every feature to its own tiled
GeoTIFF, so that the full stack is never held in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage, stats

from .config import ConnectivityConfig, CovariateConfig, FeaturesConfig
from .errors import InputError, NoOverlapError
from .grid import GridSpec, align_raster
from .progress import progress

__all__ = [
    "FeatureLayer",
    "FeatureStack",
    "build_feature_stack",
    "class_fraction",
    "continuous_feature",
    "distance_to_class",
]

log = logging.getLogger(__name__)


def distance_to_class(codes: np.ndarray, value: float, cell_size: float) -> np.ndarray:
    """Euclidean distance (CRS units) from each cell to the nearest cell of ``value``.

    Distances are measured from cell centre to cell centre, so cells of the
    class are at 0. NaN cells of ``codes`` stay NaN. Only cells inside the grid
    count as sources: a class just outside the grid is not seen.

    >>> codes = np.array([[1, 2, 2]], dtype=np.float32)
    >>> distance_to_class(codes, 1, 100.0).tolist()
    [[0.0, 100.0, 200.0]]
    """
    is_class = codes == value
    if not is_class.any():
        raise ValueError(f"class {value} does not occur in the grid")
    dist = ndimage.distance_transform_edt(~is_class, sampling=cell_size).astype(np.float32)
    dist[np.isnan(codes)] = np.nan
    return dist


def disk_kernel(radius_cells: float) -> np.ndarray:
    """A circular footprint of the given radius in cells (at least the centre cell)."""
    r = int(np.floor(radius_cells))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return ((xx**2 + yy**2) <= radius_cells**2 + 1e-9).astype(np.float32)


def class_fraction(codes: np.ndarray, value: float, radius_cells: float) -> np.ndarray:
    """Share of valid cells within a circular neighbourhood that are of class ``value``.

    Cells with no data are left out of the denominator; NaN cells stay NaN.
    """
    valid = np.isfinite(codes)
    kernel = disk_kernel(radius_cells)
    hits = ndimage.convolve((codes == value).astype(np.float32), kernel, mode="constant")
    total = ndimage.convolve(valid.astype(np.float32), kernel, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, hits / total, np.nan).astype(np.float32)
    frac[~valid] = np.nan
    return np.clip(frac, 0.0, 1.0, out=frac, where=np.isfinite(frac))


def continuous_feature(values: np.ndarray, transform: str) -> tuple[np.ndarray, str]:
    """The model feature of a continuous covariate and the transform applied.

    ``auto`` applies ``log1p`` when every value is non-negative and the
    distribution is strongly right-skewed (skewness > 1), as population
    density usually is; otherwise the values are used as they are.
    """
    finite = values[np.isfinite(values)]
    if transform == "auto":
        varies = finite.size > 2 and float(np.ptp(finite)) > 0
        skewed = varies and float(stats.skew(finite)) > 1.0
        transform = "log1p" if (finite.size and finite.min() >= 0 and skewed) else "none"
    if transform == "log1p":
        if finite.size and finite.min() < 0:
            raise ValueError("log1p needs non-negative values")
        return np.log1p(values).astype(np.float32), "log1p"
    return values.astype(np.float32, copy=True), "none"


@dataclass(frozen=True)
class FeatureLayer:
    """One model feature on the grid, stored as a single-band GeoTIFF."""

    name: str
    path: Path
    covariate: str
    kind: str  # "value", "distance", "fraction"
    units: str
    transform: str = "none"


@dataclass
class FeatureStack:
    """The features of a run, one GeoTIFF each, and the mask of cells where all are valid."""

    grid: GridSpec
    layers: list[FeatureLayer]
    valid: np.ndarray
    class_names: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @contextmanager
    def open(self) -> Iterator[list[rasterio.io.DatasetReader]]:
        """Open every layer (one handle each; not for sharing across threads)."""
        with ExitStack() as stack:
            yield [stack.enter_context(rasterio.open(layer.path)) for layer in self.layers]

    def read_window(self, handles: list[rasterio.io.DatasetReader], window: Window) -> np.ndarray:
        """Features of a window as ``(n_features, rows, cols)`` float32."""
        return np.stack([ds.read(1, window=window) for ds in handles])

    def values_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Feature values at cells as ``(n_cells, n_features)`` float32, read band by band."""
        out = np.empty((len(rows), len(self.layers)), dtype=np.float32)
        with self.open() as handles:
            for j, ds in enumerate(handles):
                band = ds.read(1)
                out[:, j] = band[rows, cols]
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
    "connectivity_current": "A (cumulative current, 1 A per patch pair)",
    "connectivity_cost_distance": "resistance x m",
    "connectivity_corridor": "resistance x m above the least-cost path",
}


def connectivity_layers(
    cfg: ConnectivityConfig, grid: GridSpec, covariates: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Resistance-based connectivity layers on the grid (see :mod:`hwc_risk.connectivity`)."""
    from . import connectivity as conn

    if cfg.resistance_raster is not None:
        raster = CovariateConfig(path=cfg.resistance_raster, type="continuous")
        resistance = align_raster(raster, "connectivity.resistance_raster", grid).astype(float)
        if cfg.raster_is_conductance:
            with np.errstate(divide="ignore"):
                resistance = np.where(resistance > 0, 1.0 / resistance, np.nan)
        resistance[~(resistance > 0)] = np.nan
    else:
        assert cfg.from_covariate is not None and cfg.resistance is not None  # config checks
        density = covariates.get(cfg.density_covariate) if cfg.density_covariate else None
        resistance = conn.resistance_from_classes(
            covariates[cfg.from_covariate], cfg.resistance, density, cfg.density_factor
        )
    if cfg.sources_raster is not None:
        raster = CovariateConfig(path=cfg.sources_raster, type="categorical")
        src = align_raster(raster, "connectivity.sources_raster", grid)
        sources = np.isfinite(src) & (src > 0)
    else:
        assert cfg.from_covariate is not None and cfg.sources is not None
        sources = np.isin(covariates[cfg.from_covariate], cfg.sources)
    sources &= np.isfinite(resistance)
    if not sources.any():
        raise InputError(
            "connectivity: no source habitat cell on the grid; check connectivity.sources"
        )
    patches = conn.habitat_patches(sources, cfg.min_patch_cells, cfg.max_patches)
    out: dict[str, np.ndarray] = {}
    if "current" in cfg.layers:
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
    return out


def category_values(
    data: np.ndarray, cov: CovariateConfig, key: str, max_classes: int
) -> np.ndarray:
    """The class codes of an aligned categorical raster, checked to look categorical."""
    values = np.unique(data[np.isfinite(data)])
    if values.size > max_classes:
        raise InputError(
            f"{cov.path}: covariates.{key} has {values.size} distinct values, more than "
            f"features.max_classes ({max_classes}); is it continuous? "
            "Set type: continuous, or raise features.max_classes"
        )
    if np.any(values != np.round(values)):
        raise InputError(
            f"{cov.path}: covariates.{key} is categorical but has non-integer values; "
            "set type: continuous"
        )
    return values


def _write_band(path: Path, grid: GridSpec, data: np.ndarray, name: str) -> None:
    profile = grid.profile(dtype="float32", nodata=np.nan, predictor=3)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32, copy=False), 1)
        dst.set_band_description(1, name)


def _class_label(value: int, names: dict[int, str] | None) -> str:
    if names and value in names:
        label = "".join(c if c.isalnum() else "_" for c in names[value].lower()).strip("_")
        return label or f"class_{value}"
    return f"class_{value}"


def build_feature_stack(
    covariates: dict[str, CovariateConfig],
    grid: GridSpec,
    settings: FeaturesConfig,
    work_dir: Path,
    connectivity: ConnectivityConfig | None = None,
) -> FeatureStack:
    """Align every covariate, derive its features and write them under ``work_dir``.

    Categorical covariates give, for each class present in the grid, whether
    the cell is of the class (0/1), the distance to the class (metres) and the
    fraction of the class within ``settings.neighbourhood``. Continuous
    covariates give their value, log1p transformed where
    :func:`continuous_feature` finds it sensible. With ``connectivity``, the
    layers of :func:`connectivity_layers` are added.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    layers: list[FeatureLayer] = []
    valid = np.ones(grid.shape, dtype=bool)
    class_names: dict[str, dict[int, str]] = {}
    radius_cells = settings.neighbourhood / grid.cell_size
    units = "m" if grid.crs.linear_units in ("metre", "meter", "m") else grid.crs.linear_units
    needed = set()
    if connectivity is not None:
        needed = {connectivity.from_covariate, connectivity.density_covariate} - {None}
    kept: dict[str, np.ndarray] = {}

    for key, cov in progress(covariates.items(), "features", len(covariates), "covariate"):
        log.info("aligning covariate %s (%s)", key, cov.path.name)
        data = align_raster(cov, key, grid)
        valid &= np.isfinite(data)
        if key in needed:
            kept[key] = data
        if cov.type == "categorical":
            values = category_values(data, cov, key, settings.max_classes)
            names: dict[int, str] = {}
            for v in values.astype(int):
                label = _class_label(int(v), cov.classes)
                names[int(v)] = cov.classes.get(int(v), label) if cov.classes else label
                is_class = np.where(np.isfinite(data), (data == v).astype(np.float32), np.nan)
                for kind, arr, unit in (
                    ("is", is_class, "1"),
                    ("distance", distance_to_class(data, v, grid.cell_size), units),
                    ("fraction", class_fraction(data, v, radius_cells), "1"),
                ):
                    name = f"{key}_{kind}_{label}"
                    path = work_dir / f"{name}.tif"
                    _write_band(path, grid, arr, name)
                    layers.append(FeatureLayer(name, path, key, kind, unit))
            class_names[key] = names
        else:
            arr, applied = continuous_feature(data, cov.transform)
            name = key if applied == "none" else f"{key}_{applied}"
            path = work_dir / f"{name}.tif"
            _write_band(path, grid, arr, name)
            layers.append(FeatureLayer(name, path, key, "value", "as input", applied))
        del data
    if connectivity is not None:
        log.info("building connectivity layers")
        for name, arr in connectivity_layers(connectivity, grid, kept).items():
            path = work_dir / f"{name}.tif"
            arr32 = arr.astype(np.float32)
            # barrier or unreachable cells: no current, the largest cost seen
            finite = np.isfinite(arr32)
            if not finite.any():
                raise InputError(f"connectivity: {name} has no value on the grid")
            fill = 0.0 if name == "connectivity_current" else float(arr32[finite].max())
            arr32[~finite] = fill
            arr32[~valid] = np.nan
            _write_band(path, grid, arr32, name)
            layers.append(
                FeatureLayer(name, path, "connectivity", "connectivity", _CONN_UNITS[name])
            )
        kept.clear()
    if not valid.any():
        raise NoOverlapError(
            "the covariates have no cell with data in common on the analysis grid; "
            "check that their extents overlap and their nodata values"
        )
    return FeatureStack(grid=grid, layers=layers, valid=valid, class_names=class_names)
