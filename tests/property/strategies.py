"""Hypothesis strategies: incident tables as an agency might export them, broken or not.

A table is drawn as a header and rows of text cells, then written with a separator,
an encoding (a byte-order mark or not), line endings and quoting drawn too. Cells mix
good values (dates and points inside the test area, so some rows are accepted) with
what exports really hold: other date formats, time zones, empty and huge values,
NaN and infinite coordinates, swapped latitude and longitude, decimal commas.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

#: The small study area of the CLI tests (SyntheticArea(size=48, seed=5)) in WGS 84.
AREA_LON = (15.01, 15.15)
AREA_LAT = (46.85, 46.94)
COLUMNS = ("id", "date", "lon", "lat", "species", "kind")

_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d %B %Y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S+03:00",
    "%Y-%m-%d %H:%M",
    "%Y%m%d",
)
_ODD_TEXT = (
    "",
    " ",
    "NaN",
    "nan",
    "None",
    "null",
    "NULL",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "0",
    "-0",
    "1e-320",
    "9" * 400,
    "🐘",
    "\u200b",
    "=1+1",
    '"',
    "'",
    ",",
    ";",
    "\t",
    "x" * 5000,
)
_EDGE_DATES = (
    "0001-01-01",
    "1677-09-21",
    "1677-09-22",
    "2262-04-11",
    "2262-04-12",
    "9999-12-31",
    "2025-02-29",
    "2024-02-29",
    "2025-13-01",
    "2025-00-10",
    "2025-03-30T02:30:00",
    "2099-01-01",
    "1970-01-01",
    "2025-03-08T18:30:00+14:00",
    "2025-03-08T18:30:00-12:00",
    "2025-03-08 18:30:00 +0300",
    "2025-03-08T18:30:00.123456789Z",
)

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30
) | st.sampled_from(_ODD_TEXT)


@st.composite
def dates(draw: st.DrawFn) -> str:
    kind = draw(st.integers(-1, 3))
    if kind <= 0:  # a good date in the data's range
        d = draw(st.dates(date(2024, 1, 1), date(2025, 6, 30)))
        return d.isoformat()
    if kind == 1:  # another format, any time
        moment = draw(st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)))
        return moment.strftime(draw(st.sampled_from(_DATE_FORMATS)))
    if kind == 2:
        return draw(st.sampled_from(_EDGE_DATES))
    return draw(texts)


def _number(value: float, style: str) -> str:
    text = repr(value) if style == "repr" else f"{value:.7f}"
    return text.replace(".", ",") if style == "comma" else text


@st.composite
def points(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.integers(0, 4))
    if kind <= 1:  # inside the area (maybe swapped, maybe with a decimal comma)
        lon = draw(st.floats(*AREA_LON))
        lat = draw(st.floats(*AREA_LAT))
        style = draw(st.sampled_from(["fixed", "fixed", "repr", "comma"]))
        x, y = _number(lon, style), _number(lat, style)
        return (y, x) if kind == 1 and draw(st.booleans()) else (x, y)
    if kind == 2:  # any float, NaN and infinities included
        return (
            repr(draw(st.floats(allow_nan=True, allow_infinity=True))),
            repr(draw(st.floats(allow_nan=True, allow_infinity=True))),
        )
    if kind == 3:  # a projected-looking pair
        return (repr(draw(st.floats(-1e7, 1e7))), repr(draw(st.floats(-1e7, 1e7))))
    return (draw(texts), draw(texts))


@st.composite
def rows(draw: st.DrawFn, n_columns: int) -> list[str]:
    x, y = draw(points())
    cells = [draw(texts), draw(dates()), x, y, draw(texts), draw(texts)]
    extra = [draw(texts) for _ in range(max(0, n_columns - len(cells)))]
    return (cells + extra)[:n_columns] if draw(st.booleans()) else cells + extra


@dataclass(frozen=True)
class Table:
    """A generated incident file: its bytes and how it was made (for the report)."""

    data: bytes
    header: tuple[str, ...]
    n_rows: int
    encoding: str
    separator: str


@st.composite
def headers(draw: st.DrawFn) -> list[str]:
    header = list(COLUMNS)
    if draw(st.integers(0, 3)) == 0:  # rename, drop, duplicate or add columns
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(header) - 1))
            action = draw(st.sampled_from(["rename", "drop", "duplicate", "add"]))
            if action == "rename":
                header[i] = draw(texts)
            elif action == "drop" and len(header) > 1:
                header.pop(i)
            elif action == "duplicate":
                header.insert(i, header[i])
            else:
                header.append(draw(texts))
    return header


@st.composite
def incident_tables(
    draw: st.DrawFn, max_rows: int = 40, good_rows: tuple[tuple[str, ...], ...] = ()
) -> Table:
    """A table file; with ``good_rows`` (rows of :data:`COLUMNS`), some of them come first."""
    header = draw(headers())
    body = draw(st.lists(rows(len(header)), min_size=1, max_size=max_rows))
    if good_rows and draw(st.booleans()):
        keep = draw(st.integers(1, len(good_rows)))
        body = [list(r) for r in good_rows[:keep]] + body
    separator = draw(st.sampled_from([",", ",", ",", ",", ";", "\t", "|"]))
    buffer = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    if draw(st.integers(0, 5)) == 0:  # written by hand: no quoting at all
        lines = [separator.join(line) for line in [header, *body]]
        buffer.write("\n".join(lines) + ("\n" if draw(st.booleans()) else ""))
    else:
        writer = csv.writer(
            buffer,
            delimiter=separator,
            quoting=quoting,
            lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])),
        )
        writer.writerow(header)
        writer.writerows(body)
    encoding = draw(
        st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])
    )
    data = buffer.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 10)) == 0:  # truncated mid-file
        data = data[: draw(st.integers(0, len(data)))]
    return Table(data, tuple(header), len(body), encoding, separator)


def note(label: str) -> None:
    """Count ``label`` in hypothesis's statistics (``--hypothesis-show-statistics``)."""
    with contextlib.suppress(InvalidArgument):  # called from a plain test, not a property
        event(label)


