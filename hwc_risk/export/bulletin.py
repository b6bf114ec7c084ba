"""A bulletin for managers: one or two printed pages that say what the month's map says.

Managers read a page, not a GeoTIFF. ``bulletin.html`` holds the area and the
month, the headline in words (incidents this month against last month, and
next month's expectation when a forecast gives one), a static map of the risk
classes with the hotspots, the ten largest hotspots with their area, people and
incidents, what changed since last month, the scenarios' table when there are
any, and how good the map is in one plain sentence.

The page is self-contained (the map is a PNG inlined as a data URI; no script,
no font or style from elsewhere), and its print CSS fits A4 and US Letter: no
paper size is forced, widths follow the page, and tables and the map are not
split across pages. ``bulletin.pdf`` is made from the same HTML by WeasyPrint
(a Python library; it needs the Pango text library, which Debian, Ubuntu and
most desktop systems have), at A4 unless asked for Letter.

:class:`Bulletin` is the plain record of what the bulletin says;
:func:`bulletin_from_run_folder` fills it from a run folder's ``manifest.json``,
``metrics.json``, ``hotspots.gpkg``, ``risk_class.tif`` and, when scenarios
ran, ``scenarios/summary.csv``; :func:`bulletin_html` renders it and
:func:`write_bulletin` writes both files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import Resampling

from .. import __version__
from ..classes import RISK_CLASSES
from ..errors import InputError
from ..map_choice import blend_weight
from ..scenarios.summary import AREA_CHANGED, OUTSIDE_RANGE

__all__ = [
    "Bulletin",
    "HotspotRow",
    "bulletin_from_records",
    "bulletin_from_run_folder",
    "bulletin_html",
    "forecast_next",
    "render_class_map",
    "shipped_words",
    "write_bulletin",
    "write_bulletin_pdf",
    "write_run_bulletin",
]

log = logging.getLogger(__name__)

#: The scenario measures a manager reads (labels of ScenarioSummary.rows()).
BULLETIN_SCENARIO_ROWS = (
    "description",
    AREA_CHANGED,
    "very high: area change (km²)",
    "very high: people change",
    "new hotspots",
    "vanished hotspots",
    OUTSIDE_RANGE,
    "current cut by the line (%)",
)
_BASELINE_WORDS = {
    "kde": "a map of where incidents happened before",
    "past_counts": "the cells with past incidents",
    "uniform": "chance",
}
Paper = Literal["A4", "Letter"]


@dataclass(frozen=True)
class HotspotRow:
    """One hotspot in the bulletin's table."""

    rank: int
    area_km2: float
    people: float | None
    incidents: int | None


@dataclass(frozen=True)
class Bulletin:
    """What a bulletin says, as plain values (everything is escaped when rendered)."""

    area: str
    month: str  # YYYY-MM
    incidents: int
    previous_incidents: int | None
    quality: str
    map_png: bytes
    hotspots: tuple[HotspotRow, ...] = ()
    hotspot_count: int = 0
    change: str | None = None
    expected_next: float | None = None
    expected_range: tuple[float, float] | None = None  # the forecast's interval
    scenario_names: tuple[str, ...] = ()
    scenario_rows: tuple[tuple[str, tuple[str, ...]], ...] = ()
    model: str = ""  # what the map is: "model: glm", or the history or blend shipped
    made_on: str = ""


def _month_words(month: str, shift: int = 0) -> str:
    return (pd.Period(month, freq="M") + shift).strftime("%B %Y")


def headline(b: Bulletin) -> str:
    """The headline in words: incidents this month, against last month, and next month."""
    n = b.incidents
    text = f"{n} incident{'s' if n != 1 else ''} reported in {_month_words(b.month)}"
    if b.previous_incidents is not None:
        prev, last = b.previous_incidents, _month_words(b.month, -1).split()[0]
        if n == prev:
            text += f", as many as in {last}"
        else:
            text += f", {abs(n - prev)} {'more' if n > prev else 'fewer'} than in {last} ({prev})"
    text += "."
    if b.expected_next is not None:
        text += f" About {round(b.expected_next)} expected in {_month_words(b.month, 1)}"
        if b.expected_range is not None:
            low, high = b.expected_range
            text += f" ({round(low)} to {round(high)})"
        text += "."
    return text


