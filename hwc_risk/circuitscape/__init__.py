"""Run Circuitscape configurations (``.ini``) with hwc-risk's solver.

``run_ini(path)`` reads a Circuitscape 5 ``.ini`` in any mode (raster
advanced, pairwise, one-to-all and all-to-one; network pairwise and advanced),
solves it with :mod:`hwc_risk.circuit` and writes the files Circuitscape would
write, under the same names (see the README's connectivity section). Inputs may
be ASCII grids, GeoTIFFs or gzipped either, and text lists where Circuitscape
takes them. Options hwc-risk does not implement raise :class:`CircuitscapeError`
rather than silently computing something else.

Modules: :mod:`.ini` (settings), :mod:`.files` (file formats), :mod:`.raster`
and :mod:`.network` (the modes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .files import AsciiHeader, read_grid, write_ascii_grid
from .ini import CircuitscapeError, CircuitscapeIni
from .network import run_network_advanced, run_network_pairwise
from .raster import load_habitat, run_advanced, run_one_to_all, run_pairwise

__all__ = ["AsciiHeader", "CircuitscapeError", "read_grid", "run_ini", "write_ascii_grid"]

log = logging.getLogger(__name__)

#: Settings read but with no effect on results: hwc-risk picks its own solver (a
#: sparse direct factorisation up to 20 000 nodes, AMG-preconditioned conjugate
#: gradients above, to a relative residual of 1e-11) and always computes in double
#: precision with bounded memory.
ACCEPTED = (
    "solver",
    "low_memory_mode",
    "precision",
    "parallelize",
    "max_parallel",
    "cholmod_batch_size",
    "preemptive_memory_release",
    "print_timings",
    "print_rusages",
    "use_64bit_indexing",
)


def run_ini(ini_path: str | Path, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Run a Circuitscape ``.ini`` and write its outputs; return the files written."""
    ini = CircuitscapeIni(Path(ini_path))
    say = progress or (lambda _msg: None)
    data_type, scenario = ini.data_type, ini.scenario
    if ini.get("precision").lower() in ("single", "float32"):
        log.info("precision = single: hwc-risk computes in double precision")
    if data_type == "network":
        if scenario == "pairwise":
            return run_network_pairwise(ini, say)
        if scenario == "advanced":
            return run_network_advanced(ini, say)
        raise CircuitscapeError(
            f"{ini.path}: scenario = {scenario} with data_type = network; Circuitscape runs "
            "graphs in pairwise or advanced mode"
        )
    habitat = load_habitat(ini)
    if scenario == "advanced":
        return run_advanced(ini, habitat, say)
    if scenario == "pairwise":
        return run_pairwise(ini, habitat, say)
    return run_one_to_all(ini, habitat, say, one_to_all=scenario == "one-to-all")
