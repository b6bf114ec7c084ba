"""Run an Omniscape ``.ini``: read its rasters, run the moving window, write its files.

Outputs go to the ``project_name`` folder (``_1``, ``_2``... appended when it
exists, as Omniscape does) under Omniscape's names: ``cum_currmap``,
``flow_potential``, ``normalized_cum_currmap`` and ``classified_resistance``
(``.tif``, or ``.asc`` with ``write_as_tif = false``), with a copy of the
``.ini`` as ``config.ini``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from ..compute import Compute
from .ini import OmniscapeError, OmniscapeIni, OmniscapeOptions, read_options
from .tiles import OmniscapeMaps, omniscape_maps
from .window import Landscape, find_targets

__all__ = ["read_layer", "run_omniscape_ini"]

log = logging.getLogger(__name__)


@dataclass
class Layer:
    """A raster read whole: values (NaN = nodata) and its georeferencing."""

    values: np.ndarray
    profile: dict[str, Any]


def read_layer(path: Path, key: str, like: Layer | None = None) -> Layer:
    """Band 1 of a raster, nodata as NaN; it must match ``like``'s grid."""
    try:
        with rasterio.open(path) as ds:
            values = ds.read(1).astype(np.float64)
            if ds.nodata is not None:
                values[values == ds.nodata] = np.nan
            profile = {"crs": ds.crs, "transform": ds.transform}
    except RasterioIOError:
        raise OmniscapeError(f"{path}: not a raster GDAL can read ({key})") from None
    if like is not None and values.shape != like.values.shape:
        raise OmniscapeError(
            f"{path}: {values.shape[0]} x {values.shape[1]} cells, but resistance_file has "
            f"{like.values.shape[0]} x {like.values.shape[1]}; {key} must be on the same grid"
        )
    return Layer(values, profile)


def _reclass_table(path: Path) -> list[tuple[float, float]]:
    table = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            new = parts[1].strip('"').lower()
            table.append((float(parts[0]), np.nan if new == "missing" else float(new)))
        except (ValueError, IndexError):
            raise OmniscapeError(
                f"{path}: line {n} is not 'value new-value' (use missing for nodata)"
            ) from None
    return table


def _resistance(ini: OmniscapeIni, opts: OmniscapeOptions) -> Layer:
    layer = read_layer(ini.file("resistance_file"), "resistance_file")
    values = layer.values
    if opts.reclassify:
        old = values.copy()
        for value, new in _reclass_table(ini.file("reclass_table")):
            values[old == value] = new
    finite = np.isfinite(values)
    if np.any(values[finite] <= 0):
        raise OmniscapeError(
            f"{ini.path_of('resistance_file')}: resistances must be positive; use nodata "
            "(or reclassify to missing) for barriers"
        )
    return layer


def _sources(ini: OmniscapeIni, opts: OmniscapeOptions, resistance: Layer) -> np.ndarray:
    if opts.source_from_resistance:
        r = resistance.values
        with np.errstate(divide="ignore"):
            strength = r if opts.resistance_is_conductance else 1.0 / r
        cutoff = 1.0 / opts.r_cutoff if opts.r_cutoff != 0 else np.inf
        return np.where(np.isfinite(strength) & (strength >= cutoff), strength, 0.0)
    src = read_layer(ini.file("source_file"), "source_file", resistance).values
    src = np.where(np.isfinite(src), src, 0.0)
    return np.where(src < opts.source_threshold, 0.0, src)