# --- configs ----------------------------------------------------------------------

#: Keys a config may hold (paths into the YAML), for mutations. compute.scheduler is left
#: out: a generated address would send traffic to some host.
CONFIG_KEYS: tuple[tuple[str, ...], ...] = (
    ("features", "history"),
    ("seed",),
    ("name",),
    ("model",),
    ("output_dir",),
    ("incidents",),
    ("incidents", "path"),
    ("incidents", "format"),
    ("incidents", "x"),
    ("incidents", "y"),
    ("incidents", "crs"),
    ("incidents", "date"),
    ("incidents", "date_format"),
    ("incidents", "timezone"),
    ("incidents", "id"),
    ("incidents", "species"),
    ("incidents", "type"),
    ("incidents", "filters"),
    ("incidents", "duplicates"),
    ("covariates",),
    ("covariates", "cover"),
    ("covariates", "cover", "path"),
    ("covariates", "cover", "type"),
    ("covariates", "cover", "band"),
    ("covariates", "cover", "nodata"),
    ("covariates", "cover", "classes"),
    ("covariates", "elevation"),
    ("covariates", "elevation", "path"),
    ("covariates", "elevation", "type"),
    ("covariates", "elevation", "nodata"),
    ("covariates", "elevation", "transform"),
    ("grid",),
    ("grid", "crs"),
    ("grid", "resolution"),
    ("grid", "extent"),
    ("features", "neighbourhood"),
    ("features", "max_classes"),
    ("features", "history"),
    ("background", "method"),
    ("background", "n_points"),
    ("background", "bias_raster"),
    ("validation", "folds"),
    ("validation", "block_size"),
    ("validation", "top_fraction"),
    ("validation", "rolling_months"),
    ("compute", "chunk_size"),
    ("compute", "pool"),
    ("compute", "workers"),
    ("outputs", "population_covariate"),
    ("outputs", "generalise_incidents"),
    ("connectivity",),
)

