"""Run Circuitscape raster configurations (``.ini``) with hwc-risk's solver.

``run_ini(path)`` reads a Circuitscape raster configuration in advanced or
pairwise mode, solves it with :mod:`hwc_risk.circuit` and writes the files
Circuitscape would write, under the same names: ``<output>_voltmap.asc``,
``<output>_curmap.asc`` (advanced); ``<output>_resistances.out``,
``<output>_resistances_3columns.out``, ``<output>_cum_curmap.asc`` and the
per-pair ``<output>_curmap_<a>_<b>.asc`` / ``_voltmap_<a>_<b>.asc``
(pairwise). Inputs may be ASCII grids, GeoTIFFs or gzipped either. Options we
do not implement raise :class:`CircuitscapeError` rather than silently
computing something else.
"""

from __future__ import annotations

import configparser
import gzip
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from .circuit import (
    CircuitGraph,
    build_graph,
    effective_resistance_pairs,
    node_currents,
    node_map,
    pair_with_focal_regions,
    solve_advanced,
)
from .errors import InputError, MissingFileError

__all__ = ["AsciiHeader", "CircuitscapeError", "read_grid", "run_ini", "write_ascii_grid"]

log = logging.getLogger(__name__)

TRUE = {"true", "1", "yes", "on"}
PLACEHOLDER = "(browse"  # Circuitscape's GUI leaves "(Browse for ...)" in unused paths


class CircuitscapeError(InputError):
    """A Circuitscape configuration we cannot run as Circuitscape would."""


@dataclass(frozen=True)
class AsciiHeader:
    ncols: int
    nrows: int
    xllcorner: float
    yllcorner: float
    cellsize: float
    nodata: float = -9999.0


def read_grid(path: Path, key: str) -> tuple[np.ndarray, AsciiHeader]:
    """Read band 1 of a raster (ASCII grid, GeoTIFF, optionally gzipped); nodata -> NaN."""
    if not path.exists():
        raise MissingFileError(f"{path}: file not found ({key}); check the path in the .ini")
    gdal_path = f"/vsigzip/{path}" if path.suffix == ".gz" else str(path)
    try:
        with rasterio.open(gdal_path) as ds:
            data = ds.read(1).astype(np.float64)
            # Circuitscape's convention: -9999 is nodata when the file declares none
            nodata = ds.nodata if ds.nodata is not None else -9999.0
            t = ds.transform
            header = AsciiHeader(
                ncols=ds.width,
                nrows=ds.height,
                xllcorner=t.c,
                yllcorner=t.f + ds.height * t.e,
                cellsize=abs(t.a),
                nodata=float(nodata),
            )
    except RasterioIOError:
        raise CircuitscapeError(f"{path}: not a raster GDAL can read ({key})") from None
    data[data == nodata] = np.nan
    return data, header


def _format(value: float) -> str:
    return "0" if value == 0 else f"{value:.10g}"


def write_ascii_grid(
    path: Path, data: np.ndarray, header: AsciiHeader, compress: bool = False
) -> Path:
    """Write an ESRI ASCII grid the way Circuitscape does (10 significant digits)."""
    lines = [
        f"ncols         {header.ncols}",
        f"nrows         {header.nrows}",
        f"xllcorner     {header.xllcorner!r}",
        f"yllcorner     {header.yllcorner!r}",
        f"cellsize      {header.cellsize!r}",
        f"NODATA_value  {_format(header.nodata)}",
    ]
    values = np.where(np.isnan(data), header.nodata, data)
    for row in values:
        lines.append(" ".join(_format(v) for v in row) + " ")
    text = "\n".join(lines) + "\n"
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