#: the history candidates of the map choice, in words (``map_choice.chosen``)
_HISTORY_WORDS = {
    "past_counts": "all past incidents per cell",
    "recent_counts": "the last 12 months' incidents per cell",
    "history_density": "a density of past incidents",
}


def shipped_words(metrics: dict[str, Any]) -> str:
    """What the shipped map is (the map choice of ``metrics.json``), for the footer."""
    model = str(metrics.get("model", ""))
    chosen = str((metrics.get("map_choice") or {}).get("chosen", "model"))
    weight = blend_weight(chosen)
    if weight is not None:
        return f"map: {weight:.0%} model ({model}), {1 - weight:.0%} a density of past incidents"
    if chosen in _HISTORY_WORDS:
        return f"map: {_HISTORY_WORDS[chosen]} (it did better than the model, {model})"
    return f"model: {model}"


def _shipped_capture(metrics: dict[str, Any], month: str, key: str) -> float | None:
    """The shipped map's capture in the run's month when the map choice shipped
    something other than the model (its own held-out figure), else None."""
    choice = metrics.get("map_choice") or {}
    chosen = choice.get("chosen")
    if not chosen or chosen == "model":
        return None
    found: dict[str, Any] = next(
        (m for m in choice.get("per_month", []) if m.get("month") == month), {}
    )
    value = found.get(chosen, {}).get(key)
    return None if value is None else float(value)


def quality_sentence(metrics: dict[str, Any]) -> str:
    """How good the shipped map is, in one plain sentence, from ``metrics.json``."""
    temporal = metrics.get("temporal_holdout", {})
    top = float(metrics.get("top_fraction", 0.10))
    if "skipped" in temporal or "model" not in temporal:
        return "There were too few incidents this month to check the map against them."
    key = f"capture_rate_{round(top * 100)}"
    test_month = str(temporal.get("test_month", metrics.get("month", "")))
    shipped = _shipped_capture(metrics, test_month, key)
    model = temporal["model"].get(key) if shipped is None else shipped
    chosen = (metrics.get("map_choice") or {}).get("chosen")
    # a map of past incidents is not its own rival
    rivals = {n: temporal.get(n, {}).get(key) for n in _BASELINE_WORDS if n != chosen}
    rivals = {n: v for n, v in rivals.items() if v is not None and math.isfinite(v)}
    if model is None or not rivals:
        return "The map could not be checked against this month's incidents."
    best = max(rivals, key=lambda n: rivals[n])
    month = _month_words(test_month)
    n = temporal.get("n_test_incidents", temporal["model"].get("n_incidents", 0))
    lead = (
        f"Checked against the {n} incidents of {month}, which it had not seen, the "
        f"highest-risk {top:.0%} of the area held {model:.0%} of them"
    )
    if model > rivals[best]:
        return f"{lead}, against {rivals[best]:.0%} for {_BASELINE_WORDS[best]}."
    return (
        f"{lead}, no better than {_BASELINE_WORDS[best]} ({rivals[best]:.0%}): use it with "
        "care this month."
    )


