"""Omniscape's moving-window connectivity, in Python.

``run_omniscape_ini(path)`` runs an Omniscape.jl ``.ini`` unchanged and writes
Omniscape's files (see :mod:`.run`); :func:`omniscape_maps` is the in-memory
driver the pipeline uses. Modules: :mod:`.window` (the per-target kernel),
:mod:`.tiles` (the grid, tile by tile, on the compute pool or Dask),
:mod:`.ini` (settings) and :mod:`.run` (files).
"""

from __future__ import annotations

from .ini import OmniscapeError
from .run import run_omniscape_ini
from .tiles import OmniscapeMaps, omniscape_maps
from .window import Landscape, WindowSettings, find_targets

__all__ = [
    "Landscape",
    "OmniscapeError",
    "OmniscapeMaps",
    "WindowSettings",
    "find_targets",
    "omniscape_maps",
    "run_omniscape_ini",
]