class _Ini:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise MissingFileError(f"{path}: Circuitscape .ini not found")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise CircuitscapeError(f"{path}: not a Circuitscape .ini ({exc})") from None
        self.path = path
        self.values: dict[str, str] = {}
        for section in parser.sections():
            for key, value in parser.items(section):
                self.values[key.lower()] = value.strip()

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def flag(self, key: str) -> bool:
        return self.get(key, "False").lower() in TRUE

    def path_of(self, key: str) -> Path | None:
        value = self.get(key)
        if not value or value.lower() in ("none", "false") or value.lower().startswith(PLACEHOLDER):
            return None
        p = Path(value).expanduser()
        if p.is_absolute():
            return p
        beside = self.path.parent / p
        return beside if beside.exists() or not p.exists() else p.resolve()


def _require(ini: _Ini, key: str) -> Path:
    path = ini.path_of(key)
    if path is None:
        raise CircuitscapeError(f"{ini.path}: '{key}' is not set; give the file's path")
    return path


def _check_unsupported(ini: _Ini) -> None:
    data_type = ini.get("data_type", "raster").lower()
    if data_type != "raster":
        raise CircuitscapeError(
            f"{ini.path}: data_type = {data_type} is not supported; hwc-risk runs raster "
            "configurations only"
        )
    scenario = ini.get("scenario", "").lower()
    if scenario not in ("advanced", "pairwise"):
        raise CircuitscapeError(
            f"{ini.path}: scenario = {scenario or '(missing)'} is not supported; use "
            "advanced or pairwise"
        )
    for key, why in (
        ("use_included_pairs", "included/excluded pair lists"),
        ("write_max_cur_maps", "maximum current maps"),
        ("log_transform_maps", "log-transformed maps"),
        ("use_variable_source_strengths", "variable source strengths"),
    ):
        if ini.flag(key):
            raise CircuitscapeError(
                f"{ini.path}: {key} = True ({why}) is not supported yet; set it to False"
            )
    if ini.flag("write_as_tif"):
        raise CircuitscapeError(
            f"{ini.path}: write_as_tif = True is not supported; outputs are ASCII"
        )


def _conductance(ini: _Ini, habitat: np.ndarray) -> np.ndarray:
    is_res = ini.flag("habitat_map_is_resistances")
    valid = np.isfinite(habitat)
    if np.any(habitat[valid] < 0):
        raise CircuitscapeError(
            f"{ini.path}: the habitat map has negative values; resistances and conductances "
            "must be positive (use nodata for barriers)"
        )
    if is_res and np.any(habitat[valid] == 0):
        raise CircuitscapeError(
            f"{ini.path}: the habitat map has zero resistances; use short-circuit regions "
            "(polygons) for zero-resistance areas"
        )
    with np.errstate(divide="ignore"):
        g = np.where(valid, 1.0 / habitat if is_res else habitat, 0.0)
    return np.where(valid, g, 0.0)


def _same_shape(header: AsciiHeader, other: AsciiHeader, path: Path) -> None:
    if (other.nrows, other.ncols) != (header.nrows, header.ncols):
        raise CircuitscapeError(
            f"{path}: {other.nrows} x {other.ncols} cells, but the habitat map has "
            f"{header.nrows} x {header.ncols}; all grids must match"
        )


def _read_matching(ini: _Ini, key: str, header: AsciiHeader) -> np.ndarray:
    path = _require(ini, key)
    data, h = read_grid(path, key)
    _same_shape(header, h, path)
    return data


def _focal_map(ini: _Ini, header: AsciiHeader) -> np.ndarray:
    """Focal ids per cell (0 = none) from a raster or a text file of 'id x y' lines."""
    path = _require(ini, "point_file")
    if path.suffix.lower() == ".txt":
        focal = np.zeros((header.nrows, header.ncols))
        top = header.yllcorner + header.nrows * header.cellsize
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                fid, x, y = float(parts[0]), float(parts[1]), float(parts[2])
            except (ValueError, IndexError):
                raise CircuitscapeError(f"{path}: line {n} is not 'id x y'") from None
            row = int(np.floor((top - y) / header.cellsize))
            col = int(np.floor((x - header.xllcorner) / header.cellsize))
            if 0 <= row < header.nrows and 0 <= col < header.ncols:
                focal[row, col] = fid
            else:
                log.warning("%s: focal point %g at (%g, %g) is outside the grid", path, fid, x, y)
        return focal
    data = _read_matching(ini, "point_file", header)
    return np.where(np.isfinite(data), data, 0.0)


