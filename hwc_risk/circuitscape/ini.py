"""Circuitscape's ``.ini`` settings: defaults, flags and file paths.

Circuitscape reads ``key = value`` lines and ignores the ``[section]`` headings;
keys it does not know are ignored, keys left out take Circuitscape 5's defaults
(for example ``habitat_map_is_resistances = True``). A path is taken as given
when absolute, else from the ``.ini``'s folder, else from the current folder.
"""

from __future__ import annotations

import configparser
from pathlib import Path

from ..errors import InputError, MissingFileError

__all__ = ["TRUE", "CircuitscapeError", "CircuitscapeIni"]

TRUE = {"true", "1", "yes", "on"}
#: Placeholders Circuitscape's GUI leaves in unused paths, and words meaning "no file".
NO_FILE = ("(browse", "(choose", "none", "false", "not entered")

#: Circuitscape 5's defaults for the keys hwc-risk reads.
DEFAULTS = {
    "data_type": "raster",
    "scenario": "not entered",
    "habitat_map_is_resistances": "True",
    "ground_file_is_resistances": "True",
    "connect_four_neighbors_only": "False",
    "connect_using_avg_resistances": "False",
    "remove_src_or_gnd": "keepall",
    "solver": "cg+amg",
    "precision": "double",
}

SCENARIOS = {
    "advanced": "advanced",
    "pairwise": "pairwise",
    "one-to-all": "one-to-all",
    "one_to_all": "one-to-all",
    "onetoall": "one-to-all",
    "all-to-one": "all-to-one",
    "all_to_one": "all-to-one",
    "alltoone": "all-to-one",
}


class CircuitscapeError(InputError):
    """A Circuitscape configuration we cannot run as Circuitscape would."""


class CircuitscapeIni:
    """The settings of one Circuitscape ``.ini`` file."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise MissingFileError(f"{path}: Circuitscape .ini not found")
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise CircuitscapeError(f"{path}: not a Circuitscape .ini ({exc})") from None
        self.path = path
        self.values: dict[str, str] = dict(DEFAULTS)
        for section in parser.sections():
            for key, value in parser.items(section):
                self.values[key.lower()] = value.strip()

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    def flag(self, key: str) -> bool:
        return self.get(key, "False").lower() in TRUE

    @property
    def scenario(self) -> str:
        value = self.get("scenario").lower()
        if value not in SCENARIOS:
            raise CircuitscapeError(
                f"{self.path}: scenario = {value or '(missing)'} is not a Circuitscape mode; "
                "use pairwise, advanced, one-to-all or all-to-one"
            )
        return SCENARIOS[value]

    @property
    def data_type(self) -> str:
        value = self.get("data_type", "raster").lower()
        if value not in ("raster", "network"):
            raise CircuitscapeError(f"{self.path}: data_type = {value}; use raster or network")
        return value

    def path_of(self, key: str) -> Path | None:
        """The file a key names, or None when it names none."""
        value = self.get(key)
        if not value or value.lower().startswith(NO_FILE):
            return None
        p = Path(value).expanduser()
        if p.is_absolute():
            return p
        beside = self.path.parent / p
        return beside if beside.exists() or not p.exists() else p.resolve()

    def require(self, key: str) -> Path:
        """The file a key must name; a clear error when it names none."""
        path = self.path_of(key)
        if path is None:
            raise CircuitscapeError(f"{self.path}: '{key}' is not set; give the file's path")
        return path

    def output_base(self) -> Path:
        """``output_file`` without its ``.out``: the prefix of every output file."""
        out = self.require("output_file")
        out.parent.mkdir(parents=True, exist_ok=True)
        return out.with_suffix("") if out.suffix == ".out" else out
