"""Offline maps: inline Leaflet and its plugins into the HTML, so it needs no network.

folium links Leaflet and its plugins from CDNs, and offers no supported way to
inline them. hwc-risk takes the same libraries from the npm registry (pinned in
``web/package.json``; ``make web-assets`` installs them) and replaces each
``<script src>`` and stylesheet ``<link>`` with the file's content; images that
stylesheets reference become data URIs. Any external script or stylesheet left
over is an error, so an "offline" map never silently depends on the internet.

The assets are looked up in ``$HWC_RISK_WEB_ASSETS`` (a ``node_modules``
folder), then ``<prefix>/share/hwc-risk/web/node_modules``, then the source
checkout's ``web/node_modules``.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import re
import sys
from pathlib import Path

from ..errors import InputError

__all__ = ["ASSETS", "find_web_assets", "inline_assets", "require_web_assets"]

#: File name in folium's CDN URL -> path inside node_modules.
ASSETS: dict[str, str] = {
    "leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet.markercluster.js": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "MarkerCluster.css": "leaflet.markercluster/dist/MarkerCluster.css",
    "MarkerCluster.Default.css": "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "Control.FullScreen.min.js": "leaflet.fullscreen/Control.FullScreen.js",
    "Control.FullScreen.js": "leaflet.fullscreen/Control.FullScreen.js",
    "Control.FullScreen.css": "leaflet.fullscreen/Control.FullScreen.css",
}

_SCRIPT = re.compile(r'<script src="(https?://[^"]+)"></script>')
_LINK = re.compile(r'<link rel="stylesheet" href="(https?://[^"]+)"\s*/?>')
_CSS_URL = re.compile(r"url\((['\"]?)(?!data:|https?:|#)([^'\")]+)\1\)")


def _candidates() -> list[Path]:
    out = []
    env = os.environ.get("HWC_RISK_WEB_ASSETS")
    if env:
        out.append(Path(env))
    out.append(Path(sys.prefix) / "share" / "hwc-risk" / "web" / "node_modules")
    out.append(Path(__file__).resolve().parents[2] / "web" / "node_modules")
    return out


def find_web_assets() -> Path | None:
    """The first ``node_modules`` folder that holds every asset, or None."""
    for folder in _candidates():
        if all((folder / rel).is_file() for rel in ASSETS.values()):
            return folder
    return None


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".svg":
        mime = "image/svg+xml"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _css(path: Path) -> str:
    text = path.read_text(encoding="utf-8")

    def repl(m: re.Match[str]) -> str:
        target = (path.parent / m.group(2)).resolve()
        return f"url({_data_uri(target)})" if target.is_file() else m.group(0)

    return _CSS_URL.sub(repl, text)


def inline_assets(html: str, assets: Path) -> str:
    """Replace CDN scripts and stylesheets by their content from ``assets``."""

    def lookup(url: str) -> Path:
        name = url.split("?")[0].rsplit("/", 1)[-1]
        if name not in ASSETS:
            raise InputError(f"offline map: no local copy of {url}; hwc-risk cannot inline it")
        return assets / ASSETS[name]

    def script(m: re.Match[str]) -> str:
        code = lookup(m.group(1)).read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>{code}</script>"

    def link(m: re.Match[str]) -> str:
        return f"<style>{_css(lookup(m.group(1)))}</style>"

    html = _SCRIPT.sub(script, html)
    html = _LINK.sub(link, html)
    leftover = re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="(https?://[^"]+)"', html)
    if leftover:
        raise InputError(f"offline map: external resources remain: {', '.join(leftover[:3])}")
    return html


def require_web_assets() -> Path:
    """The assets folder, or an input error that says how to install it."""
    found = find_web_assets()
    if found is None:
        raise InputError(
            "an offline map needs local copies of Leaflet and its plugins; run "
            "`make web-assets` (needs npm) or set HWC_RISK_WEB_ASSETS to a node_modules "
            "folder with the packages in web/package.json"
        )
    return found