def _conditions(
    ini: OmniscapeIni, opts: OmniscapeOptions, resistance: Layer
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    cond = opts.window.conditions
    if cond is None:
        return (), ()
    present, future = [], []
    for k in range(1, len(cond.comparisons) + 1):
        now = read_layer(ini.file(f"condition{k}_file"), f"condition{k}_file", resistance)
        present.append(now.values)
        if opts.compare_to_future in (str(k), "both"):
            key = f"condition{k}_future_file"
            future.append(read_layer(ini.file(key), key, resistance).values)
        else:
            future.append(now.values)
    return tuple(present), tuple(future)


def landscape_of(ini: OmniscapeIni, opts: OmniscapeOptions) -> tuple[Landscape, Layer, np.ndarray]:
    """The landscape, the (reclassified) resistance and the target strengths of a run."""
    resistance = _resistance(ini, opts)
    r = resistance.values
    with np.errstate(divide="ignore"):
        conductance = r if opts.resistance_is_conductance else 1.0 / r
    conductance = np.where(np.isfinite(conductance), conductance, 0.0)
    sources = _sources(ini, opts, resistance)
    targets = sources
    if ini.get("target_file"):  # hwc-risk: targets from their own layer
        t = read_layer(ini.file("target_file"), "target_file", resistance).values
        t = np.where(np.isfinite(t), t, 0.0)
        targets = np.where(t < opts.source_threshold, 0.0, t)
    present, future = _conditions(ini, opts, resistance)
    return Landscape(conductance, sources, present, future), resistance, targets


def _project_folder(ini: OmniscapeIni) -> Path:
    value = ini.get("project_name")
    if not value or value.startswith("("):
        raise OmniscapeError(f"{ini.path}: 'project_name' is not set; name the output folder")
    base = Path(value).expanduser()
    if not base.is_absolute():
        base = ini.path.parent / base
    folder, n = base, 0
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}_{n}")
    return folder


def _write(
    folder: Path, name: str, values: np.ndarray, like: Layer, opts: OmniscapeOptions
) -> Path:
    dtype = "float32" if opts.single else "float64"
    data = np.where(np.isnan(values), -9999.0, values).astype(dtype)
    h, w = data.shape
    profile = {
        "count": 1,
        "width": w,
        "height": h,
        "dtype": dtype,
        "nodata": -9999.0,
        "transform": like.profile["transform"],
    }
    if like.profile["crs"] is not None:
        profile["crs"] = like.profile["crs"]
    if opts.as_tif:
        path = folder / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", compress="lzw", **profile) as dst:
            dst.write(data, 1)
    else:
        path = folder / f"{name}.asc"
        with rasterio.open(path, "w", driver="AAIGrid", **profile) as dst:
            dst.write(data, 1)
    return path


def write_outputs(
    folder: Path, maps: OmniscapeMaps, resistance: Layer, opts: OmniscapeOptions
) -> list[Path]:
    """Omniscape's output files, masked by the resistance's nodata when asked."""
    folder.mkdir(parents=True)
    nodata = ~np.isfinite(resistance.values)
    outputs: list[tuple[str, np.ndarray]] = []
    if opts.write_raw:
        outputs.append(("cum_currmap", maps.current))
    if opts.flow_potential and maps.potential is not None:
        outputs.append(("flow_potential", maps.potential))
    if opts.normalized:
        outputs.append(("normalized_cum_currmap", maps.normalized))
    written = []
    for name, values in outputs:
        out = np.where(nodata, np.nan, values) if opts.mask_nodata else values
        written.append(_write(folder, name, out, resistance, opts))
    if opts.reclassify and opts.write_reclassified:
        written.append(_write(folder, "classified_resistance", resistance.values, resistance, opts))
    return written


def run_omniscape_ini(
    ini_path: str | Path,
    compute: Compute | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Run an Omniscape ``.ini`` and write its outputs; return the files written."""
    ini = OmniscapeIni(Path(ini_path))
    opts = read_options(ini)
    say = progress or (lambda _msg: None)
    land, resistance, strength = landscape_of(ini, opts)
    folder = _project_folder(ini)
    targets = find_targets(strength, opts.window)
    say(f"omniscape: {targets.shape[0]} targets on a {land.shape[0]} x {land.shape[1]} grid")
    maps = omniscape_maps(land, opts.window, targets, compute)
    say(f"omniscape: {maps.factorisations} factorisations, {maps.reused} reused")
    written = write_outputs(folder, maps, resistance, opts)
    shutil.copyfile(ini.path, folder / "config.ini")
    return [*written, folder / "config.ini"]
