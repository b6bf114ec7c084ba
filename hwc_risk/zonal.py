"""Sums of surfaces over the risk classes and the hotspots, chunk by chunk; a surface scaled
to a total.

The forecast and the risk cube need, for each risk class and each hotspot,
how many cells it has and what a surface adds up to inside it (the expected
incidents of a forecast surface, the summed risk): :func:`zone_totals` reads
the class raster, the surfaces and the hotspot polygons (rasterised per
chunk) one chunk at a time, so memory depends on the chunk, not the grid.
:func:`scale_to_total` turns a relative surface into expected incidents per
cell that add up to a forecast total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.windows import transform as window_transform

from .classes import RISK_CLASSES
from .compute import Compute
from .grid import GridSpec

__all__ = ["Zone", "scale_to_total", "zone_totals"]


@dataclass
class Zone:
    """One zone (the district, a risk class or a hotspot) and its sums."""

    kind: str  # "district", "class" or "hotspot"
    id: int
    label: str
    cells: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def mean(self, layer: str) -> float:
        n = self.counts.get(layer, 0)
        return self.sums.get(layer, 0.0) / n if n else float("nan")

    def add(self, layer: str, values: np.ndarray) -> None:
        ok = np.isfinite(values)
        self.sums[layer] = self.sums.get(layer, 0.0) + float(values[ok].sum(dtype=np.float64))
        self.counts[layer] = self.counts.get(layer, 0) + int(ok.sum())


def _hotspot_ids(
    hotspots: Any, grid: GridSpec, window: rasterio.windows.Window
) -> np.ndarray | None:
    """Hotspot ranks (0 = none) of the cells of ``window``, from polygons touching it."""
    if hotspots is None or len(hotspots) == 0:
        return None
    transform = window_transform(window, grid.transform)
    left, top = transform.c, transform.f
    right = left + window.width * transform.a
    bottom = top + window.height * transform.e
    near = hotspots.iloc[hotspots.sindex.query(_box(left, bottom, right, top))]
    shape = (int(window.height), int(window.width))
    if len(near) == 0:
        return np.zeros(shape, dtype=np.int32)
    return rasterize(
        zip(near.geometry, near["hotspot"].astype(int), strict=True),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )


def _box(left: float, bottom: float, right: float, top: float) -> Any:
    from shapely.geometry import box

    return box(left, bottom, right, top)


def zone_totals(
    grid: GridSpec,
    layers: Mapping[str, tuple[Path, int]],
    classes: Path | None = None,
    hotspots: Any = None,
    chunk: int = 1024,
) -> list[Zone]:
    """The district, every risk class and every hotspot with the sums of ``layers``.

    ``layers`` maps a name to a raster on ``grid`` and a band; ``classes`` is
    a risk-class raster (0 = nodata) and ``hotspots`` a GeoDataFrame with a
    ``hotspot`` rank column (as in ``hotspots.gpkg``). A cell is in the
    district when any layer has a value there. Sums skip NaN and nodata.
    """
    district = Zone(kind="district", id=0, label="district")
    by_class = {c.code: Zone(kind="class", id=c.code, label=c.label) for c in RISK_CLASSES}
    by_spot = (
        {
            int(r): Zone(kind="hotspot", id=int(r), label=f"hotspot {int(r)}")
            for r in hotspots["hotspot"]
        }
        if hotspots is not None
        else {}
    )
    with rasterio.Env(GDAL_CACHEMAX=64):
        handles = {name: (rasterio.open(path), band) for name, (path, band) in layers.items()}
        class_ds = rasterio.open(classes) if classes is not None else None
        try:
            for win in Compute(chunk_size=chunk).windows(grid.shape):
                data = {n: _read(ds, b, win) for n, (ds, b) in handles.items()}
                inside = np.zeros((int(win.height), int(win.width)), dtype=bool)
                for values in data.values():
                    inside |= np.isfinite(values)
                _accumulate(district, inside, data)
                if class_ds is not None:
                    codes = class_ds.read(1, window=win)
                    for code, zone in by_class.items():
                        _accumulate(zone, codes == code, data)
                ids = _hotspot_ids(hotspots, grid, win)
                if ids is not None:
                    for rank in np.unique(ids[ids > 0]):
                        _accumulate(by_spot[int(rank)], ids == rank, data)
        finally:
            for ds, _ in handles.values():
                ds.close()
            if class_ds is not None:
                class_ds.close()
    zones = [district]
    if classes is not None:
        zones += [by_class[c.code] for c in RISK_CLASSES]
    return zones + [by_spot[k] for k in sorted(by_spot)]


def _read(ds: Any, band: int, win: rasterio.windows.Window) -> np.ndarray:
    values = ds.read(band, window=win).astype(np.float64)
    if ds.nodata is not None and not np.isnan(ds.nodata):
        values[values == ds.nodata] = np.nan
    return values


def _accumulate(zone: Zone, mask: np.ndarray, data: Mapping[str, np.ndarray]) -> None:
    zone.cells += int(mask.sum())
    for name, values in data.items():
        zone.add(name, values[mask])


def scale_to_total(
    surface: Path, total: float, out: Path, grid: GridSpec, chunk: int = 1024, block: int = 256
) -> Path:
    """Write ``surface * total / sum(surface)`` as a float32 GTiff: expected incidents per
    cell that add up to ``total`` (NaN stays NaN). Two passes, chunk by chunk."""
    windows = Compute(chunk_size=chunk).windows(grid.shape)
    with rasterio.open(surface) as src:
        s = sum(
            float(np.nansum(np.clip(src.read(1, window=w), 0, None), dtype=np.float64))
            for w in windows
        )
        factor = total / s if s > 0 else 0.0
        profile = grid.profile(dtype="float32", nodata=np.nan, blockxsize=block, blockysize=block)
        with rasterio.open(out, "w", **profile) as dst:
            for w in windows:
                values = src.read(1, window=w).astype(np.float64)
                dst.write((np.clip(values, 0, None) * factor).astype(np.float32), 1, window=w)
    return out