_SCALARS = (
    0,
    -1,
    1,
    2,
    3,
    64,
    100,
    250,
    500,
    1e6,
    10**30,
    0.5,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "five",
    "EPSG:4326",
    "EPSG:32633",
    "EPSG:3857",
    "EPSG:99999",
    "cover.tif",
    "elevation.tif",
    "missing.tif",
    "incidents.csv",
    "*.csv",
    "categorical",
    "continuous",
    "glm",
    "maxent",
    "auto",
    "uniform",
    "target_group",
    "bias",
    "threads",
    "processes",
    "%d/%m/%Y",
    "%Q",
    "dayfirst",
    "1km",
    "0.01",
    "lon",
    "lat",
    "date",
    "id",
    "kind",
    "Africa/Nairobi",
    "Mars/Olympus",
    "..",
    "a\nb",
    "🐘",
)
#: Extents near the small area (x 500 000-512 000, y 5 188 000-5 200 000, EPSG:32633):
#: inside, partly outside, outside, smaller than a cell, reversed.
_EXTENTS = (
    [502_000, 5_190_000, 510_000, 5_198_000],
    [495_000, 5_185_000, 505_000, 5_195_000],
    [600_000, 5_100_000, 610_000, 5_110_000],
    [500_000, 5_199_900, 500_100, 5_200_000],
    [510_000, 5_198_000, 502_000, 5_190_000],
    [1, 2, 3],
)
config_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_SCALARS),
    st.sampled_from(_EXTENTS),
    st.lists(st.sampled_from([0, 1, 2, "a", 1.5]), max_size=3),
    st.dictionaries(
        st.sampled_from(["a", "path", "type", "species", 1, 2]),
        st.sampled_from([1, "x", None, ["wolf"]]),
        max_size=2,
    ),
    st.text(max_size=12),
)


#: Values of the right type that may still be wrong for the data, by key.
PLAUSIBLE: dict[tuple[str, ...], tuple[Any, ...]] = {
    ("model",): ("glm", "maxent", "gbm", "rf", "ensemble", "auto", "nope", "../config.yaml"),
    ("grid", "crs"): ("EPSG:32633", "EPSG:32733", "EPSG:3857", "EPSG:4326", "ESRI:102022"),
    ("grid", "resolution"): (100, 250, 1000, 12_000, 1e6, float("inf"), float("nan")),
    ("grid", "extent"): _EXTENTS,
    ("incidents", "crs"): ("EPSG:4326", "EPSG:32633", "EPSG:3857", "EPSG:4327", "+proj=longlat"),
    ("incidents", "x"): ("lat", "id", "date", "kind"),
    ("incidents", "y"): ("lon", "species", "date"),
    ("incidents", "date"): ("lon", "id", "kind"),
    ("incidents", "date_format"): ("%d/%m/%Y", "dayfirst", "monthfirst", "%Y", "%Q", "%", "%s"),
    ("incidents", "timezone"): ("Africa/Nairobi", "UTC", "Etc/GMT+12", "Pacific/Kiritimati"),
    ("incidents", "format"): ("earthranger", "smart", "table"),
    ("incidents", "filters"): (
        {"species": ["wolf"]},
        {"species": ["WOLF", "lion"]},
        {"type": ["crop raiding"]},
        {"category": ["a"]},
    ),
    ("incidents", "duplicates"): (
        {"time_hours": 1e6, "distance_m": 1e7},
        {"time_hours": 0, "distance_m": 0},
        {"enabled": False},
    ),
    ("covariates", "cover", "band"): (1, 2),
    ("covariates", "cover", "nodata"): (0, 1, 2, 3, 4, -9999, float("nan")),
    ("covariates", "cover", "classes"): ({1: "woods"}, {99: "none"}, {}),
    ("covariates", "cover", "type"): ("continuous",),
    ("covariates", "elevation", "type"): ("categorical",),
    ("covariates", "elevation", "nodata"): (900, -9999, float("nan"), float("inf")),
    ("covariates", "elevation", "transform"): ("log1p", "none"),
    ("features", "max_classes"): (2, 3, 4),
    ("background", "method"): ("target_group", "bias"),
    ("background", "bias_raster"): ("cover.tif", "elevation.tif", "truth.tif", "missing.tif"),
    ("validation", "block_size"): (1, 250, 1e6),
    ("compute", "workers"): (1, 2),
    ("compute", "pool"): ("processes",),
    ("outputs", "population_covariate"): ("elevation", "cover"),
    ("outputs", "generalise_incidents"): (0.01, "1km", 1, "0m"),
    ("connectivity",): (
        {"from_covariate": "cover", "resistance": {1: 1, 2: 5, 3: 20, 4: 100}, "sources": [1]},
        {"from_covariate": "cover", "resistance": {9: 1}, "sources": [9]},
        {"resistance_raster": "elevation.tif", "sources_raster": "cover.tif"},
    ),
}


