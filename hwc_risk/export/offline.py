"""Offline maps: inline Leaflet and its plugins into the HTML, so it needs no network.

folium links Leaflet and its plugins from CDNs, and offers no supported way to
inline them. hwc-risk takes the same libraries from the npm registry (pinned in
``web/package.json``; ``make web-assets`` installs them) and replaces each
``<script src>`` and stylesheet ``<link>`` with the file's content; images that
stylesheets reference become data URIs. Any external script or stylesheet left
over is an error, so an "offline" map never silently depends on the internet.

The assets are looked up in ``$HWC_RISK_WEB_ASSETS`` (a ``node_modules``
folder; it overrides the others), then in the installed package
(``hwc_risk/_web/node_modules``: a wheel carries them, put there from the npm
registry by the build hook ``hatch_build.py``), then in the source checkout's
``web/node_modules`` (``make web-assets``). ``web_assets.json`` beside this
module lists the files, for this module and for the build hook alike.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
from pathlib import Path

from ..errors import InputError

__all__ = ["ASSETS", "find_web_assets", "inline_assets", "require_web_assets"]

#: File name in folium's CDN URL -> path inside node_modules.
ASSETS: dict[str, str] = json.loads(
    (Path(__file__).with_name("web_assets.json")).read_text(encoding="utf-8")
)

_SCRIPT = re.compile(r'<script src="(https?://[^"]+)"></script>')
_LINK = re.compile(r'<link rel="stylesheet" href="(https?://[^"]+)"\s*/?>')
_CSS_URL = re.compile(r"url\((['\"]?)(?!data:|https?:|#)([^'\")]+)\1\)")


def _candidates() -> list[Path]:
    out = []
    env = os.environ.get("HWC_RISK_WEB_ASSETS")
    if env:
        out.append(Path(env))
    package = Path(__file__).resolve().parents[1]
    out.append(package / "_web" / "node_modules")  # an installed wheel
    out.append(package.parent / "web" / "node_modules")  # a source checkout
    return out


def _missing(folder: Path) -> list[str]:
    return [rel for rel in dict.fromkeys(ASSETS.values()) if not (folder / rel).is_file()]


def find_web_assets() -> Path | None:
    """The ``node_modules`` folder to inline from, or None.

    ``$HWC_RISK_WEB_ASSETS`` when set (None if it lacks a file), else the first
    folder that holds every asset.
    """
    candidates = _candidates()
    if os.environ.get("HWC_RISK_WEB_ASSETS"):
        candidates = candidates[:1]
    return next((folder for folder in candidates if not _missing(folder)), None)


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
    given = os.environ.get("HWC_RISK_WEB_ASSETS")
    if found is None and given:
        raise InputError(
            f"HWC_RISK_WEB_ASSETS={given}: {_missing(Path(given))[0]} not found; point it to a "
            "node_modules folder with the packages in web/package.json, or unset it"
        )
    if found is None:
        raise InputError(
            "an offline map needs local copies of Leaflet and its plugins, which an installed "
            "hwc-risk wheel carries; in a source checkout run `make web-assets` (needs npm), "
            "or set HWC_RISK_WEB_ASSETS to a node_modules folder with the packages in "
            "web/package.json"
        )
    return found
