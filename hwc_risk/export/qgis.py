"""QGIS layer styles (``.qml``) that QGIS applies by itself when it opens a GeoTIFF.

QGIS looks for ``<name>.qml`` beside ``<name>.tif``: ``risk.qml`` is a
labelled pseudocolour ramp whose colour stops sit at the risk-class
thresholds, so the continuous surface and the class map read alike;
``risk_class.qml`` is a paletted style with the class names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .. import __version__
from ..classes import RISK_CLASSES, class_shares

__all__ = [
    "DIVERGING",
    "EXPECTED_RAMP",
    "write_class_qml",
    "write_diverging_qml",
    "write_expected_qml",
    "write_palette_qml",
    "write_risk_qml",
]

QGIS_VERSION = "3.28.0-Firenze"
_DARKEST = "#7f0000"


def _rgba(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},255"


def _document(renderer: ET.Element, comment: str) -> ET.ElementTree:
    root = ET.Element(
        "qgis",
        {
            "version": QGIS_VERSION,
            "styleCategories": "AllStyleCategories",
            "hasScaleBasedVisibilityFlag": "0",
            "minScale": "1e+08",
            "maxScale": "0",
        },
    )
    root.append(ET.Comment(f" {comment} Written by hwc-risk {__version__}. "))
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(
        provider,
        "resampling",
        {
            "enabled": "false",
            "zoomedInResamplingMethod": "nearestNeighbour",
            "zoomedOutResamplingMethod": "nearestNeighbour",
            "maxOversampling": "2",
        },
    )
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(
        pipe,
        "huesaturation",
        {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0", "invertColors": "0"},
    )
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    blend = ET.SubElement(root, "blendMode")
    blend.text = "0"
    ET.indent(root)
    return ET.ElementTree(root)


def _min_max_origin(parent: ET.Element) -> None:
    origin = ET.SubElement(parent, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(origin, tag).text = text


def _write(tree: ET.ElementTree, path: Path) -> Path:
    with open(path, "wb") as fh:
        fh.write(b"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
        tree.write(fh, encoding="utf-8", xml_declaration=False)
    return path


def write_risk_qml(path: Path, thresholds: dict[str, float]) -> Path:
    """Pseudocolour ramp for ``risk.tif`` with stops at the class thresholds.

    ``thresholds`` maps class labels to the lowest risk of the class (as
    :func:`hwc_risk.surfaces.classify` returns them).
    """
    renderer = ET.Element(
        "rasterrenderer",
        {
            "type": "singlebandpseudocolor",
            "band": "1",
            "opacity": "1",
            "alphaBand": "-1",
            "classificationMin": "0",
            "classificationMax": "1",
            "nodataColor": "",
        },
    )
    ET.SubElement(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader")
    shader.attrib.update(
        {
            "colorRampType": "INTERPOLATED",
            "classificationMode": "1",
            "clip": "0",
            "minimumValue": "0",
            "maximumValue": "1",
            "labelPrecision": "2",
        }
    )
    low = RISK_CLASSES[-1]
    stops: list[tuple[float, str, str]] = [(0.0, low.colour, "0.00 (lowest)")]
    for cls in RISK_CLASSES[:-1][::-1]:  # moderate, high, very high
        value = thresholds.get(cls.label)
        if value is None:
            continue
        share = sum(c.area_share for c in RISK_CLASSES if c.code >= cls.code)
        stops.append((value, cls.colour, f"{value:.2f} {cls.label} (top {share:.0%} of area)"))
    stops.append((1.0, _DARKEST, "1.00 (highest)"))
    stops.sort(key=lambda s: s[0])
    ramp = ET.SubElement(shader, "colorramp", {"type": "gradient", "name": "[source]"})
    option = ET.SubElement(ramp, "Option", {"type": "Map"})
    for opt_name, opt_value in (
        ("color1", _rgba(stops[0][1])),
        ("color2", _rgba(stops[-1][1])),
        ("discrete", "0"),
        ("rampType", "gradient"),
        ("stops", _stops(stops)),
    ):
        ET.SubElement(option, "Option", {"type": "QString", "name": opt_name, "value": opt_value})
    for value, colour, label in stops:
        ET.SubElement(
            shader,
            "item",
            {"alpha": "255", "value": f"{value:.6f}", "label": label, "color": colour},
        )
    return _write(_document(renderer, "Relative conflict risk, 0-1."), path)


def _stops(stops: list[tuple[float, str, str]]) -> str:
    # QGIS gradient stops: "position;r,g,b,a:position;r,g,b,a" for the inner stops
    return ":".join(f"{v:.6f};{_rgba(c)}" for v, c, _ in stops[1:-1])


def write_class_qml(path: Path, captures: dict[str, float] | None = None) -> Path:
    """Paletted style for ``risk_class.tif``: one entry per class, labelled in words."""
    shares = sorted(class_shares(captures), key=lambda s: s.risk_class.code)
    entries = [(s.risk_class.code, s.risk_class.colour, s.palette_label()) for s in shares]
    return write_palette_qml(path, entries, "Conflict risk classes by share of area")


# --- scenarios (issue 15): a diverging ramp for differences, a palette for any codes ---

#: ColorBrewer's RdBu, reversed: falls blue, rises red, no change white.
DIVERGING = ("#0571b0", "#92c5de", "#f7f7f7", "#f4a582", "#ca0020")


def _ramp_renderer(stops: list[tuple[float, str, str]], precision: int) -> ET.Element:
    """A pseudocolour renderer interpolating ``(value, colour, label)`` stops, increasing;
    values beyond the ends take the end colours."""
    lo, hi = stops[0][0], stops[-1][0]
    renderer = ET.Element(
        "rasterrenderer",
        {
            "type": "singlebandpseudocolor",
            "band": "1",
            "opacity": "1",
            "alphaBand": "-1",
            "classificationMin": f"{lo:.6g}",
            "classificationMax": f"{hi:.6g}",
            "nodataColor": "",
        },
    )
    ET.SubElement(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader")
    shader.attrib.update(
        {
            "colorRampType": "INTERPOLATED",
            "classificationMode": "1",
            "clip": "0",
            "minimumValue": f"{lo:.6g}",
            "maximumValue": f"{hi:.6g}",
            "labelPrecision": str(precision),
        }
    )
    inner = ":".join(f"{(v - lo) / (hi - lo or 1):.6f};{_rgba(c)}" for v, c, _ in stops[1:-1])
    ramp = ET.SubElement(shader, "colorramp", {"type": "gradient", "name": "[source]"})
    option = ET.SubElement(ramp, "Option", {"type": "Map"})
    for opt_name, opt_value in (
        ("color1", _rgba(stops[0][1])),
        ("color2", _rgba(stops[-1][1])),
        ("discrete", "0"),
        ("rampType", "gradient"),
        ("stops", inner),
    ):
        ET.SubElement(option, "Option", {"type": "QString", "name": opt_name, "value": opt_value})
    for value, colour, label in stops:
        item = {"alpha": "255", "value": f"{value:.6g}", "label": label, "color": colour}
        ET.SubElement(shader, "item", item)
    return renderer


def write_diverging_qml(path: Path, limit: float, what: str) -> Path:
    """Pseudocolour style for a difference (scenario minus baseline): a diverging ramp
    (RdBu reversed) symmetric about 0, from ``-limit`` (blue) to ``+limit`` (red);
    values beyond are clipped to the end colours."""
    limit = max(float(limit), 1e-9)
    values = [-limit, -limit / 2, 0.0, limit / 2, limit]
    labels = [f"{-limit:.3g} (fall)", f"{-limit / 2:.3g}", "0 (no change)", f"{limit / 2:.3g}"]
    labels.append(f"{limit:.3g} (rise)")
    renderer = _ramp_renderer(list(zip(values, DIVERGING, labels, strict=True)), 3)
    return _write(_document(renderer, f"{what}: scenario minus baseline."), path)


def write_palette_qml(path: Path, entries: list[tuple[int, str, str]], what: str) -> Path:
    """Paletted style for class codes: ``(code, colour, label)`` entries."""
    renderer = ET.Element(
        "rasterrenderer",
        {"type": "paletted", "band": "1", "opacity": "1", "alphaBand": "-1", "nodataColor": ""},
    )
    ET.SubElement(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    palette = ET.SubElement(renderer, "colorPalette")
    for code, colour, label in entries:
        ET.SubElement(
            palette,
            "paletteEntry",
            {"value": str(code), "color": colour, "alpha": "255", "label": label},
        )
    return _write(_document(renderer, f"{what}."), path)


#: A sequential ramp (ColorBrewer YlOrRd) for expected incidents: light few, dark many.
EXPECTED_RAMP = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")


def write_expected_qml(path: Path, values: list[float], units: str) -> Path:
    """Pseudocolour ramp for ``forecast.tif``: :data:`EXPECTED_RAMP` at ``values`` (five
    increasing stops, e.g. 0 and quantiles of the expected incidents per cell)."""
    stops = [(v, c, f"{v:.4g} {units}") for v, c in zip(values, EXPECTED_RAMP, strict=True)]
    renderer = _ramp_renderer(stops, 4)
    return _write(_document(renderer, "Expected incidents per cell (forecast)."), path)
