"""The managers' bulletin: its words, its tables, its map, and a folder it is made from."""

from __future__ import annotations

import io
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pypdfium2 as pdfium
import pytest
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from shapely.geometry import box

from hwc_risk.errors import InputError
from hwc_risk.export.bulletin import (
    Bulletin,
    HotspotRow,
    bulletin_from_run_folder,
    bulletin_html,
    headline,
    quality_sentence,
    render_class_map,
    shipped_words,
    write_bulletin,
)
from hwc_risk.grid import GridSpec
from hwc_risk.scenarios.summary import AREA_CHANGED
from tests.conftest import class_file

GRID = GridSpec(CRS.from_epsg(32736), Affine(100, 0, 500_000, 0, -100, 9_000_000), 120, 90)


def _metrics(model: float, kde: float, skipped: bool = False) -> dict:
    temporal: dict = {"skipped": "no incidents"} if skipped else {
        "test_month": "2026-10", "n_test_incidents": 13,
        "model": {"capture_rate_10": model}, "kde": {"capture_rate_10": kde},
        "past_counts": {"capture_rate_10": 0.1}, "uniform": {"capture_rate_10": 0.1},
    }  # fmt: skip
    return {"month": "2026-10", "model": "glm", "top_fraction": 0.1, "temporal_holdout": temporal,
            "risk_classes": []}  # fmt: skip


def test_quality_sentence_says_plainly_when_the_map_is_no_better() -> None:
    good = quality_sentence(_metrics(0.62, 0.31))
    assert good == (
        "Checked against the 13 incidents of October 2026, which it had not seen, the "
        "highest-risk 10% of the area held 62% of them, against 31% for a map of where "
        "incidents happened before."
    )
    poor = quality_sentence(_metrics(0.2, 0.31))
    assert "no better than a map of where incidents happened before (31%)" in poor
    assert "with care" in poor
    assert "too few incidents" in quality_sentence(_metrics(0, 0, skipped=True))


def test_quality_and_footer_describe_the_shipped_map_not_the_model() -> None:
    """When the map choice ships history or a blend, the bulletin scores and names that
    map (its capture in the run's month), not the model it did not ship."""
    metrics = _metrics(0.20, 0.31)
    month = {"month": "2026-10", "past_counts": {"capture_rate_10": 0.45},
             "blend_25": {"capture_rate_10": 0.38}}  # fmt: skip
    history = {**metrics, "map_choice": {"chosen": "past_counts", "per_month": [month]}}
    assert quality_sentence(history).endswith(
        "the highest-risk 10% of the area held 45% of them, against 31% for a map of where "
        "incidents happened before."
    )  # past_counts is what was shipped, so not its own rival
    assert shipped_words(history) == (
        "map: all past incidents per cell (it did better than the model, glm)"
    )
    blend = {**metrics, "map_choice": {"chosen": "blend_25", "per_month": [month]}}
    assert "held 38% of them" in quality_sentence(blend)
    assert shipped_words(blend) == "map: 25% model (glm), 75% a density of past incidents"
    model = {**metrics, "map_choice": {"chosen": "model", "per_month": [month]}}
    assert "held 20% of them, no better than" in quality_sentence(model)
    assert shipped_words(model) == shipped_words(metrics) == "model: glm"


def _bulletin(**changes: object) -> Bulletin:
    values: dict = {
        "area": "Mara <North>",
        "month": "2026-01",
        "incidents": 13,
        "previous_incidents": 20,
        "quality": "Checked & fine.",
        "map_png": b"\x89PNG fake",
        "hotspots": (HotspotRow(1, 20.7, 5114.0, 118), HotspotRow(2, 1.25, None, None)),
        "hotspot_count": 5,
    }
    values.update(changes)
    return Bulletin(**values)


def test_headline_in_words() -> None:
    assert (
        headline(_bulletin())
        == "13 incidents reported in January 2026, 7 fewer than in December (20)."
    )
    more = headline(_bulletin(incidents=1, previous_incidents=0, expected_next=4.6))
    assert more == (
        "1 incident reported in January 2026, 1 more than in December (0). "
        "About 5 expected in February 2026."
    )
    assert "as many as" in headline(_bulletin(previous_incidents=13))
    assert headline(_bulletin(previous_incidents=None)).endswith("January 2026.")


