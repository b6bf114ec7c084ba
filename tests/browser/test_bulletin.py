"""The managers' bulletin printed: page count, nothing past the margins, no request out.

The bulletin is the shared sample run's (the sample district with its two scenarios,
run by the CLI; its records stage wrote ``bulletin.html`` and ``bulletin.pdf``). Chromium
prints it on A4 and US Letter (as a manager's browser would), WeasyPrint on Letter too;
every page is rendered to PNG in ``test-artifacts/`` (look at them) and checked: one or two
pages, and the right margin blank on every page (content that overflows the page's
width lands there).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MM = 72 / 25.4  # PDF points per millimetre
PAPERS = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}


@pytest.fixture(scope="module")
def bulletin(sample_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared sample run's bulletin (with its scenarios' table), copied to print."""
    folder = tmp_path_factory.mktemp("bulletin")
    for name in ("bulletin.html", "bulletin.pdf"):
        shutil.copy(sample_run / name, folder / name)
    return folder / "bulletin.html"


def _check_pages(pdf_path: Path, paper: str, tag: str) -> int:
    """Render every page to PNG; each page of the paper's size with a blank right margin."""
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = pdfium.PdfDocument(pdf_path)
    width_mm, height_mm = PAPERS[paper]
    for i, page in enumerate(pdf, start=1):
        w, h = page.get_size()
        assert abs(w - width_mm * MM) < 2 and abs(h - height_mm * MM) < 2
        image = page.render(scale=2).to_pil()
        image.save(ARTIFACTS / f"bulletin-{tag}-{paper}-page{i}.png")
        pixels = np.asarray(image.convert("L"))
        margin = round(6 * MM * 2)  # the outer 6 mm of the 12 mm margin
        assert pixels[:, -margin:].min() > 245, f"page {i} spills into the right margin"
        assert pixels[:, :margin].min() > 245, f"page {i} spills into the left margin"
    return len(pdf)


def test_bulletin_opens_with_no_request_and_no_error(open_map: Any, bulletin: Path) -> None:
    opened = open_map(bulletin, network=False)
    page = opened.page
    assert opened.refused == [] and opened.page_errors == [] and opened.console_errors == []
    assert page.evaluate("document.querySelector('figure img').naturalWidth") > 500
    assert "sample-district" in page.inner_text("h1")
    assert page.locator("table.hotspots tbody tr").count() >= 1
    assert page.locator("table.scenarios thead th").count() == 3  # measure and two plans
    opened.screenshot("bulletin-screen.png")


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_bulletin_prints_on_one_or_two_pages(browser: Any, bulletin: Path, paper: str) -> None:
    width_mm = PAPERS[paper][0] - 24  # the @page margins: 12 mm a side
    context = browser.new_context(viewport={"width": round(width_mm / 25.4 * 96), "height": 900})
    page = context.new_page()
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
               else r.abort())  # fmt: skip
    page.goto(bulletin.resolve().as_uri())
    page.emulate_media(media="print")
    # laid out at the printable width, nothing is wider than the page
    widest = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('body *')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= page.evaluate("document.documentElement.clientWidth") + 0.5
    pdf_path = bulletin.with_name(f"chromium-{paper}.pdf")
    page.pdf(path=str(pdf_path), format=paper, print_background=True)
    context.close()
    assert 1 <= _check_pages(pdf_path, paper, "chromium") <= 2


def test_weasyprint_pdf_fits(bulletin: Path) -> None:
    from hwc_risk.export.bulletin import write_bulletin_pdf

    html = bulletin.read_text(encoding="utf-8")
    assert 1 <= _check_pages(bulletin.with_name("bulletin.pdf"), "A4", "weasyprint") <= 2
    letter = write_bulletin_pdf(html, bulletin.with_name("letter.pdf"), "Letter")
    assert letter is not None
    assert 1 <= _check_pages(letter, "Letter", "weasyprint") <= 2
