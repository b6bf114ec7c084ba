"""Real headless Chromium for the planners' map.

The map is opened from disk as a planner would open it. Test machines have no
internet, so Leaflet and its plugins, which an online map loads from CDNs, are
served from the npm copies that offline maps inline (``web/package.json``,
``make web-assets``); basemap tiles are answered with a plain grey tile; every
other outside request is refused and recorded.

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` does
it). Without it the tests are skipped locally but fail under CI.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hwc_risk.export.offline import ASSETS as OFFLINE_ASSETS
from hwc_risk.export.offline import find_web_assets

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# CDN file names folium uses -> path inside node_modules (the same table offline maps use)
ASSETS = {f"/{name}": rel for name, rel in OFFLINE_ASSETS.items()}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = REPO / "test-artifacts"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests need {reason} (CI must install it)")
    pytest.skip(f"browser tests need {reason}")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    found = find_web_assets()
    if found is None:
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm to install Leaflet (make web-assets)")
        subprocess.run(
            [str(npm), "install", "--no-package-lock", "--no-audit", "--no-fund", "--silent"],
            cwd=REPO / "web",
            check=True,
            timeout=300,
        )
        found = find_web_assets()
        assert found is not None
    return found


@pytest.fixture(scope="session")
def browser(node_modules: Path) -> Iterator[Any]:
    executable = os.environ.get("HWC_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        _unavailable("Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _grey_tile() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (225, 225, 225)).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class OpenedMap:
    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    served: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def open_map(browser: Any, node_modules: Path) -> Iterator[Any]:
    tile = _grey_tile()
    contexts = []

    def _open(path: Path, network: bool = True) -> OpenedMap:
        """Open a map; with ``network=False`` every outside request is refused."""
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        contexts.append(context)
        page = context.new_page()
        opened = OpenedMap(page)

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
                return
            if not network:
                opened.refused.append(url)
                route.abort()
                return
            for suffix, rel in ASSETS.items():
                if url.split("?")[0].endswith(suffix):
                    opened.served.append(url)
                    route.fulfill(path=str(node_modules / rel))
                    return
            if "tile.openstreetmap.org" in url:
                route.fulfill(body=tile, content_type="image/png")
                return
            opened.refused.append(url)
            route.abort()

        page.route("**/*", route)
        page.on(
            "console",
            lambda msg: opened.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: opened.page_errors.append(str(exc)))

        def on_dialog(dialog: Any) -> None:
            opened.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return opened

    yield _open
    for context in contexts:
        context.close()