def test_html_is_escaped_and_self_contained() -> None:
    page = bulletin_html(
        _bulletin(
            scenario_names=("road <b>",),
            scenario_rows=(("new hotspots", ("2",)),),
            change="<script>alert(1)</script>",
        )
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Mara &lt;North&gt;" in page and "road &lt;b&gt;" in page
    assert "Checked &amp; fine." in page
    assert 'src="data:image/png;base64,' in page
    for outside in ("http://", "https://", "<link", "@import", "url("):
        assert outside not in page
    assert "3 smaller hotspots not listed" in page
    assert "What the plans would change" in page
    assert "What the plans" not in bulletin_html(_bulletin())  # no scenarios, no table


def _run_folder(folder: Path) -> Path:
    codes = np.ones(GRID.shape, dtype=np.uint8)
    codes[10:30, 10:40] = 4
    codes[60:70, 80:100] = 4
    codes[:, :3] = 0
    class_file(codes, GRID, folder)
    x0, y0 = 500_000, 9_000_000
    spots = gpd.GeoDataFrame(
        {"hotspot": [1, 2], "area_km2": [6.0, 2.0], "people": [300.0, 12.0],
         "incidents": [9, 1]},
        geometry=[box(x0 + 1000, y0 - 3000, x0 + 4000, y0 - 1000),
                  box(x0 + 8000, y0 - 7000, x0 + 10000, y0 - 6000)],
        crs=GRID.crs,
    )  # fmt: skip
    spots.to_file(folder / "hotspots.gpkg", layer="hotspots", driver="GPKG")
    manifest = {
        "name": "test-area", "month": "2026-10", "finished": "2026-11-02T10:00:00+00:00",
        "incidents": {"used_by_month": {"2026-09": 33, "2026-10": 13}},
        "change_since_previous": {"summary": "Since 2026-09: 3.4% of the area moved up."},
    }  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "metrics.json").write_text(json.dumps(_metrics(0.62, 0.31)))
    (folder / "scenarios").mkdir()
    (folder / "scenarios" / "summary.csv").write_text(
        "measure,road,farms\ndescription,A road,Farm blocks\n"
        f"{AREA_CHANGED},12.5,3\n"
        "new hotspots,1,0\ncurrent cut by the line (%),81.234,\nlargest rise in risk,0.2,0.1\n",
        encoding="utf-8",
    )
    return folder


def test_bulletin_from_a_run_folder(tmp_path: Path) -> None:
    b = bulletin_from_run_folder(_run_folder(tmp_path), expected_next=20)
    assert (b.area, b.month, b.incidents, b.previous_incidents) == ("test-area", "2026-10", 13, 33)
    assert b.hotspot_count == 2 and b.hotspots[0] == HotspotRow(1, 6.0, 300.0, 9)
    assert b.change == "Since 2026-09: 3.4% of the area moved up."
    assert b.model == "model: glm" and b.made_on == "2026-11-02"
    assert b.scenario_names == ("road", "farms")
    rows = dict(b.scenario_rows)
    assert rows[AREA_CHANGED] == ("12", "3")
    assert rows["current cut by the line (%)"] == ("81", "–")
    assert "largest rise in risk" not in rows  # not a manager's measure
    image = Image.open(io.BytesIO(b.map_png))
    assert image.format == "PNG" and image.width > 500
    rgb = np.asarray(image.convert("RGB"))
    assert (np.abs(rgb.astype(int) - (0xD7, 0x19, 0x1C)).sum(axis=2) < 30).any()  # very high
    written = write_bulletin(tmp_path, b, paper="Letter")
    assert [p.name for p in written] == ["bulletin.html", "bulletin.pdf"]
    pdf = pdfium.PdfDocument(written[1])
    assert 1 <= len(pdf) <= 2
    width, height = pdf[0].get_size()
    assert (round(width), round(height)) == (612, 792)  # US Letter in points

    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(InputError, match=r"metrics\.json: cannot read it"):
        bulletin_from_run_folder(tmp_path)


def test_class_map_reads_large_rasters_coarsely(tmp_path: Path) -> None:
    big = GridSpec(GRID.crs, GRID.transform, 3000, 2000)
    codes = np.ones(big.shape, dtype=np.uint8)
    png = render_class_map(class_file(codes, big, tmp_path), None, max_pixels=300)
    assert Image.open(io.BytesIO(png)).width < 1500