def _parent(config: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = config
    for part in key[:-1]:
        if not isinstance(node, dict):
            return None
        node = node.setdefault(part, {})
    return node if isinstance(node, dict) else None


@st.composite
def mutated_config(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with up to three changes: a key set to a drawn value, removed, or added."""
    config = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(CONFIG_KEYS))
        parent = _parent(config, key)
        if parent is None:
            continue
        action = draw(st.sampled_from(["set", "set", "delete", "unknown"]))
        if action == "set":
            plausible = PLAUSIBLE.get(key)
            if plausible and draw(st.integers(0, 3)) > 0:
                parent[key[-1]] = copy.deepcopy(draw(st.sampled_from(plausible)))
            else:
                parent[key[-1]] = draw(config_values)
        elif action == "delete":
            parent.pop(key[-1], None)
        else:
            parent[draw(st.sampled_from(["modle", "incidnets", "colour", "x_y", "Name"]))] = 1
    return config


@st.composite
def config_texts(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """A config file: a mutated config as YAML, sometimes broken as text or bytes."""
    text = yaml.safe_dump(draw(mutated_config(base)), sort_keys=False, allow_unicode=True)
    damage = draw(st.sampled_from(["none"] * 6 + ["char", "cut", "other", "tabs", "bom", "utf16"]))
    if damage == "char":  # a character that YAML reads as syntax, somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list(":[]{}\t\"'&*!|>%@`-#,?"))) + text[at:]
    elif damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "other":  # not YAML at all, or another document
        text = draw(st.sampled_from(["", "just text", "- a\n- b\n", "42", "null", "---\n---\n"]))
    elif damage == "tabs":  # tabs for indentation
        text = text.replace("  ", "\t")
    data = text.encode("utf-8")
    if damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "utf16":
        data = text.encode("utf-16")
    return data


@st.composite
def tables_with_good_rows(
    draw: st.DrawFn, good_rows: tuple[tuple[str, ...], ...], max_bad: int = 10
) -> Table:
    """A well-formed UTF-8 table: ``good_rows`` with up to ``max_bad`` generated rows among them.

    For runs: most go through, and the generated rows test what a run does with them.
    """
    body = [list(r) for r in good_rows]
    for _ in range(draw(st.integers(0, max_bad))):
        body.insert(draw(st.integers(0, len(body))), draw(rows(len(COLUMNS))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(body)
    return Table(buffer.getvalue().encode("utf-8"), COLUMNS, len(body), "utf-8", ",")


#: The config of the CLI tests' small area (tests/conftest.py: ``small_area_template``).
SMALL_AREA_CONFIG: dict[str, Any] = {
    "name": "synthetic",
    "incidents": {
        "path": "incidents.csv",
        "x": "lon",
        "y": "lat",
        "crs": "EPSG:4326",
        "date": "date",
        "id": "id",
        "species": "species",
        "type": "kind",
    },
    "covariates": {
        "cover": {
            "path": "cover.tif",
            "type": "categorical",
            "classes": {1: "woodland", 2: "pasture", 3: "cropland", 4: "wetland"},
        },
        "elevation": {"path": "elevation.tif", "type": "continuous"},
    },
    "model": "maxent",
    "output_dir": "out",
    "background": {"n_points": 1500},
    "validation": {"folds": 3},
}