def render_class_map(
    classes: Path, hotspots: Any = None, max_pixels: int = 900, labels: int = 10
) -> bytes:
    """A PNG of the risk classes with the hotspots outlined (the largest numbered).

    The class raster is read at most ``max_pixels`` a side (its overviews when
    it is a COG), so a national grid costs no more than a district's.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    with rasterio.open(classes) as ds:
        scale = max(1.0, max(ds.width, ds.height) / max_pixels)
        shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        codes = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        left, bottom, right, top = ds.bounds
    colours = ["#ffffff"] * (max(c.code for c in RISK_CLASSES) + 1)
    for cls in RISK_CLASSES:
        colours[cls.code] = cls.colour
    fig, ax = plt.subplots(figsize=(7.0, 7.0 * shape[0] / shape[1] + 0.6), dpi=150)
    shown = np.ma.masked_equal(codes, 0)
    ax.imshow(
        shown,
        cmap=ListedColormap(colours),
        vmin=0,
        vmax=len(colours) - 1,
        extent=(left, right, bottom, top),
        interpolation="nearest",
    )
    if hotspots is not None and len(hotspots):
        hotspots.boundary.plot(ax=ax, color="#3b0000", linewidth=0.6)
        for _, row in hotspots.head(labels).iterrows():
            p = row.geometry.representative_point()
            ax.annotate(
                str(int(row["hotspot"])), (p.x, p.y), ha="center", va="center", fontsize=7,
                fontweight="bold", color="black",
                bbox={"boxstyle": "circle,pad=0.15", "fc": "white", "ec": "#3b0000", "lw": 0.5},
            )  # fmt: skip
    _scale_bar(ax, left, right, bottom, top)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_axis_off()
    handles = [Patch(facecolor=c.colour, edgecolor="#555", label=c.label) for c in RISK_CLASSES]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4,
              frameon=False, fontsize=8)  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return buf.getvalue()


def _scale_bar(ax: Any, left: float, right: float, bottom: float, top: float) -> None:
    """A scale bar of a round number of kilometres, about a fifth of the map's width."""
    span = (right - left) / 5 / 1000
    km = max(v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if v <= max(span, 0.1))
    x0, y0 = left + 0.03 * (right - left), bottom + 0.04 * (top - bottom)
    ax.plot([x0, x0 + km * 1000], [y0, y0], color="black", linewidth=2.5, solid_capstyle="butt")
    ax.text(x0 + km * 500, y0 + 0.015 * (top - bottom), f"{km:g} km", ha="center", fontsize=7)


_CSS = """
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 10pt;
       color: #1a1a1a; line-height: 1.35; margin: 0 auto; max-width: 190mm; }
header { border-bottom: 2px solid #d7191c; margin-bottom: 3mm; }
header h1 { font-size: 16pt; margin: 0 0 1mm; }
header p { margin: 0 0 2mm; color: #444; }
.headline { font-size: 13pt; font-weight: bold; margin: 2mm 0; }
h2 { font-size: 11.5pt; margin: 4mm 0 1.5mm; break-after: avoid; page-break-after: avoid; }
figure { margin: 0; text-align: center; break-inside: avoid; page-break-inside: avoid; }
figure img { max-width: 100%; max-height: 125mm; }
figcaption { font-size: 8.5pt; color: #444; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; break-inside: avoid;
        page-break-inside: avoid; }
th, td { border-bottom: 1px solid #ccc; padding: 1mm 1.5mm; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 1.5px solid #333; }
table.scenarios { table-layout: fixed; }
table.scenarios td, table.scenarios th { overflow-wrap: anywhere; }
.quality { background: #f3f3f3; padding: 2mm 3mm; border-left: 3px solid #555; }
footer { margin-top: 4mm; font-size: 8pt; color: #666; }
@page { margin: 12mm 12mm 14mm; }
@media screen { body { padding: 8mm; } }
"""


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _hotspot_table(b: Bulletin) -> str:
    if not b.hotspots:
        return "<p>No hotspot this month.</p>"
    has_people = any(h.people is not None for h in b.hotspots)
    has_incidents = any(h.incidents is not None for h in b.hotspots)
    head = "<th>hotspot</th><th>area (km²)</th>"
    head += "<th>people</th>" if has_people else ""
    head += "<th>incidents so far</th>" if has_incidents else ""
    rows = []
    for h in b.hotspots:
        cells = f"<td>{h.rank}</td><td>{_number(h.area_km2, 1)}</td>"
        cells += f"<td>{_number(h.people)}</td>" if has_people else ""
        cells += f"<td>{_number(h.incidents)}</td>" if has_incidents else ""
        rows.append(f"<tr>{cells}</tr>")
    more = b.hotspot_count - len(b.hotspots)
    note = (
        f"<p>{more} smaller hotspot{'s' if more != 1 else ''} not listed.</p>" if more > 0 else ""
    )
    return (
        f'<table class="hotspots"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{note}"
    )


