"""Omniscape's ``.ini`` settings, checked, with Omniscape.jl's defaults.

Omniscape reads ``key = value`` lines and ignores ``[section]`` headings. Paths
are taken as given when absolute, else from the ``.ini``'s folder, else from the
current folder (``project_name`` too: the output folder is made beside the
``.ini`` when the path is relative).
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, MissingFileError
from .window import Conditions, Decay, WindowSettings

__all__ = ["OmniscapeError", "OmniscapeIni", "OmniscapeOptions"]

TRUE = {"true", "1", "yes", "on"}

#: Omniscape.jl's defaults (v0.6), and the keys hwc-risk adds (marked +).
DEFAULTS = {
    "resistance_is_conductance": "false",
    "parallelize": "true",
    "parallel_batch_size": "10",
    "block_size": "1",
    "buffer": "0",
    "source_threshold": "0",
    "source_from_resistance": "false",
    "r_cutoff": "Inf",
    "precision": "double",
    "connect_four_neighbors_only": "false",
    "solver": "cg+amg",
    "calc_flow_potential": "false",
    "calc_normalized_current": "false",
    "correct_artifacts": "true",
    "write_raw_currmap": "true",
    "write_as_tif": "true",
    "mask_nodata": "true",
    "conditional": "false",
    "n_conditions": "1",
    "compare_to_future": "none",
    "comparison1": "within",
    "comparison2": "within",
    "condition1_lower": "0",
    "condition2_lower": "0",
    "condition1_upper": "0",
    "condition2_upper": "0",
    "reclassify_resistance": "false",
    "write_reclassified_resistance": "false",
    "allow_different_projections": "false",
    "source_decay": "none",  # +
    "decay_scale": "0",  # +
}


class OmniscapeError(InputError):
    """An Omniscape configuration we cannot run."""


class OmniscapeIni:
    """The settings of one Omniscape ``.ini`` file."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise MissingFileError(f"{path}: Omniscape .ini not found")
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            text = path.read_text(encoding="utf-8")
            # Omniscape reads key = value lines anywhere, before any heading too
            parser.read_string("[_top]\n" + text)
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise OmniscapeError(f"{path}: not an Omniscape .ini ({exc})") from None
        self.path = path
        self.values: dict[str, str] = dict(DEFAULTS)
        for section in parser.sections():
            for key, value in parser.items(section):
                self.values[key.lower()] = value.strip()

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    def flag(self, key: str) -> bool:
        return self.get(key).lower() in TRUE

    def number(self, key: str) -> float:
        try:
            return float(self.get(key))
        except ValueError:
            raise OmniscapeError(
                f"{self.path}: {key} = {self.get(key) or '(missing)'} is not a number"
            ) from None

    def whole(self, key: str, minimum: int) -> int:
        value = round(self.number(key))
        if value < minimum:
            raise OmniscapeError(f"{self.path}: {key} = {value}; it must be at least {minimum}")
        return value

    def path_of(self, key: str) -> Path:
        value = self.get(key)
        if not value or value.startswith("("):
            raise OmniscapeError(f"{self.path}: '{key}' is not set; give the file's path")
        p = Path(value).expanduser()
        if p.is_absolute():
            return p
        beside = self.path.parent / p
        return beside if beside.exists() or not p.exists() else p.resolve()

    def file(self, key: str) -> Path:
        path = self.path_of(key)
        if not path.is_file():
            raise MissingFileError(f"{path}: file not found ({key}); check the path in the .ini")
        return path


@dataclass(frozen=True)
class OmniscapeOptions:
    """What a run does, checked: the window's settings and the outputs."""

    window: WindowSettings
    source_from_resistance: bool
    source_threshold: float
    r_cutoff: float
    resistance_is_conductance: bool
    reclassify: bool
    write_reclassified: bool
    write_raw: bool
    flow_potential: bool
    normalized: bool
    mask_nodata: bool
    as_tif: bool
    single: bool
    compare_to_future: str


def _conditions(ini: OmniscapeIni) -> tuple[Conditions | None, str]:
    if not ini.flag("conditional"):
        return None, "none"
    n = ini.whole("n_conditions", 1)
    if n > 2:
        raise OmniscapeError(f"{ini.path}: n_conditions = {n}; use 1 or 2")
    comparisons = []
    for k in range(1, n + 1):
        value = ini.get(f"comparison{k}").lower()
        if value not in ("within", "equals", "equal"):
            raise OmniscapeError(f"{ini.path}: comparison{k} = {value}; use within or equals")
        comparisons.append("within" if value == "within" else "equals")
    future = ini.get("compare_to_future").lower()
    if future not in ("none", "1", "2", "both"):
        raise OmniscapeError(f"{ini.path}: compare_to_future = {future}; use none, 1, 2 or both")
    cond = Conditions(
        comparisons=tuple(comparisons),
        lower=tuple(ini.number(f"condition{k}_lower") for k in range(1, n + 1)),
        upper=tuple(ini.number(f"condition{k}_upper") for k in range(1, n + 1)),
    )
    return cond, future


def _decay(ini: OmniscapeIni) -> tuple[Decay, float]:
    decay = ini.get("source_decay").lower()
    if decay not in ("none", "exponential", "gaussian"):
        raise OmniscapeError(
            f"{ini.path}: source_decay = {decay}; use none, exponential or gaussian"
        )
    scale = ini.number("decay_scale")
    if decay != "none" and not scale > 0:
        raise OmniscapeError(f"{ini.path}: source_decay = {decay} needs decay_scale > 0 (cells)")
    return decay, scale  # type: ignore[return-value]


def read_options(ini: OmniscapeIni) -> OmniscapeOptions:
    """Check every option and gather them."""
    if not ini.get("radius") or ini.get("radius").startswith("("):
        raise OmniscapeError(f"{ini.path}: 'radius' is not set; give the window radius in cells")
    block = ini.whole("block_size", 1)
    block += 1 - block % 2  # Omniscape makes an even block size odd by adding one
    conditions, future = _conditions(ini)
    decay, scale = _decay(ini)
    normalized = ini.flag("calc_normalized_current")
    flow = ini.flag("calc_flow_potential")
    window = WindowSettings(
        radius=ini.whole("radius", 1),
        buffer=ini.whole("buffer", 0),
        block_size=block,
        four_neighbours=ini.flag("connect_four_neighbors_only"),
        flow_potential=flow or normalized,
        correct_artifacts=ini.flag("correct_artifacts"),
        decay=decay,
        decay_scale=scale,
        conditions=conditions,
    )
    return OmniscapeOptions(
        window=window,
        source_from_resistance=ini.flag("source_from_resistance"),
        source_threshold=ini.number("source_threshold"),
        r_cutoff=ini.number("r_cutoff"),
        resistance_is_conductance=ini.flag("resistance_is_conductance")
        or ini.flag("resistance_file_is_conductance"),
        reclassify=ini.flag("reclassify_resistance"),
        write_reclassified=ini.flag("write_reclassified_resistance"),
        write_raw=ini.flag("write_raw_currmap"),
        flow_potential=flow,
        normalized=normalized,
        mask_nodata=ini.flag("mask_nodata"),
        as_tif=ini.flag("write_as_tif"),
        single=ini.get("precision").lower() in ("single", "float32"),
        compare_to_future=future,
    )
