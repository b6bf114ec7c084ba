"""Cloud-Optimized GeoTIFFs of the risk surface and its classes.

A COG cannot be written window by window, so the surfaces are first written
as tiled GTiffs (see :mod:`hwc_risk.predict`) and then converted with GDAL's
COG driver: DEFLATE with a predictor, 256-pixel tiles, overviews resampled
with AVERAGE for the continuous risk and NEAREST for classes (GDAL's default
smears classes).
"""

from __future__ import annotations

from pathlib import Path

import rasterio
import rasterio.shutil

from ..classes import RISK_CLASSES

__all__ = ["class_colormap", "remove_stale_sidecars", "write_cog"]


def class_colormap() -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table of the risk classes (0 = nodata, transparent)."""
    cmap: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 0)}
    for cls in RISK_CLASSES:
        h = cls.colour.lstrip("#")
        cmap[cls.code] = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255)
    return cmap


def write_cog(
    src: Path, dst: Path, *, categorical: bool, tags: dict[str, str] | None = None
) -> Path:
    """Convert a tiled GTiff to a COG at ``dst`` (written beside it, then renamed)."""
    if tags:
        with rasterio.open(src, "r+") as ds:
            ds.update_tags(**tags)
    resampling = "NEAREST" if categorical else "AVERAGE"
    tmp = dst.with_name(dst.name + ".part")
    rasterio.shutil.copy(
        src,
        tmp,
        driver="COG",
        COMPRESS="DEFLATE",
        PREDICTOR="YES",
        BLOCKSIZE=256,
        RESAMPLING=resampling,
        OVERVIEW_RESAMPLING=resampling,
        OVERVIEWS="IGNORE_EXISTING",
        NUM_THREADS="ALL_CPUS",  # compresses blocks in parallel
    )
    tmp.replace(dst)
    remove_stale_sidecars(dst)
    return dst


def remove_stale_sidecars(path: Path) -> None:
    """Remove a ``.aux.xml`` beside ``path``: QGIS would show its stale statistics."""
    aux = path.with_name(path.name + ".aux.xml")
    if aux.exists():
        aux.unlink()