def _scenario_table(b: Bulletin) -> str:
    if not b.scenario_names:
        return ""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in b.scenario_names)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in values)
        + "</tr>"
        for label, values in b.scenario_rows
    )
    return (
        "<h2>What the plans would change</h2>"
        '<table class="scenarios"><thead><tr><th>measure</th>'
        f"{head}</tr></thead><tbody>{body}</tbody></table>"
        "<p>The month's model evaluated on the edited inputs; nothing was refitted. Where the "
        "edits take the inputs outside what the model was trained on, its answer is a guess.</p>"
    )


def bulletin_html(b: Bulletin) -> str:
    """The bulletin as one self-contained HTML page (the map inlined as a data URI)."""
    esc = html.escape
    month = _month_words(b.month)
    png = base64.b64encode(b.map_png).decode("ascii")
    change = esc(b.change) if b.change else "This is the first month mapped for this area."
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conflict risk bulletin: {esc(b.area)}, {esc(month)}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>Human-wildlife conflict risk: {esc(b.area)}</h1>
<p>Bulletin for {esc(month)}</p></header>
<p class="headline">{esc(headline(b))}</p>
<figure><img src="data:image/png;base64,{png}" alt="Map of the risk classes of {esc(b.area)}
 in {esc(month)}, with the hotspots numbered by size">
<figcaption>Risk classes are shares of the area: very high is the top 5 %, high the next
10 %, moderate the next 15 %. Outlined and numbered: hotspots, the patches of very high
risk, largest first.</figcaption></figure>
<h2>The largest hotspots</h2>
{_hotspot_table(b)}
<h2>What changed since last month</h2>
<p>{change}</p>
{_scenario_table(b)}
<h2>How good is this map?</h2>
<p class="quality">{esc(b.quality)}</p>
<footer>Made by hwc-risk {esc(__version__)} on {esc(b.made_on)}; {esc(b.model)}.
The GeoTIFFs, the interactive map and the full validation are in the same folder.</footer>
</body></html>
"""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read it ({exc}); give a complete run folder") from None


def _scenario_rows(path: Path) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The bulletin's rows of ``scenarios/summary.csv`` (as :func:`write_scenarios_csv` writes)."""
    if not path.is_file():
        return (), ()
    table = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    rows = []
    for label in BULLETIN_SCENARIO_ROWS:
        if label in table.index:
            values = tuple(_pretty(str(v)) for v in table.loc[label])
            if any(v != "–" for v in values):
                rows.append((label, values))
    return tuple(str(c) for c in table.columns), tuple(rows)