def _output_base(ini: _Ini) -> Path:
    out = _require(ini, "output_file")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.with_suffix("") if out.suffix == ".out" else out


def run_ini(ini_path: str | Path, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Run a Circuitscape raster ``.ini`` and write its outputs; return the files written."""
    ini = _Ini(Path(ini_path))
    _check_unsupported(ini)
    say = progress or (lambda _msg: None)

    habitat_path = _require(ini, "habitat_file")
    habitat, header = read_grid(habitat_path, "habitat_file")
    conductance = _conductance(ini, habitat)
    if ini.flag("use_mask"):
        mask = _read_matching(ini, "mask_file", header)
        conductance = np.where(np.isfinite(mask) & (mask > 0), conductance, 0.0)

    regions: list[np.ndarray] = []
    if ini.flag("use_polygons"):
        poly = _read_matching(ini, "polygon_file", header)
        regions.append(np.where(np.isfinite(poly), poly, 0.0))

    scenario = ini.get("scenario").lower()
    base = _output_base(ini)
    compress = ini.flag("compress_grids")
    four = ini.flag("connect_four_neighbors_only")
    avg_res = ini.flag("connect_using_avg_resistances")
    written: list[Path] = []

    if scenario == "advanced":
        nodes = node_map(conductance, regions)
        graph = build_graph(conductance, nodes, four, avg_res)
        say(f"advanced mode: {graph.n_nodes} nodes")
        sources, grounds = _sources_and_grounds(ini, header, graph)
        voltages, finite = solve_advanced(graph, sources, grounds)
        if ini.flag("write_volt_maps"):
            vmap = _null(graph.to_cells(voltages), ini.flag("set_null_voltages_to_nodata"))
            written.append(write_ascii_grid(Path(f"{base}_voltmap.asc"), vmap, header, compress))
        if ini.flag("write_cur_maps"):
            cur = node_currents(graph, voltages, finite)
            cmap = _null(graph.to_cells(cur), ini.flag("set_null_currents_to_nodata"))
            written.append(write_ascii_grid(Path(f"{base}_curmap.asc"), cmap, header, compress))
        return written

    focal = _focal_map(ini, header)
    ids = np.unique(focal[focal > 0])
    if ids.size < 2:
        raise CircuitscapeError(f"{ini.path}: pairwise mode needs at least two focal points")
    write_cur = ini.flag("write_cur_maps")
    write_volt = ini.flag("write_volt_maps")
    per_pair_cur = write_cur and not ini.flag("write_cum_cur_map_only")
    null_cur = ini.flag("set_null_currents_to_nodata")
    null_volt = ini.flag("set_null_voltages_to_nodata")
    resistances = np.zeros((ids.size, ids.size))
    cumulative = np.zeros(conductance.shape)
    counts = np.unique(focal[focal > 0], return_counts=True)[1]
    has_regions = bool(np.any(counts > 1))
    say(f"pairwise mode: {ids.size} focal {'regions' if has_regions else 'points'}")

    def pairs() -> Iterator[tuple[int, int, float, np.ndarray | None, np.ndarray | None]]:
        want = write_cur or write_volt
        if has_regions:  # the graph changes with each pair's short-circuited regions
            for a in range(ids.size):
                for b in range(a + 1, ids.size):
                    r, v, c = pair_with_focal_regions(
                        conductance, regions, focal, ids[a], ids[b], four, avg_res, want
                    )
                    yield a, b, r, v, c
            return
        nodes = node_map(conductance, regions)
        graph = build_graph(conductance, nodes, four, avg_res)
        focal_nodes: list[int | None] = []
        for fid in ids:
            on = nodes[(focal == fid) & (nodes > 0)]
            focal_nodes.append(int(on[0]) - 1 if on.size else None)
        for pair in effective_resistance_pairs(graph, focal_nodes, want):
            volts = graph.to_cells(pair.voltages) if pair.voltages is not None else None
            curs = graph.to_cells(pair.currents) if pair.currents is not None else None
            yield pair.i, pair.j, pair.resistance, volts, curs

    for a, b, resistance, volts, curs in pairs():
        resistances[a, b] = resistances[b, a] = resistance
        tag = f"{_id(ids[a])}_{_id(ids[b])}"
        if curs is not None:
            cumulative += curs
            if per_pair_cur:
                path = Path(f"{base}_curmap_{tag}.asc")
                written.append(write_ascii_grid(path, _null(curs, null_cur), header, compress))
        if volts is not None and write_volt:
            path = Path(f"{base}_voltmap_{tag}.asc")
            written.append(write_ascii_grid(path, _null(volts, null_volt), header, compress))
    if write_cur:
        cmap = _null(cumulative, null_cur)
        written.append(write_ascii_grid(Path(f"{base}_cum_curmap.asc"), cmap, header, compress))
    written.extend(_write_resistances(base, ids, resistances))
    return written


def _id(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _null(cells: np.ndarray, to_nodata: bool) -> np.ndarray:
    if to_nodata:
        cells = np.where(cells == 0, np.nan, cells)
    return cells


def _write_resistances(base: Path, ids: np.ndarray, res: np.ndarray) -> list[Path]:
    matrix = Path(f"{base}_resistances.out")
    rows = ["0 " + " ".join(_id(i) for i in ids)]
    for k, fid in enumerate(ids):
        rows.append(_id(fid) + " " + " ".join(_format(v) for v in res[k]))
    matrix.write_text("\n".join(rows) + "\n")
    three = Path(f"{base}_resistances_3columns.out")
    lines = [
        f"{_id(ids[a])} {_id(ids[b])} {_format(res[a, b])}"
        for a in range(ids.size)
        for b in range(a + 1, ids.size)
    ]
    three.write_text("\n".join(lines) + "\n")
    return [matrix, three]


def _sources_and_grounds(
    ini: _Ini, header: AsciiHeader, graph: CircuitGraph
) -> tuple[np.ndarray, np.ndarray]:
    """Per-node current sources (A) and ground conductances (S; inf = direct ground)."""
    src = _read_matching(ini, "source_file", header)
    gnd = _read_matching(ini, "ground_file", header)
    src = np.where(np.isfinite(src), src, 0.0)
    gnd_valid = np.isfinite(gnd)
    if ini.flag("ground_file_is_resistances"):
        with np.errstate(divide="ignore"):
            gnd = np.where(
                gnd_valid, np.where(gnd == 0, np.inf, 1.0 / np.where(gnd == 0, 1, gnd)), 0.0
            )
    else:
        gnd = np.where(gnd_valid, gnd, 0.0)
    if np.any(gnd < 0):
        raise CircuitscapeError(f"{ini.path}: the ground map has negative values")
    if ini.flag("use_direct_grounds"):
        gnd = np.where(gnd > 0, np.inf, 0.0)
    if ini.flag("use_unit_currents"):
        src = np.where(src != 0, 1.0, 0.0)
    conflict = (src != 0) & (gnd > 0)
    policy = ini.get("remove_src_or_gnd", "keepall").lower()
    if conflict.any():
        if policy == "rmvsrc":
            src = np.where(conflict, 0.0, src)
        elif policy == "rmvgnd":
            gnd = np.where(conflict, 0.0, gnd)
        elif policy == "rmvall":
            src = np.where(conflict, 0.0, src)
            gnd = np.where(conflict, 0.0, gnd)
        elif policy != "keepall":
            raise CircuitscapeError(
                f"{ini.path}: remove_src_or_gnd = {policy}; use keepall, rmvsrc, rmvgnd or rmvall"
            )
    n = graph.n_nodes
    sources = np.zeros(n)
    grounds = np.zeros(n)
    has = graph.nodes > 0
    idx = graph.nodes[has] - 1
    np.add.at(sources, idx, src[has])
    np.add.at(grounds, idx, gnd[has])
    return sources, grounds