def _pretty(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text or "–"
    return _number(value, 0 if abs(value) >= 10 or value == int(value) else 1)


def _hotspot_rows(path: Path, top: int) -> tuple[tuple[HotspotRow, ...], int, Any]:
    import geopandas as gpd

    if not path.is_file():
        return (), 0, None
    spots = gpd.read_file(path, layer="hotspots")
    rows = tuple(
        HotspotRow(
            rank=int(r["hotspot"]),
            area_km2=float(r["area_km2"]),
            people=float(r["people"]) if "people" in r and pd.notna(r["people"]) else None,
            incidents=int(r["incidents"])
            if "incidents" in r and pd.notna(r["incidents"])
            else None,
        )
        for _, r in spots.head(top).iterrows()
    )
    return rows, len(spots), spots


def bulletin_from_records(
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    run_dir: Path,
    expected_next: float | None = None,
    top: int = 10,
) -> Bulletin:
    """A :class:`Bulletin` from a run's manifest and metrics (as ``manifest.json`` and
    ``metrics.json`` hold them) and the rasters and hotspots in ``run_dir``.

    A run calls this before it writes ``manifest.json`` (whose outputs list the
    bulletin); :func:`bulletin_from_run_folder` reads both from a finished folder.
    """
    run_dir = Path(run_dir)
    month = str(manifest["month"])
    by_month = manifest.get("incidents", {}).get("used_by_month", {})
    previous = str(pd.Period(month, freq="M") - 1)
    hotspots, count, frame = _hotspot_rows(run_dir / "hotspots.gpkg", top)
    names, rows = _scenario_rows(run_dir / "scenarios" / "summary.csv")
    change = (manifest.get("change_since_previous") or {}).get("summary")
    return Bulletin(
        area=str(manifest["name"]),
        month=month,
        incidents=int(by_month.get(month, 0)),
        previous_incidents=int(by_month[previous]) if previous in by_month else None,
        quality=quality_sentence(metrics),
        map_png=render_class_map(run_dir / "risk_class.tif", frame),
        hotspots=hotspots,
        hotspot_count=count,
        change=change,
        expected_next=expected_next,
        scenario_names=names,
        scenario_rows=rows,
        model=shipped_words(metrics),
        made_on=str(manifest.get("finished", date.today().isoformat()))[:10],
    )


def forecast_next(metrics: dict[str, Any], month: str) -> tuple[float, tuple[float, float] | None]:
    """Next month's expected incidents and interval from ``metrics.json``'s ``forecast``
    section (``months: [{month, expected, lower, upper}]``); NaN when it has none."""
    wanted = str(pd.Period(month, freq="M") + 1)
    for entry in (metrics.get("forecast") or {}).get("months", []):
        if entry.get("month") == wanted and entry.get("expected") is not None:
            low, high = entry.get("lower"), entry.get("upper")
            interval = (float(low), float(high)) if low is not None and high is not None else None
            return float(entry["expected"]), interval
    return math.nan, None


def write_run_bulletin(
    run_dir: Path, manifest: dict[str, Any], metrics: dict[str, Any], paper: Paper = "A4"
) -> list[Path]:
    """``bulletin.html`` and ``bulletin.pdf`` of a run folder, from the run's manifest
    and metrics (the records stage calls it before it writes ``manifest.json``); next
    month's expectation when the metrics hold a forecast."""
    expected, interval = forecast_next(metrics, str(manifest["month"]))
    bulletin = bulletin_from_records(
        manifest, metrics, run_dir, None if math.isnan(expected) else expected
    )
    if interval is not None:
        bulletin = replace(bulletin, expected_range=interval)
    return write_bulletin(run_dir, bulletin, paper)


def bulletin_from_run_folder(
    run_dir: Path, expected_next: float | None = None, top: int = 10
) -> Bulletin:
    """What a finished run folder knows, as a :class:`Bulletin`.

    ``expected_next`` is next month's expected number of incidents, when a
    forecast gives one.
    """
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / "manifest.json")
    metrics = _read_json(run_dir / "metrics.json")
    return bulletin_from_records(manifest, metrics, run_dir, expected_next, top)


def write_bulletin_pdf(html_text: str, path: Path, paper: Paper = "A4") -> Path | None:
    """``bulletin.pdf`` from the bulletin's HTML by WeasyPrint; None (with a warning)
    where WeasyPrint cannot load its text library (Pango)."""
    try:
        from weasyprint import CSS, HTML
    except OSError as exc:  # Pango missing: the HTML is still there to print
        log.warning("bulletin.pdf not written: WeasyPrint needs Pango (%s)", exc)
        return None
    size = "A4" if paper == "A4" else "letter"
    HTML(string=html_text).write_pdf(path, stylesheets=[CSS(string=f"@page {{ size: {size} }}")])
    return path


def write_bulletin(
    run_dir: Path, bulletin: Bulletin, paper: Paper = "A4", pdf: bool = True
) -> list[Path]:
    """Write ``bulletin.html`` (and ``bulletin.pdf``) into ``run_dir``; the paths written."""
    text = bulletin_html(bulletin)
    out = Path(run_dir) / "bulletin.html"
    out.write_text(text, encoding="utf-8")
    written = [out]
    if pdf:
        made = write_bulletin_pdf(text, Path(run_dir) / "bulletin.pdf", paper)
        if made is not None:
            written.append(made)
    return written
